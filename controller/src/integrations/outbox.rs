//! The transactional outbox: messages to the platforms are written in the same SQLite
//! transaction as the catalog change that causes them, so a committed change always has its
//! message and a rolled-back one never does.

use serde::Serialize;
use sqlx::{FromRow, SqliteConnection, SqlitePool};
use time::OffsetDateTime;
use witness_schemas::integration::{MessageState, OutboxMessage};

use crate::clock::{rfc3339, CHINA};
use crate::error::Result;
use crate::{bail, err};

/// A message to be written into the outbox.
#[derive(Debug)]
pub struct NewMessage<'a> {
    pub target: &'a str,
    /// The exchange's name (`Exchange::as_str`, or the SMS notice kind).
    pub exchange: &'a str,
    /// Unique over all messages; a second message with the same key is not written, so
    /// enqueuing is itself idempotent.
    pub idempotency_key: String,
    pub project_number: Option<&'a str>,
    pub schema_version: &'a str,
    /// The facts, in our own terms; the target's adapter maps them when it sends.
    pub payload: serde_json::Value,
}

/// Writes a message inside the caller's transaction (`&mut *tx`). Returns its id, or `None`
/// when a message with the same idempotency key already exists.
pub async fn enqueue(
    conn: &mut SqliteConnection,
    message: NewMessage<'_>,
    now: OffsetDateTime,
) -> Result<Option<i64>> {
    let now = rfc3339(now.to_offset(CHINA));
    let inserted = sqlx::query(
        "INSERT INTO outbox (target, exchange, idempotency_key, payload, schema_version, project_number, \
         state, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?) \
         ON CONFLICT (idempotency_key) DO NOTHING",
    )
    .bind(message.target)
    .bind(message.exchange)
    .bind(&message.idempotency_key)
    .bind(message.payload.to_string())
    .bind(message.schema_version)
    .bind(message.project_number)
    .bind(&now)
    .bind(&now)
    .execute(&mut *conn)
    .await?;
    Ok((inserted.rows_affected() == 1).then(|| inserted.last_insert_rowid()))
}

/// The delay before attempt `attempts + 1`: `initial · 2^(attempts−1)`, capped at `max`, with
/// "equal jitter" (half fixed, half random) so that messages failing together do not all come
/// back in the same second, yet none comes back sooner than half its step.
pub fn backoff(attempts: u32, initial_seconds: u64, max_seconds: u64) -> time::Duration {
    let doubling = attempts.saturating_sub(1).min(30);
    let step = initial_seconds
        .max(1)
        .saturating_mul(1u64 << doubling)
        .min(max_seconds.max(1));
    let mut random = [0u8; 4];
    // Without randomness the retry is merely less spread out; not worth failing a delivery.
    let _ = getrandom::fill(&mut random);
    let fraction = u32::from_le_bytes(random) as f64 / u32::MAX as f64;
    let millis = (step as f64 * 1000.0 * (0.5 + 0.5 * fraction)) as i64;
    time::Duration::milliseconds(millis)
}

#[derive(Debug, FromRow)]
pub(crate) struct MessageRow {
    pub id: i64,
    pub target: String,
    pub exchange: String,
    pub idempotency_key: String,
    pub project_number: Option<String>,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: String,
    pub last_error: Option<String>,
    pub fault: Option<String>,
    pub created_at: String,
    pub sent_at: Option<String>,
    pub acked_at: Option<String>,
}

pub(crate) const MESSAGE_SELECT: &str =
    "SELECT id, target, exchange, idempotency_key, project_number, state, attempts, next_attempt_at, \
     last_error, fault, created_at, sent_at, acked_at FROM outbox";

