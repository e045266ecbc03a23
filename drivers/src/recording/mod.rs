//! Evaluation video from NVRs: the `RecordingSource` trait and its implementations.
//!
//! This is the only place that talks to NVRs. A pull asks the NVR what it recorded in a time
//! window, streams that window (RTSP), stream-copies it into an MP4 with the index in front
//! (faststart) and checks the result against the window using the timestamps actually received:
//! the first and last frame times, and every gap, are measured from packets, never assumed from
//! wall-clock time. A pull that delivers less than the NVR says it recorded is an error and its
//! partial file is removed; a file only appears under its final name once it is complete.

pub mod dahua;
pub mod digest;
pub mod folder;
pub mod hikvision;
pub mod onvif;
mod remux;

use std::path::Path;
use std::time::Duration;

use time::OffsetDateTime;

pub use dahua::DahuaNvr;
pub use folder::FolderSource;
pub use hikvision::{HikvisionIsapi, NvrClock};
pub use onvif::OnvifRecorder;

/// How far the first or last frame may be from the window (or the recording) edge, and how
/// long a jump between two frames must be to count as a gap.
pub const TOLERANCE: Duration = Duration::from_secs(1);

/// A closed-open span of UTC time, `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindow {
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
}

impl TimeWindow {
    pub fn length(&self) -> Duration {
        (self.end - self.start).try_into().unwrap_or(Duration::ZERO)
    }

    fn overlaps(&self, other: &TimeWindow) -> bool {
        self.start < other.end && other.start < self.end
    }
}

impl std::fmt::Display for TimeWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}–{}", utc_text(self.start), utc_text(self.end))
    }
}

fn utc_text(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    t.format(time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
    ))
    .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// One span the NVR says it recorded, as its search answered (times already in UTC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedSegment {
    pub span: TimeWindow,
    /// Where the NVR says this recording can be played back (RTSP).
    pub playback_uri: String,
}

/// What a pull is asked to do.
#[derive(Debug, Clone, Copy)]
pub struct PullRequest<'a> {
    /// The NVR channel (1-based, as on the NVR's own screen).
    pub channel: u32,
    pub window: TimeWindow,
    /// The current time from the daemon's clock: windows reaching past it are refused.
    pub now: OffsetDateTime,
    /// The MP4 to write; it appears only when the pull is complete.
    pub output: &'a Path,
}

/// Progress of a pull, from media time received (not wall-clock time).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PullProgress {
    /// Media time covered so far, from the window start to the newest frame received.
    pub media_received: Duration,
    pub window_length: Duration,
}

/// The outcome of a complete pull: what the file really covers.
#[derive(Debug, Clone, PartialEq)]
pub struct PullReport {
    /// Time of the first and last frame written, measured from packet timestamps.
    pub first_frame: OffsetDateTime,
    pub last_frame: OffsetDateTime,
    /// Spans inside the window without video: before the first frame, between frames further
    /// apart than [`TOLERANCE`], after the last frame.
    pub gaps: Vec<TimeWindow>,
    /// The NVR's own list of what it recorded in the window.
    pub recorded: Vec<TimeWindow>,
    pub frames: u64,
    pub bytes: u64,
    /// FFmpeg's name of the video codec (`h264`, `hevc`…), copied as it came.
    pub codec: String,
    /// Packets that arrived without timestamps or were out of order and were left out.
    pub dropped_packets: u64,
    /// How many times the playback URI had to be fetched anew (expired URIs).
    pub uri_refreshes: u32,
    /// Which way the video came.
    pub transport: Transport,
}

/// How the video of a pull arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Streamed over RTSP playback.
    Rtsp,
    /// Downloaded as a file over HTTP (the NVR refused RTSP playback).
    Download,
    /// Read from files in a folder.
    Folder,
}

impl Transport {
    /// The name in reports: `rtsp`, `download` or `folder`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Rtsp => "rtsp",
            Transport::Download => "download",
            Transport::Folder => "folder",
        }
    }
}

/// Why a search or a pull failed. Messages are Chinese first, English in parentheses.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("时段无效 (invalid window): {0}")]
    InvalidWindow(String),
    #[error("时段尚未结束 (the window is in the future): it ends {end}, now is {now}")]
    WindowInFuture { end: String, now: String },
    #[error("无法连接录像机 (NVR unreachable) {address}: {reason}")]
    Unreachable { address: String, reason: String },
    #[error(
        "录像机拒绝了用户名或密码 (the NVR refused the user name or password): HTTP 401 from {0}"
    )]
    Unauthorized(String),
    #[error("录像机在该时段没有录像 (nothing recorded): channel {channel}, {window}")]
    NothingRecorded { channel: u32, window: String },
    #[error("录像机的回复无法理解 (the NVR's reply was not understood): {0}")]
    BadReply(String),
    #[error(
        "录像流提前结束 (the stream stopped early): channel {channel} delivered video up to \
         {received} but the NVR recorded up to {expected}; the partial file was removed"
    )]
    Incomplete {
        channel: u32,
        received: String,
        expected: String,
    },
    #[error("拉取录像失败 (pulling the recording failed) while {step}: {cause}")]
    Ffmpeg {
        step: &'static str,
        cause: ffmpeg_next::Error,
    },
    #[error("文件操作失败 (file operation failed) while {step}: {cause}")]
    Io {
        step: &'static str,
        cause: std::io::Error,
    },
    #[error(
        "录像机既不能回放也不能下载该时段 (neither RTSP playback nor the ISAPI download worked): \
         opening the RTSP stream: {rtsp}; download: {download}"
    )]
    NoPlayback { rtsp: String, download: String },
    #[error("尚不支持 (not supported yet): {0}")]
    NotSupported(String),
}

