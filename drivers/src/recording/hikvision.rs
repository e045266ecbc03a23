//! Hikvision NVRs over ISAPI: `/ISAPI/ContentMgmt/search` for what was recorded, then the
//! returned `playbackURI` over RTSP with the window's `starttime`/`endtime`.
//!
//! Firmware quirks handled here (each has a test against the stand-in NVR):
//! - Times marked `Z` that are really local time (many DS-7600/7700 NVRs set to "local" time
//!   mode): configured per NVR with [`NvrClock::LocalMarkedZ`]; a search answering with spans
//!   far outside the window is reported as this misconfiguration rather than pulled.
//! - Streams running past `endtime`: packets after the window end are cut off.
//! - A search starting exactly on a segment boundary also returns the segment that ends there:
//!   segments ending at (or within a second before) the window start are ignored.
//! - Playback URIs expire (they carry a session token): a failed open searches again for a
//!   fresh URI, twice at most.
//! - Some NVRs refuse RTSP playback altogether (playback sessions used up, RTSP disabled, a
//!   firewall letting only HTTP through): when the playback still does not open after the
//!   fresh URIs, the window is fetched with `/ISAPI/ContentMgmt/download` (the same playback
//!   URI; the reply is the recording as one file, MPEG-PS or MP4 on real devices) into a hidden
//!   file beside the output and stream-copied with the same measuring code. A stream that
//!   opened and then stopped midway is not retried this way: it is an incomplete pull.

use std::path::Path;
use std::time::Duration;

use quick_xml::events::Event;
use time::{OffsetDateTime, UtcOffset};

use super::remux;
use super::{
    check_window, digest, PullProgress, PullReport, PullRequest, RecordedSegment, RecordingError,
    RecordingSource, TimeWindow, TOLERANCE,
};

/// How an NVR's clock labels its times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NvrClock {
    /// Times marked `Z` are UTC, as ISAPI says they are.
    Utc,
    /// Times marked `Z` are local time at this offset (China: +08:00).
    LocalMarkedZ(UtcOffset),
}

/// How many times an open failure is answered with a fresh search (expired playback URIs).
const URI_REFRESHES: u32 = 2;
/// Results asked for per search page.
const PAGE: usize = 40;

/// A Hikvision NVR reached over ISAPI (HTTP, Digest authentication) and RTSP.
#[derive(Debug, Clone)]
pub struct HikvisionIsapi {
    /// `http://host:port`, without a trailing slash.
    base_url: String,
    user: String,
    password: String,
    clock: NvrClock,
    timeout: Duration,
}

impl HikvisionIsapi {
    pub fn new(base_url: &str, user: &str, password: &str) -> HikvisionIsapi {
        HikvisionIsapi {
            base_url: base_url.trim_end_matches('/').to_string(),
            user: user.to_string(),
            password: password.to_string(),
            clock: NvrClock::Utc,
            timeout: Duration::from_secs(15),
        }
    }

    pub fn with_clock(mut self, clock: NvrClock) -> HikvisionIsapi {
        self.clock = clock;
        self
    }

    /// A time as this NVR writes it in ISAPI XML (`2026-11-20T08:00:00Z`).
    fn isapi_time(&self, t: OffsetDateTime) -> String {
        let t = self.nvr_wall_time(t);
        t.format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .unwrap_or_default()
    }

    /// A time as this NVR reads it in playback URIs (`20261120T080000Z`).
    fn uri_time(&self, t: OffsetDateTime) -> String {
        let t = self.nvr_wall_time(t);
        t.format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap_or_default()
    }

    fn nvr_wall_time(&self, t: OffsetDateTime) -> OffsetDateTime {
        match self.clock {
            NvrClock::Utc => t.to_offset(UtcOffset::UTC),
            NvrClock::LocalMarkedZ(offset) => t.to_offset(offset),
        }
    }

