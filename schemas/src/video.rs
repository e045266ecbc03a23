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
    /// `hikvision` (ISAPI + RTSP), `dahua` (`mediaFileFind.cgi` + RTSP `cam/playback`) or
    /// `onvif` (Profile G: SOAP with a WS-Security UsernameToken, RTSP replay; channel N is the
    /// N-th recording `GetRecordings` lists; times are UTC, so `clock` does not apply), or
    /// `folder` (files other systems drop into `path`; no url, user or password).
    #[serde(default = "default_vendor")]
    pub vendor: String,
    /// `http://host[:port]` of its web interface (ISAPI, Dahua's CGI); for `onvif` the device
    /// service URL, or `http://host[:port]` meaning `/onvif/device_service`. Not used by `folder`.
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub password: String,
    /// Pulls from this NVR at the same time; NVRs refuse or slow down beyond a few.
    #[serde(default = "default_connections")]
    pub max_connections: u32,
    /// `utc`, or `local` for an NVR whose clock is local time (UTC+8): Hikvision firmware that
    /// writes it marked Z, Dahua NVRs whose zone-less times are local (the usual setting).
    #[serde(default = "default_clock")]
    pub clock: String,
    /// RTSP port for Dahua's `cam/playback` (554 unless changed on the NVR). Hikvision's
    /// playback URIs carry their own port.
    #[serde(default = "default_rtsp_port")]
    pub rtsp_port: u16,
    /// `folder`: the folder other systems drop recordings into, one subfolder per channel
    /// (`<path>/01/ch01_20261120080000_20261120081000.mp4`; see `drivers::recording::folder`).
    /// Times in file names without `Z` are read by `clock` (`local`: UTC+8).
    #[serde(default)]
    pub path: String,
    /// `folder`: a file changed less than this many seconds ago is still being written and is
    /// skipped (its span becomes a gap).
    #[serde(default = "default_stable_seconds")]
    pub stable_seconds: u32,
}

fn default_stable_seconds() -> u32 {
    30
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

fn default_rtsp_port() -> u16 {
    554
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
