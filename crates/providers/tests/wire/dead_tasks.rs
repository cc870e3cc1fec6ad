//! Provider tasks that end in ways a retry cannot change: unknown to the provider (404), output
//! expired or removed, failed on fal's result endpoint, aborted on Replicate; and the poll loop
//! under rate limits, and a cancel that arrives while the submission is in flight.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use nosyntask_domain::TaskError;
use nosyntask_engine::ports::{MediaModel, ModelCatalog};
use nosyntask_engine::{CancellationToken, Checkpoints};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::common::*;

fn replicate(f: &Fixture) -> Arc<dyn MediaModel> {
    let config = model_from(json!({
        "name": "Flux", "kind": "image", "adapter": "replicate", "model": "acme/flux",
        "base_url": format!("{}/v1", f.uri()), "api_key_env": KEY_ENV, "timeout_secs": 20,
        "async_task": {"poll_interval_ms": 100}
    }));
    f.catalog(&[config]).image(None).unwrap()
}

async fn mount(f: &Fixture, verb: &str, route: &str, response: ResponseTemplate) {
    Mock::given(method(verb))
        .and(path(route))
        .respond_with(response)
        .mount(&f.server)
        .await;
}

/// Replicate's prediction object, as `GET /v1/predictions/{id}` answers it.
fn prediction(id: &str, status: &str, output: Value) -> ResponseTemplate {
    json_response(
        200,
        json!({"id": id, "model": "acme/flux", "status": status, "output": output, "error": null, "logs": ""}),
    )
}

/// A checkpoint left by an earlier attempt that submitted `task_id`.
fn checkpoint_with(task_id: &str) -> Checkpoints {
    Checkpoints::in_memory(Some(json!({
        "img": {"provider": "replicate", "task": {"id": task_id, "submittedAtMs": 1}}
    })))
}

async fn generate(model: &Arc<dyn MediaModel>, checkpoint: &Checkpoints) -> Result<(), TaskError> {
    let (ctx, _) = context(checkpoint, &CancellationToken::new());
    tokio::time::timeout(Duration::from_secs(8), model.generate(request("img"), ctx))
        .await
        .map_err(|_| TaskError::permanent("test: the call did not end"))?
        .map(|_| ())
}

async fn assert_forgotten(checkpoint: &Checkpoints, task_id: &str) {
    let entry = checkpoint.entry("img").await.unwrap();
    assert!(
        entry.get("task").is_none(),
        "the dead task is kept: {entry}"
    );
    assert_eq!(entry["goneTask"], task_id, "{entry}");
}

#[tokio::test]
async fn a_task_the_provider_no_longer_knows_is_cleared_and_submitted_again() {
    let f = Fixture::new().await;
    // Replicate answers an unknown prediction id with 404. Its API is Django REST framework's
    // (its documented throttle body, below, is DRF's `Throttled` wording), whose `NotFound`
    // answers `{"detail": "Not found."}`; Replicate's docs do not show a 404 body.
    mount(
        &f,
        "GET",
        "/v1/predictions/old1",
        json_response(404, json!({"detail": "Not found."})),
    )
    .await;
    mount(
        &f,
        "POST",
        "/v1/models/acme/flux/predictions",
        json_response(
            201,
            json!({"id": "new1", "status": "starting", "output": null}),
        ),
    )
    .await;
    let file = format!("{}/delivery/new1.png", f.uri());
    mount(
        &f,
        "GET",
        "/v1/predictions/new1",
        prediction("new1", "succeeded", json!([file])),
    )
    .await;
    mount(
        &f,
        "GET",
        "/delivery/new1.png",
        ResponseTemplate::new(200).set_body_raw(png_bytes(), "image/png"),
    )
    .await;
    let model = replicate(&f);
    let checkpoint = checkpoint_with("old1");

    let err = generate(&model, &checkpoint).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(
        err.to_string().contains("no longer known to the provider"),
        "{err}"
    );
    assert_forgotten(&checkpoint, "old1").await;
    assert_eq!(f.count("POST", "/v1/models/acme/flux/predictions").await, 0);

    // The next attempt (or a resume) submits a new task.
    generate(&model, &checkpoint).await.unwrap();
    assert_eq!(f.count("POST", "/v1/models/acme/flux/predictions").await, 1);
}

