//! `create_job` and reading a job with its tasks.

use chrono::{DateTime, Utc};
use nosyntask_domain::{Job, JobId, JobStatus, JobWithTasks, Task, TaskStatus};
use nosyntask_engine::StoreError;
use nosyntask_engine::ports::{CreateOutcome, FAIR_SHARE_DEPTH, NewJob};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Value};

use crate::error::{Result, is_unique_violation, retrying};
use crate::jobs::load_job;
use crate::sql::{self, col, ms, stmt};
use crate::store::Store;

/// How often a start that lost a unique-index race is run again (it then finds the winner).
const UNIQUE_RACE_ATTEMPTS: u32 = 5;

/// What the checks inside the start transaction found.
struct Existing {
    idempotent: Option<(JobId, i64)>,
    unique: Option<JobId>,
    active: Option<i64>,
}

impl Store {
    pub(crate) async fn create_job_impl(
        &self,
        job: NewJob,
        now: DateTime<Utc>,
    ) -> Result<CreateOutcome, StoreError> {
        if job.tasks.is_empty() {
            return Err(StoreError::Other(format!(
                "workflow `{}` has no steps",
                job.workflow_type
            )));
        }
        for _ in 0..UNIQUE_RACE_ATTEMPTS {
            if let Some(outcome) = retrying(|| self.create_once(&job, now)).await? {
                if !outcome.deduplicated {
                    self.announce();
                }
                return Ok(outcome);
            }
        }
        Err(StoreError::Unavailable(
            "starting the job kept colliding with concurrent starts".to_owned(),
        ))
    }

    /// One attempt; `None` when a concurrent start won a unique index (run again to find it).
    async fn create_once(&self, job: &NewJob, now: DateTime<Utc>) -> Result<Option<CreateOutcome>> {
        let backend = self.backend();
        let checked = job.idempotency_key.is_some()
            || job.unique_key.is_some()
            || job.max_active_per_user.is_some();
        if backend == DbBackend::Postgres {
            return self.create_pg(job, now).await;
        }
        let txn = self.begin().await?;
        if checked {
            self.lock_user(&txn, job.user_id).await?;
            let existing = self.find_existing(&txn, job).await?;
            if let Some((id, expires_at)) = existing.idempotent {
                if expires_at > ms(now) {
                    let found = load_job(&txn, id).await?;
                    txn.commit().await?;
                    return Ok(found.map(|job| CreateOutcome {
                        job,
                        deduplicated: true,
                    }));
                }
                // The key's window is over: a new job may take it.
                txn.execute_raw(stmt(
                    backend,
                    "UPDATE workflow_jobs SET idempotency_key = NULL WHERE id = ?",
                    vec![id.into()],
                ))
                .await?;
            }
            if let Some(id) = existing.unique {
                let found = load_job(&txn, id).await?;
                txn.commit().await?;
                return Ok(found.map(|job| CreateOutcome {
                    job,
                    deduplicated: true,
                }));
            }
            if let (Some(limit), Some(active)) = (job.max_active_per_user, existing.active) {
                let active = u64::try_from(active).unwrap_or_default();
                if active >= limit {
                    txn.rollback().await?;
                    return Err(StoreError::QuotaExceeded {
                        user_id: job.user_id,
                        active,
                        limit,
                    }
                    .into());
                }
            }
        }
        let fair_offset = if job.fair_share_quantum.is_zero() {
            0
        } else {
            job.fair_offset_ms(self.active_ahead(&txn, job).await?)
        };
        let inserted = self.insert_generic(&txn, job, fair_offset, now).await;
        match inserted {
            Ok(created) => {
                txn.commit().await?;
                Ok(Some(CreateOutcome {
                    job: created,
                    deduplicated: false,
                }))
            }
            Err(err) if is_unique_violation(&err) => {
                txn.rollback().await?;
                Ok(None)
            }
            Err(err) => Err(err.into()),
        }
    }

    /// The user's active jobs of at least the new job's priority, up to the depth that counts.
    async fn active_ahead(&self, txn: &impl ConnectionTrait, job: &NewJob) -> Result<i64, DbErr> {
        let row = txn
            .query_one_raw(stmt(
                self.backend(),
                &format!("SELECT COUNT(*) FROM ({FAIR_AHEAD}) ahead"),
                vec![
                    job.user_id.into(),
                    job.priority.into(),
                    i64::from(FAIR_SHARE_DEPTH).into(),
                ],
            ))
            .await?;
        row.map_or(Ok(0), |row| col::<i64>(&row, 0))
    }

