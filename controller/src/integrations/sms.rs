//! SMS notices (短信通知) to the bidders registered for a project at the four key points —
//! change notice, bid opening, clarification, second quotation — through the outbox, sent by a
//! provider behind [`SmsProvider`]: an SMPP 3.4 gateway or the HTTP template API of a cloud SMS
//! service. SMS cannot be de-duplicated by the operator, so a send whose outcome is unknown (the
//! request left, no answer came) is never repeated automatically: it becomes a dead letter that
//! a person may retry after checking. Delivery reports (回执) say whether the handset got an
//! accepted SMS: pushed by the SMPP gateway (deliver_sm), asked for from an HTTP service; a
//! failed one is shown, and resent only by an operator, as a new message.

mod receipts;
mod smpp_provider;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{json, Value};
use sqlx::{SqliteConnection, SqlitePool};
use time::OffsetDateTime;
use witness_schemas::integration::{
    Bidder, NewBidder, NewSmsNotice, SmsConfig, SmsNoticeKind, SmsNoticeResult, SmsProviderKind,
    IDEMPOTENCY_HEADER, SMS,
};

use receipts::apply_stored_receipts;
pub use receipts::{
    deliveries, delivery_counts, delivery_failed, resend, Receipt, Receipts, FAILED_DELIVERY_STATES,
};
pub use smpp_provider::{SmppProvider, SmppSettings};

use super::outbox::{self, backoff, NewMessage};
use crate::auth::mask_phone;
use crate::clock::{rfc3339, Clock, CHINA};
use crate::error::Result;
use crate::{bail, catalog, err};

/// The one lock of the SMS worker's and the receipts' writes (one SMS worker per process):
/// they queue here instead of meeting in SQLite's busy handler, which sleeps for milliseconds.
static SMS_WRITES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn lock<T>(mutex: &StdMutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// How one send ended.
#[derive(Debug)]
pub enum SmsOutcome {
    /// The gateway took the message; its message id.
    Accepted(String),
    /// Not sent: retry later.
    NotSent(String),
    /// The request left but no answer came: the SMS may have been sent.
    Unknown(String),
}

/// One SMS to send.
#[derive(Debug, Clone)]
pub struct Sms {
    pub key: String,
    pub phone: String,
    pub kind: SmsNoticeKind,
    pub text: String,
    /// Template parameters (HTTP template providers fill their own template with them).
    pub params: Value,
}

pub type SendFuture<'a> = Pin<Box<dyn Future<Output = SmsOutcome> + Send + 'a>>;
pub type QueryFuture<'a> =
    Pin<Box<dyn Future<Output = std::result::Result<Vec<Receipt>, String>> + Send + 'a>>;

/// An SMS gateway.
pub trait SmsProvider: Send + Sync {
    fn send<'a>(&'a self, sms: &'a Sms) -> SendFuture<'a>;

    /// How many sends the worker may have under way at once.
    fn window(&self) -> usize {
        1
    }

    /// Whether delivery reports must be asked for ([`SmsProvider::query_receipts`]); SMPP
    /// gateways push them instead.
    fn queries_receipts(&self) -> bool {
        false
    }

    /// The delivery reports known for these gateway message ids (those still without one are
    /// left out).
    fn query_receipts<'a>(&'a self, _receipt_ids: &'a [String]) -> QueryFuture<'a> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

/// The HTTP template style of the cloud SMS services: a JSON request naming a registered
/// template and its parameters; `{"Code": "OK", "BizId": …}` back.
pub struct HttpTemplateProvider {
    pub url: String,
    /// Where delivery reports are asked for; `None`: this service gives none.
    pub status_url: Option<String>,
    pub token: Option<String>,
    pub sign_name: String,
    pub templates: std::collections::BTreeMap<String, String>,
    pub http: reqwest::Client,
}

impl std::fmt::Debug for HttpTemplateProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTemplateProvider")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl HttpTemplateProvider {
    async fn post(&self, sms: &Sms) -> SmsOutcome {
        let Some(template) = self.templates.get(sms.kind.as_str()) else {
            return SmsOutcome::NotSent(format!(
                "[integrations.sms] http_templates 缺少 {} 的模板编号",
                sms.kind.as_str()
            ));
        };
        let mut request = self
            .http
            .post(&self.url)
            .header(IDEMPOTENCY_HEADER, &sms.key)
            .json(&json!({
                "PhoneNumbers": sms.phone,
                "SignName": self.sign_name,
                "TemplateCode": template,
                "TemplateParam": sms.params.to_string(),
                "OutId": sms.key,
            }));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) if e.is_connect() => {
                return SmsOutcome::NotSent(format!("无法连接短信服务：{e}"))
            }
            Err(e) => return SmsOutcome::Unknown(format!("短信服务没有应答：{e}")),
        };
        let status = response.status();
        let reply: Value = match response.json().await {
            Ok(v) => v,
            Err(e) => {
                return SmsOutcome::Unknown(format!("短信服务应答无法解析（HTTP {status}）：{e}"))
            }
        };
        match reply.get("Code").and_then(Value::as_str) {
            Some("OK") => SmsOutcome::Accepted(
                reply
                    .get("BizId")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            ),
            Some(code) => SmsOutcome::NotSent(format!(
                "短信服务未接收：{code} {}",
                reply
                    .get("Message")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            )),
            None => SmsOutcome::Unknown(format!("短信服务应答缺少 Code（HTTP {status}）")),
        }
    }
}

