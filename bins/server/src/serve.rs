//! Wiring a process from its configuration: store, models, workflows, engine, workers and the
//! HTTP server; then graceful shutdown on SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use actix_web::HttpServer;
use anyhow::Context;
use nosyntask_artifacts::Artifacts;
use nosyntask_engine::ports::{ModelCatalog, ModelLimit};
use nosyntask_engine::{
    Engine, EngineConfig, JobStore, Metrics, RetentionConfig, Worker, WorkerConfig,
};
use nosyntask_providers::{Catalog, default_models};
use nosyntask_server::app::{AppParts, AppState, EventTiming, build_app};
use nosyntask_server::auth::{JwtAuth, dev_secret};
use nosyntask_server::config::{Secret, Settings};
use nosyntask_server::edge::{ConnectionLimiter, EdgeConfig};
use nosyntask_server::reads::JobReads;
use nosyntask_server::watch::JobWatch;
use nosyntask_server::webhooks;
use nosyntask_store::{Store, StoreOptions};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Lifetime of the development token printed at start.
const DEV_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// The configured JWT secret, or the development secret file's (created on first use). The flag
/// says whether it is the development one.
pub fn jwt_secret(settings: &Settings) -> anyhow::Result<(Secret, bool)> {
    match &settings.auth.jwt_secret {
        Some(secret) => Ok((secret.clone(), false)),
        None => Ok((dev_secret(&settings.auth.dev_secret_file)?, true)),
    }
}

/// Connects to the configured database (creating the directory of a SQLite file).
async fn connect(settings: &Settings) -> anyhow::Result<Store> {
    let url = settings.database.url.expose();
    if let Some(dir) = sqlite_dir(url) {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create database directory {}", dir.display()))?;
    }
    let options = StoreOptions {
        max_connections: settings.database.max_connections,
        sqlite_read_connections: settings.database.sqlite_read_connections,
        acquire_timeout: Duration::from_secs(settings.database.acquire_timeout_secs),
        ..StoreOptions::default()
    };
    Store::connect_with(url, options)
        .await
        .with_context(|| format!("cannot connect to the {} database", backend_of(url)))
}

/// Applies pending migrations (the `migrate` command).
pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let store = connect(settings).await?;
    store.migrate().await.context("migration failed")?;
    store.close().await;
    println!("migrations applied");
    Ok(())
}

/// Moves NanoStory's own workflow tables aside and copies their history (the
/// `nanostory-upgrade` command; see `nosyntask_nanostory`).
pub async fn nanostory_upgrade(settings: &Settings) -> anyhow::Result<()> {
    let store = connect(settings).await?;
    let report = nosyntask_nanostory::upgrade(&store)
        .await
        .context("the NanoStory upgrade failed")?;
    store.close().await;
    if report.renamed {
        println!(
            "moved NanoStory's tables aside: {} and {}",
            nosyntask_nanostory::LEGACY_JOBS,
            nosyntask_nanostory::LEGACY_TASKS
        );
    }
    println!(
        "copied {} jobs and {} tasks ({} interrupted jobs are failed and can be resumed; {} task rows left in the backup only)",
        report.jobs_copied, report.tasks_copied, report.jobs_interrupted, report.tasks_left_aside
    );
    Ok(())
}

