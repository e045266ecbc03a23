//! HTTP routes of disc-face labels: the preview of a project's face before burning, the face of
//! an existing disc, and reprinting a disc's face.

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::OpenApi;
use witness_schemas::api::{ApiError, LabelPrintResult, PrinterInfo};

use super::{
    disc_fields, disc_row, preview_fields, print_disc_face, render_blocking, LabelSettings,
    Rendered,
};
use crate::error::Result;
use crate::web::AppState;
use crate::{bail, err};

#[derive(OpenApi)]
#[openapi(
    paths(label_preview, disc_label, reprint, list_printers),
    components(schemas(LabelPrintResult, PrinterInfo))
)]
pub struct LabelsApiDoc;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/projects/{number}/label-preview", get(label_preview))
        .route("/api/discs/{id}/label", get(disc_label))
        .route("/api/discs/{id}/print", post(reprint))
        .route("/api/printers", get(list_printers))
}

/// The disc printers and their states.
#[utoipa::path(get, path = "/api/printers",
    responses((status = 200, body = Vec<PrinterInfo>)))]
async fn list_printers(State(engine): State<AppState>) -> Result<Json<Vec<PrinterInfo>>> {
    Ok(Json(super::printer_states(&engine.settings).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct PreviewQuery {
    /// Disc n of the set (1-based); default 1.
    disc: Option<i64>,
    /// `png` (default) or `pdf`.
    format: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct FormatQuery {
    /// `png` (default) or `pdf`.
    format: Option<String>,
}

#[derive(Debug, Clone, Copy)]
enum Format {
    Png,
    Pdf,
}

fn format(value: Option<&str>) -> Result<Format> {
    match value.unwrap_or("png") {
        "png" => Ok(Format::Png),
        "pdf" => Ok(Format::Pdf),
        other => bail!(
            InvalidArgument,
            "格式 {other:?} 不支持，只能是 png 或 pdf (format must be png or pdf)"
        ),
    }
}

fn answer(rendered: Rendered, format: Format, name: &str) -> Response {
    let (kind, body, ext) = match format {
        Format::Png => ("image/png", rendered.png, "png"),
        Format::Pdf => ("application/pdf", rendered.pdf, "pdf"),
    };
    (
        [
            (header::CONTENT_TYPE, kind.to_string()),
            (header::CACHE_CONTROL, "no-store".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{name}.{ext}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// The face a project's disc will get, before it is burned (today as the burn date).
#[utoipa::path(get, path = "/api/projects/{number}/label-preview",
    params(("number" = String, Path, description = "项目编号"), PreviewQuery),
    responses((status = 200, description = "PNG (300 dpi) or PDF of the disc face", content_type = "image/png"),
        (status = 400, body = ApiError), (status = 404, body = ApiError)))]
async fn label_preview(
    State(engine): State<AppState>,
    Path(number): Path<String>,
    Query(query): Query<PreviewQuery>,
) -> Result<Response> {
    let format = format(query.format.as_deref())?;
    let labels = LabelSettings::from_config(&engine.settings.config)?;
    let fields = preview_fields(
        &engine.pool,
        &engine.settings,
        engine.clock.as_ref(),
        &number,
        query.disc,
    )
    .await?;
    let rendered = render_blocking(labels.clone(), labels.template, fields).await?;
    Ok(answer(rendered, format, "label-preview"))
}

/// The face of an existing disc, as it was (or would be) printed.
#[utoipa::path(get, path = "/api/discs/{id}/label",
    params(("id" = i64, Path, description = "光盘编号"), FormatQuery),
    responses((status = 200, description = "PNG or PDF of the disc face", content_type = "image/png"),
        (status = 404, body = ApiError)))]
async fn disc_label(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<FormatQuery>,
) -> Result<Response> {
    let id = parse_id(&id)?;
    let format = format(query.format.as_deref())?;
    let labels = LabelSettings::from_config(&engine.settings.config)?;
    let disc = disc_row(&engine.pool, id).await?;
    let rejected = (disc.status == "rejected").then(|| disc.error.clone().unwrap_or_default());
    let fields = disc_fields(&engine.pool, &engine.settings, &disc, rejected.as_deref()).await?;
    let template = match rejected {
        Some(_) => labels.reject_template.clone(),
        None => labels.template.clone(),
    };
    let rendered = render_blocking(labels, template, fields).await?;
    Ok(answer(rendered, format, &format!("disc-{id}")))
}

/// Prints a disc's face again (a smudged print, a new printer): the REJECT face for a rejected
/// disc, the standard one otherwise.
#[utoipa::path(post, path = "/api/discs/{id}/print",
    params(("id" = i64, Path, description = "光盘编号")),
    responses((status = 200, body = LabelPrintResult), (status = 404, body = ApiError),
        (status = 412, body = ApiError), (status = 503, body = ApiError)))]
async fn reprint(
    State(engine): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<LabelPrintResult>> {
    let id = parse_id(&id)?;
    let disc = disc_row(&engine.pool, id).await?;
    let rejected = (disc.status == "rejected").then(|| {
        disc.error
            .clone()
            .unwrap_or_else(|| "校验未通过 (rejected)".into())
    });
    let print = print_disc_face(
        &engine.pool,
        &engine.settings,
        engine.clock.as_ref(),
        id,
        rejected.as_deref(),
    )
    .await?;
    Ok(Json(LabelPrintResult {
        disc_id: id,
        printer: print.printer,
        reference: print.reference,
        rejected: rejected.is_some(),
    }))
}

fn parse_id(id: &str) -> Result<i64> {
    id.parse().map_err(|_| {
        err!(
            InvalidArgument,
            "光盘编号 {id:?} 不是数字 (disc id must be a number)"
        )
    })
}
