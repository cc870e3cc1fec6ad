//! Writes of a running attempt, each fenced on (task, owner, claim epoch): progress,
//! checkpoints, failures and hand-backs (completions are in `complete`).

use chrono::{DateTime, Utc};
use nosyntask_domain::AttemptOutcome;
use nosyntask_engine::StoreError;
use nosyntask_engine::ports::{Failure, Fence, ProgressUpdate, StepStarted};
use sea_orm::{ConnectionTrait, DbBackend, Value};
use serde_json::json;

use crate::claim::held_fences;
use crate::complete::{merge, started_json};
use crate::error::{Result, retrying};
use crate::history;
use crate::hooks::{Happened, HookEventKind};
use crate::sql::{FENCE_HOLDS, json_text, ms, stmt};
use crate::store::Store;

/// [`crate::sql::FENCE_HOLDS`] for one task.
pub(crate) const FENCE: &str = "id = ? AND status NOT IN ('completed', 'failed', 'cancelled') \
     AND lease_owner = ? \
     AND claim_epoch = ?";

/// Progress updates per statement (PostgreSQL) or transaction.
const PROGRESS_CHUNK: usize = crate::sql::IN_LIST_CHUNK;

pub(crate) fn fence_values(fence: &Fence) -> [Value; 3] {
    [
        fence.task_id.into(),
        fence.owner.clone().into(),
        fence.epoch.into(),
    ]
}

/// `, input_params = ?, model_name = ?` and its values when the step's input is to be written.
pub(crate) fn started_set(started: Option<&StepStarted>) -> (&'static str, Vec<Value>) {
    match started {
        Some(s) => (
            ", input_params = ?, model_name = ?",
            vec![
                json_text(&s.input_params).into(),
                s.model_name.clone().into(),
            ],
        ),
        None => ("", Vec::new()),
    }
}

impl Store {
    pub(crate) async fn fail_task_impl(
        &self,
        failure: &Failure,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let held = retrying(|| self.fail_once(failure, now)).await?;
        if held && failure.retry_at.is_some() {
            self.announce();
        }
        Ok(held)
    }

    async fn fail_once(&self, failure: &Failure, now: DateTime<Utc>) -> Result<bool> {
        let backend = self.backend();
        let now_ms = ms(now);
        let (started, started_values) = started_set(failure.started.as_ref());
        let txn = self.begin().await?;
        let (sql, mut values): (String, Vec<Value>) = match failure.retry_at {
            Some(retry_at) => (
                format!(
                    "UPDATE generation_tasks SET status = 'pending', ready_at = ?, \
                     error_message = ?, lease_owner = NULL, lease_expires_at = NULL, \
                     progress = 0, updated_at = ?{started} WHERE {FENCE}"
                ),
                vec![
                    ms(retry_at).into(),
                    failure.message.clone().into(),
                    now_ms.into(),
                ],
            ),
            None => (
                format!(
                    "UPDATE generation_tasks SET status = 'failed', error_message = ?, \
                     completed_at = ?, updated_at = ?, lease_owner = NULL, \
                     lease_expires_at = NULL{started} WHERE {FENCE}"
                ),
                vec![failure.message.clone().into(), now_ms.into(), now_ms.into()],
            ),
        };
        values.extend(started_values);
        values.extend(fence_values(&failure.fence));
        let updated = txn.execute_raw(stmt(backend, &sql, values)).await?;
        if updated.rows_affected() == 0 {
            txn.rollback().await?;
            return Ok(false);
        }
        history::record_one(
            &txn,
            failure.fence.task_id,
            &failure.fence.owner,
            now,
            AttemptOutcome::Failed,
            Some(&failure.message),
            0,
        )
        .await?;
        if failure.retry_at.is_some() {
            // The next attempt starts over: the job's progress drops back with its step's.
            txn.execute_raw(stmt(
                backend,
                "UPDATE workflow_jobs SET progress = ?, updated_at = ? \
                 WHERE id = ? AND status = 'running'",
                vec![
                    failure.job_progress.into(),
                    now_ms.into(),
                    failure.fence.job_id.into(),
                ],
            ))
            .await?;
        } else {
            txn.execute_raw(stmt(
                backend,
                "UPDATE workflow_jobs SET status = 'failed', error_message = ?, \
                 completed_at = ?, updated_at = ?, unique_key = NULL WHERE id = ?",
                vec![
                    failure.message.clone().into(),
                    now_ms.into(),
                    now_ms.into(),
                    failure.fence.job_id.into(),
                ],
            ))
            .await?;
            let happened = Happened::new(
                failure.fence.job_id,
                Some(failure.fence.task_id),
                &[HookEventKind::StepFailed, HookEventKind::JobFailed],
            );
            self.fire(&txn, &[happened]).await?;
        }
        txn.commit().await?;
        Ok(true)
    }

    pub(crate) async fn release_tasks_impl(
        &self,
        fences: &[Fence],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if fences.is_empty() {
            return Ok(());
        }
        let mut sorted: Vec<&Fence> = fences.iter().collect();
        sorted.sort_by_key(|f| f.task_id);
        retrying(|| async {
            let backend = self.backend();
            let txn = self.begin().await?;
            for fence in &sorted {
                let mut values: Vec<Value> = vec![ms(now).into(), ms(now).into()];
                values.extend(fence_values(fence));
                let released = txn
                    .execute_raw(stmt(
                        backend,
                        &format!(
                            "UPDATE generation_tasks SET status = 'pending', ready_at = ?, \
                             attempts = attempts - 1, lease_owner = NULL, \
                             lease_expires_at = NULL, updated_at = ? WHERE {FENCE}"
                        ),
                        values,
                    ))
                    .await?;
                if released.rows_affected() > 0 {
                    // The attempt was taken back above; its row keeps the number it ran as.
                    history::record_one(
                        &txn,
                        fence.task_id,
                        &fence.owner,
                        now,
                        AttemptOutcome::HandedBack,
                        None,
                        1,
                    )
                    .await?;
                }
            }
            txn.commit().await?;
            Ok(())
        })
        .await?;
        self.announce();
        Ok(())
    }

