//! HTTP routes of the batch import: the template download and the upload (with a dry run).

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::OpenApi;
use witness_schemas::api::ApiError;
use witness_schemas::schedule::{BatchReport, RowError};

use crate::error::Result;
use crate::web::AppState;

#[derive(OpenApi)]
#[openapi(paths(template, import), components(schemas(BatchReport, RowError)))]
pub struct BatchApiDoc;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/batch/template.xlsx", get(template))
        .route(
            "/api/batch/import",
            post(import).layer(DefaultBodyLimit::max(super::MAX_BYTES + 1024)),
        )
}

#[utoipa::path(get, path = "/api/batch/template.xlsx",
    responses((status = 200, description = "批量刻录模板", content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")))]
async fn template() -> Result<impl IntoResponse> {
    let bytes = tokio::task::spawn_blocking(super::template)
        .await
        .map_err(|e| crate::err!(Internal, "template thread failed: {e}"))??;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            ),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"batch-template.xlsx\"; filename*=UTF-8''%E6%89%B9%E9%87%8F%E5%88%BB%E5%BD%95%E6%A8%A1%E6%9D%BF.xlsx",
            ),
        ],
        bytes,
    ))
}

#[derive(Debug, Deserialize)]
struct ImportQuery {
    /// `true`: only check the rows, store nothing.
    #[serde(default)]
    dry_run: bool,
}

/// The body is the .xlsx file itself.
#[utoipa::path(post, path = "/api/batch/import",
    params(("dry_run" = Option<bool>, Query, description = "仅校验，不保存")),
    request_body(content = Vec<u8>, content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    responses((status = 200, body = BatchReport), (status = 400, body = ApiError), (status = 413, body = ApiError)))]
async fn import(
    State(engine): State<AppState>,
    Query(query): Query<ImportQuery>,
    body: Bytes,
) -> Result<Json<BatchReport>> {
    Ok(Json(
        super::import(&engine, body.to_vec(), query.dry_run).await?,
    ))
}
