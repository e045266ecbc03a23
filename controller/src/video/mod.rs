//! Evaluation video: rooms mapped to NVR channels, and pulls of a project's window from every
//! channel in parallel (at most `max_connections` at a time per NVR), each becoming a source of
//! the project so the archive package carries it.
//!
//! A pull is a catalog row first ('queued'), then 'pulling' with the media time received, then
//! 'done' with what the packets showed (first and last frame, gaps) or 'failed' with the reason.
//! Rows left 'queued' or 'pulling' by a crash are redone at start-up; the driver writes to a
//! partial file and renames it only when complete, so a redo never sees half a video.

pub mod browser_copy;
pub mod upload;
pub mod web;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use sqlx::FromRow;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use witness_drivers::recording::{
    DahuaNvr, FolderSource, HikvisionIsapi, NvrClock, OnvifRecorder, PullReport, PullRequest,
    RecordingSource, TimeWindow,
};
use witness_schemas::video::{
    NewVideoPull, NvrConfig, VideoChannel, VideoGap, VideoPull, VideoPullStatus,
};

use crate::clock::rfc3339;
use crate::error::{io_error, Result};
use crate::jobs::Engine;
use crate::{bail, catalog, err};

/// The longest window one pull may ask for: a long evaluation day with margins.
const MAX_WINDOW: time::Duration = time::Duration::hours(24);
/// How often, at most, the media time received is written to the catalog.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// The NVR named `name` in the configuration.
fn nvr_config<'a>(engine: &'a Engine, name: &str) -> Result<&'a NvrConfig> {
    engine
        .settings
        .config
        .nvrs
        .iter()
        .find(|n| n.name == name)
        .ok_or_else(|| {
            err!(
                InvalidArgument,
                "录像机 {name:?} 未在配置文件中 (no [[nvrs]] entry named {name:?})"
            )
        })
}

/// The driver for one configured NVR.
pub fn recording_source(config: &NvrConfig) -> Result<Arc<dyn RecordingSource>> {
    let clock = match config.clock.as_str() {
        "utc" => NvrClock::Utc,
        "local" => NvrClock::LocalMarkedZ(time::macros::offset!(+8)),
        other => bail!(
            InvalidArgument,
            "录像机 {} 的 clock {other:?} 无效 (clock must be \"utc\" or \"local\")",
            config.name
        ),
    };
    // url, user and password may be left out for a folder only.
    if config.vendor != "folder" && config.url.trim().is_empty() {
        bail!(
            InvalidArgument,
            "录像机 {} 没有 url (url = \"http://host[:port]\" is required for {})",
            config.name,
            config.vendor
        );
    }
    Ok(match config.vendor.as_str() {
        "hikvision" => Arc::new(
            HikvisionIsapi::new(&config.url, &config.user, &config.password).with_clock(clock),
        ),
        "dahua" => Arc::new(
            DahuaNvr::new(&config.url, &config.user, &config.password)
                .with_clock(clock)
                .with_rtsp_port(config.rtsp_port),
        ),
        // ONVIF writes xs:dateTime in UTC, so `clock` does not apply; `url` is the device
        // service (or http://host, meaning /onvif/device_service).
        "onvif" => Arc::new(OnvifRecorder::new(
            &config.url,
            &config.user,
            &config.password,
        )),
        "folder" => {
            if config.path.trim().is_empty() {
                bail!(
                    InvalidArgument,
                    "录像机 {} 是文件夹来源，但没有 path (vendor \"folder\" needs path = the folder of recordings)",
                    config.name
                );
            }
            let names_offset = match clock {
                NvrClock::Utc => time::UtcOffset::UTC,
                NvrClock::LocalMarkedZ(offset) => offset,
            };
            Arc::new(
                FolderSource::new(std::path::Path::new(&config.path))
                    .with_names_offset(names_offset)
                    .with_stable_after(Duration::from_secs(u64::from(config.stable_seconds))),
            )
        }
        other => bail!(
            InvalidArgument,
            "录像机 {} 的厂商 {other:?} 无效 (vendor must be hikvision, dahua, onvif or folder)",
            config.name
        ),
    })
}

