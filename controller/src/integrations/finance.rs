//! The adapter of the finance bureau (财政局): the ONE place that maps our facts to the stages
//! of a government-procurement project (`schemas/json/finance/v1/`). Its interface document is
//! not public; when it arrives, this file and the schemas change, not the delivery core nor the
//! triggers in `extract`.

use serde_json::{json, Value};
use sqlx::SqlitePool;
use time::OffsetDateTime;
use witness_schemas::api::Category;
use witness_schemas::integration::{
    has_schema, validate_message, EvaluationRecord, HttpTargetConfig, FINANCE_BUREAU,
    FINANCE_SCHEMA_VERSION, REPLY,
};

use super::delivery::{Adapter, AdapterFuture, Mapped, OurFault};
use super::expert_library::{stamp, stamp_of};
use super::extract;

#[derive(Debug)]
pub struct FinanceBureau {
    transport: HttpTargetConfig,
}

impl FinanceBureau {
    pub fn adapter(transport: HttpTargetConfig) -> std::sync::Arc<dyn Adapter> {
        std::sync::Arc::new(FinanceBureau { transport })
    }
}

impl Adapter for FinanceBureau {
    fn target(&self) -> &'static str {
        FINANCE_BUREAU
    }

    fn label(&self) -> &'static str {
        "财政局"
    }

    fn transport(&self) -> &HttpTargetConfig {
        &self.transport
    }

    /// The stages of a project must arrive in order (an award never before its project).
    fn ordered(&self, exchange: &str) -> Option<bool> {
        (exchange != REPLY && has_schema(FINANCE_BUREAU, exchange)).then_some(true)
    }

    /// All stages of one project are one ordered sequence; other projects are not held back.
    fn order_key(&self, _exchange: &str, project_number: Option<&str>) -> String {
        format!("project:{}", project_number.unwrap_or_default())
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
            if Category::parse(&project.category) != Some(Category::Procurement) {
                return Ok(Err(OurFault(format!(
                    "项目 {} 不是政府采购项目，不报财政局",
                    project.number
                ))));
            }
            let mut payload = json!({
                "PLATFORM_CODE": self.transport.platform_code,
                "DATA_TIMESTAMP": stamp(now),
                "PURCHASE_PROJECT_CODE": project.number,
                "PURCHASE_PROJECT_NAME": project.name,
                "UNIFIED_DEAL_CODE": coded.unified_deal_code,
                "BID_SECTION_CODE": coded.bid_section_code,
            });
            let body = match stage(exchange, &project.opening, facts) {
                Ok(body) => body,
                Err(fault) => return Ok(Err(fault)),
            };
            if let (Some(target), Some(fields)) = (payload.as_object_mut(), body.as_object()) {
                target.extend(fields.clone());
            }
            // Our own data is checked before it leaves: a violation is our fault.
            if let Err(problems) = validate_message(FINANCE_BUREAU, exchange, &payload) {
                return Ok(Err(OurFault(format!(
                    "数据不符合接口规范 {exchange} {FINANCE_SCHEMA_VERSION}：{problems}"
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

/// The fields of one stage beyond the project's identification.
fn stage(exchange: &str, opening: &str, facts: &Value) -> std::result::Result<Value, OurFault> {
    let text = |key: &str| facts.get(key).and_then(Value::as_str).unwrap_or_default();
    match exchange {
        "project" => Ok(json!({ "BID_OPEN_TIME": stamp_of(opening, "开标时间")? })),
        "bids" => Ok(json!({
            "SUPPLIER_NAME": text("bidder"),
            "REGISTER_TIME": stamp_of(text("registered_at"), "登记时间")?,
        })),
        "opening" => {
            let suppliers: Vec<Value> = facts
                .get("suppliers")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            Ok(json!({
                "BID_OPEN_TIME": stamp_of(opening, "开标时间")?,
                "SUPPLIER_COUNT": suppliers.len(),
                "SUPPLIER_LIST": suppliers.iter().map(|n| json!({ "SUPPLIER_NAME": n })).collect::<Vec<_>>(),
            }))
        }
        "evaluation" | "award" => match (exchange, extract::record_of(facts)?) {
            (
                "evaluation",
                EvaluationRecord::CandidatePublicity {
                    publicity_start,
                    publicity_end,
                    candidates,
                },
            ) => Ok(json!({
                "CANDIDATE_LIST": candidates.iter().map(|c| json!({
                    "RANK": c.rank,
                    "SUPPLIER_NAME": c.bidder_name,
                    "SUPPLIER_CODE": c.bidder_code,
                    "BID_PRICE": c.bid_price,
                })).collect::<Vec<_>>(),
                "PUBLICITY_START_TIME": stamp_of(&publicity_start, "公示开始时间")?,
                "PUBLICITY_END_TIME": stamp_of(&publicity_end, "公示结束时间")?,
            })),
            (
                "award",
                EvaluationRecord::ResultAnnouncement {
                    winner_name,
                    winner_code,
                    win_price,
                    notice_time,
                },
            ) => Ok(json!({
                "WIN_SUPPLIER_NAME": winner_name,
                "WIN_SUPPLIER_CODE": winner_code,
                "WIN_PRICE": win_price,
                "NOTICE_TIME": stamp_of(&notice_time, "公告时间")?,
            })),
            _ => Err(OurFault(format!("阶段 {exchange} 所附的记录类型不符"))),
        },
        other => Err(OurFault(format!("财政局没有阶段 {other}"))),
    }
}
