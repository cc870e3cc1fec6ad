//! Claiming ready tasks and renewing their leases.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};
use nosyntask_domain::{Job, JobStatus, TaskId};
use nosyntask_engine::StoreError;
use nosyntask_engine::ports::{ClaimedTask, Fence};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryResult, Value};
use serde_json::json;

use crate::error::{Result, retrying};
use crate::history;
use crate::sql::{
    self, FENCE_HOLDS, IN_LIST_CHUNK, IS_COMPLETED_BY_KEY, IS_PENDING_BY_KEY, JOB_COLUMNS,
    TASK_COLUMNS, col, ms, named, padded_ids, padded_len, placeholders, stmt,
};
use crate::store::{Store, begin_on};

pub(crate) fn lease_until(now: DateTime<Utc>, lease: Duration) -> i64 {
    ms(now).saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
}

/// The job as the claim left it: running, started.
fn started(mut job: Job, now: DateTime<Utc>) -> Job {
    if job.status == JobStatus::Pending {
        job.status = JobStatus::Running;
        job.updated_at = sql::time(ms(now));
    }
    if job.started_at.is_none() {
        job.started_at = Some(sql::time(ms(now)));
    }
    job
}

/// A claimed row: task columns, `checkpoint`, `claim_epoch`, then job columns.
fn claimed(
    row: &QueryResult,
    owner: &str,
    now: DateTime<Utc>,
    previous_results: BTreeMap<i32, serde_json::Value>,
) -> Result<ClaimedTask, DbErr> {
    let task = sql::decode_task(row)?;
    let checkpoint = sql::parse_opt_json(named(row, "checkpoint")?, "generation_tasks.checkpoint")?;
    let epoch: i64 = named(row, "claim_epoch")?;
    let job = started(sql::decode_job(row)?, now);
    Ok(ClaimedTask {
        fence: Fence {
            task_id: task.id,
            job_id: task.job_id,
            owner: owner.to_owned(),
            attempt: task.attempts,
            epoch,
        },
        task,
        job,
        previous_results,
        checkpoint,
    })
}

impl Store {
    pub(crate) async fn claim_tasks_impl(
        &self,
        owner: &str,
        limit: u32,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<ClaimedTask>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let limited = self.inner.limits_in_use.load(Ordering::Relaxed);
        let mut tasks = retrying(|| async {
            match self.backend() {
                _ if limited => self.claim_limited(owner, limit, lease, now).await,
                DbBackend::Postgres => self.claim_pg(owner, limit, lease, now).await,
                _ => self.claim_generic(owner, limit, lease, now).await,
            }
        })
        .await?;
        tasks.sort_by_key(|t| t.task.id);
        Ok(tasks)
    }

