//! The worker pool: claims ready tasks, runs their handlers, and writes what happened. See the
//! crate documentation for the loop; this module keeps every database write batched per process.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nosyntask_domain::{TaskError, TaskId};
use serde_json::Value;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::backoff::Backoff;
use crate::checkpoint::Checkpoints;
use crate::engine::Engine;
use crate::metrics::WorkflowLabels;
use crate::ports::{
    ClaimedTask, Completion, Failure, Fence, ProgressUpdate, StepStarted, StoreError,
};
use crate::progress::{ProgressReporter, ProgressSlot};
use crate::workflow::{StepContext, StepRun};

/// How old terminal jobs get before they are deleted.
#[derive(Debug, Clone)]
pub struct RetentionConfig {
    pub consumed_after: Duration,
    pub unconsumed_after: Duration,
    pub interval: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            consumed_after: Duration::from_secs(7 * 24 * 3600),
            unconsumed_after: Duration::from_secs(30 * 24 * 3600),
            interval: Duration::from_secs(3600),
        }
    }
}

/// Tuning of one worker process.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Lease owner name; unique per process (host, pid and a random suffix by default).
    pub owner: String,
    /// Handlers running at once.
    pub concurrency: usize,
    /// Most tasks taken by one claim statement.
    pub claim_batch: u32,
    /// Most completions written by one transaction.
    pub completion_batch: usize,
    pub lease_ttl: Duration,
    pub heartbeat_interval: Duration,
    /// Longest wait for work without a notification.
    pub poll_interval: Duration,
    /// Progress is written at most once per task per interval.
    pub progress_interval: Duration,
    /// How often running tasks are checked for cancellation (across processes).
    pub cancel_check_interval: Duration,
    /// How long a cancelled handler may take to clean up (e.g. cancel the provider task).
    pub cancel_grace: Duration,
    /// How often expired leases are swept back to pending.
    pub sweep_interval: Duration,
    /// How long running handlers may finish after shutdown starts.
    pub shutdown_grace: Duration,
    pub backoff: Backoff,
    pub retention: Option<RetentionConfig>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            owner: default_owner(),
            concurrency: 32,
            claim_batch: 64,
            completion_batch: 512,
            lease_ttl: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(10),
            poll_interval: Duration::from_secs(1),
            progress_interval: Duration::from_secs(1),
            cancel_check_interval: Duration::from_secs(1),
            cancel_grace: Duration::from_secs(5),
            sweep_interval: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(10),
            backoff: Backoff::default(),
            retention: Some(RetentionConfig::default()),
        }
    }
}

