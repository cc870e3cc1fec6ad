//! The engine facade: what the API layer calls. Every method checks who is asking; another user's
//! job answers `NotFound`, never "forbidden", so ids do not leak.

use std::sync::Arc;
use std::time::Duration;

use nosyntask_domain::{
    Job, JobId, JobStatus, JobWithTasks, ParamError, ProjectId, UserId, Viewer, lenient_integer,
};
use serde_json::Value;

use crate::metrics::Metrics;
use crate::ports::{
    Clock, DatabaseClock, JobFilter, JobStore, NewJob, NewTask, ParamsSource, Starter, StoreError,
};
use crate::workflow::{Registry, StepContext, WorkflowDefinition};

/// Limits applied when jobs start.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Pending/running jobs one user may have (`None`: unlimited). Default 20.
    pub max_active_jobs_per_user: Option<u64>,
    /// How long an idempotency key is remembered. Default 24 h.
    pub idempotency_window: Duration,
    /// Fair share between users: each active job a user already has (of at least the new
    /// job's priority) puts the new job this much further back in the claim order, as if it
    /// had become ready that much later. Zero: first come, first served. Default 60 s.
    pub fair_share_quantum: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_active_jobs_per_user: Some(20),
            idempotency_window: Duration::from_secs(24 * 3600),
            fair_share_quantum: Duration::from_secs(60),
        }
    }
}

/// What can go wrong with an API call, by what the caller should do about it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    #[error("unknown workflow type `{0}`")]
    UnknownWorkflow(String),
    #[error("invalid params: {0}")]
    InvalidParams(ParamError),
    #[error("job {0} not found")]
    NotFound(JobId),
    #[error("{0}")]
    Conflict(String),
    #[error("too many active jobs: {active} of {limit} allowed")]
    QuotaExceeded { active: u64, limit: u64 },
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for EngineError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(id) => EngineError::NotFound(id),
            StoreError::Conflict(message) => EngineError::Conflict(message),
            StoreError::QuotaExceeded { active, limit, .. } => {
                EngineError::QuotaExceeded { active, limit }
            }
            StoreError::Unavailable(message) => EngineError::Unavailable(message),
            StoreError::Other(message) => EngineError::Internal(message),
        }
    }
}

/// A request to start a workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct StartRequest {
    pub user_id: UserId,
    pub project_id: ProjectId,
    pub workflow_type: String,
    pub params: Value,
    pub idempotency_key: Option<String>,
    /// Orders the user's own jobs: a higher priority is claimed before the user's lower ones
    /// (interactive over batch), never before other users' fair share. Default 0.
    pub priority: i32,
}

/// A started (or deduplicated) job.
#[derive(Debug, Clone, PartialEq)]
pub struct Started {
    pub job: JobWithTasks,
    pub deduplicated: bool,
}

/// Filters of the job list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListQuery {
    pub project_id: Option<ProjectId>,
    pub workflow_type: Option<String>,
    pub statuses: Vec<JobStatus>,
    pub before: Option<JobId>,
    pub limit: u64,
    /// List the jobs with `input_params` null (summaries).
    pub without_params: bool,
    /// Only jobs whose params contain this text ([`JobFilter::params_text`]).
    pub params_text: Option<String>,
}

/// The store filter of `query` as `viewer` may see it (an admin sees every user's jobs).
fn list_filter(viewer: &Viewer, query: ListQuery) -> JobFilter {
    JobFilter {
        user_id: (!viewer.is_admin).then_some(viewer.user_id),
        project_id: query.project_id,
        workflow_type: query.workflow_type,
        statuses: query.statuses,
        active_only: false,
        before: query.before,
        limit: if query.limit == 0 { 50 } else { query.limit },
        without_params: query.without_params,
        params_text: query.params_text,
    }
}

/// The engine: registry, store and clock, shared by the API and the workers of one process.
#[derive(Clone)]
pub struct Engine {
    store: Arc<dyn JobStore>,
    registry: Arc<Registry>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    config: EngineConfig,
    params_source: Option<Arc<dyn ParamsSource>>,
}

