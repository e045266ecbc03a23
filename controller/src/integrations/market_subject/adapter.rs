//! The adapter of the market-subject library (主体库): the ONE place that knows its wire format,
//! both ways — our subject records mapped to its push payloads, our query requests, and its
//! query answers read back into our terms. The official interface document is not public; when
//! it arrives, this file and `schemas/json/market-subject/` change, nothing else.

use std::sync::Arc;

use serde_json::{json, Map, Value};
use sqlx::SqlitePool;
use time::macros::format_description;
use time::OffsetDateTime;
use witness_schemas::integration::{validate_message, HttpTargetConfig};
use witness_schemas::market_subject::{
    BlacklistEntry, ContractStatus, HashAlgorithm, LegalPersonBasic, LegalPersonRecords,
    MarketSubjectConfig, PerformanceEntry, PerformanceRating, PersonRole, Qualification,
    RewardEntry, RewardLevel, ScannedSubject, SubjectExchange, SubjectKind, SubjectQuery,
    SubjectRecord, SubjectRole, ViolationEntry, ANSWER_BAD_QR, ANSWER_NO_SUBJECT, ANSWER_OK,
    ANSWER_REFUSED, MARKET_SUBJECT_LIBRARY, MARKET_SUBJECT_SCHEMA_VERSION,
};

use super::super::delivery::{Adapter, AdapterFuture, Mapped, OurFault};
use super::super::expert_library::{parse_stamp, stamp};
use crate::clock::rfc3339;
use crate::error::{ErrorKind, Result};

/// The delivery core's view of the library: its pushes.
pub struct MarketSubject {
    config: MarketSubjectConfig,
    transport: HttpTargetConfig,
}

impl MarketSubject {
    pub fn new(config: MarketSubjectConfig) -> MarketSubject {
        let transport = config.transport();
        MarketSubject { config, transport }
    }

    /// The adapter as the delivery core takes it.
    pub fn adapter(config: MarketSubjectConfig) -> Arc<dyn Adapter> {
        Arc::new(MarketSubject::new(config))
    }
}

impl Adapter for MarketSubject {
    fn target(&self) -> &'static str {
        MARKET_SUBJECT_LIBRARY
    }

    fn label(&self) -> &'static str {
        "主体库"
    }

    fn transport(&self) -> &HttpTargetConfig {
        &self.transport
    }

    fn ordered(&self, exchange: &str) -> Option<bool> {
        SubjectExchange::parse(exchange).map(SubjectExchange::ordered)
    }

    fn order_key(&self, exchange: &str, _project_number: Option<&str>) -> String {
        match SubjectExchange::parse(exchange) {
            Some(known) => known.order_key().to_string(),
            None => exchange.to_string(),
        }
    }

    fn map<'a>(
        &'a self,
        pool: &'a SqlitePool,
        _exchange: &'a str,
        facts: &'a Value,
        now: OffsetDateTime,
    ) -> AdapterFuture<'a, std::result::Result<Mapped, OurFault>> {
        Box::pin(async move {
            let facts: Facts = match serde_json::from_value(facts.clone()) {
                Ok(f) => f,
                Err(e) => return Ok(Err(OurFault(format!("主体记录无法读取：{e}")))),
            };
            let project = match facts.record.project_number() {
                Some(number) => match project_codes(pool, number).await? {
                    Ok(codes) => Some(codes),
                    Err(fault) => return Ok(Err(fault)),
                },
                None => None,
            };
            Ok(
                push_payload(&self.config.platform_code, now, &facts, project.as_ref()).map(
                    |(exchange, payload)| Mapped {
                        path: exchange.as_str().to_string(),
                        payload,
                        unified_deal_code: project.as_ref().map(|p| p.unified_deal_code.clone()),
                        bid_section_code: project.as_ref().map(|p| p.bid_section_code.clone()),
                    },
                ),
            )
        })
    }
}

/// What an outbox message of the library holds: the record in our terms, its key (sent as
/// RECORD_ID, so later messages can refer to it) and, for a revocation, the listing revoked.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Facts {
    pub record_key: String,
    pub record: SubjectRecord,
    pub revokes: Option<Revoked>,
}

/// The blacklist listing a revocation revokes.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Revoked {
    pub record_key: String,
    pub credit_code: String,
    pub name: String,
}

