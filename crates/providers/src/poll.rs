//! `submit_and_poll`: start a provider task, checkpoint its id, poll it until it finishes.
//!
//! The task id is saved under the call's checkpoint key *before* the first poll. When the step
//! runs again (after a crash, a timeout or a retry) the saved task is polled instead of submitting
//! a new one, so a generation is paid for once. Cancelling the job cancels the provider task where
//! the provider allows it; a handler stopped for other reasons (lease lost, shutdown, timeout)
//! leaves it running for the next attempt to pick up.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use nosyntask_domain::TaskError;
use nosyntask_engine::ports::MediaContext;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::time::Instant;
use tracing::{debug, info, warn};

/// A provider task, as kept in the checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderTask {
    /// The provider's task id.
    pub id: String,
    /// Values captured from the submit response that later requests need (e.g. fal's URLs).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: BTreeMap<String, String>,
    /// When it was submitted (epoch milliseconds).
    #[serde(default)]
    pub submitted_at_ms: i64,
}

impl ProviderTask {
    pub fn new(id: impl Into<String>) -> Self {
        ProviderTask {
            id: id.into(),
            vars: BTreeMap::new(),
            submitted_at_ms: chrono::Utc::now().timestamp_millis(),
        }
    }
}

/// What a submission gave.
#[derive(Debug)]
pub enum Submitted<O> {
    /// A synchronous answer: the result is already there, nothing to poll.
    Done(O),
    /// A task to poll.
    Started(ProviderTask),
}

/// What one poll saw.
#[derive(Debug)]
pub enum PollState<O> {
    Running {
        progress: Option<f64>,
    },
    Done(O),
    /// The provider reports the task failed, with its message.
    Failed(String),
    /// The provider reports the task cancelled.
    Cancelled,
    /// The provider no longer knows the task (404) or its output has expired: polling it again
    /// can never succeed. The message says what was seen.
    Gone(String),
}

/// One provider's submit / poll / cancel calls.
#[async_trait]
pub trait RemoteJob: Send + Sync {
    type Output: Send;

    async fn submit(&self) -> Result<Submitted<Self::Output>, TaskError>;

    async fn poll(&self, task: &ProviderTask) -> Result<PollState<Self::Output>, TaskError>;

    /// Asks the provider to cancel; `Ok(false)` when it has no way to.
    async fn cancel(&self, task: &ProviderTask) -> Result<bool, TaskError>;
}

/// How to poll.
#[derive(Debug, Clone)]
pub struct PollOptions {
    /// The adapter name, kept in the checkpoint and logs.
    pub provider: String,
    pub interval: Duration,
    /// Give up (retryably, keeping the task for the next attempt) after this long.
    pub max_duration: Duration,
    /// Typical duration; drives the progress shown when the provider reports none.
    pub expected: Duration,
    /// Consecutive retryable poll failures tolerated before giving up.
    pub max_poll_errors: u32,
    /// The part of the caller's progress range polling moves through.
    pub progress_from: f64,
    pub progress_to: f64,
}

impl PollOptions {
    pub fn new(provider: &str, interval: Duration, max_duration: Duration) -> Self {
        PollOptions {
            provider: provider.to_owned(),
            interval,
            max_duration,
            expected: Duration::from_secs(60),
            max_poll_errors: 3,
            progress_from: 5.0,
            progress_to: 90.0,
        }
    }
}

/// How long a cancel call to the provider may take (the engine gives cancelled handlers a few
/// seconds before it drops them).
const CANCEL_CALL_LIMIT: Duration = Duration::from_secs(3);

/// The provider task recorded under `key`, if any.
pub async fn checkpointed_task(ctx: &MediaContext, key: &str) -> Option<ProviderTask> {
    let entry = ctx.checkpoint_entry(key).await?;
    serde_json::from_value(entry.get("task")?.clone()).ok()
}

