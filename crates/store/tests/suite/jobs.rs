//! Starting, reading, listing, consuming and pruning jobs; statistics; waking workers.

use std::time::Duration;

use nosyntask_domain::{JobStatus, TaskStatus};
use nosyntask_engine::StoreError;
use nosyntask_engine::ports::JobFilter;
use serde_json::json;

use super::*;

pub async fn create_and_get(store: Shared) {
    let outcome = store.create_job(new_job(5, 3), at(1_000)).await.unwrap();
    assert!(!outcome.deduplicated);
    let created = outcome.job;
    let job = &created.job;
    assert!(job.id > 0);
    assert_eq!((job.user_id, job.project_id), (5, 7));
    assert_eq!(job.workflow_type, "storyboard_generation");
    assert_eq!(job.status, JobStatus::Pending);
    assert_eq!(
        (job.current_step_index, job.total_steps, job.progress),
        (0, 3, 0)
    );
    assert_eq!(
        job.input_params,
        json!({"scriptContent": "Once upon a time", "n": 3})
    );
    assert_eq!(job.error_message, None);
    assert!(!job.is_consumed);
    assert_eq!((job.created_at, job.updated_at), (at(1_000), at(1_000)));
    assert_eq!((job.started_at, job.completed_at), (None, None));
    assert_eq!(created.tasks.len(), 3);
    for (i, task) in created.tasks.iter().enumerate() {
        assert_eq!(task.job_id, job.id);
        assert_eq!(task.step_index, i as i32);
        assert_eq!(task.task_type, format!("step_{i}"));
        assert_eq!(task.target_type, "script");
        assert_eq!(task.status, TaskStatus::Pending);
        assert_eq!((task.attempts, task.max_attempts, task.progress), (0, 3, 0));
    }
    assert_eq!(created.tasks[0].target_id, Some(42));
    assert_eq!(created.tasks[1].target_id, None);

    let read = get(&store, job.id).await;
    assert_eq!(read, created);
    assert_eq!(store.get_job(job.id + 1000).await.unwrap(), None);
    let second = create(&store, new_job(5, 1), at(2_000)).await;
    assert!(second.job.id > job.id);
    assert!(second.tasks[0].id > created.tasks[2].id);
    store.ping().await.unwrap();
    assert!(["sqlite", "postgres", "mysql"].contains(&store.backend_name()));
}

/// Reading many jobs at once answers what reading each does: tasks in order, history per job,
/// missing ids left out, duplicates once, whatever the number (more than one statement's worth).
pub async fn many_jobs_read_as_each_does(store: Shared) {
    let mut ids = Vec::new();
    for i in 0..300 {
        ids.push(
            create(&store, new_job(1 + i % 3, 1 + i as usize % 3), at(0))
                .await
                .job
                .id,
        );
    }
    // A job with a finished attempt in its history, and one in the middle of its steps.
    let failed = claim_one(&store, "w1", at(10)).await;
    let failure = nosyntask_engine::ports::Failure {
        fence: failed.fence.clone(),
        message: "provider said 503".to_owned(),
        retry_at: Some(at(20)),
        started: None,
        job_progress: 0,
    };
    assert!(store.fail_task(&failure, at(15)).await.unwrap());
    let first_step = claim(&store, "w1", 300, at(30)).await;
    let two_steps = first_step
        .iter()
        .find(|c| c.job.total_steps > 1)
        .expect("a job of several steps");
    complete(&store, two_steps, json!({"ok": 1}), at(40)).await;

    let missing = ids.iter().max().unwrap() + 1_000;
    let mut asked: Vec<i64> = ids.iter().rev().copied().collect();
    asked.extend([missing, ids[5], ids[5]]);
    let many = store.get_jobs(&asked).await.unwrap();
    assert_eq!(many.len(), ids.len(), "each job that exists, once");
    for (read, id) in many.iter().zip(&ids) {
        assert_eq!(read.job.id, *id, "in order of id");
        assert_eq!(read, &get(&store, *id).await);
    }
    let with_history = many.iter().find(|j| j.job.id == failed.job.id).unwrap();
    assert_eq!(with_history.history.len(), 1);
    let advanced = many.iter().find(|j| j.job.id == two_steps.job.id).unwrap();
    assert_eq!(advanced.job.current_step_index, 1);
    assert_eq!(advanced.tasks.len(), advanced.job.total_steps as usize);
    assert!(store.get_jobs(&[]).await.unwrap().is_empty());
    assert!(store.get_jobs(&[missing]).await.unwrap().is_empty());
}

