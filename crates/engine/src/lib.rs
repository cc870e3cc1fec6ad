//! # nosyntask engine
//!
//! A durable workflow engine: a job is an ordered list of steps, each a task row in the database,
//! each run by a [`StepHandler`]. State lives in the [`JobStore`]; a process holds nothing a crash
//! may lose.
//!
//! ## The worker loop
//!
//! A [`Worker`] runs up to `concurrency` handlers at once:
//!
//! 1. **Claim.** When it has free slots it calls [`JobStore::claim_tasks`], which atomically takes
//!    a batch of ready tasks (`FOR UPDATE SKIP LOCKED` on PostgreSQL and MySQL, a write
//!    transaction on SQLite), raising each task's attempt count and giving it a lease. The claim
//!    (task id, owner, attempt) is the [`Fence`](ports::Fence) every later write is checked against.
//!    With nothing to claim it waits for a notification (PostgreSQL `LISTEN/NOTIFY`, or the
//!    process's own starts) or a short poll interval.
//! 2. **Run.** Each claimed task gets its input built from the context `{jobParams,
//!    previousResults, userId, projectId, stepIndex}` and runs with a timeout and a cancellation
//!    token, a progress reporter and its last checkpoint.
//! 3. **Finish.** Results go to a completer that writes them in batches; each completion
//!    makes the job's next step ready or completes the job, in the same transaction. A retryable
//!    error schedules the task again after an exponential backoff with jitter (or the provider's
//!    `Retry-After`); a permanent one, or the last attempt, fails the job.
//! 4. **Background duties**, each batched per process: lease renewal (heartbeat), progress
//!    flushing (at most one write per task per interval), watching for cancelled jobs, requeueing
//!    tasks whose lease expired (their process died), and pruning old jobs.
//! 5. **Shutdown.** Stop claiming, let running handlers finish within a grace period, then cancel
//!    the rest and hand them back without using up an attempt.

mod backoff;
mod checkpoint;
mod engine;
mod metrics;
mod operations;
pub mod ports;
mod progress;
pub mod usage;
mod worker;
mod workflow;

pub use backoff::Backoff;
pub use checkpoint::Checkpoints;
pub use engine::{Engine, EngineConfig, EngineError, ListQuery, StartRequest, Started};
pub use metrics::{Metrics, ModelLabels, ModelNameLabels, UsageLabels, WorkflowLabels};
pub use ports::{JobStore, StoreError};
pub use progress::{ProgressReporter, ProgressSlot};
pub use tokio_util::sync::CancellationToken;
pub use usage::UsageMeter;
pub use worker::{RetentionConfig, Worker, WorkerConfig, WorkerHandle};
pub use workflow::{
    FanOut, InputBuilder, ItemFailure, ItemsOf, LimitOf, ModelOf, Registry, StepContext,
    StepDefinition, StepHandler, StepRun, SummarizeFn, UniqueKeyFn, WorkflowDefinition,
};
