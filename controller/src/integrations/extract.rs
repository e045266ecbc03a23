//! Extraction for the online supervision platform and the finance bureau: which catalog change
//! queues which data set (always inside the transaction of that change), the facts each message
//! carries in our own terms, the catalog reads their adapters share, and the manual re-extraction
//! of a project's data set.

use serde_json::{json, Value};
use sqlx::{SqliteConnection, SqlitePool};
use time::OffsetDateTime;
use witness_schemas::api::Category;
use witness_schemas::integration::{
    data_sets, EvaluationRecord, Exchange, DATA_SETS, FINANCE_BUREAU, FINANCE_SCHEMA_VERSION,
    SUPERVISION_PLATFORM, SUPERVISION_SCHEMA_VERSION,
};

use super::delivery::OurFault;
use super::outbox::{self, NewMessage};
use crate::catalog::{self, ProjectRow};
use crate::clock::{rfc3339, CHINA};
use crate::error::{ErrorKind, Result};
use crate::{bail, err};

/// How far back the openings duty looks: a procurement project that opened within this many
/// days gets its opening stage queued (once), so a first start with an old catalog does not
/// report years of past openings, yet a few days with the appliance off lose nothing.
const OPENING_LOOKBACK_DAYS: i64 = 7;

/// The supervision platform's project data set of a category.
pub fn category_data_set(category: &str) -> Option<&'static str> {
    Some(match Category::parse(category)? {
        Category::Construction => "construction-project",
        Category::Procurement => "procurement-project",
        Category::Land => "land-use-right",
        Category::Mining => "mining-right",
        Category::Property => "state-property",
    })
}

fn is_procurement(category: &str) -> bool {
    Category::parse(category) == Some(Category::Procurement)
}

/// Records which of the extraction targets are configured (at start, before the workers):
/// the triggers queue messages only for those.
pub async fn configure_targets(
    pool: &SqlitePool,
    configured: &[&str],
    now: OffsetDateTime,
) -> Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM integration_targets")
        .execute(&mut *tx)
        .await?;
    for target in configured
        .iter()
        .filter(|t| [SUPERVISION_PLATFORM, FINANCE_BUREAU].contains(t))
    {
        sqlx::query("INSERT INTO integration_targets (target, configured_at) VALUES (?, ?)")
            .bind(target)
            .bind(rfc3339(now.to_offset(CHINA)))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn configured(conn: &mut SqliteConnection, target: &str) -> Result<bool> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT 1 FROM integration_targets WHERE target = ?")
        .bind(target)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.is_some())
}

/// Queues a message of a configured target (nothing for a target not configured).
async fn put(
    conn: &mut SqliteConnection,
    target: &'static str,
    exchange: &'static str,
    key: String,
    number: &str,
    facts: Value,
    now: OffsetDateTime,
) -> Result<Option<i64>> {
    if !configured(conn, target).await? {
        return Ok(None);
    }
    let schema_version = if target == FINANCE_BUREAU {
        FINANCE_SCHEMA_VERSION
    } else {
        SUPERVISION_SCHEMA_VERSION
    };
    outbox::enqueue(
        conn,
        NewMessage {
            target,
            exchange,
            idempotency_key: key,
            project_number: Some(number),
            schema_version,
            payload: facts,
        },
        now,
    )
    .await
}

/// The project's trade codes were recorded or changed: its project data set goes to the
/// supervision platform and, for government procurement, the project stage to the finance
/// bureau. The key carries the time of the change, so each change is reported once.
pub async fn on_trade_codes(
    conn: &mut SqliteConnection,
    project: &ProjectRow,
    now: OffsetDateTime,
) -> Result<Vec<i64>> {
    let facts = json!({ "project_number": project.number });
    let change = rfc3339(now.to_offset(CHINA));
    let mut ids = Vec::new();
    if let Some(data_set) = category_data_set(&project.category) {
        let key = format!("supervision:{data_set}:{}:{change}", project.number);
        ids.extend(
            put(
                conn,
                SUPERVISION_PLATFORM,
                data_set,
                key,
                &project.number,
                facts.clone(),
                now,
            )
            .await?,
        );
    }
    if is_procurement(&project.category) {
        let key = format!("finance:project:{}:{change}", project.number);
        ids.extend(
            put(
                conn,
                FINANCE_BUREAU,
                "project",
                key,
                &project.number,
                facts,
                now,
            )
            .await?,
        );
    }
    Ok(ids)
}

