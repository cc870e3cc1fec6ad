//! Attempt history (`task_attempts`): one row per finished attempt, written by the statement or
//! transaction that ends the attempt, from the task row itself (its attempt count, claim epoch and
//! attempt start), so the row and the end of the attempt commit together or not at all.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use nosyntask_domain::{AttemptOutcome, JobId, TaskAttempt};
use sea_orm::{ConnectionTrait, DbErr, Value};

use crate::sql::{
    InListStatements, MAX_JOBS_PER_READ, ms, named, padded_ids, placeholders, stmt, time,
};

/// The columns of a history row, in the order every insert lists them.
pub(crate) const INSERT: &str = "INSERT INTO task_attempts (task_id, job_id, attempt, \
     claim_epoch, worker, started_at, ended_at, outcome, error_message)";

/// Why a lost attempt ended (the runner's own error never reached the database).
pub(crate) const LOST_MESSAGE: &str =
    "the worker running this attempt stopped renewing its lease; another claim took over";

/// Records the end of the attempts of the tasks with `ids` as they are now (their rows locked by
/// the caller): the worker is each row's lease owner. Run before the statement that clears it.
pub(crate) async fn record_by_ids(
    conn: &impl ConnectionTrait,
    ids: &[i64],
    ended_at: DateTime<Utc>,
    outcome: AttemptOutcome,
) -> Result<(), DbErr> {
    if ids.is_empty() {
        return Ok(());
    }
    // Padded ids repeat the last one: `DISTINCT` is not needed, `IN` matches each row once.
    let mut values: Vec<Value> = vec![ms(ended_at).into(), outcome.as_str().into()];
    let padded = padded_ids(ids.iter().copied());
    let count = padded.len();
    values.extend(padded);
    conn.execute_raw(stmt(
        conn.get_database_backend(),
        &format!(
            "{INSERT} SELECT id, job_id, attempts, claim_epoch, lease_owner, attempt_started_at, \
             ?, ?, NULL FROM generation_tasks WHERE id IN ({})",
            placeholders(count)
        ),
        values,
    ))
    .await?;
    Ok(())
}

/// Records the end of the attempt of one task held by `worker`, with its error; `attempt_offset`
/// is added to the row's attempt count (1 where the ending statement already took the attempt
/// back, as a hand-back does).
pub(crate) async fn record_one(
    conn: &impl ConnectionTrait,
    task_id: i64,
    worker: &str,
    ended_at: DateTime<Utc>,
    outcome: AttemptOutcome,
    error_message: Option<&str>,
    attempt_offset: i32,
) -> Result<(), DbErr> {
    conn.execute_raw(stmt(
        conn.get_database_backend(),
        &format!(
            "{INSERT} SELECT id, job_id, attempts + ?, claim_epoch, ?, attempt_started_at, ?, ?, ? \
             FROM generation_tasks WHERE id = ?"
        ),
        vec![
            attempt_offset.into(),
            worker.to_owned().into(),
            ms(ended_at).into(),
            outcome.as_str().into(),
            error_message.map(str::to_owned).into(),
            task_id.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// Records as lost the attempts of those of the tasks with `ids` that are pending with the owner
/// of a lapsed lease (rows locked by the caller, before the claim that takes them over).
pub(crate) async fn record_lost(
    conn: &impl ConnectionTrait,
    ids: &[i64],
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut values: Vec<Value> = vec![ms(now).into(), LOST_MESSAGE.into()];
    let padded = padded_ids(ids.iter().copied());
    let count = padded.len();
    values.extend(padded);
    conn.execute_raw(stmt(
        conn.get_database_backend(),
        &format!(
            "{INSERT} SELECT id, job_id, attempts, claim_epoch, lease_owner, attempt_started_at, \
             COALESCE(lease_expires_at, ?), 'lost', ? FROM generation_tasks \
             WHERE id IN ({}) AND lease_owner IS NOT NULL",
            placeholders(count)
        ),
        values,
    ))
    .await?;
    Ok(())
}

/// Records the attempts of the job's running tasks as cancelled (before the cancel writes).
pub(crate) async fn record_cancelled(
    conn: &impl ConnectionTrait,
    job_id: JobId,
    ended_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    conn.execute_raw(stmt(
        conn.get_database_backend(),
        &format!(
            "{INSERT} SELECT id, job_id, attempts, claim_epoch, lease_owner, attempt_started_at, \
             ?, ?, NULL FROM generation_tasks WHERE job_id = ? AND status = 'running'"
        ),
        vec![
            ms(ended_at).into(),
            AttemptOutcome::Cancelled.as_str().into(),
            job_id.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// The finished attempts of the jobs with `ids`, each job's oldest first. Part of every job read
/// (see `jobs::load_jobs`): one statement per chunk of ids, written once per size, decoded by
/// name.
pub(crate) async fn load_for_jobs(
    conn: &impl ConnectionTrait,
    job_ids: &[JobId],
) -> Result<HashMap<JobId, Vec<TaskAttempt>>, DbErr> {
    static STATEMENTS: InListStatements = InListStatements::new();
    let mut histories: HashMap<JobId, Vec<TaskAttempt>> = HashMap::new();
    for chunk in job_ids.chunks(MAX_JOBS_PER_READ) {
        let values = padded_ids(chunk.iter().copied());
        let sql = STATEMENTS.get(values.len(), |list| {
            format!(
                "SELECT job_id, task_id, attempt, worker, started_at, ended_at, outcome, \
                 error_message FROM task_attempts WHERE job_id IN ({list}) \
                 ORDER BY job_id, task_id, claim_epoch, id"
            )
        });
        let rows = conn
            .query_all_raw(stmt(conn.get_database_backend(), sql, values))
            .await?;
        for row in &rows {
            let outcome: String = named(row, "outcome")?;
            let attempt = TaskAttempt {
                task_id: named(row, "task_id")?,
                attempt: named(row, "attempt")?,
                worker: named(row, "worker")?,
                started_at: named::<Option<i64>>(row, "started_at")?.map(time),
                ended_at: time(named(row, "ended_at")?),
                outcome: outcome
                    .parse()
                    .map_err(|_| DbErr::Type(format!("unknown attempt outcome `{outcome}`")))?,
                error_message: named(row, "error_message")?,
            };
            histories
                .entry(named(row, "job_id")?)
                .or_default()
                .push(attempt);
        }
    }
    Ok(histories)
}

/// Deletes the history of the jobs with `ids` (pruning).
pub(crate) async fn delete_for_jobs(conn: &impl ConnectionTrait, ids: &[i64]) -> Result<(), DbErr> {
    let values = padded_ids(ids.iter().copied());
    conn.execute_raw(stmt(
        conn.get_database_backend(),
        &format!(
            "DELETE FROM task_attempts WHERE job_id IN ({})",
            placeholders(values.len())
        ),
        values,
    ))
    .await?;
    Ok(())
}
