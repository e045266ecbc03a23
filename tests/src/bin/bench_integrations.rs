//! Outbox delivery benchmark: throughput (messages/s) of the delivery worker to the stand-in
//! expert library on loopback, beside a baseline of the same requests posted directly (no
//! outbox, no mapping, no validation, no commit), and the recovery after an outage (a backlog
//! queued while the stand-in was down for a simulated day: time to the first successful probe
//! in simulated time, and the wall time to drain). The same core is also timed with the
//! supervision platform's adapter (its credit data set), to show the adapter costs no throughput.
//!
//! `cargo run --release -p witness-tests --bin bench_integrations -- [MESSAGES]` (default 5000)

use std::sync::Arc;
use std::time::Instant;

use anyhow::{ensure, Result};
use serde_json::Value;
use time::macros::datetime;
use witness_controller::clock::{Clock, SimulatedClock};
use witness_controller::integrations::expert_library::ExpertLibrary;
use witness_controller::integrations::extract;
use witness_controller::integrations::supervision::SupervisionPlatform;
use witness_controller::integrations::{self, Delivery};
use witness_controller::{catalog, db};
use witness_schemas::api::{Category, NewProject};
use witness_schemas::integration::{
    EvaluationRecord, ExpertLibraryConfig, TradeCodes, IDEMPOTENCY_HEADER, SUPERVISION_PLATFORM,
};
use witness_tests::standin::{sample_experts, StandIn};

const PROJECT: &str = "BENCH-2026-0001";

fn config(url: &str) -> ExpertLibraryConfig {
    ExpertLibraryConfig {
        base_url: url.to_string(),
        platform_code: "HNLK001".to_string(),
        token_file: None,
        max_attempts: 72,
        backoff_initial_seconds: 10,
        backoff_max_seconds: 3600,
        probe_seconds: 60,
        timeout_seconds: 10.0,
        expert_count: 5,
        evaluation_place: "评标区".to_string(),
    }
}

