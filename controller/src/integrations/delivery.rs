//! The delivery worker of one target: sends due outbox messages one at a time in id order
//! (a failed message of an ordered exchange holds back the later ones of that exchange),
//! records every outcome in the same row before the next send, backs off with jitter, and
//! gives up into the dead letters after the configured attempts.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sqlx::{SqliteConnection, SqlitePool};
use time::OffsetDateTime;
use witness_schemas::integration::{
    validate_message, HttpTargetConfig, IDEMPOTENCY_HEADER, REPLY, REPLY_ACCEPTED, REPLY_DUPLICATE,
    REPLY_REFUSED,
};

use super::outbox::backoff;
use crate::clock::{rfc3339, Clock, CHINA};
use crate::err;
use crate::error::Result;

/// Messages looked at per pass; the rest wait for the next pass.
const BATCH: i64 = 500;

/// What one pass did, for tests and the benchmark.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassStats {
    pub attempted: usize,
    pub acked: usize,
    pub failed: usize,
    pub dead: usize,
}

/// A payload ready to send: where, what, and the codes the reconciliation report groups it by.
#[derive(Debug)]
pub struct Mapped {
    /// Appended to the target's `base_url`: `<base_url>/<path>`.
    pub path: String,
    /// The wire payload, already valid by the exchange's schema.
    pub payload: Value,
    pub unified_deal_code: Option<String>,
    pub bid_section_code: Option<String>,
}

/// Why a message cannot be mapped: our own data is wrong (本系统数据错误). Retrying will not
/// help until someone fixes the data; the message becomes a dead letter marked `ours`.
#[derive(Debug)]
pub struct OurFault(pub String);

/// What the target said about a message, as its adapter reads the reply.
#[derive(Debug)]
pub enum Reply {
    /// Received; `duplicate` when the target already had it (a resend it de-duplicated).
    Accepted {
        duplicate: bool,
        receipt: Option<String>,
    },
    /// Refused: retrying the same message cannot help.
    Refused(String),
}

/// A future an adapter returns (the trait is used as `dyn Adapter`).
pub type AdapterFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// The ONE place per target that knows its wire format: which exchanges it has, how our
/// facts become a payload (validated against the schema before it leaves), how its replies
/// read, and what an acknowledgement changes in the catalog. Swapping in the official field
/// mapping of a target is a change of its adapter; the core (outbox, ordering, retries,
/// back-off, probe, dead letters, reconciliation) stays as it is.
pub trait Adapter: Send + Sync {
    /// The target name in the outbox and the API (`expert_library`, `supervision_platform`…).
    fn target(&self) -> &'static str;

    /// The target in Chinese, for error messages (`专家库`).
    fn label(&self) -> &'static str;

    /// Where the target is and how hard to try.
    fn transport(&self) -> &HttpTargetConfig;

    /// `None`: not an exchange of this target (the message is a dead letter, our fault).
    /// `Some(true)`: its messages must arrive in the order they were written, so a failed one
    /// holds back the later ones of the same exchange.
    fn ordered(&self, exchange: &str) -> Option<bool>;

    /// The sequence an ordered message belongs to: a failed message holds back the later ones
    /// with the same key. By default each exchange is its own sequence.
    fn order_key(&self, exchange: &str, _project_number: Option<&str>) -> String {
        exchange.to_string()
    }

