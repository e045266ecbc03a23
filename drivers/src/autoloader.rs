//! Autoloaders (disc publishing robots): the `Autoloader` trait — input bins of blanks, one output
//! bin, one reject bin, an arm that moves a disc input bin → drive → printer → output or reject
//! bin — and a fake that models the bins, their counts and the robot's failures.
//!
//! Real robots (Rimage, Primera) are driven through their vendors' SDKs, which this appliance
//! does not have; configuring one is refused as "not supported yet" (see [`unsupported`]).

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Where a disc can be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "name")]
pub enum Place {
    /// Input bin, 1-based.
    Input(usize),
    Drive(String),
    Printer,
    Output,
    Reject,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::Input(n) => write!(f, "输入仓 {n}"),
            Place::Drive(name) => write!(f, "刻录机 {name}"),
            Place::Printer => write!(f, "打印机"),
            Place::Output => write!(f, "输出仓"),
            Place::Reject => write!(f, "废盘仓"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AutoloaderError {
    #[error("输入仓已无空白盘 (every input bin is empty)")]
    BinEmpty,
    #[error("{place}已满 (bin full)")]
    BinFull { place: Place },
    #[error("机械手卡住，需人工处理 (arm jammed): {detail}")]
    ArmJam { detail: String },
    #[error("机械手在 {from} → {to} 途中掉盘 (disc dropped)")]
    DiscDropped { from: Place, to: Place },
    #[error("{place}中没有光盘 (no disc there)")]
    NoDisc { place: Place },
    #[error("{place}中已有光盘 (already holds a disc)")]
    Occupied { place: Place },
    #[error("机械手状态无法保存 (state not saved): {0}")]
    State(String),
}

/// One arm move, as the robot logs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    /// 1-based over the robot's life.
    pub seq: u64,
    pub from: Place,
    pub to: Place,
    /// `None` when the move succeeded.
    pub error: Option<String>,
}

/// What the robot reports about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoloaderStatus {
    pub model: String,
    /// Blanks left in each input bin.
    pub input_bins: Vec<u32>,
    pub output_count: u32,
    pub reject_count: u32,
    pub bin_capacity: u32,
    /// Drives holding a disc.
    pub drives_loaded: Vec<String>,
    pub printer_loaded: bool,
    /// Set while the arm is jammed; every move fails until an operator clears it.
    pub jammed: Option<String>,
    pub moves: u64,
}

/// A disc publishing robot. Calls block (a real arm move takes seconds); the controller runs
/// them on blocking threads and moves one disc at a time.
pub trait Autoloader: Send + Sync {
    fn status(&self) -> AutoloaderStatus;
    /// Input bin → drive: a blank from the first bin that has one; returns the bin.
    fn load_blank(&self, drive: &str) -> Result<usize, AutoloaderError>;
    /// Drive → printer.
    fn drive_to_printer(&self, drive: &str) -> Result<(), AutoloaderError>;
    /// Printer → output bin (a verified, printed disc).
    fn printer_to_output(&self) -> Result<(), AutoloaderError>;
    /// Printer → reject bin (a failed disc, printed "REJECT").
    fn printer_to_reject(&self) -> Result<(), AutoloaderError>;
    /// The most recent moves, oldest first.
    fn recent_moves(&self) -> Vec<Move>;
    /// An operator freed the arm (a real robot is reset after the person opened it).
    fn clear_jam(&self) -> Result<(), AutoloaderError>;
}

/// The refusal for a configured robot model without an implementation.
pub fn unsupported(model: &str) -> String {
    format!(
        "尚不支持 {model} 机械手：需要厂商 SDK，目前只有 kind = \"fake\" (not supported yet: {model} robots need the vendor SDK)"
    )
}

/// Failures the fake injects, counted in moves over its life (1-based).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FakeFaults {
    /// This move jams the arm (and every later one until `clear_jam`).
    pub jam_on_move: Option<u64>,
    /// This move drops the disc it carries (it is lost, the move fails).
    pub drop_on_move: Option<u64>,
}

/// Everything about the fake that a real robot would remember through a controller restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct FakeState {
    input_bins: Vec<u32>,
    output_count: u32,
    reject_count: u32,
    drives_loaded: BTreeMap<String, bool>,
    printer_loaded: bool,
    jammed: Option<String>,
    moves: u64,
}

