//! A worker process killed with SIGKILL while it polls a provider's video task: a new process on
//! the same database resumes polling the checkpointed task and finishes the job, and the provider
//! sees exactly one submission (the video is paid for once).
//!
//! The provider is a loopback server speaking Replicate's predictions API: `POST
//! /v1/models/{owner}/{name}/predictions` answers a prediction id; `GET /v1/predictions/{id}`
//! says `processing` until the test lets it finish, then `succeeded` with an `output` URL that
//! the mock also serves (a real animated GIF).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Options, Server, token};
use nosyntask_engine::ports::{MediaRequest, ModelKind};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const PREDICTION_ID: &str = "pred-7f3a9c";
const KEY_ENV: &str = "CRASH_TEST_PROVIDER_KEY";
const KEY: &str = "r8-test-key";

/// The prediction's state, shared by the mock's responders and the test.
#[derive(Default)]
struct Prediction {
    submissions: AtomicUsize,
    polls: AtomicUsize,
    /// Until set, polls answer `processing`.
    finished: AtomicBool,
    base: std::sync::OnceLock<String>,
}

struct Submit(Arc<Prediction>);

impl Respond for Submit {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        self.0.submissions.fetch_add(1, Ordering::SeqCst);
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        ResponseTemplate::new(201).set_body_json(json!({
            "id": PREDICTION_ID,
            "model": "acme/clip",
            "version": "hidden",
            "input": body["input"],
            "status": "starting",
            "output": null,
            "error": null,
            "logs": "",
            "urls": {
                "get": format!("{}/v1/predictions/{PREDICTION_ID}", self.0.base.get().unwrap()),
                "cancel": format!("{}/v1/predictions/{PREDICTION_ID}/cancel", self.0.base.get().unwrap()),
            },
            "created_at": "2025-01-01T00:00:00.000Z"
        }))
    }
}

struct Poll(Arc<Prediction>);

impl Respond for Poll {
    fn respond(&self, _request: &Request) -> ResponseTemplate {
        self.0.polls.fetch_add(1, Ordering::SeqCst);
        let done = self.0.finished.load(Ordering::SeqCst);
        let base = self.0.base.get().unwrap();
        ResponseTemplate::new(200).set_body_json(json!({
            "id": PREDICTION_ID,
            "model": "acme/clip",
            "status": if done { "succeeded" } else { "processing" },
            "output": if done { json!(format!("{base}/delivery/{PREDICTION_ID}/clip.gif")) } else { Value::Null },
            "error": null,
            "logs": if done { "100%" } else { "rendering frame 12/48" },
            "metrics": if done { json!({"predict_time": 3.2}) } else { json!({}) },
        }))
    }
}

/// A real animated GIF, as a video provider may deliver a short clip.
fn gif_bytes() -> Vec<u8> {
    let request = MediaRequest {
        prompt: "crash test clip".into(),
        width: 64,
        height: 48,
        ..MediaRequest::default()
    };
    let (bytes, content_type) =
        nosyntask_providers::simulated::simulated_media(ModelKind::Video, &request, 7).unwrap();
    assert_eq!(content_type, "image/gif");
    bytes
}

async fn mock_provider(prediction: Arc<Prediction>, gif: Vec<u8>) -> MockServer {
    let server = MockServer::start().await;
    prediction.base.set(server.uri()).unwrap();
    let auth = format!("Bearer {KEY}");
    Mock::given(method("POST"))
        .and(path("/v1/models/acme/clip/predictions"))
        .and(header("authorization", auth.as_str()))
        .respond_with(Submit(prediction.clone()))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/predictions/{PREDICTION_ID}")))
        .and(header("authorization", auth.as_str()))
        .respond_with(Poll(prediction.clone()))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/delivery/{PREDICTION_ID}/clip.gif")))
        .respond_with(ResponseTemplate::new(200).set_body_raw(gif, "image/gif"))
        .mount(&server)
        .await;
    server
}

