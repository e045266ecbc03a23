//! The HTTP face of the controller: the JSON API under `/api`, its OpenAPI document, and the
//! embedded web UI. Only this module knows HTTP.

mod account;
mod assets;
mod error;
pub mod guard;
pub mod range;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{middleware, Extension, Json, Router};
use tokio::io::AsyncWriteExt;
use utoipa::OpenApi;
use witness_schemas::api::{
    AddSources, ApiError, Category, CopyKind, Disc, DiscStatus, Job, JobStatus, JobStep,
    NewProject, Project, ProjectDetail, ProjectStatus, SourceFile, SourceKind,
};
use witness_schemas::schedule::BackupRequest;

use crate::error::{io_error, Error, Result};
use crate::jobs::Engine;
use crate::paths::check_rel_path;
use crate::{bail, catalog, err};

/// Shared state of every handler.
pub type AppState = Arc<Engine>;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Witness 见证 controller API",
        description = "评标档案归档系统：项目、文件、一键备份、光盘与副本"
    ),
    paths(
        list_projects,
        create_project,
        get_project,
        add_sources,
        upload_file,
        backup,
        list_jobs,
        get_job,
        list_discs,
        account::login,
        account::logout,
        account::session,
        account::change_password,
        account::list_users,
        account::create_user,
        account::list_tokens,
        account::create_token,
        account::revoke_token,
        account::list_audit,
        account::verify_audit
    ),
    components(schemas(
        Project,
        NewProject,
        ProjectDetail,
        ProjectStatus,
        Category,
        SourceFile,
        SourceKind,
        AddSources,
        Job,
        JobStatus,
        JobStep,
        Disc,
        DiscStatus,
        CopyKind,
        ApiError,
        witness_schemas::auth::Role,
        witness_schemas::auth::LoginRequest,
        witness_schemas::auth::SessionInfo,
        witness_schemas::auth::ChangePassword,
        witness_schemas::auth::User,
        witness_schemas::auth::NewUser,
        witness_schemas::auth::ApiToken,
        witness_schemas::auth::NewToken,
        witness_schemas::auth::CreatedToken,
        witness_schemas::auth::AuditEntry,
        witness_schemas::auth::AuditVerification
    )),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

/// Declares the two ways to authenticate in the OpenAPI document.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(guard::SESSION_COOKIE))),
        );
        openapi.security = Some(vec![
            utoipa::openapi::security::SecurityRequirement::new("token", Vec::<String>::new()),
            utoipa::openapi::security::SecurityRequirement::new("session", Vec::<String>::new()),
        ]);
    }
}

/// The whole HTTP surface. The guard is applied last, so it covers every route added above it.
pub fn router(engine: Arc<Engine>, auth: Arc<guard::Auth>) -> Router {
    let guard_state = guard::GuardState {
        engine: Arc::clone(&engine),
        auth: Arc::clone(&auth),
    };
    Router::new()
        .route("/api/openapi.json", get(openapi))
        .route("/api/projects", get(list_projects).post(create_project))
        .route("/api/projects/{number}", get(get_project))
        .route("/api/projects/{number}/sources", post(add_sources))
        .route(
            "/api/projects/{number}/files/{*rel_path}",
            // Uploads stream to disk, so the default 2 MB body limit does not apply to them.
            put(upload_file).layer(DefaultBodyLimit::disable()),
        )
        .route("/api/projects/{number}/backup", post(backup))
        .route("/api/jobs", get(list_jobs))
        .route("/api/jobs/{id}", get(get_job))
        .route("/api/discs", get(list_discs))
        .merge(crate::drives::web::routes())
        .merge(crate::clearing::web::routes())
        .merge(crate::search::web::routes())
        .merge(crate::schedule::web::routes())
        .merge(crate::batch::web::routes())
        .merge(crate::reinspect::web::routes())
        .merge(crate::labels::web::routes())
        .merge(crate::video::web::routes())
        .route("/api/login", post(account::login))
        .route("/api/logout", post(account::logout))
        .route("/api/session", get(account::session))
        .route("/api/account/password", post(account::change_password))
        .route(
            "/api/users",
            get(account::list_users).post(account::create_user),
        )
        .route(
            "/api/tokens",
            get(account::list_tokens).post(account::create_token),
        )
        .route("/api/tokens/{id}", delete(account::revoke_token))
        .route("/api/audit", get(account::list_audit))
        .route("/api/audit/verify", get(account::verify_audit))
        .route(
            "/api/{*rest}",
            get(api_not_found)
                .post(api_not_found)
                .put(api_not_found)
                .delete(api_not_found),
        )
        .merge(assets::routes())
        .merge(crate::gates::web::routes())
        .merge(crate::integrations::web::routes())
        .merge(crate::integrations::market_subject::web::routes())
        .route_layer(middleware::from_fn_with_state(guard_state, guard::guard))
        .layer(Extension(auth))
        .with_state(engine)
}

