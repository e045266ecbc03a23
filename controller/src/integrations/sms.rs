//! SMS notices (短信通知) to the bidders registered for a project at the four key points —
//! change notice, bid opening, clarification, second quotation — through the outbox, sent by a
//! provider behind [`SmsProvider`]: an SMPP 3.4 gateway or the HTTP template API of a cloud SMS
//! service. SMS cannot be de-duplicated by the operator, so a send whose outcome is unknown (the
//! request left, no answer came) is never repeated automatically: it becomes a dead letter that
//! a person may retry after checking.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use sqlx::SqlitePool;
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use witness_schemas::integration::{
    Bidder, NewBidder, NewSmsNotice, SmsConfig, SmsNoticeKind, SmsNoticeResult, SmsProviderKind,
    IDEMPOTENCY_HEADER, SMS,
};
use witness_schemas::smpp::{self, Pdu, SubmitSm};

use super::outbox::{self, backoff, NewMessage};
use crate::auth::mask_phone;
use crate::clock::{rfc3339, Clock, CHINA};
use crate::error::Result;
use crate::{bail, catalog, err};

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

/// An SMS gateway.
pub trait SmsProvider: Send + Sync {
    fn send<'a>(&'a self, sms: &'a Sms) -> SendFuture<'a>;
}

/// SMPP 3.4: one transmitter session per message (bind_transmitter, submit_sm, unbind); a
/// notice is a handful of messages, so a kept-open session would buy nothing.
pub struct SmppProvider {
    pub address: String,
    pub system_id: String,
    pub password: String,
    pub source_addr: String,
    pub timeout: Duration,
}

impl std::fmt::Debug for SmppProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmppProvider")
            .field("address", &self.address)
            .field("system_id", &self.system_id)
            .finish_non_exhaustive()
    }
}

async fn read_pdu(stream: &mut TcpStream) -> std::io::Result<Pdu> {
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).await?;
    let length =
        Pdu::length(header).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    let mut bytes = header.to_vec();
    bytes.resize(length, 0);
    stream.read_exact(&mut bytes[4..]).await?;
    Pdu::decode(&bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

impl SmppProvider {
    async fn session(&self, sms: &Sms) -> SmsOutcome {
        let connect = tokio::time::timeout(self.timeout, TcpStream::connect(&self.address)).await;
        let mut stream = match connect {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return SmsOutcome::NotSent(format!("无法连接短信网关：{e}")),
            Err(_) => return SmsOutcome::NotSent("连接短信网关超时".to_string()),
        };
        let bind = Pdu::new(
            smpp::BIND_TRANSMITTER,
            0,
            1,
            smpp::bind_transmitter(&self.system_id, &self.password),
        );
        let answer = tokio::time::timeout(self.timeout, async {
            stream.write_all(&bind.encode()).await?;
            read_pdu(&mut stream).await
        })
        .await;
        match answer {
            Ok(Ok(pdu)) if pdu.command_id == smpp::BIND_TRANSMITTER_RESP && pdu.status == 0 => {}
            Ok(Ok(pdu)) => {
                return SmsOutcome::NotSent(format!(
                    "短信网关拒绝登录（command_status 0x{:08X}）",
                    pdu.status
                ))
            }
            Ok(Err(e)) => return SmsOutcome::NotSent(format!("短信网关登录失败：{e}")),
            Err(_) => return SmsOutcome::NotSent("短信网关登录超时".to_string()),
        }
        let submit = Pdu::new(
            smpp::SUBMIT_SM,
            0,
            2,
            SubmitSm {
                source_addr: self.source_addr.clone(),
                destination_addr: format!("86{}", sms.phone),
                text: sms.text.clone(),
            }
            .encode(),
        );
        if let Err(e) = stream.write_all(&submit.encode()).await {
            // A failed write may still have delivered part or all of the PDU.
            return SmsOutcome::Unknown(format!("发送 submit_sm 时连接中断：{e}"));
        }
        let answer = tokio::time::timeout(self.timeout, read_pdu(&mut stream)).await;
        let outcome = match answer {
            Ok(Ok(pdu)) if pdu.command_id == smpp::SUBMIT_SM_RESP && pdu.status == 0 => {
                let id = smpp::Reader::new(&pdu.body).c_string().unwrap_or_default();
                SmsOutcome::Accepted(id)
            }
            // The gateway answered with an error: it did not take the message.
            Ok(Ok(pdu)) => SmsOutcome::NotSent(format!(
                "短信网关未接收（command_status 0x{:08X}）",
                pdu.status
            )),
            Ok(Err(e)) => SmsOutcome::Unknown(format!("submit_sm 之后没有应答：{e}")),
            Err(_) => SmsOutcome::Unknown("submit_sm 之后应答超时".to_string()),
        };
        // Unbinding is a courtesy; the outcome is already decided.
        let unbind = Pdu::new(smpp::UNBIND, 0, 3, Vec::new());
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            stream.write_all(&unbind.encode()).await?;
            read_pdu(&mut stream).await
        })
        .await;
        outcome
    }
}

