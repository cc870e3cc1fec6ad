//! Reading, listing and managing jobs: consume, cancel, resume, the lease sweep, pruning and
//! statistics.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use nosyntask_domain::{Job, JobId, JobStatus, JobWithTasks, TaskId};
use nosyntask_engine::StoreError;
use nosyntask_engine::ports::{JobFilter, JobVersion, StoreStats};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Value,
};

use crate::create::load_job;
use crate::entities::{generation_tasks, workflow_jobs};
use crate::error::{Result, retrying, retrying_read};
use crate::from_entities;
use crate::history;
use crate::sql::{
    IN_LIST_CHUNK, JOB_COLUMNS, col, decode_job, ms, padded_ids, padded_len, placeholders, stmt,
    time,
};
use crate::store::Store;

/// Rows deleted per prune transaction, so pruning never holds locks for long.
const PRUNE_BATCH: usize = 500;

async fn load(conn: &impl ConnectionTrait, id: JobId) -> Result<Job> {
    load_job(conn, id)
        .await?
        .map(|j| j.job)
        .ok_or_else(|| StoreError::NotFound(id).into())
}

async fn status_of(conn: &impl ConnectionTrait, id: JobId) -> Result<JobStatus> {
    let backend = conn.get_database_backend();
    let row = conn
        .query_one_raw(stmt(
            backend,
            "SELECT status FROM workflow_jobs WHERE id = ?",
            vec![id.into()],
        ))
        .await?
        .ok_or(StoreError::NotFound(id))?;
    let status: String = col(&row, 0)?;
    status
        .parse()
        .map_err(|_| StoreError::Other(format!("job {id} has unknown status `{status}`")).into())
}

/// ` FOR UPDATE` where the database locks rows; nothing on SQLite, whose write transactions run
/// one at a time.
fn row_lock(backend: DbBackend) -> &'static str {
    if backend == DbBackend::Sqlite {
        ""
    } else {
        " FOR UPDATE"
    }
}

/// Locks the job's task rows, then the job row (the lock order of every transaction), and reads
/// the job's status and user. Cancel, resume and prune decide on what they read here, so two of
/// them (or one and a worker) can never both act on the same status. SQLite's write transactions
/// run one at a time, so there the reads alone are enough.
async fn lock_job(conn: &impl ConnectionTrait, id: JobId) -> Result<(JobStatus, i64)> {
    let backend = conn.get_database_backend();
    let lock = row_lock(backend);
    conn.query_all_raw(stmt(
        backend,
        &format!("SELECT id FROM generation_tasks WHERE job_id = ? ORDER BY id{lock}"),
        vec![id.into()],
    ))
    .await?;
    let row = conn
        .query_one_raw(stmt(
            backend,
            &format!("SELECT status, user_id FROM workflow_jobs WHERE id = ?{lock}"),
            vec![id.into()],
        ))
        .await?
        .ok_or(StoreError::NotFound(id))?;
    let status: String = col(&row, 0)?;
    let status = status
        .parse()
        .map_err(|_| StoreError::Other(format!("job {id} has unknown status `{status}`")))?;
    Ok((status, col(&row, 1)?))
}

impl Store {
    pub(crate) async fn get_job_impl(&self, id: JobId) -> Result<Option<JobWithTasks>, StoreError> {
        retrying_read(|| async {
            let Some(mut job) = load_job(&self.inner.read, id).await? else {
                return Ok(None);
            };
            job.history = history::load(&self.inner.read, id).await?;
            Ok(Some(job))
        })
        .await
    }