/// JSON bodies whose rejections (malformed JSON, wrong types) come back as our ApiError.
pub(crate) struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> std::result::Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(JsonBody(value)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(err!(
                PayloadTooLarge,
                "请求体过大（JSON 最多 2 MB）：{}",
                rejection.body_text()
            )),
            Err(rejection) => Err(err!(
                InvalidArgument,
                "请求体不是有效的 JSON：{}",
                rejection.body_text()
            )),
        }
    }
}

async fn openapi() -> impl IntoResponse {
    let mut doc = ApiDoc::openapi();
    doc.merge(crate::clearing::web::ClearingApiDoc::openapi());
    doc.merge(crate::search::web::SearchApiDoc::openapi());
    doc.merge(crate::schedule::web::ScheduleApiDoc::openapi());
    doc.merge(crate::batch::web::BatchApiDoc::openapi());
    doc.merge(crate::reinspect::web::ReinspectApiDoc::openapi());
    doc.merge(crate::labels::web::LabelsApiDoc::openapi());
    doc.merge(crate::gates::web::GatesApiDoc::openapi());
    doc.merge(crate::integrations::web::IntegrationsApiDoc::openapi());
    doc.merge(crate::integrations::market_subject::web::MarketSubjectApiDoc::openapi());
    doc.merge(crate::drives::web::DrivesApiDoc::openapi());
    doc.merge(crate::video::web::VideoApiDoc::openapi());
    Json(doc)
}

async fn api_not_found() -> Error {
    err!(NotFound, "没有这个接口 (no such API route)")
}

#[utoipa::path(get, path = "/api/projects", responses((status = 200, body = [Project])))]
async fn list_projects(State(engine): State<AppState>) -> Result<Json<Vec<Project>>> {
    Ok(Json(catalog::list_projects(&engine.pool).await?))
}

#[utoipa::path(post, path = "/api/projects", request_body = NewProject,
    responses((status = 201, body = Project), (status = 400, body = ApiError), (status = 409, body = ApiError)))]
async fn create_project(
    State(engine): State<AppState>,
    JsonBody(new): JsonBody<NewProject>,
) -> Result<Response> {
    let project = catalog::create_project(&engine.pool, &new, engine.clock.now()).await?;
    tracing::info!(project = %project.number, "project registered");
    Ok((StatusCode::CREATED, Json(project)).into_response())
}

#[utoipa::path(get, path = "/api/projects/{number}", params(("number" = String, Path, description = "项目编号")),
    responses((status = 200, body = ProjectDetail), (status = 404, body = ApiError)))]
async fn get_project(
    State(engine): State<AppState>,
    Path(number): Path<String>,
) -> Result<Json<ProjectDetail>> {
    Ok(Json(catalog::project_detail(&engine.pool, &number).await?))
}

#[utoipa::path(post, path = "/api/projects/{number}/sources", request_body = AddSources,
    params(("number" = String, Path, description = "项目编号")),
    responses((status = 201, body = [SourceFile]), (status = 400, body = ApiError), (status = 404, body = ApiError)))]
async fn add_sources(
    State(engine): State<AppState>,
    Path(number): Path<String>,
    JsonBody(body): JsonBody<AddSources>,
) -> Result<Response> {
    let added = catalog::add_sources(
        &engine.pool,
        &engine.source_policy(),
        &number,
        &body.paths,
        engine.clock.now(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(added)).into_response())
}

/// Stores an uploaded file under `<data>/store/project-<id>/` and registers it. The body is
/// written to a hidden partial file and renamed only when complete.
#[utoipa::path(put, path = "/api/projects/{number}/files/{rel_path}",
    params(("number" = String, Path, description = "项目编号"), ("rel_path" = String, Path, description = "包内路径，如 投标文件/商务标.pdf")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = SourceFile), (status = 400, body = ApiError), (status = 409, body = ApiError)))]
