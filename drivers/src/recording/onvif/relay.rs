//! A loopback RTSP relay between FFmpeg and an ONVIF recorder's replay stream.
//!
//! ONVIF replay (Streaming Specification §6) needs three headers on PLAY that FFmpeg's RTSP
//! demuxer cannot send: `Require: onvif-replay`, `Range: clock=…` (absolute UTC time instead of
//! FFmpeg's `npt=0.000-`) and `Rate-Control: no` (as fast as the client reads). FFmpeg talks to
//! this relay instead; every request goes to the recorder unchanged except that the request URI
//! names the recorder and PLAY gets the three headers. Responses come back with the recorder's
//! address in URLs (Content-Base, SDP control lines, RTP-Info) replaced by the relay's, and
//! interleaved RTP/RTCP passes byte for byte. One thread per direction of each connection.
//!
//! RTSP Digest authentication (recorders guard replay like live view) is answered here: FFmpeg
//! never sees the login. A 401 to a request is answered by sending that request once more with
//! the answer; later requests carry it from the start.

use std::io::{BufReader, BufWriter, Write};
use std::net::{Shutdown, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use time::OffsetDateTime;

use super::rtsp::{self, Message, TextMessage};
use crate::recording::{digest, RecordingError, TimeWindow};

/// How long connecting to the recorder may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A clock time as ONVIF replay writes it in `Range: clock=` (`20261120T000000.000Z`).
pub fn clock_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    t.format(time::macros::format_description!(
        "[year][month][day]T[hour][minute][second].[subsecond digits:3]Z"
    ))
    .unwrap_or_default()
}

/// The `Range` header value asking for `window`.
pub fn clock_range(window: TimeWindow) -> String {
    format!(
        "clock={}-{}",
        clock_time(window.start),
        clock_time(window.end)
    )
}

/// The URL rewriting of one relay: its own base and the recorder's.
#[derive(Debug, Clone)]
pub struct Rewrite {
    /// `rtsp://127.0.0.1:PORT` of the relay.
    pub relay_base: String,
    /// The recorder's `rtsp://host[:port]` as the replay URI wrote it, and with the port
    /// spelled out (devices answer with either).
    pub recorder_bases: Vec<String>,
    /// The `Range` value put on PLAY.
    pub range: String,
}

impl Rewrite {
    /// A request from FFmpeg as the recorder must see it.
    pub fn request(&self, mut request: TextMessage) -> TextMessage {
        if let (Some(method), Some(uri)) = (request.method(), request.uri()) {
            let uri = match uri.strip_prefix(&self.relay_base) {
                Some(rest) => format!("{}{rest}", self.recorder_bases[0]),
                None => uri.to_string(),
            };
            let is_play = method.eq_ignore_ascii_case("PLAY");
            request.start_line = format!("{method} {uri} RTSP/1.0");
            if is_play {
                request.set_header("Range", &self.range);
                request.set_header("Require", "onvif-replay");
                request.set_header("Rate-Control", "no");
            }
        }
        request
    }

    /// A response from the recorder as FFmpeg must see it.
    pub fn response(&self, mut response: TextMessage) -> TextMessage {
        for (_, value) in &mut response.headers {
            *value = self.to_relay(value);
        }
        if !response.body.is_empty() {
            if let Ok(text) = std::str::from_utf8(&response.body) {
                let body = self.to_relay(text).into_bytes();
                response.set_body(body);
            }
        }
        response
    }

    /// `text` with the recorder's base replaced by the relay's wherever a base ends there
    /// (so `rtsp://10.0.0.5` does not match inside `rtsp://10.0.0.50`), longest base first.
    fn to_relay(&self, text: &str) -> String {
        let mut bases: Vec<&String> = self.recorder_bases.iter().collect();
        bases.sort_by_key(|b| std::cmp::Reverse(b.len()));
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        'scan: while !rest.is_empty() {
            for base in &bases {
                if let Some(after) = rest.strip_prefix(base.as_str()) {
                    let ends_here = after
                        .chars()
                        .next()
                        .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '.' || c == ':'));
                    if ends_here {
                        out.push_str(&self.relay_base);
                        rest = after;
                        continue 'scan;
                    }
                }
            }
            let mut chars = rest.chars();
            out.extend(chars.next());
            rest = chars.as_str();
        }
        out
    }
}

/// What every connection of one relay shares.
struct Shared {
    rewrite: Rewrite,
    /// User and password for RTSP Digest, if the recorder asks.
    login: Option<(String, String)>,
    /// The start line of the last response of the recorder with a status of 400 or more.
    refusal: Mutex<Option<String>>,
}

