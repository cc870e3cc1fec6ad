//! The latency benchmark: how long one job takes from `Engine::start` returning to its last step
//! completed, on an idle, running worker (nothing else queued).
//!
//! A worker with `--workers` slots is spawned and left to go idle; then `--jobs` jobs of
//! `--steps` no-op steps are started one at a time, each after the previous one completed. The
//! clock runs from `Engine::start` returning to the worker's completion counter counting the
//! job's last step (the counter moves after the completion statement committed). A thread polls
//! the counter every 50 µs, so the measurement adds no database load and ~0.1 ms of resolution.
//!
//! `--wake in-process` (the default) starts jobs through the worker's own engine and store, as the
//! server does: the start wakes the idle worker in the process. `--wake notify` starts them
//! through a second store (its own pools), as another process would: on PostgreSQL the worker
//! learns of the job through `LISTEN`/`NOTIFY`; elsewhere only by polling (`--poll-ms`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::engine::{noop_engine, start_noop};
use anyhow::Context;
use nosyntask_domain::{JobStatus, Viewer};
use nosyntask_engine::{JobStore, Worker, WorkerConfig, WorkflowLabels};
use nosyntask_store::Store;
use serde_json::json;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Wake {
    /// Start through the worker's engine (one process, as the server runs).
    InProcess,
    /// Start through a second store: the worker hears of it from the database.
    Notify,
}

#[derive(clap::Args)]
pub struct LatencyArgs {
    /// Database URL: sqlite://…, postgres://… or mysql://…
    #[arg(long)]
    db: String,
    /// Jobs to run, one after another.
    #[arg(long, default_value_t = 200)]
    jobs: usize,
    /// No-op steps per job.
    #[arg(long, default_value_t = 3)]
    steps: usize,
    /// Handler slots of the worker.
    #[arg(long, default_value_t = 32)]
    workers: usize,
    /// How the worker learns of a new job.
    #[arg(long, value_enum, default_value_t = Wake::InProcess)]
    wake: Wake,
    /// The worker's poll interval when nothing wakes it (the default `WorkerConfig`'s is 1 s).
    #[arg(long, default_value_t = 1000)]
    poll_ms: u64,
    /// How long the worker is left idle before the first job and between jobs.
    #[arg(long, default_value_t = 20)]
    idle_ms: u64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub async fn run(args: LatencyArgs) -> anyhow::Result<()> {
    let connect = || async {
        let store = Store::connect(&args.db)
            .await
            .with_context(|| format!("connecting to {}", args.db))?;
        anyhow::Ok(store)
    };
    let worker_store = connect().await?;
    worker_store.migrate().await.context("running migrations")?;
    let worker_store: Arc<dyn JobStore> = Arc::new(worker_store);
    let (worker_engine, workflow_type) = noop_engine(worker_store.clone(), args.steps);
    let starter = match args.wake {
        Wake::InProcess => worker_engine.clone(),
        Wake::Notify => noop_engine(Arc::new(connect().await?), args.steps).0,
    };

    let worker = Worker::new(
        worker_engine.clone(),
        WorkerConfig {
            concurrency: args.workers,
            claim_batch: args.workers as u32,
            poll_interval: Duration::from_millis(args.poll_ms),
            retention: None,
            ..WorkerConfig::default()
        },
    )
    .spawn();
    let completed_steps = worker_engine
        .metrics()
        .tasks_completed
        .get_or_create(&WorkflowLabels {
            workflow_type: workflow_type.clone(),
            task_type: "noop".to_owned(),
        });
    eprintln!(
        "{} jobs of {} steps, one at a time, on an idle worker",
        args.jobs, args.steps
    );
    // A warm-up job (connections opened, statements prepared), not measured.
    let total = args.jobs + 1;
    let mut latencies_ms = Vec::with_capacity(args.jobs);
    let idle = Duration::from_millis(args.idle_ms);
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 0..total {
        tokio::time::sleep(idle).await;
        let target = ((i + 1) * args.steps) as u64;
        let started = start_noop(&starter, &workflow_type, i).await?;
        let returned = Instant::now();
        // Wait on a thread that polls the counter finely (tokio's timers have 1 ms resolution).
        let counter = completed_steps.clone();
        let give_up = Arc::new(AtomicBool::new(false));
        let stop = give_up.clone();
        let done = tokio::task::spawn_blocking(move || {
            while counter.get() < target {
                if stop.load(Ordering::Relaxed) {
                    return None;
                }
                std::thread::sleep(Duration::from_micros(50));
            }
            Some(Instant::now())
        });
        let done_at = match tokio::time::timeout(Duration::from_secs(30), done).await {
            Ok(joined) => joined?.context("counter wait ended")?,
            Err(_) => {
                give_up.store(true, Ordering::Relaxed);
                anyhow::bail!("job {} did not complete within 30 s", started.job.job.id);
            }
        };
        let job = worker_engine
            .get(&Viewer::admin(1), started.job.job.id)
            .await
            .context("reading the job")?;
        anyhow::ensure!(
            job.job.status == JobStatus::Completed,
            "job {} is {:?} after its last step was counted",
            job.job.id,
            job.job.status
        );
        if i > 0 {
            latencies_ms.push(done_at.duration_since(returned).as_secs_f64() * 1e3);
        }
    }
    worker.shutdown().await;

    let mut sorted = latencies_ms.clone();
    sorted.sort_by(f64::total_cmp);
    let mean = sorted.iter().sum::<f64>() / sorted.len().max(1) as f64;
    let round = |v: f64| (v * 100.0).round() / 100.0;
    println!(
        "{}",
        json!({
            "db": worker_store.backend_name(),
            "jobs": args.jobs,
            "steps": args.steps,
            "workers": args.workers,
            "wake": match args.wake { Wake::InProcess => "in-process", Wake::Notify => "notify" },
            "poll_ms": args.poll_ms,
            "median_ms": round(percentile(&sorted, 50.0)),
            "p95_ms": round(percentile(&sorted, 95.0)),
            "p99_ms": round(percentile(&sorted, 99.0)),
            "min_ms": round(sorted.first().copied().unwrap_or(f64::NAN)),
            "max_ms": round(sorted.last().copied().unwrap_or(f64::NAN)),
            "mean_ms": round(mean),
        })
    );
    Ok(())
}
