//! The usage meter of a running step: every model call made while the step's handler runs adds
//! what it used, and the sum is written with the task's result (`generation_tasks.usage`).
//!
//! The meter is a task-local of the handler's tokio task, so handlers need not pass it along:
//! the catalog's model wrappers call [`record`] after each call, and work a handler runs
//! concurrently inside its own task (`join_all`, `buffer_unordered`) is counted too. Work moved
//! to another tokio task with `tokio::spawn` is not; handlers do not spawn.

use std::future::Future;
use std::sync::{Arc, Mutex};

use nosyntask_domain::{TaskUsage, Usage};

tokio::task_local! {
    static METER: UsageMeter;
}

/// What the model calls of one step attempt used.
#[derive(Debug, Clone, Default)]
pub struct UsageMeter(Arc<Mutex<TaskUsage>>);

impl UsageMeter {
    pub fn new() -> Self {
        UsageMeter::default()
    }

    /// Runs `work` with this meter as the current step's.
    pub async fn measure<F: Future>(&self, work: F) -> F::Output {
        METER.scope(self.clone(), work).await
    }

    /// What was recorded so far; `None` when nothing was.
    pub fn usage(&self) -> Option<TaskUsage> {
        let usage = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        (!usage.is_empty()).then_some(usage)
    }

    fn add(&self, model: &str, usage: Usage) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(model, usage);
    }
}

/// Adds one call of `model` to the running step's meter; does nothing outside a step (a direct
/// call in a test or a tool).
pub fn record(model: &str, usage: Usage) {
    if usage.is_empty() {
        return;
    }
    let _ = METER.try_with(|meter| meter.add(model, usage));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn calls_inside_the_step_are_counted_and_outside_are_not() {
        let one = Usage {
            images: Some(1),
            ..Usage::default()
        };
        record("outside", one);
        let meter = UsageMeter::new();
        assert_eq!(meter.usage(), None);
        meter
            .measure(async {
                let calls = (0..3).map(|_| async { record("img", one) });
                futures::future::join_all(calls).await;
            })
            .await;
        let usage = meter.usage().unwrap();
        assert_eq!(usage.total.images, Some(3));
        assert_eq!(usage.models.keys().collect::<Vec<_>>(), vec!["img"]);
    }
}