/// Submits (or resumes) and polls until the provider task finishes.
pub async fn submit_and_poll<J: RemoteJob>(
    job: &J,
    key: &str,
    ctx: &MediaContext,
    options: &PollOptions,
) -> Result<J::Output, TaskError> {
    let started = Instant::now();
    let mut resumed = false;
    let mut task = match checkpointed_task(ctx, key).await {
        Some(task) => {
            info!(task_id = %task.id, provider = %options.provider, "resuming the provider task from the checkpoint");
            resumed = true;
            task
        }
        // The calls made once are boxed (here and below): their states would otherwise be part
        // of every waiting task's future, which holds only the poll loop's while it waits.
        None => match Box::pin(submit(job, key, ctx, options)).await? {
            Submitted::Done(output) => return Ok(output),
            Submitted::Started(task) => task,
        },
    };
    let mut wait_first = !resumed;
    let mut poll_errors = 0;
    let mut wait = options.interval;
    loop {
        if wait_first {
            tokio::select! {
                _ = ctx.cancel.cancelled() => return Err(cancelled(job, &task, ctx).await),
                _ = tokio::time::sleep(wait) => {}
            }
        }
        wait_first = true;
        wait = options.interval;
        let state = tokio::select! {
            _ = ctx.cancel.cancelled() => return Err(cancelled(job, &task, ctx).await),
            state = job.poll(&task) => state,
        };
        match state {
            Ok(PollState::Running { progress }) => {
                poll_errors = 0;
                report(ctx, options, &task, progress);
            }
            Ok(PollState::Done(output)) => return Ok(output),
            Ok(PollState::Failed(message)) => {
                // Forget the task so that resuming the job submits a new one.
                let entry =
                    json!({"provider": options.provider, "failedTask": task.id, "error": message});
                Box::pin(ctx.save_checkpoint_entry(key, entry, None)).await?;
                return Err(TaskError::permanent(format!(
                    "provider task {} failed: {message}",
                    task.id
                )));
            }
            Ok(PollState::Cancelled) if resumed => {
                // Only this engine cancels its tasks: a cancelled task found when resuming was
                // cancelled with its job, which has been resumed since.
                info!(task_id = %task.id, "the checkpointed provider task was cancelled; submitting again");
                resumed = false;
                match Box::pin(submit(job, key, ctx, options)).await? {
                    Submitted::Done(output) => return Ok(output),
                    Submitted::Started(new_task) => task = new_task,
                }
            }
            Ok(PollState::Cancelled) => {
                return Err(TaskError::permanent(format!(
                    "provider task {} was cancelled at the provider",
                    task.id
                )));
            }
            Ok(PollState::Gone(message))
                if task_age(&task) < FRESH_TASK && poll_errors < options.max_poll_errors =>
            {
                // Some APIs answer 404 for a moment after creating a task (replication lag):
                // a task just submitted is asked again before it is given up.
                poll_errors += 1;
                warn!(task_id = %task.id, reason = %message, "a task just submitted is not found yet; asking again");
            }
            Ok(PollState::Gone(message)) => {
                return Err(Box::pin(forget(ctx, key, options, &task, &message)).await);
            }
            Err(TaskError::Cancelled) => return Err(TaskError::Cancelled),
            Err(err) if err.is_retryable() && poll_errors < options.max_poll_errors => {
                poll_errors += 1;
                // A rate-limited status request says when to ask again (429 Retry-After).
                if let TaskError::Retryable {
                    retry_after: Some(after),
                    ..
                } = &err
                {
                    let left = options.max_duration.saturating_sub(started.elapsed());
                    wait = (*after).max(options.interval).min(left);
                }
                warn!(task_id = %task.id, error = %err, attempt = poll_errors, wait_ms = wait.as_millis() as u64, "polling failed; trying again");
            }
            Err(err) => return Err(err.context(&format!("polling provider task {}", task.id))),
        }
        if started.elapsed() >= options.max_duration {
            return Err(TaskError::retryable(format!(
                "provider task {} did not finish within {} s; it is kept and polled again on the next attempt",
                task.id,
                options.max_duration.as_secs()
            )));
        }
    }
}

/// Clears a task the provider no longer knows from the checkpoint, so that the next attempt
/// (or a resume) submits again instead of failing on the same dead id forever.
pub(crate) async fn forget(
    ctx: &MediaContext,
    key: &str,
    options: &PollOptions,
    task: &ProviderTask,
    message: &str,
) -> TaskError {
    warn!(task_id = %task.id, provider = %options.provider, reason = %message, "the provider no longer knows the task; clearing it from the checkpoint");
    let entry = json!({"provider": options.provider, "goneTask": task.id, "error": message});
    if let Err(err) = ctx.save_checkpoint_entry(key, entry, None).await {
        return err;
    }
    TaskError::retryable(format!(
        "provider task {} is no longer known to the provider ({message}); it was cleared from \
         the checkpoint, so the next attempt submits a new one",
        task.id
    ))
}

