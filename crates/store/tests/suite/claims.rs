//! Claiming, fencing, completing, failing and handing back tasks.

use std::collections::HashSet;

use nosyntask_domain::{JobStatus, TaskStatus};
use nosyntask_engine::StoreError;
use nosyntask_engine::ports::{Failure, Fence, ProgressUpdate, StepStarted};
use serde_json::json;

use super::*;

pub async fn claims_in_ready_order_and_batches(store: Shared) {
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(create(&store, new_job(1, 1), at(i * 10)).await.tasks[0].id);
    }
    // Only tasks ready by `now` are claimed.
    let early = claim(&store, "w1", 10, at(15)).await;
    assert_eq!(
        early.iter().map(|c| c.task.id).collect::<Vec<_>>(),
        ids[..2]
    );
    let next = claim(&store, "w1", 2, at(100)).await;
    assert_eq!(
        next.iter().map(|c| c.task.id).collect::<Vec<_>>(),
        ids[2..4]
    );
    let last = claim(&store, "w2", 10, at(100)).await;
    assert_eq!(last.len(), 1);
    let claimed = &last[0];
    assert_eq!(claimed.task.id, ids[4]);
    assert_eq!(claimed.fence.owner, "w2");
    assert_eq!(claimed.fence.attempt, 1);
    assert_eq!(claimed.fence.task_id, claimed.task.id);
    assert_eq!(claimed.fence.job_id, claimed.job.id);
    assert_eq!(claimed.task.status, TaskStatus::Running);
    assert_eq!(claimed.task.attempts, 1);
    assert_eq!(claimed.task.started_at, Some(at(100)));
    assert_eq!(claimed.job.status, JobStatus::Running);
    assert_eq!(claimed.job.started_at, Some(at(100)));
    assert_eq!(
        claimed.job.input_params,
        json!({"scriptContent": "Once upon a time", "n": 3})
    );
    assert!(claimed.previous_results.is_empty());
    assert_eq!(claimed.checkpoint, None);
    assert!(claim(&store, "w1", 10, at(1000)).await.is_empty());

    let job = get(&store, claimed.job.id).await;
    assert_eq!(job.job.status, JobStatus::Running);
    assert_eq!(job.job.started_at, Some(at(100)));
    assert_eq!(job.tasks[0].status, TaskStatus::Running);
    assert_eq!(job.tasks[0].attempts, 1);
}

pub async fn later_steps_wait_for_earlier_ones(store: Shared) {
    let job = create(&store, new_job(1, 3), at(0)).await;
    let first = claim_one(&store, "w", at(1)).await;
    assert_eq!(first.task.step_index, 0);
    assert!(claim(&store, "w", 10, at(1_000_000)).await.is_empty());
    complete(&store, &first, json!({"scenes": [1, 2]}), at(2)).await;
    // The next step is ready from the completion on.
    assert!(claim(&store, "w", 10, at(1)).await.is_empty());

    let second = claim_one(&store, "w", at(3)).await;
    assert_eq!(second.task.job_id, job.job.id);
    assert_eq!(second.task.step_index, 1);
    assert_eq!(second.previous_results.len(), 1);
    assert_eq!(second.previous_results[&0], json!({"scenes": [1, 2]}));
    assert_eq!(second.job.current_step_index, 1);
    assert!(claim(&store, "w", 10, at(1_000_000)).await.is_empty());
    complete(&store, &second, json!("two"), at(4)).await;

    let third = claim_one(&store, "w", at(5)).await;
    assert_eq!(third.task.step_index, 2);
    assert_eq!(
        third.previous_results.keys().copied().collect::<Vec<_>>(),
        vec![0, 1]
    );
    assert_eq!(third.previous_results[&1], json!("two"));
}