    /// Reads an ISAPI time (`2026-11-20T08:00:00Z`, also with an explicit offset).
    fn parse_isapi_time(&self, text: &str) -> Result<OffsetDateTime, RecordingError> {
        let text = text.trim();
        let bad = || RecordingError::BadReply(format!("时间格式不对 (bad time) {text:?}"));
        if let Some(wall) = text.strip_suffix('Z') {
            let wall = time::PrimitiveDateTime::parse(
                wall,
                time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
            )
            .map_err(|_| bad())?;
            Ok(match self.clock {
                NvrClock::Utc => wall.assume_utc(),
                NvrClock::LocalMarkedZ(offset) => wall.assume_offset(offset),
            })
        } else {
            OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .map_err(|_| bad())
        }
    }

    fn agent(&self) -> ureq::Agent {
        digest::agent(self.timeout)
    }

    /// POSTs `body` to `path`, answering a Digest challenge once. Returns status and body.
    fn post(&self, path: &str, body: &str) -> Result<(u16, String), RecordingError> {
        let login = digest::Login {
            base_url: &self.base_url,
            user: &self.user,
            password: &self.password,
        };
        let response = digest::send(
            &self.agent(),
            &login,
            "POST",
            path,
            Some(("application/xml", body)),
        )?;
        digest::reply_text(response)
    }

    /// Pulls one window once; `Err(Ok(e))` is an open failure worth a fresh URI.
    fn pull_once(
        &self,
        request: &PullRequest<'_>,
        segments: &[RecordedSegment],
        partial: &Path,
        progress: &mut dyn FnMut(PullProgress),
    ) -> Result<Result<PullReport, RecordingError>, RecordingError> {
        let url = self.playback_url(&segments[0].playback_uri, request.window)?;
        remux::pull_window(&url, request, segments, partial, progress)
    }

    /// Fetches the window with `/ISAPI/ContentMgmt/download` into a hidden file beside
    /// `partial`, then copies it like a playback stream; `Ok(Err(e))` is a file that ends
    /// before the recording does.
    fn download_once(
        &self,
        request: &PullRequest<'_>,
        segments: &[RecordedSegment],
        partial: &Path,
        progress: &mut dyn FnMut(PullProgress),
    ) -> Result<Result<PullReport, RecordingError>, RecordingError> {
        let uri = self.playback_url(&segments[0].playback_uri, request.window)?;
        let body = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<downloadRequest version="1.0" xmlns="http://www.isapi.org/ver20/XMLSchema">
<playbackURI>{}</playbackURI>
</downloadRequest>"#,
            xml_escape(&uri)
        );
        // The reply is the whole window: allow time for it at a modest rate (an NVR sends
        // faster than real time), beyond the usual call timeout.
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(self.timeout))
            .timeout_recv_response(Some(self.timeout))
            .timeout_recv_body(Some(self.timeout + request.window.length()))
            .build()
            .into();
        let login = digest::Login {
            base_url: &self.base_url,
            user: &self.user,
            password: &self.password,
        };
        let response = digest::send(
            &agent,
            &login,
            "POST",
            "/ISAPI/ContentMgmt/download",
            Some(("application/xml", &body)),
        )?;
        let status = response.status().as_u16();
        let is_xml = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("xml"));
        if status != 200 || is_xml {
            // Errors come back as an XML ResponseStatus.
            let (_, text) = digest::reply_text(response)?;
            let text: String = text.chars().take(300).collect();
            return Err(RecordingError::BadReply(format!(
                "download answered HTTP {status}: {text}"
            )));
        }
        let file = download_path(partial);
        let io = |step| move |cause| RecordingError::Io { step, cause };
        let mut writer = std::fs::File::create(&file).map_err(io("creating the download file"))?;
        std::io::copy(&mut response.into_body().into_reader(), &mut writer)
            .map_err(io("receiving the download"))?;
        drop(writer);
        remux::init()?;
        let input = ffmpeg_next::format::input(&file).map_err(|cause| {
            RecordingError::BadReply(format!(
                "下载的录像文件无法读取 (the downloaded recording cannot be read): {cause}"
            ))
        })?;
        let window = request.window;
        let anchor = window.start.max(segments[0].span.start);
        let expected_end = window.end.min(segments[segments.len() - 1].span.end);
        let outcome = remux::check_input(
            input,
            request,
            segments,
            partial,
            progress,
            (anchor, expected_end),
        )?;
        Ok(outcome.map(|report| PullReport {
            transport: super::Transport::Download,
            ..report
        }))
    }

    /// The segment's playback URI with the window's start and end (other parameters, such as
    /// a session token, kept as the NVR gave them).
    fn playback_url(&self, uri: &str, window: TimeWindow) -> Result<String, RecordingError> {
        let (base, query) = uri.split_once('?').unwrap_or((uri, ""));
        if !base.starts_with("rtsp://") {
            return Err(RecordingError::BadReply(format!(
                "回放地址不是 RTSP (the playback URI is not RTSP): {uri}"
            )));
        }
        let mut parts: Vec<String> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .filter(|p| {
                let key = p.split('=').next().unwrap_or("").to_ascii_lowercase();
                key != "starttime" && key != "endtime"
            })
            .map(str::to_string)
            .collect();
        parts.insert(0, format!("endtime={}", self.uri_time(window.end)));
        parts.insert(0, format!("starttime={}", self.uri_time(window.start)));
        Ok(format!("{base}?{}", parts.join("&")))
    }
}

