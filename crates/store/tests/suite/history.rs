//! Attempt history: every attempt that ends leaves a row — its worker, start, end, outcome and
//! error — that a resume keeps, and a task waiting for its retry says when.

use nosyntask_domain::{AttemptOutcome, JobStatus, TaskAttempt, TaskStatus};
use nosyntask_engine::ports::Failure;
use serde_json::json;

use super::*;

fn row(history: &[TaskAttempt], i: usize) -> (i32, Option<&str>, AttemptOutcome) {
    let a = &history[i];
    (a.attempt, a.worker.as_deref(), a.outcome)
}

pub async fn attempt_history_survives_retries_losses_cancel_and_resume(store: Shared) {
    let job = create(&store, new_job(1, 2), at(0)).await;
    let id = job.job.id;

    // Attempt 1 fails and waits for its retry.
    let first = claim_one(&store, "w1", at(10)).await;
    let running = get(&store, id).await;
    assert_eq!(running.tasks[0].attempt_started_at, Some(at(10)));
    assert!(running.history.is_empty(), "{:?}", running.history);
    let failure = Failure {
        fence: first.fence.clone(),
        message: "provider said 503".to_owned(),
        retry_at: Some(at(5_000)),
        started: None,
        job_progress: 0,
    };
    assert!(store.fail_task(&failure, at(20)).await.unwrap());
    let waiting = get(&store, id).await;
    assert_eq!(waiting.tasks[0].status, TaskStatus::Pending);
    assert_eq!(waiting.tasks[0].next_attempt_at, Some(at(5_000)));
    assert_eq!(waiting.history.len(), 1);
    assert_eq!(
        row(&waiting.history, 0),
        (1, Some("w1"), AttemptOutcome::Failed)
    );
    assert_eq!(waiting.history[0].started_at, Some(at(10)));
    assert_eq!(waiting.history[0].ended_at, at(20));
    assert_eq!(
        waiting.history[0].error_message.as_deref(),
        Some("provider said 503")
    );

    // Attempt 2 is handed back (shutdown): recorded, and not counted.
    let second = claim_one(&store, "w2", at(5_001)).await;
    assert_eq!(second.fence.attempt, 2);
    store
        .release_tasks(std::slice::from_ref(&second.fence), at(5_002))
        .await
        .unwrap();
    // Attempt 2 again: its worker dies; the lease lapses and w3 takes the task over.
    let third = claim_one(&store, "w2", at(5_003)).await;
    assert_eq!(third.fence.attempt, 2);
    assert_eq!(store.requeue_expired(at(40_000)).await.unwrap(), 1);
    let fourth = claim_one(&store, "w3", at(40_001)).await;
    assert_eq!(fourth.fence.attempt, 3);
    complete(&store, &fourth, json!({"step": 0}), at(40_010)).await;

    // Step 2 runs and the job is cancelled under it, then resumed and completed.
    let step2 = claim_one(&store, "w3", at(40_020)).await;
    store.cancel_job(id, at(40_030)).await.unwrap();
    store.resume_job(id, None, at(40_040)).await.unwrap();
    let resumed = get(&store, id).await;
    assert_eq!(resumed.tasks[1].attempts, 0);
    assert_eq!(resumed.history.len(), 5, "the resume keeps the history");
    let again = claim_one(&store, "w4", at(40_050)).await;
    assert_eq!(again.task.id, step2.task.id);
    complete(&store, &again, json!({"step": 1}), at(40_060)).await;

    let done = get(&store, id).await;
    assert_eq!(done.job.status, JobStatus::Completed);
    let step0: Vec<_> = done
        .history
        .iter()
        .filter(|a| a.task_id == done.tasks[0].id)
        .cloned()
        .collect();
    assert_eq!(
        (0..step0.len()).map(|i| row(&step0, i)).collect::<Vec<_>>(),
        vec![
            (1, Some("w1"), AttemptOutcome::Failed),
            (2, Some("w2"), AttemptOutcome::HandedBack),
            (2, Some("w2"), AttemptOutcome::Lost),
            (3, Some("w3"), AttemptOutcome::Completed),
        ]
    );
    assert_eq!(step0[1].started_at, Some(at(5_001)));
    assert_eq!(step0[1].ended_at, at(5_002));
    assert_eq!(step0[2].started_at, Some(at(5_003)));
    // A lost attempt ends when its lease ran out.
    assert_eq!(
        step0[2].ended_at,
        at(5_003) + chrono::Duration::from_std(LEASE).unwrap()
    );
    assert!(step0[2].error_message.is_some());
    assert_eq!(step0[3].ended_at, at(40_010));
    let step1: Vec<_> = done
        .history
        .iter()
        .filter(|a| a.task_id == done.tasks[1].id)
        .cloned()
        .collect();
    assert_eq!(
        (0..step1.len()).map(|i| row(&step1, i)).collect::<Vec<_>>(),
        vec![
            (1, Some("w3"), AttemptOutcome::Cancelled),
            (1, Some("w4"), AttemptOutcome::Completed),
        ]
    );
    assert_eq!(done.tasks[1].attempt_started_at, Some(at(40_050)));
    assert_eq!(done.tasks[1].started_at, Some(at(40_020)));
    assert_eq!(done.tasks[0].next_attempt_at, None);

    // Pruning the job takes its history with it.
    store.consume_job(id, at(40_070)).await.unwrap();
    assert_eq!(store.prune(at(50_000), at(50_000)).await.unwrap(), 1);
    let again = create(&store, new_job(1, 1), at(60_000)).await;
    let claimed = claim_one(&store, "w5", at(60_001)).await;
    complete(&store, &claimed, json!({}), at(60_002)).await;
    let fresh = get(&store, again.job.id).await;
    assert_eq!(fresh.history.len(), 1);
    assert_eq!(
        row(&fresh.history, 0),
        (1, Some("w5"), AttemptOutcome::Completed)
    );
}
