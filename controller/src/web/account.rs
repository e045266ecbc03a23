//! Login, logout, the current session, password change, users, API tokens and the audit log.

use std::sync::Arc;

use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use witness_schemas::api::ApiError;
use witness_schemas::auth::{
    ApiToken, AuditEntry, AuditVerification, ChangePassword, CreatedToken, LoginRequest, NewToken,
    NewUser, SessionInfo, User,
};

use super::guard::{self, Auth};
use super::{AppState, JsonBody};
use crate::audit::{self, AuditQuery, Record};
use crate::auth::accounts;
use crate::auth::{Principal, Via};
use crate::clock::rfc3339;
use crate::err;
use crate::error::Result;

fn session_info(principal: &Principal, expires_at: Option<String>) -> SessionInfo {
    let (csrf_token, must_change_password) = match &principal.via {
        Via::Session {
            csrf_token,
            must_change_password,
            ..
        } => (Some(csrf_token.clone()), *must_change_password),
        Via::Token { .. } => (None, false),
    };
    SessionInfo {
        username: principal.username.clone(),
        role: principal.role,
        csrf_token,
        expires_at,
        must_change_password,
    }
}

/// Logs in with a password; answers with the session cookie and the CSRF token.
#[utoipa::path(post, path = "/api/login", request_body = LoginRequest,
    responses((status = 200, body = SessionInfo), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 429, body = ApiError)))]
pub async fn login(
    State(engine): State<AppState>,
    Extension(auth): Extension<Arc<Auth>>,
    req: Request,
) -> Result<Response> {
    let source = guard::client_addr(&req);
    let ip = source
        .parse()
        .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
    let JsonBody(body) = JsonBody::<LoginRequest>::from_request(req, &()).await?;
    let now = engine.clock.now();
    let record = |result: String| Record {
        at: rfc3339(now),
        actor: body.username.chars().take(64).collect(),
        role: "-".into(),
        action: "POST /api/login".into(),
        target: "/api/login".into(),
        project_number: None,
        source: source.clone(),
        result,
    };
    if let Err(error) = auth.limiter.check(ip, now) {
        auth.audit
            .append(&engine.pool, record(format!("429 {}", error.message)))
            .await?;
        return Err(error);
    }
    match accounts::login(&engine.pool, &body.username, &body.password, now).await {
        Ok(outcome) => {
            auth.audit
                .append(&engine.pool, record("200 login".into()))
                .await?;
            tracing::info!(user = %outcome.principal.username, "logged in");
            let info = session_info(&outcome.principal, Some(outcome.expires_at.clone()));
            Ok((
                [(
                    header::SET_COOKIE,
                    guard::session_cookie(&outcome.session_secret, auth.tls),
                )],
                Json(info),
            )
                .into_response())
        }
        Err(error) => {
            let status = super::error::status(error.kind).as_u16();
            auth.audit
                .append(&engine.pool, record(format!("{status} {}", error.message)))
                .await?;
            Err(error)
        }
    }
}

#[utoipa::path(post, path = "/api/logout", responses((status = 204)))]
pub async fn logout(
    State(engine): State<AppState>,
    Extension(auth): Extension<Arc<Auth>>,
    Extension(principal): Extension<Principal>,
) -> Result<Response> {
    if let Via::Session { id_hash, .. } = &principal.via {
        accounts::end_session(&engine.pool, id_hash).await?;
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, guard::clear_cookie(auth.tls))],
    )
        .into_response())
}

#[utoipa::path(get, path = "/api/session", responses((status = 200, body = SessionInfo), (status = 401, body = ApiError)))]
pub async fn session(Extension(principal): Extension<Principal>) -> Json<SessionInfo> {
    Json(session_info(&principal, None))
}

#[utoipa::path(post, path = "/api/account/password", request_body = ChangePassword,
    responses((status = 204), (status = 400, body = ApiError), (status = 403, body = ApiError)))]
pub async fn change_password(
    State(engine): State<AppState>,
    Extension(principal): Extension<Principal>,
    JsonBody(body): JsonBody<ChangePassword>,
) -> Result<StatusCode> {
    if let Via::Token { .. } = principal.via {
        return Err(err!(
            InvalidArgument,
            "API 令牌没有密码；请以用户身份登录后修改"
        ));
    }
    accounts::change_password(
        &engine.pool,
        &engine.settings.data_dir,
        &principal.username,
        &body.old_password,
        &body.new_password,
        engine.clock.now(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/users", responses((status = 200, body = [User])))]
pub async fn list_users(State(engine): State<AppState>) -> Result<Json<Vec<User>>> {
    Ok(Json(accounts::list_users(&engine.pool).await?))
}

#[utoipa::path(post, path = "/api/users", request_body = NewUser,
    responses((status = 201, body = User), (status = 400, body = ApiError), (status = 409, body = ApiError)))]
pub async fn create_user(
    State(engine): State<AppState>,
    JsonBody(body): JsonBody<NewUser>,
) -> Result<Response> {
    let user = accounts::create_user(
        &engine.pool,
        &body.username,
        body.role,
        &body.password,
        engine.clock.now(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(user)).into_response())
}

#[utoipa::path(get, path = "/api/tokens", responses((status = 200, body = [ApiToken])))]
pub async fn list_tokens(State(engine): State<AppState>) -> Result<Json<Vec<ApiToken>>> {
    Ok(Json(accounts::list_tokens(&engine.pool).await?))
}

#[utoipa::path(post, path = "/api/tokens", request_body = NewToken,
    responses((status = 201, body = CreatedToken), (status = 400, body = ApiError)))]
pub async fn create_token(
    State(engine): State<AppState>,
    Extension(principal): Extension<Principal>,
    JsonBody(body): JsonBody<NewToken>,
) -> Result<Response> {
    let (token, secret) = accounts::create_token(
        &engine.pool,
        &body.name,
        body.role,
        &principal.username,
        engine.clock.now(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(CreatedToken { token, secret })).into_response())
}

#[utoipa::path(delete, path = "/api/tokens/{id}", params(("id" = i64, Path, description = "令牌编号")),
    responses((status = 200, body = ApiToken), (status = 404, body = ApiError)))]
pub async fn revoke_token(
    State(engine): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ApiToken>> {
    let id: i64 = id
        .parse()
        .map_err(|_| err!(InvalidArgument, "令牌编号 {id:?} 不是数字"))?;
    Ok(Json(
        accounts::revoke_token(&engine.pool, id, engine.clock.now()).await?,
    ))
}

#[utoipa::path(get, path = "/api/audit", params(AuditQuery), responses((status = 200, body = [AuditEntry])))]
pub async fn list_audit(
    State(engine): State<AppState>,
    Query(query): Query<AuditQuery>,
) -> Result<Json<Vec<AuditEntry>>> {
    Ok(Json(audit::list(&engine.pool, &query).await?))
}

#[utoipa::path(get, path = "/api/audit/verify", responses((status = 200, body = AuditVerification)))]
pub async fn verify_audit(State(engine): State<AppState>) -> Result<Json<AuditVerification>> {
    Ok(Json(audit::verify(&engine.pool).await?))
}
