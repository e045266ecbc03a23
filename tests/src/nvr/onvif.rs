//! Stand-in ONVIF Profile G recorder in front of the stand-in NVR's recordings: SOAP 1.2
//! services (device, recording, search, replay; axum) that check the WS-Security
//! UsernameToken digest, and an RTSP front for the replay URI that insists on ONVIF replay.
//!
//! The front refuses a PLAY without `Require: onvif-replay` (551 Option not supported), without
//! `Range: clock=…` (457 Invalid Range) or without `Rate-Control: no` (400: a real recorder would
//! then stream in real time; refusing makes a missing header fail the test instead of slowing
//! it). It records every PLAY it saw. For an accepted PLAY it opens its own session on the
//! gst-rtsp-server backend (the Hikvision-style `/Streaming/tracks/N01?starttime=&endtime=` URL
//! for the clock range, so the NVR's quirks such as `stop_fraction` apply) and passes the
//! backend's interleaved RTP/RTCP to the client byte for byte. DESCRIBE is answered with the
//! SDP of a one-second backend session of the same channel (same encoder, same parameters).
//!
//! The front asks for RTSP Digest (the NVR's user and password) on DESCRIBE, SETUP and PLAY,
//! as recorders guard replay like live view.
//!
//! Channel N is the recording `REC_CHnn`, listed N-th by `GetRecordings` (channels 1 up to the
//! highest channel that has segments).

use std::io::{BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use time::{OffsetDateTime, PrimitiveDateTime};
use witness_drivers::recording::digest;
use witness_drivers::recording::onvif::rtsp::{self, Message, TextMessage};
use witness_drivers::recording::onvif::soap::{self, Element};
use witness_drivers::recording::onvif::{
    DEVICE_WSDL, RECORDING_WSDL, REPLAY_WSDL, SCHEMA, SEARCH_WSDL,
};

use super::{Segment, Shared};

/// What the front saw on one PLAY, and how it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaySeen {
    pub require: Option<String>,
    pub range: Option<String>,
    pub rate_control: Option<String>,
    pub status: u16,
}

struct OnvifState {
    nvr: Arc<Shared>,
    http_base: String,
    front_port: u16,
    plays: Mutex<Vec<PlaySeen>>,
    /// GetRecordingInformation answers without its RecordingInformation element.
    garbage_information: AtomicBool,
    /// The recorder's clock minus the real one.
    clock_offset: Mutex<time::Duration>,
    connections: Mutex<Vec<TcpStream>>,
    stop: AtomicBool,
}

/// A running stand-in ONVIF recorder; dropping it stops its servers (not the NVR behind).
pub struct StandInOnvif {
    /// The device service, `http://127.0.0.1:PORT/onvif/device_service`.
    pub device_url: String,
    /// The RTSP front's port.
    pub rtsp_port: u16,
    state: Arc<OnvifState>,
    http: tokio::task::JoinHandle<()>,
}

impl StandInOnvif {
    /// Starts the SOAP services and the RTSP front for the recordings of `nvr`.
    pub async fn start(nvr: &super::StandInNvr) -> anyhow::Result<StandInOnvif> {
        let front = TcpListener::bind("127.0.0.1:0")?;
        let front_port = front.local_addr()?.port();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address: SocketAddr = listener.local_addr()?;
        let state = Arc::new(OnvifState {
            nvr: nvr.shared.clone(),
            http_base: format!("http://{address}"),
            front_port,
            plays: Mutex::new(Vec::new()),
            garbage_information: AtomicBool::new(false),
            clock_offset: Mutex::new(time::Duration::ZERO),
            connections: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        {
            let state = state.clone();
            std::thread::Builder::new()
                .name("onvif-front".into())
                .spawn(move || accept_front(front, state))?;
        }
        let app = axum::Router::new()
            .route("/onvif/{service}", axum::routing::post(soap_service))
            .with_state(state.clone());
        let http = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(StandInOnvif {
            device_url: format!("http://{address}/onvif/device_service"),
            rtsp_port: front_port,
            state,
            http,
        })
    }

    /// Every PLAY the RTSP front received so far, in order.
    pub fn plays(&self) -> Vec<PlaySeen> {
        self.state.plays.lock().unwrap().clone()
    }

    /// Sets the recorder's clock this far from the real one (tokens are checked against it).
    pub fn set_clock_offset(&self, offset: time::Duration) {
        *self.state.clock_offset.lock().unwrap() = offset;
    }

    /// Makes GetRecordingInformation answer without its `RecordingInformation` element.
    pub fn set_garbage_information(&self, on: bool) {
        self.state.garbage_information.store(on, Ordering::SeqCst);
    }
}

impl Drop for StandInOnvif {
    fn drop(&mut self) {
        self.http.abort();
        self.state.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.rtsp_port));
        for connection in self.state.connections.lock().unwrap().drain(..) {
            let _ = connection.shutdown(Shutdown::Both);
        }
    }
}

