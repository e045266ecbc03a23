//! Pulls from the stand-in Hikvision NVR (ISAPI over HTTP, RTSP from gst-rtsp-server): the
//! ten-minute window test, each firmware quirk, and the bad inputs of issue 4.

use std::path::Path;
use std::time::Duration;

use time::macros::offset;
use time::OffsetDateTime;
use witness_drivers::recording::{
    HikvisionIsapi, NvrClock, RecordingError, RecordingSource, TimeWindow,
};
use witness_tests::nvr::probe::{
    apart, assert_faststart_with_one_hole, assert_stopping_halfway_leaves_nothing, at,
    ffprobe_packet_times, files_in, pull, segment, window,
};
use witness_tests::nvr::{time_code, Quirks, Segment, StandInNvr};

const USER: &str = "admin";
const PASSWORD: &str = "Witness12345";

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
    let times = assert_faststart_with_one_hole(&output, report.frames, (239.8, 270.0));
    assert!(
        (599.0..600.0).contains(times.last().unwrap()),
        "{:?}",
        times.last()
    );

    // What the frames really show, read from the time code in their pixels (not from packet
    // timestamps): the file starts and ends at the window, and every frame sits on the
    // timeline where its recording time says, across the hole too.
    let shown = time_code::frame_times(&output).unwrap();
    assert_eq!(shown.len(), times.len());
    assert!(
        apart(shown[0], at(0)).abs() <= 1.0,
        "first frame shows {}",
        shown[0]
    );
    assert!(
        apart(*shown.last().unwrap(), at(600)).abs() <= 1.0,
        "last frame shows {}",
        shown.last().unwrap()
    );
    assert!(
        apart(report.first_frame, shown[0]).abs() < 0.15,
        "{report:?}"
    );
    assert!(
        apart(report.last_frame, *shown.last().unwrap()).abs() < 0.15,
        "{report:?}"
    );
    for (pts, shown) in times.iter().zip(&shown) {
        let placed = report.first_frame + time::Duration::seconds_f64(*pts);
        assert!(
            apart(placed, *shown).abs() < 0.15,
            "the frame at {pts} s shows {shown}"
        );
    }

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
    // The pixels agree: nothing recorded after the window's end got into the file.
    let shown = time_code::frame_times(&output).unwrap();
    assert!(apart(shown[0], at(20)).abs() < 0.15, "{}", shown[0]);
    let last = *shown.last().unwrap();
    assert!(last < at(60) && apart(last, at(60)).abs() <= 1.0, "{last}");
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
    let (result, _) = pull(source, 1, window(60, 110), output.clone()).await;
    let report = result.unwrap();
    assert_eq!(report.recorded, vec![window(60, 110)]);
    assert!(report.gaps.is_empty(), "{:?}", report.gaps);
    assert!(apart(report.first_frame, at(60)).abs() <= 1.0);
    // The frames are the window's, not the previous segment's.
    let shown = time_code::frame_times(&output).unwrap();
    assert!(apart(shown[0], at(60)).abs() < 0.15, "{}", shown[0]);
    assert!(apart(*shown.last().unwrap(), at(110)).abs() <= 1.0);
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
    assert_stopping_halfway_leaves_nothing(HikvisionIsapi::new(&nvr.http_url, USER, PASSWORD))
        .await;
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
