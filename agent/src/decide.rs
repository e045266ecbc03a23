//! The decision at the door, from the synced list alone: no network, no disk, so it takes
//! microseconds and works the same while the controller is unreachable.

use std::collections::HashMap;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use witness_schemas::gate::{mask_id_number, DenyReason, ExpertList};

/// One drawn expert's window, parsed once when the list arrives.
#[derive(Debug, Clone)]
struct Window {
    project_number: String,
    start: OffsetDateTime,
    end: OffsetDateTime,
}

/// The list indexed by ID number.
#[derive(Debug, Default, Clone)]
pub struct ListIndex {
    by_id: HashMap<String, Vec<Window>>,
    pub experts: usize,
}

impl ListIndex {
    /// Entries with unparseable windows are skipped (and logged): refusing them at the door is
    /// the safe side.
    pub fn new(list: &ExpertList) -> ListIndex {
        let mut by_id: HashMap<String, Vec<Window>> = HashMap::new();
        for expert in &list.experts {
            let parsed = (
                OffsetDateTime::parse(&expert.window_start, &Rfc3339),
                OffsetDateTime::parse(&expert.window_end, &Rfc3339),
            );
            let (Ok(start), Ok(end)) = parsed else {
                tracing::warn!(expert = %mask_id_number(&expert.id_number), "drawn expert with an unreadable window skipped");
                continue;
            };
            by_id
                .entry(expert.id_number.to_ascii_uppercase())
                .or_default()
                .push(Window {
                    project_number: expert.project_number.clone(),
                    start,
                    end,
                });
        }
        ListIndex {
            experts: list.experts.len(),
            by_id,
        }
    }
}

/// What the gate decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub reason: Option<DenyReason>,
    pub project_number: Option<String>,
}

impl Decision {
    fn deny(reason: DenyReason) -> Decision {
        Decision {
            allowed: false,
            reason: Some(reason),
            project_number: None,
        }
    }
}

/// `valid_until` is `YYYYMMDD` or `长期`; a card is valid through its last day.
fn expired(valid_until: &str, now: OffsetDateTime) -> bool {
    if valid_until.contains("长期") {
        return false;
    }
    let today = format!(
        "{:04}{:02}{:02}",
        now.year(),
        u8::from(now.month()),
        now.day()
    );
    // A field that is not a date is treated as expired: we cannot show the card is valid.
    valid_until.len() != 8
        || !valid_until.bytes().all(|b| b.is_ascii_digit())
        || valid_until < today.as_str()
}

/// Decides for a card read at `now` (China Standard Time).
pub fn decide(
    list: &ListIndex,
    id_number: &str,
    valid_until: &str,
    now: OffsetDateTime,
) -> Decision {
    if expired(valid_until, now) {
        return Decision::deny(DenyReason::ExpiredCard);
    }
    let Some(windows) = list.by_id.get(&id_number.to_ascii_uppercase()) else {
        return Decision::deny(DenyReason::NotDrawnToday);
    };
    match windows.iter().find(|w| w.start <= now && now <= w.end) {
        Some(window) => Decision {
            allowed: true,
            reason: None,
            project_number: Some(window.project_number.clone()),
        },
        None => Decision::deny(DenyReason::OutsideWindow),
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;
    use witness_schemas::gate::DrawnExpert;

    use super::*;

    fn list() -> ListIndex {
        ListIndex::new(&ExpertList {
            gate: "东门".into(),
            generated_at: "2026-03-18T08:00:00+08:00".into(),
            experts: vec![DrawnExpert {
                id_number: "11010519491231002X".into(),
                name: "王芳".into(),
                project_number: "LKGC-2026-0318".into(),
                window_start: "2026-03-18T08:30:00+08:00".into(),
                window_end: "2026-03-18T12:00:00+08:00".into(),
            }],
        })
    }

    #[test]
    fn decisions_follow_the_list_the_window_and_the_card() {
        let list = list();
        let id = "11010519491231002x";
        let cases = [
            (
                id,
                "长期",
                datetime!(2026-03-18 09:00 +8),
                Ok("LKGC-2026-0318"),
            ),
            (
                id,
                "20260318",
                datetime!(2026-03-18 09:00 +8),
                Ok("LKGC-2026-0318"),
            ),
            (
                id,
                "20260317",
                datetime!(2026-03-18 09:00 +8),
                Err(DenyReason::ExpiredCard),
            ),
            (
                id,
                "garbage",
                datetime!(2026-03-18 09:00 +8),
                Err(DenyReason::ExpiredCard),
            ),
            (
                id,
                "20300101",
                datetime!(2026-03-18 12:01 +8),
                Err(DenyReason::OutsideWindow),
            ),
            (
                id,
                "20300101",
                datetime!(2026-03-18 08:29 +8),
                Err(DenyReason::OutsideWindow),
            ),
            (
                "110105194912310021",
                "20300101",
                datetime!(2026-03-18 09:00 +8),
                Err(DenyReason::NotDrawnToday),
            ),
        ];
        for (id, valid_until, now, expected) in cases {
            let decision = decide(&list, id, valid_until, now);
            let got = if decision.allowed {
                Ok(decision.project_number.as_deref().unwrap_or(""))
            } else {
                Err(decision.reason.unwrap_or(DenyReason::UnreadableCard))
            };
            assert_eq!(got, expected, "{valid_until} at {now}");
        }
    }
}
