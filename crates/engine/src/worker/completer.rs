//! The completer: writes finished attempts in batches, one transaction per batch.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tracing::{debug, warn};

use super::{Finished, State, overall_progress};
use crate::ports::{Completion, StoreError};

/// Writes finished attempts in batches: one transaction per batch.
pub(super) async fn run_completer(
    state: Arc<State>,
    mut finished: mpsc::UnboundedReceiver<Finished>,
) {
    let batch_size = state.config.completion_batch.max(1);
    let mut batch = Vec::with_capacity(batch_size);
    let writes = Arc::new(Semaphore::new(
        state.config.completion_writes_in_flight.max(1),
    ));
    let mut in_flight = JoinSet::new();
    while finished.recv_many(&mut batch, batch_size).await > 0 {
        let mut completions = Vec::with_capacity(batch.len());
        let mut labels = Vec::with_capacity(batch.len());
        {
            let mut running = state.running();
            for done in batch.drain(..) {
                let Some(r) = running.get_mut(&done.task_id).filter(|r| r.seq == done.seq) else {
                    continue;
                };
                let is_last_step = r.step_index + 1 >= r.total_steps;
                completions.push(Completion {
                    fence: r.fence.clone(),
                    result: done.result,
                    usage: done.usage,
                    started: r.unwritten_start.take(),
                    is_last_step,
                    job_progress: overall_progress(r.step_index + 1, r.total_steps, 0),
                });
                labels.push((
                    r.labels.clone(),
                    r.started_at.elapsed(),
                    is_last_step,
                    done.seq,
                ));
            }
        }
        if completions.is_empty() {
            continue;
        }
        // Each batch is written on its own task: one batch stuck on a slow or absent database
        // does not hold up the ones behind it (up to `completion_writes_in_flight` at once).
        let Ok(permit) = writes.clone().acquire_owned().await else {
            return;
        };
        let state = state.clone();
        in_flight.spawn(async move {
            write_batch(&state, completions, labels).await;
            drop(permit);
        });
        while in_flight.try_join_next().is_some() {}
    }
    while in_flight.join_next().await.is_some() {}
}

/// Writes one batch of completions (retrying through an outage while the fences may still
/// hold) and forgets the attempts.
async fn write_batch(state: &Arc<State>, completions: Vec<Completion>, labels: Vec<BatchLabel>) {
    let write_started = Instant::now();
    let held = match retry_store_for(state, state.config.completion_retry, || {
        state
            .engine
            .store()
            .complete_tasks(&completions, state.now())
    })
    .await
    {
        Ok(held) => held,
        Err(err) => {
            warn!(error = %err, count = completions.len(), "could not record completions; their leases will expire and the steps run again");
            vec![false; completions.len()]
        }
    };
    tracing::trace!(
        count = completions.len(),
        ms = write_started.elapsed().as_secs_f64() * 1e3,
        "complete"
    );
    let metrics = state.engine.metrics();
    let mut advanced = false;
    for ((completion, ok), (label, elapsed, is_last, seq)) in
        completions.iter().zip(held).zip(labels)
    {
        if ok {
            metrics.tasks_completed.get_or_create(&label).inc();
            metrics
                .task_duration
                .get_or_create(&label)
                .observe(elapsed.as_secs_f64());
            advanced |= !is_last;
        } else {
            debug!(
                task_id = completion.fence.task_id,
                "result discarded: the claim no longer holds"
            );
        }
        state.forget(completion.fence.task_id, seq);
    }
    if advanced {
        // The next steps of these jobs are ready now.
        state.work_ready.notify_one();
    }
}

/// Workflow labels, run time, last step and attempt number of one completion.
type BatchLabel = (crate::metrics::WorkflowLabels, Duration, bool, u64);

/// Retries a store write through passing outages (the database restarting), for up to a lease.
pub(super) async fn retry_store<T, F, Fut>(state: &State, call: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    retry_store_for(state, state.config.lease_ttl, call).await
}

/// Retries a store write through passing outages for up to `patience`; during shutdown, no
/// longer than the shutdown grace.
pub(super) async fn retry_store_for<T, F, Fut>(
    state: &State,
    patience: Duration,
    mut call: F,
) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let started = Instant::now();
    let mut pause = Duration::from_millis(50);
    loop {
        let patience = if state.stopping.load(Ordering::SeqCst) {
            patience.min(state.config.shutdown_grace)
        } else {
            patience
        };
        match call().await {
            Err(StoreError::Unavailable(message)) if started.elapsed() < patience => {
                warn!(error = %message, retry_in_ms = pause.as_millis() as u64, "store unavailable, retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            other => return other,
        }
    }
}
