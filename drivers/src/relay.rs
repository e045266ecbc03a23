//! Door relays: open the door for a few seconds. A serial relay board (the common LCUS-1 type
//! USB relay with the `A0 01 01 A2` command set) and a fake that records each opening.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::idcard::serial::{SerialPort, Transport};

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("relay I/O on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A door lock relay.
pub trait DoorRelay: Send {
    /// Releases the lock for `hold`, then locks again; returns once the lock is released (the
    /// re-lock happens in the background, so the decision path never waits for it).
    fn open(&mut self, hold: Duration) -> Result<(), RelayError>;
}

/// A relay that only counts openings and appends one line per opening to a file (when given),
/// so a test in another process can watch the door.
#[derive(Debug, Clone, Default)]
pub struct FakeRelay {
    pub openings: Arc<AtomicU64>,
    journal: Option<PathBuf>,
}

impl FakeRelay {
    pub fn new(journal: Option<&Path>) -> FakeRelay {
        FakeRelay {
            openings: Arc::default(),
            journal: journal.map(Path::to_path_buf),
        }
    }
}

impl DoorRelay for FakeRelay {
    fn open(&mut self, hold: Duration) -> Result<(), RelayError> {
        let n = self.openings.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(path) = &self.journal {
            let io = |source| RelayError::Io {
                path: path.clone(),
                source,
            };
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(io)?;
            writeln!(file, "open {n} {}ms", hold.as_millis()).map_err(io)?;
        }
        Ok(())
    }
}

/// LCUS-1 style serial relay board: `A0 01 01 A2` closes relay 1 (unlocks), `A0 01 00 A1`
/// opens it again (the last byte is the sum of the first three).
pub struct SerialRelay {
    port: Arc<Mutex<SerialPort>>,
    path: PathBuf,
}

impl SerialRelay {
    pub fn open(path: &Path) -> Result<SerialRelay, RelayError> {
        let port = SerialPort::open(path, 9600).map_err(|source| RelayError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(SerialRelay {
            port: Arc::new(Mutex::new(port)),
            path: path.to_path_buf(),
        })
    }
}

impl DoorRelay for SerialRelay {
    fn open(&mut self, hold: Duration) -> Result<(), RelayError> {
        let io = |source| RelayError::Io {
            path: self.path.clone(),
            source,
        };
        self.port
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .write_all(&[0xA0, 0x01, 0x01, 0xA2])
            .map_err(io)?;
        let port = Arc::clone(&self.port);
        std::thread::spawn(move || {
            std::thread::sleep(hold);
            if let Err(e) = port
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .write_all(&[0xA0, 0x01, 0x00, 0xA1])
            {
                tracing::error!(error = %e, "relay did not take the re-lock command");
            }
        });
        Ok(())
    }
}