pub async fn concurrent_claimers_take_each_task_once(store: Shared) {
    let total = 500;
    let mut jobs = Vec::new();
    for _ in 0..total / 50 {
        let store = store.clone();
        jobs.push(tokio::spawn(async move {
            for _ in 0..50 {
                store.create_job(new_job(1, 1), at(0)).await.unwrap();
            }
        }));
    }
    for job in jobs {
        job.await.unwrap();
    }
    let mut claimers = Vec::new();
    for w in 0..8 {
        let store = store.clone();
        claimers.push(tokio::spawn(async move {
            let owner = format!("w{w}");
            let mut mine = Vec::new();
            loop {
                let batch = claim(&store, &owner, 16, at(1)).await;
                if batch.is_empty() {
                    return mine;
                }
                for task in &batch {
                    assert_eq!(task.fence.owner, owner);
                    assert_eq!(task.fence.attempt, 1);
                }
                let done: Vec<_> = batch.iter().map(|c| completion(c, json!(null))).collect();
                let held = store.complete_tasks(&done, at(2)).await.unwrap();
                assert!(held.iter().all(|h| *h));
                mine.extend(batch.into_iter().map(|c| c.task.id));
            }
        }));
    }
    let mut seen = HashSet::new();
    let mut count = 0;
    for claimer in claimers {
        for id in claimer.await.unwrap() {
            count += 1;
            assert!(seen.insert(id), "task {id} claimed twice");
        }
    }
    assert_eq!(count, total);
    assert_eq!(completed_jobs(&store).await, total);
}

pub async fn stale_fences_change_nothing(store: Shared) {
    let job = create(&store, new_job(1, 2), at(0)).await;
    let first = claim_one(&store, "w1", at(1)).await;
    // The lease runs out and another worker takes the task over.
    assert_eq!(
        store
            .requeue_expired(at(1) + chrono::Duration::seconds(31))
            .await
            .unwrap(),
        1
    );
    let second = claim_one(&store, "w2", at(40_000)).await;
    assert_eq!(second.fence.attempt, 2);

    let stale_owner = Fence {
        owner: "w1".to_owned(),
        ..second.fence.clone()
    };
    for stale in [first.fence.clone(), stale_owner] {
        let claimed = ClaimedTask {
            fence: stale.clone(),
            ..second.clone()
        };
        let held = store
            .complete_tasks(&[completion(&claimed, json!("stale"))], at(41_000))
            .await
            .unwrap();
        assert_eq!(held, vec![false]);
        store
            .write_progress(
                &[ProgressUpdate {
                    fence: stale.clone(),
                    progress: 90,
                    job_progress: 45,
                    started: None,
                }],
                at(41_000),
            )
            .await
            .unwrap();
        let err = store
            .save_checkpoint(&stale, &json!({"x": 1}), Some("ext"), at(41_000))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        let failed = store
            .fail_task(
                &Failure {
                    fence: stale.clone(),
                    message: "stale".into(),
                    retry_at: None,
                    started: None,
                    job_progress: 0,
                },
                at(41_000),
            )
            .await
            .unwrap();
        assert!(!failed);
        store
            .release_tasks(std::slice::from_ref(&stale), at(41_000))
            .await
            .unwrap();
        assert_eq!(
            store
                .renew_leases(std::slice::from_ref(&stale), LEASE, at(41_000))
                .await
                .unwrap(),
            vec![stale.task_id]
        );
    }
    let now = get(&store, job.job.id).await;
    assert_eq!(now.job.status, JobStatus::Running);
    assert_eq!(now.job.progress, 0);
    let task = &now.tasks[0];
    assert_eq!(task.status, TaskStatus::Running);
    assert_eq!(task.attempts, 2);
    assert_eq!(task.progress, 0);
    assert_eq!(task.result_data, None);
    assert_eq!(task.external_task_id, None);
    // The current claim still works.
    complete(&store, &second, json!("fresh"), at(42_000)).await;
    assert_eq!(
        get(&store, job.job.id).await.tasks[0].result_data,
        Some(json!("fresh"))
    );
}

