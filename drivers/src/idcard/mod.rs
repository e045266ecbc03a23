//! Second-generation resident ID card (二代证) readers: the `IdCardReader` trait, the reader
//! that speaks the common SAM protocol over a serial line, USB discovery of readers by VID/PID,
//! a scripted fake, and a simulator that plays a reader on a pseudo-terminal.

pub mod codec;
pub mod serial;
pub mod simulator;
pub mod usb;

use std::io;
use std::time::{Duration, Instant};

use codec::{Decoded, FrameDecoder, IdCardText, Response};
use serial::Transport;

/// Errors of a reader. `is_card_problem` separates a card that could not be read (a badge to
/// deny) from a reader that is gone (a fault to report and recover from).
#[derive(Debug, thiserror::Error)]
pub enum IdCardError {
    #[error("reader did not answer within {0:?}")]
    Timeout(Duration),
    #[error("answer truncated: {pending} bytes then silence")]
    Truncated { pending: usize },
    #[error("answer with a bad checksum (expected {expected:02X}, found {found:02X})")]
    BadChecksum { expected: u8, found: u8 },
    #[error("frame length {0} out of range")]
    BadLength(usize),
    #[error("answer too short to carry a status")]
    Malformed,
    #[error("card step {step} failed: status {status:02X} ({})", codec::status_text(*status))]
    Status { step: &'static str, status: u8 },
    #[error("card data malformed: {0}")]
    BadCardData(&'static str),
    #[error("reader I/O: {0}")]
    Io(#[from] io::Error),
    #[error("{0} is not supported yet")]
    NotSupported(String),
}

/// A card read completely.
#[derive(Debug, Clone)]
pub struct CardRead {
    pub text: IdCardText,
    /// The 1024-byte WLT photo block, kept raw (decoding needs the licensed library).
    pub photo: Vec<u8>,
    /// When the last byte of the card data arrived; decisions are timed from here.
    pub completed_at: Instant,
}

/// The outcome of one poll of the reader.
#[derive(Debug)]
pub enum Poll {
    /// No card on the reader.
    NoCard,
    Card(Box<CardRead>),
    /// A card was found but could not be read (removed mid-read, failed checks…).
    Unreadable(IdCardError),
}

/// An ID card reader.
pub trait IdCardReader: Send {
    /// Looks for a card and reads it. `Err` means the reader itself failed (no answer to the
    /// find-card command, line hung up): the caller reports it and reopens the reader.
    fn poll(&mut self) -> Result<Poll, IdCardError>;
}

/// What the protocol layer saw on the line, for the agent's log.
#[derive(Debug, Default, Clone, Copy)]
pub struct LineStats {
    pub garbage_bytes: u64,
    pub bad_checksums: u64,
    pub bad_lengths: u64,
}

/// A reader speaking the SAM protocol over any [`Transport`].
pub struct SerialReader<T: Transport> {
    transport: T,
    decoder: FrameDecoder,
    timeout: Duration,
    pub stats: LineStats,
}

impl<T: Transport> SerialReader<T> {
    /// `timeout`: how long one answer may take. Real readers answer find-card within ~30 ms and
    /// a full read within ~1 s (the card itself is slow), hence a generous default of 1.5 s.
    pub fn new(transport: T, timeout: Duration) -> SerialReader<T> {
        SerialReader {
            transport,
            decoder: FrameDecoder::new(),
            timeout,
            stats: LineStats::default(),
        }
    }

    /// Sends one command and waits for its answer.
    pub fn command(&mut self, command: (u8, u8), data: &[u8]) -> Result<Response, IdCardError> {
        self.transport.discard_input()?;
        self.decoder.clear();
        self.transport
            .write_all(&codec::encode_request(command, data))?;
        let deadline = Instant::now() + self.timeout;
        let mut last_problem: Option<IdCardError> = None;
        let mut buffer = [0u8; 2048];
        loop {
            match self.decoder.next_frame() {
                Decoded::Frame(body) => {
                    return Response::parse(&body).ok_or(IdCardError::Malformed)
                }
                Decoded::Garbage(n) => {
                    self.stats.garbage_bytes += n as u64;
                    tracing::debug!(bytes = n, "skipped garbage between reader frames");
                    continue;
                }
                Decoded::BadChecksum { expected, found } => {
                    self.stats.bad_checksums += 1;
                    tracing::warn!(expected, found, "reader answer with a bad checksum dropped");
                    last_problem = Some(IdCardError::BadChecksum { expected, found });
                    continue;
                }
                Decoded::BadLength(len) => {
                    self.stats.bad_lengths += 1;
                    tracing::warn!(len, "reader frame with an impossible length dropped");
                    last_problem = Some(IdCardError::BadLength(len));
                    continue;
                }
                Decoded::NeedMore => {}
            }
            let now = Instant::now();
            if now >= deadline {
                let pending = self.decoder.pending();
                return Err(match last_problem {
                    Some(problem) => problem,
                    None if pending > 0 => IdCardError::Truncated { pending },
                    None => IdCardError::Timeout(self.timeout),
                });
            }
            let n = self.transport.read_some(&mut buffer, deadline - now)?;
            self.decoder.push(&buffer[..n]);
        }
    }

    /// The SAM module's status (`11 FF`); used to check a reader after opening it.
    pub fn sam_status(&mut self) -> Result<(), IdCardError> {
        let answer = self.command(codec::SAM_STATUS, &[])?;
        if answer.status != codec::STATUS_OK {
            return Err(IdCardError::Status {
                step: "sam status",
                status: answer.status,
            });
        }
        Ok(())
    }

    fn read_card(&mut self) -> Result<CardRead, IdCardError> {
        let select = self.command(codec::SELECT_CARD, &[])?;
        if select.status != codec::STATUS_OK {
            return Err(IdCardError::Status {
                step: "select",
                status: select.status,
            });
        }
        let read = self.command(codec::READ_BASE_INFO, &[])?;
        let completed_at = Instant::now();
        if read.status != codec::STATUS_OK {
            return Err(IdCardError::Status {
                step: "read",
                status: read.status,
            });
        }
        let (text, photo) = codec::parse_base_info(&read.data)
            .ok_or(IdCardError::BadCardData("base info block"))?;
        if text.id_number.chars().count() != 18 {
            return Err(IdCardError::BadCardData("ID number is not 18 characters"));
        }
        Ok(CardRead {
            text,
            photo,
            completed_at,
        })
    }
}

impl<T: Transport> IdCardReader for SerialReader<T> {
    fn poll(&mut self) -> Result<Poll, IdCardError> {
        let find = self.command(codec::FIND_CARD, &[])?;
        match find.status {
            codec::STATUS_CARD_FOUND => {}
            codec::STATUS_NO_CARD => return Ok(Poll::NoCard),
            status => {
                return Err(IdCardError::Status {
                    step: "find",
                    status,
                })
            }
        }
        match self.read_card() {
            Ok(card) => Ok(Poll::Card(Box::new(card))),
            // Once a card was found, a failing line is the card's problem first (it was pulled
            // away mid-read); if the reader is really gone the next find-card says so.
            Err(IdCardError::Io(e)) => Err(IdCardError::Io(e)),
            Err(e) => Ok(Poll::Unreadable(e)),
        }
    }
}

/// A scripted reader for unit tests and dry runs: hands out the queued outcomes, then no card.
#[derive(Default)]
pub struct FakeReader {
    pub script: std::collections::VecDeque<Result<Poll, IdCardError>>,
}

impl IdCardReader for FakeReader {
    fn poll(&mut self) -> Result<Poll, IdCardError> {
        self.script.pop_front().unwrap_or(Ok(Poll::NoCard))
    }
}
