//! `GET /api/admin/series`: per-model throughput, latency, failures and spend over time, for the
//! console's charts. Columns of equal length, one value per time bucket, as a chart library
//! takes them; read from the store, so they cover every process sharing the database.

use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::{get, web};
use chrono::{DateTime, Utc};
use nosyntask_engine::ports::ModelBucket;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::views::timestamp;

/// Buckets per window, whatever its length.
const BUCKETS: i64 = 30;
const DEFAULT_MINUTES: i64 = 60;
const MAX_MINUTES: i64 = 7 * 24 * 60;
const MIN_MINUTES: i64 = 5;

/// The query of the series.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SeriesParams {
    /// The window, in minutes up to now: 5–10080, default 60. It is cut into 30 buckets.
    #[param(value_type = Option<i64>, minimum = 5, maximum = 10080)]
    minutes: Option<String>,
}

/// Each model's finished tasks per time bucket.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelSeries {
    /// When the figures were read (RFC 3339 UTC).
    pub generated_at: String,
    /// The length of one bucket, in seconds.
    pub bucket_secs: i64,
    /// Each bucket's start (RFC 3339 UTC), oldest first; the last one holds now.
    pub buckets: Vec<String>,
    /// One entry per model that finished a task in the window, the busiest first.
    pub models: Vec<ModelColumns>,
}

/// One model's figures, a value per bucket of [`ModelSeries::buckets`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelColumns {
    /// The model; `null` for steps that named none.
    pub name: Option<String>,
    /// Tasks completed.
    pub completed: Vec<u64>,
    /// Tasks failed for good (their retries used up, or a permanent error).
    pub failed: Vec<u64>,
    /// Mean run time of the completed tasks' last attempts, in milliseconds (`null`: none
    /// completed).
    pub mean_ms: Vec<Option<u64>>,
    /// What the completed tasks' calls cost, in millionths of the prices' currency.
    pub cost_micros: Vec<u64>,
}

/// Per-model throughput, latency, failures and spend over time (admins).
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    params(SeriesParams),
    responses(
        (status = 200, description = "The series", body = ModelSeries),
        (status = 400, description = "`minutes` is not a whole number from 5 to 10080", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "The token's role is not admin", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
#[get("/api/admin/series")]
pub async fn model_series(
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<SeriesParams>,
) -> Result<web::Json<ModelSeries>, ApiError> {
    caller.require_admin()?;
    let minutes = minutes_of(query.minutes.as_deref())?;
    let bucket_ms = minutes * 60_000 / BUCKETS;
    let now = state.engine.clock().now();
    // Whole buckets, the last one holding now: a chart's points do not shift between reads.
    let last = now.timestamp_millis().div_euclid(bucket_ms);
    let first = last - BUCKETS + 1;
    let since = DateTime::<Utc>::from_timestamp_millis(first * bucket_ms).unwrap_or(now);
    let rows = state
        .engine
        .model_series(since, Duration::from_millis(bucket_ms as u64))
        .await
        .map_err(|err| {
            tracing::warn!(error = %err, "model series failed");
            ApiError::unavailable("the job store is unavailable; try again shortly")
        })?;
    Ok(web::Json(ModelSeries {
        generated_at: timestamp(now),
        bucket_secs: bucket_ms / 1000,
        buckets: (first..=last)
            .map(|b| timestamp(DateTime::from_timestamp_millis(b * bucket_ms).unwrap_or(now)))
            .collect(),
        models: columns(&rows, first, bucket_ms),
    }))
}

fn minutes_of(raw: Option<&str>) -> Result<i64, ApiError> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_MINUTES);
    };
    match raw.parse::<i64>() {
        Ok(m) if (MIN_MINUTES..=MAX_MINUTES).contains(&m) => Ok(m),
        _ => Err(ApiError::bad_request(
            "invalid_query",
            format!("minutes: a whole number from {MIN_MINUTES} to {MAX_MINUTES}, got `{raw}`"),
        )
        .zh(format!(
            "minutes：应为 {MIN_MINUTES} 到 {MAX_MINUTES} 之间的整数，实际为“{raw}”"
        ))),
    }
}

/// The store's buckets as one column per figure and model; the busiest model first.
fn columns(rows: &[ModelBucket], first: i64, bucket_ms: i64) -> Vec<ModelColumns> {
    let len = BUCKETS as usize;
    let mut models: BTreeMap<Option<String>, ModelColumns> = BTreeMap::new();
    for row in rows {
        let Ok(at) = usize::try_from(row.bucket_start.timestamp_millis() / bucket_ms - first)
        else {
            continue;
        };
        if at >= len {
            continue;
        }
        let model = models
            .entry(row.model_name.clone())
            .or_insert_with(|| ModelColumns {
                name: row.model_name.clone(),
                completed: vec![0; len],
                failed: vec![0; len],
                mean_ms: vec![None; len],
                cost_micros: vec![0; len],
            });
        // The store gives one row per model and bucket.
        model.completed[at] = row.completed;
        model.failed[at] = row.failed;
        model.cost_micros[at] = row.cost_micros;
        model.mean_ms[at] = (row.completed > 0).then(|| row.completed_ms / row.completed);
    }
    let mut models: Vec<ModelColumns> = models.into_values().collect();
    let busy = |m: &ModelColumns| m.completed.iter().chain(&m.failed).sum::<u64>();
    models.sort_by(|a, b| busy(b).cmp(&busy(a)).then(a.name.cmp(&b.name)));
    models
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_become_columns_of_the_window() {
        let bucket_ms = 120_000;
        let first = 1_000;
        let at = |b: i64| DateTime::from_timestamp_millis(b * bucket_ms).unwrap();
        let rows = vec![
            ModelBucket {
                model_name: Some("img".into()),
                bucket_start: at(first),
                completed: 2,
                completed_ms: 5_000,
                cost_micros: 80_000,
                ..ModelBucket::default()
            },
            ModelBucket {
                model_name: Some("txt".into()),
                bucket_start: at(first + 29),
                failed: 1,
                ..ModelBucket::default()
            },
            ModelBucket {
                model_name: Some("img".into()),
                bucket_start: at(first + 2),
                completed: 1,
                completed_ms: 900,
                ..ModelBucket::default()
            },
        ];
        let columns = columns(&rows, first, bucket_ms);
        assert_eq!(columns.len(), 2);
        let img = &columns[0];
        assert_eq!(img.name.as_deref(), Some("img"));
        assert_eq!(&img.completed[..3], &[2, 0, 1]);
        assert_eq!(&img.mean_ms[..3], &[Some(2_500), None, Some(900)]);
        assert_eq!(img.cost_micros[0], 80_000);
        assert_eq!(img.completed.len(), 30);
        assert_eq!(columns[1].failed[29], 1);
        assert_eq!(columns[1].mean_ms[29], None);
    }

    #[test]
    fn minutes_are_checked() {
        assert_eq!(minutes_of(None).unwrap(), 60);
        assert_eq!(minutes_of(Some("1440")).unwrap(), 1440);
        for bad in ["4", "10081", "1.5", "x", ""] {
            assert!(minutes_of(Some(bad)).is_err(), "{bad}");
        }
    }
}
