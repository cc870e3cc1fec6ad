//! The engine benchmark: two phases over the same public API and store the server uses.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use nosyntask_engine::{
    Engine, EngineConfig, JobStore, Registry, StartRequest, Worker, WorkerConfig, WorkflowLabels,
};
use nosyntask_store::Store;
use nosyntask_testkit::workflows::noop_workflow;
use serde_json::json;

#[derive(clap::Args)]
pub struct EngineArgs {
    /// Database URL: sqlite://…, postgres://… or mysql://…
    #[arg(long)]
    db: String,
    /// Jobs to start and drain.
    #[arg(long, default_value_t = 10_000)]
    jobs: usize,
    /// No-op steps per job.
    #[arg(long, default_value_t = 1)]
    steps: usize,
    /// Handlers running at once in the worker pool.
    #[arg(long, default_value_t = 32)]
    workers: usize,
    /// Most tasks per claim statement (default: the worker count).
    #[arg(long)]
    claim_batch: Option<u32>,
}

pub async fn run(args: EngineArgs) -> anyhow::Result<()> {
    let store = Store::connect(&args.db)
        .await
        .with_context(|| format!("connecting to {}", args.db))?;
    store.migrate().await.context("running migrations")?;
    let store: Arc<dyn JobStore> = Arc::new(store);
    let (engine, workflow_type) = noop_engine(store.clone(), args.steps);

    eprintln!(
        "phase 1: starting {} jobs of {} steps",
        args.jobs, args.steps
    );
    let started = Instant::now();
    for i in 0..args.jobs {
        start_noop(&engine, &workflow_type, i).await?;
    }
    let start_secs = started.elapsed().as_secs_f64();

    eprintln!("phase 2: draining with {} workers", args.workers);
    let drain_started = Instant::now();
    let worker = Worker::new(
        engine.clone(),
        WorkerConfig {
            concurrency: args.workers,
            claim_batch: args.claim_batch.unwrap_or(args.workers as u32),
            poll_interval: Duration::from_millis(50),
            retention: None,
            ..WorkerConfig::default()
        },
    )
    .spawn();
    // Count completions in the worker's own metrics: polling the database would load it.
    let completed_steps = engine
        .metrics()
        .tasks_completed
        .get_or_create(&WorkflowLabels {
            workflow_type: workflow_type.clone(),
            task_type: "noop".to_owned(),
        });
    let target = (args.jobs * args.steps) as u64;
    while completed_steps.get() < target {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let drain_secs = drain_started.elapsed().as_secs_f64();
    worker.shutdown().await;

    let jobs = args.jobs as f64;
    println!(
        "{}",
        json!({
            "db": store.backend_name(),
            "jobs": args.jobs,
            "steps": args.steps,
            "workers": args.workers,
            "starts_per_s": (jobs / start_secs).round(),
            "jobs_per_s": (jobs / drain_secs).round(),
            "steps_per_s": (jobs * args.steps as f64 / drain_secs).round(),
            "start_secs": start_secs,
            "drain_secs": drain_secs,
        })
    );
    Ok(())
}

/// An engine over `store` running the no-op workflow of `steps` steps, without the per-user
/// quota (a benchmark user starts thousands of jobs), and that workflow's type.
pub(crate) fn noop_engine(store: Arc<dyn JobStore>, steps: usize) -> (Engine, String) {
    let workflow = noop_workflow(steps);
    let workflow_type = workflow.workflow_type.clone();
    let mut registry = Registry::new();
    registry.register(workflow);
    let engine = Engine::new(store, registry).with_config(EngineConfig {
        max_active_jobs_per_user: None,
        ..EngineConfig::default()
    });
    (engine, workflow_type)
}

/// Starts the `n`-th job of the no-op workflow, as a request handler would.
pub(crate) async fn start_noop(
    engine: &Engine,
    workflow_type: &str,
    n: usize,
) -> anyhow::Result<nosyntask_engine::Started> {
    engine
        .start(StartRequest {
            user_id: 1,
            project_id: 1,
            workflow_type: workflow_type.to_owned(),
            params: json!({ "n": n }),
            idempotency_key: None,
            priority: 0,
        })
        .await
        .context("starting a job")
}
