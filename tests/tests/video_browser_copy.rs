//! H.265 through the real daemon: a folder recording source (`vendor = "folder"`) holding an
//! H.265 and an H.264 channel, pulled for a window. The archived original stays H.265; the
//! replay page is served an H.264 browser copy of the same length, which headless Chromium (it
//! has no HEVC decoder) plays; the H.264 channel gets no copy.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{ensure, Context, Result};
use reqwest::header::AUTHORIZATION;
use reqwest::Method;
use serde_json::{json, Value};
use time::macros::offset;
use time::OffsetDateTime;
use witness_controller::cli::encode;
use witness_schemas::video::{NewVideoPull, VideoChannel, VideoPull, VideoPullStatus};
use witness_tests::browser::Browser;
use witness_tests::daemon::Daemon;
use witness_tests::nvr::probe::{at, T0};
use witness_tests::nvr::project::{add_project_with_rooms, seconds_between, wait_for_pulls};
use witness_tests::nvr::recording_file;

const NUMBER: &str = "HNZB-2026-H265-01";

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// Records 30 s from `start` into `<root>/<channel>/` named with its local start and end, in
/// `codec` (ffmpeg output options), a key frame a second.
fn record(root: &Path, channel: &str, start: OffsetDateTime, codec: &[&str]) -> PathBuf {
    let local = |t: OffsetDateTime| {
        t.to_offset(offset!(+8))
            .format(time::macros::format_description!(
                "[year][month][day][hour][minute][second]"
            ))
            .unwrap()
    };
    let end = start + time::Duration::seconds(30);
    let path = root
        .join(channel)
        .join(format!("{channel}_{}_{}.mp4", local(start), local(end)));
    let mut options = codec.to_vec();
    options.extend(["-g", "10", "-pix_fmt", "yuv420p"]);
    recording_file::record(&path, start, 30, "320x240", 10, &options).unwrap();
    path
}