/// SendStatus of a status query: 1 waiting for the receipt, 2 failed, 3 delivered.
const SEND_STATUS_FAILED: i64 = 2;
const SEND_STATUS_DELIVERED: i64 = 3;

impl HttpTemplateProvider {
    /// Delivery reports by status query (查询发送状态), the style of the cloud services' send
    /// detail queries: `POST status_url {"BizIds": […]}` → `{"Code": "OK", "Details": [{"BizId",
    /// "SendStatus": 1|2|3, "ErrCode", "ReceiveDate": "YYYY-MM-DD hh:mm:ss"}]}`. A query, not a
    /// callback: nothing outside can call in, and a report missed while we were down is simply
    /// asked for again.
    async fn query(&self, receipt_ids: &[String]) -> std::result::Result<Vec<Receipt>, String> {
        let Some(url) = &self.status_url else {
            return Ok(Vec::new());
        };
        let mut request = self.http.post(url).json(&json!({ "BizIds": receipt_ids }));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("短信状态查询失败：{e}"))?;
        let status = response.status();
        let reply: Value = response
            .json()
            .await
            .map_err(|e| format!("短信状态查询应答无法解析（HTTP {status}）：{e}"))?;
        if reply.get("Code").and_then(Value::as_str) != Some("OK") {
            return Err(format!(
                "短信状态查询未成功（HTTP {status}）：{}",
                reply
                    .get("Code")
                    .and_then(Value::as_str)
                    .unwrap_or("无 Code")
            ));
        }
        let details = reply
            .get("Details")
            .and_then(Value::as_array)
            .ok_or_else(|| "短信状态查询应答缺少 Details".to_string())?;
        let mut receipts = Vec::new();
        for detail in details {
            let text = |k: &str| detail.get(k).and_then(Value::as_str).map(str::to_string);
            let Some(id) = text("BizId").filter(|id| receipt_ids.contains(id)) else {
                tracing::warn!("SMS status query: a detail without a BizId we asked for ignored");
                continue;
            };
            let done_at = text("ReceiveDate").and_then(|d| {
                time::PrimitiveDateTime::parse(
                    &d,
                    time::macros::format_description!(
                        "[year]-[month]-[day] [hour]:[minute]:[second]"
                    ),
                )
                .ok()
                .map(|t| rfc3339(t.assume_offset(CHINA)))
            });
            let (stat, error) = match detail.get("SendStatus").and_then(Value::as_i64) {
                Some(SEND_STATUS_DELIVERED) => ("DELIVRD", None),
                Some(SEND_STATUS_FAILED) => ("UNDELIV", text("ErrCode")),
                // Still waiting for the handset's report: asked again next time.
                _ => continue,
            };
            receipts.push(Receipt {
                receipt_id: id,
                stat: stat.to_string(),
                error,
                done_at,
            });
        }
        Ok(receipts)
    }
}

