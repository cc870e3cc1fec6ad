//! What a cluster does to a store: leases that lapse while their runner lives, resumes racing
//! the old attempt's late writes, admin actions racing each other, many running tasks, and text
//! that one backend cannot store.

use nosyntask_domain::{JobStatus, TaskStatus};
use nosyntask_engine::StoreError;
use nosyntask_engine::ports::{Failure, Fence, ProgressUpdate, StepStarted};
use serde_json::json;

use super::*;

fn fail_now(fence: &Fence, message: &str, retry: bool) -> Failure {
    Failure {
        fence: fence.clone(),
        message: message.to_owned(),
        retry_at: retry.then(|| at(0)),
        started: None,
        job_progress: 0,
    }
}

pub async fn a_lapsed_lease_is_taken_back_by_its_live_runner(store: Shared) {
    let job = create(&store, new_job(1, 1), at(0)).await;
    let claimed = claim_one(&store, "w1", at(1)).await;
    // The runner lost the database for longer than its lease: swept back to pending.
    assert_eq!(store.requeue_expired(at(40_000)).await.unwrap(), 1);
    // Its next renewal takes the task back: no attempt used, nobody else can claim it.
    let lost = store
        .renew_leases(std::slice::from_ref(&claimed.fence), LEASE, at(40_001))
        .await
        .unwrap();
    assert!(lost.is_empty(), "{lost:?}");
    let now = get(&store, job.job.id).await;
    assert_eq!(now.tasks[0].status, TaskStatus::Running);
    assert_eq!(now.tasks[0].attempts, 1);
    assert!(claim(&store, "w2", 10, at(40_002)).await.is_empty());
    // And its result counts, even when it arrives after a second lapse without a renewal.
    assert_eq!(store.requeue_expired(at(80_000)).await.unwrap(), 1);
    complete(&store, &claimed, json!({"done": true}), at(80_001)).await;
    let done = get(&store, job.job.id).await;
    assert_eq!(done.job.status, JobStatus::Completed);
    assert_eq!(done.tasks[0].result_data, Some(json!({"done": true})));
    assert!(claim(&store, "w2", 10, at(90_000)).await.is_empty());
}

pub async fn a_resumed_task_fences_off_the_cancelled_attempt(store: Shared) {
    let job = create(&store, new_job(1, 1), at(0)).await;
    let old = claim_one(&store, "w", at(1)).await;
    store.cancel_job(job.job.id, at(2)).await.unwrap();
    store.resume_job(job.job.id, None, at(3)).await.unwrap();
    // The same worker claims the resumed task: same owner, same attempt number as before.
    let new = claim_one(&store, "w", at(4)).await;
    assert_eq!(new.fence.attempt, old.fence.attempt);
    assert_ne!(new.fence.epoch, old.fence.epoch);
    // The cancelled attempt winds down late: none of its writes may land.
    let err = store
        .save_checkpoint(&old.fence, &json!({"stale": true}), Some("old-task"), at(5))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    store
        .write_progress(
            &[ProgressUpdate {
                fence: old.fence.clone(),
                progress: 90,
                job_progress: 90,
                started: Some(StepStarted {
                    input_params: json!({"stale": true}),
                    model_name: Some("stale".to_owned()),
                }),
            }],
            at(5),
        )
        .await
        .unwrap();
    assert!(
        !store
            .fail_task(&fail_now(&old.fence, "old", false), at(5))
            .await
            .unwrap()
    );
    let held = store
        .complete_tasks(&[completion(&old, json!("stale"))], at(6))
        .await
        .unwrap();
    assert_eq!(held, vec![false]);
    let now = get(&store, job.job.id).await;
    assert_eq!(now.job.status, JobStatus::Running);
    assert_eq!(now.tasks[0].status, TaskStatus::Running);
    assert_eq!(now.tasks[0].progress, 0);
    assert_eq!(now.tasks[0].external_task_id, None);
    assert_eq!(now.tasks[0].model_name, None);
    // The new attempt's writes do.
    store
        .save_checkpoint(&new.fence, &json!({"fresh": true}), Some("new-task"), at(7))
        .await
        .unwrap();
    complete(&store, &new, json!("fresh"), at(8)).await;
    assert_eq!(
        get(&store, job.job.id).await.tasks[0].result_data,
        Some(json!("fresh"))
    );
}

