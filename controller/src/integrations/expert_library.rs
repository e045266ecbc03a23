//! The adapter of the provincial expert library (省综合评标专家库): the ONE place that maps our
//! facts to its wire payloads and its replies back to the catalog. The official interface
//! document is not public; when it arrives, this file (and the schemas in
//! `schemas/json/expert-library/`) is what changes, not the delivery core.

use serde_json::{json, Value};
use sqlx::{SqliteConnection, SqlitePool};
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};
use witness_schemas::integration::{
    validate, EvaluationRecord, Exchange, ExpertLibraryConfig, HttpTargetConfig, EXPERT_LIBRARY,
    EXPERT_LIBRARY_SCHEMA_VERSION,
};

use super::delivery::{Adapter, AdapterFuture};
pub use super::delivery::{Mapped, OurFault};
use super::outbox::{self, NewMessage};
use crate::clock::{rfc3339, CHINA};
use crate::error::Result;
use crate::{catalog, err};

/// The expert library's adapter for the delivery core.
#[derive(Debug)]
pub struct ExpertLibrary {
    config: ExpertLibraryConfig,
    transport: HttpTargetConfig,
}

impl ExpertLibrary {
    pub fn new(config: ExpertLibraryConfig) -> ExpertLibrary {
        let transport = config.transport();
        ExpertLibrary { config, transport }
    }

    /// The adapter as the delivery core takes it.
    pub fn adapter(config: ExpertLibraryConfig) -> std::sync::Arc<dyn Adapter> {
        std::sync::Arc::new(ExpertLibrary::new(config))
    }
}

impl Adapter for ExpertLibrary {
    fn target(&self) -> &'static str {
        EXPERT_LIBRARY
    }

    fn label(&self) -> &'static str {
        "专家库"
    }

    fn transport(&self) -> &HttpTargetConfig {
        &self.transport
    }

    fn ordered(&self, exchange: &str) -> Option<bool> {
        Exchange::parse(exchange).map(Exchange::ordered)
    }

    fn map<'a>(
        &'a self,
        pool: &'a SqlitePool,
        exchange: &'a str,
        facts: &'a Value,
        now: OffsetDateTime,
    ) -> AdapterFuture<'a, std::result::Result<Mapped, OurFault>> {
        Box::pin(async move {
            let Some(exchange) = Exchange::parse(exchange) else {
                return Ok(Err(OurFault(format!("未知的交换类型 {exchange}"))));
            };
            map(pool, &self.config, exchange, facts, now).await
        })
    }

    fn on_ack<'a>(
        &'a self,
        conn: &'a mut SqliteConnection,
        exchange: &'a str,
        facts: &'a Value,
        reply: &'a Value,
        now: OffsetDateTime,
    ) -> AdapterFuture<'a, std::result::Result<(), String>> {
        Box::pin(async move {
            if exchange != Exchange::ExpertDrawRequest.as_str() {
                return Ok(Ok(()));
            }
            Ok(apply_draw_result(conn, facts, reply, now)
                .await?
                .map(|added| {
                    tracing::info!(experts = added, "drawing result stored into the draws");
                }))
        })
    }

    fn after_ack<'a>(
        &'a self,
        pool: &'a SqlitePool,
        exchange: &'a str,
        facts: &'a Value,
    ) -> AdapterFuture<'a, ()> {
        Box::pin(async move {
            if exchange != Exchange::ExpertDrawRequest.as_str() {
                return Ok(());
            }
            // Drawn experts are searchable by name.
            if let Some(number) = facts.get("project_number").and_then(Value::as_str) {
                if let Ok(project) = catalog::project(pool, number).await {
                    crate::search::notify(pool, crate::search::Change::Project(project.id));
                }
            }
            Ok(())
        })
    }
}