/// Short leases so the second process takes the dead one's task over within a few seconds.
fn config(provider: &str) -> String {
    format!(
        r#"
[worker]
lease_ttl_secs = 2
heartbeat_interval_secs = 1
sweep_interval_secs = 1

[[models]]
name = "Clip"
kind = "video"
adapter = "replicate"
base_url = "{provider}/v1"
model = "acme/clip"
api_key_env = "{KEY_ENV}"
timeout_secs = 60
default = true
[models.async_task]
poll_interval_ms = 100
"#
    )
}

fn start_server(dir: &std::path::Path, provider: &str) -> Server {
    Server::start_with(Options {
        dir: Some(dir.to_path_buf()),
        ..Options::default()
            .config(&config(provider))
            .env(KEY_ENV, KEY)
    })
}

async fn wait_until(what: &str, timeout: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn sigkill_while_polling_resumes_the_same_provider_task_in_a_new_process() {
    let prediction = Arc::new(Prediction::default());
    let gif = gif_bytes();
    let provider = mock_provider(prediction.clone(), gif.clone()).await;
    // One directory for both processes: the SQLite file under data/ and the artifacts.
    let dir = tempfile::tempdir().unwrap();
    let t = token(1);

    let first = start_server(dir.path(), &provider.uri());
    let id = first
        .start_job(
            &t,
            "scene_video",
            json!({"prompt": "雨夜的车站，旧友重逢", "duration": 5}),
        )
        .await;
    // The provider task was submitted and its id checkpointed, and polling has begun.
    wait_until(
        "the task id is checkpointed and polled",
        Duration::from_secs(15),
        async || {
            let job = first.job(&t, id).await;
            job["tasks"][0]["external_task_id"] == PREDICTION_ID
                && prediction.polls.load(Ordering::SeqCst) >= 1
        },
    )
    .await;
    let job = first.job(&t, id).await;
    assert_eq!(job["status"], "running", "{job}");
    assert_eq!(job["tasks"][0]["attempts"], 1, "{job}");

    // Dropping the handle kills the process with SIGKILL (`Child::kill`) and reaps it.
    let first_pid = first.pid();
    drop(first);
    assert!(
        !std::path::Path::new(&format!("/proc/{first_pid}")).exists(),
        "the first server is still alive"
    );
    assert_eq!(prediction.submissions.load(Ordering::SeqCst), 1);

    // The provider finishes while no process is watching; a new one takes over.
    prediction.finished.store(true, Ordering::SeqCst);
    let polls_before_restart = prediction.polls.load(Ordering::SeqCst);
    let second = start_server(dir.path(), &provider.uri());
    let job = second
        .wait_job(&t, id, Duration::from_secs(20), common::is_terminal)
        .await;

    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(
        prediction.submissions.load(Ordering::SeqCst),
        1,
        "the provider saw a second submission"
    );
    assert!(
        prediction.polls.load(Ordering::SeqCst) > polls_before_restart,
        "the new process did not poll the existing task"
    );
    let task = &job["tasks"][0];
    assert_eq!(task["attempts"], 2, "{job}");
    assert_eq!(task["external_task_id"], PREDICTION_ID, "{job}");
    assert_eq!(task["progress"], 100, "{job}");
    let video_url = task["result_data"]["videoUrl"].as_str().unwrap();
    assert!(
        video_url.starts_with(&format!("{}/files/", second.base)),
        "{video_url}"
    );
    assert_eq!(task["result_data"]["model"], "Clip");

    // The server serves the stored copy, not the provider's URL.
    let file = second
        .client
        .get(second.url(video_url))
        .send()
        .await
        .unwrap();
    assert_eq!(file.status(), 200);
    assert_eq!(
        file.headers()["content-type"].to_str().unwrap(),
        "image/gif"
    );
    assert_eq!(file.bytes().await.unwrap().as_ref(), gif.as_slice());
    let downloads = provider
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().starts_with("/delivery/"))
        .count();
    assert_eq!(downloads, 1);
}
