//! Schedules (定时刻录): rules that fire at set times and make one backup job per selected
//! project. Every fire instant is a row in `schedule_runs` (unique per schedule and instant), so
//! a crash never fires a run twice nor loses one; missed runs fire once at start-up.

pub mod cli;
pub mod rule;
#[cfg(test)]
pub(crate) mod tests;
pub mod web;

use std::sync::Arc;
use std::time::Duration;

use sqlx::{FromRow, SqlitePool};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use witness_schemas::api::Category;
use witness_schemas::schedule::{
    NewSchedule, RuleKind, RunOutcome, Schedule, ScheduleRun, SelectionKind,
};

use crate::clock::rfc3339;
use crate::error::Result;
use crate::jobs::{check_priority, BackupOptions, Engine, JobOrigin, DEFAULT_PRIORITY};
use crate::{bail, err};

pub use rule::Rule;

#[derive(Debug, Clone, FromRow)]
struct ScheduleRow {
    id: i64,
    name: String,
    rule: String,
    at_minute: i64,
    weekday: Option<i64>,
    month_day: Option<i64>,
    selection: String,
    category: Option<String>,
    numbers: String,
    priority: i64,
    enabled: bool,
    rule_since: String,
    created_at: String,
    updated_at: String,
}

fn rule_kind(text: &str) -> RuleKind {
    match text {
        "immediate" => RuleKind::Immediate,
        "weekly" => RuleKind::Weekly,
        "monthly" => RuleKind::Monthly,
        _ => RuleKind::Daily,
    }
}

fn rule_kind_str(kind: RuleKind) -> &'static str {
    match kind {
        RuleKind::Immediate => "immediate",
        RuleKind::Daily => "daily",
        RuleKind::Weekly => "weekly",
        RuleKind::Monthly => "monthly",
    }
}

fn selection_kind(text: &str) -> SelectionKind {
    match text {
        "category" => SelectionKind::Category,
        "list" => SelectionKind::List,
        _ => SelectionKind::SinceLastRun,
    }
}

fn selection_kind_str(kind: SelectionKind) -> &'static str {
    match kind {
        SelectionKind::SinceLastRun => "since_last_run",
        SelectionKind::Category => "category",
        SelectionKind::List => "list",
    }
}

fn parse_time(text: &str) -> Result<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|e| err!(Internal, "stored time {text:?} is not RFC 3339: {e}"))
}

impl ScheduleRow {
    fn rule(&self) -> Rule {
        Rule {
            kind: rule_kind(&self.rule),
            at_minute: self.at_minute as u16,
            weekday: self.weekday.map(|d| d as u8),
            month_day: self.month_day.map(|d| d as u8),
        }
    }

    fn numbers(&self) -> Vec<String> {
        serde_json::from_str(&self.numbers).unwrap_or_default()
    }

    fn selection_zh(&self) -> String {
        match selection_kind(&self.selection) {
            SelectionKind::SinceLastRun => {
                "上次运行以来开标、尚未归档的项目（首次运行：所有已开标、尚未归档的项目）".into()
            }
            SelectionKind::Category => format!(
                "{}类尚未归档的项目",
                self.category
                    .as_deref()
                    .and_then(Category::parse)
                    .map(Category::label_zh)
                    .unwrap_or("?")
            ),
            SelectionKind::List => format!("指定项目：{}", self.numbers().join("、")),
        }
    }

    fn to_api(&self, last_fire: Option<String>, now: OffsetDateTime) -> Schedule {
        let rule = self.rule();
        let next_fire = if !self.enabled {
            None
        } else if rule.kind == RuleKind::Immediate {
            // An immediate schedule fires once, when saved.
            match last_fire {
                None => Some(self.rule_since.clone()),
                Some(_) => None,
            }
        } else {
            rule.next_after(now).map(rfc3339)
        };
        Schedule {
            id: self.id,
            name: self.name.clone(),
            rule: rule.kind,
            time: rule.time_text(),
            weekday: rule.weekday,
            month_day: rule.month_day,
            selection: selection_kind(&self.selection),
            category: self.category.as_deref().and_then(Category::parse),
            numbers: self.numbers(),
            priority: self.priority,
            enabled: self.enabled,
            rule_zh: rule.describe_zh(),
            selection_zh: self.selection_zh(),
            next_fire,
            last_fire,
            created_at: self.created_at.clone(),
            updated_at: self.updated_at.clone(),
        }
    }
}

