//! Drives as disc publishers expose them: a state machine per drive (idle, loading, recording,
//! verifying, record failed, verify failed, complete, out of service), good/bad disc counters
//! for the drive's life, taking a drive out of service after repeated failures (with an alert),
//! and returning it to service. All of it lives in SQLite, so it survives restarts.

pub mod arbiter;
pub mod web;

use sqlx::SqlitePool;
use witness_schemas::api::{Alert, Drive, DriveEvent};

use crate::error::Result;
use crate::{bail, err};

/// A drive's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriveState {
    Idle,
    /// The robot is putting a blank into the drive.
    Loading,
    Recording,
    Verifying,
    RecordFailed,
    VerifyFailed,
    Complete,
    OutOfService,
}

impl DriveState {
    pub fn as_str(self) -> &'static str {
        match self {
            DriveState::Idle => "idle",
            DriveState::Loading => "loading",
            DriveState::Recording => "recording",
            DriveState::Verifying => "verifying",
            DriveState::RecordFailed => "record_failed",
            DriveState::VerifyFailed => "verify_failed",
            DriveState::Complete => "complete",
            DriveState::OutOfService => "out_of_service",
        }
    }

    pub fn parse(s: &str) -> Option<DriveState> {
        Some(match s {
            "idle" => DriveState::Idle,
            "loading" => DriveState::Loading,
            "recording" => DriveState::Recording,
            "verifying" => DriveState::Verifying,
            "record_failed" => DriveState::RecordFailed,
            "verify_failed" => DriveState::VerifyFailed,
            "complete" => DriveState::Complete,
            "out_of_service" => DriveState::OutOfService,
            _ => return None,
        })
    }

    /// The transitions a drive can make. Results (complete, failed) stay shown until the next
    /// disc starts; a disc that never got written (robot or drive unavailable) goes back to idle.
    pub fn can_go(self, to: DriveState) -> bool {
        use DriveState::*;
        let resting = matches!(self, Idle | Complete | RecordFailed | VerifyFailed);
        match to {
            Loading => resting,
            // Without a robot a disc is recorded straight from rest.
            Recording => resting || self == Loading,
            // After a restart a written disc is verified again from rest.
            Verifying => resting || self == Recording,
            Complete | VerifyFailed => self == Verifying,
            RecordFailed => self == Recording,
            Idle => matches!(self, Loading | Recording | OutOfService) || resting,
            OutOfService => self != OutOfService,
        }
    }
}

/// What a state change is about.
#[derive(Debug, Clone, Copy, Default)]
pub struct About {
    pub job_id: Option<i64>,
    pub disc_id: Option<i64>,
}

fn now() -> String {
    use crate::clock::Clock;
    // Drive events are stamped with the system clock (to the nanosecond): they record what the
    // hardware did when, and the parallel test and the benchmark read burn overlaps from them.
    // Simulated clocks drive schedules, not drives.
    crate::clock::rfc3339(crate::clock::SystemClock.now())
}

async fn ensure_row(pool: &SqlitePool, drive: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO drive_states (name, updated_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
    )
    .bind(drive)
    .bind(now())
    .execute(pool)
    .await?;
    Ok(())
}

async fn current(pool: &SqlitePool, drive: &str) -> Result<DriveState> {
    ensure_row(pool, drive).await?;
    let (state,): (String,) = sqlx::query_as("SELECT state FROM drive_states WHERE name = ?")
        .bind(drive)
        .fetch_one(pool)
        .await?;
    DriveState::parse(&state)
        .ok_or_else(|| err!(Internal, "drive {drive} has unknown state {state}"))
}

/// Moves a drive to `to` and records the event. A transition the state machine does not have is
/// a bug in the caller and refused.
pub async fn set_state(
    pool: &SqlitePool,
    drive: &str,
    to: DriveState,
    about: About,
    detail: Option<&str>,
) -> Result<()> {
    let from = current(pool, drive).await?;
    if !from.can_go(to) {
        bail!(
            Internal,
            "刻录机 {drive} 不能从 {} 转到 {} (invalid drive state transition)",
            from.as_str(),
            to.as_str()
        );
    }
    let at = now();
    let mut tx = pool.begin().await?;
    sqlx::query("UPDATE drive_states SET state = ?, disc_id = COALESCE(?, disc_id), updated_at = ? WHERE name = ?")
        .bind(to.as_str())
        .bind(about.disc_id)
        .bind(&at)
        .bind(drive)
        .execute(&mut *tx)
        .await?;
    insert_event(&mut tx, drive, to, about, detail, &at).await?;
    tx.commit().await?;
    Ok(())
}

