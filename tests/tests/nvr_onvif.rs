//! Pulls from the stand-in ONVIF Profile G recorder (SOAP with UsernameToken, RTSP replay with
//! `Require: onvif-replay`, `Range: clock=`, `Rate-Control: no`) in front of the stand-in NVR's
//! gst-rtsp-server: the window with a gap, the headers the recorder saw, and the bad inputs.

use std::io::{BufReader, Write};

use witness_drivers::recording::digest;
use witness_drivers::recording::onvif::rtsp::{self, Message, TextMessage};
use witness_drivers::recording::onvif::soap::Caller;
use witness_drivers::recording::{OnvifRecorder, RecordingError, RecordingSource};
use witness_schemas::video::VideoChannel;
use witness_tests::daemon::Daemon;
use witness_tests::nvr::onvif::StandInOnvif;
use witness_tests::nvr::probe::{
    apart, assert_faststart_with_one_hole, assert_report_covers,
    assert_stopping_halfway_leaves_nothing, at, files_in, pull, segment, window,
};
use witness_tests::nvr::project::{
    add_project_with_rooms, ensure_pulled_source, pull_window_and_wait,
};
use witness_tests::nvr::{time_code, Quirks, Segment, StandInNvr};

const USER: &str = "onvif-user";
const PASSWORD: &str = "Witness12345";

async fn recorder(dir: &std::path::Path, segments: &[Segment]) -> (StandInNvr, StandInOnvif) {
    let nvr = StandInNvr::start(dir, USER, PASSWORD, segments)
        .await
        .unwrap();
    let onvif = StandInOnvif::start(&nvr).await.unwrap();
    (nvr, onvif)
}

#[tokio::test]
async fn ten_minute_window_with_a_gap_and_the_replay_headers() {
    let dir = tempfile::tempdir().unwrap();
    let (_nvr, onvif) = recorder(dir.path(), &[segment(1, -60, 240), segment(1, 270, 700)]).await;
    let out_dir = tempfile::tempdir().unwrap();
    let output = out_dir.path().join("room-1.mp4");
    let source = OnvifRecorder::new(&onvif.device_url, USER, PASSWORD);
    let started = std::time::Instant::now();
    let (result, progress) = pull(source, 1, window(0, 600), output.clone()).await;
    let report = result.unwrap();
    eprintln!("pulled in {:?}: {report:?}", started.elapsed());

    assert_report_covers(&report, (0, 600), &[(240, 270)]);
    // ONVIF tells only the outer bounds of what it holds: the gap comes from the packets.
    assert_eq!(report.recorded, vec![window(0, 600)]);
    assert_eq!(report.codec, "h264");
    assert_eq!(report.frames, 2850);

    // The recorder was asked for exactly the window, by clock time, as fast as it can send.
    let plays = onvif.plays();
    assert_eq!(plays.len(), 1, "{plays:?}");
    assert_eq!(plays[0].require.as_deref(), Some("onvif-replay"));
    assert_eq!(
        plays[0].range.as_deref(),
        Some("clock=20261120T000000.000Z-20261120T001000.000Z")
    );
    assert_eq!(plays[0].rate_control.as_deref(), Some("no"));
    assert_eq!(plays[0].status, 200);

    // The file, read by other tools: index in front, the hole kept, and the time burned into
    // the first and last frames' pixels at the window's edges.
    assert_faststart_with_one_hole(&output, report.frames, (239.8, 270.0));
    let pixels = time_code::frame_times(&output).unwrap();
    assert!(apart(pixels[0], at(0)).abs() <= 1.0, "{}", pixels[0]);
    let last = *pixels.last().unwrap();
    assert!(apart(last, at(600)).abs() <= 1.0, "{last}");
    assert_eq!(
        progress.last().map(|p| p.media_received),
        Some(std::time::Duration::from_secs(600))
    );
    assert_eq!(files_in(out_dir.path()), ["room-1.mp4"]);
}

#[tokio::test]
async fn wrong_password_is_unauthorized() {
    let dir = tempfile::tempdir().unwrap();
    let (_nvr, onvif) = recorder(dir.path(), &[segment(1, 0, 60)]).await;
    let output = dir.path().join("out.mp4");
    let source = OnvifRecorder::new(&onvif.device_url, USER, "not-the-password");
    let (result, _) = pull(source, 1, window(10, 50), output.clone()).await;
    let err = result.unwrap_err();
    assert!(matches!(err, RecordingError::Unauthorized(_)), "{err}");
    assert!(
        err.to_string().starts_with("录像机拒绝了用户名或密码"),
        "{err}"
    );
    assert!(!output.exists());
    assert!(onvif.plays().is_empty());
}

