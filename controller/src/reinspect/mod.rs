//! Re-inspection (复检, DA/T 38 style): where each kept copy is (shelf / box), when it is due for
//! a re-read, the re-read itself against the digests in the catalog, and the migrate / re-burn
//! job a failed re-read raises.

pub mod cli;
#[cfg(test)]
mod tests;
pub mod web;

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use sqlx::FromRow;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use witness_drivers::burner::BurnedDisc;
use witness_schemas::api::Disc;
use witness_schemas::schedule::{Inspection, InspectionDue};

use crate::catalog::{DiscRow, DISC_SELECT};
use crate::clock::rfc3339;
use crate::error::Result;
use crate::jobs::{reread, BackupOptions, Engine, JobOrigin};
use crate::{bail, err, verify};

/// The priority of a migrate / re-burn job: above routine work, a copy is at risk.
const REBURN_PRIORITY: i64 = 8;

pub async fn disc_row(engine: &Engine, disc_id: i64) -> Result<DiscRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{DISC_SELECT} WHERE d.id = ?")))
        .bind(disc_id)
        .fetch_optional(&engine.pool)
        .await?
        .ok_or_else(|| err!(NotFound, "光盘/副本 {disc_id} 不存在 (unknown copy)"))
}

/// Records where a copy is kept (e.g. A柜-3层-12盒).
pub async fn set_shelf(engine: &Engine, disc_id: i64, shelf: &str) -> Result<Disc> {
    let shelf = shelf.trim();
    if shelf.chars().count() > 100 {
        bail!(
            InvalidArgument,
            "存放位置过长（最多 100 个字符）(shelf is too long)"
        );
    }
    if shelf.chars().any(char::is_control) {
        bail!(
            InvalidArgument,
            "存放位置不能含控制字符 (shelf has control characters)"
        );
    }
    disc_row(engine, disc_id).await?;
    sqlx::query("UPDATE discs SET shelf = ? WHERE id = ?")
        .bind(shelf)
        .bind(disc_id)
        .execute(&engine.pool)
        .await?;
    crate::search::notify(&engine.pool, crate::search::Change::Disc(disc_id));
    Ok(disc_row(engine, disc_id).await?.to_api())
}

#[derive(Debug, Clone, FromRow)]
struct InspectionRow {
    id: i64,
    disc_id: i64,
    project_number: String,
    result: String,
    problems: i64,
    detail: String,
    started_at: String,
    finished_at: Option<String>,
    reburn_job_id: Option<i64>,
}

impl InspectionRow {
    fn to_api(&self) -> Inspection {
        Inspection {
            id: self.id,
            disc_id: self.disc_id,
            project_number: self.project_number.clone(),
            result: self.result.clone(),
            problems: self.problems,
            detail: self.detail.clone(),
            started_at: self.started_at.clone(),
            finished_at: self.finished_at.clone(),
            reburn_job_id: self.reburn_job_id,
        }
    }
}

const INSPECTION_SELECT: &str =
    "SELECT i.id, i.disc_id, p.number AS project_number, i.result, i.problems, i.detail,
        i.started_at, i.finished_at, i.reburn_job_id
    FROM inspections i JOIN discs d ON d.id = i.disc_id JOIN jobs j ON j.id = d.job_id
    JOIN projects p ON p.id = j.project_id";

async fn inspection(engine: &Engine, id: i64) -> Result<Inspection> {
    let row: InspectionRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{INSPECTION_SELECT} WHERE i.id = ?"
    )))
    .bind(id)
    .fetch_one(&engine.pool)
    .await?;
    Ok(row.to_api())
}

/// The latest re-reads, newest first.
pub async fn list(engine: &Engine) -> Result<Vec<Inspection>> {
    let rows: Vec<InspectionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{INSPECTION_SELECT} ORDER BY i.id DESC LIMIT 500"
    )))
    .fetch_all(&engine.pool)
    .await?;
    Ok(rows.iter().map(InspectionRow::to_api).collect())
}

/// How a copy can be re-read without a person.
enum Reader {
    Image(Arc<dyn witness_drivers::burner::Burner>, PathBuf),
    Folder(PathBuf),
}