#[tokio::test]
async fn a_removed_output_clears_the_task() {
    // Replicate deletes a prediction's files an hour after it finishes; the prediction still
    // says succeeded, the file URL answers 404.
    let f = Fixture::new().await;
    let file = format!("{}/delivery/old2.png", f.uri());
    mount(
        &f,
        "GET",
        "/v1/predictions/old2",
        prediction("old2", "succeeded", json!([file])),
    )
    .await;
    mount(&f, "GET", "/delivery/old2.png", ResponseTemplate::new(404)).await;
    let checkpoint = checkpoint_with("old2");
    let err = generate(&replicate(&f), &checkpoint).await.unwrap_err();
    assert!(err.to_string().contains("no longer"), "{err}");
    assert_forgotten(&checkpoint, "old2").await;
}

#[tokio::test]
async fn an_expired_openai_video_clears_the_task() {
    // The video object's `expires_at`: "Unix timestamp (seconds) for when the downloadable
    // assets expire"; after it, `/content` has nothing to give.
    let f = Fixture::new().await;
    mount(
        &f,
        "GET",
        "/v1/videos/video_old",
        json_response(
            200,
            json!({"id": "video_old", "object": "video", "status": "completed", "progress": 100, "expires_at": 1_700_000_000}),
        ),
    )
    .await;
    mount(
        &f,
        "GET",
        "/v1/videos/video_old/content",
        json_response(
            404,
            json!({"error": {"message": "Video not found", "type": "invalid_request_error"}}),
        ),
    )
    .await;
    let config = model_from(json!({
        "name": "Sora", "kind": "video", "adapter": "openai_videos", "model": "sora-2",
        "base_url": format!("{}/v1", f.uri()), "api_key_env": KEY_ENV, "timeout_secs": 20,
        "async_task": {"poll_interval_ms": 100}
    }));
    let model = f.catalog(&[config]).video(None).unwrap();
    let checkpoint = checkpoint_with("video_old");
    let err = generate(&model, &checkpoint).await.unwrap_err();
    assert!(err.to_string().contains("expired"), "{err}");
    assert_forgotten(&checkpoint, "video_old").await;
}

#[tokio::test]
async fn a_fal_failure_on_the_result_endpoint_is_final_and_fetched_once() {
    // fal reports a request that failed through its result endpoint, with a 5xx code and its
    // documented error body (docs.fal.ai "Error Reference", mirrored in henjicc/Henji-AI
    // `docs/api/fal/base/errors.md`): a `detail` array of `{loc, msg, type, url}` — here its
    // `internal_server_error` example. Older endpoints answer `{"detail": "…", "error_type":
    // "…"}` (the reference warns not all APIs follow the structure yet); no public source shows
    // that older body verbatim.
    let f = Fixture::new().await;
    let uri = f.uri();
    let app = "/fal-ai/flux/dev";
    mount(
        &f,
        "POST",
        app,
        json_response(
            200,
            json!({"request_id": "fr9", "status_url": format!("{uri}/q/fr9/status"), "response_url": format!("{uri}/q/fr9"), "cancel_url": format!("{uri}/q/fr9/cancel")}),
        ),
    )
    .await;
    mount(
        &f,
        "GET",
        "/q/fr9/status",
        json_response(200, json!({"status": "COMPLETED"})),
    )
    .await;
    mount(
        &f,
        "GET",
        "/q/fr9",
        json_response(
            500,
            json!({"detail": [{"loc": ["body"], "msg": "Internal server error", "type": "internal_server_error", "url": "https://docs.fal.ai/errors/#internal_server_error", "input": {"prompt": "a cat"}}]}),
        ),
    )
    .await;
    let config = model_from(json!({
        "name": "Flux", "kind": "image", "adapter": "fal", "model": "fal-ai/flux/dev",
        "base_url": uri, "api_key_env": KEY_ENV, "timeout_secs": 20,
        "async_task": {"poll_interval_ms": 100}
    }));
    let model = f.catalog(&[config]).image(None).unwrap();
    let checkpoint = Checkpoints::in_memory(None);
    let err = generate(&model, &checkpoint).await.unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    assert!(
        err.to_string()
            .contains("Internal server error (type: internal_server_error)"),
        "{err}"
    );
    assert_eq!(f.count("GET", "/q/fr9").await, 1);
    let entry = checkpoint.entry("img").await.unwrap();
    assert!(entry.get("task").is_none(), "{entry}");
}