fn keyed(user: i64, key: &str) -> NewJob {
    let mut job = new_job(user, 1);
    job.idempotency_key = Some(key.to_owned());
    job.idempotency_window = Duration::from_secs(60);
    job
}

pub async fn idempotency_key_returns_the_same_job(store: Shared) {
    let first = store.create_job(keyed(1, "req-1"), at(0)).await.unwrap();
    assert!(!first.deduplicated);
    let again = store
        .create_job(keyed(1, "req-1"), at(30_000))
        .await
        .unwrap();
    assert!(again.deduplicated);
    assert_eq!(again.job, first.job);
    // Another user's key is another key.
    let other = store
        .create_job(keyed(2, "req-1"), at(30_000))
        .await
        .unwrap();
    assert!(!other.deduplicated);
    // Even when the first job is over, within the window.
    store
        .cancel_job(first.job.job.id, at(31_000))
        .await
        .unwrap();
    let still = store
        .create_job(keyed(1, "req-1"), at(59_000))
        .await
        .unwrap();
    assert!(still.deduplicated);
    assert_eq!(still.job.job.id, first.job.job.id);
    // After the window the key starts a new job.
    let later = store
        .create_job(keyed(1, "req-1"), at(61_000))
        .await
        .unwrap();
    assert!(!later.deduplicated);
    assert_ne!(later.job.job.id, first.job.job.id);
    let again = store
        .create_job(keyed(1, "req-1"), at(62_000))
        .await
        .unwrap();
    assert!(again.deduplicated);
    assert_eq!(again.job.job.id, later.job.job.id);
}

pub async fn concurrent_identical_starts_make_one_job(store: Shared) {
    let starts: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut job = keyed(1, "double-click");
                job.max_active_per_user = Some(100);
                store.create_job(job, at(0)).await.unwrap()
            })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    let mut fresh = 0;
    for start in starts {
        let outcome = start.await.unwrap();
        ids.insert(outcome.job.job.id);
        fresh += usize::from(!outcome.deduplicated);
        assert_eq!(outcome.job.tasks.len(), 1);
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(fresh, 1);
    // Without the quota check too (no per-user lock).
    let starts: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.create_job(keyed(2, "k"), at(0)).await.unwrap() })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    for start in starts {
        ids.insert(start.await.unwrap().job.job.id);
    }
    assert_eq!(ids.len(), 1);
}

pub async fn unique_key_holds_while_active(store: Shared) {
    let unique = |user: i64, workflow: &str, key: &str| {
        let mut job = new_job(user, 2);
        job.workflow_type = workflow.to_owned();
        job.unique_key = Some(key.to_owned());
        job
    };
    let first = store
        .create_job(unique(1, "views", "c1"), at(0))
        .await
        .unwrap();
    let same = store
        .create_job(unique(1, "views", "c1"), at(1))
        .await
        .unwrap();
    assert!(same.deduplicated);
    assert_eq!(same.job.job.id, first.job.job.id);
    // Running still counts as active.
    claim_one(&store, "w", at(2)).await;
    assert!(
        store
            .create_job(unique(1, "views", "c1"), at(3))
            .await
            .unwrap()
            .deduplicated
    );
    for other in [
        unique(1, "views", "c2"),
        unique(1, "scene", "c1"),
        unique(2, "views", "c1"),
    ] {
        assert!(!store.create_job(other, at(4)).await.unwrap().deduplicated);
    }
    store.cancel_job(first.job.job.id, at(5)).await.unwrap();
    let fresh = store
        .create_job(unique(1, "views", "c1"), at(6))
        .await
        .unwrap();
    assert!(!fresh.deduplicated);
    assert_ne!(fresh.job.job.id, first.job.job.id);
}