    /// Maps a message's facts (the outbox payload) to the wire payload and validates it.
    fn map<'a>(
        &'a self,
        pool: &'a SqlitePool,
        exchange: &'a str,
        facts: &'a Value,
        now: OffsetDateTime,
    ) -> AdapterFuture<'a, std::result::Result<Mapped, OurFault>>;

    /// Reads a reply (already parsed as JSON). An error means the reply breaks the target's
    /// interface: the attempt failed and will be retried.
    fn read_reply(&self, _exchange: &str, reply: &Value) -> std::result::Result<Reply, String> {
        read_standard_reply(self.target(), reply)
    }

    /// Applies an acknowledgement to the catalog, in the transaction that marks the message
    /// acknowledged. `Ok(Err(problem))`: the reply is unusable (the peer's fault; dead letter).
    fn on_ack<'a>(
        &'a self,
        _conn: &'a mut SqliteConnection,
        _exchange: &'a str,
        _facts: &'a Value,
        _reply: &'a Value,
        _now: OffsetDateTime,
    ) -> AdapterFuture<'a, std::result::Result<(), String>> {
        Box::pin(async { Ok(Ok(())) })
    }

    /// After the acknowledgement is committed (e.g. tell the search index).
    fn after_ack<'a>(
        &'a self,
        _pool: &'a SqlitePool,
        _exchange: &'a str,
        _facts: &'a Value,
    ) -> AdapterFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }
}

/// The reply convention our schemas share: `CODE` `0` accepted, `1` duplicate, `2` refused,
/// `MESSAGE`, optional `RECEIPT_ID`, checked against the target's `reply` schema.
pub fn read_standard_reply(target: &str, reply: &Value) -> std::result::Result<Reply, String> {
    validate_message(target, REPLY, reply)?;
    let text = |key: &str| reply.get(key).and_then(Value::as_str);
    let message = text("MESSAGE").unwrap_or_default().to_string();
    match text("CODE").unwrap_or_default() {
        REPLY_REFUSED => Ok(Reply::Refused(message)),
        code @ (REPLY_ACCEPTED | REPLY_DUPLICATE) => Ok(Reply::Accepted {
            duplicate: code == REPLY_DUPLICATE,
            receipt: text("RECEIPT_ID").map(str::to_string),
        }),
        other => Err(format!("未知的应答代码 CODE {other:?}")),
    }
}

/// How one attempt ended.
enum Outcome {
    Acked {
        duplicate: bool,
        receipt: Option<String>,
        reply: Value,
    },
    /// Not delivered; `reached` says whether the request may have arrived (then the message
    /// counts as sent and the resend relies on the peer's de-duplication).
    Failed { error: String, reached: bool },
    /// The peer refused the message: retrying the same message cannot help.
    Refused(String),
}

/// The worker of one HTTP target, driven by its adapter.
pub struct Delivery {
    pool: SqlitePool,
    clock: Arc<dyn Clock>,
    adapter: Arc<dyn Adapter>,
    token: Option<String>,
    http: reqwest::Client,
    /// When a message was last tried; drives the probe of a silent queue.
    last_try: std::sync::Mutex<Option<OffsetDateTime>>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a secret: never printed.
        f.debug_struct("Delivery")
            .field("target", &self.adapter.target())
            .field("base_url", &self.adapter.transport().base_url)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct DueRow {
    id: i64,
    exchange: String,
    idempotency_key: String,
    project_number: Option<String>,
    payload: String,
    state: String,
    attempts: i64,
    next_attempt_at: String,
}

impl Delivery {
    /// A worker for the adapter's target; `token` is the content of its `token_file`
    /// (`integrations::read_token`).
    pub fn new(
        pool: SqlitePool,
        clock: Arc<dyn Clock>,
        adapter: Arc<dyn Adapter>,
        token: Option<String>,
    ) -> Result<Delivery> {
        let timeout = adapter.transport().timeout_seconds.max(0.01);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs_f64(timeout))
            .connect_timeout(Duration::from_secs_f64(timeout))
            .build()
            .map_err(|e| err!(Internal, "HTTP client: {e}"))?;
        Ok(Delivery {
            pool,
            clock,
            adapter,
            token,
            http,
            last_try: std::sync::Mutex::new(None),
        })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub fn target(&self) -> &'static str {
        self.adapter.target()
    }

