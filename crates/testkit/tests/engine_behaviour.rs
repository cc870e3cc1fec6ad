//! The engine's promises (contract section 3), each shown by a test over a real store: SQLite
//! always, PostgreSQL and MariaDB when their test URLs are set.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use common::{Harness, for_each_backend};
use nosyntask_domain::{JobStatus, ParamsSchema, TaskError, TaskStatus, Viewer};
use nosyntask_engine::{
    EngineError, Registry, StepDefinition, StepHandler, StepRun, WorkflowDefinition,
};
use nosyntask_testkit::counting::Write;
use serde_json::{Value, json};
use tokio::sync::Mutex;

/// A handler driven by a closure over the attempt number, for scripted failures.
struct Scripted<F>(F);

#[async_trait]
impl<F, Fut> StepHandler for Scripted<F>
where
    F: Fn(StepRun) -> Fut + Send + Sync,
    Fut: std::future::Future<Output = Result<Value, TaskError>> + Send,
{
    async fn run(&self, run: StepRun) -> Result<Value, TaskError> {
        (self.0)(run).await
    }
}

fn one_step(workflow_type: &str, step: StepDefinition) -> Registry {
    let mut registry = Registry::new();
    registry.register(
        WorkflowDefinition::new(workflow_type, workflow_type, ParamsSchema::new()).step(step),
    );
    registry
}

fn scripted<F, Fut>(f: F) -> Arc<dyn StepHandler>
where
    F: Fn(StepRun) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Value, TaskError>> + Send + 'static,
{
    Arc::new(Scripted(f))
}

for_each_backend!(retryable_errors_are_retried_with_backoff_and_retry_after);
async fn retryable_errors_are_retried_with_backoff_and_retry_after(h: Harness) {
    let times = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let seen = times.clone();
    let step = StepDefinition::new(
        "flaky",
        "test",
        scripted(move |run: StepRun| {
            let seen = seen.clone();
            async move {
                seen.lock().await.push(Instant::now());
                match run.attempt {
                    1 => Err(TaskError::retry_after(
                        "429 from provider",
                        Duration::from_millis(400),
                    )),
                    2 => Err(TaskError::retryable("connection reset")),
                    _ => Ok(json!({"ok": run.attempt})),
                }
            }
        }),
    )
    .max_attempts(3);
    let engine = h.engine(one_step("flaky", step));
    let worker = h.worker(&engine);
    let job = h.start(&engine, "flaky", json!({})).await;
    let done = h.wait_terminal(&engine, job).await;
    worker.shutdown().await;

    assert_eq!(done.job.status, JobStatus::Completed);
    assert_eq!(done.tasks[0].attempts, 3);
    assert_eq!(done.tasks[0].result_data, Some(json!({"ok": 3})));
    let times = times.lock().await;
    assert_eq!(times.len(), 3);
    assert!(
        times[1] - times[0] >= Duration::from_millis(400),
        "Retry-After is honoured"
    );
    assert!(
        times[2] - times[1] >= Duration::from_millis(10),
        "backoff waits at least half the base"
    );
}

for_each_backend!(a_panicking_handler_fails_its_step_and_the_worker_goes_on);
async fn a_panicking_handler_fails_its_step_and_the_worker_goes_on(h: Harness) {
    let panicking = scripted(|run: StepRun| async move {
        if run.input.get("boom").is_some() {
            panic!("handler bug");
        }
        Ok(json!({"fine": true}))
    });
    let step = StepDefinition::new("fragile", "test", panicking).max_attempts(3);
    let engine = h.engine(one_step("fragile", step));
    let worker = h.worker(&engine);
    let bad = h.start(&engine, "fragile", json!({"boom": 1})).await;
    let good = h.start(&engine, "fragile", json!({})).await;
    let bad = h.wait_terminal(&engine, bad).await;
    let good = h.wait_terminal(&engine, good).await;
    worker.shutdown().await;
    // A panic is a bug, not a passing fault: no retry.
    assert_eq!(bad.job.status, JobStatus::Failed);
    assert_eq!(bad.tasks[0].attempts, 1);
    assert_eq!(
        bad.job.error_message.as_deref(),
        Some("the step handler panicked")
    );
    assert_eq!(good.job.status, JobStatus::Completed);
}

