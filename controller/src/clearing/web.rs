//! HTTP routes of the clearing engine: a stateless run on JSON bills, and a run on workbooks
//! already uploaded to a project whose reports are stored (and so archived) with the project.

use std::path::PathBuf;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use utoipa::OpenApi;
use witness_schemas::api::ApiError;
use witness_schemas::clearing::{
    Analyses, BidFile, BidPrice, Bill, BoqItem, ClearingConfig, ClearingInput, ClearingRequest,
    ClearingResult, ClearingRun, Correction, CostComposition, FeeLine, FeeTable, Finding,
    FindingKind, InformationPrice, ItemComparison, ItemTable, MaterialComparison, MaterialLine,
    MeasureComparison, Num, Origin, PriceBase, Subtotal, Threshold, UnitPrice, UnitPriceAnalysis,
    UnitProject,
};

use crate::error::{io_error, Error, Result};
use crate::paths::check_rel_path;
use crate::web::AppState;
use crate::{bail, catalog, err};

/// Folder of a project's store where reports are written; it is archived with the project.
pub const REPORT_FOLDER: &str = "清标报告";

/// JSON bills of a large tender exceed axum's 2 MB default (20,000 items ≈ 10 MB per bid).
const JSON_BODY_LIMIT: usize = 512 * 1024 * 1024;

#[derive(OpenApi)]
#[openapi(
    paths(run_json, run_project, get_report),
    components(schemas(
        Num,
        Bill,
        UnitProject,
        Origin,
        ItemTable,
        BoqItem,
        Subtotal,
        UnitPriceAnalysis,
        MaterialLine,
        FeeTable,
        FeeLine,
        ClearingInput,
        ClearingConfig,
        PriceBase,
        Threshold,
        InformationPrice,
        FindingKind,
        Finding,
        Correction,
        ClearingResult,
        Analyses,
        BidPrice,
        UnitPrice,
        CostComposition,
        ItemComparison,
        MeasureComparison,
        MaterialComparison,
        ClearingRun,
        ClearingRequest,
        BidFile
    ))
)]
pub struct ClearingApiDoc;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/clearing/run",
            post(run_json).layer(DefaultBodyLimit::max(JSON_BODY_LIMIT)),
        )
        .route("/api/projects/{number}/clearing", post(run_project))
        .route(
            "/api/projects/{number}/clearing/reports/{file}",
            get(get_report),
        )
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

fn join_error(e: tokio::task::JoinError) -> Error {
    err!(Internal, "清标计算异常终止：{e}")
}

/// Runs the checks and analyses on bills sent as JSON; nothing is stored.
#[utoipa::path(post, path = "/api/clearing/run", request_body = ClearingInput,
    responses((status = 200, body = ClearingResult), (status = 400, body = ApiError)))]
async fn run_json(
    input: std::result::Result<Json<ClearingInput>, JsonRejection>,
) -> Result<Json<ClearingResult>> {
    let input = body(input)?;
    let result =
        tokio::task::spawn_blocking(move || super::run(&input.tender, &input.bids, &input.config))
            .await
            .map_err(join_error)??;
    Ok(Json(result))
}

fn store_dir(engine: &AppState, project_id: i64) -> PathBuf {
    engine
        .settings
        .data_dir
        .join("store")
        .join(format!("project-{project_id}"))
}

/// Runs clearing on workbooks uploaded to the project (`PUT /api/projects/{number}/files/…`)
/// and stores the .xlsx and .html reports under `清标报告/`, registered as project files.
#[utoipa::path(post, path = "/api/projects/{number}/clearing", request_body = ClearingRequest,
    params(("number" = String, Path, description = "项目编号")),
    responses((status = 201, body = ClearingRun), (status = 400, body = ApiError), (status = 404, body = ApiError)))]
