//! Measures the store's hot paths on one backend: sequential starts, then draining one-step jobs
//! with batched claims and completions.
//!
//! `cargo run --release -p nosyntask-store --example store_bench -- sqlite|sqlite-file|postgres|mysql [jobs] [steps]`
//! (PostgreSQL and MySQL need `NOSYNTASK_TEST_POSTGRES_URL` / `NOSYNTASK_TEST_MYSQL_URL`.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use nosyntask_engine::JobStore;
use nosyntask_engine::ports::{Completion, NewJob, NewTask};
use nosyntask_store::testing::test_store;
use serde_json::json;

fn job(user_id: i64, quota: Option<u64>, steps: usize) -> NewJob {
    NewJob {
        user_id,
        project_id: 1,
        workflow_type: "noop".into(),
        input_params: json!({"prompt": "x"}),
        tasks: (0..steps)
            .map(|_| NewTask {
                task_type: "noop".into(),
                target_type: "none".into(),
                target_id: None,
                max_attempts: 3,
                model_name: None,
            })
            .collect(),
        idempotency_key: None,
        idempotency_window: Duration::from_secs(86400),
        unique_key: None,
        max_active_per_user: quota,
        priority: 0,
        fair_share_quantum: std::time::Duration::ZERO,
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let backend = args.get(1).map_or("sqlite", String::as_str).to_owned();
    let jobs: usize = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(5000);
    let steps: usize = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(1);
    let db = test_store(&backend)
        .await
        .unwrap()
        .expect("backend URL set");
    let store: Arc<dyn JobStore> = db.shared();

    for (label, quota) in [
        ("starts, no checks", None),
        ("starts, quota", Some(u64::MAX)),
    ] {
        let started = Instant::now();
        for i in 0..jobs {
            store
                .create_job(job(i as i64 % 100, quota, steps), Utc::now())
                .await
                .unwrap();
        }
        let secs = started.elapsed().as_secs_f64();
        println!("{backend}: {label}: {:.0}/s", jobs as f64 / secs);
    }

    let total = jobs * 2 * steps;
    let started = Instant::now();
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let owner = format!("w{w}");
                let mut done = 0;
                let (mut claiming, mut completing) = (Duration::ZERO, Duration::ZERO);
                loop {
                    let t = Instant::now();
                    let claimed = store
                        .claim_tasks(&owner, 64, Duration::from_secs(30), Utc::now())
                        .await
                        .unwrap();
                    claiming += t.elapsed();
                    if claimed.is_empty() {
                        println!("{owner}: claiming {claiming:?}, completing {completing:?}");
                        return done;
                    }
                    let completions: Vec<_> = claimed
                        .iter()
                        .map(|c| Completion {
                            fence: c.fence.clone(),
                            result: json!({"ok": true}),
                            usage: None,
                            started: None,
                            is_last_step: c.task.step_index + 1 >= c.job.total_steps,
                            job_progress: 100,
                        })
                        .collect();
                    let t = Instant::now();
                    let held = store
                        .complete_tasks(&completions, Utc::now())
                        .await
                        .unwrap();
                    completing += t.elapsed();
                    done += held.iter().filter(|h| **h).count();
                }
            })
        })
        .collect();
    let mut done = 0;
    for worker in workers {
        done += worker.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{backend}: completed {done}/{total} steps: {:.0}/s",
        done as f64 / secs
    );
    db.cleanup().await;
}
