//! The market-subject library's side of the stand-in platform: a small directory of fictitious
//! subjects that answers the library's queries (legal-person basic and comprehensive, QR-code
//! fetch and scan) through `standin::StandIn`, so the requests are validated by the same schema
//! table and suffer the same faults as the pushes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use witness_schemas::market_subject::{
    credit_code_check_char, SubjectQuery, MARKET_SUBJECT_LIBRARY,
};

use crate::standin::{Queries, StandIn};

/// Completes 17 characters into a unified social credit code with its GB 32100 check character.
pub fn credit_code(first17: &str) -> String {
    let check = credit_code_check_char(first17).expect("17 characters of the code alphabet");
    format!("{first17}{check}")
}

/// A legal person the directory knows, in the library's wire terms (the DATA of a
/// comprehensive answer; the basic answer is its registration fields).
#[derive(Debug, Clone)]
pub struct Subject {
    pub code: String,
    pub data: Value,
}

/// The sample bidder: registered, in business, with records of each kind and an old,
/// revoked blacklist listing.
pub fn sample_bidder() -> Subject {
    let code = credit_code("91410225MA44LK001");
    Subject {
        data: json!({
            "UNIFIED_SOCIAL_CREDIT_CODE": code,
            "LEGAL_PERSON_NAME": "河南兰考建设集团有限公司",
            "LEGAL_REPRESENTATIVE": "王建设",
            "SUBJECT_TYPE": "1",
            "REGISTERED_CAPITAL": "5000",
            "ESTABLISH_DATE": "20080520",
            "REGISTERED_ADDRESS": "河南省开封市兰考县城关镇裕禄大道 88 号",
            "REGISTRATION_AUTHORITY": "兰考县市场监督管理局",
            "OPERATING_STATUS": "1",
            "BUSINESS_SCOPE": "房屋建筑工程、市政公用工程施工总承包",
            "QUALIFICATION_LIST": [
                {"QUALIFICATION_NAME": "建筑工程施工总承包", "QUALIFICATION_LEVEL": "一级", "CERT_NO": "D241000001", "VALID_UNTIL": "20281231"}
            ],
            "PERFORMANCE_LIST": [
                {"PERFORMANCE_PROJECT_NAME": "兰考县第二高级中学教学楼", "PERFORMANCE_OWNER": "兰考县教育体育局", "CONTRACT_AMOUNT": "23800000.00", "COMPLETION_DATE": "20240630"}
            ],
            "REWARD_LIST": [
                {"REWARD_NAME": "河南省建设工程“中州杯”", "REWARD_LEVEL": "2", "AWARD_DATE": "20241115"}
            ],
            "VIOLATION_LIST": [],
            "BLACKLIST_STATUS": "0",
            "BLACKLIST_LIST": [
                {"BLACKLIST_REASON": "拖欠农民工工资", "START_DATE": "20210301", "END_DATE": "20220301", "REVOKED": "1"}
            ],
        }),
        code,
    }
}

/// A second legal person: deregistered and on the blacklist now.
pub fn sample_blacklisted() -> Subject {
    let code = credit_code("91410200MA40KF002");
    Subject {
        data: json!({
            "UNIFIED_SOCIAL_CREDIT_CODE": code,
            "LEGAL_PERSON_NAME": "开封某某劳务有限公司",
            "LEGAL_REPRESENTATIVE": "李某",
            "SUBJECT_TYPE": "1",
            "ESTABLISH_DATE": "20150101",
            "REGISTERED_ADDRESS": "河南省开封市龙亭区",
            "OPERATING_STATUS": "3",
            "QUALIFICATION_LIST": [],
            "PERFORMANCE_LIST": [],
            "REWARD_LIST": [],
            "VIOLATION_LIST": [
                {"VIOLATION_CONTENT": "串通投标", "PENALTY_AUTHORITY": "开封市住房和城乡建设局", "PENALTY_DATE": "20250910"}
            ],
            "BLACKLIST_STATUS": "1",
            "BLACKLIST_LIST": [
                {"BLACKLIST_REASON": "串通投标", "START_DATE": "20250915", "REVOKED": "0"}
            ],
        }),
        code,
    }
}

const BASIC_FIELDS: [&str; 10] = [
    "UNIFIED_SOCIAL_CREDIT_CODE",
    "LEGAL_PERSON_NAME",
    "LEGAL_REPRESENTATIVE",
    "SUBJECT_TYPE",
    "REGISTERED_CAPITAL",
    "ESTABLISH_DATE",
    "REGISTERED_ADDRESS",
    "REGISTRATION_AUTHORITY",
    "OPERATING_STATUS",
    "BUSINESS_SCOPE",
];

/// Who a QR code the directory issued stands for.
#[derive(Debug, Clone)]
struct Issued {
    /// `1` legal person, `2` natural person.
    subject_type: &'static str,
    code: String,
    name: String,
    valid_until: String,
    expired: bool,
}

#[derive(Debug, Default)]
struct Directory {
    subjects: BTreeMap<String, Value>,
    qr: BTreeMap<String, Issued>,
    serial: u64,
}

/// The directory behind the stand-in's queries; tests change it while the stand-in runs.
#[derive(Debug, Default)]
pub struct SubjectDirectory {
    inner: Mutex<Directory>,
}

