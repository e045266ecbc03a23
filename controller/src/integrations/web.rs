//! HTTP routes of the integrations: target status, messages and manual retry, drawing
//! requests, reconciliation reports, the trade codes and evaluation records of a project, and
//! the UI page.

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use utoipa::OpenApi;
use witness_schemas::api::ApiError;
use witness_schemas::integration::{
    data_sets, Bidder, Candidate, DataSet, DrawRequestOrder, Enqueued, EvaluationRecord,
    ExpertScore, ExtractionOrder, MessageState, NewBidder, NewSmsNotice, OutboxMessage,
    ReconciliationLine, ReconciliationReport, SmsDeliveryReport, SmsNoticeKind, SmsNoticeResult,
    TargetStatus, TradeCodes, EXPERT_LIBRARY,
};

use crate::auth::Principal;
use crate::error::Result;
use crate::web::{AppState, JsonBody};
use crate::{bail, err};

#[derive(OpenApi)]
#[openapi(
    paths(
        list_targets,
        list_messages,
        retry_message,
        draw_requests,
        list_data_sets,
        extract,
        list_reports,
        get_report,
        make_report,
        get_trade_codes,
        put_trade_codes,
        add_record,
        list_bidders,
        add_bidder,
        send_sms_notice,
        list_sms_deliveries,
        resend_sms
    ),
    components(schemas(
        TargetStatus,
        OutboxMessage,
        MessageState,
        DrawRequestOrder,
        Enqueued,
        DataSet,
        ExtractionOrder,
        ReconciliationReport,
        ReconciliationLine,
        TradeCodes,
        EvaluationRecord,
        ExpertScore,
        Candidate,
        Bidder,
        NewBidder,
        NewSmsNotice,
        SmsNoticeKind,
        SmsNoticeResult,
        SmsDeliveryReport
    ))
)]
pub struct IntegrationsApiDoc;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/integrations", get(list_targets))
        .route("/api/integrations/{target}/messages", get(list_messages))
        .route("/api/integrations/messages/{id}/retry", post(retry_message))
        .route(
            "/api/integrations/{target}/draw-requests",
            post(draw_requests),
        )
        .route("/api/integrations/{target}/data-sets", get(list_data_sets))
        .route("/api/integrations/{target}/extractions", post(extract))
        .route("/api/integrations/{target}/reports", get(list_reports))
        .route(
            "/api/integrations/{target}/reports/{day}",
            get(get_report).post(make_report),
        )
        .route(
            "/api/projects/{number}/trade-codes",
            get(get_trade_codes).put(put_trade_codes),
        )
        .route(
            "/api/projects/{number}/evaluation-records",
            post(add_record),
        )
        .route(
            "/api/projects/{number}/bidders",
            get(list_bidders).post(add_bidder),
        )
        .route("/api/projects/{number}/sms-notices", post(send_sms_notice))
        .route("/api/integrations/sms/deliveries", get(list_sms_deliveries))
        .route(
            "/api/integrations/sms/messages/{id}/resend",
            post(resend_sms),
        )
}

#[utoipa::path(get, path = "/api/integrations", responses((status = 200, body = [TargetStatus])))]
async fn list_targets(State(engine): State<AppState>) -> Result<Json<Vec<TargetStatus>>> {
    Ok(Json(
        super::status(&engine.pool, &engine.settings.config.integrations).await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
struct MessageQuery {
    /// pending, sent, acked or dead.
    state: Option<String>,
    limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/integrations/{target}/messages",
    params(("target" = String, Path, description = "对接目标，如 expert_library"), MessageQuery),
    responses((status = 200, body = [OutboxMessage]), (status = 404, body = ApiError)))]
async fn list_messages(
    State(engine): State<AppState>,
    Path(target): Path<String>,
    Query(query): Query<MessageQuery>,
) -> Result<Json<Vec<OutboxMessage>>> {
    super::check_target(&target)?;
    let state = match query.state.as_deref() {
        None | Some("") => None,
        Some(text) => Some(MessageState::parse(text).ok_or_else(|| {
            err!(
                InvalidArgument,
                "状态 {text:?} 须为 pending、sent、acked 或 dead"
            )
        })?),
    };
    Ok(Json(
        super::outbox::messages(&engine.pool, &target, state, query.limit.unwrap_or(200)).await?,
    ))
}

#[utoipa::path(post, path = "/api/integrations/messages/{id}/retry",
    params(("id" = i64, Path, description = "消息编号")),
    responses((status = 200, body = OutboxMessage), (status = 404, body = ApiError), (status = 409, body = ApiError)))]
