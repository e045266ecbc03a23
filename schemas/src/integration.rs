//! Platform integrations (issue 9): the exchanges with the provincial expert library, their
//! versioned JSON Schemas (`schemas/json/expert-library/v1/`), the TOML settings of each target,
//! and the API bodies of the delivery core (outbox messages, target status, reconciliation).

use std::path::PathBuf;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::market_subject::{MarketSubjectConfig, MARKET_SUBJECT_LIBRARY};

/// The schema version every expert-library payload is written and validated against.
pub const EXPERT_LIBRARY_SCHEMA_VERSION: &str = "v1";

/// The target name of the provincial expert library (省综合评标专家库) in the outbox and the API.
pub const EXPERT_LIBRARY: &str = "expert_library";

/// The target name of the online supervision platform (在线监管平台).
pub const SUPERVISION_PLATFORM: &str = "supervision_platform";

/// The target name of the finance bureau (财政局).
pub const FINANCE_BUREAU: &str = "finance_bureau";

/// The HTTP header that carries a message's idempotency key, so the peer can de-duplicate.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// The seven exchanges with the provincial expert library.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Exchange {
    /// 专家抽取申请 for a project opening today; the reply carries the drawing result.
    ExpertDrawRequest,
    /// 评标监控视频: references to the project's archived video files.
    EvaluationVideo,
    /// 专家评分.
    ExpertScores,
    /// 中标候选人公示.
    CandidatePublicity,
    /// 中标结果公告.
    ResultAnnouncement,
    /// 专家信用记录.
    ExpertCredit,
    /// 门禁身份核验事件, from the gates' event logs.
    GateIdentity,
}

impl Exchange {
    pub const ALL: [Exchange; 7] = [
        Exchange::ExpertDrawRequest,
        Exchange::EvaluationVideo,
        Exchange::ExpertScores,
        Exchange::CandidatePublicity,
        Exchange::ResultAnnouncement,
        Exchange::ExpertCredit,
        Exchange::GateIdentity,
    ];

    /// The name in the outbox, the API and the endpoint path (`<base_url>/<name>`).
    pub fn as_str(self) -> &'static str {
        match self {
            Exchange::ExpertDrawRequest => "expert-draw-request",
            Exchange::EvaluationVideo => "evaluation-video",
            Exchange::ExpertScores => "expert-scores",
            Exchange::CandidatePublicity => "candidate-publicity",
            Exchange::ResultAnnouncement => "result-announcement",
            Exchange::ExpertCredit => "expert-credit",
            Exchange::GateIdentity => "gate-identity",
        }
    }

    pub fn parse(text: &str) -> Option<Exchange> {
        Exchange::ALL.into_iter().find(|e| e.as_str() == text)
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Exchange::ExpertDrawRequest => "专家抽取申请",
            Exchange::EvaluationVideo => "评标监控视频",
            Exchange::ExpertScores => "专家评分",
            Exchange::CandidatePublicity => "中标候选人公示",
            Exchange::ResultAnnouncement => "中标结果公告",
            Exchange::ExpertCredit => "专家信用记录",
            Exchange::GateIdentity => "门禁身份核验",
        }
    }

    /// Exchanges whose messages must arrive in the order they were written: a gate's events
    /// are a sequence, and a result announcement must not overtake its candidate publicity.
    /// A failed message of such an exchange holds back the later ones of the same exchange.
    pub fn ordered(self) -> bool {
        matches!(
            self,
            Exchange::GateIdentity | Exchange::CandidatePublicity | Exchange::ResultAnnouncement
        )
    }
}

/// The exchange name a target's reply schema is registered under.
pub const REPLY: &str = "reply";

