//! Cancelling and resuming jobs.

use nosyntask_domain::{JobStatus, TaskStatus};
use nosyntask_engine::StoreError;
use nosyntask_engine::ports::Failure;
use serde_json::json;

use super::*;

pub async fn cancel_pending_and_running_jobs(store: Shared) {
    // Pending: never claimed.
    let pending = create(&store, new_job(1, 2), at(0)).await;
    let cancelled = store.cancel_job(pending.job.id, at(1)).await.unwrap();
    assert_eq!(cancelled.status, JobStatus::Cancelled);
    assert_eq!(cancelled.completed_at, Some(at(1)));
    let after = get(&store, pending.job.id).await;
    assert!(
        after
            .tasks
            .iter()
            .all(|t| t.status == TaskStatus::Cancelled)
    );
    assert!(claim(&store, "w", 10, at(2)).await.is_empty());
    // Idempotent.
    let again = store.cancel_job(pending.job.id, at(3)).await.unwrap();
    assert_eq!(again.status, JobStatus::Cancelled);
    assert_eq!(again.completed_at, Some(at(1)));

    // Running: the worker holding it learns of it, and its result is discarded.
    let running = create(&store, new_job(1, 2), at(10)).await;
    let claimed = claim_one(&store, "w", at(11)).await;
    assert!(store.cancelled_claims("w").await.unwrap().is_empty());
    store.cancel_job(running.job.id, at(12)).await.unwrap();
    assert_eq!(
        store.cancelled_claims("w").await.unwrap(),
        vec![claimed.task.id]
    );
    assert!(store.cancelled_claims("other").await.unwrap().is_empty());
    assert_eq!(
        store
            .complete_tasks(&[completion(&claimed, json!("late"))], at(13))
            .await
            .unwrap(),
        vec![false]
    );
    let after = get(&store, running.job.id).await;
    assert_eq!(after.job.status, JobStatus::Cancelled);
    assert_eq!(after.tasks[0].status, TaskStatus::Cancelled);
    assert_eq!(after.tasks[0].result_data, None);
    assert_eq!(after.tasks[1].status, TaskStatus::Cancelled);
    // Once its lease would have run out, the claim is forgotten.
    store.requeue_expired(at(11 + 30_001)).await.unwrap();
    assert!(store.cancelled_claims("w").await.unwrap().is_empty());

    // Completed: conflict. Missing: not found.
    let done = create(&store, new_job(1, 1), at(20)).await;
    let claimed = claim_one(&store, "w", at(21)).await;
    complete(&store, &claimed, json!(1), at(22)).await;
    let err = store.cancel_job(done.job.id, at(23)).await.unwrap_err();
    assert_eq!(
        err,
        StoreError::Conflict(format!("job {} is already completed", done.job.id))
    );
    assert_eq!(
        store.cancel_job(999_999, at(23)).await.unwrap_err(),
        StoreError::NotFound(999_999)
    );

    // Failed: its unfinished later steps are cancelled too.
    let failed = create(&store, new_job(1, 2), at(30)).await;
    let claimed = claim_one(&store, "w", at(31)).await;
    store
        .fail_task(
            &Failure {
                fence: claimed.fence,
                message: "boom".into(),
                retry_at: None,
                started: None,
                job_progress: 0,
            },
            at(32),
        )
        .await
        .unwrap();
    store.cancel_job(failed.job.id, at(33)).await.unwrap();
    let after = get(&store, failed.job.id).await;
    assert_eq!(after.job.status, JobStatus::Cancelled);
    assert_eq!(after.tasks[0].status, TaskStatus::Failed);
    assert_eq!(after.tasks[1].status, TaskStatus::Cancelled);
}

