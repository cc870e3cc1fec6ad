//! Background duties of a worker process, each one batched statement per interval: lease renewal,
//! progress flushing, cancellation watching, sweeping expired leases, pruning old jobs.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{State, overall_progress};
use crate::ports::{Fence, ProgressUpdate};

/// Runs `duty` every `period` until `stop`.
pub(super) async fn every<F, Fut>(
    period: Duration,
    stop: CancellationToken,
    state: Arc<State>,
    duty: F,
) where
    F: Fn(Arc<State>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut ticker = tokio::time::interval(period.max(Duration::from_millis(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = ticker.tick() => duty(state.clone()).await,
            _ = stop.cancelled() => return,
        }
    }
}

pub(super) async fn renew_leases(state: Arc<State>) {
    let fences: Vec<Fence> = state.running().values().map(|r| r.fence.clone()).collect();
    if fences.is_empty() {
        return;
    }
    let now = state.now();
    match state
        .engine
        .store()
        .renew_leases(&fences, state.config.lease_ttl, now)
        .await
    {
        Ok(lost) => {
            let running = state.running();
            for task_id in lost {
                if let Some(r) = running.get(&task_id) {
                    warn!(task_id, "lease lost; stopping the handler");
                    r.cancel.cancel();
                }
            }
        }
        Err(err) => warn!(error = %err, "renewing leases failed"),
    }
}

pub(super) async fn flush_progress(state: Arc<State>) {
    let updates: Vec<ProgressUpdate> = {
        let running = state.running();
        running
            .values()
            .filter_map(|r| {
                let moved = r.progress.take_if_dirty();
                if moved.is_none() && r.unwritten_start.is_none() {
                    return None;
                }
                let progress = moved.unwrap_or_else(|| r.progress.current());
                Some(ProgressUpdate {
                    fence: r.fence.clone(),
                    progress,
                    job_progress: overall_progress(r.step_index, r.total_steps, progress),
                    started: r.unwritten_start.clone(),
                })
            })
            .collect()
    };
    if updates.is_empty() {
        return;
    }
    let now = state.now();
    match state.engine.store().write_progress(&updates, now).await {
        Ok(()) => {
            let mut running = state.running();
            for update in &updates {
                if let Some(r) = running.get_mut(&update.fence.task_id)
                    && update.started.is_some()
                {
                    r.unwritten_start = None;
                }
            }
        }
        Err(err) => {
            warn!(error = %err, "writing progress failed");
            // Keep the values for the next flush.
            let running = state.running();
            for update in &updates {
                if let Some(r) = running.get(&update.fence.task_id) {
                    r.progress.mark_dirty();
                }
            }
        }
    }
}

pub(super) async fn watch_cancellations(state: Arc<State>) {
    if state.running().is_empty() {
        return;
    }
    match state
        .engine
        .store()
        .cancelled_claims(&state.config.owner)
        .await
    {
        Ok(ids) => {
            let running = state.running();
            for task_id in ids {
                if let Some(r) = running.get(&task_id)
                    && !r.cancel.is_cancelled()
                {
                    info!(task_id, "job cancelled; signalling the handler");
                    r.cancel.cancel();
                }
            }
        }
        Err(err) => warn!(error = %err, "checking for cancellations failed"),
    }
}

pub(super) async fn sweep_expired(state: Arc<State>) {
    match state.engine.store().requeue_expired(state.now()).await {
        Ok(0) => {}
        Ok(count) => {
            info!(count, "requeued tasks whose lease expired");
            state.work_ready.notify_one();
        }
        Err(err) => warn!(error = %err, "sweeping expired leases failed"),
    }
}

pub(super) async fn prune(state: Arc<State>) {
    let Some(retention) = state.config.retention.clone() else {
        return;
    };
    let now = state.now();
    let ago = |d: Duration| now - chrono::Duration::from_std(d).unwrap_or_default();
    match state
        .engine
        .store()
        .prune(
            ago(retention.consumed_after),
            ago(retention.unconsumed_after),
        )
        .await
    {
        Ok(0) => {}
        Ok(count) => info!(count, "pruned old jobs"),
        Err(err) => warn!(error = %err, "pruning old jobs failed"),
    }
}