/// The codes a project is known by on the platforms.
#[derive(Debug, Clone)]
pub struct ProjectCodes {
    pub number: String,
    pub name: String,
    pub unified_deal_code: String,
    pub bid_section_code: String,
}

/// A project's codes, or our fault when the project or its trade codes are missing.
pub async fn project_codes(
    pool: &SqlitePool,
    number: &str,
) -> Result<std::result::Result<ProjectCodes, OurFault>> {
    let project = match crate::catalog::project(pool, number).await {
        Ok(p) => p,
        Err(e) if e.kind == ErrorKind::NotFound => return Ok(Err(OurFault(e.message))),
        Err(e) => return Err(e),
    };
    match super::super::trade_codes(pool, number).await {
        Ok(codes) => Ok(Ok(ProjectCodes {
            number: project.number,
            name: project.name,
            unified_deal_code: codes.unified_deal_code,
            bid_section_code: codes.bid_section_code,
        })),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(Err(OurFault(format!(
            "{}（PUT /api/projects/{number}/trade-codes）",
            e.message
        )))),
        Err(e) => Err(e),
    }
}

/// `YYYY-MM-DD` → `yyyyMMdd`.
fn day(text: &str, what: &str) -> std::result::Result<String, OurFault> {
    time::Date::parse(text.trim(), format_description!("[year]-[month]-[day]"))
        .map(|d| format!("{:04}{:02}{:02}", d.year(), u8::from(d.month()), d.day()))
        .map_err(|_| OurFault(format!("{what} {text:?} 须为日期 YYYY-MM-DD")))
}

/// RFC 3339 → `yyyyMMddHHmmss` China Standard Time.
fn moment(text: &str, what: &str) -> std::result::Result<String, OurFault> {
    OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339)
        .map(stamp)
        .map_err(|_| {
            OurFault(format!(
                "{what} {text:?} 须为 RFC 3339 时间（如 2026-03-18T09:00:00+08:00）"
            ))
        })
}

fn put(payload: &mut Map<String, Value>, key: &str, value: Option<&String>) {
    if let Some(value) = value.filter(|v| !v.trim().is_empty()) {
        payload.insert(key.to_string(), json!(value.trim()));
    }
}

