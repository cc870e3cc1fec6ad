//! "History costs nothing": the database cost of `/metrics` scrapes and of many event-stream
//! watchers of one job, in a PostgreSQL database already holding `--jobs` finished jobs. Run it
//! at two sizes (say 10 k and 1 M): the per-scrape and per-change figures must stay the same.
//!
//! The server binary runs API-only against the database; the benchmark makes the job changes
//! itself through the store. Cost is what PostgreSQL counts for the database
//! (`pg_stat_database`: transactions, buffer accesses, rows returned and fetched), read after
//! every backend reported its counts (PostgreSQL 15 reports them at most once a second, and
//! within ten seconds of going idle), with the same phase run without the measured part
//! subtracted: idle time for the scrapes, the same writes without watchers for the streams.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use nosyntask_engine::JobStore;
use nosyntask_engine::ports::{Completion, NewJob, NewTask, ProgressUpdate};
use nosyntask_store::Store;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde::Serialize;
use serde_json::json;

#[derive(clap::Args)]
pub struct HistoryCostArgs {
    /// A fresh PostgreSQL database: postgres://…
    #[arg(long)]
    db: String,
    /// Finished jobs put in the tables before measuring.
    #[arg(long, default_value_t = 10_000)]
    jobs: u64,
    /// `/metrics` scrapes measured.
    #[arg(long, default_value_t = 200)]
    scrapes: u32,
    /// Event streams watching the one job that changes (`0`: measure the scrapes only).
    #[arg(long, default_value_t = 1_000)]
    watchers: usize,
    /// Changes of that job (a claim, progress writes, the completion).
    #[arg(long, default_value_t = 20)]
    changes: u32,
    /// The server binary (default: `nosyntask-server` beside this one).
    #[arg(long)]
    server_bin: Option<std::path::PathBuf>,
}

/// Cumulative counters of the database.
#[derive(Debug, Clone, Copy, Default, Serialize)]
struct Cost {
    xacts: i64,
    blocks: i64,
    rows: i64,
}

impl std::ops::Sub for Cost {
    type Output = Cost;
    fn sub(self, o: Cost) -> Cost {
        Cost {
            xacts: self.xacts - o.xacts,
            blocks: self.blocks - o.blocks,
            rows: self.rows - o.rows,
        }
    }
}

impl Cost {
    fn per(self, n: f64) -> serde_json::Value {
        json!({
            "xacts": round(self.xacts as f64 / n),
            "blocks": round(self.blocks as f64 / n),
            "rows": round(self.rows as f64 / n),
        })
    }
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Long enough for every backend to have reported its counts.
const SETTLE: Duration = Duration::from_secs(11);

pub async fn run(args: HistoryCostArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.db.starts_with("postgres"),
        "--db must be a PostgreSQL URL (the figures come from pg_stat_database)"
    );
    let store = Store::connect(&args.db).await.context("connecting")?;
    store.migrate().await.context("migrating")?;
    let present = jobs_present(&store).await?;
    if present == 0 {
        eprintln!("filling {} finished jobs", args.jobs);
        let filled = Instant::now();
        fill(&store, args.jobs).await?;
        eprintln!("  filled in {:.1} s", filled.elapsed().as_secs_f64());
    } else {
        // A database filled by an earlier run: measure again on it.
        anyhow::ensure!(
            present.abs_diff(args.jobs) < 1_000,
            "the database holds {present} jobs, not about --jobs {}; give a fresh one",
            args.jobs
        );
        eprintln!("reusing the {present} jobs already there");
    }
    let mut server = ServerProcess::start(&args)?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.watchers + 8)
        .build()?;

    // /metrics: K scrapes, minus an idle period as long.
    tokio::time::sleep(SETTLE).await;
    let idle_from = cost(&store).await?;
    let started = Instant::now();
    for _ in 0..args.scrapes {
        let response = client
            .get(format!("{}/metrics", server.base))
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "/metrics answered {}",
            response.status()
        );
        response.bytes().await?;
    }
    let scrape_time = started.elapsed();
    tokio::time::sleep(SETTLE).await;
    let scraped = cost(&store).await? - idle_from;
    let idle_start = cost(&store).await?;
    tokio::time::sleep(scrape_time + SETTLE).await;
    let idle = cost(&store).await? - idle_start;
    let per_scrape = (scraped - idle).per(f64::from(args.scrapes));
    eprintln!("  /metrics: {per_scrape} per scrape");

    // Watchers: the same writes with and without them.
    let per_change = if args.watchers > 0 {
        let watched = changes_cost(&store, &client, &server, &args, args.watchers).await?;
        let unwatched = changes_cost(&store, &client, &server, &args, 0).await?;
        let per_change = (watched - unwatched).per(f64::from(args.changes));
        eprintln!("  {} watchers: {per_change} per change", args.watchers);
        per_change
    } else {
        serde_json::Value::Null
    };
    server.stop();
    store.close().await;
    println!(
        "{}",
        json!({
            "scenario": "history_cost",
            "jobs_in_tables": args.jobs,
            "metrics_scrapes": args.scrapes,
            "metrics_cost_per_scrape": per_scrape,
            "metrics_scrape_ms": round(scrape_time.as_secs_f64() * 1000.0 / f64::from(args.scrapes)),
            "watchers": args.watchers,
            "changes": args.changes,
            "watchers_cost_per_change": per_change,
            "method": "pg_stat_database deltas (xact_commit+xact_rollback, blks_hit+blks_read, \
                       tup_returned+tup_fetched) of the database, after 11 s for every backend to \
                       report, minus the same phase without the measured part",
        })
    );
    Ok(())
}

