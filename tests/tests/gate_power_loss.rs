//! Power loss at the gate: `kill -9` of the agent in the middle of a burst of badges. Every
//! event the agent reported as recorded is in its log after the restart, the log goes on
//! without a gap, and the controller receives all of it once.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use witness_drivers::idcard::simulator::Simulator;
use witness_tests::daemon::Daemon;
use witness_tests::gate::{self, card, draw, expert_id, gate_state, wait_for, Agent, AgentOptions};

const PROJECT: &str = "LKGC-2026-0401";
const GATE: &str = "评标区西门";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_recorded_event_survives_kill_9_during_a_burst() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let daemon = Daemon::start(&dir.path().join("controller"), None).await?;
    let token = gate::register_gate(&daemon, PROJECT, GATE).await?;
    let now = gate::cst_now();
    let expert = expert_id(7);
    draw(
        &daemon,
        PROJECT,
        "孙丽",
        &expert,
        now - time::Duration::hours(1),
        now + time::Duration::hours(4),
    )
    .await?;
    let simulator = Simulator::start(&dir.path().join("reader"))?;
    let mut agent = Agent::start(&AgentOptions {
        data: dir.path().join("gate"),
        server: daemon.url.clone(),
        token,
        reader: simulator.path().to_path_buf(),
        camera: None,
        journal: dir.path().join("door.journal"),
    })?;
    agent.wait_log("experts=1", Duration::from_secs(20))?;

    // A burst: cards as fast as the agent takes them; the kill lands mid-stream.
    let mut presented = 0;
    while presented < 150 {
        simulator.present(card("孙丽", &expert));
        ensure!(
            simulator.wait_card_taken(Duration::from_secs(10)),
            "the agent stopped taking cards"
        );
        presented += 1;
    }
    simulator.present(card("孙丽", &expert));
    agent.kill9();
    let recorded = agent.recorded_sequences();
    ensure!(
        recorded.len() > 100,
        "the burst was recorded ({} events)",
        recorded.len()
    );

    // After the "power cut", the log holds everything that was reported, and more at most.
    let log = witness_agent::log::EventLog::open(&dir.path().join("gate")).await?;
    let stored: Vec<i64> = log.all().await?.iter().map(|e| e.sequence).collect();
    let expected: Vec<i64> = (1..=stored.len() as i64).collect();
    assert_eq!(stored, expected, "no gaps in the log");
    for sequence in &recorded {
        assert!(
            stored.contains(sequence),
            "recorded event {sequence} lost by kill -9"
        );
    }
    drop(log);

    // Restarted, the agent continues the same log and the controller gets all of it.
    agent.restart()?;
    simulator.remove();
    wait_for("the restart event", Duration::from_secs(20), || async {
        agent.recorded_sequences().len() > recorded.len()
    })
    .await?;
    let last = *agent
        .recorded_sequences()
        .iter()
        .max()
        .context("sequences")?;
    assert!(
        last > *stored.last().unwrap_or(&0),
        "the log continues after the last stored event"
    );
    wait_for(
        "the log on the controller",
        Duration::from_secs(60),
        || async {
            gate_state(&daemon, GATE)
                .await
                .ok()
                .and_then(|g| g["last_sequence"].as_i64())
                .unwrap_or(0)
                >= last
        },
    )
    .await?;
    let path = format!("/api/projects/{PROJECT}/gate-events?limit=10000");
    let events = gate::admin(&daemon, "GET", &path, None).await?;
    let mut sequences: Vec<i64> = events
        .as_array()
        .context("list")?
        .iter()
        .filter_map(|e| e["sequence"].as_i64())
        .collect();
    sequences.sort_unstable();
    let expected: Vec<i64> = (1..=last).collect();
    assert_eq!(sequences, expected, "each event once on the controller");
    Ok(())
}