/// Every embedded JSON Schema: (target, exchange, schema text). A target's reply is registered
/// under the exchange name [`REPLY`]. Adding a target's exchanges is adding rows here; the
/// controller validates what it sends, and the stand-in what it receives, by the same rows.
const SCHEMA_FILES: &[(&str, &str, &str)] = &[
    (
        EXPERT_LIBRARY,
        "expert-draw-request",
        include_str!("../json/expert-library/v1/expert-draw-request.schema.json"),
    ),
    (
        EXPERT_LIBRARY,
        "evaluation-video",
        include_str!("../json/expert-library/v1/evaluation-video.schema.json"),
    ),
    (
        EXPERT_LIBRARY,
        "expert-scores",
        include_str!("../json/expert-library/v1/expert-scores.schema.json"),
    ),
    (
        EXPERT_LIBRARY,
        "candidate-publicity",
        include_str!("../json/expert-library/v1/candidate-publicity.schema.json"),
    ),
    (
        EXPERT_LIBRARY,
        "result-announcement",
        include_str!("../json/expert-library/v1/result-announcement.schema.json"),
    ),
    (
        EXPERT_LIBRARY,
        "expert-credit",
        include_str!("../json/expert-library/v1/expert-credit.schema.json"),
    ),
    (
        EXPERT_LIBRARY,
        "gate-identity",
        include_str!("../json/expert-library/v1/gate-identity.schema.json"),
    ),
    (
        EXPERT_LIBRARY,
        REPLY,
        include_str!("../json/expert-library/v1/reply.schema.json"),
    ),
    // The online supervision platform (在线监管平台): its data sets.
    (
        SUPERVISION_PLATFORM,
        "construction-project",
        include_str!("../json/supervision/v1/construction-project.schema.json"),
    ),
    (
        SUPERVISION_PLATFORM,
        "procurement-project",
        include_str!("../json/supervision/v1/procurement-project.schema.json"),
    ),
    (
        SUPERVISION_PLATFORM,
        "land-use-right",
        include_str!("../json/supervision/v1/land-use-right.schema.json"),
    ),
    (
        SUPERVISION_PLATFORM,
        "mining-right",
        include_str!("../json/supervision/v1/mining-right.schema.json"),
    ),
    (
        SUPERVISION_PLATFORM,
        "state-property",
        include_str!("../json/supervision/v1/state-property.schema.json"),
    ),
    (
        SUPERVISION_PLATFORM,
        "credit",
        include_str!("../json/supervision/v1/credit.schema.json"),
    ),
    (
        SUPERVISION_PLATFORM,
        "opening-evaluation",
        include_str!("../json/supervision/v1/opening-evaluation.schema.json"),
    ),
    (
        SUPERVISION_PLATFORM,
        REPLY,
        include_str!("../json/supervision/v1/reply.schema.json"),
    ),
    // The finance bureau (财政局): the stages of a government-procurement project.
    (
        FINANCE_BUREAU,
        "project",
        include_str!("../json/finance/v1/project.schema.json"),
    ),
    (
        FINANCE_BUREAU,
        "bids",
        include_str!("../json/finance/v1/bids.schema.json"),
    ),
    (
        FINANCE_BUREAU,
        "opening",
        include_str!("../json/finance/v1/opening.schema.json"),
    ),
    (
        FINANCE_BUREAU,
        "evaluation",
        include_str!("../json/finance/v1/evaluation.schema.json"),
    ),
    (
        FINANCE_BUREAU,
        "award",
        include_str!("../json/finance/v1/award.schema.json"),
    ),
    (
        FINANCE_BUREAU,
        REPLY,
        include_str!("../json/finance/v1/reply.schema.json"),
    ),
    // The market-subject library (主体库): its pushes, their reply, and its queries with
    // their answers (`<query>-answer`).
    (
        MARKET_SUBJECT_LIBRARY,
        "legal-person",
        include_str!("../json/market-subject/v1/legal-person.schema.json"),
    ),
    (
        MARKET_SUBJECT_LIBRARY,
        "natural-person",
        include_str!("../json/market-subject/v1/natural-person.schema.json"),
    ),
    (
        MARKET_SUBJECT_LIBRARY,
        "performance",
        include_str!("../json/market-subject/v1/performance.schema.json"),
    ),
    (
        MARKET_SUBJECT_LIBRARY,
        "reward",
        include_str!("../json/market-subject/v1/reward.schema.json"),
    ),
    (
        MARKET_SUBJECT_LIBRARY,
        "violation",
        include_str!("../json/market-subject/v1/violation.schema.json"),
    ),
    (
        MARKET_SUBJECT_LIBRARY,
        "blacklist",
        include_str!("../json/market-subject/v1/blacklist.schema.json"),
    ),
    (
        MARKET_SUBJECT_LIBRARY,
        "blacklist-revocation",
        include_str!("../json/market-subject/v1/blacklist-revocation.schema.json"),
    ),
    (
        MARKET_SUBJECT_LIBRARY,
        "contract-performance",
        include_str!("../json/market-subject/v1/contract-performance.schema.json"),
    ),
    (
        MARKET_SUBJECT_LIBRARY,
        "bid-file-upload",
        include_str!("../json/market-subject/v1/bid-file-upload.schema.json"),
    ),
    (
        MARKET_SUBJECT_LIBRARY,
        REPLY,
        include_str!("../json/market-subject/v1/reply.schema.json"),
    ),
    (
        MARKET_SUBJECT_LIBRARY,
        "legal-person-basic",
        include_str!("../json/market-subject/v1/legal-person-basic.schema.json"),
    ),
    (
        MARKET_SUBJECT_LIBRARY,
        "legal-person-basic-answer",
        include_str!("../json/market-subject/v1/legal-person-basic-answer.schema.json"),
    ),
    (
        MARKET_SUBJECT_LIBRARY,
        "legal-person-comprehensive",
        include_str!("../json/market-subject/v1/legal-person-comprehensive.schema.json"),
    ),
    (
        MARKET_SUBJECT_LIBRARY,
        "legal-person-comprehensive-answer",
        include_str!("../json/market-subject/v1/legal-person-comprehensive-answer.schema.json"),
    ),
    (
        MARKET_SUBJECT_LIBRARY,
        "qr-fetch",
        include_str!("../json/market-subject/v1/qr-fetch.schema.json"),
    ),
    (
        MARKET_SUBJECT_LIBRARY,
        "qr-fetch-answer",
        include_str!("../json/market-subject/v1/qr-fetch-answer.schema.json"),
    ),
    (
        MARKET_SUBJECT_LIBRARY,
        "qr-scan",
        include_str!("../json/market-subject/v1/qr-scan.schema.json"),
    ),
    (
        MARKET_SUBJECT_LIBRARY,
        "qr-scan-answer",
        include_str!("../json/market-subject/v1/qr-scan-answer.schema.json"),
    ),
];

