//! HTTP routes of the gates: the gate's own list and sync endpoints (role gate), the registry,
//! expert draws per project, a project's gate events with their snapshots, and the UI page.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use utoipa::OpenApi;
use witness_schemas::api::ApiError;
use witness_schemas::auth::Role;
use witness_schemas::gate::{
    BadgeEvent, CreatedGate, DenyReason, Draw, DrawnExpert, EventKind, ExpertList, Gate, GateEvent,
    NewDraw, NewGate, StoredGateEvent, SyncAck, SyncBatch,
};

use crate::audit::Record;
use crate::auth::{Principal, Via};
use crate::clock::rfc3339;
use crate::error::Result;
use crate::web::guard::Auth;
use crate::web::AppState;
use crate::{bail, err};

/// A sync batch carries up to a few hundred events with their snapshots; the agent keeps each
/// batch under 8 MB, and this leaves room for one large snapshot on top.
const SYNC_BODY_LIMIT: usize = 32 * 1024 * 1024;

#[derive(OpenApi)]
#[openapi(
    paths(
        gate_list,
        gate_sync,
        list_gates,
        register_gate,
        list_draws,
        add_draw,
        project_events,
        event_snapshot
    ),
    components(schemas(
        ExpertList,
        DrawnExpert,
        SyncBatch,
        SyncAck,
        GateEvent,
        EventKind,
        BadgeEvent,
        DenyReason,
        Gate,
        NewGate,
        CreatedGate,
        Draw,
        NewDraw,
        StoredGateEvent
    ))
)]
pub struct GatesApiDoc;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/gate/list", get(gate_list))
        .route(
            "/api/gate/events",
            post(gate_sync).layer(DefaultBodyLimit::max(SYNC_BODY_LIMIT)),
        )
        .route("/api/gates", get(list_gates).post(register_gate))
        .route(
            "/api/projects/{number}/draws",
            get(list_draws).post(add_draw),
        )
        .route("/api/projects/{number}/gate-events", get(project_events))
        .route("/api/gate-events/{id}/snapshot", get(event_snapshot))
}

fn body<T>(body: std::result::Result<Json<T>, JsonRejection>) -> Result<T> {
    body.map(|Json(v)| v).map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            err!(PayloadTooLarge, "请求体过大：{}", r.body_text())
        } else {
            err!(InvalidArgument, "请求体不是有效的 JSON：{}", r.body_text())
        }
    })
}

/// The calling gate's token id; only gate tokens reach these routes (permission table).
fn gate_token(principal: &Principal) -> Result<i64> {
    match principal.via {
        Via::Token { id } if principal.role == Role::Gate => Ok(id),
        _ => Err(err!(PermissionDenied, "只有门禁令牌可以调用此接口")),
    }
}

/// Today's drawn experts for the calling gate's projects.
#[utoipa::path(get, path = "/api/gate/list", responses((status = 200, body = ExpertList), (status = 404, body = ApiError)))]
async fn gate_list(
    State(engine): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Result<Json<ExpertList>> {
    let token_id = gate_token(&principal)?;
    Ok(Json(
        super::expert_list(&engine.pool, token_id, engine.clock.now()).await?,
    ))
}

/// The next events of the calling gate's log.
#[utoipa::path(post, path = "/api/gate/events", request_body = SyncBatch,
    responses((status = 200, body = SyncAck), (status = 409, body = ApiError)))]
async fn gate_sync(
    State(engine): State<AppState>,
    Extension(principal): Extension<Principal>,
    batch: std::result::Result<Json<SyncBatch>, JsonRejection>,
) -> Result<Json<SyncAck>> {
    let token_id = gate_token(&principal)?;
    let batch = body(batch)?;
    Ok(Json(
        super::ingest(&engine.pool, token_id, &batch, engine.clock.now()).await?,
    ))
}

#[utoipa::path(get, path = "/api/gates", responses((status = 200, body = [Gate])))]
async fn list_gates(State(engine): State<AppState>) -> Result<Json<Vec<Gate>>> {
    Ok(Json(super::list(&engine.pool, engine.clock.now()).await?))
}

#[utoipa::path(post, path = "/api/gates", request_body = NewGate,
    responses((status = 201, body = CreatedGate), (status = 400, body = ApiError), (status = 409, body = ApiError)))]