async fn insert_event(
    tx: &mut sqlx::SqliteConnection,
    drive: &str,
    state: DriveState,
    about: About,
    detail: Option<&str>,
    at: &str,
) -> Result<()> {
    sqlx::query("INSERT INTO drive_events (drive, state, job_id, disc_id, detail, at) VALUES (?, ?, ?, ?, ?, ?)")
        .bind(drive)
        .bind(state.as_str())
        .bind(about.job_id)
        .bind(about.disc_id)
        .bind(detail)
        .bind(at)
        .execute(tx)
        .await?;
    Ok(())
}

/// A disc verified: the drive shows complete, counts a good disc and its failure run ends.
pub async fn disc_good(pool: &SqlitePool, drive: &str, about: About) -> Result<()> {
    set_state(pool, drive, DriveState::Complete, about, None).await?;
    sqlx::query(
        "UPDATE drive_states SET good_discs = good_discs + 1, failures_in_row = 0 WHERE name = ?",
    )
    .bind(drive)
    .execute(pool)
    .await?;
    Ok(())
}

/// A disc failed (`RecordFailed` or `VerifyFailed`): counted bad; after `limit` failures in a
/// row the drive is taken out of service and an alert raised. Returns whether it was.
pub async fn disc_bad(
    pool: &SqlitePool,
    drive: &str,
    failed: DriveState,
    about: About,
    detail: &str,
    limit: u32,
) -> Result<bool> {
    set_state(pool, drive, failed, about, Some(detail)).await?;
    let (in_row,): (i64,) = sqlx::query_as(
        "UPDATE drive_states SET bad_discs = bad_discs + 1, failures_in_row = failures_in_row + 1
         WHERE name = ? RETURNING failures_in_row",
    )
    .bind(drive)
    .fetch_one(pool)
    .await?;
    if in_row < i64::from(limit) {
        return Ok(false);
    }
    let reason = format!(
        "连续 {in_row} 张光盘失败，已停用；最近一次：{detail} ({in_row} failures in a row, taken out of service)"
    );
    let at = now();
    let mut tx = pool.begin().await?;
    sqlx::query("UPDATE drive_states SET state = 'out_of_service', out_of_service_reason = ?, updated_at = ? WHERE name = ?")
        .bind(&reason)
        .bind(&at)
        .bind(drive)
        .execute(&mut *tx)
        .await?;
    insert_event(
        &mut tx,
        drive,
        DriveState::OutOfService,
        about,
        Some(&reason),
        &at,
    )
    .await?;
    sqlx::query("INSERT INTO alerts (kind, subject, message, created_at) VALUES ('drive_out_of_service', ?, ?, ?)")
        .bind(drive)
        .bind(format!("刻录机 {drive} {reason}"))
        .bind(&at)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    tracing::warn!(drive, in_row, "drive taken out of service");
    Ok(true)
}

/// Whether a drive is out of service (it then gets no work).
pub async fn out_of_service(pool: &SqlitePool, drive: &str) -> Result<Option<String>> {
    let row: Option<(Option<String>,)> =
        sqlx::query_as("SELECT out_of_service_reason FROM drive_states WHERE name = ? AND state = 'out_of_service'")
            .bind(drive)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|r| r.0.unwrap_or_default()))
}

/// An administrator returns a drive to service: idle, failure run reset, its alerts resolved.
pub async fn return_to_service(
    pool: &SqlitePool,
    names: &[String],
    drive: &str,
    by: &str,
) -> Result<()> {
    if !names.iter().any(|n| n == drive) {
        bail!(NotFound, "没有名为 {drive:?} 的刻录机 (no such drive)");
    }
    if out_of_service(pool, drive).await?.is_none() {
        bail!(
            FailedPrecondition,
            "刻录机 {drive} 没有停用，无需恢复 (the drive is in service)"
        );
    }
    let at = now();
    let mut tx = pool.begin().await?;
    sqlx::query("UPDATE drive_states SET state = 'idle', failures_in_row = 0, out_of_service_reason = NULL, updated_at = ? WHERE name = ?")
        .bind(&at)
        .bind(drive)
        .execute(&mut *tx)
        .await?;
    let detail = format!("由 {by} 恢复使用 (returned to service)");
    insert_event(
        &mut tx,
        drive,
        DriveState::Idle,
        About::default(),
        Some(&detail),
        &at,
    )
    .await?;
    sqlx::query("UPDATE alerts SET resolved_at = ?, resolved_by = ? WHERE kind = 'drive_out_of_service' AND subject = ? AND resolved_at IS NULL")
        .bind(&at)
        .bind(by)
        .bind(drive)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    tracing::info!(drive, by, "drive returned to service");
    Ok(())
}

