//! A `JobStore` decorator that counts progress writes per task, to show coalescing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nosyntask_domain::{Job, JobId, JobWithTasks, TaskId};
use nosyntask_engine::JobStore;
use nosyntask_engine::ports::{
    ClaimedTask, Completion, CreateOutcome, Failure, Fence, JobFilter, NewJob, ProgressUpdate,
    StoreError, StoreStats, TaskActivity,
};
use serde_json::Value;

pub struct CountingStore {
    inner: Arc<dyn JobStore>,
    progress_writes: Mutex<HashMap<TaskId, usize>>,
}

impl CountingStore {
    pub fn new(inner: Arc<dyn JobStore>) -> Self {
        CountingStore {
            inner,
            progress_writes: Mutex::new(HashMap::new()),
        }
    }

    pub fn progress_writes_for(&self, task: TaskId) -> usize {
        self.progress_writes
            .lock()
            .unwrap()
            .get(&task)
            .copied()
            .unwrap_or(0)
    }
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
        self.inner.create_job(job, now).await
    }
    async fn get_job(&self, id: JobId) -> Result<Option<JobWithTasks>, StoreError> {
        self.inner.get_job(id).await
    }
    async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<Job>, StoreError> {
        self.inner.list_jobs(filter).await
    }
    async fn consume_job(&self, id: JobId, now: DateTime<Utc>) -> Result<Job, StoreError> {
        self.inner.consume_job(id, now).await
    }
    async fn cancel_job(&self, id: JobId, now: DateTime<Utc>) -> Result<Job, StoreError> {
        self.inner.cancel_job(id, now).await
    }
    async fn resume_job(&self, id: JobId, now: DateTime<Utc>) -> Result<Job, StoreError> {
        self.inner.resume_job(id, now).await
    }
    async fn claim_tasks(
        &self,
        owner: &str,
        limit: u32,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<ClaimedTask>, StoreError> {
        self.inner.claim_tasks(owner, limit, lease, now).await
    }
    async fn renew_leases(
        &self,
        fences: &[Fence],
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<TaskId>, StoreError> {
        self.inner.renew_leases(fences, lease, now).await
    }
    async fn write_progress(
        &self,
        updates: &[ProgressUpdate],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        {
            let mut writes = self.progress_writes.lock().unwrap();
            for update in updates {
                *writes.entry(update.fence.task_id).or_default() += 1;
            }
        }
        self.inner.write_progress(updates, now).await
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
            .await
    }
    async fn complete_tasks(
        &self,
        completions: &[Completion],
        now: DateTime<Utc>,
    ) -> Result<Vec<bool>, StoreError> {
        self.inner.complete_tasks(completions, now).await
    }
    async fn fail_task(&self, failure: &Failure, now: DateTime<Utc>) -> Result<bool, StoreError> {
        self.inner.fail_task(failure, now).await
    }
    async fn release_tasks(&self, fences: &[Fence], now: DateTime<Utc>) -> Result<(), StoreError> {
        self.inner.release_tasks(fences, now).await
    }
    async fn cancelled_claims(&self, owner: &str) -> Result<Vec<TaskId>, StoreError> {
        self.inner.cancelled_claims(owner).await
    }
    async fn requeue_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.inner.requeue_expired(now).await
    }
    async fn prune(
        &self,
        consumed_before: DateTime<Utc>,
        unconsumed_before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.inner.prune(consumed_before, unconsumed_before).await
    }
    async fn wait_for_work(&self, max_wait: Duration) {
        self.inner.wait_for_work(max_wait).await
    }
    async fn stats(&self, now: DateTime<Utc>) -> Result<StoreStats, StoreError> {
        self.inner.stats(now).await
    }
    async fn task_activity(&self, since: DateTime<Utc>) -> Result<Vec<TaskActivity>, StoreError> {
        self.inner.task_activity(since).await
    }
}