pub async fn quota_limits_active_jobs(store: Shared) {
    let limited = |user: i64| {
        let mut job = new_job(user, 1);
        job.max_active_per_user = Some(2);
        job
    };
    let a = create(&store, limited(1), at(0)).await;
    create(&store, limited(1), at(0)).await;
    let err = store.create_job(limited(1), at(0)).await.unwrap_err();
    assert_eq!(
        err,
        StoreError::QuotaExceeded {
            user_id: 1,
            active: 2,
            limit: 2
        }
    );
    // Other users have their own quota.
    create(&store, limited(2), at(0)).await;
    // Running jobs count; finished ones do not.
    let claimed = claim_one(&store, "w", at(1)).await;
    assert_eq!(claimed.job.id, a.job.id);
    assert!(store.create_job(limited(1), at(2)).await.is_err());
    complete(&store, &claimed, json!(null), at(3)).await;
    create(&store, limited(1), at(4)).await;
    assert!(matches!(
        store.create_job(limited(1), at(5)).await,
        Err(StoreError::QuotaExceeded { .. })
    ));
    // Concurrent starts never overshoot.
    let starts: Vec<_> = (0..10)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut job = new_job(3, 1);
                job.max_active_per_user = Some(4);
                store.create_job(job, at(6)).await
            })
        })
        .collect();
    let mut ok = 0;
    for start in starts {
        match start.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::QuotaExceeded { .. }) => {}
            Err(err) => panic!("{err:?}"),
        }
    }
    assert_eq!(ok, 4);
}

pub async fn consume_and_active_listing(store: Shared) {
    let pending = create(&store, new_job(1, 1), at(0)).await.job.id;
    let done = create(&store, new_job(1, 1), at(0)).await.job.id;
    let cancelled = create(&store, new_job(1, 1), at(0)).await.job.id;
    let claimed = claim(&store, "w", 2, at(1)).await;
    let done_claim = claimed.iter().find(|c| c.job.id == done).unwrap();
    complete(&store, done_claim, json!(1), at(2)).await;
    store.cancel_job(cancelled, at(2)).await.unwrap();
    let active = |filter: JobFilter| {
        let store = store.clone();
        async move {
            store
                .list_jobs(&filter)
                .await
                .unwrap()
                .into_iter()
                .map(|j| j.id)
                .collect::<Vec<_>>()
        }
    };
    let filter = JobFilter {
        user_id: Some(1),
        project_id: Some(7),
        active_only: true,
        limit: 50,
        ..Default::default()
    };
    assert_eq!(active(filter.clone()).await, vec![done, pending]);

    let consumed = store.consume_job(done, at(3)).await.unwrap();
    assert!(consumed.is_consumed);
    assert_eq!(consumed.updated_at, at(3));
    let again = store.consume_job(done, at(4)).await.unwrap();
    assert!(again.is_consumed);
    assert_eq!(again.updated_at, at(3));
    assert_eq!(active(filter.clone()).await, vec![pending]);
    // Consuming an active job is allowed and does not hide it.
    store.consume_job(pending, at(5)).await.unwrap();
    assert_eq!(active(filter).await, vec![pending]);
    assert_eq!(
        store.consume_job(999_999, at(5)).await.unwrap_err(),
        StoreError::NotFound(999_999)
    );
}

