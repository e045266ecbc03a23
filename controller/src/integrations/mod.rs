//! Platform integrations (issue 9): the delivery core (a transactional outbox, one worker per
//! target with retries, dead letters and daily reconciliation) and the provincial expert
//! library's adapter, and SMS notices to bidders (`sms`). The online supervision platform
//! (`supervision`) and the finance bureau (`finance`) are adapters on the same core, fed by the
//! triggers in `extract`.

pub mod cli;
pub mod delivery;
pub mod expert_library;
pub mod extract;
pub mod finance;
pub mod market_subject;
pub mod outbox;
pub mod reconcile;
pub mod sms;
pub mod supervision;
pub mod web;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sqlx::SqlitePool;
use time::OffsetDateTime;
use tokio::sync::Notify;
use witness_schemas::integration::{
    EvaluationRecord, HttpTargetConfig, IntegrationsConfig, TargetStatus, TradeCodes,
    EXPERT_LIBRARY, EXPERT_LIBRARY_SCHEMA_VERSION, FINANCE_BUREAU, SMS, SUPERVISION_PLATFORM,
};
use witness_schemas::market_subject::MARKET_SUBJECT_LIBRARY;

use crate::clock::{rfc3339, Clock, CHINA};
use crate::error::{io_error, Result};
use crate::jobs::Engine;
use crate::{bail, catalog, err};

pub use delivery::{Adapter, Delivery, Mapped, OurFault, PassStats};

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
    for adapter in adapters(config) {
        check_transport(adapter.target(), adapter.transport())?;
    }
    Ok(())
}

/// Checks the transport settings of `[integrations.<key>]`.
fn check_transport(key: &str, transport: &HttpTargetConfig) -> Result<()> {
    let url = transport.base_url.trim();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        bail!(
            InvalidArgument,
            "[integrations.{key}] base_url {url:?} 须以 http:// 或 https:// 开头"
        );
    }
    if transport.platform_code.trim().is_empty() {
        bail!(
            InvalidArgument,
            "[integrations.{key}] platform_code 不能为空"
        );
    }
    if transport.max_attempts == 0 || transport.timeout_seconds <= 0.0 {
        bail!(
            InvalidArgument,
            "[integrations.{key}] max_attempts 与 timeout_seconds 须大于 0"
        );
    }
    Ok(())
}

/// The adapters of the configured HTTP targets, each delivered by its own `Delivery` worker.
/// A new target adds its line here.
pub fn adapters(config: &IntegrationsConfig) -> Vec<Arc<dyn Adapter>> {
    let mut adapters = Vec::new();
    if let Some(library) = &config.expert_library {
        adapters.push(expert_library::ExpertLibrary::adapter(library.clone()));
    }
    if let Some(library) = &config.market_subject_library {
        adapters.push(market_subject::MarketSubject::adapter(library.clone()));
    }
    if let Some(platform) = &config.supervision_platform {
        adapters.push(supervision::SupervisionPlatform::adapter(platform.clone()));
    }
    if let Some(bureau) = &config.finance_bureau {
        adapters.push(finance::FinanceBureau::adapter(bureau.clone()));
    }
    adapters
}

/// Reads the bearer token file; its content is never logged.
pub fn read_token(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| io_error(format!("读取令牌文件 {}", path.display()), e))?;
    let token = text.trim().to_string();
    if token.is_empty() {
        bail!(InvalidArgument, "令牌文件 {} 是空的", path.display());
    }
    Ok(token)
}

/// Records which extraction targets are configured, before `start`: the catalog triggers of
/// the supervision platform and the finance bureau queue messages only for those.
pub async fn configure(engine: &Arc<Engine>) -> Result<()> {
    let config = &engine.settings.config.integrations;
    let targets: Vec<&str> = adapters(config).iter().map(|a| a.target()).collect();
    extract::configure_targets(&engine.pool, &targets, engine.clock.now()).await
}

