//! Reading, listing and managing jobs: consume, cancel, resume, the lease sweep, pruning and
//! statistics.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use nosyntask_domain::{Job, JobId, JobStatus, JobWithTasks, TaskId};
use nosyntask_engine::StoreError;
use nosyntask_engine::ports::{JobFilter, JobVersion, StoreStats};
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, EntityTrait,
    IdenStatic, Iterable, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};

use crate::entities::{event_outbox, generation_tasks, workflow_jobs};
use crate::error::{Result, retrying, retrying_read};
use crate::from_entities;
use crate::history;
use crate::hooks::{Happened, HookEventKind};
use crate::owner_lease;
use crate::query::{literal, null_int, null_text, status_in, status_is};
use crate::sql::{
    self, IN_LIST_CHUNK, InListStatements, JOB_COLUMNS, MAX_JOBS_PER_READ, TASK_COLUMNS, col, ms,
    named, padded_ids, padded_len, placeholders, stmt, storable_text, time,
};
use crate::store::Store;

/// Rows deleted per prune transaction, so pruning never holds locks for long.
const PRUNE_BATCH: usize = 500;

/// The statement of [`load_jobs`] for `count` ids (a power of two, see [`padded_ids`]). Status
/// polling reads jobs for every open frontend, so this read is a hot path: each statement is
/// written once per process (no query building per request, a handful of statements for the
/// connections' statement caches) and decoded by name with the claim's decoders, selecting only
/// the columns a job read shows (docs/benchmarks.md, "Issue 11": through the entities' query
/// builder it read 0.76x as many jobs per second).
fn load_jobs_statement(count: usize) -> &'static str {
    static STATEMENTS: InListStatements = InListStatements::new();
    STATEMENTS.get(count, |list| {
        format!(
            "SELECT {}, {} FROM workflow_jobs j LEFT JOIN generation_tasks t ON t.job_id = j.id \
             WHERE j.id IN ({list}) ORDER BY j.id, t.item_index >= 0, t.step_index, t.item_index, t.id",
            *JOB_COLUMNS, *TASK_COLUMNS
        )
    })
}

/// A job with its tasks (in step order, a fan-out's items after their step) in one statement.
pub(crate) async fn load_job(
    conn: &impl ConnectionTrait,
    id: JobId,
) -> Result<Option<JobWithTasks>, DbErr> {
    Ok(load_jobs(conn, &[id]).await?.pop())
}

/// The jobs with `ids` that exist, with their tasks, in order of id: one statement per
/// [`MAX_JOBS_PER_READ`] ids, however many tasks they have.
pub(crate) async fn load_jobs(
    conn: &impl ConnectionTrait,
    ids: &[JobId],
) -> Result<Vec<JobWithTasks>, DbErr> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let mut jobs: Vec<JobWithTasks> = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(MAX_JOBS_PER_READ) {
        let values = padded_ids(chunk.iter().copied());
        let rows = conn
            .query_all_raw(stmt(
                conn.get_database_backend(),
                load_jobs_statement(values.len()),
                values,
            ))
            .await?;
        for row in &rows {
            let job_id: JobId = named(row, "j_id")?;
            if jobs.last().is_none_or(|last| last.job.id != job_id) {
                jobs.push(JobWithTasks {
                    job: sql::decode_job(row)?,
                    tasks: Vec::new(),
                    history: Vec::new(),
                });
            }
            // A job without tasks joins one row of NULL task columns.
            if named::<Option<i64>>(row, "id")?.is_some()
                && let Some(job) = jobs.last_mut()
            {
                job.tasks.push(sql::decode_task(row)?);
            }
        }
    }
    Ok(jobs)
}

async fn load(conn: &impl ConnectionTrait, id: JobId) -> Result<Job> {
    load_job(conn, id)
        .await?
        .map(|j| j.job)
        .ok_or_else(|| StoreError::NotFound(id).into())
}

fn parse_job_status(id: JobId, status: &str) -> Result<JobStatus> {
    status
        .parse()
        .map_err(|_| StoreError::Other(format!("job {id} has unknown status `{status}`")).into())
}

