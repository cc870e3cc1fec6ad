//! `GET /api/admin/stats`: what the engine is doing, for the console's admin view. Figures come
//! from the store, so they cover every process that shares the database.

use std::collections::BTreeMap;

use actix_web::{get, web};
use nosyntask_domain::TaskStatus;
use nosyntask_engine::ports::TaskActivity;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::views::timestamp;

/// The window of the "recent" counts.
const WINDOW_SECS: u64 = 3600;

/// The engine at a glance: queue, running tasks, jobs by status, and task activity per model
/// and per task type.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminStats {
    /// When the figures were read (RFC 3339 UTC).
    pub generated_at: String,
    /// The window of `completed`, `failed`, `cancelled` and `retries`, in seconds (one hour).
    pub window_secs: u64,
    /// The store's database: `sqlite`, `postgres` or `mysql`.
    pub backend: String,
    pub queue: QueueStats,
    /// Active jobs in the store by status (`pending` and `running`, zero included). Finished
    /// jobs are counted per model and step type over the window instead: a count over the
    /// whole history would cost more with every job kept.
    pub jobs_by_status: BTreeMap<String, u64>,
    /// Task activity per model, busiest first.
    pub models: Vec<ActivityRow>,
    /// Task activity per task type (workflow step), busiest first.
    pub task_types: Vec<ActivityRow>,
}

/// Tasks waiting and running now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueueStats {
    /// Pending tasks claimable now.
    pub ready: u64,
    /// Pending tasks waiting for a retry time.
    pub scheduled: u64,
    /// Tasks running in any process.
    pub running: u64,
}

/// Task counts of one model or task type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActivityRow {
    /// The model or task type; `null` in `models` for steps whose model is not recorded (not
    /// started yet, or run on their kind's default model without naming it).
    pub name: Option<String>,
    /// Pending tasks with a ready time (now or after a retry backoff).
    pub queued: u64,
    /// Running now.
    pub running: u64,
    /// Completed within the window.
    pub completed: u64,
    /// Failed for good within the window.
    pub failed: u64,
    /// Cancelled within the window.
    pub cancelled: u64,
    /// Attempts that followed a failed or lost attempt, counted over the tasks above.
    pub retries: u64,
}

impl ActivityRow {
    fn add(&mut self, activity: &TaskActivity) {
        let tasks = activity.tasks;
        let attempts = u64::try_from(activity.attempts).unwrap_or_default();
        // A pending task's attempts all ended in a retry; otherwise the last attempt is the one
        // that ran (or runs) to its end.
        let retries_each = match activity.status {
            TaskStatus::Pending => attempts,
            _ => attempts.saturating_sub(1),
        };
        self.retries += retries_each * tasks;
        match activity.status {
            TaskStatus::Pending => self.queued += tasks,
            TaskStatus::Running => self.running += tasks,
            TaskStatus::Completed => self.completed += tasks,
            TaskStatus::Failed => self.failed += tasks,
            TaskStatus::Cancelled => self.cancelled += tasks,
        }
    }

    fn busyness(&self) -> (u64, u64) {
        (
            self.queued + self.running,
            self.completed + self.failed + self.cancelled,
        )
    }
}

/// Groups activity rows by `key`, busiest first (then by name).
fn rows_by(
    activity: &[TaskActivity],
    key: impl Fn(&TaskActivity) -> Option<String>,
) -> Vec<ActivityRow> {
    let mut rows: BTreeMap<Option<String>, ActivityRow> = BTreeMap::new();
    for item in activity {
        let name = key(item);
        rows.entry(name.clone())
            .or_insert_with(|| ActivityRow {
                name,
                ..ActivityRow::default()
            })
            .add(item);
    }
    let mut rows: Vec<ActivityRow> = rows.into_values().collect();
    rows.sort_by(|a, b| b.busyness().cmp(&a.busyness()).then(a.name.cmp(&b.name)));
    rows
}

/// Engine statistics for admins: queue depth, running tasks, and the last hour's completions,
/// failures and retries per model and per task type.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The statistics", body = AdminStats),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "The token's role is not admin", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
#[get("/api/admin/stats")]
pub async fn admin_stats(
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<web::Json<AdminStats>, ApiError> {
    caller.require_admin()?;
    let now = state.engine.clock().now();
    let since = now - chrono::Duration::seconds(WINDOW_SECS as i64);
    let engine = &state.engine;
    let unavailable = |err: nosyntask_engine::EngineError| {
        tracing::warn!(error = %err, "admin statistics failed");
        ApiError::unavailable("the job store is unavailable; try again shortly")
    };
    let stats = engine.queue_stats().await.map_err(unavailable)?;
    let activity = engine.task_activity(since).await.map_err(unavailable)?;
    let mut jobs_by_status: BTreeMap<String, u64> = [
        nosyntask_domain::JobStatus::Pending,
        nosyntask_domain::JobStatus::Running,
    ]
    .iter()
    .map(|status| (status.as_str().to_owned(), 0))
    .collect();
    jobs_by_status.extend(stats.jobs_by_status);
    Ok(web::Json(AdminStats {
        generated_at: timestamp(now),
        window_secs: WINDOW_SECS,
        backend: engine.backend_name().to_owned(),
        queue: QueueStats {
            ready: stats.ready,
            scheduled: stats.scheduled,
            running: stats.running,
        },
        jobs_by_status,
        models: rows_by(&activity, |a| a.model_name.clone()),
        task_types: rows_by(&activity, |a| Some(a.task_type.clone())),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn activity(
        model: Option<&str>,
        status: TaskStatus,
        attempts: i32,
        tasks: u64,
    ) -> TaskActivity {
        TaskActivity {
            model_name: model.map(str::to_owned),
            task_type: "views".to_owned(),
            status,
            attempts,
            tasks,
        }
    }

    #[test]
    fn rows_add_up_statuses_and_retries_per_model() {
        let rows = rows_by(
            &[
                activity(Some("img"), TaskStatus::Completed, 1, 4),
                activity(Some("img"), TaskStatus::Completed, 3, 1),
                activity(Some("img"), TaskStatus::Pending, 2, 1),
                activity(Some("img"), TaskStatus::Running, 2, 2),
                activity(Some("txt"), TaskStatus::Failed, 3, 1),
                activity(None, TaskStatus::Pending, 0, 5),
                activity(None, TaskStatus::Cancelled, 0, 1),
            ],
            |a| a.model_name.clone(),
        );
        let names: Vec<_> = rows.iter().map(|r| r.name.as_deref()).collect();
        assert_eq!(names, [None, Some("img"), Some("txt")]);
        let img = &rows[1];
        assert_eq!(
            (img.queued, img.running, img.completed, img.failed),
            (1, 2, 5, 0)
        );
        // 2 (second completed) + 2 (pending after two attempts) + 1 × 2 (running, second try).
        assert_eq!(img.retries, 6);
        assert_eq!((rows[2].failed, rows[2].retries), (1, 2));
        assert_eq!(
            (rows[0].queued, rows[0].cancelled, rows[0].retries),
            (5, 1, 0)
        );
    }
}