/// Tokens are dated by the recorder's clock: an NVR two hours off still answers, while a
/// token dated by our clock alone is refused (the stand-in allows five minutes, as devices do).
#[tokio::test]
async fn tokens_follow_the_recorders_clock() {
    let dir = tempfile::tempdir().unwrap();
    let (_nvr, onvif) = recorder(dir.path(), &[segment(1, 0, 60)]).await;
    onvif.set_clock_offset(time::Duration::hours(2));
    let url = onvif.device_url.clone();
    let (unsynced, segments) = tokio::task::spawn_blocking(move || {
        let caller = Caller::new(USER, PASSWORD, std::time::Duration::from_secs(5));
        let unsynced = caller.call(
            &url,
            "http://www.onvif.org/ver10/device/wsdl/GetServices",
            r#"<GetServices xmlns="http://www.onvif.org/ver10/device/wsdl"><IncludeCapability>false</IncludeCapability></GetServices>"#,
        );
        let source = OnvifRecorder::new(&url, USER, PASSWORD);
        (unsynced, source.search(1, window(10, 50)))
    })
    .await
    .unwrap();
    let err = unsynced.unwrap_err();
    assert!(matches!(err, RecordingError::Unauthorized(_)), "{err}");
    let segments = segments.unwrap();
    assert_eq!(segments.len(), 1);
    assert_eq!(segments[0].span, window(0, 60));
}

#[tokio::test]
async fn no_recording_is_nothing_recorded() {
    let dir = tempfile::tempdir().unwrap();
    // Channel 2 is listed (channels 1..=3) but holds nothing; channel 4 is not listed at all.
    let (_nvr, onvif) = recorder(dir.path(), &[segment(1, 0, 60), segment(3, 0, 60)]).await;
    let output = dir.path().join("out.mp4");
    for (channel, window) in [
        (1, window(120, 180)),
        (2, window(10, 50)),
        (4, window(10, 50)),
    ] {
        let source = OnvifRecorder::new(&onvif.device_url, USER, PASSWORD);
        let (result, _) = pull(source, channel, window, output.clone()).await;
        let err = result.unwrap_err();
        assert!(
            matches!(err, RecordingError::NothingRecorded { .. }),
            "channel {channel}: {err}"
        );
    }
    assert!(!output.exists());
    assert!(onvif.plays().is_empty());
}

#[tokio::test]
async fn stream_stopping_halfway_is_incomplete_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let (nvr, onvif) = recorder(dir.path(), &[segment(1, 0, 120)]).await;
    nvr.set_quirks(Quirks {
        stop_fraction: Some(0.5),
        ..Quirks::default()
    })
    .unwrap();
    assert_stopping_halfway_leaves_nothing(OnvifRecorder::new(&onvif.device_url, USER, PASSWORD))
        .await;
    assert_eq!(onvif.plays().len(), 1);
}

/// ONVIF reports only the outer bounds of a recording: a window inside a hole passes the
/// search, and the recorder's refusal of PLAY is reported with its status, not as FFmpeg's "5XX".
#[tokio::test]
async fn a_refused_replay_names_the_recorders_answer() {
    let dir = tempfile::tempdir().unwrap();
    let (_nvr, onvif) = recorder(dir.path(), &[segment(1, 0, 60), segment(1, 120, 180)]).await;
    let out_dir = tempfile::tempdir().unwrap();
    let output = out_dir.path().join("out.mp4");
    let source = OnvifRecorder::new(&onvif.device_url, USER, PASSWORD);
    let (result, _) = pull(source, 1, window(70, 110), output.clone()).await;
    let err = result.unwrap_err();
    assert!(matches!(err, RecordingError::BadReply(_)), "{err}");
    assert!(
        err.to_string()
            .contains("(the recorder refused the replay request): RTSP/1.0 4"),
        "{err}"
    );
    assert_eq!(files_in(out_dir.path()), Vec::<String>::new());
    let plays = onvif.plays();
    assert_eq!(plays.len(), 1, "{plays:?}");
    assert_ne!(plays[0].status, 200);
}

#[tokio::test]
async fn garbage_replies_and_unreachable_recorders_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let (_nvr, onvif) = recorder(dir.path(), &[segment(1, 0, 60)]).await;
    onvif.set_garbage_information(true);
    let source = OnvifRecorder::new(&onvif.device_url, USER, PASSWORD);
    let err = tokio::task::spawn_blocking(move || source.search(1, window(10, 50)))
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, RecordingError::BadReply(_)), "{err}");
    assert!(
        err.to_string()
            .contains("GetRecordingInformationResponse/RecordingInformation"),
        "{err}"
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let source = OnvifRecorder::new(&format!("http://127.0.0.1:{port}"), USER, PASSWORD);
    let err = tokio::task::spawn_blocking(move || source.search(1, window(10, 50)))
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, RecordingError::Unreachable { .. }), "{err}");
}