/// Maps a record to its wire exchange and payload, validated against the schema (a violation
/// is our fault). `project` holds the codes of the record's project, when it names one.
pub fn push_payload(
    platform_code: &str,
    now: OffsetDateTime,
    facts: &Facts,
    project: Option<&ProjectCodes>,
) -> std::result::Result<(SubjectExchange, Value), OurFault> {
    let mut p = Map::new();
    p.insert("PLATFORM_CODE".into(), json!(platform_code));
    p.insert("DATA_TIMESTAMP".into(), json!(stamp(now)));
    p.insert("RECORD_ID".into(), json!(facts.record_key));
    if let Some(project) = project {
        p.insert("TENDER_PROJECT_CODE".into(), json!(project.number));
        p.insert("UNIFIED_DEAL_CODE".into(), json!(project.unified_deal_code));
        p.insert("BID_SECTION_CODE".into(), json!(project.bid_section_code));
    }
    let legal = |p: &mut Map<String, Value>, code: &str, name: &str| {
        p.insert("UNIFIED_SOCIAL_CREDIT_CODE".into(), json!(code.trim()));
        p.insert("LEGAL_PERSON_NAME".into(), json!(name.trim()));
    };
    match &facts.record {
        SubjectRecord::LegalPerson {
            credit_code,
            name,
            legal_representative,
            role,
            registered_capital,
            established_on,
            address,
            business_scope,
        } => {
            legal(&mut p, credit_code, name);
            p.insert(
                "LEGAL_REPRESENTATIVE".into(),
                json!(legal_representative.trim()),
            );
            p.insert(
                "SUBJECT_ROLE".into(),
                json!(match role {
                    SubjectRole::Tenderer => "1",
                    SubjectRole::Bidder => "2",
                    SubjectRole::Agency => "3",
                    SubjectRole::Other => "4",
                }),
            );
            put(&mut p, "REGISTERED_CAPITAL", registered_capital.as_ref());
            if let Some(on) = established_on {
                p.insert("ESTABLISH_DATE".into(), json!(day(on, "成立日期")?));
            }
            p.insert("REGISTERED_ADDRESS".into(), json!(address.trim()));
            put(&mut p, "BUSINESS_SCOPE", business_scope.as_ref());
        }
        SubjectRecord::NaturalPerson {
            id_number,
            name,
            role,
            employer_code,
            employer_name,
            qualification,
            qualification_cert_no,
        } => {
            p.insert(
                "ID_CARD_NO".into(),
                json!(id_number.trim().to_ascii_uppercase()),
            );
            p.insert("PERSON_NAME".into(), json!(name.trim()));
            p.insert(
                "PERSON_ROLE".into(),
                json!(match role {
                    PersonRole::ProjectManager => "1",
                    PersonRole::TechnicalLead => "2",
                    PersonRole::AuthorizedAgent => "3",
                    PersonRole::Other => "4",
                }),
            );
            put(&mut p, "EMPLOYER_CREDIT_CODE", employer_code.as_ref());
            put(&mut p, "EMPLOYER_NAME", employer_name.as_ref());
            put(&mut p, "QUALIFICATION_NAME", qualification.as_ref());
            put(
                &mut p,
                "QUALIFICATION_CERT_NO",
                qualification_cert_no.as_ref(),
            );
        }
        SubjectRecord::Performance {
            credit_code,
            name,
            project_name,
            owner,
            contract_amount,
            started_on,
            completed_on,
        } => {
            legal(&mut p, credit_code, name);
            p.insert(
                "PERFORMANCE_PROJECT_NAME".into(),
                json!(project_name.trim()),
            );
            p.insert("PERFORMANCE_OWNER".into(), json!(owner.trim()));
            p.insert("CONTRACT_AMOUNT".into(), json!(contract_amount.trim()));
            p.insert("START_DATE".into(), json!(day(started_on, "开工日期")?));
            if let Some(on) = completed_on {
                p.insert("COMPLETION_DATE".into(), json!(day(on, "竣工日期")?));
            }
        }
        SubjectRecord::Reward {
            credit_code,
            name,
            reward_name,
            level,
            authority,
            awarded_on,
        } => {
            legal(&mut p, credit_code, name);
            p.insert("REWARD_NAME".into(), json!(reward_name.trim()));
            p.insert(
                "REWARD_LEVEL".into(),
                json!(match level {
                    RewardLevel::National => "1",
                    RewardLevel::Provincial => "2",
                    RewardLevel::City => "3",
                    RewardLevel::County => "4",
                }),
            );
            p.insert("AWARDING_AUTHORITY".into(), json!(authority.trim()));
            p.insert("AWARD_DATE".into(), json!(day(awarded_on, "授予日期")?));
        }
        SubjectRecord::Violation {
            credit_code,
            name,
            content,
            authority,
            decision_no,
            decided_on,
            project_number: _,
        } => {
            legal(&mut p, credit_code, name);
            p.insert("VIOLATION_CONTENT".into(), json!(content.trim()));
            p.insert("PENALTY_AUTHORITY".into(), json!(authority.trim()));
            p.insert("PENALTY_DECISION_NO".into(), json!(decision_no.trim()));
            p.insert("PENALTY_DATE".into(), json!(day(decided_on, "处理日期")?));
        }
        SubjectRecord::Blacklist {
            credit_code,
            name,
            reason,
            authority,
            decision_no,
            listed_on,
            ends_on,
        } => {
            legal(&mut p, credit_code, name);
            p.insert("BLACKLIST_REASON".into(), json!(reason.trim()));
            p.insert("DECISION_AUTHORITY".into(), json!(authority.trim()));
            p.insert("DECISION_NO".into(), json!(decision_no.trim()));
            p.insert("START_DATE".into(), json!(day(listed_on, "列入日期")?));
            if let Some(on) = ends_on {
                p.insert("END_DATE".into(), json!(day(on, "期满日期")?));
            }
        }
        SubjectRecord::BlacklistRevocation {
            blacklist_record_id,
            reason,
            authority,
            revoked_on,
        } => {
            let Some(revoked) = &facts.revokes else {
                return Err(OurFault(format!(
                    "撤销记录缺少被撤销的黑名单记录 {blacklist_record_id}"
                )));
            };
            p.insert("BLACKLIST_RECORD_ID".into(), json!(revoked.record_key));
            legal(&mut p, &revoked.credit_code, &revoked.name);
            p.insert("REVOKE_REASON".into(), json!(reason.trim()));
            p.insert("REVOKE_AUTHORITY".into(), json!(authority.trim()));
            p.insert("REVOKE_DATE".into(), json!(day(revoked_on, "撤销日期")?));
        }
        SubjectRecord::ContractPerformance {
            project_number: _,
            credit_code,
            name,
            contract_no,
            contract_amount,
            status,
            rating,
            description,
            recorded_at,
        } => {
            legal(&mut p, credit_code, name);
            p.insert("CONTRACT_NO".into(), json!(contract_no.trim()));
            p.insert("CONTRACT_AMOUNT".into(), json!(contract_amount.trim()));
            p.insert(
                "PERFORMANCE_STATUS".into(),
                json!(match status {
                    ContractStatus::InProgress => "1",
                    ContractStatus::Completed => "2",
                    ContractStatus::Breached => "3",
                    ContractStatus::Terminated => "4",
                }),
            );
            if let Some(rating) = rating {
                p.insert(
                    "PERFORMANCE_EVALUATION".into(),
                    json!(match rating {
                        PerformanceRating::Excellent => "1",
                        PerformanceRating::Good => "2",
                        PerformanceRating::Pass => "3",
                        PerformanceRating::Fail => "4",
                    }),
                );
            }
            put(&mut p, "PERFORMANCE_DESCRIPTION", description.as_ref());
            p.insert(
                "RECORD_TIME".into(),
                json!(moment(recorded_at, "记录时间")?),
            );
        }
        SubjectRecord::BidFileUpload {
            project_number: _,
            credit_code,
            name,
            file_name,
            file_size,
            file_hash,
            hash_algorithm,
            uploaded_at,
        } => {
            legal(&mut p, credit_code, name);
            p.insert("FILE_NAME".into(), json!(file_name.trim()));
            p.insert("FILE_SIZE".into(), json!(file_size));
            p.insert(
                "FILE_HASH".into(),
                json!(file_hash.trim().to_ascii_lowercase()),
            );
            p.insert(
                "HASH_ALGORITHM".into(),
                json!(match hash_algorithm {
                    HashAlgorithm::Sm3 => "SM3",
                    HashAlgorithm::Sha256 => "SHA256",
                }),
            );
            p.insert(
                "UPLOAD_TIME".into(),
                json!(moment(uploaded_at, "上传时间")?),
            );
        }
    }
    // Records of a project carry the project's name where the exchange has it.
    let exchange = facts.record.exchange();
    if let Some(project) = project {
        if matches!(
            exchange,
            SubjectExchange::ContractPerformance | SubjectExchange::BidFileUpload
        ) {
            p.insert("TENDER_PROJECT_NAME".into(), json!(project.name));
        }
    }
    let payload = Value::Object(p);
    // Our own data is checked before it leaves: a violation is our fault, not the library's.
    validate_message(MARKET_SUBJECT_LIBRARY, exchange.as_str(), &payload).map_err(|problems| {
        OurFault(format!(
            "数据不符合主体库接口规范 {} {MARKET_SUBJECT_SCHEMA_VERSION}：{problems}",
            exchange.as_str()
        ))
    })?;
    Ok((exchange, payload))
}

