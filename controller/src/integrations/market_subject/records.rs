//! Subject records (法人、自然人、业绩、奖励、违法违规、黑名单及撤销、合同履约、投标文件上传记录):
//! facts the catalog does not otherwise hold, checked at entry, stored, and queued for the
//! market-subject library in the same transaction.

use sqlx::SqlitePool;
use time::OffsetDateTime;
use witness_schemas::market_subject::{
    credit_code_problem, RecordedSubject, SubjectExchange, SubjectRecord, SubjectRecordSummary,
    MARKET_SUBJECT_LIBRARY, MARKET_SUBJECT_SCHEMA_VERSION,
};

use super::super::outbox::{self, NewMessage};
use super::adapter::{self, Facts, ProjectCodes, Revoked};
use crate::clock::{rfc3339, CHINA};
use crate::error::Result;
use crate::{bail, catalog, err};

/// The idempotency key of a record's message, also its RECORD_ID at the library.
pub fn record_key(record_id: i64) -> String {
    format!("market-subject:record-{record_id}")
}

fn nonempty(text: &str, what: &str) -> Result<()> {
    if text.trim().is_empty() {
        bail!(InvalidArgument, "{what}不能为空");
    }
    Ok(())
}

fn credit_code(code: &str, what: &str) -> Result<()> {
    if let Some(problem) = credit_code_problem(code.trim()) {
        bail!(InvalidArgument, "{what}：{problem}");
    }
    Ok(())
}

fn money(text: &str, what: &str) -> Result<()> {
    let t = text.trim();
    let digits = |s: &str, max: usize| {
        !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit())
    };
    let ok = match t.split_once('.') {
        None => digits(t, 15),
        Some((whole, cents)) => digits(whole, 15) && digits(cents, 2),
    };
    if !ok {
        bail!(InvalidArgument, "{what} {t:?} 须为金额（元，最多两位小数）");
    }
    Ok(())
}

/// Checks what the schema cannot (check characters of codes and ID numbers, one clear message
/// per field); the schema then checks the rest when the record is mapped at entry.
fn check(record: &SubjectRecord) -> Result<()> {
    match record {
        SubjectRecord::LegalPerson {
            credit_code: code,
            name,
            legal_representative,
            address,
            ..
        } => {
            credit_code(code, "统一社会信用代码")?;
            nonempty(name, "单位名称")?;
            nonempty(legal_representative, "法定代表人")?;
            nonempty(address, "注册地址")?;
        }
        SubjectRecord::NaturalPerson {
            id_number,
            name,
            employer_code,
            ..
        } => {
            // The error message masks the number.
            crate::gates::check_id_number(id_number.trim())?;
            nonempty(name, "姓名")?;
            if let Some(code) = employer_code {
                credit_code(code, "所在单位统一社会信用代码")?;
            }
        }
        SubjectRecord::Performance {
            credit_code: code,
            name,
            project_name,
            contract_amount,
            ..
        } => {
            credit_code(code, "统一社会信用代码")?;
            nonempty(name, "单位名称")?;
            nonempty(project_name, "业绩项目名称")?;
            money(contract_amount, "合同金额")?;
        }
        SubjectRecord::Reward {
            credit_code: code,
            name,
            reward_name,
            ..
        } => {
            credit_code(code, "统一社会信用代码")?;
            nonempty(name, "单位名称")?;
            nonempty(reward_name, "奖项名称")?;
        }
        SubjectRecord::Violation {
            credit_code: code,
            name,
            content,
            ..
        } => {
            credit_code(code, "统一社会信用代码")?;
            nonempty(name, "单位名称")?;
            nonempty(content, "违法违规行为")?;
        }
        SubjectRecord::Blacklist {
            credit_code: code,
            name,
            reason,
            ..
        } => {
            credit_code(code, "统一社会信用代码")?;
            nonempty(name, "单位名称")?;
            nonempty(reason, "列入事由")?;
        }
        SubjectRecord::BlacklistRevocation { reason, .. } => {
            nonempty(reason, "撤销事由")?;
        }
        SubjectRecord::ContractPerformance {
            credit_code: code,
            name,
            contract_no,
            contract_amount,
            ..
        } => {
            credit_code(code, "统一社会信用代码")?;
            nonempty(name, "单位名称")?;
            nonempty(contract_no, "合同编号")?;
            money(contract_amount, "合同金额")?;
        }
        SubjectRecord::BidFileUpload {
            credit_code: code,
            name,
            file_name,
            file_size,
            file_hash,
            ..
        } => {
            credit_code(code, "投标人统一社会信用代码")?;
            nonempty(name, "投标人名称")?;
            nonempty(file_name, "文件名")?;
            if *file_size == 0 {
                bail!(InvalidArgument, "文件大小须大于 0");
            }
            let hash = file_hash.trim();
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                bail!(
                    InvalidArgument,
                    "文件摘要须为 64 位十六进制（SM3 或 SHA-256）"
                );
            }
        }
    }
    Ok(())
}

