//! The harness of the engine behaviour tests: a fresh store per test and backend, wrapped in a
//! store that counts progress writes, and an engine and workers tuned for quick tests.

#![allow(dead_code, unused_macros, unused_imports)]

use std::sync::Arc;
use std::time::Duration;

use nosyntask_domain::{JobId, JobWithTasks, UserId, Viewer};
use nosyntask_engine::{
    Backoff, Engine, JobStore, Registry, StartRequest, Started, Worker, WorkerConfig, WorkerHandle,
};
use nosyntask_store::testing::{TestStore, test_store};
use nosyntask_testkit::counting::CountingStore;
use serde_json::Value;

/// Generates one `#[tokio::test]` per backend for an `async fn(Harness)`.
macro_rules! for_each_backend {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some(h) = $crate::common::Harness::new("sqlite").await {
                    super::$name(h).await;
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(h) = $crate::common::Harness::new("postgres").await {
                    super::$name(h).await;
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mysql() {
                if let Some(h) = $crate::common::Harness::new("mysql").await {
                    super::$name(h).await;
                }
            }
        }
    };
}
pub(crate) use for_each_backend;

pub struct Harness {
    pub store: Arc<dyn JobStore>,
    pub counting: Arc<CountingStore>,
    pub user: UserId,
    _database: TestStore,
}

impl Harness {
    /// A fresh migrated database of `backend`; `None` (after saying so) when its URL is not set.
    pub async fn new(backend: &str) -> Option<Harness> {
        // SQLite as the server runs it by default: a file, a writer and a read pool.
        let backend = if backend == "sqlite" {
            "sqlite-file"
        } else {
            backend
        };
        let database = test_store(backend)
            .await
            .unwrap_or_else(|err| panic!("creating a {backend} test database: {err}"))?;
        let counting = Arc::new(CountingStore::new(database.shared()));
        Some(Harness {
            store: counting.clone(),
            counting,
            user: 1000 + i64::from(rand_u16()),
            _database: database,
        })
    }

    pub fn engine(&self, registry: Registry) -> Engine {
        Engine::new(self.store.clone(), registry)
    }

    /// Test tuning: short polls, leases and backoff so the suite stays quick.
    pub fn worker_config() -> WorkerConfig {
        WorkerConfig {
            concurrency: 8,
            claim_batch: 8,
            lease_ttl: Duration::from_secs(3),
            heartbeat_interval: Duration::from_millis(500),
            poll_interval: Duration::from_millis(50),
            progress_interval: Duration::from_millis(200),
            cancel_check_interval: Duration::from_millis(250),
            cancel_grace: Duration::from_millis(500),
            sweep_interval: Duration::from_millis(250),
            shutdown_grace: Duration::from_secs(2),
            backoff: Backoff {
                base: Duration::from_millis(20),
                max: Duration::from_millis(200),
            },
            retention: None,
            ..WorkerConfig::default()
        }
    }

    pub fn worker(&self, engine: &Engine) -> WorkerHandle {
        self.worker_with(engine, |_| {})
    }

    pub fn worker_with(
        &self,
        engine: &Engine,
        tune: impl FnOnce(&mut WorkerConfig),
    ) -> WorkerHandle {
        let mut config = Self::worker_config();
        tune(&mut config);
        Worker::new(engine.clone(), config).spawn()
    }

    pub async fn start(&self, engine: &Engine, workflow_type: &str, params: Value) -> JobId {
        self.start_full(engine, workflow_type, params)
            .await
            .job
            .job
            .id
    }

    pub async fn start_as(
        &self,
        engine: &Engine,
        user: UserId,
        workflow_type: &str,
        params: Value,
    ) -> JobId {
        start_request(engine, user, workflow_type, params)
            .await
            .job
            .job
            .id
    }

    pub async fn start_full(&self, engine: &Engine, workflow_type: &str, params: Value) -> Started {
        start_request(engine, self.user, workflow_type, params).await
    }

    /// Polls the job until `done` holds.
    pub async fn wait_until(
        &self,
        engine: &Engine,
        job: JobId,
        done: impl Fn(&JobWithTasks) -> bool,
    ) -> JobWithTasks {
        let viewer = Viewer::admin(0);
        nosyntask_testkit::wait_for(&format!("job {job}"), Duration::from_secs(30), || async {
            let current = engine.get(&viewer, job).await.ok()?;
            done(&current).then_some(current)
        })
        .await
    }

    pub async fn wait_terminal(&self, engine: &Engine, job: JobId) -> JobWithTasks {
        self.wait_until(engine, job, |j| j.job.status.is_terminal())
            .await
    }

    /// Waits until no job of any user is pending or running.
    pub async fn wait_all_terminal(&self, engine: &Engine) {
        let viewer = Viewer::admin(0);
        // Generous: 6,000 steps of the exactly-once test on a loaded 2-core machine (debug build).
        nosyntask_testkit::wait_for("all jobs to finish", Duration::from_secs(150), || async {
            let jobs = engine
                .list(
                    &viewer,
                    nosyntask_engine::ListQuery {
                        limit: 10_000,
                        ..Default::default()
                    },
                )
                .await
                .ok()?;
            jobs.iter().all(|j| j.status.is_terminal()).then_some(())
        })
        .await
    }
}

async fn start_request(
    engine: &Engine,
    user: UserId,
    workflow_type: &str,
    params: Value,
) -> Started {
    engine
        .start(StartRequest {
            user_id: user,
            project_id: 1,
            workflow_type: workflow_type.to_owned(),
            params,
            idempotency_key: None,
            priority: 0,
        })
        .await
        .unwrap_or_else(|err| panic!("starting {workflow_type}: {err}"))
}

fn rand_u16() -> u16 {
    (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
        % 60_000) as u16
}
