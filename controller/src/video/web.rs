//! HTTP routes of evaluation video: a project's rooms and NVR channels, its pulls, and the
//! pulled MP4 served with HTTP Range (seeking in a browser needs it).

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Query};
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use utoipa::OpenApi;
use witness_schemas::api::ApiError;
use witness_schemas::video::{
    NewRecordingUpload, NewVideoPull, NvrInfo, RecordingUpload, RecordingUploadStatus,
    VideoChannel, VideoGap, VideoPull, VideoPullStatus,
};

use crate::err;
use crate::error::Result;
use crate::web::{AppState, JsonBody};

#[derive(OpenApi)]
#[openapi(
    paths(
        list_nvrs,
        get_channels,
        put_channels,
        list_pulls,
        start_pulls,
        pull_file,
        list_uploads,
        create_upload,
        upload_status,
        upload_chunk
    ),
    components(schemas(
        NvrInfo,
        VideoChannel,
        NewVideoPull,
        VideoPull,
        VideoPullStatus,
        VideoGap,
        NewRecordingUpload,
        RecordingUpload,
        RecordingUploadStatus
    ))
)]
pub struct VideoApiDoc;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/projects/{number}/video/channels",
            get(get_channels).put(put_channels),
        )
        .route(
            "/api/projects/{number}/video/pulls",
            get(list_pulls).post(start_pulls),
        )
        .route("/api/video/pulls/{id}/file", get(pull_file))
        .route("/api/video/nvrs", get(list_nvrs))
        .route(
            "/api/projects/{number}/recordings/uploads",
            get(list_uploads).post(create_upload),
        )
        .route(
            "/api/recordings/uploads/{id}",
            // Chunks stream to disk: the 2 MB JSON body limit does not apply to them.
            get(upload_status)
                .put(upload_chunk)
                .layer(DefaultBodyLimit::disable()),
        )
}

/// The NVRs of the configuration file, by name (their credentials stay in the file).
#[utoipa::path(get, path = "/api/video/nvrs", responses((status = 200, body = [NvrInfo])))]
async fn list_nvrs(State(engine): State<AppState>) -> Json<Vec<NvrInfo>> {
    Json(
        engine
            .settings
            .config
            .nvrs
            .iter()
            .map(|n| NvrInfo {
                name: n.name.clone(),
                vendor: n.vendor.clone(),
                max_connections: n.max_connections,
            })
            .collect(),
    )
}

#[utoipa::path(get, path = "/api/projects/{number}/video/channels",
    params(("number" = String, Path, description = "项目编号")),
    responses((status = 200, body = [VideoChannel]), (status = 404, body = ApiError)))]
async fn get_channels(
    State(engine): State<AppState>,
    Path(number): Path<String>,
) -> Result<Json<Vec<VideoChannel>>> {
    Ok(Json(super::channels(&engine, &number).await?))
}

/// Replaces the project's rooms → NVR channels mapping.
#[utoipa::path(put, path = "/api/projects/{number}/video/channels", request_body = [VideoChannel],
    params(("number" = String, Path, description = "项目编号")),
    responses((status = 200, body = [VideoChannel]), (status = 400, body = ApiError), (status = 404, body = ApiError)))]
async fn put_channels(
    State(engine): State<AppState>,
    Path(number): Path<String>,
    JsonBody(channels): JsonBody<Vec<VideoChannel>>,
) -> Result<Json<Vec<VideoChannel>>> {
    Ok(Json(
        super::set_channels(&engine, &number, &channels).await?,
    ))
}

#[utoipa::path(get, path = "/api/projects/{number}/video/pulls",
    params(("number" = String, Path, description = "项目编号")),
    responses((status = 200, body = [VideoPull]), (status = 404, body = ApiError)))]
async fn list_pulls(
    State(engine): State<AppState>,
    Path(number): Path<String>,
) -> Result<Json<Vec<VideoPull>>> {
    Ok(Json(super::pulls(&engine, &number).await?))
}