fn default_owner() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".to_owned());
    format!(
        "{host}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

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

/// One running attempt.
struct Running {
    fence: Fence,
    step_index: i32,
    total_steps: i32,
    progress: Arc<ProgressSlot>,
    /// Input and model not yet written (written by the first progress flush or the completion).
    unwritten_start: Option<StepStarted>,
    cancel: CancellationToken,
    labels: WorkflowLabels,
    started_at: Instant,
}

/// A finished attempt on its way to the completer.
struct Finished {
    task_id: TaskId,
    result: Value,
}

struct State {
    engine: Engine,
    config: WorkerConfig,
    running: Mutex<HashMap<TaskId, Running>>,
    /// A slot freed or a job advanced: claim again now.
    wake: Notify,
    /// Set when shutdown begins; cancelled handlers are then released, not recorded.
    stopping: AtomicBool,
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

    fn forget(&self, task_id: TaskId) -> Option<Running> {
        let removed = self.running().remove(&task_id);
        if removed.is_some() {
            self.engine.metrics().running_here.dec();
            self.wake.notify_one();
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
        let state = Arc::new(State {
            engine: self.engine,
            config: self.config,
            running: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            stopping: AtomicBool::new(false),
        });
        let stop = CancellationToken::new();
        let main = tokio::spawn(run_pool(state.clone(), stop.clone()));
        WorkerHandle { state, stop, main }
    }
}

async fn run_pool(state: Arc<State>, stop: CancellationToken) {
    let owner = state.config.owner.clone();
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
            _ = state.wake.notified() => {}
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

/// Claims while there are free slots; waits for a notification or the poll interval otherwise.
async fn claim_loop(
    state: &Arc<State>,
    stop: &CancellationToken,
    finished: &mpsc::UnboundedSender<Finished>,
) {
    let store = state.engine.store().clone();
    let mut error_backoff = Duration::from_millis(100);
    while !stop.is_cancelled() {
        let free = state
            .config
            .concurrency
            .saturating_sub(state.running().len());
        if free == 0 {
            tokio::select! {
                _ = state.wake.notified() => {}
                _ = stop.cancelled() => {}
            }
            continue;
        }
        let limit = u32::try_from(free)
            .unwrap_or(u32::MAX)
            .min(state.config.claim_batch);
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
                for task in tasks {
                    start_task(state, task, finished.clone());
                }
                if got < limit as usize {
                    tokio::select! {
                        _ = store.wait_for_work(state.config.poll_interval) => {}
                        _ = state.wake.notified() => {}
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

/// Registers the attempt (so the claim loop counts it at once), then runs it on its own task.
fn start_task(state: &Arc<State>, claimed: ClaimedTask, finished: mpsc::UnboundedSender<Finished>) {
    let task_id = claimed.task.id;
    let span = info_span!(
        "task",
        job_id = claimed.job.id,
        task_id,
        workflow_type = %claimed.job.workflow_type,
        step = claimed.task.step_index,
        attempt = claimed.fence.attempt,
    );
    let prepared = span.in_scope(|| prepare_attempt(state, claimed));
    let state = state.clone();
    tokio::spawn(
        async move {
            let outcome = match prepared {
                Ok(attempt) => execute_attempt(&state, attempt).await,
                Err(error) => Err(error),
            };
            record_outcome(&state, task_id, outcome, &finished).await;
        }
        .instrument(span),
    );
}

/// An attempt ready to run.
struct Attempt {
    run: StepRun,
    handler: Arc<dyn crate::workflow::StepHandler>,
    timeout: Duration,
    cancel: CancellationToken,
}

/// Builds the step's input and registers the attempt as running. An `Err` is recorded as the
/// attempt's failure (unknown step, attempts used up by crashed workers).
fn prepare_attempt(state: &Arc<State>, claimed: ClaimedTask) -> Result<Attempt, TaskError> {
    let engine = &state.engine;
    let job = &claimed.job;
    let task = &claimed.task;
    let fence = claimed.fence.clone();
    let labels = WorkflowLabels {
        workflow_type: job.workflow_type.clone(),
        task_type: task.task_type.clone(),
    };
    let cancel = CancellationToken::new();
    let progress = ProgressSlot::new();

    let step = engine
        .registry()
        .get(&job.workflow_type)
        .and_then(|d| d.steps.get(usize::try_from(task.step_index).ok()?).cloned());
    let context = StepContext {
        job_params: job.input_params.clone(),
        previous_results: claimed.previous_results.clone(),
        user_id: job.user_id,
        project_id: job.project_id,
        step_index: task.step_index,
    };
    let input = step
        .as_ref()
        .map(|step| (step.build_input)(&context))
        .unwrap_or(Value::Null);
    let model_name = input
        .get("modelName")
        .and_then(Value::as_str)
        .map(str::to_owned);
    state.running().insert(
        task.id,
        Running {
            fence: fence.clone(),
            step_index: task.step_index,
            total_steps: job.total_steps,
            progress: progress.clone(),
            unwritten_start: Some(StepStarted {
                input_params: input.clone(),
                model_name,
            }),
            cancel: cancel.clone(),
            labels: labels.clone(),
            started_at: Instant::now(),
        },
    );
    engine.metrics().running_here.inc();
    engine.metrics().tasks_started.get_or_create(&labels).inc();

    let Some(step) = step else {
        return Err(TaskError::permanent(format!(
            "this worker has no step {} of workflow type `{}`",
            task.step_index, job.workflow_type
        )));
    };
    let max_attempts = i32::try_from(step.max_attempts).unwrap_or(i32::MAX);
    if fence.attempt > max_attempts {
        // Earlier attempts never reported back: their process died holding the lease.
        return Err(TaskError::permanent(format!(
            "gave up after {max_attempts} attempts: the worker running this step stopped responding"
        )));
    }
    if claimed.checkpoint.is_some() {
        info!("resuming from checkpoint");
    }
    let run = StepRun {
        input,
        progress: ProgressReporter::new(progress),
        checkpoint: Checkpoints::new(
            engine.store().clone(),
            engine.clock().clone(),
            fence.clone(),
            claimed.checkpoint,
        ),
        cancel: cancel.clone(),
        job_id: job.id,
        task_id: task.id,
        step_index: task.step_index,
        attempt: fence.attempt,
        user_id: job.user_id,
        project_id: job.project_id,
    };
    Ok(Attempt {
        run,
        handler: step.handler.clone(),
        timeout: step.timeout,
        cancel,
    })
}

/// Runs the handler on its own task (so a panic is caught) under the step's timeout, and gives a
/// cancelled handler `cancel_grace` to clean up before it is dropped.
async fn execute_attempt(state: &Arc<State>, attempt: Attempt) -> Result<Value, TaskError> {
    let Attempt {
        run,
        handler,
        timeout,
        cancel,
    } = attempt;
    let mut joined = tokio::spawn(async move { handler.run(run).await }.in_current_span());
    let grace = state.config.cancel_grace;
    tokio::select! {
        result = &mut joined => match result {
            Ok(result) => result,
            Err(err) if err.is_panic() => Err(TaskError::permanent("the step handler panicked")),
            Err(_) => Err(TaskError::Cancelled),
        },
        _ = tokio::time::sleep(timeout) => {
            cancel.cancel();
            joined.abort();
            Err(TaskError::retryable(format!(
                "step timed out after {} s", timeout.as_secs_f64()
            )))
        }
        _ = async { cancel.cancelled().await; tokio::time::sleep(grace).await } => {
            joined.abort();
            Err(TaskError::Cancelled)
        }
    }
}

async fn record_outcome(
    state: &Arc<State>,
    task_id: TaskId,
    outcome: Result<Value, TaskError>,
    finished: &mpsc::UnboundedSender<Finished>,
) {
    let error = match outcome {
        Ok(result) => {
            if finished.send(Finished { task_id, result }).is_err() {
                // Completer gone (shutdown past its grace): the task is handed back instead.
                warn!("result arrived after shutdown; the task will be handed back");
            }
            return;
        }
        Err(TaskError::Cancelled) => {
            if !state.stopping.load(Ordering::SeqCst) {
                debug!("attempt cancelled");
                state.forget(task_id);
            }
            return;
        }
        Err(error) => error,
    };
    let Some((fence, started, labels, step_index, elapsed)) = ({
        let running = state.running();
        running.get(&task_id).map(|r| {
            (
                r.fence.clone(),
                r.unwritten_start.clone(),
                r.labels.clone(),
                r.step_index,
                r.started_at.elapsed(),
            )
        })
    }) else {
        return;
    };
    let metrics = state.engine.metrics();
    metrics
        .task_duration
        .get_or_create(&labels)
        .observe(elapsed.as_secs_f64());
    let max_attempts = state
        .engine
        .registry()
        .get(&labels.workflow_type)
        .and_then(|d| d.steps.get(usize::try_from(step_index).ok()?))
        .map_or(1, |s| i32::try_from(s.max_attempts).unwrap_or(i32::MAX));
    let now = state.now();
    let failure = match &error {
        TaskError::Retryable {
            message,
            retry_after,
        } if fence.attempt < max_attempts => {
            let delay = state.config.backoff.delay(fence.attempt, *retry_after);
            warn!(error = %message, retry_in_ms = delay.as_millis() as u64, "attempt failed, will retry");
            metrics.tasks_retried.get_or_create(&labels).inc();
            Failure {
                fence,
                message: message.clone(),
                retry_at: Some(now + chrono::Duration::from_std(delay).unwrap_or_default()),
                started,
            }
        }
        TaskError::Retryable { message, .. } => {
            warn!(error = %message, "last attempt failed");
            metrics.tasks_failed.get_or_create(&labels).inc();
            Failure {
                fence,
                message: format!("{message} (gave up after {max_attempts} attempts)"),
                retry_at: None,
                started,
            }
        }
        TaskError::Permanent { message } => {
            warn!(error = %message, "step failed");
            metrics.tasks_failed.get_or_create(&labels).inc();
            Failure {
                fence,
                message: message.clone(),
                retry_at: None,
                started,
            }
        }
        TaskError::Cancelled => return,
    };
    if let Err(err) = retry_store(state, || state.engine.store().fail_task(&failure, now)).await {
        warn!(error = %err, "could not record the failure; the lease will expire and the step run again");
    }
    state.forget(task_id);
}

/// Writes finished attempts in batches: one transaction per batch.
async fn run_completer(state: Arc<State>, mut finished: mpsc::UnboundedReceiver<Finished>) {
    let batch_size = state.config.completion_batch.max(1);
    let mut batch = Vec::with_capacity(batch_size);
    while finished.recv_many(&mut batch, batch_size).await > 0 {
        let mut completions = Vec::with_capacity(batch.len());
        let mut labels = Vec::with_capacity(batch.len());
        {
            let mut running = state.running();
            for done in batch.drain(..) {
                let Some(r) = running.get_mut(&done.task_id) else {
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
                labels.push((r.labels.clone(), r.started_at.elapsed(), is_last_step));
            }
        }
        if completions.is_empty() {
            continue;
        }
        let now = state.now();
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
        let metrics = state.engine.metrics();
        let mut advanced = false;
        for ((completion, ok), (label, elapsed, is_last)) in
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
            state.forget(completion.fence.task_id);
        }
        if advanced {
            // The next steps of these jobs are ready now.
            state.wake.notify_one();
        }
    }
}

/// Retries a store write through passing outages (the database restarting), for up to a lease.
async fn retry_store<T, F, Fut>(state: &State, mut call: F) -> Result<T, StoreError>
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

/// Runs `duty` every `period` until `stop`.
async fn every<F, Fut>(period: Duration, stop: CancellationToken, state: Arc<State>, duty: F)
where
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

async fn renew_leases(state: Arc<State>) {
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

async fn flush_progress(state: Arc<State>) {
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
                if let Some(r) = running.get_mut(&update.fence.task_id) {
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

async fn watch_cancellations(state: Arc<State>) {
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
                if let Some(r) = running.get(&task_id) {
                    if !r.cancel.is_cancelled() {
                        info!(task_id, "job cancelled; signalling the handler");
                        r.cancel.cancel();
                    }
                }
            }
        }
        Err(err) => warn!(error = %err, "checking for cancellations failed"),
    }
}

async fn sweep_expired(state: Arc<State>) {
    match state.engine.store().requeue_expired(state.now()).await {
        Ok(0) => {}
        Ok(count) => {
            info!(count, "requeued tasks whose lease expired");
            state.wake.notify_one();
        }
        Err(err) => warn!(error = %err, "sweeping expired leases failed"),
    }
}

async fn prune(state: Arc<State>) {
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
