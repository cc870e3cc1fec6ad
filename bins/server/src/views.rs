//! Wire types: the JSON the NanoStory frontend reads. Domain types never go on the wire directly;
//! these views are built from them, so field casing and formats live only here.

use chrono::{DateTime, SecondsFormat, Utc};
use nosyntask_domain as domain;
use nosyntask_engine::WorkflowDefinition;
use nosyntask_engine::ports::{ModelInfo, ModelKind as PortModelKind};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::i18n::Lang;

/// The project id a job started with `projectId: null` is stored under (the store's column is
/// not nullable; NanoStory's project ids start at 1). Views show it as `null`.
pub const NO_PROJECT: i64 = 0;

/// `error_message` of a cancelled job that has none of its own (NanoStory's wording), so the UI
/// does not fall back to a generic "任务失败".
fn job_cancelled(lang: Lang) -> String {
    lang.pick("用户取消", "Cancelled by the user").to_owned()
}

/// `error_message` of a cancelled task that has none of its own.
fn task_cancelled(lang: Lang) -> String {
    lang.pick("工作流已取消", "The workflow was cancelled")
        .to_owned()
}

/// A job or task status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl From<domain::JobStatus> for Status {
    fn from(status: domain::JobStatus) -> Self {
        use domain::JobStatus as S;
        match status {
            S::Pending => Status::Pending,
            S::Running => Status::Running,
            S::Completed => Status::Completed,
            S::Failed => Status::Failed,
            S::Cancelled => Status::Cancelled,
        }
    }
}

impl From<domain::TaskStatus> for Status {
    fn from(status: domain::TaskStatus) -> Self {
        use domain::TaskStatus as S;
        match status {
            S::Pending => Status::Pending,
            S::Running => Status::Running,
            S::Completed => Status::Completed,
            S::Failed => Status::Failed,
            S::Cancelled => Status::Cancelled,
        }
    }
}

/// RFC 3339 UTC with milliseconds: `2025-01-31T08:00:00.000Z`.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A workflow job without its tasks (list views).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct JobSummary {
    pub id: i64,
    pub user_id: i64,
    /// `null` for a job started without a project (NanoStory's model test page).
    pub project_id: Option<i64>,
    pub workflow_type: String,
    /// Display name of the workflow type.
    #[serde(rename = "workflowName")]
    pub workflow_name: String,
    pub status: Status,
    pub current_step_index: i32,
    pub total_steps: i32,
    /// The validated start params, defaults filled in; `null` in a list asked for with
    /// `params=false`.
    #[schema(value_type = Option<Object>)]
    pub input_params: Value,
    /// Why it failed; for a cancelled job a cancellation message (in the request's language).
    pub error_message: Option<String>,
    pub is_consumed: bool,
    /// Overall progress 0–100.
    pub progress: i32,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    #[schema(format = DateTime)]
    pub started_at: Option<String>,
    #[schema(format = DateTime)]
    pub completed_at: Option<String>,
    /// The last failure of an embedding service's in-transaction completion hook (the event
    /// and its message): the result is stored, the hook's own writes were rolled back.
    /// `null` when no hook failed.
    pub hook_error: Option<String>,
}

impl JobSummary {
    /// The view of `job`, named by its workflow definition when it is still registered, with
    /// messages in `lang`.
    pub fn new(job: &domain::Job, definition: Option<&WorkflowDefinition>, lang: Lang) -> Self {
        JobSummary {
            id: job.id,
            user_id: job.user_id,
            project_id: (job.project_id != NO_PROJECT).then_some(job.project_id),
            workflow_type: job.workflow_type.clone(),
            workflow_name: definition
                .map(|d| d.name.clone())
                .unwrap_or_else(|| job.workflow_type.clone()),
            status: job.status.into(),
            current_step_index: job.current_step_index,
            total_steps: job.total_steps,
            input_params: job.input_params.clone(),
            error_message: job.error_message.clone().or_else(|| {
                (job.status == domain::JobStatus::Cancelled).then(|| job_cancelled(lang))
            }),
            is_consumed: job.is_consumed,
            progress: job.progress,
            created_at: timestamp(job.created_at),
            updated_at: timestamp(job.updated_at),
            started_at: job.started_at.map(timestamp),
            completed_at: job.completed_at.map(timestamp),
            hook_error: job.hook_error.clone(),
        }
    }
}