async fn status_of(conn: &impl ConnectionTrait, id: JobId) -> Result<JobStatus> {
    let status: String = workflow_jobs::Entity::find_by_id(id)
        .select_only()
        .column(workflow_jobs::Column::Status)
        .into_tuple()
        .one(conn)
        .await?
        .ok_or(StoreError::NotFound(id))?;
    parse_job_status(id, &status)
}

/// Locks the job's task rows, then the job row (the lock order of every transaction), and reads
/// the job's status and user. Cancel, resume and prune decide on what they read here, so two of
/// them (or one and a worker) can never both act on the same status. SQLite's write transactions
/// run one at a time, so there the reads alone are enough (sea-query writes no `FOR UPDATE` for
/// SQLite).
async fn lock_job(conn: &impl ConnectionTrait, id: JobId) -> Result<LockedJob> {
    use generation_tasks::Column as T;
    use workflow_jobs::Column as J;
    generation_tasks::Entity::find()
        .select_only()
        .column(T::Id)
        .filter(T::JobId.eq(id))
        .order_by_asc(T::Id)
        .lock_exclusive()
        .into_tuple::<i64>()
        .all(conn)
        .await?;
    let (status, user_id, total_steps): (String, i64, i32) = workflow_jobs::Entity::find_by_id(id)
        .select_only()
        .columns([J::Status, J::UserId, J::TotalSteps])
        .lock_exclusive()
        .into_tuple()
        .one(conn)
        .await?
        .ok_or(StoreError::NotFound(id))?;
    Ok(LockedJob {
        status: parse_job_status(id, &status)?,
        user_id,
        total_steps,
    })
}

/// What [`lock_job`] reads under its locks.
struct LockedJob {
    status: JobStatus,
    user_id: i64,
    total_steps: i32,
}

impl Store {
    pub(crate) async fn get_job_impl(&self, id: JobId) -> Result<Option<JobWithTasks>, StoreError> {
        Ok(self.get_jobs_impl(&[id]).await?.pop())
    }

    /// The jobs with `ids` that exist, in order of id, each with its tasks and history: two
    /// statements for up to [`MAX_JOBS_PER_READ`] jobs.
    pub(crate) async fn get_jobs_impl(
        &self,
        ids: &[JobId],
    ) -> Result<Vec<JobWithTasks>, StoreError> {
        retrying_read(|| async {
            let mut jobs = load_jobs(&self.inner.read, ids).await?;
            let found: Vec<JobId> = jobs.iter().map(|j| j.job.id).collect();
            let mut histories = history::load_for_jobs(&self.inner.read, &found).await?;
            for job in &mut jobs {
                job.history = histories.remove(&job.job.id).unwrap_or_default();
            }
            Ok(jobs)
        })
        .await
    }

