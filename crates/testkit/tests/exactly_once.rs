//! Exactly-once under contention: 8 worker pools race over 2,000 jobs of 3 steps. Every handler
//! runs once per step, steps run in order, and each step sees the previous steps' results.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Harness, for_each_backend};
use nosyntask_domain::{JobStatus, Viewer};
use nosyntask_engine::ListQuery;
use nosyntask_testkit::workflows::{Invocations, counting_registry};
use serde_json::json;

const JOBS: usize = 2_000;
const STEPS: i32 = 3;
const WORKERS: usize = 8;

for_each_backend!(eight_workers_run_every_step_of_2000_jobs_exactly_once);
async fn eight_workers_run_every_step_of_2000_jobs_exactly_once(h: Harness) {
    let invocations = Invocations::new();
    let engine = h
        .engine(counting_registry(invocations.clone(), Duration::ZERO))
        .with_config(nosyntask_engine::EngineConfig {
            max_active_jobs_per_user: None,
            ..Default::default()
        });
    let mut ids = Vec::with_capacity(JOBS);
    for i in 0..JOBS {
        ids.push(
            h.start(&engine, "counting_3", json!({"label": format!("job {i}")}))
                .await,
        );
    }
    let workers: Vec<_> = (0..WORKERS)
        .map(|n| {
            h.worker_with(&engine, |c| {
                c.owner = format!("contender-{n}");
                c.concurrency = 4;
                c.claim_batch = 4;
            })
        })
        .collect();
    h.wait_all_terminal(&engine).await;
    for worker in workers {
        worker.shutdown().await;
    }

    let viewer = Viewer::admin(0);
    let jobs = engine
        .list(
            &viewer,
            ListQuery {
                limit: 10_000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(jobs.len(), JOBS);
    let not_completed: Vec<_> = jobs
        .iter()
        .filter(|j| j.status != JobStatus::Completed)
        .collect();
    assert!(
        not_completed.is_empty(),
        "{} jobs did not complete, e.g. {:?}",
        not_completed.len(),
        not_completed.first()
    );

    let finished = invocations.finished();
    assert_eq!(finished.len(), JOBS * STEPS as usize, "every step ran");
    let repeated: Vec<_> = finished.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        repeated.is_empty(),
        "steps ran more than once: {repeated:?}"
    );
    assert_eq!(invocations.started(), JOBS * STEPS as usize);

    // Each step saw the results of all the steps before it.
    for id in ids.iter().step_by(97) {
        let job = engine.get(&viewer, *id).await.unwrap();
        for task in &job.tasks {
            let result = task.result_data.as_ref().unwrap();
            assert_eq!(result["step"], json!(task.step_index));
            assert_eq!(result["previousSteps"], json!(task.step_index));
            assert_eq!(task.attempts, 1);
        }
        assert!(
            job.tasks
                .windows(2)
                .all(|w| w[0].completed_at <= w[1].started_at),
            "steps ran in order"
        );
    }
}