async fn retry_message(
    State(engine): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<OutboxMessage>> {
    let id: i64 = id
        .parse()
        .map_err(|_| err!(InvalidArgument, "消息编号 {id:?} 不是数字"))?;
    let message = super::outbox::retry(&engine.pool, id, engine.clock.now()).await?;
    super::wake();
    Ok(Json(message))
}

#[utoipa::path(post, path = "/api/integrations/{target}/draw-requests", request_body = DrawRequestOrder,
    params(("target" = String, Path, description = "expert_library")),
    responses((status = 201, body = Enqueued), (status = 400, body = ApiError), (status = 404, body = ApiError)))]
async fn draw_requests(
    State(engine): State<AppState>,
    Path(target): Path<String>,
    JsonBody(order): JsonBody<DrawRequestOrder>,
) -> Result<Response> {
    super::check_target(&target)?;
    if target != EXPERT_LIBRARY {
        bail!(
            InvalidArgument,
            "专家抽取申请只发往专家库 ({EXPERT_LIBRARY})"
        );
    }
    let now = engine.clock.now();
    let ids = super::enqueue_draw_requests(
        &engine.pool,
        super::today(engine.clock.as_ref()),
        order.project_number.as_deref(),
        order.expert_count,
        now,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(Enqueued { message_ids: ids })).into_response())
}

#[utoipa::path(get, path = "/api/integrations/{target}/data-sets",
    params(("target" = String, Path, description = "supervision_platform 或 finance_bureau")),
    responses((status = 200, body = [DataSet]), (status = 404, body = ApiError)))]
async fn list_data_sets(Path(target): Path<String>) -> Result<Json<Vec<DataSet>>> {
    super::check_target(&target)?;
    Ok(Json(data_sets(&target)))
}

#[utoipa::path(post, path = "/api/integrations/{target}/extractions", request_body = ExtractionOrder,
    params(("target" = String, Path, description = "supervision_platform 或 finance_bureau")),
    responses((status = 201, body = Enqueued), (status = 400, body = ApiError), (status = 404, body = ApiError),
        (status = 409, body = ApiError, description = "尚不支持的数据集，或项目不符")))]
async fn extract(
    State(engine): State<AppState>,
    Path(target): Path<String>,
    JsonBody(order): JsonBody<ExtractionOrder>,
) -> Result<Response> {
    super::check_target(&target)?;
    let ids = super::extract::extract(
        &engine.pool,
        &target,
        order.data_set.trim(),
        order.project_number.trim(),
        engine.clock.now(),
    )
    .await?;
    super::wake();
    Ok((StatusCode::CREATED, Json(Enqueued { message_ids: ids })).into_response())
}

#[utoipa::path(get, path = "/api/integrations/{target}/reports",
    params(("target" = String, Path, description = "expert_library")),
    responses((status = 200, body = [String])))]
async fn list_reports(
    State(engine): State<AppState>,
    Path(target): Path<String>,
) -> Result<Json<Vec<String>>> {
    super::check_target(&target)?;
    Ok(Json(super::reconcile::days(&engine.pool, &target).await?))
}

#[utoipa::path(get, path = "/api/integrations/{target}/reports/{day}",
    params(("target" = String, Path, description = "expert_library"), ("day" = String, Path, description = "YYYY-MM-DD")),
    responses((status = 200, body = ReconciliationReport), (status = 404, body = ApiError)))]
async fn get_report(
    State(engine): State<AppState>,
    Path((target, day)): Path<(String, String)>,
) -> Result<Response> {
    super::check_target(&target)?;
    let day = super::reconcile::parse_day(&day)?;
    let row: Option<(String,)> =
        sqlx::query_as("SELECT report FROM reconciliation_reports WHERE target = ? AND day = ?")
            .bind(&target)
            .bind(day.to_string())
            .fetch_optional(&engine.pool)
            .await?;
    let Some((report,)) = row else {
        bail!(NotFound, "没有 {day} 的对账报告（POST 同一地址可生成）");
    };
    Ok(([(header::CONTENT_TYPE, "application/json")], report).into_response())
}

#[utoipa::path(post, path = "/api/integrations/{target}/reports/{day}",
    params(("target" = String, Path, description = "expert_library"), ("day" = String, Path, description = "YYYY-MM-DD")),
    responses((status = 201, body = ReconciliationReport), (status = 400, body = ApiError)))]
async fn make_report(
    State(engine): State<AppState>,
    Path((target, day)): Path<(String, String)>,
) -> Result<Response> {
    super::check_target(&target)?;
    let day = super::reconcile::parse_day(&day)?;
    let report = super::reconcile::generate(
        &engine.pool,
        &engine.settings.data_dir,
        &target,
        day,
        engine.clock.now(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(report)).into_response())
}

