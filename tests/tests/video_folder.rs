//! The folder recording source: files other systems dropped into `<root>/<channel>/`, named as
//! Hikvision exports, ffmpeg's segment muxer and MediaMTX name them. A window is cut out of
//! several files into one faststart MP4 with the hole between files kept; half-written files
//! are skipped until stable; files whose time cannot be told are refused by name. What the
//! frames really show is read from the time code drawn into their pixels.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use time::macros::offset;
use time::{OffsetDateTime, UtcOffset};
use witness_drivers::recording::{
    FolderSource, PullReport, RecordingError, RecordingSource, TimeWindow, Transport,
};
use witness_tests::nvr::probe::{
    apart, at, ffprobe_packet_times, files_in, pull, top_level_boxes, window,
};
use witness_tests::nvr::{recording_file, time_code};

/// China Standard Time, what the exporting systems write into names.
const CST: UtcOffset = offset!(+8);

/// `YYYYMMDDHHMMSS` in China Standard Time, as NVR exports and ffmpeg's strftime write it.
fn compact(t: OffsetDateTime) -> String {
    t.to_offset(CST)
        .format(time::macros::format_description!(
            "[year][month][day][hour][minute][second]"
        ))
        .unwrap()
}

/// Records `seconds` from `start` into `path` (H.264, 160x120, 5 fps, a key frame every
/// second), with extra ffmpeg output options after those.
fn record(path: &Path, start: OffsetDateTime, seconds: i64, extra: &[&str]) {
    let mut codec = vec![
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-g",
        "5",
        "-bf",
        "0",
    ];
    codec.extend_from_slice(extra);
    recording_file::record(path, start, seconds, "160x120", 5, &codec).unwrap();
}

/// Every frame sits on the timeline where the time code in its pixels says it was recorded.
fn assert_frames_placed_truly(output: &Path, report: &PullReport) -> Vec<OffsetDateTime> {
    let times = ffprobe_packet_times(output);
    let shown = time_code::frame_times(output).unwrap();
    assert_eq!(shown.len(), times.len());
    assert_eq!(times.len() as u64, report.frames);
    assert!(
        apart(report.first_frame, shown[0]).abs() < 0.15,
        "{report:?}"
    );
    for (pts, shown) in times.iter().zip(&shown) {
        let placed = report.first_frame + time::Duration::seconds_f64(*pts);
        assert!(
            apart(placed, *shown).abs() < 0.15,
            "the frame at {pts} s shows {shown}"
        );
    }
    shown
}