pub async fn completion_advances_then_completes_the_job(store: Shared) {
    let mut new = new_job(1, 2);
    new.unique_key = Some("character-9".into());
    let job = create(&store, new, at(0)).await;
    let first = claim_one(&store, "w", at(1)).await;
    let started = StepStarted {
        input_params: json!({"prompt": "p"}),
        model_name: Some("m1".into()),
    };
    let mut done = completion(&first, json!({"a": 1}));
    done.started = Some(started.clone());
    assert_eq!(
        store.complete_tasks(&[done], at(2)).await.unwrap(),
        vec![true]
    );

    let mid = get(&store, job.job.id).await;
    assert_eq!(mid.job.status, JobStatus::Running);
    assert_eq!(mid.job.current_step_index, 1);
    assert_eq!(mid.job.progress, 50);
    assert_eq!(mid.job.updated_at, at(2));
    assert_eq!(mid.job.completed_at, None);
    let t0 = &mid.tasks[0];
    assert_eq!(t0.status, TaskStatus::Completed);
    assert_eq!(t0.progress, 100);
    assert_eq!(t0.result_data, Some(json!({"a": 1})));
    assert_eq!(t0.input_params, Some(json!({"prompt": "p"})));
    assert_eq!(t0.model_name.as_deref(), Some("m1"));
    assert_eq!(t0.completed_at, Some(at(2)));
    assert_eq!(mid.tasks[1].status, TaskStatus::Pending);

    let second = claim_one(&store, "w", at(3)).await;
    // A second completion of the same claim is refused.
    complete(&store, &second, json!({"b": 2}), at(4)).await;
    assert_eq!(
        store
            .complete_tasks(&[completion(&second, json!("again"))], at(5))
            .await
            .unwrap(),
        vec![false]
    );
    let end = get(&store, job.job.id).await;
    assert_eq!(end.job.status, JobStatus::Completed);
    assert_eq!(end.job.progress, 100);
    assert_eq!(end.job.current_step_index, 1);
    assert_eq!(end.job.completed_at, Some(at(4)));
    assert_eq!(end.tasks[1].result_data, Some(json!({"b": 2})));
    assert_eq!(end.tasks[1].status, TaskStatus::Completed);

    // The uniqueness key is free again.
    let mut again = new_job(1, 2);
    again.unique_key = Some("character-9".into());
    let outcome = store.create_job(again, at(6)).await.unwrap();
    assert!(!outcome.deduplicated);
    assert_ne!(outcome.job.job.id, job.job.id);
}

pub async fn progress_is_written_for_held_claims(store: Shared) {
    let a = create(&store, new_job(1, 2), at(0)).await;
    let b = create(&store, new_job(2, 1), at(0)).await;
    let claimed = claim(&store, "w", 2, at(1)).await;
    let started = StepStarted {
        input_params: json!({"prompt": "x"}),
        model_name: Some("gpt".into()),
    };
    let updates: Vec<_> = claimed
        .iter()
        .map(|c| ProgressUpdate {
            fence: c.fence.clone(),
            progress: 40,
            job_progress: if c.job.id == a.job.id { 20 } else { 40 },
            started: (c.job.id == a.job.id).then(|| started.clone()),
        })
        .collect();
    store.write_progress(&updates, at(2)).await.unwrap();
    let a_now = get(&store, a.job.id).await;
    assert_eq!(a_now.job.progress, 20);
    assert_eq!(a_now.job.updated_at, at(2));
    assert_eq!(a_now.tasks[0].progress, 40);
    assert_eq!(a_now.tasks[0].input_params, Some(json!({"prompt": "x"})));
    assert_eq!(a_now.tasks[0].model_name.as_deref(), Some("gpt"));
    let b_now = get(&store, b.job.id).await;
    assert_eq!(b_now.job.progress, 40);
    assert_eq!(b_now.tasks[0].progress, 40);
    assert_eq!(b_now.tasks[0].input_params, None);
    store.write_progress(&[], at(3)).await.unwrap();
}

pub async fn checkpoint_survives_a_lost_lease(store: Shared) {
    let job = create(&store, new_job(1, 1), at(0)).await;
    let first = claim_one(&store, "w1", at(1)).await;
    store
        .save_checkpoint(
            &first.fence,
            &json!({"providerTask": "abc"}),
            Some("abc"),
            at(2),
        )
        .await
        .unwrap();
    store
        .save_checkpoint(
            &first.fence,
            &json!({"providerTask": "abc", "polls": 2}),
            None,
            at(3),
        )
        .await
        .unwrap();
    assert_eq!(
        get(&store, job.job.id).await.tasks[0]
            .external_task_id
            .as_deref(),
        Some("abc")
    );
    assert_eq!(store.requeue_expired(at(60_000)).await.unwrap(), 1);
    let again = claim_one(&store, "w2", at(60_001)).await;
    assert_eq!(
        again.checkpoint,
        Some(json!({"providerTask": "abc", "polls": 2}))
    );
    assert_eq!(again.fence.attempt, 2);
}