/// Runs the process until SIGTERM/SIGINT.
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let role = settings.server.role;
    let (secret, dev) = jwt_secret(&settings)?;
    let auth = JwtAuth::new(&secret)?;

    let store = connect(&settings).await?;
    if settings.database.auto_migrate {
        store.migrate().await.context("migration failed")?;
    }
    if !settings.webhooks.is_empty() {
        // Before any request or worker: every event from now on gets its outbox rows.
        let _ = store.set_outbox_subscribers(webhooks::subscribers(&settings.webhooks));
    }
    let nanostory = match settings.nanostory_media_base() {
        Some(base) if settings.nanostory.enabled() => {
            let media = nosyntask_nanostory::MediaUrls::new(base);
            let source = nosyntask_nanostory::Mode::enable(&store, media)
                .await
                .context("cannot start NanoStory mode ([nanostory])")?;
            tracing::info!(
                media_base = base,
                "NanoStory mode: results land in NanoStory's tables"
            );
            Some(source)
        }
        _ => None,
    };
    let store = Arc::new(store);
    let store_impl = store.clone();
    let store: Arc<dyn JobStore> = store;

    let models = settings.models.clone().unwrap_or_else(default_models);
    let metrics = Arc::new(Metrics::new());
    let artifacts = Arc::new(
        Artifacts::open(settings.artifacts.store_config())
            .context("cannot open the artifact store ([artifacts])")?,
    );
    let catalog: Arc<dyn ModelCatalog> = Arc::new(
        Catalog::from_config(&models, artifacts.clone(), metrics.clone())
            .context("invalid [[models]] configuration")?,
    );
    let registry = nosyntask_workflows::registry(catalog.clone());
    let limit = settings.limits.max_active_jobs_per_user;
    let mut engine = Engine::new(store.clone(), registry)
        .with_metrics(metrics)
        .with_config(EngineConfig {
            max_active_jobs_per_user: (limit > 0).then_some(limit),
            fair_share_quantum: Duration::from_secs(settings.limits.fair_share_quantum_secs),
            ..EngineConfig::default()
        });
    if let Some(source) = nanostory {
        engine = engine.with_params_source(source);
    }
    // Ready times and leases follow the database's clock from the first request on.
    engine
        .clock()
        .sync()
        .await
        .context("cannot read the database clock")?;
    let shutdown = CancellationToken::new();
    let deliveries = if role.runs_workers() {
        let clock = engine.clock().clone();
        webhooks::spawn(
            store_impl.clone(),
            clock,
            &settings.webhooks,
            shutdown.clone(),
        )
        .context("invalid [[webhooks]] configuration")?
    } else {
        Vec::new()
    };

    let worker = role.runs_workers().then(|| {
        let limits = nosyntask_engine::ports::model_limits(&catalog.list());
        Worker::new(engine.clone(), worker_config(&settings, limits)).spawn()
    });
    let retention = (role.runs_workers() && settings.retention.enabled).then(|| {
        nosyntask_server::artifact_retention::spawn(
            artifacts.clone(),
            store_impl.clone(),
            Duration::from_secs(settings.retention.interval_secs),
            Duration::from_secs(settings.artifacts.retention_grace_secs),
        )
    });

    let reads = JobReads::new(engine.clone());
    let watch = JobWatch::start(
        Arc::clone(&reads),
        store.clone(),
        Duration::from_millis(settings.server.events_poll_ms),
        shutdown.clone(),
    );
    let state = AppState {
        reads,
        watch,
        engine,
        models: catalog,
        artifacts: artifacts.clone(),
        events: EventTiming {
            poll: Duration::from_millis(settings.server.events_poll_ms),
            keepalive: Duration::from_secs(settings.server.events_keepalive_secs),
        },
        quota_retry_after_secs: settings.limits.quota_retry_after_secs,
        outbox: store_impl.clone(),
        shutdown: shutdown.clone(),
    };
    let parts = AppParts::new(
        state,
        auth.clone(),
        role,
        settings.server.body_limit_bytes,
        settings.server.cors_allowed_origins.clone(),
    )
    .with_edge(EdgeConfig {
        body_read_timeout: Duration::from_secs(settings.server.body_read_timeout_secs),
    });
    let connections = ConnectionLimiter::new(settings.server.max_connections_per_ip);
    let bind = settings.server.bind_addr()?;
    let mut server = HttpServer::new(move || build_app(parts.clone()))
        .on_connect(move |connection, data| connections.on_connect(connection, data))
        .disable_signals()
        // Event streams end on shutdown by themselves; other requests get this long.
        .shutdown_timeout(10)
        .bind(bind)
        .with_context(|| format!("cannot listen on {bind}"))?;
    if let Some(workers) = settings.server.http_workers {
        server = server.workers(workers);
    }
    let addr = server.addrs().first().copied().unwrap_or(bind);
    announce(addr, dev.then_some(&auth))?;
    info!(%addr, ?role, backend = store.backend_name(), "nosyntask started");

    let server = server.run();
    let handle = server.handle();
    let mut server_task = tokio::spawn(server);

    tokio::select! {
        () = signal() => info!("shutdown signal received"),
        result = &mut server_task => {
            warn!(?result, "HTTP server stopped on its own");
        }
    }
    shutdown.cancel();
    if let Some(retention) = retention {
        retention.abort();
    }
    for delivery in deliveries {
        // A delivery cut off here is claimed again when its lease lapses.
        delivery.abort();
    }
    handle.stop(true).await;
    if let Some(worker) = worker {
        info!("stopping workers");
        worker.shutdown().await;
    }
    info!("stopped");
    Ok(())
}

