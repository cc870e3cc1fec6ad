//! # nosyntask store
//!
//! The [`JobStore`] of the engine on SQLite, PostgreSQL and MySQL/MariaDB, through sea-orm
//! connections and hand-written SQL: every hot path is a few index lookups, batched per call.
//! Cold paths (list, active, consume, cancel, resume, prune, stats, activity) go through the
//! [`entities`] and sea-orm's query builder. The job read of status polling (`get`) is measured
//! as a hot path and stays one fixed statement decoded by name (docs/benchmarks.md, "Issue 11").
//!
//! - **SQLite**: WAL, one writer connection (write transactions queue instead of failing with
//!   `SQLITE_BUSY`), a small read pool beside it for files; `sqlite::memory:` is one connection.
//! - **PostgreSQL**: claims, completions and progress are single statements
//!   (`FOR UPDATE SKIP LOCKED`, data-modifying CTEs over `json_to_recordset`); new work is
//!   announced with `NOTIFY nosyntask_work` (sent after commit, at most one per 10 ms: notifying
//!   transactions would serialize their commits), which every process's store listens to.
//! - **MySQL/MariaDB**: `READ COMMITTED`, `FOR UPDATE SKIP LOCKED`, a per-user lock row that
//!   serializes a user's starts.
//!
//! Every transaction locks `generation_tasks` rows before `workflow_jobs` rows, in id order, and
//! runs again when it loses a deadlock anyway.
//!
//! A cancelled task keeps its lease owner (so [`JobStore::cancelled_claims`] tells the worker
//! running it) until its lease would have run out; [`JobStore::requeue_expired`] then clears it,
//! which keeps `cancelled_claims` short for long-lived workers.
//!
//! [`entities`] are the sea-orm entities of the engine's tables, for services that read or join
//! them with their own sea-orm code; [`testing`] gives other crates' tests a fresh migrated store
//! per backend.

mod activity;
mod claim;
mod complete;
mod create;
mod create_pg;
#[doc = include_str!("entities/README.md")]
pub mod entities;
mod error;
mod fanout;
mod finish;
mod from_entities;
mod history;
mod hooks;
mod jobs;
mod models;
mod notify;
mod outbox;
mod owner_lease;
mod query;
mod sql;
mod store;
pub mod testing;

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
use sea_orm::DbBackend;
use serde_json::Value;

pub use hooks::{HookEvent, HookEventKind, TransactionHook};
pub use outbox::{DeliveryStatus, OutboxDelivery, OutboxFilter, OutboxSubscriber};
pub use store::{Store, StoreOptions};

#[async_trait]
impl JobStore for Store {
    fn backend_name(&self) -> &'static str {
        match self.backend() {
            DbBackend::Postgres => "postgres",
            DbBackend::MySql => "mysql",
            _ => "sqlite",
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner
            .read
            .ping()
            .await
            .map_err(|err| error::classify(&err))
    }

    async fn create_job(
        &self,
        job: NewJob,
        now: DateTime<Utc>,
    ) -> Result<CreateOutcome, StoreError> {
        self.create_job_impl(job, now).await
    }

    async fn get_job(&self, id: JobId) -> Result<Option<JobWithTasks>, StoreError> {
        self.get_job_impl(id).await
    }

    async fn get_jobs(&self, ids: &[JobId]) -> Result<Vec<JobWithTasks>, StoreError> {
        self.get_jobs_impl(ids).await
    }

    async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<Job>, StoreError> {
        self.list_jobs_impl(filter).await
    }

    async fn count_jobs(&self, filter: &JobFilter) -> Result<Vec<(JobStatus, u64)>, StoreError> {
        self.count_jobs_impl(filter).await
    }

    async fn consume_job(&self, id: JobId, now: DateTime<Utc>) -> Result<Job, StoreError> {
        self.consume_job_impl(id, now).await
    }

    async fn cancel_job(&self, id: JobId, now: DateTime<Utc>) -> Result<Job, StoreError> {
        self.cancel_job_impl(id, now).await
    }

    async fn resume_job(
        &self,
        id: JobId,
        max_active_per_user: Option<u64>,
        now: DateTime<Utc>,
    ) -> Result<Job, StoreError> {
        self.resume_job_impl(id, max_active_per_user, now).await
    }

