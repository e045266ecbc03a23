//! The market-subject library (主体库, issue 9 part 3): its push exchanges and synchronous
//! queries (JSON Schemas in `schemas/json/market-subject/v1/`), its TOML settings, and the API
//! bodies of subject records, legal-person queries and subject QR codes.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::integration::HttpTargetConfig;

/// The target name of the market-subject library in the outbox, the API and the schema table.
pub const MARKET_SUBJECT_LIBRARY: &str = "market_subject_library";

/// The schema version every market-subject payload is written and validated against.
pub const MARKET_SUBJECT_SCHEMA_VERSION: &str = "v1";

/// The pushes to the market-subject library, each `POST <base_url>/<name>` through the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SubjectExchange {
    /// 法人信息.
    LegalPerson,
    /// 自然人信息 (carries a full ID number: never logged).
    NaturalPerson,
    /// 业绩.
    Performance,
    /// 奖励.
    Reward,
    /// 违法违规（不良行为）.
    Violation,
    /// 黑名单（列入）.
    Blacklist,
    /// 黑名单撤销.
    BlacklistRevocation,
    /// 合同履约.
    ContractPerformance,
    /// 投标文件上传记录.
    BidFileUpload,
}

impl SubjectExchange {
    pub const ALL: [SubjectExchange; 9] = [
        SubjectExchange::LegalPerson,
        SubjectExchange::NaturalPerson,
        SubjectExchange::Performance,
        SubjectExchange::Reward,
        SubjectExchange::Violation,
        SubjectExchange::Blacklist,
        SubjectExchange::BlacklistRevocation,
        SubjectExchange::ContractPerformance,
        SubjectExchange::BidFileUpload,
    ];

    /// The name in the outbox, the API and the endpoint path.
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectExchange::LegalPerson => "legal-person",
            SubjectExchange::NaturalPerson => "natural-person",
            SubjectExchange::Performance => "performance",
            SubjectExchange::Reward => "reward",
            SubjectExchange::Violation => "violation",
            SubjectExchange::Blacklist => "blacklist",
            SubjectExchange::BlacklistRevocation => "blacklist-revocation",
            SubjectExchange::ContractPerformance => "contract-performance",
            SubjectExchange::BidFileUpload => "bid-file-upload",
        }
    }

    pub fn parse(text: &str) -> Option<SubjectExchange> {
        SubjectExchange::ALL
            .into_iter()
            .find(|e| e.as_str() == text)
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            SubjectExchange::LegalPerson => "法人信息",
            SubjectExchange::NaturalPerson => "自然人信息",
            SubjectExchange::Performance => "业绩",
            SubjectExchange::Reward => "奖励",
            SubjectExchange::Violation => "违法违规",
            SubjectExchange::Blacklist => "黑名单",
            SubjectExchange::BlacklistRevocation => "黑名单撤销",
            SubjectExchange::ContractPerformance => "合同履约",
            SubjectExchange::BidFileUpload => "投标文件上传记录",
        }
    }

    /// Whether its messages must arrive in the order they were written: a blacklist listing
    /// and its revocation must not swap (the library would get the revocation of an entry it
    /// does not have, then a listing that is no longer true). Both belong to one sequence,
    /// [`SubjectExchange::order_key`].
    pub fn ordered(self) -> bool {
        matches!(
            self,
            SubjectExchange::Blacklist | SubjectExchange::BlacklistRevocation
        )
    }

    /// The delivery sequence of an ordered exchange: listings and revocations share one, so a
    /// failed listing holds back the revocations written after it.
    pub fn order_key(self) -> &'static str {
        match self {
            SubjectExchange::BlacklistRevocation => SubjectExchange::Blacklist.as_str(),
            other => other.as_str(),
        }
    }
}

