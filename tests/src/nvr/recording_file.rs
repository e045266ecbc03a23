//! Recording files as other systems leave them in a folder: `testsrc2` with the [`time_code`]
//! strip of their start, in the codec and container the caller asks for (the folder source and
//! browser-copy tests).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context};
use time::OffsetDateTime;

use super::time_code;

/// Writes `seconds` of `size` ("160x120") at `fps` recorded from `start` into `path`, encoded
/// with `codec` (ffmpeg output options, e.g. `-c:v libx264 -g 5`), then dates the file a minute
/// back, as a segment its recorder closed.
pub fn record(
    path: &Path,
    start: OffsetDateTime,
    seconds: i64,
    size: &str,
    fps: u32,
    codec: &[&str],
) -> anyhow::Result<()> {
    let width: u32 = size
        .split('x')
        .next()
        .and_then(|w| w.parse().ok())
        .with_context(|| format!("size {size:?} is not WIDTHxHEIGHT"))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let graph = format!(
        "[1:v]format=yuv420p,{}[code];[0:v][code]overlay=0:main_h-overlay_h,format=yuv420p[out]",
        time_code::strip_filter(start)
    );
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=s={size}:r={fps}:d={seconds}"))
        .args(["-f", "lavfi", "-i"])
        .arg(time_code::strip_input(width, fps, seconds))
        .args(["-filter_complex", &graph, "-map", "[out]"])
        .args(codec)
        .arg(path)
        .status()
        .context("running ffmpeg (apt package ffmpeg)")?;
    if !status.success() {
        bail!("ffmpeg could not write {}", path.display());
    }
    settle(path)
}

/// Dates a file's last change a minute back: a file its writer has left alone.
pub fn settle(path: &Path) -> anyhow::Result<()> {
    std::fs::File::options()
        .write(true)
        .open(path)?
        .set_modified(SystemTime::now() - Duration::from_secs(60))?;
    Ok(())
}