/// A running relay for one pull; dropping it stops it.
pub struct Relay {
    url: String,
    shared: Arc<Shared>,
    address: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Relay {
    /// Listens on a free loopback port for FFmpeg, relaying to the recorder of `replay_uri`
    /// with `Range: clock=` set to `window`.
    pub fn start(
        replay_uri: &str,
        window: TimeWindow,
        login: Option<(&str, &str)>,
    ) -> Result<Relay, RecordingError> {
        let bad = || {
            RecordingError::BadReply(format!(
                "回放地址不是 RTSP (the replay URI is not rtsp://host[:port]/…): {replay_uri}"
            ))
        };
        let rest = replay_uri.strip_prefix("rtsp://").ok_or_else(bad)?;
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(authority_end);
        // Credentials some recorders put in the URI are dropped (FFmpeg would log them); the
        // relay answers RTSP Digest with the configured login instead.
        let host_port = authority.rsplit('@').next().unwrap_or(authority);
        if host_port.is_empty() {
            return Err(bad());
        }
        let with_port = if host_port
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            && !host_port.ends_with(']')
        {
            host_port.to_string()
        } else {
            format!("{host_port}:554")
        };
        let mut recorder_bases = vec![format!("rtsp://{host_port}")];
        if with_port != host_port {
            recorder_bases.push(format!("rtsp://{with_port}"));
        }
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|cause| RecordingError::Io {
            step: "opening the loopback RTSP relay",
            cause,
        })?;
        let address = listener.local_addr().map_err(|cause| RecordingError::Io {
            step: "opening the loopback RTSP relay",
            cause,
        })?;
        let shared = Arc::new(Shared {
            rewrite: Rewrite {
                relay_base: format!("rtsp://{address}"),
                recorder_bases,
                range: clock_range(window),
            },
            refusal: Mutex::new(None),
            login: login.map(|(user, password)| (user.to_string(), password.to_string())),
        });
        let url = format!("{}{path}", shared.rewrite.relay_base);
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let (stop, shared) = (stop.clone(), shared.clone());
            std::thread::Builder::new()
                .name("onvif-relay".into())
                .spawn(move || accept_loop(listener, with_port, shared, stop))
                .map_err(|cause| RecordingError::Io {
                    step: "starting the RTSP relay thread",
                    cause,
                })?
        };
        Ok(Relay {
            url,
            shared,
            address,
            stop,
            accept: Some(accept),
        })
    }

    /// The URL FFmpeg opens (the replay URI's path and query on the relay).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The recorder's last refusal (`RTSP/1.0 551 Option not supported`), if any: FFmpeg only
    /// says "5XX", this says which status and why.
    pub fn refusal(&self) -> Option<String> {
        self.shared
            .refusal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which then sees the flag.
        let _ = TcpStream::connect_timeout(&self.address, Duration::from_secs(1));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

fn accept_loop(
    listener: TcpListener,
    recorder: String,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
) {
    let mut connections = Vec::new();
    for client in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(client) = client else { continue };
        let (recorder, shared) = (recorder.clone(), shared.clone());
        connections.push(std::thread::spawn(move || {
            if let Err(e) = relay_connection(client, &recorder, shared) {
                tracing::debug!(%recorder, error = %e, "ONVIF replay relay connection ended");
            }
        }));
    }
    for connection in connections {
        let _ = connection.join();
    }
}

/// The Digest state of one connection.
#[derive(Default)]
struct Auth {
    challenge: Option<digest::Challenge>,
    /// The last request sent to the recorder, as sent (to send again after a 401).
    pending: Option<TextMessage>,
    /// Whether `pending` was already sent again with an answer.
    retried: bool,
}

/// `request` with an `Authorization` answering `challenge`.
fn answer(
    mut request: TextMessage,
    challenge: &digest::Challenge,
    (user, password): &(String, String),
) -> TextMessage {
    let cnonce = format!(
        "{:016x}",
        OffsetDateTime::now_utc().unix_timestamp_nanos() as u64 ^ u64::from(std::process::id())
    );
    let method = request.method().unwrap_or("").to_string();
    let uri = request.uri().unwrap_or("").to_string();
    let authorization = digest::authorization(challenge, user, password, &method, &uri, &cnonce);
    request.set_header("Authorization", &authorization);
    request
}

type Writer = Mutex<BufWriter<TcpStream>>;

