//! The webhook delivery log for admins (`GET /api/admin/webhooks/deliveries`) and redelivery
//! (`POST /api/admin/webhooks/deliveries/{deliveryId}/redeliver`). The log is the store's
//! outbox, so it covers every process that shares the database.

use actix_web::{get, post, web};
use nosyntask_store::{DeliveryStatus, OutboxDelivery, OutboxFilter};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::routes::workflows::{limit_of, optional_id};
use crate::state::AppState;
use crate::views::timestamp;

/// Deliveries of a page when no limit is given.
const DEFAULT_LIMIT: u64 = 50;

/// One event for one endpoint, and how its delivery went.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// The delivery id; sent as `webhook-id: msg_<id>`, the same on every attempt.
    pub id: i64,
    /// The endpoint's name (`[[webhooks]] name`, default its URL).
    pub webhook: String,
    /// `step.completed`, `step.failed`, `job.completed`, `job.failed` or `job.cancelled`.
    pub event: String,
    pub job_id: i64,
    pub task_id: Option<i64>,
    /// `pending` (due at `nextAttemptAt`), `delivered` or `failed` (given up on).
    #[schema(pattern = "^(pending|delivered|failed)$")]
    pub status: String,
    pub attempts: i32,
    #[schema(format = DateTime)]
    pub next_attempt_at: String,
    /// Why the last attempt did not count (`HTTP 503`, a connection error).
    pub last_error: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub delivered_at: Option<String>,
    /// The body that is sent: `{type, timestamp, data}`.
    #[schema(value_type = Object)]
    pub payload: Value,
}

impl From<OutboxDelivery> for Delivery {
    fn from(d: OutboxDelivery) -> Self {
        Delivery {
            id: d.id,
            webhook: d.subscriber,
            event: d.event,
            job_id: d.job_id,
            task_id: d.task_id,
            status: d.status.as_str().to_owned(),
            attempts: d.attempts,
            next_attempt_at: timestamp(d.next_attempt_at),
            last_error: d.last_error,
            created_at: timestamp(d.created_at),
            delivered_at: d.delivered_at.map(timestamp),
            payload: d.payload,
        }
    }
}

/// A page of the delivery log, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DeliveryList {
    pub deliveries: Vec<Delivery>,
}

/// Filters of the delivery log.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    /// Only this endpoint's deliveries (its name).
    webhook: Option<String>,
    /// Only this job's.
    #[param(value_type = Option<i64>)]
    job_id: Option<String>,
    /// Only deliveries in this status.
    #[param(pattern = "^(pending|delivered|failed)$")]
    status: Option<String>,
    /// 1–200, default 50.
    #[param(value_type = Option<u64>, minimum = 1, maximum = 200)]
    limit: Option<String>,
}

fn status_of(raw: Option<&str>) -> Result<Option<DeliveryStatus>, ApiError> {
    let Some(text) = raw else {
        return Ok(None);
    };
    text.parse().map(Some).map_err(|()| {
        ApiError::bad_request(
            "invalid_query",
            format!("status: unknown status `{text}` (pending, delivered, failed)"),
        )
        .zh(format!(
            "status：未知状态“{text}”（可选 pending、delivered、failed）"
        ))
    })
}

fn unavailable(err: nosyntask_engine::StoreError) -> ApiError {
    match err {
        nosyntask_engine::StoreError::NotFound(id) => {
            ApiError::not_found(format!("no webhook delivery {id}"))
        }
        err => {
            tracing::warn!(error = %err, "webhook delivery log failed");
            ApiError::unavailable("the job store is unavailable; try again shortly")
        }
    }
}

/// The webhook delivery log, newest first: every event for every endpoint, with its attempts
/// and last error.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    params(DeliveryParams),
    responses(
        (status = 200, description = "The deliveries", body = DeliveryList),
        (status = 400, description = "A query parameter is invalid", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "The token's role is not admin", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
#[get("/api/admin/webhooks/deliveries")]
pub async fn webhook_deliveries(
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<DeliveryParams>,
) -> Result<web::Json<DeliveryList>, ApiError> {
    caller.require_admin()?;
    let query = query.into_inner();
    let filter = OutboxFilter {
        subscriber: query.webhook.filter(|w| !w.is_empty()),
        job_id: optional_id("jobId", query.job_id.as_deref())?,
        status: status_of(query.status.as_deref())?,
        limit: limit_of(query.limit.as_deref(), DEFAULT_LIMIT)?,
    };
    // No endpoint has such a name (names are checked at start-up); PostgreSQL cannot even
    // compare text holding NUL.
    let impossible = filter
        .subscriber
        .as_ref()
        .is_some_and(|w| w.contains('\0') || w.chars().count() > 64);
    let deliveries = if impossible {
        Vec::new()
    } else {
        state
            .outbox
            .list_outbox(&filter)
            .await
            .map_err(unavailable)?
    };
    Ok(web::Json(DeliveryList {
        deliveries: deliveries.into_iter().map(Delivery::from).collect(),
    }))
}

/// Sends a delivery again, delivered or given up on, with the same delivery id: it is pending
/// and due now (after the job's earlier pending events, to keep their order).
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    params(("deliveryId" = i64, Path, description = "Delivery id")),
    responses(
        (status = 200, description = "The delivery, pending again", body = Delivery),
        (status = 400, description = "The delivery id is not an integer", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "The token's role is not admin", body = ErrorBody),
        (status = 404, description = "No such delivery", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
#[post("/api/admin/webhooks/deliveries/{deliveryId}/redeliver")]
pub async fn redeliver(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> Result<web::Json<Delivery>, ApiError> {
    caller.require_admin()?;
    let now = state.engine.clock().now();
    let delivery = state
        .outbox
        .redeliver(path.into_inner(), now)
        .await
        .map_err(unavailable)?;
    Ok(web::Json(delivery.into()))
}
