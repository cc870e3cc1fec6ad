//! Fan-out steps: the item tasks of a step that maps over a list. The step's own task is the
//! coordinator: it creates the items, keeps at most its limit of them ready or running (the
//! next ones become ready as earlier ones finish), and completes the step once every item has
//! finished. Items complete and fail on their own rows only; their job moves with the step.

use chrono::{DateTime, Utc};
use nosyntask_domain::{AttemptOutcome, TaskStatus};
use nosyntask_engine::StoreError;
use nosyntask_engine::ports::{Fence, ItemState, StepStarted};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Value};

use crate::error::{Result, retrying};
use crate::finish::{FENCE, fence_values, started_set};
use crate::history;
use crate::hooks::{Happened, HookEventKind};
use crate::sql::{
    self, IN_LIST_CHUNK, col, json_text, ms, padded_ids, padded_len, placeholders, stmt,
};
use crate::store::Store;

impl Store {
    pub(crate) async fn sync_items_impl(
        &self,
        parent: &Fence,
        items: Option<&[serde_json::Value]>,
        model_name: Option<&str>,
        reset_unfinished: bool,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<ItemState>, StoreError> {
        let (states, readied) =
            retrying(|| self.sync_once(parent, items, model_name, reset_unfinished, limit, now))
                .await?;
        if readied {
            self.announce();
        }
        Ok(states)
    }

    async fn sync_once(
        &self,
        parent: &Fence,
        items: Option<&[serde_json::Value]>,
        model_name: Option<&str>,
        reset_unfinished: bool,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<(Vec<ItemState>, bool)> {
        let backend = self.backend();
        let now_ms = ms(now);
        let lock = if backend == DbBackend::Sqlite {
            ""
        } else {
            " FOR UPDATE"
        };
        let txn = self.begin().await?;
        // The parent row, locked: one coordinator at a time, and only while its claim holds.
        let mut values: Vec<Value> = fence_values(parent).into();
        let Some(row) = txn
            .query_one_raw(stmt(
                backend,
                &format!(
                    "SELECT job_id, step_index, user_id, project_id, task_type, target_type, \
                     target_id, max_attempts, model_name, fair_offset FROM generation_tasks \
                     WHERE {FENCE}{lock}"
                ),
                std::mem::take(&mut values),
            ))
            .await?
        else {
            txn.rollback().await?;
            return Err(StoreError::Conflict(format!(
                "task {} is no longer held by this claim",
                parent.task_id
            ))
            .into());
        };
        let existing: i64 = txn
            .query_one_raw(stmt(
                backend,
                "SELECT COUNT(*) FROM generation_tasks WHERE parent_task_id = ?",
                vec![parent.task_id.into()],
            ))
            .await?
            .map_or(Ok(0), |r| col(&r, 0))?;
        if let Some(items) = items.filter(|_| existing == 0) {
            insert_items(
                &txn,
                backend,
                &row,
                parent.task_id,
                items,
                model_name,
                now_ms,
            )
            .await?;
        }
        if reset_unfinished {
            // A new epoch: a late write of the cancelled or failed attempt is fenced off.
            txn.execute_raw(stmt(
                backend,
                "UPDATE generation_tasks SET status = 'pending', ready_at = NULL, attempts = 0, \
                 claim_epoch = claim_epoch + 1, progress = 0, error_message = NULL, \
                 completed_at = NULL, lease_owner = NULL, lease_expires_at = NULL, \
                 updated_at = ? WHERE parent_task_id = ? AND status IN ('failed', 'cancelled')",
                vec![now_ms.into(), parent.task_id.into()],
            ))
            .await?;
        }
        let rows = txn
            .query_all_raw(stmt(
                backend,
                &format!(
                    "SELECT id, item_index, status, progress, result_data, error_message, \
                     ready_at FROM generation_tasks WHERE parent_task_id = ? \
                     ORDER BY item_index{lock}"
                ),
                vec![parent.task_id.into()],
            ))
            .await?;
        let mut states = Vec::with_capacity(rows.len());
        let mut waiting = Vec::new();
        let mut active = 0i64;
        for row in &rows {
            let status: String = col(row, 2)?;
            let status: TaskStatus = status
                .parse()
                .map_err(|_| DbErr::Type(format!("unknown status `{status}`")))?;
            let ready_at: Option<i64> = col(row, 6)?;
            match status {
                TaskStatus::Running => active += 1,
                TaskStatus::Pending if ready_at.is_some() => active += 1,
                TaskStatus::Pending => waiting.push(col::<i64>(row, 0)?),
                _ => {}
            }
            states.push(ItemState {
                index: col(row, 1)?,
                status,
                progress: col(row, 3)?,
                result: sql::parse_opt_json(col(row, 4)?, "generation_tasks.result_data")?,
                error: col(row, 5)?,
            });
        }
        let room = usize::try_from((i64::from(limit.max(1)) - active).max(0)).unwrap_or(0);
        let ready: Vec<i64> = waiting.into_iter().take(room).collect();
        for chunk in ready.chunks(IN_LIST_CHUNK) {
            let mut values: Vec<Value> = vec![now_ms.into(), now_ms.into()];
            values.extend(padded_ids(chunk.iter().copied()));
            txn.execute_raw(stmt(
                backend,
                &format!(
                    "UPDATE generation_tasks SET ready_at = ?, updated_at = ? WHERE id IN ({})",
                    placeholders(padded_len(chunk.len()))
                ),
                values,
            ))
            .await?;
        }
        txn.commit().await?;
        Ok((states, !ready.is_empty()))
    }

    pub(crate) async fn cancel_items_impl(
        &self,
        parent: &Fence,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        retrying(|| async {
            self.inner
                .write
                .execute_raw(stmt(
                    self.backend(),
                    "UPDATE generation_tasks SET status = 'cancelled', ready_at = NULL, \
                     completed_at = ?, updated_at = ? \
                     WHERE parent_task_id = ? AND status IN ('pending', 'running')",
                    vec![ms(now).into(), ms(now).into(), parent.task_id.into()],
                ))
                .await?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn finish_item_impl(
        &self,
        fence: &Fence,
        outcome: std::result::Result<&serde_json::Value, &str>,
        started: Option<&StepStarted>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (set_started, started_values) = started_set(started);
        let (set, mut values): (String, Vec<Value>) = match outcome {
            Ok(result) => (
                format!("status = 'completed', progress = 100, result_data = ?{set_started}"),
                vec![json_text(result).into()],
            ),
            Err(message) => (
                format!("status = 'failed', error_message = ?{set_started}"),
                vec![message.to_owned().into()],
            ),
        };
        values.extend(started_values);
        values.extend([ms(now).into(), ms(now).into()]);
        values.extend(fence_values(fence));
        let sql = format!(
            "UPDATE generation_tasks SET {set}, completed_at = ?, updated_at = ?, \
             lease_owner = NULL, lease_expires_at = NULL WHERE {FENCE}"
        );
        let (ended, error) = match outcome {
            Ok(_) => (AttemptOutcome::Completed, None),
            Err(message) => (AttemptOutcome::Failed, Some(message)),
        };
        retrying(|| async {
            let txn = self.begin().await?;
            let held = txn
                .execute_raw(stmt(self.backend(), &sql, values.clone()))
                .await?
                .rows_affected()
                > 0;
            if held {
                history::record_one(&txn, fence.task_id, &fence.owner, now, ended, error, 0)
                    .await?;
                let kind = match outcome {
                    Ok(_) => HookEventKind::StepCompleted,
                    Err(_) => HookEventKind::StepFailed,
                };
                let happened = Happened::new(fence.job_id, Some(fence.task_id), &[kind]);
                self.fire(&txn, &[happened]).await?;
            }
            txn.commit().await?;
            Ok(held)
        })
        .await
    }
}

/// Inserts the item rows of a step (pending, not ready), copying the step's task fields.
async fn insert_items(
    txn: &impl ConnectionTrait,
    backend: DbBackend,
    parent: &sea_orm::QueryResult,
    parent_id: i64,
    items: &[serde_json::Value],
    model_name: Option<&str>,
    now_ms: i64,
) -> Result<(), DbErr> {
    let job_id: i64 = col(parent, 0)?;
    let step: i32 = col(parent, 1)?;
    let user_id: i64 = col(parent, 2)?;
    let project_id: i64 = col(parent, 3)?;
    let task_type: String = col(parent, 4)?;
    let target_type: String = col(parent, 5)?;
    let target_id: Option<i64> = col(parent, 6)?;
    let max_attempts: i32 = col(parent, 7)?;
    // The items' model: the step's, else what the step's task recorded.
    let model_name: Option<String> = match model_name {
        Some(name) => Some(name.to_owned()),
        None => col(parent, 8)?,
    };
    let fair_offset: i64 = col(parent, 9)?;
    // 15 values a row: well inside every backend's variable limit per chunk.
    for (chunk_at, chunk) in items.chunks(500).enumerate() {
        let mut rows = Vec::with_capacity(chunk.len());
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 15);
        for (offset, item) in chunk.iter().enumerate() {
            let index = i32::try_from(chunk_at * 500 + offset).unwrap_or(i32::MAX);
            rows.push("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, 0, ?, ?)");
            values.extend([
                job_id.into(),
                step.into(),
                user_id.into(),
                project_id.into(),
                task_type.clone().into(),
                target_type.clone().into(),
                target_id.into(),
                max_attempts.into(),
                model_name.clone().into(),
                fair_offset.into(),
                json_text(item).into(),
                index.into(),
                parent_id.into(),
                now_ms.into(),
                now_ms.into(),
            ]);
        }
        txn.execute_raw(stmt(
            backend,
            &format!(
                "INSERT INTO generation_tasks (job_id, step_index, user_id, project_id, \
                 task_type, target_type, target_id, max_attempts, model_name, fair_offset, \
                 input_params, item_index, parent_task_id, status, progress, attempts, \
                 created_at, updated_at) VALUES {}",
                rows.join(", ")
            ),
            values,
        ))
        .await?;
    }
    Ok(())
}