/// The stand-in's front must refuse what a Profile G recorder refuses, or the window test
/// could pass without the relay's headers.
#[tokio::test]
async fn the_stand_in_refuses_play_without_the_replay_headers() {
    let dir = tempfile::tempdir().unwrap();
    let (_nvr, onvif) = recorder(dir.path(), &[segment(1, 0, 60)]).await;
    let port = onvif.rtsp_port;
    let statuses = tokio::task::spawn_blocking(move || {
        let url = format!("rtsp://127.0.0.1:{port}/onvif-replay/REC_CH01");
        let cases: [&[(&str, &str)]; 3] = [
            &[
                ("Range", "clock=20261120T000010.000Z-20261120T000050.000Z"),
                ("Rate-Control", "no"),
            ],
            &[
                ("Require", "onvif-replay"),
                ("Range", "npt=0.000-"),
                ("Rate-Control", "no"),
            ],
            &[
                ("Require", "onvif-replay"),
                ("Range", "clock=20261120T000010.000Z-20261120T000050.000Z"),
            ],
        ];
        let mut statuses = Vec::new();
        for headers in cases {
            let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut exchange = |request: TextMessage| {
                Message::Text(request).write_to(&mut stream).unwrap();
                stream.flush().unwrap();
                match rtsp::read_message(&mut reader).unwrap() {
                    Some(Message::Text(response)) => response,
                    other => panic!("no RTSP response: {other:?}"),
                }
            };
            let mut setup = TextMessage::request("SETUP", &format!("{url}/stream=0"), 1);
            setup.set_header("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1");
            // Without an answer to its Digest challenge the front refuses.
            let refused = exchange(setup.clone());
            statuses.push(refused.status().unwrap());
            let challenge =
                digest::parse_challenge(refused.header("WWW-Authenticate").unwrap()).unwrap();
            let authorize = |request: &mut TextMessage| {
                let method = request.method().unwrap().to_string();
                let uri = request.uri().unwrap().to_string();
                let answer =
                    digest::authorization(&challenge, USER, PASSWORD, &method, &uri, "0a4f113b");
                request.set_header("Authorization", &answer);
            };
            authorize(&mut setup);
            statuses.push(exchange(setup).status().unwrap());
            let mut play = TextMessage::request("PLAY", &url, 2);
            play.set_header("Session", "0E5F1A2B");
            for (name, value) in headers {
                play.set_header(name, value);
            }
            authorize(&mut play);
            statuses.push(exchange(play).status().unwrap());
        }
        statuses
    })
    .await
    .unwrap();
    assert_eq!(statuses, [401, 200, 551, 401, 200, 457, 401, 200, 400]);
    assert!(onvif.plays().iter().all(|p| p.status != 200));
}

/// The daemon with `vendor = "onvif"`: channel 2 of the room is the second recording the
/// recorder lists; the pull becomes a project source like any other.
#[tokio::test]
async fn a_project_pull_from_an_onvif_recorder_becomes_a_project_source() -> anyhow::Result<()> {
    const NUMBER: &str = "HNZB-2026-ONVIF-001";
    let tmp = tempfile::tempdir()?;
    let nvr_dir = tmp.path().join("nvr");
    std::fs::create_dir_all(&nvr_dir)?;
    let (_nvr, onvif) = recorder(&nvr_dir, &[segment(2, -30, 50), segment(2, 70, 150)]).await;
    let config = tmp.path().join("witness.toml");
    std::fs::write(
        &config,
        format!(
            "[[nvrs]]\nname = \"onvif1\"\nvendor = \"onvif\"\nurl = \"{}\"\nuser = \"{USER}\"\n\
             password = \"{PASSWORD}\"\n",
            onvif.device_url
        ),
    )?;
    let daemon = Daemon::start(&tmp.path().join("data"), Some(&config)).await?;
    let mapping = [VideoChannel {
        room: "第二评标室".into(),
        nvr: "onvif1".into(),
        channel: 2,
        label: "全景".into(),
    }];
    add_project_with_rooms(&daemon, NUMBER, "ONVIF 录像机拉取测试", &mapping).await?;
    let pulls = pull_window_and_wait(
        &daemon,
        NUMBER,
        ("2026-11-20T08:00:00+08:00", "2026-11-20T08:02:00+08:00"),
        1,
    )
    .await?;
    ensure_pulled_source(&daemon, NUMBER, &pulls[0], (0, 120), &[(50, 70)]).await?;
    let plays = onvif.plays();
    anyhow::ensure!(plays.len() == 1, "{plays:?}");
    anyhow::ensure!(
        plays[0].range.as_deref() == Some("clock=20261120T000000.000Z-20261120T000200.000Z"),
        "{plays:?}"
    );
    Ok(())
}
