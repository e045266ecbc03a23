//! Door inputs: the door-position contact (门磁) and the enclosure's tamper switch (防拆开关),
//! read from a Modbus RTU digital-input module as access-control installers wire them, or from
//! a fake; plus a simulator of such a module on a pseudo-terminal for tests.
//!
//! The module is asked with function 02 (Read Discrete Inputs): `unit 02 start count CRC`; it
//! answers `unit 02 n bits… CRC` or the exception `unit 82 code CRC`. CRC-16/MODBUS, low byte
//! first.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::idcard::serial::{SerialPort, Transport};

/// What the door's inputs say at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DoorInputs {
    pub door_open: bool,
    pub tamper: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SensorError {
    #[error("door sensor I/O on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("door sensor on {path} did not answer within {timeout_ms} ms")]
    Timeout { path: PathBuf, timeout_ms: u64 },
    #[error("door sensor answer rejected: {0}")]
    BadFrame(String),
    #[error("door sensor reported Modbus exception {code:#04x} ({meaning})")]
    Exception { code: u8, meaning: &'static str },
    #[error("door sensor fake {path}: {detail}")]
    Fake { path: PathBuf, detail: String },
}

/// A source of door inputs, polled a few times a second.
pub trait DoorSensor: Send {
    fn read(&mut self) -> Result<DoorInputs, SensorError>;
}

/// CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF).
pub fn crc16(bytes: &[u8]) -> u16 {
    let mut crc = 0xFFFFu16;
    for &b in bytes {
        crc ^= b as u16;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xA001
            } else {
                crc >> 1
            };
        }
    }
    crc
}

fn with_crc(mut frame: Vec<u8>) -> Vec<u8> {
    let crc = crc16(&frame);
    frame.extend_from_slice(&crc.to_le_bytes());
    frame
}

/// The Read Discrete Inputs request for `count` inputs from `start`.
pub fn request(unit: u8, start: u16, count: u16) -> Vec<u8> {
    let mut frame = vec![unit, 0x02];
    frame.extend_from_slice(&start.to_be_bytes());
    frame.extend_from_slice(&count.to_be_bytes());
    with_crc(frame)
}

/// The answer carrying `bits` (input `start` first).
pub fn response(unit: u8, bits: &[bool]) -> Vec<u8> {
    let mut data = vec![0u8; bits.len().div_ceil(8)];
    for (i, bit) in bits.iter().enumerate() {
        if *bit {
            data[i / 8] |= 1 << (i % 8);
        }
    }
    let mut frame = vec![unit, 0x02, data.len() as u8];
    frame.extend_from_slice(&data);
    with_crc(frame)
}

/// An exception answer.
pub fn exception(unit: u8, code: u8) -> Vec<u8> {
    with_crc(vec![unit, 0x82, code])
}

fn exception_meaning(code: u8) -> &'static str {
    match code {
        1 => "illegal function",
        2 => "illegal data address",
        3 => "illegal data value",
        4 => "device failure",
        6 => "device busy",
        _ => "unknown exception",
    }
}

/// How many bytes a complete answer to a request for `count` inputs has, judged from the first
/// two bytes received; None until two bytes are there.
fn expected_len(received: &[u8], count: u16) -> Option<usize> {
    match received.get(1)? {
        0x82 => Some(5),
        _ => Some(3 + (count as usize).div_ceil(8) + 2),
    }
}

/// Checks a complete answer and returns the `count` input bits.
pub fn parse_response(unit: u8, count: u16, frame: &[u8]) -> Result<Vec<bool>, SensorError> {
    let bad = |what: String| Err(SensorError::BadFrame(what));
    if frame.len() < 5 {
        return bad(format!(
            "{} bytes is too short for a Modbus answer",
            frame.len()
        ));
    }
    let (body, crc) = frame.split_at(frame.len() - 2);
    let want = crc16(body);
    let got = u16::from_le_bytes([crc[0], crc[1]]);
    if want != got {
        return bad(format!("CRC {got:#06x}, expected {want:#06x}"));
    }
    if body[0] != unit {
        return bad(format!("answer from unit {}, asked unit {unit}", body[0]));
    }
    match body[1] {
        0x02 => {}
        0x82 => {
            return Err(SensorError::Exception {
                code: body[2],
                meaning: exception_meaning(body[2]),
            })
        }
        other => return bad(format!("function {other:#04x} in the answer, asked 0x02")),
    }
    let bytes = (count as usize).div_ceil(8);
    if body[2] as usize != bytes || body.len() != 3 + bytes {
        return bad(format!(
            "byte count {} for {count} inputs (expected {bytes})",
            body[2]
        ));
    }
    Ok((0..count as usize)
        .map(|i| body[3 + i / 8] >> (i % 8) & 1 == 1)
        .collect())
}

