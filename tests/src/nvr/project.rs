//! Project pulls through the real daemon: a project with its rooms mapped to NVR channels, and
//! waiting for its pulls to finish.

use std::time::Duration;

use anyhow::Context;
use reqwest::Method;
use time::OffsetDateTime;
use witness_controller::cli::encode;
use witness_schemas::api::{NewProject, ProjectDetail};
use witness_schemas::video::{NewVideoPull, VideoChannel, VideoPull, VideoPullStatus};

use super::probe::at;
use crate::daemon::Daemon;

/// Adds project `number` (bid opening 2026-11-20 08:00 CST) and maps its rooms to channels.
pub async fn add_project_with_rooms(
    daemon: &Daemon,
    number: &str,
    name: &str,
    mapping: &[VideoChannel],
) -> anyhow::Result<()> {
    let client = daemon.client();
    client
        .add_project(&NewProject {
            number: number.into(),
            name: name.into(),
            category: witness_controller::cli::parse_category("construction")?,
            opening: "2026-11-20T08:00:00+08:00".into(),
        })
        .await?;
    let saved: Vec<VideoChannel> = client
        .send_json(
            Method::PUT,
            &format!("/api/projects/{}/video/channels", encode(number)),
            &mapping,
        )
        .await
        .context("mapping rooms to NVR channels")?;
    anyhow::ensure!(saved == mapping, "{saved:?}");
    Ok(())
}

/// The pulls of project `number` once all `count` of them are done or failed (60 s at most).
pub async fn wait_for_pulls(
    daemon: &Daemon,
    number: &str,
    count: usize,
) -> anyhow::Result<Vec<VideoPull>> {
    let client = daemon.client();
    let path = format!("/api/projects/{}/video/pulls", encode(number));
    for _ in 0..600 {
        let pulls: Vec<VideoPull> = client.get_json(&path).await?;
        let finished = pulls
            .iter()
            .filter(|p| matches!(p.status, VideoPullStatus::Done | VideoPullStatus::Failed))
            .count();
        if pulls.len() == count && finished == count {
            return Ok(pulls);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("pulls did not finish within 60 s")
}

/// Seconds from `b` to the RFC 3339 time `a`, signed.
pub fn seconds_between(a: &str, b: OffsetDateTime) -> f64 {
    let a = OffsetDateTime::parse(a, &time::format_description::well_known::Rfc3339).unwrap();
    (a - b).as_seconds_f64()
}

/// Queues a pull of `start`–`end` (RFC 3339) for every mapped room of project `number` and
/// waits for the `count` pulls to finish.
pub async fn pull_window_and_wait(
    daemon: &Daemon,
    number: &str,
    (start, end): (&str, &str),
    count: usize,
) -> anyhow::Result<Vec<VideoPull>> {
    let window = NewVideoPull {
        start: start.into(),
        end: end.into(),
    };
    let path = format!("/api/projects/{}/video/pulls", encode(number));
    let queued: Vec<VideoPull> = daemon
        .client()
        .send_json(Method::POST, &path, &window)
        .await?;
    anyhow::ensure!(queued.len() == count, "{queued:?}");
    wait_for_pulls(daemon, number, count).await
}

/// Checks a finished pull of project `number`: done, its first and last frames within 1 s of
/// `covered` and its gaps within 1 s of `gaps` (seconds after the tests' T0), and its MP4 and
/// JSON report among the project's files under `video/<room>/`.
pub async fn ensure_pulled_source(
    daemon: &Daemon,
    number: &str,
    pull: &VideoPull,
    covered: (i64, i64),
    gaps: &[(i64, i64)],
) -> anyhow::Result<()> {
    anyhow::ensure!(pull.status == VideoPullStatus::Done, "{pull:?}");
    let first = pull.first_frame.as_deref().context("first_frame")?;
    let last = pull.last_frame.as_deref().context("last_frame")?;
    anyhow::ensure!(
        seconds_between(first, at(covered.0)).abs() <= 1.0,
        "{pull:?}"
    );
    anyhow::ensure!(
        seconds_between(last, at(covered.1)).abs() <= 1.0,
        "{pull:?}"
    );
    anyhow::ensure!(pull.gaps.len() == gaps.len(), "{pull:?}");
    for (gap, (start, end)) in pull.gaps.iter().zip(gaps) {
        anyhow::ensure!(
            seconds_between(&gap.start, at(*start)).abs() <= 1.0,
            "{pull:?}"
        );
        anyhow::ensure!(seconds_between(&gap.end, at(*end)).abs() <= 1.0, "{pull:?}");
    }
    let detail: ProjectDetail = daemon
        .client()
        .get_json(&format!("/api/projects/{}", encode(number)))
        .await?;
    let rel = pull.rel_path.as_deref().context("rel_path")?;
    anyhow::ensure!(rel.starts_with(&format!("video/{}/", pull.room)), "{rel}");
    for wanted in [rel.to_string(), rel.replace(".mp4", ".json")] {
        let file = detail
            .files
            .iter()
            .find(|f| f.rel_path == wanted)
            .with_context(|| format!("{wanted} not among {:?}", detail.files))?;
        anyhow::ensure!(file.size > 0, "{file:?}");
    }
    Ok(())
}
