//! The adapter of the online supervision platform (在线监管平台): the ONE place that maps our
//! facts to its data sets (`schemas/json/supervision/v1/`). Its interface document is not
//! public; when it arrives, this file and the schemas change, not the delivery core nor the
//! triggers in `extract`.

use serde_json::{json, Value};
use sqlx::SqlitePool;
use time::OffsetDateTime;
use witness_schemas::api::Category;
use witness_schemas::integration::{
    has_schema, validate_message, EvaluationRecord, HttpTargetConfig, REPLY, SUPERVISION_PLATFORM,
    SUPERVISION_SCHEMA_VERSION,
};

use super::delivery::{Adapter, AdapterFuture, Mapped, OurFault};
use super::expert_library::{stamp, stamp_of};
use super::extract::{self, category_data_set};
use crate::error::Result;

#[derive(Debug)]
pub struct SupervisionPlatform {
    transport: HttpTargetConfig,
}

impl SupervisionPlatform {
    pub fn adapter(transport: HttpTargetConfig) -> std::sync::Arc<dyn Adapter> {
        std::sync::Arc::new(SupervisionPlatform { transport })
    }
}

impl Adapter for SupervisionPlatform {
    fn target(&self) -> &'static str {
        SUPERVISION_PLATFORM
    }

    fn label(&self) -> &'static str {
        "在线监管平台"
    }

    fn transport(&self) -> &HttpTargetConfig {
        &self.transport
    }

    /// Data sets are independent reports: none holds back another.
    fn ordered(&self, exchange: &str) -> Option<bool> {
        (exchange != REPLY && has_schema(SUPERVISION_PLATFORM, exchange)).then_some(false)
    }

    fn map<'a>(
        &'a self,
        pool: &'a SqlitePool,
        exchange: &'a str,
        facts: &'a Value,
        now: OffsetDateTime,
    ) -> AdapterFuture<'a, std::result::Result<Mapped, OurFault>> {
        Box::pin(async move {
            let coded = match extract::coded_project(pool, facts).await? {
                Ok(c) => c,
                Err(fault) => return Ok(Err(fault)),
            };
            let project = &coded.project;
            let mut payload = json!({
                "PLATFORM_CODE": self.transport.platform_code,
                "DATA_TIMESTAMP": stamp(now),
                "TENDER_PROJECT_CODE": project.number,
                "TENDER_PROJECT_NAME": project.name,
                "UNIFIED_DEAL_CODE": coded.unified_deal_code,
                "BID_SECTION_CODE": coded.bid_section_code,
            });
            let body = match body(pool, exchange, &coded, facts).await? {
                Ok(body) => body,
                Err(fault) => return Ok(Err(fault)),
            };
            if let (Some(target), Some(fields)) = (payload.as_object_mut(), body.as_object()) {
                target.extend(fields.clone());
            }
            // Our own data is checked before it leaves: a violation is our fault.
            if let Err(problems) = validate_message(SUPERVISION_PLATFORM, exchange, &payload) {
                return Ok(Err(OurFault(format!(
                    "数据不符合接口规范 {exchange} {SUPERVISION_SCHEMA_VERSION}：{problems}"
                ))));
            }
            Ok(Ok(Mapped {
                path: exchange.to_string(),
                payload,
                unified_deal_code: Some(coded.unified_deal_code),
                bid_section_code: Some(coded.bid_section_code),
            }))
        })
    }
}

/// The fields of one data set beyond the project's identification.
async fn body(
    pool: &SqlitePool,
    exchange: &str,
    coded: &extract::CodedProject,
    facts: &Value,
) -> Result<std::result::Result<Value, OurFault>> {
    let project = &coded.project;
    let opening = match stamp_of(&project.opening, "开标时间") {
        Ok(s) => s,
        Err(fault) => return Ok(Err(fault)),
    };
    if category_data_set(&project.category) == Some(exchange) {
        // Construction and procurement open bids; land, mining rights and property trade.
        let field = match exchange {
            "construction-project" | "procurement-project" => "BID_OPEN_TIME",
            _ => "TRADE_TIME",
        };
        return Ok(Ok(json!({ field: opening })));
    }
    if Category::ALL
        .iter()
        .any(|c| category_data_set(c.as_str()) == Some(exchange))
    {
        return Ok(Err(OurFault(format!(
            "项目 {} 的类别 {} 不属于数据集 {exchange}",
            project.number, project.category
        ))));
    }
    let record = match extract::record_of(facts) {
        Ok(r) => r,
        Err(fault) => return Ok(Err(fault)),
    };
    Ok(match (exchange, record) {
        (
            "credit",
            EvaluationRecord::ExpertCredit {
                expert_name,
                id_number,
                credit_type,
                content,
                record_time,
            },
        ) => stamp_of(&record_time, "记录时间").map(|time| {
            json!({
                "SUBJECT_TYPE": "EXPERT",
                "SUBJECT_NAME": expert_name,
                "ID_CARD_NO": id_number,
                "CREDIT_TYPE": credit_type.to_ascii_uppercase(),
                "CREDIT_CONTENT": content,
                "RECORD_TIME": time,
            })
        }),
        (
            "opening-evaluation",
            EvaluationRecord::CandidatePublicity {
                publicity_start,
                publicity_end,
                candidates,
            },
        ) => {
            let mut conn = pool.acquire().await?;
            let bidders = extract::bidders(&mut conn, project.id).await?;
            drop(conn);
            let experts = extract::drawn_experts(pool, project.id).await?;
            (|| {
                Ok(json!({
                    "BID_OPEN_TIME": opening,
                    "BIDDER_LIST": bidders.iter().map(|n| json!({ "BIDDER_NAME": n })).collect::<Vec<_>>(),
                    "EXPERT_LIST": experts.iter().map(|n| json!({ "EXPERT_NAME": n })).collect::<Vec<_>>(),
                    "CANDIDATE_LIST": candidates.iter().map(|c| json!({
                        "RANK": c.rank,
                        "BIDDER_NAME": c.bidder_name,
                        "BIDDER_CODE": c.bidder_code,
                        "BID_PRICE": c.bid_price,
                    })).collect::<Vec<_>>(),
                    "PUBLICITY_START_TIME": stamp_of(&publicity_start, "公示开始时间")?,
                    "PUBLICITY_END_TIME": stamp_of(&publicity_end, "公示结束时间")?,
                }))
            })()
        }
        (exchange, _) => Err(OurFault(format!(
            "数据集 {exchange} 与项目 {}（{}）或所附记录不符",
            project.number, project.category
        ))),
    })
}
