use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nosyntask_domain::{
    Job, JobId, JobStatus, JobWithTasks, ProjectId, Task, TaskId, TaskStatus, UserId,
};
use serde_json::Value;

/// What a store call can fail with, in terms a caller can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("job {0} not found")]
    NotFound(JobId),
    /// The job is in a state that does not allow the operation (e.g. cancelling a completed job).
    #[error("{0}")]
    Conflict(String),
    /// The user already has `limit` active jobs.
    #[error("user {user_id} already has {active} active jobs (limit {limit})")]
    QuotaExceeded {
        user_id: UserId,
        active: u64,
        limit: u64,
    },
    /// The database cannot be reached or answered with a passing error; try again later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Any other database error (a bug or a schema problem); the message is for logs.
    #[error("store error: {0}")]
    Other(String),
}

/// One step of a job to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTask {
    pub task_type: String,
    pub target_type: String,
    pub target_id: Option<i64>,
    pub max_attempts: i32,
    /// The model the step will call, resolved when the job starts (the params' choice or the
    /// kind's default): the claim admits the task only while that model has capacity.
    pub model_name: Option<String>,
}

/// A job to create, with one task per step, in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub user_id: UserId,
    pub project_id: ProjectId,
    pub workflow_type: String,
    pub input_params: Value,
    pub tasks: Vec<NewTask>,
    /// Same user + same key within `idempotency_window` returns the existing job.
    pub idempotency_key: Option<String>,
    pub idempotency_window: Duration,
    /// While a job of this user and workflow type with the same key is active (pending or
    /// running), creating another returns it instead.
    pub unique_key: Option<String>,
    /// The most pending/running jobs a user may have; `None` means no limit.
    pub max_active_per_user: Option<u64>,
    /// Orders the user's own jobs (see `StartRequest::priority`).
    pub priority: i32,
    /// Each of the user's active jobs of at least this priority (counted up to
    /// [`FAIR_SHARE_DEPTH`]) moves the job this much back in the claim order; zero: none.
    pub fair_share_quantum: Duration,
}

/// The most active jobs of a user counted for the fair-share offset: further back than this
/// the order no longer changes anything, and the count stays cheap however many jobs wait.
pub const FAIR_SHARE_DEPTH: u32 = 64;

impl NewJob {
    /// The job's fair-share offset in milliseconds, given the user's active jobs (of at least
    /// its priority) counted up to [`FAIR_SHARE_DEPTH`].
    pub fn fair_offset_ms(&self, active: i64) -> i64 {
        let quantum = i64::try_from(self.fair_share_quantum.as_millis()).unwrap_or(i64::MAX);
        active
            .clamp(0, i64::from(FAIR_SHARE_DEPTH))
            .saturating_mul(quantum)
    }
}

/// The result of `create_job`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateOutcome {
    pub job: JobWithTasks,
    /// True when an existing job was returned (idempotency key or uniqueness key).
    pub deduplicated: bool,
}

/// Which jobs `list_jobs` returns. Newest first (id descending).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobFilter {
    /// `None` lists every user's jobs (admins).
    pub user_id: Option<UserId>,
    pub project_id: Option<ProjectId>,
    pub workflow_type: Option<String>,
    /// Empty means any status.
    pub statuses: Vec<JobStatus>,
    /// Only jobs that are pending/running, or completed/failed and not consumed.
    pub active_only: bool,
    /// Only jobs with an id below this (cursor for the next page).
    pub before: Option<JobId>,
    pub limit: u64,
    /// Read `input_params` as `null`: a list of summaries need not read every job's params (a
    /// script can be 60,000 characters).
    pub without_params: bool,
    /// Only jobs whose params (keys and values) contain this text, ignoring case (SQLite: of
    /// ASCII letters only). A quote or a line break in the text finds the same in a params
    /// string (it is matched as JSON writes it).
    pub params_text: Option<String>,
}

/// The identity of one claim of a task: every write of a runner is fenced on it, so a runner
/// whose lease was taken over can no longer change anything.
///
/// A fence holds while the task is still this claim's: same owner and same `epoch`, the task
/// running, or pending after its lease lapsed and before anyone claimed it again (the runner may
/// then take it back, see [`JobStore::renew_leases`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fence {
    pub task_id: TaskId,
    pub job_id: JobId,
    pub owner: String,
    /// The task's `attempts` value set by this claim (user-visible; a resume sets it back to 0).
    pub attempt: i32,
    /// The task's claim epoch set by this claim: raised by every claim and every resume, never
    /// lowered, so no two claims of a task ever share it.
    pub epoch: i64,
}