/// Which inputs of the module are wired to what, and what "active" means.
#[derive(Debug, Clone, Copy)]
pub struct ModbusWiring {
    pub unit: u8,
    /// Input number of the door contact; active means the door is open.
    pub door_input: u16,
    /// Input number of the tamper switch; active means the enclosure is open.
    pub tamper_input: u16,
}

impl Default for ModbusWiring {
    fn default() -> Self {
        ModbusWiring {
            unit: 1,
            door_input: 0,
            tamper_input: 1,
        }
    }
}

/// A Modbus RTU digital-input module on a serial line (9600 8N1, the modules' default).
pub struct ModbusDoorSensor<T: Transport = SerialPort> {
    port: T,
    path: PathBuf,
    wiring: ModbusWiring,
    timeout: Duration,
}

impl ModbusDoorSensor<SerialPort> {
    pub fn open(path: &Path, wiring: ModbusWiring) -> Result<Self, SensorError> {
        let port = SerialPort::open(path, 9600).map_err(|source| SensorError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(ModbusDoorSensor::new(port, path, wiring))
    }
}

impl<T: Transport> ModbusDoorSensor<T> {
    pub fn new(port: T, path: &Path, wiring: ModbusWiring) -> Self {
        ModbusDoorSensor {
            port,
            path: path.to_path_buf(),
            wiring,
            timeout: Duration::from_millis(300),
        }
    }

    fn io(&self, source: io::Error) -> SensorError {
        SensorError::Io {
            path: self.path.clone(),
            source,
        }
    }
}

impl<T: Transport> DoorSensor for ModbusDoorSensor<T> {
    fn read(&mut self) -> Result<DoorInputs, SensorError> {
        let w = self.wiring;
        let count = w.door_input.max(w.tamper_input) + 1;
        // A late answer to an earlier request must not be taken for this one's.
        self.port.discard_input().map_err(|e| self.io(e))?;
        self.port
            .write_all(&request(w.unit, 0, count))
            .map_err(|e| self.io(e))?;
        let deadline = Instant::now() + self.timeout;
        let mut frame = Vec::new();
        let mut buffer = [0u8; 64];
        loop {
            if let Some(len) = expected_len(&frame, count) {
                if frame.len() >= len {
                    frame.truncate(len);
                    break;
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(SensorError::Timeout {
                    path: self.path.clone(),
                    timeout_ms: self.timeout.as_millis() as u64,
                });
            }
            let n = self
                .port
                .read_some(&mut buffer, left)
                .map_err(|e| self.io(e))?;
            frame.extend_from_slice(&buffer[..n]);
        }
        let bits = parse_response(w.unit, count, &frame)?;
        Ok(DoorInputs {
            door_open: bits[w.door_input as usize],
            tamper: bits[w.tamper_input as usize],
        })
    }
}

/// A fake for demos and tests in other processes: a text file whose words say the state
/// (`open` or `closed`, and `tamper` when the switch is active). A missing file is a closed,
/// untampered door.
pub struct FileDoorSensor {
    path: PathBuf,
}

impl FileDoorSensor {
    pub fn new(path: &Path) -> FileDoorSensor {
        FileDoorSensor {
            path: path.to_path_buf(),
        }
    }
}

impl DoorSensor for FileDoorSensor {
    fn read(&mut self) -> Result<DoorInputs, SensorError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(DoorInputs::default()),
            Err(e) => {
                return Err(SensorError::Io {
                    path: self.path.clone(),
                    source: e,
                })
            }
        };
        let mut inputs = DoorInputs::default();
        for word in text.split_whitespace() {
            match word {
                "open" => inputs.door_open = true,
                "closed" => inputs.door_open = false,
                "tamper" => inputs.tamper = true,
                other => {
                    return Err(SensorError::Fake {
                        path: self.path.clone(),
                        detail: format!("unknown word {other:?} (expected open, closed, tamper)"),
                    })
                }
            }
        }
        Ok(inputs)
    }
}

