//! Connecting, migrating and cross-process wake-ups: what the contract suite cannot see
//! through one store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use nosyntask_engine::ports::{NewJob, NewTask};
use nosyntask_engine::{JobStore, StoreError};
use nosyntask_store::testing::test_store;
use nosyntask_store::{Store, StoreOptions};

fn job() -> NewJob {
    NewJob {
        user_id: 1,
        project_id: 1,
        workflow_type: "noop".into(),
        input_params: serde_json::json!({}),
        tasks: vec![NewTask {
            task_type: "noop".into(),
            target_type: "none".into(),
            target_id: None,
            max_attempts: 1,
            model_name: None,
        }],
        idempotency_key: None,
        idempotency_window: Duration::from_secs(60),
        unique_key: None,
        max_active_per_user: None,
        priority: 0,
        fair_share_quantum: std::time::Duration::ZERO,
    }
}

#[tokio::test]
async fn sqlite_file_urls_create_their_directory_and_keep_data() {
    let dir = std::env::temp_dir().join(format!("nosyntask-connect-{:x}", rand_suffix()));
    let url = format!("sqlite://{}/nested/jobs.db?mode=rwc", dir.display());
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    // Migrating again is a no-op.
    store.migrate().await.unwrap();
    let id = store
        .create_job(job(), chrono::Utc::now())
        .await
        .unwrap()
        .job
        .job
        .id;
    store.close().await;

    let reopened = Store::connect(&url).await.unwrap();
    reopened.migrate().await.unwrap();
    assert!(reopened.get_job(id).await.unwrap().is_some());
    reopened.close().await;
    std::fs::remove_dir_all(dir).unwrap();
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

#[tokio::test]
async fn in_memory_store_is_one_database() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    // Concurrent calls share the single connection (and so the same database).
    let creates: Vec<_> = (0..10)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.create_job(job(), chrono::Utc::now()).await })
        })
        .collect();
    for create in creates {
        let id = create.await.unwrap().unwrap().job.job.id;
        assert!(store.get_job(id).await.unwrap().is_some());
    }
    store.ping().await.unwrap();
}

#[tokio::test]
async fn unreachable_servers_are_unavailable() {
    // Connecting retries until the acquire timeout (a database still starting up).
    let options = StoreOptions {
        acquire_timeout: Duration::from_millis(300),
        ..StoreOptions::default()
    };
    let err = Store::connect_with("postgres://postgres@127.0.0.1:1/nothing", options.clone())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let err = Store::connect_with("mysql://root@127.0.0.1:1/nothing", options)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let err = Store::connect("oracle://x").await.unwrap_err();
    assert!(matches!(err, StoreError::Other(_)), "{err:?}");
}

#[tokio::test]
async fn calls_on_a_closed_store_are_unavailable() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    store.close().await;
    let err = store.get_job(1).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}

/// A start in one process wakes idle workers of another through `LISTEN/NOTIFY`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_notifications_wake_other_processes() {
    let Some(db) = test_store("postgres").await.unwrap() else {
        return;
    };
    let other = Store::connect(db.url()).await.unwrap();
    // The listener wakes its store once it is subscribed (it may have missed something).
    other.wait_for_work(Duration::from_secs(10)).await;
    let waiter = {
        let other = other.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            other.wait_for_work(Duration::from_secs(30)).await;
            started.elapsed()
        })
    };
    db.store()
        .create_job(job(), chrono::Utc::now())
        .await
        .unwrap();
    let waited = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the other store woke")
        .unwrap();
    assert!(waited < Duration::from_secs(10));
    other.close().await;
    db.cleanup().await;
}