/// A task handed to a worker by `claim_tasks`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedTask {
    pub fence: Fence,
    pub task: Task,
    /// The job as it was at claim time (for its params, user and project).
    pub job: Job,
    /// Results of the job's completed steps, by step index.
    pub previous_results: BTreeMap<i32, Value>,
    /// The last checkpoint a previous attempt saved, if any.
    pub checkpoint: Option<Value>,
}

/// A progress (and, once per attempt, started-input) update, written in batches.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgressUpdate {
    pub fence: Fence,
    pub progress: i32,
    /// Overall job progress matching `progress`.
    pub job_progress: i32,
    /// The step input and model, written with the first update of an attempt.
    pub started: Option<StepStarted>,
}

/// What the engine records when a step starts.
#[derive(Debug, Clone, PartialEq)]
pub struct StepStarted {
    pub input_params: Value,
    pub model_name: Option<String>,
}

/// A successful step, written in batches.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub fence: Fence,
    pub result: Value,
    /// What the step's model calls used (`generation_tasks.usage`).
    pub usage: Option<nosyntask_domain::TaskUsage>,
    /// Set when the step's input was not written yet (fast steps finish before the first flush).
    pub started: Option<StepStarted>,
    /// Whether this step is the job's last: the job completes with it.
    pub is_last_step: bool,
    /// Overall job progress after this step.
    pub job_progress: i32,
}

/// A failed attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub fence: Fence,
    pub message: String,
    /// `Some`: the task goes back to pending, claimable from then on. `None`: the task fails and
    /// with it the job.
    pub retry_at: Option<DateTime<Utc>>,
    pub started: Option<StepStarted>,
    /// With `retry_at`: the job's progress once this step is back at 0 % (the next attempt
    /// starts over), so the job and its step never disagree while it waits.
    pub job_progress: i32,
}

/// Counts for metrics and the console.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Tasks pending and ready to claim now.
    pub ready: u64,
    /// Tasks pending with a later ready time (retry backoff).
    pub scheduled: u64,
    pub running: u64,
    /// Active jobs (pending, running) by status; finished jobs are not counted here, so the
    /// figures cost the same however much history the store keeps.
    pub jobs_by_status: BTreeMap<String, u64>,
}

/// What changes whenever a job or one of its tasks is written: live views re-read a job only
/// when its version moved (see [`JobStore::job_versions`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobVersion {
    pub job_id: JobId,
    pub status: JobStatus,
    pub progress: i32,
    pub updated_at: DateTime<Utc>,
    /// The latest `updated_at` of the job's tasks.
    pub tasks_updated_at: Option<DateTime<Utc>>,
}

impl JobVersion {
    /// The version of a job as read whole.
    pub fn of(job: &JobWithTasks) -> Self {
        JobVersion {
            job_id: job.job.id,
            status: job.job.status,
            progress: job.job.progress,
            updated_at: job.job.updated_at,
            tasks_updated_at: job.tasks.iter().map(|t| t.updated_at).max(),
        }
    }
}

/// Tasks of one model, task type, status and attempt count, for the console's activity view:
/// either in flight now (queued or running), or finished (completed, failed, cancelled) since
/// the time given to [`JobStore::task_activity`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskActivity {
    /// The model the step named (`None`: the step has not started, or used its kind's default
    /// model without naming it).
    pub model_name: Option<String>,
    pub task_type: String,
    pub status: TaskStatus,
    /// Attempts (claims) each of these tasks has used.
    pub attempts: i32,
    /// How many tasks.
    pub tasks: u64,
}

/// What the tasks of one model did in one time bucket, for the console's charts: those that
/// finished in it (completed or failed for good), how long their last attempts ran and what the
/// completed ones cost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelBucket {
    /// The model (`None`: steps that named none).
    pub model_name: Option<String>,
    /// The bucket's start, a multiple of the bucket length since the epoch.
    pub bucket_start: DateTime<Utc>,
    pub completed: u64,
    pub failed: u64,
    /// The completed tasks' last attempts, added up (a mean is `completed_ms / completed`).
    pub completed_ms: u64,
    /// What the completed tasks' calls of this model cost, in millionths (priced models only).
    pub cost_micros: u64,
}