/// A query request: the credit code asked about, or the scanned QR text.
pub fn query_request(
    platform_code: &str,
    now: OffsetDateTime,
    query: SubjectQuery,
    subject: &str,
) -> Value {
    let key = match query {
        SubjectQuery::QrScan => "QR_CONTENT",
        _ => "UNIFIED_SOCIAL_CREDIT_CODE",
    };
    json!({
        "PLATFORM_CODE": platform_code,
        "DATA_TIMESTAMP": stamp(now),
        key: subject,
    })
}

/// How the library answered a query, once the answer is read.
#[derive(Debug)]
pub enum Answer {
    /// CODE 0: the DATA object.
    Data(Value),
    /// CODE 3: no such subject.
    NoSubject(String),
    /// CODE 4: the QR code is not one of the library's, or has expired.
    BadQr(String),
    /// CODE 2: the library refused the request.
    Refused(String),
}

/// Reads a query answer; an error means the answer breaks the interface (the library's fault).
pub fn read_answer(query: SubjectQuery, answer: &Value) -> std::result::Result<Answer, String> {
    validate_message(MARKET_SUBJECT_LIBRARY, query.answer(), answer)
        .map_err(|problems| format!("应答不符合接口规范：{problems}"))?;
    let message = answer
        .get("MESSAGE")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    match answer
        .get("CODE")
        .and_then(Value::as_str)
        .unwrap_or_default()
    {
        ANSWER_OK => Ok(Answer::Data(
            answer.get("DATA").cloned().unwrap_or_default(),
        )),
        ANSWER_NO_SUBJECT => Ok(Answer::NoSubject(message)),
        ANSWER_BAD_QR => Ok(Answer::BadQr(message)),
        ANSWER_REFUSED => Ok(Answer::Refused(message)),
        other => Err(format!("未知的应答代码 CODE {other:?}")),
    }
}

