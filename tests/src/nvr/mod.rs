//! Stand-in Hikvision NVR: ISAPI over HTTP (axum, Digest authentication) and RTSP playback
//! from a real gst-rtsp-server (`rtsp_server.py`, Debian's GStreamer packages). It also speaks
//! Dahua's `mediaFileFind.cgi` and `cam/playback` ([`dahua`]) from the same recordings, and
//! [`onvif::StandInOnvif`] puts an ONVIF Profile G recorder in front of them.
//!
//! Recordings are generated with the FFmpeg command line: `testsrc2` with the UTC time burned
//! in by `drawtext`, H.264 at 160x120 and 5 fps with every frame a key frame, so a window can be
//! cut to the frame. The RTSP server sends as fast as the client reads. Quirks of real firmware
//! can be switched on at any time with [`StandInNvr::set_quirks`]. `/ISAPI/ContentMgmt/download`
//! answers a playback URI with the window as one MPEG-TS file (cut by `rtsp_server.py download`),
//! and the `rtsp_refused` quirk refuses RTSP playback so pulls must fall back to it.

mod dahua;
pub mod onvif;
pub mod probe;
pub mod project;
pub mod recording_file;
pub mod time_code;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use time::{OffsetDateTime, UtcOffset};
use witness_drivers::recording::digest;

/// The realm and the nonce the stand-in challenges with.
const REALM: &str = "DS-7608NI-K2";
const NONCE: &str = "4e5a6a4d4e6a5a6d4f4449774d546b7a";
/// China Standard Time: what a "local time" NVR in Henan writes with a Z.
const LOCAL: UtcOffset = match UtcOffset::from_hms(8, 0, 0) {
    Ok(offset) => offset,
    Err(_) => UtcOffset::UTC,
};

/// One recorded span of one channel.
#[derive(Debug, Clone, Copy)]
pub struct Segment {
    pub channel: u32,
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
}

/// Misbehaviour of real firmware, all off by default.
#[derive(Debug, Clone, Default)]
pub struct Quirks {
    /// Times marked Z are local time (UTC+8), in search and in playback URIs.
    pub z_is_local: bool,
    /// The stream runs this many seconds past the requested end.
    pub past_end_seconds: u32,
    /// The stream stops after this fraction of the requested window.
    pub stop_fraction: Option<f64>,
    /// A search starting on a segment boundary also returns the segment ending there.
    pub boundary_returns_previous: bool,
    /// The next this-many playback URIs handed out have already expired.
    pub expired_uris: u32,
    /// Stream in real time (a ten-second window takes ten seconds), for crash tests.
    pub realtime: bool,
    /// Dahua: an HTML error page spliced into the `findNextFile` reply. (Dahua's zone-less
    /// times follow `z_is_local` too: UTC, or UTC+8 when it is set.)
    pub dahua_garbage_reply: bool,
    /// Dahua: `findNextFile` returns at most this many files whatever `count` asked for, as
    /// firmware capping its pages does, so a search must page until `found=0`.
    pub dahua_page_limit: Option<usize>,
    /// Every Hikvision RTSP playback is refused (its ISAPI download still works).
    pub rtsp_refused: bool,
}

struct Shared {
    user: String,
    password: String,
    rtsp_port: u16,
    segments: Vec<(Segment, PathBuf)>,
    quirks: Mutex<Quirks>,
    config_path: PathBuf,
    searches: AtomicU32,
    downloads: AtomicU32,
    dahua_finds: dahua::Finds,
}

/// A running stand-in NVR. Dropping it stops both servers.
pub struct StandInNvr {
    pub http_url: String,
    pub rtsp_port: u16,
    /// Dahua's `cam/playback`, behind RTSP Digest authentication (its own port).
    pub dahua_rtsp_port: u16,
    shared: Arc<Shared>,
    rtsp: Child,
    http: tokio::task::JoinHandle<()>,
}

impl StandInNvr {
    /// Generates the recordings (160x120, 5 fps: small and quick) into `dir` and starts both
    /// servers on loopback.
    pub async fn start(
        dir: &Path,
        user: &str,
        password: &str,
        segments: &[Segment],
    ) -> anyhow::Result<StandInNvr> {
        StandInNvr::start_with(dir, user, password, segments, "160x120", 5).await
    }

