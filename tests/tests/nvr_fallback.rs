//! The ISAPI download fallback: a Hikvision NVR that refuses RTSP playback still delivers the
//! window through `/ISAPI/ContentMgmt/download`, measured by the same code (first and last
//! frame, gaps), and the report says which way the video came.

use witness_drivers::recording::{HikvisionIsapi, RecordingError, Transport};
use witness_tests::nvr::probe::{apart, at, files_in, pull, segment, window};
use witness_tests::nvr::{time_code, Quirks, StandInNvr};

const USER: &str = "admin";
const PASSWORD: &str = "Witness12345";

#[tokio::test]
async fn rtsp_refused_falls_back_to_the_isapi_download() {
    let dir = tempfile::tempdir().unwrap();
    let nvr = StandInNvr::start(
        dir.path(),
        USER,
        PASSWORD,
        &[segment(1, 0, 100), segment(1, 120, 200)],
    )
    .await
    .unwrap();
    nvr.set_quirks(Quirks {
        rtsp_refused: true,
        ..Quirks::default()
    })
    .unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let output = out_dir.path().join("room-1.mp4");
    let source = HikvisionIsapi::new(&nvr.http_url, USER, PASSWORD);
    let (result, _) = pull(source.clone(), 1, window(10, 190), output.clone()).await;
    let report = result.unwrap();
    eprintln!("{report:?}");

    assert_eq!(report.transport, Transport::Download);
    assert_eq!(nvr.downloads(), 1);
    // The refused playback was first taken for an expired URI: two fresh searches, then the
    // download.
    assert_eq!(nvr.searches(), 3);
    assert!(apart(report.first_frame, at(10)).abs() <= 1.0, "{report:?}");
    assert!(apart(report.last_frame, at(190)).abs() <= 1.0, "{report:?}");
    assert_eq!(report.gaps.len(), 1, "{:?}", report.gaps);
    assert!(apart(report.gaps[0].start, at(100)).abs() <= 1.0);
    assert!(apart(report.gaps[0].end, at(120)).abs() <= 1.0);
    assert_eq!(report.frames, (90 + 70) * 5);
    assert_eq!(report.codec, "h264");

    // The pixels agree with where the packets were placed.
    let shown = time_code::frame_times(&output).unwrap();
    assert_eq!(shown.len() as u64, report.frames);
    assert!(apart(shown[0], at(10)).abs() < 0.15, "{}", shown[0]);
    assert!(apart(*shown.last().unwrap(), at(190)).abs() <= 1.0);
    assert!(apart(report.first_frame, shown[0]).abs() < 0.15);
    // Only the finished MP4 is left: no partial, no downloaded file.
    assert_eq!(files_in(out_dir.path()), ["room-1.mp4"]);

    // With RTSP back, the same pull streams again.
    nvr.set_quirks(Quirks::default()).unwrap();
    let again = out_dir.path().join("again.mp4");
    let (result, _) = pull(source, 1, window(10, 190), again).await;
    let report = result.unwrap();
    assert_eq!(report.transport, Transport::Rtsp);
    assert_eq!(nvr.downloads(), 1);
}

#[tokio::test]
async fn neither_playback_nor_download_is_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let nvr = StandInNvr::start(dir.path(), USER, PASSWORD, &[segment(1, 0, 60)])
        .await
        .unwrap();
    // Every URI handed out has expired: the download refuses it too.
    nvr.set_quirks(Quirks {
        rtsp_refused: true,
        expired_uris: 10,
        ..Quirks::default()
    })
    .unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let output = out_dir.path().join("room-1.mp4");
    let source = HikvisionIsapi::new(&nvr.http_url, USER, PASSWORD);
    let (result, _) = pull(source, 1, window(0, 50), output).await;
    let err = result.unwrap_err();
    assert!(matches!(err, RecordingError::NoPlayback { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.starts_with("录像机既不能回放也不能下载"),
        "{message}"
    );
    assert!(message.contains("opening the RTSP stream"), "{message}");
    assert!(message.contains("download answered HTTP 404"), "{message}");
    assert_eq!(nvr.downloads(), 0);
    assert!(
        files_in(out_dir.path()).is_empty(),
        "{:?}",
        files_in(out_dir.path())
    );
}
