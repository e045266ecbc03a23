//! The running gate: a reader thread that polls the ID card reader (reopening it when it stops
//! answering or is unplugged), the decision and door on each badge (recorded durably before the
//! door opens), and the sync task that sends the log to the controller in order, with backoff,
//! and keeps the expert list fresh.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};
use tokio::sync::mpsc;
use witness_drivers::camera::Camera;
use witness_drivers::door_sensor::DoorSensor;
use witness_drivers::idcard::serial::SerialPort;
use witness_drivers::idcard::{IdCardError, IdCardReader, Poll, SerialReader};
use witness_drivers::relay::DoorRelay;
use witness_schemas::gate::{
    base64_encode, mask_id_number, BadgeEvent, DenyReason, EventKind, ExpertList, SyncAck,
    SyncBatch,
};

use crate::decide::{decide, ListIndex};
use crate::door::{self, UnlockWindow};
use crate::log::EventLog;

/// China Standard Time: the gates' clock and the windows' time zone.
const CHINA: UtcOffset = match UtcOffset::from_hms(8, 0, 0) {
    Ok(offset) => offset,
    Err(_) => panic!("+08:00 is a valid offset"),
};

pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc().to_offset(CHINA)
}

pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

/// Where the reader is.
#[derive(Debug, Clone)]
pub enum ReaderSource {
    /// A serial device path (a udev symlink, a ttyUSB node, a simulator's pty link).
    Serial(PathBuf),
    /// Found on USB by the VID/PID of these profiles.
    Usb { profiles: PathBuf },
}

/// Everything the gate needs to run.
pub struct GateConfig {
    pub data: PathBuf,
    /// The controller, e.g. `http://10.0.0.2:8080`, or `https://…` with `pin_cert`.
    pub server: String,
    /// The controller's certificate (PEM) for `https://`: trusted alone, byte for byte.
    pub pin_cert: Option<PathBuf>,
    pub token: String,
    pub reader: ReaderSource,
    pub camera: Box<dyn Camera>,
    pub relay: Box<dyn DoorRelay>,
    /// Time between find-card polls; real readers are polled every 100–300 ms.
    pub poll_interval: Duration,
    pub reader_timeout: Duration,
    /// Time between syncs while there is nothing to send (also the heartbeat).
    pub sync_interval: Duration,
    pub door_open: Duration,
    /// The door contact and tamper switch, when wired.
    pub door_sensor: Option<Box<dyn DoorSensor>>,
    /// A door open longer than this is a door-held-open event.
    pub door_held: Duration,
}

/// What the reader thread reports.
enum ReaderMessage {
    Card(Box<witness_drivers::idcard::CardRead>),
    Unreadable(String),
    Fault(String),
    Recovered,
}

fn open_reader(
    source: &ReaderSource,
    timeout: Duration,
) -> Result<SerialReader<SerialPort>, IdCardError> {
    let (path, baud) = match source {
        ReaderSource::Serial(path) => (path.clone(), 115_200),
        ReaderSource::Usb { profiles } => {
            let profiles = witness_drivers::idcard::usb::load_profiles(profiles)?;
            let found = witness_drivers::idcard::usb::discover(
                &profiles,
                std::path::Path::new("/sys/bus/usb/devices"),
                std::path::Path::new("/dev"),
            )?;
            let first = found.into_iter().next().ok_or_else(|| {
                IdCardError::Io(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no ID card reader of a known model on USB",
                ))
            })?;
            (first.device, first.profile.baud)
        }
    };
    let port = SerialPort::open(&path, baud)?;
    let mut reader = SerialReader::new(port, timeout);
    reader.sam_status()?;
    Ok(reader)
}

