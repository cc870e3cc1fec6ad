//! The scheduling benchmark, one worker pool in this process over a real store and a loopback
//! provider stand-in (`nosyntask_testkit::standin`):
//!
//! 1. **limit**: `--jobs` one-call jobs of a model limited to `--limit` across the cluster:
//!    the most calls the stand-in saw at once, and jobs per second (the limit is the bound:
//!    `limit / latency`).
//! 2. **fairness**: user A queues `--backlog` jobs, then user B queues 5 (no model limit):
//!    how many of A's jobs completed before B's last one did.
//! 3. **fan-out**: one job of `--items` items at a per-job limit of 20: the most items in
//!    flight at once and items per second.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use nosyntask_domain::{JobId, JobStatus, Viewer};
use nosyntask_engine::ports::ModelLimit;
use nosyntask_engine::{
    Engine, EngineConfig, JobStore, Registry, StartRequest, Worker, WorkerConfig,
};
use nosyntask_store::Store;
use nosyntask_testkit::standin::StandIn;
use nosyntask_testkit::workflows::{STAND_IN_MODEL, fan_out_workflow, model_call_workflow};
use serde_json::{Value, json};

#[derive(clap::Args)]
pub struct SchedulingArgs {
    /// Database URL (a fresh database: the scenarios read every job of it).
    #[arg(long)]
    db: String,
    /// Jobs of the limited model.
    #[arg(long, default_value_t = 200)]
    jobs: usize,
    /// The model's cluster-wide limit.
    #[arg(long, default_value_t = 3)]
    limit: u32,
    /// User A's queued jobs in the fairness scenario.
    #[arg(long, default_value_t = 500)]
    backlog: usize,
    /// Items of the fan-out job.
    #[arg(long, default_value_t = 200)]
    items: u64,
    /// Each stand-in call's latency.
    #[arg(long, default_value_t = 50)]
    latency_ms: u64,
    /// Handler slots of the worker pool.
    #[arg(long, default_value_t = 32)]
    workers: usize,
}

fn engine(store: Arc<dyn JobStore>, addr: &str) -> Engine {
    let mut registry = Registry::new();
    registry.register(model_call_workflow(addr, Duration::from_secs(60)));
    registry.register(fan_out_workflow(addr));
    Engine::new(store, registry).with_config(EngineConfig {
        max_active_jobs_per_user: None,
        ..EngineConfig::default()
    })
}

async fn start(
    engine: &Engine,
    user_id: i64,
    workflow: &str,
    params: Value,
) -> anyhow::Result<JobId> {
    Ok(engine
        .start(StartRequest {
            user_id,
            project_id: 1,
            workflow_type: workflow.to_owned(),
            params,
            idempotency_key: None,
            priority: 0,
        })
        .await
        .context("starting a job")?
        .job
        .job
        .id)
}

fn worker(
    engine: &Engine,
    slots: usize,
    limits: Vec<ModelLimit>,
) -> nosyntask_engine::WorkerHandle {
    Worker::new(
        engine.clone(),
        WorkerConfig {
            concurrency: slots,
            claim_batch: u32::try_from(slots).unwrap_or(u32::MAX),
            poll_interval: Duration::from_millis(50),
            fan_out_poll: Duration::from_millis(50),
            retention: None,
            model_limits: limits,
            ..WorkerConfig::default()
        },
    )
    .spawn()
}

