//! Task activity for the console: tasks in flight and tasks finished recently, grouped by model,
//! task type, status and attempts.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use nosyntask_domain::{TaskStatus, TaskUsage};
use nosyntask_engine::StoreError;
use nosyntask_engine::ports::{ModelBucket, TaskActivity};
use sea_orm::sea_query::Expr;
use sea_orm::sea_query::ExprTrait;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, QueryFilter,
    QuerySelect, SelectModel, Selector,
};

use crate::entities::generation_tasks;
use crate::query::{status_in, status_is};

use crate::error::retrying;
use crate::sql::{col, ms, parse_status, stmt, time};
use crate::store::Store;

/// One group of [`task_activity`](Store::task_activity_impl)'s counts.
#[derive(Debug, FromQueryResult)]
struct ActivityRow {
    model_name: Option<String>,
    task_type: String,
    status: String,
    attempts: i32,
    tasks: i64,
}

/// The tasks matching `condition` grouped by model, task type, status and attempts. Grouping by
/// `attempts` instead of summing it keeps the column types the same on every backend (MySQL's
/// SUM is a DECIMAL).
fn activity_groups(condition: Condition) -> Selector<SelectModel<ActivityRow>> {
    use generation_tasks::Column as T;
    generation_tasks::Entity::find()
        .select_only()
        .columns([T::ModelName, T::TaskType, T::Status, T::Attempts])
        .column_as(Expr::col(T::Id).count(), "tasks")
        .filter(condition)
        .group_by(T::ModelName)
        .group_by(T::TaskType)
        .group_by(T::Status)
        .group_by(T::Attempts)
        .into_model()
}

impl Store {
    pub(crate) async fn task_activity_impl(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<TaskActivity>, StoreError> {
        use generation_tasks::Column as T;
        // Two halves so each is served by an index: in-flight tasks by
        // `ix_generation_tasks_claim` (status, ready_at), finished ones by
        // `ix_generation_tasks_completed`. A pending task without a ready time is a later step
        // waiting for an earlier one (or for a resume), not queued work.
        let in_flight = || {
            Condition::any()
                .add(
                    Condition::all()
                        .add(status_is(T::Status, "pending"))
                        .add(T::ReadyAt.is_not_null()),
                )
                .add(status_is(T::Status, "running"))
        };
        let finished = || {
            Condition::all()
                .add(T::CompletedAt.gte(ms(since)))
                .add(status_in(T::Status, &["completed", "failed", "cancelled"]))
        };
        retrying(|| async {
            let read = &self.inner.read;
            let mut rows = activity_groups(in_flight()).all(read).await?;
            rows.extend(activity_groups(finished()).all(read).await?);
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let status = parse_status::<TaskStatus>(&row.status)?;
                out.push(TaskActivity {
                    model_name: row.model_name,
                    task_type: row.task_type,
                    status,
                    attempts: row.attempts,
                    tasks: u64::try_from(row.tasks).unwrap_or_default(),
                });
            }
            out.sort_by(|a, b| {
                (&a.model_name, &a.task_type, a.status.as_str(), a.attempts).cmp(&(
                    &b.model_name,
                    &b.task_type,
                    b.status.as_str(),
                    b.attempts,
                ))
            });
            Ok(out)
        })
        .await
    }
}

/// Finished tasks per model, status and bucket (`completed_at` divided by the bucket length),
/// with their last attempts' run time added up; served by `ix_generation_tasks_completed`.
fn series_sql(backend: DbBackend) -> String {
    // MySQL's `/` is a decimal division and its SUM a DECIMAL; PostgreSQL's SUM of bigints is a
    // numeric. Each is brought back to a 64-bit integer.
    let (div, int) = match backend {
        DbBackend::MySql => ("DIV", "SIGNED"),
        _ => ("/", "BIGINT"),
    };
    format!(
        "SELECT model_name, status, completed_at {div} ? AS bucket, COUNT(*), \
         CAST(SUM(CASE WHEN attempt_started_at IS NULL THEN 0 \
         ELSE completed_at - attempt_started_at END) AS {int}) \
         FROM generation_tasks WHERE completed_at >= ? AND status IN ('completed', 'failed') \
         GROUP BY model_name, status, bucket"
    )
}

/// The usage of the completed tasks that recorded one (calls of a priced or metered model);
/// `t.usage`, as USAGE is a reserved word of MySQL.
fn cost_sql(backend: DbBackend) -> String {
    let div = if backend == DbBackend::MySql {
        "DIV"
    } else {
        "/"
    };
    format!(
        "SELECT t.completed_at {div} ?, t.usage FROM generation_tasks t \
         WHERE t.completed_at >= ? AND t.status = 'completed' AND t.usage IS NOT NULL"
    )
}

impl Store {
    pub(crate) async fn model_series_impl(
        &self,
        since: DateTime<Utc>,
        bucket: Duration,
    ) -> Result<Vec<ModelBucket>, StoreError> {
        let bucket_ms = std::cmp::max(i64::try_from(bucket.as_millis()).unwrap_or(i64::MAX), 1);
        let backend = self.backend();
        retrying(|| async {
            let values = || vec![bucket_ms.into(), ms(since).into()];
            let rows = self
                .inner
                .read
                .query_all_raw(stmt(backend, &series_sql(backend), values()))
                .await?;
            let mut out: BTreeMap<(i64, Option<String>), ModelBucket> = BTreeMap::new();
            for row in &rows {
                let model: Option<String> = col(row, 0)?;
                let status: String = col(row, 1)?;
                let bucket: i64 = col(row, 2)?;
                let tasks = u64::try_from(col::<i64>(row, 3)?).unwrap_or_default();
                let run_ms = u64::try_from(col::<i64>(row, 4)?).unwrap_or_default();
                let entry = entry(&mut out, bucket, bucket_ms, model);
                if status == TaskStatus::Completed.as_str() {
                    entry.completed += tasks;
                    entry.completed_ms += run_ms;
                } else {
                    entry.failed += tasks;
                }
            }
            let rows = self
                .inner
                .read
                .query_all_raw(stmt(backend, &cost_sql(backend), values()))
                .await?;
            for row in &rows {
                let bucket: i64 = col(row, 0)?;
                let usage: String = col(row, 1)?;
                // A usage this version cannot read costs nothing here rather than failing the chart.
                let Ok(usage) = serde_json::from_str::<TaskUsage>(&usage) else {
                    continue;
                };
                for (model, used) in usage.models {
                    if let Some(cost) = used.cost_micros {
                        entry(&mut out, bucket, bucket_ms, Some(model)).cost_micros += cost;
                    }
                }
            }
            Ok(out.into_values().collect())
        })
        .await
    }
}

fn entry(
    buckets: &mut BTreeMap<(i64, Option<String>), ModelBucket>,
    bucket: i64,
    bucket_ms: i64,
    model: Option<String>,
) -> &mut ModelBucket {
    buckets
        .entry((bucket, model.clone()))
        .or_insert_with(|| ModelBucket {
            model_name: model,
            bucket_start: time(bucket.saturating_mul(bucket_ms)),
            ..ModelBucket::default()
        })
}
