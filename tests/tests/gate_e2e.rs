//! The gate end to end: a reader simulator on a pty → the real `witness-gate` → decision →
//! fake relay → events synced to a real `witness serve`; then 1,000 badges while the controller
//! is down, which all arrive once and in order after it comes back.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::Value;
use witness_drivers::idcard::simulator::{SimCard, Simulator};
use witness_tests::daemon::Daemon;
use witness_tests::gate::{
    self, admin, card, door_openings, draw, expert_id, gate_state, wait_for, Agent, AgentOptions,
};

const PROJECT: &str = "LKGC-2026-0318";
const GATE: &str = "评标区东门";

async fn last_sequence(daemon: &Daemon) -> i64 {
    gate_state(daemon, GATE)
        .await
        .ok()
        .and_then(|g| g["last_sequence"].as_i64())
        .unwrap_or(-1)
}

async fn events(daemon: &Daemon, full: bool) -> Result<Vec<Value>> {
    let path = format!("/api/projects/{PROJECT}/gate-events?limit=10000&full={full}");
    let answer = admin(daemon, "GET", &path, None).await?;
    let mut events = answer.as_array().cloned().context("events are a list")?;
    events.reverse();
    Ok(events)
}

/// An archivist sees masked numbers only; a gate token reaches nothing but its own routes.
async fn roles_see_what_they_may(daemon: &Daemon, gate_token: &str) -> Result<()> {
    let created = admin(
        daemon,
        "POST",
        "/api/tokens",
        Some(serde_json::json!({"name": "档案员", "role": "archivist"})),
    )
    .await?;
    let archivist = created["secret"]
        .as_str()
        .context("token secret")?
        .to_string();
    let status = |path: String, token: String| async move {
        let response = reqwest::Client::new()
            .get(format!("{}{path}", daemon.url))
            .bearer_auth(token)
            .send()
            .await;
        response.map(|r| r.status().as_u16()).unwrap_or(0)
    };
    let events = format!("/api/projects/{PROJECT}/gate-events");
    assert_eq!(status(events.clone(), archivist.clone()).await, 200);
    assert_eq!(
        status(format!("{events}?full=true"), archivist).await,
        403,
        "archivists never see full numbers"
    );
    assert_eq!(
        status(events, gate_token.to_string()).await,
        403,
        "a gate cannot read the events"
    );
    assert_eq!(
        status("/api/gates".into(), gate_token.to_string()).await,
        403
    );
    assert_eq!(
        status("/api/gate/list".into(), gate_token.to_string()).await,
        200
    );
    assert_eq!(
        status(
            "/api/gate/list".into(),
            daemon.admin_token().unwrap_or_default()
        )
        .await,
        403,
        "only gates fetch lists"
    );
    Ok(())
}

