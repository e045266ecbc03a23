//! The guard in front of every API route: authenticates the caller (session cookie or bearer
//! token), checks the CSRF token of cookie callers, checks the role against the permission
//! table, and appends state-changing requests and refusals to the audit log.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::audit::{AuditLog, Record};
use crate::auth::accounts::{self, LoginLimiter};
use crate::auth::{self, Access, Principal, Via};
use crate::clock::rfc3339;
use crate::err;
use crate::error::Result;
use crate::jobs::Engine;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "witness_session";
/// The header that carries the CSRF token of a cookie session.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// State of the guard and the account handlers.
pub struct Auth {
    pub audit: AuditLog,
    pub limiter: LoginLimiter,
    /// Cookies get `Secure` when the daemon serves HTTPS.
    pub tls: bool,
}

#[derive(Clone)]
pub struct GuardState {
    pub engine: Arc<Engine>,
    pub auth: Arc<Auth>,
}

/// The caller's address, as the connection reports it.
pub fn client_addr(req: &Request) -> String {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".to_string())
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|line| {
            line.split(';').map(str::trim).find_map(|pair| {
                pair.strip_prefix(name)?
                    .strip_prefix('=')
                    .map(str::to_string)
            })
        })
}

/// Finds out who is calling: a bearer token wins over a cookie.
async fn authenticate(engine: &Engine, headers: &HeaderMap) -> Result<Principal> {
    let now = engine.clock.now();
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let text = value
            .to_str()
            .map_err(|_| err!(Unauthenticated, "Authorization 头不是有效文本"))?;
        let secret = text
            .strip_prefix("Bearer ")
            .ok_or_else(|| err!(Unauthenticated, "Authorization 头须为 Bearer <令牌>"))?;
        return accounts::token(&engine.pool, secret.trim(), now).await;
    }
    if let Some(secret) = cookie(headers, SESSION_COOKIE) {
        return accounts::session(&engine.pool, &secret, now).await;
    }
    Err(err!(
        Unauthenticated,
        "请先登录，或以 Authorization: Bearer <令牌> 调用 (authentication required)"
    ))
}

/// Compares without leaking where the first difference is.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn check(
    principal: &Principal,
    access: Access,
    method: &Method,
    headers: &HeaderMap,
    path: &str,
) -> Result<()> {
    if let Via::Session {
        csrf_token,
        must_change_password,
        ..
    } = &principal.via
    {
        if !matches!(*method, Method::GET | Method::HEAD) {
            let sent = headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !same(sent, csrf_token) {
                return Err(err!(
                    PermissionDenied,
                    "CSRF 校验失败，请刷新页面后重试 (missing or wrong CSRF token)"
                ));
            }
        }
        let allowed_before_change = ["/api/session", "/api/account/password", "/api/logout"];
        if *must_change_password && !allowed_before_change.contains(&path) {
            return Err(err!(
                PermissionDenied,
                "请先修改初始密码 (the one-time password must be changed first)"
            ));
        }
    }
    if !access.allows(principal.role) {
        return Err(err!(
            PermissionDenied,
            "角色 {}（{}）无权执行此操作",
            principal.role.as_str(),
            principal.role.label_zh()
        ));
    }
    Ok(())
}

/// The project a request is about, from the `{number}` segment of its route.
fn project_of(pattern: &str, path: &str) -> Option<String> {
    let position = pattern.split('/').position(|s| s == "{number}")?;
    let raw = path.split('/').nth(position)?;
    Some(percent_decode(raw))
}

