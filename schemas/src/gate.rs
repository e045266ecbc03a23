//! Wire formats between gate agents and the controller: the drawn-experts list pushed to a gate,
//! the events a gate records (badge, door held open, tamper, reader faults, offline/online), the
//! sync batch and its acknowledgement, the registry and draw bodies of the API, and the reader
//! profiles in `hardware/readers/`. Also the one masking rule for ID numbers, here because the
//! agent (which must never log a full number) and the controller both need it.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Masks an 18-character resident ID number (PIPL): region and the last four characters stay,
/// the birth date and sequence do not (`410225********123X`). Shorter input is fully masked.
pub fn mask_id_number(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    // Below 11 characters the head and tail would show everything (and 8 or 9 would underflow).
    if chars.len() < 11 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..6].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 10))
}

/// One expert drawn (专家抽取) for one project, allowed in during a time window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DrawnExpert {
    /// Full resident ID number: the gate compares it with the card. Only gates and authorized
    /// roles receive it unmasked.
    pub id_number: String,
    pub name: String,
    pub project_number: String,
    /// RFC 3339; the door opens from here…
    pub window_start: String,
    /// …until here (RFC 3339).
    pub window_end: String,
}

/// `GET /api/gate/list`: what one gate needs to decide alone, also while offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ExpertList {
    /// The registry name of the gate the list is for.
    pub gate: String,
    pub generated_at: String,
    pub experts: Vec<DrawnExpert>,
}

/// Why a badge was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DenyReason {
    /// The card holder is not on today's list of drawn experts.
    NotDrawnToday,
    /// Drawn, but not within the project's time window.
    OutsideWindow,
    /// The card's validity has ended.
    ExpiredCard,
    /// The reader saw a card but could not read it (removed mid-read, damaged, failed checks).
    UnreadableCard,
}

impl DenyReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DenyReason::NotDrawnToday => "not_drawn_today",
            DenyReason::OutsideWindow => "outside_window",
            DenyReason::ExpiredCard => "expired_card",
            DenyReason::UnreadableCard => "unreadable_card",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            DenyReason::NotDrawnToday => "非今日抽取专家",
            DenyReason::OutsideWindow => "不在评标时段内",
            DenyReason::ExpiredCard => "身份证已过期",
            DenyReason::UnreadableCard => "身份证无法读取",
        }
    }
}

/// A badge at the door and what the gate decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BadgeEvent {
    /// Full ID number; empty when the card could not be read.
    pub id_number: String,
    pub name: String,
    pub allowed: bool,
    pub reason: Option<DenyReason>,
    /// The project the expert was let in for.
    pub project_number: Option<String>,
    /// Microseconds from the complete card data to the decision (the reader's own read time
    /// excluded).
    pub decision_micros: u64,
    /// The camera snapshot taken at the badge (JPEG), base64; absent when the camera failed.
    pub snapshot_base64: Option<String>,
}

/// What happened at a gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    Badge(BadgeEvent),
    /// The door stayed open longer than allowed.
    DoorHeldOpen {
        seconds: u64,
    },
    /// The enclosure or the reader reported tampering.
    Tamper {
        detail: String,
    },
    /// The reader stopped answering or was unplugged (and later came back: `ReaderOk`).
    ReaderFault {
        detail: String,
    },
    ReaderOk,
    /// The controller could not be reached since `since` (the gate kept deciding from its list).
    Offline {
        since: String,
        detail: String,
    },
    Online,
    /// The agent started (after a restart or power loss).
    Started {
        version: String,
    },
}

impl EventKind {
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Badge(_) => "badge",
            EventKind::DoorHeldOpen { .. } => "door_held_open",
            EventKind::Tamper { .. } => "tamper",
            EventKind::ReaderFault { .. } => "reader_fault",
            EventKind::ReaderOk => "reader_ok",
            EventKind::Offline { .. } => "offline",
            EventKind::Online => "online",
            EventKind::Started { .. } => "started",
        }
    }
}

/// One event of a gate's durable log. `sequence` starts at 1 and has no gaps; the controller
/// accepts each (gate, sequence) once and in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GateEvent {
    pub sequence: i64,
    /// When it happened, RFC 3339 on the gate's clock.
    pub at: String,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// `POST /api/gate/events`: the next events of the gate's log, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SyncBatch {
    /// The id of the gate's event log (made when the log was created); sequences count within it.
    pub log_id: String,
    pub events: Vec<GateEvent>,
    /// Events still waiting on the gate after this batch.
    pub queue_depth: i64,
}

/// The answer to a sync batch: every event up to `acked_through` is stored on the controller
/// (including ones it had already), so the gate may stop resending them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SyncAck {
    pub acked_through: i64,
}

