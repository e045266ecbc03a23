//! Platform integrations (issue 9): the delivery core (a transactional outbox, one worker per
//! target with retries, dead letters and daily reconciliation) and the provincial expert
//! library's adapter, and SMS notices to bidders (`sms`). The other targets of the issue
//! (market-subject library, supervision platform, finance bureau) are not supported yet and are
//! refused when configured.

pub mod cli;
pub mod delivery;
pub mod expert_library;
pub mod outbox;
pub mod reconcile;
pub mod sms;
pub mod web;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sqlx::SqlitePool;
use time::OffsetDateTime;
use tokio::sync::Notify;
use witness_schemas::integration::{
    EvaluationRecord, IntegrationsConfig, TargetStatus, TradeCodes, EXPERT_LIBRARY,
    EXPERT_LIBRARY_SCHEMA_VERSION, SMS,
};

use crate::clock::{rfc3339, Clock, CHINA};
use crate::error::{io_error, Result};
use crate::jobs::Engine;
use crate::{bail, catalog, err};

pub use delivery::{Delivery, PassStats};

/// Wakes the delivery workers when a message is queued or retried from the API, so they need
/// not wait for their next poll.
static WAKE: Notify = Notify::const_new();

pub fn wake() {
    WAKE.notify_waiters();
}

/// How often an idle worker looks for due messages and new openings.
const POLL: Duration = Duration::from_secs(1);

/// Refuses targets that are configured but not supported yet, rather than accept a
/// configuration and silently send nothing.
pub fn check(config: &IntegrationsConfig) -> Result<()> {
    let unsupported = [
        (
            "market_subject_library",
            "主体库",
            config.market_subject_library.is_some(),
        ),
        (
            "supervision_platform",
            "在线监管平台",
            config.supervision_platform.is_some(),
        ),
        ("finance_bureau", "财政局", config.finance_bureau.is_some()),
    ];
    for (key, label, configured) in unsupported {
        if configured {
            bail!(
                FailedPrecondition,
                "[integrations.{key}]（{label}）尚不支持 (not supported yet)：请从配置中删除此节"
            );
        }
    }
    if let Some(library) = &config.expert_library {
        let url = library.base_url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!(
                InvalidArgument,
                "[integrations.expert_library] base_url {url:?} 须以 http:// 或 https:// 开头"
            );
        }
        if library.platform_code.trim().is_empty() {
            bail!(
                InvalidArgument,
                "[integrations.expert_library] platform_code 不能为空"
            );
        }
        if library.max_attempts == 0 || library.timeout_seconds <= 0.0 {
            bail!(
                InvalidArgument,
                "[integrations.expert_library] max_attempts 与 timeout_seconds 须大于 0"
            );
        }
    }
    Ok(())
}

/// Reads the bearer token file; its content is never logged.
pub fn read_token(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| io_error(format!("读取专家库令牌文件 {}", path.display()), e))?;
    let token = text.trim().to_string();
    if token.is_empty() {
        bail!(InvalidArgument, "专家库令牌文件 {} 是空的", path.display());
    }
    Ok(token)
}