for_each_backend!(permanent_errors_fail_the_job_at_once);
async fn permanent_errors_fail_the_job_at_once(h: Harness) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let failing = scripted(move |_run: StepRun| {
        counter.fetch_add(1, Ordering::SeqCst);
        async { Err(TaskError::permanent("HTTP 401: invalid api key")) }
    });
    let never = scripted(|_run: StepRun| async { Ok(json!({})) });
    let mut registry = Registry::new();
    registry.register(
        WorkflowDefinition::new("two", "two", ParamsSchema::new())
            .step(StepDefinition::new("bad", "test", failing).max_attempts(5))
            .step(StepDefinition::new("after", "test", never)),
    );
    let engine = h.engine(registry);
    let worker = h.worker(&engine);
    let job = h.start(&engine, "two", json!({})).await;
    let done = h.wait_terminal(&engine, job).await;
    worker.shutdown().await;

    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(done.job.status, JobStatus::Failed);
    assert_eq!(
        done.job.error_message.as_deref(),
        Some("HTTP 401: invalid api key")
    );
    assert_eq!(done.tasks[0].status, TaskStatus::Failed);
    assert_eq!(done.tasks[0].attempts, 1);
    assert_eq!(
        done.tasks[1].status,
        TaskStatus::Pending,
        "later steps wait for a resume"
    );
}

for_each_backend!(retries_stop_at_max_attempts);
async fn retries_stop_at_max_attempts(h: Harness) {
    let step = StepDefinition::new(
        "down",
        "test",
        scripted(|_run: StepRun| async { Err(TaskError::retryable("HTTP 503 from provider")) }),
    )
    .max_attempts(3);
    let engine = h.engine(one_step("down", step));
    let worker = h.worker(&engine);
    let job = h.start(&engine, "down", json!({})).await;
    let done = h.wait_terminal(&engine, job).await;
    worker.shutdown().await;

    assert_eq!(done.job.status, JobStatus::Failed);
    assert_eq!(done.tasks[0].attempts, 3);
    let message = done.job.error_message.unwrap_or_default();
    assert!(
        message.contains("HTTP 503") && message.contains("gave up after 3 attempts"),
        "{message}"
    );
}

for_each_backend!(a_step_that_exceeds_its_timeout_fails_saying_so);
async fn a_step_that_exceeds_its_timeout_fails_saying_so(h: Harness) {
    let step = StepDefinition::new(
        "slow",
        "test",
        scripted(|_run: StepRun| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(json!({}))
        }),
    )
    .timeout(Duration::from_millis(200))
    .max_attempts(2);
    let engine = h.engine(one_step("slow", step));
    let worker = h.worker(&engine);
    let job = h.start(&engine, "slow", json!({})).await;
    let done = h.wait_terminal(&engine, job).await;
    worker.shutdown().await;

    assert_eq!(done.job.status, JobStatus::Failed);
    assert_eq!(done.tasks[0].attempts, 2, "a timeout is retryable");
    let message = done.job.error_message.unwrap_or_default();
    assert!(message.contains("timed out after 0.2 s"), "{message}");
}

