//! Health, readiness, Prometheus metrics and the model list.

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpResponse, get, web};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::middleware::HttpMetrics;
use crate::state::AppState;
use crate::views::{Health, Model, ModelList};

/// Liveness: the process answers.
#[utoipa::path(
    tag = "system",
    responses((status = 200, description = "Alive", body = Health))
)]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"status":"ok"}"#)
}

/// Readiness: the store answers (and the process is not shutting down).
#[utoipa::path(
    tag = "system",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "Store unreachable or shutting down", body = ErrorBody),
    )
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> Result<web::Json<Health>, ApiError> {
    if state.shutdown.is_cancelled() {
        return Err(ApiError::unavailable("shutting down"));
    }
    state.engine.ping().await.map_err(|err| {
        tracing::warn!(error = %err, "readiness check failed");
        ApiError::unavailable("the job store is unreachable")
    })?;
    Ok(web::Json(Health {
        status: "ok".to_owned(),
    }))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

/// Prometheus metrics: engine counters, HTTP counters, and store gauges computed now.
#[utoipa::path(
    tag = "system",
    responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text", body = String))
)]
#[get("/metrics")]
pub async fn metrics(
    state: web::Data<AppState>,
    http: web::Data<HttpMetrics>,
) -> Result<HttpResponse, ApiError> {
    let store = store_registry(&state).await;
    let mut text = String::new();
    encode_registry(&mut text, state.engine.metrics().registry())
        .and_then(|()| encode_registry(&mut text, http.registry()))
        .and_then(|()| encode_registry(&mut text, &store))
        .and_then(|()| encode_eof(&mut text))
        .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .insert_header((
            CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ))
        .body(text))
}

async fn store_registry(state: &AppState) -> Registry {
    let mut registry = Registry::with_prefix("nosyntask");
    let up = Gauge::<i64>::default();
    registry.register(
        "store_up",
        "Whether the store answered this scrape",
        up.clone(),
    );
    let reads = Counter::<u64>::default();
    reads.inc_by(state.reads.fetches());
    registry.register(
        "job_reads",
        "Whole-job reads this process made (polls, event streams), after coalescing",
        reads,
    );
    let webhooks = crate::webhooks::counts();
    for (name, help, value) in [
        (
            "watch_polls",
            "Version polls of the jobs this process's event streams follow (one per tick)",
            state.watch.polls(),
        ),
        (
            "watch_reads",
            "Whole reads of followed jobs whose version moved (one per change, any watcher count)",
            state.watch.change_reads(),
        ),
        (
            "hook_failures",
            "Completion hook events that failed in this process (their writes rolled back, the results kept)",
            state.outbox.hook_failures(),
        ),
        (
            "webhook_deliveries",
            "Webhook deliveries this process made that the receiver accepted",
            webhooks.delivered,
        ),
        (
            "webhook_attempts_failed",
            "Webhook attempts of this process that failed (retried later, or given up on)",
            webhooks.failed,
        ),
        (
            "webhook_deliveries_given_up",
            "Webhook deliveries this process gave up on after their retry period",
            webhooks.given_up,
        ),
    ] {
        let counter = Counter::<u64>::default();
        counter.inc_by(value);
        registry.register(name, help, counter);
    }
    let watched = Gauge::<i64>::default();
    watched.set(i64::try_from(state.watch.watched()).unwrap_or(i64::MAX));
    registry.register(
        "watched_jobs",
        "Jobs followed by this process's event streams",
        watched,
    );
    let stats = match state.engine.queue_stats().await {
        Ok(stats) => stats,
        Err(err) => {
            tracing::warn!(error = %err, "store stats failed");
            return registry;
        }
    };
    up.set(1);
    let queue = Family::<StateLabel, Gauge>::default();
    for (label, value) in [("ready", stats.ready), ("scheduled", stats.scheduled)] {
        queue
            .get_or_create(&StateLabel {
                state: label.to_owned(),
            })
            .set(i64::try_from(value).unwrap_or(i64::MAX));
    }
    registry.register(
        "queue_depth",
        "Pending tasks: ready to claim now, or scheduled for a later retry",
        queue,
    );
    let running = Gauge::<i64>::default();
    running.set(i64::try_from(stats.running).unwrap_or(i64::MAX));
    registry.register("running_tasks", "Tasks running in any process", running);
    // Active statuses only: counting finished jobs would cost as much as the history kept.
    let jobs = Family::<StatusLabel, Gauge>::default();
    for status in [
        nosyntask_domain::JobStatus::Pending,
        nosyntask_domain::JobStatus::Running,
    ] {
        let count = stats
            .jobs_by_status
            .get(status.as_str())
            .copied()
            .unwrap_or(0);
        jobs.get_or_create(&StatusLabel {
            status: status.as_str().to_owned(),
        })
        .set(i64::try_from(count).unwrap_or(i64::MAX));
    }
    registry.register("jobs", "Active jobs in the store by status", jobs);
    model_gauges(&mut registry, state).await;
    registry
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabel {
    model: String,
}

/// Per limited model: tasks running in any process, the limit, and whether it is paused.
async fn model_gauges(registry: &mut Registry, state: &AppState) {
    let now = state.engine.clock().now();
    let usage = match state.engine.model_usage().await {
        Ok(usage) => usage,
        Err(err) => {
            tracing::warn!(error = %err, "model usage failed");
            return;
        }
    };
    let running = Family::<ModelLabel, Gauge>::default();
    let limit = Family::<ModelLabel, Gauge>::default();
    let paused = Family::<ModelLabel, Gauge>::default();
    for model in &usage {
        let label = ModelLabel {
            model: model.name.clone(),
        };
        running.get_or_create(&label).set(i64::from(model.running));
        limit
            .get_or_create(&label)
            .set(i64::from(model.max_concurrency));
        let left = model
            .paused_until
            .map_or(0, |until| (until - now).num_milliseconds().max(0));
        paused.get_or_create(&label).set(left);
    }
    registry.register(
        "model_running_tasks",
        "Tasks of a limited model running in any process",
        running,
    );
    registry.register(
        "model_max_concurrency",
        "Cluster-wide concurrency limit of a model",
        limit,
    );
    registry.register(
        "model_paused_remaining_ms",
        "Milliseconds left of a model's pause after a provider's 429 (0: not paused)",
        paused,
    );
}

/// Lists the configured models (never their keys).
#[utoipa::path(
    tag = "models",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The models", body = ModelList),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
    )
)]
#[get("/api/models")]
pub async fn models(_caller: Caller, state: web::Data<AppState>) -> web::Json<ModelList> {
    // Usage is extra: a store that does not answer still leaves the list.
    let usage = match state.engine.model_usage().await {
        Ok(usage) => usage,
        Err(err) => {
            tracing::warn!(error = %err, "model usage failed");
            Vec::new()
        }
    };
    let models = state
        .models
        .list()
        .iter()
        .map(|info| Model::from(info).with_usage(usage.iter().find(|u| u.name == info.name)))
        .collect();
    web::Json(ModelList { models })
}
