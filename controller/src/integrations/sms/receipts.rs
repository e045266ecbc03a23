//! Delivery reports (回执) of SMS notices: receipts stored before they are acknowledged and
//! applied to their message by the gateway's message id, the delivery-report view, and the
//! manual resend of an SMS whose report says the handset did not get it.

use std::sync::Arc;

use serde_json::Value;
use sqlx::{SqliteConnection, SqlitePool};
use time::OffsetDateTime;
use witness_schemas::integration::{MessageState, OutboxMessage, SmsDeliveryReport, SMS};
use witness_schemas::smpp;

use super::SMS_WRITES;
use crate::auth::mask_phone;
use crate::clock::{rfc3339, Clock, CHINA};
use crate::error::Result;
use crate::integrations::outbox::{self, NewMessage};
use crate::{bail, err};

/// The receipt states that say the handset did not get the message. ENROUTE is the only
/// state that is not final; ACCEPTD (read for the subscriber by customer service) is not a
/// failure.
pub const FAILED_DELIVERY_STATES: [&str; 5] =
    ["UNDELIV", "EXPIRED", "REJECTD", "DELETED", "UNKNOWN"];

pub fn delivery_failed(state: &str) -> bool {
    FAILED_DELIVERY_STATES.contains(&state)
}

/// A delivery report (回执): the handset's outcome of a message the gateway accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The gateway's message id (the outbox row's `receipt_id`).
    pub receipt_id: String,
    /// The state in SMPP's spelling (DELIVRD, UNDELIV, …).
    pub stat: String,
    pub error: Option<String>,
    /// When the state was reached, RFC 3339.
    pub done_at: Option<String>,
}

impl Receipt {
    /// From an SMPP receipt; the receipted_message_id TLV, when present, names the message
    /// (some gateways write a different radix into the text's id).
    pub fn from_smpp(receipt: &smpp::DeliveryReceipt, tlv_id: Option<String>) -> Receipt {
        Receipt {
            receipt_id: tlv_id
                .filter(|id| !id.is_empty())
                .unwrap_or_else(|| receipt.id.clone()),
            stat: receipt.stat.clone(),
            error: receipt.err.clone().filter(|e| e.bytes().any(|b| b != b'0')),
            done_at: receipt.done_date.as_deref().and_then(smsc_time),
        }
    }
}

/// An SMSC's YYMMDDhhmm[ss] as RFC 3339. Domestic gateways write China Standard Time.
fn smsc_time(text: &str) -> Option<String> {
    let digits = |range: std::ops::Range<usize>| text.get(range)?.parse::<u8>().ok();
    let date = time::Date::from_calendar_date(
        2000 + i32::from(digits(0..2)?),
        time::Month::try_from(digits(2..4)?).ok()?,
        digits(4..6)?,
    )
    .ok()?;
    let seconds = if text.len() == 12 { digits(10..12)? } else { 0 };
    let at = time::Time::from_hms(digits(6..8)?, digits(8..10)?, seconds).ok()?;
    Some(rfc3339(
        time::PrimitiveDateTime::new(date, at).assume_offset(CHINA),
    ))
}

/// Records delivery reports: each is stored first (so an acknowledged receipt is never lost),
/// then applied to its message if the acceptance is already committed.
#[derive(Clone)]
pub struct Receipts {
    pool: SqlitePool,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Receipts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receipts").finish_non_exhaustive()
    }
}

impl Receipts {
    pub fn new(pool: SqlitePool, clock: Arc<dyn Clock>) -> Receipts {
        Receipts { pool, clock }
    }

    /// Stores a receipt and applies it; returns the message it was applied to, if any.
    pub async fn record(&self, receipt: &Receipt) -> Result<Option<i64>> {
        Ok(self
            .record_all(std::slice::from_ref(receipt))
            .await?
            .pop()
            .flatten())
    }

