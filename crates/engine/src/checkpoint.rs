//! Checkpoints: a handler saves what it needs to resume external work (a provider's task id, the
//! images already made) before it waits; after a crash the next attempt receives the last one.

use std::sync::Arc;

use nosyntask_domain::TaskError;
use serde_json::Value;
use tokio::sync::{Mutex, Semaphore};

use crate::ports::{Clock, Fence, JobStore, StoreError};

/// The checkpoint store of one claim. Writes are fenced: after the lease is lost they fail.
#[derive(Clone)]
pub struct Checkpoints {
    inner: Option<Arc<Inner>>,
    last: Arc<Mutex<Option<Value>>>,
}

struct Inner {
    store: Arc<dyn JobStore>,
    clock: Arc<dyn Clock>,
    fence: Fence,
    /// Shared by the worker's attempts: bounds the writes waiting on the database.
    gate: Arc<Semaphore>,
}

impl Checkpoints {
    pub(crate) fn new(
        store: Arc<dyn JobStore>,
        clock: Arc<dyn Clock>,
        fence: Fence,
        last: Option<Value>,
        gate: Arc<Semaphore>,
    ) -> Self {
        Checkpoints {
            inner: Some(Arc::new(Inner {
                store,
                clock,
                fence,
                gate,
            })),
            last: Arc::new(Mutex::new(last)),
        }
    }

    /// Checkpoints kept in memory only (tests, direct handler calls).
    pub fn in_memory(last: Option<Value>) -> Self {
        Checkpoints {
            inner: None,
            last: Arc::new(Mutex::new(last)),
        }
    }

    /// The last saved checkpoint: from a previous attempt, or saved earlier in this one.
    pub async fn last(&self) -> Option<Value> {
        self.last.lock().await.clone()
    }

    /// Saves `value` durably before returning.
    pub async fn save(&self, value: Value) -> Result<(), TaskError> {
        self.write(value, None).await
    }

    /// Saves `value` and records the provider's task id in the task's `external_task_id`.
    pub async fn save_external(
        &self,
        external_task_id: &str,
        value: Value,
    ) -> Result<(), TaskError> {
        self.write(value, Some(external_task_id)).await
    }

    /// Whether this claim's job was cancelled by a user (as opposed to the handler being stopped
    /// because the lease was lost, the step timed out or the worker is shutting down). Adapters
    /// ask this before cancelling a provider-side task, which a later attempt could otherwise
    /// resume. Checkpoints kept in memory answer `true`: there the signal can only mean cancel.
    pub async fn job_cancelled(&self) -> bool {
        let Some(inner) = &self.inner else {
            return true;
        };
        match inner.store.cancelled_claims(&inner.fence.owner).await {
            Ok(cancelled) => cancelled.contains(&inner.fence.task_id),
            Err(_) => false,
        }
    }

    /// The `key` entry of the last checkpoint object.
    pub async fn entry(&self, key: &str) -> Option<Value> {
        self.last
            .lock()
            .await
            .as_ref()
            .and_then(|last| last.get(key))
            .cloned()
    }

    /// Sets the `key` entry of the checkpoint object, keeping the other entries, and saves it
    /// durably (with the provider's task id, if given). Concurrent merges from calls of one
    /// handler are serialised, so none loses another's entry.
    pub async fn merge_entry(
        &self,
        key: &str,
        entry: Value,
        external_task_id: Option<&str>,
    ) -> Result<(), TaskError> {
        let mut last = self.last.lock().await;
        let mut object = match last.as_ref() {
            Some(Value::Object(map)) => map.clone(),
            _ => serde_json::Map::new(),
        };
        object.insert(key.to_owned(), entry);
        let value = Value::Object(object);
        self.persist(&value, external_task_id).await?;
        *last = Some(value);
        Ok(())
    }

    async fn write(&self, value: Value, external_task_id: Option<&str>) -> Result<(), TaskError> {
        self.persist(&value, external_task_id).await?;
        *self.last.lock().await = Some(value);
        Ok(())
    }

    async fn persist(
        &self,
        value: &Value,
        external_task_id: Option<&str>,
    ) -> Result<(), TaskError> {
        if let Some(inner) = &self.inner {
            // The gate is never closed; without a permit the write would just go ahead.
            let _permit = inner.gate.acquire().await.ok();
            let now = inner.clock.now();
            inner
                .store
                .save_checkpoint(&inner.fence, value, external_task_id, now)
                .await
                .map_err(|err| match err {
                    StoreError::Conflict(_) | StoreError::NotFound(_) => TaskError::Cancelled,
                    other => TaskError::retryable(format!("saving checkpoint failed: {other}")),
                })?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Checkpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoints")
            .field("durable", &self.inner.is_some())
            .finish_non_exhaustive()
    }
}
