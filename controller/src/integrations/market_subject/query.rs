//! Synchronous questions to the market-subject library (asked when someone asks, never
//! queued): legal-person basic and comprehensive queries through a SQLite cache with a time to
//! live (a stale answer is served, marked with its age, while the library is unreachable),
//! the QR code of a subject (drawn as a PNG here) and the resolution of a scanned QR code.

use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;
use sqlx::SqlitePool;
use time::OffsetDateTime;
use witness_schemas::market_subject::{
    credit_code_problem, AnswerSource, LegalPersonAnswer, LegalPersonBasic, LegalPersonRecords,
    MarketSubjectConfig, QueryDetail, ScannedSubject, SubjectQrCode, SubjectQuery,
};

use super::adapter::{self, Answer};
use crate::clock::{rfc3339, CHINA};
use crate::error::Result;
use crate::{bail, err};

/// Longest QR text accepted (the schema's limit): anything longer is not one of the library's.
const QR_MAX_CHARS: usize = 512;

/// Why a question got no usable answer.
#[derive(Debug)]
enum Failure {
    /// Down, timed out, 5xx, garbage or an answer that breaks the interface: the library's
    /// trouble, worth serving a stale answer for.
    Unreachable(String),
    /// The library answered: no such subject, a bad QR code, or a refusal.
    Said(Answer),
}

/// One HTTP client for every question; the timeout is set per request from the settings.
fn http() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(reqwest::Client::new)
}

/// The configured library, or a clear error.
pub fn configured(config: Option<&MarketSubjectConfig>) -> Result<&MarketSubjectConfig> {
    config.ok_or_else(|| {
        err!(
            FailedPrecondition,
            "主体库未配置：请在配置文件中设置 [integrations.market_subject_library] (not configured)"
        )
    })
}

/// Asks the library one question and reads the answer.
async fn ask(
    config: &MarketSubjectConfig,
    query: SubjectQuery,
    subject: &str,
    now: OffsetDateTime,
) -> std::result::Result<Value, Failure> {
    let request = adapter::query_request(&config.platform_code, now, query, subject);
    let url = format!(
        "{}/{}",
        config.base_url.trim_end_matches('/'),
        query.as_str()
    );
    let mut builder = http()
        .post(&url)
        .timeout(Duration::from_secs_f64(config.timeout_seconds.max(0.01)))
        .json(&request);
    if let Some(path) = &config.token_file {
        // Read per question, so a renewed token is used without a restart.
        let token = super::super::read_token(path)
            .map_err(|e| Failure::Unreachable(format!("令牌不可用：{}", e.message)))?;
        builder = builder.bearer_auth(token);
    }
    let response = builder.send().await.map_err(|e| {
        Failure::Unreachable(if e.is_timeout() {
            format!("{}s 内没有应答 (timeout)", config.timeout_seconds)
        } else if e.is_connect() {
            "无法连接主体库 (connection refused or unreachable)".to_string()
        } else {
            format!("请求失败：{e}")
        })
    })?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| Failure::Unreachable(format!("应答读取中断：{e}")))?;
    if !status.is_success() {
        return Err(Failure::Unreachable(format!(
            "HTTP {}：{}",
            status.as_u16(),
            excerpt(&body)
        )));
    }
    let answer: Value = serde_json::from_slice(&body).map_err(|e| {
        Failure::Unreachable(format!("应答不是有效的 JSON（{e}）：{}", excerpt(&body)))
    })?;
    match adapter::read_answer(query, &answer).map_err(Failure::Unreachable)? {
        Answer::Data(data) => Ok(data),
        said => Err(Failure::Said(said)),
    }
}

/// The first 200 characters of a body, for an error message (ID numbers masked).
fn excerpt(body: &[u8]) -> String {
    let text = crate::auth::mask_id_numbers_in(&String::from_utf8_lossy(body));
    let cut: String = text.chars().take(200).collect();
    if cut.len() < text.len() {
        format!("{cut}…")
    } else {
        cut
    }
}

/// An answer the library gave other than data, as our error.
fn said_error(answer: Answer, subject: &str) -> crate::error::Error {
    match answer {
        Answer::NoSubject(message) => err!(
            NotFound,
            "主体库中没有统一社会信用代码为 {subject} 的主体（{message}）"
        ),
        Answer::BadQr(message) => err!(
            InvalidArgument,
            "二维码无效或已过期，主体库无法识别（{message}）(invalid or expired QR code)"
        ),
        Answer::Refused(message) => {
            err!(FailedPrecondition, "主体库拒绝了查询：{message} (refused)")
        }
        Answer::Data(_) => err!(Internal, "an answer with data is not an error"),
    }
}

/// What the cache keeps of an answer: our terms, not the wire format, so an adapter change
/// does not invalidate it.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Cached {
    basic: LegalPersonBasic,
    records: Option<LegalPersonRecords>,
}