/// Checks the configuration and starts the worker of each configured target.
pub fn start(engine: &Arc<Engine>) -> Result<()> {
    let config = &engine.settings.config.integrations;
    check(config)?;
    if let Some(sms_config) = config.sms.clone() {
        let provider = sms::provider(&sms_config)?;
        let worker = sms::SmsDelivery::new(
            engine.pool.clone(),
            Arc::clone(&engine.clock),
            sms_config,
            provider,
        );
        tracing::info!(target = SMS, "SMS worker started");
        tokio::spawn(async move {
            loop {
                let busy = match worker.pass().await {
                    Ok(tried) => tried > 0,
                    Err(e) => {
                        tracing::warn!(error = %e, "integrations: SMS pass failed");
                        false
                    }
                };
                if !busy {
                    let _ = tokio::time::timeout(POLL, WAKE.notified()).await;
                }
            }
        });
    }
    let Some(library) = config.expert_library.clone() else {
        return Ok(());
    };
    let token = library.token_file.as_deref().map(read_token).transpose()?;
    let delivery = Arc::new(Delivery::new(
        engine.pool.clone(),
        Arc::clone(&engine.clock),
        library,
        token,
    )?);
    let data_dir = engine.settings.data_dir.clone();
    let clock = Arc::clone(&engine.clock);
    tracing::info!(target = EXPERT_LIBRARY, "delivery worker started");
    tokio::spawn(async move {
        let mut last_daily: Option<OffsetDateTime> = None;
        loop {
            let now = clock.now();
            if last_daily.is_none_or(|t| (now - t).whole_seconds() >= 60) {
                last_daily = Some(now);
                if let Err(e) = daily(delivery.pool(), &data_dir, now).await {
                    tracing::warn!(error = %e, "integrations: daily duties failed");
                }
            }
            let busy = match delivery.pass().await {
                Ok(stats) => stats.attempted > 0,
                Err(e) => {
                    tracing::warn!(error = %e, "integrations: delivery pass failed");
                    false
                }
            };
            if !busy {
                let _ = tokio::time::timeout(POLL, WAKE.notified()).await;
            }
        }
    });
    Ok(())
}

/// What happens once a day (checked every minute; both steps are idempotent): drawing
/// requests for today's openings, and the reconciliation report of yesterday.
pub async fn daily(pool: &SqlitePool, data_dir: &Path, now: OffsetDateTime) -> Result<()> {
    let today = now.to_offset(CHINA).date();
    enqueue_draw_requests(pool, today, None, None, now).await?;
    if let Some(yesterday) = today.previous_day() {
        if !reconcile::exists(pool, EXPERT_LIBRARY, yesterday).await? {
            let report =
                reconcile::generate(pool, data_dir, EXPERT_LIBRARY, yesterday, now).await?;
            tracing::info!(day = %yesterday, total = report.total, acked = report.acked, failed = report.failed,
                "reconciliation report archived");
        }
    }
    Ok(())
}

/// Queues a drawing request for each project opening on `day` (or the one given), unless
/// one was already queued for it that day.
pub async fn enqueue_draw_requests(
    pool: &SqlitePool,
    day: time::Date,
    number: Option<&str>,
    expert_count: Option<u32>,
    now: OffsetDateTime,
) -> Result<Vec<i64>> {
    if let Some(count) = expert_count {
        if !(1..=99).contains(&count) {
            bail!(InvalidArgument, "抽取专家人数 {count} 须在 1–99 之间");
        }
    }
    let projects: Vec<(String, String)> = match number {
        Some(number) => {
            let p = catalog::project(pool, number).await?;
            vec![(p.number, p.opening)]
        }
        None => {
            sqlx::query_as("SELECT number, opening FROM projects ORDER BY opening, id")
                .fetch_all(pool)
                .await?
        }
    };
    let mut tx = pool.begin().await?;
    let mut ids = Vec::new();
    for (number, opening) in projects {
        let opens_on =
            OffsetDateTime::parse(&opening, &time::format_description::well_known::Rfc3339)
                .map(|t| t.to_offset(CHINA).date())
                .ok();
        if opens_on != Some(day) {
            continue;
        }
        if let Some(id) =
            expert_library::enqueue_draw_request(&mut tx, &number, day, expert_count, now).await?
        {
            tracing::info!(project = %number, "expert drawing request queued");
            ids.push(id);
        }
    }
    tx.commit().await?;
    if !ids.is_empty() {
        wake();
    }
    Ok(ids)
}