fn record(i: usize) -> EvaluationRecord {
    let experts = sample_experts();
    let (name, id) = experts[i % experts.len()].clone();
    EvaluationRecord::ExpertCredit {
        expert_name: name,
        id_number: id,
        credit_type: "good".to_string(),
        content: format!("第 {i} 次评标表现良好"),
        record_time: "2026-03-18T15:00:00+08:00".to_string(),
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    clock: Arc<SimulatedClock>,
    delivery: Delivery,
}

/// A catalog with `messages` expert credit records queued. With `supervision`, the supervision
/// platform is configured too (so each record also queues its credit data set) and the worker
/// returned is the supervision platform's, pointed at `url`.
async fn setup(url: &str, messages: usize, supervision: bool) -> Result<Setup> {
    let dir = tempfile::tempdir()?;
    let pool = db::open(dir.path()).await?;
    let clock = Arc::new(SimulatedClock::new(datetime!(2026-03-18 08:00 +8)));
    catalog::create_project(
        &pool,
        &NewProject {
            number: PROJECT.to_string(),
            name: "基准项目".to_string(),
            category: Category::Construction,
            opening: "2026-03-18T09:30:00+08:00".to_string(),
        },
        clock.now(),
    )
    .await?;
    integrations::set_trade_codes(
        &pool,
        PROJECT,
        &TradeCodes {
            unified_deal_code: "A41022520260318001".to_string(),
            bid_section_code: "001".to_string(),
        },
        "bench",
        clock.now(),
    )
    .await?;
    // Configured after the trade codes, so the supervision queue holds the credit data sets only.
    if supervision {
        extract::configure_targets(&pool, &[SUPERVISION_PLATFORM], clock.now()).await?;
    }
    for i in 0..messages {
        integrations::add_record(&pool, PROJECT, &record(i), "bench", clock.now()).await?;
    }
    let adapter = if supervision {
        SupervisionPlatform::adapter(config(url).transport())
    } else {
        ExpertLibrary::adapter(config(url))
    };
    let delivery = Delivery::new(
        pool.clone(),
        Arc::clone(&clock) as Arc<dyn Clock>,
        adapter,
        None,
    )?;
    Ok(Setup {
        _dir: dir,
        clock,
        delivery,
    })
}

async fn drain(delivery: &Delivery) -> Result<usize> {
    let mut acked = 0;
    loop {
        let stats = delivery.pass().await?;
        acked += stats.acked;
        if stats.attempted == 0 {
            return Ok(acked);
        }
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let messages: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5000);

    // 1. Throughput through the outbox.
    let standin = StandIn::start().await?;
    let s = setup(&standin.url(), messages, false).await?;
    let started = Instant::now();
    let acked = drain(&s.delivery).await?;
    let outbox_secs = started.elapsed().as_secs_f64();
    ensure!(acked == messages && standin.received().len() == messages);
    ensure!(standin.invalid().is_empty(), "{:?}", standin.invalid());

    // Baseline: the same payloads as the stand-in received them, posted back to back.
    let baseline_standin = StandIn::start().await?;
    let payloads: Vec<(String, Value)> = standin
        .received()
        .into_iter()
        .map(|r| (r.key, r.payload))
        .collect();
    let http = reqwest::Client::new();
    let url = format!("{}/expert-credit", baseline_standin.url());
    let started = Instant::now();
    for (key, payload) in &payloads {
        let response = http
            .post(&url)
            .header(IDEMPOTENCY_HEADER, key)
            .json(payload)
            .send()
            .await?;
        ensure!(response.status().is_success());
        response.bytes().await?;
    }
    let baseline_secs = started.elapsed().as_secs_f64();
    let outbox_rate = messages as f64 / outbox_secs;
    let baseline_rate = messages as f64 / baseline_secs;
    println!("messages: {messages}");
    println!(
        "outbox delivery:  {outbox_rate:8.0} msg/s  ({outbox_secs:.2} s; map + schema check + POST + commit per message)"
    );
    println!("direct POST only: {baseline_rate:8.0} msg/s  ({baseline_secs:.2} s; baseline)");
    println!("ratio outbox/baseline: {:.2}", outbox_rate / baseline_rate);

    // 1b. The same core with another adapter: the supervision platform's credit data set.
    let supervision = StandIn::start_for(SUPERVISION_PLATFORM).await?;
    let s = setup(&supervision.url(), messages, true).await?;
    let started = Instant::now();
    let acked = drain(&s.delivery).await?;
    let supervision_secs = started.elapsed().as_secs_f64();
    ensure!(acked == messages && supervision.received().len() == messages);
    ensure!(
        supervision.invalid().is_empty(),
        "{:?}",
        supervision.invalid()
    );
    let supervision_rate = messages as f64 / supervision_secs;
    println!(
        "supervision platform (credit data set, same core): {supervision_rate:8.0} msg/s  ({supervision_secs:.2} s); \
         ratio to the direct-POST baseline: {:.2}",
        supervision_rate / baseline_rate
    );

    // 2. Recovery: the backlog queued while the peer was down for a simulated day.
    let standin = StandIn::start().await?;
    let s = setup(&standin.url(), messages, false).await?;
    standin.down();
    for _ in 0..(24 * 12) {
        s.clock.advance(time::Duration::minutes(5));
        s.delivery.pass().await?;
    }
    let max_next =
        integrations::outbox::messages(s.delivery.pool(), "expert_library", None, 10_000)
            .await?
            .into_iter()
            .map(|m| m.next_attempt_at)
            .max()
            .unwrap_or_default();
    standin.up().await?;
    let back = s.clock.now();
    let started = Instant::now();
    let mut first_ack = None;
    let mut acked = 0;
    while acked < messages {
        let stats = s.delivery.pass().await?;
        acked += stats.acked;
        if stats.acked > 0 && first_ack.is_none() {
            first_ack = Some(s.clock.now() - back);
        }
        if stats.attempted == 0 {
            s.clock.advance(time::Duration::seconds(5));
        }
    }
    let drain_secs = started.elapsed().as_secs_f64();
    ensure!(standin.received().len() == messages);
    println!(
        "recovery after a day down: first delivery {} s (simulated) after the peer returned; \
         backlog of {messages} drained in {drain_secs:.2} s wall ({:.0} msg/s); \
         without the probe the last back-off ran to {max_next}",
        first_ack.map(|d| d.whole_seconds()).unwrap_or(-1),
        messages as f64 / drain_secs
    );
    Ok(())
}