    pub(crate) async fn save_checkpoint_impl(
        &self,
        fence: &Fence,
        checkpoint: &serde_json::Value,
        external_task_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let backend = self.backend();
        let external = if external_task_id.is_some() {
            ", external_task_id = ?"
        } else {
            ""
        };
        let sql = format!(
            "UPDATE generation_tasks SET checkpoint = ?, updated_at = ?{external} WHERE {FENCE}"
        );
        let updated = retrying(|| async {
            let mut values: Vec<Value> = vec![json_text(checkpoint).into(), ms(now).into()];
            if let Some(external) = external_task_id {
                values.push(external.to_owned().into());
            }
            values.extend(fence_values(fence));
            Ok(self
                .inner
                .write
                .execute_raw(stmt(backend, &sql, values))
                .await?
                .rows_affected())
        })
        .await?;
        if updated == 0 {
            return Err(StoreError::Conflict(format!(
                "task {} is no longer held by this claim (attempt {}, epoch {} of {})",
                fence.task_id, fence.attempt, fence.epoch, fence.owner
            )));
        }
        Ok(())
    }

    pub(crate) async fn write_progress_impl(
        &self,
        updates: &[ProgressUpdate],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if updates.is_empty() {
            return Ok(());
        }
        // Bounded statements however many tasks run: none holds thousands of row locks for
        // long (a checkpoint or a lease renewal of the same rows waits for it).
        for chunk in updates.chunks(PROGRESS_CHUNK) {
            retrying(|| async {
                match self.backend() {
                    DbBackend::Postgres => self.progress_pg(chunk, now).await,
                    _ => self.progress_generic(chunk, now).await,
                }
            })
            .await?;
        }
        Ok(())
    }

    async fn progress_pg(&self, updates: &[ProgressUpdate], now: DateTime<Utc>) -> Result<()> {
        let input: Vec<_> = updates
            .iter()
            .map(|u| {
                merge(
                    json!({
                        "id": u.fence.task_id,
                        "owner": u.fence.owner,
                        "epoch": u.fence.epoch,
                        "progress": u.progress,
                        "job_progress": u.job_progress,
                    }),
                    started_json(u.started.as_ref()),
                )
            })
            .collect();
        self.inner
            .write
            .execute_raw(stmt(
                DbBackend::Postgres,
                &format!(
                    "WITH input AS ( \
                   SELECT * FROM json_to_recordset(?::json) AS x(id bigint, owner text, \
                   epoch bigint, progress int, job_progress int, started boolean, input text, \
                   model text) \
                 ), moved AS ( \
                   UPDATE generation_tasks t SET progress = x.progress, updated_at = ?, \
                   input_params = CASE WHEN x.started THEN x.input ELSE t.input_params END, \
                   model_name = CASE WHEN x.started THEN x.model ELSE t.model_name END \
                   FROM input x WHERE t.id = ANY(ARRAY(SELECT id FROM input)) \
                   AND t.id = x.id AND {FENCE_HOLDS} \
                   RETURNING t.job_id, x.job_progress \
                 ) \
                 UPDATE workflow_jobs w SET progress = m.job_progress, updated_at = ? \
                 FROM moved m WHERE w.id = m.job_id"
                ),
                vec![
                    serde_json::Value::Array(input).to_string().into(),
                    ms(now).into(),
                    ms(now).into(),
                ],
            ))
            .await?;
        Ok(())
    }

    async fn progress_generic(&self, updates: &[ProgressUpdate], now: DateTime<Utc>) -> Result<()> {
        let backend = self.backend();
        let now_ms = ms(now);
        let txn = self.begin().await?;
        let fences: Vec<Fence> = updates.iter().map(|u| u.fence.clone()).collect();
        let held = held_fences(&txn, backend, &fences).await?;
        let mut moved: Vec<&ProgressUpdate> = updates
            .iter()
            .filter(|u| held.contains_key(&u.fence.task_id))
            .collect();
        moved.sort_by_key(|u| u.fence.task_id);
        for update in &moved {
            let (started, started_values) = started_set(update.started.as_ref());
            let mut values: Vec<Value> = vec![update.progress.into(), now_ms.into()];
            values.extend(started_values);
            values.push(update.fence.task_id.into());
            txn.execute_raw(stmt(
                backend,
                &format!(
                    "UPDATE generation_tasks SET progress = ?, updated_at = ?{started} WHERE id = ?"
                ),
                values,
            ))
            .await?;
        }
        moved.sort_by_key(|u| u.fence.job_id);
        for update in &moved {
            txn.execute_raw(stmt(
                backend,
                "UPDATE workflow_jobs SET progress = ?, updated_at = ? WHERE id = ?",
                vec![
                    update.job_progress.into(),
                    now_ms.into(),
                    update.fence.job_id.into(),
                ],
            ))
            .await?;
        }
        txn.commit().await?;
        Ok(())
    }
}