/// An evaluation record was stored (`record_id`): expert credit goes to the supervision
/// platform's credit data set; a candidate publicity to its opening/evaluation data set and,
/// for procurement, to the finance bureau's evaluation stage; a result announcement of a
/// procurement project to the finance bureau's award stage.
pub async fn on_record(
    conn: &mut SqliteConnection,
    project: &ProjectRow,
    record_id: i64,
    record: &EvaluationRecord,
    now: OffsetDateTime,
) -> Result<Vec<i64>> {
    let number = project.number.as_str();
    let facts = json!({ "project_number": number, "record": record });
    let procurement = is_procurement(&project.category);
    let mut ids = Vec::new();
    let queue = |target: &'static str, exchange: &'static str| {
        let key = format!(
            "{}:{exchange}:record-{record_id}",
            if target == FINANCE_BUREAU {
                "finance"
            } else {
                "supervision"
            }
        );
        (target, exchange, key)
    };
    let wanted: Vec<(&'static str, &'static str, String)> = match record {
        EvaluationRecord::ExpertCredit { .. } => vec![queue(SUPERVISION_PLATFORM, "credit")],
        EvaluationRecord::CandidatePublicity { .. } => {
            let mut list = vec![queue(SUPERVISION_PLATFORM, "opening-evaluation")];
            if procurement {
                list.push(queue(FINANCE_BUREAU, "evaluation"));
            }
            list
        }
        EvaluationRecord::ResultAnnouncement { .. } if procurement => {
            vec![queue(FINANCE_BUREAU, "award")]
        }
        _ => Vec::new(),
    };
    for (target, exchange, key) in wanted {
        ids.extend(put(conn, target, exchange, key, number, facts.clone(), now).await?);
    }
    Ok(ids)
}

/// A bidder registered for a procurement project: the finance bureau's bids stage.
pub async fn on_bidder(
    conn: &mut SqliteConnection,
    project: &ProjectRow,
    bidder_id: i64,
    name: &str,
    now: OffsetDateTime,
) -> Result<Option<i64>> {
    if !is_procurement(&project.category) {
        return Ok(None);
    }
    let facts = json!({
        "project_number": project.number,
        "bidder": name,
        "registered_at": rfc3339(now.to_offset(CHINA)),
    });
    let key = format!("finance:bids:bidder-{bidder_id}");
    put(
        conn,
        FINANCE_BUREAU,
        "bids",
        key,
        &project.number,
        facts,
        now,
    )
    .await
}

/// The openings duty: each procurement project whose opening time passed within the last
/// `OPENING_LOOKBACK_DAYS` gets its opening stage queued once (key per project), with the
/// bidders registered at that moment.
pub async fn enqueue_openings(pool: &SqlitePool, now: OffsetDateTime) -> Result<Vec<i64>> {
    if !configured(&mut *pool.acquire().await?, FINANCE_BUREAU).await? {
        return Ok(Vec::new());
    }
    let rows: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT id, number, opening FROM projects WHERE category = ? ORDER BY opening, id",
    )
    .bind(Category::Procurement.as_str())
    .fetch_all(pool)
    .await?;
    let since = now - time::Duration::days(OPENING_LOOKBACK_DAYS);
    let mut tx = pool.begin().await?;
    let mut ids = Vec::new();
    for (project_id, number, opening) in rows {
        let opened =
            OffsetDateTime::parse(&opening, &time::format_description::well_known::Rfc3339);
        if !opened.is_ok_and(|t| t > since && t <= now) {
            continue;
        }
        let key = format!("finance:opening:{number}");
        let exists: Option<(i64,)> =
            sqlx::query_as("SELECT id FROM outbox WHERE idempotency_key = ?")
                .bind(&key)
                .fetch_optional(&mut *tx)
                .await?;
        if exists.is_some() {
            continue;
        }
        let facts =
            json!({ "project_number": number, "suppliers": bidders(&mut tx, project_id).await? });
        if let Some(id) = put(&mut tx, FINANCE_BUREAU, "opening", key, &number, facts, now).await? {
            tracing::info!(project = %number, "finance bureau: opening stage queued");
            ids.push(id);
        }
    }
    tx.commit().await?;
    Ok(ids)
}