    async fn claim_tasks(
        &self,
        owner: &str,
        limit: u32,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<ClaimedTask>, StoreError> {
        self.claim_tasks_impl(owner, limit, lease, now).await
    }

    async fn renew_leases(
        &self,
        fences: &[Fence],
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<TaskId>, StoreError> {
        self.renew_leases_impl(fences, lease, now).await
    }

    async fn renew_owner_lease(
        &self,
        owner: &str,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.renew_owner_lease_impl(owner, lease, now).await
    }

    async fn start_owner_lease(
        &self,
        owner: &str,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.start_owner_lease_impl(owner, lease, now).await
    }

    async fn lost_fences(&self, fences: &[Fence]) -> Result<Vec<TaskId>, StoreError> {
        self.lost_fences_impl(fences).await
    }

    async fn write_progress(
        &self,
        updates: &[ProgressUpdate],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.write_progress_impl(updates, now).await
    }

    async fn save_checkpoint(
        &self,
        fence: &Fence,
        checkpoint: &Value,
        external_task_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.save_checkpoint_impl(fence, checkpoint, external_task_id, now)
            .await
    }

    async fn complete_tasks(
        &self,
        completions: &[Completion],
        now: DateTime<Utc>,
    ) -> Result<Vec<bool>, StoreError> {
        self.complete_tasks_impl(completions, now).await
    }

    async fn fail_task(&self, failure: &Failure, now: DateTime<Utc>) -> Result<bool, StoreError> {
        self.fail_task_impl(failure, now).await
    }

    async fn release_tasks(&self, fences: &[Fence], now: DateTime<Utc>) -> Result<(), StoreError> {
        self.release_tasks_impl(fences, now).await
    }

    async fn cancelled_claims(&self, owner: &str) -> Result<Vec<TaskId>, StoreError> {
        self.cancelled_claims_impl(owner).await
    }

    async fn requeue_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.requeue_expired_impl(now).await
    }

    async fn prune(
        &self,
        consumed_before: DateTime<Utc>,
        unconsumed_before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.prune_impl(consumed_before, unconsumed_before).await
    }

    async fn wait_for_work(&self, max_wait: Duration) {
        let _ = tokio::time::timeout(max_wait, self.inner.wake.notified()).await;
    }

    async fn stats(&self, now: DateTime<Utc>) -> Result<StoreStats, StoreError> {
        self.stats_impl(now).await
    }

    async fn database_time(&self) -> Result<DateTime<Utc>, StoreError> {
        self.database_time_impl().await
    }

    async fn task_activity(&self, since: DateTime<Utc>) -> Result<Vec<TaskActivity>, StoreError> {
        self.task_activity_impl(since).await
    }

    async fn model_series(
        &self,
        since: DateTime<Utc>,
        bucket: Duration,
    ) -> Result<Vec<ModelBucket>, StoreError> {
        self.model_series_impl(since, bucket).await
    }

    async fn job_versions(&self, ids: &[JobId]) -> Result<Vec<JobVersion>, StoreError> {
        self.job_versions_impl(ids).await
    }

    async fn set_model_limits(
        &self,
        limits: &[ModelLimit],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.set_model_limits_impl(limits, now).await
    }

    async fn model_usage(&self, now: DateTime<Utc>) -> Result<Vec<ModelUsage>, StoreError> {
        self.model_usage_impl(now).await
    }

    async fn pause_model(
        &self,
        name: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.pause_model_impl(name, until, now).await
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
        self.sync_items_impl(parent, items, model_name, reset_unfinished, limit, now)
            .await
    }

    async fn cancel_items(&self, parent: &Fence, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.cancel_items_impl(parent, now).await
    }

    async fn complete_item(
        &self,
        fence: &Fence,
        result: &Value,
        started: Option<&StepStarted>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.finish_item_impl(fence, Ok(result), started, now).await
    }

    async fn fail_item(
        &self,
        fence: &Fence,
        message: &str,
        started: Option<&StepStarted>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.finish_item_impl(fence, Err(message), started, now)
            .await
    }

    async fn park_task(
        &self,
        fence: &Fence,
        ready_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.park_task_impl(fence, ready_at, now).await
    }
}