impl SmsProvider for SmppProvider {
    fn send<'a>(&'a self, sms: &'a Sms) -> SendFuture<'a> {
        Box::pin(self.session(sms))
    }
}

/// The HTTP template style of the cloud SMS services: a JSON request naming a registered
/// template and its parameters; `{"Code": "OK", "BizId": …}` back.
pub struct HttpTemplateProvider {
    pub url: String,
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

impl SmsProvider for HttpTemplateProvider {
    fn send<'a>(&'a self, sms: &'a Sms) -> SendFuture<'a> {
        Box::pin(self.post(sms))
    }
}

/// Builds the configured provider, reading its secret files.
pub fn provider(config: &SmsConfig) -> Result<Box<dyn SmsProvider>> {
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
            Ok(Box::new(SmppProvider {
                address: address.clone(),
                system_id: system_id.clone(),
                password: super::read_token(password_file)?,
                source_addr: config.smpp_source_addr.clone(),
                timeout,
            }))
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
            Ok(Box::new(HttpTemplateProvider {
                url: url.clone(),
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
    let id = sqlx::query(
        "INSERT INTO project_bidders (project_id, name, phone, created_at) VALUES (?, ?, ?, ?)",
    )
    .bind(project.id)
    .bind(name)
    .bind(phone)
    .bind(rfc3339(now.to_offset(CHINA)))
    .execute(pool)
    .await
    .map_err(|e| crate::error::Error::from(e).context(format!("项目 {number} 的投标人 {name}")))?
    .last_insert_rowid();
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

/// The SMS worker: sends due SMS messages one at a time.
pub struct SmsDelivery {
    pool: SqlitePool,
    clock: Arc<dyn Clock>,
    config: SmsConfig,
    provider: Box<dyn SmsProvider>,
}

impl std::fmt::Debug for SmsDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsDelivery").finish_non_exhaustive()
    }
}

impl SmsDelivery {
    pub fn new(
        pool: SqlitePool,
        clock: Arc<dyn Clock>,
        config: SmsConfig,
        provider: Box<dyn SmsProvider>,
    ) -> SmsDelivery {
        SmsDelivery {
            pool,
            clock,
            config,
            provider,
        }
    }

    /// Sends every due SMS once; returns how many were tried.
    pub async fn pass(&self) -> Result<usize> {
        let now = self.clock.now().to_offset(CHINA);
        let rows: Vec<(i64, String, String, i64)> = sqlx::query_as(
            "SELECT id, idempotency_key, payload, attempts FROM outbox \
             WHERE target = ? AND state IN ('pending', 'sent') AND next_attempt_at <= ? ORDER BY id LIMIT 200",
        )
        .bind(SMS)
        .bind(rfc3339(now))
        .fetch_all(&self.pool)
        .await?;
        let tried = rows.len();
        for (id, key, payload, attempts) in rows {
            let facts: Value = serde_json::from_str(&payload).unwrap_or(Value::Null);
            let field = |k: &str| {
                facts
                    .get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            let Some(kind) = SmsNoticeKind::parse(&field("kind")) else {
                self.finish(
                    id,
                    "dead",
                    Some("ours"),
                    "短信类型无法识别",
                    attempts + 1,
                    now,
                )
                .await?;
                continue;
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
                    sqlx::query(
                        "UPDATE outbox SET state = 'acked', attempts = ?, receipt_id = ?, sent_at = ?, acked_at = ?, \
                         last_error = NULL WHERE id = ? AND state IN ('pending', 'sent')",
                    )
                    .bind(attempts)
                    .bind(receipt)
                    .bind(rfc3339(now))
                    .bind(rfc3339(now))
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
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
                    sqlx::query(
                        "UPDATE outbox SET attempts = ?, last_error = ?, next_attempt_at = ? WHERE id = ?",
                    )
                    .bind(attempts)
                    .bind(crate::auth::mask_id_numbers_in(&error))
                    .bind(rfc3339(next))
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                }
            }
        }
        Ok(tried)
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
        sqlx::query(
            "UPDATE outbox SET state = ?, fault = ?, last_error = ?, attempts = ?, next_attempt_at = ? WHERE id = ?",
        )
        .bind(state)
        .bind(fault)
        .bind(error)
        .bind(attempts)
        .bind(rfc3339(now))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
