//! One attempt of one task: build its input, run its handler under timeout and cancellation, and
//! record a failure (successes go to the completer).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use nosyntask_domain::{TaskError, TaskId, TaskUsage};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use super::completer::{retry_store, retry_store_for};
use super::fan_out::Coordinator;
use super::{Finished, Role, Running, State};
use crate::checkpoint::Checkpoints;
use crate::metrics::WorkflowLabels;
use crate::ports::{ClaimedTask, Failure, StepStarted};
use crate::progress::{ProgressReporter, ProgressSlot};
use crate::usage::UsageMeter;
use crate::workflow::{StepContext, StepHandler, StepRun};

/// Registers the attempt (so the claim loop counts it at once), then runs it on its own task.
pub(super) fn start_task(
    state: &Arc<State>,
    claimed: ClaimedTask,
    lease_confirmed_until: Instant,
    finished: mpsc::UnboundedSender<Finished>,
) {
    let task_id = claimed.task.id;
    let span = info_span!(
        "task",
        job_id = claimed.job.id,
        task_id,
        workflow_type = %claimed.job.workflow_type,
        step = claimed.task.step_index,
        attempt = claimed.fence.attempt,
    );
    let seq = state.next_seq.fetch_add(1, Ordering::Relaxed);
    let prepared = span.in_scope(|| prepare_attempt(state, claimed, seq, lease_confirmed_until));
    let state = state.clone();
    tokio::spawn(
        async move {
            let meter = UsageMeter::new();
            let outcome = match prepared {
                Ok(attempt) => execute_attempt(&state, attempt, &meter).await,
                Err(error) => Err(error),
            };
            // Boxed: its state (1.5 KB, the failure paths' store calls) would otherwise be part
            // of every waiting attempt's future, tripling it (100,000 waiting tasks: ~100 MB).
            Box::pin(record_outcome(
                &state,
                task_id,
                seq,
                outcome,
                meter.usage(),
                &finished,
            ))
            .await;
        }
        .instrument(span),
    );
}

/// An attempt ready to run.
struct Attempt {
    run: StepRun,
    handler: Arc<dyn StepHandler>,
    timeout: Duration,
    cancel: CancellationToken,
}

/// Builds the step's input and registers the attempt as running. An `Err` is recorded as the
/// attempt's failure (unknown step, attempts used up by crashed workers).
fn prepare_attempt(
    state: &Arc<State>,
    claimed: ClaimedTask,
    seq: u64,
    lease_confirmed_until: Instant,
) -> Result<Attempt, TaskError> {
    let engine = &state.engine;
    let ClaimedTask {
        fence,
        task,
        mut job,
        previous_results,
        checkpoint,
    } = claimed;
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
        // The claim is ours: its params and results move into the context, no copies.
        job_params: std::mem::take(&mut job.input_params),
        previous_results,
        user_id: job.user_id,
        project_id: job.project_id,
        step_index: task.step_index,
    };
    let fan_out = step.as_ref().and_then(|s| s.fan_out.clone());
    let role = match (&fan_out, task.parent_task_id) {
        (Some(_), Some(_)) => Role::Item,
        (Some(_), None) => Role::Coordinator,
        (None, _) => Role::Step,
    };
    let input = match role {
        // An item's input was written when the item was created.
        Role::Item => task.input_params.clone().unwrap_or(Value::Null),
        _ => step
            .as_ref()
            .map(|step| (step.build_input)(&context))
            .unwrap_or(Value::Null),
    };
    // The model recorded at start stays when the input names none.
    let model_name = input
        .get("modelName")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| task.model_name.clone());
    let attempt = Running {
        role,
        seq,
        fence: fence.clone(),
        step_index: task.step_index,
        total_steps: job.total_steps,
        model_name: model_name.clone(),
        progress: progress.clone(),
        unwritten_start: Some(StepStarted {
            input_params: input.clone(),
            model_name,
        }),
        cancel: cancel.clone(),
        labels: labels.clone(),
        started_at: Instant::now(),
        progress_written_at: Instant::now(),
        lease_confirmed_until,
        fenced_off: false,
        result_pending: false,
    };
    let replaced = {
        let mut running = state.running();
        state.count_in(&attempt);
        let replaced = running.insert(task.id, attempt);
        if let Some(old) = &replaced {
            state.count_out(old);
        }
        replaced
    };
    if let Some(old) = replaced {
        // The old attempt was cancelled and is winding down; it no longer counts as running.
        old.cancel.cancel();
    } else {
        engine.metrics().running_here.inc();
    }
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
    if checkpoint.is_some() {
        info!("resuming from checkpoint");
    }
    let (handler, timeout): (Arc<dyn StepHandler>, Duration) = match (role, fan_out) {
        (Role::Coordinator, Some(fan_out)) => (
            Arc::new(Coordinator {
                store: engine.store().clone(),
                clock: engine.clock().clone(),
                fence: fence.clone(),
                items: (fan_out.items)(&context),
                model_name: step.model_for(&context),
                limit: (fan_out.limit)(&context.job_params),
                on_item_failure: fan_out.on_item_failure,
                poll: state.config.fan_out_poll,
                summarize: fan_out
                    .summarize
                    .map(|summarize| (summarize, context.job_params.clone())),
            }),
            fan_out.timeout,
        ),
        _ => (step.handler.clone(), step.timeout),
    };
    // An item's progress is its own row's; the coordinator reports the step's (the average).
    let reporter = if role == Role::Item {
        ProgressReporter::detached()
    } else {
        ProgressReporter::new(progress)
    };
    let run = StepRun {
        input,
        progress: reporter,
        checkpoint: Checkpoints::new(
            engine.store().clone(),
            engine.clock().clone(),
            fence.clone(),
            checkpoint,
            state.task_writes.clone(),
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
        handler,
        timeout,
        cancel,
    })
}