    /// Stores and applies receipts in one transaction (a busy gateway sends them in bursts).
    pub async fn record_all(&self, receipts: &[Receipt]) -> Result<Vec<Option<i64>>> {
        let now = rfc3339(self.clock.now().to_offset(CHINA));
        let _writing = SMS_WRITES.lock().await;
        let mut tx = self.pool.begin().await?;
        let mut applied = Vec::with_capacity(receipts.len());
        for receipt in receipts {
            sqlx::query(
                "INSERT INTO sms_receipts (receipt_id, stat, error, done_at, received_at) VALUES (?, ?, ?, ?, ?) \
                 ON CONFLICT (receipt_id, stat) DO NOTHING",
            )
            .bind(&receipt.receipt_id)
            .bind(&receipt.stat)
            .bind(&receipt.error)
            .bind(&receipt.done_at)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
            applied.push(apply_receipt(&mut tx, receipt, &now).await?);
        }
        tx.commit().await?;
        for (receipt, applied) in receipts.iter().zip(&applied) {
            match applied {
                Some(id) if delivery_failed(&receipt.stat) => tracing::warn!(
                    message = id,
                    state = %receipt.stat,
                    error = receipt.error.as_deref().unwrap_or("-"),
                    "SMS not delivered to the handset: shown for a manual resend"
                ),
                Some(id) => {
                    tracing::debug!(message = id, state = %receipt.stat, "SMS delivery report recorded")
                }
                None => tracing::info!(
                    receipt = %receipt.receipt_id,
                    state = %receipt.stat,
                    "SMS delivery report stored for a message not (yet) accepted here"
                ),
            }
        }
        Ok(applied)
    }
}

/// Applies a receipt to its message unless that already has a final state (a repeated or
/// late ENROUTE never hides a DELIVRD or UNDELIV).
pub(super) async fn apply_receipt(
    conn: &mut SqliteConnection,
    receipt: &Receipt,
    now: &str,
) -> Result<Option<i64>> {
    let reported = receipt.done_at.as_deref().unwrap_or(now);
    let delivered = (receipt.stat == "DELIVRD").then_some(reported);
    let row: Option<(i64,)> = sqlx::query_as(
        "UPDATE outbox SET delivery_state = ?, delivery_error = ?, delivered_at = ?, delivery_reported_at = ? \
         WHERE target = ? AND receipt_id = ? AND (delivery_state IS NULL OR delivery_state = 'ENROUTE') RETURNING id",
    )
    .bind(&receipt.stat)
    .bind(&receipt.error)
    .bind(delivered)
    .bind(reported)
    .bind(SMS)
    .bind(&receipt.receipt_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|(id,)| id))
}

/// Applies the receipts that came before the acceptance of `receipt_id` was committed.
pub(super) async fn apply_stored_receipts(
    conn: &mut SqliteConnection,
    receipt_id: &str,
    now: &str,
) -> Result<()> {
    let stored: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT stat, error, done_at FROM sms_receipts WHERE receipt_id = ? ORDER BY id",
    )
    .bind(receipt_id)
    .fetch_all(&mut *conn)
    .await?;
    for (stat, error, done_at) in stored {
        let receipt = Receipt {
            receipt_id: receipt_id.to_string(),
            stat,
            error,
            done_at,
        };
        apply_receipt(&mut *conn, &receipt, now).await?;
    }
    Ok(())
}

/// The SMS messages with their delivery reports, newest first; `failed_only`: those whose
/// report says the handset did not get them.
pub async fn deliveries(
    pool: &SqlitePool,
    failed_only: bool,
    limit: i64,
) -> Result<Vec<SmsDeliveryReport>> {
    type Row = (
        i64,
        Option<String>,
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<i64>,
        Option<String>,
    );
    let failed = FAILED_DELIVERY_STATES
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT id, project_number, exchange, payload, state, receipt_id, delivery_state, delivery_error, \
         delivered_at, delivery_reported_at, resent_as, sent_at FROM outbox \
         WHERE target = ?1 AND (?2 = 0 OR delivery_state IN ({failed})) ORDER BY id DESC LIMIT ?3"
    )))
    .bind(SMS)
    .bind(failed_only)
    .bind(limit.clamp(1, 1000))
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(
                id,
                project_number,
                exchange,
                payload,
                state,
                receipt_id,
                delivery_state,
                delivery_error,
                delivered_at,
                delivery_reported_at,
                resent_as,
                sent_at,
            )| {
                let facts: Value = serde_json::from_str(&payload).unwrap_or(Value::Null);
                let field = |k: &str| {
                    facts
                        .get(k)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                };
                SmsDeliveryReport {
                    id,
                    project_number,
                    exchange,
                    bidder: field("bidder"),
                    phone: mask_phone(&field("phone")),
                    state: MessageState::parse(&state).unwrap_or(MessageState::Pending),
                    receipt_id,
                    delivery_failed: delivery_state.as_deref().is_some_and(delivery_failed),
                    delivery_state,
                    delivery_error,
                    delivered_at,
                    delivery_reported_at,
                    resent_as,
                    sent_at,
                }
            },
        )
        .collect())
}