/// One semaphore per NVR name for the whole process: its connection limit.
fn connection_limit(config: &NvrConfig) -> Arc<Semaphore> {
    static LIMITS: OnceLock<Mutex<HashMap<String, Arc<Semaphore>>>> = OnceLock::new();
    let mut limits = LIMITS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    Arc::clone(
        limits
            .entry(config.name.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(config.max_connections.max(1) as usize))),
    )
}

/// A room name becomes a folder of the package: one plain path segment.
fn check_room(room: &str) -> Result<()> {
    let trimmed = room.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 64 {
        bail!(
            InvalidArgument,
            "评标室名称 {room:?} 无效 (room name must be 1–64 characters)"
        );
    }
    if trimmed != room
        || room.starts_with('.')
        || room.contains(['/', '\\', '\0'])
        || room.chars().any(char::is_control)
    {
        bail!(
            InvalidArgument,
            "评标室名称 {room:?} 含有不允许的字符 (room name may not contain / \\ control \
             characters, leading dots or surrounding spaces)"
        );
    }
    Ok(())
}

/// The project's rooms and channels.
pub async fn channels(engine: &Engine, number: &str) -> Result<Vec<VideoChannel>> {
    let project = catalog::project(&engine.pool, number).await?;
    let rows: Vec<(String, String, i64, String)> = sqlx::query_as(
        "SELECT room, nvr, channel, label FROM video_channels WHERE project_id = ? ORDER BY room, nvr, channel",
    )
    .bind(project.id)
    .fetch_all(&engine.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(room, nvr, channel, label)| VideoChannel {
            room,
            nvr,
            channel: channel as u32,
            label,
        })
        .collect())
}

