//! Scheduling for paid providers across real worker processes: a model's concurrency limit holds
//! for the whole cluster, a task waiting for its model costs nothing and says why, and a
//! provider's 429 pauses the model for every process.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nosyntask_domain::{JobId, JobStatus, TaskStatus, Viewer};
use nosyntask_engine::{Engine, EngineConfig, JobStore as _, Registry, StartRequest};
use nosyntask_store::testing::test_store;
use nosyntask_testkit::standin::StandIn;
use nosyntask_testkit::workflows::{STAND_IN_MODEL, model_call_workflow};
use serde_json::json;

/// A worker process running `model_call` against the stand-in, with the model limited to `limit`.
fn spawn_worker(url: &str, standin: &str, limit: u32) -> Child {
    spawn_worker_with(url, standin, Some(limit), 8)
}

fn spawn_worker_with(url: &str, standin: &str, limit: Option<u32>, slots: u32) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_nosyntask-testkit-worker"));
    command.args(["--db", url, "--model-call", standin]);
    if let Some(limit) = limit {
        command.args(["--model-limit", &limit.to_string()]);
    }
    command
        .args(["--concurrency", &slots.to_string(), "--timeout-ms", "2000"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawning the testkit worker")
}

fn stop(workers: &mut [Child]) {
    for worker in workers.iter() {
        let _ = Command::new("kill")
            .args(["-INT", &worker.id().to_string()])
            .status();
    }
    for worker in workers.iter_mut() {
        worker.wait().unwrap();
    }
}

fn engine(store: Arc<dyn nosyntask_engine::JobStore>, standin: &str) -> Engine {
    let mut registry = Registry::new();
    registry.register(model_call_workflow(standin, Duration::from_secs(2)));
    Engine::new(store, registry).with_config(EngineConfig {
        max_active_jobs_per_user: None,
        ..EngineConfig::default()
    })
}

/// Waits until both workers recorded the model's limit (they do before their first claim).
async fn limits_recorded(engine: &Engine) {
    nosyntask_testkit::wait_for("the workers to start", Duration::from_secs(30), || {
        let store = engine.store().clone();
        async move {
            let usage = store.model_usage(chrono::Utc::now()).await.ok()?;
            usage.iter().any(|m| m.name == STAND_IN_MODEL).then_some(())
        }
    })
    .await;
    // The second process: give it the moment its start takes too.
    tokio::time::sleep(Duration::from_millis(500)).await;
}

async fn start_jobs(engine: &Engine, count: usize) -> Vec<JobId> {
    start_jobs_as(engine, 1, count).await
}

async fn start_jobs_as(engine: &Engine, user_id: i64, count: usize) -> Vec<JobId> {
    let mut jobs = Vec::with_capacity(count);
    for n in 0..count {
        let started = engine
            .start(StartRequest {
                user_id,
                project_id: 1,
                workflow_type: "model_call".into(),
                params: json!({ "n": n }),
                idempotency_key: None,
                priority: 0,
            })
            .await
            .unwrap();
        assert_eq!(
            started.job.tasks[0].model_name.as_deref(),
            Some(STAND_IN_MODEL),
            "the task records its model when the job starts"
        );
        jobs.push(started.job.job.id);
    }
    jobs
}

async fn limit_holds_across_processes(backend: &str) {
    const JOBS: usize = 50;
    let Some(database) = test_store(backend).await.unwrap() else {
        return;
    };
    let standin = StandIn::start(Duration::from_millis(150)).await.unwrap();
    let addr = standin.addr.to_string();
    let mut workers = [
        spawn_worker(database.url(), &addr, 3),
        spawn_worker(database.url(), &addr, 3),
    ];
    let engine = engine(database.shared(), &addr);
    limits_recorded(&engine).await;
    let jobs = start_jobs(&engine, JOBS).await;

    // While the queue drains: every task that waits while the model is surely full (3 calls in
    // flight at the stand-in before and after the read) says it waits for the model.
    let viewer = Viewer::user(1);
    let (mut explained, mut full_reads) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut done = 0;
        for id in &jobs {
            let full_before = standin.log.in_flight() == 3;
            let job = engine.get(&viewer, *id).await.unwrap();
            let full_after = standin.log.in_flight() == 3;
            let task = &job.tasks[0];
            match job.job.status {
                JobStatus::Completed => done += 1,
                JobStatus::Pending if task.status == TaskStatus::Pending => {
                    if let Some(reason) = &task.waiting_reason {
                        assert!(
                            reason.starts_with("waiting for model Kling (")
                                && reason.ends_with(" of 3 busy)"),
                            "{reason}"
                        );
                        explained += 1;
                    }
                    if full_before && full_after {
                        full_reads += 1;
                        assert_eq!(
                            task.waiting_reason.as_deref(),
                            Some("waiting for model Kling (3 of 3 busy)")
                        );
                    }
                }
                _ => {}
            }
        }
        if done == JOBS {
            break;
        }
        assert!(Instant::now() < deadline, "{done} of {JOBS} jobs completed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop(&mut workers);

    assert!(
        standin.log.max_in_flight() <= 3,
        "{} calls in flight at once",
        standin.log.max_in_flight()
    );
    assert_eq!(standin.log.max_in_flight(), 3, "the limit was used");
    assert_eq!(standin.log.calls().len(), JOBS, "one call per job");
    assert!(explained > 0 && full_reads > 0, "{explained} {full_reads}");
    // The queue waited about 50 × 150 ms / 3 = 2.5 s against a 2 s timeout: nothing timed out
    // and nothing used a second attempt while waiting.
    for id in &jobs {
        let job = engine.get(&viewer, *id).await.unwrap();
        assert_eq!(job.tasks[0].attempts, 1, "job {id}: {:?}", job.tasks[0]);
        assert_eq!(job.tasks[0].error_message, None);
    }
    database.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_model_limit_holds_across_processes() {
    limit_holds_across_processes("postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_model_limit_holds_across_processes() {
    limit_holds_across_processes("mysql").await;
}

async fn provider_429_pauses_the_model_for_every_process(backend: &str) {
    // 40 calls of 500 ms, 3 at a time, take about 7 s: without the pause, calls would go on
    // within the ten seconds.
    const JOBS: usize = 40;
    let Some(database) = test_store(backend).await.unwrap() else {
        return;
    };
    let standin = StandIn::start(Duration::from_millis(500)).await.unwrap();
    standin.throttle_call(5, 10);
    let addr = standin.addr.to_string();
    let mut workers = [
        spawn_worker(database.url(), &addr, 3),
        spawn_worker(database.url(), &addr, 3),
    ];
    let engine = engine(database.shared(), &addr);
    limits_recorded(&engine).await;
    let jobs = start_jobs(&engine, JOBS).await;
    let viewer = Viewer::user(1);

    let throttled_at = nosyntask_testkit::wait_for("the 429", Duration::from_secs(30), || {
        let calls = standin.log.calls();
        async move { calls.iter().find(|(_, throttled)| *throttled).map(|c| c.0) }
    })
    .await;
    // While paused, a waiting task says so.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut paused_reasons = 0;
    for id in &jobs {
        let job = engine.get(&viewer, *id).await.unwrap();
        if let Some(reason) = &job.tasks[0].waiting_reason {
            assert!(
                reason.starts_with("waiting for model Kling: paused by the provider until"),
                "{reason}"
            );
            paused_reasons += 1;
        }
    }
    assert!(paused_reasons > 0);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut done = 0;
        for id in &jobs {
            if engine.get(&viewer, *id).await.unwrap().job.status == JobStatus::Completed {
                done += 1;
            }
        }
        if done == JOBS {
            break;
        }
        assert!(Instant::now() < deadline, "{done} of {JOBS} jobs completed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop(&mut workers);

    // Calls already under way when the 429 came back finish; after that the stand-in sees no
    // call until the ten seconds are over, from either process.
    let calls = standin.log.calls();
    let quiet: Vec<f64> = calls
        .iter()
        .map(|(at, _)| at.saturating_duration_since(throttled_at).as_secs_f64())
        .filter(|after| *after > 0.5 && *after < 9.5)
        .collect();
    assert!(quiet.is_empty(), "calls during the pause at {quiet:?} s");
    let resumed = calls
        .iter()
        .filter(|(at, _)| *at > throttled_at + Duration::from_secs(9))
        .count();
    assert!(resumed > 0, "the jobs went on after the pause");
    assert_eq!(
        calls.len(),
        JOBS + 1,
        "every job called once, the throttled one twice"
    );
    for id in &jobs {
        let job = engine.get(&viewer, *id).await.unwrap();
        assert_eq!(job.tasks[0].attempts, 1, "a 429 costs no attempt");
    }
    database.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_provider_429_pauses_the_model_for_every_process() {
    provider_429_pauses_the_model_for_every_process("postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_provider_429_pauses_the_model_for_every_process() {
    provider_429_pauses_the_model_for_every_process("mysql").await;
}

async fn one_users_backlog_does_not_hold_up_another_user(backend: &str) {
    let Some(database) = test_store(backend).await.unwrap() else {
        return;
    };
    let standin = StandIn::start(Duration::from_millis(100)).await.unwrap();
    let addr = standin.addr.to_string();
    let engine = engine(database.shared(), &addr);
    // User A queues 500 jobs, then user B queues 5; then two worker processes of 4 slots start.
    let a_jobs = start_jobs_as(&engine, 1, 500).await;
    let b_jobs = start_jobs_as(&engine, 2, 5).await;
    let mut workers = [
        spawn_worker_with(database.url(), &addr, None, 4),
        spawn_worker_with(database.url(), &addr, None, 4),
    ];
    let completed_at = |user: i64, id: JobId| {
        let engine = engine.clone();
        async move {
            let job = engine.get(&Viewer::user(user), id).await.unwrap();
            job.job.completed_at
        }
    };
    let a_50th =
        nosyntask_testkit::wait_for("A's 50th job to complete", Duration::from_secs(60), || {
            completed_at(1, a_jobs[49])
        })
        .await;
    let mut b_done = Vec::new();
    for id in &b_jobs {
        let done = nosyntask_testkit::wait_for("B's jobs", Duration::from_secs(60), || {
            completed_at(2, *id)
        })
        .await;
        b_done.push(done);
    }
    stop(&mut workers);
    for (n, done) in b_done.iter().enumerate() {
        assert!(
            *done < a_50th,
            "B's job {n} completed at {done}, after A's 50th at {a_50th}"
        );
    }
    database.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_one_users_backlog_does_not_hold_up_another_user() {
    one_users_backlog_does_not_hold_up_another_user("postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_one_users_backlog_does_not_hold_up_another_user() {
    one_users_backlog_does_not_hold_up_another_user("mysql").await;
}

fn spawn_fan_out_worker(url: &str, standin: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_nosyntask-testkit-worker"))
        .args(["--db", url, "--fan-out", standin])
        .args(["--concurrency", "32", "--lease-ms", "2000"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawning the testkit worker")
}

fn fan_out_engine(store: Arc<dyn nosyntask_engine::JobStore>, standin: &str) -> Engine {
    let mut registry = Registry::new();
    registry.register(nosyntask_testkit::workflows::fan_out_workflow(standin));
    Engine::new(store, registry).with_config(EngineConfig {
        max_active_jobs_per_user: None,
        ..EngineConfig::default()
    })
}

/// Calls the stand-in saw per item index.
fn calls_per_item(standin: &StandIn) -> std::collections::HashMap<u64, usize> {
    let mut calls = std::collections::HashMap::new();
    for path in standin.log.paths() {
        if let Some(index) = path.strip_prefix("/item/") {
            *calls.entry(index.parse().unwrap()).or_default() += 1;
        }
    }
    calls
}

/// Item indexes completed now.
async fn completed_items(engine: &Engine, job: JobId) -> Vec<u64> {
    let job = engine.get(&Viewer::user(1), job).await.unwrap();
    job.tasks
        .iter()
        .filter(|t| t.parent_task_id.is_some() && t.status == TaskStatus::Completed)
        .map(|t| u64::try_from(t.item_index.unwrap()).unwrap())
        .collect()
}

async fn wait_completed(engine: &Engine, job: JobId) -> nosyntask_domain::JobWithTasks {
    nosyntask_testkit::wait_for("the fan-out job", Duration::from_secs(60), || {
        let engine = engine.clone();
        async move {
            let job = engine.get(&Viewer::user(1), job).await.unwrap();
            (job.job.status == JobStatus::Completed).then_some(job)
        }
    })
    .await
}

fn assert_forty_in_order(job: &nosyntask_domain::JobWithTasks) {
    // The job's shape: its step first, then the step's 40 items carrying their parent.
    let step = &job.tasks[0];
    assert_eq!(step.parent_task_id, None);
    assert_eq!(job.tasks.len(), 41);
    for (n, item) in job.tasks[1..].iter().enumerate() {
        assert_eq!(item.parent_task_id, Some(step.id));
        assert_eq!(item.item_index, Some(i32::try_from(n).unwrap()));
    }
    let results = step.result_data.as_ref().unwrap().as_array().unwrap();
    assert_eq!(results.len(), 40);
    for (n, result) in results.iter().enumerate() {
        assert_eq!(result["index"], json!(n), "results in item order");
    }
}

async fn fan_out_limit_crash_cancel_and_resume(backend: &str) {
    let Some(database) = test_store(backend).await.unwrap() else {
        return;
    };
    let standin = StandIn::start(Duration::from_millis(400)).await.unwrap();
    let addr = standin.addr.to_string();
    let engine = fan_out_engine(database.shared(), &addr);
    let start = |engine: Engine| async move {
        engine
            .start(StartRequest {
                user_id: 1,
                project_id: 1,
                workflow_type: "fan_out".into(),
                params: json!({"count": 40, "maxConcurrency": 20}),
                idempotency_key: None,
                priority: 0,
            })
            .await
            .unwrap()
            .job
            .job
            .id
    };

    // A SIGKILL mid-fan-out: another worker runs only the items that had not finished.
    let mut first = spawn_fan_out_worker(database.url(), &addr);
    let job = start(engine.clone()).await;
    nosyntask_testkit::wait_for("a wave of items", Duration::from_secs(30), || {
        let engine = engine.clone();
        async move { (completed_items(&engine, job).await.len() >= 20).then_some(()) }
    })
    .await;
    first.kill().unwrap();
    first.wait().unwrap();
    let done_before_kill = completed_items(&engine, job).await;
    let mut second = spawn_fan_out_worker(database.url(), &addr);
    let finished = wait_completed(&engine, job).await;
    assert_forty_in_order(&finished);
    let calls = calls_per_item(&standin);
    for index in &done_before_kill {
        assert_eq!(
            calls[index], 1,
            "item {index} finished before the kill ran again"
        );
    }
    assert!(
        standin.log.max_in_flight() <= 20,
        "{}",
        standin.log.max_in_flight()
    );
    assert!(standin.log.max_in_flight() >= 10, "items ran in parallel");

    // Cancel stops the rest within 2 s; resume runs only the unfinished items.
    let before = standin.log.paths().len();
    let job = start(engine.clone()).await;
    nosyntask_testkit::wait_for("some items", Duration::from_secs(30), || {
        let engine = engine.clone();
        async move { (completed_items(&engine, job).await.len() >= 5).then_some(()) }
    })
    .await;
    engine.cancel(&Viewer::user(1), job).await.unwrap();
    let cancelled_at = Instant::now();
    let done_before_cancel = completed_items(&engine, job).await;
    nosyntask_testkit::wait_for("the calls to stop", Duration::from_secs(2), || {
        let idle = standin.log.in_flight() == 0;
        async move { idle.then_some(()) }
    })
    .await;
    let calls_after_stop = standin.log.paths().len();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        standin.log.paths().len(),
        calls_after_stop,
        "no call after the cancel"
    );
    assert!(cancelled_at.elapsed() < Duration::from_secs(4));
    let seen_before_resume: std::collections::HashMap<u64, usize> = calls_per_item(&standin);
    engine.resume(&Viewer::user(1), job).await.unwrap();
    let finished = wait_completed(&engine, job).await;
    assert_forty_in_order(&finished);
    // Each item the cancel left finished was called once in the second job: not again.
    let second_job_calls = standin.log.paths()[before..]
        .iter()
        .filter_map(|p| p.strip_prefix("/item/").map(|i| i.parse::<u64>().unwrap()))
        .fold(
            std::collections::HashMap::<u64, usize>::new(),
            |mut m, i| {
                *m.entry(i).or_default() += 1;
                m
            },
        );
    for index in &done_before_cancel {
        assert_eq!(
            second_job_calls[index], 1,
            "item {index} ran again after resume"
        );
    }
    assert!(seen_before_resume.len() <= 40);
    second.kill().unwrap();
    second.wait().unwrap();
    database.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_fan_out_limit_crash_cancel_and_resume() {
    fan_out_limit_crash_cancel_and_resume("postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_fan_out_limit_crash_cancel_and_resume() {
    fan_out_limit_crash_cancel_and_resume("mysql").await;
}

/// Within one user's share, a job of a higher priority is claimed before the user's earlier
/// ones, and never before another user's job that was there first.
async fn priority_orders_a_users_own_jobs(backend: &str) {
    let Some(database) = test_store(backend).await.unwrap() else {
        return;
    };
    let engine = engine(database.shared(), "127.0.0.1:9");
    let start = |user_id: i64, priority: i32| {
        let engine = engine.clone();
        async move {
            engine
                .start(StartRequest {
                    user_id,
                    project_id: 1,
                    workflow_type: "model_call".into(),
                    params: json!({}),
                    idempotency_key: None,
                    priority,
                })
                .await
                .unwrap()
                .job
                .job
                .id
        }
    };
    let mut batch = Vec::new();
    for _ in 0..5 {
        batch.push(start(1, 0).await);
    }
    let other = start(2, 0).await;
    let interactive = start(1, 10).await;
    let claimed = database
        .store()
        .claim_tasks("probe", 3, Duration::from_secs(30), chrono::Utc::now())
        .await
        .unwrap();
    let mut order: Vec<(i64, JobId)> = claimed.iter().map(|c| (c.task.id, c.task.job_id)).collect();
    order.sort_unstable();
    let jobs: std::collections::HashSet<JobId> = order.iter().map(|(_, job)| *job).collect();
    // User 1's first batch job, user 2's job and user 1's interactive job come before the rest
    // of user 1's batch.
    assert_eq!(
        jobs,
        [batch[0], other, interactive].into_iter().collect(),
        "claimed {order:?}"
    );
    database.cleanup().await;
}

#[tokio::test]
async fn sqlite_priority_orders_a_users_own_jobs() {
    priority_orders_a_users_own_jobs("sqlite").await;
}

#[tokio::test]
async fn postgres_priority_orders_a_users_own_jobs() {
    priority_orders_a_users_own_jobs("postgres").await;
}

#[tokio::test]
async fn mysql_priority_orders_a_users_own_jobs() {
    priority_orders_a_users_own_jobs("mysql").await;
}