/// A robot in memory (and in a state file, when given one, so the bins survive a daemon restart
/// the way a real robot's do).
pub struct FakeAutoloader {
    bin_capacity: u32,
    faults: FakeFaults,
    state_file: Option<PathBuf>,
    inner: Mutex<(FakeState, VecDeque<Move>)>,
}

const LOG_KEPT: usize = 500;

impl FakeAutoloader {
    /// A robot with these blanks per input bin; `state_file`, if it exists, wins over them.
    pub fn new(
        input_bins: Vec<u32>,
        bin_capacity: u32,
        faults: FakeFaults,
        state_file: Option<PathBuf>,
    ) -> Result<FakeAutoloader, AutoloaderError> {
        let mut state = FakeState {
            input_bins,
            output_count: 0,
            reject_count: 0,
            drives_loaded: BTreeMap::new(),
            printer_loaded: false,
            jammed: None,
            moves: 0,
        };
        if let Some(path) = &state_file {
            match std::fs::read_to_string(path) {
                Ok(text) => {
                    state = serde_json::from_str(&text).map_err(|e| {
                        AutoloaderError::State(format!("{} 无法解析：{e}", path.display()))
                    })?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(AutoloaderError::State(format!("{}：{e}", path.display()))),
            }
        }
        Ok(FakeAutoloader {
            bin_capacity,
            faults,
            state_file,
            inner: Mutex::new((state, VecDeque::new())),
        })
    }

    fn save(&self, state: &FakeState) -> Result<(), AutoloaderError> {
        let Some(path) = &self.state_file else {
            return Ok(());
        };
        let text = serde_json::to_string_pretty(state)
            .map_err(|e| AutoloaderError::State(e.to_string()))?;
        // Written aside and renamed, so a crash leaves the old state or the new, never half.
        let tmp = path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&tmp, &text)?;
            std::fs::File::open(&tmp)?.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|e| AutoloaderError::State(format!("{}：{e}", path.display())))
    }

    /// One arm move: checks the robot, applies `apply` to the state, logs the move either way.
    fn arm_move(
        &self,
        from: Place,
        to: Place,
        apply: impl FnOnce(&mut FakeState, u32) -> Result<(), AutoloaderError>,
    ) -> Result<(), AutoloaderError> {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (state, log) = &mut *guard;
        let result = (|| {
            if let Some(detail) = &state.jammed {
                return Err(AutoloaderError::ArmJam {
                    detail: detail.clone(),
                });
            }
            // A move that is refused up front (empty bin, busy printer) does not count as an arm
            // move; the injected faults are numbered in real moves.
            let mut next = state.clone();
            apply(&mut next, self.bin_capacity)?;
            state.moves += 1;
            let seq = state.moves;
            if self.faults.jam_on_move == Some(seq) {
                let detail = format!("第 {seq} 次移动（{from} → {to}）时卡住");
                state.jammed = Some(detail.clone());
                return Err(AutoloaderError::ArmJam { detail });
            }
            if self.faults.drop_on_move == Some(seq) {
                // The disc left `from` and never reached `to`.
                let mut dropped = next;
                undo_arrival(&mut dropped, &to);
                dropped.moves = state.moves;
                *state = dropped;
                return Err(AutoloaderError::DiscDropped {
                    from: from.clone(),
                    to: to.clone(),
                });
            }
            next.moves = state.moves;
            *state = next;
            Ok(())
        })();
        let entry = Move {
            seq: state.moves,
            from: from.clone(),
            to: to.clone(),
            error: result.as_ref().err().map(|e| e.to_string()),
        };
        match &entry.error {
            None => tracing::info!(seq = entry.seq, %from, %to, "autoloader move"),
            Some(error) => {
                tracing::warn!(seq = entry.seq, %from, %to, %error, "autoloader move failed")
            }
        }
        log.push_back(entry);
        while log.len() > LOG_KEPT {
            log.pop_front();
        }
        self.save(state)?;
        result
    }
}

