//! Helpers for the multi-drive tests and benchmark: virtual drive sections of the TOML file,
//! projects whose files each fill one disc, and the recording intervals read from the drives'
//! event history (`/api/drives/{name}/events`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use witness_controller::cli::Client;
use witness_schemas::api::{Category, DriveEvent, NewProject};

/// One `[[drives]]` section of a virtual BD-R drive.
pub fn virtual_drive(
    name: &str,
    capacity: u64,
    throttle_bytes_per_sec: Option<u64>,
    fail_burns: Option<u32>,
) -> String {
    let mut text = format!(
        "[[drives]]\nname = \"{name}\"\nkind = \"virtual\"\nmedia = \"bd-r\"\ncapacity_bytes = {capacity}\n"
    );
    if let Some(rate) = throttle_bytes_per_sec {
        text.push_str(&format!("throttle_bytes_per_sec = {rate}\n"));
    }
    if let Some(count) = fail_burns {
        // Fails after 1 MiB, well before the end of any disc these tests write.
        text.push_str(&format!(
            "fault_fail_burns = {count}\nfault_fail_after_bytes = 1048576\n"
        ));
    }
    text.push('\n');
    text
}

/// SplitMix64: incompressible bytes, the same for the same seed.
fn fill(seed: u64, out: &mut [u8]) {
    let mut state = seed;
    for chunk in out.chunks_mut(8) {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
    }
}

/// Writes `files` files of `bytes` each under `dir` (a Chinese folder name, as in real projects)
/// and returns them by their path relative to `dir`.
pub fn write_sources(
    dir: &Path,
    files: usize,
    bytes: usize,
    seed: u64,
) -> anyhow::Result<BTreeMap<String, PathBuf>> {
    let folder = dir.join("投标文件");
    std::fs::create_dir_all(&folder)?;
    let mut out = BTreeMap::new();
    let mut buffer = vec![0u8; bytes];
    for i in 0..files {
        fill(seed.wrapping_mul(1000).wrapping_add(i as u64), &mut buffer);
        let rel = format!("投标文件/第{:02}册.pdf", i + 1);
        let path = dir.join(&rel);
        std::fs::write(&path, &buffer).with_context(|| path.display().to_string())?;
        out.insert(rel, path);
    }
    Ok(out)
}

/// Registers a project and its source folder through the API.
pub async fn add_project(client: &Client, number: &str, sources: &Path) -> anyhow::Result<()> {
    client
        .add_project(&NewProject {
            number: number.into(),
            name: format!("多刻录机并行测试项目 {number}"),
            category: Category::Construction,
            opening: "2026-03-18T09:30:00+08:00".into(),
        })
        .await?;
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(sources)? {
        paths.push(entry?.path().display().to_string());
    }
    client.add_sources(number, paths).await?;
    Ok(())
}

pub async fn drive_events(client: &Client, drive: &str) -> anyhow::Result<Vec<DriveEvent>> {
    client
        .get_json(&format!("/api/drives/{drive}/events?limit=5000"))
        .await
}

/// A disc's time in the `recording` state on its drive.
#[derive(Debug, Clone)]
pub struct Recording {
    pub drive: String,
    pub disc_id: i64,
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
    /// The state that ended it: `verifying`, `record_failed`, `idle`.
    pub ended_by: String,
}

/// Recording intervals of every disc the drives burned, in start order.
pub async fn recordings(client: &Client, drives: &[&str]) -> anyhow::Result<Vec<Recording>> {
    let mut out = Vec::new();
    for drive in drives {
        let events = drive_events(client, drive).await?;
        let mut open: Option<(i64, OffsetDateTime)> = None;
        for event in events {
            let at = OffsetDateTime::parse(&event.at, &Rfc3339)
                .with_context(|| format!("event time {:?}", event.at))?;
            if let Some((disc_id, start)) = open.take() {
                out.push(Recording {
                    drive: drive.to_string(),
                    disc_id,
                    start,
                    end: at,
                    ended_by: event.state.clone(),
                });
            }
            if event.state == "recording" {
                let disc_id = event.disc_id.context("a recording event names its disc")?;
                open = Some((disc_id, at));
            }
        }
        ensure!(open.is_none(), "drive {drive} is still recording");
    }
    out.sort_by_key(|r| r.start);
    Ok(out)
}

/// The most discs recording at the same instant.
pub fn max_overlap(recordings: &[Recording]) -> usize {
    let mut edges: Vec<(OffsetDateTime, i32)> = Vec::new();
    for r in recordings {
        edges.push((r.start, 1));
        edges.push((r.end, -1));
    }
    // At equal instants an end comes before a start: touching intervals do not overlap.
    edges.sort();
    let (mut now, mut max) = (0i32, 0i32);
    for (_, delta) in edges {
        now += delta;
        max = max.max(now);
    }
    max as usize
}

/// Prints the timeline relative to the first start, for the test log and the benchmark.
pub fn print_timeline(recordings: &[Recording]) {
    let Some(first) = recordings.first().map(|r| r.start) else {
        return;
    };
    for r in recordings {
        eprintln!(
            "  disc {:>3} on {:<6} recording {:>7.3} s → {:>7.3} s  ({})",
            r.disc_id,
            r.drive,
            (r.start - first).as_seconds_f64(),
            (r.end - first).as_seconds_f64(),
            r.ended_by
        );
    }
}
