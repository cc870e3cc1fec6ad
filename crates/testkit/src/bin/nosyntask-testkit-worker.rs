//! A worker process for crash tests: runs the `crashy` workflow over a database until killed or
//! sent SIGTERM. Each step saves a checkpoint, sleeps, and returns whether it resumed from one.
//! Every finished handler run is appended to `--log` as `task_id attempt pid` so the test can tell
//! which runs happened where.
//!
//! With `--model-call ADDR --model-limit N` it runs the `model_call` workflow instead, calling
//! the provider stand-in at ADDR, with the model's limit recorded for the cluster.
//!
//! Usage: nosyntask-testkit-worker --db URL --log FILE [--concurrency N] [--sleep-ms MS] [--lease-ms MS]
//!        nosyntask-testkit-worker --db URL --model-call ADDR --model-limit N [--concurrency N]
//!        nosyntask-testkit-worker --db URL --fan-out ADDR [--concurrency N]   (the `fan_out` workflow)
//!        nosyntask-testkit-worker --db URL --start N   (migrate, start N `crashy` jobs, exit)
//!
//! `--hook-pause-ms MS` registers the [`HookLog`](nosyntask_testkit::hook_log::HookLog)
//! completion hook, holding each completion's transaction open MS after its insert.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use nosyntask_engine::ports::ModelLimit;
use nosyntask_engine::{Engine, EngineConfig, JobStore, Registry, Worker, WorkerConfig};
use nosyntask_testkit::workflows::{
    STAND_IN_MODEL, crashy_workflow, fan_out_workflow, model_call_workflow,
};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().collect();
    let Some(db) = arg(&args, "--db") else {
        bail!(
            "usage: nosyntask-testkit-worker --db URL --log FILE [--concurrency N] [--sleep-ms MS] [--lease-ms MS]"
        );
    };
    if let Some(count) = arg(&args, "--start") {
        return start_jobs(&db, count.parse().context("--start N")?).await;
    }
    let number = |name: &str, default: u64| -> anyhow::Result<u64> {
        arg(&args, name).map_or(Ok(default), |v| {
            v.parse().with_context(|| format!("{name} {v}"))
        })
    };
    let concurrency = number("--concurrency", 16)? as usize;
    let sleep = Duration::from_millis(number("--sleep-ms", 50)?);
    let lease = Duration::from_millis(number("--lease-ms", 2000)?);

    let store = nosyntask_store::Store::connect(&db).await?;
    if let Some(pause) = arg(&args, "--hook-pause-ms") {
        let pause = Duration::from_millis(pause.parse().context("--hook-pause-ms MS")?);
        let hook = Arc::new(nosyntask_testkit::hook_log::HookLog { pause });
        if store.set_transaction_hook(hook).is_err() {
            bail!("a completion hook is already registered");
        }
    }
    let store: Arc<dyn JobStore> = Arc::new(store);
    let mut registry = Registry::new();
    let mut model_limits = Vec::new();
    if let Some(addr) = arg(&args, "--fan-out") {
        registry.register(fan_out_workflow(&addr));
    } else if let Some(addr) = arg(&args, "--model-call") {
        let timeout = Duration::from_millis(number("--timeout-ms", 3000)?);
        registry.register(model_call_workflow(&addr, timeout));
        if let Some(limit) = arg(&args, "--model-limit") {
            model_limits.push(ModelLimit {
                name: STAND_IN_MODEL.to_owned(),
                max_concurrency: limit.parse().context("--model-limit N")?,
                requests_per_minute: None,
            });
        }
    } else {
        let log_path = arg(&args, "--log").context("--log FILE is required")?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {log_path}"))?;
        registry.register(crashy_workflow(sleep, Arc::new(Mutex::new(log))));
    }
    let engine = Engine::new(store, registry).with_config(EngineConfig {
        max_active_jobs_per_user: None,
        ..EngineConfig::default()
    });
    let worker = Worker::new(
        engine,
        WorkerConfig {
            concurrency,
            claim_batch: concurrency as u32,
            lease_ttl: lease,
            heartbeat_interval: lease / 4,
            sweep_interval: Duration::from_millis(250),
            poll_interval: Duration::from_millis(100),
            retention: None,
            model_limits,
            fan_out_poll: Duration::from_millis(100),
            cancel_check_interval: Duration::from_millis(250),
            ..WorkerConfig::default()
        },
    )
    .spawn();
    println!("worker ready");
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    worker.shutdown().await;
    Ok(())
}

/// Migrates the database and starts `count` crashy jobs, one call each.
async fn start_jobs(db: &str, count: usize) -> anyhow::Result<()> {
    let store = nosyntask_store::Store::connect(db).await?;
    store.migrate().await?;
    let sink = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
    let mut registry = Registry::new();
    registry.register(crashy_workflow(Duration::ZERO, Arc::new(Mutex::new(sink))));
    let engine = Engine::new(Arc::new(store), registry).with_config(EngineConfig {
        max_active_jobs_per_user: None,
        ..EngineConfig::default()
    });
    for n in 0..count {
        engine
            .start(nosyntask_engine::StartRequest {
                user_id: 1,
                project_id: 1,
                workflow_type: "crashy".into(),
                params: serde_json::json!({ "n": n }),
                idempotency_key: None,
                priority: 0,
            })
            .await?;
    }
    println!("started {count} jobs");
    Ok(())
}
