//! HTTP routes of the market-subject library: recording subject records (pushed through the
//! outbox), listing them, legal-person queries, a subject's QR code and the resolution of a
//! scanned one.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use utoipa::OpenApi;
use witness_schemas::api::ApiError;
use witness_schemas::market_subject::{
    AnswerSource, BlacklistEntry, ContractStatus, HashAlgorithm, LegalPersonAnswer,
    LegalPersonBasic, LegalPersonRecords, PerformanceEntry, PerformanceRating, PersonRole, QrScan,
    Qualification, QueryDetail, RecordedSubject, RewardEntry, RewardLevel, ScannedSubject,
    SubjectKind, SubjectQrCode, SubjectRecord, SubjectRecordSummary, SubjectRole, ViolationEntry,
};

use super::{query, records};
use crate::auth::Principal;
use crate::err;
use crate::error::Result;
use crate::web::{AppState, JsonBody};

#[derive(OpenApi)]
#[openapi(
    paths(add_record, list_records, legal_person, qr_code, scan),
    components(schemas(
        SubjectRecord,
        SubjectRole,
        PersonRole,
        RewardLevel,
        ContractStatus,
        PerformanceRating,
        HashAlgorithm,
        RecordedSubject,
        SubjectRecordSummary,
        QueryDetail,
        LegalPersonAnswer,
        LegalPersonBasic,
        LegalPersonRecords,
        Qualification,
        PerformanceEntry,
        RewardEntry,
        ViolationEntry,
        BlacklistEntry,
        AnswerSource,
        SubjectQrCode,
        QrScan,
        ScannedSubject,
        SubjectKind
    ))
)]
pub struct MarketSubjectApiDoc;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/integrations/market_subject_library/records",
            get(list_records).post(add_record),
        )
        .route(
            "/api/integrations/market_subject_library/legal-persons/{code}",
            get(legal_person),
        )
        .route(
            "/api/integrations/market_subject_library/legal-persons/{code}/qr",
            get(qr_code),
        )
        .route(
            "/api/integrations/market_subject_library/qr-scans",
            post(scan),
        )
}

/// The library's settings, or the "not configured" error the query routes answer.
fn library(engine: &AppState) -> Result<&witness_schemas::market_subject::MarketSubjectConfig> {
    query::configured(
        engine
            .settings
            .config
            .integrations
            .market_subject_library
            .as_ref(),
    )
}

#[utoipa::path(post, path = "/api/integrations/market_subject_library/records", request_body = SubjectRecord,
    responses((status = 201, body = RecordedSubject), (status = 400, body = ApiError), (status = 404, body = ApiError),
        (status = 409, body = ApiError)))]
async fn add_record(
    State(engine): State<AppState>,
    Extension(principal): Extension<Principal>,
    JsonBody(record): JsonBody<SubjectRecord>,
) -> Result<Response> {
    let recorded = records::add_record(
        &engine.pool,
        &record,
        &principal.username,
        engine.clock.now(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(recorded)).into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
struct RecordQuery {
    /// The record kind (exchange), e.g. `blacklist`.
    kind: Option<String>,
    limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/integrations/market_subject_library/records", params(RecordQuery),
    responses((status = 200, body = [SubjectRecordSummary]), (status = 400, body = ApiError)))]
async fn list_records(
    State(engine): State<AppState>,
    Query(query): Query<RecordQuery>,
) -> Result<Json<Vec<SubjectRecordSummary>>> {
    let kind = query.kind.as_deref().filter(|k| !k.is_empty());
    Ok(Json(
        records::list(&engine.pool, kind, query.limit.unwrap_or(200)).await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
struct LegalPersonQuery {
    /// `basic` (default) or `comprehensive`.
    detail: Option<String>,
    /// `true`: ask the library even when the cached answer is still fresh.
    refresh: Option<bool>,
}

#[utoipa::path(get, path = "/api/integrations/market_subject_library/legal-persons/{code}",
    params(("code" = String, Path, description = "统一社会信用代码"), LegalPersonQuery),
    responses((status = 200, body = LegalPersonAnswer), (status = 400, body = ApiError), (status = 404, body = ApiError),
        (status = 409, body = ApiError), (status = 503, body = ApiError)))]
async fn legal_person(
    State(engine): State<AppState>,
    Path(code): Path<String>,
    Query(params): Query<LegalPersonQuery>,
) -> Result<Json<LegalPersonAnswer>> {
    let detail = match params.detail.as_deref() {
        None | Some("") | Some("basic") => QueryDetail::Basic,
        Some("comprehensive") => QueryDetail::Comprehensive,
        Some(other) => {
            return Err(err!(
                InvalidArgument,
                "查询类型 {other:?} 须为 basic（基本）或 comprehensive（综合）"
            ))
        }
    };
    let config = library(&engine)?;
    Ok(Json(
        query::legal_person(
            &engine.pool,
            config,
            &code,
            detail,
            params.refresh.unwrap_or(false),
            engine.clock.now(),
        )
        .await?,
    ))
}

#[utoipa::path(get, path = "/api/integrations/market_subject_library/legal-persons/{code}/qr",
    params(("code" = String, Path, description = "统一社会信用代码")),
    responses((status = 200, body = SubjectQrCode), (status = 400, body = ApiError), (status = 404, body = ApiError),
        (status = 503, body = ApiError)))]
async fn qr_code(
    State(engine): State<AppState>,
    Path(code): Path<String>,
) -> Result<Json<SubjectQrCode>> {
    let config = library(&engine)?;
    Ok(Json(
        query::qr_code(config, &code, engine.clock.now()).await?,
    ))
}

#[utoipa::path(post, path = "/api/integrations/market_subject_library/qr-scans", request_body = QrScan,
    responses((status = 200, body = ScannedSubject), (status = 400, body = ApiError), (status = 404, body = ApiError),
        (status = 503, body = ApiError)))]
async fn scan(
    State(engine): State<AppState>,
    JsonBody(body): JsonBody<QrScan>,
) -> Result<Json<ScannedSubject>> {
    let config = library(&engine)?;
    Ok(Json(
        query::scan(config, &body.content, engine.clock.now()).await?,
    ))
}