/// The body of one ISAPI search page.
fn search_body(track: u32, start: &str, end: &str, position: usize) -> String {
    let search_id = format!(
        "{:08X}-WITNESS-{track}-{position}",
        OffsetDateTime::now_utc().unix_timestamp() as u32
    );
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<CMSearchDescription version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">
<searchID>{search_id}</searchID>
<trackList><trackID>{track}</trackID></trackList>
<timeSpanList><timeSpan><startTime>{start}</startTime><endTime>{end}</endTime></timeSpan></timeSpanList>
<maxResults>{PAGE}</maxResults>
<searchResultPostion>{position}</searchResultPostion>
<metadataList><metadataDescriptor>//recordType.meta.std-cgi.com</metadataDescriptor></metadataList>
</CMSearchDescription>"#
    )
}

/// One page of a CMSearchResult: status string and (start, end, playbackURI) triples.
#[derive(Debug, Default)]
struct SearchPage {
    status: String,
    items: Vec<(String, String, String)>,
}

fn parse_search_result(xml: &str) -> Result<SearchPage, RecordingError> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut page = SearchPage::default();
    let mut path: Vec<String> = Vec::new();
    let mut item: Option<(String, String, String)> = None;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                let name = e.local_name().as_ref().to_string();
                if name == "searchMatchItem" {
                    item = Some(Default::default());
                }
                path.push(name);
            }
            Ok(Event::End(e)) => {
                if e.local_name().as_ref() == "searchMatchItem" {
                    page.items.extend(
                        item.take()
                            .map(|(start, end, uri)| (start, end, uri.trim().to_string())),
                    );
                }
                path.pop();
            }
            Ok(Event::Text(t)) => {
                let text = t.to_string();
                let parent = path.get(path.len().wrapping_sub(2)).map(String::as_str);
                match (parent, path.last().map(String::as_str), item.as_mut()) {
                    (_, Some("responseStatusStrg"), _) => page.status = text.trim().to_string(),
                    (Some("timeSpan"), Some("startTime"), Some(item)) => item.0 = text,
                    (Some("timeSpan"), Some("endTime"), Some(item)) => item.1 = text,
                    // Text between entities arrives in pieces.
                    (_, Some("playbackURI"), Some(item)) => item.2.push_str(&text),
                    _ => {}
                }
            }
            Ok(Event::GeneralRef(r)) => {
                // Entities such as &amp; inside playbackURI arrive as their own events.
                let resolved = match r.as_ref() {
                    "amp" => "&",
                    "lt" => "<",
                    "gt" => ">",
                    "quot" => "\"",
                    "apos" => "'",
                    _ => "",
                };
                if path.last().map(String::as_str) == Some("playbackURI") {
                    if let Some(item) = item.as_mut() {
                        item.2.push_str(resolved);
                    }
                }
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => return Err(RecordingError::BadReply(format!("XML: {e}"))),
        }
    }
    if page.status.is_empty() {
        return Err(RecordingError::BadReply(
            "搜索结果缺少 responseStatusStrg (CMSearchResult without responseStatusStrg)".into(),
        ));
    }
    Ok(page)
}