/// `yyyyMMddHHmmss` in China Standard Time, the national standard's timestamp form.
pub fn stamp(t: OffsetDateTime) -> String {
    let t = t.to_offset(CHINA);
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

pub fn parse_stamp(text: &str) -> Option<OffsetDateTime> {
    let format = format_description!("[year][month][day][hour][minute][second]");
    PrimitiveDateTime::parse(text, format)
        .ok()
        .map(|t| t.assume_offset(CHINA))
}

pub fn stamp_of(rfc: &str, what: &str) -> std::result::Result<String, OurFault> {
    OffsetDateTime::parse(rfc, &time::format_description::well_known::Rfc3339)
        .map(stamp)
        .map_err(|e| OurFault(format!("{what} {rfc:?} 不是有效时间：{e}")))
}

/// Maps a message's facts to the wire payload and validates it against the schema.
pub async fn map(
    pool: &SqlitePool,
    config: &ExpertLibraryConfig,
    exchange: Exchange,
    facts: &Value,
    now: OffsetDateTime,
) -> Result<std::result::Result<Mapped, OurFault>> {
    let mut payload = json!({
        "PLATFORM_CODE": config.platform_code,
        "DATA_TIMESTAMP": stamp(now),
    });
    let mut codes = (None, None);
    let text = |key: &str| facts.get(key).and_then(Value::as_str).map(str::to_string);
    if exchange != Exchange::GateIdentity {
        let Some(number) = text("project_number") else {
            return Ok(Err(OurFault("消息缺少项目编号".to_string())));
        };
        let project = match catalog::project(pool, &number).await {
            Ok(p) => p,
            Err(e) if e.kind == crate::error::ErrorKind::NotFound => {
                return Ok(Err(OurFault(e.message)))
            }
            Err(e) => return Err(e),
        };
        let trade: Option<(String, String)> = sqlx::query_as(
            "SELECT unified_deal_code, bid_section_code FROM project_trade_codes WHERE project_id = ?",
        )
        .bind(project.id)
        .fetch_optional(pool)
        .await?;
        let Some((deal, section)) = trade else {
            return Ok(Err(OurFault(format!(
                "项目 {number} 未登记统一交易标识码和标段编号（PUT /api/projects/{number}/trade-codes）"
            ))));
        };
        payload["TENDER_PROJECT_CODE"] = json!(project.number);
        payload["TENDER_PROJECT_NAME"] = json!(project.name);
        payload["UNIFIED_DEAL_CODE"] = json!(deal);
        payload["BID_SECTION_CODE"] = json!(section);
        codes = (Some(deal), Some(section));
        let body = match exchange {
            Exchange::ExpertDrawRequest => {
                let opening = match stamp_of(&project.opening, "开标时间") {
                    Ok(s) => s,
                    Err(e) => return Ok(Err(e)),
                };
                json!({
                    "BID_OPEN_TIME": opening,
                    "EXPERT_COUNT": facts.get("expert_count").cloned().unwrap_or(json!(config.expert_count)),
                    "EVALUATION_PLACE": config.evaluation_place,
                })
            }
            Exchange::EvaluationVideo => {
                let files = facts
                    .get("files")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let list: Vec<Value> = files
                    .iter()
                    .map(|f| {
                        let path = f.get("rel_path").and_then(Value::as_str).unwrap_or_default();
                        let name = path.rsplit('/').next().unwrap_or(path);
                        json!({
                            "FILE_NAME": name,
                            "FILE_PATH": path,
                            "FILE_SIZE": f.get("size"),
                            "FILE_FORMAT": name.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase()).unwrap_or_default(),
                            "SHA256": f.get("sha256"),
                        })
                    })
                    .collect();
                json!({ "VIDEO_LIST": list })
            }
            _ => {
                let record: EvaluationRecord = match serde_json::from_value(
                    facts.get("record").cloned().unwrap_or_default(),
                ) {
                    Ok(r) => r,
                    Err(e) => return Ok(Err(OurFault(format!("评标记录无法读取：{e}")))),
                };
                match map_record(&record) {
                    Ok(body) => body,
                    Err(e) => return Ok(Err(e)),
                }
            }
        };
        if let (Some(target), Some(fields)) = (payload.as_object_mut(), body.as_object()) {
            target.extend(fields.clone());
        }
    } else {
        let event_time = match text("at").map(|at| stamp_of(&at, "事件时间")) {
            Some(Ok(s)) => s,
            Some(Err(e)) => return Ok(Err(e)),
            None => return Ok(Err(OurFault("门禁事件缺少时间".to_string()))),
        };
        let allowed = facts
            .get("allowed")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        payload["GATE_NAME"] = json!(text("gate"));
        payload["EVENT_SEQUENCE"] = json!(facts.get("sequence"));
        payload["EVENT_TIME"] = json!(event_time);
        payload["ID_CARD_NO"] = json!(text("id_number"));
        payload["PERSON_NAME"] = json!(text("name").unwrap_or_default());
        payload["PASS_RESULT"] = json!(if allowed { "1" } else { "0" });
        if let Some(reason) = text("reason") {
            payload["DENY_REASON"] = json!(reason);
        }
        if let Some(project) = text("project_number") {
            payload["TENDER_PROJECT_CODE"] = json!(project);
        }
    }
    // Our own data is checked before it leaves: a violation is our fault, not the peer's.
    if let Err(problems) = validate(exchange, &payload) {
        return Ok(Err(OurFault(format!(
            "数据不符合接口规范 {} {}：{problems}",
            exchange.as_str(),
            EXPERT_LIBRARY_SCHEMA_VERSION
        ))));
    }
    Ok(Ok(Mapped {
        path: exchange.as_str().to_string(),
        payload,
        unified_deal_code: codes.0,
        bid_section_code: codes.1,
    }))
}

