//! The contract every `JobStore` backend must meet. Each test gets a fresh, empty store and
//! drives time by hand (`at(ms)`), so nothing depends on the wall clock except
//! `wait_for_work_wakes_on_create`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod activity;
mod claims;
mod cluster;
mod history;
mod hooks;
mod jobs;
mod lifecycle;
mod owner_leases;
mod usage;

pub use activity::*;
pub use claims::*;
pub use cluster::*;
pub use history::*;
pub use hooks::*;
pub use jobs::*;
pub use lifecycle::*;
pub use owner_leases::*;
pub use usage::*;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use nosyntask_domain::JobWithTasks;
use nosyntask_engine::JobStore;
use nosyntask_engine::ports::{ClaimedTask, Completion, NewJob, NewTask};
use serde_json::{Value, json};

pub type Shared = Arc<dyn JobStore>;

pub const LEASE: Duration = Duration::from_secs(30);

/// A fixed instant plus `ms` milliseconds.
pub fn at(ms: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::milliseconds(ms)
}

pub fn new_job(user_id: i64, steps: usize) -> NewJob {
    NewJob {
        user_id,
        project_id: 7,
        workflow_type: "storyboard_generation".to_owned(),
        input_params: json!({"scriptContent": "Once upon a time", "n": 3}),
        tasks: (0..steps)
            .map(|i| NewTask {
                task_type: format!("step_{i}"),
                target_type: "script".to_owned(),
                target_id: if i == 0 { Some(42) } else { None },
                max_attempts: 3,
                model_name: None,
            })
            .collect(),
        idempotency_key: None,
        idempotency_window: Duration::from_secs(24 * 3600),
        unique_key: None,
        max_active_per_user: None,
        priority: 0,
        fair_share_quantum: std::time::Duration::ZERO,
    }
}

pub async fn create(store: &Shared, job: NewJob, now: DateTime<Utc>) -> JobWithTasks {
    store.create_job(job, now).await.unwrap().job
}

pub async fn claim(
    store: &Shared,
    owner: &str,
    limit: u32,
    now: DateTime<Utc>,
) -> Vec<ClaimedTask> {
    store.claim_tasks(owner, limit, LEASE, now).await.unwrap()
}

pub async fn claim_one(store: &Shared, owner: &str, now: DateTime<Utc>) -> ClaimedTask {
    let mut claimed = claim(store, owner, 1, now).await;
    assert_eq!(claimed.len(), 1, "expected one claimable task");
    claimed.remove(0)
}

pub fn completion(claimed: &ClaimedTask, result: Value) -> Completion {
    let is_last_step = claimed.task.step_index + 1 >= claimed.job.total_steps;
    Completion {
        fence: claimed.fence.clone(),
        result,
        usage: None,
        started: None,
        is_last_step,
        job_progress: ((claimed.task.step_index + 1) * 100 / claimed.job.total_steps).min(100),
    }
}

pub async fn complete(store: &Shared, claimed: &ClaimedTask, result: Value, now: DateTime<Utc>) {
    let held = store
        .complete_tasks(&[completion(claimed, result)], now)
        .await
        .unwrap();
    assert_eq!(held, vec![true]);
}

pub async fn get(store: &Shared, id: i64) -> JobWithTasks {
    store.get_job(id).await.unwrap().expect("job exists")
}

/// How many jobs are completed.
pub async fn completed_jobs(store: &Shared) -> usize {
    store
        .list_jobs(&nosyntask_engine::ports::JobFilter {
            statuses: vec![nosyntask_domain::JobStatus::Completed],
            limit: u64::MAX,
            ..Default::default()
        })
        .await
        .unwrap()
        .len()
}
