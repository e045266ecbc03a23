//! The daily reconciliation report per target (对账报告): the messages written on a day, by
//! 统一交易标识码, 标段 and exchange — sent, acknowledged, failed, still waiting — stored in the
//! catalog and archived as a JSON file under `<data>/integrations/reports/<target>/<day>.json`.

use std::path::Path;

use sqlx::SqlitePool;
use time::{Date, OffsetDateTime};
use witness_schemas::integration::{ReconciliationLine, ReconciliationReport};

use crate::clock::{rfc3339, CHINA};
use crate::err;
use crate::error::{io_error, Result};

#[derive(Debug, sqlx::FromRow)]
struct LineRow {
    unified_deal_code: Option<String>,
    bid_section_code: Option<String>,
    exchange: String,
    total: i64,
    sent: i64,
    acked: i64,
    failed: i64,
    waiting: i64,
    duplicate_replies: i64,
}

/// Parses `YYYY-MM-DD`.
pub fn parse_day(text: &str) -> Result<Date> {
    Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map_err(|e| err!(InvalidArgument, "日期 {text:?} 须为 YYYY-MM-DD：{e}"))
}

/// Builds (or rebuilds: later deliveries of that day's messages count) the report of `day`,
/// stores it and writes its archive file.
pub async fn generate(
    pool: &SqlitePool,
    data_dir: &Path,
    target: &str,
    day: Date,
    now: OffsetDateTime,
) -> Result<ReconciliationReport> {
    let start = day.midnight().assume_offset(CHINA);
    let end = start + time::Duration::days(1);
    // created_at is RFC 3339 in +08:00, so text comparison is time order.
    let rows: Vec<LineRow> = sqlx::query_as(
        "SELECT unified_deal_code, bid_section_code, exchange, COUNT(*) AS total, \
         SUM(sent_at IS NOT NULL) AS sent, SUM(state = 'acked') AS acked, SUM(state = 'dead') AS failed, \
         SUM(state IN ('pending', 'sent')) AS waiting, SUM(duplicate_replies) AS duplicate_replies \
         FROM outbox WHERE target = ? AND created_at >= ? AND created_at < ? \
         GROUP BY unified_deal_code, bid_section_code, exchange \
         ORDER BY unified_deal_code, bid_section_code, exchange",
    )
    .bind(target)
    .bind(rfc3339(start))
    .bind(rfc3339(end))
    .fetch_all(pool)
    .await?;
    let lines: Vec<ReconciliationLine> = rows
        .into_iter()
        .map(|r| ReconciliationLine {
            unified_deal_code: r.unified_deal_code,
            bid_section_code: r.bid_section_code,
            exchange: r.exchange,
            total: r.total,
            sent: r.sent,
            acked: r.acked,
            failed: r.failed,
            waiting: r.waiting,
            duplicate_replies: r.duplicate_replies,
        })
        .collect();
    let sum = |f: fn(&ReconciliationLine) -> i64| lines.iter().map(f).sum::<i64>();
    let (total, acked, failed, waiting) = (
        sum(|l| l.total),
        sum(|l| l.acked),
        sum(|l| l.failed),
        sum(|l| l.waiting),
    );
    let file = format!("integrations/reports/{target}/{day}.json");
    let report = ReconciliationReport {
        target: target.to_string(),
        day: day.to_string(),
        generated_at: rfc3339(now.to_offset(CHINA)),
        all_delivered: acked == total,
        lines,
        total,
        acked,
        failed,
        waiting,
        file: file.clone(),
    };
    let text = serde_json::to_string_pretty(&report)
        .map_err(|e| err!(Internal, "serialising the report: {e}"))?;
    // Written beside and renamed, so the archived file is never half a report.
    let path = data_dir.join(&file);
    let partial = path.with_extension("json.partial");
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| io_error(format!("创建目录 {}", dir.display()), e))?;
    }
    tokio::fs::write(&partial, &text)
        .await
        .map_err(|e| io_error(format!("写入 {}", partial.display()), e))?;
    tokio::fs::rename(&partial, &path)
        .await
        .map_err(|e| io_error(format!("写入 {}", path.display()), e))?;
    sqlx::query(
        "INSERT INTO reconciliation_reports (target, day, generated_at, report, file) VALUES (?, ?, ?, ?, ?) \
         ON CONFLICT (target, day) DO UPDATE SET generated_at = excluded.generated_at, report = excluded.report, file = excluded.file",
    )
    .bind(target)
    .bind(day.to_string())
    .bind(&report.generated_at)
    .bind(&text)
    .bind(&file)
    .execute(pool)
    .await?;
    Ok(report)
}

/// Whether a report of `day` was already made.
pub async fn exists(pool: &SqlitePool, target: &str, day: Date) -> Result<bool> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT 1 FROM reconciliation_reports WHERE target = ? AND day = ?")
            .bind(target)
            .bind(day.to_string())
            .fetch_optional(pool)
            .await?;
    Ok(row.is_some())
}

/// The days that have a stored report, newest first.
pub async fn days(pool: &SqlitePool, target: &str) -> Result<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT day FROM reconciliation_reports WHERE target = ? ORDER BY day DESC LIMIT 366",
    )
    .bind(target)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(d,)| d).collect())
}
