//! Task activity by model, task type, status and attempts (the console's admin view).

use nosyntask_domain::TaskStatus;
use nosyntask_domain::{TaskUsage, Usage};
use nosyntask_engine::ports::{Failure, ModelBucket, ProgressUpdate, StepStarted, TaskActivity};
use serde_json::json;

use super::*;

fn started(model: &str) -> Option<StepStarted> {
    Some(StepStarted {
        input_params: json!({"modelName": model}),
        model_name: Some(model.to_owned()),
    })
}

fn row(
    model: Option<&str>,
    status: TaskStatus,
    attempts: i32,
    tasks: u64,
) -> (Option<String>, String, TaskStatus, i32, u64) {
    (
        model.map(str::to_owned),
        "step_0".to_owned(),
        status,
        attempts,
        tasks,
    )
}

fn rows(activity: Vec<TaskActivity>) -> Vec<(Option<String>, String, TaskStatus, i32, u64)> {
    activity
        .into_iter()
        .map(|a| (a.model_name, a.task_type, a.status, a.attempts, a.tasks))
        .collect()
}

pub async fn task_activity_groups_in_flight_and_recent_tasks(store: Shared) {
    assert_eq!(store.task_activity(at(0)).await.unwrap(), Vec::new());
    let mut jobs = Vec::new();
    for steps in [1, 1, 2, 1, 1, 1] {
        jobs.push(create(&store, new_job(1, steps), at(0)).await.job.id);
    }
    let [a, b, c, d, e, _f] = jobs[..] else {
        unreachable!()
    };
    let claimed = claim(&store, "w", 5, at(1)).await;
    assert_eq!(claimed.len(), 5);
    let of = |job| {
        claimed
            .iter()
            .find(|t| t.job.id == job)
            .expect("claimed")
            .clone()
    };

    // a: completed at 1 s with a named model.
    let mut done = completion(&of(a), json!({"ok": true}));
    done.started = started("m-image");
    assert_eq!(
        store.complete_tasks(&[done], at(1_000)).await.unwrap(),
        vec![true]
    );
    // b: failed once, waiting for its retry.
    let retry = Failure {
        fence: of(b).fence,
        message: "HTTP 503".into(),
        retry_at: Some(at(60_000)),
        started: started("m-text"),
        job_progress: 0,
    };
    assert!(store.fail_task(&retry, at(2_000)).await.unwrap());
    // c: failed for good; its second step waits for a resume and is not queued.
    let fail = Failure {
        fence: of(c).fence,
        message: "bad params".into(),
        retry_at: None,
        started: started("m-text"),
        job_progress: 0,
    };
    assert!(store.fail_task(&fail, at(5_000)).await.unwrap());
    // d: running, its model recorded with its first progress write.
    store
        .write_progress(
            &[ProgressUpdate {
                fence: of(d).fence,
                progress: 40,
                job_progress: 40,
                started: started("m-video"),
            }],
            at(3_000),
        )
        .await
        .unwrap();
    // e: cancelled while running. f: never claimed.
    store.cancel_job(e, at(6_000)).await.unwrap();

    let recent = rows(store.task_activity(at(2_000)).await.unwrap());
    assert_eq!(
        recent,
        vec![
            row(None, TaskStatus::Cancelled, 1, 1),
            row(None, TaskStatus::Pending, 0, 1),
            row(Some("m-text"), TaskStatus::Failed, 1, 1),
            row(Some("m-text"), TaskStatus::Pending, 1, 1),
            row(Some("m-video"), TaskStatus::Running, 1, 1),
        ]
    );
    // A wider window also holds the task that completed at 1 s.
    let all = rows(store.task_activity(at(0)).await.unwrap());
    assert_eq!(all.len(), 6);
    assert!(all.contains(&row(Some("m-image"), TaskStatus::Completed, 1, 1)));
    // Tasks that share every key are counted together.
    for _ in 0..2 {
        create(&store, new_job(2, 1), at(7_000)).await;
    }
    let grouped = rows(store.task_activity(at(2_000)).await.unwrap());
    assert!(
        grouped.contains(&row(None, TaskStatus::Pending, 0, 3)),
        "{grouped:?}"
    );
}

pub async fn model_series_buckets_finished_tasks_per_model(store: Shared) {
    let ten_s = std::time::Duration::from_secs(10);
    assert_eq!(store.model_series(at(0), ten_s).await.unwrap(), Vec::new());
    let mut jobs = Vec::new();
    for _ in 0..5 {
        jobs.push(create(&store, new_job(1, 1), at(0)).await.job.id);
    }
    let claimed = claim(&store, "w", 5, at(1_000)).await;
    let of = |job| {
        claimed
            .iter()
            .find(|t| t.job.id == job)
            .expect("claimed")
            .clone()
    };
    let priced = |model: &str, cost| {
        let mut usage = TaskUsage::default();
        usage.record(
            model,
            Usage {
                images: Some(1),
                cost_micros: Some(cost),
                ..Usage::default()
            },
        );
        Some(usage)
    };
    // Two priced images of 2 s and 4 s in the first ten seconds, a step of no named model and a
    // failure in the next ten; one task still runs.
    for (job, ended, cost) in [(jobs[0], 3_000, 40_000), (jobs[1], 5_000, 60_000)] {
        let mut done = completion(&of(job), json!({"ok": true}));
        done.started = started("m-image");
        done.usage = priced("m-image", cost);
        assert_eq!(
            store.complete_tasks(&[done], at(ended)).await.unwrap(),
            vec![true]
        );
    }
    complete(&store, &of(jobs[2]), json!(1), at(15_000)).await;
    let fail = Failure {
        fence: of(jobs[3]).fence,
        message: "bad params".into(),
        retry_at: None,
        started: started("m-text"),
        job_progress: 0,
    };
    assert!(store.fail_task(&fail, at(12_000)).await.unwrap());

    let bucket = |start: i64, model: Option<&str>| ModelBucket {
        model_name: model.map(str::to_owned),
        bucket_start: at(start),
        ..ModelBucket::default()
    };
    assert_eq!(
        store.model_series(at(0), ten_s).await.unwrap(),
        vec![
            ModelBucket {
                completed: 2,
                completed_ms: 2_000 + 4_000,
                cost_micros: 100_000,
                ..bucket(0, Some("m-image"))
            },
            ModelBucket {
                completed: 1,
                completed_ms: 14_000,
                ..bucket(10_000, None)
            },
            ModelBucket {
                failed: 1,
                ..bucket(10_000, Some("m-text"))
            },
        ]
    );
    // Only what finished since the time given.
    let later = store.model_series(at(4_000), ten_s).await.unwrap();
    assert_eq!(later[0].completed, 1);
    assert_eq!(later[0].cost_micros, 60_000);
    assert_eq!(later.len(), 3);
}