/// How long a submission cancelled in flight may still take to answer, so that a task the
/// provider accepted is recorded and cancelled rather than left running unseen. With the cancel
/// call's own limit it stays within the engine's grace for cancelled handlers (5 s).
const SUBMIT_CANCEL_GRACE: Duration = Duration::from_millis(1500);

/// Below this age a task the provider does not find is asked for again rather than forgotten.
const FRESH_TASK: Duration = Duration::from_secs(30);

fn task_age(task: &ProviderTask) -> Duration {
    let ms = chrono::Utc::now().timestamp_millis() - task.submitted_at_ms;
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

async fn submit<J: RemoteJob>(
    job: &J,
    key: &str,
    ctx: &MediaContext,
    options: &PollOptions,
) -> Result<Submitted<J::Output>, TaskError> {
    let submission = job.submit();
    tokio::pin!(submission);
    let (submitted, cancelled_meanwhile) = tokio::select! {
        submitted = &mut submission => (submitted?, false),
        _ = ctx.cancel.cancelled() => {
            // The request may already have reached the provider: dropping it would lose the id
            // of a task that runs (and is billed) anyway.
            match tokio::time::timeout(SUBMIT_CANCEL_GRACE, &mut submission).await {
                Ok(Ok(submitted)) => (submitted, true),
                Ok(Err(_)) | Err(_) => return Err(TaskError::Cancelled),
            }
        }
    };
    let task = match submitted {
        Submitted::Done(_) if cancelled_meanwhile => return Err(TaskError::Cancelled),
        Submitted::Done(output) => {
            debug!(provider = %options.provider, "synchronous answer; nothing to poll");
            return Ok(Submitted::Done(output));
        }
        Submitted::Started(task) => task,
    };
    info!(task_id = %task.id, provider = %options.provider, "provider task submitted");
    let entry = json!({"provider": options.provider, "task": task});
    if let Err(err) = ctx.save_checkpoint_entry(key, entry, Some(&task.id)).await {
        // Nobody can resume a task whose id was not saved: do not let it run for nothing.
        warn!(task_id = %task.id, error = %err, "could not checkpoint the provider task; cancelling it");
        let _ = tokio::time::timeout(CANCEL_CALL_LIMIT, job.cancel(&task)).await;
        return Err(err);
    }
    if cancelled_meanwhile {
        return Err(cancelled(job, &task, ctx).await);
    }
    ctx.progress.report(options.progress_from);
    Ok(Submitted::Started(task))
}

fn report(ctx: &MediaContext, options: &PollOptions, task: &ProviderTask, progress: Option<f64>) {
    let span = options.progress_to - options.progress_from;
    let fraction = match progress {
        Some(p) if p.is_finite() => (p / 100.0).clamp(0.0, 1.0),
        _ => {
            // No progress from the provider: approach the end as time passes.
            let elapsed_ms = (chrono::Utc::now().timestamp_millis() - task.submitted_at_ms).max(0);
            let expected_ms = options.expected.as_millis().max(1) as f64;
            1.0 - (-(elapsed_ms as f64) / expected_ms).exp()
        }
    };
    ctx.progress.report(options.progress_from + span * fraction);
}

async fn cancelled<J: RemoteJob>(job: &J, task: &ProviderTask, ctx: &MediaContext) -> TaskError {
    if ctx.checkpoint.job_cancelled().await {
        match tokio::time::timeout(CANCEL_CALL_LIMIT, job.cancel(task)).await {
            Ok(Ok(true)) => info!(task_id = %task.id, "provider task cancelled"),
            Ok(Ok(false)) => debug!(task_id = %task.id, "the provider cannot cancel tasks"),
            Ok(Err(err)) => {
                warn!(task_id = %task.id, error = %err, "cancelling the provider task failed")
            }
            Err(_) => warn!(task_id = %task.id, "cancelling the provider task timed out"),
        }
    } else {
        debug!(task_id = %task.id, "handler stopped; the provider task is left for the next attempt");
    }
    TaskError::Cancelled
}