/// The channels the stand-in lists: 1 up to the highest with segments.
fn channel_count(nvr: &Shared) -> u32 {
    nvr.segments
        .iter()
        .map(|(s, _)| s.channel)
        .max()
        .unwrap_or(0)
}

fn token_of(channel: u32) -> String {
    format!("REC_CH{channel:02}")
}

fn channel_of(token: &str, nvr: &Shared) -> Option<u32> {
    let channel: u32 = token.strip_prefix("REC_CH")?.parse().ok()?;
    (1..=channel_count(nvr))
        .contains(&channel)
        .then_some(channel)
}

fn channel_segments(nvr: &Shared, channel: u32) -> Vec<Segment> {
    let mut segments: Vec<Segment> = nvr
        .segments
        .iter()
        .map(|(s, _)| *s)
        .filter(|s| s.channel == channel)
        .collect();
    segments.sort_by_key(|s| s.start);
    segments
}

fn xs_time(t: OffsetDateTime) -> String {
    t.format(time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
    ))
    .unwrap_or_default()
}

fn soap_reply(body: &str) -> Response {
    (
        [("Content-Type", "application/soap+xml; charset=utf-8")],
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<env:Envelope xmlns:env="{}" xmlns:tt="{SCHEMA}" xmlns:tds="{DEVICE_WSDL}" xmlns:trc="{RECORDING_WSDL}" xmlns:tse="{SEARCH_WSDL}" xmlns:trp="{REPLAY_WSDL}"><env:Body>{body}</env:Body></env:Envelope>"#,
            soap::SOAP_ENVELOPE
        ),
    )
        .into_response()
}

fn fault(code: &str, subcodes: &[&str], reason: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [("Content-Type", "application/soap+xml; charset=utf-8")],
        soap::fault_document(code, subcodes, reason),
    )
        .into_response()
}

/// How far a token's `Created` may be from the recorder's clock (replay protection; real
/// devices allow a few minutes).
const CREATED_TOLERANCE: time::Duration = time::Duration::minutes(5);

/// Whether the envelope carries a UsernameToken with a correct PasswordDigest, made within
/// [`CREATED_TOLERANCE`] of the recorder's clock `now`.
fn authorised(nvr: &Shared, envelope: &Element, now: OffsetDateTime) -> bool {
    let Ok(token) = envelope.required(&["Header", "Security", "UsernameToken"]) else {
        return false;
    };
    let text = |name: &str| token.child(name).map(|e| e.text.trim()).unwrap_or("");
    let Some(nonce) = soap::decode_nonce(text("Nonce")) else {
        return false;
    };
    let Ok(created) = OffsetDateTime::parse(
        text("Created"),
        &time::format_description::well_known::Rfc3339,
    ) else {
        return false;
    };
    text("Username") == nvr.user
        && (created - now).abs() <= CREATED_TOLERANCE
        && text("Password") == soap::password_digest(&nonce, text("Created"), &nvr.password)
}