const SCHEDULE_SELECT: &str =
    "SELECT id, name, rule, at_minute, weekday, month_day, selection, category, numbers,
        priority, enabled, rule_since, created_at, updated_at
    FROM schedules WHERE deleted_at IS NULL";

/// Checks a schedule as given by the API or the CLI.
fn check(new: &NewSchedule) -> Result<Rule> {
    let name = new.name.trim();
    if name.is_empty() {
        bail!(InvalidArgument, "计划名称不能为空 (schedule name is empty)");
    }
    if name.chars().count() > 100 {
        bail!(InvalidArgument, "计划名称过长（最多 100 个字符）");
    }
    let rule = Rule::from_new(new)?;
    check_priority(new.priority.unwrap_or(DEFAULT_PRIORITY))?;
    match new.selection {
        SelectionKind::Category if new.category.is_none() => bail!(
            InvalidArgument,
            "按类别选择需要给出项目类别 category (category is required)"
        ),
        SelectionKind::List if new.numbers.is_empty() => bail!(
            InvalidArgument,
            "按清单选择需要至少一个项目编号 numbers (numbers are required)"
        ),
        _ => {}
    }
    for number in &new.numbers {
        crate::paths::check_project_number(number)?;
    }
    Ok(rule)
}

pub async fn create(engine: &Arc<Engine>, new: &NewSchedule) -> Result<Schedule> {
    let rule = check(new)?;
    let now = rfc3339(engine.clock.now());
    let id = sqlx::query(
        "INSERT INTO schedules (name, rule, at_minute, weekday, month_day, selection, category, numbers, priority,
            enabled, rule_since, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(new.name.trim())
    .bind(rule_kind_str(rule.kind))
    .bind(i64::from(rule.at_minute))
    .bind(rule.weekday.map(i64::from))
    .bind(rule.month_day.map(i64::from))
    .bind(selection_kind_str(new.selection))
    .bind(new.category.map(Category::as_str))
    .bind(serde_json::to_string(&new.numbers).unwrap_or_else(|_| "[]".into()))
    .bind(new.priority.unwrap_or(DEFAULT_PRIORITY))
    .bind(new.enabled)
    .bind(&now)
    .bind(&now)
    .bind(&now)
    .execute(&engine.pool)
    .await?
    .last_insert_rowid();
    tracing::info!(schedule = id, rule = %rule.describe_zh(), "schedule saved");
    // An immediate schedule runs now; the others only if already due (they are not).
    tick(engine).await?;
    get(engine, id).await
}

/// Changes a schedule. A changed rule counts from now: instants before the change never fire.
pub async fn update(engine: &Arc<Engine>, id: i64, new: &NewSchedule) -> Result<Schedule> {
    let rule = check(new)?;
    let old = row(&engine.pool, id).await?;
    let now = rfc3339(engine.clock.now());
    let rule_changed = old.rule() != rule || (!old.enabled && new.enabled);
    sqlx::query(
        "UPDATE schedules SET name = ?, rule = ?, at_minute = ?, weekday = ?, month_day = ?, selection = ?,
            category = ?, numbers = ?, priority = ?, enabled = ?, rule_since = ?, updated_at = ? WHERE id = ?",
    )
    .bind(new.name.trim())
    .bind(rule_kind_str(rule.kind))
    .bind(i64::from(rule.at_minute))
    .bind(rule.weekday.map(i64::from))
    .bind(rule.month_day.map(i64::from))
    .bind(selection_kind_str(new.selection))
    .bind(new.category.map(Category::as_str))
    .bind(serde_json::to_string(&new.numbers).unwrap_or_else(|_| "[]".into()))
    .bind(new.priority.unwrap_or(DEFAULT_PRIORITY))
    .bind(new.enabled)
    .bind(if rule_changed { &now } else { &old.rule_since })
    .bind(&now)
    .bind(id)
    .execute(&engine.pool)
    .await?;
    tick(engine).await?;
    get(engine, id).await
}

/// Marks a schedule deleted; its runs and their jobs stay in the catalog.
pub async fn delete(engine: &Engine, id: i64) -> Result<()> {
    row(&engine.pool, id).await?;
    sqlx::query("UPDATE schedules SET deleted_at = ?, enabled = 0 WHERE id = ?")
        .bind(rfc3339(engine.clock.now()))
        .bind(id)
        .execute(&engine.pool)
        .await?;
    Ok(())
}

async fn row(pool: &SqlitePool, id: i64) -> Result<ScheduleRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SCHEDULE_SELECT} AND id = ?")))
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| err!(NotFound, "定时计划 {id} 不存在 (unknown schedule)"))
}