impl MessageRow {
    pub fn into_api(self) -> OutboxMessage {
        OutboxMessage {
            id: self.id,
            target: self.target,
            exchange: self.exchange,
            idempotency_key: self.idempotency_key,
            project_number: self.project_number,
            state: MessageState::parse(&self.state).unwrap_or(MessageState::Pending),
            attempts: self.attempts,
            next_attempt_at: self.next_attempt_at,
            last_error: self.last_error,
            fault: self.fault,
            created_at: self.created_at,
            sent_at: self.sent_at,
            acked_at: self.acked_at,
        }
    }
}

/// A target's messages, newest first, optionally of one state.
pub async fn messages(
    pool: &SqlitePool,
    target: &str,
    state: Option<MessageState>,
    limit: i64,
) -> Result<Vec<OutboxMessage>> {
    let rows: Vec<MessageRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{MESSAGE_SELECT} WHERE target = ?1 AND (?2 IS NULL OR state = ?2) ORDER BY id DESC LIMIT ?3"
    )))
    .bind(target)
    .bind(state.map(MessageState::as_str))
    .bind(limit.clamp(1, 10_000))
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(MessageRow::into_api).collect())
}

pub async fn message(pool: &SqlitePool, id: i64) -> Result<OutboxMessage> {
    let row: MessageRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{MESSAGE_SELECT} WHERE id = ?"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| err!(NotFound, "消息 {id} 不存在 (no such outbox message)"))?;
    Ok(row.into_api())
}

/// Manual retry (人工重发) of a dead letter, or of a waiting message now instead of at its
/// next attempt: the attempt count starts again; the idempotency key stays, so a message the
/// peer did receive after all is not duplicated there.
pub async fn retry(pool: &SqlitePool, id: i64, now: OffsetDateTime) -> Result<OutboxMessage> {
    let current = message(pool, id).await?;
    if current.state == MessageState::Acked {
        bail!(
            FailedPrecondition,
            "消息 {id} 已被对方确认，无需重发 (already acknowledged)"
        );
    }
    sqlx::query(
        "UPDATE outbox SET state = CASE WHEN state = 'dead' THEN CASE WHEN sent_at IS NULL THEN 'pending' ELSE 'sent' END ELSE state END, \
         attempts = 0, fault = NULL, next_attempt_at = ? WHERE id = ? AND state != 'acked'",
    )
    .bind(rfc3339(now.to_offset(CHINA)))
    .bind(id)
    .execute(pool)
    .await?;
    tracing::info!(message = id, "outbox message queued for a manual retry");
    message(pool, id).await
}

/// Counts for the status page.
#[derive(Debug, Default, Serialize, FromRow)]
pub struct Counts {
    pub waiting: i64,
    pub dead: i64,
    pub acked: i64,
    pub last_success_at: Option<String>,
}

pub async fn counts(pool: &SqlitePool, target: &str) -> Result<Counts> {
    Ok(sqlx::query_as(
        "SELECT COALESCE(SUM(state IN ('pending', 'sent')), 0) AS waiting, COALESCE(SUM(state = 'dead'), 0) AS dead, \
         COALESCE(SUM(state = 'acked'), 0) AS acked, MAX(acked_at) AS last_success_at FROM outbox WHERE target = ?",
    )
    .bind(target)
    .fetch_one(pool)
    .await?)
}

/// The latest failures: dead letters and waiting messages that have an error.
pub async fn failures(pool: &SqlitePool, target: &str, limit: i64) -> Result<Vec<OutboxMessage>> {
    let rows: Vec<MessageRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{MESSAGE_SELECT} WHERE target = ? AND state IN ('pending', 'sent', 'dead') AND last_error IS NOT NULL \
         ORDER BY id DESC LIMIT ?"
    )))
    .bind(target)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(MessageRow::into_api).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_equal_jitter() {
        for attempts in 1..40 {
            let step = (10u64 << (attempts - 1).min(30)).min(3600) as f64;
            let delay = backoff(attempts, 10, 3600).as_seconds_f64();
            assert!(
                delay >= step * 0.5 - 0.001 && delay <= step + 0.001,
                "{attempts}: {delay}"
            );
        }
    }
}
