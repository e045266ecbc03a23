//! The delivery worker of one target: sends due outbox messages one at a time in id order
//! (a failed message of an ordered exchange holds back the later ones of that exchange),
//! records every outcome in the same row before the next send, backs off with jitter, and
//! gives up into the dead letters after the configured attempts.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sqlx::SqlitePool;
use time::OffsetDateTime;
use witness_schemas::integration::{
    validate_reply, Exchange, ExpertLibraryConfig, EXPERT_LIBRARY, IDEMPOTENCY_HEADER,
    REPLY_DUPLICATE, REPLY_REFUSED,
};

use super::expert_library::{self, OurFault};
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
    /// The peer refused the message (CODE 2): retrying the same message cannot help.
    Refused(String),
}

/// The worker of the expert library.
pub struct Delivery {
    pool: SqlitePool,
    clock: Arc<dyn Clock>,
    config: ExpertLibraryConfig,
    token: Option<String>,
    http: reqwest::Client,
    /// When a message was last tried; drives the probe of a silent queue.
    last_try: std::sync::Mutex<Option<OffsetDateTime>>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a secret: never printed.
        f.debug_struct("Delivery")
            .field("base_url", &self.config.base_url)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct DueRow {
    id: i64,
    exchange: String,
    idempotency_key: String,
    payload: String,
    state: String,
    attempts: i64,
    next_attempt_at: String,
}

impl Delivery {
    pub fn new(
        pool: SqlitePool,
        clock: Arc<dyn Clock>,
        config: ExpertLibraryConfig,
        token: Option<String>,
    ) -> Result<Delivery> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs_f64(config.timeout_seconds.max(0.01)))
            .connect_timeout(Duration::from_secs_f64(config.timeout_seconds.max(0.01)))
            .build()
            .map_err(|e| err!(Internal, "HTTP client: {e}"))?;
        Ok(Delivery {
            pool,
            clock,
            config,
            token,
            http,
            last_try: std::sync::Mutex::new(None),
        })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Sends every message that is due now, once.
    pub async fn pass(&self) -> Result<PassStats> {
        let now = self.clock.now().to_offset(CHINA);
        let rows: Vec<DueRow> = sqlx::query_as(
            "SELECT id, exchange, idempotency_key, payload, state, attempts, next_attempt_at FROM outbox \
             WHERE target = ? AND state IN ('pending', 'sent') ORDER BY id LIMIT ?",
        )
        .bind(EXPERT_LIBRARY)
        .bind(BATCH)
        .fetch_all(&self.pool)
        .await?;
        let oldest = rows.first().cloned();
        let mut stats = PassStats::default();
        let mut held_back: HashSet<Exchange> = HashSet::new();
        for row in rows {
            let Some(exchange) = Exchange::parse(&row.exchange) else {
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
            if held_back.contains(&exchange) {
                continue;
            }
            let due = OffsetDateTime::parse(
                &row.next_attempt_at,
                &time::format_description::well_known::Rfc3339,
            )
            .map(|t| t <= now)
            .unwrap_or(true);
            if !due {
                if exchange.ordered() {
                    held_back.insert(exchange);
                }
                continue;
            }
            stats.attempted += 1;
            match self.attempt(&row, exchange, now, false).await? {
                Some(true) => stats.acked += 1,
                Some(false) => {
                    stats.dead += 1;
                    if exchange.ordered() {
                        held_back.insert(exchange);
                    }
                }
                None => {
                    stats.failed += 1;
                    if exchange.ordered() {
                        held_back.insert(exchange);
                    }
                }
            }
        }
        let probe_now = {
            let mut last_try = self.last_try.lock().unwrap_or_else(|p| p.into_inner());
            let probe_due = last_try
                .is_none_or(|t| (now - t).whole_seconds() >= self.config.probe_seconds as i64);
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
        let Some(exchange) = Exchange::parse(&row.exchange) else {
            return Ok(stats);
        };
        stats.attempted += 1;
        match self.attempt(&row, exchange, now, true).await? {
            Some(true) => {
                stats.acked += 1;
                let released = sqlx::query(
                    "UPDATE outbox SET next_attempt_at = ? WHERE target = ? AND state IN ('pending', 'sent') AND next_attempt_at > ?",
                )
                .bind(rfc3339(now))
                .bind(EXPERT_LIBRARY)
                .bind(rfc3339(now))
                .execute(&self.pool)
                .await?
                .rows_affected();
                tracing::info!(
                    released,
                    "expert library answers again: waiting messages are due now"
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
        exchange: Exchange,
        now: OffsetDateTime,
        probe: bool,
    ) -> Result<Option<bool>> {
        let facts: Value = serde_json::from_str(&row.payload).unwrap_or(Value::Null);
        let mapped =
            match expert_library::map(&self.pool, &self.config, exchange, &facts, now).await? {
                Ok(mapped) => mapped,
                Err(OurFault(problem)) => {
                    tracing::warn!(
                        message = row.id,
                        exchange = exchange.as_str(),
                        "outbox message refused before sending: our data is wrong"
                    );
                    self.bury(row.id, &format!("本系统数据错误：{problem}"), "ours", now)
                        .await?;
                    return Ok(Some(false));
                }
            };
        let outcome = self
            .send(exchange, &row.idempotency_key, &mapped.payload)
            .await;
        let attempts = row.attempts + 1;
        let stamp = rfc3339(now);
        match outcome {
            Outcome::Acked {
                duplicate,
                receipt,
                reply,
            } => {
                let mut tx = self.pool.begin().await?;
                if exchange == Exchange::ExpertDrawRequest {
                    match expert_library::apply_draw_result(&mut tx, &facts, &reply, now).await? {
                        Ok(added) => {
                            tracing::info!(
                                message = row.id,
                                experts = added,
                                "drawing result stored into the draws"
                            )
                        }
                        Err(problem) => {
                            drop(tx);
                            self.bury(row.id, &problem, "theirs", now).await?;
                            return Ok(Some(false));
                        }
                    }
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
                if exchange == Exchange::ExpertDrawRequest {
                    // Drawn experts are searchable by name.
                    if let Some(number) = facts.get("project_number").and_then(|n| n.as_str()) {
                        if let Ok(project) = crate::catalog::project(&self.pool, number).await {
                            crate::search::notify(
                                &self.pool,
                                crate::search::Change::Project(project.id),
                            );
                        }
                    }
                }
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
                if attempts >= i64::from(self.config.max_attempts) {
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
                        message = row.id,
                        attempts,
                        "outbox message moved to the dead letters"
                    );
                    return Ok(Some(false));
                }
                let delay = backoff(
                    attempts as u32,
                    self.config.backoff_initial_seconds,
                    self.config.backoff_max_seconds,
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
    async fn store_codes(&self, id: i64, mapped: &expert_library::Mapped) -> Result<()> {
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

    async fn send(&self, exchange: Exchange, key: &str, payload: &Value) -> Outcome {
        let url = format!(
            "{}/{}",
            self.config.base_url.trim_end_matches('/'),
            exchange.as_str()
        );
        let mut request = self
            .http
            .post(&url)
            .header(IDEMPOTENCY_HEADER, key)
            .json(payload);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                let reached = !e.is_connect();
                let error = if e.is_timeout() {
                    format!("{}s 内没有应答 (timeout)", self.config.timeout_seconds)
                } else if e.is_connect() {
                    "无法连接专家库 (connection refused or unreachable)".to_string()
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
        if let Err(problems) = validate_reply(&reply) {
            return Outcome::Failed {
                error: format!("应答不符合接口规范：{problems}"),
                reached: true,
            };
        }
        let code = reply
            .get("CODE")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let message = reply
            .get("MESSAGE")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if code == REPLY_REFUSED {
            return Outcome::Refused(message);
        }
        Outcome::Acked {
            duplicate: code == REPLY_DUPLICATE,
            receipt: reply
                .get("RECEIPT_ID")
                .and_then(Value::as_str)
                .map(str::to_string),
            reply,
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