    /// Serializes the starts of one user, so the quota and uniqueness checks are exact.
    pub(crate) async fn lock_user(
        &self,
        txn: &impl ConnectionTrait,
        user_id: i64,
    ) -> Result<(), DbErr> {
        let backend = self.backend();
        let sql = match backend {
            DbBackend::MySql => {
                "INSERT INTO workflow_user_locks (user_id) VALUES (?) \
                 ON DUPLICATE KEY UPDATE user_id = user_id"
            }
            // Starts lock on the BEGIN round trip in `create_pg`; resumes come through here.
            DbBackend::Postgres => "SELECT pg_advisory_xact_lock(?)",
            // SQLite runs one write transaction at a time anyway.
            _ => return Ok(()),
        };
        txn.execute_raw(stmt(backend, sql, vec![user_id.into()]))
            .await
            .map(|_| ())
    }

    async fn find_existing(&self, txn: &impl ConnectionTrait, job: &NewJob) -> Result<Existing> {
        let mut parts = Vec::new();
        let mut values: Vec<Value> = Vec::new();
        if let Some(key) = &job.idempotency_key {
            parts.push("(SELECT id FROM workflow_jobs WHERE user_id = ? AND idempotency_key = ?)");
            parts.push(
                "(SELECT idempotency_expires_at FROM workflow_jobs \
                 WHERE user_id = ? AND idempotency_key = ?)",
            );
            for _ in 0..2 {
                values.push(job.user_id.into());
                values.push(key.clone().into());
            }
        }
        if let Some(key) = &job.unique_key {
            parts.push(
                "(SELECT id FROM workflow_jobs \
                 WHERE user_id = ? AND workflow_type = ? AND unique_key = ?)",
            );
            values.push(job.user_id.into());
            values.push(job.workflow_type.clone().into());
            values.push(key.clone().into());
        }
        if job.max_active_per_user.is_some() {
            parts.push(
                "(SELECT COUNT(*) FROM workflow_jobs \
                 WHERE user_id = ? AND status IN ('pending', 'running'))",
            );
            values.push(job.user_id.into());
        }
        let sql = format!("SELECT {}", parts.join(", "));
        let row = txn
            .query_one_raw(stmt(self.backend(), &sql, values))
            .await?
            .ok_or_else(|| DbErr::RecordNotFound("start checks returned no row".to_owned()))?;
        let mut at = 0;
        let mut next = || {
            at += 1;
            col::<Option<i64>>(&row, at - 1)
        };
        let idempotent = if job.idempotency_key.is_some() {
            let id = next()?;
            let expires = next()?;
            id.map(|id| (id, expires.unwrap_or_default()))
        } else {
            None
        };
        let unique = if job.unique_key.is_some() {
            next()?
        } else {
            None
        };
        let active = if job.max_active_per_user.is_some() {
            next()?
        } else {
            None
        };
        Ok(Existing {
            idempotent,
            unique,
            active,
        })
    }

    pub(crate) fn job_values(job: &NewJob, now: DateTime<Utc>) -> Vec<Value> {
        let now = ms(now);
        let window = i64::try_from(job.idempotency_window.as_millis()).unwrap_or(i64::MAX);
        vec![
            job.user_id.into(),
            job.project_id.into(),
            job.workflow_type.clone().into(),
            i32::try_from(job.tasks.len()).unwrap_or(i32::MAX).into(),
            sql::json_text(&job.input_params).into(),
            job.idempotency_key.clone().into(),
            job.idempotency_key
                .as_ref()
                .map(|_| now.saturating_add(window))
                .into(),
            job.unique_key.clone().into(),
            job.unique_key.clone().into(),
            now.into(),
            now.into(),
            job.priority.into(),
        ]
    }

    pub(crate) fn task_values(job: &NewJob, now: DateTime<Utc>) -> (String, Vec<Value>) {
        let mut rows = Vec::with_capacity(job.tasks.len());
        let mut values = Vec::with_capacity(job.tasks.len() * 6);
        for (step, task) in job.tasks.iter().enumerate() {
            rows.push("(?, ?, ?, ?, ?, ?, ?)");
            values.push(i32::try_from(step).unwrap_or(i32::MAX).into());
            values.push(task.task_type.clone().into());
            values.push(task.target_type.clone().into());
            values.push(task.target_id.into());
            values.push(task.max_attempts.into());
            values.push((if step == 0 { Some(ms(now)) } else { None }).into());
            values.push(task.model_name.clone().into());
        }
        (rows.join(", "), values)
    }