    /// One statement: pick with `SKIP LOCKED`, mark running, start the jobs, and read the
    /// jobs and earlier results.
    ///
    /// The pick stays a clause of this statement: moved into a (volatile) function to pin its
    /// plan, it ran on a newer snapshot than the rest, and a task readied after the statement's
    /// snapshot was claimed with its earlier results missing
    /// (`concurrent_workers_run_each_step_once_in_order` on PostgreSQL).
    async fn claim_pg(
        &self,
        owner: &str,
        limit: u32,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<ClaimedTask>> {
        let sql = format!(
            "WITH picked AS MATERIALIZED ( \
               SELECT id, job_id, attempts, claim_epoch, lease_owner, attempt_started_at, \
               lease_expires_at FROM generation_tasks WHERE status = 'pending' AND ready_at <= ? \
               AND claim_key IS NOT NULL ORDER BY claim_key, id LIMIT ? FOR UPDATE SKIP LOCKED \
             ), lost AS ( \
               {history} SELECT id, job_id, attempts, claim_epoch, lease_owner, \
               attempt_started_at, COALESCE(lease_expires_at, ?), 'lost', ? \
               FROM picked WHERE lease_owner IS NOT NULL \
             ), claimed AS ( \
               UPDATE generation_tasks t SET status = 'running', attempts = t.attempts + 1, \
               claim_epoch = t.claim_epoch + 1, \
               lease_owner = ?, lease_expires_at = ?, started_at = COALESCE(t.started_at, ?), \
               attempt_started_at = ?, updated_at = ?, progress = 0 \
               FROM picked WHERE t.id = picked.id \
               RETURNING {tasks}, t.checkpoint, t.claim_epoch \
             ), started AS ( \
               UPDATE workflow_jobs w SET status = 'running', \
               started_at = COALESCE(w.started_at, ?), updated_at = ? \
               WHERE w.id = ANY(ARRAY(SELECT job_id FROM claimed)) AND w.status {pending} \
               RETURNING w.id \
             ) \
             SELECT c.*, {jobs}, CASE WHEN c.step_index > 0 THEN ( \
               SELECT json_object_agg(p.step_index, p.result_data::json)::text \
               FROM generation_tasks p WHERE p.job_id = c.job_id \
               AND p.step_index < c.step_index AND p.status {completed} AND p.item_index < 0 \
               AND p.result_data IS NOT NULL) END AS previous_results \
             FROM claimed c JOIN workflow_jobs j ON j.id = c.job_id",
            tasks = *TASK_COLUMNS,
            jobs = *JOB_COLUMNS,
            pending = IS_PENDING_BY_KEY,
            completed = IS_COMPLETED_BY_KEY,
            history = history::INSERT,
        );
        let now_ms = ms(now);
        let values: Vec<Value> = vec![
            now_ms.into(),
            i64::from(limit).into(),
            now_ms.into(),
            history::LOST_MESSAGE.into(),
            owner.to_owned().into(),
            lease_until(now, lease).into(),
            now_ms.into(),
            now_ms.into(),
            now_ms.into(),
            now_ms.into(),
            now_ms.into(),
        ];
        let rows = self
            .inner
            .write
            .query_all_raw(stmt(DbBackend::Postgres, &sql, values))
            .await?;
        let claimed = rows
            .iter()
            .map(|row| {
                let previous = sql::results_from_object(named(row, "previous_results")?)?;
                claimed(row, owner, now, previous)
            })
            .collect::<Result<Vec<_>, DbErr>>()?;
        Ok(claimed)
    }

    /// MySQL (`FOR UPDATE SKIP LOCKED`) and SQLite (one writer): pick, update, read.
    async fn claim_generic(
        &self,
        owner: &str,
        limit: u32,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<ClaimedTask>> {
        let backend = self.backend();
        let lock = if backend == DbBackend::MySql {
            " FOR UPDATE SKIP LOCKED"
        } else {
            ""
        };
        let now_ms = ms(now);
        let txn = self.begin().await?;
        let picked = txn
            .query_all_raw(stmt(
                backend,
                &format!(
                    // `+ready_at`: no index may serve the ready time, so the planner walks the
                    // claim-order index instead of sorting every ready task (SQLite did).
                    "SELECT id FROM generation_tasks WHERE status = 'pending' AND +ready_at <= ? \
                     AND claim_key IS NOT NULL ORDER BY claim_key, id LIMIT ?{lock}"
                ),
                vec![now_ms.into(), i64::from(limit).into()],
            ))
            .await?;
        if picked.is_empty() {
            txn.commit().await?;
            return Ok(Vec::new());
        }
        let ids = picked
            .iter()
            .map(|row| col::<i64>(row, 0))
            .collect::<Result<Vec<_>, DbErr>>()?;
        let claimed = self.claim_picked(&txn, &ids, owner, lease, now).await?;
        txn.commit().await?;
        Ok(claimed)
    }

    /// Inside the claim's transaction: marks the picked (and locked) tasks running, starts their
    /// jobs, and reads them with their jobs and earlier results.
    pub(crate) async fn claim_picked(
        &self,
        txn: &impl ConnectionTrait,
        ids: &[i64],
        owner: &str,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<ClaimedTask>> {
        let backend = self.backend();
        let now_ms = ms(now);
        // A picked task that still names an owner lost its lease: that attempt ends here.
        history::record_lost(txn, ids, now).await?;
        let mut values: Vec<Value> = vec![
            owner.to_owned().into(),
            lease_until(now, lease).into(),
            now_ms.into(),
            now_ms.into(),
            now_ms.into(),
        ];
        values.extend(padded_ids(ids.iter().copied()));
        txn.execute_raw(stmt(
            backend,
            &format!(
                "UPDATE generation_tasks SET status = 'running', attempts = attempts + 1, \
                 claim_epoch = claim_epoch + 1, lease_owner = ?, lease_expires_at = ?, \
                 started_at = COALESCE(started_at, ?), attempt_started_at = ?, \
                 updated_at = ?, progress = 0 WHERE id IN ({})",
                placeholders(padded_len(ids.len()))
            ),
            values,
        ))
        .await?;
        let rows = txn
            .query_all_raw(stmt(
                backend,
                &format!(
                    "SELECT {}, t.checkpoint, t.claim_epoch, {} FROM generation_tasks t \
                     JOIN workflow_jobs j ON j.id = t.job_id WHERE t.id IN ({}) ORDER BY t.id",
                    *TASK_COLUMNS,
                    *JOB_COLUMNS,
                    placeholders(padded_len(ids.len()))
                ),
                padded_ids(ids.iter().copied()),
            ))
            .await?;
        let mut job_ids = Vec::with_capacity(rows.len());
        let mut later_steps = Vec::new();
        for row in &rows {
            let job_id: i64 = named(row, "job_id")?;
            job_ids.push(job_id);
            if named::<i32>(row, "step_index")? > 0 {
                later_steps.push(job_id);
            }
        }
        job_ids.sort_unstable();
        let mut values: Vec<Value> = vec![now_ms.into(), now_ms.into()];
        values.extend(padded_ids(job_ids.iter().copied()));
        txn.execute_raw(stmt(
            backend,
            &format!(
                "UPDATE workflow_jobs SET status = 'running', \
                 started_at = COALESCE(started_at, ?), updated_at = ? \
                 WHERE id IN ({}) AND status {}",
                placeholders(padded_len(job_ids.len())),
                IS_PENDING_BY_KEY
            ),
            values,
        ))
        .await?;
        let mut results: BTreeMap<i64, BTreeMap<i32, serde_json::Value>> = BTreeMap::new();
        if !later_steps.is_empty() {
            let previous = txn
                .query_all_raw(stmt(
                    backend,
                    &format!(
                        "SELECT job_id, step_index, result_data FROM generation_tasks \
                         WHERE job_id IN ({}) AND status = 'completed' \
                         AND item_index < 0 AND result_data IS NOT NULL",
                        placeholders(padded_len(later_steps.len()))
                    ),
                    padded_ids(later_steps.iter().copied()),
                ))
                .await?;
            for row in &previous {
                if let Some(result) =
                    sql::parse_opt_json(named(row, "result_data")?, "generation_tasks.result_data")?
                {
                    results
                        .entry(named(row, "job_id")?)
                        .or_default()
                        .insert(named(row, "step_index")?, result);
                }
            }
        }
        rows.iter()
            .map(|row| {
                let job_id: i64 = col(row, 1)?;
                let step: i32 = col(row, 2)?;
                let previous = results
                    .get(&job_id)
                    .map(|r| r.range(..step).map(|(k, v)| (*k, v.clone())).collect())
                    .unwrap_or_default();
                Ok(claimed(row, owner, now, previous)?)
            })
            .collect()
    }

    pub(crate) async fn renew_leases_impl(
        &self,
        fences: &[Fence],
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<TaskId>, StoreError> {
        if fences.is_empty() {
            return Ok(Vec::new());
        }
        let until = lease_until(now, lease);
        let mut renewed: HashSet<TaskId> = HashSet::with_capacity(fences.len());
        // Bounded statements however many tasks run: SQLite's variable limit, and no single
        // statement that holds thousands of row locks for long.
        for chunk in fences.chunks(RENEW_CHUNK) {
            // First the rows no one else holds locked: a renewal never waits with a thousand
            // row locks taken for the one row a checkpoint or a progress flush has locked (under
            // load such waits chained into convoys of seconds, and healthy handlers fenced
            // themselves off). Then the few rows that were locked, waiting for them.
            let (held, decided) = retrying(|| self.renew_chunk(chunk, until, true)).await?;
            renewed.extend(held);
            let busy: Vec<Fence> = chunk
                .iter()
                .filter(|f| !decided.contains(&f.task_id))
                .cloned()
                .collect();
            if !busy.is_empty() {
                let (held, _) = retrying(|| self.renew_chunk(&busy, until, false)).await?;
                renewed.extend(held);
            }
        }
        Ok(fences
            .iter()
            .map(|f| f.task_id)
            .filter(|id| !renewed.contains(id))
            .collect())
    }

    /// Renews (or takes back, see [`FENCE_HOLDS`]) the leases of one chunk of claims, on the
    /// connections kept for heartbeats so that a busy pool never starves them. Gives back the
    /// tasks renewed and the tasks decided (renewed, or whose fence no longer holds). With
    /// `skip_locked`, rows another transaction holds locked are skipped: neither renewed nor
    /// decided.
    async fn renew_chunk(
        &self,
        fences: &[Fence],
        until: i64,
        skip_locked: bool,
    ) -> Result<(Vec<TaskId>, HashSet<TaskId>)> {
        let conn = &self.inner.heartbeat;
        let skip = if skip_locked { " SKIP LOCKED" } else { "" };
        match self.backend() {
            DbBackend::Postgres => {
                let input: Vec<_> = fences
                    .iter()
                    .map(|f| json!({"id": f.task_id, "owner": f.owner, "epoch": f.epoch}))
                    .collect();
                let rows = conn
                    .query_all_raw(stmt(
                        DbBackend::Postgres,
                        &format!(
                            "WITH input AS (SELECT * FROM json_to_recordset(?::json) \
                               AS x(id bigint, owner text, epoch bigint)), \
                             free AS (SELECT id FROM generation_tasks \
                               WHERE id = ANY(ARRAY(SELECT id FROM input)) \
                               ORDER BY id FOR UPDATE{skip}), \
                             renewed AS (UPDATE generation_tasks t \
                               SET lease_expires_at = ?, status = 'running' FROM input x \
                               WHERE t.id IN (SELECT id FROM free) AND t.id = x.id \
                               AND {FENCE_HOLDS} RETURNING t.id) \
                             SELECT f.id, (r.id IS NOT NULL) AS renewed FROM free f \
                             LEFT JOIN renewed r ON r.id = f.id"
                        ),
                        vec![
                            serde_json::Value::Array(input).to_string().into(),
                            until.into(),
                        ],
                    ))
                    .await?;
                let mut held = Vec::with_capacity(rows.len());
                let mut decided = HashSet::with_capacity(rows.len());
                for row in &rows {
                    let id: i64 = col(row, 0)?;
                    if col::<bool>(row, 1)? {
                        held.push(id);
                    }
                    decided.insert(id);
                }
                if !skip_locked {
                    decided.extend(fences.iter().map(|f| f.task_id));
                }
                Ok((held, decided))
            }
            backend => {
                let txn = begin_on(conn, backend).await?;
                let (held, mut decided) = if skip_locked && backend == DbBackend::MySql {
                    held_fences_unlocked(&txn, fences).await?
                } else {
                    let held = held_fences(&txn, backend, fences).await?;
                    (held, HashSet::new())
                };
                if !held.is_empty() {
                    let ids: Vec<i64> = held.keys().copied().collect();
                    let mut values: Vec<Value> = vec![until.into()];
                    values.extend(padded_ids(ids.iter().copied()));
                    txn.execute_raw(stmt(
                        backend,
                        &format!(
                            "UPDATE generation_tasks SET lease_expires_at = ?, status = 'running' \
                             WHERE id IN ({})",
                            placeholders(padded_len(ids.len()))
                        ),
                        values,
                    ))
                    .await?;
                }
                txn.commit().await?;
                // SQLite has one writer and no row locks: every row is decided at once.
                if !(skip_locked && backend == DbBackend::MySql) {
                    decided.extend(fences.iter().map(|f| f.task_id));
                }
                Ok((held.into_keys().collect(), decided))
            }
        }
    }
}

/// MySQL: [`held_fences`] over the rows no other transaction holds locked (`SKIP LOCKED`),
/// locking them; also gives back every row it looked at (renewed or not, its fate is decided).
async fn held_fences_unlocked(
    txn: &impl ConnectionTrait,
    fences: &[Fence],
) -> Result<(HashMap<TaskId, (i64, i32)>, HashSet<TaskId>), DbErr> {
    let mut ids: Vec<i64> = fences.iter().map(|f| f.task_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let rows = txn
        .query_all_raw(stmt(
            DbBackend::MySql,
            &format!(
                "SELECT id, lease_owner, claim_epoch, status, job_id, step_index \
                 FROM generation_tasks WHERE id IN ({}) ORDER BY id FOR UPDATE SKIP LOCKED",
                placeholders(padded_len(ids.len()))
            ),
            padded_ids(ids.iter().copied()),
        ))
        .await?;
    let mut current = HashMap::with_capacity(rows.len());
    for row in &rows {
        let status: String = named(row, "status")?;
        let live = !matches!(status.as_str(), "completed" | "failed" | "cancelled");
        current.insert(
            named::<i64>(row, "id")?,
            (
                live,
                named::<Option<String>>(row, "lease_owner")?,
                named::<i64>(row, "claim_epoch")?,
                named::<i64>(row, "job_id")?,
                named::<i32>(row, "step_index")?,
            ),
        );
    }
    let decided = current.keys().copied().collect();
    let held = fences
        .iter()
        .filter_map(|f| {
            let (live, owner, epoch, job_id, step) = current.get(&f.task_id)?;
            (*live && owner.as_deref() == Some(f.owner.as_str()) && *epoch == f.epoch)
                .then_some((f.task_id, (*job_id, *step)))
        })
        .collect();
    Ok((held, decided))
}

/// Claims renewed per statement.
const RENEW_CHUNK: usize = IN_LIST_CHUNK;

/// The fences that still hold (see [`FENCE_HOLDS`]), by task id with the task's job and step,
/// locking their rows (MySQL) for the rest of the transaction. Reads in chunks, so any number
/// of fences stays inside every backend's variable limit.
pub(crate) async fn held_fences(
    txn: &impl ConnectionTrait,
    backend: DbBackend,
    fences: &[Fence],
) -> Result<HashMap<TaskId, (i64, i32)>, DbErr> {
    let lock = if backend == DbBackend::MySql {
        " FOR UPDATE"
    } else {
        ""
    };
    read_held_fences(txn, backend, fences, lock).await
}

/// [`held_fences`] read as of now, locking nothing: for checking claims, not writing them.
pub(crate) async fn held_fences_without_locks(
    conn: &impl ConnectionTrait,
    backend: DbBackend,
    fences: &[Fence],
) -> Result<HashMap<TaskId, (i64, i32)>, DbErr> {
    read_held_fences(conn, backend, fences, "").await
}

async fn read_held_fences(
    txn: &impl ConnectionTrait,
    backend: DbBackend,
    fences: &[Fence],
    lock: &str,
) -> Result<HashMap<TaskId, (i64, i32)>, DbErr> {
    if fences.is_empty() {
        return Ok(HashMap::new());
    }
    let mut ids: Vec<i64> = fences.iter().map(|f| f.task_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut current = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(IN_LIST_CHUNK) {
        let rows = txn
            .query_all_raw(stmt(
                backend,
                &format!(
                    "SELECT id, lease_owner, claim_epoch, job_id, step_index FROM generation_tasks \
                     WHERE id IN ({}) AND status NOT IN ('completed', 'failed', 'cancelled') \
                     ORDER BY id{lock}",
                    placeholders(padded_len(chunk.len()))
                ),
                padded_ids(chunk.iter().copied()),
            ))
            .await?;
        for row in &rows {
            current.insert(
                named::<i64>(row, "id")?,
                (
                    named::<Option<String>>(row, "lease_owner")?,
                    named::<i64>(row, "claim_epoch")?,
                    named::<i64>(row, "job_id")?,
                    named::<i32>(row, "step_index")?,
                ),
            );
        }
    }
    Ok(fences
        .iter()
        .filter_map(|f| {
            let (owner, epoch, job_id, step) = current.get(&f.task_id)?;
            (owner.as_deref() == Some(f.owner.as_str()) && *epoch == f.epoch)
                .then_some((f.task_id, (*job_id, *step)))
        })
        .collect())
}