/// A model's share of the provider, as configured: the claim admits a task of this model only
/// while fewer than `max_concurrency` tasks of it run on any process and, with a rate, fewer
/// than `requests_per_minute` were admitted in the current minute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelLimit {
    pub name: String,
    pub max_concurrency: u32,
    pub requests_per_minute: Option<u32>,
}

/// A model's limit and what uses it now, across every process on the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelUsage {
    pub name: String,
    pub max_concurrency: u32,
    pub requests_per_minute: Option<u32>,
    /// Tasks of this model running now.
    pub running: u32,
    /// Tasks admitted in the current minute window (counted against `requests_per_minute`).
    pub minute_claims: u32,
    /// Until when a provider's 429 paused the model, if that is still ahead.
    pub paused_until: Option<DateTime<Utc>>,
}

impl ModelUsage {
    /// Why a ready task of this model is not claimed now, if it is not.
    pub fn waiting_reason(&self, now: DateTime<Utc>) -> Option<String> {
        if let Some(until) = self.paused_until.filter(|until| *until > now) {
            return Some(format!(
                "waiting for model {}: paused by the provider until {}",
                self.name,
                until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ));
        }
        if self.running >= self.max_concurrency {
            return Some(format!(
                "waiting for model {} ({} of {} busy)",
                self.name, self.running, self.max_concurrency
            ));
        }
        match self.requests_per_minute {
            Some(rate) if self.minute_claims >= rate => Some(format!(
                "waiting for model {}: {} of {} requests this minute",
                self.name, self.minute_claims, rate
            )),
            _ => None,
        }
    }
}

/// One item of a fan-out step, as its coordinator sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemState {
    pub index: i32,
    pub status: TaskStatus,
    pub progress: i32,
    pub result: Option<Value>,
    pub error: Option<String>,
}

fn no_fan_out() -> StoreError {
    StoreError::Other("this store does not run fan-out steps".to_owned())
}

