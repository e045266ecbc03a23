//! Job priority and admission: which queued job starts next when a place frees up, with
//! ageing so that low-priority jobs are never starved.

use sqlx::SqlitePool;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::bail;
use crate::error::Result;

/// Who asks for a backup, and how urgently.
#[derive(Debug, Clone, Default)]
pub struct BackupOptions {
    /// 0 … 9; `None` is the default, 5.
    pub priority: Option<i64>,
    pub origin: JobOrigin,
    /// The schedule run making this job (one job per project and run).
    pub schedule_run_id: Option<i64>,
    /// Optical copies for this job (a batch row's 光盘份数); `None` follows `[copies]`.
    pub copies_optical: Option<i64>,
}

/// Why a job exists (stored in `jobs.origin`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum JobOrigin {
    #[default]
    Manual,
    Schedule,
    Batch,
    Reburn,
}

impl JobOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            JobOrigin::Manual => "manual",
            JobOrigin::Schedule => "schedule",
            JobOrigin::Batch => "batch",
            JobOrigin::Reburn => "reburn",
        }
    }
}

pub const DEFAULT_PRIORITY: i64 = 5;
pub const MAX_PRIORITY: i64 = 9;

/// Checks a requested priority (0 … 9).
pub fn check_priority(priority: i64) -> Result<i64> {
    if !(0..=MAX_PRIORITY).contains(&priority) {
        bail!(
            InvalidArgument,
            "优先级 {priority} 无效：应为 0（最低）到 {MAX_PRIORITY}（最高）的整数 (priority must be 0..=9)"
        );
    }
    Ok(priority)
}

/// The ageing rule: a queued job's effective priority is its priority plus one for every
/// `ageing_minutes` it has waited. A priority-0 job therefore overtakes a fresh priority-9 job
/// after 10 × ageing_minutes (five hours by default), so nothing waits forever.
pub fn effective_priority(priority: i64, waited: time::Duration, ageing_minutes: u32) -> i64 {
    let minutes = waited.whole_minutes().max(0);
    priority + minutes / i64::from(ageing_minutes.max(1))
}

/// Queued jobs in the order admission starts them: effective priority (priority plus ageing)
/// first, then the older job.
pub async fn admission_order(
    pool: &SqlitePool,
    now: OffsetDateTime,
    ageing_minutes: u32,
) -> Result<Vec<i64>> {
    let rows: Vec<(i64, i64, String)> =
        sqlx::query_as("SELECT id, priority, created_at FROM jobs WHERE status = 'queued'")
            .fetch_all(pool)
            .await?;
    let mut ranked: Vec<(i64, String, i64)> = rows
        .into_iter()
        .map(|(id, priority, created_at)| {
            let waited = OffsetDateTime::parse(&created_at, &Rfc3339)
                .map(|created| now - created)
                .unwrap_or(time::Duration::ZERO);
            (
                effective_priority(priority, waited, ageing_minutes),
                created_at,
                id,
            )
        })
        .collect();
    // RFC 3339 strings in one offset sort like the instants they name.
    ranked.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then_with(|| a.1.cmp(&b.1))
            .then(a.2.cmp(&b.2))
    });
    Ok(ranked.into_iter().map(|r| r.2).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;
    use time::Duration;

    #[test]
    fn waiting_raises_priority_one_step_per_ageing_period() {
        assert_eq!(effective_priority(5, Duration::minutes(29), 30), 5);
        assert_eq!(effective_priority(5, Duration::minutes(30), 30), 6);
        assert_eq!(effective_priority(0, Duration::hours(5), 30), 10);
        // A clock set back does not lower a priority.
        assert_eq!(effective_priority(3, Duration::minutes(-90), 30), 3);
        assert!(check_priority(10).is_err());
        assert!(check_priority(-1).is_err());
        assert_eq!(check_priority(0).unwrap(), 0);
    }

    /// Queued jobs: an old low-priority one, a newer urgent one and two newer normal ones (a
    /// running job is not in the order). Priority decides first, then age; a job that waited
    /// long enough overtakes urgent jobs queued after it.
    #[tokio::test]
    async fn admission_orders_by_priority_then_age_and_never_starves() {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::db::open(dir.path()).await.unwrap();
        sqlx::query("INSERT INTO projects (id, number, name, category, opening, created_at) VALUES (1, 'P1', 'p', 'land', '2026-01-01T09:00:00+08:00', '2026-01-01T09:00:00+08:00')")
            .execute(&pool).await.unwrap();
        let t0 = datetime!(2026-03-01 08:00 +8);
        let add = |id: i64, priority: i64, created: OffsetDateTime, status: &'static str| {
            let pool = pool.clone();
            async move {
                sqlx::query("INSERT INTO jobs (id, project_id, status, step, medium, capacity, part_size, copies_optical, copies_disk, package_uuid, created_at, updated_at, priority) VALUES (?, 1, ?, 'collect', 'bd-r', 1, 1, 1, 1, 'u', ?, ?, ?)")
                    .bind(id).bind(status).bind(crate::clock::rfc3339(created)).bind(crate::clock::rfc3339(created)).bind(priority)
                    .execute(&pool).await.unwrap();
            }
        };
        add(1, 0, t0, "queued").await;
        add(2, 9, t0 + Duration::hours(1), "queued").await;
        add(3, 5, t0 + Duration::hours(1), "queued").await;
        add(4, 9, t0, "running").await;
        add(5, 5, t0 + Duration::hours(1), "queued").await;
        let at = |t| admission_order(&pool, t, 30);
        assert_eq!(at(t0 + Duration::hours(1)).await.unwrap(), vec![2, 3, 5, 1]);
        // Jobs that wait together age together, so their order stays; after 4 h job 1 counts
        // 0 + 8 against 9 + 6 for job 2.
        assert_eq!(at(t0 + Duration::hours(4)).await.unwrap(), vec![2, 3, 5, 1]);
        // What ageing guarantees is against new arrivals: after 5 h job 1 counts 10 and goes
        // before an urgent (9) job queued just now.
        add(6, 9, t0 + Duration::hours(5), "queued").await;
        let order = at(t0 + Duration::hours(5)).await.unwrap();
        let pos = |id| order.iter().position(|&j| j == id).unwrap();
        assert!(
            pos(1) < pos(6),
            "the job waiting 5 h goes before a fresh urgent one: {order:?}"
        );
    }
}