/// Pulls the window from every mapped channel (in the background; poll the list).
#[utoipa::path(post, path = "/api/projects/{number}/video/pulls", request_body = NewVideoPull,
    params(("number" = String, Path, description = "项目编号")),
    responses((status = 202, body = [VideoPull]), (status = 400, body = ApiError), (status = 409, body = ApiError)))]
async fn start_pulls(
    State(engine): State<AppState>,
    Path(number): Path<String>,
    JsonBody(request): JsonBody<NewVideoPull>,
) -> Result<(StatusCode, Json<Vec<VideoPull>>)> {
    Ok((
        StatusCode::ACCEPTED,
        Json(super::start_pulls(&engine, &number, &request).await?),
    ))
}

/// The pulled MP4 (faststart), with `Range` support for seeking.
#[utoipa::path(get, path = "/api/video/pulls/{id}/file",
    params(("id" = i64, Path, description = "拉取号")),
    responses((status = 200, content_type = "video/mp4"), (status = 206, content_type = "video/mp4"),
        (status = 404, body = ApiError), (status = 409, body = ApiError)))]
async fn pull_file(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response> {
    let id: i64 = id.parse().map_err(|_| {
        err!(
            InvalidArgument,
            "拉取号 {id:?} 不是数字 (pull id must be a number)"
        )
    })?;
    let path = super::pull_file(&engine, id).await?;
    crate::web::range::serve(&path, request.headers(), "video/mp4").await
}

fn upload_id(text: &str) -> Result<i64> {
    text.parse().map_err(|_| {
        err!(
            InvalidArgument,
            "上传号 {text:?} 不是数字 (upload id must be a number)"
        )
    })
}

/// The project's recording uploads, newest first.
#[utoipa::path(get, path = "/api/projects/{number}/recordings/uploads",
    params(("number" = String, Path, description = "项目编号")),
    responses((status = 200, body = [RecordingUpload]), (status = 404, body = ApiError)))]
async fn list_uploads(
    State(engine): State<AppState>,
    Path(number): Path<String>,
) -> Result<Json<Vec<RecordingUpload>>> {
    Ok(Json(super::upload::list(&engine, &number).await?))
}

/// Starts a resumable upload of an evaluation recording bound to a room and seat.
#[utoipa::path(post, path = "/api/projects/{number}/recordings/uploads", request_body = NewRecordingUpload,
    params(("number" = String, Path, description = "项目编号")),
    responses((status = 201, body = RecordingUpload), (status = 400, body = ApiError), (status = 409, body = ApiError)))]
async fn create_upload(
    State(engine): State<AppState>,
    Path(number): Path<String>,
    JsonBody(new): JsonBody<NewRecordingUpload>,
) -> Result<(StatusCode, Json<RecordingUpload>)> {
    Ok((
        StatusCode::CREATED,
        Json(super::upload::create(&engine, &number, &new).await?),
    ))
}

/// Where an upload stands: `received` is the offset to resume at.
#[utoipa::path(get, path = "/api/recordings/uploads/{id}", params(("id" = i64, Path, description = "上传号")),
    responses((status = 200, body = RecordingUpload), (status = 404, body = ApiError)))]
async fn upload_status(
    State(engine): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RecordingUpload>> {
    Ok(Json(super::upload::status(&engine, upload_id(&id)?).await?))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
struct ChunkQuery {
    /// Byte offset of the chunk in the file; must equal the upload's `received`.
    offset: u64,
}

/// One chunk (raw bytes) at `offset`. A chunk cut off mid-way keeps what arrived.
#[utoipa::path(put, path = "/api/recordings/uploads/{id}", params(("id" = i64, Path, description = "上传号"), ChunkQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, body = RecordingUpload), (status = 400, body = ApiError), (status = 409, body = ApiError)))]
async fn upload_chunk(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<ChunkQuery>,
    body: Body,
) -> Result<Json<RecordingUpload>> {
    Ok(Json(
        super::upload::append(&engine, upload_id(&id)?, query.offset, body).await?,
    ))
}