/// What model calls used, as the provider reported it (or as the call implies: one image, the
/// requested video length). Unreported units are absent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct UsageAmounts {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_tokens: Option<u64>,
    /// Images generated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub images: Option<u64>,
    /// Seconds of video generated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video_seconds: Option<u64>,
    /// The cost in millionths of the currency of the models' configured prices; absent when no
    /// call had prices (of several calls, only the priced ones are added).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_micros: Option<u64>,
}

impl From<&domain::Usage> for UsageAmounts {
    fn from(usage: &domain::Usage) -> Self {
        UsageAmounts {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            images: usage.images,
            video_seconds: usage.video_seconds,
            cost_micros: usage.cost_micros,
        }
    }
}

/// What a task's (or a job's) model calls used and cost: the sum, and each model's part by its
/// configured name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Usage {
    #[serde(flatten)]
    pub total: UsageAmounts,
    pub models: std::collections::BTreeMap<String, UsageAmounts>,
}

impl From<&domain::TaskUsage> for Usage {
    fn from(usage: &domain::TaskUsage) -> Self {
        Usage {
            total: (&usage.total).into(),
            models: usage
                .models
                .iter()
                .map(|(model, usage)| (model.clone(), usage.into()))
                .collect(),
        }
    }
}

/// A workflow job with its tasks in step order.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Job {
    #[serde(flatten)]
    pub job: JobSummary,
    pub tasks: Vec<Task>,
    /// What the job's tasks used, added up; `null` when no model call reported anything.
    pub usage: Option<Usage>,
}

impl Job {
    pub fn new(
        job: &domain::JobWithTasks,
        definition: Option<&WorkflowDefinition>,
        lang: Lang,
    ) -> Self {
        Job {
            job: JobSummary::new(&job.job, definition, lang),
            tasks: job
                .tasks
                .iter()
                .map(|t| Task::new(t, lang).with_history(&job.history))
                .collect(),
            usage: job.usage().as_ref().map(Usage::from),
        }
    }
}

/// A job of a list: with its tasks unless the list was asked for without them (`tasks=false`).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ListedJob {
    #[serde(flatten)]
    pub job: JobSummary,
    /// The job's tasks in step order; absent when listed with `tasks=false`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tasks: Option<Vec<Task>>,
    /// What the job's tasks used (`null`: nothing reported); absent when listed with
    /// `tasks=false`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Usage>)]
    pub usage: Option<Option<Usage>>,
}

impl From<Job> for ListedJob {
    fn from(job: Job) -> Self {
        let tasks = job
            .tasks
            .into_iter()
            .map(|task| Task {
                attempts_history: None,
                ..task
            })
            .collect();
        ListedJob {
            job: job.job,
            usage: Some(job.usage),
            tasks: Some(tasks),
        }
    }
}

impl From<JobSummary> for ListedJob {
    fn from(job: JobSummary) -> Self {
        ListedJob {
            job,
            tasks: None,
            usage: None,
        }
    }
}