/// How many accepted SMS have a DELIVRD report, a failed one, and none (or ENROUTE) yet.
pub async fn delivery_counts(pool: &SqlitePool) -> Result<(i64, i64, i64)> {
    let failed = FAILED_DELIVERY_STATES
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT COALESCE(SUM(delivery_state = 'DELIVRD'), 0), COALESCE(SUM(delivery_state IN ({failed})), 0), \
         COALESCE(SUM(delivery_state IS NULL OR delivery_state = 'ENROUTE'), 0) \
         FROM outbox WHERE target = ? AND state = 'acked'"
    )))
    .bind(SMS)
    .fetch_one(pool)
    .await?)
}

/// Resends by hand (人工重发) an SMS the gateway accepted but whose delivery report says the
/// handset did not get it: a NEW message with a new idempotency key (the gateway did take the
/// first one; only an operator decides that a second is wanted). Each message is resent at
/// most once; the new one can be resent in turn if it fails too. Returns the new message.
pub async fn resend(
    pool: &SqlitePool,
    id: i64,
    by: &str,
    now: OffsetDateTime,
) -> Result<OutboxMessage> {
    /// target, exchange, key, project, payload, delivery state, resent as.
    type Row = (
        String,
        String,
        String,
        Option<String>,
        String,
        Option<String>,
        Option<i64>,
    );
    let row: Option<Row> =
        sqlx::query_as(
            "SELECT target, exchange, idempotency_key, project_number, payload, delivery_state, resent_as \
             FROM outbox WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(pool)
        .await?;
    let Some((target, exchange, key, project_number, payload, delivery_state, resent_as)) = row
    else {
        bail!(NotFound, "消息 {id} 不存在 (no such outbox message)");
    };
    if target != SMS {
        bail!(
            InvalidArgument,
            "消息 {id} 不是短信，不能按回执重发 (not an SMS)"
        );
    }
    if let Some(new) = resent_as {
        bail!(
            FailedPrecondition,
            "消息 {id} 已重发为消息 {new} (already resent)"
        );
    }
    if !delivery_state.as_deref().is_some_and(delivery_failed) {
        bail!(
            FailedPrecondition,
            "消息 {id} 没有失败回执（{}），不能重发 (no failed delivery report)",
            delivery_state.as_deref().unwrap_or("尚无回执")
        );
    }
    let payload: Value =
        serde_json::from_str(&payload).map_err(|e| err!(Internal, "message {id}: {e}"))?;
    let base = key.split(":resend-of-").next().unwrap_or(&key);
    let mut tx = pool.begin().await?;
    let new_id = outbox::enqueue(
        &mut tx,
        NewMessage {
            target: SMS,
            exchange: &exchange,
            idempotency_key: format!("{base}:resend-of-{id}"),
            project_number: project_number.as_deref(),
            schema_version: "v1",
            payload,
        },
        now,
    )
    .await?
    .ok_or_else(|| err!(FailedPrecondition, "消息 {id} 已重发 (already resent)"))?;
    let marked = sqlx::query("UPDATE outbox SET resent_as = ? WHERE id = ? AND resent_as IS NULL")
        .bind(new_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if marked.rows_affected() != 1 {
        bail!(FailedPrecondition, "消息 {id} 已重发 (already resent)");
    }
    tx.commit().await?;
    crate::integrations::wake();
    tracing::info!(
        message = id,
        resent_as = new_id,
        by,
        "SMS resent by hand after a failed delivery report"
    );
    outbox::message(pool, new_id).await
}
