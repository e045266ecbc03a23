//! The gate's durable event log: SQLite in WAL mode with synchronous=FULL, one row per event
//! with a gap-free sequence number, and the small state the agent must keep across power loss
//! (the log's id, how far the controller acknowledged, the last expert list).

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use witness_schemas::gate::{EventKind, ExpertList, GateEvent};

/// The log of one gate.
#[derive(Clone)]
pub struct EventLog {
    pool: SqlitePool,
    log_id: String,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    sequence INTEGER PRIMARY KEY,
    at       TEXT NOT NULL,
    body     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS state (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
";

fn new_log_id() -> anyhow::Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl EventLog {
    /// Opens (creating) `<dir>/gate.db`.
    pub async fn open(dir: &Path) -> anyhow::Result<EventLog> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("gate.db");
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: with WAL, NORMAL may lose the last commits on power loss, and a badge whose
            // door already opened is an acknowledged event.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));
        // One writer connection: appends are serialised anyway, and one connection keeps the
        // sequence assignment (MAX + 1 inside the insert) free of races.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .with_context(|| format!("opening {}", path.display()))?;
        sqlx::raw_sql(SCHEMA).execute(&pool).await?;
        let log_id = match get(&pool, "log_id").await? {
            Some(id) => id,
            None => {
                let id = new_log_id()?;
                set(&pool, "log_id", &id).await?;
                id
            }
        };
        Ok(EventLog { pool, log_id })
    }

    pub fn log_id(&self) -> &str {
        &self.log_id
    }

    /// Appends an event and returns its sequence once it is committed to disk.
    pub async fn append(&self, at: &str, kind: &EventKind) -> anyhow::Result<i64> {
        let body = serde_json::to_string(kind)?;
        let (sequence,): (i64,) = sqlx::query_as(
            "INSERT INTO events (sequence, at, body) SELECT COALESCE(MAX(sequence), 0) + 1, ?, ? FROM events RETURNING sequence",
        )
        .bind(at)
        .bind(body)
        .fetch_one(&self.pool)
        .await?;
        Ok(sequence)
    }

    /// Appends many events in one transaction (benchmarks and tests that need a backlog).
    pub async fn append_many(&self, events: &[(String, EventKind)]) -> anyhow::Result<i64> {
        let mut tx = self.pool.begin().await?;
        let mut last = 0;
        for (at, kind) in events {
            let (sequence,): (i64,) = sqlx::query_as(
                "INSERT INTO events (sequence, at, body) SELECT COALESCE(MAX(sequence), 0) + 1, ?, ? FROM events RETURNING sequence",
            )
            .bind(at)
            .bind(serde_json::to_string(kind)?)
            .fetch_one(&mut *tx)
            .await?;
            last = sequence;
        }
        tx.commit().await?;
        Ok(last)
    }

    /// Events after `after`, oldest first, at most `limit` of them and about `max_bytes`.
    pub async fn after(
        &self,
        after: i64,
        limit: i64,
        max_bytes: usize,
    ) -> anyhow::Result<Vec<GateEvent>> {
        let rows: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT sequence, at, body FROM events WHERE sequence > ? ORDER BY sequence LIMIT ?",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut events = Vec::with_capacity(rows.len());
        let mut bytes = 0;
        for (sequence, at, body) in rows {
            bytes += body.len();
            if bytes > max_bytes && !events.is_empty() {
                break;
            }
            let kind: EventKind = serde_json::from_str(&body)
                .with_context(|| format!("event {sequence} in the log"))?;
            events.push(GateEvent { sequence, at, kind });
        }
        Ok(events)
    }

    pub async fn last_sequence(&self) -> anyhow::Result<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(sequence), 0) FROM events")
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }

    /// How far the controller acknowledged.
    pub async fn acked(&self) -> anyhow::Result<i64> {
        Ok(get(&self.pool, "acked_through")
            .await?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    pub async fn set_acked(&self, through: i64) -> anyhow::Result<()> {
        set(&self.pool, "acked_through", &through.to_string()).await
    }

    /// The last expert list received, so a gate restarted while offline still decides.
    pub async fn expert_list(&self) -> anyhow::Result<Option<ExpertList>> {
        match get(&self.pool, "expert_list").await? {
            Some(text) => Ok(Some(serde_json::from_str(&text)?)),
            None => Ok(None),
        }
    }

    pub async fn set_expert_list(&self, list: &ExpertList) -> anyhow::Result<()> {
        set(&self.pool, "expert_list", &serde_json::to_string(list)?).await
    }

    /// Every event (tests and the power-loss check).
    pub async fn all(&self) -> anyhow::Result<Vec<GateEvent>> {
        self.after(0, i64::MAX, usize::MAX).await
    }
}

async fn get(pool: &SqlitePool, key: &str) -> anyhow::Result<Option<String>> {
    let row: Option<(String,)> = sqlx::query_as("SELECT value FROM state WHERE key = ?")
        .bind(key)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|(v,)| v))
}

async fn set(pool: &SqlitePool, key: &str, value: &str) -> anyhow::Result<()> {
    sqlx::query("INSERT INTO state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
        .bind(key)
        .bind(value)
        .execute(pool)
        .await?;
    Ok(())
}
