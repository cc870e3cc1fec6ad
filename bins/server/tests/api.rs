//! End-to-end tests of the HTTP API: the real binary on port 0 with a fresh SQLite database.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{
    Options, SECRET, SLOW_MODELS, Server, admin_token, error_body, exp_in, is_terminal, sign, token,
};
use futures::StreamExt;
use serde_json::{Value, json};

const LONG: Duration = Duration::from_secs(30);

#[tokio::test]
async fn health_readiness_metrics_and_docs_need_no_token() {
    let server = Server::start();
    let client = &server.client;

    let health = client.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.json::<Value>().await.unwrap(),
        json!({"status": "ok"})
    );

    let ready = client.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);

    // Run one job so the engine's counters have samples.
    let t = token(1);
    let id = server
        .start_job(&t, "prompt_generate", json!({"description": "a red kite"}))
        .await;
    server.wait_job(&t, id, LONG, is_terminal).await;

    let metrics = client.get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    for name in [
        "nosyntask_task_attempts_started_total",
        "nosyntask_tasks_completed_total",
        "nosyntask_task_duration_seconds",
        "nosyntask_running_tasks_in_process",
        "nosyntask_queue_depth{state=\"ready\"}",
        "nosyntask_queue_depth{state=\"scheduled\"}",
        "nosyntask_running_tasks",
        "nosyntask_jobs{status=\"pending\"} 0",
        "nosyntask_jobs{status=\"running\"} 0",
        "nosyntask_job_reads_total",
        "nosyntask_watched_jobs 0",
        "nosyntask_store_up 1",
        "nosyntask_http_requests_total",
        "nosyntask_http_request_duration_seconds",
        "route=\"/api/workflows/{jobId}\"",
    ] {
        assert!(text.contains(name), "missing {name} in:\n{text}");
    }
    assert!(text.trim_end().ends_with("# EOF"));
    // Finished jobs are not counted: that count would grow with the history kept.
    assert!(
        !text.contains("nosyntask_jobs{status=\"completed\"}"),
        "{text}"
    );

    let doc: Value = client
        .get(server.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/api/workflows/{jobId}/events"]["get"].is_object());

    let docs = client.get(server.url("/docs/")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.unwrap().contains("swagger"));
    let redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(server.url("/docs"))
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), 308);
}