fn text(data: &Value, key: &str) -> Option<String> {
    data.get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .filter(|t| !t.is_empty())
}

/// `yyyyMMdd` → `YYYY-MM-DD` (the schema has checked the form).
fn iso_day(data: &Value, key: &str) -> Option<String> {
    text(data, key)
        .filter(|d| d.len() == 8)
        .map(|d| format!("{}-{}-{}", &d[..4], &d[4..6], &d[6..]))
}

fn items(data: &Value, key: &str) -> Vec<Value> {
    data.get(key)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn subject_type(code: &str) -> &'static str {
    match code {
        "1" => "企业",
        "2" => "事业单位",
        "3" => "机关",
        "4" => "社会组织",
        _ => "其他",
    }
}

fn operating_status(code: &str) -> &'static str {
    match code {
        "1" => "存续",
        "2" => "吊销",
        "3" => "注销",
        "4" => "迁出",
        _ => "未知",
    }
}

fn reward_level(code: &str) -> &'static str {
    match code {
        "1" => "国家级",
        "2" => "省级",
        "3" => "市级",
        "4" => "县级",
        _ => "其他",
    }
}

/// The DATA of a legal-person answer (basic or comprehensive) in our terms.
pub fn legal_person_basic(data: &Value) -> LegalPersonBasic {
    LegalPersonBasic {
        credit_code: text(data, "UNIFIED_SOCIAL_CREDIT_CODE").unwrap_or_default(),
        name: text(data, "LEGAL_PERSON_NAME").unwrap_or_default(),
        legal_representative: text(data, "LEGAL_REPRESENTATIVE").unwrap_or_default(),
        subject_type: subject_type(&text(data, "SUBJECT_TYPE").unwrap_or_default()).to_string(),
        registered_capital: text(data, "REGISTERED_CAPITAL"),
        established_on: iso_day(data, "ESTABLISH_DATE").unwrap_or_default(),
        address: text(data, "REGISTERED_ADDRESS").unwrap_or_default(),
        registration_authority: text(data, "REGISTRATION_AUTHORITY"),
        operating_status: operating_status(&text(data, "OPERATING_STATUS").unwrap_or_default())
            .to_string(),
        business_scope: text(data, "BUSINESS_SCOPE"),
    }
}

/// What the comprehensive answer adds.
pub fn legal_person_records(data: &Value) -> LegalPersonRecords {
    LegalPersonRecords {
        qualifications: items(data, "QUALIFICATION_LIST")
            .iter()
            .map(|q| Qualification {
                name: text(q, "QUALIFICATION_NAME").unwrap_or_default(),
                level: text(q, "QUALIFICATION_LEVEL"),
                cert_no: text(q, "CERT_NO").unwrap_or_default(),
                valid_until: iso_day(q, "VALID_UNTIL"),
            })
            .collect(),
        performances: items(data, "PERFORMANCE_LIST")
            .iter()
            .map(|p| PerformanceEntry {
                project_name: text(p, "PERFORMANCE_PROJECT_NAME").unwrap_or_default(),
                owner: text(p, "PERFORMANCE_OWNER"),
                contract_amount: text(p, "CONTRACT_AMOUNT").unwrap_or_default(),
                completed_on: iso_day(p, "COMPLETION_DATE"),
            })
            .collect(),
        rewards: items(data, "REWARD_LIST")
            .iter()
            .map(|r| RewardEntry {
                name: text(r, "REWARD_NAME").unwrap_or_default(),
                level: text(r, "REWARD_LEVEL").map(|l| reward_level(&l).to_string()),
                awarded_on: iso_day(r, "AWARD_DATE").unwrap_or_default(),
            })
            .collect(),
        violations: items(data, "VIOLATION_LIST")
            .iter()
            .map(|v| ViolationEntry {
                content: text(v, "VIOLATION_CONTENT").unwrap_or_default(),
                authority: text(v, "PENALTY_AUTHORITY"),
                decided_on: iso_day(v, "PENALTY_DATE").unwrap_or_default(),
            })
            .collect(),
        blacklisted: text(data, "BLACKLIST_STATUS").as_deref() == Some("1"),
        blacklist: items(data, "BLACKLIST_LIST")
            .iter()
            .map(|b| BlacklistEntry {
                reason: text(b, "BLACKLIST_REASON").unwrap_or_default(),
                listed_on: iso_day(b, "START_DATE").unwrap_or_default(),
                ends_on: iso_day(b, "END_DATE"),
                revoked: text(b, "REVOKED").as_deref() == Some("1"),
            })
            .collect(),
    }
}

