//! Completion hooks that run inside the store's own transactions: an embedding service's side
//! effect on the same database (NanoStory's `UPDATE characters SET front_view_url …`) commits
//! with the task's result, or neither does. A crash before the commit leaves neither; the fence
//! lets a completion commit once, so the hook never runs twice for one event.
//!
//! Each event runs in a savepoint. A hook that fails has its writes rolled back to the
//! savepoint, and the result it followed commits without them: the failure is logged, counted
//! ([`Store::hook_failures`]) and kept on the job (`workflow_jobs.hook_error`, shown by the job
//! read). A hook that loses a deadlock or a serialization race is not a hook failure: the whole
//! transaction runs again, the hook with it.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use nosyntask_domain::{Job, JobId, Task, TaskId};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr, TransactionTrait};

use crate::error::{Result, is_retryable};
use crate::jobs::load_job;
use crate::sql::stmt;
use crate::store::Store;

/// What happened to a job or one of its tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HookEventKind {
    /// A step (or an item of a fan-out step) completed with its result.
    StepCompleted,
    /// A step (or an item) failed for good: no retry is left.
    StepFailed,
    /// The job's last step completed.
    JobCompleted,
    /// The job failed with its step.
    JobFailed,
    /// The job was cancelled.
    JobCancelled,
}

impl HookEventKind {
    /// The event's name (`step.completed`, `job.cancelled`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            HookEventKind::StepCompleted => "step.completed",
            HookEventKind::StepFailed => "step.failed",
            HookEventKind::JobCompleted => "job.completed",
            HookEventKind::JobFailed => "job.failed",
            HookEventKind::JobCancelled => "job.cancelled",
        }
    }
}

/// One event, as the transaction that records it sees the job: after its writes.
#[derive(Debug, Clone, PartialEq)]
pub struct HookEvent {
    pub kind: HookEventKind,
    pub job: Job,
    /// The task the event is about (with its `result_data` or `error_message`); `None` for a
    /// cancelled job.
    pub task: Option<Task>,
}

/// A side effect that commits with the completion it follows. Register one with
/// [`Store::set_transaction_hook`].
///
/// The hook gets the completion's transaction (inside a savepoint of its own): everything it
/// writes through it commits with the task's result, or not at all. It must not do anything
/// outside the database (an HTTP call would happen again when the transaction runs again after
/// a deadlock); effects outside the database belong after the commit.
///
/// An embedding service that keeps its characters' views in its own `characters` table, on the
/// engine's database:
///
/// ```no_run
/// use std::sync::Arc;
///
/// use nosyntask_store::{HookEvent, HookEventKind, Store, TransactionHook};
/// use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr, Statement};
///
/// /// Writes a character's three views where the application reads them.
/// struct CharacterViews;
///
/// #[async_trait::async_trait]
/// impl TransactionHook for CharacterViews {
///     async fn on_event(&self, txn: &DatabaseTransaction, event: &HookEvent) -> Result<(), DbErr> {
///         let done = event.kind == HookEventKind::JobCompleted
///             && event.job.workflow_type == "character_views_generation";
///         let character = event.job.input_params["characterId"].as_i64();
///         let result = event.task.as_ref().and_then(|t| t.result_data.as_ref());
///         let (true, Some(character), Some(result)) = (done, character, result) else {
///             return Ok(());
///         };
///         let url = |key: &str| result[key].as_str().map(str::to_owned);
///         txn.execute_raw(Statement::from_sql_and_values(
///             txn.get_database_backend(),
///             "UPDATE characters SET front_view_url = ?, side_view_url = ?, \
///              back_view_url = ?, generation_status = 'completed' WHERE id = ?",
///             [
///                 url("frontViewUrl").into(),
///                 url("sideViewUrl").into(),
///                 url("backViewUrl").into(),
///                 character.into(),
///             ],
///         ))
///         .await?;
///         Ok(())
///     }
/// }
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = Store::connect("mysql://root@127.0.0.1:3306/app").await?;
/// store.migrate().await?;
/// if store.set_transaction_hook(Arc::new(CharacterViews)).is_err() {
///     return Err("a hook is already registered".into());
/// }
/// // Hand `store` to the engine as usual: every completion runs the hook in its transaction.
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait TransactionHook: Send + Sync {
    async fn on_event(&self, txn: &DatabaseTransaction, event: &HookEvent) -> Result<(), DbErr>;
}

/// Events of one job in a transaction, in the order they happened.
#[derive(Debug, Clone)]
pub(crate) struct Happened {
    pub(crate) job_id: JobId,
    pub(crate) task_id: Option<TaskId>,
    pub(crate) kinds: Vec<HookEventKind>,
}

impl Happened {
    pub(crate) fn new(job_id: JobId, task_id: Option<TaskId>, kinds: &[HookEventKind]) -> Self {
        Happened {
            job_id,
            task_id,
            kinds: kinds.to_vec(),
        }
    }
}

impl Store {
    /// Registers the hook that runs inside every completion, failure and cancellation
    /// transaction of this store (and its clones). One per store; a second call is refused with
    /// the hook given back.
    pub fn set_transaction_hook(
        &self,
        hook: Arc<dyn TransactionHook>,
    ) -> std::result::Result<(), Arc<dyn TransactionHook>> {
        self.inner.hook.set(hook)
    }

    /// How many hook events failed (their writes rolled back, the results committed) since
    /// this store connected.
    pub fn hook_failures(&self) -> u64 {
        self.inner.hook_failures.load(Ordering::Relaxed)
    }

    /// Whether events are wanted: a hook, or outbox subscribers.
    pub(crate) fn has_hook(&self) -> bool {
        self.inner.hook.get().is_some() || !self.outbox_subscribers().is_empty()
    }

    /// Runs the registered hook for `happened`, and records the events in the outbox, in
    /// `txn`, before it commits.
    pub(crate) async fn fire(
        &self,
        txn: &DatabaseTransaction,
        happened: &[Happened],
    ) -> Result<()> {
        if !self.has_hook() {
            return Ok(());
        }
        let hook = self.inner.hook.get();
        for happening in happened {
            let Some(read) = load_job(txn, happening.job_id).await? else {
                continue;
            };
            let task = happening
                .task_id
                .and_then(|id| read.tasks.iter().find(|t| t.id == id).cloned());
            for &kind in &happening.kinds {
                let event = HookEvent {
                    kind,
                    job: read.job.clone(),
                    task: task.clone(),
                };
                crate::outbox::record(txn, self.outbox_subscribers(), &event).await?;
                let Some(hook) = hook else {
                    continue;
                };
                let savepoint = txn.begin().await?;
                let Err(err) = hook.on_event(&savepoint, &event).await else {
                    savepoint.commit().await?;
                    continue;
                };
                if is_retryable(&err) {
                    return Err(err.into());
                }
                // A savepoint that cannot be rolled back (the transaction itself is gone) fails
                // the whole completion, which runs again.
                savepoint.rollback().await?;
                self.inner.hook_failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    job_id = happening.job_id,
                    task_id = happening.task_id,
                    event = kind.as_str(),
                    error = %err,
                    "completion hook failed; the result is stored without its writes"
                );
                txn.execute_raw(stmt(
                    txn.get_database_backend(),
                    "UPDATE workflow_jobs SET hook_error = ? WHERE id = ?",
                    vec![
                        format!("{}: {err}", kind.as_str()).into(),
                        happening.job_id.into(),
                    ],
                ))
                .await?;
            }
        }
        Ok(())
    }
}