/// Manual re-extraction (重新推送) of one data set of a project, as new messages: after the
/// project's data was corrected, or for a target connected after the fact. A data set the
/// catalog has no source for is refused as not supported yet.
pub async fn extract(
    pool: &SqlitePool,
    target: &str,
    data_set: &str,
    number: &str,
    now: OffsetDateTime,
) -> Result<Vec<i64>> {
    let sets = data_sets(target);
    if sets.is_empty() {
        bail!(
            InvalidArgument,
            "对接目标 {target} 没有可抽取的数据集（在线监管平台 supervision_platform、财政局 finance_bureau 才有）"
        );
    }
    // The row of the table, for its 'static names.
    let Some(&(target, exchange, label, source)) = DATA_SETS
        .iter()
        .find(|(t, name, ..)| *t == target && *name == data_set)
    else {
        let names: Vec<&str> = sets.iter().map(|s| s.name.as_str()).collect();
        bail!(
            InvalidArgument,
            "{target} 没有数据集 {data_set:?}（可用：{}）",
            names.join("、")
        );
    };
    if source.is_none() {
        bail!(
            FailedPrecondition,
            "数据集 {data_set}（{label}）尚不支持 (not supported yet)：本系统目录中没有它的数据来源"
        );
    }
    let project = catalog::project(pool, number).await?;
    if !configured(&mut *pool.acquire().await?, target).await? {
        bail!(
            FailedPrecondition,
            "对接目标 {target} 未配置（[integrations.{target}]），不能推送"
        );
    }
    let stamp = rfc3339(now.to_offset(CHINA));
    let prefix = if target == FINANCE_BUREAU {
        "finance"
    } else {
        "supervision"
    };
    if target == FINANCE_BUREAU && !is_procurement(&project.category) {
        bail!(
            FailedPrecondition,
            "项目 {number} 不是政府采购项目，财政局只接收政府采购项目"
        );
    }
    let mut tx = pool.begin().await?;
    let mut facts_list: Vec<(String, Value)> = Vec::new();
    // The evaluation records (by their expert-library exchange, as stored) a data set is made of.
    let record_kind = match exchange {
        "credit" => Some(Exchange::ExpertCredit),
        "opening-evaluation" | "evaluation" => Some(Exchange::CandidatePublicity),
        "award" => Some(Exchange::ResultAnnouncement),
        _ => None,
    };
    if let Some(kind) = record_kind {
        let records: Vec<(i64, String)> = sqlx::query_as(
            "SELECT id, record FROM evaluation_records WHERE project_id = ? AND kind = ? ORDER BY id",
        )
        .bind(project.id)
        .bind(kind.as_str())
        .fetch_all(&mut *tx)
        .await?;
        if records.is_empty() {
            bail!(NotFound, "项目 {number} 没有可推送的{label}记录");
        }
        for (id, text) in records {
            let record: Value =
                serde_json::from_str(&text).map_err(|e| err!(Internal, "record {id}: {e}"))?;
            facts_list.push((
                format!("record-{id}"),
                json!({ "project_number": number, "record": record }),
            ));
        }
    } else {
        match exchange {
            "bids" => {
                let bidders: Vec<(i64, String, String)> = sqlx::query_as(
                    "SELECT id, name, created_at FROM project_bidders WHERE project_id = ? ORDER BY id",
                )
                .bind(project.id)
                .fetch_all(&mut *tx)
                .await?;
                if bidders.is_empty() {
                    bail!(NotFound, "项目 {number} 没有登记投标人");
                }
                for (id, name, at) in bidders {
                    facts_list.push((
                        format!("bidder-{id}"),
                        json!({ "project_number": number, "bidder": name, "registered_at": at }),
                    ));
                }
            }
            "opening" => {
                let opened = OffsetDateTime::parse(
                    &project.opening,
                    &time::format_description::well_known::Rfc3339,
                );
                if !opened.is_ok_and(|t| t <= now) {
                    bail!(FailedPrecondition, "项目 {number} 尚未开标");
                }
                let suppliers = bidders(&mut tx, project.id).await?;
                facts_list.push((
                    String::new(),
                    json!({ "project_number": number, "suppliers": suppliers }),
                ));
            }
            _ => {
                // A project data set: the category must match.
                let own = if target == FINANCE_BUREAU {
                    Some("project")
                } else {
                    category_data_set(&project.category)
                };
                if own != Some(exchange) {
                    bail!(
                        FailedPrecondition,
                        "项目 {number} 的类别不属于数据集 {data_set}（{label}）"
                    );
                }
                facts_list.push((String::new(), json!({ "project_number": number })));
            }
        }
    }
    let mut ids = Vec::new();
    for (part, facts) in facts_list {
        let key = format!("{prefix}:{exchange}:{number}:{part}:manual-{stamp}");
        ids.extend(put(&mut tx, target, exchange, key, number, facts, now).await?);
    }
    tx.commit().await?;
    Ok(ids)
}