impl RecordingSource for HikvisionIsapi {
    fn search(
        &self,
        channel: u32,
        window: TimeWindow,
    ) -> Result<Vec<RecordedSegment>, RecordingError> {
        super::check_channel(channel)?;
        let track = channel * 100 + 1;
        let (start, end) = (self.isapi_time(window.start), self.isapi_time(window.end));
        let mut segments = Vec::new();
        let mut position = 0;
        loop {
            let (status, body) = self.post(
                "/ISAPI/ContentMgmt/search",
                &search_body(track, &start, &end, position),
            )?;
            if status != 200 {
                return Err(RecordingError::BadReply(format!(
                    "search answered HTTP {status}"
                )));
            }
            let page = parse_search_result(&body)?;
            for (start, end, uri) in &page.items {
                let span = TimeWindow {
                    start: self.parse_isapi_time(start)?,
                    end: self.parse_isapi_time(end)?,
                };
                segments.push(RecordedSegment {
                    span,
                    playback_uri: uri.clone(),
                });
            }
            position += page.items.len();
            if page.status != "MORE" || page.items.is_empty() {
                break;
            }
        }
        segments.sort_by_key(|s| s.span.start);
        let mut kept = Vec::new();
        for segment in segments {
            if segment.span.overlaps(&window) {
                kept.push(segment);
            } else if segment.span.end <= window.start
                && segment.span.end + TOLERANCE >= window.start
            {
                // The segment-boundary quirk: the segment ending where the window starts.
                continue;
            } else {
                return Err(RecordingError::BadReply(format!(
                    "录像机返回了所查时段以外的录像 {} (the NVR answered with a recording outside \
                     the window {window}); its clock may be local time marked Z: set the NVR's \
                     clock to local time",
                    segment.span
                )));
            }
        }
        Ok(kept)
    }

    fn pull(
        &self,
        request: &PullRequest<'_>,
        progress: &mut dyn FnMut(PullProgress),
    ) -> Result<PullReport, RecordingError> {
        check_window(request.window, request.now)?;
        let partial = remux::partial_path(request.output)?;
        let mut refreshes = 0;
        loop {
            let segments = self.search(request.channel, request.window)?;
            if segments.is_empty() {
                return Err(RecordingError::NothingRecorded {
                    channel: request.channel,
                    window: request.window.to_string(),
                });
            }
            let outcome = self.pull_once(request, &segments, &partial, progress);
            match outcome {
                Ok(Ok(mut report)) => {
                    report.uri_refreshes = refreshes;
                    remux::finish(&partial, request.output)?;
                    return Ok(report);
                }
                Ok(Err(incomplete)) => {
                    let _ = std::fs::remove_file(&partial);
                    return Err(incomplete);
                }
                Err(RecordingError::Ffmpeg {
                    step: "opening the RTSP stream",
                    cause,
                }) if refreshes < URI_REFRESHES => {
                    tracing::warn!(
                        channel = request.channel,
                        %cause,
                        "opening the playback URI failed; searching again for a fresh one"
                    );
                    refreshes += 1;
                }
                Err(RecordingError::Ffmpeg {
                    step: "opening the RTSP stream",
                    cause,
                }) => {
                    tracing::warn!(
                        channel = request.channel,
                        %cause,
                        "RTSP playback does not open; downloading the window over ISAPI instead"
                    );
                    let downloaded = self.download_once(request, &segments, &partial, progress);
                    let _ = std::fs::remove_file(download_path(&partial));
                    match downloaded {
                        Ok(Ok(mut report)) => {
                            report.uri_refreshes = refreshes;
                            remux::finish(&partial, request.output)?;
                            return Ok(report);
                        }
                        Ok(Err(incomplete)) => {
                            let _ = std::fs::remove_file(&partial);
                            return Err(incomplete);
                        }
                        Err(download) => {
                            let _ = std::fs::remove_file(&partial);
                            return Err(RecordingError::NoPlayback {
                                rtsp: cause.to_string(),
                                download: download.to_string(),
                            });
                        }
                    }
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&partial);
                    return Err(e);
                }
            }
        }
    }
}

