//! Stand-in Hikvision NVR: ISAPI over HTTP (axum, Digest authentication) and RTSP playback
//! from a real gst-rtsp-server (`rtsp_server.py`, Debian's GStreamer packages).
//!
//! Recordings are generated with the FFmpeg command line: `testsrc2` with the UTC time burned
//! in by `drawtext`, H.264 at 160x120 and 5 fps with every frame a key frame, so a window can be
//! cut to the frame. The RTSP server sends as fast as the client reads. Quirks of real firmware
//! can be switched on at any time with [`StandInNvr::set_quirks`].

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
}

struct Shared {
    user: String,
    password: String,
    rtsp_port: u16,
    segments: Vec<(Segment, PathBuf)>,
    quirks: Mutex<Quirks>,
    config_path: PathBuf,
    searches: AtomicU32,
}

/// A running stand-in NVR. Dropping it stops both servers.
pub struct StandInNvr {
    pub http_url: String,
    pub rtsp_port: u16,
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
        let shared = Arc::new(Shared {
            user: user.into(),
            password: password.into(),
            rtsp_port,
            segments: recorded,
            quirks: Mutex::new(Quirks::default()),
            config_path: dir.join("rtsp-server.json"),
            searches: AtomicU32::new(0),
        });
        write_rtsp_config(&shared)?;

        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/nvr/rtsp_server.py");
        // Debian's python3 has the GStreamer bindings; another python may be first on PATH.
        let mut rtsp = Command::new("/usr/bin/python3")
            .arg(&script)
            .arg(rtsp_port.to_string())
            .arg(&shared.config_path)
            .arg(dir)
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
            .with_state(shared.clone());
        let http = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(StandInNvr {
            http_url: format!("http://{address}"),
            rtsp_port,
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

    /// How many ISAPI searches were answered (after authentication).
    pub fn searches(&self) -> u32 {
        self.shared.searches.load(Ordering::SeqCst)
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

/// One recording: `testsrc2` with its UTC wall-clock time burned in, all key frames.
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
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=s={size}:r={fps}:d={seconds}"))
        .args(["-vf", &clock])
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
    });
    if let Some(fraction) = quirks.stop_fraction {
        quirk_json["stop_fraction"] = fraction.into();
    }
    let config = serde_json::json!({ "channels": channels, "quirks": quirk_json });
    let temporary = shared.config_path.with_extension("json.new");
    std::fs::write(&temporary, serde_json::to_vec_pretty(&config)?)?;
    std::fs::rename(&temporary, &shared.config_path)?;
    Ok(())
}

/// Checks a Digest `Authorization` header against the stand-in's user and password.
fn authorised(shared: &Shared, headers: &HeaderMap, uri: &str) -> bool {
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
        "POST",
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

async fn search(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: String) -> Response {
    let uri = "/ISAPI/ContentMgmt/search";
    if !authorised(&shared, &headers, uri) {
        let challenge =
            format!(r#"Digest qop="auth", realm="{REALM}", nonce="{NONCE}", stale="FALSE""#);
        return (
            StatusCode::UNAUTHORIZED,
            [("WWW-Authenticate", challenge)],
            "<ResponseStatus><statusCode>4</statusCode><statusString>Invalid Operation</statusString></ResponseStatus>",
        )
            .into_response();
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