/// The synchronous queries: asked when someone asks, not queued (`POST <base_url>/<name>`,
/// answered at once with `<name>-answer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SubjectQuery {
    /// 法人基本信息查询.
    LegalPersonBasic,
    /// 法人综合信息查询 (basic + qualifications, performance, rewards, violations, blacklist).
    LegalPersonComprehensive,
    /// 主体二维码获取.
    QrFetch,
    /// 主体二维码扫码解析.
    QrScan,
}

impl SubjectQuery {
    pub const ALL: [SubjectQuery; 4] = [
        SubjectQuery::LegalPersonBasic,
        SubjectQuery::LegalPersonComprehensive,
        SubjectQuery::QrFetch,
        SubjectQuery::QrScan,
    ];

    /// The request's name: endpoint path and schema.
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectQuery::LegalPersonBasic => "legal-person-basic",
            SubjectQuery::LegalPersonComprehensive => "legal-person-comprehensive",
            SubjectQuery::QrFetch => "qr-fetch",
            SubjectQuery::QrScan => "qr-scan",
        }
    }

    /// The answer's schema name.
    pub fn answer(self) -> &'static str {
        match self {
            SubjectQuery::LegalPersonBasic => "legal-person-basic-answer",
            SubjectQuery::LegalPersonComprehensive => "legal-person-comprehensive-answer",
            SubjectQuery::QrFetch => "qr-fetch-answer",
            SubjectQuery::QrScan => "qr-scan-answer",
        }
    }

    pub fn parse(text: &str) -> Option<SubjectQuery> {
        SubjectQuery::ALL.into_iter().find(|q| q.as_str() == text)
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            SubjectQuery::LegalPersonBasic => "法人基本信息查询",
            SubjectQuery::LegalPersonComprehensive => "法人综合信息查询",
            SubjectQuery::QrFetch => "主体二维码获取",
            SubjectQuery::QrScan => "主体二维码扫码解析",
        }
    }
}

/// Answer codes of the queries (the pushes answer like the expert library: 0, 1, 2).
pub const ANSWER_OK: &str = "0";
pub const ANSWER_REFUSED: &str = "2";
pub const ANSWER_NO_SUBJECT: &str = "3";
pub const ANSWER_BAD_QR: &str = "4";

/// The 31 characters of a unified social credit code (GB 32100-2015: no I, O, S, V, Z).
const CREDIT_CODE_CHARS: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
const CREDIT_CODE_WEIGHTS: [usize; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// The check character (GB 32100-2015, MOD 31) of the first 17 characters of a unified social
/// credit code; `None` when they are not 17 characters of the code's alphabet.
pub fn credit_code_check_char(first17: &str) -> Option<char> {
    if first17.chars().count() != 17 {
        return None;
    }
    let mut sum = 0;
    for (c, weight) in first17.chars().zip(CREDIT_CODE_WEIGHTS) {
        sum += CREDIT_CODE_CHARS.find(c)? * weight;
    }
    let check = (31 - sum % 31) % 31;
    CREDIT_CODE_CHARS.chars().nth(check)
}

/// Why a unified social credit code is not valid (`None` when it is).
pub fn credit_code_problem(code: &str) -> Option<String> {
    if code.chars().count() != 18 {
        return Some(format!(
            "统一社会信用代码 {code:?} 须为 18 位 (must be 18 characters)"
        ));
    }
    let (first17, last) = code.split_at(code.char_indices().nth(17).map_or(0, |(i, _)| i));
    match credit_code_check_char(first17) {
        None => Some(format!(
            "统一社会信用代码 {code:?} 含有不允许的字符（只能是数字和除 I、O、S、V、Z 外的大写字母）"
        )),
        Some(check) if !last.starts_with(check) => Some(format!(
            "统一社会信用代码 {code:?} 校验位不符（应为 {check}）(check character mismatch)"
        )),
        Some(_) => None,
    }
}

/// `[integrations.market_subject_library]`: where the library is, how hard to push, and how
/// long a query answer may be served from the cache.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketSubjectConfig {
    /// Base URL; each push and query is POSTed to `<base_url>/<name>`.
    pub base_url: String,
    /// 交易平台标识码 of this trading center, sent as PLATFORM_CODE.
    pub platform_code: String,
    /// A file holding the bearer token the library issued (never logged).
    pub token_file: Option<PathBuf>,
    /// Push attempts before a message goes to the dead letters (as the expert library).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    #[serde(default = "default_backoff_initial")]
    pub backoff_initial_seconds: u64,
    #[serde(default = "default_backoff_max")]
    pub backoff_max_seconds: u64,
    #[serde(default = "default_probe")]
    pub probe_seconds: u64,
    /// Seconds to wait for an answer (pushes and queries) before counting it as failed.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: f64,
    /// How long a legal-person query answer is served from the cache before the library is
    /// asked again (seconds; default one day). An older answer is still served, marked stale
    /// with its age, while the library cannot be reached.
    #[serde(default = "default_cache_ttl")]
    pub query_cache_ttl_seconds: u64,
}

