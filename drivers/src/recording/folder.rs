//! A folder of recording files dropped by other systems (an NVR's scheduled export, a recorder
//! writing segments, a copy from a USB stick), read as a `RecordingSource`.
//!
//! Layout: one subfolder per channel under the root, named by the channel number (`1`, `01`,
//! `001`, or with a `ch` prefix: `ch01`), holding the channel's files:
//!
//! ```text
//! <root>/01/ch01_20261120080000_20261120081000.mp4   Hikvision "download by time" style: start and end
//! <root>/01/20261120081000.mp4                       ffmpeg -f segment -strftime 1 %Y%m%d%H%M%S.mp4: start only
//! <root>/01/2026-11-20_08-20-00-000000.mp4           MediaMTX's default record path: start only
//! <root>/01/camera.mp4                               no time in the name: the MP4's creation_time
//! ```
//!
//! A file's start (and end, when the name has two times) comes from the last one or two times
//! in its name: `YYYYMMDDHHMMSS` (also `YYYYMMDDTHHMMSS`) or `YYYY-MM-DD_HH-MM-SS[-ffffff]`.
//! A time followed by `Z` is UTC; others are in the folder's `names_offset` (the systems above
//! write local time, UTC+8 in China). With only a start, the end is the start plus the
//! container's duration (such files are taken to be shorter than a day: older ones are not
//! opened); with no time in the name, the container's `creation_time` (UTC) is the
//! start. A video file whose time cannot be determined is refused with an error naming it: a
//! file that might belong to the window is never silently left out.
//!
//! Half-written files are skipped until they are stable: names ending `.part`, `.tmp`,
//! `.partial`, `.download` or `.crdownload`, hidden files, and files modified less than
//! `stable_after` ago (a recorder still appending). Where they would have covered the window,
//! the pull reports a gap.
//!
//! A pull stream-copies the window out of the overlapping files into one faststart MP4
//! (`remux::copy_placed`, nothing re-encoded): it starts at the last key frame at or before the
//! window start (so the first frame may lie up to one key-frame interval before it), places
//! every packet at its file's start plus its timestamp, keeps the time between files as gaps in
//! the timeline, and measures first and last frame and gaps from those packet times.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use ffmpeg::{format, media, Packet, Rational};
use ffmpeg_next as ffmpeg;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use super::remux;
use super::{
    check_window, uncovered, PullProgress, PullReport, PullRequest, RecordedSegment,
    RecordingError, RecordingSource, TimeWindow, Transport,
};

/// Name endings of files another system is still writing.
const HALF_WRITTEN_SUFFIXES: [&str; 5] = [".part", ".tmp", ".partial", ".download", ".crdownload"];
/// Extensions of the video files a folder may hold; other files (pictures, notes) are ignored.
const VIDEO_EXTENSIONS: [&str; 12] = [
    "mp4", "m4v", "mov", "mkv", "ts", "m2ts", "mts", "mpg", "mpeg", "ps", "avi", "flv",
];

/// Files are taken to be shorter than this: a file named only by a start this long before the
/// window is not opened to read its duration (a folder may hold years of segments).
const LONGEST_FILE: time::Duration = time::Duration::hours(24);

/// A folder of recordings, one subfolder per channel.
#[derive(Debug, Clone)]
pub struct FolderSource {
    root: PathBuf,
    names_offset: UtcOffset,
    stable_after: Duration,
}

/// One file of a channel and the span its name (or container) says it covers.
#[derive(Debug, Clone)]
struct FoundFile {
    path: PathBuf,
    span: TimeWindow,
}

impl FolderSource {
    /// A folder whose names without `Z` are UTC and whose files count as stable 30 s after
    /// their last change.
    pub fn new(root: &Path) -> FolderSource {
        FolderSource {
            root: root.to_path_buf(),
            names_offset: UtcOffset::UTC,
            stable_after: Duration::from_secs(30),
        }
    }

    /// Times in names without `Z` are local time at `offset` (China: +08:00).
    pub fn with_names_offset(mut self, offset: UtcOffset) -> FolderSource {
        self.names_offset = offset;
        self
    }