/// What one job's `changes` cost the database with `watchers` event streams on it.
async fn changes_cost(
    store: &Store,
    client: &reqwest::Client,
    server: &ServerProcess,
    args: &HistoryCostArgs,
    watchers: usize,
) -> anyhow::Result<Cost> {
    let now = store.database_time().await?;
    let job = store
        .create_job(
            NewJob {
                user_id: 1,
                project_id: 1,
                workflow_type: "prompt_generate".to_owned(),
                input_params: json!({"description": "watched"}),
                tasks: vec![NewTask {
                    task_type: "prompt_generate".to_owned(),
                    target_type: "prompt".to_owned(),
                    target_id: None,
                    max_attempts: 3,
                    model_name: None,
                }],
                idempotency_key: None,
                idempotency_window: Duration::from_secs(60),
                unique_key: None,
                max_active_per_user: None,
                priority: 0,
                fair_share_quantum: Duration::ZERO,
            },
            now,
        )
        .await?
        .job;
    let id = job.job.id;
    let mut streams = Vec::with_capacity(watchers);
    let opened = futures::stream::iter(0..watchers)
        .map(|_| {
            let request = client
                .get(format!("{}/api/workflows/{id}/events", server.base))
                .bearer_auth(&server.token)
                .send();
            async move {
                let response = request.await?;
                anyhow::ensure!(
                    response.status().is_success(),
                    "events: {}",
                    response.status()
                );
                Ok(response.bytes_stream())
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    for stream in opened {
        streams.push(stream?);
    }
    // Every stream reads to its end (the job's completion), counting `job` events.
    let readers: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            tokio::spawn(async move {
                let mut events = 0u32;
                while let Some(chunk) = stream.next().await {
                    let Ok(chunk) = chunk else { break };
                    events += chunk.windows(10).filter(|w| w == b"event: job").count() as u32;
                }
                events
            })
        })
        .collect();
    tokio::time::sleep(SETTLE).await;
    let before = cost(store).await?;
    drive(store, args.changes).await?;
    let mut least = u32::MAX;
    for reader in readers {
        least = least.min(tokio::time::timeout(Duration::from_secs(60), reader).await??);
    }
    if watchers > 0 {
        eprintln!("  every watcher got at least {least} events");
    }
    tokio::time::sleep(SETTLE).await;
    Ok(cost(store).await? - before)
}

/// Claims the ready task, writes progress `changes - 2` times, completes it; each write a change
/// the streams see (spaced beyond the server's poll interval).
async fn drive(store: &Store, changes: u32) -> anyhow::Result<()> {
    let gap = Duration::from_millis(400);
    let now = store.database_time().await?;
    let mut claimed = store
        .claim_tasks("bench", 1, Duration::from_secs(300), now)
        .await?;
    let Some(task) = claimed.pop() else {
        bail!("the watched job's task was not claimable");
    };
    for i in 1..changes.saturating_sub(1) {
        tokio::time::sleep(gap).await;
        let progress = i32::try_from(i * 90 / changes).unwrap_or(90);
        store
            .write_progress(
                &[ProgressUpdate {
                    fence: task.fence.clone(),
                    progress,
                    job_progress: progress,
                    started: None,
                }],
                store.database_time().await?,
            )
            .await?;
    }
    tokio::time::sleep(gap).await;
    store
        .complete_tasks(
            &[Completion {
                fence: task.fence.clone(),
                result: json!({"prompt": "done"}),
                started: None,
                is_last_step: true,
                job_progress: 100,
                usage: None,
            }],
            store.database_time().await?,
        )
        .await?;
    Ok(())
}

/// Jobs in the tables now.
async fn jobs_present(store: &Store) -> anyhow::Result<u64> {
    let row = store
        .connection()
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT COUNT(*) FROM workflow_jobs",
        ))
        .await?
        .context("no count")?;
    Ok(u64::try_from(row.try_get_by_index::<i64>(0)?).unwrap_or_default())
}