pub async fn retryable_failure_waits_for_retry_at(store: Shared) {
    let job = create(&store, new_job(1, 1), at(0)).await;
    let first = claim_one(&store, "w", at(1)).await;
    store
        .write_progress(
            &[ProgressUpdate {
                fence: first.fence.clone(),
                progress: 60,
                job_progress: 60,
                started: None,
            }],
            at(1),
        )
        .await
        .unwrap();
    let held = store
        .fail_task(
            &Failure {
                fence: first.fence.clone(),
                message: "HTTP 503".into(),
                retry_at: Some(at(5_000)),
                started: Some(StepStarted {
                    input_params: json!({"i": 1}),
                    model_name: None,
                }),
                job_progress: 0,
            },
            at(2),
        )
        .await
        .unwrap();
    assert!(held);
    let waiting = get(&store, job.job.id).await;
    assert_eq!(waiting.tasks[0].status, TaskStatus::Pending);
    assert_eq!(waiting.tasks[0].error_message.as_deref(), Some("HTTP 503"));
    assert_eq!(waiting.tasks[0].attempts, 1);
    assert_eq!(waiting.tasks[0].input_params, Some(json!({"i": 1})));
    assert_eq!(waiting.job.status, JobStatus::Running);
    // The next attempt starts over: step and job show 0 %, not the failed attempt's 60 %.
    assert_eq!((waiting.tasks[0].progress, waiting.job.progress), (0, 0));
    let stats = store.stats(at(3)).await.unwrap();
    assert_eq!((stats.ready, stats.scheduled, stats.running), (0, 1, 0));

    assert!(claim(&store, "w", 10, at(4_999)).await.is_empty());
    let second = claim_one(&store, "w", at(5_000)).await;
    assert_eq!(second.fence.attempt, 2);
    complete(&store, &second, json!("ok"), at(5_001)).await;
    assert_eq!(
        get(&store, job.job.id).await.job.status,
        JobStatus::Completed
    );
}

pub async fn permanent_failure_fails_the_job(store: Shared) {
    let mut new = new_job(1, 3);
    new.unique_key = Some("k".into());
    let job = create(&store, new, at(0)).await;
    let first = claim_one(&store, "w", at(1)).await;
    complete(&store, &first, json!("one"), at(2)).await;
    let second = claim_one(&store, "w", at(3)).await;
    let held = store
        .fail_task(
            &Failure {
                fence: second.fence.clone(),
                message: "bad params".into(),
                retry_at: None,
                started: None,
                job_progress: 0,
            },
            at(4),
        )
        .await
        .unwrap();
    assert!(held);
    let failed = get(&store, job.job.id).await;
    assert_eq!(failed.job.status, JobStatus::Failed);
    assert_eq!(failed.job.error_message.as_deref(), Some("bad params"));
    assert_eq!(failed.job.completed_at, Some(at(4)));
    assert_eq!(failed.tasks[0].status, TaskStatus::Completed);
    assert_eq!(failed.tasks[1].status, TaskStatus::Failed);
    assert_eq!(failed.tasks[1].error_message.as_deref(), Some("bad params"));
    assert_eq!(failed.tasks[1].completed_at, Some(at(4)));
    assert_eq!(failed.tasks[2].status, TaskStatus::Pending);
    assert!(claim(&store, "w", 10, at(1_000_000)).await.is_empty());
    // The uniqueness key is free once the job failed.
    let mut again = new_job(1, 1);
    again.unique_key = Some("k".into());
    assert!(!store.create_job(again, at(5)).await.unwrap().deduplicated);
}

pub async fn release_hands_back_without_an_attempt(store: Shared) {
    let job = create(&store, new_job(1, 1), at(0)).await;
    let first = claim_one(&store, "w", at(1)).await;
    store
        .release_tasks(std::slice::from_ref(&first.fence), at(2))
        .await
        .unwrap();
    let released = get(&store, job.job.id).await;
    assert_eq!(released.tasks[0].status, TaskStatus::Pending);
    assert_eq!(released.tasks[0].attempts, 0);
    let again = claim_one(&store, "w2", at(2)).await;
    assert_eq!(again.fence.attempt, 1);
    assert!(store.cancelled_claims("w").await.unwrap().is_empty());
}