/// Takes back the arrival of a disc at `to` (the source side of the move stays done).
fn undo_arrival(state: &mut FakeState, to: &Place) {
    match to {
        Place::Drive(name) => {
            state.drives_loaded.remove(name);
        }
        Place::Printer => state.printer_loaded = false,
        Place::Output => state.output_count -= 1,
        Place::Reject => state.reject_count -= 1,
        Place::Input(_) => {}
    }
}

fn take_from_printer(state: &mut FakeState) -> Result<(), AutoloaderError> {
    if !state.printer_loaded {
        return Err(AutoloaderError::NoDisc {
            place: Place::Printer,
        });
    }
    state.printer_loaded = false;
    Ok(())
}

impl Autoloader for FakeAutoloader {
    fn status(&self) -> AutoloaderStatus {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let state = &inner.0;
        AutoloaderStatus {
            model: "fake".into(),
            input_bins: state.input_bins.clone(),
            output_count: state.output_count,
            reject_count: state.reject_count,
            bin_capacity: self.bin_capacity,
            drives_loaded: state.drives_loaded.keys().cloned().collect(),
            printer_loaded: state.printer_loaded,
            jammed: state.jammed.clone(),
            moves: state.moves,
        }
    }

    fn load_blank(&self, drive: &str) -> Result<usize, AutoloaderError> {
        let bin = {
            let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            inner
                .0
                .input_bins
                .iter()
                .position(|&n| n > 0)
                .map(|i| i + 1)
        };
        let Some(bin) = bin else {
            let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            let seq = guard.0.moves;
            guard.1.push_back(Move {
                seq,
                from: Place::Input(0),
                to: Place::Drive(drive.into()),
                error: Some(AutoloaderError::BinEmpty.to_string()),
            });
            tracing::warn!(drive, "autoloader: every input bin is empty");
            return Err(AutoloaderError::BinEmpty);
        };
        let name = drive.to_string();
        self.arm_move(Place::Input(bin), Place::Drive(name.clone()), |s, _| {
            if s.drives_loaded.contains_key(&name) {
                return Err(AutoloaderError::Occupied {
                    place: Place::Drive(name.clone()),
                });
            }
            s.input_bins[bin - 1] -= 1;
            s.drives_loaded.insert(name.clone(), true);
            Ok(())
        })?;
        Ok(bin)
    }

    fn drive_to_printer(&self, drive: &str) -> Result<(), AutoloaderError> {
        let name = drive.to_string();
        self.arm_move(Place::Drive(name.clone()), Place::Printer, |s, _| {
            if s.drives_loaded.remove(&name).is_none() {
                return Err(AutoloaderError::NoDisc {
                    place: Place::Drive(name.clone()),
                });
            }
            if s.printer_loaded {
                return Err(AutoloaderError::Occupied {
                    place: Place::Printer,
                });
            }
            s.printer_loaded = true;
            Ok(())
        })
    }

    fn printer_to_output(&self) -> Result<(), AutoloaderError> {
        self.arm_move(Place::Printer, Place::Output, |s, capacity| {
            take_from_printer(s)?;
            if s.output_count >= capacity {
                return Err(AutoloaderError::BinFull {
                    place: Place::Output,
                });
            }
            s.output_count += 1;
            Ok(())
        })
    }

    fn printer_to_reject(&self) -> Result<(), AutoloaderError> {
        self.arm_move(Place::Printer, Place::Reject, |s, capacity| {
            take_from_printer(s)?;
            if s.reject_count >= capacity {
                return Err(AutoloaderError::BinFull {
                    place: Place::Reject,
                });
            }
            s.reject_count += 1;
            Ok(())
        })
    }