async fn soap_service(
    State(state): State<Arc<OnvifState>>,
    axum::extract::Path(service): axum::extract::Path<String>,
    body: String,
) -> Response {
    let Ok(envelope) = soap::parse(&body) else {
        return fault("Sender", &["ter:WellFormed"], "XML not well formed");
    };
    let now = OffsetDateTime::now_utc() + *state.clock_offset.lock().unwrap();
    let asks_time = envelope
        .child("Body")
        .and_then(|b| b.children.first())
        .is_some_and(|r| r.name == "GetSystemDateAndTime");
    if service == "device_service" && asks_time {
        // Answered without authentication, as ONVIF requires (clients need it to date tokens).
        return soap_reply(&format!(
            "<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:DateTimeType>Manual</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings><tt:UTCDateTime><tt:Time><tt:Hour>{}</tt:Hour><tt:Minute>{}</tt:Minute><tt:Second>{}</tt:Second></tt:Time><tt:Date><tt:Year>{}</tt:Year><tt:Month>{}</tt:Month><tt:Day>{}</tt:Day></tt:Date></tt:UTCDateTime></tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>",
            now.hour(),
            now.minute(),
            now.second(),
            now.year(),
            u8::from(now.month()),
            now.day()
        ));
    }
    if !authorised(&state.nvr, &envelope, now) {
        return fault("Sender", &["ter:NotAuthorized"], "Sender not Authorized");
    }
    let Some(request) = envelope.child("Body").and_then(|b| b.children.first()) else {
        return fault("Sender", &["ter:InvalidArgVal"], "empty Body");
    };
    match (service.as_str(), request.name.as_str()) {
        ("device_service", "GetServices") => {
            let mut services = String::new();
            for (namespace, path) in [
                (DEVICE_WSDL, "device_service"),
                (RECORDING_WSDL, "recording"),
                (SEARCH_WSDL, "search"),
                (REPLAY_WSDL, "replay"),
            ] {
                services.push_str(&format!(
                    "<tds:Service><tds:Namespace>{namespace}</tds:Namespace><tds:XAddr>{}/onvif/{path}</tds:XAddr><tds:Version><tt:Major>2</tt:Major><tt:Minor>42</tt:Minor></tds:Version></tds:Service>",
                    state.http_base
                ));
            }
            soap_reply(&format!(
                "<tds:GetServicesResponse>{services}</tds:GetServicesResponse>"
            ))
        }
        ("recording", "GetRecordings") => {
            let mut items = String::new();
            for channel in 1..=channel_count(&state.nvr) {
                items.push_str(&format!(
                    "<trc:RecordingItem><tt:RecordingToken>{}</tt:RecordingToken><tt:Configuration><tt:Source><tt:SourceId>urn:stand-in:camera:{channel}</tt:SourceId><tt:Name>Camera {channel:02}</tt:Name><tt:Location/><tt:Description/><tt:Address/></tt:Source><tt:Content/><tt:MaximumRetentionTime>PT0S</tt:MaximumRetentionTime></tt:Configuration><tt:Tracks><tt:Track><tt:TrackToken>VIDEO001</tt:TrackToken><tt:Configuration><tt:TrackType>Video</tt:TrackType><tt:Description>video</tt:Description></tt:Configuration></tt:Track></tt:Tracks></trc:RecordingItem>",
                    token_of(channel)
                ));
            }
            soap_reply(&format!(
                "<trc:GetRecordingsResponse>{items}</trc:GetRecordingsResponse>"
            ))
        }
        ("search", "GetRecordingInformation") => {
            let token = request
                .child("RecordingToken")
                .map(|t| t.text.trim())
                .unwrap_or("");
            let Some(channel) = channel_of(token, &state.nvr) else {
                return fault(
                    "Sender",
                    &["ter:InvalidArgVal", "ter:NoRecording"],
                    "no such recording",
                );
            };
            if state.garbage_information.load(Ordering::SeqCst) {
                return soap_reply(
                    "<tse:GetRecordingInformationResponse><tse:Oops/></tse:GetRecordingInformationResponse>",
                );
            }
            let segments = channel_segments(&state.nvr, channel);
            let mut data = String::new();
            if let (Some(first), Some(last)) = (segments.first(), segments.last()) {
                data = format!(
                    "<tt:EarliestRecording>{0}</tt:EarliestRecording><tt:LatestRecording>{1}</tt:LatestRecording><tt:Content/><tt:Track><tt:TrackToken>VIDEO001</tt:TrackToken><tt:TrackType>Video</tt:TrackType><tt:Description>video</tt:Description><tt:DataFrom>{0}</tt:DataFrom><tt:DataTo>{1}</tt:DataTo></tt:Track>",
                    xs_time(first.start),
                    xs_time(last.end)
                );
            }
            soap_reply(&format!(
                "<tse:GetRecordingInformationResponse><tse:RecordingInformation><tt:RecordingToken>{token}</tt:RecordingToken><tt:Source><tt:SourceId>urn:stand-in:camera:{channel}</tt:SourceId><tt:Name>Camera {channel:02}</tt:Name><tt:Location/><tt:Description/><tt:Address/></tt:Source>{data}<tt:RecordingStatus>Stopped</tt:RecordingStatus></tse:RecordingInformation></tse:GetRecordingInformationResponse>"
            ))
        }
        ("replay", "GetReplayUri") => {
            let token = request
                .child("RecordingToken")
                .map(|t| t.text.trim())
                .unwrap_or("");
            let protocol = request
                .required(&["StreamSetup", "Transport", "Protocol"])
                .map(|p| p.text.trim().to_string())
                .unwrap_or_default();
            if channel_of(token, &state.nvr).is_none() || protocol != "RTSP" {
                return fault(
                    "Sender",
                    &["ter:InvalidArgVal", "ter:NoRecording"],
                    "bad request",
                );
            }
            soap_reply(&format!(
                "<trp:GetReplayUriResponse><trp:Uri>rtsp://127.0.0.1:{}/onvif-replay/{token}</trp:Uri></trp:GetReplayUriResponse>",
                state.front_port
            ))
        }
        _ => fault(
            "Receiver",
            &["ter:ActionNotSupported"],
            "this stand-in does not answer that here",
        ),
    }
}