pub async fn renew_reports_lost_leases(store: Shared) {
    create(&store, new_job(1, 1), at(0)).await;
    let cancelled = create(&store, new_job(1, 1), at(0)).await;
    create(&store, new_job(1, 1), at(0)).await;
    let claimed = claim(&store, "w", 3, at(1)).await;
    let fences: Vec<Fence> = claimed.iter().map(|c| c.fence.clone()).collect();
    store.cancel_job(cancelled.job.id, at(2)).await.unwrap();
    // A lease renewed at 20 s lasts until 50 s.
    let lost = store
        .renew_leases(&fences, LEASE, at(20_000))
        .await
        .unwrap();
    assert_eq!(lost, vec![cancelled.tasks[0].id]);
    assert_eq!(store.requeue_expired(at(40_000)).await.unwrap(), 0);
    // A renewal that comes too late: another worker has one task; the other was swept back
    // to pending but nobody claimed it, so its live runner takes it back.
    assert_eq!(store.requeue_expired(at(50_001)).await.unwrap(), 2);
    let taken = claim_one(&store, "w2", at(50_002)).await;
    let lost = store
        .renew_leases(&fences, LEASE, at(50_003))
        .await
        .unwrap();
    assert_eq!(lost.len(), 2);
    assert!(lost.contains(&taken.task.id));
    assert!(lost.contains(&cancelled.tasks[0].id));
    let kept = claimed.iter().find(|c| !lost.contains(&c.task.id)).unwrap();
    let kept_now = get(&store, kept.job.id).await;
    assert_eq!(kept_now.tasks[0].status, TaskStatus::Running);
    assert_eq!(kept_now.tasks[0].attempts, 1);
    assert!(claim(&store, "w3", 10, at(50_004)).await.is_empty());
    assert!(
        store
            .renew_leases(&[], LEASE, at(50_003))
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn expired_leases_are_requeued(store: Shared) {
    let job = create(&store, new_job(1, 1), at(0)).await;
    store
        .claim_tasks("w", 1, std::time::Duration::from_secs(10), at(1))
        .await
        .unwrap();
    assert_eq!(store.requeue_expired(at(5_000)).await.unwrap(), 0);
    assert_eq!(store.requeue_expired(at(10_002)).await.unwrap(), 1);
    let requeued = get(&store, job.job.id).await;
    assert_eq!(requeued.tasks[0].status, TaskStatus::Pending);
    assert_eq!(requeued.tasks[0].attempts, 1);
    let again = claim_one(&store, "w2", at(10_003)).await;
    assert_eq!(again.fence.attempt, 2);
    assert_eq!(store.requeue_expired(at(10_004)).await.unwrap(), 0);
}

pub async fn batch_completion_reports_each_fence(store: Shared) {
    let two_step = create(&store, new_job(1, 2), at(0)).await;
    let one_step = create(&store, new_job(1, 1), at(0)).await;
    let lost = create(&store, new_job(1, 1), at(0)).await;
    let claimed = claim(&store, "w", 3, at(1)).await;
    let by_job = |id: i64| claimed.iter().find(|c| c.job.id == id).unwrap();
    store.cancel_job(lost.job.id, at(2)).await.unwrap();
    let batch = vec![
        completion(by_job(one_step.job.id), json!("one")),
        completion(by_job(lost.job.id), json!("lost")),
        completion(by_job(two_step.job.id), json!("first of two")),
    ];
    let held = store.complete_tasks(&batch, at(3)).await.unwrap();
    assert_eq!(held, vec![true, false, true]);
    assert_eq!(
        get(&store, one_step.job.id).await.job.status,
        JobStatus::Completed
    );
    assert_eq!(
        get(&store, lost.job.id).await.job.status,
        JobStatus::Cancelled
    );
    let advanced = get(&store, two_step.job.id).await;
    assert_eq!(advanced.job.status, JobStatus::Running);
    assert_eq!(advanced.job.current_step_index, 1);
    let next = claim_one(&store, "w", at(4)).await;
    assert_eq!((next.job.id, next.task.step_index), (two_step.job.id, 1));
    assert!(store.complete_tasks(&[], at(5)).await.unwrap().is_empty());
}

pub async fn concurrent_workers_run_each_step_once_in_order(store: Shared) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (jobs, steps) = (60, 3);
    for _ in 0..jobs {
        create(&store, new_job(1, steps), at(0)).await;
    }
    let done = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let (store, done) = (store.clone(), done.clone());
            tokio::spawn(async move {
                let owner = format!("w{w}");
                let mut ran = Vec::new();
                while done.load(Ordering::SeqCst) < jobs * steps {
                    let batch = claim(&store, &owner, 8, at(2)).await;
                    if batch.is_empty() {
                        tokio::task::yield_now().await;
                        continue;
                    }
                    let mut completions = Vec::new();
                    for c in &batch {
                        let step = c.task.step_index;
                        let expected: std::collections::BTreeMap<i32, Value> = (0..step)
                            .map(|s| (s, json!(format!("{}-{s}", c.job.id))))
                            .collect();
                        assert_eq!(c.previous_results, expected, "steps run in order");
                        ran.push((c.job.id, step));
                        completions.push(completion(c, json!(format!("{}-{step}", c.job.id))));
                    }
                    let held = store.complete_tasks(&completions, at(2)).await.unwrap();
                    assert!(held.iter().all(|h| *h));
                    done.fetch_add(held.len(), Ordering::SeqCst);
                }
                ran
            })
        })
        .collect();
    let mut seen = HashSet::new();
    for worker in workers {
        for step in worker.await.unwrap() {
            assert!(seen.insert(step), "{step:?} ran twice");
        }
    }
    assert_eq!(seen.len(), jobs * steps);
    let stats = store.stats(at(3)).await.unwrap();
    assert_eq!(completed_jobs(&store).await, jobs);
    assert_eq!((stats.ready, stats.running), (0, 0));
}