pub async fn cancel_races_with_completion(store: Shared) {
    for round in 0..20 {
        let job = create(&store, new_job(1, 1), at(round)).await;
        let claimed = claim_one(&store, "w", at(round + 1)).await;
        let done = [completion(&claimed, json!(round))];
        let (cancel, done) = tokio::join!(
            store.cancel_job(job.job.id, at(round + 2)),
            store.complete_tasks(&done, at(round + 2)),
        );
        let completed = done.unwrap()[0];
        let after = get(&store, job.job.id).await;
        if completed {
            assert_eq!(after.job.status, JobStatus::Completed);
            assert_eq!(after.tasks[0].status, TaskStatus::Completed);
            assert!(matches!(cancel, Err(StoreError::Conflict(_))), "{cancel:?}");
        } else {
            assert_eq!(after.job.status, JobStatus::Cancelled);
            assert_eq!(after.tasks[0].status, TaskStatus::Cancelled);
            assert_eq!(cancel.unwrap().status, JobStatus::Cancelled);
        }
    }
}

pub async fn resume_continues_from_the_first_unfinished_step(store: Shared) {
    let job = create(&store, new_job(1, 3), at(0)).await;
    let first = claim_one(&store, "w", at(1)).await;
    complete(&store, &first, json!({"step": 0}), at(2)).await;
    let second = claim_one(&store, "w", at(3)).await;
    let err = store.resume_job(job.job.id, None, at(3)).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("running")),
        "{err:?}"
    );
    store
        .fail_task(
            &Failure {
                fence: second.fence,
                message: "quota".into(),
                retry_at: None,
                started: None,
                job_progress: 0,
            },
            at(4),
        )
        .await
        .unwrap();

    let resumed = store.resume_job(job.job.id, None, at(5)).await.unwrap();
    assert_eq!(resumed.status, JobStatus::Pending);
    assert_eq!(resumed.error_message, None);
    assert_eq!(resumed.completed_at, None);
    assert_eq!(resumed.current_step_index, 1);
    let now = get(&store, job.job.id).await;
    assert_eq!(now.tasks[0].status, TaskStatus::Completed);
    assert_eq!(now.tasks[0].result_data, Some(json!({"step": 0})));
    assert_eq!(now.tasks[1].status, TaskStatus::Pending);
    assert_eq!(now.tasks[1].attempts, 0);
    assert_eq!(now.tasks[1].error_message, None);
    assert_eq!(now.tasks[2].status, TaskStatus::Pending);

    let again = claim_one(&store, "w", at(6)).await;
    assert_eq!(again.task.step_index, 1);
    assert_eq!(again.fence.attempt, 1);
    assert_eq!(again.previous_results[&0], json!({"step": 0}));
    assert!(claim(&store, "w", 10, at(7)).await.is_empty());

    // A cancelled job resumes the same way.
    store.cancel_job(job.job.id, at(8)).await.unwrap();
    store.resume_job(job.job.id, None, at(9)).await.unwrap();
    let after = claim_one(&store, "w", at(10)).await;
    assert_eq!(after.task.step_index, 1);
    complete(&store, &after, json!(1), at(11)).await;
    let last = claim_one(&store, "w", at(12)).await;
    complete(&store, &last, json!(2), at(13)).await;
    assert_eq!(
        get(&store, job.job.id).await.job.status,
        JobStatus::Completed
    );
    let err = store
        .resume_job(job.job.id, None, at(14))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)));
    assert_eq!(
        store.resume_job(999_999, None, at(14)).await.unwrap_err(),
        StoreError::NotFound(999_999)
    );
}

pub async fn resume_respects_the_unique_key(store: Shared) {
    let mut new = new_job(1, 1);
    new.unique_key = Some("character-1".into());
    let first = create(&store, new.clone(), at(0)).await;
    store.cancel_job(first.job.id, at(1)).await.unwrap();
    let second = store.create_job(new.clone(), at(2)).await.unwrap();
    assert!(!second.deduplicated);
    let err = store
        .resume_job(first.job.id, None, at(3))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(
        get(&store, first.job.id).await.job.status,
        JobStatus::Cancelled
    );
    // Once the other is over, the first may resume and holds the key again.
    store.cancel_job(second.job.job.id, at(4)).await.unwrap();
    store.resume_job(first.job.id, None, at(5)).await.unwrap();
    let third = store.create_job(new, at(6)).await.unwrap();
    assert!(third.deduplicated);
    assert_eq!(third.job.job.id, first.job.id);
}