fn accept_front(listener: TcpListener, state: Arc<OnvifState>) {
    for client in listener.incoming() {
        if state.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        if let Ok(clone) = client.try_clone() {
            state.connections.lock().unwrap().push(clone);
        }
        let state = state.clone();
        std::thread::spawn(move || {
            if let Err(e) = front_connection(client, &state) {
                eprintln!("onvif stand-in: RTSP connection ended: {e:#}");
            }
        });
    }
}

/// A backend session on gst-rtsp-server: its connection, reader (keeping what it buffered)
/// and the next CSeq.
struct Backend {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
    cseq: u32,
}

impl Backend {
    fn connect(port: u16) -> anyhow::Result<Backend> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        Ok(Backend {
            reader: BufReader::with_capacity(256 * 1024, stream.try_clone()?),
            stream,
            cseq: 1,
        })
    }

    fn request(
        &mut self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<TextMessage> {
        let mut request = TextMessage::request(method, url, self.cseq);
        self.cseq += 1;
        for (name, value) in headers {
            request.set_header(name, value);
        }
        Message::Text(request).write_to(&mut self.stream)?;
        loop {
            match rtsp::read_message(&mut self.reader)? {
                Some(Message::Text(response)) => return Ok(response),
                Some(Message::Interleaved { .. }) => continue,
                None => bail!("the backend closed the connection during {method}"),
            }
        }
    }

    /// DESCRIBE of `url`: status, SDP, the control URL of its first stream and the base URL
    /// (the aggregate control URL PLAY goes to).
    fn describe(&mut self, url: &str) -> anyhow::Result<(u16, Vec<u8>, String, String)> {
        let response = self.request("DESCRIBE", url, &[("Accept", "application/sdp")])?;
        let status = response.status().unwrap_or(500);
        let base = response
            .header("Content-Base")
            .map(str::to_string)
            .unwrap_or_else(|| format!("{url}/"));
        let sdp = String::from_utf8_lossy(&response.body).into_owned();
        let control = sdp
            .lines()
            .filter(|l| l.starts_with("a=control:"))
            .map(|l| l.trim_start_matches("a=control:").trim())
            .find(|c| *c != "*")
            .unwrap_or("stream=0");
        let control = if control.starts_with("rtsp://") {
            control.to_string()
        } else {
            format!("{}/{control}", base.trim_end_matches('/'))
        };
        Ok((status, response.body, control, base))
    }
}

