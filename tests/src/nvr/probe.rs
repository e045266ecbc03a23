//! Helpers of the pull tests: times on one test day, a pull run on a blocking thread with its
//! progress collected, and what a pulled file holds as read by tools other than ours (ffprobe,
//! the MP4 box list).

use std::path::{Path, PathBuf};
use std::process::Command;

use time::macros::datetime;
use time::OffsetDateTime;
use witness_drivers::recording::{
    PullProgress, PullReport, PullRequest, RecordingError, RecordingSource, TimeWindow,
};

use super::Segment;

/// The instant the tests' times count from.
pub const T0: OffsetDateTime = datetime!(2026-11-20 00:00 UTC);

/// `seconds` after [`T0`].
pub fn at(seconds: i64) -> OffsetDateTime {
    T0 + time::Duration::seconds(seconds)
}

/// The window from `start` to `end` seconds after [`T0`].
pub fn window(start: i64, end: i64) -> TimeWindow {
    TimeWindow {
        start: at(start),
        end: at(end),
    }
}

/// A recording of `channel` from `start` to `end` seconds after [`T0`].
pub fn segment(channel: u32, start: i64, end: i64) -> Segment {
    Segment {
        channel,
        start: at(start),
        end: at(end),
    }
}

/// Seconds between two instants, signed.
pub fn apart(a: OffsetDateTime, b: OffsetDateTime) -> f64 {
    (a - b).as_seconds_f64()
}

/// Runs a pull on a blocking thread (it streams video), collecting its progress reports.
pub async fn pull<S: RecordingSource + 'static>(
    source: S,
    channel: u32,
    window: TimeWindow,
    output: PathBuf,
) -> (Result<PullReport, RecordingError>, Vec<PullProgress>) {
    tokio::task::spawn_blocking(move || {
        let mut progress = Vec::new();
        let request = PullRequest {
            channel,
            window,
            now: OffsetDateTime::now_utc(),
            output: &output,
        };
        let result = source.pull(&request, &mut |p| progress.push(p));
        (result, progress)
    })
    .await
    .unwrap()
}

/// Checks a pull's report: first and last frame within 1 s of `covered` and exactly the gaps
/// `gaps`, each bound within 1 s (seconds after [`T0`]).
pub fn assert_report_covers(report: &PullReport, covered: (i64, i64), gaps: &[(i64, i64)]) {
    assert!(
        apart(report.first_frame, at(covered.0)).abs() <= 1.0,
        "{report:?}"
    );
    assert!(
        apart(report.last_frame, at(covered.1)).abs() <= 1.0,
        "{report:?}"
    );
    assert_eq!(report.gaps.len(), gaps.len(), "{:?}", report.gaps);
    for (gap, (start, end)) in report.gaps.iter().zip(gaps) {
        assert!(apart(gap.start, at(*start)).abs() <= 1.0, "{gap}");
        assert!(apart(gap.end, at(*end)).abs() <= 1.0, "{gap}");
    }
}

/// Pulls the window [0, 100) of channel 1 from a stand-in whose stream stops halfway
/// (`stop_fraction` 0.5 on a recording covering the window) and checks the outcome: an
/// `Incomplete` error, progress that told the truth (about half the window), no file left.
pub async fn assert_stopping_halfway_leaves_nothing<S: RecordingSource + 'static>(source: S) {
    let out_dir = tempfile::tempdir().unwrap();
    let output = out_dir.path().join("out.mp4");
    let (result, progress) = pull(source, 1, window(0, 100), output).await;
    let err = result.unwrap_err();
    assert!(matches!(err, RecordingError::Incomplete { .. }), "{err}");
    assert!(err.to_string().starts_with("录像流提前结束"), "{err}");
    let last = progress.last().unwrap().media_received.as_secs_f64();
    assert!((48.0..=51.0).contains(&last), "{last}");
    let left = files_in(out_dir.path());
    assert!(left.is_empty(), "{left:?}");
}

/// Checks a pulled file as ffprobe reads it: the index in front (`moov` before `mdat`),
/// `frames` packets from time 0, and the one hole of the recording kept as one jump in the
/// timeline, from about `hole.0` to `hole.1` seconds. Returns the packet times.
pub fn assert_faststart_with_one_hole(path: &Path, frames: u64, hole: (f64, f64)) -> Vec<f64> {
    let boxes = top_level_boxes(path);
    let moov = boxes.iter().position(|b| b == "moov").unwrap();
    let mdat = boxes.iter().position(|b| b == "mdat").unwrap();
    assert!(moov < mdat, "{boxes:?}");
    let times = ffprobe_packet_times(path);
    assert_eq!(times.len() as u64, frames);
    assert!(times[0].abs() < 0.01, "{}", times[0]);
    let jumps: Vec<(f64, f64)> = times
        .windows(2)
        .filter(|w| w[1] - w[0] > 1.0)
        .map(|w| (w[0], w[1]))
        .collect();
    assert_eq!(jumps.len(), 1, "{jumps:?}");
    assert!(
        (jumps[0].0 - hole.0).abs() < 0.5 && (jumps[0].1 - hole.1).abs() < 0.5,
        "{jumps:?}"
    );
    times
}

/// Names of the top-level MP4 boxes, in file order.
pub fn top_level_boxes(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap();
    let mut boxes = Vec::new();
    let mut offset = 0usize;
    while offset + 8 <= bytes.len() {
        let size = u32::from_be_bytes(bytes[offset..offset + 4].try_into().unwrap()) as usize;
        boxes.push(String::from_utf8_lossy(&bytes[offset + 4..offset + 8]).into_owned());
        let size = match size {
            0 => bytes.len() - offset,
            1 => u64::from_be_bytes(bytes[offset + 8..offset + 16].try_into().unwrap()) as usize,
            n => n,
        };
        assert!(size >= 8, "box of size {size} at {offset}");
        offset += size;
    }
    boxes
}

/// Packet times of the file's video stream in seconds, as ffprobe (not our code) reads them.
pub fn ffprobe_packet_times(path: &Path) -> Vec<f64> {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args(["-show_entries", "packet=pts_time", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe (apt package ffmpeg)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// The names in a folder, sorted.
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