    pub(crate) async fn list_jobs_impl(&self, filter: &JobFilter) -> Result<Vec<Job>, StoreError> {
        use workflow_jobs::Column as J;
        if filter.limit == 0 {
            return Ok(Vec::new());
        }
        let mut select = workflow_jobs::Entity::find();
        if filter.without_params {
            // A text literal that decodes as JSON `null`, the same on every backend.
            select = select
                .select_only()
                .columns(workflow_jobs::Column::iter().filter(|c| !matches!(c, J::InputParams)))
                .column_as(Expr::Constant("null".into()), J::InputParams.as_str());
        }
        let select = select
            .filter(list_condition(filter, true))
            .order_by_desc(J::Id)
            // No limit is `u64::MAX`, more than a database takes.
            .limit(std::cmp::min(filter.limit, i64::MAX as u64));
        retrying_read(|| async {
            let rows = select.clone().all(&self.inner.read).await?;
            Ok(rows
                .into_iter()
                .map(from_entities::job)
                .collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    pub(crate) async fn count_jobs_impl(
        &self,
        filter: &JobFilter,
    ) -> Result<Vec<(JobStatus, u64)>, StoreError> {
        use workflow_jobs::Column as J;
        let select = workflow_jobs::Entity::find()
            .select_only()
            .column(J::Status)
            .column_as(Expr::col(J::Id).count(), "jobs")
            .filter(list_condition(filter, false))
            .group_by(J::Status)
            .order_by_asc(J::Status);
        retrying_read(|| async {
            let rows: Vec<(String, i64)> =
                select.clone().into_tuple().all(&self.inner.read).await?;
            let mut counts = Vec::with_capacity(rows.len());
            for (status, jobs) in rows {
                let status = status.parse().map_err(|_| {
                    StoreError::Other(format!("a job has unknown status `{status}`"))
                })?;
                counts.push((status, u64::try_from(jobs).unwrap_or_default()));
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
        let txn = self.begin().await?;
        let cancelled = async {
            let (job, newly) = cancel_in(&txn, id, now).await?;
            if newly {
                let happened = Happened::new(id, None, &[HookEventKind::JobCancelled]);
                self.fire(&txn, &[happened]).await?;
                // The hook may have recorded its failure on the job.
                return load(&txn, id).await;
            }
            Ok(job)
        }
        .await;
        settle(txn, cancelled).await
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
        let txn = self.begin().await?;
        let resumed = self.resume_in(&txn, id, max_active_per_user, now).await;
        settle(txn, resumed).await
    }

    /// Resumes the job in `txn` (see [`Store::resume_job_impl`]); the caller settles `txn`.
    async fn resume_in(
        &self,
        txn: &DatabaseTransaction,
        id: JobId,
        max_active_per_user: Option<u64>,
        now: DateTime<Utc>,
    ) -> Result<Job> {
        use generation_tasks::Column as T;
        use workflow_jobs::Column as J;
        let now_ms = ms(now);
        if max_active_per_user.is_some() {
            // The user's starts and resumes take turns, so the quota count is exact.
            let user_id: i64 = workflow_jobs::Entity::find_by_id(id)
                .select_only()
                .column(J::UserId)
                .into_tuple()
                .one(txn)
                .await?
                .ok_or(StoreError::NotFound(id))?;
            self.lock_user(txn, user_id).await?;
        }
        let locked = lock_job(txn, id).await?;
        let status = locked.status;
        if !matches!(status, JobStatus::Failed | JobStatus::Cancelled) {
            return Err(StoreError::Conflict(format!(
                "job {id} is {status}; only failed or cancelled jobs can be resumed"
            ))
            .into());
        }
        if let Some(limit) = max_active_per_user {
            let active = workflow_jobs::Entity::find()
                .filter(J::UserId.eq(locked.user_id))
                .filter(status_in(J::Status, &["pending", "running"]))
                .count(txn)
                .await?;
            if active >= limit {
                return Err(StoreError::QuotaExceeded {
                    user_id: locked.user_id,
                    active,
                    limit,
                }
                .into());
            }
        }
        let unfinished = || {
            Condition::all()
                .add(T::JobId.eq(id))
                .add(T::Status.into_expr().ne(literal("completed")))
        };
        let Some(step) = generation_tasks::Entity::find()
            .select_only()
            .column(T::StepIndex)
            .filter(unfinished())
            .order_by_asc(T::StepIndex)
            .limit(1)
            .into_tuple::<i32>()
            .one(txn)
            .await?
        else {
            return Err(StoreError::Conflict(format!("job {id} has no unfinished step")).into());
        };
        // A new epoch: whatever the cancelled or failed attempt still writes is fenced off.
        let first_ready = Expr::case(
            Condition::all()
                .add(T::StepIndex.eq(step))
                .add(T::ItemIndex.lt(0)),
            now_ms,
        )
        .finally(null_int());
        generation_tasks::Entity::update_many()
            .col_expr(T::Status, literal("pending"))
            .col_expr(T::ReadyAt, first_ready.into())
            .col_expr(T::Attempts, Expr::value(0))
            .col_expr(T::ClaimEpoch, Expr::col(T::ClaimEpoch).add(1))
            .col_expr(T::Progress, Expr::value(0))
            .col_expr(T::ErrorMessage, null_text())
            .col_expr(T::CompletedAt, null_int())
            .col_expr(T::LeaseOwner, null_text())
            .col_expr(T::LeaseExpiresAt, null_int())
            .col_expr(T::UpdatedAt, Expr::value(now_ms))
            .filter(unfinished())
            .filter(T::StepIndex.gte(step))
            .exec(txn)
            .await?;
        let total = locked.total_steps;
        let progress = if total > 0 { step * 100 / total } else { 0 };
        let resumed = workflow_jobs::Entity::update_many()
            .col_expr(J::Status, literal("pending"))
            .col_expr(J::ErrorMessage, null_text())
            .col_expr(J::CompletedAt, null_int())
            .col_expr(J::CurrentStepIndex, Expr::value(step))
            .col_expr(J::Progress, Expr::value(progress))
            .col_expr(J::UniqueKey, Expr::col(J::UniqueKeyValue))
            .col_expr(J::UpdatedAt, Expr::value(now_ms))
            .filter(J::Id.eq(id))
            .filter(status_in(J::Status, &["failed", "cancelled"]))
            .exec(txn)
            .await;
        match resumed {
            Ok(_) => {}
            Err(err) if crate::error::is_unique_violation(&err) => {
                return Err(StoreError::Conflict(format!(
                    "job {id} cannot resume: another active job of the same kind holds its \
                     uniqueness key"
                ))
                .into());
            }
            Err(err) => return Err(err.into()),
        }
        load(txn, id).await
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
            let requeued = owner_lease::requeue_lapsed(&txn, now).await?;
            // Cancelled tasks keep their owner only until their lease would have run out (or,
            // while their owner's lease holds, a while after the cancel): long enough for the
            // worker to see the cancellation, and `cancelled_claims` stays short.
            txn.execute_raw(stmt(
                backend,
                "UPDATE generation_tasks SET lease_owner = NULL, lease_expires_at = NULL \
                 WHERE status = 'cancelled' AND lease_expires_at < ? AND (completed_at < ? \
                 OR NOT EXISTS (SELECT 1 FROM owner_leases o \
                 WHERE o.owner = generation_tasks.lease_owner))",
                vec![
                    now_ms.into(),
                    (now_ms - owner_lease::CANCEL_NOTICE_MS).into(),
                ],
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
                .add(J::CompletedAt.lt(std::cmp::max(consumed, unconsumed)))
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
        event_outbox::Entity::delete_many()
            .filter(event_outbox::Column::JobId.is_in(padded(&ids)))
            .exec(&txn)
            .await?;
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
        use generation_tasks::Column as T;
        use workflow_jobs::Column as J;
        let now_ms = ms(now);
        let pending = || status_is(T::Status, "pending");
        retrying_read(|| async {
            let read = &self.inner.read;
            // Each count names its status inline, so PostgreSQL serves it from the partial
            // index of active tasks (`ix_generation_tasks_claim`).
            let count = |condition: Condition| async move {
                let tasks: i64 = generation_tasks::Entity::find()
                    .select_only()
                    .column_as(Expr::col(T::Id).count(), "tasks")
                    .filter(condition)
                    .into_tuple()
                    .one(read)
                    .await?
                    .unwrap_or_default();
                Ok::<_, DbErr>(u64::try_from(tasks).unwrap_or_default())
            };
            let ready = count(Condition::all().add(pending()).add(T::ReadyAt.lte(now_ms))).await?;
            let scheduled =
                count(Condition::all().add(pending()).add(T::ReadyAt.gt(now_ms))).await?;
            let running = count(Condition::all().add(status_is(T::Status, "running"))).await?;
            // Active jobs only, through the partial index of active jobs: the cost follows the
            // work in flight, never the history kept in the table.
            let rows: Vec<(String, i64)> = workflow_jobs::Entity::find()
                .select_only()
                .column(J::Status)
                .column_as(Expr::col(J::Id).count(), "jobs")
                .filter(status_in(J::Status, &["pending", "running"]))
                .group_by(J::Status)
                .into_tuple()
                .all(read)
                .await?;
            let jobs_by_status = rows
                .into_iter()
                .map(|(status, jobs)| (status, u64::try_from(jobs).unwrap_or_default()))
                .collect::<BTreeMap<_, _>>();
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

/// The conditions of a job list; `page` adds the status and `before` filters, which a count by
/// status leaves out.
fn list_condition(filter: &JobFilter, page: bool) -> Condition {
    use workflow_jobs::Column as J;
    let mut condition = Condition::all();
    if let Some(user) = filter.user_id {
        condition = condition.add(J::UserId.eq(user));
    }
    if let Some(project) = filter.project_id {
        condition = condition.add(J::ProjectId.eq(project));
    }
    if let Some(workflow_type) = &filter.workflow_type {
        condition = condition.add(J::WorkflowType.eq(storable_text(workflow_type)));
    }
    if page && !filter.statuses.is_empty() {
        let statuses: Vec<&str> = filter.statuses.iter().map(|s| s.as_str()).collect();
        condition = condition.add(status_in(J::Status, &statuses));
    }
    if filter.active_only {
        condition = condition.add(
            Condition::any()
                .add(status_in(J::Status, &["pending", "running"]))
                .add(
                    Condition::all()
                        .add(status_in(J::Status, &["completed", "failed"]))
                        .add(J::IsConsumed.eq(false)),
                ),
        );
    }
    if let Some(text) = &filter.params_text {
        // Both sides in lower case: the column's collation may be a binary one (the MySQL test
        // databases' is), and PostgreSQL's LIKE is case-sensitive.
        let pattern = LikeExpr::new(contains_pattern(text).to_lowercase()).escape('!');
        condition = condition.add(Expr::expr(Func::lower(Expr::col(J::InputParams))).like(pattern));
    }
    if let (true, Some(before)) = (page, filter.before) {
        condition = condition.add(J::Id.lt(before));
    }
    condition
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

/// Cancels the job in `txn` (see [`Store::cancel_job_impl`]); the caller settles `txn`. With
/// whether this call cancelled it (not a cancel before it).
async fn cancel_in(
    txn: &DatabaseTransaction,
    id: JobId,
    now: DateTime<Utc>,
) -> Result<(Job, bool)> {
    use generation_tasks::Column as T;
    use workflow_jobs::Column as J;
    let now_ms = ms(now);
    match lock_job(txn, id).await?.status {
        JobStatus::Completed => return Err(already_completed(id)),
        JobStatus::Cancelled => return Ok((load(txn, id).await?, false)),
        _ => {}
    }
    history::record_cancelled(txn, id, now).await?;
    // Tasks first, then the job: the lock order of every transaction. Running tasks keep
    // their lease owner so the worker running them learns of the cancellation.
    generation_tasks::Entity::update_many()
        .col_expr(T::Status, literal("cancelled"))
        .col_expr(T::ReadyAt, null_int())
        .col_expr(T::CompletedAt, Expr::value(now_ms))
        .col_expr(T::UpdatedAt, Expr::value(now_ms))
        .filter(T::JobId.eq(id))
        .filter(status_in(T::Status, &["pending", "running"]))
        .exec(txn)
        .await?;
    let updated = workflow_jobs::Entity::update_many()
        .col_expr(J::Status, literal("cancelled"))
        .col_expr(J::CompletedAt, Expr::value(now_ms))
        .col_expr(J::UpdatedAt, Expr::value(now_ms))
        .col_expr(J::UniqueKey, null_text())
        .filter(J::Id.eq(id))
        .filter(status_in(J::Status, &["pending", "running", "failed"]))
        .exec(txn)
        .await?;
    if updated.rows_affected == 0 {
        // A completion or another cancel committed in between.
        let status = status_of(txn, id).await?;
        if status == JobStatus::Completed {
            return Err(already_completed(id));
        }
    }
    Ok((load(txn, id).await?, updated.rows_affected > 0))
}

/// Commits `txn` when `result` is a success and rolls it back otherwise, so no refusal leaves
/// its row locks to a dropped transaction: sqlx rolls one back only when its connection is next
/// used, and until then a claim's `SKIP LOCKED` passes over the job's tasks (seen as a job
/// stuck pending after a refused resume in the admin storm on PostgreSQL).
pub(crate) async fn settle<T>(txn: DatabaseTransaction, result: Result<T>) -> Result<T> {
    match result {
        Ok(value) => {
            txn.commit().await?;
            Ok(value)
        }
        Err(err) => {
            // The refusal is the answer; a rollback that fails too (a lost connection) ends
            // the transaction anyway.
            let _ = txn.rollback().await;
            Err(err)
        }
    }
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
