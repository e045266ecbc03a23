//! Dahua NVRs: `/cgi-bin/mediaFileFind.cgi` for what was recorded (HTTP Digest), then the
//! window over RTSP from `cam/playback?channel=&starttime=&endtime=`.
//!
//! A search is a small conversation with a find object on the NVR: `factory.create` gives its
//! id, `findFile` sets the conditions, `findNextFile` is repeated until it answers `found=0`,
//! then `close` and `destroy` free it (NVRs hold only a few, so they are freed even after an
//! error). Replies are Dahua's `key=value` lines (`items[0].StartTime=2026-11-20 08:00:00`).
//!
//! Choices where firmware differs:
//! - `condition.Channel` is sent 1-based, as on the NVR's screen (DH-NVR4xxx/5xxx firmware of
//!   2019 onwards; some older firmware counts from 0 and must be mapped in the room
//!   configuration). The `items[].Channel` of replies is not used: firmware disagrees on whether
//!   it counts from 0 or 1, and the conditions already name the channel.
//! - Times carry no zone: they are the NVR's wall clock. [`NvrClock::Utc`] reads them as UTC,
//!   [`NvrClock::LocalMarkedZ`] as local time at its offset (UTC+8 for an NVR in China, the
//!   usual setting).
//! - `cam/playback` wants the user and password in the URL (`rtsp://user:password@host/…`);
//!   that URL is built only for FFmpeg at open time and never logged or stored.

use std::collections::BTreeMap;
use std::time::Duration;

use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use super::{
    digest, recorded_for, remux, NvrClock, PullProgress, PullReport, PullRequest, RecordedSegment,
    RecordingError, RecordingSource, TimeWindow, TOLERANCE,
};

/// Results asked for per `findNextFile`.
const PAGE: usize = 100;
/// More pages than any day of one channel holds: an NVR answering forever is broken.
const MAX_PAGES: usize = 500;
const CGI: &str = "/cgi-bin/mediaFileFind.cgi";

/// A Dahua NVR reached over its HTTP CGI (Digest authentication) and RTSP.
#[derive(Debug, Clone)]
pub struct DahuaNvr {
    /// `http://host:port`, without a trailing slash.
    base_url: String,
    user: String,
    password: String,
    clock: NvrClock,
    rtsp_port: u16,
    timeout: Duration,
}

impl DahuaNvr {
    pub fn new(base_url: &str, user: &str, password: &str) -> DahuaNvr {
        DahuaNvr {
            base_url: base_url.trim_end_matches('/').to_string(),
            user: user.to_string(),
            password: password.to_string(),
            clock: NvrClock::Utc,
            rtsp_port: 554,
            timeout: Duration::from_secs(15),
        }
    }

    pub fn with_clock(mut self, clock: NvrClock) -> DahuaNvr {
        self.clock = clock;
        self
    }

    /// The NVR's RTSP port (554 unless changed on the NVR).
    pub fn with_rtsp_port(mut self, port: u16) -> DahuaNvr {
        self.rtsp_port = port;
        self
    }

    fn offset(&self) -> UtcOffset {
        match self.clock {
            NvrClock::Utc => UtcOffset::UTC,
            NvrClock::LocalMarkedZ(offset) => offset,
        }
    }

    /// A time as the CGI reads it, URL-encoded: `2026-11-20%2008:00:00`.
    fn cgi_time(&self, t: OffsetDateTime) -> String {
        t.to_offset(self.offset())
            .format(time::macros::format_description!(
                "[year]-[month]-[day]%20[hour]:[minute]:[second]"
            ))
            .unwrap_or_default()
    }

    /// A time as `cam/playback` reads it: `2026_11_20_08_00_00`.
    fn playback_time(&self, t: OffsetDateTime) -> String {
        t.to_offset(self.offset())
            .format(time::macros::format_description!(
                "[year]_[month]_[day]_[hour]_[minute]_[second]"
            ))
            .unwrap_or_default()
    }