#[tokio::test]
async fn tokens_are_checked() {
    let server = Server::start();
    let path = "/api/workflows?projectId=1";

    let none = server.client.get(server.url(path)).send().await.unwrap();
    error_body(none, 401).await;

    let cases = [
        (
            "expired",
            sign(json!({"userId": 1, "exp": exp_in(-10)}), SECRET),
        ),
        (
            "forged",
            sign(
                json!({"userId": 1, "exp": exp_in(600)}),
                "another-secret-value",
            ),
        ),
        ("no exp", sign(json!({"userId": 1}), SECRET)),
        (
            "no user",
            sign(json!({"email": "a@b", "exp": exp_in(600)}), SECRET),
        ),
        ("garbage", "not-a-jwt".to_owned()),
    ];
    for (what, bad) in cases {
        let response = server.get(path, &bad).send().await.unwrap();
        let body = error_body(response, 401).await;
        assert_eq!(body["code"], "unauthorized", "{what}");
    }
    let basic = server
        .client
        .get(server.url(path))
        .header("Authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    error_body(basic, 401).await;

    // The NanoStory backend's own tokens, and a numeric `sub` (number or string).
    for good in [
        token(1),
        sign(json!({"sub": 1, "exp": exp_in(600)}), SECRET),
        sign(json!({"sub": "1", "exp": exp_in(600)}), SECRET),
    ] {
        let response = server.get(path, &good).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
}

#[tokio::test]
async fn workflow_types_and_models() {
    let server = Server::start();
    let t = token(1);
    let types: Value = server
        .get("/api/workflows/types", &t)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let workflows = types["workflows"].as_array().unwrap();
    let prompt = workflows
        .iter()
        .find(|w| w["type"] == "prompt_generate")
        .expect("prompt_generate registered");
    assert!(prompt["name"].is_string());
    assert_eq!(prompt["totalSteps"], 1);
    assert_eq!(prompt["steps"][0]["index"], 0);
    assert!(prompt["steps"][0]["type"].is_string());
    assert!(prompt["steps"][0]["targetType"].is_string());
    assert_eq!(prompt["paramsSchema"]["type"], "object");
    assert!(
        prompt["paramsSchema"]["required"]
            .as_array()
            .unwrap()
            .contains(&json!("description"))
    );

    let models: Value = server
        .get("/api/models", &t)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let models = models["models"].as_array().unwrap();
    for kind in ["text", "image", "video"] {
        let model = models
            .iter()
            .find(|m| m["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} model in {models:?}"));
        assert_eq!(model["provider"], "simulated");
        assert!(model["name"].is_string());
    }
    let text = serde_json::to_string(models).unwrap();
    assert!(!text.to_lowercase().contains("api_key"), "{text}");
}

#[tokio::test]
async fn a_job_runs_is_read_listed_consumed_and_leaves_active() {
    let server = Server::start();
    let t = token(1);
    let response = server
        .post("/api/workflows", &t)
        .json(&json!({"workflowType": "prompt_generate", "projectId": 7,
            "params": {"description": "a lighthouse at dawn", "kind": "video"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let started: Value = response.json().await.unwrap();
    assert_eq!(started["deduplicated"], false);
    assert!(started["message"].is_string());
    let id = started["jobId"].as_i64().unwrap();
    assert_eq!(started["tasks"][0]["stepIndex"], 0);
    assert_eq!(started["tasks"][0]["status"], "pending");
    assert!(started["tasks"][0]["id"].is_i64());
    assert!(started["tasks"][0]["type"].is_string());

    let job = server
        .wait_job(&t, id, LONG, |j| j["status"] == "completed")
        .await;
    assert_eq!(job["id"], id);
    assert_eq!(job["user_id"], 1);
    assert_eq!(job["project_id"], 7);
    assert_eq!(job["workflow_type"], "prompt_generate");
    assert!(job["workflowName"].is_string());
    assert_eq!(job["progress"], 100);
    assert_eq!(job["total_steps"], 1);
    assert_eq!(job["is_consumed"], false);
    assert_eq!(job["error_message"], Value::Null);
    assert_eq!(job["input_params"]["description"], "a lighthouse at dawn");
    for field in ["created_at", "updated_at", "started_at", "completed_at"] {
        let text = job[field].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(text).is_ok() && text.ends_with('Z'),
            "{field}: {text}"
        );
    }
    let task = &job["tasks"][0];
    assert_eq!(task["job_id"], id);
    assert_eq!(task["status"], "completed");
    assert_eq!(task["progress"], 100);
    assert!(task["attempts"].as_i64().unwrap() >= 1);
    assert!(task["input_params"].is_object(), "{task}");
    let result = &task["result_data"];
    assert!(result["prompt"].is_string(), "{result}");
    assert!(result.get("negativePrompt").is_some(), "{result}");
    assert!(result.get("modelName").is_some(), "{result}");

    // ETag / If-None-Match.
    let first = server
        .get(&format!("/api/workflows/{id}"), &t)
        .send()
        .await
        .unwrap();
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let again = server
        .get(&format!("/api/workflows/{id}"), &t)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
    let stale = server
        .get(&format!("/api/workflows/{id}"), &t)
        .header("If-None-Match", "\"0000\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 200);

    // Lists: no tasks, filters, paging.
    let second = server
        .start_job(
            &t,
            "prompt_generate",
            json!({"description": "a second one"}),
        )
        .await;
    let list: Value = server
        .get("/api/workflows?projectId=7", &t)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jobs = list["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 1, "{list}");
    // The task-queue bubble reads each listed job's tasks.
    assert_eq!(jobs[0]["tasks"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(jobs[0]["id"], id);
    let all: Value = server
        .get("/api/workflows?workflowType=prompt_generate&limit=1", &t)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all["jobs"][0]["id"], second, "newest first: {all}");
    assert_eq!(all["jobs"].as_array().unwrap().len(), 1);
    let page: Value = server
        .get(&format!("/api/workflows?before={second}&limit=5"), &t)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["jobs"][0]["id"], id);
    let completed: Value = server
        .get("/api/workflows?status=completed,failed&projectId=7", &t)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(completed["jobs"].as_array().unwrap().len(), 1);
    // Search in the params text: any case, with the total of the matches.
    let found = server
        .get_json("/api/workflows?q=A%20SECOND&params=false&tasks=false", &t)
        .await;
    assert_eq!(found["jobs"].as_array().unwrap().len(), 1, "{found}");
    assert_eq!(found["jobs"][0]["id"], second);
    assert_eq!(found["total"], 1, "{found}");
    let long = format!("/api/workflows?q={}", "x".repeat(201));
    for bad in [
        long.as_str(),
        "/api/workflows?status=done",
        "/api/workflows?limit=0",
        "/api/workflows?limit=201",
        "/api/workflows?limit=x",
        "/api/workflows?projectId=abc",
        "/api/workflows?before=1.5",
        "/api/workflows/active",
        "/api/workflows/active?projectId=x",
    ] {
        let response = server.get(bad, &t).send().await.unwrap();
        error_body(response, 400).await;
    }

    // Active: the completed, unconsumed job is there until consumed.
    let active: Value = server
        .get("/api/workflows/active?projectId=7", &t)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(active["jobs"][0]["id"], id, "{active}");
    for _ in 0..2 {
        let consumed = server
            .post(&format!("/api/workflows/{id}/consume"), &t)
            .send()
            .await
            .unwrap();
        assert_eq!(consumed.status(), 200);
        assert_eq!(
            consumed.json::<Value>().await.unwrap(),
            json!({"success": true})
        );
    }
    let active: Value = server
        .get("/api/workflows/active?projectId=7", &t)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(active["jobs"], json!([]), "{active}");
    assert_eq!(server.job(&t, id).await["is_consumed"], true);
}

#[tokio::test]
async fn other_users_get_404_and_admins_only_read() {
    let server = Server::start();
    let owner = token(1);
    let id = server
        .start_job(&owner, "prompt_generate", json!({"description": "mine"}))
        .await;
    let other = token(2);
    for path in [
        format!("/api/workflows/{id}"),
        format!("/api/workflows/{id}/events"),
    ] {
        let response = server.get(&path, &other).send().await.unwrap();
        error_body(response, 404).await;
    }
    for action in ["consume", "cancel", "resume"] {
        let response = server
            .post(&format!("/api/workflows/{id}/{action}"), &other)
            .send()
            .await
            .unwrap();
        error_body(response, 404).await;
    }
    let list: Value = server
        .get("/api/workflows", &other)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["jobs"], json!([]));

    let admin = admin_token(99);
    let read = server
        .get(&format!("/api/workflows/{id}"), &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    let list: Value = server
        .get("/api/workflows", &admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["jobs"][0]["id"], id);
    let cancel = server
        .post(&format!("/api/workflows/{id}/cancel"), &admin)
        .send()
        .await
        .unwrap();
    error_body(cancel, 404).await;
    let missing = server
        .get("/api/workflows/987654", &owner)
        .send()
        .await
        .unwrap();
    error_body(missing, 404).await;
}

#[tokio::test]
async fn bad_requests_get_the_error_body() {
    let server = Server::start();
    let t = token(1);

    let malformed = server
        .post("/api/workflows", &t)
        .header("Content-Type", "application/json")
        .body("{\"workflowType\": ")
        .send()
        .await
        .unwrap();
    let body = error_body(malformed, 400).await;
    assert_eq!(body["code"], "invalid_json");

    let unknown = server
        .post("/api/workflows", &t)
        .json(&json!({"workflowType": "teleport", "projectId": 1, "params": {}}))
        .send()
        .await
        .unwrap();
    let body = error_body(unknown, 422).await;
    assert!(
        body["message"].as_str().unwrap().contains("teleport"),
        "{body}"
    );

    let missing = server
        .post("/api/workflows", &t)
        .json(&json!({"workflowType": "prompt_generate", "projectId": 1, "params": {}}))
        .send()
        .await
        .unwrap();
    let body = error_body(missing, 422).await;
    assert!(
        body["message"].as_str().unwrap().contains("description"),
        "{body}"
    );

    let wrong_kind = server
        .post("/api/workflows", &t)
        .json(&json!({"workflowType": "prompt_generate", "projectId": 1,
            "params": {"description": "x", "kind": "audio"}}))
        .send()
        .await
        .unwrap();
    let body = error_body(wrong_kind, 422).await;
    assert!(body["message"].as_str().unwrap().contains("kind"), "{body}");

    let no_project = server
        .post("/api/workflows", &t)
        .json(&json!({"workflowType": "prompt_generate", "params": {"description": "x"}}))
        .send()
        .await
        .unwrap();
    let status = no_project.status().as_u16();
    assert!(status == 400 || status == 422);
    let body = error_body(no_project, status).await;
    assert!(
        body["message"].as_str().unwrap().contains("projectId"),
        "{body}"
    );

    let big = format!(
        "{{\"workflowType\":\"prompt_generate\",\"projectId\":1,\"params\":{{\"description\":\"{}\"}}}}",
        "x".repeat(1024 * 1024 + 10)
    );
    let too_large = server
        .post("/api/workflows", &t)
        .header("Content-Type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    let body = error_body(too_large, 413).await;
    assert_eq!(body["code"], "payload_too_large");

    let not_a_number = server.get("/api/workflows/abc", &t).send().await.unwrap();
    let body = error_body(not_a_number, 400).await;
    assert_eq!(body["code"], "invalid_path");
    let overflow = server
        .post("/api/workflows/99999999999999999999999/cancel", &t)
        .send()
        .await
        .unwrap();
    error_body(overflow, 400).await;

    let unknown_route = server.get("/api/nope", &t).send().await.unwrap();
    let body = error_body(unknown_route, 404).await;
    assert_eq!(body["code"], "not_found");

    let wrong_method = server
        .client
        .delete(server.url("/api/workflows/1"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.headers()["allow"], "GET");
    error_body(wrong_method, 405).await;
}

#[tokio::test]
async fn cancel_resume_and_conflicts() {
    let server = Server::start_with(Options::default().config(SLOW_MODELS));
    let t = token(1);

    // A completed job cannot be cancelled or resumed.
    let done = server
        .start_job(&t, "prompt_generate", json!({"description": "quick"}))
        .await;
    server
        .wait_job(&t, done, LONG, |j| j["status"] == "completed")
        .await;
    let conflict = server
        .post(&format!("/api/workflows/{done}/cancel"), &t)
        .send()
        .await
        .unwrap();
    assert_eq!(error_body(conflict, 409).await["code"], "conflict");
    let conflict = server
        .post(&format!("/api/workflows/{done}/resume"), &t)
        .send()
        .await
        .unwrap();
    error_body(conflict, 409).await;

    // A running job is cancelled (twice: idempotent), then resumed to completion.
    let id = server
        .start_job(&t, "prompt_generate", json!({"description": "slow"}))
        .await;
    server
        .wait_job(&t, id, LONG, |j| j["status"] == "running")
        .await;
    for _ in 0..2 {
        let response = server
            .post(&format!("/api/workflows/{id}/cancel"), &t)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            json!({"jobId": id, "status": "cancelled"})
        );
    }
    let job = server.job(&t, id).await;
    assert_eq!(job["status"], "cancelled");
    assert_eq!(job["tasks"][0]["status"], "cancelled");

    let resumed = server
        .post(&format!("/api/workflows/{id}/resume"), &t)
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), 200);
    assert_eq!(
        resumed.json::<Value>().await.unwrap(),
        json!({"jobId": id, "status": "resuming"})
    );
    let job = server
        .wait_job(&t, id, LONG, |j| j["status"] == "completed")
        .await;
    assert_eq!(job["tasks"][0]["status"], "completed");
}

#[tokio::test]
async fn events_stream_progress_and_end_after_completion() {
    let server = Server::start_with(
        Options::default()
            .config(SLOW_MODELS)
            .env("NOSYNTASK__SERVER__EVENTS_KEEPALIVE_SECS", "1"),
    );
    let t = token(1);
    let id = server
        .start_job(
            &t,
            "prompt_generate",
            json!({"description": "a slow sunset"}),
        )
        .await;
    let response = server
        .get(&format!("/api/workflows/{id}/events"), &t)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let (events, comments) = read_stream(response, LONG).await;
    assert!(comments > 0, "no keep-alive comment during a quiet second");
    assert!(!events.is_empty());
    let last = events.last().unwrap();
    assert_eq!(last["status"], "completed", "{events:?}");
    assert!(last["tasks"][0]["result_data"].is_object());
    let progress: Vec<i64> = events
        .iter()
        .map(|e| e["progress"].as_i64().unwrap())
        .collect();
    assert!(
        progress.iter().any(|p| *p > 0 && *p < 100),
        "no intermediate progress in {progress:?}"
    );
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");

    // A finished job's stream sends it once and ends; the token may come as a query parameter.
    let replay = server
        .client
        .get(server.url(&format!("/api/workflows/{id}/events?access_token={t}")))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 200);
    let events = read_events(replay, Duration::from_secs(5)).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["status"], "completed");
}

/// Reads `event: job` messages until the stream ends (asserting it does within `timeout`).
/// A counter's value in a `/metrics` text.
fn counter(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

#[tokio::test]
async fn many_watchers_of_one_job_cost_one_read_per_change() {
    const WATCHERS: usize = 200;
    let server = Server::start_with(
        Options::default()
            .config(SLOW_MODELS)
            .env("NOSYNTASK__SERVER__MAX_CONNECTIONS_PER_IP", "1000"),
    );
    let t = token(1);
    let id = server
        .start_job(&t, "prompt_generate", json!({"description": "a crowd"}))
        .await;
    let streams = futures::future::join_all((0..WATCHERS).map(|_| async {
        let response = server
            .get(&format!("/api/workflows/{id}/events"), &t)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response
    }))
    .await;
    let watched = server.metrics().await;
    assert!(watched.contains("nosyntask_watched_jobs 1"), "{watched}");
    let all = futures::future::join_all(streams.into_iter().map(|r| read_events(r, LONG))).await;
    let metrics = server.metrics().await;
    let most_events = all.iter().map(Vec::len).max().unwrap();
    for events in &all {
        assert_eq!(events.last().unwrap()["status"], "completed");
    }
    let change_reads = counter(&metrics, "nosyntask_watch_reads_total");
    let polls = counter(&metrics, "nosyntask_watch_polls_total");
    // Every change is read once for all the watchers: at most one read per event a watcher got
    // (plus one for a change that raced a read), never one per watcher.
    assert!(
        change_reads <= most_events as u64 + 1,
        "{change_reads} reads of changes for {most_events} events of {WATCHERS} watchers"
    );
    assert!(polls > 0);
}

async fn read_events(response: reqwest::Response, timeout: Duration) -> Vec<Value> {
    read_stream(response, timeout).await.0
}

/// The `job` events of a stream and how many comment (keep-alive) messages came with them.
async fn read_stream(response: reqwest::Response, timeout: Duration) -> (Vec<Value>, usize) {
    let messages = read_all(response, timeout).await;
    let comments = messages
        .iter()
        .filter(|(event, _)| event == COMMENT)
        .count();
    let events = messages
        .into_iter()
        .filter(|(event, _)| event == "job")
        .map(|(_, data)| data)
        .collect();
    (events, comments)
}

#[tokio::test]
async fn idempotency_keys_from_body_and_header() {
    let server = Server::start();
    let t = token(1);
    let body = json!({"workflowType": "prompt_generate", "projectId": 1,
        "params": {"description": "once"}, "idempotencyKey": "key-body-1"});
    let mut ids = Vec::new();
    for expected_dedup in [false, true] {
        let response: Value = server
            .post("/api/workflows", &t)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(response["deduplicated"], expected_dedup, "{response}");
        ids.push(response["jobId"].as_i64().unwrap());
    }
    assert_eq!(ids[0], ids[1]);

    let body = json!({"workflowType": "prompt_generate", "projectId": 1,
        "params": {"description": "once more"}});
    let mut ids = Vec::new();
    for expected_dedup in [false, true] {
        let response: Value = server
            .post("/api/workflows", &t)
            .header("Idempotency-Key", "key-header-1")
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(response["deduplicated"], expected_dedup, "{response}");
        ids.push(response["jobId"].as_i64().unwrap());
    }
    assert_eq!(ids[0], ids[1]);

    // A body key and a header key that differ contradict each other: 409, nothing started.
    let both = server
        .post("/api/workflows", &t)
        .header("Idempotency-Key", "key-header-1")
        .json(&json!({"workflowType": "prompt_generate", "projectId": 1,
            "idempotencyKey": "key-body-2", "params": {"description": "conflict"}}))
        .send()
        .await
        .unwrap();
    let conflict = error_body(both, 409).await;
    assert_eq!(conflict["code"], "idempotency_key_conflict", "{conflict}");

    // The same key from another user is another job.
    let other: Value = server
        .post("/api/workflows", &token(2))
        .header("Idempotency-Key", "key-header-1")
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(other["deduplicated"], false);
    assert_ne!(other["jobId"].as_i64().unwrap(), ids[0]);
}

#[tokio::test]
async fn quota_answers_429_with_retry_after() {
    let server = Server::start_with(
        Options::default()
            .config(SLOW_MODELS)
            .env("NOSYNTASK__LIMITS__MAX_ACTIVE_JOBS_PER_USER", "1")
            .env("NOSYNTASK__LIMITS__QUOTA_RETRY_AFTER_SECS", "3"),
    );
    let t = token(1);
    server
        .start_job(&t, "prompt_generate", json!({"description": "first"}))
        .await;
    let second = server
        .post("/api/workflows", &t)
        .json(&json!({"workflowType": "prompt_generate", "projectId": 1,
            "params": {"description": "second"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(second.headers()["retry-after"], "3");
    let body = error_body(second, 429).await;
    assert_eq!(body["code"], "quota_exceeded");
    // Another user has their own quota.
    server
        .start_job(
            &token(2),
            "prompt_generate",
            json!({"description": "theirs"}),
        )
        .await;
}

#[tokio::test]
async fn cors_for_configured_origins() {
    let server = Server::start_with(Options::default().env(
        "NOSYNTASK__SERVER__CORS_ALLOWED_ORIGINS",
        "http://localhost:5173",
    ));
    let preflight = server
        .client
        .request(reqwest::Method::OPTIONS, server.url("/api/workflows"))
        .header("Origin", "http://localhost:5173")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization, content-type, idempotency-key",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 200);
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "http://localhost:5173"
    );
    let read = server
        .get("/api/workflows", &token(1))
        .header("Origin", "http://localhost:5173")
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    assert_eq!(
        read.headers()["access-control-allow-origin"],
        "http://localhost:5173"
    );
    let expose = read.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(expose.contains("etag"), "{expose}");

    let foreign = server
        .get("/api/workflows", &token(1))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(
        foreign
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn generated_media_are_served_under_files() {
    let server = Server::start();
    let t = token(1);
    let id = server
        .start_job(
            &t,
            "frame_generation",
            json!({"prompt": "a fox jumps over a log", "width": 256, "height": 144}),
        )
        .await;
    let job = server
        .wait_job(&t, id, LONG, |j| j["status"] == "completed")
        .await;
    let url = job["tasks"][0]["result_data"]["startFrame"]
        .as_str()
        .unwrap_or_else(|| panic!("no startFrame in {job}"))
        .to_owned();
    // Absolute, for the server's own address (no configuration).
    assert!(url.starts_with(&format!("{}/files/", server.base)), "{url}");
    // Browsers load media without a token.
    let file = server.client.get(server.url(&url)).send().await.unwrap();
    assert_eq!(file.status(), 200);
    assert_eq!(file.headers()["content-type"], "image/png");
    let bytes = file.bytes().await.unwrap();
    assert!(bytes.starts_with(b"\x89PNG"), "not a PNG");

    let missing = server
        .client
        .get(server.url("/files/00/nothing.png"))
        .send()
        .await
        .unwrap();
    error_body(missing, 404).await;
    let escape = server
        .client
        .get(server.url("/files/..%2f..%2fdata%2fjwt-secret"))
        .send()
        .await
        .unwrap();
    assert!(escape.status().is_client_error());
}

#[tokio::test]
async fn lists_count_every_page_leave_params_out_and_answer_304() {
    let server = Server::start();
    let t = token(1);
    let mut ids = Vec::new();
    for n in 0..3 {
        let script = format!("scene {n} ").repeat(500);
        ids.push(
            server
                .start_job(&t, "prompt_generate", json!({"description": script}))
                .await,
        );
    }
    let cancelled = server
        .post(&format!("/api/workflows/{}/cancel", ids[0]), &t)
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 200);
    // Another user's job counts for nobody else.
    server
        .start_job(
            &token(2),
            "prompt_generate",
            json!({"description": "theirs"}),
        )
        .await;

    let path = "/api/workflows?tasks=false&params=false&limit=2";
    let page = server.get(path, &t).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let etag = page.headers()["etag"].to_str().unwrap().to_owned();
    let page: Value = page.json().await.unwrap();
    let jobs = page["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 2, "{page}");
    assert!(
        jobs.iter()
            .all(|j| j["input_params"].is_null() && j.get("tasks").is_none())
    );
    assert_eq!(page["total"], 3, "{page}");
    let counts = &page["counts"];
    assert_eq!(counts["cancelled"], 1, "{page}");
    let active = ["pending", "running", "completed"]
        .iter()
        .map(|s| counts[*s].as_u64().unwrap())
        .sum::<u64>();
    assert_eq!(active, 2, "{page}");
    // The total follows the status filter; the counts by status do not.
    let only: Value = server
        .get("/api/workflows?status=cancelled&params=false", &t)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(only["total"], 1, "{only}");
    assert_eq!(only["counts"]["cancelled"], 1, "{only}");
    assert!(only["jobs"][0]["input_params"].is_null(), "{only}");
    assert!(only["jobs"][0]["tasks"].is_array(), "{only}");
    // The full form still carries the params.
    let full: Value = server
        .get("/api/workflows?tasks=false&limit=1", &t)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(full["jobs"][0]["input_params"]["description"].is_string());

    // Asked again with its ETag: 304 while nothing changed, 200 once something did.
    let wait_for_rest = || async {
        for id in &ids[1..] {
            server.wait_job(&t, *id, LONG, is_terminal).await;
        }
    };
    wait_for_rest().await;
    let settled = server.get(path, &t).send().await.unwrap();
    let etag_settled = settled.headers()["etag"].to_str().unwrap().to_owned();
    let again = server
        .get(path, &t)
        .header("If-None-Match", &etag_settled)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert!(again.bytes().await.unwrap().is_empty());
    let changed = server
        .get(path, &t)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    // The first answer was read while jobs ran; they have finished since.
    assert_eq!(changed.status(), 200);
    assert_ne!(etag, etag_settled);

    // Compressed when the client accepts it.
    let plain = server
        .get("/api/workflows?tasks=false", &t)
        .send()
        .await
        .unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    let plain_len = plain.bytes().await.unwrap().len();
    let gzip = server
        .get("/api/workflows?tasks=false", &t)
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gzip.headers()["content-encoding"], "gzip");
    let gzip_len = gzip.bytes().await.unwrap().len();
    assert!(
        gzip_len * 5 < plain_len,
        "gzip {gzip_len} of {plain_len} bytes"
    );
}

#[tokio::test]
async fn event_streams_send_changes_that_merge_into_the_job() {
    let server = Server::start_with(Options::default().config(SLOW_MODELS));
    let t = token(1);
    let script = "a slow sunset over the harbour ".repeat(200);
    let id = server
        .start_job(&t, "prompt_generate", json!({"description": script}))
        .await;
    // A job page reads the job, then follows it from the version it holds.
    let read = server
        .get(&format!("/api/workflows/{id}"), &t)
        .send()
        .await
        .unwrap();
    let etag = read.headers()["etag"].to_str().unwrap().to_owned();
    let mut job: Value = read.json().await.unwrap();
    let response = server
        .get(&format!("/api/workflows/{id}/events?changes=true"), &t)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let messages = read_messages(response, LONG).await;
    assert!(messages.len() > 1, "{messages:?}");
    for (n, (event, change)) in messages.iter().enumerate() {
        if n == 0 && event == "job" {
            // The job moved on between the read and the stream's start.
            job = change.clone();
            continue;
        }
        assert_eq!(event, "changes");
        assert_eq!(change["id"], id);
        assert!(change.get("input_params").is_none(), "{change}");
        // A step's input and result come once, when written; the rest is progress and times.
        let writes = change["tasks"].as_array().is_some_and(|tasks| {
            tasks
                .iter()
                .any(|t| t.get("input_params").is_some() || t.get("result_data").is_some())
        });
        assert!(writes || change.to_string().len() < 500, "{change}");
        merge(&mut job, change);
    }
    assert_eq!(job["status"], "completed");
    assert_eq!(job, server.job(&t, id).await);

    // Finished: a client holding the last version gets nothing more; one holding an older
    // version (or none), the whole job.
    let last = server
        .get(&format!("/api/workflows/{id}"), &t)
        .send()
        .await
        .unwrap();
    let last = last.headers()["etag"].to_str().unwrap().to_owned();
    for (held, sent) in [(last.as_str(), 0), (etag.as_str(), 1), ("", 1)] {
        let replay = server
            .get(&format!("/api/workflows/{id}/events?changes=true"), &t)
            .header("If-None-Match", held)
            .send()
            .await
            .unwrap();
        let messages = read_messages(replay, LONG).await;
        assert_eq!(messages.len(), sent, "holding {held:?}: {messages:?}");
        if sent == 1 {
            assert_eq!(messages[0], ("job".to_owned(), job.clone()));
        }
    }
}

/// Applies a `changes` event to a job, as a client does.
fn merge(job: &mut Value, change: &Value) {
    for (key, value) in change.as_object().unwrap() {
        if key != "tasks" {
            job[key] = value.clone();
            continue;
        }
        let tasks = job["tasks"].as_array_mut().unwrap();
        for task in value.as_array().unwrap() {
            match tasks.iter_mut().find(|t| t["id"] == task["id"]) {
                Some(old) => {
                    for (k, v) in task.as_object().unwrap() {
                        old[k] = v.clone();
                    }
                }
                None => tasks.push(task.clone()),
            }
        }
    }
    // A field that went away is sent as null; the job read leaves it out.
    strip_nulls_of_absent(job);
}

/// Removes the task fields a view leaves out when empty (`waiting_reason`, …) once null.
fn strip_nulls_of_absent(job: &mut Value) {
    for task in job["tasks"].as_array_mut().unwrap() {
        let task = task.as_object_mut().unwrap();
        for key in ["waiting_reason", "parent_task_id", "item_index"] {
            if task.get(key).is_some_and(Value::is_null) {
                task.remove(key);
            }
        }
    }
}

/// What [`read_all`] gives for a comment (keep-alive) message.
const COMMENT: &str = ":";

/// Every event of a stream, as (event name, data), until it ends within `timeout`.
async fn read_messages(response: reqwest::Response, timeout: Duration) -> Vec<(String, Value)> {
    let mut messages = read_all(response, timeout).await;
    messages.retain(|(event, _)| event != COMMENT);
    messages
}

/// Every message of a stream until it ends within `timeout`: (event name, data), a comment as
/// ([`COMMENT`], null).
async fn read_all(response: reqwest::Response, timeout: Duration) -> Vec<(String, Value)> {
    let deadline = Instant::now() + timeout;
    let mut stream = response.bytes_stream();
    let mut buffer = String::new();
    let mut messages = Vec::new();
    loop {
        let left = deadline
            .checked_duration_since(Instant::now())
            .expect("event stream did not end in time");
        match tokio::time::timeout(left, stream.next()).await {
            Err(_) => panic!("event stream did not end in time; got {messages:?}"),
            Ok(None) => break,
            Ok(Some(chunk)) => buffer.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap()),
        }
        while let Some(end) = buffer.find("\n\n") {
            let message: String = buffer.drain(..end + 2).collect();
            if message.starts_with(':') {
                messages.push((COMMENT.to_owned(), Value::Null));
                continue;
            }
            let event = message.lines().find_map(|l| l.strip_prefix("event: "));
            let data: String = message
                .lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .collect();
            if let Some(event) = event {
                messages.push((event.to_owned(), serde_json::from_str(&data).unwrap()));
            }
        }
    }
    messages
}