fn locked<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Relays one FFmpeg connection until either side closes.
fn relay_connection(client: TcpStream, recorder: &str, shared: Arc<Shared>) -> std::io::Result<()> {
    let address = recorder
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("{recorder} does not resolve")))?;
    let upstream = match TcpStream::connect_timeout(&address, CONNECT_TIMEOUT) {
        Ok(upstream) => upstream,
        Err(e) => {
            // FFmpeg sees the connection close and reports the open as failed.
            let _ = client.shutdown(Shutdown::Both);
            return Err(e);
        }
    };
    let _ = upstream.set_nodelay(true);
    let _ = client.set_nodelay(true);
    // Both directions write to the recorder (requests, and requests sent again after a 401).
    let to_recorder: Arc<Writer> = Arc::new(Mutex::new(BufWriter::with_capacity(
        64 * 1024,
        upstream.try_clone()?,
    )));
    let auth = Arc::new(Mutex::new(Auth::default()));
    let downstream = {
        let (upstream, client) = (upstream.try_clone()?, client.try_clone()?);
        let (shared, auth, to_recorder) = (shared.clone(), auth.clone(), to_recorder.clone());
        std::thread::spawn(move || {
            let to_client = Mutex::new(BufWriter::with_capacity(256 * 1024, client.try_clone()?));
            let result = pump(&upstream, &to_client, |m| {
                let Message::Text(response) = m else {
                    return Ok(Some(m));
                };
                if response.status() == Some(401) {
                    if let Some(again) = answer_challenge(&shared, &auth, &response) {
                        let mut out = locked(&to_recorder);
                        Message::Text(again).write_to(&mut *out)?;
                        out.flush()?;
                        return Ok(None);
                    }
                }
                if response.status().is_some_and(|status| status >= 400) {
                    *locked(&shared.refusal) = Some(response.start_line.clone());
                }
                Ok(Some(Message::Text(shared.rewrite.response(response))))
            });
            let _ = client.shutdown(Shutdown::Both);
            let _ = upstream.shutdown(Shutdown::Both);
            result
        })
    };
    let result = pump(&client, &to_recorder, |m| {
        let Message::Text(request) = m else {
            return Ok(Some(m));
        };
        let mut request = shared.rewrite.request(request);
        let mut auth = locked(&auth);
        if let (Some(challenge), Some(login)) = (&auth.challenge, &shared.login) {
            request = answer(request, challenge, login);
        }
        auth.pending = Some(request.clone());
        auth.retried = false;
        Ok(Some(Message::Text(request)))
    });
    let _ = upstream.shutdown(Shutdown::Both);
    let _ = client.shutdown(Shutdown::Both);
    let down = downstream
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("relay thread panicked")));
    result.and(down)
}

/// The pending request with an answer to the 401 `response`, if there is a login, a Digest
/// challenge and the request was not answered already (a second 401 goes to FFmpeg).
fn answer_challenge(
    shared: &Shared,
    auth: &Mutex<Auth>,
    response: &TextMessage,
) -> Option<TextMessage> {
    let login = shared.login.as_ref()?;
    let challenge = response
        .headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("WWW-Authenticate"))
        .find_map(|(_, value)| digest::parse_challenge(value))?;
    let mut auth = locked(auth);
    if auth.retried {
        return None;
    }
    let pending = auth.pending.clone()?;
    auth.retried = true;
    auth.challenge = Some(challenge.clone());
    Some(answer(pending, &challenge, login))
}