#[derive(Default)]
struct SimState {
    inputs: DoorInputs,
    mute: bool,
    corrupt_next: bool,
    requests: u64,
}

/// A Modbus input module on a pseudo-terminal, reachable through a symlink, for tests: the
/// inputs are set by the test; it can stop answering or send a corrupted answer.
pub struct ModbusSimulator {
    state: Arc<Mutex<SimState>>,
    link: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    unit: u8,
}

impl ModbusSimulator {
    pub fn start(link: &Path, unit: u8) -> io::Result<ModbusSimulator> {
        let (master, slave, name) = crate::idcard::simulator::open_pty()?;
        let temporary = link.with_extension("new");
        let _ = std::fs::remove_file(&temporary);
        std::os::unix::fs::symlink(&name, &temporary)?;
        std::fs::rename(&temporary, link)?;
        let state: Arc<Mutex<SimState>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (thread_state, thread_stop) = (Arc::clone(&state), Arc::clone(&stop));
        let thread = std::thread::Builder::new()
            .name("modbus-sim".into())
            .spawn(move || simulate(master, slave, unit, thread_state, thread_stop))?;
        Ok(ModbusSimulator {
            state,
            link: link.to_path_buf(),
            stop,
            thread: Some(thread),
            unit,
        })
    }

    fn with<R>(&self, f: impl FnOnce(&mut SimState) -> R) -> R {
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn path(&self) -> &Path {
        &self.link
    }

    pub fn unit(&self) -> u8 {
        self.unit
    }

    pub fn set(&self, inputs: DoorInputs) {
        self.with(|s| s.inputs = inputs);
    }

    pub fn set_mute(&self, mute: bool) {
        self.with(|s| s.mute = mute);
    }

    pub fn corrupt_next_answer(&self) {
        self.with(|s| s.corrupt_next = true);
    }

    pub fn requests(&self) -> u64 {
        self.with(|s| s.requests)
    }
}

impl Drop for ModbusSimulator {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.link);
    }
}