fn worker_config(settings: &Settings, model_limits: Vec<ModelLimit>) -> WorkerConfig {
    let w = &settings.worker;
    let r = &settings.retention;
    let day = 24 * 3600;
    WorkerConfig {
        concurrency: w.concurrency,
        lease_ttl: w.lease_ttl(),
        heartbeat_interval: Duration::from_secs(w.heartbeat_interval_secs),
        poll_interval: Duration::from_millis(w.poll_interval_ms),
        progress_interval: Duration::from_millis(w.progress_interval_ms),
        progress_writes_per_flush: w.progress_writes_per_flush,
        cancel_check_interval: Duration::from_millis(w.cancel_check_interval_ms),
        sweep_interval: Duration::from_secs(w.sweep_interval_secs),
        shutdown_grace: Duration::from_secs(w.shutdown_grace_secs),
        retention: r.enabled.then(|| RetentionConfig {
            consumed_after: Duration::from_secs(u64::from(r.consumed_days) * day),
            unconsumed_after: Duration::from_secs(u64::from(r.unconsumed_days) * day),
            interval: Duration::from_secs(r.interval_secs),
        }),
        model_limits,
        ..WorkerConfig::default()
    }
}

/// Prints the listening line (tests and scripts read it) and, with the development secret, a
/// token and a curl example.
fn announce(addr: SocketAddr, dev_auth: Option<&JwtAuth>) -> anyhow::Result<()> {
    use std::io::Write;
    let url = format!("http://{addr}");
    let mut out = std::io::stdout().lock();
    writeln!(out, "nosyntask listening on {url}")?;
    if let Some(auth) = dev_auth {
        let token = auth.issue(1, false, DEV_TOKEN_TTL)?;
        writeln!(
            out,
            "development token (userId 1, valid 30 days; set auth.jwt_secret or JWT_SECRET in production):"
        )?;
        writeln!(out, "  export TOKEN={token}")?;
        writeln!(out, "try:")?;
        writeln!(
            out,
            "  curl -s -X POST {url}/api/workflows -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' \\\n    -d '{{\"workflowType\":\"prompt_generate\",\"projectId\":1,\"params\":{{\"description\":\"a lighthouse at dawn\"}}}}'"
        )?;
        writeln!(out, "  open {url}/docs for the API reference")?;
    }
    out.flush()?;
    Ok(())
}

async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(err) => {
                warn!(error = %err, "cannot listen for SIGTERM; only Ctrl-C stops the server");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The directory of a SQLite file URL (`sqlite://data/x.db?mode=rwc` → `data`).
fn sqlite_dir(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path.starts_with(":memory:") {
        return None;
    }
    Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
}

fn backend_of(url: &str) -> &str {
    url.split(':').next().unwrap_or("unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_dirs() {
        assert_eq!(
            sqlite_dir("sqlite://data/nosyntask.db?mode=rwc"),
            Some("data".into())
        );
        assert_eq!(sqlite_dir("sqlite::memory:"), None);
        assert_eq!(sqlite_dir("sqlite://x.db"), None);
        assert_eq!(sqlite_dir("postgres://h/db"), None);
        assert_eq!(sqlite_dir("sqlite:///tmp/a/b.db"), Some("/tmp/a".into()));
    }
}