/// A task's lease as stored (epoch milliseconds), read outside any transaction of the test.
async fn lease_of(store: &nosyntask_store::Store, task: i64) -> i64 {
    use sea_orm::ConnectionTrait;
    let conn = store.connection();
    let row = conn
        .query_one_raw(sea_orm::Statement::from_sql_and_values(
            conn.get_database_backend(),
            match conn.get_database_backend() {
                sea_orm::DbBackend::Postgres => {
                    "SELECT lease_expires_at FROM generation_tasks WHERE id = $1"
                }
                _ => "SELECT lease_expires_at FROM generation_tasks WHERE id = ?",
            },
            [task.into()],
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index(0).unwrap()
}

/// PostgreSQL and MySQL: a renewal does not wait, with the rest of its chunk locked, for a row
/// another transaction holds (a checkpoint or a progress flush of the same task). The free rows
/// are renewed and committed at once; the locked one is renewed when its lock goes.
pub async fn a_renewal_does_not_hold_its_chunk_for_a_locked_row(store: nosyntask_store::Store) {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let shared: Shared = Arc::new(store.clone());
    create(&shared, new_job(1, 1), at(0)).await;
    create(&shared, new_job(1, 1), at(0)).await;
    let claimed = claim(&shared, "w", 2, at(1)).await;
    let (free, locked) = (&claimed[0], &claimed[1]);
    let claimed_lease = lease_of(&store, free.task.id).await;

    let locker = store.connection().begin().await.unwrap();
    let backend = locker.get_database_backend();
    locker
        .execute_raw(sea_orm::Statement::from_string(
            backend,
            format!(
                "UPDATE generation_tasks SET progress = progress WHERE id = {}",
                locked.task.id
            ),
        ))
        .await
        .unwrap();
    let fences: Vec<Fence> = claimed.iter().map(|c| c.fence.clone()).collect();
    let renewing = tokio::spawn({
        let shared = shared.clone();
        async move { shared.renew_leases(&fences, LEASE, at(20_000)).await }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while lease_of(&store, free.task.id).await == claimed_lease {
        assert!(
            std::time::Instant::now() < deadline,
            "the free row's renewal waited for the locked row"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!renewing.is_finished(), "the locked row waits for its lock");
    assert_eq!(lease_of(&store, locked.task.id).await, claimed_lease);
    locker.commit().await.unwrap();
    let lost = renewing.await.unwrap().unwrap();
    assert!(lost.is_empty(), "{lost:?}");
    assert_eq!(
        lease_of(&store, locked.task.id).await,
        lease_of(&store, free.task.id).await
    );
}