    /// A file modified less than this long ago is still being written.
    pub fn with_stable_after(mut self, stable_after: Duration) -> FolderSource {
        self.stable_after = stable_after;
        self
    }

    /// The channel's subfolders (`1`, `01`, `ch01`…).
    fn channel_dirs(&self, channel: u32) -> Result<Vec<PathBuf>, RecordingError> {
        let entries = std::fs::read_dir(&self.root).map_err(|e| RecordingError::Unreachable {
            address: self.root.display().to_string(),
            reason: format!("文件夹无法读取 (the folder cannot be read): {e}"),
        })?;
        let mut dirs = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let digits = name
                .strip_prefix("ch")
                .or_else(|| name.strip_prefix("CH"))
                .unwrap_or(name);
            let is_channel = !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit())
                && digits.parse::<u32>().ok() == Some(channel);
            if is_channel && entry.path().is_dir() {
                dirs.push(entry.path());
            }
        }
        dirs.sort();
        Ok(dirs)
    }

    /// The channel's stable video files overlapping `window`, in time order.
    fn files(&self, channel: u32, window: TimeWindow) -> Result<Vec<FoundFile>, RecordingError> {
        if channel == 0 || channel > 999 {
            return Err(RecordingError::InvalidWindow(format!(
                "通道号 {channel} 无效 (channel must be 1–999)"
            )));
        }
        // File times are the file system's, so they are compared with the system clock.
        let now = SystemTime::now();
        let mut found = Vec::new();
        for dir in self.channel_dirs(channel)? {
            let entries = std::fs::read_dir(&dir).map_err(|cause| RecordingError::Io {
                step: "listing a channel folder",
                cause,
            })?;
            for entry in entries.flatten() {
                let path = entry.path();
                let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                    continue;
                };
                // Followed through symbolic links: a file may be linked into the folder.
                let metadata = match std::fs::metadata(&path) {
                    Ok(m) if m.is_file() => m,
                    _ => continue,
                };
                if self.half_written(name, &metadata, now) {
                    tracing::info!(file = %path.display(), "skipping a file still being written");
                    continue;
                }
                let extension = path
                    .extension()
                    .and_then(|e| e.to_str())
                    .unwrap_or("")
                    .to_ascii_lowercase();
                if !VIDEO_EXTENSIONS.contains(&extension.as_str()) {
                    continue;
                }
                if let Some(span) = self.file_span(&path, window)? {
                    if span.overlaps(&window) {
                        found.push(FoundFile { path, span });
                    }
                }
            }
        }
        found.sort_by(|a, b| (a.span.start, &a.path).cmp(&(b.span.start, &b.path)));
        Ok(found)
    }

    fn half_written(&self, name: &str, metadata: &std::fs::Metadata, now: SystemTime) -> bool {
        let lower = name.to_ascii_lowercase();
        if name.starts_with('.') || HALF_WRITTEN_SUFFIXES.iter().any(|s| lower.ends_with(s)) {
            return true;
        }
        match metadata.modified() {
            // A time in the future (a clock set wrong) is not proof of stability either.
            Ok(modified) => now
                .duration_since(modified)
                .map_or(true, |age| age < self.stable_after),
            Err(_) => false,
        }
    }

    /// The span of one file from its name, or from its container when the name has no end.
    /// `None` when its start from the name lies after the window, or more than
    /// [`LONGEST_FILE`] before it (not worth opening).
    fn file_span(
        &self,
        path: &Path,
        window: TimeWindow,
    ) -> Result<Option<TimeWindow>, RecordingError> {
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let times: Vec<OffsetDateTime> = name_times(stem)
            .into_iter()
            .map(|(wall, utc)| {
                if utc {
                    wall.assume_utc()
                } else {
                    wall.assume_offset(self.names_offset)
                }
            })
            .collect();
        let undetermined = |why: String| {
            RecordingError::BadReply(format!(
                "无法确定文件的录制时间 (cannot tell when the file was recorded) {}: {why}",
                path.display()
            ))
        };
        match times.as_slice() {
            [.., start, end] => {
                if end <= start {
                    return Err(undetermined(
                        "文件名中的结束时间不晚于开始时间 (the end in the name is not after the start)"
                            .into(),
                    ));
                }
                Ok(Some(TimeWindow {
                    start: *start,
                    end: *end,
                }))
            }
            [start] => {
                if *start >= window.end || *start + LONGEST_FILE <= window.start {
                    return Ok(None);
                }
                let (_, duration) = container_times(path).map_err(undetermined)?;
                let duration = duration.ok_or_else(|| {
                    undetermined("容器没有时长 (the container states no duration)".into())
                })?;
                Ok(Some(TimeWindow {
                    start: *start,
                    end: *start + duration,
                }))
            }
            [] => {
                let (created, duration) = container_times(path).map_err(undetermined)?;
                let start = created.ok_or_else(|| {
                    undetermined(
                        "文件名中没有时间，容器也没有 creation_time (no time in the name such as \
                         20261120080000, and no creation_time in the container)"
                            .into(),
                    )
                })?;
                let duration = duration.ok_or_else(|| {
                    undetermined("容器没有时长 (the container states no duration)".into())
                })?;
                Ok(Some(TimeWindow {
                    start,
                    end: start + duration,
                }))
            }
        }
    }

    /// Copies the window out of `files` into `partial`.
    fn copy(
        &self,
        files: &[FoundFile],
        request: &PullRequest<'_>,
        partial: &Path,
        progress: &mut dyn FnMut(PullProgress),
    ) -> Result<PullReport, RecordingError> {
        remux::init()?;
        let first = FileStream::open(&files[0], request.window)?;
        let parameters = first.parameters.clone();
        let time_base = first.time_base;
        let mut packets = FilePackets {
            files,
            next_file: 1,
            current: Some(first),
            window: request.window,
            time_base,
            shape: StreamShape::of(&parameters),
            before_window: Vec::new(),
            started: false,
            ready: VecDeque::new(),
            dropped: 0,
        };
        let received = remux::copy_placed(
            parameters,
            time_base,
            &mut packets,
            request.window,
            partial,
            progress,
        )?;
        let window = request.window;
        Ok(PullReport {
            first_frame: received.first_frame,
            last_frame: received.last_frame,
            gaps: uncovered(window, &received.covered),
            recorded: files
                .iter()
                .map(|f| TimeWindow {
                    start: f.span.start.max(window.start),
                    end: f.span.end.min(window.end),
                })
                .collect(),
            frames: received.frames,
            bytes: received.bytes,
            codec: received.codec,
            dropped_packets: received.dropped_packets + packets.dropped,
            uri_refreshes: 0,
            transport: Transport::Folder,
        })
    }
}

