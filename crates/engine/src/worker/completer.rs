//! The completer: writes finished attempts in batches, one transaction per batch.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
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
        let now = state.now();
        let write_started = Instant::now();
        let held = match retry_store(&state, || {
            state.engine.store().complete_tasks(&completions, now)
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
}

/// Retries a store write through passing outages (the database restarting), for up to a lease.
pub(super) async fn retry_store<T, F, Fut>(state: &State, mut call: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let deadline = Instant::now() + state.config.lease_ttl;
    let mut pause = Duration::from_millis(50);
    loop {
        match call().await {
            Err(StoreError::Unavailable(message)) if Instant::now() < deadline => {
                warn!(error = %message, retry_in_ms = pause.as_millis() as u64, "store unavailable, retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            other => return other,
        }
    }
}