/// The compiled validators, built once, in the order of `SCHEMA_FILES`.
fn validators() -> &'static [(&'static str, &'static str, jsonschema::Validator)] {
    static VALIDATORS: OnceLock<Vec<(&str, &str, jsonschema::Validator)>> = OnceLock::new();
    VALIDATORS.get_or_init(|| {
        SCHEMA_FILES
            .iter()
            .map(|(target, exchange, text)| {
                let schema: serde_json::Value =
                    serde_json::from_str(text).expect("embedded schemas are valid JSON");
                let validator =
                    jsonschema::validator_for(&schema).expect("embedded schemas compile");
                (*target, *exchange, validator)
            })
            .collect()
    })
}

fn check(validator: &jsonschema::Validator, value: &serde_json::Value) -> Result<(), String> {
    let problems: Vec<String> = validator
        .iter_errors(value)
        .take(5)
        .map(|e| format!("{} {}", e.instance_path(), e))
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// Whether `target` has a schema for `exchange`.
pub fn has_schema(target: &str, exchange: &str) -> bool {
    validators()
        .iter()
        .any(|(t, e, _)| *t == target && *e == exchange)
}

/// Checks a payload (or, with [`REPLY`], a reply) against the schema of a target's exchange;
/// the error lists the first few violations, or says there is no such schema.
pub fn validate_message(
    target: &str,
    exchange: &str,
    payload: &serde_json::Value,
) -> Result<(), String> {
    match validators()
        .iter()
        .find(|(t, e, _)| *t == target && *e == exchange)
    {
        Some((_, _, validator)) => check(validator, payload),
        None => Err(format!(
            "{target} 没有交换 {exchange} 的接口规范 (no schema for this exchange)"
        )),
    }
}

/// Checks a payload against its expert-library exchange's schema.
pub fn validate(exchange: Exchange, payload: &serde_json::Value) -> Result<(), String> {
    validate_message(EXPERT_LIBRARY, exchange.as_str(), payload)
}

/// Checks a reply of the expert library against the reply schema.
pub fn validate_reply(reply: &serde_json::Value) -> Result<(), String> {
    validate_message(EXPERT_LIBRARY, REPLY, reply)
}

/// The schema version of the supervision platform's and the finance bureau's payloads.
pub const SUPERVISION_SCHEMA_VERSION: &str = "v1";
pub const FINANCE_SCHEMA_VERSION: &str = "v1";

/// The data sets of the supervision platform and the stages of the finance bureau:
/// (target, exchange, Chinese name, what in the catalog feeds it). A `None` source means the
/// catalog holds nothing for it: it is listed, and refused as not supported yet, rather than
/// sent with invented content.
pub const DATA_SETS: &[(&str, &str, &str, Option<&str>)] = &[
    (
        SUPERVISION_PLATFORM,
        "construction-project",
        "工程建设项目",
        Some("工程建设类项目登记统一交易标识码和标段编号时"),
    ),
    (
        SUPERVISION_PLATFORM,
        "procurement-project",
        "政府采购项目",
        Some("政府采购类项目登记统一交易标识码和标段编号时"),
    ),
    (
        SUPERVISION_PLATFORM,
        "land-use-right",
        "土地使用权出让",
        Some("土地使用权类项目登记统一交易标识码和标段编号时"),
    ),
    (
        SUPERVISION_PLATFORM,
        "mining-right",
        "矿业权出让",
        Some("矿业权类项目登记统一交易标识码和标段编号时"),
    ),
    (
        SUPERVISION_PLATFORM,
        "state-property",
        "国有产权（实物资产）",
        Some("国有产权类项目登记统一交易标识码和标段编号时"),
    ),
    (
        SUPERVISION_PLATFORM,
        "credit",
        "信用信息",
        Some("录入专家信用记录时"),
    ),
    (
        SUPERVISION_PLATFORM,
        "opening-evaluation",
        "开标评标",
        Some("录入中标候选人公示时（含开标时间、投标人、抽取专家）"),
    ),
    (SUPERVISION_PLATFORM, "subject", "交易主体", None),
    (SUPERVISION_PLATFORM, "approval", "审批核准", None),
    (
        FINANCE_BUREAU,
        "project",
        "采购项目",
        Some("政府采购类项目登记统一交易标识码和标段编号时"),
    ),
    (FINANCE_BUREAU, "tender", "采购公告", None),
    (
        FINANCE_BUREAU,
        "bids",
        "投标供应商",
        Some("政府采购类项目登记投标人时"),
    ),
    (
        FINANCE_BUREAU,
        "opening",
        "开标",
        Some("政府采购类项目开标时间已到（七天内）"),
    ),
    (
        FINANCE_BUREAU,
        "evaluation",
        "评审结果",
        Some("录入中标候选人公示时"),
    ),
    (
        FINANCE_BUREAU,
        "award",
        "成交结果",
        Some("录入中标结果公告时"),
    ),
];

/// One data set or stage as the API lists it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DataSet {
    pub target: String,
    /// The exchange name (and endpoint path).
    pub name: String,
    pub label: String,
    /// What in the catalog feeds it; absent: not supported yet (尚不支持).
    pub source: Option<String>,
}

