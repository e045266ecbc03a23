//! A simulated ID card reader on a pseudo-terminal: it answers the SAM protocol like a real
//! reader on a USB-serial bridge, so the agent runs unchanged against it. Tests place cards,
//! and inject the faults real readers show: silence, a card pulled away mid-read, corrupted
//! checksums, line noise between frames, and being unplugged and plugged back.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::codec::{self, Decoded, FrameDecoder, IdCardText};

/// A card the simulator can hold.
#[derive(Debug, Clone)]
pub struct SimCard {
    pub text: IdCardText,
    pub photo: Vec<u8>,
}

impl SimCard {
    /// A plausible card for tests: the name and number given, valid until `valid_until`.
    pub fn new(name: &str, id_number: &str, valid_until: &str) -> SimCard {
        SimCard {
            text: IdCardText {
                name: name.to_string(),
                sex_code: "1".into(),
                ethnicity_code: "01".into(),
                birth_date: id_number.get(6..14).unwrap_or("19800101").to_string(),
                address: "河南省兰考县城关镇中山路1号".into(),
                id_number: id_number.to_string(),
                issuer: "兰考县公安局".into(),
                valid_from: "20160101".into(),
                valid_until: valid_until.to_string(),
            },
            photo: (0..codec::PHOTO_LEN).map(|i| (i * 7 % 251) as u8).collect(),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    card: Option<SimCard>,
    mute: bool,
    remove_mid_read: bool,
    corrupt_next: bool,
    garbage_before: usize,
    /// Delay before each answer, as a slow reader (or a slow card) would.
    answer_delay: Duration,
    reads: u64,
    requests: u64,
}

/// A running simulator. The device path (a symlink to the current pty) stays the same across
/// [`Simulator::unplug`] and [`Simulator::replug`], like a udev-named reader.
pub struct Simulator {
    state: Arc<Mutex<State>>,
    link: PathBuf,
    running: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

pub(crate) fn open_pty() -> io::Result<(File, File, PathBuf)> {
    let mut master = -1;
    let mut slave = -1;
    // SAFETY: openpty writes two descriptors into the given ints; name, termios and window size
    // may be null.
    let result = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    if result != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just opened and are owned by nothing else.
    let (master, slave) = unsafe { (File::from_raw_fd(master), File::from_raw_fd(slave)) };
    let name = std::fs::read_link(format!("/proc/self/fd/{}", slave.as_raw_fd()))?;
    // SAFETY: valid descriptors; termios fully written by tcgetattr. Raw mode on the slave,
    // or the line discipline would echo and translate the binary frames.
    unsafe {
        let mut termios: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(slave.as_raw_fd(), &mut termios) != 0 {
            return Err(io::Error::last_os_error());
        }
        libc::cfmakeraw(&mut termios);
        libc::tcsetattr(slave.as_raw_fd(), libc::TCSANOW, &termios);
        // Non-blocking master: the loop below polls it with a short timeout.
        let flags = libc::fcntl(master.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(master.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
    Ok((master, slave, name))
}

impl Simulator {
    /// Starts a reader reachable at `link`.
    pub fn start(link: &Path) -> io::Result<Simulator> {
        let mut simulator = Simulator {
            state: Arc::default(),
            link: link.to_path_buf(),
            running: None,
        };
        simulator.replug()?;
        Ok(simulator)
    }

    pub fn path(&self) -> &Path {
        &self.link
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Places a card on the reader; it is read once, then counts as taken away.
    pub fn present(&self, card: SimCard) {
        self.with(|s| s.card = Some(card));
    }

    pub fn remove(&self) {
        self.with(|s| s.card = None);
    }

    /// A reader that stops answering (firmware hang, cable half out).
    pub fn set_mute(&self, mute: bool) {
        self.with(|s| s.mute = mute);
    }

    /// The next read sends half its answer, then the card is gone.
    pub fn remove_mid_read(&self) {
        self.with(|s| s.remove_mid_read = true);
    }

    /// The next answer goes out with a wrong checksum.
    pub fn corrupt_next_answer(&self) {
        self.with(|s| s.corrupt_next = true);
    }

    /// Line noise before every answer.
    pub fn garbage_before_answers(&self, bytes: usize) {
        self.with(|s| s.garbage_before = bytes);
    }

    pub fn set_answer_delay(&self, delay: Duration) {
        self.with(|s| s.answer_delay = delay);
    }

    /// Cards read completely so far.
    pub fn reads(&self) -> u64 {
        self.with(|s| s.reads)
    }

    pub fn requests(&self) -> u64 {
        self.with(|s| s.requests)
    }

    /// Waits until `count` cards were read; false on timeout.
    pub fn wait_reads(&self, count: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.reads() < count {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    }

    /// Waits until the card on the reader was taken (read, or removed mid-read).
    pub fn wait_card_taken(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.with(|s| s.card.is_some()) {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    }

    /// Pulls the USB plug: the pty closes (the agent's line hangs up) and the path disappears.
    pub fn unplug(&mut self) {
        if let Some((stop, thread)) = self.running.take() {
            stop.store(true, Ordering::SeqCst);
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.link);
    }

    /// Plugs the reader back in: a new pty behind the same path.
    pub fn replug(&mut self) -> io::Result<()> {
        self.unplug();
        let (master, slave, name) = open_pty()?;
        let temporary = self.link.with_extension("new");
        let _ = std::fs::remove_file(&temporary);
        std::os::unix::fs::symlink(&name, &temporary)?;
        std::fs::rename(&temporary, &self.link)?;
        let stop = Arc::new(AtomicBool::new(false));
        let state = Arc::clone(&self.state);
        let thread_stop = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("idcard-sim".into())
            .spawn(move || serve(master, slave, state, thread_stop))?;
        self.running = Some((stop, thread));
        Ok(())
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.unplug();
    }
}

/// The reader's firmware: answers each request frame from the master side of the pty.
fn serve(mut master: File, slave: File, state: Arc<Mutex<State>>, stop: Arc<AtomicBool>) {
    // Holding the slave open keeps the master readable while the agent reopens the line.
    let _slave = slave;
    let mut decoder = FrameDecoder::new();
    let mut buffer = [0u8; 4096];
    while !stop.load(Ordering::SeqCst) {
        let mut poll = libc::pollfd {
            fd: master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        let ready = unsafe { libc::poll(&mut poll, 1, 20) };
        if ready <= 0 {
            continue;
        }
        let n = match master.read(&mut buffer) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(_) => {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
        };
        decoder.push(&buffer[..n]);
        loop {
            let body = match decoder.next_frame() {
                Decoded::Frame(body) => body,
                Decoded::NeedMore => break,
                Decoded::BadChecksum { .. } => {
                    let _ =
                        master.write_all(&codec::encode_response(codec::STATUS_BAD_CHECKSUM, &[]));
                    continue;
                }
                Decoded::Garbage(_) | Decoded::BadLength(_) => continue,
            };
            if body.len() < 2 {
                continue;
            }
            let answer = answer((body[0], body[1]), &state);
            if let Some(bytes) = answer {
                let _ = master.write_all(&bytes);
            }
        }
    }
}

fn answer(command: (u8, u8), state: &Mutex<State>) -> Option<Vec<u8>> {
    let (delay, reply) = {
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        s.requests += 1;
        if s.mute {
            return None;
        }
        let mut reply = match command {
            codec::SAM_STATUS => codec::encode_response(codec::STATUS_OK, &[]),
            codec::FIND_CARD if s.card.is_some() => {
                codec::encode_response(codec::STATUS_CARD_FOUND, &[0; 4])
            }
            codec::FIND_CARD => codec::encode_response(codec::STATUS_NO_CARD, &[]),
            codec::SELECT_CARD if s.card.is_some() => {
                codec::encode_response(codec::STATUS_OK, &[0; 8])
            }
            codec::SELECT_CARD => codec::encode_response(codec::STATUS_SELECT_FAILED, &[]),
            codec::READ_BASE_INFO => match s.card.take() {
                Some(card) => {
                    let full = codec::encode_response(
                        codec::STATUS_OK,
                        &codec::encode_base_info(&card.text, &card.photo),
                    );
                    if s.remove_mid_read {
                        s.remove_mid_read = false;
                        full[..full.len() / 2].to_vec()
                    } else {
                        s.reads += 1;
                        full
                    }
                }
                None => codec::encode_response(codec::STATUS_READ_FAILED, &[]),
            },
            _ => codec::encode_response(0x21, &[]),
        };
        if s.corrupt_next {
            s.corrupt_next = false;
            if let Some(last) = reply.last_mut() {
                *last ^= 0x5A;
            }
        }
        if s.garbage_before > 0 {
            let mut noisy: Vec<u8> = (0..s.garbage_before)
                .map(|i| (i as u8).wrapping_mul(37) | 1)
                .collect();
            noisy.append(&mut reply);
            reply = noisy;
        }
        (s.answer_delay, reply)
    };
    if !delay.is_zero() {
        std::thread::sleep(delay);
    }
    Some(reply)
}