/// Replaces the project's rooms and channels (all checked before anything is written).
pub async fn set_channels(
    engine: &Engine,
    number: &str,
    new: &[VideoChannel],
) -> Result<Vec<VideoChannel>> {
    let project = catalog::project(&engine.pool, number).await?;
    if new.len() > 256 {
        bail!(InvalidArgument, "通道过多 (at most 256 channels a project)");
    }
    let mut seen = std::collections::HashSet::new();
    for channel in new {
        check_room(&channel.room)?;
        nvr_config(engine, &channel.nvr)?;
        if !(1..=999).contains(&channel.channel) {
            bail!(
                InvalidArgument,
                "通道号 {} 无效 (channel must be 1–999)",
                channel.channel
            );
        }
        if channel.label.chars().count() > 64 {
            bail!(
                InvalidArgument,
                "通道说明过长 (label: at most 64 characters)"
            );
        }
        if !seen.insert((channel.nvr.as_str(), channel.channel)) {
            bail!(
                InvalidArgument,
                "录像机 {} 通道 {} 重复 (channel listed twice)",
                channel.nvr,
                channel.channel
            );
        }
    }
    let mut tx = engine.pool.begin().await?;
    sqlx::query("DELETE FROM video_channels WHERE project_id = ?")
        .bind(project.id)
        .execute(&mut *tx)
        .await?;
    for channel in new {
        sqlx::query(
            "INSERT INTO video_channels (project_id, room, nvr, channel, label) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(project.id)
        .bind(&channel.room)
        .bind(&channel.nvr)
        .bind(i64::from(channel.channel))
        .bind(&channel.label)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    channels(engine, number).await
}

#[derive(Debug, Clone, FromRow)]
struct PullRow {
    id: i64,
    project_id: i64,
    room: String,
    nvr: String,
    channel: i64,
    label: String,
    window_start: String,
    window_end: String,
    status: String,
    media_received_ms: i64,
    window_ms: i64,
    first_frame: Option<String>,
    last_frame: Option<String>,
    gaps: String,
    frames: Option<i64>,
    bytes: Option<i64>,
    codec: Option<String>,
    rel_path: Option<String>,
    error: Option<String>,
}

impl PullRow {
    fn to_api(&self) -> VideoPull {
        VideoPull {
            id: self.id,
            room: self.room.clone(),
            nvr: self.nvr.clone(),
            channel: self.channel as u32,
            label: self.label.clone(),
            start: self.window_start.clone(),
            end: self.window_end.clone(),
            status: match self.status.as_str() {
                "queued" => VideoPullStatus::Queued,
                "pulling" => VideoPullStatus::Pulling,
                "done" => VideoPullStatus::Done,
                _ => VideoPullStatus::Failed,
            },
            media_received_ms: self.media_received_ms,
            window_ms: self.window_ms,
            first_frame: self.first_frame.clone(),
            last_frame: self.last_frame.clone(),
            gaps: serde_json::from_str(&self.gaps).unwrap_or_default(),
            frames: self.frames,
            bytes: self.bytes,
            codec: self.codec.clone(),
            rel_path: self.rel_path.clone(),
            error: self.error.clone(),
        }
    }
}

/// A SELECT of every pull column followed by `$rest` (sqlx takes only static SQL).
macro_rules! select_pulls {
    ($rest:literal) => {
        concat!(
            "SELECT id, project_id, room, nvr, channel, label, window_start, window_end, status, \
             media_received_ms, window_ms, first_frame, last_frame, gaps, frames, bytes, codec, \
             rel_path, error FROM video_pulls ",
            $rest
        )
    };
}

async fn pull_row(engine: &Engine, id: i64) -> Result<PullRow> {
    sqlx::query_as(select_pulls!("WHERE id = ?"))
        .bind(id)
        .fetch_optional(&engine.pool)
        .await?
        .ok_or_else(|| err!(NotFound, "录像拉取 {id} 不存在 (no such video pull)"))
}

/// The project's pulls, newest first.
pub async fn pulls(engine: &Engine, number: &str) -> Result<Vec<VideoPull>> {
    let project = catalog::project(&engine.pool, number).await?;
    let rows: Vec<PullRow> = sqlx::query_as(select_pulls!("WHERE project_id = ? ORDER BY id DESC"))
        .bind(project.id)
        .fetch_all(&engine.pool)
        .await?;
    Ok(rows.iter().map(PullRow::to_api).collect())
}

fn parse_time(text: &str, what: &str) -> Result<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).map_err(|_| {
        err!(
            InvalidArgument,
            "{what}时间 {text:?} 无效 ({what} must be RFC 3339, e.g. 2026-11-20T08:50:00+08:00)"
        )
    })
}

/// Queues one pull per mapped channel over the window and starts them.
pub async fn start_pulls(
    engine: &Arc<Engine>,
    number: &str,
    request: &NewVideoPull,
) -> Result<Vec<VideoPull>> {
    let project = catalog::project(&engine.pool, number).await?;
    let start = parse_time(&request.start, "开始 (start) ")?;
    let end = parse_time(&request.end, "结束 (end) ")?;
    if end <= start {
        bail!(
            InvalidArgument,
            "结束时间须晚于开始时间 (end must be after start)"
        );
    }
    if end - start > MAX_WINDOW {
        bail!(
            InvalidArgument,
            "时段超过 24 小时 (the window may be at most 24 hours)"
        );
    }
    let now = engine.clock.now();
    if end > now {
        bail!(
            FailedPrecondition,
            "时段尚未结束 (the window is in the future): it ends {}, now is {}",
            rfc3339(end),
            rfc3339(now)
        );
    }
    let channels = channels(engine, number).await?;
    if channels.is_empty() {
        bail!(
            FailedPrecondition,
            "项目 {number} 尚未配置评标室录像通道 (no rooms mapped to NVR channels yet)"
        );
    }
    let window_ms = (end - start).whole_milliseconds() as i64;
    let stamp = rfc3339(now);
    let mut ids = Vec::new();
    let mut tx = engine.pool.begin().await?;
    for channel in &channels {
        let id = sqlx::query(
            "INSERT INTO video_pulls (project_id, room, nvr, channel, label, window_start, window_end, \
             status, window_ms, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?)",
        )
        .bind(project.id)
        .bind(&channel.room)
        .bind(&channel.nvr)
        .bind(i64::from(channel.channel))
        .bind(&channel.label)
        .bind(rfc3339(start))
        .bind(rfc3339(end))
        .bind(window_ms)
        .bind(&stamp)
        .bind(&stamp)
        .execute(&mut *tx)
        .await?
        .last_insert_rowid();
        ids.push(id);
    }
    tx.commit().await?;
    let mut queued = Vec::new();
    for id in ids {
        queued.push(pull_row(engine, id).await?.to_api());
        spawn(Arc::clone(engine), id);
    }
    Ok(queued)
}

