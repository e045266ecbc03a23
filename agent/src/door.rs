//! The door's own inputs: a door opened without an authorized unlock (forced), a door held open
//! too long, the tamper switch, and a sensor that stops answering, each an event of the log.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use witness_drivers::door_sensor::{DoorInputs, DoorSensor};
use witness_schemas::gate::EventKind;

/// Time after the lock re-closes during which an opening still counts as the badge's: people
/// push the door a moment after the click.
const UNLOCK_GRACE: Duration = Duration::from_secs(2);

/// Until when the door may be opened because a badge unlocked it; set by the badge path.
#[derive(Debug, Clone, Default)]
pub struct UnlockWindow(Arc<Mutex<Option<Instant>>>);

impl UnlockWindow {
    /// The relay released the lock at `at` for `hold`.
    pub fn unlocked(&self, at: Instant, hold: Duration) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(at + hold + UNLOCK_GRACE);
    }

    fn allows(&self, at: Instant) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|until| at <= until)
    }
}

/// The state between two polls of the door inputs.
#[derive(Debug)]
pub struct DoorWatch {
    held_limit: Duration,
    open_since: Option<Instant>,
    held_reported: bool,
    tamper: bool,
    failing: bool,
}

impl DoorWatch {
    pub fn new(held_limit: Duration) -> DoorWatch {
        DoorWatch {
            held_limit,
            open_since: None,
            held_reported: false,
            tamper: false,
            failing: false,
        }
    }

    /// One poll's reading at `now`; the events it causes (each reported once per occurrence).
    pub fn step(
        &mut self,
        now: Instant,
        reading: Result<DoorInputs, String>,
        window: &UnlockWindow,
    ) -> Vec<EventKind> {
        let mut events = Vec::new();
        let inputs = match reading {
            Ok(inputs) => {
                if std::mem::take(&mut self.failing) {
                    tracing::info!("door sensor answering again");
                }
                inputs
            }
            Err(detail) => {
                // Reported once per outage: a dead sensor hides forced doors, so it is a tamper.
                if !self.failing {
                    self.failing = true;
                    events.push(EventKind::Tamper {
                        detail: format!(
                            "门磁/防拆输入无应答 (door sensor not answering): {detail}"
                        ),
                    });
                }
                return events;
            }
        };
        if inputs.tamper && !self.tamper {
            events.push(EventKind::Tamper {
                detail: "防拆开关触发 (tamper switch: enclosure opened)".into(),
            });
        }
        self.tamper = inputs.tamper;
        match (inputs.door_open, self.open_since) {
            (true, None) => {
                self.open_since = Some(now);
                self.held_reported = false;
                if !window.allows(now) {
                    events.push(EventKind::Tamper {
                        detail: "门被强行打开 (door opened without an authorized badge)".into(),
                    });
                }
            }
            (true, Some(since)) => {
                let open = now.saturating_duration_since(since);
                if open >= self.held_limit && !self.held_reported {
                    self.held_reported = true;
                    events.push(EventKind::DoorHeldOpen {
                        seconds: open.as_secs(),
                    });
                }
            }
            (false, _) => self.open_since = None,
        }
        events
    }
}

/// Polls the sensor on its own thread (serial reads block) and sends the events it causes.
pub fn spawn(
    mut sensor: Box<dyn DoorSensor>,
    every: Duration,
    held_limit: Duration,
    window: UnlockWindow,
    sender: mpsc::Sender<EventKind>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("door-sensor".into())
        .spawn(move || {
            let mut watch = DoorWatch::new(held_limit);
            while !sender.is_closed() {
                let reading = sensor.read().map_err(|e| e.to_string());
                if let Err(e) = &reading {
                    tracing::debug!(error = %e, "door sensor read failed");
                }
                for event in watch.step(Instant::now(), reading, &window) {
                    if sender.blocking_send(event).is_err() {
                        return;
                    }
                }
                std::thread::sleep(every);
            }
        })
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(door_open: bool) -> Result<DoorInputs, String> {
        Ok(DoorInputs {
            door_open,
            tamper: false,
        })
    }

    fn names(events: &[EventKind]) -> Vec<String> {
        events
            .iter()
            .map(|e| match e {
                EventKind::Tamper { detail } => format!("tamper: {detail}"),
                other => other.name().to_string(),
            })
            .collect()
    }

    #[test]
    fn a_badged_opening_is_quiet_until_held_too_long() {
        let t0 = Instant::now();
        let window = UnlockWindow::default();
        window.unlocked(t0, Duration::from_secs(5));
        let mut watch = DoorWatch::new(Duration::from_secs(30));
        assert!(watch
            .step(t0 + Duration::from_secs(1), open(true), &window)
            .is_empty());
        assert!(watch
            .step(t0 + Duration::from_secs(20), open(true), &window)
            .is_empty());
        let held = watch.step(t0 + Duration::from_secs(32), open(true), &window);
        assert!(
            matches!(held.as_slice(), [EventKind::DoorHeldOpen { seconds: 31 }]),
            "{held:?}"
        );
        // Reported once per opening.
        assert!(watch
            .step(t0 + Duration::from_secs(60), open(true), &window)
            .is_empty());
        assert!(watch
            .step(t0 + Duration::from_secs(61), open(false), &window)
            .is_empty());
    }

    #[test]
    fn forced_doors_tamper_and_a_silent_sensor_are_reported_once() {
        let t0 = Instant::now();
        let window = UnlockWindow::default();
        let mut watch = DoorWatch::new(Duration::from_secs(30));
        let forced = names(&watch.step(t0, open(true), &window));
        assert_eq!(forced.len(), 1);
        assert!(forced[0].contains("强行打开"), "{forced:?}");
        assert!(watch
            .step(t0 + Duration::from_secs(1), open(false), &window)
            .is_empty());
        // Opened after the unlock window (5 s hold + grace) has passed: forced again.
        window.unlocked(t0, Duration::from_secs(5));
        assert!(watch
            .step(t0 + Duration::from_secs(3), open(true), &window)
            .is_empty());
        assert!(watch
            .step(t0 + Duration::from_secs(4), open(false), &window)
            .is_empty());
        assert_eq!(
            watch
                .step(t0 + Duration::from_secs(9), open(true), &window)
                .len(),
            1
        );
        let tamper = DoorInputs {
            door_open: true,
            tamper: true,
        };
        let events = names(&watch.step(t0 + Duration::from_secs(10), Ok(tamper), &window));
        assert!(
            events.len() == 1 && events[0].contains("防拆"),
            "{events:?}"
        );
        assert!(watch
            .step(t0 + Duration::from_secs(11), Ok(tamper), &window)
            .is_empty());
        let silent =
            names(&watch.step(t0 + Duration::from_secs(12), Err("timeout".into()), &window));
        assert!(
            silent.len() == 1 && silent[0].contains("无应答"),
            "{silent:?}"
        );
        assert!(watch
            .step(t0 + Duration::from_secs(13), Err("timeout".into()), &window)
            .is_empty());
        // Back: the door still open since before the outage is no new opening.
        assert!(watch
            .step(t0 + Duration::from_secs(14), Ok(tamper), &window)
            .is_empty());
    }
}