    /// Sends every message that is due now, once.
    pub async fn pass(&self) -> Result<PassStats> {
        let now = self.clock.now().to_offset(CHINA);
        let rows: Vec<DueRow> = sqlx::query_as(
            "SELECT id, exchange, idempotency_key, project_number, payload, state, attempts, next_attempt_at FROM outbox \
             WHERE target = ? AND state IN ('pending', 'sent') ORDER BY id LIMIT ?",
        )
        .bind(self.adapter.target())
        .bind(BATCH)
        .fetch_all(&self.pool)
        .await?;
        let oldest = rows.first().cloned();
        let mut stats = PassStats::default();
        let mut held_back: HashSet<String> = HashSet::new();
        for row in rows {
            let Some(ordered) = self.adapter.ordered(&row.exchange) else {
                self.bury(
                    row.id,
                    &format!("未知的交换类型 {}", row.exchange),
                    "ours",
                    now,
                )
                .await?;
                stats.dead += 1;
                continue;
            };
            let order_key = self
                .adapter
                .order_key(&row.exchange, row.project_number.as_deref());
            if ordered && held_back.contains(&order_key) {
                continue;
            }
            let due = OffsetDateTime::parse(
                &row.next_attempt_at,
                &time::format_description::well_known::Rfc3339,
            )
            .map(|t| t <= now)
            .unwrap_or(true);
            if !due {
                if ordered {
                    held_back.insert(order_key.clone());
                }
                continue;
            }
            stats.attempted += 1;
            match self.attempt(&row, now, false).await? {
                Some(true) => stats.acked += 1,
                Some(false) => {
                    stats.dead += 1;
                    if ordered {
                        held_back.insert(order_key.clone());
                    }
                }
                None => {
                    stats.failed += 1;
                    if ordered {
                        held_back.insert(order_key.clone());
                    }
                }
            }
        }
        let probe_now = {
            let mut last_try = self.last_try.lock().unwrap_or_else(|p| p.into_inner());
            let probe_due = last_try.is_none_or(|t| {
                (now - t).whole_seconds() >= self.adapter.transport().probe_seconds as i64
            });
            if stats.attempted > 0 || probe_due {
                *last_try = Some(now);
            }
            stats.attempted == 0 && probe_due
        };
        if !probe_now {
            return Ok(stats);
        }
        // Everything is waiting out its back-off: try the oldest message as a probe. If the
        // peer is back, every waiting message becomes due now instead of at its back-off.
        let Some(row) = oldest else {
            return Ok(stats);
        };
        if self.adapter.ordered(&row.exchange).is_none() {
            return Ok(stats);
        }
        stats.attempted += 1;
        match self.attempt(&row, now, true).await? {
            Some(true) => {
                stats.acked += 1;
                let released = sqlx::query(
                    "UPDATE outbox SET next_attempt_at = ? WHERE target = ? AND state IN ('pending', 'sent') AND next_attempt_at > ?",
                )
                .bind(rfc3339(now))
                .bind(self.adapter.target())
                .bind(rfc3339(now))
                .execute(&self.pool)
                .await?
                .rows_affected();
                tracing::info!(
                    target = self.adapter.target(),
                    released,
                    "the target answers again: waiting messages are due now"
                );
            }
            Some(false) => stats.dead += 1,
            None => stats.failed += 1,
        }
        Ok(stats)
    }

