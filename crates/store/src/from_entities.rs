//! Domain types from the rows of the [`entities`](crate::entities), for the cold paths that read
//! through sea-orm's query builder instead of hand-written SQL (the hot paths decode their own
//! statements' columns, in `sql.rs`; the job read of status polling is one of those). The
//! conversion is the one `sql::decode_job` makes: epoch milliseconds to times, JSON text to
//! values, status names to statuses.

use nosyntask_domain::{Job, JobStatus};
use sea_orm::DbErr;

use crate::entities::workflow_jobs;
use crate::sql::{parse_json, parse_status, time};

/// A `workflow_jobs` row as the engine's [`Job`].
pub(crate) fn job(row: workflow_jobs::Model) -> Result<Job, DbErr> {
    Ok(Job {
        id: row.id,
        user_id: row.user_id,
        project_id: row.project_id,
        workflow_type: row.workflow_type,
        status: parse_status::<JobStatus>(&row.status)?,
        current_step_index: row.current_step_index,
        total_steps: row.total_steps,
        input_params: parse_json(&row.input_params, "workflow_jobs.input_params")?,
        error_message: row.error_message,
        is_consumed: row.is_consumed,
        progress: row.progress,
        created_at: time(row.created_at),
        updated_at: time(row.updated_at),
        started_at: row.started_at.map(time),
        completed_at: row.completed_at.map(time),
        hook_error: row.hook_error,
    })
}