    /// Reads a reply time (`2026-11-20 08:00:00`; firmware also leaves out leading zeros).
    fn parse_time(&self, key: &str, text: &str) -> Result<OffsetDateTime, RecordingError> {
        let bad = || {
            RecordingError::BadReply(format!(
                "{key} 的时间格式不对 (bad time in {key}): {text:?}"
            ))
        };
        let (date, clock) = text.trim().split_once(' ').ok_or_else(bad)?;
        let numbers = |part: &str, separator: char| -> Option<Vec<u32>> {
            let numbers: Option<Vec<u32>> = part.split(separator).map(|n| n.parse().ok()).collect();
            numbers.filter(|n| n.len() == 3)
        };
        let (date, clock) = (
            numbers(date, '-').ok_or_else(bad)?,
            numbers(clock.trim(), ':').ok_or_else(bad)?,
        );
        let month = u8::try_from(date[1])
            .ok()
            .and_then(|m| time::Month::try_from(m).ok())
            .ok_or_else(bad)?;
        let day = time::Date::from_calendar_date(date[0] as i32, month, date[2] as u8)
            .map_err(|_| bad())?;
        let at = time::Time::from_hms(clock[0] as u8, clock[1] as u8, clock[2] as u8)
            .map_err(|_| bad())?;
        Ok(PrimitiveDateTime::new(day, at).assume_offset(self.offset()))
    }

    /// The host of the web interface, which also serves RTSP.
    fn host(&self) -> Result<&str, RecordingError> {
        let rest = self
            .base_url
            .split_once("://")
            .map_or(self.base_url.as_str(), |(_, rest)| rest);
        let authority = rest.split('/').next().unwrap_or("");
        let host = match authority.strip_prefix('[') {
            // An IPv6 literal keeps its brackets.
            Some(v6) => v6
                .split_once(']')
                .map(|(address, _)| &authority[..address.len() + 2]),
            None => authority.split(':').next(),
        };
        host.filter(|h| !h.is_empty()).ok_or_else(|| {
            RecordingError::InvalidWindow(format!(
                "录像机地址 {:?} 中没有主机名 (no host in the NVR's URL)",
                self.base_url
            ))
        })
    }

    /// The `cam/playback` URL of `window`, with `credentials` for FFmpeg (never for logs).
    fn playback_url(
        &self,
        channel: u32,
        window: TimeWindow,
        credentials: bool,
    ) -> Result<String, RecordingError> {
        let login = if credentials {
            format!(
                "{}:{}@",
                percent_encode(&self.user),
                percent_encode(&self.password)
            )
        } else {
            String::new()
        };
        Ok(format!(
            "rtsp://{login}{}:{}/cam/playback?channel={channel}&starttime={}&endtime={}",
            self.host()?,
            self.rtsp_port,
            self.playback_time(window.start),
            self.playback_time(window.end)
        ))
    }

    /// One CGI call: its reply lines, or a clear error for any status but 200.
    fn call(&self, action: &str, query: &str) -> Result<Vec<(String, String)>, RecordingError> {
        let login = digest::Login {
            base_url: &self.base_url,
            user: &self.user,
            password: &self.password,
        };
        let path = format!("{CGI}?action={action}{query}");
        let response = digest::send(&digest::agent(self.timeout), &login, "GET", &path, None)?;
        let (status, text) = digest::reply_text(response)?;
        if status != 200 {
            let first_line = text.lines().next().unwrap_or("").trim();
            return Err(RecordingError::BadReply(format!(
                "mediaFileFind.cgi {action} 返回 HTTP {status} (answered HTTP {status}): \
                 {first_line:?}"
            )));
        }
        parse_lines(action, &text)
    }

    /// `findFile` then `findNextFile` until nothing is left, on an existing find object.
    fn find(
        &self,
        object: &str,
        channel: u32,
        window: TimeWindow,
    ) -> Result<Vec<RecordedSegment>, RecordingError> {
        let conditions = format!(
            "&object={object}&condition.Channel={channel}&condition.StartTime={}\
             &condition.EndTime={}&condition.Types%5B0%5D=dav",
            self.cgi_time(window.start),
            self.cgi_time(window.end)
        );
        let reply = self.call("findFile", &conditions)?;
        if !matches!(reply.as_slice(), [(ok, _)] if ok == "OK") {
            return Err(RecordingError::BadReply(format!(
                "findFile 没有回答 OK (findFile did not answer OK): {reply:?}"
            )));
        }
        let mut segments = Vec::new();
        for _ in 0..MAX_PAGES {
            let reply = self.call("findNextFile", &format!("&object={object}&count={PAGE}"))?;
            let items = parse_items(&reply)?;
            if items.is_empty() {
                return Ok(segments);
            }
            for (index, fields) in items {
                let field = |name: &str| {
                    let key = format!("items[{index}].{name}");
                    match fields.get(name) {
                        Some(value) => Ok((key, value.as_str())),
                        None => Err(RecordingError::BadReply(format!(
                            "回复缺少 {key} ({key} missing from the reply)"
                        ))),
                    }
                };
                let (start_key, start) = field("StartTime")?;
                let (end_key, end) = field("EndTime")?;
                let span = TimeWindow {
                    start: self.parse_time(&start_key, start)?,
                    end: self.parse_time(&end_key, end)?,
                };
                if span.end <= span.start {
                    return Err(RecordingError::BadReply(format!(
                        "items[{index}] 的结束时间不晚于开始时间 (items[{index}] ends before it \
                         starts): {start} – {end}"
                    )));
                }
                segments.push(RecordedSegment {
                    span,
                    playback_uri: self.playback_url(channel, span, false)?,
                });
            }
        }
        Err(RecordingError::BadReply(format!(
            "findNextFile 超过 {MAX_PAGES} 页仍未结束 (findNextFile did not end after \
             {MAX_PAGES} pages)"
        )))
    }
}

