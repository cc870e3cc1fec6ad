use chrono::{DateTime, Utc};
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
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// An item of a fan-out step: the step's task, and the item's place in its list.
    pub parent_task_id: Option<TaskId>,
    pub item_index: Option<i32>,
    /// Why a pending task that is ready is not running yet (its model is busy or paused); filled
    /// in when the job is read, never stored.
    pub waiting_reason: Option<String>,
}

/// A job with its tasks in step order.
#[derive(Debug, Clone, PartialEq)]
pub struct JobWithTasks {
    pub job: Job,
    pub tasks: Vec<Task>,
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