async fn run_project(
    State(engine): State<AppState>,
    Path(number): Path<String>,
    request: std::result::Result<Json<ClearingRequest>, JsonRejection>,
) -> Result<Response> {
    let request = body(request)?;
    let project = catalog::project(&engine.pool, &number).await?;
    let store = store_dir(&engine, project.id);
    if request.bids.is_empty() {
        bail!(InvalidArgument, "至少需要一份投标文件");
    }
    let tender_path = store.join(check_rel_path(&request.tender)?);
    let mut bids = Vec::new();
    for bid in &request.bids {
        if bid.bidder.trim().is_empty() {
            bail!(InvalidArgument, "投标文件 {} 缺少投标人名称", bid.path);
        }
        bids.push((bid.bidder.clone(), store.join(check_rel_path(&bid.path)?)));
    }
    let config = request.config.clone();
    let (result, bidders, xlsx, html) = tokio::task::spawn_blocking(move || -> Result<_> {
        let (tender, bills) = super::cli::read_all(&tender_path, &bids)?;
        let result = super::run(&tender, &bills, &config)?;
        let bidders: Vec<String> = bills.iter().map(|b| b.bidder.clone()).collect();
        let xlsx = super::report::xlsx(&result, &bidders)?;
        let html = super::report::html(&result, "清标报告");
        Ok((result, bidders, xlsx, html))
    })
    .await
    .map_err(join_error)??;

    let stamp = engine
        .clock
        .now()
        .format(time::macros::format_description!(
            "[year][month][day]-[hour][minute][second]"
        ))
        .map_err(|e| err!(Internal, "时间格式化失败：{e}"))?;
    let folder = store.join(REPORT_FOLDER);
    tokio::fs::create_dir_all(&folder)
        .await
        .map_err(|e| io_error(format!("创建目录 {}", folder.display()), e))?;
    let mut reports = Vec::new();
    for (ext, bytes) in [("xlsx", xlsx), ("html", html.into_bytes())] {
        let mut name = format!("清标报告-{stamp}.{ext}");
        let mut n = 2;
        while catalog::source_exists(&engine.pool, project.id, &format!("{REPORT_FOLDER}/{name}"))
            .await?
        {
            name = format!("清标报告-{stamp}-{n}.{ext}");
            n += 1;
        }
        let rel_path = format!("{REPORT_FOLDER}/{name}");
        let target = folder.join(&name);
        tokio::fs::write(&target, &bytes)
            .await
            .map_err(|e| io_error(format!("写入 {}", target.display()), e))?;
        catalog::add_uploaded(
            &engine.pool,
            &project,
            &rel_path,
            &target,
            bytes.len() as u64,
            engine.clock.now(),
        )
        .await?;
        reports.push(rel_path);
    }
    tracing::info!(project = %number, findings = result.findings.len(), "clearing run stored");
    Ok((
        StatusCode::CREATED,
        Json(ClearingRun {
            result,
            bidders,
            reports,
        }),
    )
        .into_response())
}

/// Downloads a stored report (`file` is the name inside `清标报告/`).
#[utoipa::path(get, path = "/api/projects/{number}/clearing/reports/{file}",
    params(("number" = String, Path, description = "项目编号"), ("file" = String, Path, description = "报告文件名")),
    responses((status = 200, content_type = "application/octet-stream"), (status = 404, body = ApiError)))]
async fn get_report(
    State(engine): State<AppState>,
    Path((number, file)): Path<(String, String)>,
) -> Result<Response> {
    let project = catalog::project(&engine.pool, &number).await?;
    if file.contains('/') || file.contains('\\') || file.starts_with('.') {
        bail!(InvalidArgument, "报告文件名 {file:?} 无效");
    }
    let path = store_dir(&engine, project.id)
        .join(REPORT_FOLDER)
        .join(&file);
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|e| io_error(format!("清标报告 {file}"), e))?;
    let content_type = if file.ends_with(".html") {
        "text/html; charset=utf-8"
    } else {
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    };
    Ok(([(header::CONTENT_TYPE, content_type)], bytes).into_response())
}