/// The times in a file name, in order, each with whether it was marked `Z` (UTC).
fn name_times(stem: &str) -> Vec<(PrimitiveDateTime, bool)> {
    let bytes = stem.as_bytes();
    let mut times = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let starts_run = bytes[i].is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_digit());
        if starts_run {
            if let Some((time, utc, length)) =
                compact_time(&bytes[i..]).or_else(|| dashed_time(&bytes[i..]))
            {
                times.push((time, utc));
                i += length;
                continue;
            }
        }
        i += 1;
    }
    times
}

/// `n` ASCII digits at the start of `bytes` as a number.
fn digits(bytes: &[u8], n: usize) -> Option<u32> {
    let part = bytes.get(..n)?;
    part.iter().all(u8::is_ascii_digit).then(|| {
        part.iter()
            .fold(0u32, |value, b| value * 10 + u32::from(b - b'0'))
    })
}

fn wall_time(fields: [u32; 6]) -> Option<PrimitiveDateTime> {
    let [year, month, day, hour, minute, second] = fields;
    let month = time::Month::try_from(u8::try_from(month).ok()?).ok()?;
    let date = time::Date::from_calendar_date(i32::try_from(year).ok()?, month, day as u8).ok()?;
    let clock = time::Time::from_hms(hour as u8, minute as u8, second as u8).ok()?;
    Some(PrimitiveDateTime::new(date, clock))
}