fn map_record(record: &EvaluationRecord) -> std::result::Result<Value, OurFault> {
    Ok(match record {
        EvaluationRecord::ExpertScores { scores } => json!({
            "SCORE_LIST": scores.iter().map(|s| json!({
                "EXPERT_NAME": s.expert_name,
                "ID_CARD_NO": s.id_number,
                "BIDDER_NAME": s.bidder_name,
                "BIDDER_CODE": s.bidder_code,
                "SCORE": s.score,
            })).collect::<Vec<_>>(),
        }),
        EvaluationRecord::CandidatePublicity {
            publicity_start,
            publicity_end,
            candidates,
        } => json!({
            "PUBLICITY_START_TIME": stamp_of(publicity_start, "公示开始时间")?,
            "PUBLICITY_END_TIME": stamp_of(publicity_end, "公示结束时间")?,
            "CANDIDATE_LIST": candidates.iter().map(|c| json!({
                "RANK": c.rank,
                "BIDDER_NAME": c.bidder_name,
                "BIDDER_CODE": c.bidder_code,
                "BID_PRICE": c.bid_price,
            })).collect::<Vec<_>>(),
        }),
        EvaluationRecord::ResultAnnouncement {
            winner_name,
            winner_code,
            win_price,
            notice_time,
        } => json!({
            "WIN_BIDDER_NAME": winner_name,
            "WIN_BIDDER_CODE": winner_code,
            "WIN_BID_PRICE": win_price,
            "NOTICE_TIME": stamp_of(notice_time, "公告时间")?,
        }),
        EvaluationRecord::ExpertCredit {
            expert_name,
            id_number,
            credit_type,
            content,
            record_time,
        } => json!({
            "EXPERT_NAME": expert_name,
            "ID_CARD_NO": id_number,
            "CREDIT_TYPE": credit_type.to_ascii_uppercase(),
            "CREDIT_CONTENT": content,
            "RECORD_TIME": stamp_of(record_time, "记录时间")?,
        }),
    })
}

