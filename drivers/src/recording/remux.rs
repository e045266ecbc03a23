//! Stream copy of one RTSP playback stream into a faststart MP4, measuring what arrives.
//!
//! Nothing is decoded or re-encoded: packets go from the RTSP demuxer to the MP4 muxer with
//! their timestamps shifted to start at zero. Gaps in the recording stay gaps in the file's
//! timeline, so the file plays in step with wall-clock time and with the room's other channels.
//! The time of every packet is `anchor + (pts − first pts)`, where the anchor is the instant the
//! NVR starts playing from; packets past the window end are cut off (some NVRs run on).
//! The same copy serves a file an NVR sent instead (ISAPI download, `check_input`) and packets
//! whose instants are already known from several files (the folder source, `copy_placed`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use ffmpeg::{codec, format, media, Dictionary, Packet, Rational};
use ffmpeg_next as ffmpeg;
use time::OffsetDateTime;

use super::{
    uncovered, utc_text, PullProgress, PullReport, PullRequest, RecordedSegment, RecordingError,
    TimeWindow, TOLERANCE,
};

/// How long a silent RTSP connection is waited for before the pull fails, in microseconds
/// (FFmpeg's `timeout` option of the RTSP demuxer).
const SOCKET_TIMEOUT_MICROS: &str = "15000000";

pub(super) fn ff(step: &'static str) -> impl FnOnce(ffmpeg::Error) -> RecordingError {
    move |cause| RecordingError::Ffmpeg { step, cause }
}

/// Initialises FFmpeg once per process with its log kept to errors.
pub(super) fn init() -> Result<(), RecordingError> {
    static INIT: OnceLock<Result<(), ffmpeg::Error>> = OnceLock::new();
    let result = *INIT.get_or_init(|| {
        let result = ffmpeg::init();
        ffmpeg::log::set_level(ffmpeg::log::Level::Error);
        result
    });
    result.map_err(ff("initialising FFmpeg"))
}

/// One stream to copy.
pub(super) struct StreamCopy<'a> {
    /// The instant the first packet shows.
    pub anchor: OffsetDateTime,
    pub window: TimeWindow,
    /// Where the MP4 is written (a partial name; the caller renames it when it passes).
    pub partial: &'a Path,
}

/// What arrived.
#[derive(Debug)]
pub(super) struct Received {
    pub first_frame: OffsetDateTime,
    pub last_frame: OffsetDateTime,
    /// Spans with video, each from a frame to the end of the last frame before a jump.
    pub covered: Vec<TimeWindow>,
    pub frames: u64,
    pub bytes: u64,
    pub codec: String,
    pub dropped_packets: u64,
}

/// Opens the RTSP stream (interleaved over the RTSP TCP connection, so nothing is lost when the
/// NVR sends faster than real time).
pub(super) fn open(url: &str) -> Result<format::context::Input, RecordingError> {
    init()?;
    let mut options = Dictionary::new();
    options.set("rtsp_transport", "tcp");
    options.set("timeout", SOCKET_TIMEOUT_MICROS);
    format::input_with_dictionary(&url, options).map_err(ff("opening the RTSP stream"))
}

/// Copies the video stream of `input` into `copy.partial`.
pub(super) fn copy(
    mut input: format::context::Input,
    copy: &StreamCopy<'_>,
    progress: &mut dyn FnMut(PullProgress),
) -> Result<Received, RecordingError> {
    let (in_index, in_time_base, frame_rate, codec_id, parameters) = {
        let stream = input
            .streams()
            .best(media::Type::Video)
            .ok_or(RecordingError::Ffmpeg {
                step: "finding the video stream",
                cause: ffmpeg::Error::StreamNotFound,
            })?;
        (
            stream.index(),
            stream.time_base(),
            stream.rate(),
            stream.parameters().id(),
            stream.parameters(),
        )
    };

    let (mut output, out_time_base) = open_output(copy.partial, parameters, in_time_base)?;

    let mut tracker = Tracker::new(copy, in_time_base, out_time_base);
    // FFmpeg's RTSP demuxer can hand out the very first frame without a timestamp (before the
    // RTP clock is known). It is kept and placed one frame before the first timed packet.
    let mut leading: Vec<Packet> = Vec::new();
    let mut packet = Packet::empty();
    while !tracker.past_end {
        match packet.read(&mut input) {
            Ok(()) => {}
            Err(ffmpeg::Error::Eof) => break,
            // A stream that dies halfway ends like this too; the caller compares what arrived
            // with what the NVR recorded.
            Err(ffmpeg::Error::Other { errno }) if errno == libc::ETIMEDOUT => break,
            Err(ffmpeg::Error::Other { errno }) if errno == libc::ECONNRESET => break,
            Err(cause) => {
                return Err(RecordingError::Ffmpeg {
                    step: "reading the RTSP stream",
                    cause,
                })
            }
        }
        if packet.stream() != in_index {
            continue;
        }
        let Some(ts) = packet.dts().or(packet.pts()) else {
            if tracker.first_ts.is_none() && leading.len() < 4 {
                leading.push(std::mem::replace(&mut packet, Packet::empty()));
            } else {
                tracker.dropped += 1;
            }
            continue;
        };
        if !leading.is_empty() {
            let step = if packet.duration() > 0 {
                Some(packet.duration())
            } else {
                ticks_per_frame(frame_rate, in_time_base)
            };
            let count = leading.len() as i64;
            for (i, mut early) in leading.drain(..).enumerate() {
                match step {
                    Some(step) => {
                        let early_ts = ts - step * (count - i as i64);
                        early.set_pts(Some(early_ts));
                        tracker.write(&mut output, early, early_ts, progress)?;
                    }
                    None => tracker.dropped += 1,
                }
            }
        }
        // Moved out, not cloned (a clone copies the payload); the next read fills a new one.
        let taken = std::mem::replace(&mut packet, Packet::empty());
        tracker.write(&mut output, taken, ts, progress)?;
    }
    tracker.close(output, codec_id, progress)
}