pub async fn resume_counts_toward_the_quota(store: Shared) {
    let limited = || {
        let mut job = new_job(1, 1);
        job.max_active_per_user = Some(1);
        job
    };
    let failed = create(&store, limited(), at(0)).await;
    let claimed = claim_one(&store, "w", at(1)).await;
    assert!(
        store
            .fail_task(&fail_now(&claimed.fence, "boom", false), at(2))
            .await
            .unwrap()
    );
    create(&store, limited(), at(3)).await;
    let err = store
        .resume_job(failed.job.id, Some(1), at(4))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        StoreError::QuotaExceeded {
            user_id: 1,
            active: 1,
            limit: 1
        }
    );
    assert_eq!(
        get(&store, failed.job.id).await.job.status,
        JobStatus::Failed
    );
    // Without a quota, or with room, it resumes.
    store
        .resume_job(failed.job.id, Some(2), at(5))
        .await
        .unwrap();
}

/// Drives the job to its end the way a worker and a user would: resume it if it stopped, then
/// claim and complete each step. Fails if the job is stuck (active with nothing claimable).
async fn drive_to_completion(store: &Shared, id: i64, clock: &mut i64) {
    for _ in 0..20 {
        *clock += 1_000;
        let Some(job) = store.get_job(id).await.unwrap() else {
            return; // pruned whole: nothing left behind
        };
        assert_eq!(
            job.tasks.len(),
            usize::try_from(job.job.total_steps).unwrap(),
            "job {id} lost tasks: {job:?}"
        );
        match job.job.status {
            JobStatus::Completed => return,
            JobStatus::Failed | JobStatus::Cancelled => {
                store.resume_job(id, None, at(*clock)).await.unwrap();
            }
            JobStatus::Pending | JobStatus::Running => {
                // Leases of runners that vanished in the storm lapse first.
                store.requeue_expired(at(*clock + 60_000)).await.unwrap();
                *clock += 61_000;
                let claimed = claim(store, "driver", 10, at(*clock)).await;
                assert_eq!(claimed.len(), 1, "job {id} is stuck: {job:?}");
                complete(store, &claimed[0], json!("ok"), at(*clock)).await;
            }
        }
    }
    panic!("job {id} never completed");
}

pub async fn admin_storms_never_strand_a_job(store: Shared) {
    let mut clock = 0;
    for round in 0..60 {
        let job = create(&store, new_job(1, 2), at(clock)).await;
        let id = job.job.id;
        let first = claim_one(&store, "w", at(clock + 1)).await;
        if round % 2 == 0 {
            assert!(
                store
                    .fail_task(&fail_now(&first.fence, "x", false), at(clock + 2))
                    .await
                    .unwrap()
            );
        } else {
            store.cancel_job(id, at(clock + 2)).await.unwrap();
        }
        let mut storm = Vec::new();
        for i in 0..6 {
            let store = store.clone();
            let now = at(clock + 3 + i);
            storm.push(tokio::spawn(async move {
                match i % 3 {
                    0 => drop(store.resume_job(id, None, now).await),
                    1 => drop(store.cancel_job(id, now).await),
                    // Prunes everything terminal, whatever its age.
                    _ => drop(store.prune(at(1 << 40), at(1 << 40)).await),
                }
            }));
        }
        // A worker claims whatever the storm made ready, and finishes it.
        let worker = {
            let store = store.clone();
            let now = at(clock + 5);
            tokio::spawn(async move {
                for claimed in store.claim_tasks("w2", 5, LEASE, now).await.unwrap() {
                    let _ = store
                        .complete_tasks(&[completion(&claimed, json!("w2"))], now)
                        .await;
                }
            })
        };
        for task in storm {
            task.await.unwrap();
        }
        worker.await.unwrap();
        clock += 100;
        drive_to_completion(&store, id, &mut clock).await;
    }
}

