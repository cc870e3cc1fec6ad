//! "Waiting is free": N one-step `scene_video` jobs on a simulated video model that takes a
//! minute, all waiting at once in this one worker process. While they wait it samples the
//! process's resident memory and the database writes, and reports the peak memory and the writes
//! per waiting task per second.
//!
//! Writes are counted by [`CountingStore`], a decorator around the real store through which every
//! engine write passes (rows per call, the same on every backend), and checked against the
//! database's own counter ([`probe::db_rows_written`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use nosyntask_engine::ports::{ModelCatalog, ModelKind};
use nosyntask_engine::{
    Engine, EngineConfig, JobStore, Metrics, StartRequest, Worker, WorkerConfig,
};
use nosyntask_providers::{Catalog, LocalArtifacts, ModelConfig, SimulatedConfig};
use nosyntask_store::Store;
use serde_json::json;
use tokio::task::JoinSet;

use crate::probe::{db_rows_written, proc_status_mb};
use nosyntask_testkit::counting::CountingStore;

#[derive(clap::Args)]
pub struct WaitingArgs {
    /// Database URL (a fresh one): sqlite://…, postgres://… or mysql://…
    #[arg(long)]
    db: String,
    /// Jobs (one task each) waiting at once.
    #[arg(long, default_value_t = 10_000)]
    tasks: usize,
    /// How long the simulated video model takes.
    #[arg(long, default_value_t = 60)]
    latency_secs: u64,
    /// Most tasks per claim statement.
    #[arg(long, default_value_t = 500)]
    claim_batch: u32,
    /// How often memory and writes are sampled.
    #[arg(long, default_value_t = 200)]
    sample_ms: u64,
    /// Give up this long after the model's latency. Default: 300 s plus 3 ms per task, since
    /// every task renders its simulated video when it finishes (on this process's CPUs: about
    /// 250 a second on two cores while the engine and the database share them).
    #[arg(long)]
    grace_secs: Option<u64>,
}

const WORKFLOW: &str = "scene_video";
const METHOD: &str = "rows inserted/updated/deleted by the engine's JobStore calls, counted by a \
                      decorator around the store; db_rows_written_by_db is the database's own \
                      count (SQLite total_changes() of the single writer connection, PostgreSQL \
                      pg_stat_user_tables n_tup_ins+n_tup_upd+n_tup_del)";

pub async fn run(args: WaitingArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.tasks > 0, "--tasks must be at least 1");
    let artifacts_dir = tempfile::tempdir().context("creating a temporary artifacts directory")?;
    let metrics = Arc::new(Metrics::new());
    let catalog = catalog(&args, artifacts_dir.path(), metrics.clone())?;

    let setup = connect(&args.db).await?;
    let now = chrono::Utc::now();
    let stats = setup.stats(now).await.context("reading the queue")?;
    anyhow::ensure!(
        stats.ready + stats.scheduled + stats.running == 0,
        "the database already has unfinished tasks; give the benchmark a fresh database"
    );
    eprintln!("phase 1: starting {} {WORKFLOW} jobs", args.tasks);
    let started = Instant::now();
    start_jobs(
        engine(Arc::new(setup.clone()), &catalog, metrics.clone()),
        args.tasks,
    )
    .await?;
    eprintln!("  started in {:.1} s", started.elapsed().as_secs_f64());
    // A fresh connection for the measured phase, so the database's counters of the starts are
    // settled (PostgreSQL reports a connection's counts when it closes) and not measured.
    setup.close().await;
    let store = connect(&args.db).await?;
    let db_rows_before = settled_db_rows(&store).await?;

    let counting = Arc::new(CountingStore::new(Arc::new(store.clone())));
    let counters = counting.counters();
    let engine = engine(counting, &catalog, metrics);
    let before = counters.snapshot();
    let rows_before = counters.rows();
    let rss_before = proc_status_mb("VmRSS");

    eprintln!(
        "phase 2: one worker process waits on all of them ({} s each)",
        args.latency_secs
    );
    let worker = Worker::new(
        engine,
        WorkerConfig {
            concurrency: args.tasks,
            claim_batch: args.claim_batch,
            retention: None,
            ..WorkerConfig::default()
        },
    )
    .spawn();
    let began = Instant::now();
    let grace = args
        .grace_secs
        .unwrap_or(300 + (args.tasks as u64).saturating_mul(3) / 1000);
    let deadline = Duration::from_secs(args.latency_secs + grace);
    let mut ticker = tokio::time::interval(Duration::from_millis(args.sample_ms.max(10)));
    let mut peak_rss_sampled: f64 = 0.0;
    let mut peak_waiting = 0usize;
    // (seconds since start, rows so far) when every task was first running, and when the
    // first one finished: the window in which all of them were only waiting.
    let mut all_waiting: Option<(f64, u64)> = None;
    let mut first_done: Option<(f64, u64)> = None;
    let mut rss_all_waiting: Option<f64> = None;
    let mut last_report = Instant::now();
    let mut last_rows = rows_before;
    loop {
        ticker.tick().await;
        let t = began.elapsed().as_secs_f64();
        let rows = counters.rows() - rows_before;
        let done = counters.jobs_completed() + counters.jobs_failed();
        let waiting = worker.in_flight();
        let rss = proc_status_mb("VmRSS");
        peak_rss_sampled = peak_rss_sampled.max(rss.unwrap_or(0.0));
        peak_waiting = peak_waiting.max(waiting);
        if all_waiting.is_none() && waiting == args.tasks && done == 0 {
            all_waiting = Some((t, rows));
            rss_all_waiting = rss;
        }
        if first_done.is_none() && done > 0 {
            first_done = Some((t, rows));
        }
        if last_report.elapsed() >= Duration::from_secs(5) {
            let elapsed = last_report.elapsed().as_secs_f64();
            eprintln!(
                "  {t:5.1} s  waiting {waiting:6}  done {done:6}  rss {:6.1} MB  {:8.0} rows/s",
                rss.unwrap_or(0.0),
                (rows + rows_before - last_rows) as f64 / elapsed,
            );
            last_report = Instant::now();
            last_rows = rows + rows_before;
        }
        if done as usize >= args.tasks || began.elapsed() > deadline {
            break;
        }
    }
    let duration = began.elapsed().as_secs_f64();
    worker.shutdown().await;

    let rows = counters.rows() - rows_before;
    let tasks = args.tasks as f64;
    let waiting_rate = match (all_waiting, first_done) {
        (Some((t0, r0)), Some((t1, r1))) if t1 > t0 => Some((r1 - r0) as f64 / tasks / (t1 - t0)),
        _ => None,
    };
    let backend = JobStore::backend_name(&store);
    let db_rows_after = if backend == "postgres" {
        // Closed connections publish their counts; read them through a new one.
        store.close().await;
        let reader = connect(&args.db).await?;
        let rows = settled_db_rows(&reader).await?;
        reader.close().await;
        rows
    } else {
        let rows = db_rows_written(&store).await?;
        store.close().await;
        rows
    };
    let db_rows = match (db_rows_before, db_rows_after) {
        (Some(before), Some(after)) if after >= before => Some(after - before),
        _ => None,
    };
    println!(
        "{}",
        json!({
            "db": backend,
            "tasks": args.tasks,
            "latency_secs": args.latency_secs,
            "completed": counters.jobs_completed(),
            "failed": counters.jobs_failed(),
            "duration_secs": round(duration, 1),
            "peak_waiting": peak_waiting,
            "peak_rss_mb": round(proc_status_mb("VmHWM").unwrap_or(peak_rss_sampled), 1),
            "rss_before_worker_mb": rss_before.map(|r| round(r, 1)),
            "rss_all_waiting_mb": rss_all_waiting.map(|r| round(r, 1)),
            "rss_per_waiting_task_kb": rss_before
                .zip(rss_all_waiting)
                .map(|(before, waiting)| round((waiting - before) * 1024.0 / tasks, 1)),
            "db_writes_per_task_per_s": round(rows as f64 / tasks / duration, 3),
            "waiting_db_writes_per_task_per_s": waiting_rate.map(|r| round(r, 3)),
            "waiting_window_secs": all_waiting
                .zip(first_done)
                .map(|((t0, _), (t1, _))| round(t1 - t0, 1)),
            "db_rows_written": rows,
            "db_rows_written_by_db": db_rows,
            "db_write_calls": counters.calls() - before.values().map(|[_, c]| c).sum::<u64>(),
            "rows_and_calls_by_kind": counters.since(&before),
            "method": METHOD,
        })
    );
    Ok(())
}

