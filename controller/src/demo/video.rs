//! Generates short synthetic evaluation-room videos for the demo data set.
//!
//! Every frame is drawn straight into the planes of a YUV 4:2:0 picture (BT.601, limited range):
//! scrolling colour bars over a scrolling grey ramp, a bouncing bright square, a blinking red
//! "recording" lamp, a progress bar and the frame number drawn in blocks. Nothing is static, so a
//! player (or a person) can tell at once that it is really video.
//!
//! The file is written next to its final name and renamed into place only when it is complete,
//! so a reader never sees half a video under the real name.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use ffmpeg::format::Pixel;
use ffmpeg::{codec, color, encoder, format, frame, Dictionary, Packet, Rational};
use ffmpeg_next as ffmpeg;

/// Frames per second of every demo video.
pub const FPS: i32 = 25;
/// Smallest accepted width and height, in pixels.
pub const MIN_SIDE: u32 = 16;
/// Largest accepted width and height, in pixels.
pub const MAX_SIDE: u32 = 4096;
/// Longest accepted video, in seconds.
pub const MAX_SECONDS: u32 = 600;

/// Why a demo video could not be written.
#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    #[error(
        "checking the video size failed: {width}x{height} is not allowed \
         (width and height must be even and between {MIN_SIDE} and {MAX_SIDE})"
    )]
    InvalidSize { width: u32, height: u32 },
    #[error(
        "checking the video length failed: {0} seconds is not allowed \
         (it must be between 1 and {MAX_SECONDS})"
    )]
    InvalidDuration(u32),
    #[error(
        "checking the output path failed: {} must name a file and be valid UTF-8 without NUL bytes",
        .0.display()
    )]
    InvalidPath(PathBuf),
    /// A file-system step failed.
    #[error("{step} failed: {cause}")]
    Io {
        step: &'static str,
        cause: std::io::Error,
    },
    /// An FFmpeg call failed.
    #[error("{step} failed: {cause}")]
    Ffmpeg {
        step: &'static str,
        cause: ffmpeg::Error,
    },
}

fn ff(step: &'static str) -> impl FnOnce(ffmpeg::Error) -> VideoError {
    move |cause| VideoError::Ffmpeg { step, cause }
}

fn io(step: &'static str) -> impl FnOnce(std::io::Error) -> VideoError {
    move |cause| VideoError::Io { step, cause }
}

/// Initialises FFmpeg once per process and keeps its log quiet (errors only).
fn init() -> Result<(), VideoError> {
    static INIT: OnceLock<Result<(), ffmpeg::Error>> = OnceLock::new();
    let result = *INIT.get_or_init(|| {
        let result = ffmpeg::init();
        ffmpeg::log::set_level(ffmpeg::log::Level::Error);
        result
    });
    result.map_err(ff("initialising FFmpeg"))
}