/// One step of a job (a `generation_tasks` row).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Task {
    pub id: i64,
    pub job_id: i64,
    pub step_index: i32,
    pub task_type: String,
    pub target_type: String,
    pub target_id: Option<i64>,
    pub model_name: Option<String>,
    /// The step's input, stored when it starts.
    #[schema(value_type = Option<Object>)]
    pub input_params: Option<Value>,
    pub status: Status,
    pub progress: i32,
    /// The step's JSON result once completed.
    #[schema(value_type = Option<Object>)]
    pub result_data: Option<Value>,
    pub error_message: Option<String>,
    /// Why a pending step that is ready has not started: its model is busy or paused
    /// ("waiting for model Kling (3 of 3 busy)"); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_reason: Option<String>,
    /// An item of a fan-out step: the step's task (listed after the steps).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_task_id: Option<i64>,
    /// The item's place in its step's list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item_index: Option<i32>,
    /// How many times the step has been tried since it was created or last resumed.
    pub attempts: i32,
    pub max_attempts: i32,
    /// The provider's task id of asynchronous generations.
    pub external_task_id: Option<String>,
    /// What the step's model calls used and cost, written with its result; `null` before it
    /// completes and for steps that called no model.
    pub usage: Option<Usage>,
    /// The first start of the step.
    #[schema(format = DateTime)]
    pub started_at: Option<String>,
    /// The start of the attempt running now (or of the last one).
    #[schema(format = DateTime)]
    pub attempt_started_at: Option<String>,
    /// When a step waiting to be retried is tried again.
    #[schema(format = DateTime)]
    pub next_attempt_at: Option<String>,
    #[schema(format = DateTime)]
    pub completed_at: Option<String>,
    /// The step's finished attempts, oldest first, across resumes (the running one is the step
    /// itself). In single-job reads; absent from lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts_history: Option<Vec<Attempt>>,
}

/// One finished attempt of a step.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Attempt {
    /// The attempt's number (a resume counts again from 1).
    pub attempt: i32,
    /// The worker that ran it.
    pub worker: Option<String>,
    #[schema(format = DateTime)]
    pub started_at: Option<String>,
    #[schema(format = DateTime)]
    pub ended_at: String,
    /// `completed`, `failed`, `handed_back` (given back without a result, not counted),
    /// `lost` (its worker stopped renewing the lease) or `cancelled`.
    #[schema(value_type = String, example = "failed")]
    pub outcome: &'static str,
    pub error_message: Option<String>,
}

impl Attempt {
    fn new(attempt: &domain::TaskAttempt) -> Self {
        Attempt {
            attempt: attempt.attempt,
            worker: attempt.worker.clone(),
            started_at: attempt.started_at.map(timestamp),
            ended_at: timestamp(attempt.ended_at),
            outcome: attempt.outcome.as_str(),
            error_message: attempt.error_message.clone(),
        }
    }
}

impl Task {
    /// The view of `task`, with messages in `lang`.
    pub fn new(task: &domain::Task, lang: Lang) -> Self {
        Task {
            id: task.id,
            job_id: task.job_id,
            step_index: task.step_index,
            task_type: task.task_type.clone(),
            target_type: task.target_type.clone(),
            target_id: task.target_id,
            model_name: task.model_name.clone(),
            input_params: task.input_params.clone(),
            status: task.status.into(),
            progress: task.progress,
            result_data: task.result_data.clone(),
            error_message: task.error_message.clone().or_else(|| {
                (task.status == domain::TaskStatus::Cancelled).then(|| task_cancelled(lang))
            }),
            waiting_reason: task.waiting_reason.clone(),
            parent_task_id: task.parent_task_id,
            item_index: task.item_index,
            attempts: task.attempts,
            max_attempts: task.max_attempts,
            external_task_id: task.external_task_id.clone(),
            usage: task.usage.as_ref().map(Usage::from),
            started_at: task.started_at.map(timestamp),
            attempt_started_at: task.attempt_started_at.map(timestamp),
            next_attempt_at: task.next_attempt_at.map(timestamp),
            completed_at: task.completed_at.map(timestamp),
            attempts_history: None,
        }
    }

    /// The view with this step's rows of `history` (a job's finished attempts).
    pub fn with_history(mut self, history: &[domain::TaskAttempt]) -> Self {
        self.attempts_history = Some(
            history
                .iter()
                .filter(|a| a.task_id == self.id)
                .map(Attempt::new)
                .collect(),
        );
        self
    }
}