impl SmsProvider for HttpTemplateProvider {
    fn send<'a>(&'a self, sms: &'a Sms) -> SendFuture<'a> {
        Box::pin(self.post(sms))
    }

    fn queries_receipts(&self) -> bool {
        self.status_url.is_some()
    }

    fn query_receipts<'a>(&'a self, receipt_ids: &'a [String]) -> QueryFuture<'a> {
        Box::pin(self.query(receipt_ids))
    }
}

/// Builds the configured provider, reading its secret files; an SMPP provider records the
/// receipts its gateway pushes through `receipts`.
pub fn provider(config: &SmsConfig, receipts: Receipts) -> Result<Box<dyn SmsProvider>> {
    let timeout = Duration::from_secs_f64(config.timeout_seconds.max(0.01));
    match config.provider {
        SmsProviderKind::Smpp => {
            let (Some(address), Some(system_id), Some(password_file)) = (
                &config.smpp_address,
                &config.smpp_system_id,
                &config.smpp_password_file,
            ) else {
                bail!(
                    InvalidArgument,
                    "[integrations.sms] provider = \"smpp\" 需要 smpp_address、smpp_system_id 和 smpp_password_file"
                );
            };
            if !(1..=64).contains(&config.smpp_window) {
                bail!(
                    InvalidArgument,
                    "[integrations.sms] smpp_window {} 须在 1–64 之间",
                    config.smpp_window
                );
            }
            if config.smpp_enquire_link_seconds.is_nan() || config.smpp_enquire_link_seconds <= 0.0
            {
                bail!(
                    InvalidArgument,
                    "[integrations.sms] smpp_enquire_link_seconds 须大于 0"
                );
            }
            Ok(Box::new(SmppProvider::new(
                SmppSettings {
                    address: address.clone(),
                    system_id: system_id.clone(),
                    password: super::read_token(password_file)?,
                    source_addr: config.smpp_source_addr.clone(),
                    timeout,
                    window: config.smpp_window as usize,
                    enquire_link: Duration::from_secs_f64(config.smpp_enquire_link_seconds),
                },
                receipts,
            )))
        }
        SmsProviderKind::HttpTemplate => {
            let Some(url) = &config.http_url else {
                bail!(
                    InvalidArgument,
                    "[integrations.sms] provider = \"http_template\" 需要 http_url"
                );
            };
            for kind in SmsNoticeKind::ALL {
                if !config.http_templates.contains_key(kind.as_str()) {
                    bail!(
                        InvalidArgument,
                        "[integrations.sms] http_templates 缺少 {} 的模板编号",
                        kind.as_str()
                    );
                }
            }
            if let Some(status_url) = &config.http_status_url {
                if !(status_url.starts_with("http://") || status_url.starts_with("https://")) {
                    bail!(
                        InvalidArgument,
                        "[integrations.sms] http_status_url {status_url:?} 须以 http:// 或 https:// 开头"
                    );
                }
            }
            Ok(Box::new(HttpTemplateProvider {
                url: url.clone(),
                status_url: config.http_status_url.clone(),
                token: config
                    .http_token_file
                    .as_deref()
                    .map(super::read_token)
                    .transpose()?,
                sign_name: config.http_sign_name.clone(),
                templates: config.http_templates.clone(),
                http: reqwest::Client::builder()
                    .timeout(timeout)
                    .build()
                    .map_err(|e| err!(Internal, "HTTP client: {e}"))?,
            }))
        }
    }
}

/// Checks a mainland mobile number: 11 digits starting with 1.
pub fn check_phone(phone: &str) -> Result<()> {
    if phone.len() != 11 || !phone.starts_with('1') || !phone.bytes().all(|b| b.is_ascii_digit()) {
        bail!(
            InvalidArgument,
            "手机号 {} 须为 11 位数字、以 1 开头",
            mask_phone(phone)
        );
    }
    Ok(())
}

