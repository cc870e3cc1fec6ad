//! Two server processes (role `all`) on one PostgreSQL database serve the same jobs: a job
//! started through one is read, streamed and cancelled through the other.
//!
//! Needs `NOSYNTASK_TEST_POSTGRES_URL` (any database on the server; a fresh one is created and
//! dropped). Without it the test prints why and passes.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Options, SLOW_MODELS, Server, is_terminal, token};
use futures::StreamExt;
use serde_json::{Value, json};

const LONG: Duration = Duration::from_secs(30);

#[tokio::test]
async fn two_processes_share_jobs_on_postgres() {
    let Some(db) = nosyntask_store::testing::test_store("postgres")
        .await
        .expect("create the test database")
    else {
        println!("skipped: set NOSYNTASK_TEST_POSTGRES_URL to run the two-process PostgreSQL test");
        return;
    };
    let url = db.url().to_owned();
    let options = || {
        Options::default()
            .config(SLOW_MODELS)
            .env("NOSYNTASK__DATABASE__URL", &url)
            .env("NOSYNTASK__SERVER__ROLE", "all")
    };
    let a = Server::start_with(options());
    let b = Server::start_with(options());
    let t = token(1);

    // Started through A, read through B.
    let id = a
        .start_job(&t, "prompt_generate", json!({"description": "shared"}))
        .await;
    let via_b = b.job(&t, id).await;
    assert_eq!(via_b["id"], id);
    assert_eq!(via_b["input_params"]["description"], "shared");

    // Streamed through B; cancelled through B once it runs; A sees the cancellation.
    let stream = b
        .get(&format!("/api/workflows/{id}/events"), &t)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let mut bytes = stream.bytes_stream();
    let mut buffer = String::new();
    let mut seen = Vec::<Value>::new();
    let mut cancelled = false;
    let deadline = Instant::now() + LONG;
    loop {
        let left = deadline
            .checked_duration_since(Instant::now())
            .expect("stream did not end");
        let Some(chunk) = tokio::time::timeout(left, bytes.next())
            .await
            .expect("stream did not end")
        else {
            break;
        };
        buffer.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        while let Some(end) = buffer.find("\n\n") {
            let message: String = buffer.drain(..end + 2).collect();
            if let Some(data) = message.lines().find_map(|line| line.strip_prefix("data: ")) {
                seen.push(serde_json::from_str(data).unwrap());
            }
        }
        if !cancelled && seen.last().is_some_and(|job| job["status"] == "running") {
            let response = b
                .post(&format!("/api/workflows/{id}/cancel"), &t)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            cancelled = true;
        }
    }
    assert!(cancelled, "never saw the job running: {seen:?}");
    assert_eq!(seen.last().unwrap()["status"], "cancelled", "{seen:?}");
    let via_a = a.job(&t, id).await;
    assert_eq!(via_a["status"], "cancelled");
    assert_eq!(via_a["tasks"][0]["status"], "cancelled");

    // Started through B, completed by whichever worker claims it, streamed through A.
    let second = b
        .start_job(&t, "prompt_generate", json!({"description": "second"}))
        .await;
    let stream = a
        .get(&format!("/api/workflows/{second}/events"), &t)
        .send()
        .await
        .unwrap();
    let text = tokio::time::timeout(LONG, stream.text())
        .await
        .expect("stream did not end")
        .unwrap();
    let last: Value = text
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .map(|data| serde_json::from_str(data).unwrap())
        .next_back()
        .unwrap();
    assert_eq!(last["status"], "completed");
    let done = b.wait_job(&t, second, LONG, is_terminal).await;
    assert_eq!(done["status"], "completed");

    drop(a);
    drop(b);
    db.cleanup().await;
}
