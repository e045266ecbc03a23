//! A raw serial line (a reader's USB-serial bridge, a relay board, or a pseudo-terminal in
//! tests), opened with termios in raw 8N1 mode and read with `poll` so every read has a deadline.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Bytes in both directions with a timeout on reads; the reader protocol sits on top of this.
pub trait Transport: Send {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Reads what has arrived, waiting at most `timeout`; `Ok(0)` means nothing came.
    fn read_some(&mut self, buffer: &mut [u8], timeout: Duration) -> io::Result<usize>;
    /// Drops input that arrived while nobody was asking (late answers of an earlier command).
    fn discard_input(&mut self) -> io::Result<()>;
}

/// A serial device node.
#[derive(Debug)]
pub struct SerialPort {
    file: File,
    path: PathBuf,
}

fn baud_constant(baud: u32) -> io::Result<libc::speed_t> {
    Ok(match baud {
        9600 => libc::B9600,
        19200 => libc::B19200,
        38400 => libc::B38400,
        57600 => libc::B57600,
        115_200 => libc::B115200,
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unsupported baud rate {baud}"),
            ))
        }
    })
}

impl SerialPort {
    /// Opens `path` raw at `baud` (readers speak 115200 8N1; some older ones 9600).
    pub fn open(path: &Path, baud: u32) -> io::Result<SerialPort> {
        // O_NOCTTY: a reader must never become the agent's controlling terminal; O_NONBLOCK:
        // open must not wait for carrier detect on bridges that do not drive DCD.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
            .open(path)?;
        let fd = file.as_raw_fd();
        let speed = baud_constant(baud)?;
        // SAFETY: `fd` is an open descriptor owned by `file` for the whole block, and
        // `termios` is a plain C struct fully written by tcgetattr before it is read.
        unsafe {
            let mut termios: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd, &mut termios) != 0 {
                return Err(io::Error::last_os_error());
            }
            libc::cfmakeraw(&mut termios);
            termios.c_cflag |= libc::CLOCAL | libc::CREAD;
            termios.c_cc[libc::VMIN] = 0;
            termios.c_cc[libc::VTIME] = 0;
            libc::cfsetispeed(&mut termios, speed);
            libc::cfsetospeed(&mut termios, speed);
            if libc::tcsetattr(fd, libc::TCSANOW, &termios) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(SerialPort {
            file,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Transport for SerialPort {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(1);
        let mut written = 0;
        while written < bytes.len() {
            match self.file.write(&bytes[written..]) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "serial line closed",
                    ))
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn read_some(&mut self, buffer: &mut [u8], timeout: Duration) -> io::Result<usize> {
        let mut poll = libc::pollfd {
            fd: self.file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let millis = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd for the duration of the call.
        let ready = unsafe { libc::poll(&mut poll, 1, millis) };
        if ready < 0 {
            let error = io::Error::last_os_error();
            return if error.kind() == io::ErrorKind::Interrupted {
                Ok(0)
            } else {
                Err(error)
            };
        }
        if ready == 0 {
            return Ok(0);
        }
        if poll.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0
            && poll.revents & libc::POLLIN == 0
        {
            // An unplugged USB-serial bridge (or a closed pty master) hangs up the line.
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "serial line hung up (device unplugged?)",
            ));
        }
        match self.file.read(buffer) {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "serial line closed",
            )),
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            Err(e) => Err(e),
        }
    }

    fn discard_input(&mut self) -> io::Result<()> {
        // SAFETY: a valid descriptor owned by `self.file`.
        unsafe { libc::tcflush(self.file.as_raw_fd(), libc::TCIFLUSH) };
        Ok(())
    }
}