/// Codec name, duration in seconds and frame count of the video stream, as ffprobe reads them.
fn probe(path: &Path) -> (String, f64, u64) {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args([
            "-show_entries",
            "stream=codec_name,nb_frames:format=duration",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .expect("ffprobe");
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    (
        json["streams"][0]["codec_name"]
            .as_str()
            .unwrap_or("")
            .to_string(),
        json["format"]["duration"]
            .as_str()
            .and_then(|d| d.parse().ok())
            .unwrap_or(0.0),
        json["streams"][0]["nb_frames"]
            .as_str()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
    )
}

#[tokio::test]
async fn h265_is_archived_as_is_and_replayed_from_an_h264_copy() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let recordings = tmp.path().join("recordings");
    record(
        &recordings,
        "01",
        at(-10),
        &[
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-tag:v",
            "hvc1",
            // As NVRs encode: no B-frames, so every GOP is closed.
            "-x265-params",
            "log-level=error:bframes=0",
        ],
    );
    record(
        &recordings,
        "02",
        at(-10),
        &["-c:v", "libx264", "-preset", "ultrafast"],
    );
    let config = tmp.path().join("witness.toml");
    std::fs::write(
        &config,
        format!(
            "[[nvrs]]\nname = \"recorder\"\nvendor = \"folder\"\npath = \"{}\"\nclock = \"local\"\n",
            recordings.display()
        ),
    )?;
    let data = tmp.path().join("data");
    let daemon = Daemon::start(&data, Some(&config)).await?;
    let mapping: Vec<VideoChannel> = [(1, "桌面"), (2, "专家1")]
        .into_iter()
        .map(|(channel, label)| VideoChannel {
            room: "第一评标室".into(),
            nvr: "recorder".into(),
            channel,
            label: label.into(),
        })
        .collect();
    add_project_with_rooms(&daemon, NUMBER, "H.265 回放测试", &mapping).await?;
    let client = daemon.client();
    let _: Vec<VideoPull> = client
        .send_json(
            Method::POST,
            &format!("/api/projects/{}/video/pulls", encode(NUMBER)),
            &NewVideoPull {
                start: rfc3339(T0),
                end: rfc3339(at(15)),
            },
        )
        .await?;
    let pulls = wait_for_pulls(&daemon, NUMBER, 2).await?;
    for pull in &pulls {
        ensure!(pull.status == VideoPullStatus::Done, "{pull:?}");
        ensure!(pull.error.is_none(), "{pull:?}");
        ensure!(seconds_between(pull.first_frame.as_deref().unwrap(), T0).abs() <= 1.0);
        ensure!(pull.gaps.is_empty(), "{pull:?}");
    }
    let hevc = pulls.iter().find(|p| p.channel == 1).context("channel 1")?;
    let avc = pulls.iter().find(|p| p.channel == 2).context("channel 2")?;
    ensure!(hevc.codec.as_deref() == Some("hevc"), "{hevc:?}");
    ensure!(avc.codec.as_deref() == Some("h264"), "{avc:?}");

    // The original, as archived, is untouched H.265; the copy beside it is H.264, as long.
    let dir = std::fs::read_dir(data.join("video"))?
        .next()
        .context("no video folder")??
        .path();
    let original = dir.join(format!("pull-{}.mp4", hevc.id));
    let copy = dir.join(format!("pull-{}.browser.mp4", hevc.id));
    let (original_codec, original_seconds, original_frames) = probe(&original);
    let (copy_codec, copy_seconds, copy_frames) = probe(&copy);
    // Every picture of the 15 s at 10 fps, none lost in decoding and encoding again.
    ensure!(
        original_frames == 150 && copy_frames == original_frames,
        "original {original_frames} frames, copy {copy_frames}"
    );
    ensure!(original_codec == "hevc", "{original_codec}");
    ensure!(copy_codec == "h264", "{copy_codec}");
    ensure!(
        (original_seconds - copy_seconds).abs() <= 0.5 && (original_seconds - 15.0).abs() <= 1.0,
        "original {original_seconds} s, copy {copy_seconds} s"
    );
    ensure!(!dir.join(format!("pull-{}.browser.mp4", avc.id)).exists());
    let report: Value = serde_json::from_slice(&std::fs::read(original.with_extension("json"))?)?;
    ensure!(report["transport"] == "folder", "{report}");
    ensure!(report["browser_copy"] == "h264", "{report}");
    ensure!(report["codec"] == "hevc", "{report}");

    // The player is served the copy for channel 1 and the original for channel 2.
    let token = daemon.admin_token().context("admin token")?;
    let http = reqwest::Client::new();
    for (pull, served) in [
        (hevc, &copy),
        (avc, &dir.join(format!("pull-{}.mp4", avc.id))),
    ] {
        let bytes = http
            .get(format!("{}/api/video/pulls/{}/file", daemon.url, pull.id))
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        ensure!(
            bytes.as_ref() == std::fs::read(served)?.as_slice(),
            "pull {}",
            pull.id
        );
    }

    // Chromium plays the copy: it decodes pictures and its clock runs.
    let browser = Browser::launch().await?;
    browser.goto(&format!("{}/video.html", daemon.url)).await?;
    let played = browser
        .eval(&format!(
            "(async () => {{
               const v = document.createElement('video');
               v.muted = true;
               document.body.appendChild(v);
               const blob = await (await fetch('/api/video/pulls/{id}/file',
                 {{ headers: {{ Authorization: 'Bearer {token}' }} }})).blob();
               v.src = URL.createObjectURL(blob);
               await v.play();
               await new Promise(r => setTimeout(r, 1500));
               return [v.duration, v.currentTime, v.videoWidth, v.error && v.error.code,
                       v.canPlayType('video/mp4; codecs=\"hvc1.1.6.L93.B0\"')];
             }})()",
            id = hevc.id
        ))
        .await?;
    let duration = played[0].as_f64().unwrap_or(0.0);
    ensure!(
        (duration - copy_seconds).abs() <= 0.5,
        "{played} vs {copy_seconds} s (original {original_seconds} s)"
    );
    ensure!(played[1].as_f64().unwrap_or(0.0) > 0.5, "{played}");
    ensure!(played[2] == json!(320), "{played}");
    ensure!(played[3].is_null(), "{played}");
    // Why the copy exists: this Chromium has no HEVC decoder.
    ensure!(played[4] == json!(""), "{played}");
    Ok(())
}