    /// Like `start`, with recordings of `size` ("640x360") at `fps` frames a second.
    pub async fn start_with(
        dir: &Path,
        user: &str,
        password: &str,
        segments: &[Segment],
        size: &str,
        fps: u32,
    ) -> anyhow::Result<StandInNvr> {
        let mut recorded = Vec::new();
        for (i, segment) in segments.iter().enumerate() {
            let path = dir.join(format!("ch{:02}-{i}.mkv", segment.channel));
            generate_recording(segment, &path, size, fps)?;
            recorded.push((*segment, path));
        }
        let rtsp_port = free_port()?;
        let dahua_rtsp_port = free_port()?;
        let shared = Arc::new(Shared {
            user: user.into(),
            password: password.into(),
            rtsp_port,
            segments: recorded,
            quirks: Mutex::new(Quirks::default()),
            config_path: dir.join("rtsp-server.json"),
            searches: AtomicU32::new(0),
            downloads: AtomicU32::new(0),
            dahua_finds: dahua::Finds::default(),
        });
        write_rtsp_config(&shared)?;

        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/nvr/rtsp_server.py");
        // Debian's python3 has the GStreamer bindings; another python may be first on PATH.
        let mut rtsp = Command::new("/usr/bin/python3")
            .arg(&script)
            .arg(rtsp_port.to_string())
            .arg(&shared.config_path)
            .arg(dir)
            .arg(dahua_rtsp_port.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting rtsp_server.py (needs python3-gi and gir1.2-gst-rtsp-server-1.0)")?;
        let stdout = rtsp.stdout.take().context("rtsp_server.py stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        if !line.starts_with("listening") {
            let _ = rtsp.kill();
            bail!("rtsp_server.py did not start: {line:?}");
        }

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address: SocketAddr = listener.local_addr()?;
        let app = axum::Router::new()
            .route("/ISAPI/ContentMgmt/search", post(search))
            .route("/ISAPI/ContentMgmt/download", post(download))
            .route(
                "/cgi-bin/mediaFileFind.cgi",
                axum::routing::get(dahua::media_file_find),
            )
            .with_state(shared.clone());
        let http = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(StandInNvr {
            http_url: format!("http://{address}"),
            rtsp_port,
            dahua_rtsp_port,
            shared,
            rtsp,
            http,
        })
    }

    /// Switches quirks on or off from the next request on.
    pub fn set_quirks(&self, quirks: Quirks) -> anyhow::Result<()> {
        *self.shared.quirks.lock().unwrap() = quirks;
        write_rtsp_config(&self.shared)
    }

    /// The most RTSP playback sessions the stand-in had open at once so far.
    pub fn most_playback_sessions(&self) -> anyhow::Result<u32> {
        let path = self.shared.config_path.with_file_name("sessions.json");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e).context("reading sessions.json of rtsp_server.py"),
        };
        let counts: serde_json::Value = serde_json::from_str(&text)?;
        counts["most"]
            .as_u64()
            .map(|n| n as u32)
            .context("sessions.json has no \"most\"")
    }

    /// Dahua find objects created and not destroyed yet.
    pub fn dahua_open_finds(&self) -> usize {
        self.shared.dahua_finds.open()
    }

    /// How many searches (ISAPI, Dahua `findFile`) were answered (after authentication).
    pub fn searches(&self) -> u32 {
        self.shared.searches.load(Ordering::SeqCst)
    }

    /// How many ISAPI downloads were answered with a file.
    pub fn downloads(&self) -> u32 {
        self.shared.downloads.load(Ordering::SeqCst)
    }
}

impl Drop for StandInNvr {
    fn drop(&mut self) {
        self.http.abort();
        let _ = self.rtsp.kill();
        let _ = self.rtsp.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// One recording: `testsrc2` with its UTC wall-clock time burned in as text and as a
/// machine-readable [`time_code`], all key frames.
fn generate_recording(segment: &Segment, path: &Path, size: &str, fps: u32) -> anyhow::Result<()> {
    let seconds = (segment.end - segment.start).whole_seconds();
    if seconds <= 0 {
        bail!("segment of channel {} is empty", segment.channel);
    }
    let epoch = segment.start.unix_timestamp();
    let clock = format!(
        "drawtext=fontfile=/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf:\
         text='%{{pts\\:gmtime\\:{epoch}}}':x=2:y=2:fontsize=12:fontcolor=white:box=1:boxcolor=black"
    );
    let width: u32 = size
        .split('x')
        .next()
        .and_then(|w| w.parse().ok())
        .with_context(|| format!("recording size {size:?} is not WIDTHxHEIGHT"))?;
    let graph = format!(
        "[0:v]{clock}[picture];[1:v]format=yuv420p,{}[code];\
         [picture][code]overlay=0:main_h-overlay_h,format=yuv420p[out]",
        time_code::strip_filter(segment.start)
    );
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=s={size}:r={fps}:d={seconds}"))
        .args(["-f", "lavfi", "-i"])
        .arg(time_code::strip_input(width, fps, seconds))
        .args(["-filter_complex", &graph, "-map", "[out]"])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "1",
            "-bf",
            "0",
        ])
        .args(["-pix_fmt", "yuv420p"])
        .arg(path)
        .status()
        .context("running ffmpeg (apt package ffmpeg)")?;
    if !status.success() {
        bail!("ffmpeg could not generate {}", path.display());
    }
    Ok(())
}

