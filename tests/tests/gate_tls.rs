//! Gates pin the controller's certificate: against a `witness serve` with a self-signed
//! certificate, an agent given that certificate with `--pin-cert` syncs its events over HTTPS; one
//! pinned to another certificate delivers nothing, says why, and keeps its events queued; an
//! `https://` server without `--pin-cert` is refused at start. Also: session cookies over TLS are
//! `Secure`.

use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::json;
use witness_drivers::idcard::simulator::Simulator;
use witness_tests::daemon::Daemon;
use witness_tests::gate::{
    self, admin, agent_bin, card, door_openings, draw, expert_id, gate_state, wait_for, Agent,
    AgentOptions,
};

const PROJECT: &str = "LKGC-2026-0318";
const GATE: &str = "评标区东门";
const OTHER_GATE: &str = "评标区西门";

async fn last_sequence(daemon: &Daemon, gate: &str) -> i64 {
    gate_state(daemon, gate)
        .await
        .ok()
        .and_then(|g| g["last_sequence"].as_i64())
        .unwrap_or(-1)
}

async fn badge_events(daemon: &Daemon) -> Result<usize> {
    let path = format!("/api/projects/{PROJECT}/gate-events?limit=10000");
    let answer = admin(daemon, "GET", &path, None).await?;
    let events = answer.as_array().context("events are a list")?;
    Ok(events.iter().filter(|e| e["kind"] == "badge").count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_sync_only_with_the_pinned_certificate() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("witness.toml");
    std::fs::write(&config, "[server]\ntls_self_signed = true\n")?;
    let mut daemon = Daemon::start_tls(&dir.path().join("controller"), &config).await?;
    let https = daemon.url.clone();
    assert!(https.starts_with("https://"));
    let cert = daemon.data.join("tls").join("cert.pem");
    ensure!(cert.exists(), "no self-signed certificate was made");
    // The test's own API calls go over HTTPS too, through the agent's pinned tunnel.
    daemon.url = witness_agent::tls::start_tunnel(&https, &cert).await?;

    // Session cookies over TLS carry Secure.
    let login = reqwest::Client::new()
        .post(format!("{}/api/login", daemon.url))
        .json(&json!({"username": "admin", "password": daemon.admin_password().context("admin password")?}))
        .send()
        .await?;
    ensure!(
        login.status().is_success(),
        "login: HTTP {}",
        login.status()
    );
    let cookies: Vec<String> = login
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap_or_default().to_string())
        .collect();
    ensure!(!cookies.is_empty(), "login set no cookie");
    for cookie in &cookies {
        ensure!(
            cookie.contains("; Secure"),
            "cookie without Secure: {cookie}"
        );
    }

    let token = gate::register_gate(&daemon, PROJECT, GATE).await?;
    let other_token = gate::register_gate(&daemon, PROJECT, OTHER_GATE).await?;
    let now = gate::cst_now();
    let drawn = expert_id(1);
    draw(
        &daemon,
        PROJECT,
        "王芳",
        &drawn,
        now - time::Duration::hours(1),
        now + time::Duration::hours(4),
    )
    .await?;

    // https:// without --pin-cert: refused at start.
    let refused = Command::new(agent_bin())
        .args(["run", "--data"])
        .arg(dir.path().join("refused"))
        .args(["--server", &https, "--reader", "/nonexistent"])
        .env("WITNESS_GATE_TOKEN", &token)
        .output()?;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    ensure!(
        !refused.status.success() && stderr.contains("https needs --pin-cert"),
        "an https server without --pin-cert was not refused: {stderr}"
    );

    // (a) The right certificate: the badge reaches the controller.
    let simulator = Simulator::start(&dir.path().join("reader"))?;
    let journal = dir.path().join("door.journal");
    let cert_arg = cert.display().to_string();
    let mut agent = Agent::start_with(
        &AgentOptions {
            data: dir.path().join("gate"),
            server: https.clone(),
            token,
            reader: simulator.path().to_path_buf(),
            camera: None,
            journal: journal.clone(),
        },
        &["--pin-cert", &cert_arg],
    )?;
    agent.wait_log("experts=1", Duration::from_secs(20))?;
    simulator.present(card("王芳", &drawn));
    ensure!(
        simulator.wait_card_taken(Duration::from_secs(10)),
        "the agent never took the card"
    );
    wait_for("the door to open", Duration::from_secs(10), || async {
        door_openings(&journal) == 1
    })
    .await?;
    wait_for(
        "the badge on the controller",
        Duration::from_secs(20),
        || async { last_sequence(&daemon, GATE).await >= 2 },
    )
    .await?;
    assert_eq!(badge_events(&daemon).await?, 1);
    agent.kill9();

    // (b) Pinned to another certificate (same names, another key): nothing is delivered.
    let impostor =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
    let wrong = dir.path().join("wrong-cert.pem");
    std::fs::write(&wrong, impostor.cert.pem())?;
    let wrong_arg = wrong.display().to_string();
    let other_simulator = Simulator::start(&dir.path().join("reader2"))?;
    let other_data = dir.path().join("gate2");
    let mut other = Agent::start_with(
        &AgentOptions {
            data: other_data.clone(),
            server: https.clone(),
            token: other_token,
            reader: other_simulator.path().to_path_buf(),
            camera: None,
            journal: dir.path().join("door2.journal"),
        },
        &["--pin-cert", &wrong_arg],
    )?;
    other.wait_log("ID card reader ready", Duration::from_secs(20))?;
    other_simulator.present(card("王芳", &drawn));
    ensure!(
        other_simulator.wait_card_taken(Duration::from_secs(10)),
        "the second agent never took the card"
    );
    other.wait_log("event recorded: badge", Duration::from_secs(10))?;
    other.wait_log(
        "TLS handshake with the controller failed",
        Duration::from_secs(20),
    )?;
    other.wait_log("sync failed", Duration::from_secs(20))?;
    // A few more rounds of retries: still nothing arrives.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let text = other.log_text();
    ensure!(
        text.contains("not the pinned one"),
        "the agent did not say the certificate is not the pinned one:\n{text}"
    );
    ensure!(
        !text.contains("expert list updated"),
        "the agent talked to the controller:\n{text}"
    );
    let delivered = last_sequence(&daemon, OTHER_GATE).await;
    assert!(
        delivered <= 0,
        "an agent with the wrong pin delivered events (through {delivered})"
    );
    assert_eq!(badge_events(&daemon).await?, 1);
    other.kill9();
    let log = witness_agent::log::EventLog::open(&other_data).await?;
    assert_eq!(log.acked().await?, 0, "nothing was acknowledged");
    let queued = log.all().await?;
    ensure!(
        queued
            .iter()
            .any(|e| matches!(e.kind, witness_schemas::gate::EventKind::Badge(_))),
        "the badge is not queued in the agent's log: {queued:?}"
    );
    Ok(())
}