#[tokio::test]
async fn replicate_aborted_is_terminal() {
    // Prediction `status`: "starting, processing, succeeded, failed, canceled, aborted";
    // aborted: "the prediction was terminated before it started running (e.g. deadline)".
    let f = Fixture::new().await;
    mount(
        &f,
        "GET",
        "/v1/predictions/ab1",
        prediction("ab1", "aborted", Value::Null),
    )
    .await;
    let checkpoint = checkpoint_with("ab1");
    let err = generate(&replicate(&f), &checkpoint).await.unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    assert!(err.to_string().contains("aborted"), "{err}");
    assert!(checkpoint.entry("img").await.unwrap().get("task").is_none());
}

#[tokio::test]
async fn retry_after_while_polling_is_honoured() {
    let f = Fixture::new().await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let file = format!("{}/delivery/rl.png", f.uri());
    Mock::given(method("GET"))
        .and(path("/v1/predictions/rl1"))
        .respond_with(Timed {
            templates: vec![
                // Replicate's HTTP API docs, "Rate limits": "If you hit a limit, you will receive
                // a response with status 429 with a body like:
                // {"detail":"Request was throttled. Expected available in 1 second."}".
                json_response(
                    429,
                    json!({"detail": "Request was throttled. Expected available in 1 second."}),
                )
                .insert_header("retry-after", "1"),
                prediction("rl1", "succeeded", json!([file])),
            ],
            seen: seen.clone(),
        })
        .mount(&f.server)
        .await;
    mount(
        &f,
        "GET",
        "/delivery/rl.png",
        ResponseTemplate::new(200).set_body_raw(png_bytes(), "image/png"),
    )
    .await;
    generate(&replicate(&f), &checkpoint_with("rl1"))
        .await
        .unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    let gap = seen[1] - seen[0];
    assert!(
        gap >= Duration::from_millis(950),
        "polled again after {gap:?}, not after the 1 s Retry-After"
    );
}

#[tokio::test]
async fn a_cancel_during_submission_records_and_cancels_the_accepted_task() {
    let f = Fixture::new().await;
    mount(
        &f,
        "POST",
        "/v1/models/acme/flux/predictions",
        json_response(
            201,
            json!({"id": "late1", "status": "starting", "output": null}),
        )
        .set_delay(Duration::from_millis(400)),
    )
    .await;
    Mock::given(method("POST"))
        .and(path("/v1/predictions/late1/cancel"))
        .respond_with(prediction("late1", "canceled", Value::Null))
        .expect(1)
        .mount(&f.server)
        .await;
    let model = replicate(&f);
    let checkpoint = Checkpoints::in_memory(None);
    let cancel = CancellationToken::new();
    let (ctx, _) = context(&checkpoint, &cancel);
    let call = tokio::spawn(async move { model.generate(request("img"), ctx).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    cancel.cancel();
    let result = tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(result.unwrap_err(), TaskError::Cancelled);
    let entry = checkpoint.entry("img").await.unwrap();
    assert_eq!(entry["task"]["id"], "late1", "{entry}");
    f.server.verify().await;
}

#[tokio::test]
async fn a_task_just_submitted_and_not_found_yet_is_asked_again() {
    let f = Fixture::new().await;
    mount(
        &f,
        "POST",
        "/v1/models/acme/flux/predictions",
        json_response(
            201,
            json!({"id": "fresh1", "status": "starting", "output": null}),
        ),
    )
    .await;
    let file = format!("{}/delivery/fresh1.png", f.uri());
    let (responder, _) = Sequence::new(vec![
        json_response(404, json!({"detail": "Not found."})),
        prediction("fresh1", "succeeded", json!([file])),
    ]);
    Mock::given(method("GET"))
        .and(path("/v1/predictions/fresh1"))
        .respond_with(responder)
        .mount(&f.server)
        .await;
    mount(
        &f,
        "GET",
        "/delivery/fresh1.png",
        ResponseTemplate::new(200).set_body_raw(png_bytes(), "image/png"),
    )
    .await;
    generate(&replicate(&f), &Checkpoints::in_memory(None))
        .await
        .unwrap();
    assert_eq!(f.count("POST", "/v1/models/acme/flux/predictions").await, 1);
}
