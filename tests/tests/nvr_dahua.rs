//! Pulls from the stand-in's Dahua face (`mediaFileFind.cgi` over HTTP Digest, `cam/playback`
//! from gst-rtsp-server behind RTSP Digest): a window of several minutes with a gap, the bad
//! inputs of issue 4, and a project pull through the real daemon with a `dahua` NVR.

use std::path::Path;
use std::time::Duration;

use anyhow::{ensure, Context};
use reqwest::Method;
use time::macros::offset;
use time::OffsetDateTime;
use witness_controller::cli::encode;
use witness_drivers::recording::{DahuaNvr, NvrClock, RecordingError, RecordingSource, TimeWindow};
use witness_schemas::api::ProjectDetail;
use witness_schemas::video::{NewVideoPull, VideoChannel, VideoPull, VideoPullStatus};
use witness_tests::daemon::Daemon;
use witness_tests::nvr::probe::{
    apart, assert_faststart_with_one_hole, assert_stopping_halfway_leaves_nothing, at, files_in,
    pull, segment, window,
};
use witness_tests::nvr::project::{add_project_with_rooms, seconds_between, wait_for_pulls};
use witness_tests::nvr::{time_code, Quirks, Segment, StandInNvr};

const USER: &str = "admin";
const PASSWORD: &str = "Witness12345";

/// The stand-in with its Dahua clock on China Standard Time, as Dahua NVRs in China are set.
async fn local_time_nvr(dir: &Path, segments: &[Segment]) -> StandInNvr {
    let nvr = StandInNvr::start(dir, USER, PASSWORD, segments)
        .await
        .unwrap();
    nvr.set_quirks(Quirks {
        z_is_local: true,
        ..Quirks::default()
    })
    .unwrap();
    nvr
}

fn dahua(nvr: &StandInNvr, password: &str) -> DahuaNvr {
    DahuaNvr::new(&nvr.http_url, USER, password)
        .with_clock(NvrClock::LocalMarkedZ(offset!(+8)))
        .with_rtsp_port(nvr.dahua_rtsp_port)
}

#[tokio::test]
async fn six_minute_window_with_a_gap_in_the_middle() {
    let dir = tempfile::tempdir().unwrap();
    // Recording from a minute before the window, a 30-second hole, on past its end.
    let nvr = local_time_nvr(dir.path(), &[segment(1, -60, 120), segment(1, 150, 400)]).await;
    let out_dir = tempfile::tempdir().unwrap();
    let output = out_dir.path().join("room-1.mp4");
    let (result, progress) = pull(dahua(&nvr, PASSWORD), 1, window(0, 360), output.clone()).await;
    let report = result.unwrap();

    assert!(apart(report.first_frame, at(0)).abs() <= 1.0, "{report:?}");
    assert!(apart(report.last_frame, at(360)).abs() <= 1.0, "{report:?}");
    assert_eq!(report.recorded, vec![window(0, 120), window(150, 360)]);
    assert_eq!(report.gaps.len(), 1, "{:?}", report.gaps);
    let gap = report.gaps[0];
    assert!(apart(gap.start, at(120)).abs() <= 1.0, "{gap}");
    assert!(apart(gap.end, at(150)).abs() <= 1.0, "{gap}");
    assert_eq!(report.codec, "h264");
    // 5 fps over 330 recorded seconds, every one of them.
    assert_eq!(report.frames, 1650);

    // The file as ffprobe reads it: index in front, the hole kept in the timeline.
    let times = assert_faststart_with_one_hole(&output, report.frames, (119.8, 150.0));
    assert!((359.0..360.0).contains(times.last().unwrap()), "{times:?}");
    // The pixels show the window's own minutes: the eight-hour zone shift was undone both in
    // the search and in cam/playback.
    let shown = time_code::frame_times(&output).unwrap();
    assert!(
        apart(shown[0], at(0)).abs() <= 1.0,
        "first frame shows {}",
        shown[0]
    );
    let last = *shown.last().unwrap();
    assert!(apart(last, at(360)).abs() <= 1.0, "last frame shows {last}");

    assert!(progress
        .windows(2)
        .all(|w| w[0].media_received <= w[1].media_received));
    assert_eq!(
        progress.last().unwrap().media_received,
        Duration::from_secs(360)
    );
    assert_eq!(files_in(out_dir.path()), ["room-1.mp4"]);
    // One findFile, and the find object freed afterwards (NVRs hold only a few).
    assert_eq!(nvr.searches(), 1);
    assert_eq!(nvr.dahua_open_finds(), 0);
}