    fn recent_moves(&self) -> Vec<Move> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.1.iter().cloned().collect()
    }

    fn clear_jam(&self) -> Result<(), AutoloaderError> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.0.jammed = None;
        tracing::info!("autoloader: jam cleared");
        self.save(&inner.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn robot(bins: Vec<u32>, faults: FakeFaults) -> FakeAutoloader {
        FakeAutoloader::new(bins, 3, faults, None).unwrap()
    }

    #[test]
    fn a_disc_goes_input_drive_printer_output_and_counts_follow() {
        let r = robot(vec![0, 2], FakeFaults::default());
        assert_eq!(r.load_blank("bd1").unwrap(), 2);
        assert_eq!(
            r.load_blank("bd1").unwrap_err(),
            AutoloaderError::Occupied {
                place: Place::Drive("bd1".into())
            }
        );
        r.drive_to_printer("bd1").unwrap();
        r.printer_to_output().unwrap();
        assert_eq!(r.load_blank("bd2").unwrap(), 2);
        r.drive_to_printer("bd2").unwrap();
        r.printer_to_reject().unwrap();
        assert_eq!(r.load_blank("bd1").unwrap_err(), AutoloaderError::BinEmpty);
        let s = r.status();
        assert_eq!(
            (s.input_bins, s.output_count, s.reject_count, s.moves),
            (vec![0, 0], 1, 1, 6)
        );
        assert!(s.drives_loaded.is_empty() && !s.printer_loaded);
        let moves = r.recent_moves();
        // Six real moves, the refused load and the empty-bin attempt, each logged.
        assert_eq!(moves.len(), 8);
        assert_eq!(moves[0].from, Place::Input(2));
        assert_eq!(moves[0].to, Place::Drive("bd1".into()));
        assert!(moves[1].error.is_some());
        assert!(moves[7]
            .error
            .as_deref()
            .unwrap()
            .contains("输入仓已无空白盘"));
    }

    #[test]
    fn nothing_moves_from_an_empty_place_or_into_a_full_bin() {
        let r = FakeAutoloader::new(vec![5], 1, FakeFaults::default(), None).unwrap();
        assert!(matches!(
            r.drive_to_printer("bd1"),
            Err(AutoloaderError::NoDisc { .. })
        ));
        assert!(matches!(
            r.printer_to_output(),
            Err(AutoloaderError::NoDisc { .. })
        ));
        r.load_blank("bd1").unwrap();
        r.drive_to_printer("bd1").unwrap();
        r.load_blank("bd2").unwrap();
        assert_eq!(
            r.drive_to_printer("bd2").unwrap_err(),
            AutoloaderError::Occupied {
                place: Place::Printer
            }
        );
        r.printer_to_output().unwrap();
        r.drive_to_printer("bd2").unwrap();
        assert_eq!(
            r.printer_to_output().unwrap_err(),
            AutoloaderError::BinFull {
                place: Place::Output
            }
        );
        // A refused move leaves the disc where it was.
        let s = r.status();
        assert!(s.printer_loaded && s.output_count == 1, "{s:?}");
        r.printer_to_reject().unwrap();
        assert_eq!(r.status().reject_count, 1);
    }

    #[test]
    fn a_jam_stops_every_later_move_and_a_drop_loses_the_disc() {
        let r = robot(
            vec![10],
            FakeFaults {
                jam_on_move: Some(4),
                drop_on_move: Some(2),
            },
        );
        r.load_blank("bd1").unwrap();
        let err = r.drive_to_printer("bd1").unwrap_err();
        assert!(matches!(err, AutoloaderError::DiscDropped { .. }), "{err}");
        let s = r.status();
        assert!(s.drives_loaded.is_empty() && !s.printer_loaded, "{s:?}");
        r.load_blank("bd1").unwrap();
        let err = r.drive_to_printer("bd1").unwrap_err();
        assert!(matches!(err, AutoloaderError::ArmJam { .. }), "{err}");
        // Jammed before the disc left the drive: it is still there, and nothing moves.
        assert!(matches!(
            r.printer_to_output(),
            Err(AutoloaderError::ArmJam { .. })
        ));
        assert_eq!(r.status().drives_loaded, vec!["bd1".to_string()]);
        r.clear_jam().unwrap();
        r.drive_to_printer("bd1").unwrap();
        r.printer_to_output().unwrap();
        assert_eq!(r.status().output_count, 1);
    }

    #[test]
    fn the_state_file_keeps_the_bins_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("robot.json");
        let r =
            FakeAutoloader::new(vec![4], 10, FakeFaults::default(), Some(file.clone())).unwrap();
        r.load_blank("bd1").unwrap();
        drop(r);
        let r = FakeAutoloader::new(vec![4], 10, FakeFaults::default(), Some(file)).unwrap();
        let s = r.status();
        assert_eq!(
            (s.input_bins, s.drives_loaded),
            (vec![3], vec!["bd1".to_string()])
        );
    }
}
