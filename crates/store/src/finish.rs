//! Writes of a running attempt, each fenced on (task, owner, attempt): progress, checkpoints,
//! completions, failures and hand-backs.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use nosyntask_engine::StoreError;
use nosyntask_engine::ports::{Completion, Failure, Fence, ProgressUpdate, StepStarted};
use sea_orm::{ConnectionTrait, DbBackend, Value};
use serde_json::json;

use crate::claim::held_fences;
use crate::error::{Result, retrying};
use crate::sql::{col, json_text, ms, padded_ids, padded_len, placeholders, stmt};
use crate::store::Store;

const FENCE: &str = "id = ? AND status = 'running' AND lease_owner = ? AND attempts = ?";

fn fence_values(fence: &Fence) -> [Value; 3] {
    [
        fence.task_id.into(),
        fence.owner.clone().into(),
        fence.attempt.into(),
    ]
}

/// `, input_params = ?, model_name = ?` and its values when the step's input is to be written.
fn started_set(started: Option<&StepStarted>) -> (&'static str, Vec<Value>) {
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

/// `CASE id WHEN ? THEN ? … ELSE <column> END` over `(id, value)` pairs.
fn case_by_id(column: &str, mut pairs: Vec<(i64, Value)>, values: &mut Vec<Value>) -> String {
    let Some(last) = pairs.last().cloned() else {
        return column.to_owned();
    };
    // Padded like the id lists (a repeated WHEN never matches first).
    pairs.resize(padded_len(pairs.len()), last);
    let mut sql = String::from("CASE id");
    for (id, value) in pairs {
        sql.push_str(" WHEN ? THEN ?");
        values.push(id.into());
        values.push(value);
    }
    sql.push_str(" ELSE ");
    sql.push_str(column);
    sql.push_str(" END");
    sql
}

fn started_json(started: Option<&StepStarted>) -> serde_json::Value {
    match started {
        Some(s) => json!({
            "started": true,
            "input": json_text(&s.input_params),
            "model": s.model_name,
        }),
        None => json!({"started": false}),
    }
}

fn merge(mut a: serde_json::Value, b: serde_json::Value) -> serde_json::Value {
    if let (Some(a), serde_json::Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

impl Store {
    pub(crate) async fn complete_tasks_impl(
        &self,
        completions: &[Completion],
        now: DateTime<Utc>,
    ) -> Result<Vec<bool>, StoreError> {
        if completions.is_empty() {
            return Ok(Vec::new());
        }
        let (held, advanced) = retrying(|| async {
            match self.backend() {
                DbBackend::Postgres => self.complete_pg(completions, now).await,
                _ => self.complete_generic(completions, now).await,
            }
        })
        .await?;
        if advanced {
            self.wake_local();
        }
        Ok(completions
            .iter()
            .map(|c| held.contains(&c.fence.task_id))
            .collect())
    }

    /// One statement for the whole batch.
    async fn complete_pg(
        &self,
        completions: &[Completion],
        now: DateTime<Utc>,
    ) -> Result<(HashSet<i64>, bool)> {
        let input: Vec<_> = completions
            .iter()
            .map(|c| {
                merge(
                    json!({
                        "task_id": c.fence.task_id,
                        "owner": c.fence.owner,
                        "attempt": c.fence.attempt,
                        "result": json_text(&c.result),
                        "last": c.is_last_step,
                        "job_progress": c.job_progress,
                    }),
                    started_json(c.started.as_ref()),
                )
            })
            .collect();
        let now_ms = ms(now);
        let rows = self
            .inner
            .write
            .query_all_raw(stmt(
                DbBackend::Postgres,
                "WITH input AS ( \
                   SELECT * FROM json_to_recordset(?::json) AS x(task_id bigint, owner text, \
                   attempt int, result text, started boolean, input text, model text, \
                   last boolean, job_progress int) \
                 ), done AS ( \
                   UPDATE generation_tasks t SET status = 'completed', progress = 100, \
                   result_data = x.result, completed_at = ?, updated_at = ?, \
                   lease_owner = NULL, lease_expires_at = NULL, \
                   input_params = CASE WHEN x.started THEN x.input ELSE t.input_params END, \
                   model_name = CASE WHEN x.started THEN x.model ELSE t.model_name END \
                   FROM input x WHERE t.id = x.task_id AND t.status = 'running' \
                   AND t.lease_owner = x.owner AND t.attempts = x.attempt \
                   RETURNING t.id, t.job_id, t.step_index, x.last, x.job_progress \
                 ), next AS ( \
                   UPDATE generation_tasks n SET ready_at = ?, updated_at = ? FROM done d \
                   WHERE NOT d.last AND n.job_id = d.job_id \
                   AND n.step_index = d.step_index + 1 AND n.status = 'pending' \
                   RETURNING n.id \
                 ), jobs AS ( \
                   UPDATE workflow_jobs w SET \
                   status = CASE WHEN d.last THEN 'completed' ELSE w.status END, \
                   progress = CASE WHEN d.last THEN 100 ELSE d.job_progress END, \
                   current_step_index = CASE WHEN d.last THEN w.current_step_index \
                     ELSE d.step_index + 1 END, \
                   completed_at = CASE WHEN d.last THEN ? ELSE w.completed_at END, \
                   unique_key = CASE WHEN d.last THEN NULL ELSE w.unique_key END, \
                   updated_at = ? \
                   FROM done d WHERE w.id = d.job_id RETURNING w.id \
                 ) \
                 SELECT d.id, (SELECT count(*) FROM ( \
                   SELECT pg_notify('nosyntask_work', '') FROM next LIMIT 1) s) \
                 FROM done d",
                vec![
                    serde_json::Value::Array(input).to_string().into(),
                    now_ms.into(),
                    now_ms.into(),
                    now_ms.into(),
                    now_ms.into(),
                    now_ms.into(),
                    now_ms.into(),
                ],
            ))
            .await?;
        let mut held = HashSet::with_capacity(rows.len());
        let mut advanced = false;
        for row in &rows {
            held.insert(col::<i64>(row, 0)?);
            advanced |= col::<i64>(row, 1)? > 0;
        }
        Ok((held, advanced))
    }

    /// Lock the fenced rows, then a handful of statements for the whole batch.
    async fn complete_generic(
        &self,
        completions: &[Completion],
        now: DateTime<Utc>,
    ) -> Result<(HashSet<i64>, bool)> {
        let backend = self.backend();
        let now_ms = ms(now);
        let txn = self.begin().await?;
        let fences: Vec<Fence> = completions.iter().map(|c| c.fence.clone()).collect();
        let held = held_fences(&txn, backend, &fences).await?;
        if held.is_empty() {
            txn.commit().await?;
            return Ok((held, false));
        }
        let mut done: Vec<&Completion> = completions
            .iter()
            .filter(|c| held.contains(&c.fence.task_id))
            .collect();
        done.sort_by_key(|c| c.fence.task_id);
        done.dedup_by_key(|c| c.fence.task_id);
        let ids: Vec<i64> = done.iter().map(|c| c.fence.task_id).collect();

        // Step indexes of the completed tasks (for their successors).
        let rows = txn
            .query_all_raw(stmt(
                backend,
                &format!(
                    "SELECT id, job_id, step_index FROM generation_tasks WHERE id IN ({})",
                    placeholders(padded_len(ids.len()))
                ),
                padded_ids(ids.iter().copied()),
            ))
            .await?;
        let mut steps = std::collections::HashMap::with_capacity(rows.len());
        for row in &rows {
            steps.insert(
                col::<i64>(row, 0)?,
                (col::<i64>(row, 1)?, col::<i32>(row, 2)?),
            );
        }

        let mut values = Vec::new();
        let result = case_by_id(
            "result_data",
            done.iter()
                .map(|c| (c.fence.task_id, json_text(&c.result).into()))
                .collect(),
            &mut values,
        );
        let input = case_by_id(
            "input_params",
            done.iter()
                .filter_map(|c| {
                    let s = c.started.as_ref()?;
                    Some((c.fence.task_id, json_text(&s.input_params).into()))
                })
                .collect(),
            &mut values,
        );
        let model = case_by_id(
            "model_name",
            done.iter()
                .filter_map(|c| {
                    let s = c.started.as_ref()?;
                    Some((c.fence.task_id, s.model_name.clone().into()))
                })
                .collect(),
            &mut values,
        );
        values.extend([now_ms.into(), now_ms.into()]);
        values.extend(padded_ids(ids.iter().copied()));
        txn.execute_raw(stmt(
            backend,
            &format!(
                "UPDATE generation_tasks SET status = 'completed', progress = 100, \
                 result_data = {result}, input_params = {input}, model_name = {model}, \
                 completed_at = ?, updated_at = ?, lease_owner = NULL, lease_expires_at = NULL \
                 WHERE id IN ({})",
                placeholders(padded_len(ids.len()))
            ),
            values,
        ))
        .await?;

        let mut advancing = Vec::new();
        let mut finished = Vec::new();
        for c in &done {
            let Some(&(job_id, step)) = steps.get(&c.fence.task_id) else {
                continue;
            };
            if c.is_last_step {
                finished.push(job_id);
            } else {
                advancing.push((job_id, step, c.job_progress));
            }
        }
        if !advancing.is_empty() {
            let mut values: Vec<Value> = vec![now_ms.into(), now_ms.into()];
            let mut pairs = Vec::with_capacity(padded_len(advancing.len()));
            for i in 0..padded_len(advancing.len()) {
                let (job_id, step, _) = advancing[i.min(advancing.len() - 1)];
                pairs.push("(job_id = ? AND step_index = ?)");
                values.push(job_id.into());
                values.push((step + 1).into());
            }
            txn.execute_raw(stmt(
                backend,
                &format!(
                    "UPDATE generation_tasks SET ready_at = ?, updated_at = ? \
                     WHERE status = 'pending' AND ({})",
                    pairs.join(" OR ")
                ),
                values,
            ))
            .await?;
        }
        // Jobs after tasks, in id order: the lock order every transaction follows.
        finished.sort_unstable();
        advancing.sort_unstable();
        if !finished.is_empty() {
            let mut values: Vec<Value> = vec![now_ms.into(), now_ms.into()];
            values.extend(padded_ids(finished.iter().copied()));
            txn.execute_raw(stmt(
                backend,
                &format!(
                    "UPDATE workflow_jobs SET status = 'completed', progress = 100, \
                     completed_at = ?, updated_at = ?, unique_key = NULL WHERE id IN ({})",
                    placeholders(padded_len(finished.len()))
                ),
                values,
            ))
            .await?;
        }
        if !advancing.is_empty() {
            let mut values = Vec::new();
            let step = case_by_id(
                "current_step_index",
                advancing
                    .iter()
                    .map(|(job, step, _)| (*job, (step + 1).into()))
                    .collect(),
                &mut values,
            );
            let progress = case_by_id(
                "progress",
                advancing
                    .iter()
                    .map(|(job, _, progress)| (*job, (*progress).into()))
                    .collect(),
                &mut values,
            );
            values.push(now_ms.into());
            values.extend(padded_ids(advancing.iter().map(|(job, _, _)| *job)));
            txn.execute_raw(stmt(
                backend,
                &format!(
                    "UPDATE workflow_jobs SET current_step_index = {step}, progress = {progress}, \
                     updated_at = ? WHERE id IN ({})",
                    placeholders(padded_len(advancing.len()))
                ),
                values,
            ))
            .await?;
        }
        txn.commit().await?;
        Ok((held, !advancing.is_empty()))
    }

    pub(crate) async fn fail_task_impl(
        &self,
        failure: &Failure,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let held = retrying(|| self.fail_once(failure, now)).await?;
        if held && failure.retry_at.is_some() {
            self.wake_local();
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
                     updated_at = ?{started} WHERE {FENCE}"
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
        if failure.retry_at.is_some() {
            self.announce_work(&txn).await?;
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
                txn.execute_raw(stmt(
                    backend,
                    &format!(
                        "UPDATE generation_tasks SET status = 'pending', ready_at = ?, \
                         attempts = attempts - 1, lease_owner = NULL, lease_expires_at = NULL, \
                         updated_at = ? WHERE {FENCE}"
                    ),
                    values,
                ))
                .await?;
            }
            self.announce_work(&txn).await?;
            txn.commit().await?;
            Ok(())
        })
        .await?;
        self.wake_local();
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
                "task {} is no longer held by this claim (attempt {} of {})",
                fence.task_id, fence.attempt, fence.owner
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
        retrying(|| async {
            match self.backend() {
                DbBackend::Postgres => self.progress_pg(updates, now).await,
                _ => self.progress_generic(updates, now).await,
            }
        })
        .await
    }

    async fn progress_pg(&self, updates: &[ProgressUpdate], now: DateTime<Utc>) -> Result<()> {
        let input: Vec<_> = updates
            .iter()
            .map(|u| {
                merge(
                    json!({
                        "id": u.fence.task_id,
                        "owner": u.fence.owner,
                        "attempt": u.fence.attempt,
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
                "WITH input AS ( \
                   SELECT * FROM json_to_recordset(?::json) AS x(id bigint, owner text, \
                   attempt int, progress int, job_progress int, started boolean, input text, \
                   model text) \
                 ), moved AS ( \
                   UPDATE generation_tasks t SET progress = x.progress, updated_at = ?, \
                   input_params = CASE WHEN x.started THEN x.input ELSE t.input_params END, \
                   model_name = CASE WHEN x.started THEN x.model ELSE t.model_name END \
                   FROM input x WHERE t.id = x.id AND t.status = 'running' \
                   AND t.lease_owner = x.owner AND t.attempts = x.attempt \
                   RETURNING t.job_id, x.job_progress \
                 ) \
                 UPDATE workflow_jobs w SET progress = m.job_progress, updated_at = ? \
                 FROM moved m WHERE w.id = m.job_id",
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
            .filter(|u| held.contains(&u.fence.task_id))
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