impl Engine {
    /// An engine over `store` whose clock is the database's ([`DatabaseClock`]).
    pub fn new(store: Arc<dyn JobStore>, registry: Registry) -> Self {
        Engine {
            clock: DatabaseClock::new(&store),
            store,
            registry: Arc::new(registry),
            metrics: Arc::new(Metrics::new()),
            config: EngineConfig::default(),
            params_source: None,
        }
    }

    /// Completes every job's params from `source` before they are checked (NanoStory mode reads
    /// the rows a request names by id).
    pub fn with_params_source(mut self, source: Arc<dyn ParamsSource>) -> Self {
        self.params_source = Some(source);
        self
    }

    pub fn with_config(mut self, config: EngineConfig) -> Self {
        self.config = config;
        self
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    pub fn store(&self) -> &Arc<dyn JobStore> {
        &self.store
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// "Now" by the engine's clock, once it has been read from its source at least once: a job
    /// started right after the process came up must not get a ready time from a skewed clock.
    async fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.ensure_synced().await;
        self.clock.now()
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The definition of a workflow type.
    pub fn workflow(&self, workflow_type: &str) -> Result<&Arc<WorkflowDefinition>, EngineError> {
        self.registry
            .get(workflow_type)
            .ok_or_else(|| EngineError::UnknownWorkflow(workflow_type.to_owned()))
    }

    /// Validates the params and creates the job with one task per step, atomically.
    pub async fn start(&self, mut request: StartRequest) -> Result<Started, EngineError> {
        let definition = self.workflow(&request.workflow_type)?;
        let given = match &self.params_source {
            Some(source) => {
                let starter = Starter {
                    user_id: request.user_id,
                    project_id: request.project_id,
                };
                let params = std::mem::take(&mut request.params);
                source
                    .complete(&request.workflow_type, starter, params)
                    .await?
            }
            None => std::mem::take(&mut request.params),
        };
        let params = definition
            .params
            .validate(&given)
            .map_err(EngineError::InvalidParams)?;
        let params = match &definition.prepare {
            Some(prepare) => prepare(params).map_err(EngineError::InvalidParams)?,
            None => params,
        };
        let unique_key = definition.unique_key.as_ref().and_then(|key| key(&params));
        // What a step sees before anything ran: enough to know which model it will call.
        let mut context = StepContext {
            job_params: params,
            previous_results: Default::default(),
            user_id: request.user_id,
            project_id: request.project_id,
            step_index: 0,
        };
        let mut models = Vec::with_capacity(definition.steps.len());
        for (index, step) in definition.steps.iter().enumerate() {
            context.step_index = i32::try_from(index).unwrap_or(i32::MAX);
            // A fan-out step's own task only coordinates: its items hold the model's slots.
            models.push(if step.fan_out.is_some() {
                None
            } else {
                step.model_for(&context)
            });
        }
        let params = context.job_params;
        let tasks = definition
            .steps
            .iter()
            .zip(models)
            .map(|(step, model_name)| NewTask {
                task_type: step.task_type.clone(),
                target_type: step.target_type.clone(),
                target_id: step
                    .target_id_param
                    .as_ref()
                    .and_then(|param| params.get(param))
                    .and_then(lenient_integer),
                max_attempts: i32::try_from(step.max_attempts).unwrap_or(i32::MAX),
                model_name,
            })
            .collect();
        let new_job = NewJob {
            user_id: request.user_id,
            project_id: request.project_id,
            workflow_type: request.workflow_type,
            input_params: params,
            tasks,
            idempotency_key: request.idempotency_key.filter(|key| !key.is_empty()),
            idempotency_window: self.config.idempotency_window,
            unique_key,
            max_active_per_user: self.config.max_active_jobs_per_user,
            priority: request.priority,
            fair_share_quantum: self.config.fair_share_quantum,
        };
        let outcome = self.store.create_job(new_job, self.now().await).await?;
        Ok(Started {
            job: outcome.job,
            deduplicated: outcome.deduplicated,
        })
    }

    /// A job with its tasks, if the viewer may read it.
    pub async fn get(&self, viewer: &Viewer, id: JobId) -> Result<JobWithTasks, EngineError> {
        match self.store.get_job(id).await? {
            Some(mut job) if viewer.can_read(job.job.user_id) => {
                self.explain_waiting(&mut job).await?;
                Ok(job)
            }
            _ => Err(EngineError::NotFound(id)),
        }
    }

    /// Says why the job's ready step waits, when its model is busy or paused (what
    /// [`Engine::get`] does; for readers of the store's own job reads).
    pub async fn explain_waiting(&self, job: &mut JobWithTasks) -> Result<(), EngineError> {
        self.explain_waiting_all(std::slice::from_mut(job)).await
    }

    /// [`Engine::explain_waiting`] for many jobs, with one read of the models' usage.
    pub async fn explain_waiting_all(&self, jobs: &mut [JobWithTasks]) -> Result<(), EngineError> {
        fn waiting(job: &nosyntask_domain::Job, task: &nosyntask_domain::Task) -> bool {
            matches!(job.status, JobStatus::Pending | JobStatus::Running)
                && task.status == nosyntask_domain::TaskStatus::Pending
                && task.step_index == job.current_step_index
                && task.model_name.is_some()
        }
        if !jobs
            .iter()
            .any(|job| job.tasks.iter().any(|task| waiting(&job.job, task)))
        {
            return Ok(());
        }
        let now = self.clock.now();
        let usage = self.store.model_usage(now).await?;
        for job in jobs {
            for task in job.tasks.iter_mut().filter(|task| waiting(&job.job, task)) {
                task.waiting_reason = usage
                    .iter()
                    .find(|m| Some(&m.name) == task.model_name.as_ref())
                    .and_then(|m| m.waiting_reason(now));
            }
        }
        Ok(())
    }

    /// The viewer's jobs (every user's for admins), newest first. A zero limit means 50.
    pub async fn list(&self, viewer: &Viewer, query: ListQuery) -> Result<Vec<Job>, EngineError> {
        Ok(self.store.list_jobs(&list_filter(viewer, query)).await?)
    }

    /// How many of the jobs `list` pages through are in each status (the query's own statuses,
    /// `before` and `limit` aside).
    pub async fn count(
        &self,
        viewer: &Viewer,
        query: ListQuery,
    ) -> Result<Vec<(JobStatus, u64)>, EngineError> {
        Ok(self.store.count_jobs(&list_filter(viewer, query)).await?)
    }

    /// The viewer's own jobs in a project that are pending/running, or finished and not consumed.
    /// A zero limit means 5.
    pub async fn active(
        &self,
        viewer: &Viewer,
        project_id: ProjectId,
        limit: u64,
    ) -> Result<Vec<Job>, EngineError> {
        let filter = JobFilter {
            user_id: Some(viewer.user_id),
            project_id: Some(project_id),
            active_only: true,
            limit: if limit == 0 { 5 } else { limit },
            ..JobFilter::default()
        };
        Ok(self.store.list_jobs(&filter).await?)
    }

    pub async fn consume(&self, viewer: &Viewer, id: JobId) -> Result<Job, EngineError> {
        self.own(viewer, id).await?;
        Ok(self.store.consume_job(id, self.now().await).await?)
    }

    pub async fn cancel(&self, viewer: &Viewer, id: JobId) -> Result<Job, EngineError> {
        self.own(viewer, id).await?;
        Ok(self.store.cancel_job(id, self.now().await).await?)
    }

    pub async fn resume(&self, viewer: &Viewer, id: JobId) -> Result<Job, EngineError> {
        self.own(viewer, id).await?;
        Ok(self
            .store
            .resume_job(id, self.config.max_active_jobs_per_user, self.now().await)
            .await?)
    }

    /// Only the owner changes a job; anyone else is told it does not exist.
    async fn own(&self, viewer: &Viewer, id: JobId) -> Result<(), EngineError> {
        match self.store.get_job(id).await? {
            Some(job) if job.job.user_id == viewer.user_id => Ok(()),
            _ => Err(EngineError::NotFound(id)),
        }
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("backend", &self.store.backend_name())
            .field("workflows", &self.registry.all().len())
            .finish_non_exhaustive()
    }
}