/// The reader loop, on its own thread because serial reads block.
fn reader_thread(
    source: ReaderSource,
    poll_interval: Duration,
    timeout: Duration,
    sender: mpsc::Sender<ReaderMessage>,
) {
    let mut reader: Option<SerialReader<SerialPort>> = None;
    let mut faulty = false;
    let mut backoff = Duration::from_millis(200);
    loop {
        if sender.is_closed() {
            return;
        }
        let current = match reader.as_mut() {
            Some(r) => r,
            None => match open_reader(&source, timeout) {
                Ok(r) => {
                    tracing::info!("ID card reader ready");
                    backoff = Duration::from_millis(200);
                    if faulty {
                        faulty = false;
                        let _ = sender.blocking_send(ReaderMessage::Recovered);
                    }
                    reader.insert(r)
                }
                Err(e) => {
                    if !faulty {
                        faulty = true;
                        tracing::error!(error = %e, "ID card reader unavailable; retrying");
                        let _ = sender.blocking_send(ReaderMessage::Fault(e.to_string()));
                    }
                    if matches!(e, IdCardError::NotSupported(_)) {
                        // Nothing will change by retrying quickly.
                        backoff = Duration::from_secs(60);
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            },
        };
        match current.poll() {
            Ok(Poll::NoCard) => std::thread::sleep(poll_interval),
            Ok(Poll::Card(card)) => {
                let _ = sender.blocking_send(ReaderMessage::Card(card));
            }
            Ok(Poll::Unreadable(e)) => {
                tracing::warn!(error = %e, "a card was on the reader but could not be read");
                let _ = sender.blocking_send(ReaderMessage::Unreadable(e.to_string()));
            }
            Err(e) => {
                // No answer to find-card, or the line hung up: reopen (this also picks the
                // reader up again after it was unplugged and plugged back).
                tracing::error!(error = %e, "ID card reader stopped answering; reopening");
                if !faulty {
                    faulty = true;
                    let _ = sender.blocking_send(ReaderMessage::Fault(e.to_string()));
                }
                reader = None;
                std::thread::sleep(backoff);
            }
        }
    }
}

/// Runs the gate until the process is stopped.
pub async fn run(mut config: GateConfig) -> anyhow::Result<()> {
    let log = EventLog::open(&config.data).await?;
    let list = Arc::new(RwLock::new(match log.expert_list().await? {
        Some(saved) => {
            tracing::info!(
                experts = saved.experts.len(),
                "expert list restored from the log"
            );
            ListIndex::new(&saved)
        }
        None => ListIndex::default(),
    }));
    let started = log
        .append(
            &rfc3339(now()),
            &EventKind::Started {
                version: env!("CARGO_PKG_VERSION").into(),
            },
        )
        .await?;
    tracing::info!(
        sequence = started,
        log_id = log.log_id(),
        "event recorded: gate agent started"
    );

    let unlock = UnlockWindow::default();
    let (door_sender, mut door_events) = mpsc::channel(16);
    match config.door_sensor.take() {
        Some(sensor) => door::spawn(
            sensor,
            Duration::from_millis(200),
            config.door_held,
            unlock.clone(),
            door_sender,
        )
        .context("starting the door sensor thread")?,
        // Said at every start, so nobody mistakes silence for a quiet door.
        None => tracing::warn!(
            "no door sensor configured (--door-sensor): forced doors, doors held open and the \
             tamper switch are not watched; only relay failures are recorded as tamper events"
        ),
    }
    let (sender, mut receiver) = mpsc::channel(64);
    let source = config.reader.clone();
    let (poll_interval, reader_timeout) = (config.poll_interval, config.reader_timeout);
    std::thread::Builder::new()
        .name("idcard-reader".into())
        .spawn(move || reader_thread(source, poll_interval, reader_timeout, sender))
        .context("starting the reader thread")?;

    // HTTPS goes through the pinned loopback tunnel; the sync loop speaks HTTP to its end.
    let server = match &config.pin_cert {
        Some(pin) => {
            let tunnel = crate::tls::start_tunnel(&config.server, pin).await?;
            tracing::info!(
                server = %config.server,
                pin = %pin.display(),
                "HTTPS to the controller with a pinned certificate"
            );
            tunnel
        }
        None => config.server.clone(),
    };
    let sync = tokio::spawn(sync_loop(
        log.clone(),
        Arc::clone(&list),
        server,
        config.token.clone(),
        config.sync_interval,
    ));

    loop {
        let message = tokio::select! {
            message = receiver.recv() => match message {
                Some(message) => message,
                None => break,
            },
            // Without a sensor the sender is gone and this branch is disabled.
            Some(kind) = door_events.recv() => {
                let sequence = log.append(&rfc3339(now()), &kind).await?;
                tracing::warn!(sequence, kind = %kind.name(), "event recorded: door");
                continue;
            }
        };
        let at = rfc3339(now());
        let kind = match message {
            ReaderMessage::Card(card) => badge(&mut config, &list, *card),
            ReaderMessage::Unreadable(detail) => {
                tracing::info!(detail, "badge denied: unreadable card");
                EventKind::Badge(BadgeEvent {
                    id_number: String::new(),
                    name: String::new(),
                    allowed: false,
                    reason: Some(DenyReason::UnreadableCard),
                    project_number: None,
                    decision_micros: 0,
                    snapshot_base64: snapshot(&mut config),
                })
            }
            ReaderMessage::Fault(detail) => EventKind::ReaderFault { detail },
            ReaderMessage::Recovered => EventKind::ReaderOk,
        };
        // Recorded (fsync'd) before the door opens: an opened door always has its event.
        let sequence = log.append(&at, &kind).await?;
        if let EventKind::Badge(badge) = &kind {
            tracing::info!(
                sequence,
                expert = %mask_id_number(&badge.id_number),
                allowed = badge.allowed,
                reason = %badge.reason.map(DenyReason::as_str).unwrap_or("-"),
                decision_micros = badge.decision_micros,
                "event recorded: badge"
            );
            if badge.allowed {
                // The window opens before the lock does, so the door sensor never sees this
                // opening as forced.
                unlock.unlocked(Instant::now(), config.door_open);
                if let Err(e) = config.relay.open(config.door_open) {
                    tracing::error!(error = %e, "door relay failed");
                    let sequence = log
                        .append(
                            &rfc3339(now()),
                            &EventKind::Tamper {
                                detail: format!("door relay failed: {e}"),
                            },
                        )
                        .await?;
                    tracing::info!(sequence, kind = %"tamper", "event recorded");
                }
            }
        } else {
            tracing::info!(sequence, kind = %kind.name(), "event recorded");
        }
    }
    sync.abort();
    Ok(())
}

fn snapshot(config: &mut GateConfig) -> Option<String> {
    match config.camera.snapshot() {
        Ok(bytes) => Some(base64_encode(&bytes)),
        Err(e) => {
            tracing::warn!(error = %e, "no snapshot for this badge");
            None
        }
    }
}

fn badge(
    config: &mut GateConfig,
    list: &RwLock<ListIndex>,
    card: witness_drivers::idcard::CardRead,
) -> EventKind {
    let decision = {
        let list = list.read().unwrap_or_else(|p| p.into_inner());
        decide(&list, &card.text.id_number, &card.text.valid_until, now())
    };
    // Timed from the last byte of the card data: the reader's own read time is not ours.
    let decision_micros = card.completed_at.elapsed().as_micros() as u64;
    EventKind::Badge(BadgeEvent {
        id_number: card.text.id_number.clone(),
        name: card.text.name.clone(),
        allowed: decision.allowed,
        reason: decision.reason,
        project_number: decision.project_number,
        decision_micros,
        snapshot_base64: snapshot(config),
    })
}

/// Why a sync failed, for the log.
async fn sync_once(
    client: &reqwest::Client,
    server: &str,
    token: &str,
    log: &EventLog,
) -> anyhow::Result<usize> {
    let acked = log.acked().await?;
    // 500 events or ~4 MB per batch: small enough for one transaction on the controller, big
    // enough that a 100,000-event backlog is a few hundred requests.
    let events = log.after(acked, 500, 4 << 20).await?;
    let last = log.last_sequence().await?;
    let sent = events.len();
    let queue_depth = last - events.last().map_or(acked, |e| e.sequence);
    let batch = SyncBatch {
        log_id: log.log_id().to_string(),
        events,
        queue_depth,
    };
    let response = client
        .post(format!("{server}/api/gate/events"))
        .bearer_auth(token)
        .json(&batch)
        .send()
        .await
        .context("controller unreachable")?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .context("reading the controller's answer")?;
    if !status.is_success() {
        anyhow::bail!(
            "controller answered HTTP {}: {}",
            status.as_u16(),
            String::from_utf8_lossy(&body[..body.len().min(300)])
        );
    }
    let ack: SyncAck = serde_json::from_slice(&body).with_context(|| {
        format!(
            "controller answered garbage: {}",
            String::from_utf8_lossy(&body[..body.len().min(100)])
        )
    })?;
    if ack.acked_through > last || ack.acked_through < acked {
        anyhow::bail!(
            "controller acknowledged {} but the log holds {acked}..{last}",
            ack.acked_through
        );
    }
    log.set_acked(ack.acked_through).await?;
    Ok(sent)
}

async fn refresh_list(
    client: &reqwest::Client,
    server: &str,
    token: &str,
    log: &EventLog,
    list: &RwLock<ListIndex>,
) -> anyhow::Result<usize> {
    let response = client
        .get(format!("{server}/api/gate/list"))
        .bearer_auth(token)
        .send()
        .await
        .context("controller unreachable")?;
    let status = response.status();
    let body = response.bytes().await?;
    if !status.is_success() {
        anyhow::bail!(
            "controller answered HTTP {}: {}",
            status.as_u16(),
            String::from_utf8_lossy(&body[..body.len().min(300)])
        );
    }
    let fresh: ExpertList = serde_json::from_slice(&body)
        .context("controller answered garbage instead of an expert list")?;
    log.set_expert_list(&fresh).await?;
    let index = ListIndex::new(&fresh);
    *list.write().unwrap_or_else(|p| p.into_inner()) = index;
    Ok(fresh.experts.len())
}

/// Sends the log in order until the controller has all of it, then heartbeats; backs off
/// (0.2 s doubling to 10 s, so a restarted controller is picked up within seconds) while the controller is unreachable or answers errors, and records
/// offline/online transitions as events of their own.
async fn sync_loop(
    log: EventLog,
    list: Arc<RwLock<ListIndex>>,
    server: String,
    token: String,
    interval: Duration,
) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "no HTTP client; the gate keeps deciding from its list but cannot sync");
            return;
        }
    };
    let server = server.trim_end_matches('/').to_string();
    let list_every = Duration::from_secs(30).max(interval);
    let mut last_list: Option<Instant> = None;
    let mut offline_since: Option<OffsetDateTime> = None;
    let mut backoff = Duration::from_millis(200);
    loop {
        let mut failure = None;
        if last_list.is_none_or(|t| t.elapsed() >= list_every) {
            match refresh_list(&client, &server, &token, &log, &list).await {
                Ok(n) => {
                    tracing::info!(experts = n, "expert list updated");
                    last_list = Some(Instant::now());
                }
                Err(e) => failure = Some(format!("{e:#}")),
            }
        }
        let mut more = false;
        if failure.is_none() {
            match sync_once(&client, &server, &token, &log).await {
                Ok(sent) => more = sent >= 500,
                Err(e) => failure = Some(format!("{e:#}")),
            }
        }
        match failure {
            None => {
                backoff = Duration::from_millis(200);
                if let Some(since) = offline_since.take() {
                    tracing::info!(since = %rfc3339(since), "controller reachable again");
                    match log.append(&rfc3339(now()), &EventKind::Online).await {
                        Ok(sequence) => {
                            tracing::info!(sequence, kind = %"online", "event recorded")
                        }
                        Err(e) => tracing::error!(error = %e, "recording the online event failed"),
                    }
                    more = true;
                }
                if !more {
                    tokio::time::sleep(interval).await;
                }
            }
            Some(reason) => {
                tracing::warn!(
                    reason,
                    retry_in_ms = backoff.as_millis() as u64,
                    "sync failed; the gate keeps deciding from its list"
                );
                if offline_since.is_none() {
                    let since = now();
                    offline_since = Some(since);
                    let kind = EventKind::Offline {
                        since: rfc3339(since),
                        detail: reason,
                    };
                    match log.append(&rfc3339(since), &kind).await {
                        Ok(sequence) => {
                            tracing::info!(sequence, kind = %"offline", "event recorded")
                        }
                        Err(e) => tracing::error!(error = %e, "recording the offline event failed"),
                    }
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}
