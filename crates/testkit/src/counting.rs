//! A [`JobStore`] decorator that counts the database writes the engine asks for: rows written
//! and write calls (each one transaction or statement), per kind of write. It sits where every
//! write of the engine passes, so it counts the same way on every backend.
//!
//! Rows are what the store's statements update or insert for a call, taken from the call's
//! arguments and answer: a claim writes each claimed task and its job; a progress flush each
//! task and its job; a renewal each renewed lease; a checkpoint one task; a completion the task,
//! its job and, for a middle step, the next task. Where the store skips rows that need no change
//! (a job already running, a stale fence in a progress batch) this is an upper bound.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nosyntask_domain::{Job, JobId, JobStatus, JobWithTasks, TaskId};
use nosyntask_engine::ports::{
    ClaimedTask, Completion, CreateOutcome, Failure, Fence, ItemState, JobFilter, JobVersion,
    ModelBucket, ModelLimit, ModelUsage, NewJob, ProgressUpdate, StepStarted, StoreStats,
    TaskActivity,
};
use nosyntask_engine::{JobStore, StoreError};
use serde_json::Value;

/// Kinds of write, in the order they are reported.
#[derive(Debug, Clone, Copy)]
pub enum Write {
    Create,
    Claim,
    Renew,
    /// An owner's own lease (one row per process).
    OwnerLease,
    Progress,
    Checkpoint,
    Complete,
    Fail,
    Release,
    Requeue,
    Prune,
    /// Consume, cancel, resume.
    Api,
}

impl Write {
    const ALL: [Write; 12] = [
        Write::Create,
        Write::Claim,
        Write::Renew,
        Write::OwnerLease,
        Write::Progress,
        Write::Checkpoint,
        Write::Complete,
        Write::Fail,
        Write::Release,
        Write::Requeue,
        Write::Prune,
        Write::Api,
    ];

    fn name(self) -> &'static str {
        match self {
            Write::Create => "create",
            Write::Claim => "claim",
            Write::Renew => "renew_lease",
            Write::OwnerLease => "owner_lease",
            Write::Progress => "progress",
            Write::Checkpoint => "checkpoint",
            Write::Complete => "complete",
            Write::Fail => "fail",
            Write::Release => "release",
            Write::Requeue => "requeue_expired",
            Write::Prune => "prune",
            Write::Api => "consume_cancel_resume",
        }
    }
}

/// Running totals, shared with whoever samples them.
#[derive(Debug, Default)]
pub struct WriteCounters {
    rows: [AtomicU64; Write::ALL.len()],
    calls: [AtomicU64; Write::ALL.len()],
    jobs_completed: AtomicU64,
    jobs_failed: AtomicU64,
}

impl WriteCounters {
    fn add(&self, kind: Write, rows: usize) {
        self.calls[kind as usize].fetch_add(1, Ordering::Relaxed);
        self.rows[kind as usize].fetch_add(rows as u64, Ordering::Relaxed);
    }

    /// Write calls of one kind so far.
    pub fn calls_of(&self, kind: Write) -> u64 {
        self.calls[kind as usize].load(Ordering::Relaxed)
    }

    /// Rows written so far, all kinds.
    pub fn rows(&self) -> u64 {
        self.rows.iter().map(|r| r.load(Ordering::Relaxed)).sum()
    }

    /// Write calls (transactions or single statements) so far, all kinds.
    pub fn calls(&self) -> u64 {
        self.calls.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Jobs whose last step this process completed.
    pub fn jobs_completed(&self) -> u64 {
        self.jobs_completed.load(Ordering::Relaxed)
    }

    /// Jobs this process failed (a permanent error or attempts used up).
    pub fn jobs_failed(&self) -> u64 {
        self.jobs_failed.load(Ordering::Relaxed)
    }

    /// `{kind: [rows, calls]}` for the kinds that wrote anything.
    pub fn snapshot(&self) -> BTreeMap<&'static str, [u64; 2]> {
        Write::ALL
            .iter()
            .map(|&kind| {
                (
                    kind.name(),
                    [
                        self.rows[kind as usize].load(Ordering::Relaxed),
                        self.calls[kind as usize].load(Ordering::Relaxed),
                    ],
                )
            })
            .filter(|(_, [rows, calls])| *rows > 0 || *calls > 0)
            .collect()
    }

    /// The change from `before` to now, per kind.
    pub fn since(
        &self,
        before: &BTreeMap<&'static str, [u64; 2]>,
    ) -> BTreeMap<&'static str, [u64; 2]> {
        self.snapshot()
            .into_iter()
            .map(|(kind, [rows, calls])| {
                let [r0, c0] = before.get(kind).copied().unwrap_or_default();
                (kind, [rows - r0, calls - c0])
            })
            .filter(|(_, [rows, calls])| *rows > 0 || *calls > 0)
            .collect()
    }
}

