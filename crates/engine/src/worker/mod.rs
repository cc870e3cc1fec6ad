//! The worker pool: claims ready tasks, runs their handlers, and writes what happened. See the
//! crate documentation for the loop; this module keeps every database write batched per process.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nosyntask_domain::TaskId;
use serde_json::Value;
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

mod attempt;
mod completer;
mod config;
mod duties;
mod fan_out;

use crate::engine::Engine;
use crate::metrics::WorkflowLabels;
use crate::ports::{Fence, StepStarted};
use crate::progress::ProgressSlot;
use attempt::start_task;
use completer::{retry_store, run_completer};
pub use config::{RetentionConfig, WorkerConfig};
use duties::{
    every, fence_off_unconfirmed, flush_progress, prune, renew_leases, sweep_expired,
    watch_cancellations,
};

/// A worker pool over an engine. `spawn` starts it; the handle shuts it down.
#[derive(Debug)]
pub struct Worker {
    engine: Engine,
    config: WorkerConfig,
}

/// A running worker pool.
pub struct WorkerHandle {
    state: Arc<State>,
    stop: CancellationToken,
    main: JoinHandle<()>,
}

impl std::fmt::Debug for WorkerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerHandle")
            .field("owner", &self.state.config.owner)
            .finish_non_exhaustive()
    }
}

impl WorkerHandle {
    /// Stops claiming, lets running handlers finish within the grace period, then hands the rest
    /// back without using up an attempt. Returns when all of it is written.
    pub async fn shutdown(self) {
        self.stop.cancel();
        if let Err(err) = self.main.await {
            warn!(error = %err, "worker main loop ended abnormally");
        }
    }

    /// Handlers running now.
    pub fn in_flight(&self) -> usize {
        self.state.running().len()
    }

    pub fn owner(&self) -> &str {
        &self.state.config.owner
    }
}

/// What a running attempt is to its step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// A step run by its handler.
    Step,
    /// The coordinator of a fan-out step: waits for its items, holds no worker slot.
    Coordinator,
    /// One item of a fan-out step: completes and fails on its own row.
    Item,
}

/// One running attempt.
struct Running {
    role: Role,
    /// This process's number for the attempt. A resumed job can be claimed again by the same
    /// worker with the same fence while the cancelled attempt is still winding down; the number
    /// keeps the old attempt's outcome from being taken for the new one's.
    seq: u64,
    fence: Fence,
    step_index: i32,
    total_steps: i32,
    /// The model the task records (its limit and pauses are the cluster's).
    model_name: Option<String>,
    progress: Arc<ProgressSlot>,
    /// Input and model not yet written (written by the first progress flush or the completion).
    unwritten_start: Option<StepStarted>,
    /// When a progress flush last wrote this attempt (its claim, before the first).
    progress_written_at: Instant,
    cancel: CancellationToken,
    labels: WorkflowLabels,
    started_at: Instant,
    /// Until when the lease is surely ours: the moment the last renewal that confirmed it was
    /// sent (or the claim), plus the lease TTL. The database's lease runs at least as long.
    lease_confirmed_until: Instant,
    /// The handler was stopped because the lease could no longer be confirmed (self-fencing).
    fenced_off: bool,
    /// The handler returned a result that waits for the completer: nothing left to stop.
    result_pending: bool,
}

/// A finished attempt on its way to the completer.
struct Finished {
    /// Which attempt of the task (see `Running::seq`).
    seq: u64,
    task_id: TaskId,
    result: Value,
    /// What the attempt's model calls used.
    usage: Option<nosyntask_domain::TaskUsage>,
}

struct State {
    engine: Engine,
    config: WorkerConfig,
    running: Mutex<HashMap<TaskId, Running>>,
    /// A handler finished: a slot is free.
    slot_freed: Notify,
    /// A job advanced or expired tasks were requeued here: ready work may be waiting. A freed slot
    /// alone does not mean there is work, so the two are kept apart to avoid empty claims.
    work_ready: Notify,
    /// Set when shutdown begins; cancelled handlers are then released, not recorded.
    stopping: AtomicBool,
    /// The next attempt number (`Running::seq`).
    next_seq: AtomicU64,
    /// This process holds its owner lease (see `JobStore::renew_owner_lease`): a heartbeat
    /// renews that one row, not every task.
    owner_lease_held: AtomicBool,
    /// Permits for single-task writes (see `WorkerConfig::task_writes_in_flight`).
    task_writes: Arc<Semaphore>,
    /// Attempts in `running` that hold a slot, by kind: handlers running, results waiting
    /// (coordinators count in neither). Changed only with the `running` lock held, so that
    /// `slots_used` need not walk 100,000 waiting attempts at every freed slot.
    handlers_running: AtomicUsize,
    results_waiting: AtomicUsize,
}