pub async fn add_bidder(
    pool: &SqlitePool,
    number: &str,
    new: &NewBidder,
    now: OffsetDateTime,
) -> Result<Bidder> {
    let project = catalog::project(pool, number).await?;
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        bail!(InvalidArgument, "投标人名称须为 1–200 个字符");
    }
    let phone = new
        .phone
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty());
    if let Some(phone) = phone {
        check_phone(phone)?;
    }
    let mut tx = pool.begin().await?;
    let id = sqlx::query(
        "INSERT INTO project_bidders (project_id, name, phone, created_at) VALUES (?, ?, ?, ?)",
    )
    .bind(project.id)
    .bind(name)
    .bind(phone)
    .bind(rfc3339(now.to_offset(CHINA)))
    .execute(&mut *tx)
    .await
    .map_err(|e| crate::error::Error::from(e).context(format!("项目 {number} 的投标人 {name}")))?
    .last_insert_rowid();
    // A procurement project's bidder is the finance bureau's bids stage, queued with it.
    let queued = super::extract::on_bidder(&mut tx, &project, id, name, now).await?;
    tx.commit().await?;
    if queued.is_some() {
        super::wake();
    }
    Ok(Bidder {
        id,
        name: name.to_string(),
        phone: phone.map(mask_phone),
    })
}

pub async fn bidders(pool: &SqlitePool, number: &str) -> Result<Vec<Bidder>> {
    let project = catalog::project(pool, number).await?;
    let rows: Vec<(i64, String, Option<String>)> = sqlx::query_as(
        "SELECT id, name, phone FROM project_bidders WHERE project_id = ? ORDER BY id",
    )
    .bind(project.id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, name, phone)| Bidder {
            id,
            name,
            phone: phone.as_deref().map(mask_phone),
        })
        .collect())
}

fn when(rfc: &str) -> String {
    OffsetDateTime::parse(rfc, &time::format_description::well_known::Rfc3339)
        .map(|t| {
            let t = t.to_offset(CHINA);
            format!(
                "{}年{}月{}日{:02}:{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute()
            )
        })
        .unwrap_or_else(|_| rfc.to_string())
}

/// The text of a notice (SMPP sends it as is; HTTP template services use the parameters).
pub fn text(
    center: &str,
    kind: SmsNoticeKind,
    project_name: &str,
    number: &str,
    opening: &str,
    deadline: Option<&str>,
) -> String {
    let deadline = deadline.map(when).unwrap_or_default();
    let body = match kind {
        SmsNoticeKind::ChangeNotice => {
            format!("您投标的项目{project_name}（{number}）发布了变更公告，请及时登录交易平台查看。")
        }
        SmsNoticeKind::BidOpening => format!(
            "您投标的项目{project_name}（{number}）将于{}开标，请准时参加。",
            when(opening)
        ),
        SmsNoticeKind::Clarification => format!(
            "项目{project_name}（{number}）评标委员会向您发出标中质询，请于{deadline}前登录交易平台答复。"
        ),
        SmsNoticeKind::SecondQuotation => format!(
            "项目{project_name}（{number}）进入二次报价，请于{deadline}前登录交易平台提交报价。"
        ),
    };
    format!("【{center}】{body}")
}