pub async fn list_filters_and_pages(store: Shared) {
    let mut ids = Vec::new();
    for i in 0..6_i64 {
        let mut job = new_job(1 + i % 2, 1);
        job.project_id = 10 + i % 3;
        job.workflow_type = if i < 3 { "a".into() } else { "b".into() };
        ids.push(create(&store, job, at(i)).await.job.id);
    }
    let list = |filter: JobFilter| {
        let store = store.clone();
        async move {
            store
                .list_jobs(&filter)
                .await
                .unwrap()
                .into_iter()
                .map(|j| j.id)
                .collect::<Vec<_>>()
        }
    };
    let all = JobFilter {
        limit: 100,
        ..Default::default()
    };
    assert_eq!(
        list(all.clone()).await,
        ids.iter().rev().copied().collect::<Vec<_>>()
    );
    assert_eq!(
        list(JobFilter {
            user_id: Some(1),
            ..all.clone()
        })
        .await,
        vec![ids[4], ids[2], ids[0]]
    );
    assert_eq!(
        list(JobFilter {
            project_id: Some(10),
            ..all.clone()
        })
        .await,
        vec![ids[3], ids[0]]
    );
    assert_eq!(
        list(JobFilter {
            workflow_type: Some("a".into()),
            ..all.clone()
        })
        .await,
        vec![ids[2], ids[1], ids[0]]
    );
    assert_eq!(
        list(JobFilter {
            limit: 2,
            ..all.clone()
        })
        .await,
        vec![ids[5], ids[4]]
    );
    assert_eq!(
        list(JobFilter {
            limit: 2,
            before: Some(ids[4]),
            ..all.clone()
        })
        .await,
        vec![ids[3], ids[2]]
    );
    store.cancel_job(ids[1], at(10)).await.unwrap();
    assert_eq!(
        list(JobFilter {
            statuses: vec![JobStatus::Cancelled],
            ..all.clone()
        })
        .await,
        vec![ids[1]]
    );
    assert_eq!(
        list(JobFilter {
            statuses: vec![JobStatus::Cancelled, JobStatus::Pending],
            user_id: Some(2),
            ..all.clone()
        })
        .await,
        vec![ids[5], ids[3], ids[1]]
    );
    assert!(
        list(JobFilter {
            statuses: vec![JobStatus::Failed],
            ..all.clone()
        })
        .await
        .is_empty()
    );
    // Counts by status ignore the status filter and the page, and keep the other filters.
    let counts = |filter: JobFilter| {
        let store = store.clone();
        async move { store.count_jobs(&filter).await.unwrap() }
    };
    assert_eq!(
        counts(JobFilter {
            statuses: vec![JobStatus::Failed],
            before: Some(ids[2]),
            limit: 1,
            ..all.clone()
        })
        .await,
        vec![(JobStatus::Cancelled, 1), (JobStatus::Pending, 5)]
    );
    assert_eq!(
        counts(JobFilter {
            user_id: Some(1),
            ..all.clone()
        })
        .await,
        vec![(JobStatus::Pending, 3)]
    );
    // A list without params reads them as null, the rest as stored.
    let light = store
        .list_jobs(&JobFilter {
            without_params: true,
            ..all.clone()
        })
        .await
        .unwrap();
    let full = store.list_jobs(&all).await.unwrap();
    assert_eq!(light.len(), full.len());
    assert!(light.iter().all(|j| j.input_params.is_null()));
    assert_ne!(full[0].input_params, serde_json::Value::Null);
    let restored: Vec<_> = light
        .into_iter()
        .zip(&full)
        .map(|(j, f)| nosyntask_domain::Job {
            input_params: f.input_params.clone(),
            ..j
        })
        .collect();
    assert_eq!(&restored, &full);
}