/// What rtsp_server.py reads at every request.
fn write_rtsp_config(shared: &Shared) -> anyhow::Result<()> {
    let quirks = shared.quirks.lock().unwrap().clone();
    let mut channels: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    for (segment, path) in &shared.segments {
        channels
            .entry(format!("{}01", segment.channel))
            .or_default()
            .push(serde_json::json!({
                "start": segment.start.unix_timestamp(),
                "end": segment.end.unix_timestamp(),
                "path": path,
            }));
    }
    let mut quirk_json = serde_json::json!({
        "z_is_local": quirks.z_is_local,
        "past_end_seconds": quirks.past_end_seconds,
        "realtime": quirks.realtime,
        "rtsp_refused": quirks.rtsp_refused,
    });
    if let Some(fraction) = quirks.stop_fraction {
        quirk_json["stop_fraction"] = fraction.into();
    }
    // cam/playback (Dahua) asks for this login over RTSP Digest; ISAPI's playback URIs do not.
    let login = serde_json::json!({ "user": shared.user, "password": shared.password });
    let config = serde_json::json!({ "channels": channels, "quirks": quirk_json, "login": login });
    let temporary = shared.config_path.with_extension("json.new");
    std::fs::write(&temporary, serde_json::to_vec_pretty(&config)?)?;
    std::fs::rename(&temporary, &shared.config_path)?;
    Ok(())
}

/// Checks a Digest `Authorization` header against the stand-in's user and password.
fn authorised(shared: &Shared, headers: &HeaderMap, method: &str, uri: &str) -> bool {
    let Some(answer) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Digest "))
    else {
        return false;
    };
    let fields: BTreeMap<String, String> = digest::parameters(answer).into_iter().collect();
    let field = |name: &str| fields.get(name).map(String::as_str).unwrap_or("");
    if field("username") != shared.user || field("nonce") != NONCE || field("uri") != uri {
        return false;
    }
    let qop = (field("qop") == "auth").then(|| (field("nc"), field("cnonce")));
    let expected = digest::response(
        &digest::Credentials {
            user: &shared.user,
            password: &shared.password,
            realm: REALM,
        },
        NONCE,
        method,
        uri,
        qop,
    );
    field("response") == expected
}

/// The text of the first `<tag>` in `xml` (the stand-in reads only flat, known fields).
fn tag<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(xml[start..end].trim())
}

fn parse_z(text: &str, z_is_local: bool) -> Option<OffsetDateTime> {
    let wall = time::PrimitiveDateTime::parse(
        text.strip_suffix('Z')?,
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
    )
    .ok()?;
    Some(if z_is_local {
        wall.assume_offset(LOCAL)
    } else {
        wall.assume_utc()
    })
}

fn format_z(t: OffsetDateTime, z_is_local: bool, compact: bool) -> String {
    let t = t.to_offset(if z_is_local { LOCAL } else { UtcOffset::UTC });
    let result = if compact {
        t.format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
    } else {
        t.format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
    };
    result.unwrap_or_default()
}