/// The backend URL of `channel` from `start` to `end` (whole seconds around them).
fn backend_url(port: u16, channel: u32, start: OffsetDateTime, end: OffsetDateTime) -> String {
    let compact = |t: OffsetDateTime| {
        t.format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap_or_default()
    };
    let end_ceiling = if end.nanosecond() > 0 {
        end.replace_nanosecond(0).unwrap_or(end) + time::Duration::SECOND
    } else {
        end
    };
    let token = OffsetDateTime::now_utc().unix_timestamp() + 300;
    format!(
        "rtsp://127.0.0.1:{port}/Streaming/tracks/{channel}01?starttime={}&endtime={}&token={token}",
        compact(start.replace_nanosecond(0).unwrap_or(start)),
        compact(end_ceiling)
    )
}

/// `clock=20261120T000000.000Z-20261120T001000.000Z` as two instants.
fn parse_clock_range(value: &str) -> Option<(OffsetDateTime, OffsetDateTime)> {
    let (start, end) = value.trim().strip_prefix("clock=")?.split_once('-')?;
    let parse = |text: &str| -> Option<OffsetDateTime> {
        let text = text.trim().strip_suffix('Z')?;
        let with_fraction = time::macros::format_description!(
            "[year][month][day]T[hour][minute][second].[subsecond]"
        );
        let whole = time::macros::format_description!("[year][month][day]T[hour][minute][second]");
        PrimitiveDateTime::parse(text, with_fraction)
            .or_else(|_| PrimitiveDateTime::parse(text, whole))
            .ok()
            .map(PrimitiveDateTime::assume_utc)
    };
    let (start, end) = (parse(start)?, parse(end)?);
    (end > start).then_some((start, end))
}

/// The realm and nonce of the front's RTSP Digest challenge.
const RTSP_REALM: &str = "ONVIF-NVR-STANDIN";
const RTSP_NONCE: &str = "6f6e7669662d7265706c6179";

/// Whether an RTSP request carries a correct Digest answer for its own method and URI.
fn rtsp_authorised(nvr: &Shared, request: &TextMessage) -> bool {
    let Some(answer) = request
        .header("Authorization")
        .and_then(|v| v.strip_prefix("Digest "))
    else {
        return false;
    };
    let fields: std::collections::BTreeMap<String, String> =
        digest::parameters(answer).into_iter().collect();
    let field = |name: &str| fields.get(name).map(String::as_str).unwrap_or("");
    let (Some(method), Some(uri)) = (request.method(), request.uri()) else {
        return false;
    };
    if field("username") != nvr.user || field("nonce") != RTSP_NONCE || field("uri") != uri {
        return false;
    }
    let qop = (field("qop") == "auth").then(|| (field("nc"), field("cnonce")));
    let expected = digest::response(
        &digest::Credentials {
            user: &nvr.user,
            password: &nvr.password,
            realm: RTSP_REALM,
        },
        RTSP_NONCE,
        method,
        uri,
        qop,
    );
    field("response") == expected
}

/// The channel a request URI names (`…/onvif-replay/REC_CH01[/stream=0]`).
fn channel_in_uri(uri: &str, nvr: &Shared) -> Option<u32> {
    let rest = uri.split("/onvif-replay/").nth(1)?;
    channel_of(rest.split(['/', '?']).next()?, nvr)
}

