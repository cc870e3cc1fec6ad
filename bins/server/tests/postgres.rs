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

/// With the database unreachable, the API answers 503 `unavailable` (never 500) and readiness
/// fails; when it is back, everything works again without a restart. The outage is a TCP proxy
/// between the server and PostgreSQL that drops every connection and refuses new ones.
// Multi-threaded: the proxy must run while `Server::start_with` blocks on the server's output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_answers_503_and_recovers() {
    let Some(db) = nosyntask_store::testing::test_store("postgres")
        .await
        .expect("create the test database")
    else {
        println!("skipped: set NOSYNTASK_TEST_POSTGRES_URL to run the PostgreSQL outage test");
        return;
    };
    let mut url = reqwest::Url::parse(db.url()).unwrap();
    let upstream = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let proxy = Proxy::start(upstream).await;
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(proxy.port)).unwrap();
    let server = Server::start_with(
        Options::default()
            .env("NOSYNTASK__DATABASE__URL", url.as_str())
            .env("NOSYNTASK__DATABASE__ACQUIRE_TIMEOUT_SECS", "1"),
    );
    let t = token(1);
    let id = server
        .start_job(
            &t,
            "prompt_generate",
            json!({"description": "before the outage"}),
        )
        .await;
    server.wait_job(&t, id, LONG, is_terminal).await;

    proxy.set_down(true).await;
    let ready = server
        .client
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap();
    common::error_body(ready, 503).await;
    let read = server
        .get(&format!("/api/workflows/{id}"), &t)
        .send()
        .await
        .unwrap();
    let body = common::error_body(read, 503).await;
    assert_eq!(body["code"], "unavailable");
    let start = server
        .post("/api/workflows", &t)
        .json(&json!({"workflowType": "prompt_generate", "projectId": 1,
            "params": {"description": "during the outage"}}))
        .send()
        .await
        .unwrap();
    common::error_body(start, 503).await;
    let list = server.get("/api/workflows", &t).send().await.unwrap();
    common::error_body(list, 503).await;
    let health = server
        .client
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert!(server.metrics().await.contains("nosyntask_store_up 0"));

    proxy.set_down(false).await;
    let deadline = Instant::now() + LONG;
    loop {
        let ready = server
            .client
            .get(server.url("/readyz"))
            .send()
            .await
            .unwrap();
        if ready.status() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not ready again after the outage"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(server.job(&t, id).await["id"], id);
    let after = server
        .start_job(
            &t,
            "prompt_generate",
            json!({"description": "after the outage"}),
        )
        .await;
    server.wait_job(&t, after, LONG, is_terminal).await;
    drop(server);
    db.cleanup().await;
}

/// A TCP proxy to PostgreSQL that can be switched off (connections dropped, new ones refused).
struct Proxy {
    port: u16,
    upstream: String,
    state: std::sync::Arc<tokio::sync::Mutex<ProxyState>>,
}

struct ProxyState {
    accept: Option<tokio::task::JoinHandle<()>>,
    connections: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let accept = spawn_accept(listener, upstream.clone(), connections.clone());
        Proxy {
            port,
            upstream,
            state: std::sync::Arc::new(tokio::sync::Mutex::new(ProxyState {
                accept: Some(accept),
                connections,
            })),
        }
    }

    async fn set_down(&self, down: bool) {
        let mut state = self.state.lock().await;
        if down {
            if let Some(accept) = state.accept.take() {
                accept.abort();
                let _ = accept.await;
            }
            for connection in state.connections.lock().unwrap().drain(..) {
                connection.abort();
            }
        } else if state.accept.is_none() {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
                .await
                .unwrap();
            state.accept = Some(spawn_accept(
                listener,
                self.upstream.clone(),
                state.connections.clone(),
            ));
        }
    }
}

fn spawn_accept(
    listener: tokio::net::TcpListener,
    upstream: String,
    connections: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            let upstream = upstream.clone();
            let connection = tokio::spawn(async move {
                if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
            connections.lock().unwrap().push(connection);
        }
    })
}