async fn last_fire(pool: &SqlitePool, id: i64) -> Result<Option<String>> {
    let row: Option<(Option<String>,)> =
        sqlx::query_as("SELECT MAX(fire_at) FROM schedule_runs WHERE schedule_id = ?")
            .bind(id)
            .fetch_optional(pool)
            .await?;
    Ok(row.and_then(|r| r.0))
}

pub async fn get(engine: &Engine, id: i64) -> Result<Schedule> {
    let row = row(&engine.pool, id).await?;
    let last = last_fire(&engine.pool, id).await?;
    Ok(row.to_api(last, engine.clock.now()))
}

pub async fn list(engine: &Engine) -> Result<Vec<Schedule>> {
    let rows: Vec<ScheduleRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SCHEDULE_SELECT} ORDER BY id"
    )))
    .fetch_all(&engine.pool)
    .await?;
    let now = engine.clock.now();
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let last = last_fire(&engine.pool, row.id).await?;
        out.push(row.to_api(last, now));
    }
    Ok(out)
}

#[derive(Debug, Clone, FromRow)]
struct RunRow {
    id: i64,
    schedule_id: i64,
    fire_at: String,
    window_start: String,
    missed: i64,
    started_at: String,
    finished_at: Option<String>,
    jobs_created: i64,
    outcome: String,
}

impl RunRow {
    fn to_api(&self) -> ScheduleRun {
        ScheduleRun {
            id: self.id,
            schedule_id: self.schedule_id,
            fire_at: self.fire_at.clone(),
            window_start: self.window_start.clone(),
            missed: self.missed,
            started_at: self.started_at.clone(),
            finished_at: self.finished_at.clone(),
            jobs_created: self.jobs_created,
            outcome: serde_json::from_str(&self.outcome).unwrap_or_default(),
        }
    }
}

const RUN_SELECT: &str =
    "SELECT id, schedule_id, fire_at, window_start, missed, started_at, finished_at,
        jobs_created, outcome FROM schedule_runs";

pub async fn runs(engine: &Engine, schedule_id: i64) -> Result<Vec<ScheduleRun>> {
    // Deleted schedules keep their history, so this does not go through `row`.
    let rows: Vec<RunRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{RUN_SELECT} WHERE schedule_id = ? ORDER BY fire_at DESC, id DESC LIMIT 200"
    )))
    .bind(schedule_id)
    .fetch_all(&engine.pool)
    .await?;
    if rows.is_empty() {
        row(&engine.pool, schedule_id).await?;
    }
    Ok(rows.iter().map(RunRow::to_api).collect())
}

