//! HTTP Range serving of finished, immutable files (archived video) from a memory map.
//!
//! A player seeks with many `Range` requests. Reading each range into a buffer first costs a
//! copy per byte on top of the one into the socket; serving a slice of a memory map hands the
//! page cache's bytes to the socket write directly. Only files that never change once complete
//! are served this way: pulls and uploads are written under a partial name and renamed when
//! whole, and nothing writes to them afterwards.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::{io_error, Result};

/// What a `Range` header asks of a file of `len` bytes.
#[derive(Debug, PartialEq, Eq)]
enum Wanted {
    /// No usable Range header (absent, another unit, several ranges, malformed): the whole file,
    /// as RFC 9110 lets a server answer.
    Whole,
    Part(RangeInclusive<u64>),
    /// A range starting past the end: 416.
    Unsatisfiable,
}

fn wanted(headers: &HeaderMap, len: u64) -> Wanted {
    let Some(spec) = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return Wanted::Whole;
    };
    if spec.contains(',') {
        return Wanted::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Wanted::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let range = match (first.parse::<u64>(), last.parse::<u64>()) {
        // "-N": the last N bytes.
        (Err(_), Ok(suffix)) if first.is_empty() => {
            if suffix == 0 || len == 0 {
                return Wanted::Unsatisfiable;
            }
            len.saturating_sub(suffix)..=len - 1
        }
        (Ok(start), Err(_)) if last.is_empty() => start..=len.saturating_sub(1),
        (Ok(start), Ok(end)) if start <= end => start..=end.min(len.saturating_sub(1)),
        _ => return Wanted::Whole,
    };
    if *range.start() >= len {
        Wanted::Unsatisfiable
    } else {
        Wanted::Part(range)
    }
}

/// Files kept mapped, by path, with the size and modification time they were mapped at. A
/// player's many ranges of one file share one map, so its pages are faulted in once, not on
/// every request.
type Maps = HashMap<PathBuf, (u64, Option<SystemTime>, Bytes)>;

/// How many files stay mapped; beyond it every map is dropped at once (rare, and cheap).
const MAPPED_FILES: usize = 64;

fn mapped(path: &Path) -> std::io::Result<Bytes> {
    static MAPS: OnceLock<Mutex<Maps>> = OnceLock::new();
    let metadata = std::fs::metadata(path)?;
    let (len, modified) = (metadata.len(), metadata.modified().ok());
    let maps = MAPS.get_or_init(Default::default);
    if let Some((l, m, bytes)) = maps.lock().unwrap_or_else(|p| p.into_inner()).get(path) {
        if *l == len && *m == modified {
            return Ok(bytes.clone());
        }
    }
    let file = std::fs::File::open(path)?;
    let bytes = if len == 0 {
        Bytes::new()
    } else {
        // SAFETY: the file is complete and immutable (see the module comment): nothing
        // truncates or rewrites it while the map lives, which is what makes a map sound.
        Bytes::from_owner(unsafe { memmap2::Mmap::map(&file)? })
    };
    let mut maps = maps.lock().unwrap_or_else(|p| p.into_inner());
    if maps.len() >= MAPPED_FILES {
        maps.clear();
    }
    maps.insert(path.to_path_buf(), (len, modified, bytes.clone()));
    Ok(bytes)
}

/// Answers a GET of `path` (200, 206 or 416) with `content_type`.
pub async fn serve(
    path: &Path,
    headers: &HeaderMap,
    content_type: &'static str,
) -> Result<Response> {
    let owned = path.to_path_buf();
    let bytes = tokio::task::spawn_blocking(move || mapped(&owned))
        .await
        .map_err(|e| crate::err!(Internal, "serving {}: {e}", path.display()))?
        .map_err(|e| io_error(path.display(), e))?;
    let len = bytes.len() as u64;
    let mut response = match wanted(headers, len) {
        Wanted::Whole => (StatusCode::OK, Body::from(bytes)).into_response(),
        Wanted::Part(range) => {
            let (start, end) = (*range.start(), *range.end());
            let mut response = (
                StatusCode::PARTIAL_CONTENT,
                Body::from(bytes.slice(start as usize..=end as usize)),
            )
                .into_response();
            let value = format!("bytes {start}-{end}/{len}");
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            response
        }
        Wanted::Unsatisfiable => {
            let mut response = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{len}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            return Ok(response);
        }
    };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(range: &str, len: u64) -> Wanted {
        let mut headers = HeaderMap::new();
        headers.insert(header::RANGE, HeaderValue::from_str(range).unwrap());
        wanted(&headers, len)
    }

    #[test]
    fn ranges_are_read_as_rfc_9110_says() {
        assert_eq!(wanted(&HeaderMap::new(), 100), Wanted::Whole);
        assert_eq!(ask("bytes=0-9", 100), Wanted::Part(0..=9));
        assert_eq!(ask("bytes=90-", 100), Wanted::Part(90..=99));
        assert_eq!(ask("bytes=-10", 100), Wanted::Part(90..=99));
        assert_eq!(ask("bytes=-500", 100), Wanted::Part(0..=99));
        // An end past the file is cut to the file.
        assert_eq!(ask("bytes=50-1000", 100), Wanted::Part(50..=99));
        assert_eq!(ask("bytes=100-", 100), Wanted::Unsatisfiable);
        assert_eq!(ask("bytes=-0", 100), Wanted::Unsatisfiable);
        assert_eq!(ask("bytes=0-0", 0), Wanted::Unsatisfiable);
        // Malformed, reversed, other units and several ranges: the whole file.
        for whole in [
            "bytes=9-1",
            "bytes=a-b",
            "items=0-1",
            "bytes=0-1,5-6",
            "bytes=-",
        ] {
            assert_eq!(ask(whole, 100), Wanted::Whole, "{whole}");
        }
    }
}
