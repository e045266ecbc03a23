//! Codec and protocol tests of the ID card reader driver, data-driven from frames written the
//! way readers put them on the wire (the find/select/read frames are the ones printed in reader
//! SDK manuals; they were not captured from a device of ours).

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use witness_drivers::idcard::codec::{self, Decoded, FrameDecoder, IdCardText};
use witness_drivers::idcard::serial::Transport;
use witness_drivers::idcard::{IdCardError, IdCardReader, Poll, SerialReader};

fn hex(text: &str) -> Vec<u8> {
    text.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap_or_else(|e| panic!("{b}: {e}")))
        .collect()
}

fn describe(decoded: &Decoded) -> String {
    match decoded {
        Decoded::Frame(body) => format!(
            "frame {}",
            body.iter()
                .map(|b| format!("{b:02X}"))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Decoded::Garbage(n) => format!("garbage {n}"),
        Decoded::BadChecksum { expected, found } => {
            format!("bad checksum {expected:02X}/{found:02X}")
        }
        Decoded::BadLength(n) => format!("bad length {n}"),
        Decoded::NeedMore => "need more".to_string(),
    }
}

/// Feeds `chunks` (hex) one by one and lists everything the decoder reports.
fn check(chunks: &[&str], expected: &[&str]) {
    let mut decoder = FrameDecoder::new();
    let mut seen = Vec::new();
    for chunk in chunks {
        decoder.push(&hex(chunk));
        loop {
            let decoded = decoder.next_frame();
            let done = decoded == Decoded::NeedMore;
            seen.push(describe(&decoded));
            if done {
                break;
            }
        }
    }
    assert_eq!(seen, expected, "chunks {chunks:?}");
}

const FIND: &str = "AA AA AA 96 69 00 03 20 01 22";
const FOUND: &str = "AA AA AA 96 69 00 08 00 00 9F 00 00 00 00 97";
const NO_CARD: &str = "AA AA AA 96 69 00 04 00 00 80 84";

#[test]
fn requests_are_encoded_like_reader_manuals_print_them() {
    let cases: [((u8, u8), &str); 4] = [
        (codec::FIND_CARD, FIND),
        (codec::SELECT_CARD, "AA AA AA 96 69 00 03 20 02 21"),
        (codec::READ_BASE_INFO, "AA AA AA 96 69 00 03 30 01 32"),
        (codec::SAM_STATUS, "AA AA AA 96 69 00 03 11 FF ED"),
    ];
    for (command, frame) in cases {
        assert_eq!(
            codec::encode_request(command, &[]),
            hex(frame),
            "{command:?}"
        );
    }
    assert_eq!(
        codec::encode_response(codec::STATUS_CARD_FOUND, &[0; 4]),
        hex(FOUND)
    );
    assert_eq!(
        codec::encode_response(codec::STATUS_NO_CARD, &[]),
        hex(NO_CARD)
    );
}

#[test]
fn frames_decode_whole_split_and_back_to_back() {
    check(&[FOUND], &["frame 00 00 9F 00 00 00 00", "need more"]);
    check(
        &["AA AA AA", "96 69 00", "08 00 00 9F 00 00", "00 00 97"],
        &[
            "need more",
            "need more",
            "need more",
            "frame 00 00 9F 00 00 00 00",
            "need more",
        ],
    );
    check(
        &[&format!("{NO_CARD} {FOUND}")],
        &["frame 00 00 80", "frame 00 00 9F 00 00 00 00", "need more"],
    );
}

#[test]
fn bad_frames_are_reported_and_the_stream_resynchronises() {
    // Bad checksum: dropped, the next good frame still comes through.
    check(
        &[&format!("AA AA AA 96 69 00 04 00 00 80 85 {NO_CARD}")],
        &[
            "bad checksum 84/85",
            "garbage 6",
            "frame 00 00 80",
            "need more",
        ],
    );
    // Garbage between frames (line noise, a half answer from before a reset).
    check(
        &[&format!("01 02 FF {NO_CARD} 13 37 AA {FOUND}")],
        &[
            "garbage 3",
            "frame 00 00 80",
            "garbage 3",
            "frame 00 00 9F 00 00 00 00",
            "need more",
        ],
    );
    // Oversized: a length of 65535 is noise, not a reason to wait for 64 KiB.
    check(
        &[&format!("AA AA AA 96 69 FF FF 00 00 {NO_CARD}")],
        &[
            "bad length 65535",
            "garbage 4",
            "frame 00 00 80",
            "need more",
        ],
    );
    // Undersized length.
    check(
        &[&format!("AA AA AA 96 69 00 01 {NO_CARD}")],
        &["bad length 1", "garbage 2", "frame 00 00 80", "need more"],
    );
    // Truncated: the frame never completes; the bytes stay pending (the reader reports it
    // when the line goes quiet).
    check(&["AA AA AA 96 69 00 08 00 00 9F"], &["need more"]);
    // A partial preamble at the end of a chunk is kept, not thrown away as garbage.
    check(
        &["00 AA AA", "AA 96 69 00 04 00 00 80 84"],
        &["garbage 1", "need more", "frame 00 00 80", "need more"],
    );
}

fn sample_text() -> IdCardText {
    IdCardText {
        name: "张伟".into(),
        sex_code: "1".into(),
        ethnicity_code: "01".into(),
        birth_date: "19800101".into(),
        address: "河南省兰考县城关镇中山路1号".into(),
        id_number: "41022519800101123X".into(),
        issuer: "兰考县公安局".into(),
        valid_from: "20160101".into(),
        valid_until: "长期".into(),
    }
}

#[test]
fn the_text_block_decodes_every_field() {
    let block = sample_text().encode();
    assert_eq!(block.len(), 256);
    // UCS-2LE: 张 is U+5F20.
    assert_eq!(&block[..2], &[0x20, 0x5F]);
    let text = IdCardText::decode(&block).unwrap_or_default();
    assert_eq!(text, sample_text());
    assert_eq!((text.sex(), text.ethnicity()), ("男", "汉"));
    // Debug output (which may end up in logs) masks the ID number.
    let debug = format!("{text:?}");
    assert!(
        debug.contains("410225********123X") && !debug.contains("19800101123X"),
        "{debug}"
    );
    let photo: Vec<u8> = (0..1024).map(|i| i as u8).collect();
    let data = codec::encode_base_info(&text, &photo);
    let (back, back_photo) = codec::parse_base_info(&data).unwrap_or_default();
    assert_eq!((back, back_photo), (sample_text(), photo));
    assert!(
        codec::parse_base_info(&data[..600]).is_none(),
        "a short block is refused"
    );
}

/// A reader on a scripted line: each written command pops the next answer (bytes, possibly
/// partial or noisy); `None` is a reader that does not answer.
struct ScriptedLine {
    answers: VecDeque<Option<Vec<u8>>>,
    outgoing: VecDeque<u8>,
    hang_up: bool,
}

impl ScriptedLine {
    fn new(answers: Vec<Option<Vec<u8>>>) -> ScriptedLine {
        ScriptedLine {
            answers: answers.into(),
            outgoing: VecDeque::new(),
            hang_up: false,
        }
    }
}

impl Transport for ScriptedLine {
    fn write_all(&mut self, _bytes: &[u8]) -> io::Result<()> {
        if let Some(Some(answer)) = self.answers.pop_front() {
            self.outgoing.extend(answer);
        }
        Ok(())
    }

    fn read_some(&mut self, buffer: &mut [u8], _timeout: Duration) -> io::Result<usize> {
        if self.outgoing.is_empty() {
            if self.hang_up {
                return Err(io::Error::new(io::ErrorKind::BrokenPipe, "hung up"));
            }
            return Ok(0);
        }
        // Dribble the answer out in small pieces, as a 115200-baud line does.
        let n = buffer.len().min(self.outgoing.len()).min(37);
        for slot in buffer.iter_mut().take(n) {
            *slot = self.outgoing.pop_front().unwrap_or(0);
        }
        Ok(n)
    }

    fn discard_input(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn read_answer() -> Vec<u8> {
    let photo = vec![0x57u8; 1024];
    codec::encode_response(
        codec::STATUS_OK,
        &codec::encode_base_info(&sample_text(), &photo),
    )
}

fn select_ok() -> Vec<u8> {
    codec::encode_response(codec::STATUS_OK, &[0; 8])
}

/// The answers of one scripted session, one per command; `None` is silence.
type Script = Vec<Option<Vec<u8>>>;

fn poll(answers: Script) -> Result<Poll, IdCardError> {
    let mut reader = SerialReader::new(ScriptedLine::new(answers), Duration::from_millis(30));
    reader.poll()
}

fn outcome(result: Result<Poll, IdCardError>) -> String {
    match result {
        Ok(Poll::NoCard) => "no card".into(),
        Ok(Poll::Card(card)) => format!("card {} photo {}", card.text.name, card.photo.len()),
        Ok(Poll::Unreadable(e)) => format!("unreadable: {e}"),
        Err(e) => format!("reader fault: {e}"),
    }
}

#[test]
fn reader_sessions_from_scripted_lines() {
    let found = hex(FOUND);
    let mut noisy_read = hex("00 13 37 FF");
    noisy_read.extend(read_answer());
    let mut bad_read = read_answer();
    if let Some(last) = bad_read.last_mut() {
        *last ^= 1;
    }
    let half_read = read_answer()[..600].to_vec();
    let cases: Vec<(&str, Script, &str)> = vec![
        ("empty reader", vec![Some(hex(NO_CARD))], "no card"),
        (
            "a card",
            vec![Some(found.clone()), Some(select_ok()), Some(read_answer())],
            "card 张伟 photo 1024",
        ),
        (
            "garbage before the read answer",
            vec![Some(found.clone()), Some(select_ok()), Some(noisy_read)],
            "card 张伟 photo 1024",
        ),
        (
            "reader stops answering",
            vec![None],
            "reader fault: reader did not answer within 30ms",
        ),
        (
            "card removed mid-read",
            vec![Some(found.clone()), Some(select_ok()), Some(half_read)],
            "unreadable: answer truncated: 600 bytes then silence",
        ),
        (
            "bad checksum on the read answer",
            vec![Some(found.clone()), Some(select_ok()), Some(bad_read)],
            "unreadable: answer with a bad checksum (expected D6, found D7)",
        ),
        (
            "card gone before select",
            vec![
                Some(found.clone()),
                Some(codec::encode_response(codec::STATUS_SELECT_FAILED, &[])),
            ],
            "unreadable: card step select failed: status 81 (选取证/卡失败)",
        ),
        (
            "read refused by the SAM",
            vec![
                Some(found),
                Some(select_ok()),
                Some(codec::encode_response(codec::STATUS_READ_FAILED, &[])),
            ],
            "unreadable: card step read failed: status 41 (读证/卡操作失败)",
        ),
        (
            "oversized answer then silence",
            vec![Some(hex("AA AA AA 96 69 7F FF 00 00 9F"))],
            "reader fault: frame length 32767 out of range",
        ),
    ];
    for (name, answers, expected) in cases {
        assert_eq!(outcome(poll(answers)), expected, "{name}");
    }
}

#[test]
fn an_unplugged_line_is_a_reader_fault() {
    let mut line = ScriptedLine::new(vec![None]);
    line.hang_up = true;
    let mut reader = SerialReader::new(line, Duration::from_millis(30));
    assert_eq!(outcome(reader.poll()), "reader fault: reader I/O: hung up");
}

#[test]
fn usb_readers_are_found_by_the_profiles_vid_and_pid() {
    use witness_drivers::idcard::usb;
    let profiles_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../hardware/readers");
    let profiles = usb::load_profiles(&profiles_dir).unwrap_or_else(|e| panic!("{e}"));
    assert!(profiles.iter().any(|p| p.transport == "serial"));
    let sysfs = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let device = |name: &str, vid: &str, pid: &str, tty: &str| {
        let dir = sysfs.path().join(name);
        std::fs::create_dir_all(dir.join(format!("{name}:1.0")).join(tty))
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.join("idVendor"), format!("{vid}\n")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.join("idProduct"), format!("{pid}\n")).unwrap_or_else(|e| panic!("{e}"));
    };
    device("1-1", "10C4", "EA60", "ttyUSB0");
    device("1-2", "046d", "c077", "ttyUSB9");
    let found = usb::discover(&profiles, sysfs.path(), std::path::Path::new("/dev"))
        .unwrap_or_else(|e| panic!("{e}"));
    let devices: Vec<String> = found
        .iter()
        .map(|f| f.device.display().to_string())
        .collect();
    assert_eq!(devices, ["/dev/ttyUSB0"], "only the reader, not the mouse");
    device("1-3", "0400", "c35a", "hidraw0");
    let error = usb::discover(&profiles, sysfs.path(), std::path::Path::new("/dev"))
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(error.ends_with("is not supported yet"), "{error}");
}
