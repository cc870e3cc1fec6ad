//! `nosyntask-bench`: measures the engine through its public API and real store.
//!
//! - `engine`: starts N jobs of S no-op steps one call at a time (`starts_per_s`), then drains them
//!   with a worker pool (`jobs_per_s`, `steps_per_s`).
//! - `waiting`: N one-step video jobs on a simulated model that takes a minute, all waiting at
//!   once in this process (`peak_rss_mb`, `db_writes_per_task_per_s`, `completed`).
//!
//! - `latency`: start → completed time of one S-step no-op job at a time on an idle, running
//!   worker (`median_ms`, `p95_ms`, `p99_ms`).
//! - `history-cost`: the database cost of `/metrics` scrapes and of 1,000 event-stream watchers
//!   of one job, with N finished jobs in the tables (run it at two sizes and compare).
//! - `scheduling`: a model limited across the cluster, one user's backlog beside another's
//!   jobs, a fan-out step (see `scheduling.rs`).
//!
//! Each command prints progress on stderr and ends its output with one JSON line of figures.

mod engine;
mod history_cost;
mod latency;
mod probe;
mod scheduling;
mod waiting;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "nosyntask-bench", about = "Benchmarks of the nosyntask engine")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Engine overhead: start N no-op jobs one by one, then drain them.
    Engine(engine::EngineArgs),
    /// Start → completed latency of one job at a time on an idle, running worker.
    Latency(latency::LatencyArgs),
    /// Waiting is free: N tasks waiting on a slow simulated video model in one worker process.
    Waiting(waiting::WaitingArgs),
    /// History costs nothing: `/metrics` and 1,000 event-stream watchers of one job, in a
    /// PostgreSQL database holding N finished jobs.
    HistoryCost(history_cost::HistoryCostArgs),
    /// Scheduling: a model's cluster-wide limit, fair share between users, a fan-out step.
    Scheduling(scheduling::SchedulingArgs),
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
    match Cli::parse().command {
        Command::Engine(args) => engine::run(args).await,
        Command::Latency(args) => latency::run(args).await,
        Command::Waiting(args) => waiting::run(args).await,
        Command::HistoryCost(args) => history_cost::run(args).await,
        Command::Scheduling(args) => scheduling::run(args).await,
    }
}