#[derive(Debug, sqlx::FromRow)]
struct CacheRow {
    answer: String,
    fetched_at: String,
    expires_at: String,
}

fn parse_time(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

/// A legal person's basic or comprehensive information: from the cache while it is fresh
/// (or `refresh` is not asked), else from the library; when the library cannot be reached,
/// the cached answer however old, marked stale with its age, or a clear error when there is
/// none.
pub async fn legal_person(
    pool: &SqlitePool,
    config: &MarketSubjectConfig,
    code: &str,
    detail: QueryDetail,
    refresh: bool,
    now: OffsetDateTime,
) -> Result<LegalPersonAnswer> {
    let code = code.trim().to_ascii_uppercase();
    if let Some(problem) = credit_code_problem(&code) {
        bail!(InvalidArgument, "{problem}");
    }
    let query = detail.query();
    let row: Option<CacheRow> = sqlx::query_as(
        "SELECT answer, fetched_at, expires_at FROM subject_query_cache WHERE query = ? AND subject_code = ?",
    )
    .bind(query.as_str())
    .bind(&code)
    .fetch_optional(pool)
    .await?;
    let answer_of = |row: &CacheRow, source: AnswerSource, reason: Option<String>| {
        let cached: Cached = serde_json::from_str(&row.answer)
            .map_err(|e| err!(Internal, "subject cache entry unreadable: {e}"))?;
        let fetched = parse_time(&row.fetched_at).unwrap_or(now);
        Ok::<_, crate::error::Error>(LegalPersonAnswer {
            detail,
            basic: cached.basic,
            records: cached.records,
            source,
            stale: source == AnswerSource::StaleCache,
            fetched_at: row.fetched_at.clone(),
            age_seconds: (now - fetched).whole_seconds().max(0),
            stale_reason: reason,
        })
    };
    let fresh = |row: &CacheRow| parse_time(&row.expires_at).is_some_and(|t| now < t);
    if let Some(row) = row.as_ref().filter(|r| !refresh && fresh(r)) {
        return answer_of(row, AnswerSource::Cache, None);
    }
    match ask(config, query, &code, now).await {
        Ok(data) => {
            let cached = Cached {
                basic: adapter::legal_person_basic(&data),
                records: (detail == QueryDetail::Comprehensive)
                    .then(|| adapter::legal_person_records(&data)),
            };
            let fetched_at = rfc3339(now.to_offset(CHINA));
            let ttl = time::Duration::seconds(
                i64::try_from(config.query_cache_ttl_seconds).unwrap_or(i64::MAX / 2),
            );
            sqlx::query(
                "INSERT INTO subject_query_cache (query, subject_code, answer, fetched_at, expires_at) VALUES (?, ?, ?, ?, ?) \
                 ON CONFLICT (query, subject_code) DO UPDATE SET answer = excluded.answer, \
                 fetched_at = excluded.fetched_at, expires_at = excluded.expires_at",
            )
            .bind(query.as_str())
            .bind(&code)
            .bind(serde_json::to_string(&cached).map_err(|e| err!(Internal, "cache: {e}"))?)
            .bind(&fetched_at)
            .bind(rfc3339((now + ttl).to_offset(CHINA)))
            .execute(pool)
            .await?;
            tracing::info!(query = query.as_str(), code = %code, "subject query answered by the library");
            Ok(LegalPersonAnswer {
                detail,
                basic: cached.basic,
                records: cached.records,
                source: AnswerSource::Library,
                stale: false,
                fetched_at,
                age_seconds: 0,
                stale_reason: None,
            })
        }
        Err(Failure::Unreachable(reason)) => {
            tracing::warn!(query = query.as_str(), code = %code, %reason, "market-subject library unreachable");
            match row {
                Some(row) => {
                    let source = if fresh(&row) {
                        AnswerSource::Cache
                    } else {
                        AnswerSource::StaleCache
                    };
                    answer_of(&row, source, Some(reason))
                }
                None => bail!(
                    Unavailable,
                    "主体库暂时无法访问（{reason}），且没有 {code} 的缓存结果 (library unreachable, nothing cached)"
                ),
            }
        }
        Err(Failure::Said(answer)) => {
            if matches!(answer, Answer::NoSubject(_)) {
                // The library no longer knows the subject: an old answer must not outlive it.
                sqlx::query("DELETE FROM subject_query_cache WHERE subject_code = ?")
                    .bind(&code)
                    .execute(pool)
                    .await?;
            }
            Err(said_error(answer, &code))
        }
    }
}

/// The QR code the library issues for a legal person, with a PNG of it.
pub async fn qr_code(
    config: &MarketSubjectConfig,
    code: &str,
    now: OffsetDateTime,
) -> Result<SubjectQrCode> {
    let code = code.trim().to_ascii_uppercase();
    if let Some(problem) = credit_code_problem(&code) {
        bail!(InvalidArgument, "{problem}");
    }
    let data = match ask(config, SubjectQuery::QrFetch, &code, now).await {
        Ok(data) => data,
        Err(Failure::Unreachable(reason)) => bail!(
            Unavailable,
            "主体库暂时无法访问，无法获取二维码：{reason} (library unreachable)"
        ),
        Err(Failure::Said(answer)) => return Err(said_error(answer, &code)),
    };
    let (content, valid_until) =
        adapter::qr_code(&data).map_err(|e| err!(Unavailable, "主体库的二维码应答有误：{e}"))?;
    let png = qr_png(&content)?;
    Ok(SubjectQrCode {
        credit_code: code,
        content,
        valid_until,
        png_base64: base64::engine::general_purpose::STANDARD.encode(png),
        fetched_at: rfc3339(now.to_offset(CHINA)),
    })
}

/// Checks scanned text before it is sent: a QR code of the library is printable text of at
/// most 512 characters.
pub fn check_scan(content: &str) -> Result<&str> {
    let content = content.trim();
    if content.is_empty() {
        bail!(InvalidArgument, "二维码内容为空 (empty QR content)");
    }
    if content.chars().count() > QR_MAX_CHARS {
        bail!(
            InvalidArgument,
            "二维码内容超过 {QR_MAX_CHARS} 个字符，不是主体库的二维码 (QR content too long)"
        );
    }
    if content.chars().any(char::is_control) {
        bail!(
            InvalidArgument,
            "二维码内容含有控制字符，不是主体库的二维码 (control characters in QR content)"
        );
    }
    Ok(content)
}

/// Resolves a scanned QR code to the subject it stands for.
pub async fn scan(
    config: &MarketSubjectConfig,
    content: &str,
    now: OffsetDateTime,
) -> Result<ScannedSubject> {
    let content = check_scan(content)?;
    match ask(config, SubjectQuery::QrScan, content, now).await {
        Ok(data) => {
            let subject = adapter::scanned_subject(&data)
                .map_err(|e| err!(Unavailable, "主体库的扫码应答有误：{e}"))?;
            // The content may carry personal data: it is not logged, nor the masked code.
            tracing::info!(kind = ?subject.subject_kind, "QR code resolved by the library");
            Ok(subject)
        }
        Err(Failure::Unreachable(reason)) => bail!(
            Unavailable,
            "主体库暂时无法访问，无法解析二维码：{reason} (library unreachable)"
        ),
        Err(Failure::Said(Answer::NoSubject(message))) => {
            bail!(NotFound, "二维码对应的主体在主体库中不存在（{message}）")
        }
        Err(Failure::Said(answer)) => Err(said_error(answer, "")),
    }
}

/// The QR code drawn as a PNG: 8 pixels a module, four modules of quiet zone (ISO/IEC 18004).
pub fn qr_png(content: &str) -> Result<Vec<u8>> {
    const MODULE: u32 = 8;
    let code = qrcode::QrCode::with_error_correction_level(content.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| err!(Unavailable, "主体库的二维码内容无法编码（{e}）"))?;
    let width = code.width() as u32;
    let side = (width + 8) * MODULE;
    let mut pixmap =
        tiny_skia::Pixmap::new(side, side).ok_or_else(|| err!(Internal, "QR image size"))?;
    pixmap.fill(tiny_skia::Color::WHITE);
    let mut black = tiny_skia::Paint::default();
    black.set_color(tiny_skia::Color::BLACK);
    for (i, color) in code.to_colors().into_iter().enumerate() {
        if color != qrcode::Color::Dark {
            continue;
        }
        let (x, y) = (i as u32 % width, i as u32 / width);
        if let Some(rect) = tiny_skia::Rect::from_xywh(
            ((x + 4) * MODULE) as f32,
            ((y + 4) * MODULE) as f32,
            MODULE as f32,
            MODULE as f32,
        ) {
            pixmap.fill_rect(rect, &black, tiny_skia::Transform::identity(), None);
        }
    }
    pixmap
        .encode_png()
        .map_err(|e| err!(Internal, "QR PNG: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scanned_text_is_checked_before_it_is_sent() {
        assert!(check_scan("  ").unwrap_err().message.contains("为空"));
        assert!(check_scan("abc\u{7}")
            .unwrap_err()
            .message
            .contains("控制字符"));
        assert!(check_scan(&"A".repeat(513))
            .unwrap_err()
            .message
            .contains("512"));
        assert_eq!(check_scan(" MSL:1:abc ").unwrap(), "MSL:1:abc");
    }

    #[test]
    fn the_png_is_a_square_image_with_a_quiet_zone() {
        let png = qr_png("MSL:1:91410225MA44XXXX0P").unwrap();
        let pixmap = tiny_skia::Pixmap::decode_png(&png).unwrap();
        assert_eq!(pixmap.width(), pixmap.height());
        // The corner is quiet zone, white.
        assert_eq!(pixmap.pixel(0, 0).unwrap().red(), 255);
    }
}