/// Applies the drawing result of an acknowledged drawing request: the drawn experts go into
/// the same draws table the gates' lists are made from, in the caller's transaction (the one
/// that marks the message acknowledged). An unusable result is the peer's fault.
pub async fn apply_draw_result(
    conn: &mut SqliteConnection,
    facts: &Value,
    reply: &Value,
    now: OffsetDateTime,
) -> Result<std::result::Result<usize, String>> {
    let Some(number) = facts.get("project_number").and_then(Value::as_str) else {
        return Ok(Err("消息缺少项目编号".to_string()));
    };
    let Some(experts) = reply.get("DRAW_RESULT").and_then(Value::as_array) else {
        return Ok(Err("专家库应答缺少抽取结果 DRAW_RESULT".to_string()));
    };
    let project: Option<(i64,)> = sqlx::query_as("SELECT id FROM projects WHERE number = ?")
        .bind(number)
        .fetch_optional(&mut *conn)
        .await?;
    let Some((project_id,)) = project else {
        return Ok(Err(format!("项目 {number} 不存在")));
    };
    let mut added = 0;
    for expert in experts {
        let field = |key: &str| expert.get(key).and_then(Value::as_str).unwrap_or_default();
        let id_number = field("ID_CARD_NO").to_ascii_uppercase();
        if let Err(e) = crate::gates::check_id_number(&id_number) {
            return Ok(Err(format!("专家库返回的抽取结果有误：{}", e.message)));
        }
        let (Some(start), Some(end)) = (
            parse_stamp(field("EVALUATION_START_TIME")),
            parse_stamp(field("EVALUATION_END_TIME")),
        ) else {
            return Ok(Err("专家库返回的评标时间无法解析".to_string()));
        };
        // The same expert drawn again (a resent request) is the same row: unique per window.
        let inserted = sqlx::query(
            "INSERT OR IGNORE INTO expert_draws (project_id, id_number, name, window_start, window_end, created_by, created_at) \
             VALUES (?, ?, ?, ?, ?, '省专家库', ?)",
        )
        .bind(project_id)
        .bind(&id_number)
        .bind(field("EXPERT_NAME"))
        .bind(rfc3339(start))
        .bind(rfc3339(end))
        .bind(rfc3339(now.to_offset(CHINA)))
        .execute(&mut *conn)
        .await?;
        added += inserted.rows_affected() as usize;
    }
    Ok(Ok(added))
}

/// Queues the drawing request of one project for its opening day (key: project and day, so
/// each project is requested once a day however often this runs).
pub async fn enqueue_draw_request(
    conn: &mut SqliteConnection,
    number: &str,
    day: time::Date,
    expert_count: Option<u32>,
    now: OffsetDateTime,
) -> Result<Option<i64>> {
    let mut facts = json!({ "project_number": number });
    if let Some(count) = expert_count {
        facts["expert_count"] = json!(count);
    }
    outbox::enqueue(
        conn,
        NewMessage {
            target: EXPERT_LIBRARY,
            exchange: Exchange::ExpertDrawRequest.as_str(),
            idempotency_key: format!("draw-request:{number}:{day}"),
            project_number: Some(number),
            schema_version: EXPERT_LIBRARY_SCHEMA_VERSION,
            payload: facts,
        },
        now,
    )
    .await
}

/// Queues the references to a job's archived videos, in the transaction that records the
/// project as archived: the evaluation monitoring video exchange. Nothing when the package
/// holds no video.
pub async fn enqueue_archived_videos(
    conn: &mut SqliteConnection,
    job_id: i64,
    project_number: &str,
    now: OffsetDateTime,
) -> Result<Option<i64>> {
    let files: Vec<(String, i64, String)> = sqlx::query_as(
        "SELECT rel_path, size, sha256 FROM package_files WHERE job_id = ? AND kind = 'video' ORDER BY rel_path",
    )
    .bind(job_id)
    .fetch_all(&mut *conn)
    .await?;
    if files.is_empty() {
        return Ok(None);
    }
    let files: Vec<Value> = files
        .into_iter()
        .map(|(rel_path, size, sha256)| json!({"rel_path": rel_path, "size": size, "sha256": sha256}))
        .collect();
    outbox::enqueue(
        conn,
        NewMessage {
            target: EXPERT_LIBRARY,
            exchange: Exchange::EvaluationVideo.as_str(),
            idempotency_key: format!("evaluation-video:job-{job_id}"),
            project_number: Some(project_number),
            schema_version: EXPERT_LIBRARY_SCHEMA_VERSION,
            payload: json!({ "project_number": project_number, "files": files }),
        },
        now,
    )
    .await
}

/// Queues a gate identity event, in the gate-event ingest transaction.
pub async fn enqueue_gate_identity(
    conn: &mut SqliteConnection,
    event_id: i64,
    facts: Value,
    now: OffsetDateTime,
) -> Result<Option<i64>> {
    let project = facts
        .get("project_number")
        .and_then(Value::as_str)
        .map(str::to_string);
    outbox::enqueue(
        conn,
        NewMessage {
            target: EXPERT_LIBRARY,
            exchange: Exchange::GateIdentity.as_str(),
            // The same key migration 0005 gave the rows of the old gate outbox.
            idempotency_key: format!("gate-event-{event_id}"),
            project_number: project.as_deref(),
            schema_version: EXPERT_LIBRARY_SCHEMA_VERSION,
            payload: facts,
        },
        now,
    )
    .await
}