/// Several processes migrating one database at once take turns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrations_take_turns() {
    for backend in ["postgres", "mysql"] {
        let Some(db) = test_store(backend).await.unwrap() else {
            continue;
        };
        let mut stores = Vec::new();
        for _ in 0..3 {
            stores.push(Store::connect(db.url()).await.unwrap());
        }
        let runs: Vec<_> = stores
            .iter()
            .map(|s| {
                let s = s.clone();
                tokio::spawn(async move { s.migrate().await })
            })
            .collect();
        for run in runs {
            run.await.unwrap().unwrap();
        }
        for store in stores {
            store.close().await;
        }
        db.cleanup().await;
    }
}

/// After the server drops every connection (a restart), calls fail as `Unavailable` for a moment
/// and then work again on fresh connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_recovers_after_connections_are_dropped() {
    let Some(db) = test_store("postgres").await.unwrap() else {
        return;
    };
    let store = db.shared();
    // Open several pooled connections.
    let creates: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.create_job(job(), chrono::Utc::now()).await })
        })
        .collect();
    let mut ids = Vec::new();
    for create in creates {
        ids.push(create.await.unwrap().unwrap().job.job.id);
    }
    let database = db.url().rsplit('/').next().unwrap().to_owned();
    let admin = Store::connect(&std::env::var("NOSYNTASK_TEST_POSTGRES_URL").unwrap())
        .await
        .unwrap();
    sea_orm::ConnectionTrait::execute_unprepared(
        admin.connection(),
        &format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{database}' AND pid <> pg_backend_pid()"
        ),
    )
    .await
    .unwrap();
    admin.close().await;
    // Reads go through the dead connections to a live one.
    for id in &ids {
        assert!(store.get_job(*id).await.unwrap().is_some());
    }
    // Writes report each dead connection once (they may not run again: a broken write may have
    // committed), and then work.
    let mut failures = 0;
    loop {
        match store.create_job(job(), chrono::Utc::now()).await {
            Ok(_) => break,
            Err(StoreError::Unavailable(_)) => failures += 1,
            Err(err) => panic!("{err:?}"),
        }
        assert!(failures < 20, "the store did not recover");
    }
    println!("recovered after {failures} failed calls");
    db.cleanup().await;
}

/// A `workflow_jobs` table the engine did not create (NanoStory's own engine keeps one): the
/// migrations would pass over it with `CREATE TABLE IF NOT EXISTS` and fail on every statement
/// after, so `migrate` refuses, naming the upgrade, and changes nothing.
async fn migrate_refuses_a_foreign_workflow_jobs_table(backend: &str) {
    let Some(db) = nosyntask_store::testing::unmigrated_test_store(backend)
        .await
        .unwrap()
    else {
        return;
    };
    use sea_orm::ConnectionTrait;
    db.store()
        .connection()
        .execute_unprepared("CREATE TABLE workflow_jobs (id INT PRIMARY KEY, status VARCHAR(20))")
        .await
        .unwrap();
    assert!(db.store().has_foreign_workflow_tables().await.unwrap());
    let err = db.store().migrate().await.unwrap_err();
    assert!(err.to_string().contains("nanostory-upgrade"), "{err}");
    assert!(!db.store().has_table("seaql_migrations").await.unwrap());
    assert!(!db.store().has_table("generation_tasks").await.unwrap());
    db.cleanup().await;
}

#[tokio::test]
async fn migrate_refuses_a_foreign_workflow_jobs_table_on_sqlite() {
    migrate_refuses_a_foreign_workflow_jobs_table("sqlite-file").await;
}

#[tokio::test]
async fn migrate_refuses_a_foreign_workflow_jobs_table_on_postgres() {
    migrate_refuses_a_foreign_workflow_jobs_table("postgres").await;
}

#[tokio::test]
async fn migrate_refuses_a_foreign_workflow_jobs_table_on_mysql() {
    migrate_refuses_a_foreign_workflow_jobs_table("mysql").await;
}

#[tokio::test]
async fn a_migrated_store_migrates_again() {
    let db = test_store("sqlite-file").await.unwrap().unwrap();
    assert!(!db.store().has_foreign_workflow_tables().await.unwrap());
    db.store().migrate().await.unwrap();
    db.cleanup().await;
}