/// The data sets of a target (empty for targets without any).
pub fn data_sets(target: &str) -> Vec<DataSet> {
    DATA_SETS
        .iter()
        .filter(|(t, ..)| *t == target)
        .map(|(t, name, label, source)| DataSet {
            target: t.to_string(),
            name: name.to_string(),
            label: label.to_string(),
            source: source.map(str::to_string),
        })
        .collect()
}

/// Body of `POST /api/integrations/{target}/extractions`: extract one data set of a project
/// again now (after its data was corrected), as a new message.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtractionOrder {
    /// The data set or stage (`construction-project`, `credit`, `award`…).
    pub data_set: String,
    pub project_number: String,
}

/// The reply codes of the expert library.
pub const REPLY_ACCEPTED: &str = "0";
pub const REPLY_DUPLICATE: &str = "1";
pub const REPLY_REFUSED: &str = "2";

/// `[integrations]` in the TOML file: one section per target system.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntegrationsConfig {
    pub expert_library: Option<ExpertLibraryConfig>,
    /// 主体库: subject records pushed, legal-person queries and subject QR codes.
    pub market_subject_library: Option<MarketSubjectConfig>,
    /// 在线监管平台: the data sets extracted from the catalog.
    pub supervision_platform: Option<HttpTargetConfig>,
    /// 财政局: government-procurement project data at each stage.
    pub finance_bureau: Option<HttpTargetConfig>,
    /// SMS notices to a project's bidders (短信通知).
    pub sms: Option<SmsConfig>,
}

