//! A time code drawn into the stand-in's recordings, so tests can read when a frame was really
//! recorded from its pixels — independently of the packet timestamps the code under test uses.
//!
//! The bottom [`ROWS`] rows of every frame carry the frame's UTC time in tenths of a second since
//! [`EPOCH`], as 32 black-or-white bars (least significant bit on the left), drawn by FFmpeg's
//! `geq` filter when the recording is generated. Bars are `width / 32` pixels wide and sampled in
//! their middle, which H.264's quantisation does not flip.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};
use time::macros::datetime;
use time::OffsetDateTime;

/// Time zero of the code: 2026-01-01 UTC (tenths of a second since then fit in 32 bits for 13
/// years).
pub const EPOCH: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);
/// Height of the bar strip at the bottom of each frame.
pub const ROWS: u32 = 16;
const BITS: u32 = 32;

/// The `geq` filter turning a black strip (`width`×[`ROWS`], the strip alone so the per-pixel
/// expression runs on few pixels) into the code of a recording that starts at `start`; it is
/// overlaid on the bottom of the picture.
pub fn strip_filter(start: OffsetDateTime) -> String {
    let offset = (start - EPOCH).as_seconds_f64();
    let code = format!("floor((T+{offset})*10+0.5)");
    format!("geq=lum='255*mod(floor({code}/pow(2,floor(X*{BITS}/W))),2)':cb=128:cr=128")
}

/// The input (after the picture's) that [`strip_filter`] draws on: a black strip as wide as
/// the picture, with its frame rate and length.
pub fn strip_input(width: u32, fps: u32, seconds: i64) -> String {
    format!("color=c=black:s={width}x{ROWS}:r={fps}:d={seconds}")
}

/// The recorded time of every frame of `path` in decoding order, read from the pixels.
pub fn frame_times(path: &Path) -> anyhow::Result<Vec<OffsetDateTime>> {
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=width,height", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .context("running ffprobe (apt package ffmpeg)")?;
    let text = String::from_utf8_lossy(&probe.stdout);
    let mut dims = text.trim().split(',').map(|v| v.trim().parse::<u32>());
    let (Some(Ok(width)), Some(Ok(height))) = (dims.next(), dims.next()) else {
        bail!(
            "ffprobe gave no frame size for {}: {text:?}",
            path.display()
        );
    };
    // The middle row of the strip, every frame, as 8-bit grey.
    let row = height - ROWS / 2;
    let output = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-vf", &format!("format=gray,crop={width}:1:0:{row}")])
        .args([
            "-vsync",
            "passthrough",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "gray",
            "-",
        ])
        .output()
        .context("running ffmpeg (apt package ffmpeg)")?;
    if !output.status.success() {
        bail!(
            "ffmpeg could not decode {}: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let bar = width / BITS;
    Ok(output
        .stdout
        .chunks_exact(width as usize)
        .map(|line| {
            let code = (0..BITS).fold(0u64, |code, i| {
                let middle = (i * bar + bar / 2) as usize;
                code | (u64::from(line[middle] > 128) << i)
            });
            EPOCH + time::Duration::milliseconds(code as i64 * 100)
        })
        .collect())
}