pub async fn renewals_and_progress_cover_any_number_of_running_tasks(store: Shared) {
    let job = create(&store, new_job(1, 1), at(0)).await;
    let claimed = claim_one(&store, "w", at(1)).await;
    // Far more fences than one statement may carry on SQLite (32,766 variables); all but one
    // name tasks that do not exist.
    let mut fences: Vec<Fence> = (0..20_000)
        .map(|i| Fence {
            task_id: 10_000_000 + i,
            job_id: job.job.id,
            owner: "w".to_owned(),
            attempt: 1,
            epoch: 1,
        })
        .collect();
    fences.push(claimed.fence.clone());
    let lost = store.renew_leases(&fences, LEASE, at(2)).await.unwrap();
    assert_eq!(lost.len(), 20_000);
    assert!(!lost.contains(&claimed.task.id));
    let lost = store.lost_fences(&fences).await.unwrap();
    assert_eq!(lost.len(), 20_000);
    assert!(!lost.contains(&claimed.task.id));
    let updates: Vec<ProgressUpdate> = fences
        .iter()
        .map(|fence| ProgressUpdate {
            fence: fence.clone(),
            progress: 50,
            job_progress: 50,
            started: None,
        })
        .collect();
    store.write_progress(&updates, at(3)).await.unwrap();
    assert_eq!(get(&store, job.job.id).await.tasks[0].progress, 50);
}

pub async fn text_with_nul_characters_is_stored(store: Shared) {
    let mut new = new_job(1, 1);
    new.idempotency_key = Some("key\0with-nul".to_owned());
    let job = create(&store, new.clone(), at(0)).await;
    // The same key finds the same job.
    let again = store.create_job(new, at(1)).await.unwrap();
    assert!(again.deduplicated);
    assert_eq!(again.job.job.id, job.job.id);
    let claimed = claim_one(&store, "w", at(2)).await;
    store
        .save_checkpoint(
            &claimed.fence,
            &json!({"id": "a\0b"}),
            Some("ext\0id"),
            at(3),
        )
        .await
        .unwrap();
    let failure = Failure {
        started: Some(StepStarted {
            input_params: json!({"prompt": "nul \0 inside"}),
            model_name: Some("model\0name".to_owned()),
        }),
        ..fail_now(&claimed.fence, "provider said \0 boom", false)
    };
    assert!(store.fail_task(&failure, at(4)).await.unwrap());
    let failed = get(&store, job.job.id).await;
    assert_eq!(failed.job.status, JobStatus::Failed);
    let task = &failed.tasks[0];
    assert_eq!(
        task.error_message.as_deref(),
        Some("provider said \u{FFFD} boom")
    );
    assert_eq!(task.model_name.as_deref(), Some("model\u{FFFD}name"));
    assert_eq!(task.external_task_id.as_deref(), Some("ext\u{FFFD}id"));
    // JSON keeps the character itself (serialized as \u0000).
    assert_eq!(task.input_params, Some(json!({"prompt": "nul \0 inside"})));
    // A list filter with one is simply a filter that matches nothing.
    let filter = nosyntask_engine::ports::JobFilter {
        workflow_type: Some("story\0board".to_owned()),
        limit: 10,
        ..Default::default()
    };
    assert!(store.list_jobs(&filter).await.unwrap().is_empty());
}

pub async fn database_time_is_the_databases_clock(store: Shared) {
    // The test databases run on this machine, so their clock and this process's agree.
    let before = chrono::Utc::now();
    let database = store.database_time().await.unwrap();
    let after = chrono::Utc::now();
    assert!(
        database >= before - chrono::Duration::seconds(2)
            && database <= after + chrono::Duration::seconds(2),
        "database {database}, process {before}..{after}"
    );
}
