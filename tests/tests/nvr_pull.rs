//! Pulls from the stand-in Hikvision NVR (ISAPI over HTTP, RTSP from gst-rtsp-server): the
//! ten-minute window test, each firmware quirk, and the bad inputs of issue 4.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use time::macros::{datetime, offset};
use time::OffsetDateTime;
use witness_drivers::recording::{
    HikvisionIsapi, NvrClock, PullProgress, PullReport, PullRequest, RecordingError,
    RecordingSource, TimeWindow,
};
use witness_tests::nvr::{Quirks, Segment, StandInNvr};

const T0: OffsetDateTime = datetime!(2026-11-20 00:00 UTC);
const USER: &str = "admin";
const PASSWORD: &str = "Witness12345";

fn at(seconds: i64) -> OffsetDateTime {
    T0 + time::Duration::seconds(seconds)
}

fn window(start: i64, end: i64) -> TimeWindow {
    TimeWindow {
        start: at(start),
        end: at(end),
    }
}

fn segment(channel: u32, start: i64, end: i64) -> Segment {
    Segment {
        channel,
        start: at(start),
        end: at(end),
    }
}

/// Seconds between two instants, signed.
fn apart(a: OffsetDateTime, b: OffsetDateTime) -> f64 {
    (a - b).as_seconds_f64()
}

