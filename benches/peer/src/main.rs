//! The peer comparison of issue 18, rerunnable by anyone: graphile_worker 0.14 (the fastest Rust
//! PostgreSQL queue measured here) and nosyntask on the same PostgreSQL server, alternating
//! round by round, each on a fresh database, with the same work: N no-op jobs started one by one
//! (each start awaited, as a request handler does), then drained by one worker of C slots.
//!
//! graphile_worker runs with the settings of its own throughput benchmark (`benches/perf_test.rs`
//! in its repository: 5 ms poll interval, 5 ms completion batch delay, a local queue) at the same
//! concurrency as nosyntask; nosyntask runs as `nosyntask-bench engine` (the project's benchmark
//! command, given by `--nosyntask-bench`) with its defaults. The ratio of the medians is printed
//! last, as JSON. A job counts as done when its completion is committed (nosyntask-bench counts
//! the worker's recorded completions; graphile_worker's own benchmark counts handler runs, which
//! this prints too).

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use graphile_worker::{
    IntoTaskHandlerResult, JobSpec, LocalQueueConfig, TaskHandler, WorkerContext, WorkerOptions,
    WorkerUtils,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::postgres::PgPoolOptions;

#[derive(Parser)]
#[command(name = "nosyntask-peer-bench")]
struct Args {
    /// The PostgreSQL server, without a database name (each run creates and drops its own).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    server: String,
    /// Jobs per run.
    #[arg(long, default_value_t = 20_000)]
    jobs: u64,
    /// Handler slots of each worker (nosyntask's default is 32).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// graphile_worker's local queue size (its benchmark uses 5,000 with 500 slots; 100 is the
    /// size its test helpers use).
    #[arg(long, default_value_t = 100)]
    local_queue: usize,
    /// Rounds; each runs graphile_worker, then nosyntask.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// The release build of `nosyntask-bench`.
    #[arg(long, default_value = "target/release/nosyntask-bench")]
    nosyntask_bench: String,
    /// No-op steps per nosyntask job (graphile_worker jobs have one).
    #[arg(long, default_value_t = 1)]
    steps: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Noop {
    n: u64,
}

#[derive(Clone, Debug)]
struct Done(Arc<AtomicU64>);

impl TaskHandler for Noop {
    const IDENTIFIER: &'static str = "noop";

    async fn run(self, ctx: WorkerContext) -> impl IntoTaskHandlerResult {
        if let Some(done) = ctx.get_ext::<Done>() {
            done.0.fetch_add(1, Ordering::Relaxed);
        }
        Ok::<(), String>(())
    }
}

/// One run's figures.
#[derive(Debug, Clone, Copy, Serialize)]
struct Figures {
    starts_per_s: f64,
    jobs_per_s: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut peer = Vec::new();
    let mut ours = Vec::new();
    for round in 1..=args.rounds {
        let figures = graphile(&args, "peer_bench_graphile").await?;
        println!(
            "{}",
            json!({"round": round, "engine": "graphile_worker 0.14.1", "figures": figures})
        );
        peer.push(figures);
        let figures = nosyntask(&args, "peer_bench_nosyntask").await?;
        println!(
            "{}",
            json!({"round": round, "engine": "nosyntask", "figures": figures})
        );
        ours.push(figures);
    }
    let median = |runs: &[Figures], pick: fn(&Figures) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(pick).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (ours_drain, peer_drain) = (
        median(&ours, |f| f.jobs_per_s),
        median(&peer, |f| f.jobs_per_s),
    );
    let (ours_starts, peer_starts) = (
        median(&ours, |f| f.starts_per_s),
        median(&peer, |f| f.starts_per_s),
    );
    println!(
        "{}",
        json!({
            "jobs": args.jobs,
            "concurrency": args.concurrency,
            "nosyntask_steps": args.steps,
            "drain_jobs_per_s": {"nosyntask": ours_drain.round(), "graphile_worker": peer_drain.round()},
            "drain_ratio": (ours_drain / peer_drain * 100.0).round() / 100.0,
            "starts_per_s": {"nosyntask": ours_starts.round(), "graphile_worker": peer_starts.round()},
            "starts_ratio": (ours_starts / peer_starts * 100.0).round() / 100.0,
        })
    );
    Ok(())
}

/// A fresh, empty database named `name` on the server; its URL.
async fn fresh_database(server: &str, name: &str) -> anyhow::Result<String> {
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&format!("{server}/postgres"))
        .await
        .context("connecting to the PostgreSQL server")?;
    // Two statements: several in one string run as one transaction, which DROP DATABASE refuses.
    for statement in [
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        format!("CREATE DATABASE {name}"),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
            .execute(&admin)
            .await?;
    }
    admin.close().await;
    Ok(format!("{server}/{name}"))
}

async fn graphile(args: &Args, name: &str) -> anyhow::Result<Figures> {
    let url = fresh_database(&args.server, name).await?;
    let pool = PgPoolOptions::new()
        .max_connections(u32::try_from(args.concurrency).unwrap_or(32).max(10))
        .connect(&url)
        .await?;
    let utils = WorkerUtils::new(pool.clone(), "graphile_worker");
    utils.migrate().await?;
    let started = Instant::now();
    for n in 0..args.jobs {
        utils.add_job(Noop { n }, JobSpec::default()).await?;
    }
    let starts_per_s = args.jobs as f64 / started.elapsed().as_secs_f64();

    let done = Arc::new(AtomicU64::new(0));
    let worker = Arc::new(
        WorkerOptions::default()
            .pg_pool(pool.clone())
            .schema("graphile_worker")
            .concurrency(args.concurrency)
            .poll_interval(Duration::from_millis(5))
            .complete_job_batch_delay(Duration::from_millis(5))
            .local_queue(LocalQueueConfig::default().with_size(args.local_queue))
            .add_extension(Done(done.clone()))
            .define_job::<Noop>()
            .init()
            .await?,
    );
    let running = Arc::clone(&worker);
    let started = Instant::now();
    let handle = tokio::spawn(async move { running.run().await });
    while done.load(Ordering::Relaxed) < args.jobs {
        if handle.is_finished() {
            bail!("graphile_worker stopped before draining");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let handled_per_s = args.jobs as f64 / started.elapsed().as_secs_f64();
    // Done means committed, as nosyntask-bench counts it: graphile_worker deletes a job when it
    // records its completion (in batches, after the handler returned).
    loop {
        let (left,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM graphile_worker._private_jobs")
            .fetch_one(&pool)
            .await?;
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let jobs_per_s = args.jobs as f64 / started.elapsed().as_secs_f64();
    eprintln!(
        "graphile_worker: handlers ran at {handled_per_s:.0} jobs/s, completions committed at {jobs_per_s:.0}/s"
    );
    worker.request_shutdown();
    let _ = handle.await;
    pool.close().await;
    Ok(Figures {
        starts_per_s,
        jobs_per_s,
    })
}

async fn nosyntask(args: &Args, name: &str) -> anyhow::Result<Figures> {
    let url = fresh_database(&args.server, name).await?;
    let output = Command::new(&args.nosyntask_bench)
        .args(["engine", "--db", &url])
        .args(["--jobs", &args.jobs.to_string()])
        .args(["--steps", &args.steps.to_string()])
        .args(["--workers", &args.concurrency.to_string()])
        .output()
        .with_context(|| format!("running {}", args.nosyntask_bench))?;
    if !output.status.success() {
        bail!(
            "nosyntask-bench failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok())
        .context("nosyntask-bench printed no JSON")?;
    let figure = |key: &str| {
        report[key]
            .as_f64()
            .with_context(|| format!("nosyntask-bench's report has no {key}: {report}"))
    };
    Ok(Figures {
        starts_per_s: figure("starts_per_s")?,
        jobs_per_s: figure("jobs_per_s")?,
    })
}