async fn cost(store: &Store) -> anyhow::Result<Cost> {
    let row = store
        .connection()
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT (xact_commit + xact_rollback)::bigint, (blks_hit + blks_read)::bigint, \
             (tup_returned + tup_fetched)::bigint FROM pg_stat_database \
             WHERE datname = current_database()",
        ))
        .await?
        .context("pg_stat_database has no row for this database")?;
    Ok(Cost {
        xacts: row.try_get_by_index(0)?,
        blocks: row.try_get_by_index(1)?,
        rows: row.try_get_by_index(2)?,
    })
}

/// `jobs` finished one-step jobs with their tasks, written in one statement each.
async fn fill(store: &Store, jobs: u64) -> anyhow::Result<()> {
    let db = store.connection();
    let at = chrono::Utc::now().timestamp_millis() - 86_400_000;
    for sql in [
        format!(
            "INSERT INTO workflow_jobs (user_id, project_id, workflow_type, status, \
             current_step_index, total_steps, input_params, is_consumed, progress, created_at, \
             updated_at, started_at, completed_at) \
             SELECT 1 + g % 100, 1, 'prompt_generate', \
             CASE WHEN g % 10 = 0 THEN 'failed' ELSE 'completed' END, 0, 1, \
             '{{\"description\":\"a finished job\"}}', g % 2 = 0, 100, {at}, {at}, {at}, {at} \
             FROM generate_series(1, {jobs}) g"
        ),
        format!(
            "INSERT INTO generation_tasks (job_id, step_index, user_id, project_id, task_type, \
             target_type, status, progress, result_data, attempts, max_attempts, created_at, \
             updated_at, started_at, completed_at) \
             SELECT id, 0, user_id, 1, 'prompt_generate', 'prompt', status, 100, \
             '{{\"prompt\":\"p\"}}', 1, 3, {at}, {at}, {at}, {at} FROM workflow_jobs"
        ),
        // Settled now, so autovacuum's passes over the new rows are not measured.
        "VACUUM (ANALYZE)".to_owned(),
    ] {
        db.execute_raw(Statement::from_string(DbBackend::Postgres, sql))
            .await
            .context("filling the tables")?;
    }
    Ok(())
}

/// The server binary, API-only, on the benchmark's database.
struct ServerProcess {
    child: Child,
    base: String,
    token: String,
    _dir: tempfile::TempDir,
}

impl ServerProcess {
    fn start(args: &HistoryCostArgs) -> anyhow::Result<Self> {
        let binary = match &args.server_bin {
            Some(path) => path.clone(),
            None => std::env::current_exe()?.with_file_name("nosyntask-server"),
        };
        let dir = tempfile::tempdir()?;
        let mut child = Command::new(&binary)
            .current_dir(dir.path())
            .env("NOSYNTASK__DATABASE__URL", &args.db)
            .env("NOSYNTASK__SERVER__BIND", "127.0.0.1:0")
            .env("NOSYNTASK__SERVER__ROLE", "api")
            .env(
                "NOSYNTASK__SERVER__MAX_CONNECTIONS_PER_IP",
                (args.watchers * 2 + 64).to_string(),
            )
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let (mut base, mut token) = (None, None);
        for line in lines.by_ref() {
            let line = line?;
            if let Some(url) = line.strip_prefix("nosyntask listening on ") {
                base = Some(url.trim().to_owned());
            }
            if let Some(t) = line.trim().strip_prefix("export TOKEN=") {
                token = Some(t.to_owned());
            }
            if base.is_some() && token.is_some() {
                break;
            }
        }
        let (Some(base), Some(token)) = (base, token) else {
            bail!("the server did not print its address and development token");
        };
        // Keep reading: a closed pipe would fail the server's next line.
        std::thread::spawn(move || lines.for_each(drop));
        Ok(ServerProcess {
            child,
            base,
            token,
            _dir: dir,
        })
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