for_each_backend!(cancelling_a_job_signals_its_running_handler_within_two_seconds);
async fn cancelling_a_job_signals_its_running_handler_within_two_seconds(h: Harness) {
    let signalled = Arc::new(Mutex::new(None::<Instant>));
    let started = Arc::new(AtomicUsize::new(0));
    let (s, st) = (signalled.clone(), started.clone());
    let waits = scripted(move |run: StepRun| {
        let (s, st) = (s.clone(), st.clone());
        async move {
            st.fetch_add(1, Ordering::SeqCst);
            run.cancel.cancelled().await;
            *s.lock().await = Some(Instant::now());
            Err(TaskError::Cancelled)
        }
    });
    let mut registry = Registry::new();
    registry.register(
        WorkflowDefinition::new("long", "long", ParamsSchema::new())
            .step(StepDefinition::new("wait", "test", waits))
            .step(StepDefinition::new(
                "next",
                "test",
                scripted(|_r: StepRun| async { Ok(json!({})) }),
            )),
    );
    let engine = h.engine(registry);
    let worker = h.worker(&engine);
    let job = h.start(&engine, "long", json!({})).await;
    h.wait_until(&engine, job, |j| j.tasks[0].status == TaskStatus::Running)
        .await;
    nosyntask_testkit::wait_for("the handler to start", Duration::from_secs(10), || {
        let st = started.clone();
        async move { (st.load(Ordering::SeqCst) > 0).then_some(()) }
    })
    .await;

    let cancelled_at = Instant::now();
    let view = engine.cancel(&Viewer::user(h.user), job).await.unwrap();
    assert_eq!(view.status, JobStatus::Cancelled);
    let fired =
        nosyntask_testkit::wait_for("the cancellation signal", Duration::from_secs(5), || {
            let s = signalled.clone();
            async move { *s.lock().await }
        })
        .await;
    assert!(
        fired - cancelled_at < Duration::from_secs(2),
        "signal took {:?}",
        fired - cancelled_at
    );
    worker.shutdown().await;

    let done = engine.get(&Viewer::user(h.user), job).await.unwrap();
    assert_eq!(done.job.status, JobStatus::Cancelled);
    assert!(
        done.tasks.iter().all(|t| t.status == TaskStatus::Cancelled),
        "{:?}",
        done.tasks
    );
    // Idempotent, and a completed job cannot be cancelled.
    assert_eq!(
        engine
            .cancel(&Viewer::user(h.user), job)
            .await
            .unwrap()
            .status,
        JobStatus::Cancelled
    );
}

for_each_backend!(resume_continues_a_failed_job_from_its_first_unfinished_step);
async fn resume_continues_a_failed_job_from_its_first_unfinished_step(h: Harness) {
    let calls = Arc::new(Mutex::new(Vec::<(i32, i32)>::new()));
    let fail_once = Arc::new(AtomicUsize::new(1));
    let make = |calls: Arc<Mutex<Vec<(i32, i32)>>>, fail_once: Arc<AtomicUsize>| {
        scripted(move |run: StepRun| {
            let (calls, fail_once) = (calls.clone(), fail_once.clone());
            async move {
                calls.lock().await.push((run.step_index, run.attempt));
                if run.step_index == 1 && fail_once.fetch_sub(1, Ordering::SeqCst) == 1 {
                    return Err(TaskError::permanent("model refused the prompt"));
                }
                Ok(json!({"step": run.step_index, "input": run.input}))
            }
        })
    };
    let mut workflow = WorkflowDefinition::new("three", "three", ParamsSchema::new());
    for _ in 0..3 {
        workflow = workflow.step(
            StepDefinition::new("s", "test", make(calls.clone(), fail_once.clone()))
                .input(|ctx| json!({"previous": ctx.previous_results.keys().collect::<Vec<_>>()})),
        );
    }
    let mut registry = Registry::new();
    registry.register(workflow);
    let engine = h.engine(registry);
    let worker = h.worker(&engine);
    let viewer = Viewer::user(h.user);
    let job = h.start(&engine, "three", json!({})).await;
    let failed = h.wait_terminal(&engine, job).await;
    assert_eq!(failed.job.status, JobStatus::Failed);
    let first_result = failed.tasks[0].result_data.clone();

    // Only failed or cancelled jobs resume.
    let resumed = engine.resume(&viewer, job).await.unwrap();
    assert_eq!(resumed.status, JobStatus::Pending);
    let done = h.wait_terminal(&engine, job).await;
    worker.shutdown().await;

    assert_eq!(
        done.job.status,
        JobStatus::Completed,
        "{:?}",
        done.job.error_message
    );
    assert_eq!(
        done.tasks[0].result_data, first_result,
        "finished steps keep their results"
    );
    assert_eq!(
        *calls.lock().await,
        vec![(0, 1), (1, 1), (1, 1), (2, 1)],
        "step 0 ran once; attempts reset"
    );
    assert_eq!(
        done.tasks[2].input_params,
        Some(json!({"previous": [0, 1]}))
    );
    assert!(matches!(
        engine.resume(&viewer, job).await,
        Err(EngineError::Conflict(_))
    ));
    assert!(matches!(
        engine.cancel(&viewer, job).await,
        Err(EngineError::Conflict(_))
    ));
}

