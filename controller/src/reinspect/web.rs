//! HTTP routes of re-inspection: a copy's shelf location, a re-read now, the re-read history
//! and the copies due.

use axum::extract::{Path, State};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use utoipa::OpenApi;
use witness_schemas::api::{ApiError, Disc};
use witness_schemas::schedule::{Inspection, InspectionDue, SetShelf};

use crate::err;
use crate::error::Result;
use crate::web::{AppState, JsonBody};

#[derive(OpenApi)]
#[openapi(
    paths(set_shelf, inspect, list_inspections, due),
    components(schemas(SetShelf, Inspection, InspectionDue))
)]
pub struct ReinspectApiDoc;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/discs/{id}/shelf", put(set_shelf))
        .route("/api/discs/{id}/inspect", post(inspect))
        .route("/api/inspections", get(list_inspections))
        .route("/api/inspections/due", get(due))
}

fn disc_id(text: &str) -> Result<i64> {
    text.parse().map_err(|_| {
        err!(
            InvalidArgument,
            "光盘号 {text:?} 不是数字 (disc id must be a number)"
        )
    })
}

#[utoipa::path(put, path = "/api/discs/{id}/shelf", request_body = SetShelf,
    params(("id" = i64, Path, description = "光盘/副本号")),
    responses((status = 200, body = Disc), (status = 400, body = ApiError), (status = 404, body = ApiError)))]
async fn set_shelf(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<SetShelf>,
) -> Result<Json<Disc>> {
    Ok(Json(
        super::set_shelf(&engine, disc_id(&id)?, &body.shelf).await?,
    ))
}

/// Re-reads the copy now and answers with the result (a failed re-read raises a re-burn job).
#[utoipa::path(post, path = "/api/discs/{id}/inspect", params(("id" = i64, Path, description = "光盘/副本号")),
    responses((status = 200, body = Inspection), (status = 404, body = ApiError), (status = 409, body = ApiError)))]
async fn inspect(
    State(engine): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Inspection>> {
    Ok(Json(super::inspect(&engine, disc_id(&id)?).await?))
}

#[utoipa::path(get, path = "/api/inspections", responses((status = 200, body = [Inspection])))]
async fn list_inspections(State(engine): State<AppState>) -> Result<Json<Vec<Inspection>>> {
    Ok(Json(super::list(&engine).await?))
}

#[utoipa::path(get, path = "/api/inspections/due", responses((status = 200, body = [InspectionDue])))]
async fn due(State(engine): State<AppState>) -> Result<Json<Vec<InspectionDue>>> {
    Ok(Json(super::due(&engine).await?))
}