/// The code and name a record is listed under (a natural person's ID number masked).
fn subject_of(record: &SubjectRecord, revokes: Option<&Revoked>) -> (String, String) {
    match record {
        SubjectRecord::LegalPerson {
            credit_code, name, ..
        }
        | SubjectRecord::Performance {
            credit_code, name, ..
        }
        | SubjectRecord::Reward {
            credit_code, name, ..
        }
        | SubjectRecord::Violation {
            credit_code, name, ..
        }
        | SubjectRecord::Blacklist {
            credit_code, name, ..
        }
        | SubjectRecord::ContractPerformance {
            credit_code, name, ..
        }
        | SubjectRecord::BidFileUpload {
            credit_code, name, ..
        } => (credit_code.trim().to_string(), name.trim().to_string()),
        SubjectRecord::NaturalPerson {
            id_number, name, ..
        } => (
            crate::auth::mask_id_number(id_number.trim()),
            name.trim().to_string(),
        ),
        SubjectRecord::BlacklistRevocation { .. } => revokes
            .map(|r| (r.credit_code.clone(), r.name.clone()))
            .unwrap_or_default(),
    }
}

/// Records a fact about a market subject and queues its message for the library in the same
/// transaction. Bad input is refused whole, before anything is stored.
pub async fn add_record(
    pool: &SqlitePool,
    record: &SubjectRecord,
    by: &str,
    now: OffsetDateTime,
) -> Result<RecordedSubject> {
    check(record)?;
    let project = match record.project_number() {
        Some(number) => Some(catalog::project(pool, number).await?),
        None => None,
    };
    let revokes = match record {
        SubjectRecord::BlacklistRevocation {
            blacklist_record_id,
            ..
        } => Some(blacklist_listing(pool, *blacklist_record_id).await?),
        _ => None,
    };
    // Map once now with stand-in project codes (the real ones may be recorded later): what
    // the schema refuses is refused here with a 400, not found later as a dead letter.
    let probe = Facts {
        record_key: record_key(0),
        record: record.clone(),
        revokes: revokes.clone(),
    };
    let sample_codes = project.as_ref().map(|p| ProjectCodes {
        number: p.number.clone(),
        name: p.name.clone(),
        unified_deal_code: "0000000000".to_string(),
        bid_section_code: "0".to_string(),
    });
    if let Err(fault) = adapter::push_payload("CHECK", now, &probe, sample_codes.as_ref()) {
        bail!(
            InvalidArgument,
            "{}",
            crate::auth::mask_id_numbers_in(&fault.0)
        );
    }
    let exchange = record.exchange();
    let (subject_code, subject_name) = subject_of(record, revokes.as_ref());
    let mut tx = pool.begin().await?;
    let record_id = sqlx::query(
        "INSERT INTO subject_records (kind, subject_code, subject_name, project_id, record, revokes, created_by, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(exchange.as_str())
    .bind(&subject_code)
    .bind(&subject_name)
    .bind(project.as_ref().map(|p| p.id))
    .bind(serde_json::to_string(record).map_err(|e| err!(Internal, "record: {e}"))?)
    .bind(match record {
        SubjectRecord::BlacklistRevocation {
            blacklist_record_id,
            ..
        } => Some(*blacklist_record_id),
        _ => None,
    })
    .bind(by)
    .bind(rfc3339(now.to_offset(CHINA)))
    .execute(&mut *tx)
    .await;
    let record_id = match record_id {
        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
            bail!(AlreadyExists, "该黑名单记录已有撤销记录 (already revoked)")
        }
        other => other?.last_insert_rowid(),
    };
    let key = record_key(record_id);
    let facts = Facts {
        record_key: key.clone(),
        record: record.clone(),
        revokes,
    };
    let message_id = outbox::enqueue(
        &mut tx,
        NewMessage {
            target: MARKET_SUBJECT_LIBRARY,
            exchange: exchange.as_str(),
            idempotency_key: key,
            project_number: record.project_number(),
            schema_version: MARKET_SUBJECT_SCHEMA_VERSION,
            payload: serde_json::to_value(&facts).map_err(|e| err!(Internal, "facts: {e}"))?,
        },
        now,
    )
    .await?
    .ok_or_else(|| {
        err!(
            Internal,
            "record {record_id}: its message key already exists"
        )
    })?;
    sqlx::query("UPDATE subject_records SET message_id = ? WHERE id = ?")
        .bind(message_id)
        .bind(record_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    super::super::wake();
    // Kind and record id only: the subject may be a natural person.
    tracing::info!(
        kind = exchange.as_str(),
        record = record_id,
        "subject record queued for the market-subject library"
    );
    Ok(RecordedSubject {
        record_id,
        message_id,
    })
}

/// The blacklist listing a revocation names, which must exist and not be revoked yet.
async fn blacklist_listing(pool: &SqlitePool, id: i64) -> Result<Revoked> {
    let row: Option<(String, String, String, Option<i64>)> = sqlx::query_as(
        "SELECT r.kind, r.subject_code, r.subject_name, (SELECT v.id FROM subject_records v WHERE v.revokes = r.id) \
         FROM subject_records r WHERE r.id = ?",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    let Some((kind, credit_code, name, revoked_by)) = row else {
        bail!(NotFound, "没有编号为 {id} 的主体记录 (no such record)");
    };
    if kind != SubjectExchange::Blacklist.as_str() {
        bail!(
            InvalidArgument,
            "记录 {id} 不是黑名单记录，不能撤销（它是 {kind}）"
        );
    }
    if let Some(revocation) = revoked_by {
        bail!(
            AlreadyExists,
            "黑名单记录 {id} 已由记录 {revocation} 撤销 (already revoked)"
        );
    }
    Ok(Revoked {
        record_key: record_key(id),
        credit_code,
        name,
    })
}

#[derive(Debug, sqlx::FromRow)]
struct SummaryRow {
    id: i64,
    kind: String,
    subject_code: String,
    subject_name: String,
    project_number: Option<String>,
    message_id: Option<i64>,
    state: Option<String>,
    revoked_by: Option<i64>,
    created_by: String,
    created_at: String,
}

/// The records, newest first, optionally of one kind (`blacklist`…).
pub async fn list(
    pool: &SqlitePool,
    kind: Option<&str>,
    limit: i64,
) -> Result<Vec<SubjectRecordSummary>> {
    if let Some(kind) = kind {
        if SubjectExchange::parse(kind).is_none() {
            bail!(
                InvalidArgument,
                "记录类型 {kind:?} 不存在，可选：{}",
                SubjectExchange::ALL.map(SubjectExchange::as_str).join("、")
            );
        }
    }
    let rows: Vec<SummaryRow> = sqlx::query_as(
        "SELECT r.id, r.kind, r.subject_code, r.subject_name, p.number AS project_number, r.message_id, o.state, \
         (SELECT v.id FROM subject_records v WHERE v.revokes = r.id) AS revoked_by, r.created_by, r.created_at \
         FROM subject_records r LEFT JOIN projects p ON p.id = r.project_id LEFT JOIN outbox o ON o.id = r.message_id \
         WHERE ?1 IS NULL OR r.kind = ?1 ORDER BY r.id DESC LIMIT ?2",
    )
    .bind(kind)
    .bind(limit.clamp(1, 10_000))
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| SubjectRecordSummary {
            id: r.id,
            kind: r.kind,
            subject_code: r.subject_code,
            subject_name: r.subject_name,
            project_number: r.project_number,
            message_id: r.message_id,
            state: r.state,
            revoked_by: r.revoked_by,
            created_by: r.created_by,
            created_at: r.created_at,
        })
        .collect())
}