for_each_backend!(progress_is_coalesced_to_one_write_per_task_per_interval);
async fn progress_is_coalesced_to_one_write_per_task_per_interval(h: Harness) {
    let step = StepDefinition::new(
        "chatty",
        "test",
        scripted(|run: StepRun| async move {
            // 2.5 s of reports about every millisecond.
            let began = Instant::now();
            while began.elapsed() < Duration::from_millis(2500) {
                run.progress
                    .report(began.elapsed().as_secs_f64() / 2.5 * 100.0);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Ok(json!({}))
        }),
    );
    let engine = h.engine(one_step("chatty", step));
    let worker = h.worker_with(&engine, |c| c.progress_interval = Duration::from_secs(1));
    let job = h.start(&engine, "chatty", json!({})).await;
    let mid = h
        .wait_until(&engine, job, |j| j.tasks[0].progress > 0)
        .await;
    assert!(mid.tasks[0].progress < 100, "{:?}", mid.tasks[0]);
    assert_eq!(
        mid.job.progress, mid.tasks[0].progress,
        "job progress follows its only step"
    );
    let done = h.wait_terminal(&engine, job).await;
    worker.shutdown().await;

    assert_eq!(done.tasks[0].progress, 100);
    assert_eq!(done.job.progress, 100);
    // The only running task: every progress write is one of its.
    let writes = h.counting.counters().calls_of(Write::Progress);
    assert!(
        (1..=4).contains(&writes),
        "{writes} progress writes for a 2.5 s step at 1 s interval"
    );
}

for_each_backend!(a_progress_flush_writes_at_most_its_limit_oldest_first);
async fn a_progress_flush_writes_at_most_its_limit_oldest_first(h: Harness) {
    let step = StepDefinition::new(
        "chatty",
        "test",
        scripted(|run: StepRun| async move {
            // Progress that moves every few milliseconds until every task has shown some.
            let began = Instant::now();
            while began.elapsed() < Duration::from_secs(4) {
                run.progress
                    .report(began.elapsed().as_secs_f64() / 4.0 * 100.0);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok(json!({}))
        }),
    );
    let engine = h.engine(one_step("chatty", step));
    let worker = h.worker_with(&engine, |c| {
        c.progress_interval = Duration::from_millis(100);
        c.progress_writes_per_flush = 2;
    });
    let mut jobs = Vec::new();
    for _ in 0..6 {
        jobs.push(h.start(&engine, "chatty", json!({})).await);
    }
    // Though each flush writes two of the six, every task's progress is written in turn.
    for &job in &jobs {
        let seen = h
            .wait_until(&engine, job, |j| j.tasks[0].progress > 0)
            .await;
        assert!(seen.tasks[0].progress < 100, "{:?}", seen.tasks[0]);
    }
    for &job in &jobs {
        h.wait_terminal(&engine, job).await;
    }
    worker.shutdown().await;
    // Each update writes the task and its job: at most four rows per flush.
    let [rows, calls] = h.counting.counters().snapshot()["progress"];
    assert!(calls > 0);
    assert!(
        rows <= 4 * calls,
        "{rows} rows in {calls} progress flushes of at most 2 tasks"
    );
}

for_each_backend!(a_heartbeat_renews_the_owner_lease_not_every_task);
async fn a_heartbeat_renews_the_owner_lease_not_every_task(h: Harness) {
    let step = StepDefinition::new(
        "slow",
        "test",
        scripted(|_run: StepRun| async move {
            // Several times the lease: the tasks' own leases (from the claim) run out.
            tokio::time::sleep(Duration::from_secs(4)).await;
            Ok(json!({}))
        }),
    );
    let engine = h.engine(one_step("slow", step));
    let worker = h.worker_with(&engine, |c| {
        c.concurrency = 12;
        c.lease_ttl = Duration::from_millis(1_500);
        c.heartbeat_interval = Duration::from_millis(250);
        c.sweep_interval = Duration::from_millis(100);
    });
    let mut jobs = Vec::new();
    for _ in 0..12 {
        jobs.push(h.start(&engine, "slow", json!({})).await);
    }
    for &job in &jobs {
        let done = h.wait_terminal(&engine, job).await;
        assert_eq!(done.job.status, JobStatus::Completed, "{:?}", done.tasks);
        // Never swept back and claimed again while its runner lived.
        assert_eq!(done.tasks[0].attempts, 1, "{:?}", done.tasks);
    }
    worker.shutdown().await;
    // The first heartbeat renews each task and takes the owner lease; later ones renew that
    // one row (renewing every task each time would be 12 rows per heartbeat, ~190 in 4 s).
    let counts = h.counting.counters().snapshot();
    let [task_rows, _] = counts["renew_lease"];
    let [owner_rows, owner_calls] = counts["owner_lease"];
    assert!(task_rows <= 2 * 12, "{task_rows} task leases renewed");
    assert!(
        owner_calls >= 8,
        "{owner_calls} owner lease renewals in 4 s"
    );
    assert_eq!(owner_rows, owner_calls);
}

for_each_backend!(concurrent_identical_starts_with_one_idempotency_key_make_one_job);
async fn concurrent_identical_starts_with_one_idempotency_key_make_one_job(h: Harness) {
    let engine = h.engine(nosyntask_testkit::workflows::counting_registry(
        nosyntask_testkit::workflows::Invocations::new(),
        Duration::ZERO,
    ));
    let mut starts = Vec::new();
    for _ in 0..20 {
        let engine = engine.clone();
        let user = h.user;
        starts.push(tokio::spawn(async move {
            engine
                .start(nosyntask_engine::StartRequest {
                    user_id: user,
                    project_id: 7,
                    workflow_type: "counting_3".into(),
                    params: json!({"label": "x"}),
                    idempotency_key: Some("click-42".into()),
                    priority: 0,
                })
                .await
                .unwrap()
        }));
    }
    let mut ids = Vec::new();
    let mut fresh = 0;
    for start in starts {
        let started = start.await.unwrap();
        ids.push(started.job.job.id);
        fresh += usize::from(!started.deduplicated);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one job for one key");
    assert_eq!(fresh, 1, "exactly one start was not deduplicated");
    let jobs = engine
        .list(&Viewer::user(h.user), Default::default())
        .await
        .unwrap();
    assert_eq!(jobs.len(), 1);
    // Another user's identical key is a different job.
    let other = engine
        .start(nosyntask_engine::StartRequest {
            user_id: h.user + 1,
            project_id: 7,
            workflow_type: "counting_3".into(),
            params: json!({}),
            idempotency_key: Some("click-42".into()),
            priority: 0,
        })
        .await
        .unwrap();
    assert!(!other.deduplicated);
}

for_each_backend!(a_uniqueness_key_returns_the_active_job);
async fn a_uniqueness_key_returns_the_active_job(h: Harness) {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let g = gate.clone();
    let step = StepDefinition::new(
        "views",
        "character",
        scripted(move |_run: StepRun| {
            let g = g.clone();
            async move {
                let _permit = g.acquire().await.map_err(|_| TaskError::Cancelled)?;
                Ok(json!({}))
            }
        }),
    );
    let mut registry = Registry::new();
    registry.register(
        WorkflowDefinition::new("views", "views", ParamsSchema::new())
            .step(step)
            .unique_by_param("characterId"),
    );
    let engine = h.engine(registry);
    let worker = h.worker(&engine);
    let first = h
        .start_full(&engine, "views", json!({"characterId": 5}))
        .await;
    let again = h
        .start_full(&engine, "views", json!({"characterId": 5}))
        .await;
    let other = h
        .start_full(&engine, "views", json!({"characterId": 6}))
        .await;
    assert!(!first.deduplicated && again.deduplicated && !other.deduplicated);
    assert_eq!(first.job.job.id, again.job.job.id);
    assert_ne!(first.job.job.id, other.job.job.id);

    gate.add_permits(2);
    h.wait_terminal(&engine, first.job.job.id).await;
    let after = h
        .start_full(&engine, "views", json!({"characterId": 5}))
        .await;
    assert!(!after.deduplicated, "a finished job frees its key");
    gate.add_permits(1);
    h.wait_terminal(&engine, after.job.job.id).await;
    worker.shutdown().await;
}

for_each_backend!(a_user_over_the_active_job_quota_is_refused);
async fn a_user_over_the_active_job_quota_is_refused(h: Harness) {
    let engine = h
        .engine(nosyntask_testkit::workflows::counting_registry(
            nosyntask_testkit::workflows::Invocations::new(),
            Duration::ZERO,
        ))
        .with_config(nosyntask_engine::EngineConfig {
            max_active_jobs_per_user: Some(3),
            ..Default::default()
        });
    for _ in 0..3 {
        h.start(&engine, "counting_1", json!({})).await;
    }
    let refused = engine
        .start(nosyntask_engine::StartRequest {
            user_id: h.user,
            project_id: 1,
            workflow_type: "counting_1".into(),
            params: json!({}),
            idempotency_key: None,
            priority: 0,
        })
        .await;
    assert!(
        matches!(
            refused,
            Err(EngineError::QuotaExceeded {
                active: 3,
                limit: 3
            })
        ),
        "{refused:?}"
    );
    // Other users are not affected; finished jobs free the quota.
    h.start_as(&engine, h.user + 1, "counting_1", json!({}))
        .await;
    let worker = h.worker(&engine);
    h.wait_all_terminal(&engine).await;
    worker.shutdown().await;
    h.start(&engine, "counting_1", json!({})).await;
}

for_each_backend!(graceful_shutdown_hands_work_back_and_the_checkpoint_resumes_it);
async fn graceful_shutdown_hands_work_back_and_the_checkpoint_resumes_it(h: Harness) {
    let step = StepDefinition::new(
        "video",
        "shot",
        scripted(|run: StepRun| async move {
            if let Some(saved) = run.checkpoint.last().await {
                return Ok(json!({"resumedFrom": saved["providerTask"], "attempt": run.attempt}));
            }
            run.checkpoint
                .save_external("prov-123", json!({"providerTask": "prov-123"}))
                .await?;
            run.cancel.cancelled().await;
            Err(TaskError::Cancelled)
        }),
    );
    let engine = h.engine(one_step("video", step));
    let first = h.worker_with(&engine, |c| c.shutdown_grace = Duration::from_millis(200));
    let job = h.start(&engine, "video", json!({})).await;
    h.wait_until(&engine, job, |j| j.tasks[0].external_task_id.is_some())
        .await;
    first.shutdown().await;

    let handed_back = engine.get(&Viewer::user(h.user), job).await.unwrap();
    assert_eq!(handed_back.tasks[0].status, TaskStatus::Pending);
    assert_eq!(
        handed_back.tasks[0].attempts, 0,
        "shutdown does not use up an attempt"
    );

    let second = h.worker(&engine);
    let done = h.wait_terminal(&engine, job).await;
    second.shutdown().await;
    assert_eq!(done.job.status, JobStatus::Completed);
    assert_eq!(
        done.tasks[0].result_data,
        Some(json!({"resumedFrom": "prov-123", "attempt": 1}))
    );
    assert_eq!(done.tasks[0].external_task_id.as_deref(), Some("prov-123"));
}

for_each_backend!(a_task_whose_worker_died_is_claimed_again_after_its_lease);
async fn a_task_whose_worker_died_is_claimed_again_after_its_lease(h: Harness) {
    let engine = h.engine(nosyntask_testkit::workflows::counting_registry(
        nosyntask_testkit::workflows::Invocations::new(),
        Duration::ZERO,
    ));
    let job = h.start(&engine, "counting_1", json!({})).await;
    // A "worker" claims the task and dies without a word.
    let claimed = engine
        .store()
        .claim_tasks(
            "dead-worker",
            10,
            Duration::from_millis(300),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let worker = h.worker_with(&engine, |c| c.sweep_interval = Duration::from_millis(100));
    let done = h.wait_terminal(&engine, job).await;
    worker.shutdown().await;
    assert_eq!(done.job.status, JobStatus::Completed);
    assert_eq!(done.tasks[0].attempts, 2);
    assert_eq!(
        done.tasks[0].result_data.as_ref().unwrap()["attempt"],
        json!(2)
    );
}

for_each_backend!(a_late_result_of_a_cancelled_attempt_never_completes_the_resumed_one);
async fn a_late_result_of_a_cancelled_attempt_never_completes_the_resumed_one(h: Harness) {
    let runs = Arc::new(AtomicUsize::new(0));
    let saw_cancel = Arc::new(AtomicUsize::new(0));
    let (counter, saw) = (runs.clone(), saw_cancel.clone());
    let step = StepDefinition::new(
        "render",
        "shot",
        scripted(move |run: StepRun| {
            let (counter, saw) = (counter.clone(), saw.clone());
            async move {
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                if n == 1 {
                    // Ignores its cancellation for a while, then answers anyway.
                    run.cancel.cancelled().await;
                    saw.store(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(800)).await;
                } else {
                    tokio::time::sleep(Duration::from_millis(1500)).await;
                }
                Ok(json!({"run": n}))
            }
        }),
    );
    let engine = h.engine(one_step("render", step));
    let worker = h.worker_with(&engine, |c| c.cancel_grace = Duration::from_secs(2));
    let viewer = Viewer::user(h.user);
    let job = h.start(&engine, "render", json!({})).await;
    h.wait_until(&engine, job, |j| j.tasks[0].status == TaskStatus::Running)
        .await;
    engine.cancel(&viewer, job).await.unwrap();
    nosyntask_testkit::wait_for(
        "the first attempt to see its cancellation",
        Duration::from_secs(5),
        || {
            let saw = saw_cancel.clone();
            async move { (saw.load(Ordering::SeqCst) == 1).then_some(()) }
        },
    )
    .await;
    // Resumed at once: the same worker claims the task again with the same owner and attempt
    // number while the first attempt is still winding down.
    engine.resume(&viewer, job).await.unwrap();
    let done = h.wait_terminal(&engine, job).await;
    worker.shutdown().await;

    assert_eq!(done.job.status, JobStatus::Completed);
    assert_eq!(
        done.tasks[0].result_data,
        Some(json!({"run": 2})),
        "the cancelled attempt's result was discarded"
    );
}

for_each_backend!(model_usage_of_a_step_is_written_with_its_result);
async fn model_usage_of_a_step_is_written_with_its_result(h: Harness) {
    use nosyntask_domain::Usage;
    use nosyntask_engine::usage::record;
    let tokens = Usage {
        prompt_tokens: Some(100),
        completion_tokens: Some(40),
        cost_micros: Some(7),
        ..Usage::default()
    };
    // Calls made concurrently inside the handler count, those of a failed attempt do not.
    let step = StepDefinition::new(
        "paid",
        "test",
        scripted(move |run: StepRun| async move {
            let call = || async { record("DeepSeek Chat", tokens) };
            tokio::join!(call(), call(), call());
            if run.attempt == 1 {
                return Err(TaskError::retryable("cut off"));
            }
            record(
                "Wan i2v",
                Usage {
                    video_seconds: Some(5),
                    ..Usage::default()
                },
            );
            Ok(json!({"videoUrl": "/files/v.mp4"}))
        }),
    )
    .max_attempts(2);
    let free = StepDefinition::new("free", "test", scripted(|_| async { Ok(json!({})) }));
    let mut registry = Registry::new();
    registry.register(
        WorkflowDefinition::new("paid", "paid", ParamsSchema::new())
            .step(step)
            .step(free),
    );
    let engine = h.engine(registry);
    let worker = h.worker(&engine);
    let job = h.start(&engine, "paid", json!({})).await;
    let done = h.wait_terminal(&engine, job).await;
    worker.shutdown().await;

    assert_eq!(done.job.status, JobStatus::Completed);
    let usage = done.tasks[0].usage.clone().expect("the paid step's usage");
    assert_eq!(
        (
            usage.total.prompt_tokens,
            usage.total.video_seconds,
            usage.total.cost_micros
        ),
        (Some(300), Some(5), Some(21))
    );
    assert_eq!(usage.models["DeepSeek Chat"].completion_tokens, Some(120));
    assert_eq!(done.tasks[1].usage, None, "a step that called no model");
    assert_eq!(done.usage(), Some(usage));
}