/// A task as the start answer lists it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StartedTask {
    pub id: i64,
    pub step_index: i32,
    /// The task type of the step.
    #[serde(rename = "type")]
    pub task_type: String,
    pub status: Status,
}

/// `POST /api/workflows` answer.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StartWorkflowResponse {
    pub job_id: i64,
    pub tasks: Vec<StartedTask>,
    pub message: String,
    /// True when an existing job was returned (same idempotency key, or an active job with the
    /// same uniqueness key).
    pub deduplicated: bool,
}

impl StartWorkflowResponse {
    pub fn new(job: &domain::JobWithTasks, deduplicated: bool, lang: Lang) -> Self {
        StartWorkflowResponse {
            job_id: job.job.id,
            tasks: job
                .tasks
                .iter()
                .map(|t| StartedTask {
                    id: t.id,
                    step_index: t.step_index,
                    task_type: t.task_type.clone(),
                    status: t.status.into(),
                })
                .collect(),
            message: match (deduplicated, lang) {
                (true, Lang::Zh) => "已有相同的任务在进行，返回该任务".to_owned(),
                (true, Lang::En) => "an existing job was returned".to_owned(),
                (false, Lang::Zh) => "工作流已启动".to_owned(),
                (false, Lang::En) => "workflow started".to_owned(),
            },
            deduplicated,
        }
    }
}

/// A list of jobs, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct JobList {
    pub jobs: Vec<ListedJob>,
    /// How many jobs match the filters, every page together (`GET /api/workflows`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// How many jobs match the filters other than `status`, by status: what each status filter
    /// would list (`GET /api/workflows`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<StatusCounts>,
}

impl JobList {
    /// The list of `jobs`, without totals.
    pub fn of(jobs: Vec<ListedJob>) -> Self {
        JobList {
            jobs,
            total: None,
            counts: None,
        }
    }

    /// The list with its totals, from the store's counts by status and the statuses asked for
    /// (none: every status).
    pub fn with_counts(
        mut self,
        counts: &[(domain::JobStatus, u64)],
        selected: &[domain::JobStatus],
    ) -> Self {
        let mut by_status = StatusCounts::default();
        let mut total = 0;
        for &(status, n) in counts {
            *by_status.slot(status) += n;
            if selected.is_empty() || selected.contains(&status) {
                total += n;
            }
        }
        self.total = Some(total);
        self.counts = Some(by_status);
        self
    }
}

/// Jobs per status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct StatusCounts {
    pub pending: u64,
    pub running: u64,
    pub completed: u64,
    pub failed: u64,
    pub cancelled: u64,
}

impl StatusCounts {
    fn slot(&mut self, status: domain::JobStatus) -> &mut u64 {
        use domain::JobStatus as S;
        match status {
            S::Pending => &mut self.pending,
            S::Running => &mut self.running,
            S::Completed => &mut self.completed,
            S::Failed => &mut self.failed,
            S::Cancelled => &mut self.cancelled,
        }
    }
}

/// `POST …/consume` answer.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ConsumeResponse {
    #[schema(example = true)]
    pub success: bool,
}

/// `POST …/cancel` and `POST …/resume` answer.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobStatusChange {
    pub job_id: i64,
    /// `cancelled` (cancel) or `resuming` (resume).
    #[schema(example = "cancelled")]
    pub status: String,
}

/// One step of a workflow type.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowStep {
    pub index: i32,
    /// The step's task type.
    #[serde(rename = "type")]
    pub task_type: String,
    pub target_type: String,
}

/// A registered workflow type.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowType {
    #[serde(rename = "type")]
    pub workflow_type: String,
    pub name: String,
    pub total_steps: usize,
    pub steps: Vec<WorkflowStep>,
    /// JSON Schema of the params.
    #[schema(value_type = Object)]
    pub params_schema: Value,
}