impl MarketSubjectConfig {
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

// The same defaults as every HTTP target (`HttpTargetConfig`).
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
fn default_cache_ttl() -> u64 {
    86_400
}

/// A legal person's role in trading (主体角色).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubjectRole {
    /// 招标人.
    Tenderer,
    /// 投标人.
    Bidder,
    /// 招标代理机构.
    Agency,
    Other,
}

/// A natural person's role (人员角色).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PersonRole {
    /// 项目负责人（项目经理）.
    ProjectManager,
    /// 技术负责人.
    TechnicalLead,
    /// 授权委托人.
    AuthorizedAgent,
    Other,
}

/// 奖励级别.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RewardLevel {
    National,
    Provincial,
    City,
    County,
}

/// 履约状态.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContractStatus {
    InProgress,
    Completed,
    Breached,
    Terminated,
}

/// 履约评价.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PerformanceRating {
    Excellent,
    Good,
    Pass,
    Fail,
}

/// The digest algorithm of a bid file's hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HashAlgorithm {
    Sm3,
    Sha256,
}

/// Body of `POST /api/integrations/market_subject_library/records`: a fact about a market
/// subject that the catalog does not otherwise hold, recorded so it is pushed to the library.
/// Dates are `YYYY-MM-DD`, times RFC 3339, amounts decimal strings in yuan.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SubjectRecord {
    LegalPerson {
        credit_code: String,
        name: String,
        legal_representative: String,
        role: SubjectRole,
        /// 注册资本, 万元.
        registered_capital: Option<String>,
        established_on: Option<String>,
        address: String,
        business_scope: Option<String>,
    },
    NaturalPerson {
        /// Full resident ID number: sent to the library, shown masked everywhere else.
        id_number: String,
        name: String,
        role: PersonRole,
        employer_code: Option<String>,
        employer_name: Option<String>,
        /// 执业资格, e.g. 一级注册建造师.
        qualification: Option<String>,
        qualification_cert_no: Option<String>,
    },
    Performance {
        credit_code: String,
        name: String,
        project_name: String,
        /// 建设单位（业主）.
        owner: String,
        contract_amount: String,
        started_on: String,
        completed_on: Option<String>,
    },
    Reward {
        credit_code: String,
        name: String,
        reward_name: String,
        level: RewardLevel,
        authority: String,
        awarded_on: String,
    },
    Violation {
        credit_code: String,
        name: String,
        content: String,
        authority: String,
        decision_no: String,
        decided_on: String,
        /// The project the violation happened in, when it was one of ours.
        project_number: Option<String>,
    },
    Blacklist {
        credit_code: String,
        name: String,
        reason: String,
        authority: String,
        decision_no: String,
        listed_on: String,
        ends_on: Option<String>,
    },
    /// Revokes an earlier blacklist record of ours; subject code and name come from it.
    BlacklistRevocation {
        blacklist_record_id: i64,
        reason: String,
        authority: String,
        revoked_on: String,
    },
    ContractPerformance {
        project_number: String,
        credit_code: String,
        name: String,
        contract_no: String,
        contract_amount: String,
        status: ContractStatus,
        rating: Option<PerformanceRating>,
        description: Option<String>,
        recorded_at: String,
    },
    BidFileUpload {
        project_number: String,
        credit_code: String,
        /// The bidder's name.
        name: String,
        file_name: String,
        file_size: u64,
        /// Lower-case hex digest.
        file_hash: String,
        hash_algorithm: HashAlgorithm,
        uploaded_at: String,
    },
}

