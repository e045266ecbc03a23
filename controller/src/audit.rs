//! The append-only audit log: every state-changing action, chained with SM3 so that editing or
//! deleting any record is found by `witness audit verify`, which names the first broken record.

use sqlx::{FromRow, SqlitePool};
use tokio::sync::Mutex;
use witness_schemas::auth::{AuditEntry, AuditVerification};

use crate::error::Result;

/// The hash the first record chains to.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A record to append.
#[derive(Debug, Clone)]
pub struct Record {
    pub at: String,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub target: String,
    pub project_number: Option<String>,
    pub source: String,
    pub result: String,
}

#[derive(Debug, Clone, FromRow)]
struct Row {
    id: i64,
    at: String,
    actor: String,
    role: String,
    action: String,
    target: String,
    project_number: Option<String>,
    source: String,
    result: String,
    prev_hash: String,
    hash: String,
}

impl Row {
    fn record(&self) -> Record {
        Record {
            at: self.at.clone(),
            actor: self.actor.clone(),
            role: self.role.clone(),
            action: self.action.clone(),
            target: self.target.clone(),
            project_number: self.project_number.clone(),
            source: self.source.clone(),
            result: self.result.clone(),
        }
    }

    fn to_api(&self) -> AuditEntry {
        AuditEntry {
            id: self.id,
            at: self.at.clone(),
            actor: self.actor.clone(),
            role: self.role.clone(),
            action: self.action.clone(),
            target: self.target.clone(),
            project_number: self.project_number.clone(),
            source: self.source.clone(),
            result: self.result.clone(),
            prev_hash: self.prev_hash.clone(),
            hash: self.hash.clone(),
        }
    }
}

/// SM3 over the previous hash and the record's fields, each length-prefixed so no two different
/// records can serialise to the same bytes.
pub fn chain_hash(prev_hash: &str, record: &Record) -> String {
    let mut bytes = Vec::new();
    let fields = [
        prev_hash,
        &record.at,
        &record.actor,
        &record.role,
        &record.action,
        &record.target,
        record.project_number.as_deref().unwrap_or(""),
        &record.source,
        &record.result,
    ];
    for field in fields {
        bytes.extend_from_slice(&(field.len() as u64).to_be_bytes());
        bytes.extend_from_slice(field.as_bytes());
    }
    crate::digest::digest_bytes(&bytes).sm3
}

/// Serialises appends so each record chains to the one before it, and remembers the last hash
/// so an append is a single INSERT: a read-then-write transaction would fail with "database is
/// locked" whenever a job commits in between (SQLite cannot upgrade a stale read snapshot).
#[derive(Debug, Default)]
pub struct AuditLog {
    last_hash: Mutex<Option<String>>,
}

impl AuditLog {
    pub async fn append(&self, pool: &SqlitePool, record: Record) -> Result<()> {
        let mut last = self.last_hash.lock().await;
        let prev_hash = match last.as_ref() {
            Some(hash) => hash.clone(),
            None => sqlx::query_as::<_, (String,)>(
                "SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1",
            )
            .fetch_optional(pool)
            .await?
            .map(|row| row.0)
            .unwrap_or_else(|| GENESIS.to_string()),
        };
        let hash = chain_hash(&prev_hash, &record);
        sqlx::query(
            "INSERT INTO audit_log (at, actor, role, action, target, project_number, source, result, prev_hash, hash)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&record.at)
        .bind(&record.actor)
        .bind(&record.role)
        .bind(&record.action)
        .bind(&record.target)
        .bind(&record.project_number)
        .bind(&record.source)
        .bind(&record.result)
        .bind(&prev_hash)
        .bind(&hash)
        .execute(pool)
        .await?;
        *last = Some(hash);
        Ok(())
    }
}

/// Walks the chain from the first record; the first record whose stored hash or link does not
/// match what its content gives is named.
pub async fn verify(pool: &SqlitePool) -> Result<AuditVerification> {
    let rows: Vec<Row> = sqlx::query_as("SELECT * FROM audit_log ORDER BY id")
        .fetch_all(pool)
        .await?;
    let mut prev = GENESIS.to_string();
    for row in &rows {
        let expected = chain_hash(&prev, &row.record());
        if row.prev_hash != prev || row.hash != expected {
            return Ok(AuditVerification {
                records: rows.len() as i64,
                first_broken: Some(row.id),
                message: format!(
                    "审计日志第 {} 条记录被篡改或缺失前序记录（{} {} {}）",
                    row.id, row.at, row.actor, row.action
                ),
            });
        }
        prev = row.hash.clone();
    }
    Ok(AuditVerification {
        records: rows.len() as i64,
        first_broken: None,
        message: format!("审计日志完整：{} 条记录，哈希链校验通过", rows.len()),
    })
}

/// Filters for listing the log.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub project: Option<String>,
    pub action: Option<String>,
    pub limit: Option<i64>,
}

pub async fn list(pool: &SqlitePool, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT * FROM audit_log
         WHERE (?1 IS NULL OR actor = ?1) AND (?2 IS NULL OR project_number = ?2) AND (?3 IS NULL OR action LIKE '%' || ?3 || '%')
         ORDER BY id DESC LIMIT ?4",
    )
    .bind(&query.actor)
    .bind(&query.project)
    .bind(&query.action)
    .bind(query.limit.unwrap_or(200).clamp(1, 5000))
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().map(Row::to_api).collect())
}

/// The project's own records as CSV, for its archive package.
pub async fn export_project(pool: &SqlitePool, number: &str) -> Result<String> {
    let rows: Vec<Row> =
        sqlx::query_as("SELECT * FROM audit_log WHERE project_number = ? ORDER BY id")
            .bind(number)
            .fetch_all(pool)
            .await?;
    let mut out = String::from("序号,时间,操作人,角色,操作,对象,来源,结果,前序哈希,SM3哈希\n");
    for r in rows {
        let cells = [
            r.id.to_string(),
            r.at,
            r.actor,
            r.role,
            r.action,
            r.target,
            r.source,
            r.result,
            r.prev_hash,
            r.hash,
        ];
        let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    Ok(out)
}

fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(action: &str) -> Record {
        Record {
            at: "2026-11-29T10:00:00+08:00".into(),
            actor: "admin".into(),
            role: "admin".into(),
            action: action.into(),
            target: "/api/projects".into(),
            project_number: None,
            source: "127.0.0.1".into(),
            result: "201".into(),
        }
    }

    #[test]
    fn fields_cannot_slide_into_each_other() {
        let mut a = record("ab");
        a.target = "c".into();
        let mut b = record("a");
        b.target = "bc".into();
        assert_ne!(chain_hash(GENESIS, &a), chain_hash(GENESIS, &b));
    }
}