/// The 401 with a Digest challenge ISAPI answers an unauthenticated request with.
fn challenge() -> Response {
    let challenge =
        format!(r#"Digest qop="auth", realm="{REALM}", nonce="{NONCE}", stale="FALSE""#);
    (
        StatusCode::UNAUTHORIZED,
        [("WWW-Authenticate", challenge)],
        "<ResponseStatus><statusCode>4</statusCode><statusString>Invalid Operation</statusString></ResponseStatus>",
    )
        .into_response()
}

/// ISAPI's `/ContentMgmt/download`: the window of a playback URI as one file, here MPEG-TS
/// (real NVRs send MPEG-PS or MP4), cut by rtsp_server.py from the recordings RTSP serves.
async fn download(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: String) -> Response {
    if !authorised(&shared, &headers, "POST", "/ISAPI/ContentMgmt/download") {
        return challenge();
    }
    let Some(playback) = tag(&body, "playbackURI") else {
        return (StatusCode::BAD_REQUEST, "bad playbackURI").into_response();
    };
    let playback = playback.replace("&amp;", "&");
    let n = shared.downloads.load(Ordering::SeqCst);
    let out = shared
        .config_path
        .with_file_name(format!("download-{}-{n}.ts", std::process::id()));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/nvr/rtsp_server.py");
    let cut = tokio::process::Command::new("/usr/bin/python3")
        .arg(&script)
        .arg("download")
        .arg(&shared.config_path)
        .arg(&playback)
        .arg(&out)
        .output()
        .await;
    let bytes = match cut {
        Ok(done) if done.status.success() => tokio::fs::read(&out).await,
        Ok(done) => {
            let reason = String::from_utf8_lossy(&done.stderr).trim().to_string();
            return (
                StatusCode::NOT_FOUND,
                [("Content-Type", "application/xml")],
                format!(
                    "<ResponseStatus><statusCode>4</statusCode><statusString>Invalid Content\
                     </statusString><subStatusCode>{reason}</subStatusCode></ResponseStatus>"
                ),
            )
                .into_response();
        }
        Err(e) => Err(e),
    };
    let _ = tokio::fs::remove_file(&out).await;
    match bytes {
        Ok(bytes) => {
            shared.downloads.fetch_add(1, Ordering::SeqCst);
            ([("Content-Type", "application/octet-stream")], bytes).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn search(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: String) -> Response {
    let uri = "/ISAPI/ContentMgmt/search";
    if !authorised(&shared, &headers, "POST", uri) {
        return challenge();
    }
    shared.searches.fetch_add(1, Ordering::SeqCst);
    let quirks = shared.quirks.lock().unwrap().clone();
    let bad = |what: &str| (StatusCode::BAD_REQUEST, format!("bad {what}")).into_response();
    let Some(track) = tag(&body, "trackID").and_then(|t| t.parse::<u32>().ok()) else {
        return bad("trackID");
    };
    let (Some(start), Some(end)) = (
        tag(&body, "startTime").and_then(|t| parse_z(t, quirks.z_is_local)),
        tag(&body, "endTime").and_then(|t| parse_z(t, quirks.z_is_local)),
    ) else {
        return bad("timeSpan");
    };
    let position: usize = tag(&body, "searchResultPostion")
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let max: usize = tag(&body, "maxResults")
        .and_then(|t| t.parse().ok())
        .unwrap_or(40);
    let channel = track / 100;
    let mut matches: Vec<&Segment> = shared
        .segments
        .iter()
        .map(|(s, _)| s)
        .filter(|s| s.channel == channel)
        .filter(|s| {
            (s.start < end && start < s.end) || (quirks.boundary_returns_previous && s.end == start)
        })
        .collect();
    matches.sort_by_key(|s| s.start);
    let total = matches.len();
    let page: Vec<&Segment> = matches.into_iter().skip(position).take(max).collect();
    let status = if total == 0 {
        "NO MATCHES"
    } else if position + page.len() < total {
        "MORE"
    } else {
        "OK"
    };
    let mut items = String::new();
    for segment in &page {
        let expiry = {
            let mut q = shared.quirks.lock().unwrap();
            if q.expired_uris > 0 {
                q.expired_uris -= 1;
                OffsetDateTime::now_utc().unix_timestamp() - 1
            } else {
                OffsetDateTime::now_utc().unix_timestamp() + 300
            }
        };
        let z = quirks.z_is_local;
        items.push_str(&format!(
            "<searchMatchItem><sourceID>{{00000000-0000-0000-0000-000000000000}}</sourceID>\
             <trackID>{track}</trackID><timeSpan><startTime>{}</startTime><endTime>{}</endTime>\
             </timeSpan><mediaSegmentDescriptor><contentType>video</contentType>\
             <codecType>H.264-BP</codecType><playbackURI>rtsp://127.0.0.1:{}/Streaming/tracks/\
             {track}?starttime={}&amp;endtime={}&amp;token={expiry}</playbackURI>\
             </mediaSegmentDescriptor></searchMatchItem>",
            format_z(segment.start, z, false),
            format_z(segment.end, z, false),
            shared.rtsp_port,
            format_z(segment.start, z, true),
            format_z(segment.end, z, true),
        ));
    }
    let search_id = tag(&body, "searchID").unwrap_or("");
    (
        [("Content-Type", "application/xml")],
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<CMSearchResult version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">
<searchID>{search_id}</searchID><responseStatus>true</responseStatus>
<responseStatusStrg>{status}</responseStatusStrg><numOfMatches>{}</numOfMatches>
<matchList>{items}</matchList></CMSearchResult>"#,
            page.len()
        ),
    )
        .into_response()
}