/// Dahua's reply lines: `key=value` each, or a lone word (`OK`, `Error`) kept with an empty
/// value. Anything else names the line it could not read.
fn parse_lines(action: &str, text: &str) -> Result<Vec<(String, String)>, RecordingError> {
    let mut pairs = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let pair = match line.split_once('=') {
            Some((key, value)) => (key.trim(), value.trim()),
            None => (line, ""),
        };
        let word = |c: char| c.is_ascii_alphanumeric() || "[]._".contains(c);
        if pair.0.is_empty() || !pair.0.chars().all(word) {
            return Err(RecordingError::BadReply(format!(
                "{action} 回复第 {} 行无法理解 (line {} of the {action} reply not understood): \
                 {line:?}",
                number + 1,
                number + 1
            )));
        }
        pairs.push((pair.0.to_string(), pair.1.to_string()));
    }
    Ok(pairs)
}

/// The items of a `findNextFile` reply by index, each a map of field to value; `found=` must
/// be there and agree with the items listed.
fn parse_items(
    reply: &[(String, String)],
) -> Result<BTreeMap<usize, BTreeMap<String, String>>, RecordingError> {
    let mut found = None;
    let mut items: BTreeMap<usize, BTreeMap<String, String>> = BTreeMap::new();
    for (key, value) in reply {
        if key == "found" {
            found = Some(value.parse::<usize>().map_err(|_| {
                RecordingError::BadReply(format!("found={value} 不是数字 (found is not a number)"))
            })?);
        } else if let Some(rest) = key.strip_prefix("items[") {
            let parsed = rest
                .split_once("].")
                .and_then(|(index, field)| Some((index.parse::<usize>().ok()?, field)));
            let Some((index, field)) = parsed else {
                return Err(RecordingError::BadReply(format!(
                    "无法理解的键 {key:?} (key not understood)"
                )));
            };
            items
                .entry(index)
                .or_default()
                .insert(field.to_string(), value.clone());
        }
    }
    let found = found.ok_or_else(|| {
        RecordingError::BadReply(format!(
            "findNextFile 回复缺少 found= (findNextFile reply without found=): {reply:?}"
        ))
    })?;
    let listed: Vec<usize> = items.keys().copied().collect();
    if listed != (0..found).collect::<Vec<_>>() {
        return Err(RecordingError::BadReply(format!(
            "found={found} 与列出的项目 {listed:?} 不符 (found={found} does not match the items \
             listed)"
        )));
    }
    Ok(items)
}