/// Queues a notice to every bidder of the project with a phone, in one transaction with the
/// notice; bidders without one are named in the answer and stored with the notice.
pub async fn send_notice(
    pool: &SqlitePool,
    config: Option<&SmsConfig>,
    number: &str,
    notice: &NewSmsNotice,
    by: &str,
    now: OffsetDateTime,
) -> Result<SmsNoticeResult> {
    let Some(config) = config else {
        bail!(
            FailedPrecondition,
            "未配置短信通知 [integrations.sms]，无法发送"
        );
    };
    let project = catalog::project(pool, number).await?;
    let needs_deadline = matches!(
        notice.kind,
        SmsNoticeKind::Clarification | SmsNoticeKind::SecondQuotation
    );
    let deadline = match (&notice.deadline, needs_deadline) {
        (Some(d), _) => Some(
            OffsetDateTime::parse(d.trim(), &time::format_description::well_known::Rfc3339)
                .map(|t| rfc3339(t.to_offset(CHINA)))
                .map_err(|e| err!(InvalidArgument, "截止时间 {d:?} 不是 RFC 3339 时间：{e}"))?,
        ),
        (None, true) => bail!(InvalidArgument, "标中质询与二次报价须给出截止时间 deadline"),
        (None, false) => None,
    };
    let bidders: Vec<(i64, String, Option<String>)> = sqlx::query_as(
        "SELECT id, name, phone FROM project_bidders WHERE project_id = ? ORDER BY id",
    )
    .bind(project.id)
    .fetch_all(pool)
    .await?;
    if bidders.is_empty() {
        bail!(FailedPrecondition, "项目 {number} 没有登记投标人");
    }
    let without_phone: Vec<String> = bidders
        .iter()
        .filter(|(_, _, phone)| phone.is_none())
        .map(|(_, name, _)| name.clone())
        .collect();
    let message = text(
        &config.center_name,
        notice.kind,
        &project.name,
        number,
        &project.opening,
        deadline.as_deref(),
    );
    let mut tx = pool.begin().await?;
    let notice_id = sqlx::query(
        "INSERT INTO sms_notices (project_id, kind, deadline, without_phone, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(project.id)
    .bind(notice.kind.as_str())
    .bind(&deadline)
    .bind(json!(without_phone).to_string())
    .bind(by)
    .bind(rfc3339(now.to_offset(CHINA)))
    .execute(&mut *tx)
    .await?
    .last_insert_rowid();
    let mut message_ids = Vec::new();
    for (bidder_id, name, phone) in &bidders {
        let Some(phone) = phone else { continue };
        let id = outbox::enqueue(
            &mut tx,
            NewMessage {
                target: SMS,
                exchange: notice.kind.as_str(),
                idempotency_key: format!("sms:notice-{notice_id}:bidder-{bidder_id}"),
                project_number: Some(number),
                schema_version: "v1",
                payload: json!({
                    "phone": phone,
                    "bidder": name,
                    "kind": notice.kind.as_str(),
                    "text": message,
                    "params": {
                        "project": project.name,
                        "number": number,
                        "time": deadline.as_deref().map(when).unwrap_or_else(|| when(&project.opening)),
                    },
                }),
            },
            now,
        )
        .await?
        .ok_or_else(|| err!(Internal, "notice {notice_id}: duplicate message key"))?;
        message_ids.push(id);
    }
    tx.commit().await?;
    super::wake();
    tracing::info!(
        project = number,
        kind = notice.kind.as_str(),
        messages = message_ids.len(),
        without_phone = without_phone.len(),
        "SMS notice queued"
    );
    Ok(SmsNoticeResult {
        notice_id,
        message_ids,
        without_phone,
    })
}

/// The SMS worker: sends the due SMS messages, up to the provider's window at once, and asks
/// for delivery reports where the provider needs asking.
pub struct SmsDelivery {
    pool: SqlitePool,
    clock: Arc<dyn Clock>,
    config: SmsConfig,
    provider: Box<dyn SmsProvider>,
    receipts: Receipts,
    last_query: StdMutex<Option<OffsetDateTime>>,
    recovered: AtomicBool,
}

/// The outcome of a submit is recorded: it is no longer "being submitted".
async fn submitted(conn: &mut SqliteConnection, id: i64) -> Result<()> {
    sqlx::query("DELETE FROM sms_submits WHERE outbox_id = ?")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

impl std::fmt::Debug for SmsDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsDelivery").finish_non_exhaustive()
    }
}

/// How long after its acceptance a message's delivery report is still asked for: the cloud
/// services keep send details for a few days, and an SMS not reported by then never will be.
const RECEIPT_QUERY_DAYS: i64 = 3;

impl SmsDelivery {
    pub fn new(
        pool: SqlitePool,
        clock: Arc<dyn Clock>,
        config: SmsConfig,
        provider: Box<dyn SmsProvider>,
    ) -> SmsDelivery {
        SmsDelivery {
            receipts: Receipts::new(pool.clone(), Arc::clone(&clock)),
            pool,
            clock,
            config,
            provider,
            last_query: StdMutex::new(None),
            recovered: AtomicBool::new(false),
        }
    }