/// The SMS target name in the outbox and the API.
pub const SMS: &str = "sms";

/// How SMS leave: an SMPP 3.4 gateway, or the HTTP template API of a cloud SMS service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmsProviderKind {
    Smpp,
    HttpTemplate,
}

/// `[integrations.sms]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsConfig {
    pub provider: SmsProviderKind,
    /// SMPP: `host:port` of the gateway (SMSC).
    pub smpp_address: Option<String>,
    /// SMPP: system_id, and a file holding the password (never logged).
    pub smpp_system_id: Option<String>,
    pub smpp_password_file: Option<PathBuf>,
    /// SMPP: the sender shown on the phone (source_addr).
    #[serde(default = "default_source")]
    pub smpp_source_addr: String,
    /// HTTP template: the URL the JSON request is POSTed to, and a bearer token file.
    pub http_url: Option<String>,
    pub http_token_file: Option<PathBuf>,
    /// HTTP template: the signature (签名) registered with the service.
    #[serde(default = "default_sign")]
    pub http_sign_name: String,
    /// HTTP template: the template code registered for each notice kind.
    #[serde(default)]
    pub http_templates: std::collections::BTreeMap<String, String>,
    /// The name in the texts (【…】).
    #[serde(default = "default_sign")]
    pub center_name: String,
    #[serde(default = "default_sms_attempts")]
    pub max_attempts: u32,
    #[serde(default = "default_backoff_initial")]
    pub backoff_initial_seconds: u64,
    #[serde(default = "default_backoff_max")]
    pub backoff_max_seconds: u64,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: f64,
    /// SMPP: submit_sm sent before their answers come back, on the one kept-open session.
    #[serde(default = "default_sms_window")]
    pub smpp_window: u32,
    /// SMPP: seconds between enquire_link keep-alives; an unanswered one ends the session.
    #[serde(default = "default_enquire_link")]
    pub smpp_enquire_link_seconds: f64,
    /// HTTP template: where delivery reports are queried (`{"BizIds": […]}` → `Details`);
    /// absent: no delivery reports for this provider.
    #[serde(default)]
    pub http_status_url: Option<String>,
    /// HTTP template: seconds between two status queries.
    #[serde(default = "default_status_poll")]
    pub http_status_poll_seconds: u64,
}

fn default_sms_window() -> u32 {
    8
}
fn default_enquire_link() -> f64 {
    30.0
}
fn default_status_poll() -> u64 {
    60
}

fn default_source() -> String {
    "JYZX".to_string()
}
fn default_sign() -> String {
    "公共资源交易中心".to_string()
}
fn default_sms_attempts() -> u32 {
    24
}

/// The four points at which bidders are told by SMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SmsNoticeKind {
    /// 变更公告.
    ChangeNotice,
    /// 开标.
    BidOpening,
    /// 标中质询 (clarification during evaluation).
    Clarification,
    /// 二次报价.
    SecondQuotation,
}

impl SmsNoticeKind {
    pub const ALL: [SmsNoticeKind; 4] = [
        SmsNoticeKind::ChangeNotice,
        SmsNoticeKind::BidOpening,
        SmsNoticeKind::Clarification,
        SmsNoticeKind::SecondQuotation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SmsNoticeKind::ChangeNotice => "change_notice",
            SmsNoticeKind::BidOpening => "bid_opening",
            SmsNoticeKind::Clarification => "clarification",
            SmsNoticeKind::SecondQuotation => "second_quotation",
        }
    }

    pub fn parse(text: &str) -> Option<SmsNoticeKind> {
        SmsNoticeKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// Body of `POST /api/projects/{number}/bidders`: a bidder registered for the project.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBidder {
    pub name: String,
    /// Mainland mobile number (11 digits, 1…); absent: the bidder gets no SMS (and the notice
    /// says so).
    pub phone: Option<String>,
}