async fn register_gate(
    State(engine): State<AppState>,
    Extension(principal): Extension<Principal>,
    new: std::result::Result<Json<NewGate>, JsonRejection>,
) -> Result<Response> {
    let new = body(new)?;
    let created =
        super::register(&engine.pool, &new, &principal.username, engine.clock.now()).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
struct FullQuery {
    /// `true`: unmasked ID numbers (admin and auditor only; the read is audited).
    #[serde(default)]
    full: bool,
    #[serde(default)]
    limit: Option<i64>,
}

/// Only these roles may see full ID numbers, and each such read goes into the audit log.
async fn allow_full(
    engine: &AppState,
    auth: &Arc<Auth>,
    principal: &Principal,
    what: String,
    project: &str,
) -> Result<()> {
    if !matches!(principal.role, Role::Admin | Role::Auditor) {
        bail!(
            PermissionDenied,
            "角色 {} 无权查看完整身份证号",
            principal.role.label_zh()
        );
    }
    let record = Record {
        at: rfc3339(engine.clock.now()),
        actor: principal.username.clone(),
        role: principal.role.as_str().to_string(),
        action: "READ full id numbers".to_string(),
        target: what,
        project_number: Some(project.to_string()),
        source: "-".to_string(),
        result: "200".to_string(),
    };
    auth.audit.append(&engine.pool, record).await
}

#[utoipa::path(get, path = "/api/projects/{number}/draws", params(("number" = String, Path, description = "项目编号"), FullQuery),
    responses((status = 200, body = [Draw]), (status = 404, body = ApiError)))]
async fn list_draws(
    State(engine): State<AppState>,
    Extension(auth): Extension<Arc<Auth>>,
    Extension(principal): Extension<Principal>,
    Path(number): Path<String>,
    Query(query): Query<FullQuery>,
) -> Result<Json<Vec<Draw>>> {
    if query.full {
        allow_full(
            &engine,
            &auth,
            &principal,
            format!("/api/projects/{number}/draws"),
            &number,
        )
        .await?;
    }
    Ok(Json(
        super::list_draws(&engine.pool, &number, query.full).await?,
    ))
}

#[utoipa::path(post, path = "/api/projects/{number}/draws", request_body = NewDraw,
    params(("number" = String, Path, description = "项目编号")),
    responses((status = 201, body = Draw), (status = 400, body = ApiError), (status = 404, body = ApiError)))]
async fn add_draw(
    State(engine): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(number): Path<String>,
    new: std::result::Result<Json<NewDraw>, JsonRejection>,
) -> Result<Response> {
    let new = body(new)?;
    let draw = super::add_draw(
        &engine.pool,
        &number,
        &new,
        &principal.username,
        engine.clock.now(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(draw)).into_response())
}

#[utoipa::path(get, path = "/api/projects/{number}/gate-events", params(("number" = String, Path, description = "项目编号"), FullQuery),
    responses((status = 200, body = [StoredGateEvent]), (status = 404, body = ApiError)))]
async fn project_events(
    State(engine): State<AppState>,
    Extension(auth): Extension<Arc<Auth>>,
    Extension(principal): Extension<Principal>,
    Path(number): Path<String>,
    Query(query): Query<FullQuery>,
) -> Result<Json<Vec<StoredGateEvent>>> {
    if query.full {
        allow_full(
            &engine,
            &auth,
            &principal,
            format!("/api/projects/{number}/gate-events"),
            &number,
        )
        .await?;
    }
    let limit = query.limit.unwrap_or(500);
    Ok(Json(
        super::project_events(&engine.pool, &number, query.full, limit).await?,
    ))
}

#[utoipa::path(get, path = "/api/gate-events/{id}/snapshot", params(("id" = i64, Path, description = "事件编号")),
    responses((status = 200, content_type = "image/jpeg", body = Vec<u8>), (status = 404, body = ApiError)))]
async fn event_snapshot(
    State(engine): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response> {
    let id: i64 = id
        .parse()
        .map_err(|_| err!(InvalidArgument, "事件编号 {id:?} 不是数字"))?;
    let bytes = super::snapshot(&engine.pool, id).await?;
    Ok(([(header::CONTENT_TYPE, "image/jpeg")], bytes).into_response())
}