/// Presents a card and waits until the reader hands it out (read, or pulled mid-read).
fn badge(simulator: &Simulator, card: SimCard) -> Result<()> {
    simulator.present(card);
    ensure!(
        simulator.wait_card_taken(Duration::from_secs(10)),
        "the agent never took the card"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn badges_decide_open_record_and_sync_also_across_an_outage() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut daemon = Daemon::start(&dir.path().join("controller"), None).await?;
    let token = gate::register_gate(&daemon, PROJECT, GATE).await?;
    let agent_token = token.clone();
    let now = gate::cst_now();
    let (drawn, later, expired_holder, stranger) =
        (expert_id(1), expert_id(2), expert_id(3), expert_id(4));
    draw(
        &daemon,
        PROJECT,
        "王芳",
        &drawn,
        now - time::Duration::hours(1),
        now + time::Duration::hours(4),
    )
    .await?;
    draw(
        &daemon,
        PROJECT,
        "李强",
        &later,
        now + time::Duration::hours(2),
        now + time::Duration::hours(3),
    )
    .await?;
    draw(
        &daemon,
        PROJECT,
        "赵敏",
        &expired_holder,
        now - time::Duration::hours(1),
        now + time::Duration::hours(4),
    )
    .await?;

    let simulator = Simulator::start(&dir.path().join("reader"))?;
    let snapshot = dir.path().join("snapshot.jpg");
    std::fs::write(
        &snapshot,
        b"\xFF\xD8\xFF\xE0 fake jpeg of the door \xFF\xD9",
    )?;
    let journal = dir.path().join("door.journal");
    let mut agent = Agent::start(&AgentOptions {
        data: dir.path().join("gate"),
        server: daemon.url.clone(),
        token,
        reader: simulator.path().to_path_buf(),
        camera: Some(snapshot.clone()),
        journal: journal.clone(),
    })?;
    agent.wait_log("experts=3", Duration::from_secs(20))?;

    // Allowed, then each reason for a refusal.
    badge(&simulator, card("王芳", &drawn))?;
    wait_for("the door to open", Duration::from_secs(10), || async {
        door_openings(&journal) == 1
    })
    .await?;
    badge(&simulator, card("李强", &later))?;
    badge(&simulator, card("陌生人", &stranger))?;
    badge(
        &simulator,
        SimCard::new("赵敏", &expired_holder, "20200101"),
    )?;
    simulator.remove_mid_read();
    badge(&simulator, card("王芳", &drawn))?;
    agent.wait_log("reason=unreadable_card", Duration::from_secs(10))?;
    assert_eq!(
        door_openings(&journal),
        1,
        "only the drawn expert within the window got in"
    );

    // Started + 5 badges, synced.
    wait_for(
        "the badges on the controller",
        Duration::from_secs(20),
        || async { last_sequence(&daemon).await >= 6 },
    )
    .await?;
    let seen = events(&daemon, false).await?;
    let badges: Vec<(String, bool, String)> = seen
        .iter()
        .filter(|e| e["kind"] == "badge")
        .map(|e| {
            (
                e["id_number"].as_str().unwrap_or("").to_string(),
                e["allowed"] == true,
                e["reason"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect();
    let masked = witness_schemas::gate::mask_id_number;
    assert_eq!(
        badges,
        vec![
            (masked(&drawn), true, "-".to_string()),
            (masked(&later), false, "outside_window".to_string()),
            (masked(&stranger), false, "not_drawn_today".to_string()),
            (masked(&expired_holder), false, "expired_card".to_string()),
            (String::new(), false, "unreadable_card".to_string()),
        ]
    );
    let allowed = seen
        .iter()
        .find(|e| e["allowed"] == true)
        .context("the allowed badge")?;
    assert_eq!(allowed["project_number"], PROJECT);
    let picture = reqwest::Client::new()
        .get(format!(
            "{}/api/gate-events/{}/snapshot",
            daemon.url, allowed["id"]
        ))
        .bearer_auth(daemon.admin_token().unwrap_or_default())
        .send()
        .await?
        .bytes()
        .await?;
    assert_eq!(
        picture.as_ref(),
        std::fs::read(&snapshot)?.as_slice(),
        "the snapshot travelled with the event"
    );
    let full = events(&daemon, true).await?;
    assert!(
        full.iter().any(|e| e["id_number"] == drawn.as_str()),
        "an admin asking for the full record sees the number"
    );
    let gate = gate_state(&daemon, GATE).await?;
    assert_eq!(gate["online"], true);
    roles_see_what_they_may(&daemon, &agent_token).await?;
    let page = reqwest::get(format!("{}/gates.html", daemon.url))
        .await?
        .text()
        .await?;
    assert!(
        page.contains("评标区门禁") && page.contains("/gates.js"),
        "the gates page is served"
    );
    assert!(reqwest::get(format!("{}/gates.js", daemon.url))
        .await?
        .status()
        .is_success());

    // The controller goes away; the gate keeps deciding and buffering.
    daemon.kill9();
    for _ in 0..1000 {
        badge(&simulator, card("王芳", &drawn))?;
    }
    wait_for("1,001 door openings", Duration::from_secs(30), || async {
        door_openings(&journal) == 1001
    })
    .await?;
    agent.wait_log("kind=offline", Duration::from_secs(10))?;
    daemon.restart().await?;
    let recorded = agent.recorded_sequences();
    let last = *recorded.iter().max().context("recorded events")?;
    wait_for(
        "the backlog on the controller",
        Duration::from_secs(90),
        || async { last_sequence(&daemon).await >= last },
    )
    .await?;

    // Every event exactly once, in order, with nothing missing.
    let stored = events(&daemon, false).await?;
    let sequences: Vec<i64> = stored
        .iter()
        .filter_map(|e| e["sequence"].as_i64())
        .collect();
    let expected: Vec<i64> = (1..=sequences.len() as i64).collect();
    assert_eq!(sequences, expected, "contiguous, ordered, no duplicates");
    assert!(sequences.len() as i64 >= last);
    let allowed_badges = stored
        .iter()
        .filter(|e| e["kind"] == "badge" && e["allowed"] == true)
        .count();
    assert_eq!(allowed_badges, 1001);
    let kinds: BTreeSet<&str> = stored.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert!(
        kinds.contains("offline") && kinds.contains("online"),
        "the outage is on record: {kinds:?}"
    );

    // The full number is in neither log.
    for (who, log) in [
        ("agent", agent.log_text()),
        ("controller", daemon.log_text()),
    ] {
        for id in [&drawn, &later, &stranger, &expired_holder] {
            assert!(
                !log.contains(id.as_str()),
                "{who} log holds a full ID number"
            );
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_answering_garbage_or_errors_loses_nothing() -> Result<()> {
    // A stand-in controller: first garbage, then 500s, then nothing at all (the gate must log
    // why and keep its events); the events reach the real controller afterwards.
    let dir = tempfile::tempdir()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let fake = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut n = 0;
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buffer = vec![0u8; 65536];
            let _ = stream.read(&mut buffer).await;
            n += 1;
            let answer = if n % 2 == 0 {
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 9\r\nconnection: close\r\n\r\n{garbage!"
            } else {
                "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\nconnection: close\r\n\r\noops"
            };
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    });
    let simulator = Simulator::start(&dir.path().join("reader"))?;
    let journal = dir.path().join("door.journal");
    let mut agent = Agent::start(&AgentOptions {
        data: dir.path().join("gate"),
        server: fake,
        token: "wit_not_a_real_token".into(),
        reader: simulator.path().to_path_buf(),
        camera: None,
        journal,
    })?;
    agent.wait_log("HTTP 500", Duration::from_secs(20))?;
    agent.wait_log("garbage", Duration::from_secs(20))?;
    simulator.set_mute(true);
    agent.wait_log("stopped answering", Duration::from_secs(10))?;
    simulator.set_mute(false);
    agent.wait_log("kind=reader_ok", Duration::from_secs(10))?;
    badge(&simulator, card("陌生人", &expert_id(9)))?;
    agent.wait_log("reason=not_drawn_today", Duration::from_secs(10))?;
    server.abort();

    // The agent's log still holds every event it reported, for the real controller to take.
    let recorded = agent.recorded_sequences();
    agent.kill9();
    let log = witness_agent::log::EventLog::open(&dir.path().join("gate")).await?;
    let stored: Vec<i64> = log.all().await?.iter().map(|e| e.sequence).collect();
    for sequence in recorded {
        assert!(stored.contains(&sequence), "event {sequence} lost");
    }
    assert_eq!(
        log.acked().await?,
        0,
        "nothing was acknowledged by a controller answering garbage"
    );
    Ok(())
}

/// The door's inputs on a Modbus module simulated on a pty: a forced door, the tamper switch
/// and a door held open each reach the controller as events; a badged opening does not count
/// as forced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_doors_tamper_and_doors_held_open_are_events() -> Result<()> {
    use witness_drivers::door_sensor::{DoorInputs, ModbusSimulator};
    let dir = tempfile::tempdir()?;
    let daemon = Daemon::start(&dir.path().join("controller"), None).await?;
    let token = gate::register_gate(&daemon, PROJECT, GATE).await?;
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
    let simulator = Simulator::start(&dir.path().join("reader"))?;
    let door = ModbusSimulator::start(&dir.path().join("door-inputs"), 3)?;
    let journal = dir.path().join("door.journal");
    let sensor = format!("modbus:{}@3", door.path().display());
    let mut agent = Agent::start_with(
        &AgentOptions {
            data: dir.path().join("gate"),
            server: daemon.url.clone(),
            token,
            reader: simulator.path().to_path_buf(),
            camera: None,
            journal: journal.clone(),
        },
        &["--door-sensor", &sensor, "--door-held-seconds", "1"],
    )?;
    agent.wait_log("experts=1", Duration::from_secs(20))?;
    let door_events = || async {
        events(&daemon, false)
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e["kind"] == "tamper" || e["kind"] == "door_held_open")
            .map(|e| {
                format!(
                    "{} {}",
                    e["kind"].as_str().unwrap_or_default(),
                    e["detail"].as_str().unwrap_or_default()
                )
            })
            .collect::<Vec<String>>()
    };
    let set = |door_open: bool, tamper: bool| door.set(DoorInputs { door_open, tamper });

    // A badge, then the door opens within the unlock window and closes: no event of the door.
    badge(&simulator, card("王芳", &drawn))?;
    wait_for("the door to open", Duration::from_secs(10), || async {
        door_openings(&journal) == 1
    })
    .await?;
    set(true, false);
    tokio::time::sleep(Duration::from_millis(600)).await;
    set(false, false);
    // Opened with no badge: forced.
    tokio::time::sleep(Duration::from_secs(8)).await;
    set(true, false);
    wait_for(
        "the forced door on the controller",
        Duration::from_secs(20),
        || async { door_events().await.iter().any(|e| e.contains("强行打开")) },
    )
    .await?;
    // Still open past the limit: held open, once.
    wait_for("the door held open", Duration::from_secs(20), || async {
        door_events()
            .await
            .iter()
            .any(|e| e.starts_with("door_held_open"))
    })
    .await?;
    set(false, true);
    wait_for("the tamper switch", Duration::from_secs(20), || async {
        door_events().await.iter().any(|e| e.contains("防拆开关"))
    })
    .await?;
    // The module stops answering: recorded once as tamper.
    door.set_mute(true);
    wait_for("the silent sensor", Duration::from_secs(20), || async {
        door_events().await.iter().any(|e| e.contains("无应答"))
    })
    .await?;
    // One each: the badged opening was not taken for a forced one, and the held-open door
    // and the silent sensor were reported once, not at every poll.
    let seen = door_events().await;
    let count = |needle: &str| seen.iter().filter(|e| e.contains(needle)).count();
    assert_eq!(
        [
            count("强行打开"),
            count("door_held_open"),
            count("防拆开关"),
            count("无应答")
        ],
        [1, 1, 1, 1],
        "{seen:?}"
    );
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert!(door.requests() > 5, "the agent polls the module");
    Ok(())
}