/// A registered bidder; the phone is masked.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Bidder {
    pub id: i64,
    pub name: String,
    pub phone: Option<String>,
}

/// Body of `POST /api/projects/{number}/sms-notices`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSmsNotice {
    pub kind: SmsNoticeKind,
    /// Clarification and second quotation: the answer deadline, RFC 3339.
    pub deadline: Option<String>,
}

/// What a notice queued: one message per bidder with a phone, and the bidders without one.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SmsNoticeResult {
    pub notice_id: i64,
    pub message_ids: Vec<i64>,
    /// Bidders that have no phone number: not notified by SMS (tell them another way).
    pub without_phone: Vec<String>,
}

/// One SMS as the delivery-report view shows it (`GET /api/integrations/sms/deliveries`): what
/// the gateway said (the outbox state) and what the handset's delivery report said.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SmsDeliveryReport {
    /// The outbox message id.
    pub id: i64,
    pub project_number: Option<String>,
    /// The notice kind (`change_notice`, …).
    pub exchange: String,
    pub bidder: String,
    /// Masked (138****5678).
    pub phone: String,
    pub state: MessageState,
    /// The gateway's message id.
    pub receipt_id: Option<String>,
    /// The receipt state in SMPP's spelling (DELIVRD, UNDELIV, EXPIRED, REJECTD, DELETED,
    /// UNKNOWN, ACCEPTD, ENROUTE); absent until a receipt came.
    pub delivery_state: Option<String>,
    /// Whether that state says the handset did not get the message.
    pub delivery_failed: bool,
    pub delivery_error: Option<String>,
    pub delivered_at: Option<String>,
    /// When the receipt's state was reached (its done date), or received.
    pub delivery_reported_at: Option<String>,
    /// The message that resent this one by hand, if any.
    pub resent_as: Option<i64>,
    pub sent_at: Option<String>,
}

/// `[integrations.expert_library]`: where the provincial expert library is and how hard to try.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpertLibraryConfig {
    /// Base URL; each exchange is POSTed to `<base_url>/<exchange>`.
    pub base_url: String,
    /// 交易平台标识码 of this trading center, sent as PLATFORM_CODE.
    pub platform_code: String,
    /// A file holding the bearer token the expert library issued (never logged).
    pub token_file: Option<PathBuf>,
    /// Attempts before a message goes to the dead letters. Default 72: with the default
    /// back-off (jittered steps of at least 30 minutes once capped) that outlasts a day of
    /// outage even at the shortest jitter.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// First retry delay in seconds; doubled per attempt up to `backoff_max_seconds`.
    #[serde(default = "default_backoff_initial")]
    pub backoff_initial_seconds: u64,
    #[serde(default = "default_backoff_max")]
    pub backoff_max_seconds: u64,
    /// While messages wait out their back-off, the oldest is tried at least this often (seconds);
    /// when it gets through, the peer is back and every waiting message is sent at once, so
    /// recovery after an outage does not wait for the longest back-off.
    #[serde(default = "default_probe")]
    pub probe_seconds: u64,
    /// Seconds to wait for an answer before counting the attempt as failed.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: f64,
    /// Experts asked for in the daily drawing requests (EXPERT_COUNT).
    #[serde(default = "default_expert_count")]
    pub expert_count: u32,
    /// Where evaluations take place (EVALUATION_PLACE).
    #[serde(default = "default_place")]
    pub evaluation_place: String,
}

impl ExpertLibraryConfig {
    /// The transport settings the delivery core needs.
    pub fn transport(&self) -> HttpTargetConfig {
        HttpTargetConfig {
            base_url: self.base_url.clone(),
            platform_code: self.platform_code.clone(),
            token_file: self.token_file.clone(),
            max_attempts: self.max_attempts,
            backoff_initial_seconds: self.backoff_initial_seconds,
            backoff_max_seconds: self.backoff_max_seconds,
            probe_seconds: self.probe_seconds,
            timeout_seconds: self.timeout_seconds,
        }
    }
}