fn reader(engine: &Engine, disc: &DiscRow) -> Result<Reader> {
    if disc.kind == "disk" {
        return Ok(Reader::Folder(PathBuf::from(&disc.location)));
    }
    let drive = engine
        .settings
        .drives
        .iter()
        .find(|d| d.info().name == disc.target)
        .ok_or_else(|| {
            err!(
                FailedPrecondition,
                "光盘 {} 的刻录机 {} 已不在配置中，无法复检",
                disc.id,
                disc.target
            )
        })?;
    if drive.info().kind != "virtual" {
        // A real disc is on a shelf: re-reading it needs the archivist to put it in a drive,
        // and that hand-off (a task "insert disc X in drive Y" and its confirmation) is not
        // built yet.
        bail!(
            FailedPrecondition,
            "实体光盘的复检需要人工放入光盘，尚不支持（光盘 {}，存放位置 {}）(re-reading a real disc is not supported yet)",
            disc.id,
            if disc.shelf.is_empty() { "未登记" } else { &disc.shelf }
        );
    }
    Ok(Reader::Image(
        Arc::clone(drive),
        PathBuf::from(&disc.location),
    ))
}

/// Re-reads one kept copy, records the result, and on failure raises a re-burn job.
pub async fn inspect(engine: &Arc<Engine>, disc_id: i64) -> Result<Inspection> {
    let disc = disc_row(engine, disc_id).await?;
    if disc.status != "verified" {
        bail!(
            FailedPrecondition,
            "只有已校验的副本才能复检：光盘/副本 {disc_id} 的状态是 {} (only verified copies are re-inspected)",
            disc.status
        );
    }
    let reader = reader(engine, &disc)?;
    let payload = reread::expected_payload(engine, &disc).await?;
    let inserted = sqlx::query(
        "INSERT INTO inspections (disc_id, result, started_at) VALUES (?, 'running', ?)",
    )
    .bind(disc_id)
    .bind(rfc3339(engine.clock.now()))
    .execute(&engine.pool)
    .await;
    let id = match inserted {
        Ok(done) => done.last_insert_rowid(),
        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
            bail!(
                AlreadyExists,
                "光盘/副本 {disc_id} 正在复检 (a re-read of this copy is running)"
            )
        }
        Err(e) => return Err(e.into()),
    };
    let outcome = tokio::task::spawn_blocking(move || -> Result<Vec<String>> {
        let done = AtomicU64::new(0);
        match reader {
            Reader::Folder(root) => verify::reread_dir(&root, &payload, &done),
            Reader::Image(drive, location) => {
                let mut disc = drive.open_disc(&BurnedDisc { location })?;
                verify::reread_disc(&mut *disc, &payload, &done)
            }
        }
    })
    .await
    .map_err(|e| err!(Internal, "re-read thread failed: {e}"))?;
    // An unreadable copy is a failed re-read with one problem, not an error of the request.
    let problems = match outcome {
        Ok(problems) => problems,
        Err(e) => vec![e.message],
    };
    let result = if problems.is_empty() {
        "passed"
    } else {
        "failed"
    };
    let shown: Vec<&str> = problems.iter().take(5).map(String::as_str).collect();
    sqlx::query(
        "UPDATE inspections SET result = ?, problems = ?, detail = ?, finished_at = ? WHERE id = ?",
    )
    .bind(result)
    .bind(problems.len() as i64)
    .bind(shown.join("；"))
    .bind(rfc3339(engine.clock.now()))
    .bind(id)
    .execute(&engine.pool)
    .await?;
    tracing::info!(
        disc_id,
        inspection = id,
        result,
        problems = problems.len(),
        "copy re-inspected"
    );
    // The disc's search item shows its inspection state.
    crate::search::notify(&engine.pool, crate::search::Change::Disc(disc_id));
    if result == "failed" {
        raise_reburn(engine, id).await?;
    }
    inspection(engine, id).await
}

/// Makes the migrate / re-burn job of a failed re-read: a fresh backup of the project, which
/// produces new verified copies. If the project has a job already running, the re-burn is
/// raised again by a later tick.
async fn raise_reburn(engine: &Arc<Engine>, inspection_id: i64) -> Result<()> {
    let row: InspectionRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{INSPECTION_SELECT} WHERE i.id = ?"
    )))
    .bind(inspection_id)
    .fetch_one(&engine.pool)
    .await?;
    let options = BackupOptions {
        priority: Some(REBURN_PRIORITY),
        origin: JobOrigin::Reburn,
        ..BackupOptions::default()
    };
    match engine.submit(&row.project_number, options).await {
        Ok(job) => {
            sqlx::query("UPDATE inspections SET reburn_job_id = ? WHERE id = ?")
                .bind(job.id)
                .bind(inspection_id)
                .execute(&engine.pool)
                .await?;
            tracing::warn!(
                disc_id = row.disc_id,
                job_id = job.id,
                "re-inspection failed: re-burn job raised"
            );
            Ok(())
        }
        Err(e) => {
            tracing::warn!(disc_id = row.disc_id, %e, "re-burn job not raised yet");
            Ok(())
        }
    }
}

