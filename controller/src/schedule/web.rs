//! HTTP routes of schedules (CRUD, runs) and of select-and-burn (one job per chosen project),
//! and the script of the schedules, batch and re-inspection pages of the UI.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use utoipa::OpenApi;
use witness_schemas::api::ApiError;
use witness_schemas::schedule::{
    BackupMany, BackupRequest, BackupResult, NewSchedule, RuleKind, RunOutcome, Schedule,
    ScheduleRun, SelectionKind,
};

use crate::error::Result;
use crate::jobs::{check_priority, BackupOptions};
use crate::web::{AppState, JsonBody};
use crate::{bail, err};

#[derive(OpenApi)]
#[openapi(
    paths(
        list_schedules,
        create_schedule,
        get_schedule,
        update_schedule,
        delete_schedule,
        list_runs,
        backup_many
    ),
    components(schemas(
        Schedule,
        NewSchedule,
        RuleKind,
        SelectionKind,
        ScheduleRun,
        RunOutcome,
        BackupMany,
        BackupResult,
        BackupRequest
    ))
)]
pub struct ScheduleApiDoc;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/schedules", get(list_schedules).post(create_schedule))
        .route(
            "/api/schedules/{id}",
            get(get_schedule)
                .put(update_schedule)
                .delete(delete_schedule),
        )
        .route("/api/schedules/{id}/runs", get(list_runs))
        .route("/api/backups", post(backup_many))
}

fn schedule_id(text: &str) -> Result<i64> {
    text.parse().map_err(|_| {
        err!(
            InvalidArgument,
            "计划号 {text:?} 不是数字 (schedule id must be a number)"
        )
    })
}

#[utoipa::path(get, path = "/api/schedules", responses((status = 200, body = [Schedule])))]
async fn list_schedules(State(engine): State<AppState>) -> Result<Json<Vec<Schedule>>> {
    Ok(Json(super::list(&engine).await?))
}

#[utoipa::path(post, path = "/api/schedules", request_body = NewSchedule,
    responses((status = 201, body = Schedule), (status = 400, body = ApiError)))]
async fn create_schedule(
    State(engine): State<AppState>,
    JsonBody(new): JsonBody<NewSchedule>,
) -> Result<Response> {
    let schedule = super::create(&engine, &new).await?;
    Ok((StatusCode::CREATED, Json(schedule)).into_response())
}

#[utoipa::path(get, path = "/api/schedules/{id}", params(("id" = i64, Path, description = "计划号")),
    responses((status = 200, body = Schedule), (status = 404, body = ApiError)))]
async fn get_schedule(
    State(engine): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Schedule>> {
    Ok(Json(super::get(&engine, schedule_id(&id)?).await?))
}

#[utoipa::path(put, path = "/api/schedules/{id}", request_body = NewSchedule,
    params(("id" = i64, Path, description = "计划号")),
    responses((status = 200, body = Schedule), (status = 400, body = ApiError), (status = 404, body = ApiError)))]
async fn update_schedule(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    JsonBody(new): JsonBody<NewSchedule>,
) -> Result<Json<Schedule>> {
    Ok(Json(super::update(&engine, schedule_id(&id)?, &new).await?))
}

#[utoipa::path(delete, path = "/api/schedules/{id}", params(("id" = i64, Path, description = "计划号")),
    responses((status = 204), (status = 404, body = ApiError)))]
async fn delete_schedule(
    State(engine): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    super::delete(&engine, schedule_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/schedules/{id}/runs", params(("id" = i64, Path, description = "计划号")),
    responses((status = 200, body = [ScheduleRun]), (status = 404, body = ApiError)))]
async fn list_runs(
    State(engine): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Vec<ScheduleRun>>> {
    Ok(Json(super::runs(&engine, schedule_id(&id)?).await?))
}

/// Most projects one select-and-burn request may name.
const MAX_SELECTED: usize = 500;

/// Select and burn: one backup job per chosen project; a project that cannot be backed up
/// (no files, a job already running) is reported and does not stop the others.
#[utoipa::path(post, path = "/api/backups", request_body = BackupMany,
    responses((status = 200, body = [BackupResult]), (status = 400, body = ApiError)))]
async fn backup_many(
    State(engine): State<AppState>,
    JsonBody(body): JsonBody<BackupMany>,
) -> Result<Json<Vec<BackupResult>>> {
    if body.numbers.is_empty() {
        bail!(InvalidArgument, "没有选择任何项目 (no projects selected)");
    }
    if body.numbers.len() > MAX_SELECTED {
        bail!(InvalidArgument, "一次最多选择 {MAX_SELECTED} 个项目");
    }
    if let Some(priority) = body.priority {
        check_priority(priority)?;
    }
    let mut results = Vec::with_capacity(body.numbers.len());
    let mut seen = std::collections::HashSet::new();
    for number in body.numbers {
        if !seen.insert(number.clone()) {
            continue;
        }
        let options = BackupOptions {
            priority: body.priority,
            ..BackupOptions::default()
        };
        results.push(engine.submit_for_list(number, options).await?);
    }
    Ok(Json(results))
}
