//! The life cycle every asynchronous adapter and preset goes through, against a loopback server
//! speaking that provider's wire format: success, provider-side failure, 429 with Retry-After,
//! 5xx then success, a hanging server, a garbage body, cancellation, and resuming from a
//! checkpoint without a second submission.

use std::time::Duration;

use async_trait::async_trait;
use nosyntask_domain::TaskError;
use nosyntask_engine::ports::{MediaModel, ModelCatalog, ModelKind};
use nosyntask_engine::{CancellationToken, Checkpoints};
use nosyntask_providers::ModelConfig;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::common::*;

/// One provider's wire format, as a mock.
#[async_trait]
pub trait ProviderMock: Send + Sync {
    fn kind(&self) -> ModelKind;
    fn config(&self, uri: &str) -> ModelConfig;
    /// Method and path of the submission.
    fn submit_route(&self) -> (&'static str, String);
    /// The provider's answer to an accepted submission.
    fn submitted(&self, uri: &str) -> ResponseTemplate;
    /// Method and path of the status request.
    fn poll_route(&self) -> (&'static str, String);
    /// A status answer of a running task.
    fn running(&self, uri: &str) -> ResponseTemplate;
    /// A status answer of a finished task.
    fn finished(&self, uri: &str) -> ResponseTemplate;
    /// A status answer of a failed task, and the provider message it carries.
    fn failed(&self, uri: &str) -> ResponseTemplate;
    fn failure_message(&self) -> &'static str;
    /// Mounts whatever follows success (result requests, the file itself).
    async fn mount_result(&self, f: &Fixture);
    /// The cancel call, for providers that have one.
    fn cancel_route(&self) -> Option<(&'static str, String)>;
    /// An error body in the provider's format.
    fn error_body(&self, message: &str) -> Value {
        json!({"error": {"message": message, "type": "rate_limit_error"}})
    }
    /// Checks what was submitted.
    fn check_submission(&self, _body: &Value) {}
}

fn fast(config: ModelConfig) -> ModelConfig {
    with_async(config, json!({"poll_interval_ms": 100}))
}

fn model_of(
    p: &dyn ProviderMock,
    f: &Fixture,
    config: ModelConfig,
) -> std::sync::Arc<dyn MediaModel> {
    let catalog = f.catalog(&[config]);
    match p.kind() {
        ModelKind::Video => catalog.video(None).unwrap(),
        _ => catalog.image(None).unwrap(),
    }
}

async fn mount_submit(p: &dyn ProviderMock, f: &Fixture, response: ResponseTemplate) {
    let (m, route) = p.submit_route();
    Mock::given(method(m))
        .and(path(route))
        .respond_with(response)
        .mount(&f.server)
        .await;
}

async fn submissions(p: &dyn ProviderMock, f: &Fixture) -> usize {
    let (m, route) = p.submit_route();
    f.count(m, &route).await
}

pub async fn success(p: &dyn ProviderMock) {
    let f = Fixture::new().await;
    let uri = f.uri();
    mount_submit(p, &f, p.submitted(&uri)).await;
    let (m, route) = p.poll_route();
    let (responder, _) = Sequence::new(vec![p.running(&uri), p.running(&uri), p.finished(&uri)]);
    Mock::given(method(m))
        .and(path(route.clone()))
        .respond_with(responder)
        .mount(&f.server)
        .await;
    p.mount_result(&f).await;

    let model = model_of(p, &f, fast(p.config(&uri)));
    let checkpoint = Checkpoints::in_memory(None);
    let (ctx, progress) = context(&checkpoint, &CancellationToken::new());
    let output = model.generate(request("clip"), ctx).await.unwrap();

    assert!(output.url.starts_with("/files/"), "{output:?}");
    let stored = f.stored(&output.url);
    match p.kind() {
        ModelKind::Video => {
            assert!(output.content_type.starts_with("video/") && stored == mp4_bytes())
        }
        _ => assert!(output.content_type == "image/png" && stored == png_bytes()),
    }
    assert_eq!(submissions(p, &f).await, 1);
    assert_eq!(f.count(m, &route).await, 3, "two running polls, then done");
    assert!(progress.current() >= 90, "progress {}", progress.current());
    let entry = checkpoint.entry("clip").await.unwrap();
    assert_eq!(
        entry["output"]["url"],
        json!(output.url),
        "the stored file is checkpointed"
    );
    let (sm, sroute) = p.submit_route();
    let body: Value = f.requests(sm, &sroute).await[0]
        .body_json()
        .unwrap_or(Value::Null);
    p.check_submission(&body);
}

pub async fn provider_failure(p: &dyn ProviderMock) {
    let f = Fixture::new().await;
    let uri = f.uri();
    mount_submit(p, &f, p.submitted(&uri)).await;
    let (m, route) = p.poll_route();
    Mock::given(method(m))
        .and(path(route))
        .respond_with(p.failed(&uri))
        .mount(&f.server)
        .await;
    p.mount_result(&f).await;

    let model = model_of(p, &f, fast(p.config(&uri)));
    let checkpoint = Checkpoints::in_memory(None);
    let (ctx, _) = context(&checkpoint, &CancellationToken::new());
    let err = model.generate(request("clip"), ctx).await.unwrap_err();
    assert!(!err.is_retryable(), "{err:?}");
    assert!(err.to_string().contains(p.failure_message()), "{err}");
    let entry = checkpoint.entry("clip").await.unwrap();
    assert!(
        entry.get("task").is_none(),
        "a failed task is forgotten, so a resume submits again: {entry}"
    );
}

pub async fn rate_limited(p: &dyn ProviderMock) {
    let f = Fixture::new().await;
    let body = p.error_body("Rate limit reached, please slow down");
    mount_submit(
        p,
        &f,
        json_response(429, body).insert_header("retry-after", "7"),
    )
    .await;
    let model = model_of(p, &f, fast(p.config(&f.uri())));
    let (ctx, _) = context(&Checkpoints::in_memory(None), &CancellationToken::new());
    match model.generate(request("clip"), ctx).await {
        Err(TaskError::Retryable {
            message,
            retry_after,
        }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(7)));
            assert!(
                message.contains("HTTP 429") && message.contains("Rate limit reached"),
                "{message}"
            );
        }
        other => panic!("expected a retryable error, got {other:?}"),
    }
}

pub async fn server_error_then_success(p: &dyn ProviderMock) {
    let f = Fixture::new().await;
    let uri = f.uri();
    let (m, route) = p.submit_route();
    Mock::given(method(m))
        .and(path(route))
        .respond_with(
            ResponseTemplate::new(502).set_body_raw("<html>502 Bad Gateway</html>", "text/html"),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&f.server)
        .await;
    mount_submit(p, &f, p.submitted(&uri)).await;
    let (pm, proute) = p.poll_route();
    Mock::given(method(pm))
        .and(path(proute))
        .respond_with(p.finished(&uri))
        .mount(&f.server)
        .await;
    p.mount_result(&f).await;

    let model = model_of(p, &f, fast(p.config(&uri)));
    let checkpoint = Checkpoints::in_memory(None);
    let (ctx, _) = context(&checkpoint, &CancellationToken::new());
    let err = model
        .generate(request("clip"), ctx.clone())
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(
        err.to_string().contains("HTTP 502") && err.to_string().contains("text/html"),
        "{err}"
    );
    // Retrying is the engine's job; the next attempt succeeds.
    let output = model.generate(request("clip"), ctx).await.unwrap();
    assert!(output.url.starts_with("/files/"));
    assert_eq!(submissions(p, &f).await, 2);
}

pub async fn hanging(p: &dyn ProviderMock) {
    let f = Fixture::new().await;
    mount_submit(
        p,
        &f,
        p.submitted(&f.uri()).set_delay(Duration::from_secs(30)),
    )
    .await;
    let config = with_async(fast(p.config(&f.uri())), json!({"request_timeout_secs": 1}));
    let model = model_of(p, &f, config);
    let (ctx, _) = context(&Checkpoints::in_memory(None), &CancellationToken::new());
    let started = std::time::Instant::now();
    let err = model.generate(request("clip"), ctx).await.unwrap_err();
    assert!(
        err.is_retryable() && err.to_string().contains("timed out"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

pub async fn garbage(p: &dyn ProviderMock) {
    let f = Fixture::new().await;
    mount_submit(p, &f, html_page()).await;
    let model = model_of(p, &f, fast(p.config(&f.uri())));
    let (ctx, _) = context(&Checkpoints::in_memory(None), &CancellationToken::new());
    let err = model.generate(request("clip"), ctx).await.unwrap_err();
    assert!(!err.is_retryable(), "{err:?}");
    assert!(
        err.to_string()
            .contains("provider returned a non-JSON body (text/html, 94 bytes): <!DOCTYPE html>"),
        "{err}"
    );
}

pub async fn cancel(p: &dyn ProviderMock) {
    let f = Fixture::new().await;
    let uri = f.uri();
    mount_submit(p, &f, p.submitted(&uri)).await;
    let (m, route) = p.poll_route();
    let (responder, polled) = Sequence::new(vec![p.running(&uri)]);
    Mock::given(method(m))
        .and(path(route))
        .respond_with(responder)
        .mount(&f.server)
        .await;
    if let Some((cm, croute)) = p.cancel_route() {
        Mock::given(method(cm))
            .and(path(croute))
            .respond_with(json_response(200, json!({})))
            .expect(1)
            .mount(&f.server)
            .await;
    }
    let model = model_of(p, &f, fast(p.config(&uri)));
    let cancel = CancellationToken::new();
    let (ctx, _) = context(&Checkpoints::in_memory(None), &cancel);
    let call = tokio::spawn(async move { model.generate(request("clip"), ctx).await });
    polled.notified().await;
    cancel.cancel();
    let result = tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(result.unwrap_err(), TaskError::Cancelled);
    f.server.verify().await;
}

pub async fn resume(p: &dyn ProviderMock) {
    let f = Fixture::new().await;
    let uri = f.uri();
    mount_submit(p, &f, p.submitted(&uri)).await;
    let (m, route) = p.poll_route();
    let (responder, polled) = Sequence::new(vec![p.running(&uri), p.finished(&uri)]);
    Mock::given(method(m))
        .and(path(route))
        .respond_with(responder)
        .mount(&f.server)
        .await;
    p.mount_result(&f).await;

    let model = model_of(p, &f, fast(p.config(&uri)));
    let checkpoint = Checkpoints::in_memory(None);
    let (ctx, _) = context(&checkpoint, &CancellationToken::new());
    let crashed = {
        let model = model.clone();
        tokio::spawn(async move { model.generate(request("clip"), ctx).await })
    };
    polled.notified().await;
    // The process dies while polling: the future is dropped where it stands.
    crashed.abort();
    let _ = crashed.await;
    let saved = checkpoint.entry("clip").await.unwrap();
    assert!(
        saved["task"]["id"].is_string(),
        "task id checkpointed before polling: {saved}"
    );

    let (ctx, _) = context(&checkpoint, &CancellationToken::new());
    let output = model.generate(request("clip"), ctx).await.unwrap();
    assert!(output.url.starts_with("/files/"));
    assert_eq!(
        submissions(p, &f).await,
        1,
        "resumed without a second submission"
    );
}

/// Runs every scenario for one provider.
macro_rules! lifecycle_tests {
    ($module:ident, $mock:expr) => {
        mod $module {
            use crate::scenarios;

            #[tokio::test]
            async fn success() {
                scenarios::success(&$mock).await;
            }
            #[tokio::test]
            async fn provider_failure() {
                scenarios::provider_failure(&$mock).await;
            }
            #[tokio::test]
            async fn rate_limited_with_retry_after() {
                scenarios::rate_limited(&$mock).await;
            }
            #[tokio::test]
            async fn server_error_then_success() {
                scenarios::server_error_then_success(&$mock).await;
            }
            #[tokio::test]
            async fn hanging_server_times_out() {
                scenarios::hanging(&$mock).await;
            }
            #[tokio::test]
            async fn garbage_body() {
                scenarios::garbage(&$mock).await;
            }
            #[tokio::test]
            async fn cancel() {
                scenarios::cancel(&$mock).await;
            }
            #[tokio::test]
            async fn resumes_from_checkpoint_without_resubmitting() {
                scenarios::resume(&$mock).await;
            }
        }
    };
}
pub(crate) use lifecycle_tests;