impl SubjectRecord {
    pub fn exchange(&self) -> SubjectExchange {
        match self {
            SubjectRecord::LegalPerson { .. } => SubjectExchange::LegalPerson,
            SubjectRecord::NaturalPerson { .. } => SubjectExchange::NaturalPerson,
            SubjectRecord::Performance { .. } => SubjectExchange::Performance,
            SubjectRecord::Reward { .. } => SubjectExchange::Reward,
            SubjectRecord::Violation { .. } => SubjectExchange::Violation,
            SubjectRecord::Blacklist { .. } => SubjectExchange::Blacklist,
            SubjectRecord::BlacklistRevocation { .. } => SubjectExchange::BlacklistRevocation,
            SubjectRecord::ContractPerformance { .. } => SubjectExchange::ContractPerformance,
            SubjectRecord::BidFileUpload { .. } => SubjectExchange::BidFileUpload,
        }
    }

    /// The project a record belongs to, if any.
    pub fn project_number(&self) -> Option<&str> {
        match self {
            SubjectRecord::Violation { project_number, .. } => project_number.as_deref(),
            SubjectRecord::ContractPerformance { project_number, .. }
            | SubjectRecord::BidFileUpload { project_number, .. } => Some(project_number),
            _ => None,
        }
    }
}

/// A stored subject record as the API lists it: no payload, and a natural person's ID number
/// masked.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SubjectRecordSummary {
    pub id: i64,
    /// The exchange, e.g. `blacklist`.
    pub kind: String,
    /// Credit code, or a natural person's masked ID number.
    pub subject_code: String,
    pub subject_name: String,
    pub project_number: Option<String>,
    /// Its outbox message, and that message's state.
    pub message_id: Option<i64>,
    pub state: Option<String>,
    /// A blacklist record: the revocation recorded for it.
    pub revoked_by: Option<i64>,
    pub created_by: String,
    pub created_at: String,
}

/// What recording produced: the record and its queued message.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecordedSubject {
    pub record_id: i64,
    pub message_id: i64,
}

/// Which legal-person query: 基本 or 综合.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QueryDetail {
    Basic,
    Comprehensive,
}

impl QueryDetail {
    pub fn query(self) -> SubjectQuery {
        match self {
            QueryDetail::Basic => SubjectQuery::LegalPersonBasic,
            QueryDetail::Comprehensive => SubjectQuery::LegalPersonComprehensive,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            QueryDetail::Basic => "basic",
            QueryDetail::Comprehensive => "comprehensive",
        }
    }
}