/// A time marked Z ends there; anything but a further digit may follow an unmarked one.
fn marked_utc(bytes: &[u8], at: usize) -> Option<(bool, usize)> {
    match bytes.get(at) {
        Some(b'Z') => Some((true, at + 1)),
        Some(b) if b.is_ascii_digit() => None,
        _ => Some((false, at)),
    }
}

/// `YYYYMMDDHHMMSS` or `YYYYMMDDTHHMMSS`, optionally followed by `Z`.
fn compact_time(bytes: &[u8]) -> Option<(PrimitiveDateTime, bool, usize)> {
    let date = digits(bytes, 8)?;
    let rest = if bytes.get(8) == Some(&b'T') { 9 } else { 8 };
    let clock = digits(&bytes[rest..], 6)?;
    let (utc, length) = marked_utc(bytes, rest + 6)?;
    let time = wall_time([
        date / 10_000,
        date / 100 % 100,
        date % 100,
        clock / 10_000,
        clock / 100 % 100,
        clock % 100,
    ])?;
    Some((time, utc, length))
}

/// `YYYY-MM-DD_HH-MM-SS`, optionally `-ffffff` (fraction, ignored), optionally `Z`.
fn dashed_time(bytes: &[u8]) -> Option<(PrimitiveDateTime, bool, usize)> {
    let field = |at: usize, n: usize, separator: Option<u8>| {
        if let Some(separator) = separator {
            if bytes.get(at - 1) != Some(&separator) {
                return None;
            }
        }
        digits(&bytes[at.min(bytes.len())..], n)
    };
    let fields = [
        field(0, 4, None)?,
        field(5, 2, Some(b'-'))?,
        field(8, 2, Some(b'-'))?,
        field(11, 2, Some(b'_'))?,
        field(14, 2, Some(b'-'))?,
        field(17, 2, Some(b'-'))?,
    ];
    let mut length = 19;
    if bytes.get(length) == Some(&b'-') {
        let fraction = bytes[length + 1..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if fraction > 0 {
            length += 1 + fraction;
        }
    }
    let (utc, length) = marked_utc(bytes, length)?;
    Some((wall_time(fields)?, utc, length))
}

/// The container's `creation_time` (UTC) and duration, when it states them.
fn container_times(
    path: &Path,
) -> Result<(Option<OffsetDateTime>, Option<time::Duration>), String> {
    remux::init().map_err(|e| e.to_string())?;
    let input = format::input(&path).map_err(|e| format!("FFmpeg cannot open it: {e}"))?;
    let parse = |text: &str| {
        OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
    };
    // MP4 writers put it on the file; some only on the video track.
    let created = input
        .metadata()
        .get("creation_time")
        .and_then(parse)
        .or_else(|| {
            input
                .streams()
                .best(media::Type::Video)
                .and_then(|s| s.metadata().get("creation_time").and_then(parse))
        });
    // Durations are in FFmpeg's AV_TIME_BASE (microseconds).
    let duration = (input.duration() > 0).then(|| time::Duration::microseconds(input.duration()));
    Ok((created, duration))
}

/// What must match between files for their packets to go into one MP4 stream.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StreamShape {
    codec: ffmpeg::codec::Id,
    width: i32,
    height: i32,
    /// The codec's configuration (SPS/PPS of H.264 and H.265): one MP4 track has one.
    extradata: Vec<u8>,
}

impl StreamShape {
    fn of(parameters: &ffmpeg::codec::Parameters) -> StreamShape {
        // SAFETY: `parameters` owns a valid AVCodecParameters for the duration of this call;
        // extradata is either null or `extradata_size` readable bytes, as FFmpeg guarantees.
        let (width, height, extradata) = unsafe {
            let raw = &*parameters.as_ptr();
            let extradata = if raw.extradata.is_null() || raw.extradata_size <= 0 {
                Vec::new()
            } else {
                std::slice::from_raw_parts(raw.extradata, raw.extradata_size as usize).to_vec()
            };
            (raw.width, raw.height, extradata)
        };
        StreamShape {
            codec: parameters.id(),
            width,
            height,
            extradata,
        }
    }
}

