use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{JobStatus, TaskStatus};

pub type JobId = i64;
pub type TaskId = i64;
pub type UserId = i64;
pub type ProjectId = i64;

/// A workflow job: one request of the frontend, made of ordered steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: JobId,
    pub user_id: UserId,
    pub project_id: ProjectId,
    pub workflow_type: String,
    pub status: JobStatus,
    pub current_step_index: i32,
    pub total_steps: i32,
    pub input_params: Value,
    pub error_message: Option<String>,
    pub is_consumed: bool,
    /// Overall progress 0–100 over all steps.
    pub progress: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    /// The last failure of an in-transaction completion hook of this job (the event and the
    /// hook's message): its writes were rolled back, the result they followed committed.
    pub hook_error: Option<String>,
}

/// One step of a job (a `generation_tasks` row).
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub id: TaskId,
    pub job_id: JobId,
    pub step_index: i32,
    pub task_type: String,
    pub target_type: String,
    pub target_id: Option<i64>,
    pub model_name: Option<String>,
    /// The input the step's builder made, stored when the step starts.
    pub input_params: Option<Value>,
    pub status: TaskStatus,
    pub progress: i32,
    pub result_data: Option<Value>,
    pub error_message: Option<String>,
    /// How many times the task has been claimed by a worker.
    pub attempts: i32,
    pub max_attempts: i32,
    pub external_task_id: Option<String>,
    /// What the task's model calls used and cost, written with its result.
    pub usage: Option<crate::TaskUsage>,
    /// The first start of the task (over all attempts and resumes).
    pub started_at: Option<DateTime<Utc>>,
    /// The start of the attempt running now, or of the last one.
    pub attempt_started_at: Option<DateTime<Utc>>,
    /// When a task waiting to be retried becomes ready again.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// An item of a fan-out step: the step's task, and the item's place in its list.
    pub parent_task_id: Option<TaskId>,
    pub item_index: Option<i32>,
    /// Why a pending task that is ready is not running yet (its model is busy or paused); filled
    /// in when the job is read, never stored.
    pub waiting_reason: Option<String>,
}

/// How one attempt of a task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    Completed,
    /// The handler failed; the task was retried or failed for good.
    Failed,
    /// Given back without a result (shutdown, a lease the runner could not confirm); it does
    /// not count as an attempt.
    HandedBack,
    /// Its runner stopped renewing the lease and another claim took the task over.
    Lost,
    /// The job was cancelled while it ran.
    Cancelled,
}

impl AttemptOutcome {
    pub const ALL: [AttemptOutcome; 5] = [
        AttemptOutcome::Completed,
        AttemptOutcome::Failed,
        AttemptOutcome::HandedBack,
        AttemptOutcome::Lost,
        AttemptOutcome::Cancelled,
    ];

    /// The name stored in the database and sent over the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Completed => "completed",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::HandedBack => "handed_back",
            AttemptOutcome::Lost => "lost",
            AttemptOutcome::Cancelled => "cancelled",
        }
    }
}

impl std::str::FromStr for AttemptOutcome {
    type Err = crate::ParseStatusError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        AttemptOutcome::ALL
            .into_iter()
            .find(|outcome| outcome.as_str() == text)
            .ok_or_else(|| crate::ParseStatusError(text.to_owned()))
    }
}

/// One finished attempt of a task (a `task_attempts` row). The attempt running now is the task
/// itself (`attempt_started_at`, status `running`).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskAttempt {
    pub task_id: TaskId,
    /// The task's attempt count when it ran (a resume starts counting again at 1).
    pub attempt: i32,
    /// Which worker ran it (its lease owner).
    pub worker: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: DateTime<Utc>,
    pub outcome: AttemptOutcome,
    pub error_message: Option<String>,
}

/// A job with its tasks in step order.
#[derive(Debug, Clone, PartialEq)]
pub struct JobWithTasks {
    pub job: Job,
    pub tasks: Vec<Task>,
    /// Finished attempts of the job's tasks, oldest first. Filled by single-job reads; empty
    /// where a read does not ask for it (lists, claims).
    pub history: Vec<TaskAttempt>,
}

impl JobWithTasks {
    /// What the job's tasks used, added up; `None` when none reported anything.
    pub fn usage(&self) -> Option<crate::TaskUsage> {
        crate::TaskUsage::sum(self.tasks.iter().filter_map(|t| t.usage.as_ref()))
    }
}

/// Who is asking: users see their own jobs, admins see all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Viewer {
    pub user_id: UserId,
    pub is_admin: bool,
}

impl Viewer {
    pub fn user(user_id: UserId) -> Self {
        Viewer {
            user_id,
            is_admin: false,
        }
    }

    pub fn admin(user_id: UserId) -> Self {
        Viewer {
            user_id,
            is_admin: true,
        }
    }

    /// Whether this viewer may read a job owned by `owner`.
    pub fn can_read(&self, owner: UserId) -> bool {
        self.is_admin || self.user_id == owner
    }
}