#[tokio::test]
async fn ten_minute_window_out_of_three_files_with_a_gap() {
    let root = tempfile::tempdir().unwrap();
    let channel = root.path().join("01");
    // A Hikvision "download by time" export with start and end (a key frame every 2 s, so the
    // window starts between two), then a 30-second hole, then ffmpeg segment-muxer files named
    // by their start only (the second in MediaMTX's style).
    record(
        &channel.join(format!(
            "ch01_{}_{}.mp4",
            compact(at(-61)),
            compact(at(240))
        )),
        at(-61),
        301,
        &["-g", "10"],
    );
    record(
        &channel.join(format!("{}.mp4", compact(at(270)))),
        at(270),
        200,
        &[],
    );
    let mediamtx = at(470)
        .to_offset(CST)
        .format(time::macros::format_description!(
            "[year]-[month]-[day]_[hour]-[minute]-[second]-000000"
        ))
        .unwrap();
    record(&channel.join(format!("{mediamtx}.mp4")), at(470), 230, &[]);
    // Not video: ignored, not refused.
    std::fs::write(channel.join("说明.txt"), "导出说明").unwrap();
    recording_file::settle(&channel.join("说明.txt")).unwrap();
    // Another channel's files stay out.
    record(
        &root.path().join("ch02").join("20261120080000.mp4"),
        at(0),
        30,
        &[],
    );

    let source = FolderSource::new(root.path()).with_names_offset(CST);
    let segments = source.search(1, window(0, 600)).unwrap();
    let spans: Vec<TimeWindow> = segments.iter().map(|s| s.span).collect();
    assert_eq!(
        spans,
        vec![window(-61, 240), window(270, 470), window(470, 700)]
    );

    let out_dir = tempfile::tempdir().unwrap();
    let output = out_dir.path().join("room-1.mp4");
    let (result, progress) = pull(source.clone(), 1, window(0, 600), output.clone()).await;
    let report = result.unwrap();
    eprintln!("{report:?}");
    assert_eq!(report.transport, Transport::Folder);
    assert_eq!(report.codec, "h264");
    // The copy starts at the key frame at or before the window start: one second before it.
    assert_eq!(report.first_frame, at(-1), "{report:?}");
    assert!(apart(report.last_frame, at(600)).abs() <= 1.0, "{report:?}");
    assert_eq!(report.gaps.len(), 1, "{:?}", report.gaps);
    assert!(
        apart(report.gaps[0].start, at(240)).abs() <= 1.0,
        "{:?}",
        report.gaps
    );
    assert!(
        apart(report.gaps[0].end, at(270)).abs() <= 1.0,
        "{:?}",
        report.gaps
    );
    assert_eq!(
        report.recorded,
        vec![window(0, 240), window(270, 470), window(470, 600)]
    );
    // 570 recorded seconds at 5 fps and the second from the key frame on; the files join at
    // 470 s without a lost or doubled frame.
    assert_eq!(report.frames, 2855);
    assert_eq!(report.dropped_packets, 0);

    let boxes = top_level_boxes(&output);
    let moov = boxes.iter().position(|b| b == "moov").unwrap();
    let mdat = boxes.iter().position(|b| b == "mdat").unwrap();
    assert!(moov < mdat, "{boxes:?}");
    let shown = assert_frames_placed_truly(&output, &report);
    assert!(apart(shown[0], at(-1)).abs() < 0.15, "{}", shown[0]);
    assert!(apart(*shown.last().unwrap(), at(600)).abs() <= 1.0);
    let holes: Vec<_> = shown
        .windows(2)
        .filter(|w| apart(w[1], w[0]) > 1.0)
        .collect();
    assert_eq!(holes.len(), 1, "{holes:?}");

    assert!(progress
        .windows(2)
        .all(|w| w[0].media_received <= w[1].media_received));
    assert_eq!(
        progress.last().unwrap().media_received,
        Duration::from_secs(600)
    );
    assert_eq!(files_in(out_dir.path()), ["room-1.mp4"]);
}

#[tokio::test]
async fn half_written_files_are_skipped_until_stable() {
    let root = tempfile::tempdir().unwrap();
    let channel = root.path().join("2");
    let utc_name = |start: i64, end: i64| {
        let f = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
        format!(
            "{}_{}",
            at(start).format(f).unwrap(),
            at(end).format(f).unwrap()
        )
    };
    record(
        &channel.join(format!("{}.mp4", utc_name(0, 60))),
        at(0),
        60,
        &[],
    );
    let growing = channel.join(format!("{}.mp4", utc_name(60, 120)));
    record(&growing, at(60), 60, &[]);
    // Just changed, as a file a recorder is still appending to.
    std::fs::File::options()
        .write(true)
        .open(&growing)
        .unwrap()
        .set_modified(SystemTime::now())
        .unwrap();
    let part = channel.join(format!("{}.mp4.part", utc_name(120, 180)));
    record(&part, at(120), 60, &["-f", "mp4"]);

    let source = FolderSource::new(root.path()).with_stable_after(Duration::from_secs(30));
    let out_dir = tempfile::tempdir().unwrap();
    let output = out_dir.path().join("ch2.mp4");
    let (result, _) = pull(source.clone(), 2, window(0, 180), output.clone()).await;
    let report = result.unwrap();
    assert_eq!(report.recorded, vec![window(0, 60)]);
    assert_eq!(report.gaps.len(), 1, "{:?}", report.gaps);
    assert!(
        apart(report.gaps[0].start, at(60)).abs() <= 1.0,
        "{:?}",
        report.gaps
    );
    assert_eq!(report.gaps[0].end, at(180));
    assert_eq!(report.frames, 300);

    // Once the recorder has left it alone, the file is taken; the .part never is.
    recording_file::settle(&growing).unwrap();
    let output = out_dir.path().join("ch2-again.mp4");
    let (result, _) = pull(source.clone(), 2, window(0, 180), output.clone()).await;
    let report = result.unwrap();
    assert_eq!(report.recorded, vec![window(0, 60), window(60, 120)]);
    assert_eq!(report.gaps.len(), 1, "{:?}", report.gaps);
    assert!(
        apart(report.gaps[0].start, at(120)).abs() <= 1.0,
        "{:?}",
        report.gaps
    );
    assert_eq!(report.frames, 600);
    assert_frames_placed_truly(&output, &report);
}