/// One opened file: its video stream and where its timestamps start.
struct FileStream {
    path: PathBuf,
    input: format::context::Input,
    stream_index: usize,
    time_base: Rational,
    parameters: ffmpeg::codec::Parameters,
    /// The timestamp that shows at `anchor`.
    start_ts: i64,
    anchor: OffsetDateTime,
    /// Packets before the file's first key frame cannot be decoded and are left out.
    seen_key: bool,
}

impl FileStream {
    fn open(file: &FoundFile, window: TimeWindow) -> Result<FileStream, RecordingError> {
        let unreadable = |cause: ffmpeg::Error| {
            RecordingError::BadReply(format!(
                "文件无法读取 (the file cannot be read) {}: {cause}",
                file.path.display()
            ))
        };
        let mut input = format::input(&file.path).map_err(unreadable)?;
        let (stream_index, time_base, parameters, start_ts) = {
            let stream = input.streams().best(media::Type::Video).ok_or_else(|| {
                RecordingError::BadReply(format!(
                    "文件中没有视频 (the file has no video stream) {}",
                    file.path.display()
                ))
            })?;
            let start = stream.start_time();
            // AV_NOPTS_VALUE (i64::MIN): the file does not say; its timestamps start at zero.
            let start = if start == i64::MIN { 0 } else { start };
            (
                stream.index(),
                stream.time_base(),
                stream.parameters(),
                start,
            )
        };
        // A long file starting well before the window: jump to the key frame at or before the
        // window start instead of reading everything before it.
        let lead = window.start - file.span.start;
        if lead > time::Duration::seconds(2) {
            // Seek targets are in AV_TIME_BASE (microseconds) on the file's own clock.
            let format_start = start_ts * 1_000_000 * i64::from(time_base.numerator())
                / i64::from(time_base.denominator().max(1));
            let target = format_start + lead.whole_microseconds() as i64;
            // A failed seek only costs reading from the beginning.
            let _ = input.seek(target, ..target);
        }
        Ok(FileStream {
            path: file.path.clone(),
            input,
            stream_index,
            time_base,
            parameters,
            start_ts,
            anchor: file.span.start,
            seen_key: false,
        })
    }
}

/// The packets of the window from one file after another, each with the instant it shows.
struct FilePackets<'a> {
    files: &'a [FoundFile],
    next_file: usize,
    current: Option<FileStream>,
    window: TimeWindow,
    /// The output's time base (the first file's): every packet is rescaled to it.
    time_base: Rational,
    shape: StreamShape,
    /// The packets from the last key frame before the window start on, until it starts.
    before_window: Vec<(Packet, OffsetDateTime)>,
    started: bool,
    ready: VecDeque<(Packet, OffsetDateTime)>,
    dropped: u64,
}

impl FilePackets<'_> {
    /// Reads the next packet of the current file into `ready`, `Ok(false)` at its end.
    fn read_one(&mut self) -> Result<bool, RecordingError> {
        let Some(file) = self.current.as_mut() else {
            return Ok(false);
        };
        let mut packet = Packet::empty();
        match packet.read(&mut file.input) {
            Ok(()) => {}
            Err(ffmpeg::Error::Eof) => return Ok(false),
            Err(cause) => {
                return Err(RecordingError::BadReply(format!(
                    "文件读取出错 (reading the file failed) {}: {cause}",
                    file.path.display()
                )))
            }
        }
        if packet.stream() != file.stream_index {
            return Ok(true);
        }
        let Some(ts) = packet.dts().or(packet.pts()) else {
            self.dropped += 1;
            return Ok(true);
        };
        if !file.seen_key {
            if !packet.is_key() {
                self.dropped += 1;
                return Ok(true);
            }
            file.seen_key = true;
        }
        let seconds = (ts - file.start_ts) as f64 * f64::from(file.time_base.numerator())
            / f64::from(file.time_base.denominator().max(1));
        let at = file.anchor + time::Duration::seconds_f64(seconds);
        packet.rescale_ts(file.time_base, self.time_base);
        if at < self.window.start && !self.started {
            if packet.is_key() {
                self.before_window.clear();
            }
            self.before_window.push((packet, at));
            return Ok(true);
        }
        if !self.started {
            self.started = true;
            self.ready.extend(self.before_window.drain(..));
        }
        self.ready.push_back((packet, at));
        Ok(true)
    }

    /// Opens the next file, checking it can share the first file's MP4 track.
    fn open_next(&mut self) -> Result<bool, RecordingError> {
        let Some(file) = self.files.get(self.next_file) else {
            return Ok(false);
        };
        self.next_file += 1;
        if !self.started {
            // The previous file ended before the window began: its last pictures are not part
            // of the window.
            self.before_window.clear();
        }
        let stream = FileStream::open(file, self.window)?;
        if StreamShape::of(&stream.parameters) != self.shape {
            return Err(RecordingError::BadReply(format!(
                "文件的编码或画面尺寸与前面的文件不同，无法拼成一个文件 (the file's codec, picture \
                 size or codec configuration differs from the earlier files) {}",
                file.path.display()
            )));
        }
        self.current = Some(stream);
        Ok(true)
    }
}