/// Writes an MP4 (H.264 if the `libx264` encoder is available, otherwise MPEG-4 Part 2 `mpeg4`)
/// of `seconds` seconds at `width`x`height`, 25 fps, showing a moving test pattern that changes
/// every frame (so it is obviously video), with the moov atom at the front (movflags=faststart)
/// so a browser can start playing before the whole file arrives.
///
/// `width` and `height` must be even and in `16..=4096`, `seconds` in `1..=600`. An existing
/// file at `path` is replaced only once the new one is complete.
pub fn write_demo_video(
    path: &Path,
    seconds: u32,
    width: u32,
    height: u32,
) -> Result<(), VideoError> {
    let side_ok = |s: u32| (MIN_SIDE..=MAX_SIDE).contains(&s) && s.is_multiple_of(2);
    if !side_ok(width) || !side_ok(height) {
        return Err(VideoError::InvalidSize { width, height });
    }
    if seconds == 0 || seconds > MAX_SECONDS {
        return Err(VideoError::InvalidDuration(seconds));
    }
    // ffmpeg-next turns paths into C strings with `unwrap()`: reject what would make it panic.
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|_| path.to_str().is_some_and(|p| !p.contains('\0')))
        .ok_or_else(|| VideoError::InvalidPath(path.to_path_buf()))?;
    init()?;

    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let partial = path.with_file_name(format!(
        ".{file_name}.{}-{}.partial",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    // Creating the file first gives a plain I/O error for a missing directory or a read-only
    // one (ffmpeg-next leaks its muxer context when avio_open fails).
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&partial)
        .map_err(io("creating the output file"))?;

    let frames = seconds * FPS as u32;
    let result = encode(&partial, frames, width, height, &ENCODERS).and_then(|()| {
        std::fs::rename(&partial, path).map_err(io("moving the finished video into place"))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

/// The encoders tried, best first: H.264 plays in every browser; MPEG-4 Part 2 is built into
/// every FFmpeg.
const ENCODERS: [&str; 2] = ["libx264", "mpeg4"];

/// Encodes `frames` frames into the MP4 file at `path`, which must be UTF-8 (checked by the
/// caller), with the first of `encoders` that opens.
fn encode(
    path: &Path,
    frames: u32,
    width: u32,
    height: u32,
    encoders: &[&str],
) -> Result<(), VideoError> {
    let path = path
        .to_str()
        .ok_or_else(|| VideoError::InvalidPath(path.to_path_buf()))?;
    // The "file:" prefix keeps FFmpeg from reading a protocol into names such as "a:b.mp4".
    let url = format!("file:{path}");
    let mut octx = format::output_as(&url, "mp4").map_err(ff("opening the MP4 muxer"))?;
    let global_header = octx.format().flags().contains(format::Flags::GLOBAL_HEADER);

    let mut last = ffmpeg::Error::EncoderNotFound;
    let mut opened = None;
    for name in encoders {
        match open_encoder(name, width, height, global_header) {
            Ok(enc) => {
                opened = Some(enc);
                break;
            }
            Err(e) => last = e,
        }
    }
    let mut enc = opened.ok_or(VideoError::Ffmpeg {
        step: "opening a video encoder (libx264 or mpeg4)",
        cause: last,
    })?;
    let enc_time_base = enc.time_base();

    let stream_index = {
        let mut stream = octx
            .add_stream(enc.codec())
            .map_err(ff("adding the video stream"))?;
        stream.set_parameters(&enc);
        stream.set_time_base(enc_time_base);
        stream.set_avg_frame_rate(Rational(FPS, 1));
        stream.set_rate(Rational(FPS, 1));
        stream.index()
    };

    let mut options = Dictionary::new();
    options.set("movflags", "+faststart");
    let ignored = octx
        .write_header_with(options)
        .map_err(ff("writing the MP4 header"))?;
    if ignored.get("movflags").is_some() {
        return Err(VideoError::Ffmpeg {
            step: "setting movflags=+faststart on the MP4 muxer",
            cause: ffmpeg::Error::OptionNotFound,
        });
    }
    drop(ignored);
    // The muxer picks its own time base while writing the header.
    let stream_time_base =
        octx.stream(stream_index)
            .map(|s| s.time_base())
            .ok_or(VideoError::Ffmpeg {
                step: "reading back the video stream",
                cause: ffmpeg::Error::StreamNotFound,
            })?;

    let mut sink = Sink {
        octx: &mut octx,
        stream_index,
        enc_time_base,
        stream_time_base,
    };
    let mut pattern = Pattern::new(width, height, frames);
    for index in 0..frames {
        // A new picture each time: the encoder may still hold a reference to the previous one.
        let mut picture = frame::Video::new(Pixel::YUV420P, width, height);
        if picture.planes() != 3 {
            return Err(VideoError::Ffmpeg {
                step: "allocating a picture",
                cause: ffmpeg::Error::Other {
                    errno: ffmpeg::error::ENOMEM,
                },
            });
        }
        pattern.draw(&mut picture, index);
        picture.set_pts(Some(i64::from(index)));
        enc.send_frame(&picture)
            .map_err(ff("sending a picture to the encoder"))?;
        sink.drain(&mut enc)?;
    }
    enc.send_eof().map_err(ff("flushing the encoder"))?;
    sink.drain(&mut enc)?;

    // With faststart this also moves the moov atom in front of the media data.
    octx.write_trailer().map_err(ff("writing the MP4 trailer"))
}

fn open_encoder(
    name: &str,
    width: u32,
    height: u32,
    global_header: bool,
) -> Result<encoder::video::Encoder, ffmpeg::Error> {
    let codec = encoder::find_by_name(name).ok_or(ffmpeg::Error::EncoderNotFound)?;
    let mut enc = codec::context::Context::new_with_codec(codec)
        .encoder()
        .video()?;
    enc.set_width(width);
    enc.set_height(height);
    enc.set_format(Pixel::YUV420P);
    enc.set_time_base(Rational(1, FPS));
    enc.set_frame_rate(Some(Rational(FPS, 1)));
    // A key frame every second, so a browser can seek anywhere quickly.
    enc.set_gop(FPS as u32);
    enc.set_colorspace(color::Space::SMPTE170M);
    enc.set_color_range(color::Range::MPEG);
    enc.set_color_primaries(color::Primaries::SMPTE170M);
    enc.set_color_transfer_characteristic(color::TransferCharacteristic::SMPTE170M);
    if global_header {
        enc.set_flags(codec::Flags::GLOBAL_HEADER);
    }
    let mut options = Dictionary::new();
    if name == "libx264" {
        options.set("preset", "veryfast");
        options.set("crf", "23");
    } else {
        enc.set_max_b_frames(0);
        // About 0.15 bit a pixel: clean enough for bars and blocks.
        let bits = u64::from(width) * u64::from(height) * FPS as u64 * 3 / 20;
        enc.set_bit_rate(usize::try_from(bits.max(200_000)).unwrap_or(usize::MAX));
    }
    enc.open_as_with(codec, options)
}

/// Where encoded packets go: the one video stream of the muxer.
struct Sink<'a> {
    octx: &'a mut format::context::Output,
    stream_index: usize,
    enc_time_base: Rational,
    stream_time_base: Rational,
}

impl Sink<'_> {
    /// Moves every packet the encoder has ready into the muxer.
    fn drain(&mut self, enc: &mut encoder::video::Encoder) -> Result<(), VideoError> {
        let mut packet = Packet::empty();
        loop {
            match enc.receive_packet(&mut packet) {
                Ok(()) => {
                    packet.set_stream(self.stream_index);
                    packet.rescale_ts(self.enc_time_base, self.stream_time_base);
                    packet
                        .write_interleaved(self.octx)
                        .map_err(ff("writing a packet to the MP4 file"))?;
                }
                Err(ffmpeg::Error::Other {
                    errno: ffmpeg::error::EAGAIN,
                })
                | Err(ffmpeg::Error::Eof) => return Ok(()),
                Err(cause) => {
                    return Err(VideoError::Ffmpeg {
                        step: "receiving a packet from the encoder",
                        cause,
                    })
                }
            }
        }
    }
}

/// A colour as (Y, Cb, Cr), BT.601 limited range.
type Yuv = (u8, u8, u8);

const WHITE: Yuv = (235, 128, 128);
const BLACK: Yuv = (16, 128, 128);
const RED: Yuv = (81, 90, 240);
const GREEN: Yuv = (145, 54, 34);
const DARK_GREY: Yuv = (40, 128, 128);
/// The eight classic colour bars: white, yellow, cyan, green, magenta, red, blue, black.
const BARS: [Yuv; 8] = [
    WHITE,
    (210, 16, 146),
    (170, 166, 16),
    GREEN,
    (106, 202, 222),
    RED,
    (41, 240, 110),
    BLACK,
];

/// Digits 0-9 in a 3x5 block font, one bit a block, top row first, leftmost block highest.
const DIGITS: [u16; 10] = [
    0b111_101_101_101_111,
    0b010_110_010_010_111,
    0b111_001_111_100_111,
    0b111_001_111_001_111,
    0b101_101_111_001_001,
    0b111_100_111_001_111,
    0b111_100_111_101_111,
    0b111_001_001_001_001,
    0b111_101_111_101_111,
    0b111_101_111_001_111,
];
/// How many digits the frame counter shows (600 s x 25 fps fits in five).
const COUNTER_DIGITS: usize = 5;

/// Draws the test pattern. Rows are built once per frame and copied, so even an unoptimised
/// build spends little time per pixel.
struct Pattern {
    width: usize,
    height: usize,
    frames: u32,
    /// Size of one block of the frame-counter font, in pixels (even).
    block: usize,
    row_y: Vec<u8>,
    row_u: Vec<u8>,
    row_v: Vec<u8>,
}

impl Pattern {
    fn new(width: u32, height: u32, frames: u32) -> Self {
        let (width, height) = (width as usize, height as usize);
        Pattern {
            width,
            height,
            frames,
            block: (height / 120).max(1) * 2,
            row_y: vec![0; width],
            row_u: vec![0; width / 2],
            row_v: vec![0; width / 2],
        }
    }

    fn draw(&mut self, picture: &mut frame::Video, index: u32) {
        let (w, h) = (self.width, self.height);
        let t = index as usize;
        // Top two thirds: colour bars scrolling left by 4 pixels a frame.
        let bars_bottom = (h * 2 / 3) & !1;
        for cx in 0..w / 2 {
            let x = (2 * cx + 4 * t) % w;
            let (y, u, v) = BARS[x * BARS.len() / w];
            self.row_y[2 * cx] = y;
            self.row_y[2 * cx + 1] = y;
            self.row_u[cx] = u;
            self.row_v[cx] = v;
        }
        self.copy_rows(picture, 0, bars_bottom);
        // Bottom third: a grey ramp scrolling right by 3 pixels a frame.
        for (x, luma) in self.row_y.iter_mut().enumerate() {
            let phase = (x + w * 4 - (3 * t) % (w * 4)) % w;
            *luma = (16 + phase * 219 / w) as u8;
        }
        self.row_u.fill(128);
        self.row_v.fill(128);
        self.copy_rows(picture, bars_bottom, h);

        // A bright square bouncing off the edges.
        let side = (h / 5).max(2) & !1;
        let x = bounce(7 * t, w - side);
        let y = bounce(5 * t, h - side);
        fill_rect(picture, x, y, side, side, BLACK);
        fill_rect(
            picture,
            x + 2,
            y + 2,
            side.saturating_sub(4),
            side.saturating_sub(4),
            WHITE,
        );

        // The frame number in blocks, top left, on a dark plate.
        let b = self.block;
        let digit_w = 4 * b;
        fill_rect(
            picture,
            0,
            0,
            COUNTER_DIGITS * digit_w + 2 * b,
            7 * b,
            DARK_GREY,
        );
        let mut rest = index as usize;
        for slot in (0..COUNTER_DIGITS).rev() {
            let glyph = DIGITS[rest % 10];
            rest /= 10;
            for bit in 0..15 {
                if glyph & (1 << (14 - bit)) != 0 {
                    let bx = 2 * b + slot * digit_w + (bit % 3) * b;
                    let by = b + (bit / 3) * b;
                    fill_rect(picture, bx, by, b, b, WHITE);
                }
            }
        }

        // A red "recording" lamp, top right, lit for the first half of every second.
        let fps = FPS as usize;
        if t % fps < fps / 2 {
            let lamp = 3 * b;
            fill_rect(picture, w.saturating_sub(lamp + b), b, lamp, lamp, RED);
        }

        // Progress through the video along the bottom edge.
        let done = w * (t + 1) / self.frames.max(1) as usize;
        fill_rect(picture, 0, h - b, done, b, GREEN);
    }

    /// Copies the prepared rows into picture rows `top..bottom` (both even).
    fn copy_rows(&self, picture: &mut frame::Video, top: usize, bottom: usize) {
        let w = self.width;
        let stride = picture.stride(0);
        for row in picture
            .data_mut(0)
            .chunks_mut(stride)
            .take(bottom)
            .skip(top)
        {
            row[..w].copy_from_slice(&self.row_y);
        }
        for (plane, src) in [(1, &self.row_u), (2, &self.row_v)] {
            let stride = picture.stride(plane);
            for row in picture
                .data_mut(plane)
                .chunks_mut(stride)
                .take(bottom / 2)
                .skip(top / 2)
            {
                row[..w / 2].copy_from_slice(src);
            }
        }
    }
}

/// Position `step` pixels along a path bouncing between 0 and `span`.
fn bounce(step: usize, span: usize) -> usize {
    if span == 0 {
        return 0;
    }
    let pos = step % (2 * span);
    if pos <= span {
        pos
    } else {
        2 * span - pos
    }
}

/// Fills a rectangle, clipped to the picture. Chroma covers every 2x2 block the rectangle
/// touches, so rectangles at even positions and sizes come out exact.
fn fill_rect(picture: &mut frame::Video, x: usize, y: usize, w: usize, h: usize, colour: Yuv) {
    let (pw, ph) = (picture.width() as usize, picture.height() as usize);
    let (x1, y1) = ((x + w).min(pw), (y + h).min(ph));
    if x >= x1 || y >= y1 {
        return;
    }
    let stride = picture.stride(0);
    for row in picture.data_mut(0).chunks_mut(stride).take(y1).skip(y) {
        row[x..x1].fill(colour.0);
    }
    let (cx0, cy0, cx1, cy1) = (x / 2, y / 2, x1.div_ceil(2), y1.div_ceil(2));
    for (plane, value) in [(1, colour.1), (2, colour.2)] {
        let stride = picture.stride(plane);
        for row in picture
            .data_mut(plane)
            .chunks_mut(stride)
            .take(cy1)
            .skip(cy0)
        {
            row[cx0..cx1].fill(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;
    use std::time::Instant;

    /// Generates the 3-second 320x240 video every check below looks at.
    fn three_seconds(dir: &Path) -> PathBuf {
        let path = dir.join("room.mp4");
        let started = Instant::now();
        write_demo_video(&path, 3, 320, 240).expect("demo video");
        let took = started.elapsed();
        eprintln!("3 s of 320x240 video generated in {took:?}");
        // Well under a second here; the bound leaves room for a busy CI machine.
        assert!(took.as_secs_f64() < 5.0, "generating took {took:?}");
        path
    }

    /// Names of the top-level MP4 boxes, in file order.
    fn top_level_boxes(bytes: &[u8]) -> Vec<String> {
        let mut boxes = Vec::new();
        let mut at = 0usize;
        while at + 8 <= bytes.len() {
            let size32 = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
            let kind = String::from_utf8_lossy(&bytes[at + 4..at + 8]).into_owned();
            let size = match size32 {
                0 => bytes.len() - at,
                1 => usize::try_from(u64::from_be_bytes(
                    bytes[at + 8..at + 16].try_into().unwrap(),
                ))
                .unwrap(),
                n => n as usize,
            };
            assert!(size >= 8, "box {kind} at {at} has size {size}");
            boxes.push(kind);
            at += size;
        }
        assert_eq!(at, bytes.len(), "boxes do not add up to the file length");
        boxes
    }

    /// Demuxes and decodes a 3-second 320x240 video, checks it through and returns its codec.
    fn check_three_second_video(path: &Path) -> codec::Id {
        let mut input = format::input(&path).expect("open for demuxing");
        assert_eq!(input.streams().count(), 1);
        let duration = input.duration() as f64 / f64::from(ffmpeg::ffi::AV_TIME_BASE);
        assert!((2.9..=3.1).contains(&duration), "duration {duration}");
        let stream = input
            .streams()
            .best(ffmpeg::media::Type::Video)
            .expect("video stream");
        let index = stream.index();
        let codec_id = stream.parameters().id();
        assert!(
            matches!(codec_id, codec::Id::H264 | codec::Id::MPEG4),
            "codec {codec_id:?}"
        );
        let mut decoder = codec::context::Context::from_parameters(stream.parameters())
            .unwrap()
            .decoder()
            .video()
            .unwrap();
        assert_eq!((decoder.width(), decoder.height()), (320, 240));

        let mut decoded = frame::Video::empty();
        let mut count = 0;
        let mut previous: Option<Vec<u8>> = None;
        let mut receive = |decoder: &mut ffmpeg::decoder::Video| {
            while decoder.receive_frame(&mut decoded).is_ok() {
                assert_eq!((decoded.width(), decoded.height()), (320, 240));
                let luma = decoded.data(0).to_vec();
                if let Some(previous) = &previous {
                    assert_ne!(previous, &luma, "frame {count} repeats the one before");
                }
                previous = Some(luma);
                count += 1;
            }
        };
        for (stream, packet) in input.packets() {
            if stream.index() == index {
                decoder.send_packet(&packet).unwrap();
                receive(&mut decoder);
            }
        }
        decoder.send_eof().unwrap();
        receive(&mut decoder);
        assert_eq!(count, 75);

        let bytes = std::fs::read(path).unwrap();
        let boxes = top_level_boxes(&bytes);
        let moov = boxes.iter().position(|b| b == "moov").expect("moov box");
        let mdat = boxes.iter().position(|b| b == "mdat").expect("mdat box");
        assert!(moov < mdat, "boxes in order {boxes:?}");
        codec_id
    }

    #[test]
    fn writes_a_playable_three_second_video() {
        let dir = tempfile::tempdir().unwrap();
        let path = three_seconds(dir.path());
        let codec_id = check_three_second_video(&path);
        let libx264 = encoder::find_by_name("libx264").is_some();
        eprintln!("libx264 available: {libx264}; codec written: {codec_id:?}");
        if libx264 {
            assert_eq!(codec_id, codec::Id::H264);
        }

        // No partial file is left beside the finished one.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["room.mp4"]);
    }

    #[test]
    fn falls_back_to_mpeg4() {
        init().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("room.mp4");
        let started = Instant::now();
        encode(&path, 75, 320, 240, &["no-such-encoder", "mpeg4"]).unwrap();
        eprintln!(
            "3 s of 320x240 MPEG-4 Part 2 generated in {:?}",
            started.elapsed()
        );
        assert_eq!(check_three_second_video(&path), codec::Id::MPEG4);

        let err = encode(&path, 75, 320, 240, &["no-such-encoder"]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("opening a video encoder (libx264 or mpeg4) failed"),
            "{err}"
        );
    }

    #[test]
    fn a_failed_rename_leaves_no_partial_file() {
        let dir = tempfile::tempdir().unwrap();
        // A directory already stands where the video should go.
        let path = dir.path().join("room.mp4");
        std::fs::create_dir(&path).unwrap();
        let err = write_demo_video(&path, 1, 64, 48).unwrap_err();
        assert!(matches!(err, VideoError::Io { .. }), "{err:?}");
        assert!(
            err.to_string()
                .starts_with("moving the finished video into place failed"),
            "{err}"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["room.mp4"]);
    }

    #[test]
    fn ffprobe_accepts_the_video() {
        let dir = tempfile::tempdir().unwrap();
        let path = three_seconds(dir.path());
        let output = match Command::new("ffprobe")
            .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
            .args([
                "-show_entries",
                "stream=codec_name,width,height,pix_fmt,nb_read_frames",
            ])
            .args(["-of", "default=noprint_wrappers=1"])
            .arg(&path)
            .output()
        {
            Ok(output) => output,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                eprintln!("ffprobe is not installed; skipping the command-line check");
                return;
            }
            Err(e) => panic!("running ffprobe: {e}"),
        };
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "ffprobe failed: {stderr}");
        assert!(stderr.trim().is_empty(), "ffprobe complained: {stderr}");
        let field = |name: &str| {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
                .unwrap_or_else(|| panic!("no {name} in {stdout}"))
                .to_string()
        };
        eprintln!("ffprobe: {}", stdout.replace('\n', " "));
        assert!(["h264", "mpeg4"].contains(&field("codec_name").as_str()));
        assert_eq!(field("width"), "320");
        assert_eq!(field("height"), "240");
        assert_eq!(field("pix_fmt"), "yuv420p");
        assert_eq!(field("nb_read_frames"), "75");
    }

    #[test]
    fn missing_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir
            .path()
            .join("no")
            .join("such")
            .join("dir")
            .join("room.mp4");
        let err = write_demo_video(&path, 1, 320, 240).unwrap_err();
        assert!(matches!(err, VideoError::Io { .. }), "{err:?}");
        let message = err.to_string();
        assert!(
            message.starts_with("creating the output file failed"),
            "{message}"
        );
        assert!(!message.ends_with('.'), "{message}");
    }

    #[test]
    fn bad_arguments_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("room.mp4");
        for (w, h) in [(321, 240), (320, 0), (8, 8), (8192, 240)] {
            let err = write_demo_video(&path, 1, w, h).unwrap_err();
            assert!(
                matches!(err, VideoError::InvalidSize { .. }),
                "{w}x{h}: {err:?}"
            );
        }
        for seconds in [0, MAX_SECONDS + 1] {
            let err = write_demo_video(&path, seconds, 320, 240).unwrap_err();
            assert!(matches!(err, VideoError::InvalidDuration(_)), "{err:?}");
        }
        let err = write_demo_video(Path::new("/"), 1, 320, 240).unwrap_err();
        assert!(matches!(err, VideoError::InvalidPath(_)), "{err:?}");
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let odd = dir
                .path()
                .join(std::ffi::OsStr::from_bytes(b"room-\xff.mp4"));
            let err = write_demo_video(&odd, 1, 320, 240).unwrap_err();
            assert!(matches!(err, VideoError::InvalidPath(_)), "{err:?}");
        }
        assert!(!path.exists());
    }

    #[test]
    fn odd_names_and_small_sizes_work_and_replace_old_files() {
        let dir = tempfile::tempdir().unwrap();
        // A colon would otherwise make FFmpeg look for a protocol called "evaluation".
        let path = dir.path().join("evaluation:room 1.mp4");
        std::fs::write(&path, b"old").unwrap();
        write_demo_video(&path, 1, 16, 16).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes.len() > 100);
        assert!(top_level_boxes(&bytes).contains(&"moov".to_string()));
        let input = format::input(&path).unwrap();
        let params = input.streams().next().unwrap().parameters();
        let decoder = codec::context::Context::from_parameters(params)
            .unwrap()
            .decoder()
            .video()
            .unwrap();
        assert_eq!((decoder.width(), decoder.height()), (16, 16));
    }

    #[test]
    fn messages_name_the_step_without_a_trailing_period() {
        let errors = [
            VideoError::InvalidSize {
                width: 3,
                height: 3,
            },
            VideoError::InvalidDuration(0),
            VideoError::InvalidPath(PathBuf::from("/")),
            VideoError::Ffmpeg {
                step: "writing the MP4 header",
                cause: ffmpeg::Error::InvalidData,
            },
        ];
        for err in errors {
            let message = err.to_string();
            assert!(message.contains("failed"), "{message}");
            assert!(!message.ends_with('.'), "{message}");
        }
    }
}