#[utoipa::path(get, path = "/api/projects/{number}/trade-codes", params(("number" = String, Path, description = "项目编号")),
    responses((status = 200, body = TradeCodes), (status = 404, body = ApiError)))]
async fn get_trade_codes(
    State(engine): State<AppState>,
    Path(number): Path<String>,
) -> Result<Json<TradeCodes>> {
    Ok(Json(super::trade_codes(&engine.pool, &number).await?))
}

#[utoipa::path(put, path = "/api/projects/{number}/trade-codes", request_body = TradeCodes,
    params(("number" = String, Path, description = "项目编号")),
    responses((status = 200, body = TradeCodes), (status = 400, body = ApiError), (status = 404, body = ApiError)))]
async fn put_trade_codes(
    State(engine): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(number): Path<String>,
    JsonBody(codes): JsonBody<TradeCodes>,
) -> Result<Json<TradeCodes>> {
    Ok(Json(
        super::set_trade_codes(
            &engine.pool,
            &number,
            &codes,
            &principal.username,
            engine.clock.now(),
        )
        .await?,
    ))
}

#[utoipa::path(post, path = "/api/projects/{number}/evaluation-records", request_body = EvaluationRecord,
    params(("number" = String, Path, description = "项目编号")),
    responses((status = 201, body = Enqueued), (status = 400, body = ApiError), (status = 404, body = ApiError)))]
async fn add_record(
    State(engine): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(number): Path<String>,
    JsonBody(record): JsonBody<EvaluationRecord>,
) -> Result<Response> {
    let id = super::add_record(
        &engine.pool,
        &number,
        &record,
        &principal.username,
        engine.clock.now(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(Enqueued {
            message_ids: vec![id],
        }),
    )
        .into_response())
}

#[utoipa::path(get, path = "/api/projects/{number}/bidders", params(("number" = String, Path, description = "项目编号")),
    responses((status = 200, body = [Bidder]), (status = 404, body = ApiError)))]
async fn list_bidders(
    State(engine): State<AppState>,
    Path(number): Path<String>,
) -> Result<Json<Vec<Bidder>>> {
    Ok(Json(super::sms::bidders(&engine.pool, &number).await?))
}

#[utoipa::path(post, path = "/api/projects/{number}/bidders", request_body = NewBidder,
    params(("number" = String, Path, description = "项目编号")),
    responses((status = 201, body = Bidder), (status = 400, body = ApiError), (status = 409, body = ApiError)))]
async fn add_bidder(
    State(engine): State<AppState>,
    Path(number): Path<String>,
    JsonBody(new): JsonBody<NewBidder>,
) -> Result<Response> {
    let bidder = super::sms::add_bidder(&engine.pool, &number, &new, engine.clock.now()).await?;
    Ok((StatusCode::CREATED, Json(bidder)).into_response())
}

#[utoipa::path(post, path = "/api/projects/{number}/sms-notices", request_body = NewSmsNotice,
    params(("number" = String, Path, description = "项目编号")),
    responses((status = 201, body = SmsNoticeResult), (status = 400, body = ApiError), (status = 409, body = ApiError)))]
async fn send_sms_notice(
    State(engine): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(number): Path<String>,
    JsonBody(notice): JsonBody<NewSmsNotice>,
) -> Result<Response> {
    let result = super::sms::send_notice(
        &engine.pool,
        engine.settings.config.integrations.sms.as_ref(),
        &number,
        &notice,
        &principal.username,
        engine.clock.now(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(result)).into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
struct DeliveryQuery {
    /// true: only the SMS whose delivery report says the handset did not get them.
    failed: Option<bool>,
    limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/integrations/sms/deliveries", params(DeliveryQuery),
    responses((status = 200, body = [SmsDeliveryReport])))]
async fn list_sms_deliveries(
    State(engine): State<AppState>,
    Query(query): Query<DeliveryQuery>,
) -> Result<Json<Vec<SmsDeliveryReport>>> {
    Ok(Json(
        super::sms::deliveries(
            &engine.pool,
            query.failed.unwrap_or(false),
            query.limit.unwrap_or(100),
        )
        .await?,
    ))
}

#[utoipa::path(post, path = "/api/integrations/sms/messages/{id}/resend",
    params(("id" = i64, Path, description = "回执失败的短信消息编号")),
    responses((status = 201, body = OutboxMessage), (status = 404, body = ApiError), (status = 409, body = ApiError)))]
async fn resend_sms(
    State(engine): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response> {
    let id: i64 = id
        .parse()
        .map_err(|_| err!(InvalidArgument, "消息编号 {id:?} 不是数字"))?;
    let message =
        super::sms::resend(&engine.pool, id, &principal.username, engine.clock.now()).await?;
    Ok((StatusCode::CREATED, Json(message)).into_response())
}