impl From<&WorkflowDefinition> for WorkflowType {
    fn from(definition: &WorkflowDefinition) -> Self {
        WorkflowType {
            workflow_type: definition.workflow_type.clone(),
            name: definition.name.clone(),
            total_steps: definition.steps.len(),
            steps: definition
                .steps
                .iter()
                .zip(0..)
                .map(|(step, index)| WorkflowStep {
                    index,
                    task_type: step.task_type.clone(),
                    target_type: step.target_type.clone(),
                })
                .collect(),
            params_schema: definition.params.to_json_schema(),
        }
    }
}

/// `GET /api/workflows/types` answer.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct WorkflowTypes {
    pub workflows: Vec<WorkflowType>,
}

/// What a model produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    Text,
    Image,
    Video,
}

impl From<PortModelKind> for ModelKind {
    fn from(kind: PortModelKind) -> Self {
        match kind {
            PortModelKind::Text => ModelKind::Text,
            PortModelKind::Image => ModelKind::Image,
            PortModelKind::Video => ModelKind::Video,
        }
    }
}

/// A configured model. Never carries keys or URLs with credentials.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Model {
    /// What `params.modelName` refers to.
    pub name: String,
    pub kind: ModelKind,
    /// The adapter that speaks to the provider (`openai_compatible`, `simulated`, …).
    pub provider: String,
    /// The provider's model id.
    pub model: String,
    /// Used for its kind when a job names no model.
    pub is_default: bool,
    /// Tasks of this model that run at once across every worker.
    pub max_concurrency: usize,
    /// Tasks of this model started per minute across every worker, if limited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u32>,
    pub timeout_secs: u64,
    /// Tasks of this model running now in any process (models with a cluster-wide limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub running: Option<u32>,
    /// Until when a provider's 429 paused the model for every worker, while it does.
    #[schema(format = DateTime)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused_until: Option<String>,
}

impl Model {
    /// The model with what uses it now, from the store's usage.
    pub fn with_usage(mut self, usage: Option<&nosyntask_engine::ports::ModelUsage>) -> Self {
        if let Some(usage) = usage {
            self.running = Some(usage.running);
            self.paused_until = usage.paused_until.map(timestamp);
        }
        self
    }
}

impl From<&ModelInfo> for Model {
    fn from(info: &ModelInfo) -> Self {
        Model {
            name: info.name.clone(),
            kind: info.kind.into(),
            provider: info.adapter.clone(),
            model: info.model.clone(),
            is_default: info.is_default,
            max_concurrency: info.max_concurrency,
            requests_per_minute: info.requests_per_minute,
            timeout_secs: info.timeout.as_secs(),
            running: None,
            paused_until: None,
        }
    }
}

/// `GET /api/models` answer.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ModelList {
    pub models: Vec<Model>,
}