/// Runs the handler on its own task (so a panic is caught) under the step's timeout, and gives a
/// cancelled handler `cancel_grace` to clean up before it is dropped. (Run inside the attempt's
/// task instead, with `catch_unwind`, a waiting attempt cost 0.4 KB less, but a no-op drain ran
/// 7–10 % slower in the same sitting; see docs/benchmarks.md.)
/// The model calls' usage lands in `meter`.
async fn execute_attempt(
    state: &Arc<State>,
    attempt: Attempt,
    meter: &UsageMeter,
) -> Result<Value, TaskError> {
    let Attempt {
        run,
        handler,
        timeout,
        cancel,
    } = attempt;
    let meter = meter.clone();
    let mut joined =
        tokio::spawn(async move { meter.measure(handler.run(run)).await }.in_current_span());
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
    seq: u64,
    outcome: Result<Value, TaskError>,
    usage: Option<TaskUsage>,
    finished: &mpsc::UnboundedSender<Finished>,
) {
    let is_item = state
        .running()
        .get(&task_id)
        .is_some_and(|r| r.seq == seq && r.role == Role::Item);
    let error = match outcome {
        Ok(result) if is_item => {
            finish_item(state, task_id, seq, Ok(result)).await;
            return;
        }
        Ok(result) => {
            state.result_pending(task_id, seq);
            // The handler's slot is free (see `State::slots_used`).
            state.slot_freed.notify_one();
            if finished
                .send(Finished {
                    seq,
                    task_id,
                    result,
                    usage,
                })
                .is_err()
            {
                // Completer gone (shutdown past its grace): the task is handed back instead.
                warn!("result arrived after shutdown; the task will be handed back");
            }
            return;
        }
        Err(TaskError::Cancelled) => {
            if !state.stopping.load(Ordering::SeqCst) {
                debug!("attempt cancelled");
                if let Some(r) = state.forget(task_id, seq)
                    && r.fenced_off
                {
                    hand_back_when_reachable(state, r.fence);
                }
            }
            return;
        }
        Err(error) => error,
    };
    let Some((fence, started, labels, step_index, total_steps, elapsed, model_name)) = ({
        let running = state.running();
        running.get(&task_id).filter(|r| r.seq == seq).map(|r| {
            (
                r.fence.clone(),
                r.unwritten_start.clone(),
                r.labels.clone(),
                r.step_index,
                r.total_steps,
                r.started_at.elapsed(),
                r.model_name.clone(),
            )
        })
    }) else {
        return;
    };
    if let (
        TaskError::Retryable {
            message,
            retry_after: Some(after),
        },
        Some(model),
    ) = (&error, &model_name)
    {
        // The provider asked to come back later: the model pauses for every process, and the
        // task waits for it like any other task of the model, without using up an attempt.
        pause_model_and_park(state, fence, model, *after, message).await;
        state.forget(task_id, seq);
        return;
    }
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
    let job_progress = super::overall_progress(step_index, total_steps, 0);
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
                job_progress,
            }
        }
        TaskError::Retryable { message, .. } if is_item => {
            warn!(error = %message, "last attempt of the item failed");
            metrics.tasks_failed.get_or_create(&labels).inc();
            let message = format!("{message} (gave up after {max_attempts} attempts)");
            finish_item(state, task_id, seq, Err(message)).await;
            return;
        }
        TaskError::Permanent { message } if is_item => {
            warn!(error = %message, "item failed");
            metrics.tasks_failed.get_or_create(&labels).inc();
            finish_item(state, task_id, seq, Err(message.clone())).await;
            return;
        }
        TaskError::Retryable { message, .. } => {
            warn!(error = %message, "last attempt failed");
            metrics.tasks_failed.get_or_create(&labels).inc();
            Failure {
                fence,
                message: format!("{message} (gave up after {max_attempts} attempts)"),
                retry_at: None,
                started,
                job_progress,
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
                job_progress,
            }
        }
        TaskError::Cancelled => return,
    };
    let permit = state.task_writes.acquire().await.ok();
    let recorded = retry_store(state, || state.engine.store().fail_task(&failure, now)).await;
    drop(permit);
    if let Err(err) = recorded {
        warn!(error = %err, "could not record the failure; the lease will expire and the step run again");
    }
    state.forget(task_id, seq);
}