/// An HTTP target of the delivery core (`[integrations.supervision_platform]`,
/// `[integrations.finance_bureau]`, and the transport part of the expert library's section):
/// where it is and how hard to try. Each exchange is POSTed to `<base_url>/<path>`, the path
/// chosen by the target's adapter.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpTargetConfig {
    pub base_url: String,
    /// 交易平台标识码 of this trading center, sent as PLATFORM_CODE.
    pub platform_code: String,
    /// A file holding the bearer token the target issued (never logged).
    pub token_file: Option<PathBuf>,
    /// Attempts before a message goes to the dead letters (see `ExpertLibraryConfig`).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    #[serde(default = "default_backoff_initial")]
    pub backoff_initial_seconds: u64,
    #[serde(default = "default_backoff_max")]
    pub backoff_max_seconds: u64,
    #[serde(default = "default_probe")]
    pub probe_seconds: u64,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: f64,
}

fn default_max_attempts() -> u32 {
    72
}
fn default_backoff_initial() -> u64 {
    10
}
fn default_backoff_max() -> u64 {
    3600
}
fn default_probe() -> u64 {
    60
}
fn default_timeout() -> f64 {
    10.0
}
fn default_expert_count() -> u32 {
    5
}
fn default_place() -> String {
    "评标区".to_string()
}

/// The state of an outbox message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageState {
    /// Not yet delivered; waits for `next_attempt_at`.
    Pending,
    /// Sent at least once without an acknowledgement (the answer was lost, late or garbled);
    /// sent again with the same idempotency key.
    Sent,
    /// Acknowledged by the peer.
    Acked,
    /// Given up: after `max_attempts`, or at once when our own data violates the schema.
    Dead,
}

impl MessageState {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageState::Pending => "pending",
            MessageState::Sent => "sent",
            MessageState::Acked => "acked",
            MessageState::Dead => "dead",
        }
    }

    pub fn parse(text: &str) -> Option<MessageState> {
        [
            MessageState::Pending,
            MessageState::Sent,
            MessageState::Acked,
            MessageState::Dead,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// One outbox message as the API shows it (the payload is not shown: it holds ID numbers).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OutboxMessage {
    pub id: i64,
    pub target: String,
    pub exchange: String,
    pub idempotency_key: String,
    pub project_number: Option<String>,
    pub state: MessageState,
    pub attempts: i64,
    pub next_attempt_at: String,
    pub last_error: Option<String>,
    /// For dead letters: `ours` (本系统数据错误, fix the data and retry) or `theirs`.
    pub fault: Option<String>,
    pub created_at: String,
    pub sent_at: Option<String>,
    pub acked_at: Option<String>,
}

/// A target system's delivery health, for the integrations page.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TargetStatus {
    pub target: String,
    pub label: String,
    pub configured: bool,
    /// Pending and sent-but-unacknowledged messages.
    pub queue_depth: i64,
    pub dead: i64,
    pub acked: i64,
    pub last_success_at: Option<String>,
    /// The most recent failures (pending or dead messages with an error).
    pub failures: Vec<OutboxMessage>,
}

/// Body of `PUT /api/projects/{number}/trade-codes`: the codes the platforms identify a project
/// by, which the catalog does not otherwise have.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TradeCodes {
    /// 统一交易标识码.
    pub unified_deal_code: String,
    /// 标段（包）编号.
    pub bid_section_code: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpertScore {
    pub expert_name: String,
    pub id_number: String,
    pub bidder_name: String,
    /// 统一社会信用代码 of the bidder.
    pub bidder_code: String,
    pub score: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Candidate {
    pub rank: u32,
    pub bidder_name: String,
    pub bidder_code: String,
    /// Decimal string in yuan, e.g. `1234567.89`.
    pub bid_price: String,
}

/// Body of `POST /api/projects/{number}/evaluation-records`: evaluation results the catalog
/// does not otherwise hold, recorded so they can be reported to the expert library.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum EvaluationRecord {
    ExpertScores {
        scores: Vec<ExpertScore>,
    },
    CandidatePublicity {
        /// RFC 3339.
        publicity_start: String,
        publicity_end: String,
        candidates: Vec<Candidate>,
    },
    ResultAnnouncement {
        winner_name: String,
        winner_code: String,
        win_price: String,
        /// RFC 3339.
        notice_time: String,
    },
    ExpertCredit {
        expert_name: String,
        id_number: String,
        /// `good` or `bad`.
        credit_type: String,
        content: String,
        /// RFC 3339.
        record_time: String,
    },
}

