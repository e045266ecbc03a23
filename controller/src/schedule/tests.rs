//! Schedule tests on the simulated clock (nothing sleeps): fire instants across month and year
//! ends in China Standard Time, and the scheduler's runs against a real SQLite catalog.

use std::sync::Arc;

use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use witness_schemas::api::{Category, NewProject};
use witness_schemas::schedule::{NewSchedule, RuleKind, SelectionKind};

use super::*;
use crate::clock::{Clock, SimulatedClock};

fn rule(kind: RuleKind, time: &str, weekday: Option<u8>, month_day: Option<u8>) -> Rule {
    Rule::from_new(&new_schedule(kind, time, weekday, month_day)).unwrap()
}

fn new_schedule(
    kind: RuleKind,
    time: &str,
    weekday: Option<u8>,
    month_day: Option<u8>,
) -> NewSchedule {
    NewSchedule {
        name: "测试计划".into(),
        rule: kind,
        time: Some(time.into()),
        weekday,
        month_day,
        selection: SelectionKind::SinceLastRun,
        category: None,
        numbers: Vec::new(),
        priority: None,
        enabled: true,
    }
}

/// The next `n` fire instants after `from`, as RFC 3339 text in China Standard Time.
fn fires(rule: &Rule, from: OffsetDateTime, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut t = from;
    for _ in 0..n {
        t = rule.next_after(t).expect("a next fire instant");
        out.push(rfc3339(t));
    }
    out
}

#[test]
fn daily_fires_every_day_across_the_year_end() {
    let daily = rule(RuleKind::Daily, "02:00", None, None);
    assert_eq!(
        fires(&daily, datetime!(2026-12-30 10:00 +8), 3),
        [
            "2026-12-31T02:00:00+08:00",
            "2027-01-01T02:00:00+08:00",
            "2027-01-02T02:00:00+08:00"
        ]
    );
    // Asia/Shanghai is UTC+8 all year: 02:00 there is 18:00 UTC the day before, in winter and
    // in summer alike (no daylight saving).
    for (before, expected) in [
        (
            datetime!(2026-01-10 17:59 UTC),
            datetime!(2026-01-10 18:00 UTC),
        ),
        (
            datetime!(2026-07-10 17:59 UTC),
            datetime!(2026-07-10 18:00 UTC),
        ),
    ] {
        assert_eq!(daily.next_after(before), Some(expected));
    }
    // Exactly at a fire instant, the next one is the following day's.
    assert_eq!(
        fires(&daily, datetime!(2026-12-31 02:00 +8), 1),
        ["2027-01-01T02:00:00+08:00"]
    );
}

#[test]
fn weekly_fires_on_its_weekday() {
    let monday = rule(RuleKind::Weekly, "09:30", Some(1), None);
    // 2026-11-29 is a Sunday.
    assert_eq!(
        fires(&monday, datetime!(2026-11-29 12:00 +8), 3),
        [
            "2026-11-30T09:30:00+08:00",
            "2026-12-07T09:30:00+08:00",
            "2026-12-14T09:30:00+08:00"
        ]
    );
    let sunday = rule(RuleKind::Weekly, "23:59", Some(7), None);
    assert_eq!(
        fires(&sunday, datetime!(2026-12-27 23:59 +8), 2),
        ["2027-01-03T23:59:00+08:00", "2027-01-10T23:59:00+08:00"]
    );
    assert_eq!(monday.describe_zh(), "每周一 09:30");
    assert_eq!(sunday.describe_zh(), "每周日 23:59");
}

#[test]
fn monthly_on_a_day_a_month_lacks_fires_on_its_last_day() {
    let last = rule(RuleKind::Monthly, "02:00", None, Some(31));
    assert_eq!(
        fires(&last, datetime!(2027-01-15 00:00 +8), 5),
        [
            "2027-01-31T02:00:00+08:00",
            "2027-02-28T02:00:00+08:00",
            "2027-03-31T02:00:00+08:00",
            "2027-04-30T02:00:00+08:00",
            "2027-05-31T02:00:00+08:00"
        ]
    );
    // 2028 is a leap year.
    assert_eq!(
        fires(&last, datetime!(2028-01-31 02:00 +8), 2),
        ["2028-02-29T02:00:00+08:00", "2028-03-31T02:00:00+08:00"]
    );
    let thirtieth = rule(RuleKind::Monthly, "08:00", None, Some(30));
    assert_eq!(
        fires(&thirtieth, datetime!(2027-01-30 08:00 +8), 2),
        ["2027-02-28T08:00:00+08:00", "2027-03-30T08:00:00+08:00"]
    );
    let fifteenth = rule(RuleKind::Monthly, "00:00", None, Some(15));
    assert_eq!(
        fires(&fifteenth, datetime!(2026-12-15 00:00 +8), 2),
        ["2027-01-15T00:00:00+08:00", "2027-02-15T00:00:00+08:00"]
    );
    assert_eq!(last.describe_zh(), "每月最后一天 02:00");
    assert_eq!(
        thirtieth.describe_zh(),
        "每月30日 08:00（无此日的月份在月末最后一天）"
    );
    assert_eq!(fifteenth.describe_zh(), "每月15日 00:00");
}