pub fn percent_decode(text: &str) -> String {
    fn hex_value(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(high), Some(low)) = (hex_value(bytes[i + 1]), hex_value(bytes[i + 2])) {
                out.push(high * 16 + low);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub async fn guard(State(state): State<GuardState>, req: Request, next: Next) -> Response {
    let Some(pattern) = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
    else {
        return next.run(req).await;
    };
    if !pattern.starts_with("/api/") {
        // The UI's static files are public; the data they show is not.
        return next.run(req).await;
    }
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let source = client_addr(&req);
    let changes_state = !matches!(*req.method(), Method::GET | Method::HEAD);
    let audit = |actor: &str, role: &str, result: String| Record {
        at: rfc3339(state.engine.clock.now()),
        actor: actor.to_string(),
        role: role.to_string(),
        action: format!("{method} {pattern}"),
        target: percent_decode(&path),
        project_number: project_of(&pattern, &path),
        source: source.clone(),
        result,
    };
    let Some(permission) = auth::permission(&method, &pattern) else {
        if auth::PERMISSIONS.iter().any(|p| p.path == pattern) {
            // A known route called with a method it does not take: nothing to audit, and
            // nothing is reached either (the guard still refuses).
            let allowed: Vec<&str> = auth::PERMISSIONS
                .iter()
                .filter(|p| p.path == pattern)
                .map(|p| p.method)
                .collect();
            return (
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                [(header::ALLOW, allowed.join(", "))],
                axum::Json(witness_schemas::api::ApiError {
                    kind: "method_not_allowed".into(),
                    message: format!(
                        "接口 {pattern} 不支持 {method}，可用：{}",
                        allowed.join("、")
                    ),
                }),
            )
                .into_response();
        }
        // Fail closed: a route nobody put in the table is nobody's.
        let error = err!(PermissionDenied, "接口 {method} {pattern} 不在权限表中");
        let _ = state
            .auth
            .audit
            .append(
                &state.engine.pool,
                audit("?", "?", "403 not in permission table".into()),
            )
            .await;
        return error.into_response();
    };
    if permission.access == Access::Public {
        return next.run(req).await;
    }
    let headers = req.headers().clone();
    let http_method = req.method().clone();
    let principal = match authenticate(&state.engine, &headers).await {
        Ok(p) => p,
        Err(error) => {
            let _ = state
                .auth
                .audit
                .append(
                    &state.engine.pool,
                    audit("anonymous", "-", format!("401 {}", error.message)),
                )
                .await;
            return error.into_response();
        }
    };
    if let Err(error) = check(
        &principal,
        permission.access,
        &http_method,
        &headers,
        &pattern,
    ) {
        let record = audit(
            &principal.username,
            principal.role.as_str(),
            format!("403 {}", error.message),
        );
        let _ = state.auth.audit.append(&state.engine.pool, record).await;
        return error.into_response();
    }
    let (actor, role) = (principal.username.clone(), principal.role);
    let mut req = req;
    req.extensions_mut().insert(principal);
    let response = next.run(req).await;
    if changes_state {
        let status = response.status();
        let result = if status.is_success() {
            status.as_u16().to_string()
        } else {
            format!("{} failed", status.as_u16())
        };
        if let Err(e) = state
            .auth
            .audit
            .append(&state.engine.pool, audit(&actor, role.as_str(), result))
            .await
        {
            // The action has happened; answering 500 now would invite a retry that repeats it.
            tracing::error!(error = %e, "audit append failed for a completed action");
        }
    }
    response
}

/// A `Set-Cookie` value for the session.
pub fn session_cookie(secret: &str, tls: bool) -> String {
    let secure = if tls { "; Secure" } else { "" };
    format!(
        "{SESSION_COOKIE}={secret}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
        accounts::SESSION_MAX.whole_seconds()
    )
}

pub fn clear_cookie(tls: bool) -> String {
    let secure = if tls { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_numbers_come_from_the_route() {
        assert_eq!(
            project_of(
                "/api/projects/{number}/backup",
                "/api/projects/LK%E5%B7%A5-1/backup"
            )
            .as_deref(),
            Some("LK工-1")
        );
        assert_eq!(project_of("/api/jobs/{id}", "/api/jobs/3"), None);
    }

    #[test]
    fn constant_time_compare() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
    }
}