/// A legal person's registration (法人基本信息); codes become Chinese labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LegalPersonBasic {
    pub credit_code: String,
    pub name: String,
    pub legal_representative: String,
    /// 单位类型, e.g. 企业.
    pub subject_type: String,
    /// 注册资本, 万元.
    pub registered_capital: Option<String>,
    /// `YYYY-MM-DD`.
    pub established_on: String,
    pub address: String,
    pub registration_authority: Option<String>,
    /// 经营状态, e.g. 存续.
    pub operating_status: String,
    pub business_scope: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Qualification {
    pub name: String,
    pub level: Option<String>,
    pub cert_no: String,
    pub valid_until: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PerformanceEntry {
    pub project_name: String,
    pub owner: Option<String>,
    pub contract_amount: String,
    pub completed_on: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RewardEntry {
    pub name: String,
    /// 国家级, 省级, 市级 or 县级.
    pub level: Option<String>,
    pub awarded_on: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ViolationEntry {
    pub content: String,
    pub authority: Option<String>,
    pub decided_on: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BlacklistEntry {
    pub reason: String,
    pub listed_on: String,
    pub ends_on: Option<String>,
    pub revoked: bool,
}

/// What the comprehensive query adds to the basic one (法人综合信息).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LegalPersonRecords {
    pub qualifications: Vec<Qualification>,
    pub performances: Vec<PerformanceEntry>,
    pub rewards: Vec<RewardEntry>,
    pub violations: Vec<ViolationEntry>,
    /// On the blacklist now.
    pub blacklisted: bool,
    pub blacklist: Vec<BlacklistEntry>,
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AnswerSource {
    /// Asked the library just now.
    Library,
    /// From the cache, within its time to live.
    Cache,
    /// From the cache past its time to live, because the library could not be reached.
    StaleCache,
}

/// Answer of `GET /api/integrations/market_subject_library/legal-persons/{code}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LegalPersonAnswer {
    pub detail: QueryDetail,
    pub basic: LegalPersonBasic,
    /// Only for the comprehensive query.
    pub records: Option<LegalPersonRecords>,
    pub source: AnswerSource,
    /// True when served past its time to live (the library was unreachable).
    pub stale: bool,
    /// When the library gave this answer (RFC 3339), and how old it is now.
    pub fetched_at: String,
    pub age_seconds: i64,
    /// Why a stale answer was served: the library's failure.
    pub stale_reason: Option<String>,
}

/// Answer of `GET /api/integrations/market_subject_library/legal-persons/{code}/qr`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SubjectQrCode {
    pub credit_code: String,
    /// What the library put in the code; scanning it gives this text back.
    pub content: String,
    /// RFC 3339.
    pub valid_until: String,
    /// The code drawn as a PNG (base64), for display and printing.
    pub png_base64: String,
    pub fetched_at: String,
}

/// Body of `POST /api/integrations/market_subject_library/qr-scans`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QrScan {
    /// The text a scanner read from the code.
    pub content: String,
}

/// `legal_person` or `natural_person`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    LegalPerson,
    NaturalPerson,
}

/// The subject a scanned QR code stands for.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ScannedSubject {
    pub subject_kind: SubjectKind,
    /// Credit code, or a natural person's masked ID number.
    pub code: String,
    pub name: String,
    /// Legal persons: 经营状态, e.g. 存续.
    pub operating_status: Option<String>,
    pub blacklisted: Option<bool>,
    /// RFC 3339.
    pub valid_until: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integration::{has_schema, REPLY};

    #[test]
    fn credit_code_check_characters_match_real_codes() {
        // Published codes of well-known companies.
        for code in [
            "9144030071526726XG",
            "91330100716105852F",
            "91110000802100433B",
        ] {
            assert_eq!(credit_code_problem(code), None, "{code}");
        }
        assert!(credit_code_problem("9144030071526726XA")
            .unwrap()
            .contains("校验位"));
        assert!(credit_code_problem("9144030071526726I")
            .unwrap()
            .contains("18 位"));
        assert!(credit_code_problem("91440300715267I6XG")
            .unwrap()
            .contains("不允许的字符"));
    }

    #[test]
    fn every_exchange_query_and_answer_has_a_schema() {
        assert!(has_schema(MARKET_SUBJECT_LIBRARY, REPLY));
        for exchange in SubjectExchange::ALL {
            assert!(
                has_schema(MARKET_SUBJECT_LIBRARY, exchange.as_str()),
                "{exchange:?}"
            );
        }
        for query in SubjectQuery::ALL {
            assert!(
                has_schema(MARKET_SUBJECT_LIBRARY, query.as_str()),
                "{query:?}"
            );
            assert!(
                has_schema(MARKET_SUBJECT_LIBRARY, query.answer()),
                "{query:?}"
            );
        }
    }
}