/// Redoes pulls a crash interrupted, and finishes uploads it interrupted.
pub async fn resume(engine: &Arc<Engine>) -> Result<()> {
    let ids: Vec<(i64,)> = sqlx::query_as(
        "SELECT id FROM video_pulls WHERE status IN ('queued', 'pulling') ORDER BY id",
    )
    .fetch_all(&engine.pool)
    .await?;
    for (id,) in ids {
        tracing::info!(pull = id, "redoing an interrupted video pull");
        spawn(Arc::clone(engine), id);
    }
    upload::resume(engine).await
}

fn spawn(engine: Arc<Engine>, id: i64) {
    tokio::spawn(async move {
        if let Err(e) = run(&engine, id).await {
            tracing::warn!(pull = id, error = %e.message, "video pull failed");
            let _ = sqlx::query(
                "UPDATE video_pulls SET status = 'failed', error = ?, updated_at = ? WHERE id = ?",
            )
            .bind(&e.message)
            .bind(rfc3339(engine.clock.now()))
            .bind(id)
            .execute(&engine.pool)
            .await;
        }
    });
}

/// Where pulled videos are kept before they are packaged: `<data>/video/<project id>/`.
fn video_dir(engine: &Engine, project_id: i64) -> PathBuf {
    engine
        .settings
        .data_dir
        .join("video")
        .join(project_id.to_string())
}

async fn run(engine: &Arc<Engine>, id: i64) -> Result<()> {
    let row = pull_row(engine, id).await?;
    let config = nvr_config(engine, &row.nvr)?.clone();
    let source = recording_source(&config)?;
    let permit = connection_limit(&config)
        .acquire_owned()
        .await
        .map_err(|_| err!(Internal, "NVR connection limit closed"))?;
    sqlx::query("UPDATE video_pulls SET status = 'pulling', updated_at = ? WHERE id = ?")
        .bind(rfc3339(engine.clock.now()))
        .bind(id)
        .execute(&engine.pool)
        .await?;

    let window = TimeWindow {
        start: parse_time(&row.window_start, "start")?,
        end: parse_time(&row.window_end, "end")?,
    };
    let dir = video_dir(engine, row.project_id);
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| io_error(dir.display(), e))?;
    let output = dir.join(format!("pull-{id}.mp4"));
    let now = engine.clock.now();
    let pool = engine.pool.clone();
    let channel = row.channel as u32;
    let runtime = tokio::runtime::Handle::current();
    let video = output.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let mut last_write = Instant::now() - PROGRESS_EVERY;
        let mut progress = |p: witness_drivers::recording::PullProgress| {
            if last_write.elapsed() < PROGRESS_EVERY {
                return;
            }
            last_write = Instant::now();
            let _ = runtime.block_on(
                sqlx::query("UPDATE video_pulls SET media_received_ms = ? WHERE id = ?")
                    .bind(p.media_received.as_millis() as i64)
                    .bind(id)
                    .execute(&pool),
            );
        };
        source.pull(
            &PullRequest {
                channel,
                window,
                now,
                output: &video,
            },
            &mut progress,
        )
    })
    .await
    .map_err(|e| err!(Internal, "video pull task: {e}"))?;
    drop(permit);
    let report = outcome.map_err(|e| err!(Unavailable, "{e}"))?;
    // H.265 and other codecs Chromium cannot play get an H.264 copy for the replay page; the
    // archived original stays as pulled. Made before the pull is done, so a crash redoes it.
    let browser = if browser_copy::needed(&report.codec) {
        let original = output.clone();
        let made = tokio::task::spawn_blocking(move || browser_copy::make(&original))
            .await
            .map_err(|e| err!(Internal, "browser copy task: {e}"))?;
        Some(made)
    } else {
        None
    };
    finish(engine, &row, &output, &report).await?;
    if let Some(Err(e)) = browser {
        // The original is archived all the same; the pull says why the player may not play it.
        tracing::warn!(pull = id, error = %e.message, "no browser copy of a pulled video");
        sqlx::query("UPDATE video_pulls SET error = ? WHERE id = ?")
            .bind(format!(
                "原始录像已归档，但未能生成浏览器可播放的副本 (the original is archived, but no \
                 browser copy could be made): {}",
                e.message
            ))
            .bind(id)
            .execute(&engine.pool)
            .await?;
    }
    Ok(())
}