/// After a restart: a drive shown loading, recording or verifying was interrupted; it rests
/// (the interrupted disc itself is handled by the job engine).
pub async fn recover(pool: &SqlitePool) -> Result<()> {
    let stuck: Vec<(String, Option<i64>)> = sqlx::query_as(
        "SELECT name, disc_id FROM drive_states WHERE state IN ('loading', 'recording', 'verifying')",
    )
    .fetch_all(pool)
    .await?;
    for (drive, disc_id) in stuck {
        let at = now();
        let mut tx = pool.begin().await?;
        sqlx::query("UPDATE drive_states SET state = 'idle', updated_at = ? WHERE name = ?")
            .bind(&at)
            .bind(&drive)
            .execute(&mut *tx)
            .await?;
        let about = About {
            job_id: None,
            disc_id,
        };
        insert_event(
            &mut tx,
            &drive,
            DriveState::Idle,
            about,
            Some("守护进程重启，中断的操作已复位 (interrupted by a restart)"),
            &at,
        )
        .await?;
        tx.commit().await?;
    }
    Ok(())
}

/// Marks the open alerts of `kind` about `subject` as dealt with by `by`.
pub async fn resolve_alerts(pool: &SqlitePool, kind: &str, subject: &str, by: &str) -> Result<()> {
    sqlx::query("UPDATE alerts SET resolved_at = ?, resolved_by = ? WHERE kind = ? AND subject = ? AND resolved_at IS NULL")
        .bind(now())
        .bind(by)
        .bind(kind)
        .bind(subject)
        .execute(pool)
        .await?;
    Ok(())
}

/// Raises an alert (e.g. a jammed robot).
pub async fn alert(pool: &SqlitePool, kind: &str, subject: &str, message: &str) -> Result<()> {
    sqlx::query("INSERT INTO alerts (kind, subject, message, created_at) VALUES (?, ?, ?, ?)")
        .bind(kind)
        .bind(subject)
        .bind(message)
        .bind(now())
        .execute(pool)
        .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct StateRow {
    state: String,
    disc_id: Option<i64>,
    good_discs: i64,
    bad_discs: i64,
    failures_in_row: i64,
    out_of_service_reason: Option<String>,
}

/// Every configured drive with its state and counters.
pub async fn list(engine: &crate::jobs::Engine) -> Result<Vec<Drive>> {
    let mut out = Vec::new();
    for drive in &engine.settings.drives {
        let info = drive.info();
        let row: Option<StateRow> = sqlx::query_as(
            "SELECT state, disc_id, good_discs, bad_discs, failures_in_row, out_of_service_reason FROM drive_states WHERE name = ?",
        )
        .bind(&info.name)
        .fetch_optional(&engine.pool)
        .await?;
        let row = row.unwrap_or(StateRow {
            state: "idle".into(),
            disc_id: None,
            good_discs: 0,
            bad_discs: 0,
            failures_in_row: 0,
            out_of_service_reason: None,
        });
        out.push(Drive {
            name: info.name,
            kind: info.kind.to_string(),
            medium: info.medium,
            capacity_bytes: info.capacity_bytes as i64,
            device: info.device.display().to_string(),
            state: row.state,
            good_discs: row.good_discs,
            bad_discs: row.bad_discs,
            failures_in_row: row.failures_in_row,
            out_of_service_reason: row.out_of_service_reason,
            disc_id: row.disc_id,
        });
    }
    Ok(out)
}

#[derive(sqlx::FromRow)]
struct EventRow {
    id: i64,
    drive: String,
    state: String,
    job_id: Option<i64>,
    disc_id: Option<i64>,
    detail: Option<String>,
    at: String,
}

/// A drive's state changes, the newest `limit` of them, oldest first.
pub async fn events(pool: &SqlitePool, drive: &str, limit: i64) -> Result<Vec<DriveEvent>> {
    let rows: Vec<EventRow> = sqlx::query_as(
        "SELECT id, drive, state, job_id, disc_id, detail, at FROM (
            SELECT * FROM drive_events WHERE drive = ? ORDER BY id DESC LIMIT ?) ORDER BY id",
    )
    .bind(drive)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| DriveEvent {
            id: r.id,
            drive: r.drive,
            state: r.state,
            job_id: r.job_id,
            disc_id: r.disc_id,
            detail: r.detail,
            at: r.at,
        })
        .collect())
}