/// After a restart: a re-read the crash interrupted is recorded as such (it proved nothing).
pub async fn recover(engine: &Engine) -> Result<()> {
    sqlx::query(
        "UPDATE inspections SET result = 'interrupted', finished_at = ? WHERE result = 'running'",
    )
    .bind(rfc3339(engine.clock.now()))
    .execute(&engine.pool)
    .await?;
    Ok(())
}

#[derive(Debug, FromRow)]
struct KeptCopy {
    id: i64,
    project_number: String,
    kind: String,
    shelf: String,
    verified_at: Option<String>,
    created_at: String,
}

/// Every verified copy with its next re-read date. The cycle is `[reinspect] cycle_days`; it
/// tightens to `tight_cycle_days` once a copy's error count grew (its last re-read found more
/// problems than the one before, or failed).
pub async fn due(engine: &Engine) -> Result<Vec<InspectionDue>> {
    let config = &engine.settings.config.reinspect;
    let now = engine.clock.now();
    let copies: Vec<KeptCopy> = sqlx::query_as(
        "SELECT d.id, p.number AS project_number, d.kind, d.shelf, d.verified_at, d.created_at
         FROM discs d JOIN jobs j ON j.id = d.job_id JOIN projects p ON p.id = j.project_id
         WHERE d.status = 'verified' ORDER BY d.id",
    )
    .fetch_all(&engine.pool)
    .await?;
    let mut out = Vec::with_capacity(copies.len());
    for copy in copies {
        let recent: Vec<(String, i64, Option<String>)> = sqlx::query_as(
            "SELECT result, problems, finished_at FROM inspections
             WHERE disc_id = ? AND result IN ('passed', 'failed') ORDER BY id DESC LIMIT 2",
        )
        .bind(copy.id)
        .fetch_all(&engine.pool)
        .await?;
        let last = recent.first();
        let tightened = match (recent.first(), recent.get(1)) {
            (Some((result, _, _)), _) if result == "failed" => true,
            (Some((_, now_problems, _)), Some((_, before, _))) => now_problems > before,
            _ => false,
        };
        let base_text = last
            .and_then(|l| l.2.clone())
            .or(copy.verified_at.clone())
            .unwrap_or(copy.created_at.clone());
        let base = OffsetDateTime::parse(&base_text, &Rfc3339)
            .map_err(|e| err!(Internal, "stored time {base_text:?}: {e}"))?;
        let days = if tightened {
            config.tight_cycle_days
        } else {
            config.cycle_days
        };
        let due_at = base + Duration::days(i64::from(days));
        out.push(InspectionDue {
            disc_id: copy.id,
            project_number: copy.project_number,
            kind: copy.kind,
            shelf: copy.shelf,
            last_inspected: last.and_then(|l| l.2.clone()),
            last_result: last.map(|l| l.0.clone()),
            due_at: rfc3339(due_at),
            tightened,
            overdue: due_at <= now,
        });
    }
    Ok(out)
}

/// The periodic part: re-reads overdue copies that need no person (disk copies and virtual
/// discs; real discs stay listed as due), and raises re-burn jobs that could not be made when
/// their re-read failed.
pub async fn tick(engine: &Arc<Engine>) -> Result<()> {
    let pending: Vec<(i64,)> = sqlx::query_as(
        "SELECT i.id FROM inspections i WHERE i.result = 'failed' AND i.reburn_job_id IS NULL
           AND i.id = (SELECT MAX(id) FROM inspections WHERE disc_id = i.disc_id)",
    )
    .fetch_all(&engine.pool)
    .await?;
    for (id,) in pending {
        raise_reburn(engine, id).await?;
    }
    // A copy whose last re-read failed has been re-burned; it is not re-read again by itself.
    let overdue = due(engine)
        .await?
        .into_iter()
        .filter(|d| d.overdue && d.last_result.as_deref() != Some("failed"));
    for copy in overdue {
        let Ok(disc) = disc_row(engine, copy.disc_id).await else {
            continue;
        };
        if reader(engine, &disc).is_err() {
            continue;
        }
        if let Err(e) = inspect(engine, copy.disc_id).await {
            tracing::warn!(disc_id = copy.disc_id, %e, "scheduled re-inspection could not run");
        }
    }
    Ok(())
}