/// A project with the codes the platforms know it by, as the adapters read it when they map
/// a message. A message whose project is gone or has no codes is our fault.
#[derive(Debug)]
pub struct CodedProject {
    pub project: ProjectRow,
    pub unified_deal_code: String,
    pub bid_section_code: String,
}

pub async fn coded_project(
    pool: &SqlitePool,
    facts: &Value,
) -> Result<std::result::Result<CodedProject, OurFault>> {
    let Some(number) = facts.get("project_number").and_then(Value::as_str) else {
        return Ok(Err(OurFault("消息缺少项目编号".to_string())));
    };
    let project = match catalog::project(pool, number).await {
        Ok(p) => p,
        Err(e) if e.kind == ErrorKind::NotFound => return Ok(Err(OurFault(e.message))),
        Err(e) => return Err(e),
    };
    let trade: Option<(String, String)> = sqlx::query_as(
        "SELECT unified_deal_code, bid_section_code FROM project_trade_codes WHERE project_id = ?",
    )
    .bind(project.id)
    .fetch_optional(pool)
    .await?;
    let Some((unified_deal_code, bid_section_code)) = trade else {
        return Ok(Err(OurFault(format!(
            "项目 {number} 未登记统一交易标识码和标段编号（PUT /api/projects/{number}/trade-codes）"
        ))));
    };
    Ok(Ok(CodedProject {
        project,
        unified_deal_code,
        bid_section_code,
    }))
}

/// The names of the bidders registered for a project, in registration order.
pub async fn bidders(conn: &mut SqliteConnection, project_id: i64) -> Result<Vec<String>> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT name FROM project_bidders WHERE project_id = ? ORDER BY id")
            .bind(project_id)
            .fetch_all(&mut *conn)
            .await?;
    Ok(rows.into_iter().map(|(n,)| n).collect())
}

/// The names of the experts drawn for a project (names only: the platforms that need ID
/// numbers get them from the expert library).
pub async fn drawn_experts(pool: &SqlitePool, project_id: i64) -> Result<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM expert_draws WHERE project_id = ? GROUP BY id_number ORDER BY MIN(id)",
    )
    .bind(project_id)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(n,)| n).collect())
}

/// The record a message carries.
pub fn record_of(facts: &Value) -> std::result::Result<EvaluationRecord, OurFault> {
    serde_json::from_value(facts.get("record").cloned().unwrap_or_default())
        .map_err(|e| OurFault(format!("评标记录无法读取：{e}")))
}
