//! The synchronised grid in headless Chromium: eight channels of one room pulled from the
//! stand-in NVR, the grid seeks to a wall-clock time, and every tile's `currentTime` (plus its
//! offset from the window start) lands within 0.5 s of it. Both layouts are exercised.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use reqwest::Method;
use serde_json::{json, Value};
use time::macros::datetime;
use time::OffsetDateTime;
use witness_controller::cli::encode;
use witness_schemas::api::{NewProject, ProjectDetail};
use witness_schemas::video::{
    NewRecordingUpload, NewVideoPull, RecordingUpload, RecordingUploadStatus, VideoChannel,
    VideoPull, VideoPullStatus,
};
use witness_tests::browser::Browser;
use witness_tests::daemon::Daemon;
use witness_tests::nvr::{Segment, StandInNvr};

const T0: OffsetDateTime = datetime!(2026-11-20 00:00 UTC);
const NUMBER: &str = "HNZB-2026-GRID-8";
const FRESH_PASSWORD: &str = "见证-Witness-2026";

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

#[tokio::test]
async fn grid_of_eight_channels_seeks_together() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let nvr_dir = tmp.path().join("nvr");
    std::fs::create_dir_all(&nvr_dir)?;
    let segments: Vec<Segment> = (1..=8)
        .map(|channel| Segment {
            channel,
            // Channel 8 starts recording 5 s into the window: its tile is offset.
            start: T0 + time::Duration::seconds(if channel == 8 { 5 } else { -10 }),
            end: T0 + time::Duration::seconds(70),
        })
        .collect();
    let nvr = StandInNvr::start(&nvr_dir, "admin", "Witness12345", &segments).await?;
    let config = tmp.path().join("witness.toml");
    std::fs::write(
        &config,
        format!(
            "[[nvrs]]\nname = \"nvr1\"\nurl = \"{}\"\nuser = \"admin\"\npassword = \"Witness12345\"\nmax_connections = 4\n",
            nvr.http_url
        ),
    )?;
    let daemon = Daemon::start(&tmp.path().join("data"), Some(&config)).await?;
    let client = daemon.client();
    client
        .add_project(&NewProject {
            number: NUMBER.into(),
            name: "同步回放测试".into(),
            category: witness_controller::cli::parse_category("construction")?,
            opening: "2026-11-20T08:00:00+08:00".into(),
        })
        .await?;
    let mapping: Vec<VideoChannel> = (1..=8)
        .map(|channel| VideoChannel {
            room: "第一评标室".into(),
            nvr: "nvr1".into(),
            channel,
            label: if channel == 1 {
                "桌面".into()
            } else {
                format!("专家{}", channel - 1)
            },
        })
        .collect();
    let base = format!("/api/projects/{}/video", encode(NUMBER));
    let _: Vec<VideoChannel> = client
        .send_json(Method::PUT, &format!("{base}/channels"), &mapping)
        .await?;
    let _: Vec<VideoPull> = client
        .send_json(
            Method::POST,
            &format!("{base}/pulls"),
            &NewVideoPull {
                start: rfc3339(T0),
                end: rfc3339(T0 + time::Duration::seconds(60)),
            },
        )
        .await?;
    let mut done = false;
    for _ in 0..600 {
        let pulls: Vec<VideoPull> = client.get_json(&format!("{base}/pulls")).await?;
        if pulls.len() == 8 && pulls.iter().all(|p| p.status == VideoPullStatus::Done) {
            done = true;
            break;
        }
        ensure!(
            !pulls.iter().any(|p| p.status == VideoPullStatus::Failed),
            "{pulls:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ensure!(done, "the eight pulls did not finish");

    let browser = Browser::launch().await?;
    let page = format!("{}/video.html?project={}", daemon.url, encode(NUMBER));
    browser
        .open_as_first_admin(
            &page,
            &daemon.admin_password().context("one-time password")?,
            FRESH_PASSWORD,
        )
        .await?;
    browser
        .wait_for(
            "document.querySelectorAll('#pulls-table tbody tr').length === 8",
            Duration::from_secs(15),
        )
        .await?;
    ensure!(
        browser
            .eval("document.getElementById('error-banner').hidden")
            .await?
            == json!(true)
    );
    browser
        .click("#pulls-table tbody tr:first-child td:last-child button:nth-of-type(2)")
        .await?;
    browser
        .wait_for(
            "document.querySelectorAll('#grid video').length === 8 && \
             [...document.querySelectorAll('#grid video')].every(v => v.readyState >= 1)",
            Duration::from_secs(30),
        )
        .await
        .context("the eight tiles did not load")?;

    // Seek the grid to 08:00:37 China Standard Time, 37 s into the window.
    browser
        .eval("document.getElementById('grid-time').value = '2026-11-20T08:00:37'")
        .await?;
    browser.click("#grid-go").await?;
    browser
        .wait_for(
            "[...document.querySelectorAll('#grid video')].every(v => !v.seeking && v.readyState >= 2)",
            Duration::from_secs(30),
        )
        .await?;
    let times: Value = browser
        .eval(
            "[...document.querySelectorAll('#grid video')]
               .map(v => [v.currentTime, Number(v.dataset.offset)])",
        )
        .await?;
    let times = times.as_array().context("tile times")?;
    ensure!(times.len() == 8);
    for tile in times {
        let (current, offset) = (tile[0].as_f64().unwrap(), tile[1].as_f64().unwrap());
        ensure!(
            (current + offset - 37.0).abs() <= 0.5,
            "tile at {current} + {offset}: {times:?}"
        );
    }
    // Channel 8's recording began 5 s late: its file is 5 s behind the others.
    ensure!(
        times
            .iter()
            .any(|t| (t[1].as_f64().unwrap() - 5.0).abs() < 0.5),
        "{times:?}"
    );
    ensure!(
        browser
            .eval("document.getElementById('grid-clock').textContent")
            .await?
            == json!("2026-11-20 08:00:37")
    );

    // 询标 layout: the same eight tiles; a tile hidden into the drawer comes back.
    browser
        .eval(
            "const s = document.getElementById('grid-layout'); s.value = 'inquiry'; \
             s.dispatchEvent(new Event('change'));",
        )
        .await?;
    ensure!(
        browser
            .eval("document.getElementById('grid').className")
            .await?
            == json!("grid layout-inquiry")
    );
    browser.click("#grid .floating .tile .tile-hide").await?;
    ensure!(
        browser
            .eval("document.querySelectorAll('#grid .hidden-tile').length")
            .await?
            == json!(1)
    );
    browser.click("#grid-drawer button").await?;
    ensure!(
        browser
            .eval("document.querySelectorAll('#grid .hidden-tile').length")
            .await?
            == json!(0)
    );

    // The single player: speed, and frame steps of 1/5 s (the stand-in records 5 fps).
    browser
        .click("#pulls-table tbody tr:first-child td:last-child button:nth-of-type(1)")
        .await?;
    browser
        .wait_for(
            "document.getElementById('player').readyState >= 2",
            Duration::from_secs(30),
        )
        .await?;
    browser
        .eval(
            "const p = document.getElementById('player-speed'); p.value = '4'; \
             p.dispatchEvent(new Event('change'));",
        )
        .await?;
    ensure!(
        browser
            .eval("document.getElementById('player').playbackRate")
            .await?
            == json!(4)
    );
    browser
        .eval("document.getElementById('player').currentTime = 10")
        .await?;
    browser
        .wait_for(
            "!document.getElementById('player').seeking",
            Duration::from_secs(10),
        )
        .await?;
    for _ in 0..3 {
        browser.click("#player-forward").await?;
        browser
            .wait_for(
                "!document.getElementById('player').seeking",
                Duration::from_secs(10),
            )
            .await?;
    }
    let at = browser
        .eval("document.getElementById('player').currentTime")
        .await?
        .as_f64()
        .context("currentTime")?;
    ensure!((at - 10.6).abs() < 0.01, "three frames after 10 s: {at}");
    browser.click("#player-back").await?;
    browser
        .wait_for(
            "!document.getElementById('player').seeking",
            Duration::from_secs(10),
        )
        .await?;
    let at = browser
        .eval("document.getElementById('player').currentTime")
        .await?
        .as_f64()
        .context("currentTime")?;
    ensure!((at - 10.4).abs() < 0.01, "one frame back: {at}");
    Ok(())
}

#[tokio::test]
async fn the_upload_form_resumes_a_recording_and_it_joins_the_project() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let daemon = Daemon::start(&tmp.path().join("data"), None).await?;
    let client = daemon.client();
    client
        .add_project(&NewProject {
            number: NUMBER.into(),
            name: "录像上传页面测试".into(),
            category: witness_controller::cli::parse_category("construction")?,
            opening: "2026-11-20T08:00:00+08:00".into(),
        })
        .await?;
    // A recording of 20 MiB and a bit (three chunks of the page's 8 MiB), pseudo-random.
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let data: Vec<u8> = (0..20 * 1024 * 1024 + 4321)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect();
    let file = tmp.path().join("专家2-本地录像.mp4");
    std::fs::write(&file, &data)?;
    let sha256 = witness_controller::digest::digest_bytes(&data).sha256;

    // An earlier attempt got 5 MiB across before the connection dropped.
    let upload: RecordingUpload = client
        .send_json(
            Method::POST,
            &format!("/api/projects/{}/recordings/uploads", encode(NUMBER)),
            &NewRecordingUpload {
                room: "第二评标室".into(),
                seat: "专家2".into(),
                file_name: "专家2-本地录像.mp4".into(),
                size: data.len() as u64,
                sha256: sha256.clone(),
            },
        )
        .await?;
    let token = daemon.admin_token().context("admin token")?;
    let first = reqwest::Client::new()
        .put(format!(
            "{}/api/recordings/uploads/{}?offset=0",
            daemon.url, upload.id
        ))
        .header("Authorization", format!("Bearer {token}"))
        .body(data[..5 * 1024 * 1024].to_vec())
        .send()
        .await?;
    ensure!(first.status().is_success(), "{}", first.status());

    let browser = Browser::launch().await?;
    let page = format!("{}/video.html?project={}", daemon.url, encode(NUMBER));
    browser
        .open_as_first_admin(
            &page,
            &daemon.admin_password().context("one-time password")?,
            FRESH_PASSWORD,
        )
        .await?;
    browser
        .wait_for(
            "document.querySelectorAll('#uploads-table tbody tr').length === 1",
            Duration::from_secs(15),
        )
        .await
        .context("the open upload is not listed")?;
    browser
        .eval(
            "document.getElementById('upload-room').value = '第二评标室';
             document.getElementById('upload-seat').value = '专家2';",
        )
        .await?;
    browser.set_files("#upload-file", &[file.as_path()]).await?;
    browser.click("#upload-form button[type=submit]").await?;
    let label = browser
        .wait_for(
            "document.getElementById('upload-label').textContent.startsWith('上传完成') && \
             document.getElementById('upload-label').textContent",
            Duration::from_secs(120),
        )
        .await
        .with_context(|| "the upload did not finish".to_string())?;
    ensure!(
        label
            .as_str()
            .unwrap_or("")
            .contains("recordings/第二评标室/专家2/专家2-本地录像.mp4"),
        "{label}"
    );
    ensure!(
        browser
            .eval("document.getElementById('error-banner').hidden")
            .await?
            == json!(true)
    );
    // The page resumed the open upload (no second one) and the server's hash check passed,
    // so the page's SHA-256 agreed with ours.
    let uploads: Vec<RecordingUpload> = client
        .get_json(&format!(
            "/api/projects/{}/recordings/uploads",
            encode(NUMBER)
        ))
        .await?;
    ensure!(uploads.len() == 1, "{uploads:?}");
    ensure!(
        uploads[0].status == RecordingUploadStatus::Done && uploads[0].sha256 == sha256,
        "{uploads:?}"
    );
    let detail: ProjectDetail = client
        .get_json(&format!("/api/projects/{}", encode(NUMBER)))
        .await?;
    let source = detail
        .files
        .iter()
        .find(|f| f.rel_path == uploads[0].rel_path)
        .context("the recording is not a project source")?;
    ensure!(std::fs::read(&source.origin)? == data);
    Ok(())
}
