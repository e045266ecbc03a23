//! The stand-in NVR's Dahua face: `/cgi-bin/mediaFileFind.cgi` behind HTTP Digest, answering
//! from the same recorded segments as ISAPI (the RTSP `cam/playback` mount is in
//! `rtsp_server.py`).
//!
//! It keeps Dahua's conversation: `factory.create` hands out a find object, `findFile` sets its
//! conditions, `findNextFile` pages through the files, `close` and `destroy` free it. Times are
//! the NVR's wall clock without a zone: UTC, or UTC+8 with [`super::Quirks::z_is_local`].
//! `condition.Channel` counts from 1; replies number `items[].Channel` from 0, as DH-NVR
//! firmware of 2019 does, which is why the driver does not read it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use super::{authorised, Segment, Shared, LOCAL, NONCE, REALM};

/// Find objects handed out and not yet destroyed.
#[derive(Debug, Default)]
pub(super) struct Finds {
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Find>>,
}

impl Finds {
    /// How many find objects are still held (a well-behaved client leaves none).
    pub(super) fn open(&self) -> usize {
        self.open.lock().unwrap().len()
    }
}

#[derive(Debug, Default)]
struct Find {
    /// The files `findFile` matched, and how many `findNextFile` already returned.
    matches: Vec<Segment>,
    returned: usize,
}

fn wall_offset(shared: &Shared) -> UtcOffset {
    if shared.quirks.lock().unwrap().z_is_local {
        LOCAL
    } else {
        UtcOffset::UTC
    }
}

/// `2026-11-20 08:00:00`, as the CGI writes it.
fn format_wall(t: OffsetDateTime, offset: UtcOffset) -> String {
    t.to_offset(offset)
        .format(time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second]"
        ))
        .unwrap_or_default()
}

fn parse_wall(text: &str, offset: UtcOffset) -> Option<OffsetDateTime> {
    PrimitiveDateTime::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
    )
    .ok()
    .map(|t| t.assume_offset(offset))
}

/// Dahua's answer to a request it cannot serve.
fn bad_request(what: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        format!("Error\r\nBad Request! ({what})\r\n"),
    )
        .into_response()
}

fn text(body: String) -> Response {
    ([("Content-Type", "text/plain;charset=utf-8")], body).into_response()
}

/// `GET /cgi-bin/mediaFileFind.cgi?action=…`.
pub(super) async fn media_file_find(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let request_target = uri.path_and_query().map(|p| p.as_str()).unwrap_or("");
    if !authorised(&shared, &headers, "GET", request_target) {
        let challenge =
            format!(r#"Digest realm="{REALM}", qop="auth", nonce="{NONCE}", opaque="""#);
        return (
            StatusCode::UNAUTHORIZED,
            [("WWW-Authenticate", challenge)],
            "Error\r\nInvalid Authority!\r\n",
        )
            .into_response();
    }
    let param = |name: &str| {
        query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let finds = &shared.dahua_finds;
    let object = param("object").and_then(|o| o.parse::<u64>().ok());
    match param("action").unwrap_or("") {
        "factory.create" => {
            let id = 3_000_000 + finds.next_id.fetch_add(1, Ordering::SeqCst);
            finds.open.lock().unwrap().insert(id, Find::default());
            text(format!("result={id}\r\n"))
        }
        "findFile" => {
            let offset = wall_offset(&shared);
            let channel = param("condition.Channel").and_then(|c| c.parse::<u32>().ok());
            let start = param("condition.StartTime").and_then(|t| parse_wall(t, offset));
            let end = param("condition.EndTime").and_then(|t| parse_wall(t, offset));
            let (Some(channel), Some(start), Some(end)) = (channel, start, end) else {
                return bad_request("condition");
            };
            if channel == 0 || param("condition.Types[0]") != Some("dav") {
                return bad_request("condition.Channel counts from 1; Types[0] must be dav");
            }
            shared.searches.fetch_add(1, Ordering::SeqCst);
            let mut matches: Vec<Segment> = shared
                .segments
                .iter()
                .map(|(s, _)| *s)
                .filter(|s| s.channel == channel && s.start < end && start < s.end)
                .collect();
            matches.sort_by_key(|s| s.start);
            let mut open = finds.open.lock().unwrap();
            let Some(find) = object.and_then(|id| open.get_mut(&id)) else {
                return bad_request("object");
            };
            *find = Find {
                matches,
                returned: 0,
            };
            text("OK\r\n".into())
        }
        "findNextFile" => {
            let quirks = shared.quirks.lock().unwrap().clone();
            let count: usize = param("count").and_then(|c| c.parse().ok()).unwrap_or(0);
            let count = count.min(quirks.dahua_page_limit.unwrap_or(usize::MAX));
            let offset = wall_offset(&shared);
            let mut open = finds.open.lock().unwrap();
            let Some(find) = object.and_then(|id| open.get_mut(&id)) else {
                return bad_request("object");
            };
            let page: Vec<Segment> = find
                .matches
                .iter()
                .skip(find.returned)
                .take(count)
                .copied()
                .collect();
            find.returned += page.len();
            let mut body = format!("found={}\r\n", page.len());
            for (i, segment) in page.iter().enumerate() {
                let (start, end) = (
                    format_wall(segment.start, offset),
                    format_wall(segment.end, offset),
                );
                let folder = start.replace(' ', "/dav/");
                body.push_str(&format!(
                    "items[{i}].Channel={}\r\nitems[{i}].StartTime={start}\r\n\
                     items[{i}].EndTime={end}\r\nitems[{i}].Type=dav\r\n\
                     items[{i}].VideoStream=Main\r\nitems[{i}].Disk=0\r\n\
                     items[{i}].FilePath=/mnt/dvr/mmc0_0/{folder}[R][0@0][0].dav\r\n",
                    segment.channel - 1,
                ));
                if quirks.dahua_garbage_reply && i == 0 {
                    // Firmware under load has been seen to splice its web server's error page
                    // into a CGI reply.
                    body.push_str("<html><body>503 Service Unavailable</body></html>\r\n");
                }
            }
            text(body)
        }
        "close" | "destroy" => {
            let mut open = finds.open.lock().unwrap();
            let known = object.is_some_and(|id| open.contains_key(&id));
            if !known {
                return bad_request("object");
            }
            if param("action") == Some("destroy") {
                open.remove(&object.unwrap_or_default());
            }
            text("OK\r\n".into())
        }
        _ => bad_request("action"),
    }
}
