//! Workflow definitions: what a workflow type is made of, and the handler trait steps implement.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nosyntask_domain::{JobId, ParamError, ParamsSchema, ProjectId, TaskError, TaskId, UserId};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::checkpoint::Checkpoints;
use crate::progress::ProgressReporter;

/// What a step's input builder sees: the spec's `{jobParams, previousResults, userId, projectId,
/// stepIndex}`.
#[derive(Debug, Clone, PartialEq)]
pub struct StepContext {
    pub job_params: Value,
    /// Results of the job's completed steps, by step index.
    pub previous_results: BTreeMap<i32, Value>,
    pub user_id: UserId,
    pub project_id: ProjectId,
    pub step_index: i32,
}

/// Everything a handler gets for one attempt of one step.
pub struct StepRun {
    /// The input built for this step (also stored in the task's `input_params`).
    pub input: Value,
    /// Report progress 0–100; cheap, coalesced by the engine.
    pub progress: ProgressReporter,
    /// Save progress of external work (e.g. a provider task id) to resume it after a crash.
    pub checkpoint: Checkpoints,
    /// Fires when the job is cancelled, the lease is lost or the worker shuts down.
    pub cancel: CancellationToken,
    pub job_id: JobId,
    pub task_id: TaskId,
    pub step_index: i32,
    pub attempt: i32,
    pub user_id: UserId,
    pub project_id: ProjectId,
}

/// A step handler: turns an input into a JSON result, or a typed error.
#[async_trait]
pub trait StepHandler: Send + Sync {
    async fn run(&self, run: StepRun) -> Result<Value, TaskError>;
}

/// Builds a step's input from its context.
pub type InputBuilder = Arc<dyn Fn(&StepContext) -> Value + Send + Sync>;

/// Names the model a step calls, from the job's (prepared) params.
pub type ModelOf = Arc<dyn Fn(&Value) -> Option<String> + Send + Sync>;

/// The inputs of a fan-out step's items, one per item, from the step's context.
pub type ItemsOf = Arc<dyn Fn(&StepContext) -> Vec<Value> + Send + Sync>;

/// How many items of one job run at once, from the job's params.
pub type LimitOf = Arc<dyn Fn(&Value) -> u32 + Send + Sync>;

/// What a fan-out step does when an item fails for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemFailure {
    /// The step, and with it the job, fails; the other items are cancelled.
    FailJob,
    /// The step completes; the failed item's place in the result is `{"error": message}`.
    Continue,
}

/// Turns a fan-out step's item results (in item order; a failed item's place is
/// `{"error": message}` under [`ItemFailure::Continue`]) into the step's result, with the job's
/// params. An error fails the step.
pub type SummarizeFn = Arc<dyn Fn(&Value, Vec<Value>) -> Result<Value, TaskError> + Send + Sync>;

/// A step that maps over a list: each item is its own task (attempts, checkpoint, progress,
/// result), run by the step's handler with the item's input; at most `limit` items of a job
/// run at once (and within their model's limit). The step's result is the items' results in
/// item order (or what `summarize` makes of them); its progress is their average.
#[derive(Clone)]
pub struct FanOut {
    pub items: ItemsOf,
    pub limit: LimitOf,
    pub on_item_failure: ItemFailure,
    /// Limit of the whole step (the items' own limit is the step's `timeout`).
    pub timeout: Duration,
    /// The step's result from the items' results; `None`: the list itself.
    pub summarize: Option<SummarizeFn>,
}

/// Derives a uniqueness key from a job's (validated) params, e.g. the character id.
pub type UniqueKeyFn = Arc<dyn Fn(&Value) -> Option<String> + Send + Sync>;

/// Checks and completes validated params at start with what the schema cannot know (e.g. that
/// a named model is configured, and which model the default is), so a bad request is refused
/// before a job exists instead of failing later in a worker.
pub type PrepareFn = Arc<dyn Fn(Value) -> Result<Value, ParamError> + Send + Sync>;

/// One ordered step of a workflow.
#[derive(Clone)]
pub struct StepDefinition {
    /// `generation_tasks.task_type`.
    pub task_type: String,
    /// `generation_tasks.target_type` (character, scene, shot, ...).
    pub target_type: String,
    pub handler: Arc<dyn StepHandler>,
    pub build_input: InputBuilder,
    pub max_attempts: u32,
    /// Wall-clock limit of one attempt; hitting it is a retryable failure.
    pub timeout: Duration,
    /// The job param whose integer value becomes the task's `target_id` (e.g. `characterId`).
    pub target_id_param: Option<String>,
    /// The model the step calls, recorded on the task when the job starts so the claim can
    /// hold the model's limit. `None`: the `modelName` of the step's input, if any.
    pub model: Option<ModelOf>,
    /// Set for a step that maps over a list (see [`FanOut`]).
    pub fan_out: Option<FanOut>,
}

impl StepDefinition {
    /// A step with the defaults: the job params as input, 3 attempts, 3 minutes.
    pub fn new(task_type: &str, target_type: &str, handler: Arc<dyn StepHandler>) -> Self {
        StepDefinition {
            task_type: task_type.to_owned(),
            target_type: target_type.to_owned(),
            handler,
            build_input: Arc::new(|ctx: &StepContext| ctx.job_params.clone()),
            max_attempts: 3,
            timeout: Duration::from_secs(180),
            target_id_param: None,
            model: None,
            fan_out: None,
        }
    }