/// Copies messages from `from` to `to`, passing each through `map` (`None` drops it). Writes
/// are buffered and flushed whenever nothing more is waiting to be read, so video flows in
/// large writes.
fn pump(
    from: &TcpStream,
    to: &Writer,
    mut map: impl FnMut(Message) -> std::io::Result<Option<Message>>,
) -> std::io::Result<()> {
    let mut input = BufReader::with_capacity(256 * 1024, from);
    while let Some(message) = rtsp::read_message(&mut input)? {
        if let Some(message) = map(message)? {
            let mut out = locked(to);
            message.write_to(&mut *out)?;
            if input.buffer().is_empty() {
                out.flush()?;
            }
        }
    }
    locked(to).flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn rewrite() -> Rewrite {
        Rewrite {
            relay_base: "rtsp://127.0.0.1:40000".into(),
            recorder_bases: vec!["rtsp://10.0.0.5".into(), "rtsp://10.0.0.5:554".into()],
            range: clock_range(TimeWindow {
                start: datetime!(2026-11-20 00:00 UTC),
                end: datetime!(2026-11-20 00:10:00.5 UTC),
            }),
        }
    }

    #[test]
    fn play_gets_the_replay_headers_and_the_recorder_uri() {
        let mut play = TextMessage::request("PLAY", "rtsp://127.0.0.1:40000/replay/REC_CH01/", 5);
        play.set_header("Range", "npt=0.000-");
        play.set_header("Session", "12345678");
        let sent = rewrite().request(play);
        assert_eq!(
            sent.start_line,
            "PLAY rtsp://10.0.0.5/replay/REC_CH01/ RTSP/1.0"
        );
        assert_eq!(
            sent.header("Range"),
            Some("clock=20261120T000000.000Z-20261120T001000.500Z")
        );
        assert_eq!(sent.headers.iter().filter(|(n, _)| n == "Range").count(), 1);
        assert_eq!(sent.header("Require"), Some("onvif-replay"));
        assert_eq!(sent.header("Rate-Control"), Some("no"));
        assert_eq!(sent.header("Session"), Some("12345678"));
        assert_eq!(sent.header("CSeq"), Some("5"));
    }

    #[test]
    fn other_requests_pass_unchanged_but_for_the_uri() {
        let mut describe =
            TextMessage::request("DESCRIBE", "rtsp://127.0.0.1:40000/replay/REC_CH01/", 2);
        describe.set_header("Accept", "application/sdp");
        let sent = rewrite().request(describe.clone());
        assert_eq!(
            sent.start_line,
            "DESCRIBE rtsp://10.0.0.5/replay/REC_CH01/ RTSP/1.0"
        );
        assert_eq!(sent.headers, describe.headers);
        assert_eq!(sent.header("Require"), None);
    }

    #[test]
    fn responses_name_the_relay_with_a_correct_length() {
        let request = TextMessage::request("DESCRIBE", "rtsp://127.0.0.1:40000/r", 2);
        let mut response = TextMessage::response_to(&request, 200, "OK");
        response.set_header("Content-Base", "rtsp://10.0.0.5:554/r/");
        response.set_body(b"v=0\r\na=control:rtsp://10.0.0.5/r/trackID=1\r\n".to_vec());
        let back = rewrite().response(response);
        assert_eq!(
            back.header("Content-Base"),
            Some("rtsp://127.0.0.1:40000/r/")
        );
        let body = String::from_utf8(back.body.clone()).unwrap();
        assert_eq!(
            body,
            "v=0\r\na=control:rtsp://127.0.0.1:40000/r/trackID=1\r\n"
        );
        assert_eq!(
            back.header("Content-Length"),
            Some(body.len().to_string().as_str())
        );
        // Another host whose address starts with the recorder's is left alone.
        let mut other = TextMessage::response_to(&request, 200, "OK");
        other.set_header("Content-Base", "rtsp://10.0.0.50/r/");
        let back = rewrite().response(other);
        assert_eq!(back.header("Content-Base"), Some("rtsp://10.0.0.50/r/"));
    }

    #[test]
    fn a_digest_challenge_is_answered_once_for_the_pending_request() {
        let shared = Shared {
            rewrite: rewrite(),
            login: Some(("admin".into(), "pw".into())),
            refusal: Mutex::new(None),
        };
        let auth = Mutex::new(Auth::default());
        let describe = TextMessage::request("DESCRIBE", "rtsp://10.0.0.5/replay/REC_CH01", 2);
        locked(&auth).pending = Some(describe.clone());
        let mut challenge = TextMessage::response_to(&describe, 401, "Unauthorized");
        challenge.set_header("WWW-Authenticate", r#"Digest realm="NVR", nonce="abc""#);

        let again = answer_challenge(&shared, &auth, &challenge).unwrap();
        assert_eq!(again.start_line, describe.start_line);
        assert_eq!(again.header("CSeq"), Some("2"));
        let expected = digest::response(
            &digest::Credentials {
                user: "admin",
                password: "pw",
                realm: "NVR",
            },
            "abc",
            "DESCRIBE",
            "rtsp://10.0.0.5/replay/REC_CH01",
            None,
        );
        let authorization = again.header("Authorization").unwrap();
        assert!(
            authorization.contains(&format!("response=\"{expected}\"")),
            "{authorization}"
        );
        // A second 401 for the same request is the recorder's final word.
        assert!(answer_challenge(&shared, &auth, &challenge).is_none());
        // Without a login there is nothing to answer with.
        let anonymous = Shared {
            login: None,
            ..shared
        };
        let fresh = Mutex::new(Auth {
            pending: Some(describe),
            ..Auth::default()
        });
        assert!(answer_challenge(&anonymous, &fresh, &challenge).is_none());
    }
}