pub async fn list_finds_jobs_by_params_text(store: Shared) {
    let scripts = [
        "INT. LIGHTHOUSE - NIGHT\nThe keeper says \"Lamp on\".",
        "EXT. HARBOUR - DAWN\n100% of the boats_sail.",
        "少女在灯塔下等待。",
        "Nothing here",
    ];
    let mut ids = Vec::new();
    for (i, script) in scripts.iter().enumerate() {
        let mut job = new_job(1, 1);
        job.input_params = json!({"scriptContent": script, "n": i});
        ids.push(create(&store, job, at(i as i64)).await.job.id);
    }
    let mut other = new_job(2, 1);
    other.input_params = json!({"scriptContent": "lighthouse of user 2"});
    let other = create(&store, other, at(10)).await.job.id;
    let find = |text: &str, user: Option<i64>| {
        let store = store.clone();
        let filter = JobFilter {
            user_id: user,
            params_text: Some(text.to_owned()),
            limit: 100,
            ..Default::default()
        };
        async move {
            let listed: Vec<_> = store
                .list_jobs(&filter)
                .await
                .unwrap()
                .into_iter()
                .map(|j| j.id)
                .collect();
            let counted: u64 = store
                .count_jobs(&filter)
                .await
                .unwrap()
                .into_iter()
                .map(|(_, n)| n)
                .sum();
            assert_eq!(
                counted,
                listed.len() as u64,
                "count of {:?}",
                filter.params_text
            );
            listed
        }
    };
    // Any case (ASCII), only the viewer's jobs when a user is given, newest first.
    assert_eq!(find("lighthouse", Some(1)).await, vec![ids[0]]);
    assert_eq!(find("LIGHTHOUSE", None).await, vec![other, ids[0]]);
    // Quotes and line breaks as typed, not as JSON writes them.
    assert_eq!(find("says \"Lamp", Some(1)).await, vec![ids[0]]);
    assert_eq!(find("NIGHT\nThe", Some(1)).await, vec![ids[0]]);
    // LIKE's wildcards are plain characters.
    assert_eq!(find("100%", Some(1)).await, vec![ids[1]]);
    assert_eq!(find("boats_sail", Some(1)).await, vec![ids[1]]);
    assert!(find("boats%sail", Some(1)).await.is_empty());
    assert!(find("0_%", Some(1)).await.is_empty());
    assert_eq!(find("灯塔", Some(1)).await, vec![ids[2]]);
    // Keys are text of the params too.
    assert_eq!(find("scriptcontent", Some(1)).await.len(), 4);
    assert!(find("absent", Some(1)).await.is_empty());
}

pub async fn prune_deletes_old_terminal_jobs(store: Shared) {
    let day = 24 * 3600 * 1000;
    let mut finished = Vec::new();
    for _ in 0..2 {
        let job = create(&store, new_job(1, 2), at(0)).await.job.id;
        let first = claim_one(&store, "w", at(1)).await;
        complete(&store, &first, json!(1), at(2)).await;
        let second = claim_one(&store, "w", at(3)).await;
        complete(&store, &second, json!(2), at(4)).await;
        finished.push(job);
    }
    store.consume_job(finished[0], at(5)).await.unwrap();
    let active = create(&store, new_job(1, 1), at(0)).await.job.id;
    let cancelled = create(&store, new_job(1, 1), at(0)).await.job.id;
    store.cancel_job(cancelled, at(10 * day)).await.unwrap();

    // Cut-offs before everything: nothing goes.
    assert_eq!(store.prune(at(0), at(0)).await.unwrap(), 0);
    // Consumed jobs older than 7 days go, unconsumed ones are kept for 30.
    assert_eq!(
        store
            .prune(at(8 * day - 7 * day), at(8 * day - 30 * day))
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.get_job(finished[0]).await.unwrap(), None);
    assert!(store.get_job(finished[1]).await.unwrap().is_some());
    assert_eq!(
        store
            .prune(at(31 * day - 7 * day), at(31 * day - 30 * day))
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.get_job(finished[1]).await.unwrap(), None);
    assert_eq!(store.prune(at(100 * day), at(100 * day)).await.unwrap(), 1);
    assert_eq!(store.get_job(cancelled).await.unwrap(), None);
    assert!(store.get_job(active).await.unwrap().is_some());
    let stats = store.stats(at(100 * day)).await.unwrap();
    assert_eq!(stats.ready, 1);
    assert_eq!(stats.jobs_by_status.values().sum::<u64>(), 1);
    assert_eq!(stats.jobs_by_status.get("pending"), Some(&1));
}

/// Pruning deletes in batches of 500 jobs: more than one batch of old jobs all go in one call.
pub async fn prune_goes_on_past_a_full_batch(store: Shared) {
    let old = 501;
    for _ in 0..old {
        let job = create(&store, new_job(1, 1), at(0)).await.job.id;
        store.cancel_job(job, at(1)).await.unwrap();
    }
    let active = create(&store, new_job(1, 1), at(0)).await.job.id;
    assert_eq!(store.prune(at(2), at(2)).await.unwrap(), old);
    assert_eq!(store.prune(at(2), at(2)).await.unwrap(), 0);
    assert!(store.get_job(active).await.unwrap().is_some());
    let stats = store.stats(at(2)).await.unwrap();
    assert_eq!(stats.jobs_by_status.values().sum::<u64>(), 1);
}