    pub fn input(mut self, build: impl Fn(&StepContext) -> Value + Send + Sync + 'static) -> Self {
        self.build_input = Arc::new(build);
        self
    }

    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn target_id_param(mut self, param: &str) -> Self {
        self.target_id_param = Some(param.to_owned());
        self
    }

    /// Makes this a fan-out step: `items` gives each item's input (the handler runs once per
    /// item with it), `limit` how many of a job's items run at once. The step's `timeout` and
    /// `max_attempts` apply to each item; the whole step may take a day.
    pub fn fan_out(
        mut self,
        items: impl Fn(&StepContext) -> Vec<Value> + Send + Sync + 'static,
        limit: impl Fn(&Value) -> u32 + Send + Sync + 'static,
        on_item_failure: ItemFailure,
    ) -> Self {
        self.fan_out = Some(FanOut {
            items: Arc::new(items),
            limit: Arc::new(limit),
            on_item_failure,
            timeout: Duration::from_secs(24 * 3600),
            summarize: None,
        });
        self
    }

    /// The result of this fan-out step from its items' results (see [`SummarizeFn`]). Call it
    /// after [`StepDefinition::fan_out`]; on any other step it does nothing.
    pub fn summarize(
        mut self,
        summarize: impl Fn(&Value, Vec<Value>) -> Result<Value, TaskError> + Send + Sync + 'static,
    ) -> Self {
        if let Some(fan_out) = &mut self.fan_out {
            fan_out.summarize = Some(Arc::new(summarize));
        }
        self
    }

    /// The model this step calls, from the job's params (see [`StepDefinition::model`]).
    pub fn model_from(
        mut self,
        model: impl Fn(&Value) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.model = Some(Arc::new(model));
        self
    }

    /// The model the task of this step records for a job started with `job_params`.
    pub fn model_for(&self, context: &StepContext) -> Option<String> {
        match &self.model {
            Some(model) => model(&context.job_params),
            None => (self.build_input)(context)
                .get("modelName")
                .and_then(Value::as_str)
                .filter(|name| !name.is_empty())
                .map(str::to_owned),
        }
    }
}

impl std::fmt::Debug for StepDefinition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepDefinition")
            .field("task_type", &self.task_type)
            .field("target_type", &self.target_type)
            .field("max_attempts", &self.max_attempts)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// A workflow type: its display name, params and ordered steps.
#[derive(Clone)]
pub struct WorkflowDefinition {
    /// The type the frontend names (`character_views_generation`).
    pub workflow_type: String,
    /// Display name (`角色三视图生成`).
    pub name: String,
    pub params: ParamsSchema,
    pub steps: Vec<StepDefinition>,
    pub unique_key: Option<UniqueKeyFn>,
    /// Runs after schema validation at start; its output is the job's `input_params`.
    pub prepare: Option<PrepareFn>,
}

impl WorkflowDefinition {
    pub fn new(workflow_type: &str, name: &str, params: ParamsSchema) -> Self {
        WorkflowDefinition {
            workflow_type: workflow_type.to_owned(),
            name: name.to_owned(),
            params,
            steps: Vec::new(),
            unique_key: None,
            prepare: None,
        }
    }

    /// Checks and completes the validated params at start (see [`PrepareFn`]).
    pub fn prepare(
        mut self,
        prepare: impl Fn(Value) -> Result<Value, ParamError> + Send + Sync + 'static,
    ) -> Self {
        self.prepare = Some(Arc::new(prepare));
        self
    }

    pub fn step(mut self, step: StepDefinition) -> Self {
        self.steps.push(step);
        self
    }

    /// Only one active job per user with the same key (e.g. per `characterId`).
    pub fn unique_by(
        mut self,
        key: impl Fn(&Value) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.unique_key = Some(Arc::new(key));
        self
    }

    /// Unique per the value of one param, when that param is given.
    pub fn unique_by_param(self, param: &'static str) -> Self {
        self.unique_by(move |params| match params.get(param) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => Some(other.to_string()),
        })
    }
}

impl std::fmt::Debug for WorkflowDefinition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkflowDefinition")
            .field("workflow_type", &self.workflow_type)
            .field("name", &self.name)
            .field("steps", &self.steps)
            .finish_non_exhaustive()
    }
}

/// The registered workflow types, in registration order.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    workflows: Vec<Arc<WorkflowDefinition>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a workflow; a later registration of the same type replaces the earlier one.
    pub fn register(&mut self, definition: WorkflowDefinition) {
        let definition = Arc::new(definition);
        match self
            .workflows
            .iter_mut()
            .find(|w| w.workflow_type == definition.workflow_type)
        {
            Some(existing) => *existing = definition,
            None => self.workflows.push(definition),
        }
    }

    pub fn get(&self, workflow_type: &str) -> Option<&Arc<WorkflowDefinition>> {
        self.workflows
            .iter()
            .find(|w| w.workflow_type == workflow_type)
    }

    pub fn all(&self) -> &[Arc<WorkflowDefinition>] {
        &self.workflows
    }
}