    /// One attempt: `Some(true)` acknowledged, `Some(false)` dead, `None` will be retried.
    /// A probe does not count against the message's attempts nor move its schedule.
    async fn attempt(
        &self,
        row: &DueRow,
        now: OffsetDateTime,
        probe: bool,
    ) -> Result<Option<bool>> {
        let exchange = row.exchange.as_str();
        let facts: Value = serde_json::from_str(&row.payload).unwrap_or(Value::Null);
        let mapped = match self.adapter.map(&self.pool, exchange, &facts, now).await? {
            Ok(mapped) => mapped,
            Err(OurFault(problem)) => {
                tracing::warn!(
                    target = self.adapter.target(),
                    message = row.id,
                    exchange,
                    "outbox message refused before sending: our data is wrong"
                );
                self.bury(row.id, &format!("本系统数据错误：{problem}"), "ours", now)
                    .await?;
                return Ok(Some(false));
            }
        };
        let outcome = self.send(exchange, &row.idempotency_key, &mapped).await;
        let attempts = row.attempts + 1;
        let stamp = rfc3339(now);
        match outcome {
            Outcome::Acked {
                duplicate,
                receipt,
                reply,
            } => {
                let mut tx = self.pool.begin().await?;
                if let Err(problem) = self
                    .adapter
                    .on_ack(&mut tx, exchange, &facts, &reply, now)
                    .await?
                {
                    drop(tx);
                    self.bury(row.id, &problem, "theirs", now).await?;
                    return Ok(Some(false));
                }
                // Only a waiting message moves to acked: a second acknowledgement of the same
                // message changes nothing.
                sqlx::query(
                    "UPDATE outbox SET state = 'acked', attempts = ?, acked_at = ?, sent_at = COALESCE(sent_at, ?), \
                     receipt_id = ?, last_error = NULL, duplicate_replies = duplicate_replies + ?, \
                     unified_deal_code = ?, bid_section_code = ? WHERE id = ? AND state IN ('pending', 'sent')",
                )
                .bind(attempts)
                .bind(&stamp)
                .bind(&stamp)
                .bind(receipt)
                .bind(i64::from(duplicate))
                .bind(&mapped.unified_deal_code)
                .bind(&mapped.bid_section_code)
                .bind(row.id)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                self.adapter.after_ack(&self.pool, exchange, &facts).await?;
                Ok(Some(true))
            }
            Outcome::Refused(message) => {
                self.store_codes(row.id, &mapped).await?;
                self.bury(row.id, &format!("对方拒收：{message}"), "theirs", now)
                    .await?;
                Ok(Some(false))
            }
            Outcome::Failed { error, reached } => {
                // Errors are shown on the page and kept: no full ID number in them.
                let error = crate::auth::mask_id_numbers_in(&error);
                // One extra write per failure is cheap; on success the codes ride on the ack.
                self.store_codes(row.id, &mapped).await?;
                let state = if reached || row.state == "sent" {
                    "sent"
                } else {
                    "pending"
                };
                if probe {
                    sqlx::query(
                        "UPDATE outbox SET state = ?, last_error = ?, \
                         sent_at = CASE WHEN ? = 'sent' THEN COALESCE(sent_at, ?) ELSE sent_at END WHERE id = ?",
                    )
                    .bind(state)
                    .bind(&error)
                    .bind(state)
                    .bind(&stamp)
                    .bind(row.id)
                    .execute(&self.pool)
                    .await?;
                    return Ok(None);
                }
                if attempts >= i64::from(self.adapter.transport().max_attempts) {
                    sqlx::query(
                        "UPDATE outbox SET state = 'dead', fault = 'theirs', attempts = ?, last_error = ?, \
                         sent_at = CASE WHEN ? = 'sent' THEN COALESCE(sent_at, ?) ELSE sent_at END WHERE id = ?",
                    )
                    .bind(attempts)
                    .bind(format!("重试 {attempts} 次后放弃：{error}"))
                    .bind(state)
                    .bind(&stamp)
                    .bind(row.id)
                    .execute(&self.pool)
                    .await?;
                    tracing::warn!(
                        target = self.adapter.target(),
                        message = row.id,
                        attempts,
                        "outbox message moved to the dead letters"
                    );
                    return Ok(Some(false));
                }
                let transport = self.adapter.transport();
                let delay = backoff(
                    attempts as u32,
                    transport.backoff_initial_seconds,
                    transport.backoff_max_seconds,
                );
                sqlx::query(
                    "UPDATE outbox SET state = ?, attempts = ?, last_error = ?, next_attempt_at = ?, \
                     sent_at = CASE WHEN ? = 'sent' THEN COALESCE(sent_at, ?) ELSE sent_at END WHERE id = ?",
                )
                .bind(state)
                .bind(attempts)
                .bind(&error)
                .bind(rfc3339(now + delay))
                .bind(state)
                .bind(&stamp)
                .bind(row.id)
                .execute(&self.pool)
                .await?;
                tracing::debug!(message = row.id, attempts, %error, "delivery failed; will retry");
                Ok(None)
            }
        }
    }