#[test]
fn due_instants_collapse_into_the_latest_with_a_count() {
    let daily = rule(RuleKind::Daily, "02:00", None, None);
    let since = datetime!(2027-01-01 02:00 +8);
    assert_eq!(
        daily.due_between(since, datetime!(2027-01-02 01:59 +8)),
        None
    );
    assert_eq!(
        daily.due_between(since, datetime!(2027-01-05 03:00 +8)),
        Some((datetime!(2027-01-05 02:00 +8), 4))
    );
}

#[test]
fn bad_rules_are_refused_with_the_field_named() {
    let check = |s: NewSchedule| super::check(&s).unwrap_err().message;
    assert!(check(new_schedule(RuleKind::Daily, "24:00", None, None)).contains("HH:MM"));
    assert!(check(new_schedule(RuleKind::Daily, "2:00", None, None)).contains("HH:MM"));
    assert!(check(new_schedule(RuleKind::Weekly, "02:00", Some(8), None)).contains("weekday"));
    assert!(check(new_schedule(RuleKind::Monthly, "02:00", None, None)).contains("month_day"));
    assert!(check(new_schedule(RuleKind::Monthly, "02:00", None, Some(32))).contains("month_day"));
    let mut list = new_schedule(RuleKind::Daily, "02:00", None, None);
    list.selection = SelectionKind::List;
    assert!(check(list).contains("numbers"));
    let mut urgent = new_schedule(RuleKind::Daily, "02:00", None, None);
    urgent.priority = Some(12);
    assert!(check(urgent).contains("优先级"));
}

/// An engine on a simulated clock over a real catalog in a temporary folder. Jobs make a disk
/// copy only (no burner needed); their files are a few bytes.
async fn engine(start: OffsetDateTime) -> (tempfile::TempDir, Arc<Engine>, Arc<SimulatedClock>) {
    engine_with(start, "").await
}

/// Like `engine`, with more configuration (`{dir}` stands for the temporary folder).
pub(crate) async fn engine_with(
    start: OffsetDateTime,
    extra: &str,
) -> (tempfile::TempDir, Arc<Engine>, Arc<SimulatedClock>) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("var");
    std::fs::create_dir_all(&data).unwrap();
    let config = crate::config::parse_config(&format!(
        "[copies]\noptical = 0\ndisk = 1\n[[disks]]\nname = \"hdd\"\npath = \"{}\"\n{}",
        dir.path().join("hdd").display(),
        extra.replace("{dir}", &dir.path().display().to_string())
    ))
    .unwrap();
    std::fs::create_dir_all(dir.path().join("hdd")).unwrap();
    let settings = crate::config::resolve(config, Some(data.clone()), None).unwrap();
    let pool = crate::db::open(&data).await.unwrap();
    let clock = Arc::new(SimulatedClock::new(start));
    let engine = Engine::new(pool, Arc::new(settings), clock.clone() as Arc<dyn Clock>);
    (dir, engine, clock)
}

pub(crate) async fn add_project(
    engine: &Engine,
    dir: &std::path::Path,
    number: &str,
    opening: &str,
) {
    crate::catalog::create_project(
        &engine.pool,
        &NewProject {
            number: number.into(),
            name: format!("{number} 项目"),
            category: Category::Land,
            opening: opening.into(),
        },
        engine.clock.now(),
    )
    .await
    .unwrap();
    let folder = dir.join(format!("src-{number}"));
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("评标报告.txt"), number.as_bytes()).unwrap();
    crate::catalog::add_sources(
        &engine.pool,
        &engine.source_policy(),
        number,
        &[folder.display().to_string()],
        engine.clock.now(),
    )
    .await
    .unwrap();
}