/// Records 统一交易标识码 and 标段编号 of a project.
pub async fn set_trade_codes(
    pool: &SqlitePool,
    number: &str,
    codes: &TradeCodes,
    by: &str,
    now: OffsetDateTime,
) -> Result<TradeCodes> {
    let project = catalog::project(pool, number).await?;
    let deal = codes.unified_deal_code.trim();
    let section = codes.bid_section_code.trim();
    if !(10..=40).contains(&deal.len())
        || !deal.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        bail!(
            InvalidArgument,
            "统一交易标识码 {deal:?} 须为 10–40 位字母、数字或连字符"
        );
    }
    if section.is_empty() || section.chars().count() > 64 {
        bail!(InvalidArgument, "标段编号须为 1–64 个字符");
    }
    sqlx::query(
        "INSERT INTO project_trade_codes (project_id, unified_deal_code, bid_section_code, updated_by, updated_at) \
         VALUES (?, ?, ?, ?, ?) ON CONFLICT (project_id) DO UPDATE SET unified_deal_code = excluded.unified_deal_code, \
         bid_section_code = excluded.bid_section_code, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
    )
    .bind(project.id)
    .bind(deal)
    .bind(section)
    .bind(by)
    .bind(rfc3339(now.to_offset(CHINA)))
    .execute(pool)
    .await?;
    Ok(TradeCodes {
        unified_deal_code: deal.to_string(),
        bid_section_code: section.to_string(),
    })
}

pub async fn trade_codes(pool: &SqlitePool, number: &str) -> Result<TradeCodes> {
    let project = catalog::project(pool, number).await?;
    let row: Option<(String, String)> = sqlx::query_as(
        "SELECT unified_deal_code, bid_section_code FROM project_trade_codes WHERE project_id = ?",
    )
    .bind(project.id)
    .fetch_optional(pool)
    .await?;
    let (unified_deal_code, bid_section_code) =
        row.ok_or_else(|| err!(NotFound, "项目 {number} 未登记统一交易标识码和标段编号"))?;
    Ok(TradeCodes {
        unified_deal_code,
        bid_section_code,
    })
}