    pub(crate) async fn list_jobs_impl(&self, filter: &JobFilter) -> Result<Vec<Job>, StoreError> {
        if filter.limit == 0 {
            return Ok(Vec::new());
        }
        let columns = if filter.without_params {
            // A text literal that decodes as JSON `null`, the same on every backend.
            JOB_COLUMNS.replace("j.input_params", "'null'")
        } else {
            JOB_COLUMNS.clone()
        };
        let (conditions, mut values) = list_conditions(self.backend(), filter, true);
        let mut sql = format!("SELECT {columns} FROM workflow_jobs j WHERE 1 = 1{conditions}");
        sql.push_str(" ORDER BY j.id DESC LIMIT ?");
        values.push(i64::try_from(filter.limit).unwrap_or(i64::MAX).into());
        retrying_read(|| async {
            let rows = self
                .inner
                .read
                .query_all_raw(stmt(self.backend(), &sql, values.clone()))
                .await?;
            Ok(rows
                .iter()
                .map(|row| decode_job(row, 0))
                .collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    pub(crate) async fn count_jobs_impl(
        &self,
        filter: &JobFilter,
    ) -> Result<Vec<(JobStatus, u64)>, StoreError> {
        let (conditions, values) = list_conditions(self.backend(), filter, false);
        let sql = format!(
            "SELECT j.status, COUNT(*) FROM workflow_jobs j WHERE 1 = 1{conditions} \
             GROUP BY j.status ORDER BY j.status"
        );
        retrying_read(|| async {
            let rows = self
                .inner
                .read
                .query_all_raw(stmt(self.backend(), &sql, values.clone()))
                .await?;
            let mut counts = Vec::with_capacity(rows.len());
            for row in &rows {
                let status: String = col(row, 0)?;
                let status = status.parse().map_err(|_| {
                    StoreError::Other(format!("a job has unknown status `{status}`"))
                })?;
                counts.push((
                    status,
                    u64::try_from(col::<i64>(row, 1)?).unwrap_or_default(),
                ));
            }
            Ok(counts)
        })
        .await
    }

    pub(crate) async fn consume_job_impl(
        &self,
        id: JobId,
        now: DateTime<Utc>,
    ) -> Result<Job, StoreError> {
        use workflow_jobs::Column as J;
        retrying(|| async {
            let write = &self.inner.write;
            let updated = workflow_jobs::Entity::update_many()
                // `updated_at` first: MySQL assigns left to right, seeing earlier ones.
                .col_expr(
                    J::UpdatedAt,
                    Expr::case(Expr::col(J::IsConsumed), Expr::col(J::UpdatedAt))
                        .finally(ms(now))
                        .into(),
                )
                .col_expr(J::IsConsumed, Expr::value(true))
                .filter(J::Id.eq(id))
                .exec(write)
                .await?;
            if updated.rows_affected == 0 {
                return Err(StoreError::NotFound(id).into());
            }
            let row = workflow_jobs::Entity::find_by_id(id)
                .one(write)
                .await?
                .ok_or(StoreError::NotFound(id))?;
            Ok(from_entities::job(row)?)
        })
        .await
    }

    pub(crate) async fn cancel_job_impl(
        &self,
        id: JobId,
        now: DateTime<Utc>,
    ) -> Result<Job, StoreError> {
        retrying(|| self.cancel_once(id, now)).await
    }

    async fn cancel_once(&self, id: JobId, now: DateTime<Utc>) -> Result<Job> {
        let backend = self.backend();
        let now_ms = ms(now);
        let txn = self.begin().await?;
        match lock_job(&txn, id).await?.0 {
            JobStatus::Completed => return Err(already_completed(id)),
            JobStatus::Cancelled => {
                let job = load(&txn, id).await?;
                txn.commit().await?;
                return Ok(job);
            }
            _ => {}
        }
        history::record_cancelled(&txn, id, now).await?;
        // Tasks first, then the job: the lock order of every transaction. Running tasks keep
        // their lease owner so the worker running them learns of the cancellation.
        txn.execute_raw(stmt(
            backend,
            "UPDATE generation_tasks SET status = 'cancelled', ready_at = NULL, \
             completed_at = ?, updated_at = ? \
             WHERE job_id = ? AND status IN ('pending', 'running')",
            vec![now_ms.into(), now_ms.into(), id.into()],
        ))
        .await?;
        let updated = txn
            .execute_raw(stmt(
                backend,
                "UPDATE workflow_jobs SET status = 'cancelled', completed_at = ?, updated_at = ?, \
                 unique_key = NULL WHERE id = ? AND status IN ('pending', 'running', 'failed')",
                vec![now_ms.into(), now_ms.into(), id.into()],
            ))
            .await?;
        if updated.rows_affected() == 0 {
            // A completion or another cancel committed in between.
            let status = status_of(&txn, id).await?;
            if status == JobStatus::Completed {
                return Err(already_completed(id));
            }
        }
        let job = load(&txn, id).await?;
        txn.commit().await?;
        Ok(job)
    }

    pub(crate) async fn resume_job_impl(
        &self,
        id: JobId,
        max_active_per_user: Option<u64>,
        now: DateTime<Utc>,
    ) -> Result<Job, StoreError> {
        let job = retrying(|| self.resume_once(id, max_active_per_user, now)).await?;
        self.announce();
        Ok(job)
    }

    async fn resume_once(
        &self,
        id: JobId,
        max_active_per_user: Option<u64>,
        now: DateTime<Utc>,
    ) -> Result<Job> {
        let backend = self.backend();
        let now_ms = ms(now);
        let txn = self.begin().await?;
        if max_active_per_user.is_some() {
            // The user's starts and resumes take turns, so the quota count is exact.
            let user_id = txn
                .query_one_raw(stmt(
                    backend,
                    "SELECT user_id FROM workflow_jobs WHERE id = ?",
                    vec![id.into()],
                ))
                .await?
                .ok_or(StoreError::NotFound(id))
                .and_then(|row| {
                    col::<i64>(&row, 0).map_err(|e| StoreError::Other(e.to_string()))
                })?;
            self.lock_user(&txn, user_id).await?;
        }
        let (status, user_id) = lock_job(&txn, id).await?;
        if !matches!(status, JobStatus::Failed | JobStatus::Cancelled) {
            return Err(StoreError::Conflict(format!(
                "job {id} is {status}; only failed or cancelled jobs can be resumed"
            ))
            .into());
        }
        if let Some(limit) = max_active_per_user {
            let row = txn
                .query_one_raw(stmt(
                    backend,
                    "SELECT COUNT(*) FROM workflow_jobs \
                     WHERE user_id = ? AND status IN ('pending', 'running')",
                    vec![user_id.into()],
                ))
                .await?;
            let active = row
                .map(|row| col::<i64>(&row, 0))
                .transpose()?
                .map_or(0, |n| u64::try_from(n).unwrap_or_default());
            if active >= limit {
                txn.rollback().await?;
                return Err(StoreError::QuotaExceeded {
                    user_id,
                    active,
                    limit,
                }
                .into());
            }
        }
        let rows = txn
            .query_all_raw(stmt(
                backend,
                "SELECT t.step_index, j.total_steps FROM generation_tasks t \
                 JOIN workflow_jobs j ON j.id = t.job_id \
                 WHERE t.job_id = ? AND t.status <> 'completed' ORDER BY t.step_index",
                vec![id.into()],
            ))
            .await?;
        let Some(first) = rows.first() else {
            return Err(StoreError::Conflict(format!("job {id} has no unfinished step")).into());
        };
        let step: i32 = col(first, 0)?;
        let total: i32 = col(first, 1)?;
        txn.execute_raw(stmt(
            backend,
            // A new epoch: whatever the cancelled or failed attempt still writes is fenced off.
            "UPDATE generation_tasks SET status = 'pending', \
             ready_at = CASE WHEN step_index = ? AND item_index < 0 THEN ? ELSE NULL END, \
             attempts = 0, claim_epoch = claim_epoch + 1, progress = 0, error_message = NULL, \
             completed_at = NULL, lease_owner = NULL, lease_expires_at = NULL, updated_at = ? \
             WHERE job_id = ? AND step_index >= ? AND status <> 'completed'",
            vec![
                step.into(),
                now_ms.into(),
                now_ms.into(),
                id.into(),
                step.into(),
            ],
        ))
        .await?;
        let progress = if total > 0 { step * 100 / total } else { 0 };
        let resumed = txn
            .execute_raw(stmt(
                backend,
                "UPDATE workflow_jobs SET status = 'pending', error_message = NULL, \
                 completed_at = NULL, current_step_index = ?, progress = ?, \
                 unique_key = unique_key_value, updated_at = ? \
                 WHERE id = ? AND status IN ('failed', 'cancelled')",
                vec![step.into(), progress.into(), now_ms.into(), id.into()],
            ))
            .await;
        match resumed {
            Ok(_) => {}
            Err(err) if crate::error::is_unique_violation(&err) => {
                txn.rollback().await?;
                return Err(StoreError::Conflict(format!(
                    "job {id} cannot resume: another active job of the same kind holds its \
                     uniqueness key"
                ))
                .into());
            }
            Err(err) => return Err(err.into()),
        }
        let job = load(&txn, id).await?;
        txn.commit().await?;
        Ok(job)
    }

    pub(crate) async fn cancelled_claims_impl(
        &self,
        owner: &str,
    ) -> Result<Vec<TaskId>, StoreError> {
        retrying_read(|| async {
            let rows = self
                .inner
                .read
                .query_all_raw(stmt(
                    self.backend(),
                    "SELECT id FROM generation_tasks WHERE lease_owner = ? AND status = 'cancelled' \
                     ORDER BY id",
                    vec![owner.to_owned().into()],
                ))
                .await?;
            Ok(rows
                .iter()
                .map(|row| col::<i64>(row, 0))
                .collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    pub(crate) async fn requeue_expired_impl(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let requeued = retrying(|| async {
            let backend = self.backend();
            let now_ms = ms(now);
            let txn = crate::store::begin_on(&self.inner.heartbeat, backend).await?;
            // Owner and epoch stay: a runner that is alive but lost the database for a while
            // takes its task back with its next renewal, unless another claim came first.
            let requeued = txn
                .execute_raw(stmt(
                    backend,
                    "UPDATE generation_tasks SET status = 'pending', ready_at = ?, \
                     updated_at = ? WHERE status = 'running' AND lease_expires_at < ?",
                    vec![now_ms.into(), now_ms.into(), now_ms.into()],
                ))
                .await?
                .rows_affected();
            // Cancelled tasks keep their owner only until their lease would have run out: long
            // enough for the worker to see the cancellation, and `cancelled_claims` stays short.
            txn.execute_raw(stmt(
                backend,
                "UPDATE generation_tasks SET lease_owner = NULL, lease_expires_at = NULL \
                 WHERE status = 'cancelled' AND lease_expires_at < ?",
                vec![now_ms.into()],
            ))
            .await?;
            txn.commit().await?;
            Ok(requeued)
        })
        .await?;
        if requeued > 0 {
            self.announce();
        }
        Ok(requeued)
    }

    pub(crate) async fn prune_impl(
        &self,
        consumed_before: DateTime<Utc>,
        unconsumed_before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let consumed = ms(consumed_before);
        let unconsumed = ms(unconsumed_before);
        let mut total = 0;
        loop {
            let (deleted, full) = retrying(|| self.prune_batch(consumed, unconsumed)).await?;
            total += deleted;
            if !full {
                return Ok(total);
            }
        }
    }

    /// Deletes one batch; says how many and whether the batch was full (more may be left).
    async fn prune_batch(&self, consumed: i64, unconsumed: i64) -> Result<(u64, bool)> {
        use generation_tasks::Column as T;
        use workflow_jobs::Column as J;
        // Terminal, and completed before the cut-off of its kind (consumed or not).
        let old = || {
            Condition::all()
                .add(J::Status.is_in(["completed", "failed", "cancelled"]))
                .add(J::CompletedAt.lt(consumed.max(unconsumed)))
                .add(
                    Condition::any()
                        .add(
                            Condition::all()
                                .add(J::IsConsumed.eq(true))
                                .add(J::CompletedAt.lt(consumed)),
                        )
                        .add(
                            Condition::all()
                                .add(J::IsConsumed.eq(false))
                                .add(J::CompletedAt.lt(unconsumed)),
                        ),
                )
        };
        let txn = self.begin().await?;
        let candidates: Vec<i64> = workflow_jobs::Entity::find()
            .select_only()
            .column(J::Id)
            .filter(old())
            .order_by_asc(J::Id)
            .limit(PRUNE_BATCH as u64)
            .into_tuple()
            .all(&txn)
            .await?;
        if candidates.is_empty() {
            txn.commit().await?;
            return Ok((0, false));
        }
        // The candidates were read without locks: a resume may have made one active since. Lock
        // their tasks, then the jobs (the lock order), and delete only the jobs that are still
        // old and terminal under those locks, with their tasks. (`FOR UPDATE` is left out on
        // SQLite, whose write transactions run one at a time.) Id lists are padded
        // (`padded_ids`), so the statements come in a few shapes the statement cache keeps.
        let padded = |ids: &[i64]| padded_ids(ids.iter().copied());
        generation_tasks::Entity::find()
            .select_only()
            .column(T::Id)
            .filter(T::JobId.is_in(padded(&candidates)))
            .order_by_asc(T::Id)
            .lock_exclusive()
            .into_tuple::<i64>()
            .all(&txn)
            .await?;
        let ids: Vec<i64> = workflow_jobs::Entity::find()
            .select_only()
            .column(J::Id)
            .filter(J::Id.is_in(padded(&candidates)))
            .filter(old())
            .order_by_asc(J::Id)
            .lock_exclusive()
            .into_tuple()
            .all(&txn)
            .await?;
        if ids.is_empty() {
            txn.commit().await?;
            return Ok((0, candidates.len() == PRUNE_BATCH));
        }
        history::delete_for_jobs(&txn, &ids).await?;
        generation_tasks::Entity::delete_many()
            .filter(T::JobId.is_in(padded(&ids)))
            .exec(&txn)
            .await?;
        let deleted = workflow_jobs::Entity::delete_many()
            .filter(J::Id.is_in(padded(&ids)))
            .exec(&txn)
            .await?
            .rows_affected;
        txn.commit().await?;
        Ok((deleted, candidates.len() == PRUNE_BATCH))
    }

    pub(crate) async fn job_versions_impl(
        &self,
        ids: &[JobId],
    ) -> Result<Vec<JobVersion>, StoreError> {
        let mut versions = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(IN_LIST_CHUNK) {
            versions.extend(retrying_read(|| self.job_versions_chunk(chunk)).await?);
        }
        Ok(versions)
    }

    async fn job_versions_chunk(&self, ids: &[JobId]) -> Result<Vec<JobVersion>> {
        let rows = self
            .inner
            .read
            .query_all_raw(stmt(
                self.backend(),
                &format!(
                    "SELECT j.id, j.status, j.progress, j.updated_at, \
                     (SELECT MAX(t.updated_at) FROM generation_tasks t WHERE t.job_id = j.id) \
                     FROM workflow_jobs j WHERE j.id IN ({})",
                    placeholders(padded_len(ids.len()))
                ),
                padded_ids(ids.iter().copied()),
            ))
            .await?;
        let mut versions = Vec::with_capacity(rows.len());
        for row in &rows {
            let status: String = col(row, 1)?;
            versions.push(JobVersion {
                job_id: col(row, 0)?,
                status: status
                    .parse()
                    .map_err(|_| StoreError::Other(format!("unknown job status `{status}`")))?,
                progress: col(row, 2)?,
                updated_at: time(col(row, 3)?),
                tasks_updated_at: col::<Option<i64>>(row, 4)?.map(time),
            });
        }
        Ok(versions)
    }

    pub(crate) async fn stats_impl(&self, now: DateTime<Utc>) -> Result<StoreStats, StoreError> {
        retrying_read(|| async {
            let backend = self.backend();
            let now_ms = ms(now);
            let row = self
                .inner
                .read
                .query_one_raw(stmt(
                    backend,
                    "SELECT \
                     (SELECT COUNT(*) FROM generation_tasks WHERE status = 'pending' \
                      AND ready_at <= ?), \
                     (SELECT COUNT(*) FROM generation_tasks WHERE status = 'pending' \
                      AND ready_at > ?), \
                     (SELECT COUNT(*) FROM generation_tasks WHERE status = 'running')",
                    vec![now_ms.into(), now_ms.into()],
                ))
                .await?
                .ok_or_else(|| StoreError::Other("stats returned no row".to_owned()))?;
            let count =
                |i| -> Result<u64> { Ok(u64::try_from(col::<i64>(&row, i)?).unwrap_or_default()) };
            let (ready, scheduled, running) = (count(0)?, count(1)?, count(2)?);
            let rows = self
                .inner
                .read
                .query_all_raw(stmt(
                    backend,
                    // Active jobs only, through the (status, completed_at) index: the cost
                    // follows the work in flight, never the history kept in the table.
                    "SELECT status, COUNT(*) FROM workflow_jobs \
                     WHERE status IN ('pending', 'running') GROUP BY status",
                    Vec::new(),
                ))
                .await?;
            let mut jobs_by_status = BTreeMap::new();
            for row in &rows {
                jobs_by_status.insert(
                    col::<String>(row, 0)?,
                    u64::try_from(col::<i64>(row, 1)?).unwrap_or_default(),
                );
            }
            Ok(StoreStats {
                ready,
                scheduled,
                running,
                jobs_by_status,
            })
        })
        .await
    }
}

/// The `AND …` conditions of a job list and their values; `page` adds the status and `before`
/// filters, which a count by status leaves out.
fn list_conditions(backend: DbBackend, filter: &JobFilter, page: bool) -> (String, Vec<Value>) {
    let mut sql = String::new();
    let mut values: Vec<Value> = Vec::new();
    if let Some(user) = filter.user_id {
        sql.push_str(" AND j.user_id = ?");
        values.push(user.into());
    }
    if let Some(project) = filter.project_id {
        sql.push_str(" AND j.project_id = ?");
        values.push(project.into());
    }
    if let Some(workflow_type) = &filter.workflow_type {
        sql.push_str(" AND j.workflow_type = ?");
        values.push(workflow_type.clone().into());
    }
    if page && !filter.statuses.is_empty() {
        sql.push_str(&format!(
            " AND j.status IN ({})",
            placeholders(filter.statuses.len())
        ));
        values.extend(filter.statuses.iter().map(|s| Value::from(s.as_str())));
    }
    if filter.active_only {
        sql.push_str(
            " AND (j.status IN ('pending', 'running') \
             OR (j.status IN ('completed', 'failed') AND j.is_consumed = FALSE))",
        );
    }
    if let Some(text) = &filter.params_text {
        let pattern = contains_pattern(text);
        let (condition, pattern) = match backend {
            DbBackend::Postgres => (" AND j.input_params ILIKE ? ESCAPE '!'", pattern),
            // The column's collation may be a binary one (the test databases' is): both sides
            // in lower case.
            DbBackend::MySql => (
                " AND LOWER(j.input_params) LIKE ? ESCAPE '!'",
                pattern.to_lowercase(),
            ),
            // SQLite's LIKE ignores the case of ASCII letters.
            _ => (" AND j.input_params LIKE ? ESCAPE '!'", pattern),
        };
        sql.push_str(condition);
        values.push(pattern.into());
    }
    if let (true, Some(before)) = (page, filter.before) {
        sql.push_str(" AND j.id < ?");
        values.push(before.into());
    }
    (sql, values)
}

/// The `LIKE … ESCAPE '!'` pattern of params text containing `text`: the text as it is written
/// inside a JSON string (so `"` matches `\"` and a line break `\n`), its wildcards escaped.
fn contains_pattern(text: &str) -> String {
    let json = serde_json::to_string(text).unwrap_or_default();
    let inner = json
        .strip_prefix('"')
        .and_then(|j| j.strip_suffix('"'))
        .unwrap_or(&json);
    let mut pattern = String::with_capacity(inner.len() + 2);
    pattern.push('%');
    for c in inner.chars() {
        if matches!(c, '!' | '%' | '_') {
            pattern.push('!');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

fn already_completed(id: JobId) -> crate::error::Error {
    StoreError::Conflict(format!("job {id} is already completed")).into()
}

impl Store {
    /// The database's clock in epoch milliseconds, read by the database itself.
    pub(crate) async fn database_time_impl(&self) -> Result<DateTime<Utc>, StoreError> {
        let sql = match self.backend() {
            DbBackend::Postgres => "SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::bigint",
            DbBackend::MySql => {
                "SELECT CAST(UNIX_TIMESTAMP(CURRENT_TIMESTAMP(3)) * 1000 AS SIGNED)"
            }
            _ => "SELECT CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)",
        };
        retrying_read(|| async {
            let row = self
                .inner
                .heartbeat
                .query_one_raw(stmt(self.backend(), sql, Vec::new()))
                .await?
                .ok_or_else(|| StoreError::Other("the clock query returned no row".to_owned()))?;
            Ok(crate::sql::time(col::<i64>(&row, 0)?))
        })
        .await
    }
}
