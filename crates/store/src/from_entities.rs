//! Domain types from the rows of the [`entities`](crate::entities), for the cold paths that read
//! through sea-orm's query builder instead of hand-written SQL (the hot paths decode their own
//! statements' columns, in `sql.rs`). The conversions are the ones `sql::decode_job` and
//! `sql::decode_task` make: epoch milliseconds to times, JSON text to values, status names to
//! statuses.

use nosyntask_domain::{Job, JobStatus, Task, TaskAttempt, TaskStatus};
use sea_orm::DbErr;

use crate::entities::{generation_tasks, task_attempts, workflow_jobs};
use crate::sql::{parse_json, parse_opt_json, parse_status, time};

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
    })
}

/// A `generation_tasks` row as the engine's [`Task`].
pub(crate) fn task(row: generation_tasks::Model) -> Result<Task, DbErr> {
    let status = parse_status::<TaskStatus>(&row.status)?;
    let ready_at = row.ready_at.map(time);
    Ok(Task {
        id: row.id,
        job_id: row.job_id,
        step_index: row.step_index,
        task_type: row.task_type,
        target_type: row.target_type,
        target_id: row.target_id,
        model_name: row.model_name,
        input_params: parse_opt_json(row.input_params, "generation_tasks.input_params")?,
        status,
        progress: row.progress,
        result_data: parse_opt_json(row.result_data, "generation_tasks.result_data")?,
        error_message: row.error_message,
        attempts: row.attempts,
        max_attempts: row.max_attempts,
        external_task_id: row.external_task_id,
        started_at: row.started_at.map(time),
        completed_at: row.completed_at.map(time),
        updated_at: time(row.updated_at),
        attempt_started_at: row.attempt_started_at.map(time),
        // A pending task that has run before waits for its retry (or, after a lapsed lease or a
        // hand-back, is ready at once).
        next_attempt_at: ready_at.filter(|_| status == TaskStatus::Pending && row.attempts > 0),
        usage: parse_opt_json(row.usage, "generation_tasks.usage")?
            .and_then(|usage| serde_json::from_value(usage).ok()),
        parent_task_id: row.parent_task_id,
        item_index: Some(row.item_index).filter(|i| *i >= 0),
        waiting_reason: None,
    })
}

/// A `task_attempts` row as the engine's [`TaskAttempt`].
pub(crate) fn attempt(row: task_attempts::Model) -> Result<TaskAttempt, DbErr> {
    Ok(TaskAttempt {
        task_id: row.task_id,
        attempt: row.attempt,
        worker: row.worker,
        started_at: row.started_at.map(time),
        ended_at: time(row.ended_at),
        outcome: row
            .outcome
            .parse()
            .map_err(|_| DbErr::Type(format!("unknown attempt outcome `{}`", row.outcome)))?,
        error_message: row.error_message,
    })
}