/// Records an evaluation result (scores, candidates, result, credit) and queues its message
/// for the expert library in the same transaction. Returns the message id.
pub async fn add_record(
    pool: &SqlitePool,
    number: &str,
    record: &EvaluationRecord,
    by: &str,
    now: OffsetDateTime,
) -> Result<i64> {
    let project = catalog::project(pool, number).await?;
    expert_library::check_record(record)?;
    let exchange = record.exchange();
    let text = serde_json::to_string(record).map_err(|e| err!(Internal, "record: {e}"))?;
    let mut tx = pool.begin().await?;
    let record_id = sqlx::query(
        "INSERT INTO evaluation_records (project_id, kind, record, created_by, created_at) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(project.id)
    .bind(exchange.as_str())
    .bind(&text)
    .bind(by)
    .bind(rfc3339(now.to_offset(CHINA)))
    .execute(&mut *tx)
    .await?
    .last_insert_rowid();
    let id = outbox::enqueue(
        &mut tx,
        outbox::NewMessage {
            target: EXPERT_LIBRARY,
            exchange: exchange.as_str(),
            idempotency_key: format!("{}:record-{record_id}", exchange.as_str()),
            project_number: Some(number),
            schema_version: EXPERT_LIBRARY_SCHEMA_VERSION,
            payload: serde_json::json!({ "project_number": number, "record": record }),
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
    tx.commit().await?;
    wake();
    Ok(id)
}

/// The delivery health of each target.
pub async fn status(pool: &SqlitePool, config: &IntegrationsConfig) -> Result<Vec<TargetStatus>> {
    let mut targets = Vec::new();
    for (target, label, configured) in [
        (
            EXPERT_LIBRARY,
            "省综合评标专家库",
            config.expert_library.is_some(),
        ),
        (SMS, "短信通知", config.sms.is_some()),
    ] {
        let counts = outbox::counts(pool, target).await?;
        targets.push(TargetStatus {
            target: target.to_string(),
            label: label.to_string(),
            configured,
            queue_depth: counts.waiting,
            dead: counts.dead,
            acked: counts.acked,
            last_success_at: counts.last_success_at,
            failures: outbox::failures(pool, target, 20).await?,
        });
    }
    Ok(targets)
}

/// The one target supported so far; any other name is refused clearly.
pub fn check_target(target: &str) -> Result<()> {
    match target {
        EXPERT_LIBRARY | SMS => Ok(()),
        "market_subject_library" | "supervision_platform" | "finance_bureau" => bail!(
            FailedPrecondition,
            "对接目标 {target} 尚不支持 (not supported yet)"
        ),
        _ => bail!(NotFound, "没有对接目标 {target} (unknown target)"),
    }
}

/// The current time of a clock in China Standard Time (today's date for drawing requests).
pub fn today(clock: &dyn Clock) -> time::Date {
    clock.now().to_offset(CHINA).date()
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use sqlx::sqlite::SqliteConnectOptions;

    use super::*;

    /// Migration 0005 moves the identity events waiting in the gates' old outbox into the
    /// general one, keyed as the gates module now keys them, and keeps what was sent as sent.
    #[tokio::test]
    async fn migration_moves_the_old_gate_outbox_into_the_general_one() {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteConnectOptions::from_str("sqlite:")
            .unwrap()
            .filename(dir.path().join("catalog.db"))
            .create_if_missing(true)
            // Only the outbox rows matter here, not the gates and events they point at.
            .foreign_keys(false);
        let pool = SqlitePool::connect_with(options).await.unwrap();
        let migrator = sqlx::migrate!("./migrations");
        migrator.run_to(3, &pool).await.unwrap();
        for (id, sent) in [(7, None), (8, Some("2026-03-18T09:05:00+08:00"))] {
            sqlx::query(
                "INSERT INTO expert_library_outbox (event_id, payload, created_at, sent_at) VALUES (?, ?, ?, ?)",
            )
            .bind(id)
            .bind(r#"{"gate":"东门","sequence":1,"at":"2026-03-18T09:01:00+08:00","id_number":"11010519491231002X","name":"张三","allowed":true,"reason":null,"project_number":"P-1"}"#)
            .bind("2026-03-18T09:01:01+08:00")
            .bind(sent)
            .execute(&pool)
            .await
            .unwrap();
        }
        migrator.run(&pool).await.unwrap();
        let rows: Vec<(String, String, String, Option<String>)> = sqlx::query_as(
            "SELECT idempotency_key, exchange, state, project_number FROM outbox ORDER BY id",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(
            rows,
            vec![
                (
                    "gate-event-7".to_string(),
                    "gate-identity".to_string(),
                    "pending".to_string(),
                    Some("P-1".to_string())
                ),
                (
                    "gate-event-8".to_string(),
                    "gate-identity".to_string(),
                    "acked".to_string(),
                    Some("P-1".to_string())
                ),
            ]
        );
        let old: Option<(String,)> =
            sqlx::query_as("SELECT name FROM sqlite_master WHERE name = 'expert_library_outbox'")
                .fetch_optional(&pool)
                .await
                .unwrap();
        assert!(old.is_none());
    }

    #[test]
    fn the_example_configuration_passes_the_checks() {
        let text = include_str!("../../../hardware/witness.example.toml");
        let config = crate::config::parse_config(text).unwrap();
        assert!(config.integrations.expert_library.is_some());
        assert!(config.integrations.sms.is_some());
        check(&config.integrations).unwrap();
    }

    #[test]
    fn unsupported_targets_are_refused() {
        let config = IntegrationsConfig {
            finance_bureau: Some(serde_json::json!({"base_url": "http://x"})),
            ..IntegrationsConfig::default()
        };
        let error = check(&config).unwrap_err();
        assert!(error.message.contains("尚不支持"), "{error}");
        assert!(check(&IntegrationsConfig::default()).is_ok());
    }
}
