//! The coordinator of a fan-out step: the step's own task, run like a handler that costs no
//! worker slot. It creates the item tasks once, keeps the job's limit of them ready as earlier
//! ones finish (any worker claims them), reports their average progress, applies the step's
//! failure policy, and returns the items' results in order once all have finished.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nosyntask_domain::{TaskError, TaskStatus};
use serde_json::{Value, json};
use tracing::warn;

use crate::ports::{Clock, Fence, ItemState, JobStore, StoreError};
use crate::workflow::{ItemFailure, StepHandler, StepRun, SummarizeFn};

pub(super) struct Coordinator {
    pub store: Arc<dyn JobStore>,
    pub clock: Arc<dyn Clock>,
    pub fence: Fence,
    /// The items' inputs, computed from the step's context at claim time.
    pub items: Vec<Value>,
    /// The model the items call (their task rows record it).
    pub model_name: Option<String>,
    pub limit: u32,
    pub on_item_failure: ItemFailure,
    pub poll: Duration,
    /// The step's result from the items' results, with the job's params.
    pub summarize: Option<(SummarizeFn, Value)>,
}

fn finished(item: &ItemState) -> bool {
    matches!(item.status, TaskStatus::Completed | TaskStatus::Failed)
}

#[async_trait]
impl StepHandler for Coordinator {
    async fn run(&self, run: StepRun) -> Result<Value, TaskError> {
        // The first look of every attempt creates the items (once per step) and gives failed or
        // cancelled ones another go (a resume); completed items are kept.
        let mut first = true;
        loop {
            let synced = self
                .store
                .sync_items(
                    &self.fence,
                    first.then_some(self.items.as_slice()),
                    self.model_name.as_deref(),
                    first,
                    self.limit,
                    self.clock.now(),
                )
                .await;
            match synced {
                Ok(items) => {
                    first = false;
                    if let Some(outcome) = self.outcome(&run, &items).await {
                        return outcome;
                    }
                }
                // The claim is gone (cancelled, or taken over): nothing more to do here.
                Err(StoreError::Conflict(_)) => return Err(TaskError::Cancelled),
                Err(err) => warn!(error = %err, "could not read the step's items; trying again"),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.poll) => {}
                _ = run.cancel.cancelled() => return Err(TaskError::Cancelled),
            }
        }
    }
}

impl Coordinator {
    /// The step's outcome once it is decided.
    async fn outcome(
        &self,
        run: &StepRun,
        items: &[ItemState],
    ) -> Option<Result<Value, TaskError>> {
        if items.is_empty() {
            return Some(self.result(Vec::new()));
        }
        let total: i64 = items
            .iter()
            .map(|i| {
                if i.status == TaskStatus::Completed {
                    100
                } else {
                    i64::from(i.progress)
                }
            })
            .sum();
        #[allow(clippy::cast_precision_loss)]
        run.progress.report(total as f64 / items.len() as f64);
        if self.on_item_failure == ItemFailure::FailJob
            && let Some(failed) = items.iter().find(|i| i.status == TaskStatus::Failed)
        {
            if let Err(err) = self.store.cancel_items(&self.fence, self.clock.now()).await {
                warn!(error = %err, "could not cancel the other items");
            }
            return Some(Err(TaskError::permanent(format!(
                "item {} failed: {}",
                failed.index,
                failed.error.as_deref().unwrap_or("no message")
            ))));
        }
        if !items.iter().all(finished) {
            return None;
        }
        Some(
            self.result(
                items
                    .iter()
                    .map(|i| match i.status {
                        TaskStatus::Completed => i.result.clone().unwrap_or(Value::Null),
                        _ => json!({"error": i.error}),
                    })
                    .collect(),
            ),
        )
    }

    /// The step's result from the items' results, in item order.
    fn result(&self, results: Vec<Value>) -> Result<Value, TaskError> {
        match &self.summarize {
            Some((summarize, params)) => summarize(params, results),
            None => Ok(Value::Array(results)),
        }
    }
}