    /// Job, then tasks with one multi-row insert, then their ids.
    async fn insert_generic(
        &self,
        txn: &impl ConnectionTrait,
        job: &NewJob,
        fair_offset: i64,
        now: DateTime<Utc>,
    ) -> Result<JobWithTasks, DbErr> {
        let backend = self.backend();
        let inserted = txn
            .execute_raw(stmt(
                backend,
                &format!(
                    "INSERT INTO workflow_jobs ({JOB_INSERT}) \
                     VALUES (?, ?, ?, 'pending', 0, ?, ?, FALSE, 0, ?, ?, ?, ?, ?, ?, ?)"
                ),
                Self::job_values(job, now),
            ))
            .await?;
        let job_id = i64::try_from(inserted.last_insert_id())
            .map_err(|_| DbErr::Custom("job id out of range".to_owned()))?;
        let now_ms = ms(now);
        let mut rows = Vec::with_capacity(job.tasks.len());
        let mut values = Vec::with_capacity(job.tasks.len() * 11);
        for (step, task) in job.tasks.iter().enumerate() {
            rows.push("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, 0, ?, ?)");
            values.extend([
                job_id.into(),
                job.user_id.into(),
                job.project_id.into(),
                i32::try_from(step).unwrap_or(i32::MAX).into(),
                task.task_type.clone().into(),
                task.target_type.clone().into(),
                task.target_id.into(),
                task.max_attempts.into(),
                (if step == 0 { Some(now_ms) } else { None }).into(),
                task.model_name.clone().into(),
                fair_offset.into(),
                now_ms.into(),
                now_ms.into(),
            ]);
        }
        let sql = format!(
            "INSERT INTO generation_tasks (job_id, user_id, project_id, step_index, task_type, \
             target_type, target_id, max_attempts, ready_at, model_name, fair_offset, status, \
             progress, attempts, created_at, updated_at) VALUES {}",
            rows.join(", ")
        );
        let rows = if backend == DbBackend::Sqlite {
            txn.query_all_raw(stmt(
                backend,
                &format!("{sql} RETURNING id, step_index"),
                values,
            ))
            .await?
        } else {
            // MySQL has no RETURNING.
            txn.execute_raw(stmt(backend, &sql, values)).await?;
            txn.query_all_raw(stmt(
                backend,
                "SELECT id, step_index FROM generation_tasks WHERE job_id = ?",
                vec![job_id.into()],
            ))
            .await?
        };
        let ids = rows
            .iter()
            .map(|row| Ok((col::<i32>(row, 1)?, col::<i64>(row, 0)?)))
            .collect::<Result<Vec<_>, DbErr>>()?;
        built(job, job_id, ids, now)
    }
}

/// The user's active jobs that count for a new job's fair-share offset (user, priority, depth).
pub(crate) const FAIR_AHEAD: &str = "SELECT 1 FROM workflow_jobs WHERE user_id = ? \
    AND status IN ('pending', 'running') AND priority >= ? LIMIT ?";

pub(crate) const JOB_INSERT: &str = "user_id, project_id, workflow_type, status, current_step_index, \
    total_steps, input_params, is_consumed, progress, idempotency_key, idempotency_expires_at, \
    unique_key, unique_key_value, created_at, updated_at, priority";

/// The job as written, from its inputs and the ids the database gave.
pub(crate) fn built(
    job: &NewJob,
    job_id: JobId,
    mut ids: Vec<(i32, i64)>,
    now: DateTime<Utc>,
) -> Result<JobWithTasks, DbErr> {
    ids.sort_unstable();
    if ids.len() != job.tasks.len() {
        return Err(DbErr::Custom(format!(
            "inserted {} tasks for {} steps",
            ids.len(),
            job.tasks.len()
        )));
    }
    let now = sql::time(ms(now));
    let tasks = ids
        .into_iter()
        .zip(&job.tasks)
        .map(|((step_index, id), task)| Task {
            id,
            job_id,
            step_index,
            task_type: task.task_type.clone(),
            target_type: task.target_type.clone(),
            target_id: task.target_id,
            model_name: task.model_name.clone(),
            input_params: None,
            status: TaskStatus::Pending,
            progress: 0,
            result_data: None,
            error_message: None,
            attempts: 0,
            max_attempts: task.max_attempts,
            external_task_id: None,
            usage: None,
            started_at: None,
            attempt_started_at: None,
            next_attempt_at: None,
            completed_at: None,
            updated_at: now,
            parent_task_id: None,
            item_index: None,
            waiting_reason: None,
        })
        .collect();
    Ok(JobWithTasks {
        job: Job {
            id: job_id,
            user_id: job.user_id,
            project_id: job.project_id,
            workflow_type: job.workflow_type.clone(),
            status: JobStatus::Pending,
            current_step_index: 0,
            total_steps: i32::try_from(job.tasks.len()).unwrap_or(i32::MAX),
            input_params: job.input_params.clone(),
            error_message: None,
            is_consumed: false,
            progress: 0,
            created_at: now,
            updated_at: now,
            started_at: None,
            completed_at: None,
            hook_error: None,
        },
        tasks,
        history: Vec::new(),
    })
}