/// Counts the writes passing to `inner`.
pub struct CountingStore {
    inner: Arc<dyn JobStore>,
    counters: Arc<WriteCounters>,
}

impl CountingStore {
    pub fn new(inner: Arc<dyn JobStore>) -> Self {
        CountingStore {
            inner,
            counters: Arc::new(WriteCounters::default()),
        }
    }

    pub fn counters(&self) -> Arc<WriteCounters> {
        self.counters.clone()
    }
}

fn distinct_jobs<'a>(fences: impl Iterator<Item = &'a Fence>) -> usize {
    fences.map(|f| f.job_id).collect::<HashSet<JobId>>().len()
}

#[async_trait]
impl JobStore for CountingStore {
    fn backend_name(&self) -> &'static str {
        self.inner.backend_name()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }

    async fn create_job(
        &self,
        job: NewJob,
        now: DateTime<Utc>,
    ) -> Result<CreateOutcome, StoreError> {
        let outcome = self.inner.create_job(job, now).await?;
        let rows = if outcome.deduplicated {
            0
        } else {
            1 + outcome.job.tasks.len()
        };
        self.counters.add(Write::Create, rows);
        Ok(outcome)
    }

    async fn get_job(&self, id: JobId) -> Result<Option<JobWithTasks>, StoreError> {
        self.inner.get_job(id).await
    }

    async fn get_jobs(&self, ids: &[JobId]) -> Result<Vec<JobWithTasks>, StoreError> {
        self.inner.get_jobs(ids).await
    }

    async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<Job>, StoreError> {
        self.inner.list_jobs(filter).await
    }

    async fn count_jobs(&self, filter: &JobFilter) -> Result<Vec<(JobStatus, u64)>, StoreError> {
        self.inner.count_jobs(filter).await
    }

    async fn consume_job(&self, id: JobId, now: DateTime<Utc>) -> Result<Job, StoreError> {
        let job = self.inner.consume_job(id, now).await?;
        self.counters.add(Write::Api, 1);
        Ok(job)
    }

    async fn cancel_job(&self, id: JobId, now: DateTime<Utc>) -> Result<Job, StoreError> {
        let job = self.inner.cancel_job(id, now).await?;
        self.counters
            .add(Write::Api, 1 + job.total_steps.max(0) as usize);
        Ok(job)
    }

    async fn resume_job(
        &self,
        id: JobId,
        max_active_per_user: Option<u64>,
        now: DateTime<Utc>,
    ) -> Result<Job, StoreError> {
        let job = self.inner.resume_job(id, max_active_per_user, now).await?;
        self.counters.add(Write::Api, 2);
        Ok(job)
    }

    async fn claim_tasks(
        &self,
        owner: &str,
        limit: u32,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<ClaimedTask>, StoreError> {
        let claimed = self.inner.claim_tasks(owner, limit, lease, now).await?;
        let rows = claimed.len() + distinct_jobs(claimed.iter().map(|c| &c.fence));
        self.counters.add(Write::Claim, rows);
        Ok(claimed)
    }

    async fn renew_leases(
        &self,
        fences: &[Fence],
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<TaskId>, StoreError> {
        let lost = self.inner.renew_leases(fences, lease, now).await?;
        self.counters
            .add(Write::Renew, fences.len().saturating_sub(lost.len()));
        Ok(lost)
    }

    async fn renew_owner_lease(
        &self,
        owner: &str,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let renewed = self.inner.renew_owner_lease(owner, lease, now).await?;
        self.counters.add(Write::OwnerLease, usize::from(renewed));
        Ok(renewed)
    }

    async fn start_owner_lease(
        &self,
        owner: &str,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.inner.start_owner_lease(owner, lease, now).await?;
        self.counters.add(Write::OwnerLease, 1);
        Ok(())
    }

    async fn lost_fences(&self, fences: &[Fence]) -> Result<Vec<TaskId>, StoreError> {
        self.inner.lost_fences(fences).await
    }

    async fn write_progress(
        &self,
        updates: &[ProgressUpdate],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.inner.write_progress(updates, now).await?;
        let rows = updates.len() + distinct_jobs(updates.iter().map(|u| &u.fence));
        self.counters.add(Write::Progress, rows);
        Ok(())
    }

    async fn save_checkpoint(
        &self,
        fence: &Fence,
        checkpoint: &Value,
        external_task_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.inner
            .save_checkpoint(fence, checkpoint, external_task_id, now)
            .await?;
        self.counters.add(Write::Checkpoint, 1);
        Ok(())
    }

    async fn complete_tasks(
        &self,
        completions: &[Completion],
        now: DateTime<Utc>,
    ) -> Result<Vec<bool>, StoreError> {
        let held = self.inner.complete_tasks(completions, now).await?;
        let mut rows = 0;
        for (completion, _) in completions.iter().zip(&held).filter(|(_, held)| **held) {
            // The task and its job; a middle step also makes the next task ready.
            rows += if completion.is_last_step { 2 } else { 3 };
            if completion.is_last_step {
                self.counters.jobs_completed.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.counters.add(Write::Complete, rows);
        Ok(held)
    }

    async fn fail_task(&self, failure: &Failure, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let held = self.inner.fail_task(failure, now).await?;
        if held && failure.retry_at.is_none() {
            self.counters.jobs_failed.fetch_add(1, Ordering::Relaxed);
        }
        // The task; a final failure also fails its job.
        let rows = match (held, failure.retry_at) {
            (false, _) => 0,
            (true, Some(_)) => 1,
            (true, None) => 2,
        };
        self.counters.add(Write::Fail, rows);
        Ok(held)
    }

    async fn release_tasks(&self, fences: &[Fence], now: DateTime<Utc>) -> Result<(), StoreError> {
        self.inner.release_tasks(fences, now).await?;
        self.counters.add(Write::Release, fences.len());
        Ok(())
    }

    async fn cancelled_claims(&self, owner: &str) -> Result<Vec<TaskId>, StoreError> {
        self.inner.cancelled_claims(owner).await
    }

    async fn requeue_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let count = self.inner.requeue_expired(now).await?;
        self.counters.add(Write::Requeue, count as usize);
        Ok(count)
    }

    async fn prune(
        &self,
        consumed_before: DateTime<Utc>,
        unconsumed_before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let count = self.inner.prune(consumed_before, unconsumed_before).await?;
        self.counters.add(Write::Prune, count as usize);
        Ok(count)
    }

    async fn wait_for_work(&self, max_wait: Duration) {
        self.inner.wait_for_work(max_wait).await;
    }

    async fn stats(&self, now: DateTime<Utc>) -> Result<StoreStats, StoreError> {
        self.inner.stats(now).await
    }

    async fn database_time(&self) -> Result<DateTime<Utc>, StoreError> {
        self.inner.database_time().await
    }

    async fn task_activity(&self, since: DateTime<Utc>) -> Result<Vec<TaskActivity>, StoreError> {
        self.inner.task_activity(since).await
    }

    async fn model_series(
        &self,
        since: DateTime<Utc>,
        bucket: Duration,
    ) -> Result<Vec<ModelBucket>, StoreError> {
        self.inner.model_series(since, bucket).await
    }

    async fn job_versions(&self, ids: &[JobId]) -> Result<Vec<JobVersion>, StoreError> {
        self.inner.job_versions(ids).await
    }

    async fn set_model_limits(
        &self,
        limits: &[ModelLimit],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.counters.add(Write::Api, limits.len());
        self.inner.set_model_limits(limits, now).await
    }

    async fn model_usage(&self, now: DateTime<Utc>) -> Result<Vec<ModelUsage>, StoreError> {
        self.inner.model_usage(now).await
    }

    async fn pause_model(
        &self,
        name: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.counters.add(Write::Api, 1);
        self.inner.pause_model(name, until, now).await
    }

    async fn sync_items(
        &self,
        parent: &Fence,
        items: Option<&[Value]>,
        model_name: Option<&str>,
        reset_unfinished: bool,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<ItemState>, StoreError> {
        self.counters
            .add(Write::Api, items.map_or(1, <[Value]>::len));
        self.inner
            .sync_items(parent, items, model_name, reset_unfinished, limit, now)
            .await
    }

    async fn cancel_items(&self, parent: &Fence, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.counters.add(Write::Api, 1);
        self.inner.cancel_items(parent, now).await
    }

    async fn complete_item(
        &self,
        fence: &Fence,
        result: &Value,
        started: Option<&StepStarted>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.counters.add(Write::Complete, 1);
        self.inner.complete_item(fence, result, started, now).await
    }

    async fn fail_item(
        &self,
        fence: &Fence,
        message: &str,
        started: Option<&StepStarted>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.counters.add(Write::Fail, 1);
        self.inner.fail_item(fence, message, started, now).await
    }

    async fn park_task(
        &self,
        fence: &Fence,
        ready_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.counters.add(Write::Release, 1);
        self.inner.park_task(fence, ready_at, now).await
    }
}