pub async fn stats_count_tasks_and_jobs(store: Shared) {
    assert_eq!(store.stats(at(0)).await.unwrap(), Default::default());
    for _ in 0..4 {
        create(&store, new_job(1, 2), at(0)).await;
    }
    let claimed = claim(&store, "w", 2, at(1)).await;
    store
        .fail_task(
            &nosyntask_engine::ports::Failure {
                fence: claimed[0].fence.clone(),
                message: "later".into(),
                retry_at: Some(at(10_000)),
                started: None,
                job_progress: 0,
            },
            at(2),
        )
        .await
        .unwrap();
    let stats = store.stats(at(3)).await.unwrap();
    assert_eq!((stats.ready, stats.scheduled, stats.running), (2, 1, 1));
    assert_eq!(stats.jobs_by_status.get("pending"), Some(&2));
    assert_eq!(stats.jobs_by_status.get("running"), Some(&2));
    let later = store.stats(at(10_000)).await.unwrap();
    assert_eq!((later.ready, later.scheduled), (3, 0));
    // Finished jobs are not counted (that count would grow with the history kept).
    let done = claim(&store, "w", 1, at(10_001)).await.remove(0);
    store.cancel_job(done.job.id, at(10_002)).await.unwrap();
    let after = store.stats(at(10_003)).await.unwrap();
    assert_eq!(after.jobs_by_status.get("cancelled"), None);
    assert_eq!(after.jobs_by_status.values().sum::<u64>(), 3);
}

pub async fn wait_for_work_wakes_on_create(store: Shared) {
    // With nothing announced, the wait ends at max_wait. (Wake-ups from the store's start, such
    // as a notification listener subscribing, may be pending: drain them first.)
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let started = std::time::Instant::now();
        store.wait_for_work(Duration::from_millis(50)).await;
        if started.elapsed() >= Duration::from_millis(50) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "wait_for_work never waited"
        );
    }

    let waiter = {
        let store = store.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            store.wait_for_work(Duration::from_secs(30)).await;
            started.elapsed()
        })
    };
    // A notification before the waiter waits is kept as a permit, so there is no race here.
    create(&store, new_job(1, 1), at(0)).await;
    let waited = tokio::time::timeout(Duration::from_secs(10), waiter).await;
    assert!(waited.expect("wait_for_work woke").unwrap() < Duration::from_secs(10));
}

pub async fn job_versions_move_with_every_write(store: Shared) {
    let a = create(&store, new_job(1, 2), at(0)).await.job.id;
    let b = create(&store, new_job(1, 1), at(0)).await.job.id;
    let versions = |ids: Vec<i64>| {
        let store = store.clone();
        async move {
            let mut v = store.job_versions(&ids).await.unwrap();
            v.sort_by_key(|v| v.job_id);
            v
        }
    };
    let before = versions(vec![a, b, 999_999]).await;
    assert_eq!(before.len(), 2, "unknown ids are left out");
    assert_eq!(
        before[0],
        nosyntask_engine::ports::JobVersion::of(&get(&store, a).await)
    );
    // A claim of a later step changes only a task: the version still moves.
    let first = claim(&store, "w", 10, at(1)).await;
    let a_first = first.iter().find(|c| c.job.id == a).unwrap();
    complete(&store, a_first, json!({}), at(2)).await;
    let advanced = versions(vec![a]).await;
    assert_ne!(advanced[0], before[0]);
    let second = claim(&store, "w", 10, at(3)).await;
    assert!(second.iter().any(|c| c.job.id == a));
    let claimed = versions(vec![a]).await;
    assert_ne!(claimed[0], advanced[0]);
    assert_eq!(
        claimed[0],
        nosyntask_engine::ports::JobVersion::of(&get(&store, a).await)
    );
}