/// A system that holds recordings of evaluation rooms and can export a time window of one
/// channel. Calls block (they stream video): run them on a blocking thread.
pub trait RecordingSource: Send + Sync {
    /// What the NVR recorded on `channel` overlapping `window`, in time order.
    fn search(
        &self,
        channel: u32,
        window: TimeWindow,
    ) -> Result<Vec<RecordedSegment>, RecordingError>;

    /// Exports the window into `request.output`, calling `progress` as media time arrives.
    fn pull(
        &self,
        request: &PullRequest<'_>,
        progress: &mut dyn FnMut(PullProgress),
    ) -> Result<PullReport, RecordingError>;
}

/// Refuses channel numbers no NVR has (they are 1-based, as on the NVR's own screen).
pub fn check_channel(channel: u32) -> Result<(), RecordingError> {
    if channel == 0 || channel > 999 {
        return Err(RecordingError::InvalidWindow(format!(
            "通道号 {channel} 无效 (channel must be 1–999)"
        )));
    }
    Ok(())
}

/// Refuses empty, reversed and future windows before anything touches the network.
pub fn check_window(window: TimeWindow, now: OffsetDateTime) -> Result<(), RecordingError> {
    if window.end <= window.start {
        return Err(RecordingError::InvalidWindow(format!(
            "{window}: the end must be after the start"
        )));
    }
    if window.end > now {
        return Err(RecordingError::WindowInFuture {
            end: utc_text(window.end),
            now: utc_text(now),
        });
    }
    Ok(())
}

/// What `source` recorded for a pull: its window checked first, and an empty search answered
/// with [`RecordingError::NothingRecorded`].
pub fn recorded_for(
    source: &dyn RecordingSource,
    request: &PullRequest<'_>,
) -> Result<Vec<RecordedSegment>, RecordingError> {
    check_window(request.window, request.now)?;
    let segments = source.search(request.channel, request.window)?;
    if segments.is_empty() {
        return Err(RecordingError::NothingRecorded {
            channel: request.channel,
            window: request.window.to_string(),
        });
    }
    Ok(segments)
}

/// Spans of `window` not covered by `covered` (sorted, non-overlapping spans), ignoring holes
/// shorter than [`TOLERANCE`].
pub fn uncovered(window: TimeWindow, covered: &[TimeWindow]) -> Vec<TimeWindow> {
    let mut gaps = Vec::new();
    let mut cursor = window.start;
    for span in covered {
        let start = span.start.max(window.start);
        if start > cursor {
            gaps.push(TimeWindow {
                start: cursor,
                end: start,
            });
        }
        cursor = cursor.max(span.end.min(window.end));
    }
    if cursor < window.end {
        gaps.push(TimeWindow {
            start: cursor,
            end: window.end,
        });
    }
    gaps.retain(|gap| gap.length() >= TOLERANCE);
    gaps
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn span(a: i64, b: i64) -> TimeWindow {
        let t0 = datetime!(2026-11-20 00:00 UTC);
        TimeWindow {
            start: t0 + time::Duration::seconds(a),
            end: t0 + time::Duration::seconds(b),
        }
    }

    #[test]
    fn uncovered_finds_leading_inner_and_trailing_gaps() {
        let window = span(0, 600);
        assert_eq!(uncovered(window, &[span(-60, 600)]), vec![]);
        assert_eq!(
            uncovered(window, &[span(10, 240), span(270, 590)]),
            vec![span(0, 10), span(240, 270), span(590, 600)]
        );
        // Holes shorter than the tolerance are frame spacing, not gaps.
        let mut almost = span(240, 600);
        almost.start -= time::Duration::milliseconds(400);
        assert_eq!(uncovered(window, &[span(0, 240), almost]), vec![]);
        assert_eq!(uncovered(window, &[]), vec![window]);
    }

    #[test]
    fn bad_windows_are_refused_with_clear_messages() {
        let now = datetime!(2026-11-29 12:00 UTC);
        let reversed = TimeWindow {
            start: span(0, 10).end,
            end: span(0, 10).start,
        };
        let message = check_window(reversed, now).unwrap_err().to_string();
        assert!(
            message.starts_with("时段无效 (invalid window)"),
            "{message}"
        );
        let future = TimeWindow {
            start: now - time::Duration::minutes(5),
            end: now + time::Duration::minutes(5),
        };
        let message = check_window(future, now).unwrap_err().to_string();
        assert!(message.contains("in the future"), "{message}");
        assert!(check_window(span(0, 600), now).is_ok());
    }
}