#[derive(sqlx::FromRow)]
struct AlertRow {
    id: i64,
    kind: String,
    subject: String,
    message: String,
    created_at: String,
    resolved_at: Option<String>,
    resolved_by: Option<String>,
}

/// Alerts, open ones first, newest first.
pub async fn alerts(pool: &SqlitePool) -> Result<Vec<Alert>> {
    let rows: Vec<AlertRow> = sqlx::query_as(
        "SELECT id, kind, subject, message, created_at, resolved_at, resolved_by FROM alerts
         ORDER BY resolved_at IS NOT NULL, id DESC LIMIT 500",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Alert {
            id: r.id,
            kind: r.kind,
            subject: r.subject,
            message: r.message,
            created_at: r.created_at,
            resolved_at: r.resolved_at,
            resolved_by: r.resolved_by,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_machine_has_the_vendor_cycle_and_nothing_else() {
        use DriveState::*;
        let cycle = [Idle, Loading, Recording, Verifying, Complete, Loading];
        for pair in cycle.windows(2) {
            assert!(pair[0].can_go(pair[1]), "{:?} → {:?}", pair[0], pair[1]);
        }
        assert!(Recording.can_go(RecordFailed));
        assert!(Verifying.can_go(VerifyFailed));
        assert!(RecordFailed.can_go(OutOfService));
        assert!(OutOfService.can_go(Idle));
        assert!(!OutOfService.can_go(Recording));
        assert!(!Idle.can_go(Complete));
        assert!(!Loading.can_go(Verifying));
        assert!(!Complete.can_go(RecordFailed));
    }

    #[tokio::test]
    async fn two_failures_in_a_row_take_a_drive_out_and_an_admin_brings_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::db::open(dir.path()).await.unwrap();
        let about = About::default();
        let names = vec!["bd1".to_string()];
        let fail = |pool: SqlitePool| async move {
            set_state(&pool, "bd1", DriveState::Recording, about, None)
                .await
                .unwrap();
            disc_bad(&pool, "bd1", DriveState::RecordFailed, about, "写入错误", 2)
                .await
                .unwrap()
        };
        assert!(!fail(pool.clone()).await);
        // A good disc in between ends the run.
        set_state(&pool, "bd1", DriveState::Verifying, about, None)
            .await
            .unwrap();
        disc_good(&pool, "bd1", about).await.unwrap();
        assert!(!fail(pool.clone()).await);
        assert!(out_of_service(&pool, "bd1").await.unwrap().is_none());
        assert!(fail(pool.clone()).await);
        let reason = out_of_service(&pool, "bd1").await.unwrap().unwrap();
        assert!(reason.contains("连续 2 张"), "{reason}");
        let open = alerts(&pool).await.unwrap();
        assert_eq!(open.len(), 1);
        assert!(open[0].resolved_at.is_none() && open[0].subject == "bd1");
        // Out of service, the drive takes no disc.
        assert!(set_state(&pool, "bd1", DriveState::Recording, about, None)
            .await
            .is_err());
        let err = return_to_service(&pool, &names, "bd9", "admin")
            .await
            .unwrap_err();
        assert_eq!(err.kind, crate::error::ErrorKind::NotFound);
        return_to_service(&pool, &names, "bd1", "admin")
            .await
            .unwrap();
        let err = return_to_service(&pool, &names, "bd1", "admin")
            .await
            .unwrap_err();
        assert_eq!(err.kind, crate::error::ErrorKind::FailedPrecondition);
        let (good, bad, in_row, state): (i64, i64, i64, String) = sqlx::query_as(
            "SELECT good_discs, bad_discs, failures_in_row, state FROM drive_states WHERE name = 'bd1'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!((good, bad, in_row, state.as_str()), (1, 3, 0, "idle"));
        assert_eq!(
            alerts(&pool).await.unwrap()[0].resolved_by.as_deref(),
            Some("admin")
        );
        let states: Vec<String> = events(&pool, "bd1", 100)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.state)
            .collect();
        assert_eq!(states.first().map(String::as_str), Some("recording"));
        assert_eq!(states.last().map(String::as_str), Some("idle"));
        assert!(states.contains(&"out_of_service".to_string()));
    }
}