impl EvaluationRecord {
    pub fn exchange(&self) -> Exchange {
        match self {
            EvaluationRecord::ExpertScores { .. } => Exchange::ExpertScores,
            EvaluationRecord::CandidatePublicity { .. } => Exchange::CandidatePublicity,
            EvaluationRecord::ResultAnnouncement { .. } => Exchange::ResultAnnouncement,
            EvaluationRecord::ExpertCredit { .. } => Exchange::ExpertCredit,
        }
    }
}

/// Body of `POST /api/integrations/expert_library/draw-requests`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DrawRequestOrder {
    /// One project; without it, every project opening today (China Standard Time).
    pub project_number: Option<String>,
    /// EXPERT_COUNT; default from the configuration.
    pub expert_count: Option<u32>,
}

/// What enqueuing produced: the messages written (already queued ones are not repeated).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Enqueued {
    pub message_ids: Vec<i64>,
}

/// One line of a reconciliation report: a (统一交易标识码, 标段, exchange) group.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReconciliationLine {
    pub unified_deal_code: Option<String>,
    pub bid_section_code: Option<String>,
    pub exchange: String,
    /// Messages written that day.
    pub total: i64,
    /// Sent at least once.
    pub sent: i64,
    pub acked: i64,
    /// Dead letters.
    pub failed: i64,
    /// Still waiting (pending or unacknowledged).
    pub waiting: i64,
    /// Answers where the peer said it already had the message: resends its de-duplication
    /// absorbed.
    pub duplicate_replies: i64,
}

/// The daily reconciliation report of one target (对账报告), archived as JSON in the data folder.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReconciliationReport {
    pub target: String,
    /// The day (China Standard Time), `YYYY-MM-DD`: messages written that day.
    pub day: String,
    pub generated_at: String,
    pub lines: Vec<ReconciliationLine>,
    pub total: i64,
    pub acked: i64,
    pub failed: i64,
    pub waiting: i64,
    /// Every message of the day acknowledged, each once by its idempotency key.
    pub all_delivered: bool,
    /// Where the archived copy is, relative to the data folder.
    pub file: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_schema_compiles_and_refuses_an_empty_object() {
        for exchange in Exchange::ALL {
            let problems = validate(exchange, &serde_json::json!({})).unwrap_err();
            assert!(
                problems.contains("PLATFORM_CODE"),
                "{exchange:?}: {problems}"
            );
        }
        assert!(validate_reply(&serde_json::json!({"CODE": "0", "MESSAGE": ""})).is_ok());
        // Every data set and stage with a source has a schema, and every schema refuses an
        // empty object by naming the platform code; those without a source have none.
        for (target, name, _, source) in DATA_SETS {
            assert_eq!(
                has_schema(target, name),
                source.is_some(),
                "{target} {name}"
            );
            if source.is_some() {
                let problems = validate_message(target, name, &serde_json::json!({})).unwrap_err();
                assert!(problems.contains("PLATFORM_CODE"), "{name}: {problems}");
            }
        }
        for target in [SUPERVISION_PLATFORM, FINANCE_BUREAU] {
            assert!(validate_message(
                target,
                REPLY,
                &serde_json::json!({"CODE": "1", "MESSAGE": "重复"})
            )
            .is_ok());
            assert!(validate_message(
                target,
                REPLY,
                &serde_json::json!({"CODE": "9", "MESSAGE": ""})
            )
            .is_err());
        }
        assert!(
            validate_message(FINANCE_BUREAU, "tender", &serde_json::json!({}))
                .unwrap_err()
                .contains("no schema")
        );
        assert!(validate_reply(&serde_json::json!({"CODE": 0})).is_err());
    }
}
