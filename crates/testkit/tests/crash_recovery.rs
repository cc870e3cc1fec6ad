//! Crash safety with real processes on PostgreSQL: three worker processes share 1,000 jobs; one is
//! killed with SIGKILL mid-run. Every job still completes, no step is completed twice, and steps
//! that had saved a checkpoint resume with it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nosyntask_domain::{JobStatus, TaskStatus, Viewer};
use nosyntask_engine::{Engine, EngineConfig, ListQuery, Registry};
use nosyntask_store::testing::test_store;
use nosyntask_testkit::workflows::crashy_workflow;
use serde_json::json;

const JOBS: usize = 1_000;

struct WorkerProcess {
    child: Child,
    log: std::path::PathBuf,
}

fn spawn_worker(url: &str, dir: &std::path::Path, n: usize) -> WorkerProcess {
    spawn_worker_with(url, dir, n, &["--sleep-ms", "100"])
}

fn spawn_worker_with(url: &str, dir: &std::path::Path, n: usize, extra: &[&str]) -> WorkerProcess {
    let log = dir.join(format!("worker-{n}.log"));
    let child = Command::new(env!("CARGO_BIN_EXE_nosyntask-testkit-worker"))
        .args(["--db", url, "--log"])
        .arg(&log)
        .args(["--concurrency", "16", "--lease-ms", "2000"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning a worker process");
    WorkerProcess { child, log }
}

/// `task_id → [(attempt, pid)]` of every handler run that finished.
fn finished_runs(workers: &[WorkerProcess]) -> HashMap<i64, Vec<(i64, u32)>> {
    let mut runs: HashMap<i64, Vec<(i64, u32)>> = HashMap::new();
    for worker in workers {
        let text = std::fs::read_to_string(&worker.log).unwrap_or_default();
        for line in text.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if let [task, attempt, pid] = fields[..] {
                runs.entry(task.parse().unwrap())
                    .or_default()
                    .push((attempt.parse().unwrap(), pid.parse().unwrap()));
            }
        }
    }
    runs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_worker_process_loses_and_duplicates_nothing() {
    let Some(database) = test_store("postgres")
        .await
        .expect("creating a PostgreSQL test database")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let engine = crashy_engine(&database, dir.path());
    start_crashy(&engine, JOBS).await;

    let mut workers: Vec<WorkerProcess> = (0..3)
        .map(|n| spawn_worker(database.url(), dir.path(), n))
        .collect();
    let viewer = Viewer::admin(0);
    // Kill one process with SIGKILL once a quarter of the work is done.
    nosyntask_testkit::wait_for("a quarter of the jobs", Duration::from_secs(60), || {
        let engine = engine.clone();
        async move { (completed_jobs(&engine).await >= JOBS / 4).then_some(()) }
    })
    .await;
    let victim_pid = workers[0].child.id();
    workers[0].child.kill().unwrap();
    workers[0].child.wait().unwrap();

    nosyntask_testkit::wait_for("every job to complete", Duration::from_secs(120), || {
        let engine = engine.clone();
        async move { (completed_jobs(&engine).await == JOBS).then_some(()) }
    })
    .await;
    for worker in &mut workers[1..] {
        let _ = Command::new("kill")
            .args(["-INT", &worker.child.id().to_string()])
            .status();
        worker.child.wait().unwrap();
    }

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
    let runs = finished_runs(&workers);
    let mut resumed_from_victim = 0;
    let mut retried = 0;
    for summary in &jobs {
        assert_eq!(summary.status, JobStatus::Completed);
        let job = engine.get(&viewer, summary.id).await.unwrap();
        for task in &job.tasks {
            assert_eq!(task.status, TaskStatus::Completed);
            let result = task.result_data.as_ref().unwrap();
            // The stored result is the one of the last claim: nothing overwrote it.
            assert_eq!(result["attempt"], json!(task.attempts), "task {}", task.id);
            let finished = &runs[&task.id];
            // The stored result is one of the runs that finished...
            let stored = (
                result["attempt"].as_i64().unwrap(),
                result["pid"].as_u64().unwrap() as u32,
            );
            assert!(
                finished.contains(&stored),
                "task {}: stored {stored:?}, runs {finished:?}",
                task.id
            );
            // ...and no surviving process ran a step again once it was completed: a second run can
            // only follow a run of the killed process whose result was never written.
            let survivors: Vec<_> = finished
                .iter()
                .filter(|(_, pid)| *pid != victim_pid)
                .collect();
            assert!(
                survivors.len() <= 1,
                "task {} completed more than once: {finished:?}",
                task.id
            );
            if let Some(survivor) = survivors.first() {
                assert_eq!(
                    **survivor, stored,
                    "task {}: a survivor's run was discarded",
                    task.id
                );
            }
            if task.attempts > 1 {
                retried += 1;
                if result["resumedFromCheckpoint"] == json!(true)
                    && result["checkpoint"]["savedBy"] == json!(victim_pid)
                {
                    resumed_from_victim += 1;
                }
            }
        }
    }
    assert!(
        retried > 0,
        "the killed process held tasks that had to run again"
    );
    assert!(
        resumed_from_victim > 0,
        "steps checkpointed by the killed process resumed with their checkpoint"
    );
}

/// An engine (no workers of its own) for the drills' `crashy` jobs, to start and read them.
fn crashy_engine(database: &nosyntask_store::testing::TestStore, dir: &std::path::Path) -> Engine {
    let mut registry = Registry::new();
    let unused_log = std::fs::File::create(dir.join("unused.log")).unwrap();
    registry.register(crashy_workflow(
        Duration::ZERO,
        Arc::new(Mutex::new(unused_log)),
    ));
    Engine::new(database.shared(), registry).with_config(EngineConfig {
        max_active_jobs_per_user: None,
        ..Default::default()
    })
}

/// How many jobs are completed (0 while the store does not answer).
async fn completed_jobs(engine: &Engine) -> usize {
    engine
        .list(
            &Viewer::admin(0),
            ListQuery {
                statuses: vec![JobStatus::Completed],
                limit: 10_000,
                ..Default::default()
            },
        )
        .await
        .map(|jobs| jobs.len())
        .unwrap_or(0)
}

/// Starts `count` crashy jobs.
async fn start_crashy(engine: &Engine, count: usize) {
    for i in 0..count {
        engine
            .start(nosyntask_engine::StartRequest {
                user_id: 1,
                project_id: 1,
                workflow_type: "crashy".into(),
                params: json!({"n": i}),
                idempotency_key: None,
                priority: 0,
            })
            .await
            .unwrap();
    }
}

/// The in-transaction completion hook across SIGKILLs: two worker processes with the
/// [`HookLog`](nosyntask_testkit::hook_log::HookLog) hook, which holds each completion's
/// transaction open a few milliseconds after its insert; one of them is killed and replaced
/// every 150 ms, so kills land before completions, inside their open transactions and right
/// after their commits. At the end every completed step has exactly one hook row, holding the
/// result stored on the task, and there is no row for anything else.
async fn hook_rows_commit_with_their_results_across_kills(backend: &str) {
    const HOOKED_JOBS: usize = 200;
    let Some(database) = test_store(backend).await.expect("creating a test database") else {
        return;
    };
    use sea_orm::ConnectionTrait;
    let connection = database.store().connection();
    connection
        .execute_unprepared(nosyntask_testkit::hook_log::CREATE_TABLE)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let engine = crashy_engine(&database, dir.path());
    start_crashy(&engine, HOOKED_JOBS).await;
    let hooked = ["--sleep-ms", "10", "--hook-pause-ms", "5"];
    let mut spawned = 0;
    let mut spawn = |dir: &std::path::Path| {
        spawned += 1;
        spawn_worker_with(database.url(), dir, spawned, &hooked)
    };
    let mut workers = vec![spawn(dir.path()), spawn(dir.path())];
    for round in 0..20 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let victim = &mut workers[round % 2];
        victim.child.kill().unwrap();
        victim.child.wait().unwrap();
        workers[round % 2] = spawn(dir.path());
    }
    let viewer = Viewer::admin(0);
    nosyntask_testkit::wait_for("every job to complete", Duration::from_secs(120), || {
        let engine = engine.clone();
        async move { (completed_jobs(&engine).await == HOOKED_JOBS).then_some(()) }
    })
    .await;
    for worker in &mut workers {
        let _ = worker.child.kill();
        let _ = worker.child.wait();
    }

    let rows = connection
        .query_all_raw(sea_orm::Statement::from_string(
            connection.get_database_backend(),
            "SELECT task_id, result FROM hook_log",
        ))
        .await
        .unwrap();
    let mut hook_rows: HashMap<i64, Vec<String>> = HashMap::new();
    for row in &rows {
        hook_rows
            .entry(row.try_get_by("task_id").unwrap())
            .or_default()
            .push(row.try_get_by("result").unwrap());
    }
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
    let mut steps = 0;
    let mut retried = 0;
    for summary in &jobs {
        let job = engine.get(&viewer, summary.id).await.unwrap();
        for task in &job.tasks {
            steps += 1;
            retried += usize::from(task.attempts > 1);
            let stored = task.result_data.as_ref().unwrap();
            let written = hook_rows.get(&task.id).map(Vec::as_slice).unwrap_or(&[]);
            assert_eq!(written.len(), 1, "task {}: hook rows {written:?}", task.id);
            let seen: serde_json::Value = serde_json::from_str(&written[0]).unwrap();
            assert_eq!(
                &seen, stored,
                "task {}: the hook saw another result",
                task.id
            );
        }
    }
    assert_eq!(rows.len(), steps, "a hook row without its completed step");
    assert!(retried > 0, "kills interrupted running steps");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hook_rows_commit_with_their_results_across_kills_on_postgres() {
    hook_rows_commit_with_their_results_across_kills("postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hook_rows_commit_with_their_results_across_kills_on_mysql() {
    hook_rows_commit_with_their_results_across_kills("mysql").await;
}
