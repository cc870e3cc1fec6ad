//! The nosyntask domain: what a workflow job and its tasks are, their statuses, the errors a step
//! handler can return and the parameter schemas workflows declare. Pure data: no IO, no async.

mod params;
mod status;
mod task_error;
mod types;
mod usage;

pub use params::{ParamError, ParamKind, ParamSpec, ParamsSchema, lenient_integer};
pub use status::{JobStatus, ParseStatusError, TaskStatus};
pub use task_error::TaskError;
pub use types::{
    AttemptOutcome, Job, JobId, JobWithTasks, ProjectId, Task, TaskAttempt, TaskId, UserId, Viewer,
};
pub use usage::{TaskUsage, Usage};