    /// Once per worker: the SMS a previous process was submitting when it stopped (their
    /// `sms_submits` rows are still there) may or may not have left, so they become dead
    /// letters with an unknown outcome, never sent again by themselves.
    async fn recover_interrupted(&self, now: OffsetDateTime) -> Result<()> {
        if self.recovered.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let _writing = SMS_WRITES.lock().await;
        let mut tx = self.pool.begin().await?;
        let interrupted = sqlx::query(
            "UPDATE outbox SET state = 'dead', fault = 'unknown', last_error = ?, next_attempt_at = ?              WHERE id IN (SELECT outbox_id FROM sms_submits) AND state IN ('pending', 'sent')",
        )
        .bind("发送中途进程停止，无法确认短信是否已发出；为免重复不自动重发，确认对方未收到后可人工重发")
        .bind(rfc3339(now))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("DELETE FROM sms_submits")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if interrupted > 0 {
            tracing::warn!(
                messages = interrupted,
                "SMS interrupted mid-submit by a stop: dead letters, outcome unknown"
            );
        }
        Ok(())
    }

    /// Sends every due SMS once (and queries delivery reports when due); returns how many
    /// messages were tried.
    pub async fn pass(&self) -> Result<usize> {
        let now = self.clock.now().to_offset(CHINA);
        self.recover_interrupted(now).await?;
        let rows: Vec<(i64, String, String, i64)> = sqlx::query_as(
            "SELECT id, idempotency_key, payload, attempts FROM outbox \
             WHERE target = ? AND state IN ('pending', 'sent') AND next_attempt_at <= ? \
             AND id NOT IN (SELECT outbox_id FROM sms_submits) ORDER BY id LIMIT 200",
        )
        .bind(SMS)
        .bind(rfc3339(now))
        .fetch_all(&self.pool)
        .await?;
        let tried = rows.len();
        let window = self.provider.window();
        // Marked as being submitted a chunk at a time: one commit per chunk rather than per
        // message, while a stop leaves at most one chunk's worth of "unknown" behind.
        for chunk in rows.chunks(window * 4) {
            self.mark_submitting(chunk, now).await?;
            let results: Vec<Result<()>> = futures_util::stream::iter(chunk.iter().cloned())
                .map(|row| self.deliver(row, now))
                .buffer_unordered(window)
                .collect()
                .await;
            results.into_iter().collect::<Result<Vec<()>>>()?;
        }
        let due = {
            let mut last = lock(&self.last_query);
            let due = self.provider.queries_receipts()
                && last.is_none_or(|t| {
                    (now - t).whole_seconds() >= self.config.http_status_poll_seconds as i64
                });
            if due {
                *last = Some(now);
            }
            due
        };
        if due {
            if let Err(e) = self.query_receipts().await {
                tracing::warn!(error = %e, "SMS delivery report query failed; asked again later");
            }
        }
        Ok(tried)
    }

