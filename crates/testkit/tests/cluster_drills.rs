//! Cluster drills with real connections and processes: a runner cut off from its database (a
//! TCP proxy switched off) fences itself off before its lease can be taken; worker processes
//! whose clocks are a minute apart (libfaketime, installed by `.ci/run`) share one PostgreSQL
//! without waiting for the skew or taking each other's healthy leases.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nosyntask_domain::{JobStatus, TaskError, Viewer};
use nosyntask_engine::{
    Engine, EngineConfig, JobStore, ListQuery, Registry, StartRequest, StepDefinition, StepRun,
    Worker, WorkflowDefinition,
};
use nosyntask_store::testing::{TestStore, test_store};
use nosyntask_store::{Store, StoreOptions};
use nosyntask_testkit::proxy::TcpProxy;
use nosyntask_testkit::workflows::crashy_workflow;
use serde_json::{Value, json};

use common::Harness;

/// What the "provider" saw: who called, when.
type Calls = Arc<Mutex<Vec<(&'static str, Instant)>>>;

/// A step that calls the provider every 50 ms until it is cancelled (`who` = "cut") or for
/// 300 ms and then answers (`who` = "healthy").
fn provider_step(who: &'static str, calls: Calls) -> WorkflowDefinition {
    struct Step {
        who: &'static str,
        calls: Calls,
    }
    #[async_trait::async_trait]
    impl nosyntask_engine::StepHandler for Step {
        async fn run(&self, run: StepRun) -> Result<Value, TaskError> {
            for _ in 0..if self.who == "cut" { 10_000 } else { 6 } {
                if run.cancel.is_cancelled() {
                    return Err(TaskError::Cancelled);
                }
                self.calls.lock().unwrap().push((self.who, Instant::now()));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Ok(json!({"by": self.who}))
        }
    }
    WorkflowDefinition::new(
        "provider_call",
        "Provider call",
        nosyntask_domain::ParamsSchema::new(),
    )
    .step(
        StepDefinition::new("call", "test", Arc::new(Step { who, calls }))
            .timeout(Duration::from_secs(120)),
    )
}

fn engine(store: Arc<dyn JobStore>, workflow: WorkflowDefinition) -> Engine {
    let mut registry = Registry::new();
    registry.register(workflow);
    Engine::new(store, registry).with_config(EngineConfig {
        max_active_jobs_per_user: None,
        ..EngineConfig::default()
    })
}

/// `url` with its host and port replaced by `addr`.
fn through(url: &str, addr: SocketAddr) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (auth_host, path) = rest.split_once('/').unwrap();
    let auth = auth_host.rsplit_once('@').map(|(a, _)| format!("{a}@"));
    format!("{scheme}://{}{addr}/{path}", auth.unwrap_or_default())
}

fn upstream(url: &str) -> SocketAddr {
    let rest = url.split_once("://").unwrap().1;
    let host = rest.split('/').next().unwrap();
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    host.parse().unwrap()
}

async fn cut_off_runner_stops_before_its_lease_can_be_taken(backend: &str) {
    let Some(database) = test_store(backend).await.unwrap() else {
        return;
    };
    let proxy = TcpProxy::start(upstream(database.url())).await.unwrap();
    let options = StoreOptions {
        acquire_timeout: Duration::from_millis(500),
        ..StoreOptions::default()
    };
    let cut_store: Arc<dyn JobStore> = Arc::new(
        Store::connect_with(&through(database.url(), proxy.addr()), options)
            .await
            .unwrap(),
    );
    let calls: Calls = Arc::default();
    let cut_engine = engine(cut_store, provider_step("cut", calls.clone()));
    let healthy_engine = engine(database.shared(), provider_step("healthy", calls.clone()));
    let mut config = Harness::worker_config();
    config.self_fence_margin = Duration::from_millis(1500);
    let lease = config.lease_ttl;

    let job = healthy_engine
        .start(StartRequest {
            user_id: 1,
            project_id: 1,
            workflow_type: "provider_call".into(),
            params: json!({}),
            idempotency_key: None,
            priority: 0,
        })
        .await
        .unwrap()
        .job
        .job
        .id;
    let cut_worker = Worker::new(cut_engine, config.clone()).spawn();
    nosyntask_testkit::wait_for(
        "the cut-off runner to call",
        Duration::from_secs(10),
        || {
            let calls = calls.clone();
            async move { (calls.lock().unwrap().len() >= 3).then_some(()) }
        },
    )
    .await;
    proxy.cut();
    let cut_at = Instant::now();
    let healthy_worker = Worker::new(healthy_engine.clone(), config).spawn();

    let viewer = Viewer::admin(0);
    let done = nosyntask_testkit::wait_for("the job to complete", Duration::from_secs(30), || {
        let engine = healthy_engine.clone();
        async move {
            let job = engine.get(&viewer, job).await.ok()?;
            (job.job.status == JobStatus::Completed).then_some(job)
        }
    })
    .await;
    proxy.restore();
    tokio::time::sleep(Duration::from_millis(500)).await;
    healthy_worker.shutdown().await;
    cut_worker.shutdown().await;

    let calls = calls.lock().unwrap().clone();
    let last_cut = calls.iter().filter(|(w, _)| *w == "cut").map(|c| c.1).max();
    let first_healthy = calls
        .iter()
        .filter(|(w, _)| *w == "healthy")
        .map(|c| c.1)
        .min();
    let (last_cut, first_healthy) = (last_cut.unwrap(), first_healthy.unwrap());
    // The earliest moment the lease could lapse: its last renewal came at most one heartbeat
    // before the cut. The cut-off runner must have stopped calling before that.
    let earliest_takeover = cut_at + lease - Harness::worker_config().heartbeat_interval;
    assert!(
        last_cut < earliest_takeover,
        "the cut-off runner called the provider {:?} after the cut (lease {lease:?})",
        last_cut - cut_at
    );
    assert!(
        last_cut < first_healthy,
        "both runners called the provider at once"
    );
    assert_eq!(done.tasks[0].result_data, Some(json!({"by": "healthy"})));
    assert_eq!(
        healthy_engine.get(&viewer, job).await.unwrap().tasks[0].result_data,
        Some(json!({"by": "healthy"}))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_cut_off_runner_stops_before_its_lease_can_be_taken() {
    cut_off_runner_stops_before_its_lease_can_be_taken("postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_cut_off_runner_stops_before_its_lease_can_be_taken() {
    cut_off_runner_stops_before_its_lease_can_be_taken("mysql").await;
}

/// Interrupts a worker started by [`spawn_shifted_worker`] and waits for it: SIGINT to its whole
/// process group, faketime and the worker it runs (to faketime alone, the worker would outlive
/// the test).
fn interrupt(worker: &mut Child) {
    let _ = Command::new("kill")
        .args(["-INT", "--", &format!("-{}", worker.id())])
        .status();
    worker.wait().unwrap();
}

/// A command under libfaketime with its clock shifted by `offset` (e.g. "+60s").
fn shifted(offset: &str) -> Command {
    let mut command = Command::new("faketime");
    command.args(["-f", offset]);
    command
}

/// A worker under libfaketime in a process group of its own: `faketime` runs the worker as its
/// child, so a signal must go to the group (see [`interrupt`]) to reach the worker.
fn spawn_shifted_worker(offset: &str, url: &str, log: &std::path::Path) -> Child {
    use std::os::unix::process::CommandExt;
    shifted(offset)
        .process_group(0)
        .arg(env!("CARGO_BIN_EXE_nosyntask-testkit-worker"))
        .args(["--db", url, "--log"])
        .arg(log)
        .args([
            "--concurrency",
            "8",
            "--sleep-ms",
            "200",
            "--lease-ms",
            "2000",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning a worker under faketime (Debian package `faketime`)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_with_skewed_clocks_agree_on_leases_and_ready_times() {
    const JOBS: usize = 200;
    let Some(database): Option<TestStore> = test_store("postgres").await.unwrap() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // The jobs are started by a process whose clock is a minute ahead...
    let started = shifted("+60s")
        .arg(env!("CARGO_BIN_EXE_nosyntask-testkit-worker"))
        .args(["--db", database.url(), "--start", &JOBS.to_string()])
        .stdout(Stdio::null())
        .status()
        .expect("running faketime (Debian package `faketime`)");
    assert!(started.success());
    // ...and run by one a minute behind the database, which must start at once rather than wait
    // for the starter's clock...
    let logs = [dir.path().join("behind.log"), dir.path().join("ahead.log")];
    let began = Instant::now();
    let behind = spawn_shifted_worker("-60s", database.url(), &logs[0]);
    nosyntask_testkit::wait_for(
        "the worker behind to run a step",
        Duration::from_secs(15),
        || {
            let log = logs[0].clone();
            async move {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                (!text.is_empty()).then_some(())
            }
        },
    )
    .await;
    // ...and one a minute ahead, joining while the first holds leases: they are healthy, and
    // it must not take them over.
    let ahead = spawn_shifted_worker("+60s", database.url(), &logs[1]);
    let mut workers = [behind, ahead];

    let mut registry = Registry::new();
    let sink = std::fs::File::create(dir.path().join("unused.log")).unwrap();
    registry.register(crashy_workflow(Duration::ZERO, Arc::new(Mutex::new(sink))));
    let engine = Engine::new(database.shared(), registry);
    let viewer = Viewer::admin(0);
    let list = |engine: Engine| async move {
        engine
            .list(
                &viewer,
                ListQuery {
                    limit: 1_000,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
    };
    // Nothing may wait for the skew: 200 two-step jobs of 200 ms steps on 16 slots take a few
    // seconds; a minute of waiting would show.
    let result =
        nosyntask_testkit::wait_for("every job to complete", Duration::from_secs(45), || {
            let engine = engine.clone();
            async move {
                let jobs = list(engine).await;
                jobs.iter()
                    .all(|j| j.status == JobStatus::Completed)
                    .then_some(jobs)
            }
        })
        .await;
    let took = began.elapsed();
    for worker in &mut workers {
        interrupt(worker);
    }
    assert_eq!(result.len(), JOBS);
    assert!(took < Duration::from_secs(45), "took {took:?}");

    // No healthy lease was taken over: every step ran once, on its first attempt.
    let mut runs: HashMap<i64, Vec<String>> = HashMap::new();
    for log in &logs {
        for line in std::fs::read_to_string(log).unwrap_or_default().lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            runs.entry(fields[0].parse().unwrap())
                .or_default()
                .push(line.to_owned());
        }
    }
    assert_eq!(runs.len(), JOBS * 2, "every step ran");
    let repeated: Vec<_> = runs.values().filter(|r| r.len() > 1).collect();
    assert!(
        repeated.is_empty(),
        "steps ran more than once: {repeated:?}"
    );
    for job in &result {
        let full = engine.get(&viewer, job.id).await.unwrap();
        for task in &full.tasks {
            assert_eq!(task.attempts, 1, "task {} of job {}", task.id, job.id);
        }
    }
}
