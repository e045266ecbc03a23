//! Evaluation video through the real daemon: rooms mapped to channels of the stand-in NVR, a
//! pull of the project's window from every channel, the gap of one channel reported with its
//! bounds, the videos registered as project sources, and Range serving of the MP4.

use std::path::Path;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use reqwest::header::{AUTHORIZATION, CONTENT_RANGE, RANGE};
use reqwest::{Method, StatusCode};
use time::macros::datetime;
use time::OffsetDateTime;
use witness_controller::cli::encode;
use witness_schemas::api::{DiscStatus, JobStatus, NewProject, ProjectDetail};
use witness_schemas::video::{NewVideoPull, VideoChannel, VideoPull, VideoPullStatus};
use witness_tests::daemon::{extract_with_xorriso, validate_bag, Daemon};
use witness_tests::nvr::project::{seconds_between, wait_for_pulls};
use witness_tests::nvr::{Quirks, Segment, StandInNvr};

const T0: OffsetDateTime = datetime!(2026-11-20 00:00 UTC);
const NUMBER: &str = "HNZB-2026-视频-001";

fn at(seconds: i64) -> OffsetDateTime {
    T0 + time::Duration::seconds(seconds)
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn write_config(tmp: &Path, nvr: &StandInNvr, max_connections: u32) -> Result<std::path::PathBuf> {
    let config = tmp.join("witness.toml");
    std::fs::write(
        &config,
        format!(
            "[[nvrs]]\nname = \"nvr1\"\nurl = \"{}\"\nuser = \"admin\"\npassword = \"Witness12345\"\n\
             max_connections = {max_connections}\n\n\
             [[drives]]\nname = \"bd1\"\nkind = \"virtual\"\nmedia = \"bd-r\"\ncapacity_bytes = 67108864\n\n\
             [copies]\noptical = 1\ndisk = 0\n",
            nvr.http_url
        ),
    )?;
    Ok(config)
}

#[tokio::test]
async fn rooms_pull_register_and_serve_with_range() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let nvr_dir = tmp.path().join("nvr");
    std::fs::create_dir_all(&nvr_dir)?;
    // Channel 1 recorded throughout; channel 2 lost 20 s in the middle.
    let nvr = StandInNvr::start(
        &nvr_dir,
        "admin",
        "Witness12345",
        &[
            Segment {
                channel: 1,
                start: at(-30),
                end: at(150),
            },
            Segment {
                channel: 2,
                start: at(-30),
                end: at(50),
            },
            Segment {
                channel: 2,
                start: at(70),
                end: at(150),
            },
        ],
    )
    .await?;
    let config = write_config(tmp.path(), &nvr, 1)?;
    let daemon = Daemon::start(&tmp.path().join("data"), Some(&config)).await?;
    let client = daemon.client();
    client
        .add_project(&NewProject {
            number: NUMBER.into(),
            name: "录像拉取测试项目".into(),
            category: witness_controller::cli::parse_category("construction")?,
            opening: "2026-11-20T08:00:00+08:00".into(),
        })
        .await?;
    let channels_path = format!("/api/projects/{}/video/channels", encode(NUMBER));
    let pulls_path = format!("/api/projects/{}/video/pulls", encode(NUMBER));

    // Bad mappings are refused whole, naming the problem.
    let unknown = vec![VideoChannel {
        room: "第一评标室".into(),
        nvr: "nvr9".into(),
        channel: 1,
        label: String::new(),
    }];
    let err = client
        .send_json::<_, Vec<VideoChannel>>(Method::PUT, &channels_path, &unknown)
        .await
        .unwrap_err()
        .to_string();
    ensure!(err.contains("nvr9"), "{err}");
    let no_channels: Vec<VideoChannel> = client.get_json(&channels_path).await?;
    ensure!(no_channels.is_empty());
    // No rooms mapped yet: a pull is refused.
    let window = NewVideoPull {
        start: rfc3339(at(0)),
        end: rfc3339(at(120)),
    };
    let err = client
        .send_json::<_, Vec<VideoPull>>(Method::POST, &pulls_path, &window)
        .await
        .unwrap_err()
        .to_string();
    ensure!(err.contains("尚未配置"), "{err}");

    let mapping = vec![
        VideoChannel {
            room: "第一评标室".into(),
            nvr: "nvr1".into(),
            channel: 1,
            label: "全景".into(),
        },
        VideoChannel {
            room: "第一评标室".into(),
            nvr: "nvr1".into(),
            channel: 2,
            label: "专家席".into(),
        },
    ];
    let saved: Vec<VideoChannel> = client
        .send_json(Method::PUT, &channels_path, &mapping)
        .await?;
    ensure!(saved == mapping, "{saved:?}");

    // Windows in the future or reversed are refused before anything is queued.
    let now = OffsetDateTime::now_utc();
    for (start, end, expect) in [
        (
            now - time::Duration::minutes(1),
            now + time::Duration::minutes(9),
            "in the future",
        ),
        (at(120), at(0), "end must be after start"),
    ] {
        let bad = NewVideoPull {
            start: rfc3339(start),
            end: rfc3339(end),
        };
        let err = client
            .send_json::<_, Vec<VideoPull>>(Method::POST, &pulls_path, &bad)
            .await
            .unwrap_err()
            .to_string();
        ensure!(err.contains(expect), "{err}");
    }

    let queued: Vec<VideoPull> = client.send_json(Method::POST, &pulls_path, &window).await?;
    ensure!(queued.len() == 2, "{queued:?}");
    let pulls = wait_for_pulls(&daemon, NUMBER, 2).await?;
    for pull in &pulls {
        ensure!(pull.status == VideoPullStatus::Done, "{pull:?}");
        ensure!(pull.media_received_ms == 120_000, "{pull:?}");
        ensure!(seconds_between(pull.first_frame.as_deref().unwrap(), at(0)).abs() <= 1.0);
        ensure!(seconds_between(pull.last_frame.as_deref().unwrap(), at(120)).abs() <= 1.0);
    }
    let ch1 = pulls.iter().find(|p| p.channel == 1).unwrap();
    let ch2 = pulls.iter().find(|p| p.channel == 2).unwrap();
    ensure!(ch1.gaps.is_empty(), "{ch1:?}");
    ensure!(ch2.gaps.len() == 1, "{ch2:?}");
    ensure!(
        seconds_between(&ch2.gaps[0].start, at(50)).abs() <= 1.0,
        "{ch2:?}"
    );
    ensure!(
        seconds_between(&ch2.gaps[0].end, at(70)).abs() <= 1.0,
        "{ch2:?}"
    );

    // Both videos and their reports are sources of the project, under video/<room>/.
    let detail: ProjectDetail = client
        .get_json(&format!("/api/projects/{}", encode(NUMBER)))
        .await?;
    let video_files: Vec<&str> = detail
        .files
        .iter()
        .map(|f| f.rel_path.as_str())
        .filter(|p| p.starts_with("video/第一评标室/"))
        .collect();
    ensure!(video_files.len() == 4, "{video_files:?}");
    for pull in &pulls {
        let rel = pull.rel_path.as_deref().context("rel_path")?;
        ensure!(video_files.contains(&rel), "{rel} not in {video_files:?}");
        ensure!(video_files.contains(&rel.replace(".mp4", ".json").as_str()));
    }

    // Search finds each pulled video with its window and gaps, linked to the player at it.
    let link = |id: i64| format!("/video.html?project={}&pull={id}&t=0", encode(NUMBER));
    let mut hits = Vec::new();
    for _ in 0..50 {
        let results: witness_schemas::search::SearchResults = client
            .get_json(&format!(
                "/api/search?q={}&kind=video",
                encode("第一评标室 录像时段")
            ))
            .await?;
        hits = results.hits;
        if hits
            .iter()
            .filter(|h| h.item_link.contains("&pull="))
            .count()
            == 2
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (pull, gaps) in [(ch1, "无缺失"), (ch2, "缺失 1 段")] {
        let hit = hits
            .iter()
            .find(|h| h.item_link == link(pull.id))
            .with_context(|| format!("pull {} not found by search: {hits:?}", pull.id))?;
        let snippet: String = hit.snippet.iter().map(|p| p.text.as_str()).collect();
        ensure!(snippet.contains(gaps), "{snippet}");
    }

    // A backup archives the pulled videos like any other source: the verified disc holds
    // them byte for byte, in a valid bag.
    let job = client.backup(NUMBER).await?;
    let job = tokio::time::timeout(
        Duration::from_secs(120),
        witness_controller::cli::wait(&client, job.id),
    )
    .await
    .context("the backup did not finish within 120 s")??;
    ensure!(job.status == JobStatus::Succeeded, "{job:?}");
    let disc = client
        .discs()
        .await?
        .into_iter()
        .find(|d| d.job_id == job.id && d.status == DiscStatus::Verified)
        .context("no verified disc")?;
    let extracted = tmp.path().join("disc");
    std::fs::create_dir_all(&extracted)?;
    extract_with_xorriso(Path::new(&disc.location), &extracted)?;
    validate_bag(&extracted)?;
    for pull in &pulls {
        let rel = pull.rel_path.as_deref().context("rel_path")?;
        let on_disc = extracted.join("data").join(rel);
        let stored = std::fs::read_dir(daemon.data.join("video"))?
            .map(|e| e.unwrap().path().join(format!("pull-{}.mp4", pull.id)))
            .find(|p| p.exists())
            .context("stored video")?;
        ensure!(
            std::fs::read(&on_disc).with_context(|| format!("{on_disc:?} on the disc"))?
                == std::fs::read(&stored)?,
            "{rel} differs on the disc"
        );
    }

    // Range serving: a slice of the file, byte for byte, and the whole file.
    let http = reqwest::Client::new();
    let token = daemon.admin_token().context("admin token")?;
    let url = format!("{}/api/video/pulls/{}/file", daemon.url, ch2.id);
    let whole = http
        .get(&url)
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .send()
        .await?;
    ensure!(whole.status() == StatusCode::OK, "{}", whole.status());
    ensure!(
        whole.headers()["content-type"] == "video/mp4",
        "{:?}",
        whole.headers()
    );
    let whole = whole.bytes().await?;
    // The same bytes as the stored file under <data>/video/<project id>/.
    let stored = std::fs::read_dir(daemon.data.join("video"))?
        .map(|e| e.unwrap().path().join(format!("pull-{}.mp4", ch2.id)))
        .find(|p| p.exists())
        .context("stored video")?;
    ensure!(
        whole == std::fs::read(&stored)?,
        "served bytes differ from {stored:?}"
    );
    let part = http
        .get(&url)
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .header(RANGE, "bytes=1000-1999")
        .send()
        .await?;
    ensure!(
        part.status() == StatusCode::PARTIAL_CONTENT,
        "{}",
        part.status()
    );
    let range = part.headers()[CONTENT_RANGE].to_str()?.to_string();
    ensure!(
        range == format!("bytes 1000-1999/{}", whole.len()),
        "{range}"
    );
    ensure!(part.bytes().await? == whole[1000..2000]);
    // The last bytes (a suffix range), and a range past the end: 416 naming the size.
    let tail = http
        .get(&url)
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .header(RANGE, "bytes=-500")
        .send()
        .await?;
    ensure!(tail.status() == StatusCode::PARTIAL_CONTENT);
    ensure!(tail.bytes().await? == whole[whole.len() - 500..]);
    let past = http
        .get(&url)
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .header(RANGE, format!("bytes={}-", whole.len()))
        .send()
        .await?;
    ensure!(
        past.status() == StatusCode::RANGE_NOT_SATISFIABLE
            && past.headers()[CONTENT_RANGE] == format!("bytes */{}", whole.len()).as_str(),
        "{:?}",
        past.headers()
    );
    // Without credentials: refused.
    let anonymous = http.get(&url).send().await?;
    ensure!(anonymous.status() == StatusCode::UNAUTHORIZED);
    let missing = http
        .get(format!("{}/api/video/pulls/999/file", daemon.url))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .send()
        .await?;
    ensure!(missing.status() == StatusCode::NOT_FOUND);
    Ok(())
}

#[tokio::test]
async fn a_pull_killed_midway_is_redone_after_restart() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let nvr_dir = tmp.path().join("nvr");
    std::fs::create_dir_all(&nvr_dir)?;
    let nvr = StandInNvr::start(
        &nvr_dir,
        "admin",
        "Witness12345",
        &[Segment {
            channel: 1,
            start: at(0),
            end: at(40),
        }],
    )
    .await?;
    // A real-time stream: the 30-second pull is surely still running when the daemon dies.
    nvr.set_quirks(Quirks {
        realtime: true,
        ..Quirks::default()
    })?;
    let config = write_config(tmp.path(), &nvr, 1)?;
    let mut daemon = Daemon::start(&tmp.path().join("data"), Some(&config)).await?;
    let client = daemon.client();
    client
        .add_project(&NewProject {
            number: NUMBER.into(),
            name: "录像拉取中断测试".into(),
            category: witness_controller::cli::parse_category("construction")?,
            opening: "2026-11-20T08:00:00+08:00".into(),
        })
        .await?;
    let channels_path = format!("/api/projects/{}/video/channels", encode(NUMBER));
    let pulls_path = format!("/api/projects/{}/video/pulls", encode(NUMBER));
    let _: Vec<VideoChannel> = client
        .send_json(
            Method::PUT,
            &channels_path,
            &vec![VideoChannel {
                room: "第二评标室".into(),
                nvr: "nvr1".into(),
                channel: 1,
                label: String::new(),
            }],
        )
        .await?;
    let _: Vec<VideoPull> = client
        .send_json(
            Method::POST,
            &pulls_path,
            &NewVideoPull {
                start: rfc3339(at(5)),
                end: rfc3339(at(35)),
            },
        )
        .await?;
    // Wait for media time to arrive (progress is real, not a timer), then kill -9.
    let mut seen = 0;
    for _ in 0..200 {
        let pulls: Vec<VideoPull> = client.get_json(&pulls_path).await?;
        seen = pulls[0].media_received_ms;
        if pulls[0].status == VideoPullStatus::Pulling && seen >= 2000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ensure!(
        (2000..30_000).contains(&seen),
        "progress before the kill: {seen} ms"
    );
    daemon.kill9();
    // The NVR serves at full speed again; the restarted daemon redoes the pull.
    nvr.set_quirks(Quirks::default())?;
    daemon.restart().await?;
    let pulls = wait_for_pulls(&daemon, NUMBER, 1).await?;
    let pull = &pulls[0];
    ensure!(pull.status == VideoPullStatus::Done, "{pull:?}");
    ensure!(seconds_between(pull.first_frame.as_deref().unwrap(), at(5)).abs() <= 1.0);
    ensure!(seconds_between(pull.last_frame.as_deref().unwrap(), at(35)).abs() <= 1.0);
    let detail: ProjectDetail = daemon
        .client()
        .get_json(&format!("/api/projects/{}", encode(NUMBER)))
        .await?;
    ensure!(
        detail
            .files
            .iter()
            .filter(|f| f.rel_path.ends_with(".mp4"))
            .count()
            == 1,
        "{:?}",
        detail.files
    );
    // No partial file of the killed attempt is left beside the finished one.
    let video_dir = std::fs::read_dir(daemon.data.join("video"))?
        .next()
        .context("video folder")??
        .path();
    let mut names: Vec<String> = std::fs::read_dir(&video_dir)?
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    ensure!(
        names
            == [
                format!("pull-{}.json", pull.id),
                format!("pull-{}.mp4", pull.id)
            ],
        "{names:?}"
    );
    Ok(())
}

#[tokio::test]
async fn pulls_from_one_nvr_never_exceed_its_connection_limit() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let nvr_dir = tmp.path().join("nvr");
    std::fs::create_dir_all(&nvr_dir)?;
    let segments: Vec<Segment> = (1..=4)
        .map(|channel| Segment {
            channel,
            start: at(-10),
            end: at(20),
        })
        .collect();
    let nvr = StandInNvr::start(&nvr_dir, "admin", "Witness12345", &segments).await?;
    // In real time, so pulls last long enough (6 s each) to overlap if they were allowed to.
    nvr.set_quirks(Quirks {
        realtime: true,
        ..Quirks::default()
    })?;
    let config = write_config(tmp.path(), &nvr, 2)?;
    let daemon = Daemon::start(&tmp.path().join("data"), Some(&config)).await?;
    let client = daemon.client();
    client
        .add_project(&NewProject {
            number: NUMBER.into(),
            name: "连接数上限测试项目".into(),
            category: witness_controller::cli::parse_category("construction")?,
            opening: "2026-11-20T08:00:00+08:00".into(),
        })
        .await?;
    let mapping: Vec<VideoChannel> = (1..=4)
        .map(|channel| VideoChannel {
            room: "第一评标室".into(),
            nvr: "nvr1".into(),
            channel,
            label: format!("通道{channel}"),
        })
        .collect();
    let _: Vec<VideoChannel> = client
        .send_json(
            Method::PUT,
            &format!("/api/projects/{}/video/channels", encode(NUMBER)),
            &mapping,
        )
        .await?;
    let window = NewVideoPull {
        start: rfc3339(at(0)),
        end: rfc3339(at(6)),
    };
    let queued: Vec<VideoPull> = client
        .send_json(
            Method::POST,
            &format!("/api/projects/{}/video/pulls", encode(NUMBER)),
            &window,
        )
        .await?;
    ensure!(queued.len() == 4, "{queued:?}");
    let pulls = wait_for_pulls(&daemon, NUMBER, 4).await?;
    for pull in &pulls {
        ensure!(pull.status == VideoPullStatus::Done, "{pull:?}");
    }
    // Two at a time: never three (the limit), and not one after another either (parallel).
    let most = nvr.most_playback_sessions()?;
    ensure!(
        most == 2,
        "the NVR had {most} playback sessions open at once"
    );
    Ok(())
}
