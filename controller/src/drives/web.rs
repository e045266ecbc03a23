//! HTTP routes of the drives: their states and counters, each drive's event history, returning
//! a drive to service (administrators), alerts, and the disc publishing robot.

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use utoipa::OpenApi;
use witness_drivers::autoloader::Place;
use witness_schemas::api::{Alert, ApiError, AutoloaderInfo, AutoloaderMove, Drive, DriveEvent};

use crate::auth::Principal;
use crate::error::Result;
use crate::web::AppState;
use crate::{bail, err};

#[derive(OpenApi)]
#[openapi(
    paths(
        list_drives,
        drive_events,
        return_to_service,
        list_alerts,
        autoloader,
        clear_jam
    ),
    components(schemas(Drive, DriveEvent, Alert, AutoloaderInfo, AutoloaderMove))
)]
pub struct DrivesApiDoc;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/drives", get(list_drives))
        .route("/api/drives/{name}/events", get(drive_events))
        .route(
            "/api/drives/{name}/return-to-service",
            post(return_to_service),
        )
        .route("/api/alerts", get(list_alerts))
        .route("/api/autoloader", get(autoloader))
        .route("/api/autoloader/clear-jam", post(clear_jam))
}

/// Every configured drive with its state and good/bad disc counters.
#[utoipa::path(get, path = "/api/drives", responses((status = 200, body = [Drive])))]
async fn list_drives(State(engine): State<AppState>) -> Result<Json<Vec<Drive>>> {
    Ok(Json(super::list(&engine).await?))
}

#[derive(Debug, Deserialize)]
struct EventsQuery {
    limit: Option<i64>,
}

/// A drive's state changes (which disc it loaded, recorded, verified when), oldest first.
#[utoipa::path(get, path = "/api/drives/{name}/events",
    params(("name" = String, Path), ("limit" = Option<i64>, Query, description = "at most this many, the newest (default 200, at most 5000)")),
    responses((status = 200, body = [DriveEvent]), (status = 404, body = ApiError)))]
async fn drive_events(
    State(engine): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<EventsQuery>,
) -> Result<Json<Vec<DriveEvent>>> {
    known(&engine, &name)?;
    let limit = query.limit.unwrap_or(200);
    if !(1..=5000).contains(&limit) {
        bail!(
            InvalidArgument,
            "limit {limit} 无效：应为 1 到 5000 (limit must be 1..=5000)"
        );
    }
    Ok(Json(super::events(&engine.pool, &name, limit).await?))
}

/// Returns a drive taken out of service to service (administrators).
#[utoipa::path(post, path = "/api/drives/{name}/return-to-service", params(("name" = String, Path)),
    responses((status = 200, body = [Drive]), (status = 404, body = ApiError), (status = 409, body = ApiError)))]
async fn return_to_service(
    State(engine): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<Json<Vec<Drive>>> {
    let names: Vec<String> = engine
        .settings
        .drives
        .iter()
        .map(|d| d.info().name)
        .collect();
    super::return_to_service(&engine.pool, &names, &name, &principal.username).await?;
    Ok(Json(super::list(&engine).await?))
}

/// Alerts for the operator, open ones first.
#[utoipa::path(get, path = "/api/alerts", responses((status = 200, body = [Alert])))]
async fn list_alerts(State(engine): State<AppState>) -> Result<Json<Vec<Alert>>> {
    Ok(Json(super::alerts(&engine.pool).await?))
}

/// The disc publishing robot: bins, counts, recent arm moves.
#[utoipa::path(get, path = "/api/autoloader",
    responses((status = 200, body = AutoloaderInfo), (status = 404, body = ApiError)))]
async fn autoloader(State(engine): State<AppState>) -> Result<Json<AutoloaderInfo>> {
    let Some(robot) = engine.settings.autoloader.clone() else {
        bail!(
            NotFound,
            "未配置光盘机械手 ([autoloader])，光盘由人工放入和取出 (no autoloader configured)"
        );
    };
    let (status, moves) =
        tokio::task::spawn_blocking(move || (robot.status(), robot.recent_moves()))
            .await
            .map_err(|e| err!(Internal, "autoloader status thread failed: {e}"))?;
    let place = |p: &Place| p.to_string();
    Ok(Json(AutoloaderInfo {
        model: status.model,
        input_bins: status.input_bins,
        output_count: status.output_count,
        reject_count: status.reject_count,
        bin_capacity: status.bin_capacity,
        drives_loaded: status.drives_loaded,
        printer_loaded: status.printer_loaded,
        jammed: status.jammed,
        moves: status.moves,
        recent_moves: moves
            .iter()
            .map(|m| AutoloaderMove {
                seq: m.seq,
                from: place(&m.from),
                to: place(&m.to),
                error: m.error.clone(),
            })
            .collect(),
    }))
}

/// After an operator freed a jammed arm: the robot takes moves again (administrators). The
/// open autoloader alerts are resolved.
#[utoipa::path(post, path = "/api/autoloader/clear-jam",
    responses((status = 200, body = AutoloaderInfo), (status = 404, body = ApiError), (status = 409, body = ApiError)))]
async fn clear_jam(
    State(engine): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Result<Json<AutoloaderInfo>> {
    let Some(robot) = engine.settings.autoloader.clone() else {
        bail!(
            NotFound,
            "未配置光盘机械手 ([autoloader]) (no autoloader configured)"
        );
    };
    let cleared = tokio::task::spawn_blocking(move || {
        if robot.status().jammed.is_none() {
            return Ok(false);
        }
        robot.clear_jam().map(|()| true)
    })
    .await
    .map_err(|e| err!(Internal, "autoloader thread failed: {e}"))?
    .map_err(|e| err!(Unavailable, "{e}"))?;
    if !cleared {
        bail!(
            FailedPrecondition,
            "机械手没有卡住，无需处理 (the arm is not jammed)"
        );
    }
    super::resolve_alerts(
        &engine.pool,
        "autoloader",
        "autoloader",
        &principal.username,
    )
    .await?;
    autoloader(State(engine)).await
}

fn known(engine: &crate::jobs::Engine, name: &str) -> Result<()> {
    if engine.settings.drives.iter().any(|d| d.info().name == name) {
        Ok(())
    } else {
        bail!(NotFound, "没有名为 {name:?} 的刻录机 (no such drive)")
    }
}