/// Where a download is kept while it is copied: hidden, beside the partial output.
fn download_path(partial: &Path) -> std::path::PathBuf {
    let mut name = partial.file_name().unwrap_or_default().to_os_string();
    name.push(".download");
    partial.with_file_name(name)
}

/// Text as XML element content.
fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{datetime, offset};

    #[test]
    fn search_results_parse_with_entities_and_namespaces() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<CMSearchResult version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">
<searchID>X</searchID><responseStatus>true</responseStatus>
<responseStatusStrg>MORE</responseStatusStrg><numOfMatches>1</numOfMatches>
<matchList><searchMatchItem><sourceID>{0000}</sourceID><trackID>101</trackID>
<timeSpan><startTime>2026-11-20T00:00:00Z</startTime><endTime>2026-11-20T00:04:00Z</endTime></timeSpan>
<mediaSegmentDescriptor><contentType>video</contentType><codecType>H.264-BP</codecType>
<playbackURI>rtsp://10.0.0.5/Streaming/tracks/101?starttime=20261120T000000Z&amp;endtime=20261120T000400Z&amp;name=ch01_0800&amp;size=1</playbackURI>
</mediaSegmentDescriptor></searchMatchItem></matchList></CMSearchResult>"#;
        let page = parse_search_result(xml).unwrap();
        assert_eq!(page.status, "MORE");
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.items[0].0, "2026-11-20T00:00:00Z");
        assert!(
            page.items[0].2.ends_with("&name=ch01_0800&size=1"),
            "{:?}",
            page.items[0].2
        );
        assert!(parse_search_result("<CMSearchResult/>").is_err());
    }

    #[test]
    fn local_time_marked_z_is_converted_both_ways() {
        let nvr = HikvisionIsapi::new("http://x", "u", "p")
            .with_clock(NvrClock::LocalMarkedZ(offset!(+8)));
        let t = datetime!(2026-11-20 00:00 UTC);
        assert_eq!(nvr.isapi_time(t), "2026-11-20T08:00:00Z");
        assert_eq!(nvr.uri_time(t), "20261120T080000Z");
        assert_eq!(nvr.parse_isapi_time("2026-11-20T08:00:00Z").unwrap(), t);
        let utc = HikvisionIsapi::new("http://x", "u", "p");
        assert_eq!(utc.isapi_time(t), "2026-11-20T00:00:00Z");
        assert_eq!(
            utc.parse_isapi_time("2026-11-20T08:00:00+08:00").unwrap(),
            t
        );
        assert!(utc.parse_isapi_time("yesterday").is_err());
    }

    #[test]
    fn playback_url_replaces_the_window_and_keeps_the_token() {
        let nvr = HikvisionIsapi::new("http://x", "u", "p");
        let window = TimeWindow {
            start: datetime!(2026-11-20 00:01 UTC),
            end: datetime!(2026-11-20 00:11 UTC),
        };
        let url = nvr
            .playback_url(
                "rtsp://h:554/Streaming/tracks/101?starttime=20261120T000000Z&endtime=20261120T000400Z&token=7",
                window,
            )
            .unwrap();
        assert_eq!(
            url,
            "rtsp://h:554/Streaming/tracks/101?starttime=20261120T000100Z&endtime=20261120T001100Z&token=7"
        );
        assert!(nvr.playback_url("http://h/x", window).is_err());
    }
}