/// Waits until every job in `jobs` completed; returns when each did, in the order given.
async fn completions(
    engine: &Engine,
    user: i64,
    jobs: &[JobId],
) -> anyhow::Result<Vec<chrono::DateTime<chrono::Utc>>> {
    let viewer = Viewer::user(user);
    let mut done = Vec::with_capacity(jobs.len());
    for id in jobs {
        loop {
            let job = engine.get(&viewer, *id).await?;
            match (job.job.status, job.job.completed_at) {
                (JobStatus::Completed, Some(at)) => {
                    done.push(at);
                    break;
                }
                (JobStatus::Failed | JobStatus::Cancelled, _) => {
                    anyhow::bail!("job {id} ended {}", job.job.status)
                }
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }
    Ok(done)
}

pub async fn run(args: SchedulingArgs) -> anyhow::Result<()> {
    let store = Store::connect(&args.db)
        .await
        .with_context(|| format!("connecting to {}", args.db))?;
    store.migrate().await.context("running migrations")?;
    let store: Arc<dyn JobStore> = Arc::new(store);
    let latency = Duration::from_millis(args.latency_ms);

    eprintln!("limit: {} jobs, model limit {}", args.jobs, args.limit);
    let standin = StandIn::start(latency).await?;
    let addr = standin.addr.to_string();
    let engine = engine(store.clone(), &addr);
    let mut jobs = Vec::with_capacity(args.jobs);
    for n in 0..args.jobs {
        jobs.push(start(&engine, 1, "model_call", json!({"n": n})).await?);
    }
    let began = Instant::now();
    let pool = worker(
        &engine,
        args.workers,
        vec![ModelLimit {
            name: STAND_IN_MODEL.to_owned(),
            max_concurrency: args.limit,
            requests_per_minute: None,
        }],
    );
    completions(&engine, 1, &jobs).await?;
    let limit_secs = began.elapsed().as_secs_f64();
    pool.shutdown().await;
    let limit_in_flight = standin.log.max_in_flight();

    eprintln!(
        "fairness: {} jobs of user A, then 5 of user B",
        args.backlog
    );
    // A fresh engine and store handle: this pool records no model limit.
    let fair_store: Arc<dyn JobStore> = Arc::new(Store::connect(&args.db).await?);
    let standin = StandIn::start(latency).await?;
    let addr = standin.addr.to_string();
    let engine = self::engine(fair_store, &addr);
    let mut a = Vec::with_capacity(args.backlog);
    for n in 0..args.backlog {
        a.push(start(&engine, 10, "model_call", json!({"n": n})).await?);
    }
    let mut b = Vec::with_capacity(5);
    for n in 0..5 {
        b.push(start(&engine, 11, "model_call", json!({"n": n})).await?);
    }
    let pool = worker(&engine, args.workers, Vec::new());
    let b_done = completions(&engine, 11, &b).await?;
    let a_done = completions(&engine, 10, &a).await?;
    pool.shutdown().await;
    let b_last = b_done.iter().max().copied().unwrap_or_default();
    let a_before_b = a_done.iter().filter(|at| **at < b_last).count();

    eprintln!("fan-out: {} items, 20 at a time", args.items);
    let standin = StandIn::start(latency).await?;
    let addr = standin.addr.to_string();
    let fan_store: Arc<dyn JobStore> = Arc::new(Store::connect(&args.db).await?);
    let engine = self::engine(fan_store, &addr);
    let job = start(
        &engine,
        20,
        "fan_out",
        json!({"count": args.items, "maxConcurrency": 20}),
    )
    .await?;
    let began = Instant::now();
    let pool = worker(&engine, args.workers, Vec::new());
    completions(&engine, 20, &[job]).await?;
    let fan_secs = began.elapsed().as_secs_f64();
    pool.shutdown().await;

    #[allow(clippy::cast_precision_loss)]
    let per_s = |n: usize, secs: f64| (n as f64 / secs).round();
    println!(
        "{}",
        json!({
            "db": store.backend_name(),
            "latency_ms": args.latency_ms,
            "workers": args.workers,
            "limit": args.limit,
            "limit_jobs": args.jobs,
            "limit_max_in_flight": limit_in_flight,
            "limit_jobs_per_s": per_s(args.jobs, limit_secs),
            "limit_bound_jobs_per_s": (f64::from(args.limit) * 1000.0 / args.latency_ms as f64).round(),
            "fair_backlog": args.backlog,
            "fair_a_done_before_b_last": a_before_b,
            "fan_out_items": args.items,
            "fan_out_max_in_flight": standin.log.max_in_flight(),
            "fan_out_items_per_s": per_s(usize::try_from(args.items).unwrap_or(0), fan_secs),
        })
    );
    Ok(())
}