#[tokio::test]
async fn wrong_password_nothing_recorded_and_bad_windows_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let nvr = local_time_nvr(dir.path(), &[segment(1, 0, 60)]).await;
    let output = dir.path().join("out.mp4");

    let (result, _) = pull(
        dahua(&nvr, "not-the-password"),
        1,
        window(0, 30),
        output.clone(),
    )
    .await;
    let err = result.unwrap_err();
    assert!(matches!(err, RecordingError::Unauthorized(_)), "{err}");
    assert!(err.to_string().contains("HTTP 401"), "{err}");

    // Before the recording, and a channel that recorded nothing.
    for (channel, empty) in [(1, window(-600, -300)), (2, window(0, 30))] {
        let (result, _) = pull(dahua(&nvr, PASSWORD), channel, empty, output.clone()).await;
        let err = result.unwrap_err();
        assert!(
            matches!(err, RecordingError::NothingRecorded { .. }),
            "{err}"
        );
        assert!(
            err.to_string().starts_with("录像机在该时段没有录像"),
            "{err}"
        );
    }
    // An NVR on local time read as UTC looks eight hours away: nothing, never the wrong hours.
    let naive = DahuaNvr::new(&nvr.http_url, USER, PASSWORD).with_rtsp_port(nvr.dahua_rtsp_port);
    let (result, _) = pull(naive, 1, window(0, 30), output.clone()).await;
    assert!(matches!(
        result.unwrap_err(),
        RecordingError::NothingRecorded { .. }
    ));

    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let nowhere = DahuaNvr::new(&format!("http://{closed_port}"), USER, PASSWORD);
    let (result, _) = pull(nowhere, 1, window(0, 30), output.clone()).await;
    let err = result.unwrap_err();
    assert!(matches!(err, RecordingError::Unreachable { .. }), "{err}");

    let now = OffsetDateTime::now_utc();
    let future = TimeWindow {
        start: now - time::Duration::minutes(1),
        end: now + time::Duration::minutes(10),
    };
    let (result, _) = pull(dahua(&nvr, PASSWORD), 1, future, output.clone()).await;
    assert!(matches!(
        result.unwrap_err(),
        RecordingError::WindowInFuture { .. }
    ));
    let (result, _) = pull(dahua(&nvr, PASSWORD), 0, window(0, 30), output.clone()).await;
    let err = result.unwrap_err();
    assert!(err.to_string().contains("channel must be"), "{err}");
    assert!(!output.exists());
    assert_eq!(nvr.dahua_open_finds(), 0);
}

#[tokio::test]
async fn a_stream_stopping_halfway_is_incomplete_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let nvr = local_time_nvr(dir.path(), &[segment(1, 0, 120)]).await;
    nvr.set_quirks(Quirks {
        z_is_local: true,
        stop_fraction: Some(0.5),
        ..Quirks::default()
    })
    .unwrap();
    assert_stopping_halfway_leaves_nothing(dahua(&nvr, PASSWORD)).await;
}

#[tokio::test]
async fn search_pages_through_find_next_file_until_found_is_zero() {
    let dir = tempfile::tempdir().unwrap();
    let recorded = [segment(1, 0, 20), segment(1, 30, 50), segment(1, 60, 80)];
    let nvr = local_time_nvr(dir.path(), &recorded).await;
    nvr.set_quirks(Quirks {
        z_is_local: true,
        dahua_page_limit: Some(1),
        ..Quirks::default()
    })
    .unwrap();
    let source = dahua(&nvr, PASSWORD);
    let segments = tokio::task::spawn_blocking(move || source.search(1, window(0, 90)))
        .await
        .unwrap()
        .unwrap();
    let spans: Vec<TimeWindow> = segments.iter().map(|s| s.span).collect();
    assert_eq!(spans, [window(0, 20), window(30, 50), window(60, 80)]);
    // Playback URIs name the segment's own span, and never the login.
    assert!(
        segments[1].playback_uri.ends_with(
            "/cam/playback?channel=1&starttime=2026_11_20_08_00_30&endtime=2026_11_20_08_00_50"
        ),
        "{:?}",
        segments[1]
    );
    assert!(segments.iter().all(|s| !s.playback_uri.contains(PASSWORD)));
    assert_eq!(nvr.dahua_open_finds(), 0);
}