/// Registers the finished video (and its report) as sources and marks the pull done.
async fn finish(
    engine: &Engine,
    row: &PullRow,
    output: &std::path::Path,
    report: &PullReport,
) -> Result<()> {
    let project = catalog::project_by_id(&engine.pool, row.project_id).await?;
    let start_stamp = row
        .window_start
        .chars()
        .filter(char::is_ascii_digit)
        .take(12)
        .collect::<String>();
    let base = format!(
        "video/{}/{}-ch{:02}-{start_stamp}-{}",
        row.room, row.nvr, row.channel, row.id
    );
    let video_rel = crate::paths::check_rel_path(&format!("{base}.mp4"))?;
    let report_rel = crate::paths::check_rel_path(&format!("{base}.json"))?;
    let gaps: Vec<VideoGap> = report
        .gaps
        .iter()
        .map(|g| VideoGap {
            start: rfc3339(g.start),
            end: rfc3339(g.end),
        })
        .collect();
    // The package carries what the pull measured, beside the video.
    let report_json = serde_json::json!({
        "room": row.room,
        "nvr": row.nvr,
        "channel": row.channel,
        "label": row.label,
        "window": { "start": row.window_start, "end": row.window_end },
        "first_frame": rfc3339(report.first_frame),
        "last_frame": rfc3339(report.last_frame),
        "gaps": gaps,
        "recorded_by_nvr": report.recorded.iter().map(|r| VideoGap {
            start: rfc3339(r.start),
            end: rfc3339(r.end),
        }).collect::<Vec<_>>(),
        "frames": report.frames,
        "codec": report.codec,
        "dropped_packets": report.dropped_packets,
        "transport": report.transport.as_str(),
        // The replay page's H.264 copy (not part of the package), when the codec needed one.
        "browser_copy": browser_copy::path_for(output)
            .exists()
            .then_some("h264"),
    });
    let report_path = output.with_extension("json");
    let bytes =
        serde_json::to_vec_pretty(&report_json).map_err(|e| err!(Internal, "video report: {e}"))?;
    tokio::fs::write(&report_path, &bytes)
        .await
        .map_err(|e| io_error(report_path.display(), e))?;
    let now = engine.clock.now();
    for (rel, path) in [(&video_rel, output), (&report_rel, report_path.as_path())] {
        // A redo after a crash may find the source already registered.
        if !catalog::source_exists(&engine.pool, project.id, rel).await? {
            let size = tokio::fs::metadata(path)
                .await
                .map_err(|e| io_error(path.display(), e))?
                .len();
            catalog::add_uploaded(&engine.pool, &project, rel, path, size, now).await?;
        }
    }
    sqlx::query(
        "UPDATE video_pulls SET status = 'done', media_received_ms = window_ms, first_frame = ?, \
         last_frame = ?, gaps = ?, frames = ?, bytes = ?, codec = ?, rel_path = ?, error = NULL, \
         updated_at = ? WHERE id = ?",
    )
    .bind(rfc3339(report.first_frame))
    .bind(rfc3339(report.last_frame))
    .bind(serde_json::to_string(&gaps).unwrap_or_else(|_| "[]".into()))
    .bind(report.frames as i64)
    .bind(report.bytes as i64)
    .bind(&report.codec)
    .bind(&video_rel)
    .bind(rfc3339(now))
    .bind(row.id)
    .execute(&engine.pool)
    .await?;
    // The video's search item gains its window, gaps and player link.
    crate::search::notify(&engine.pool, crate::search::Change::Project(project.id));
    Ok(())
}

