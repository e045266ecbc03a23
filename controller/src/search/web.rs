//! HTTP routes of search: `GET /api/search`, `POST /api/search/reindex`, and the search page.

use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use utoipa::OpenApi;
use witness_schemas::api::ApiError;
use witness_schemas::search::{
    FacetCount, Facets, ItemKind, ReindexReport, SearchHit, SearchQuery, SearchResults, SnippetPart,
};

use super::service::{service_for, SearchService};
use crate::err;
use crate::error::Result;
use crate::web::AppState;

#[derive(OpenApi)]
#[openapi(
    paths(search, reindex),
    components(schemas(
        SearchQuery,
        SearchResults,
        SearchHit,
        SnippetPart,
        Facets,
        FacetCount,
        ItemKind,
        ReindexReport
    ))
)]
pub struct SearchApiDoc;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/search", get(search))
        .route("/api/search/reindex", post(reindex))
}

fn service(engine: &AppState) -> Result<std::sync::Arc<SearchService>> {
    service_for(&engine.pool)
        .ok_or_else(|| err!(Unavailable, "搜索服务未启动 (search is not running)"))
}

#[utoipa::path(get, path = "/api/search", params(SearchQuery),
    responses((status = 200, body = SearchResults), (status = 400, body = ApiError)))]
async fn search(
    State(engine): State<AppState>,
    Query(request): Query<SearchQuery>,
) -> Result<Json<SearchResults>> {
    Ok(Json(service(&engine)?.search(request).await?))
}

#[utoipa::path(post, path = "/api/search/reindex",
    responses((status = 200, body = ReindexReport), (status = 503, body = ApiError)))]
async fn reindex(State(engine): State<AppState>) -> Result<Json<ReindexReport>> {
    let report = service(&engine)?.rebuild().await?;
    tracing::info!(
        projects = report.projects,
        items = report.items,
        "search index rebuilt on request"
    );
    Ok(Json(report))
}