/// Percent-encodes a user name or password for the user-info part of a URL (FFmpeg decodes it).
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl RecordingSource for DahuaNvr {
    fn search(
        &self,
        channel: u32,
        window: TimeWindow,
    ) -> Result<Vec<RecordedSegment>, RecordingError> {
        if channel == 0 || channel > 256 {
            return Err(RecordingError::InvalidWindow(format!(
                "通道号 {channel} 无效 (channel must be 1–256)"
            )));
        }
        let created = self.call("factory.create", "")?;
        let object = match created.as_slice() {
            [(key, id)]
                if key == "result" && !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) =>
            {
                id.clone()
            }
            _ => {
                return Err(RecordingError::BadReply(format!(
                    "factory.create 没有返回对象号 (factory.create gave no object id): {created:?}"
                )))
            }
        };
        let found = self.find(&object, channel, window);
        // Freed whatever the outcome: the NVR keeps only a few find objects.
        for action in ["close", "destroy"] {
            if let Err(e) = self.call(action, &format!("&object={object}")) {
                tracing::warn!(%e, action, "freeing a Dahua find object failed");
            }
        }
        let mut segments = found?;
        segments.sort_by_key(|s| s.span.start);
        // Files touching the window's edges are neighbours; one far from it means the NVR read
        // our times in another zone.
        let far = segments.iter().find(|s| {
            s.span.end + TOLERANCE < window.start || s.span.start > window.end + TOLERANCE
        });
        if let Some(far) = far {
            return Err(RecordingError::BadReply(format!(
                "录像机返回了所查时段以外的录像 {} (the NVR answered with a recording outside the \
                 window {window}); check the NVR's clock setting (utc or local)",
                far.span
            )));
        }
        segments.retain(|s| s.span.start < window.end && window.start < s.span.end);
        Ok(segments)
    }

    fn pull(
        &self,
        request: &PullRequest<'_>,
        progress: &mut dyn FnMut(PullProgress),
    ) -> Result<PullReport, RecordingError> {
        let segments = recorded_for(self, request)?;
        let partial = remux::partial_path(request.output)?;
        let url = self.playback_url(request.channel, request.window, true)?;
        let outcome = remux::pull_window(&url, request, &segments, &partial, progress);
        remux::settle(outcome, &partial, request.output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{datetime, offset};

    #[test]
    fn times_are_the_nvr_wall_clock_both_ways() {
        let nvr = DahuaNvr::new("http://10.0.0.9:8080/", "admin", "p@ss:w rd")
            .with_clock(NvrClock::LocalMarkedZ(offset!(+8)))
            .with_rtsp_port(10554);
        let t = datetime!(2026-11-20 00:00 UTC);
        assert_eq!(nvr.cgi_time(t), "2026-11-20%2008:00:00");
        assert_eq!(nvr.playback_time(t), "2026_11_20_08_00_00");
        assert_eq!(nvr.parse_time("k", "2026-11-20 08:00:00").unwrap(), t);
        // Firmware that leaves out leading zeros.
        assert_eq!(
            nvr.parse_time("k", "2026-11-20 8:0:0").unwrap(),
            datetime!(2026-11-20 00:00 UTC)
        );
        let message = nvr
            .parse_time("items[3].EndTime", "2026-13-01 00:00:00")
            .unwrap_err()
            .to_string();
        assert!(message.contains("items[3].EndTime"), "{message}");
        let window = TimeWindow {
            start: t,
            end: t + time::Duration::minutes(10),
        };
        assert_eq!(
            nvr.playback_url(2, window, true).unwrap(),
            "rtsp://admin:p%40ss%3Aw%20rd@10.0.0.9:10554/cam/playback?channel=2\
             &starttime=2026_11_20_08_00_00&endtime=2026_11_20_08_10_00"
        );
        assert!(!nvr.playback_url(2, window, false).unwrap().contains('@'));
        let v6 = DahuaNvr::new("http://[fd00::9]:80", "a", "b");
        assert_eq!(v6.host().unwrap(), "[fd00::9]");
    }

    #[test]
    fn replies_parse_and_garbage_names_its_line() {
        let reply = parse_lines(
            "findNextFile",
            "found=2\r\nitems[0].Channel=0\r\nitems[0].StartTime=2026-11-20 08:00:00\r\n\
             items[0].EndTime=2026-11-20 09:00:00\r\nitems[1].StartTime=2026-11-20 09:00:00\r\n\
             items[1].EndTime=2026-11-20 09:30:00\r\nitems[1].FilePath=/mnt/dvr/a.dav\r\n",
        )
        .unwrap();
        let items = parse_items(&reply).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[&1]["FilePath"], "/mnt/dvr/a.dav");
        assert_eq!(parse_lines("findFile", "OK\r\n").unwrap()[0].0, "OK");

        let err = parse_lines("findNextFile", "found=1\r\n<html>Server Error</html>\r\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2") && err.contains("<html>"), "{err}");
        let missing = parse_items(&parse_lines("x", "items[0].StartTime=1\r\n").unwrap());
        assert!(missing.unwrap_err().to_string().contains("found="));
        let short = parse_items(&parse_lines("x", "found=2\r\nitems[0].Type=dav\r\n").unwrap());
        assert!(short.unwrap_err().to_string().contains("found=2"));
    }
}
