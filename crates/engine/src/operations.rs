//! What operators and the HTTP edge read about the engine as a whole: health, queue depth,
//! model usage, task activity and per-model series. Each figure comes from the store, so it covers
//! every process sharing the database. The server's routes read through these (and the job
//! methods of [`Engine`]), never through the store itself.

use std::time::Duration;

use chrono::{DateTime, Utc};
use nosyntask_domain::{JobId, JobWithTasks};

use crate::engine::{Engine, EngineError};
use crate::ports::{ModelBucket, ModelUsage, StoreStats, TaskActivity};

impl Engine {
    /// The store's database: `sqlite`, `postgres` or `mysql`.
    pub fn backend_name(&self) -> &'static str {
        self.store().backend_name()
    }

    /// One round trip to the store (readiness).
    pub async fn ping(&self) -> Result<(), EngineError> {
        Ok(self.store().ping().await?)
    }

    /// Tasks ready, scheduled and running, and active jobs by status, now.
    pub async fn queue_stats(&self) -> Result<StoreStats, EngineError> {
        Ok(self.store().stats(self.clock().now()).await?)
    }

    /// Each limited model's use now: running tasks, its limits, a pause after a provider's 429.
    pub async fn model_usage(&self) -> Result<Vec<ModelUsage>, EngineError> {
        Ok(self.store().model_usage(self.clock().now()).await?)
    }

    /// Tasks in flight now and finished since `since`, by model, task type, status, attempts.
    pub async fn task_activity(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<TaskActivity>, EngineError> {
        Ok(self.store().task_activity(since).await?)
    }

    /// Tasks finished since `since` per model and `bucket` of time.
    pub async fn model_series(
        &self,
        since: DateTime<Utc>,
        bucket: Duration,
    ) -> Result<Vec<ModelBucket>, EngineError> {
        Ok(self.store().model_series(since, bucket).await?)
    }

    /// The jobs with `ids` that exist, with their tasks (and why their ready steps wait),
    /// whoever owns them, in order of id, read by a few statements however many they are: for a
    /// reader that checks each viewer itself, such as the server's reads shared by many
    /// requests. Everyone else calls [`Engine::get`].
    pub async fn read_any_jobs(&self, ids: &[JobId]) -> Result<Vec<JobWithTasks>, EngineError> {
        let mut jobs = self.store().get_jobs(ids).await?;
        self.explain_waiting_all(&mut jobs).await?;
        Ok(jobs)
    }
}