/// Checks the configuration and starts the worker of each configured target.
pub fn start(engine: &Arc<Engine>) -> Result<()> {
    let config = &engine.settings.config.integrations;
    check(config)?;
    if let Some(sms_config) = config.sms.clone() {
        let provider = sms::provider(
            &sms_config,
            sms::Receipts::new(engine.pool.clone(), Arc::clone(&engine.clock)),
        )?;
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
    let mut targets = Vec::new();
    for adapter in adapters(config) {
        let token = adapter
            .transport()
            .token_file
            .as_deref()
            .map(read_token)
            .transpose()?;
        let target = adapter.target();
        let delivery = Delivery::new(
            engine.pool.clone(),
            Arc::clone(&engine.clock),
            adapter,
            token,
        )?;
        tracing::info!(target, "delivery worker started");
        targets.push(target);
        tokio::spawn(async move {
            loop {
                let busy = match delivery.pass().await {
                    Ok(stats) => stats.attempted > 0,
                    Err(e) => {
                        tracing::warn!(target, error = %e, "integrations: delivery pass failed");
                        false
                    }
                };
                if !busy {
                    let _ = tokio::time::timeout(POLL, WAKE.notified()).await;
                }
            }
        });
    }
    if targets.is_empty() {
        return Ok(());
    }
    let pool = engine.pool.clone();
    let data_dir = engine.settings.data_dir.clone();
    let clock = Arc::clone(&engine.clock);
    let draw_requests = config.expert_library.is_some();
    tokio::spawn(async move {
        loop {
            if let Err(e) = daily(&pool, &data_dir, &targets, draw_requests, clock.now()).await {
                tracing::warn!(error = %e, "integrations: daily duties failed");
            }
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
    });
    Ok(())
}

/// What happens once a day (checked every minute; every step is idempotent): drawing
/// requests for today's openings (when the expert library is configured), and the
/// reconciliation report of yesterday of each target.
pub async fn daily(
    pool: &SqlitePool,
    data_dir: &Path,
    targets: &[&str],
    draw_requests: bool,
    now: OffsetDateTime,
) -> Result<()> {
    let today = now.to_offset(CHINA).date();
    if draw_requests {
        enqueue_draw_requests(pool, today, None, None, now).await?;
    }
    if targets.contains(&FINANCE_BUREAU) && !extract::enqueue_openings(pool, now).await?.is_empty()
    {
        wake();
    }
    if let Some(yesterday) = today.previous_day() {
        for &target in targets {
            if !reconcile::exists(pool, target, yesterday).await? {
                let report = reconcile::generate(pool, data_dir, target, yesterday, now).await?;
                tracing::info!(target, day = %yesterday, total = report.total, acked = report.acked,
                    failed = report.failed, "reconciliation report archived");
            }
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
    // Reads the old codes, then writes: with a deferred transaction a concurrent commit in
    // between made this fail at once with "database is locked" (seen under api_fuzz).
    let mut tx = crate::db::begin_write(pool).await?;
    let before: Option<(String, String)> = sqlx::query_as(
        "SELECT unified_deal_code, bid_section_code FROM project_trade_codes WHERE project_id = ?",
    )
    .bind(project.id)
    .fetch_optional(&mut *tx)
    .await?;
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
    .execute(&mut *tx)
    .await?;
    // New or changed codes are what the supervision platform and the finance bureau know the
    // project by: its data goes out with them, in this transaction.
    let changed = before.is_none_or(|(d, s)| d != deal || s != section);
    let queued = if changed {
        extract::on_trade_codes(&mut tx, &project, now).await?
    } else {
        Vec::new()
    };
    tx.commit().await?;
    if !queued.is_empty() {
        wake();
    }
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
    extract::on_record(&mut tx, &project, record_id, record, now).await?;
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
        (
            MARKET_SUBJECT_LIBRARY,
            "市场主体库",
            config.market_subject_library.is_some(),
        ),
        (
            SUPERVISION_PLATFORM,
            "在线监管平台",
            config.supervision_platform.is_some(),
        ),
        (FINANCE_BUREAU, "财政局", config.finance_bureau.is_some()),
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
        EXPERT_LIBRARY | SMS | MARKET_SUBJECT_LIBRARY | SUPERVISION_PLATFORM | FINANCE_BUREAU => {
            Ok(())
        }
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
        assert!(config.integrations.supervision_platform.is_some());
        assert!(config.integrations.finance_bureau.is_some());
        check(&config.integrations).unwrap();
    }

    #[test]
    fn bad_transport_settings_of_a_target_are_refused_naming_its_section() {
        let parsed = crate::config::parse_config(
            "[integrations.finance_bureau]\nbase_url = \"ftp://czj.example\"\nplatform_code = \"HNLK001\"\n",
        )
        .unwrap();
        let error = check(&parsed.integrations).unwrap_err();
        assert!(
            error
                .message
                .contains("[integrations.finance_bureau] base_url"),
            "{error}"
        );
        assert!(check(&IntegrationsConfig::default()).is_ok());
    }
}