/// Pulls `url` (an RTSP stream of the window) once into `partial` and checks what arrived
/// against what the NVR said it recorded (`segments`, non-empty, in time order). `Err(Ok(e))`
/// would be an error worth retrying; `Ok(Err(e))` is a stream that stopped before the recording
/// did (the caller removes the partial file).
pub(super) fn pull_window(
    url: &str,
    request: &PullRequest<'_>,
    segments: &[RecordedSegment],
    partial: &Path,
    progress: &mut dyn FnMut(PullProgress),
) -> Result<Result<PullReport, RecordingError>, RecordingError> {
    let window = request.window;
    let (Some(first), Some(last)) = (segments.first(), segments.last()) else {
        return Ok(Err(RecordingError::NothingRecorded {
            channel: request.channel,
            window: window.to_string(),
        }));
    };
    let anchor = window.start.max(first.span.start);
    let expected_end = window.end.min(last.span.end);
    let input = open(url)?;
    check_input(
        input,
        request,
        segments,
        partial,
        progress,
        (anchor, expected_end),
    )
}

/// Copies an opened stream of the window (RTSP, or a file the NVR sent) and checks what
/// arrived against what the NVR said it recorded from `anchor` to `expected_end`.
pub(super) fn check_input(
    input: format::context::Input,
    request: &PullRequest<'_>,
    segments: &[RecordedSegment],
    partial: &Path,
    progress: &mut dyn FnMut(PullProgress),
    (anchor, expected_end): (OffsetDateTime, OffsetDateTime),
) -> Result<Result<PullReport, RecordingError>, RecordingError> {
    let window = request.window;
    let received = copy(
        input,
        &StreamCopy {
            anchor,
            window,
            partial,
        },
        progress,
    )?;
    let last_frame_end = received
        .covered
        .last()
        .map(|span| span.end)
        .unwrap_or(received.last_frame);
    if last_frame_end + TOLERANCE < expected_end {
        return Ok(Err(RecordingError::Incomplete {
            channel: request.channel,
            received: utc_text(last_frame_end),
            expected: utc_text(expected_end),
        }));
    }
    Ok(Ok(PullReport {
        first_frame: received.first_frame,
        last_frame: received.last_frame,
        gaps: uncovered(window, &received.covered),
        recorded: segments
            .iter()
            .map(|s| TimeWindow {
                start: s.span.start.max(window.start),
                end: s.span.end.min(window.end),
            })
            .collect(),
        frames: received.frames,
        bytes: received.bytes,
        codec: received.codec,
        dropped_packets: received.dropped_packets,
        uri_refreshes: 0,
        transport: super::Transport::Rtsp,
    }))
}

/// The name a pull writes to before the file is complete: hidden, beside the final one.
pub(super) fn partial_path(output: &Path) -> Result<PathBuf, RecordingError> {
    let name = output
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or(RecordingError::Io {
            step: "naming the output file",
            cause: std::io::Error::other("the path must name a file in UTF-8"),
        })?;
    Ok(output.with_file_name(format!(".{name}.partial")))
}