/// Runs a pull on a blocking thread (it streams video), collecting its progress reports.
async fn pull(
    source: HikvisionIsapi,
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

/// Names of the top-level MP4 boxes, in file order.
fn top_level_boxes(path: &Path) -> Vec<String> {
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
fn ffprobe_packet_times(path: &Path) -> Vec<f64> {
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

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn ten_minute_window_with_a_gap_in_the_middle() {
    let dir = tempfile::tempdir().unwrap();
    // Recording from a minute before the window, a 30-second hole, on past its end.
    let nvr = StandInNvr::start(
        dir.path(),
        USER,
        PASSWORD,
        &[segment(1, -60, 240), segment(1, 270, 700)],
    )
    .await
    .unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let output = out_dir.path().join("room-1.mp4");
    let source = HikvisionIsapi::new(&nvr.http_url, USER, PASSWORD);
    let started = std::time::Instant::now();
    let (result, progress) = pull(source, 1, window(0, 600), output.clone()).await;
    let report = result.unwrap();
    eprintln!("pulled in {:?}: {report:?}", started.elapsed());

    assert!(apart(report.first_frame, at(0)).abs() <= 1.0, "{report:?}");
    assert!(apart(report.last_frame, at(600)).abs() <= 1.0, "{report:?}");
    assert_eq!(report.gaps.len(), 1, "{:?}", report.gaps);
    let gap = report.gaps[0];
    assert!(apart(gap.start, at(240)).abs() <= 1.0, "{gap}");
    assert!(apart(gap.end, at(270)).abs() <= 1.0, "{gap}");
    assert_eq!(report.codec, "h264");
    // 5 fps over 570 recorded seconds, every one of them.
    assert_eq!(report.frames, 2850);
    assert_eq!(report.dropped_packets, 0);

    // The file itself, read by ffprobe: index in front, the hole kept in the timeline.
    let boxes = top_level_boxes(&output);
    let moov = boxes.iter().position(|b| b == "moov").unwrap();
    let mdat = boxes.iter().position(|b| b == "mdat").unwrap();
    assert!(moov < mdat, "{boxes:?}");
    let times = ffprobe_packet_times(&output);
    assert_eq!(times.len() as u64, report.frames);
    assert!(times[0].abs() < 0.01, "{}", times[0]);
    assert!(
        (599.0..600.0).contains(times.last().unwrap()),
        "{:?}",
        times.last()
    );
    let jumps: Vec<(f64, f64)> = times
        .windows(2)
        .filter(|w| w[1] - w[0] > 1.0)
        .map(|w| (w[0], w[1]))
        .collect();
    assert_eq!(jumps.len(), 1, "{jumps:?}");
    assert!((jumps[0].0 - 239.8).abs() < 0.5 && (jumps[0].1 - 270.0).abs() < 0.5);

    // Progress comes from media time: it only grows, jumps over the hole, ends at the window.
    assert!(progress.len() > 100, "{} reports", progress.len());
    assert!(progress
        .windows(2)
        .all(|w| w[0].media_received <= w[1].media_received));
    assert!(progress
        .iter()
        .all(|p| p.window_length == Duration::from_secs(600)));
    assert_eq!(
        progress.last().unwrap().media_received,
        Duration::from_secs(600)
    );
    assert_eq!(files_in(out_dir.path()), ["room-1.mp4"]);
}

async fn short_nvr(dir: &Path, segments: &[Segment]) -> StandInNvr {
    StandInNvr::start(dir, USER, PASSWORD, segments)
        .await
        .unwrap()
}

#[tokio::test]
async fn quirk_times_marked_z_that_are_local_time() {
    let dir = tempfile::tempdir().unwrap();
    let nvr = short_nvr(dir.path(), &[segment(1, 0, 120)]).await;
    nvr.set_quirks(Quirks {
        z_is_local: true,
        ..Quirks::default()
    })
    .unwrap();
    let output = dir.path().join("out.mp4");

    // Taken at its word (Z = UTC), the NVR looks eight hours away and finds nothing: an error,
    // never a file of the wrong hours.
    let naive = HikvisionIsapi::new(&nvr.http_url, USER, PASSWORD);
    let (result, _) = pull(naive, 1, window(10, 70), output.clone()).await;
    let err = result.unwrap_err();
    assert!(
        matches!(err, RecordingError::NothingRecorded { .. }),
        "{err}"
    );
    assert!(!output.exists());

    let local = HikvisionIsapi::new(&nvr.http_url, USER, PASSWORD)
        .with_clock(NvrClock::LocalMarkedZ(offset!(+8)));
    let (result, _) = pull(local, 1, window(10, 70), output.clone()).await;
    let report = result.unwrap();
    assert!(apart(report.first_frame, at(10)).abs() <= 1.0, "{report:?}");
    assert!(apart(report.last_frame, at(70)).abs() <= 1.0, "{report:?}");
    assert_eq!(report.recorded, vec![window(10, 70)]);
    assert!(report.gaps.is_empty(), "{:?}", report.gaps);
    let times = ffprobe_packet_times(&output);
    assert!((58.5..60.0).contains(times.last().unwrap()));
}

#[tokio::test]
async fn quirk_stream_running_past_the_end_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let nvr = short_nvr(dir.path(), &[segment(1, 0, 120)]).await;
    nvr.set_quirks(Quirks {
        past_end_seconds: 30,
        ..Quirks::default()
    })
    .unwrap();
    let output = dir.path().join("out.mp4");
    let source = HikvisionIsapi::new(&nvr.http_url, USER, PASSWORD);
    let (result, _) = pull(source, 1, window(20, 60), output.clone()).await;
    let report = result.unwrap();
    assert!(report.last_frame < at(60), "{report:?}");
    assert!(apart(report.last_frame, at(60)).abs() <= 1.0, "{report:?}");
    let times = ffprobe_packet_times(&output);
    assert!(*times.last().unwrap() < 40.0, "{:?}", times.last());
    assert_eq!(times.len(), 200);
}

#[tokio::test]
async fn quirk_search_on_a_segment_boundary_returns_the_previous_segment() {
    let dir = tempfile::tempdir().unwrap();
    let nvr = short_nvr(dir.path(), &[segment(1, 0, 60), segment(1, 60, 120)]).await;
    nvr.set_quirks(Quirks {
        boundary_returns_previous: true,
        ..Quirks::default()
    })
    .unwrap();
    let source = HikvisionIsapi::new(&nvr.http_url, USER, PASSWORD);
    let segments = {
        let source = source.clone();
        tokio::task::spawn_blocking(move || source.search(1, window(60, 110)))
            .await
            .unwrap()
            .unwrap()
    };
    assert_eq!(segments.len(), 1, "{segments:?}");
    assert_eq!(segments[0].span, window(60, 120));

    let output = dir.path().join("out.mp4");
    let (result, _) = pull(source, 1, window(60, 110), output).await;
    let report = result.unwrap();
    assert_eq!(report.recorded, vec![window(60, 110)]);
    assert!(report.gaps.is_empty(), "{:?}", report.gaps);
    assert!(apart(report.first_frame, at(60)).abs() <= 1.0);
}

#[tokio::test]
async fn quirk_expired_playback_uri_is_fetched_again() {
    let dir = tempfile::tempdir().unwrap();
    let nvr = short_nvr(dir.path(), &[segment(1, 0, 60)]).await;
    nvr.set_quirks(Quirks {
        expired_uris: 1,
        ..Quirks::default()
    })
    .unwrap();
    let output = dir.path().join("out.mp4");
    let source = HikvisionIsapi::new(&nvr.http_url, USER, PASSWORD);
    let (result, _) = pull(source, 1, window(0, 50), output.clone()).await;
    let report = result.unwrap();
    assert_eq!(report.uri_refreshes, 1);
    assert_eq!(nvr.searches(), 2);
    assert!(output.exists());

    // Every URI expired: the pull gives up with the open error, and leaves nothing behind.
    nvr.set_quirks(Quirks {
        expired_uris: 10,
        ..Quirks::default()
    })
    .unwrap();
    let second = dir.path().join("second.mp4");
    let source = HikvisionIsapi::new(&nvr.http_url, USER, PASSWORD);
    let (result, _) = pull(source, 1, window(0, 50), second.clone()).await;
    let err = result.unwrap_err();
    assert!(err.to_string().contains("opening the RTSP stream"), "{err}");
    assert!(!second.exists());
}

#[tokio::test]
async fn a_stream_stopping_halfway_is_an_error_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let nvr = short_nvr(dir.path(), &[segment(1, 0, 120)]).await;
    nvr.set_quirks(Quirks {
        stop_fraction: Some(0.5),
        ..Quirks::default()
    })
    .unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let output = out_dir.path().join("out.mp4");
    let source = HikvisionIsapi::new(&nvr.http_url, USER, PASSWORD);
    let (result, progress) = pull(source, 1, window(0, 100), output.clone()).await;
    let err = result.unwrap_err();
    assert!(matches!(err, RecordingError::Incomplete { .. }), "{err}");
    assert!(err.to_string().starts_with("录像流提前结束"), "{err}");
    // Progress told the truth: about half the window arrived.
    let last = progress.last().unwrap().media_received.as_secs_f64();
    assert!((48.0..=51.0).contains(&last), "{last}");
    assert!(
        files_in(out_dir.path()).is_empty(),
        "{:?}",
        files_in(out_dir.path())
    );
}

#[tokio::test]
async fn bad_inputs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let nvr = short_nvr(dir.path(), &[segment(1, 0, 60)]).await;
    let output = dir.path().join("out.mp4");

    let wrong = HikvisionIsapi::new(&nvr.http_url, USER, "not-the-password");
    let (result, _) = pull(wrong, 1, window(0, 30), output.clone()).await;
    let err = result.unwrap_err();
    assert!(matches!(err, RecordingError::Unauthorized(_)), "{err}");
    assert!(err.to_string().contains("HTTP 401"), "{err}");

    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let nowhere = HikvisionIsapi::new(&format!("http://{closed_port}"), USER, PASSWORD);
    let (result, _) = pull(nowhere, 1, window(0, 30), output.clone()).await;
    let err = result.unwrap_err();
    assert!(matches!(err, RecordingError::Unreachable { .. }), "{err}");

    let source = HikvisionIsapi::new(&nvr.http_url, USER, PASSWORD);
    let (result, _) = pull(source.clone(), 1, window(-600, -300), output.clone()).await;
    assert!(matches!(
        result.unwrap_err(),
        RecordingError::NothingRecorded { .. }
    ));
    let (result, _) = pull(source.clone(), 2, window(0, 30), output.clone()).await;
    assert!(matches!(
        result.unwrap_err(),
        RecordingError::NothingRecorded { .. }
    ));

    let now = OffsetDateTime::now_utc();
    let future = TimeWindow {
        start: now - time::Duration::minutes(1),
        end: now + time::Duration::minutes(10),
    };
    let (result, _) = pull(source.clone(), 1, future, output.clone()).await;
    assert!(matches!(
        result.unwrap_err(),
        RecordingError::WindowInFuture { .. }
    ));
    let (result, _) = pull(source, 1, window(30, 0), output.clone()).await;
    assert!(matches!(
        result.unwrap_err(),
        RecordingError::InvalidWindow(_)
    ));
    assert!(!output.exists());
}