/// `POST /api/gates`: registers a gate. Without `token_id` a new gate token is created and its
/// secret returned once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NewGate {
    pub name: String,
    #[serde(default)]
    pub location: String,
    /// Projects evaluated behind this gate (项目编号).
    #[serde(default)]
    pub projects: Vec<String>,
    pub token_id: Option<i64>,
}

/// A gate in the registry with its state.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Gate {
    /// The id of the gate's API token: a gate is its credential.
    pub token_id: i64,
    pub name: String,
    pub location: String,
    pub projects: Vec<String>,
    /// Synced within the last minute.
    pub online: bool,
    pub last_seen_at: Option<String>,
    pub last_sequence: i64,
    pub last_event_at: Option<String>,
    pub last_event_kind: Option<String>,
    /// Events the gate reported as still queued at its last sync.
    pub queue_depth: i64,
    pub registered_at: String,
}

/// The answer to `POST /api/gates`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedGate {
    pub gate: Gate,
    /// The new token's secret, shown this once; absent when an existing token was given.
    pub token: Option<String>,
}

/// `POST /api/projects/{number}/draws`: experts drawn for a project (until the provincial
/// expert library feeds them).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NewDraw {
    pub id_number: String,
    pub name: String,
    pub window_start: String,
    pub window_end: String,
}

/// A recorded draw; `id_number` is masked unless an authorized role asked for the full record.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Draw {
    pub id: i64,
    pub project_number: String,
    pub id_number: String,
    pub name: String,
    pub window_start: String,
    pub window_end: String,
    pub created_by: String,
    pub created_at: String,
}

/// An event as the controller shows it (`GET /api/projects/{number}/gate-events`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StoredGateEvent {
    pub id: i64,
    pub gate: String,
    pub sequence: i64,
    pub at: String,
    pub kind: String,
    /// Masked unless the full record was asked for by an authorized role.
    pub id_number: Option<String>,
    pub name: Option<String>,
    pub allowed: Option<bool>,
    pub reason: Option<DenyReason>,
    pub project_number: Option<String>,
    pub detail: Option<String>,
    /// `GET /api/gate-events/{id}/snapshot` serves the JPEG.
    pub has_snapshot: bool,
    pub received_at: String,
}

/// A reader model in `hardware/readers/*.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReaderProfile {
    /// Human name, e.g. "神思 SS628-100U".
    pub model: String,
    /// USB vendor id, e.g. "0400".
    pub usb_vid: String,
    pub usb_pid: String,
    /// `serial` (a USB-serial bridge the kernel exposes as ttyUSB/ttyACM) or `hid` (needs a USB
    /// stack of our own; not supported yet).
    pub transport: String,
    #[serde(default = "default_baud")]
    pub baud: u32,
    #[serde(default)]
    pub notes: String,
}

fn default_baud() -> u32 {
    115_200
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (RFC 4648), for snapshots inside JSON. Small enough to keep
/// here instead of adding a dependency to every crate that reads events.
pub fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(BASE64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes what [`base64_encode`] wrote; `None` on anything else.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let value = |c: u8| BASE64.iter().position(|&x| x == c).map(|p| p as u32);
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for (index, chunk) in bytes.chunks(4).enumerate() {
        let last = index == bytes.len() / 4 - 1;
        let padding = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if padding > 2 || (padding > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - padding] {
            n = (n << 6) | value(c)?;
        }
        n <<= 6 * padding as u32;
        let decoded = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&decoded[..3 - padding]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_numbers_are_masked() {
        assert_eq!(mask_id_number("41022519800101123X"), "410225********123X");
        assert_eq!(mask_id_number("1234"), "****");
        assert_eq!(mask_id_number("12345678"), "********");
        assert_eq!(mask_id_number("𠜎𠜱𠝹𠱓𠜎𠜱𠝹𠱓𠜎"), "*********");
        assert_eq!(mask_id_number("12345678901"), "123456*8901");
    }

    #[test]
    fn base64_round_trips() {
        for data in [
            &b""[..],
            b"f",
            b"fo",
            b"foo",
            b"foob",
            b"fooba",
            b"foobar",
            &[0xFF, 0x00, 0x10],
        ] {
            let text = base64_encode(data);
            assert_eq!(base64_decode(&text).as_deref(), Some(data), "{text}");
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_decode("Zm9=Zm9v"), None);
    }

    #[test]
    fn events_are_tagged_by_kind() {
        let event = GateEvent {
            sequence: 7,
            at: "2026-03-18T09:00:00+08:00".into(),
            kind: EventKind::Online,
        };
        let text = serde_json::to_string(&event).unwrap_or_default();
        assert_eq!(
            text,
            r#"{"sequence":7,"at":"2026-03-18T09:00:00+08:00","kind":"online"}"#
        );
        let back: GateEvent = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, event);
    }
}
