//! Living beside NanoStory's tables, on MariaDB: a database with NanoStory's own
//! `workflow_jobs` and `generation_tasks` (and rows in them and in the application's tables).
//! The engine refuses to migrate over them; `nosyntask-server nanostory-upgrade` moves them
//! aside and copies their history; the old jobs then read through the API, NanoStory's other
//! tables are unchanged, and a second upgrade changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Options, Server, admin_token, run_on};
use nosyntask_store::testing::unmigrated_test_store;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::json;

const FIXTURE: &str = include_str!("fixtures/nanostory_tables.sql");

/// `CHECKSUM TABLE` of the application's tables: what must not change.
async fn checksums(conn: &impl ConnectionTrait) -> Vec<(String, Option<i64>)> {
    let rows = conn
        .query_all_raw(Statement::from_string(
            DbBackend::MySql,
            "CHECKSUM TABLE users, projects, scripts, storyboards, characters, scenes",
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            (
                r.try_get_by_index(0).unwrap(),
                r.try_get_by_index(1).unwrap(),
            )
        })
        .collect()
}

async fn count(conn: &impl ConnectionTrait, table: &str) -> i64 {
    let row = conn
        .query_one_raw(Statement::from_string(
            DbBackend::MySql,
            format!("SELECT COUNT(*) FROM {table}"),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index(0).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nanostorys_tables_move_aside_and_their_jobs_read_through_the_api() {
    let Some(db) = unmigrated_test_store("mysql").await.unwrap() else {
        return;
    };
    let conn = db.store().connection();
    common::run_sql(conn, FIXTURE).await;
    let before = checksums(conn).await;
    let dir = tempfile::tempdir().unwrap();

    // Migrating over NanoStory's tables is refused, naming the upgrade, and changes nothing.
    let (ok, text) = run_on(db.url(), dir.path(), &["migrate"]);
    assert!(!ok, "{text}");
    assert!(text.contains("nanostory-upgrade"), "{text}");
    assert_eq!(count(conn, "workflow_jobs").await, 3);
    assert!(!db.store().has_table("seaql_migrations").await.unwrap());

    let (ok, text) = run_on(db.url(), dir.path(), &["nanostory-upgrade"]);
    assert!(ok, "{text}");
    assert!(text.contains("moved NanoStory's tables aside"), "{text}");
    assert!(
        text.contains("copied 3 jobs and 4 tasks (1 interrupted jobs"),
        "{text}"
    );
    assert!(
        text.contains("2 task rows left in the backup only"),
        "{text}"
    );
    // Again: nothing to move, nothing more to copy.
    let (ok, text) = run_on(db.url(), dir.path(), &["nanostory-upgrade"]);
    assert!(ok, "{text}");
    assert!(text.contains("copied 0 jobs and 0 tasks"), "{text}");
    assert!(!text.contains("moved"), "{text}");

    // NanoStory's other tables are untouched; its own rows are kept as they were.
    assert_eq!(checksums(conn).await, before);
    assert_eq!(count(conn, "nanostory_workflow_jobs").await, 3);
    assert_eq!(count(conn, "nanostory_generation_tasks").await, 6);

    let server = Server::start_with(Options::default().env("NOSYNTASK__DATABASE__URL", db.url()));
    let admin = admin_token(1);
    let done = server.job(&admin, 5).await;
    assert_eq!(done["status"], "completed");
    assert_eq!(done["workflow_type"], "character_views_generation");
    assert_eq!(done["project_id"], 3);
    assert_eq!(done["input_params"], json!({"characterId": 9}));
    assert_eq!(done["is_consumed"], true);
    assert_eq!(done["progress"], 100);
    assert_eq!(done["created_at"], "2026-11-30T10:00:00.000Z");
    assert_eq!(done["completed_at"], "2026-11-30T10:02:00.000Z");
    let tasks = done["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 1, "the newest row of the step: {tasks:?}");
    assert_eq!(tasks[0]["id"], 21);
    assert_eq!(tasks[0]["status"], "completed");
    assert_eq!(
        tasks[0]["result_data"],
        json!({"frontViewUrl": "/uploads/keeper-front.png"})
    );
    assert_eq!(tasks[0]["model_name"], "gpt-image-1");

    let interrupted = server.job(&admin, 6).await;
    assert_eq!(interrupted["status"], "failed");
    assert_eq!(
        interrupted["error_message"],
        nosyntask_nanostory::INTERRUPTED
    );
    let statuses: Vec<_> = interrupted["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["status"].clone())
        .collect();
    assert_eq!(statuses, [json!("completed"), json!("failed")]);

    let cancelled = server.job(&admin, 7).await;
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["project_id"], serde_json::Value::Null);
    assert_eq!(cancelled["tasks"][0]["status"], "cancelled");

    // New jobs get ids after the old ones.
    let id = server
        .start_job(
            &common::token(1),
            "prompt_generate",
            json!({"description": "a kite"}),
        )
        .await;
    assert!(id > 7, "{id}");
    drop(server);
    db.cleanup().await;
}