/// The module's firmware: answers each 8-byte request read from the master side.
fn simulate(
    mut master: File,
    slave: File,
    unit: u8,
    state: Arc<Mutex<SimState>>,
    stop: Arc<AtomicBool>,
) {
    let _slave = slave;
    let mut pending: Vec<u8> = Vec::new();
    let mut buffer = [0u8; 256];
    while !stop.load(Ordering::SeqCst) {
        let mut poll = libc::pollfd {
            fd: master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        if unsafe { libc::poll(&mut poll, 1, 20) } <= 0 {
            continue;
        }
        match master.read(&mut buffer) {
            Ok(n) => pending.extend_from_slice(&buffer[..n]),
            Err(_) => {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
        }
        while pending.len() >= 8 {
            let frame: Vec<u8> = pending.drain(..8).collect();
            let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
            s.requests += 1;
            if s.mute || crc16(&frame[..6]).to_le_bytes() != frame[6..8] || frame[0] != unit {
                // A real module stays silent on a bad CRC or another unit's address.
                pending.clear();
                continue;
            }
            let answer = if frame[1] != 0x02 {
                exception(unit, 1)
            } else {
                let start = u16::from_be_bytes([frame[2], frame[3]]);
                let count = u16::from_be_bytes([frame[4], frame[5]]);
                if start != 0 || !(1..=8).contains(&count) {
                    exception(unit, 2)
                } else {
                    let wired = [s.inputs.door_open, s.inputs.tamper];
                    let bits: Vec<bool> = (0..count as usize)
                        .map(|i| wired.get(i).copied().unwrap_or(false))
                        .collect();
                    response(unit, &bits)
                }
            };
            let mut answer = answer;
            if std::mem::take(&mut s.corrupt_next) {
                let last = answer.len() - 1;
                answer[last] ^= 0xFF;
            }
            drop(s);
            let _ = master.write_all(&answer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_match_the_modbus_specification() {
        // The specification's example CRC (read holding registers 0..10 of unit 1).
        assert_eq!(
            crc16(&[0x01, 0x03, 0x00, 0x00, 0x00, 0x0A]).to_le_bytes(),
            [0xC5, 0xCD]
        );
        assert_eq!(
            request(1, 0, 2),
            [0x01, 0x02, 0x00, 0x00, 0x00, 0x02, 0xF9, 0xCB]
        );
        assert_eq!(
            response(1, &[true, false]),
            [0x01, 0x02, 0x01, 0x01, 0x60, 0x48]
        );
        assert_eq!(
            parse_response(1, 2, &response(1, &[false, true])).unwrap(),
            [false, true]
        );
    }

    #[test]
    fn bad_answers_are_named() {
        let good = response(1, &[true, true]);
        let mut bad_crc = good.clone();
        bad_crc[3] ^= 0x04;
        let errors = [
            parse_response(1, 2, &bad_crc).unwrap_err().to_string(),
            parse_response(2, 2, &good).unwrap_err().to_string(),
            parse_response(1, 2, &good[..3]).unwrap_err().to_string(),
            parse_response(1, 2, &exception(1, 2))
                .unwrap_err()
                .to_string(),
            parse_response(1, 9, &good).unwrap_err().to_string(),
        ];
        assert!(errors[0].contains("CRC"), "{}", errors[0]);
        assert!(
            errors[1].contains("unit 1") && errors[1].contains("asked unit 2"),
            "{}",
            errors[1]
        );
        assert!(errors[2].contains("too short"), "{}", errors[2]);
        assert!(errors[3].contains("illegal data address"), "{}", errors[3]);
        assert!(errors[4].contains("byte count"), "{}", errors[4]);
    }

    #[test]
    fn the_module_is_read_over_a_pty_and_silence_is_a_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let sim = ModbusSimulator::start(&dir.path().join("door"), 1).unwrap();
        let mut sensor = ModbusDoorSensor::open(sim.path(), ModbusWiring::default()).unwrap();
        assert_eq!(sensor.read().unwrap(), DoorInputs::default());
        sim.set(DoorInputs {
            door_open: true,
            tamper: false,
        });
        assert!(sensor.read().unwrap().door_open);
        sim.set(DoorInputs {
            door_open: false,
            tamper: true,
        });
        assert_eq!(
            sensor.read().unwrap(),
            DoorInputs {
                door_open: false,
                tamper: true
            }
        );
        sim.corrupt_next_answer();
        assert!(matches!(sensor.read(), Err(SensorError::BadFrame(_))));
        // The next poll is good again: one bad frame is not a broken sensor.
        assert!(sensor.read().unwrap().tamper);
        sim.set_mute(true);
        assert!(matches!(sensor.read(), Err(SensorError::Timeout { .. })));
        sim.set_mute(false);
        assert!(sensor.read().unwrap().tamper);
        // Inputs wired elsewhere: tamper on input 0, door on input 1.
        let mut swapped = ModbusDoorSensor::open(
            sim.path(),
            ModbusWiring {
                unit: 1,
                door_input: 1,
                tamper_input: 0,
            },
        )
        .unwrap();
        assert_eq!(
            swapped.read().unwrap(),
            DoorInputs {
                door_open: true,
                tamper: false
            }
        );
        // Another unit's address: the module stays silent.
        let mut other = ModbusDoorSensor::open(
            sim.path(),
            ModbusWiring {
                unit: 7,
                ..ModbusWiring::default()
            },
        )
        .unwrap();
        assert!(matches!(other.read(), Err(SensorError::Timeout { .. })));
        assert!(sim.requests() >= 8);
    }

    #[test]
    fn the_file_fake_reads_words() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("door.txt");
        let mut sensor = FileDoorSensor::new(&path);
        assert_eq!(sensor.read().unwrap(), DoorInputs::default());
        std::fs::write(&path, "open tamper\n").unwrap();
        assert_eq!(
            sensor.read().unwrap(),
            DoorInputs {
                door_open: true,
                tamper: true
            }
        );
        std::fs::write(&path, "ajar").unwrap();
        assert!(sensor.read().unwrap_err().to_string().contains("ajar"));
    }
}