async fn count(engine: &Engine, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(&engine.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_daily_schedule_fires_once_per_day_and_missed_days_fire_once() {
    let (dir, engine, clock) = engine(datetime!(2027-01-30 12:00 +8)).await;
    add_project(
        &engine,
        dir.path(),
        "GC-2027-001",
        "2027-01-30T09:00:00+08:00",
    )
    .await;
    let mut new = new_schedule(RuleKind::Daily, "02:00", None, None);
    new.priority = Some(7);
    let saved = create(&engine, &new).await.unwrap();
    assert_eq!(saved.rule_zh, "每天 02:00");
    assert_eq!(
        saved.next_fire.as_deref(),
        Some("2027-01-31T02:00:00+08:00")
    );
    assert_eq!(
        count(&engine, "SELECT COUNT(*) FROM schedule_runs").await,
        0
    );

    // One minute before the instant nothing fires; at it, one run makes one job.
    clock.advance(Duration::minutes(13 * 60 + 59));
    tick(&engine).await.unwrap();
    assert_eq!(
        count(&engine, "SELECT COUNT(*) FROM schedule_runs").await,
        0
    );
    clock.advance(Duration::minutes(1));
    tick(&engine).await.unwrap();
    tick(&engine).await.unwrap();
    let runs = runs(&engine, saved.id).await.unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].fire_at, "2027-01-31T02:00:00+08:00");
    assert_eq!(runs[0].missed, 0);
    assert_eq!(runs[0].outcome.len(), 1);
    assert_eq!(runs[0].outcome[0].project, "GC-2027-001");
    let job = runs[0].outcome[0].job.expect("a job");
    let (priority, origin): (i64, String) =
        sqlx::query_as("SELECT priority, origin FROM jobs WHERE id = ?")
            .bind(job)
            .fetch_one(&engine.pool)
            .await
            .unwrap();
    assert_eq!((priority, origin.as_str()), (7, "schedule"));

    // The appliance is off from 1 Feb to the afternoon of 4 Feb: four instants passed
    // (1, 2, 3, 4 Feb 02:00); one run fires, for the latest, and counts three missed.
    add_project(
        &engine,
        dir.path(),
        "GC-2027-002",
        "2027-02-01T10:00:00+08:00",
    )
    .await;
    clock.advance(Duration::days(4) + Duration::hours(12));
    tick(&engine).await.unwrap();
    tick(&engine).await.unwrap();
    let runs = super::runs(&engine, saved.id).await.unwrap();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(runs[0].fire_at, "2027-02-04T02:00:00+08:00");
    assert_eq!(runs[0].missed, 3);
    assert_eq!(runs[0].window_start, "2027-01-31T02:00:00+08:00");
    // Only the project opened since the previous run is selected.
    let projects: Vec<&str> = runs[0].outcome.iter().map(|o| o.project.as_str()).collect();
    assert_eq!(projects, ["GC-2027-002"]);
    assert_eq!(
        count(
            &engine,
            "SELECT COUNT(*) FROM jobs WHERE origin = 'schedule'"
        )
        .await,
        2
    );
}

#[tokio::test]
async fn a_run_interrupted_by_a_crash_is_finished_without_a_second_job() {
    let (dir, engine, clock) = engine(datetime!(2027-02-27 12:00 +8)).await;
    add_project(
        &engine,
        dir.path(),
        "ZC-2027-009",
        "2027-02-20T09:00:00+08:00",
    )
    .await;
    let mut new = new_schedule(RuleKind::Monthly, "02:00", None, Some(31));
    new.selection = SelectionKind::List;
    new.numbers = vec!["ZC-2027-009".into(), "NO-SUCH-1".into()];
    let saved = create(&engine, &new).await.unwrap();
    assert_eq!(
        saved.next_fire.as_deref(),
        Some("2027-02-28T02:00:00+08:00")
    );

    // kill -9 right after the run row was committed, before any job: the row is what the
    // crash leaves; the tick at start-up makes the jobs.
    clock.advance(Duration::hours(15));
    sqlx::query("INSERT INTO schedule_runs (schedule_id, fire_at, window_start, started_at) VALUES (?, '2027-02-28T02:00:00+08:00', '', ?)")
        .bind(saved.id)
        .bind(rfc3339(clock.now()))
        .execute(&engine.pool)
        .await
        .unwrap();
    tick(&engine).await.unwrap();
    let first = runs(&engine, saved.id).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].jobs_created, 1);
    assert!(first[0].outcome[1]
        .error
        .as_deref()
        .unwrap()
        .contains("NO-SUCH-1"));

    // kill -9 after the job was made but before the run was marked finished.
    sqlx::query("UPDATE schedule_runs SET finished_at = NULL")
        .execute(&engine.pool)
        .await
        .unwrap();
    tick(&engine).await.unwrap();
    assert_eq!(count(&engine, "SELECT COUNT(*) FROM jobs").await, 1);
    let again = runs(&engine, saved.id).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].outcome[0].job, first[0].outcome[0].job);
    assert!(again[0].finished_at.is_some());

    // The next month-end instant is 31 March.
    assert_eq!(
        get(&engine, saved.id).await.unwrap().next_fire.as_deref(),
        Some("2027-03-31T02:00:00+08:00")
    );
}

#[tokio::test]
async fn an_immediate_schedule_fires_once_when_saved() {
    let (dir, engine, clock) = engine(datetime!(2027-03-01 08:00 +8)).await;
    add_project(
        &engine,
        dir.path(),
        "TD-2027-003",
        "2027-02-28T09:00:00+08:00",
    )
    .await;
    let mut new = new_schedule(RuleKind::Immediate, "00:00", None, None);
    new.time = None;
    new.selection = SelectionKind::Category;
    new.category = Some(Category::Land);
    let saved = create(&engine, &new).await.unwrap();
    assert_eq!(saved.rule_zh, "立即（保存后运行一次）");
    assert_eq!(saved.next_fire, None);
    clock.advance(Duration::days(40));
    tick(&engine).await.unwrap();
    let runs = runs(&engine, saved.id).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].fire_at, "2027-03-01T08:00:00+08:00");
    assert_eq!(runs[0].jobs_created, 1);
}