fn front_connection(client: TcpStream, state: &OnvifState) -> anyhow::Result<()> {
    const SESSION: &str = "0E5F1A2B";
    let mut reader = BufReader::new(client.try_clone()?);
    let writer = Arc::new(Mutex::new(client));
    let send = |message: TextMessage| -> anyhow::Result<()> {
        Message::Text(message).write_to(&mut *writer.lock().unwrap())?;
        Ok(())
    };
    let mut transport: Option<String> = None;
    let mut backend_stream: Option<TcpStream> = None;
    let result = loop {
        let request = match rtsp::read_message(&mut reader) {
            Ok(Some(Message::Text(request))) => request,
            // RTCP receiver reports from the client: the backend does not need them.
            Ok(Some(Message::Interleaved { .. })) => continue,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e.into()),
        };
        let method = request.method().unwrap_or("").to_string();
        let uri = request.uri().unwrap_or("").to_string();
        let mut response = TextMessage::response_to(&request, 200, "OK");
        let guarded = matches!(method.as_str(), "DESCRIBE" | "SETUP" | "PLAY");
        if guarded && !rtsp_authorised(&state.nvr, &request) {
            let mut challenge = TextMessage::response_to(&request, 401, "Unauthorized");
            challenge.set_header(
                "WWW-Authenticate",
                &format!(r#"Digest realm="{RTSP_REALM}", nonce="{RTSP_NONCE}""#),
            );
            send(challenge)?;
            continue;
        }
        match method.as_str() {
            "OPTIONS" => response.set_header(
                "Public",
                "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER",
            ),
            "DESCRIBE" => {
                let Some(channel) = channel_in_uri(&uri, &state.nvr) else {
                    send(TextMessage::response_to(&request, 404, "Not Found"))?;
                    continue;
                };
                let Some(first) = channel_segments(&state.nvr, channel).first().copied() else {
                    send(TextMessage::response_to(&request, 404, "Not Found"))?;
                    continue;
                };
                let mut probe = Backend::connect(state.nvr.rtsp_port)?;
                let url = backend_url(
                    state.nvr.rtsp_port,
                    channel,
                    first.start,
                    first.start + time::Duration::SECOND,
                );
                let (status, sdp, _, _) = probe.describe(&url)?;
                if status != 200 {
                    send(TextMessage::response_to(
                        &request,
                        status,
                        "Backend Refused",
                    ))?;
                    continue;
                }
                let base = if uri.ends_with('/') {
                    uri.clone()
                } else {
                    format!("{uri}/")
                };
                response.set_header("Content-Base", &base);
                response.set_header("Content-Type", "application/sdp");
                response.set_body(sdp);
            }
            "SETUP" => {
                let requested = request.header("Transport").unwrap_or("").to_string();
                if !requested.contains("RTP/AVP/TCP") || !requested.contains("interleaved=") {
                    send(TextMessage::response_to(
                        &request,
                        461,
                        "Unsupported Transport",
                    ))?;
                    continue;
                }
                response.set_header("Transport", &requested);
                response.set_header("Session", &format!("{SESSION};timeout=60"));
                transport = Some(requested);
            }
            "PLAY" => {
                let seen = |status| PlaySeen {
                    require: request.header("Require").map(str::to_string),
                    range: request.header("Range").map(str::to_string),
                    rate_control: request.header("Rate-Control").map(str::to_string),
                    status,
                };
                let refuse = |status, reason: &str, extra: Option<(&str, &str)>| {
                    state.plays.lock().unwrap().push(seen(status));
                    let mut refusal = TextMessage::response_to(&request, status, reason);
                    if let Some((name, value)) = extra {
                        refusal.set_header(name, value);
                    }
                    send(refusal)
                };
                let requires_replay = request
                    .header("Require")
                    .is_some_and(|r| r.split(',').any(|t| t.trim() == "onvif-replay"));
                if !requires_replay {
                    refuse(
                        551,
                        "Option not supported",
                        Some(("Unsupported", "onvif-replay")),
                    )?;
                    continue;
                }
                let Some((start, end)) = request.header("Range").and_then(parse_clock_range) else {
                    refuse(457, "Invalid Range", None)?;
                    continue;
                };
                if request.header("Rate-Control") != Some("no") {
                    refuse(400, "Bad Request (Rate-Control: no expected)", None)?;
                    continue;
                }
                let (Some(channel), Some(transport)) =
                    (channel_in_uri(&uri, &state.nvr), transport.as_deref())
                else {
                    refuse(455, "Method Not Valid in This State", None)?;
                    continue;
                };
                let mut backend = Backend::connect(state.nvr.rtsp_port)?;
                let url = backend_url(state.nvr.rtsp_port, channel, start, end);
                let (status, _, control, base) = backend.describe(&url)?;
                if status != 200 {
                    refuse(status, "Backend Refused", None)?;
                    continue;
                }
                let setup = backend.request("SETUP", &control, &[("Transport", transport)])?;
                let session = setup
                    .header("Session")
                    .map(|s| s.split(';').next().unwrap_or(s).to_string())
                    .context("the backend's SETUP answer has no Session")?;
                let play = backend.request(
                    "PLAY",
                    &base,
                    &[("Session", &session), ("Range", "npt=0.000-")],
                )?;
                if play.status() != Some(200) {
                    refuse(play.status().unwrap_or(500), "Backend Refused", None)?;
                    continue;
                }
                state.plays.lock().unwrap().push(seen(200));
                response.set_header("Session", SESSION);
                response.set_header("Range", request.header("Range").unwrap_or(""));
                send(response)?;
                // From here the backend's RTP/RTCP (and its BYE at the end) goes to the client.
                let Backend { stream, reader, .. } = backend;
                backend_stream = Some(stream.try_clone()?);
                state.connections.lock().unwrap().push(stream);
                let writer = writer.clone();
                std::thread::spawn(move || {
                    // Packets are batched while more are already buffered, so the stand-in
                    // does not spend a system call per RTP packet (it shares the benchmark's CPU).
                    let mut reader = reader;
                    let mut batch = Vec::with_capacity(256 * 1024);
                    while let Ok(Some(message)) = rtsp::read_message(&mut reader) {
                        if let Message::Interleaved { .. } = message {
                            let _ = message.write_to(&mut batch);
                        }
                        if reader.buffer().is_empty() || batch.len() >= 256 * 1024 {
                            let mut client = writer.lock().unwrap();
                            if client.write_all(&batch).is_err() {
                                break;
                            }
                            batch.clear();
                        }
                    }
                });
                continue;
            }
            "GET_PARAMETER" | "SET_PARAMETER" => response.set_header("Session", SESSION),
            "TEARDOWN" => {
                send(response)?;
                break Ok(());
            }
            _ => {
                send(TextMessage::response_to(&request, 501, "Not Implemented"))?;
                continue;
            }
        }
        send(response)?;
    };
    if let Some(backend) = backend_stream {
        let _ = backend.shutdown(Shutdown::Both);
    }
    let _ = writer.lock().unwrap().shutdown(Shutdown::Both);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn clock_ranges_parse_with_and_without_fractions() {
        assert_eq!(
            parse_clock_range("clock=20261120T000000.000Z-20261120T001000.500Z"),
            Some((
                datetime!(2026-11-20 00:00 UTC),
                datetime!(2026-11-20 00:10:00.5 UTC)
            ))
        );
        assert!(parse_clock_range("clock=20261120T000000Z-20261120T001000Z").is_some());
        assert_eq!(parse_clock_range("npt=0.000-"), None);
        assert_eq!(
            parse_clock_range("clock=20261120T001000Z-20261120T000000Z"),
            None
        );
    }
}