/// The stored MP4 of a finished pull, for Range serving.
pub async fn pull_file(engine: &Engine, id: i64) -> Result<PathBuf> {
    let row = pull_row(engine, id).await?;
    if row.status != "done" {
        bail!(
            FailedPrecondition,
            "录像拉取 {id} 尚未完成 (the pull is {}, not done)",
            row.status
        );
    }
    let original = video_dir(engine, row.project_id).join(format!("pull-{id}.mp4"));
    // The replay page gets the browser copy where the original's codec needs one.
    let browser = browser_copy::path_for(&original);
    Ok(if browser.exists() { browser } else { original })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_are_single_safe_segments() {
        for good in ["第一评标室", "Room 2", "询标室-A"] {
            assert!(check_room(good).is_ok(), "{good}");
        }
        for bad in ["", " 第一评标室", "a/b", "..", ".hidden", "a\\b", "a\nb"] {
            let e = check_room(bad).unwrap_err();
            assert!(e.message.contains("评标室名称"), "{bad:?}: {}", e.message);
        }
    }

    #[test]
    fn the_example_configuration_names_a_usable_nvr() {
        let text = include_str!("../../../hardware/witness.example.toml");
        let config = crate::config::parse_config(text).unwrap();
        assert_eq!(config.nvrs.len(), 1);
        assert!(recording_source(&config.nvrs[0]).is_ok());
    }

    #[test]
    fn vendors_and_clocks_are_checked() {
        let mut config = NvrConfig {
            name: "nvr1".into(),
            vendor: "hikvision".into(),
            url: "http://127.0.0.1:1".into(),
            user: "admin".into(),
            password: "x".into(),
            max_connections: 2,
            clock: "local".into(),
            rtsp_port: 554,
            path: String::new(),
            stable_seconds: 30,
        };
        assert!(recording_source(&config).is_ok());
        config.clock = "gmt".into();
        assert!(recording_source(&config).is_err());
        config.clock = "utc".into();
        config.vendor = "uniview".into();
        let e = recording_source(&config).err().unwrap();
        assert!(e.message.contains("vendor"), "{}", e.message);
        config.vendor = "folder".into();
        let e = recording_source(&config).err().unwrap();
        assert!(e.message.contains("needs path"), "{}", e.message);
        config.path = "/srv/recordings".into();
        config.url = String::new();
        assert!(recording_source(&config).is_ok());
        config.vendor = "hikvision".into();
        let e = recording_source(&config).err().unwrap();
        assert!(e.message.contains("没有 url"), "{}", e.message);
        config.vendor = "onvif".into();
        let e = recording_source(&config).err().unwrap();
        assert!(e.message.contains("没有 url"), "{}", e.message);
        config.url = "http://127.0.0.1:1/onvif/device_service".into();
        assert!(recording_source(&config).is_ok());
    }
}