impl Iterator for FilePackets<'_> {
    type Item = Result<(Packet, OffsetDateTime), RecordingError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.ready.pop_front() {
                return Some(Ok(item));
            }
            match self.read_one() {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => return Some(Err(e)),
            }
            self.current = None;
            match self.open_next() {
                Ok(true) => continue,
                Ok(false) => return None,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

impl RecordingSource for FolderSource {
    fn search(
        &self,
        channel: u32,
        window: TimeWindow,
    ) -> Result<Vec<RecordedSegment>, RecordingError> {
        Ok(self
            .files(channel, window)?
            .into_iter()
            .map(|f| RecordedSegment {
                span: f.span,
                playback_uri: f.path.display().to_string(),
            })
            .collect())
    }

    fn pull(
        &self,
        request: &PullRequest<'_>,
        progress: &mut dyn FnMut(PullProgress),
    ) -> Result<PullReport, RecordingError> {
        check_window(request.window, request.now)?;
        let files = self.files(request.channel, request.window)?;
        if files.is_empty() {
            return Err(RecordingError::NothingRecorded {
                channel: request.channel,
                window: request.window.to_string(),
            });
        }
        let partial = remux::partial_path(request.output)?;
        match self.copy(&files, request, &partial, progress) {
            Ok(report) => {
                remux::finish(&partial, request.output)?;
                Ok(report)
            }
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn times(stem: &str) -> Vec<(PrimitiveDateTime, bool)> {
        name_times(stem)
    }

    #[test]
    fn times_are_read_from_the_names_real_systems_write() {
        assert_eq!(
            times("ch01_20261120080000_20261120081000"),
            vec![
                (datetime!(2026-11-20 08:00:00), false),
                (datetime!(2026-11-20 08:10:00), false)
            ]
        );
        assert_eq!(
            times("20261120T081000Z"),
            vec![(datetime!(2026-11-20 08:10:00), true)]
        );
        assert_eq!(
            times("2026-11-20_08-20-00-123456"),
            vec![(datetime!(2026-11-20 08:20:00), false)]
        );
        assert_eq!(
            times("192.168.1.64_01_20261120080000_20261120081000_1"),
            vec![
                (datetime!(2026-11-20 08:00:00), false),
                (datetime!(2026-11-20 08:10:00), false)
            ]
        );
        // Not times: too many digits, impossible dates, no time of day.
        assert!(times("202611200800001").is_empty());
        assert!(times("20261340080000").is_empty());
        assert!(times("camera-20261120").is_empty());
        assert!(times("第一评标室录像").is_empty());
    }

    #[test]
    fn half_written_names_are_recognised() {
        let dir = std::env::temp_dir();
        let metadata = std::fs::metadata(&dir).unwrap();
        let source = FolderSource::new(&dir).with_stable_after(Duration::ZERO);
        let later = SystemTime::now() + Duration::from_secs(3600);
        for name in ["a.mp4.part", "a.TMP", ".a.mp4", "a.mp4.crdownload"] {
            assert!(source.half_written(name, &metadata, later), "{name}");
        }
        assert!(!source.half_written("a.mp4", &metadata, later));
        let waiting = FolderSource::new(&dir).with_stable_after(Duration::from_secs(7200));
        assert!(waiting.half_written("a.mp4", &metadata, later));
    }
}