/// Records an item's result or final failure on its own row (its coordinator moves the step).
async fn finish_item(
    state: &Arc<State>,
    task_id: TaskId,
    seq: u64,
    outcome: Result<Value, String>,
) {
    let Some((fence, started, labels)) = state
        .running()
        .get(&task_id)
        .filter(|r| r.seq == seq)
        .map(|r| (r.fence.clone(), r.unwritten_start.clone(), r.labels.clone()))
    else {
        return;
    };
    let now = state.now();
    let store = state.engine.store();
    let permit = state.task_writes.acquire().await.ok();
    let written = retry_store(state, || async {
        match &outcome {
            Ok(result) => {
                store
                    .complete_item(&fence, result, started.as_ref(), now)
                    .await
            }
            Err(message) => {
                store
                    .fail_item(&fence, message, started.as_ref(), now)
                    .await
            }
        }
    })
    .await;
    drop(permit);
    match written {
        Ok(true) if outcome.is_ok() => {
            state
                .engine
                .metrics()
                .tasks_completed
                .get_or_create(&labels)
                .inc();
        }
        Ok(_) => {}
        Err(err) => {
            warn!(error = %err, "could not record the item; the lease will expire and it runs again");
        }
    }
    state.forget(task_id, seq);
}

async fn pause_model_and_park(
    state: &Arc<State>,
    fence: crate::ports::Fence,
    model: &str,
    after: Duration,
    message: &str,
) {
    let now = state.now();
    let until = now + chrono::Duration::from_std(after).unwrap_or_default();
    warn!(
        error = %message,
        model,
        pause_ms = after.as_millis() as u64,
        "provider asked to wait; pausing the model for every worker"
    );
    state
        .engine
        .metrics()
        .model_pauses
        .get_or_create(&crate::metrics::ModelNameLabels {
            model: model.to_owned(),
        })
        .inc();
    let store = state.engine.store();
    if let Err(err) = retry_store(state, || store.pause_model(model, until, now)).await {
        warn!(error = %err, "could not record the model's pause");
    }
    let permit = state.task_writes.acquire().await.ok();
    let parked = retry_store(state, || store.park_task(&fence, until, now)).await;
    drop(permit);
    if let Err(err) = parked {
        warn!(error = %err, "could not hand the task back; its lease will expire");
    }
}

/// A runner stopped by self-fencing hands its task back once the database answers again, so the
/// outage costs no attempt. Harmless if another worker claimed the task meanwhile (the fence no
/// longer holds, nothing is written); if the database stays away longer than
/// `completion_retry`, the expiry sweep makes the task claimable instead.
fn hand_back_when_reachable(state: &Arc<State>, fence: crate::ports::Fence) {
    let state = state.clone();
    tokio::spawn(
        async move {
            let fences = [fence];
            let result = retry_store_for(&state, state.config.completion_retry, || {
                state.engine.store().release_tasks(&fences, state.now())
            })
            .await;
            match result {
                Ok(()) => info!("handed the task back after the lease could not be confirmed"),
                Err(err) => warn!(error = %err, "could not hand the task back; its lease expires"),
            }
        }
        .in_current_span(),
    );
}