/// Ticks never overlap: the loop, a saved schedule and start-up may all ask at once.
static TICK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Fires every due schedule once (for its latest due instant, counting the missed ones), then
/// makes the jobs of every run not yet finished, including runs a crash interrupted.
pub async fn tick(engine: &Arc<Engine>) -> Result<()> {
    let _one = TICK.lock().await;
    let now = engine.clock.now();
    let rows: Vec<ScheduleRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SCHEDULE_SELECT} AND enabled = 1 ORDER BY id"
    )))
    .fetch_all(&engine.pool)
    .await?;
    for schedule in rows {
        let last = last_fire(&engine.pool, schedule.id).await?;
        let rule_since = parse_time(&schedule.rule_since)?;
        let due = match (schedule.rule().kind, &last) {
            (RuleKind::Immediate, None) => Some((rule_since, 1)),
            (RuleKind::Immediate, Some(_)) => None,
            (_, last) => {
                let since = match last {
                    Some(text) => parse_time(text)?.max(rule_since),
                    None => rule_since,
                };
                schedule.rule().due_between(since, now)
            }
        };
        let Some((fire_at, count)) = due else {
            continue;
        };
        // The window of "since the last run": from the previous run's instant; the first run
        // has none (empty text) and takes every project opened before it.
        let window_start = last.unwrap_or_default();
        let inserted = sqlx::query(
            "INSERT INTO schedule_runs (schedule_id, fire_at, window_start, missed, started_at)
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (schedule_id, fire_at) DO NOTHING",
        )
        .bind(schedule.id)
        .bind(rfc3339(fire_at))
        .bind(&window_start)
        .bind(count as i64 - 1)
        .bind(rfc3339(now))
        .execute(&engine.pool)
        .await?;
        if inserted.rows_affected() == 1 {
            tracing::info!(schedule = schedule.id, fire_at = %rfc3339(fire_at), missed = count - 1, "schedule fired");
        }
    }
    let open: Vec<RunRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{RUN_SELECT} WHERE finished_at IS NULL ORDER BY id"
    )))
    .fetch_all(&engine.pool)
    .await?;
    for run in open {
        finish_run(engine, &run).await?;
    }
    // Batch rows a crash left without their job are redone on the same beat.
    crate::batch::finish_pending(engine, &[]).await?;
    Ok(())
}

/// The projects a run backs up.
async fn select(
    pool: &SqlitePool,
    schedule: &ScheduleRow,
    run: &RunRow,
) -> Result<Vec<(i64, String)>> {
    // "Not archived yet": no job of the project succeeded (every copy verified). Projects
    // with a job queued or running are left to that job. Evaluation takes place at the bid
    // opening (开标), the time the catalog keeps, so it stands for "evaluation ended".
    const NOT_ARCHIVED: &str = "NOT EXISTS (SELECT 1 FROM jobs j WHERE j.project_id = p.id
            AND j.status IN ('succeeded', 'queued', 'running') AND (j.schedule_run_id IS NULL OR j.schedule_run_id != ?))";
    let rows: Vec<(i64, String)> = match selection_kind(&schedule.selection) {
        SelectionKind::SinceLastRun => {
            let candidates: Vec<(i64, String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT p.id, p.number, p.opening FROM projects p WHERE {NOT_ARCHIVED} ORDER BY p.opening, p.id"
            )))
            .bind(run.id)
            .fetch_all(pool)
            .await?;
            // Compared as instants, not as text: an opening may be stored with another offset.
            let fire_at = parse_time(&run.fire_at)?;
            let window_start = match run.window_start.as_str() {
                "" => None,
                text => Some(parse_time(text)?),
            };
            candidates
                .into_iter()
                .filter(|(_, _, opening)| {
                    OffsetDateTime::parse(opening, &Rfc3339).is_ok_and(|opening| {
                        opening <= fire_at && window_start.is_none_or(|start| opening > start)
                    })
                })
                .map(|(id, number, _)| (id, number))
                .collect()
        }
        SelectionKind::Category => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT p.id, p.number FROM projects p WHERE p.category = ? AND {NOT_ARCHIVED} ORDER BY p.opening, p.id"
        )))
        .bind(schedule.category.as_deref().unwrap_or(""))
        .bind(run.id)
        .fetch_all(pool)
        .await?,
        SelectionKind::List => {
            let mut out = Vec::new();
            for number in schedule.numbers() {
                let found: Option<(i64,)> = sqlx::query_as("SELECT id FROM projects WHERE number = ?")
                    .bind(&number)
                    .fetch_optional(pool)
                    .await?;
                // An unknown number is kept (id 0) so the run reports it.
                out.push((found.map(|f| f.0).unwrap_or(0), number));
            }
            out
        }
    };
    Ok(rows)
}