impl State {
    fn running(&self) -> MutexGuard<'_, HashMap<TaskId, Running>> {
        // A panic while holding this lock cannot leave the map half-updated (single inserts and
        // removes), so a poisoned lock is still usable.
        self.running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.engine.clock().now()
    }

    /// Attempts that hold a worker slot: handlers still running (coordinators of fan-out steps
    /// hold none), and, beyond one slot's worth of each, results waiting for the completer.
    ///
    /// A handler that returned frees its slot at once: the next task is claimed while the
    /// result is being written, instead of each slot idling for a completion round trip after
    /// every step (PostgreSQL, 32 slots: a slot's cycle was claim + completion ≈ 5 ms, which
    /// capped a no-op drain at ~6,400 tasks/s). Results waiting for the database are bounded all
    /// the same: at most `concurrency` of them hold no slot, so a slow completion path slows
    /// claiming down instead of piling up finished attempts.
    fn slots_used(&self) -> usize {
        let handlers = self.handlers_running.load(Ordering::Relaxed);
        let results = self.results_waiting.load(Ordering::Relaxed);
        handlers + results.saturating_sub(self.config.concurrency)
    }

    /// The count `r` is in: handlers running or results waiting (coordinators hold no slot).
    fn slot_count(&self, r: &Running) -> Option<&AtomicUsize> {
        match (r.role, r.result_pending) {
            (Role::Coordinator, _) => None,
            (_, false) => Some(&self.handlers_running),
            (_, true) => Some(&self.results_waiting),
        }
    }

    /// Counts an attempt added to `running` (call with its lock held).
    fn count_in(&self, r: &Running) {
        if let Some(count) = self.slot_count(r) {
            count.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Uncounts an attempt removed from `running`, or about to change (lock held).
    fn count_out(&self, r: &Running) {
        if let Some(count) = self.slot_count(r) {
            count.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// The attempt's handler returned a result that now waits for the completer.
    fn result_pending(&self, task_id: TaskId, seq: u64) {
        let mut running = self.running();
        if let Some(r) = running
            .get_mut(&task_id)
            .filter(|r| r.seq == seq && !r.result_pending)
        {
            self.count_out(r);
            r.result_pending = true;
            self.count_in(r);
        }
    }

    /// Removes attempt `seq` of the task (not a newer attempt of the same task).
    fn forget(&self, task_id: TaskId, seq: u64) -> Option<Running> {
        let removed = {
            let mut running = self.running();
            match running.get(&task_id) {
                Some(r) if r.seq == seq => {
                    self.count_out(r);
                    running.remove(&task_id)
                }
                _ => None,
            }
        };
        if let Some(removed) = &removed {
            self.engine.metrics().running_here.dec();
            self.slot_freed.notify_one();
            // Its model has room again (its outcome is written by now): a task that waited for
            // the model may be claimable.
            if removed.model_name.is_some() {
                self.work_ready.notify_one();
            }
        }
        removed
    }
}

fn overall_progress(step_index: i32, total_steps: i32, task_progress: i32) -> i32 {
    if total_steps <= 0 {
        return task_progress;
    }
    ((step_index * 100 + task_progress) / total_steps).clamp(0, 100)
}

impl Worker {
    pub fn new(engine: Engine, config: WorkerConfig) -> Self {
        Worker { engine, config }
    }

    /// Starts the claim loop and the background duties on the current tokio runtime.
    pub fn spawn(self) -> WorkerHandle {
        let task_writes = Arc::new(Semaphore::new(self.config.task_writes_in_flight.max(1)));
        let state = Arc::new(State {
            engine: self.engine,
            config: self.config,
            running: Mutex::new(HashMap::new()),
            slot_freed: Notify::new(),
            work_ready: Notify::new(),
            stopping: AtomicBool::new(false),
            next_seq: AtomicU64::new(0),
            owner_lease_held: AtomicBool::new(false),
            task_writes,
            handlers_running: AtomicUsize::new(0),
            results_waiting: AtomicUsize::new(0),
        });
        let stop = CancellationToken::new();
        let main = tokio::spawn(run_pool(state.clone(), stop.clone()));
        WorkerHandle { state, stop, main }
    }
}

async fn run_pool(state: Arc<State>, stop: CancellationToken) {
    let owner = state.config.owner.clone();
    state.engine.clock().ensure_synced().await;
    if !state.config.model_limits.is_empty() {
        let limits = &state.config.model_limits;
        if let Err(err) = retry_store(&state, || {
            state.engine.store().set_model_limits(limits, state.now())
        })
        .await
        {
            warn!(error = %err, "could not record the model limits; the last recorded ones hold");
        }
    }
    info!(%owner, concurrency = state.config.concurrency, "worker started");
    let duties_stop = CancellationToken::new();
    let (finished_tx, finished_rx) = mpsc::unbounded_channel::<Finished>();
    let completer = tokio::spawn(run_completer(state.clone(), finished_rx));
    let duties = [
        tokio::spawn(every(
            state.config.heartbeat_interval,
            duties_stop.clone(),
            state.clone(),
            renew_leases,
        )),
        tokio::spawn(every(
            state.config.progress_interval,
            duties_stop.clone(),
            state.clone(),
            flush_progress,
        )),
        tokio::spawn(every(
            state.config.cancel_check_interval,
            duties_stop.clone(),
            state.clone(),
            watch_cancellations,
        )),
        // No database call: it must run while the database does not answer.
        tokio::spawn(every(
            SELF_FENCE_CHECK,
            duties_stop.clone(),
            state.clone(),
            fence_off_unconfirmed,
        )),
        tokio::spawn(every(
            state.config.sweep_interval,
            duties_stop.clone(),
            state.clone(),
            sweep_expired,
        )),
        tokio::spawn(every(
            state
                .config
                .retention
                .as_ref()
                .map_or(Duration::from_secs(3600), |r| r.interval),
            duties_stop.clone(),
            state.clone(),
            prune,
        )),
    ];

    claim_loop(&state, &stop, &finished_tx).await;

    // Shutdown: let running handlers finish within the grace period.
    state.stopping.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + state.config.shutdown_grace;
    while !state.running().is_empty() && Instant::now() < deadline {
        tokio::select! {
            _ = state.slot_freed.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
    let leftover: Vec<CancellationToken> =
        state.running().values().map(|r| r.cancel.clone()).collect();
    for token in &leftover {
        token.cancel();
    }
    // Completions already queued are written before anything is handed back.
    drop(finished_tx);
    if let Err(err) = completer.await {
        warn!(error = %err, "completer ended abnormally");
    }
    let fences: Vec<Fence> = state.running().values().map(|r| r.fence.clone()).collect();
    if !fences.is_empty() {
        info!(count = fences.len(), "handing unfinished tasks back");
        let now = state.now();
        if let Err(err) =
            retry_store(&state, || state.engine.store().release_tasks(&fences, now)).await
        {
            warn!(error = %err, "could not hand tasks back; their leases will expire");
        }
    }
    duties_stop.cancel();
    for duty in duties {
        let _ = duty.await;
    }
    info!(%owner, "worker stopped");
}

/// How often running handlers are checked against their last confirmed renewal.
const SELF_FENCE_CHECK: Duration = Duration::from_millis(250);

/// How long the claim loop lets freed slots gather before claiming fewer than a quarter batch.
const CLAIM_GATHER: Duration = Duration::from_millis(2);

/// Claims while there are free slots; waits for a notification or the poll interval otherwise.
async fn claim_loop(
    state: &Arc<State>,
    stop: &CancellationToken,
    finished: &mpsc::UnboundedSender<Finished>,
) {
    let store = state.engine.store().clone();
    let mut error_backoff = Duration::from_millis(100);
    // Claiming one freed slot at a time would cost a statement per task under load: while other
    // handlers run, wait a moment for a quarter batch of slots to free up, then claim them at once.
    let worthwhile = (state.config.claim_batch as usize)
        .min(state.config.concurrency)
        .div_ceil(4);
    while !stop.is_cancelled() {
        let running = state.slots_used();
        let mut free = state.config.concurrency.saturating_sub(running);
        if free == 0 {
            tokio::select! {
                _ = state.slot_freed.notified() => {}
                _ = stop.cancelled() => {}
            }
            continue;
        }
        if free < worthwhile && running > 0 {
            tokio::select! {
                _ = tokio::time::sleep(CLAIM_GATHER) => {}
                _ = stop.cancelled() => continue,
            }
            free = state.config.concurrency.saturating_sub(state.slots_used());
        }
        let limit = u32::try_from(free)
            .unwrap_or(u32::MAX)
            .min(state.config.claim_batch);
        let claim_started = Instant::now();
        let claimed = store
            .claim_tasks(
                &state.config.owner,
                limit,
                state.config.lease_ttl,
                state.now(),
            )
            .await;
        match claimed {
            Ok(tasks) => {
                error_backoff = Duration::from_millis(100);
                let got = tasks.len();
                tracing::trace!(
                    got,
                    limit,
                    ms = claim_started.elapsed().as_secs_f64() * 1e3,
                    "claim"
                );
                let lease_confirmed_until = claim_started + state.config.lease_ttl;
                for task in tasks {
                    start_task(state, task, lease_confirmed_until, finished.clone());
                }
                if got < limit as usize {
                    tracing::debug!(got, limit, "claimed less than asked; waiting for work");
                    tokio::select! {
                        _ = store.wait_for_work(state.config.poll_interval) => {}
                        _ = state.work_ready.notified() => {}
                        _ = stop.cancelled() => {}
                    }
                }
            }
            Err(err) => {
                warn!(error = %err, retry_in_ms = error_backoff.as_millis() as u64, "claiming tasks failed");
                tokio::select! {
                    _ = tokio::time::sleep(error_backoff) => {}
                    _ = stop.cancelled() => {}
                }
                error_backoff = (error_backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}