    async fn mark_submitting(
        &self,
        rows: &[(i64, String, String, i64)],
        now: OffsetDateTime,
    ) -> Result<()> {
        let _writing = SMS_WRITES.lock().await;
        let mut tx = self.pool.begin().await?;
        for (id, ..) in rows {
            sqlx::query("INSERT INTO sms_submits (outbox_id, started_at) VALUES (?, ?)")
                .bind(id)
                .bind(rfc3339(now))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn deliver(
        &self,
        (id, key, payload, attempts): (i64, String, String, i64),
        now: OffsetDateTime,
    ) -> Result<()> {
        let facts: Value = serde_json::from_str(&payload).unwrap_or(Value::Null);
        let field = |k: &str| {
            facts
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let Some(kind) = SmsNoticeKind::parse(&field("kind")) else {
            return self
                .finish(
                    id,
                    "dead",
                    Some("ours"),
                    "短信类型无法识别",
                    attempts + 1,
                    now,
                )
                .await;
        };
        let sms = Sms {
            key,
            phone: field("phone"),
            kind,
            text: field("text"),
            params: facts.get("params").cloned().unwrap_or(Value::Null),
        };
        let attempts = attempts + 1;
        match self.provider.send(&sms).await {
            SmsOutcome::Accepted(receipt) => {
                let _writing = SMS_WRITES.lock().await;
                let mut tx = self.pool.begin().await?;
                sqlx::query(
                    "UPDATE outbox SET state = 'acked', attempts = ?, receipt_id = ?, sent_at = ?, acked_at = ?, \
                     last_error = NULL WHERE id = ? AND state IN ('pending', 'sent')",
                )
                .bind(attempts)
                .bind(&receipt)
                .bind(rfc3339(now))
                .bind(rfc3339(now))
                .bind(id)
                .execute(&mut *tx)
                .await?;
                // A fast gateway's receipt may have been stored before this commit.
                if !receipt.is_empty() {
                    apply_stored_receipts(&mut tx, &receipt, &rfc3339(now)).await?;
                }
                submitted(&mut tx, id).await?;
                tx.commit().await?;
            }
            SmsOutcome::Unknown(error) => {
                tracing::warn!(message = id, phone = %mask_phone(&sms.phone), "SMS outcome unknown: not resent automatically");
                self.finish(
                    id,
                    "dead",
                    Some("unknown"),
                    &format!("结果未知（短信可能已发出），为免重复不自动重发；确认对方未收到后可人工重发：{error}"),
                    attempts,
                    now,
                )
                .await?;
            }
            SmsOutcome::NotSent(error) if attempts >= i64::from(self.config.max_attempts) => {
                self.finish(
                    id,
                    "dead",
                    Some("theirs"),
                    &format!("重试 {attempts} 次后放弃：{error}"),
                    attempts,
                    now,
                )
                .await?;
            }
            SmsOutcome::NotSent(error) => {
                let next = now
                    + backoff(
                        attempts as u32,
                        self.config.backoff_initial_seconds,
                        self.config.backoff_max_seconds,
                    );
                let _writing = SMS_WRITES.lock().await;
                let mut tx = self.pool.begin().await?;
                sqlx::query(
                    "UPDATE outbox SET attempts = ?, last_error = ?, next_attempt_at = ? WHERE id = ?",
                )
                .bind(attempts)
                .bind(crate::auth::mask_id_numbers_in(&error))
                .bind(rfc3339(next))
                .bind(id)
                .execute(&mut *tx)
                .await?;
                submitted(&mut tx, id).await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// Asks the provider for the delivery reports of the accepted messages that have none
    /// (or only ENROUTE) yet and records them; returns how many were recorded.
    pub async fn query_receipts(&self) -> Result<usize> {
        if !self.provider.queries_receipts() {
            return Ok(0);
        }
        let since = self.clock.now().to_offset(CHINA) - time::Duration::days(RECEIPT_QUERY_DAYS);
        let ids: Vec<(String,)> = sqlx::query_as(
            "SELECT receipt_id FROM outbox WHERE target = ? AND state = 'acked' AND receipt_id IS NOT NULL \
             AND receipt_id != '' AND (delivery_state IS NULL OR delivery_state = 'ENROUTE') AND acked_at >= ? \
             ORDER BY id LIMIT 100",
        )
        .bind(SMS)
        .bind(rfc3339(since))
        .fetch_all(&self.pool)
        .await?;
        if ids.is_empty() {
            return Ok(0);
        }
        let ids: Vec<String> = ids.into_iter().map(|(id,)| id).collect();
        let receipts = self
            .provider
            .query_receipts(&ids)
            .await
            .map_err(|e| err!(Unavailable, "{e}"))?;
        for receipt in &receipts {
            self.receipts.record(receipt).await?;
        }
        Ok(receipts.len())
    }

    async fn finish(
        &self,
        id: i64,
        state: &str,
        fault: Option<&str>,
        error: &str,
        attempts: i64,
        now: OffsetDateTime,
    ) -> Result<()> {
        let _writing = SMS_WRITES.lock().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE outbox SET state = ?, fault = ?, last_error = ?, attempts = ?, next_attempt_at = ? WHERE id = ?",
        )
        .bind(state)
        .bind(fault)
        .bind(error)
        .bind(attempts)
        .bind(rfc3339(now))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        submitted(&mut tx, id).await?;
        tx.commit().await?;
        Ok(())
    }
}