#[tokio::test]
async fn files_whose_time_cannot_be_told_are_refused_by_name() {
    let root = tempfile::tempdir().unwrap();
    let channel = root.path().join("03");
    let out_dir = tempfile::tempdir().unwrap();
    let output = out_dir.path().join("ch3.mp4");
    let source = FolderSource::new(root.path()).with_names_offset(CST);

    // No time in the name, but the container says when: taken.
    record(
        &channel.join("camera-export.mp4"),
        at(0),
        40,
        &["-metadata", "creation_time=2026-11-20T00:00:00.000000Z"],
    );
    let (result, _) = pull(source.clone(), 3, window(10, 30), output.clone()).await;
    let report = result.unwrap();
    assert_eq!(report.recorded, vec![window(10, 30)]);
    assert!(report.gaps.is_empty(), "{:?}", report.gaps);
    assert_frames_placed_truly(&output, &report);

    // Neither: refused, naming the file, and nothing is written.
    let unknown = channel.join("评标室录像.mp4");
    record(&unknown, at(0), 5, &[]);
    let second = out_dir.path().join("ch3-second.mp4");
    let (result, _) = pull(source.clone(), 3, window(10, 30), second.clone()).await;
    let message = result.unwrap_err().to_string();
    assert!(
        message.starts_with("录像机的回复无法理解") || message.contains("无法确定文件的录制时间"),
        "{message}"
    );
    assert!(message.contains("评标室录像.mp4"), "{message}");
    assert!(message.contains("creation_time"), "{message}");
    assert!(!second.exists());
    std::fs::remove_file(&unknown).unwrap();

    // An end before the start in the name.
    let reversed = channel.join(format!("ch03_{}_{}.mp4", compact(at(60)), compact(at(0))));
    record(&reversed, at(0), 5, &[]);
    let message = source.search(3, window(0, 30)).unwrap_err().to_string();
    assert!(message.contains("not after the start"), "{message}");
    assert!(message.contains(&reversed.file_name().unwrap().to_string_lossy().to_string()));
    std::fs::remove_file(&reversed).unwrap();

    // A window nothing covers, a channel without a folder, a folder that does not exist.
    let (result, _) = pull(source.clone(), 3, window(-600, -300), second.clone()).await;
    assert!(matches!(
        result,
        Err(RecordingError::NothingRecorded { .. })
    ));
    let (result, _) = pull(source.clone(), 9, window(10, 30), second.clone()).await;
    assert!(matches!(
        result,
        Err(RecordingError::NothingRecorded { .. })
    ));
    let missing = FolderSource::new(&PathBuf::from("/nonexistent/witness-recordings"));
    let (result, _) = pull(missing, 3, window(10, 30), second.clone()).await;
    let err = result.unwrap_err();
    assert!(matches!(err, RecordingError::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/witness-recordings"));
    assert!(!second.exists());
}
