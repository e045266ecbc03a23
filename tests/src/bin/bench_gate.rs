//! Gate agent benchmark: badge-to-decision latency (p50/p99, from the last byte of the card
//! data, so the reader's own read time is excluded), agent RSS and binary size, and the sync
//! throughput of a 100,000-event backlog. Run on a release build:
//!
//! `cargo build --release --bins -p witness-controller -p witness-agent && cargo run --release -p witness-tests --bin bench_gate`

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use witness_drivers::idcard::simulator::Simulator;
use witness_schemas::gate::{BadgeEvent, EventKind};
use witness_tests::daemon::Daemon;
use witness_tests::gate::{
    self, agent_bin, card, door_openings, draw, expert_id, gate_state, wait_for, Agent,
    AgentOptions,
};

const PROJECT: &str = "BENCH-2026-0001";

fn percentile(sorted: &[u64], p: f64) -> u64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn proc_status(pid: u32, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[tokio::main]
async fn main() -> Result<()> {
    let badges: usize = std::env::var("BENCH_BADGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let backlog: usize = std::env::var("BENCH_BACKLOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir()?;
    let daemon = Daemon::start(&dir.path().join("controller"), None).await?;
    let now = gate::cst_now();

    // 1. Latency: badges through the simulator, decided from a list of 500 drawn experts.
    let token = gate::register_gate(&daemon, PROJECT, "bench-latency").await?;
    for n in 0..500 {
        draw(
            &daemon,
            PROJECT,
            "专家",
            &expert_id(n),
            now - time::Duration::hours(1),
            now + time::Duration::hours(8),
        )
        .await?;
    }
    let simulator = Simulator::start(&dir.path().join("reader"))?;
    let snapshot = dir.path().join("snapshot.jpg");
    // A typical 640×480 JPEG from a gate camera is 30–60 KB.
    std::fs::write(&snapshot, vec![0x5Au8; 40 * 1024])?;
    let journal = dir.path().join("door.journal");
    let mut agent = Agent::start(&AgentOptions {
        data: dir.path().join("gate-latency"),
        server: daemon.url.clone(),
        token,
        reader: simulator.path().to_path_buf(),
        camera: Some(snapshot),
        journal: journal.clone(),
    })?;
    agent.wait_log("experts=", Duration::from_secs(30))?;
    let pid = agent.pid().context("agent pid")?;
    let rss_idle = proc_status(pid, "VmRSS:").unwrap_or(0);
    let mut cycle = Vec::with_capacity(badges);
    for i in 0..badges {
        let start = Instant::now();
        simulator.present(card("专家", &expert_id((i % 500) as u32)));
        let want = i + 1;
        while door_openings(&journal) < want {
            ensure!(
                start.elapsed() < Duration::from_secs(10),
                "badge {i} never opened the door"
            );
            std::thread::sleep(Duration::from_micros(200));
        }
        cycle.push(start.elapsed().as_micros() as u64);
    }
    let rss_peak = proc_status(pid, "VmHWM:").unwrap_or(0);
    let rss_after = proc_status(pid, "VmRSS:").unwrap_or(0);
    let log = witness_agent::log::EventLog::open(&dir.path().join("gate-latency")).await?;
    let mut decisions: Vec<u64> = log
        .all()
        .await?
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::Badge(b) if b.allowed => Some(b.decision_micros),
            _ => None,
        })
        .collect();
    decisions.sort_unstable();
    cycle.sort_unstable();
    agent.kill9();

    // 2. Backlog: 100,000 events already in a gate's log, synced from a cold start.
    let token = gate::register_gate(&daemon, PROJECT, "bench-backlog").await?;
    let backlog_dir = dir.path().join("gate-backlog");
    let backlog_log = witness_agent::log::EventLog::open(&backlog_dir).await?;
    let at = gate::rfc3339(now);
    let events: Vec<(String, EventKind)> = (0..backlog)
        .map(|n| {
            let kind = EventKind::Badge(BadgeEvent {
                id_number: expert_id((n % 500) as u32),
                name: "专家".into(),
                allowed: true,
                reason: None,
                project_number: Some(PROJECT.into()),
                decision_micros: 50,
                snapshot_base64: None,
            });
            (at.clone(), kind)
        })
        .collect();
    backlog_log.append_many(&events).await?;
    drop(backlog_log);
    let start = Instant::now();
    let _backlog_agent = Agent::start(&AgentOptions {
        data: backlog_dir,
        server: daemon.url.clone(),
        token,
        // No reader at this gate: the agent logs the fault and syncs anyway.
        reader: dir.path().join("no-reader"),
        camera: None,
        journal: dir.path().join("backlog.journal"),
    })?;
    wait_for(
        "the backlog on the controller",
        Duration::from_secs(1200),
        || async {
            gate_state(&daemon, "bench-backlog")
                .await
                .ok()
                .and_then(|g| g["last_sequence"].as_i64())
                .unwrap_or(0)
                >= backlog as i64
        },
    )
    .await?;
    let sync_seconds = start.elapsed().as_secs_f64();

    let binary = std::fs::metadata(agent_bin())?.len();
    // The release profile keeps line tables for backtraces; what ships on a gate is stripped.
    let stripped_path = dir.path().join("witness-gate.stripped");
    let stripped = std::process::Command::new("strip")
        .arg("-o")
        .arg(&stripped_path)
        .arg(agent_bin())
        .status()
        .ok()
        .filter(|s| s.success())
        .and_then(|_| std::fs::metadata(&stripped_path).ok())
        .map_or(0, |m| m.len());
    println!("## Gate agent ({})", gate::rfc3339(gate::cst_now()));
    println!("- badges: {badges} through the pty simulator, list of 500 drawn experts, 40 KB snapshot each");
    println!(
        "- badge-to-decision (card data complete → decision): p50 {} µs, p99 {} µs, max {} µs",
        percentile(&decisions, 0.5),
        percentile(&decisions, 0.99),
        decisions.last().copied().unwrap_or(0)
    );
    println!(
        "- whole badge cycle seen from outside (card placed → find/select/read on the pty → decision → snapshot → fsync'd event → relay): p50 {} µs, p99 {} µs",
        percentile(&cycle, 0.5),
        percentile(&cycle, 0.99)
    );
    println!(
        "- agent RSS: {rss_idle} KiB idle, {rss_after} KiB after the badges, peak {rss_peak} KiB"
    );
    println!(
        "- binary {}: {:.1} MiB as built (line tables kept), {:.1} MiB stripped",
        agent_bin().display(),
        binary as f64 / 1048576.0,
        stripped as f64 / 1048576.0
    );
    println!(
        "- backlog sync: {backlog} events in {sync_seconds:.1} s = {:.0} events/s (batches of 500, one controller transaction each)",
        backlog as f64 / sync_seconds
    );
    Ok(())
}