/// When the codes the directory issues expire: the end of the sample day (the stand-in does
/// not read a clock; the tests' clocks are simulated).
const QR_VALID_UNTIL: &str = "20260318235959";

impl SubjectDirectory {
    fn lock(&self) -> std::sync::MutexGuard<'_, Directory> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn add(&self, subject: &Subject) {
        self.lock()
            .subjects
            .insert(subject.code.clone(), subject.data.clone());
    }

    /// Changes one field of a subject (e.g. its legal representative), as a registration change.
    pub fn set_field(&self, code: &str, key: &str, value: &str) {
        if let Some(data) = self.lock().subjects.get_mut(code) {
            data[key] = json!(value);
        }
    }

    pub fn remove(&self, code: &str) {
        self.lock().subjects.remove(code);
    }

    fn issue(&self, subject_type: &'static str, code: &str, name: &str) -> String {
        let mut d = self.lock();
        d.serial += 1;
        // Opaque to the platform: only the library can resolve it.
        let content = format!(
            "https://ztk.hnggzy.example/qr/v1/{:06}-{subject_type}",
            d.serial
        );
        d.qr.insert(
            content.clone(),
            Issued {
                subject_type,
                code: code.to_string(),
                name: name.to_string(),
                valid_until: QR_VALID_UNTIL.to_string(),
                expired: false,
            },
        );
        content
    }

    /// Issues a QR code for a natural person (the library does that for registered staff).
    pub fn issue_person_qr(&self, id_number: &str, name: &str) -> String {
        self.issue("2", id_number, name)
    }

    /// Makes an issued code expire.
    pub fn expire(&self, content: &str) {
        if let Some(issued) = self.lock().qr.get_mut(content) {
            issued.expired = true;
        }
    }

    fn subject(&self, request: &Value) -> Option<Value> {
        let code = request["UNIFIED_SOCIAL_CREDIT_CODE"].as_str()?;
        self.lock().subjects.get(code).cloned()
    }
}

fn no_subject() -> Value {
    json!({"CODE": "3", "MESSAGE": "无此主体"})
}

impl Queries for SubjectDirectory {
    fn answers(&self, exchange: &str) -> bool {
        SubjectQuery::parse(exchange).is_some()
    }

    fn answer(&self, exchange: &str, request: &Value) -> Value {
        match SubjectQuery::parse(exchange) {
            Some(SubjectQuery::LegalPersonBasic) => match self.subject(request) {
                Some(data) => {
                    let basic: serde_json::Map<String, Value> = BASIC_FIELDS
                        .iter()
                        .filter_map(|k| data.get(*k).map(|v| (k.to_string(), v.clone())))
                        .collect();
                    json!({"CODE": "0", "MESSAGE": "查询成功", "DATA": basic})
                }
                None => no_subject(),
            },
            Some(SubjectQuery::LegalPersonComprehensive) => match self.subject(request) {
                Some(data) => json!({"CODE": "0", "MESSAGE": "查询成功", "DATA": data}),
                None => no_subject(),
            },
            Some(SubjectQuery::QrFetch) => match self.subject(request) {
                Some(data) => {
                    let code = data["UNIFIED_SOCIAL_CREDIT_CODE"]
                        .as_str()
                        .unwrap_or_default();
                    let name = data["LEGAL_PERSON_NAME"].as_str().unwrap_or_default();
                    let content = self.issue("1", code, name);
                    json!({"CODE": "0", "MESSAGE": "获取成功",
                        "DATA": {"QR_CONTENT": content, "QR_VALID_UNTIL": QR_VALID_UNTIL}})
                }
                None => no_subject(),
            },
            Some(SubjectQuery::QrScan) => {
                let content = request["QR_CONTENT"].as_str().unwrap_or_default();
                let issued = self.lock().qr.get(content).cloned();
                match issued {
                    Some(issued) if !issued.expired => {
                        let mut data = json!({
                            "SUBJECT_TYPE": issued.subject_type,
                            "SUBJECT_CODE": issued.code,
                            "SUBJECT_NAME": issued.name,
                            "QR_VALID_UNTIL": issued.valid_until,
                        });
                        if issued.subject_type == "1" {
                            if let Some(subject) = self.lock().subjects.get(&issued.code) {
                                data["OPERATING_STATUS"] = subject["OPERATING_STATUS"].clone();
                                data["BLACKLIST_STATUS"] = subject["BLACKLIST_STATUS"].clone();
                            }
                        }
                        json!({"CODE": "0", "MESSAGE": "解析成功", "DATA": data})
                    }
                    Some(_) => json!({"CODE": "4", "MESSAGE": "二维码已过期"}),
                    None => json!({"CODE": "4", "MESSAGE": "不是本库签发的二维码"}),
                }
            }
            None => json!({"CODE": "2", "MESSAGE": "未知查询"}),
        }
    }
}

/// Starts the stand-in market-subject library with the two sample subjects.
pub async fn start() -> anyhow::Result<(Arc<StandIn>, Arc<SubjectDirectory>)> {
    let standin = StandIn::start_for(MARKET_SUBJECT_LIBRARY).await?;
    let directory = Arc::new(SubjectDirectory::default());
    directory.add(&sample_bidder());
    directory.add(&sample_blacklisted());
    standin.set_queries(Arc::clone(&directory) as Arc<dyn Queries>);
    Ok((standin, directory))
}