#[tokio::test]
async fn a_garbage_reply_is_named_and_the_find_object_still_freed() {
    let dir = tempfile::tempdir().unwrap();
    let nvr = local_time_nvr(dir.path(), &[segment(1, 0, 60)]).await;
    nvr.set_quirks(Quirks {
        z_is_local: true,
        dahua_garbage_reply: true,
        ..Quirks::default()
    })
    .unwrap();
    let source = dahua(&nvr, PASSWORD);
    let err = tokio::task::spawn_blocking(move || source.search(1, window(0, 30)))
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, RecordingError::BadReply(_)), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("findNextFile") && message.contains("<html><body>503"),
        "{message}"
    );
    assert_eq!(nvr.dahua_open_finds(), 0);
}

#[tokio::test]
async fn a_project_pull_from_a_dahua_nvr_becomes_a_project_source() -> anyhow::Result<()> {
    const NUMBER: &str = "HNZB-2026-大华-001";
    let tmp = tempfile::tempdir()?;
    let nvr_dir = tmp.path().join("nvr");
    std::fs::create_dir_all(&nvr_dir)?;
    let nvr = local_time_nvr(&nvr_dir, &[segment(3, -30, 50), segment(3, 70, 150)]).await;
    let config = tmp.path().join("witness.toml");
    std::fs::write(
        &config,
        format!(
            "[[nvrs]]\nname = \"dahua1\"\nvendor = \"dahua\"\nurl = \"{}\"\nuser = \"{USER}\"\n\
             password = \"{PASSWORD}\"\nclock = \"local\"\nrtsp_port = {}\n",
            nvr.http_url, nvr.dahua_rtsp_port
        ),
    )?;
    let daemon = Daemon::start(&tmp.path().join("data"), Some(&config)).await?;
    let mapping = [VideoChannel {
        room: "第三评标室".into(),
        nvr: "dahua1".into(),
        channel: 3,
        label: "全景".into(),
    }];
    add_project_with_rooms(&daemon, NUMBER, "大华录像机拉取测试", &mapping).await?;
    let window = NewVideoPull {
        start: "2026-11-20T08:00:00+08:00".into(),
        end: "2026-11-20T08:02:00+08:00".into(),
    };
    let pulls_path = format!("/api/projects/{}/video/pulls", encode(NUMBER));
    let client = daemon.client();
    let queued: Vec<VideoPull> = client.send_json(Method::POST, &pulls_path, &window).await?;
    ensure!(queued.len() == 1, "{queued:?}");

    let pulls = wait_for_pulls(&daemon, NUMBER, 1).await?;
    let pull = &pulls[0];
    ensure!(pull.status == VideoPullStatus::Done, "{pull:?}");
    ensure!(pull.media_received_ms == 120_000, "{pull:?}");
    ensure!(seconds_between(pull.first_frame.as_deref().context("first")?, at(0)).abs() <= 1.0);
    ensure!(seconds_between(pull.last_frame.as_deref().context("last")?, at(120)).abs() <= 1.0);
    ensure!(pull.gaps.len() == 1, "{pull:?}");
    ensure!(
        seconds_between(&pull.gaps[0].start, at(50)).abs() <= 1.0,
        "{pull:?}"
    );
    ensure!(
        seconds_between(&pull.gaps[0].end, at(70)).abs() <= 1.0,
        "{pull:?}"
    );

    // The MP4 and its report are sources of the project under video/<room>/, so the archive
    // package carries them like any other file.
    let detail: ProjectDetail = client
        .get_json(&format!("/api/projects/{}", encode(NUMBER)))
        .await?;
    let rel = pull.rel_path.as_deref().context("rel_path")?;
    ensure!(rel.starts_with("video/第三评标室/"), "{rel}");
    for wanted in [rel.to_string(), rel.replace(".mp4", ".json")] {
        let file = detail
            .files
            .iter()
            .find(|f| f.rel_path == wanted)
            .with_context(|| format!("{wanted} not among {:?}", detail.files))?;
        ensure!(file.size > 0, "{file:?}");
    }
    Ok(())
}