/// Durable state of jobs and tasks. Implementations: `nosyntask-store` (SQLite, PostgreSQL,
/// MySQL/MariaDB). Every method is atomic: it commits all of its writes or none.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// `sqlite`, `postgres` or `mysql`.
    fn backend_name(&self) -> &'static str;

    /// Cheap round trip to the database (readiness).
    async fn ping(&self) -> Result<(), StoreError>;

    // --- API side ---------------------------------------------------------------------------

    /// Creates the job and its tasks in one transaction (the first task ready at `now`), after
    /// the idempotency, uniqueness and quota checks, all inside that transaction.
    async fn create_job(
        &self,
        job: NewJob,
        now: DateTime<Utc>,
    ) -> Result<CreateOutcome, StoreError>;

    async fn get_job(&self, id: JobId) -> Result<Option<JobWithTasks>, StoreError>;

    /// The jobs with `ids` that exist (each as `get_job` reads it), in order of id, duplicates
    /// once: what many concurrent status reads of different jobs share (a few statements
    /// however many jobs, instead of a few per job).
    async fn get_jobs(&self, ids: &[JobId]) -> Result<Vec<JobWithTasks>, StoreError> {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let mut jobs = Vec::with_capacity(ids.len());
        for id in ids {
            jobs.extend(self.get_job(id).await?);
        }
        Ok(jobs)
    }

    /// The versions of the jobs with `ids` that exist, in one read whatever their number (a few
    /// index lookups per job): what event streams poll instead of reading every job whole.
    async fn job_versions(&self, ids: &[JobId]) -> Result<Vec<JobVersion>, StoreError> {
        let mut versions = Vec::with_capacity(ids.len());
        for &id in ids {
            if let Some(job) = self.get_job(id).await? {
                versions.push(JobVersion::of(&job));
            }
        }
        Ok(versions)
    }

    async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<Job>, StoreError>;

    /// How many jobs match `filter` in each status (statuses without jobs left out), ignoring
    /// its `statuses`, `before` and `limit`: a list's totals, whichever page it shows.
    async fn count_jobs(&self, filter: &JobFilter) -> Result<Vec<(JobStatus, u64)>, StoreError>;

    /// Marks the job consumed (idempotent).
    async fn consume_job(&self, id: JobId, now: DateTime<Utc>) -> Result<Job, StoreError>;

    /// Cancels the job and its pending/running tasks (idempotent; `Conflict` if completed).
    async fn cancel_job(&self, id: JobId, now: DateTime<Utc>) -> Result<Job, StoreError>;

    /// A failed or cancelled job continues from its first unfinished step: that task becomes
    /// ready at `now` with attempts reset (and a new claim epoch), finished steps keep their
    /// results. `Conflict` in any other status, or when another active job holds the same
    /// uniqueness key; `QuotaExceeded` when the user already has `max_active_per_user` active
    /// jobs (counted under the same per-user lock as starts).
    async fn resume_job(
        &self,
        id: JobId,
        max_active_per_user: Option<u64>,
        now: DateTime<Utc>,
    ) -> Result<Job, StoreError>;

    // --- worker side ------------------------------------------------------------------------

    /// Atomically claims up to `limit` ready tasks (pending, ready at or before `now`) for
    /// `owner`: status running, attempts + 1, lease until `now + lease`; their jobs become
    /// running. Uses `FOR UPDATE SKIP LOCKED` where the database has it.
    async fn claim_tasks(
        &self,
        owner: &str,
        limit: u32,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<ClaimedTask>, StoreError>;

    /// Extends the leases of the given claims to `now + lease`, a few statements for any number
    /// of claims. A claim whose lease lapsed and was swept back to pending, but that nobody
    /// claimed since, is taken back (running again, same attempt): its runner is alive. Returns
    /// the task ids whose fence no longer holds (claimed by another, cancelled or finished).
    async fn renew_leases(
        &self,
        fences: &[Fence],
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<TaskId>, StoreError>;

    /// Extends `owner`'s own lease to `now + lease`: one row however many tasks the owner runs.
    /// While it holds, the expiry sweep requeues none of the owner's running tasks, even those
    /// whose own lease (from the claim or the last [`JobStore::renew_leases`]) ran out. `false`:
    /// the owner holds no lease (never started, or it lapsed and a sweep deleted it and requeued
    /// the owner's tasks in the same transaction): renew the tasks one by one with
    /// [`JobStore::renew_leases`], which takes back what nobody claimed since, then
    /// [`JobStore::start_owner_lease`]. A store without owner leases answers `false`.
    async fn renew_owner_lease(
        &self,
        _owner: &str,
        _lease: Duration,
        _now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(false)
    }

    /// Takes (or extends) `owner`'s own lease until `now + lease`; see
    /// [`JobStore::renew_owner_lease`]. Call it only after every task the owner runs was renewed
    /// with [`JobStore::renew_leases`] since its owner lease was last found gone.
    async fn start_owner_lease(
        &self,
        _owner: &str,
        _lease: Duration,
        _now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    /// The task ids among `fences` whose fence no longer holds (claimed by another, cancelled,
    /// resumed or finished), read without writing or locking anything: what
    /// [`JobStore::renew_leases`] reports, for claims an owner lease keeps.
    async fn lost_fences(&self, fences: &[Fence]) -> Result<Vec<TaskId>, StoreError>;

    /// Writes coalesced progress (task and job) in one transaction; stale fences are skipped.
    async fn write_progress(
        &self,
        updates: &[ProgressUpdate],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Saves a checkpoint (and the provider's task id, if given) for the claim. `Conflict` if the
    /// fence no longer holds.
    async fn save_checkpoint(
        &self,
        fence: &Fence,
        checkpoint: &Value,
        external_task_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Completes tasks in one transaction: each task completed with its result and progress 100;
    /// its job advances (next task ready at `now`) or completes. Returns, per completion in order,
    /// whether its fence still held (false: the result was discarded).
    async fn complete_tasks(
        &self,
        completions: &[Completion],
        now: DateTime<Utc>,
    ) -> Result<Vec<bool>, StoreError>;

    /// Records a failed attempt (retry later, or fail task and job). Returns whether the fence held.
    async fn fail_task(&self, failure: &Failure, now: DateTime<Utc>) -> Result<bool, StoreError>;

    /// Hands claims back without using up an attempt (graceful shutdown): pending, ready now,
    /// attempts - 1, lease cleared.
    async fn release_tasks(&self, fences: &[Fence], now: DateTime<Utc>) -> Result<(), StoreError>;

    /// Task ids leased by `owner` whose status is no longer running (cancelled by a user).
    async fn cancelled_claims(&self, owner: &str) -> Result<Vec<TaskId>, StoreError>;

    /// Makes running tasks whose lease expired before `now` claimable again (their worker died,
    /// or lost the database for longer than the lease): tasks whose own lease ran out and that
    /// no owner lease holding at `now` covers (see [`JobStore::renew_owner_lease`]). They keep their lease owner and epoch,
    /// so a live runner can still take them back until another claim does. Returns how many.
    async fn requeue_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Deletes terminal jobs (and their tasks) finished before the cut-offs. Returns how many.
    async fn prune(
        &self,
        consumed_before: DateTime<Utc>,
        unconsumed_before: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    /// Waits until new work may be ready (a job created, a step advanced, a retry scheduled, by
    /// this or, on PostgreSQL, any process) or `max_wait` passes. Never errors: a broken
    /// notification channel degrades to polling.
    async fn wait_for_work(&self, max_wait: Duration);

    async fn stats(&self, now: DateTime<Utc>) -> Result<StoreStats, StoreError>;

    /// The database's own clock, read in one round trip. Every time that decides who may run
    /// what is taken from it (see `DatabaseClock`), never from a process's clock.
    async fn database_time(&self) -> Result<DateTime<Utc>, StoreError>;

    /// Counts of tasks grouped by model, task type, status and attempts: every running task,
    /// every queued one (pending with a ready time: claimable now or waiting for a retry), and
    /// the tasks that finished at or after `since`. Read-only; served by indexes.
    async fn task_activity(&self, since: DateTime<Utc>) -> Result<Vec<TaskActivity>, StoreError>;

    /// Tasks finished at or after `since`, per model and per `bucket` of time, oldest bucket
    /// first; buckets where a model finished nothing are left out. Read-only; served by the
    /// index on completion time.
    async fn model_series(
        &self,
        since: DateTime<Utc>,
        bucket: Duration,
    ) -> Result<Vec<ModelBucket>, StoreError>;

    // --- scheduling -------------------------------------------------------------------------

    /// Records this process's configured model limits (workers call it at start; the last
    /// writer wins, so every process should be configured alike). From then on this store's
    /// claims admit tasks of these models only within their limits, across processes.
    async fn set_model_limits(
        &self,
        _limits: &[ModelLimit],
        _now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    /// Every limited model with what uses it now.
    async fn model_usage(&self, _now: DateTime<Utc>) -> Result<Vec<ModelUsage>, StoreError> {
        Ok(Vec::new())
    }

    /// Pauses the model for every process until `until` (a provider's `Retry-After`); a later
    /// pause already recorded is kept.
    async fn pause_model(
        &self,
        _name: &str,
        _until: DateTime<Utc>,
        _now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    /// For the coordinator of a fan-out step (its task's claim `parent`), in one transaction:
    /// creates the item tasks from `items` if they do not exist yet (recording `model_name`,
    /// whose limit they hold); with `reset_unfinished`,
    /// makes failed and cancelled items pending again (a new attempt of the step: completed
    /// items are never run again); makes pending items ready, in item order, until `limit`
    /// items are ready or running; returns every item's state in item order. `Conflict` if the
    /// parent's fence no longer holds.
    async fn sync_items(
        &self,
        _parent: &Fence,
        _items: Option<&[Value]>,
        _model_name: Option<&str>,
        _reset_unfinished: bool,
        _limit: u32,
        _now: DateTime<Utc>,
    ) -> Result<Vec<ItemState>, StoreError> {
        Err(no_fan_out())
    }

    /// Cancels the pending and running items of the parent's step (an item failed the job).
    async fn cancel_items(&self, _parent: &Fence, _now: DateTime<Utc>) -> Result<(), StoreError> {
        Err(no_fan_out())
    }

    /// Completes one item (its job does not move: the step's coordinator completes the step).
    /// Returns whether the fence held.
    async fn complete_item(
        &self,
        _fence: &Fence,
        _result: &Value,
        _started: Option<&StepStarted>,
        _now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Err(no_fan_out())
    }

    /// Fails one item for good (its job does not fail: the coordinator applies the step's
    /// failure policy). Returns whether the fence held.
    async fn fail_item(
        &self,
        _fence: &Fence,
        _message: &str,
        _started: Option<&StepStarted>,
        _now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Err(no_fan_out())
    }

    /// Hands a claim back without using up an attempt, claimable again from `ready_at` (a task
    /// whose model was paused under it). Returns whether the fence held.
    async fn park_task(
        &self,
        fence: &Fence,
        _ready_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.release_tasks(std::slice::from_ref(fence), now)
            .await
            .map(|()| true)
    }
}