/// Checks an evaluation record at entry, so bad input is refused with a 400 instead of
/// becoming a dead letter later.
pub fn check_record(record: &EvaluationRecord) -> Result<()> {
    let rfc = |t: &str, what: &str| -> Result<()> {
        OffsetDateTime::parse(t.trim(), &time::format_description::well_known::Rfc3339)
            .map(|_| ())
            .map_err(|e| {
                err!(
                    InvalidArgument,
                    "{what} {t:?} 不是 RFC 3339 时间（如 2026-03-18T09:00:00+08:00）：{e}"
                )
            })
    };
    let nonempty = |t: &str, what: &str| -> Result<()> {
        if t.trim().is_empty() {
            return Err(err!(InvalidArgument, "{what}不能为空"));
        }
        Ok(())
    };
    let money = |t: &str, what: &str| -> Result<()> {
        let ok = t.split_once('.').map_or(
            !t.is_empty() && t.len() <= 15 && t.bytes().all(|b| b.is_ascii_digit()),
            |(whole, cents)| {
                !whole.is_empty()
                    && whole.len() <= 15
                    && whole.bytes().all(|b| b.is_ascii_digit())
                    && (1..=2).contains(&cents.len())
                    && cents.bytes().all(|b| b.is_ascii_digit())
            },
        );
        if !ok {
            return Err(err!(
                InvalidArgument,
                "{what} {t:?} 须为金额（元，最多两位小数）"
            ));
        }
        Ok(())
    };
    let code = |t: &str| -> Result<()> {
        if t.len() != 18
            || !t
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
        {
            return Err(err!(
                InvalidArgument,
                "统一社会信用代码 {t:?} 须为 18 位数字或大写字母"
            ));
        }
        Ok(())
    };
    match record {
        EvaluationRecord::ExpertScores { scores } => {
            if scores.is_empty() {
                return Err(err!(InvalidArgument, "评分列表不能为空"));
            }
            for s in scores {
                nonempty(&s.expert_name, "专家姓名")?;
                crate::gates::check_id_number(&s.id_number)?;
                nonempty(&s.bidder_name, "投标人名称")?;
                code(&s.bidder_code)?;
                if !(0.0..=100.0).contains(&s.score) {
                    return Err(err!(InvalidArgument, "评分 {} 须在 0–100 之间", s.score));
                }
            }
        }
        EvaluationRecord::CandidatePublicity {
            publicity_start,
            publicity_end,
            candidates,
        } => {
            rfc(publicity_start, "公示开始时间")?;
            rfc(publicity_end, "公示结束时间")?;
            if candidates.is_empty() {
                return Err(err!(InvalidArgument, "候选人列表不能为空"));
            }
            for c in candidates {
                if c.rank == 0 {
                    return Err(err!(InvalidArgument, "候选人排名从 1 开始"));
                }
                nonempty(&c.bidder_name, "投标人名称")?;
                code(&c.bidder_code)?;
                money(&c.bid_price, "投标报价")?;
            }
        }
        EvaluationRecord::ResultAnnouncement {
            winner_name,
            winner_code,
            win_price,
            notice_time,
        } => {
            nonempty(winner_name, "中标人名称")?;
            code(winner_code)?;
            money(win_price, "中标价")?;
            rfc(notice_time, "公告时间")?;
        }
        EvaluationRecord::ExpertCredit {
            expert_name,
            id_number,
            credit_type,
            content,
            record_time,
        } => {
            nonempty(expert_name, "专家姓名")?;
            crate::gates::check_id_number(id_number)?;
            if !matches!(credit_type.as_str(), "good" | "bad") {
                return Err(err!(
                    InvalidArgument,
                    "信用类型 {credit_type:?} 须为 good（良好）或 bad（不良）"
                ));
            }
            nonempty(content, "记录内容")?;
            rfc(record_time, "记录时间")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_china_time() {
        let t = time::macros::datetime!(2026-03-18 01:30:05 UTC);
        assert_eq!(stamp(t), "20260318093005");
        assert_eq!(
            parse_stamp("20260318093005").map(rfc3339).as_deref(),
            Some("2026-03-18T09:30:05+08:00")
        );
        assert!(parse_stamp("2026-03-18").is_none());
    }
}