async fn upload_file(
    State(engine): State<AppState>,
    Path((number, rel_path)): Path<(String, String)>,
    body: Body,
) -> Result<Response> {
    let project = catalog::project(&engine.pool, &number).await?;
    let rel_path = check_rel_path(&rel_path)?;
    if catalog::source_exists(&engine.pool, project.id, &rel_path).await? {
        bail!(AlreadyExists, "项目 {number} 已有文件 {rel_path}");
    }
    let store = engine
        .settings
        .data_dir
        .join("store")
        .join(format!("project-{}", project.id));
    let target = store.join(&rel_path);
    // A file and a folder cannot share a name (`a` uploaded as a file blocks `a/b`, and `a/b`
    // blocks a file `a`): refuse before writing anything, rather than fail on disk with a 500.
    let segments: Vec<&str> = rel_path.split('/').collect();
    let mut ancestor = store.clone();
    for (i, segment) in segments.iter().enumerate() {
        ancestor.push(segment);
        match tokio::fs::symlink_metadata(&ancestor).await {
            Ok(meta) if i + 1 == segments.len() || !meta.is_dir() => bail!(
                AlreadyExists,
                "项目 {number} 已有 {}，与 {rel_path} 冲突（文件与文件夹不能同名）",
                segments[..=i].join("/")
            ),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let parent = target
        .parent()
        .ok_or_else(|| err!(InvalidArgument, "bad path"))?
        .to_path_buf();
    tokio::fs::create_dir_all(&parent)
        .await
        .map_err(|e| io_error(format!("创建目录 {}", parent.display()), e))?;
    // Not named after the file: a 255-byte name plus a suffix would exceed NAME_MAX, and two
    // uploads of the same path at once must not write into one partial file.
    let partial = parent.join(format!(
        ".upload-{}-{}",
        std::process::id(),
        crate::auth::accounts::random_hex(8)?
    ));
    let limit = engine
        .settings
        .config
        .server
        .max_upload_bytes
        .unwrap_or(DEFAULT_MAX_UPLOAD);
    let size = match write_body(body, &partial, limit).await {
        Ok(size) => size,
        Err(e) => {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(e);
        }
    };
    // A hard link, not a rename: it never replaces a file another upload of the same path has
    // just put there (a rename would, leaving the catalog's size for the other file's content).
    let linked = tokio::fs::hard_link(&partial, &target).await;
    let _ = tokio::fs::remove_file(&partial).await;
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!(AlreadyExists, "项目 {number} 已有文件 {rel_path}")
        }
        Err(e) => return Err(io_error(format!("保存 {}", target.display()), e)),
    }
    let file = catalog::add_uploaded(
        &engine.pool,
        &project,
        &rel_path,
        &target,
        size,
        engine.clock.now(),
    )
    .await?;
    tracing::info!(project = %number, path = %rel_path, size, "file uploaded");
    Ok((StatusCode::CREATED, Json(file)).into_response())
}

/// Uploads larger than this are refused unless `[server] max_upload_bytes` says otherwise.
const DEFAULT_MAX_UPLOAD: u64 = 64 << 30;

async fn write_body(body: Body, path: &std::path::Path, limit: u64) -> Result<u64> {
    use futures_util::StreamExt;
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(|e| io_error(format!("写入 {}", path.display()), e))?;
    let mut stream = body.into_data_stream();
    let mut size = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| err!(InvalidArgument, "上传中断：{e}"))?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(err!(
                PayloadTooLarge,
                "上传文件超过上限 {limit} 字节 ([server] max_upload_bytes)"
            ));
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| io_error(format!("写入 {}", path.display()), e))?;
    }
    file.sync_all()
        .await
        .map_err(|e| io_error(format!("同步 {}", path.display()), e))?;
    Ok(size)
}

#[utoipa::path(post, path = "/api/projects/{number}/backup", params(("number" = String, Path, description = "项目编号")),
    request_body(content = Option<BackupRequest>, description = "可选：优先级 0–9"),
    responses((status = 202, body = Job), (status = 404, body = ApiError), (status = 409, body = ApiError)))]
async fn backup(
    State(engine): State<AppState>,
    Path(number): Path<String>,
    request: Request,
) -> Result<Response> {
    // The body is optional: without a Content-Type it is a normal-priority backup (the UI's
    // 一键备份); with one it must be JSON `{"priority": 0..9}`.
    let options = if request.headers().contains_key(header::CONTENT_TYPE) {
        let JsonBody(body) = JsonBody::<BackupRequest>::from_request(request, &()).await?;
        crate::jobs::BackupOptions {
            priority: body.priority,
            ..Default::default()
        }
    } else {
        crate::jobs::BackupOptions::default()
    };
    let job = engine.submit(&number, options).await?;
    Ok((StatusCode::ACCEPTED, Json(job)).into_response())
}

#[utoipa::path(get, path = "/api/jobs", responses((status = 200, body = [Job])))]
async fn list_jobs(State(engine): State<AppState>) -> Result<Json<Vec<Job>>> {
    Ok(Json(catalog::list_jobs(&engine.pool, None).await?))
}

#[utoipa::path(get, path = "/api/jobs/{id}", params(("id" = i64, Path, description = "作业号")),
    responses((status = 200, body = Job), (status = 404, body = ApiError)))]
async fn get_job(State(engine): State<AppState>, Path(id): Path<String>) -> Result<Json<Job>> {
    let id: i64 = id
        .parse()
        .map_err(|_| err!(InvalidArgument, "作业号 {id:?} 不是数字"))?;
    Ok(Json(catalog::job(&engine.pool, id).await?.to_api()))
}

#[utoipa::path(get, path = "/api/discs", responses((status = 200, body = [Disc])))]
async fn list_discs(State(engine): State<AppState>) -> Result<Json<Vec<Disc>>> {
    Ok(Json(catalog::list_discs(&engine.pool, None).await?))
}
