//! The one clock of the daemon, so schedules and retention can be tested with simulated time.

use std::sync::Mutex;

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// China Standard Time, the only time zone a Henan trading center lives in (no DST).
pub const CHINA: UtcOffset = match UtcOffset::from_hms(8, 0, 0) {
    Ok(offset) => offset,
    Err(_) => panic!("+08:00 is a valid offset"),
};

pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

/// The real wall clock, reported in China Standard Time.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc().to_offset(CHINA)
    }
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct SimulatedClock(Mutex<OffsetDateTime>);

impl SimulatedClock {
    pub fn new(start: OffsetDateTime) -> SimulatedClock {
        SimulatedClock(Mutex::new(start))
    }

    pub fn advance(&self, by: time::Duration) {
        let mut now = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *now += by;
    }
}

impl Clock for SimulatedClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Formats a time as RFC 3339, the form stored in the catalog and sent on the wire.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_clock_moves_only_when_advanced() {
        let start = time::macros::datetime!(2026-03-31 23:59 +8);
        let clock = SimulatedClock::new(start);
        assert_eq!(clock.now(), start);
        clock.advance(time::Duration::minutes(2));
        assert_eq!(rfc3339(clock.now()), "2026-04-01T00:01:00+08:00");
    }
}