fn catalog(
    args: &WaitingArgs,
    artifacts_dir: &std::path::Path,
    metrics: Arc<Metrics>,
) -> anyhow::Result<Arc<dyn ModelCatalog>> {
    let mut model = ModelConfig::simulated("sim-video-slow", ModelKind::Video, true);
    model.simulated = Some(SimulatedConfig {
        latency_ms: Some(args.latency_secs * 1000),
        failure_rate: 0.0,
        seed: 0,
    });
    let artifacts = Arc::new(LocalArtifacts::new(artifacts_dir, "/files"));
    let catalog = Catalog::from_config(&[model], artifacts, metrics)
        .context("building the simulated video model")?;
    Ok(Arc::new(catalog))
}

fn engine(
    store: Arc<dyn JobStore>,
    catalog: &Arc<dyn ModelCatalog>,
    metrics: Arc<Metrics>,
) -> Engine {
    Engine::new(store, nosyntask_workflows::registry(catalog.clone()))
        .with_metrics(metrics)
        .with_config(EngineConfig {
            max_active_jobs_per_user: None,
            ..EngineConfig::default()
        })
}

async fn connect(url: &str) -> anyhow::Result<Store> {
    let store = Store::connect(url)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    store.migrate().await.context("running migrations")?;
    Ok(store)
}

/// Starts `count` jobs through the engine facade, a few requests at a time.
async fn start_jobs(engine: Engine, count: usize) -> anyhow::Result<()> {
    const STARTERS: usize = 8;
    let mut starters = JoinSet::new();
    for starter in 0..STARTERS {
        let engine = engine.clone();
        starters.spawn(async move {
            for i in (starter..count).step_by(STARTERS) {
                engine
                    .start(StartRequest {
                        user_id: 1 + (i % 100) as i64,
                        project_id: 1,
                        workflow_type: WORKFLOW.to_owned(),
                        params: json!({"prompt": format!("shot {i}: rain on the station platform"), "duration": 5}),
                        idempotency_key: None,
                        priority: 0,
                    })
                    .await
                    .with_context(|| format!("starting job {i}"))?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(result) = starters.join_next().await {
        result.context("a starter panicked")??;
    }
    Ok(())
}

/// The database's own count of rows written, once it stops moving (PostgreSQL publishes a
/// connection's counts shortly after it goes idle or closes).
async fn settled_db_rows(store: &Store) -> anyhow::Result<Option<i64>> {
    let mut last = db_rows_written(store).await?;
    if JobStore::backend_name(store) != "postgres" {
        return Ok(last);
    }
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = db_rows_written(store).await?;
        if now == last {
            return Ok(now);
        }
        last = now;
    }
    Ok(last)
}

fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}
