//! Evaluation video: NVRs in the configuration file, rooms mapped to NVR channels, and pulls of
//! a time window (issue 4).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One NVR (`[[nvrs]]` in witness.toml). Its password lives only in the configuration file,
/// never in the catalog or the API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NvrConfig {
    /// The name rooms refer to, e.g. "nvr1".
    pub name: String,
    /// `hikvision` (ISAPI + RTSP); `dahua` and `onvif` are not supported yet.
    #[serde(default = "default_vendor")]
    pub vendor: String,
    /// `http://host[:port]` of its web interface (ISAPI).
    pub url: String,
    pub user: String,
    pub password: String,
    /// Pulls from this NVR at the same time; NVRs refuse or slow down beyond a few.
    #[serde(default = "default_connections")]
    pub max_connections: u32,
    /// `utc`, or `local` for firmware that writes local time (UTC+8) marked Z.
    #[serde(default = "default_clock")]
    pub clock: String,
}

fn default_vendor() -> String {
    "hikvision".into()
}

fn default_connections() -> u32 {
    2
}

fn default_clock() -> String {
    "utc".into()
}

/// A configured NVR as the API shows it (never its user or password).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NvrInfo {
    pub name: String,
    pub vendor: String,
    pub max_connections: u32,
}

/// An evaluation room's camera: which NVR channel records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VideoChannel {
    /// The room, e.g. "第一评标室".
    pub room: String,
    /// The `name` of an NVR in the configuration.
    pub nvr: String,
    /// NVR channel, 1-based as on the NVR's screen.
    pub channel: u32,
    /// What the camera shows, e.g. "全景" or "专家1".
    #[serde(default)]
    pub label: String,
}

/// A pull of every mapped channel of a project over one window.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NewVideoPull {
    /// RFC 3339, e.g. "2026-11-20T08:50:00+08:00".
    pub start: String,
    pub end: String,
}

/// A span without video.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VideoGap {
    pub start: String,
    pub end: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VideoPullStatus {
    Queued,
    Pulling,
    Done,
    Failed,
}

/// One channel's pull and what it delivered.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VideoPull {
    pub id: i64,
    pub room: String,
    pub nvr: String,
    pub channel: u32,
    pub label: String,
    pub start: String,
    pub end: String,
    pub status: VideoPullStatus,
    /// Media time received so far, in milliseconds (progress is this over `window_ms`).
    pub media_received_ms: i64,
    pub window_ms: i64,
    pub first_frame: Option<String>,
    pub last_frame: Option<String>,
    /// Spans of the window without video, as measured from the packets received.
    pub gaps: Vec<VideoGap>,
    pub frames: Option<i64>,
    pub bytes: Option<i64>,
    pub codec: Option<String>,
    /// The project source the video became (under `video/`), once done.
    pub rel_path: Option<String>,
    pub error: Option<String>,
}

/// Starts a resumable upload of an evaluation recording.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NewRecordingUpload {
    pub room: String,
    /// The expert seat the recording belongs to, e.g. "专家3" or "主持人".
    pub seat: String,
    /// One plain file name, e.g. "会议录像-20261120.mp4".
    pub file_name: String,
    pub size: u64,
    /// SHA-256 of the whole file, hexadecimal: checked once the last byte arrived.
    pub sha256: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecordingUploadStatus {
    Open,
    Done,
    Failed,
}

/// Where an upload stands; `received` is the offset the next chunk must start at.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecordingUpload {
    pub id: i64,
    pub project_number: String,
    pub room: String,
    pub seat: String,
    pub file_name: String,
    pub size: i64,
    pub sha256: String,
    pub received: i64,
    pub status: RecordingUploadStatus,
    /// Path of the file in the archive package once done: recordings/<room>/<seat>/<name>.
    pub rel_path: String,
    pub error: Option<String>,
}