/// Health answer.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn usage() -> domain::TaskUsage {
        let mut usage = domain::TaskUsage::default();
        usage.record(
            "DeepSeek Chat",
            domain::Usage {
                prompt_tokens: Some(1200),
                completion_tokens: Some(800),
                cost_micros: Some(8800),
                ..domain::Usage::default()
            },
        );
        usage
    }

    fn job() -> domain::JobWithTasks {
        let at = Utc.with_ymd_and_hms(2025, 1, 31, 8, 0, 0).unwrap();
        domain::JobWithTasks {
            job: domain::Job {
                id: 3,
                user_id: 1,
                project_id: 9,
                workflow_type: "prompt_generate".into(),
                status: domain::JobStatus::Running,
                current_step_index: 0,
                total_steps: 1,
                input_params: json!({"description": "x"}),
                error_message: None,
                is_consumed: false,
                progress: 40,
                created_at: at,
                updated_at: at,
                started_at: Some(at),
                completed_at: None,
                hook_error: None,
            },
            tasks: vec![domain::Task {
                id: 11,
                job_id: 3,
                step_index: 0,
                task_type: "prompt_generate".into(),
                target_type: "prompt".into(),
                target_id: None,
                model_name: None,
                input_params: None,
                status: domain::TaskStatus::Running,
                progress: 40,
                result_data: Some(json!({"prompt": "p"})),
                error_message: None,
                attempts: 1,
                max_attempts: 3,
                external_task_id: None,
                usage: Some(usage()),
                started_at: Some(at),
                attempt_started_at: Some(at),
                next_attempt_at: None,
                completed_at: None,
                updated_at: at,
                parent_task_id: None,
                item_index: None,
                waiting_reason: None,
            }],
            history: vec![domain::TaskAttempt {
                task_id: 11,
                attempt: 1,
                worker: Some("w1".into()),
                started_at: Some(at),
                ended_at: at,
                outcome: domain::AttemptOutcome::Lost,
                error_message: Some("gone".into()),
            }],
        }
    }

    #[test]
    fn job_json_has_the_contract_fields() {
        let value = serde_json::to_value(Job::new(&job(), None, Lang::En)).unwrap();
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut expected = vec![
            "id",
            "user_id",
            "project_id",
            "workflow_type",
            "workflowName",
            "status",
            "current_step_index",
            "total_steps",
            "input_params",
            "error_message",
            "is_consumed",
            "progress",
            "created_at",
            "updated_at",
            "started_at",
            "completed_at",
            "hook_error",
            "tasks",
            "usage",
        ];
        let mut keys = keys;
        keys.sort_unstable();
        expected.sort_unstable();
        assert_eq!(keys, expected);
        assert_eq!(value["created_at"], "2025-01-31T08:00:00.000Z");
        assert_eq!(value["completed_at"], Value::Null);
        assert_eq!(value["status"], "running");
        assert_eq!(value["input_params"], json!({"description": "x"}));
        let task = &value["tasks"][0];
        let mut task_keys: Vec<&str> = task
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        task_keys.sort_unstable();
        let mut expected = vec![
            "id",
            "job_id",
            "step_index",
            "task_type",
            "target_type",
            "target_id",
            "model_name",
            "input_params",
            "status",
            "progress",
            "result_data",
            "error_message",
            "attempts",
            "max_attempts",
            "external_task_id",
            "usage",
            "started_at",
            "attempt_started_at",
            "next_attempt_at",
            "completed_at",
            "attempts_history",
        ];
        expected.sort_unstable();
        assert_eq!(task_keys, expected);
        assert_eq!(task["result_data"], json!({"prompt": "p"}));
        assert_eq!(
            task["attempts_history"],
            json!([{"attempt": 1, "worker": "w1", "started_at": "2025-01-31T08:00:00.000Z",
                "ended_at": "2025-01-31T08:00:00.000Z", "outcome": "lost",
                "error_message": "gone"}])
        );
        let usage = json!({
            "prompt_tokens": 1200, "completion_tokens": 800, "cost_micros": 8800,
            "models": {"DeepSeek Chat": {"prompt_tokens": 1200, "completion_tokens": 800, "cost_micros": 8800}}
        });
        assert_eq!(task["usage"], usage);
        assert_eq!(value["usage"], usage);
    }

    #[test]
    fn start_answer_uses_camel_case() {
        let value =
            serde_json::to_value(StartWorkflowResponse::new(&job(), false, Lang::En)).unwrap();
        assert_eq!(value["jobId"], 3);
        assert_eq!(value["deduplicated"], false);
        assert_eq!(
            value["tasks"][0],
            json!({"id": 11, "stepIndex": 0, "type": "prompt_generate", "status": "running"})
        );
    }
}

/// One message of a job's event stream, as `text/event-stream` frames it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct JobEvent {
    /// `job` (`data` is the whole job, a `Job`) or `changes` (`data` is what changed since the
    /// previous message, see the `changes` query parameter).
    #[schema(example = "job")]
    pub event: String,
    /// The message's JSON, as text.
    pub data: String,
    /// The reconnection delay the server asks for, in milliseconds (first message only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry: Option<u64>,
}