/// Makes the jobs of one run (those a crash left unmade) and marks the run finished.
async fn finish_run(engine: &Arc<Engine>, run: &RunRow) -> Result<()> {
    // A run's schedule may have been deleted since; its run still finishes.
    let schedule: ScheduleRow = sqlx::query_as(
        "SELECT id, name, rule, at_minute, weekday, month_day, selection, category, numbers,
            priority, enabled, rule_since, created_at, updated_at FROM schedules WHERE id = ?",
    )
    .bind(run.schedule_id)
    .fetch_one(&engine.pool)
    .await?;
    let mut outcome = Vec::new();
    for (project_id, number) in select(&engine.pool, &schedule, run).await? {
        let made: Option<(i64,)> =
            sqlx::query_as("SELECT id FROM jobs WHERE schedule_run_id = ? AND project_id = ?")
                .bind(run.id)
                .bind(project_id)
                .fetch_optional(&engine.pool)
                .await?;
        if let Some((job,)) = made {
            outcome.push(RunOutcome {
                project: number,
                job: Some(job),
                error: None,
            });
            continue;
        }
        let options = BackupOptions {
            priority: Some(schedule.priority),
            origin: JobOrigin::Schedule,
            schedule_run_id: Some(run.id),
            ..BackupOptions::default()
        };
        match engine.submit(&number, options).await {
            Ok(job) => outcome.push(RunOutcome {
                project: number,
                job: Some(job.id),
                error: None,
            }),
            Err(e) if e.kind == crate::error::ErrorKind::Internal => return Err(e),
            Err(e) => outcome.push(RunOutcome {
                project: number,
                job: None,
                error: Some(e.message),
            }),
        }
    }
    let jobs = outcome.iter().filter(|o| o.job.is_some()).count() as i64;
    sqlx::query(
        "UPDATE schedule_runs SET finished_at = ?, jobs_created = ?, outcome = ? WHERE id = ?",
    )
    .bind(rfc3339(engine.clock.now()))
    .bind(jobs)
    .bind(serde_json::to_string(&outcome).unwrap_or_else(|_| "[]".into()))
    .bind(run.id)
    .execute(&engine.pool)
    .await?;
    tracing::info!(
        run = run.id,
        schedule = run.schedule_id,
        jobs,
        "schedule run finished"
    );
    Ok(())
}

/// How long the loop sleeps: until the next fire instant of any schedule, at most a minute
/// (so a changed clock or a schedule saved elsewhere is noticed), at least a second.
async fn next_wait(engine: &Engine) -> Duration {
    let longest = Duration::from_secs(60);
    let Ok(schedules) = list(engine).await else {
        return longest;
    };
    let now = engine.clock.now();
    schedules
        .iter()
        .filter_map(|s| s.next_fire.as_deref())
        .filter_map(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
        .map(|t| Duration::try_from(t - now).unwrap_or(Duration::ZERO))
        .min()
        .unwrap_or(longest)
        .clamp(Duration::from_secs(1), longest)
}

/// Runs the scheduler for the daemon's life: a tick at start-up (missed runs fire once), then
/// one at each fire instant; and, beside it, the re-inspection cycle every ten minutes (a long
/// re-read never delays a schedule).
pub fn start(engine: Arc<Engine>) {
    let scheduler = Arc::clone(&engine);
    tokio::spawn(async move {
        loop {
            if let Err(e) = tick(&scheduler).await {
                tracing::error!(%e, "scheduler tick failed");
            }
            tokio::time::sleep(next_wait(&scheduler).await).await;
        }
    });
    tokio::spawn(async move {
        loop {
            if let Err(e) = crate::reinspect::tick(&engine).await {
                tracing::error!(%e, "re-inspection tick failed");
            }
            tokio::time::sleep(Duration::from_secs(600)).await;
        }
    });
}
