//! Background duties of a worker process, each one batched statement per interval: lease renewal,
//! progress flushing, cancellation watching, sweeping expired leases, pruning old jobs.

use std::collections::HashSet;

use futures::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nosyntask_domain::TaskId;
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

/// Leases renewed per store call. Each chunk's confirmation counts from the moment that chunk
/// was sent, so with many tasks (100,000 are 100 chunks) a slow round does not leave the tasks
/// of its first chunks unconfirmed until its last one answers.
const RENEW_CHUNK: usize = 1_000;

/// Chunks renewed at once (the store keeps two connections apart for heartbeats).
const RENEWALS_IN_FLIGHT: usize = 2;

/// A heartbeat. While this process holds its owner lease, it renews that one row, which keeps
/// every task it runs, then checks (reading, not writing) which of its claims were taken from it
/// meanwhile (a cancel, a resume). Otherwise, and after the owner lease was found gone (it lapsed
/// and a sweep requeued its tasks), it renews the tasks one by one, which takes back those nobody
/// claimed since, and then takes its owner lease again.
pub(super) async fn renew_leases(state: Arc<State>) {
    let fences: Vec<Fence> = state.running().values().map(|r| r.fence.clone()).collect();
    if fences.is_empty() {
        return;
    }
    let store = state.engine.store();
    let (owner, ttl) = (&state.config.owner, state.config.lease_ttl);
    if state.owner_lease_held.load(Ordering::Acquire) {
        let sent = Instant::now();
        match store.renew_owner_lease(owner, ttl, state.now()).await {
            Ok(true) => {
                confirm(&state, &fences, &HashSet::new(), sent);
                futures::stream::iter(fences.chunks(RENEW_CHUNK))
                    .for_each_concurrent(RENEWALS_IN_FLIGHT, |chunk| check_chunk(&state, chunk))
                    .await;
                return;
            }
            Ok(false) => {
                warn!(owner, "the owner lease lapsed; renewing each task's lease");
                state.owner_lease_held.store(false, Ordering::Release);
            }
            Err(err) => {
                warn!(error = %err, "renewing the owner lease failed");
                return;
            }
        }
    }
    let failed = AtomicBool::new(false);
    futures::stream::iter(fences.chunks(RENEW_CHUNK))
        .for_each_concurrent(RENEWALS_IN_FLIGHT, |chunk| {
            renew_chunk(&state, chunk, &failed)
        })
        .await;
    if !failed.load(Ordering::Relaxed) {
        match store.start_owner_lease(owner, ttl, state.now()).await {
            Ok(()) => state.owner_lease_held.store(true, Ordering::Release),
            Err(err) => warn!(error = %err, "taking the owner lease failed"),
        }
    }
}

/// Renews one chunk of task leases; sets `failed` when the store call failed.
async fn renew_chunk(state: &State, fences: &[Fence], failed: &AtomicBool) {
    // The database extends each lease from its own "now", which comes after this instant: the
    // lease surely lasts until `sent + TTL` on this process's monotonic clock.
    let sent = Instant::now();
    let now = state.now();
    match state
        .engine
        .store()
        .renew_leases(fences, state.config.lease_ttl, now)
        .await
    {
        Ok(lost) => confirm(state, fences, &lost.into_iter().collect(), sent),
        Err(err) => {
            warn!(error = %err, "renewing leases failed");
            failed.store(true, Ordering::Relaxed);
        }
    }
}

/// Stops the handlers of the claims among `fences` that were taken from this process.
async fn check_chunk(state: &State, fences: &[Fence]) {
    match state.engine.store().lost_fences(fences).await {
        Ok(lost) if !lost.is_empty() => stop_lost(state, fences, &lost.into_iter().collect()),
        Ok(_) => {}
        Err(err) => warn!(error = %err, "checking the claims held failed"),
    }
}

/// Records a renewal sent at `sent`: the leases of `fences` not `lost` are confirmed until
/// `sent + TTL`; the handlers of the lost ones are stopped.
fn confirm(state: &State, fences: &[Fence], lost: &HashSet<TaskId>, sent: Instant) {
    stop_lost(state, fences, lost);
    let mut running = state.running();
    for fence in fences {
        if let Some(r) = running
            .get_mut(&fence.task_id)
            .filter(|r| r.fence == *fence && !lost.contains(&fence.task_id))
        {
            r.lease_confirmed_until = sent + state.config.lease_ttl;
        }
    }
}

fn stop_lost(state: &State, fences: &[Fence], lost: &HashSet<TaskId>) {
    if lost.is_empty() {
        return;
    }
    let running = state.running();
    for fence in fences.iter().filter(|f| lost.contains(&f.task_id)) {
        // A finished attempt whose completion just committed reads as lost too.
        if let Some(r) = running
            .get(&fence.task_id)
            .filter(|r| r.fence == *fence && !r.result_pending)
        {
            warn!(task_id = fence.task_id, "lease lost; stopping the handler");
            r.cancel.cancel();
        }
    }
}

/// Self-fencing: stops every handler whose lease could lapse within the margin because no
/// renewal confirmed it lately (the database is out of reach, or too slow to answer). Another
/// worker may take such a task over once its lease lapses; by then this one has stopped.
pub(super) async fn fence_off_unconfirmed(state: Arc<State>) {
    let deadline = Instant::now() + state.config.effective_self_fence_margin();
    let mut running = state.running();
    for r in running.values_mut() {
        if r.result_pending || r.fenced_off || r.lease_confirmed_until > deadline {
            continue;
        }
        warn!(
            task_id = r.fence.task_id,
            "lease not confirmed by the database in time; stopping the handler before it could \
             be taken over"
        );
        r.fenced_off = true;
        r.cancel.cancel();
    }
}

pub(super) async fn flush_progress(state: Arc<State>) {
    let updates: Vec<ProgressUpdate> = {
        let running = state.running();
        // What has something to write: new attempts' starts first, then the progress written
        // longest ago, up to the flush's limit.
        let mut waiting: Vec<(bool, Instant, TaskId)> = running
            .iter()
            .filter(|(_, r)| r.unwritten_start.is_some() || r.progress.is_dirty())
            .map(|(id, r)| (r.unwritten_start.is_none(), r.progress_written_at, *id))
            .collect();
        let limit = state.config.progress_writes_per_flush.max(1);
        if waiting.len() > limit {
            waiting.select_nth_unstable(limit - 1);
            waiting.truncate(limit);
        }
        waiting
            .iter()
            .filter_map(|(_, _, id)| {
                let r = running.get(id)?;
                let moved = r.progress.take_if_dirty();
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
            let written = Instant::now();
            let mut running = state.running();
            for update in &updates {
                if let Some(r) = running.get_mut(&update.fence.task_id) {
                    r.progress_written_at = written;
                    if update.started.is_some() {
                        r.unwritten_start = None;
                    }
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