/// Makes the finished file durable, then gives it its final name.
pub(super) fn finish(partial: &Path, output: &Path) -> Result<(), RecordingError> {
    let io = |step| move |cause| RecordingError::Io { step, cause };
    std::fs::File::open(partial)
        .and_then(|f| f.sync_all())
        .map_err(io("flushing the MP4 to disk"))?;
    std::fs::rename(partial, output).map_err(io("moving the finished MP4 into place"))?;
    if let Some(dir) = output.parent() {
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

/// Ends a pull whose outcome is known (as [`pull_window`] answers): a complete report gives the
/// file its final name, any error removes the partial file so half a video never passes.
pub(super) fn settle(
    outcome: Result<Result<PullReport, RecordingError>, RecordingError>,
    partial: &Path,
    output: &Path,
) -> Result<PullReport, RecordingError> {
    match outcome {
        Ok(Ok(report)) => {
            finish(partial, output)?;
            Ok(report)
        }
        Ok(Err(e)) | Err(e) => {
            let _ = std::fs::remove_file(partial);
            Err(e)
        }
    }
}

/// Opens the MP4 muxer on `partial` with one video stream of `parameters` and writes its
/// header; returns the muxer and the time base it chose for the stream.
fn open_output(
    partial: &Path,
    parameters: codec::Parameters,
    time_base: Rational,
) -> Result<(format::context::Output, Rational), RecordingError> {
    let partial = partial.to_str().ok_or(RecordingError::Io {
        step: "naming the output file",
        cause: std::io::Error::other("the path is not valid UTF-8"),
    })?;
    // The "file:" prefix keeps FFmpeg from reading a protocol into names with a colon.
    let mut output = format::output_as(&format!("file:{partial}"), "mp4")
        .map_err(ff("opening the MP4 muxer"))?;
    {
        let mut stream = output
            .add_stream(ffmpeg::encoder::find(codec::Id::None))
            .map_err(ff("adding the video stream"))?;
        stream.set_parameters(parameters);
        stream.set_time_base(time_base);
        // The RTSP demuxer's codec tag means nothing to the MP4 muxer; let it choose (avc1).
        // SAFETY: the stream's codec parameters were just allocated by add_stream and are
        // owned by `output`, which outlives this write.
        unsafe {
            (*stream.parameters().as_mut_ptr()).codec_tag = 0;
        }
    }
    let mut options = Dictionary::new();
    options.set("movflags", "+faststart");
    output
        .write_header_with(options)
        .map_err(ff("writing the MP4 header"))?;
    let out_time_base = output
        .stream(0)
        .map(|s| s.time_base())
        .unwrap_or(Rational(1, 90_000));
    Ok((output, out_time_base))
}

/// Copies packets whose instants are already known (files with a known start time) into
/// `partial`: each item is a packet with timestamps in `time_base` and the instant it shows.
/// The first item must be a key frame; instants must grow (later ones that do not are dropped).
pub(super) fn copy_placed(
    parameters: codec::Parameters,
    time_base: Rational,
    packets: &mut dyn Iterator<Item = Result<(Packet, OffsetDateTime), RecordingError>>,
    window: TimeWindow,
    partial: &Path,
    progress: &mut dyn FnMut(PullProgress),
) -> Result<Received, RecordingError> {
    let codec_id = parameters.id();
    let Some(first) = packets.next().transpose()? else {
        return Err(RecordingError::BadReply(
            "文件中没有视频帧 (the files carried no video frames)".into(),
        ));
    };
    let copy = StreamCopy {
        anchor: first.1,
        window,
        partial,
    };
    let (mut output, out_time_base) = open_output(partial, parameters, time_base)?;
    let mut tracker = Tracker::new(&copy, time_base, out_time_base);
    let seconds_per_tick =
        f64::from(time_base.numerator()) / f64::from(time_base.denominator().max(1));
    for item in std::iter::once(Ok(first)).chain(packets) {
        let (mut packet, at) = item?;
        // The packet's place on the one timeline: ticks after the first packet's instant.
        let ts = ((at - copy.anchor).as_seconds_f64() / seconds_per_tick).round() as i64;
        let composition = match (packet.pts(), packet.dts()) {
            (Some(pts), Some(dts)) => pts - dts,
            _ => 0,
        };
        packet.set_dts(Some(ts));
        packet.set_pts(Some(ts + composition));
        tracker.write(&mut output, packet, ts, progress)?;
        if tracker.past_end {
            break;
        }
    }
    tracker.close(output, codec_id, progress)
}

/// One frame's length in `time_base` ticks, when the stream states a plausible frame rate.
fn ticks_per_frame(frame_rate: Rational, time_base: Rational) -> Option<i64> {
    let (fps_num, fps_den) = (
        i64::from(frame_rate.numerator()),
        i64::from(frame_rate.denominator()),
    );
    let (tb_num, tb_den) = (
        i64::from(time_base.numerator()),
        i64::from(time_base.denominator()),
    );
    if fps_num <= 0 || fps_den <= 0 || tb_num <= 0 || fps_num > 240 * fps_den {
        return None;
    }
    let ticks = tb_den * fps_den / (tb_num * fps_num);
    (ticks > 0).then_some(ticks)
}

/// What has arrived so far, and the muxer's side of each packet.
struct Tracker<'a> {
    copy: &'a StreamCopy<'a>,
    in_time_base: Rational,
    out_time_base: Rational,
    window_length: Duration,
    first_ts: Option<i64>,
    last_ts: i64,
    covered: Vec<TimeWindow>,
    frames: u64,
    bytes: u64,
    dropped: u64,
    reported: Duration,
    typical_frame: Duration,
    /// A packet at or past the window end arrived: the NVR ran on, reading stops.
    past_end: bool,
}

impl<'a> Tracker<'a> {
    fn new(copy: &'a StreamCopy<'a>, in_time_base: Rational, out_time_base: Rational) -> Self {
        Tracker {
            copy,
            in_time_base,
            out_time_base,
            window_length: copy.window.length(),
            first_ts: None,
            last_ts: i64::MIN,
            covered: Vec::new(),
            frames: 0,
            bytes: 0,
            dropped: 0,
            reported: Duration::ZERO,
            typical_frame: Duration::from_millis(40),
            past_end: false,
        }
    }

    /// Writes the trailer (which, with faststart, moves the index in front of the media data)
    /// and says what arrived.
    fn close(
        mut self,
        mut output: format::context::Output,
        codec_id: codec::Id,
        progress: &mut dyn FnMut(PullProgress),
    ) -> Result<Received, RecordingError> {
        let Some(first) = self.first_ts else {
            return Err(RecordingError::BadReply(
                "流中没有视频帧 (the stream carried no video frames)".into(),
            ));
        };
        let typical_frame = self.typical_frame;
        if let Some(span) = self.covered.last_mut() {
            span.end += typical_frame;
        }
        output
            .write_trailer()
            .map_err(ff("writing the MP4 trailer"))?;
        let last_frame = self.time(self.last_ts - first);
        let window_length = self.window_length;
        progress(PullProgress {
            media_received: (last_frame + typical_frame - self.copy.window.start)
                .try_into()
                .unwrap_or(Duration::ZERO)
                .min(window_length),
            window_length,
        });
        Ok(Received {
            first_frame: self.copy.anchor,
            last_frame,
            covered: self.covered,
            frames: self.frames,
            bytes: self.bytes,
            codec: codec_id.name().to_string(),
            dropped_packets: self.dropped,
        })
    }
}

impl Tracker<'_> {
    /// The instant `ticks` after the first packet.
    fn time(&self, ticks: i64) -> OffsetDateTime {
        let seconds = ticks as f64 * f64::from(self.in_time_base.numerator())
            / f64::from(self.in_time_base.denominator().max(1));
        self.copy.anchor + time::Duration::seconds_f64(seconds)
    }

    /// Places one packet with decoding time `ts` in the timeline and writes it.
    fn write(
        &mut self,
        output: &mut format::context::Output,
        mut packet: Packet,
        ts: i64,
        progress: &mut dyn FnMut(PullProgress),
    ) -> Result<(), RecordingError> {
        let first = *self.first_ts.get_or_insert(ts);
        if ts <= self.last_ts || packet.is_corrupt() {
            // Out of order or flagged corrupt by the depacketiser: the MP4 muxer would refuse
            // the first, and a decoder would stumble over the second.
            self.dropped += 1;
            return Ok(());
        }
        let at = self.time(ts - first);
        if at >= self.copy.window.end {
            self.past_end = true;
            return Ok(());
        }
        if self.last_ts != i64::MIN {
            let previous = self.time(self.last_ts - first);
            let step: Duration = (at - previous).try_into().unwrap_or(Duration::ZERO);
            if step >= TOLERANCE {
                // A jump: close the covered span at the end of the frame before it.
                let typical_frame = self.typical_frame;
                if let Some(span) = self.covered.last_mut() {
                    span.end = previous + typical_frame;
                }
                self.covered.push(TimeWindow { start: at, end: at });
            } else if !step.is_zero() {
                self.typical_frame = step;
            }
        } else {
            self.covered.push(TimeWindow { start: at, end: at });
        }
        if let Some(span) = self.covered.last_mut() {
            span.end = at;
        }
        self.last_ts = ts;
        self.frames += 1;
        self.bytes += packet.size() as u64;

        packet.set_pts(packet.pts().map(|p| p - first));
        packet.set_dts(Some(ts - first));
        packet.set_stream(0);
        packet.set_position(-1);
        packet.rescale_ts(self.in_time_base, self.out_time_base);
        packet
            .write_interleaved(output)
            .map_err(ff("writing a packet to the MP4 file"))?;

        let received: Duration = (at - self.copy.window.start)
            .try_into()
            .unwrap_or(Duration::ZERO);
        if received >= self.reported + Duration::from_secs(1) {
            self.reported = received;
            progress(PullProgress {
                media_received: received.min(self.window_length),
                window_length: self.window_length,
            });
        }
        Ok(())
    }
}