    /// Keeps the codes the report groups by, from the latest mapping.
    async fn store_codes(&self, id: i64, mapped: &Mapped) -> Result<()> {
        sqlx::query(
            "UPDATE outbox SET unified_deal_code = ?, bid_section_code = ? WHERE id = ? \
             AND (unified_deal_code IS NOT ? OR bid_section_code IS NOT ?)",
        )
        .bind(&mapped.unified_deal_code)
        .bind(&mapped.bid_section_code)
        .bind(id)
        .bind(&mapped.unified_deal_code)
        .bind(&mapped.bid_section_code)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn bury(&self, id: i64, error: &str, fault: &str, now: OffsetDateTime) -> Result<()> {
        // A schema violation quotes the offending value, which may be an ID number.
        let error = crate::auth::mask_id_numbers_in(error);
        sqlx::query(
            "UPDATE outbox SET state = 'dead', fault = ?, last_error = ?, next_attempt_at = ? WHERE id = ? AND state != 'acked'",
        )
        .bind(fault)
        .bind(error)
        .bind(rfc3339(now))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn send(&self, exchange: &str, key: &str, mapped: &Mapped) -> Outcome {
        let transport = self.adapter.transport();
        let url = format!(
            "{}/{}",
            transport.base_url.trim_end_matches('/'),
            mapped.path.trim_start_matches('/')
        );
        let mut request = self
            .http
            .post(&url)
            .header(IDEMPOTENCY_HEADER, key)
            .json(&mapped.payload);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                let reached = !e.is_connect();
                let error = if e.is_timeout() {
                    format!("{}s 内没有应答 (timeout)", transport.timeout_seconds)
                } else if e.is_connect() {
                    format!(
                        "无法连接{} (connection refused or unreachable)",
                        self.adapter.label()
                    )
                } else {
                    format!("请求失败：{e}")
                };
                return Outcome::Failed { error, reached };
            }
        };
        let status = response.status();
        let body = match response.bytes().await {
            Ok(b) => b,
            Err(e) => {
                return Outcome::Failed {
                    error: format!("应答读取中断：{e}"),
                    reached: true,
                }
            }
        };
        if !status.is_success() {
            return Outcome::Failed {
                error: format!("HTTP {}：{}", status.as_u16(), excerpt(&body)),
                reached: true,
            };
        }
        let reply: Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                return Outcome::Failed {
                    error: format!("应答不是有效的 JSON（{e}）：{}", excerpt(&body)),
                    reached: true,
                }
            }
        };
        match self.adapter.read_reply(exchange, &reply) {
            Err(problems) => Outcome::Failed {
                error: format!("应答不符合接口规范：{problems}"),
                reached: true,
            },
            Ok(Reply::Refused(message)) => Outcome::Refused(message),
            Ok(Reply::Accepted { duplicate, receipt }) => Outcome::Acked {
                duplicate,
                receipt,
                reply,
            },
        }
    }
}

/// The first 200 characters of a body, for an error message (stored and shown, so any ID
/// number the peer echoed is masked).
fn excerpt(body: &[u8]) -> String {
    let text = crate::auth::mask_id_numbers_in(&String::from_utf8_lossy(body));
    let cut: String = text.chars().take(200).collect();
    if cut.len() < text.len() {
        format!("{cut}…")
    } else {
        cut
    }
}