/// The DATA of a QR fetch: the code's text and until when it is valid (RFC 3339).
pub fn qr_code(data: &Value) -> std::result::Result<(String, String), String> {
    let content = text(data, "QR_CONTENT").unwrap_or_default();
    let until = text(data, "QR_VALID_UNTIL")
        .and_then(|t| parse_stamp(&t))
        .ok_or("二维码有效期 QR_VALID_UNTIL 不是有效时间")?;
    Ok((content, rfc3339(until)))
}

/// The DATA of a QR scan; a natural person's ID number is masked here, at the edge, so it
/// never reaches our answers or logs.
pub fn scanned_subject(data: &Value) -> std::result::Result<ScannedSubject, String> {
    let legal = text(data, "SUBJECT_TYPE").as_deref() == Some("1");
    let code = text(data, "SUBJECT_CODE").unwrap_or_default();
    let until = text(data, "QR_VALID_UNTIL")
        .and_then(|t| parse_stamp(&t))
        .ok_or("二维码有效期 QR_VALID_UNTIL 不是有效时间")?;
    Ok(ScannedSubject {
        subject_kind: if legal {
            SubjectKind::LegalPerson
        } else {
            SubjectKind::NaturalPerson
        },
        code: if legal {
            code
        } else {
            crate::auth::mask_id_number(&code)
        },
        name: text(data, "SUBJECT_NAME").unwrap_or_default(),
        operating_status: text(data, "OPERATING_STATUS").map(|s| operating_status(&s).to_string()),
        blacklisted: text(data, "BLACKLIST_STATUS").map(|s| s == "1"),
        valid_until: rfc3339(until),
    })
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn facts(record: SubjectRecord) -> Facts {
        Facts {
            record_key: "market-subject:record-1".to_string(),
            record,
            revokes: None,
        }
    }

    #[test]
    fn a_legal_person_maps_to_the_standard_fields() {
        let (exchange, payload) = push_payload(
            "HNLK001",
            datetime!(2026-03-18 08:00 +8),
            &facts(SubjectRecord::LegalPerson {
                credit_code: "91410225MA44XXXX0P".to_string(),
                name: "河南兰考建设集团有限公司".to_string(),
                legal_representative: "王建设".to_string(),
                role: SubjectRole::Bidder,
                registered_capital: Some("5000".to_string()),
                established_on: Some("2008-05-20".to_string()),
                address: "兰考县城关镇".to_string(),
                business_scope: None,
            }),
            None,
        )
        .unwrap_or_else(|e| panic!("{}", e.0));
        assert_eq!(exchange, SubjectExchange::LegalPerson);
        assert_eq!(payload["DATA_TIMESTAMP"], "20260318080000");
        assert_eq!(payload["ESTABLISH_DATE"], "20080520");
        assert_eq!(payload["SUBJECT_ROLE"], "2");
        assert!(payload.get("BUSINESS_SCOPE").is_none());
    }

    #[test]
    fn a_bad_date_or_a_schema_violation_is_our_fault() {
        let record = |on: &str, name: &str| {
            facts(SubjectRecord::Reward {
                credit_code: "91410225MA44XXXX0P".to_string(),
                name: name.to_string(),
                reward_name: "中州杯".to_string(),
                level: RewardLevel::Provincial,
                authority: "河南省住房和城乡建设厅".to_string(),
                awarded_on: on.to_string(),
            })
        };
        let now = datetime!(2026-03-18 08:00 +8);
        let fault = push_payload("HNLK001", now, &record("2025/12/01", "甲公司"), None)
            .unwrap_err()
            .0;
        assert!(fault.contains("授予日期"), "{fault}");
        let fault = push_payload("HNLK001", now, &record("2025-12-01", ""), None)
            .unwrap_err()
            .0;
        assert!(fault.contains("LEGAL_PERSON_NAME"), "{fault}");
    }
}
