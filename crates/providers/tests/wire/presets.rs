//! Mocks of the preset providers' documented wire formats, and of a custom `async_task` API.

use async_trait::async_trait;
use nosyntask_engine::ports::ModelKind;
use nosyntask_providers::{AdapterKind, ModelConfig};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::common::*;
use crate::scenarios::{ProviderMock, lifecycle_tests};

async fn serve_file(f: &Fixture, route: &str, kind: ModelKind) {
    let (bytes, content_type) = match kind {
        ModelKind::Video => (mp4_bytes(), "video/mp4"),
        _ => (png_bytes(), "image/png"),
    };
    Mock::given(method("GET"))
        .and(path(route))
        .respond_with(ResponseTemplate::new(200).set_body_raw(bytes, content_type))
        .mount(&f.server)
        .await;
}

/// Replicate predictions (image model `acme/flux`).
pub struct Replicate;

#[async_trait]
impl ProviderMock for Replicate {
    fn kind(&self) -> ModelKind {
        ModelKind::Image
    }
    fn config(&self, uri: &str) -> ModelConfig {
        let mut config = model(
            "Flux",
            ModelKind::Image,
            AdapterKind::Replicate,
            &format!("{uri}/v1"),
        );
        config.model = Some("acme/flux".into());
        config
    }
    fn submit_route(&self) -> (&'static str, String) {
        ("POST", "/v1/models/acme/flux/predictions".into())
    }
    fn submitted(&self, uri: &str) -> ResponseTemplate {
        json_response(
            201,
            json!({
                "id": "rp1", "model": "acme/flux", "version": "dp-4d0bcc010b3049749a251855f12800be",
                "input": {"prompt": "…"}, "logs": "", "output": null, "error": null, "status": "starting",
                "created_at": "2024-05-01T12:00:00.000Z",
                "urls": {"get": format!("{uri}/v1/predictions/rp1"), "cancel": format!("{uri}/v1/predictions/rp1/cancel")}
            }),
        )
    }
    fn poll_route(&self) -> (&'static str, String) {
        ("GET", "/v1/predictions/rp1".into())
    }
    fn running(&self, _uri: &str) -> ResponseTemplate {
        json_response(
            200,
            json!({"id": "rp1", "status": "processing", "logs": "Using seed: 1\n 40%|████      | 2/5", "output": null, "error": null}),
        )
    }
    fn finished(&self, uri: &str) -> ResponseTemplate {
        json_response(
            200,
            json!({
                "id": "rp1", "status": "succeeded", "output": [format!("{uri}/delivery/rp1/out-0.png")],
                "error": null, "metrics": {"predict_time": 2.3}
            }),
        )
    }
    fn failed(&self, _uri: &str) -> ResponseTemplate {
        json_response(
            200,
            json!({"id": "rp1", "status": "failed", "output": null, "error": "NSFW content detected. Try running it again, or try a different prompt."}),
        )
    }
    fn failure_message(&self) -> &'static str {
        "NSFW content detected"
    }
    async fn mount_result(&self, f: &Fixture) {
        serve_file(f, "/delivery/rp1/out-0.png", ModelKind::Image).await;
    }
    fn cancel_route(&self) -> Option<(&'static str, String)> {
        Some(("POST", "/v1/predictions/rp1/cancel".into()))
    }
    /// Replicate's HTTP API docs, "Rate limits": a 429 "with a body like:
    /// {"detail":"Request was throttled. Expected available in 1 second."}".
    fn error_body(&self, message: &str) -> Value {
        json!({"detail": message})
    }
    fn check_submission(&self, body: &Value) {
        assert_eq!(
            body["input"]["prompt"],
            "雨夜的车站，\"旧友\"重逢\nwide shot"
        );
        assert_eq!(
            (
                body["input"]["width"].as_u64(),
                body["input"]["height"].as_u64()
            ),
            (Some(1024), Some(576))
        );
        assert!(
            body["input"].get("image").is_none(),
            "absent inputs are left out: {body}"
        );
    }
}

/// The fal queue (video model `fal-ai/kling-video/v2/master/text-to-video`).
pub struct Fal;

const FAL_APP: &str = "/fal-ai/kling-video/requests/fr1";

#[async_trait]
impl ProviderMock for Fal {
    fn kind(&self) -> ModelKind {
        ModelKind::Video
    }
    fn config(&self, uri: &str) -> ModelConfig {
        let mut config = model("Kling", ModelKind::Video, AdapterKind::Fal, uri);
        config.model = Some("fal-ai/kling-video/v2/master/text-to-video".into());
        config
    }
    fn submit_route(&self) -> (&'static str, String) {
        ("POST", "/fal-ai/kling-video/v2/master/text-to-video".into())
    }
    fn submitted(&self, uri: &str) -> ResponseTemplate {
        json_response(
            200,
            json!({
                "request_id": "fr1",
                "response_url": format!("{uri}{FAL_APP}"),
                "status_url": format!("{uri}{FAL_APP}/status"),
                "cancel_url": format!("{uri}{FAL_APP}/cancel"),
                "status": "IN_QUEUE", "queue_position": 0
            }),
        )
    }
    fn poll_route(&self) -> (&'static str, String) {
        ("GET", format!("{FAL_APP}/status"))
    }
    fn running(&self, uri: &str) -> ResponseTemplate {
        json_response(
            202,
            json!({"status": "IN_PROGRESS", "logs": null, "response_url": format!("{uri}{FAL_APP}")}),
        )
    }
    fn finished(&self, uri: &str) -> ResponseTemplate {
        json_response(
            200,
            json!({"status": "COMPLETED", "logs": null, "response_url": format!("{uri}{FAL_APP}"), "metrics": {"inference_time": 41.2}}),
        )
    }
    fn failed(&self, uri: &str) -> ResponseTemplate {
        json_response(
            200,
            json!({"status": "COMPLETED", "error": "Internal error: prompt rejected by the content checker", "error_type": "content_policy_violation", "response_url": format!("{uri}{FAL_APP}")}),
        )
    }
    fn failure_message(&self) -> &'static str {
        "prompt rejected by the content checker"
    }
    async fn mount_result(&self, f: &Fixture) {
        let uri = f.uri();
        Mock::given(method("GET"))
            .and(path(FAL_APP))
            .and(header("authorization", format!("Key {}", key()).as_str()))
            .respond_with(json_response(200, json!({"video": {"url": format!("{uri}/files/fr1.mp4"), "content_type": "video/mp4", "file_size": 96}})))
            .mount(&f.server)
            .await;
        serve_file(f, "/files/fr1.mp4", ModelKind::Video).await;
    }
    fn cancel_route(&self) -> Option<(&'static str, String)> {
        Some(("PUT", format!("{FAL_APP}/cancel")))
    }
    /// No public source shows fal's 429 body; its error reference (docs.fal.ai "Error
    /// Reference") gives every error a `detail`, which is what is sent here.
    fn error_body(&self, message: &str) -> Value {
        json!({"detail": message})
    }
    fn check_submission(&self, body: &Value) {
        assert_eq!(body["duration"], "5", "fal's duration is a string: {body}");
        assert!(body.get("image_url").is_none());
    }
}

/// DashScope async tasks (video model `wan2.1-t2v-turbo`).
pub struct Dashscope;

#[async_trait]
impl ProviderMock for Dashscope {
    fn kind(&self) -> ModelKind {
        ModelKind::Video
    }
    fn config(&self, uri: &str) -> ModelConfig {
        let mut config = model(
            "Wan",
            ModelKind::Video,
            AdapterKind::Dashscope,
            &format!("{uri}/api/v1"),
        );
        config.model = Some("wan2.1-t2v-turbo".into());
        config
    }
    fn submit_route(&self) -> (&'static str, String) {
        (
            "POST",
            "/api/v1/services/aigc/video-generation/video-synthesis".into(),
        )
    }
    fn submitted(&self, _uri: &str) -> ResponseTemplate {
        json_response(
            200,
            json!({"output": {"task_status": "PENDING", "task_id": "ds1"}, "request_id": "4909100c-7b5a-9f92-bfe5-xxxxxx"}),
        )
    }
    fn poll_route(&self) -> (&'static str, String) {
        ("GET", "/api/v1/tasks/ds1".into())
    }
    fn running(&self, _uri: &str) -> ResponseTemplate {
        json_response(
            200,
            json!({"request_id": "r2", "output": {"task_id": "ds1", "task_status": "RUNNING", "submit_time": "2025-01-08 16:03:59.840", "scheduled_time": "2025-01-08 16:03:59.863"}}),
        )
    }
    fn finished(&self, uri: &str) -> ResponseTemplate {
        json_response(
            200,
            json!({
                "request_id": "r3",
                "output": {"task_id": "ds1", "task_status": "SUCCEEDED", "video_url": format!("{uri}/oss/ds1.mp4"),
                           "submit_time": "2025-01-08 16:03:59.840", "end_time": "2025-01-08 16:07:59.331"},
                "usage": {"video_duration": 5, "video_ratio": "1280*720", "video_count": 1}
            }),
        )
    }
    /// Model Studio error codes (help.aliyun.com/zh/model-studio/error-code,
    /// "inappropriate-content"): `DataInspectionFailed`, "Output data may contain inappropriate
    /// content."; a failed task carries them in `output.code` / `output.message`.
    fn failed(&self, _uri: &str) -> ResponseTemplate {
        json_response(
            200,
            json!({"request_id": "r4", "output": {"task_id": "ds1", "task_status": "FAILED", "code": "DataInspectionFailed", "message": "Output data may contain inappropriate content."}}),
        )
    }
    fn failure_message(&self) -> &'static str {
        "Output data may contain inappropriate content."
    }
    async fn mount_result(&self, f: &Fixture) {
        serve_file(f, "/oss/ds1.mp4", ModelKind::Video).await;
    }
    fn cancel_route(&self) -> Option<(&'static str, String)> {
        Some(("POST", "/api/v1/tasks/ds1/cancel".into()))
    }
    /// DashScope's error body is `{code, message, request_id}` (Model Studio API reference);
    /// `Throttling.RateQuota` is its rate-limit code. The docs give no verbatim 429 body, so
    /// the message is the test's.
    fn error_body(&self, message: &str) -> Value {
        json!({"code": "Throttling.RateQuota", "message": message, "request_id": "r5"})
    }
    fn check_submission(&self, body: &Value) {
        assert_eq!(body["model"], "wan2.1-t2v-turbo");
        assert_eq!(
            body["input"]["prompt"],
            "雨夜的车站，\"旧友\"重逢\nwide shot"
        );
        assert_eq!(body["parameters"]["duration"], 5);
    }
}

/// The OpenAI videos API (`sora-2`).
pub struct OpenAiVideos;

#[async_trait]
impl ProviderMock for OpenAiVideos {
    fn kind(&self) -> ModelKind {
        ModelKind::Video
    }
    fn config(&self, uri: &str) -> ModelConfig {
        let mut config = model(
            "Sora",
            ModelKind::Video,
            AdapterKind::OpenaiVideos,
            &format!("{uri}/v1"),
        );
        config.model = Some("sora-2".into());
        config
    }
    fn submit_route(&self) -> (&'static str, String) {
        ("POST", "/v1/videos".into())
    }
    fn submitted(&self, _uri: &str) -> ResponseTemplate {
        json_response(
            200,
            json!({"id": "video_68d7", "object": "video", "model": "sora-2", "status": "queued", "progress": 0, "created_at": 1758941485, "size": "1280x720", "seconds": "4"}),
        )
    }
    fn poll_route(&self) -> (&'static str, String) {
        ("GET", "/v1/videos/video_68d7".into())
    }
    fn running(&self, _uri: &str) -> ResponseTemplate {
        json_response(
            200,
            json!({"id": "video_68d7", "object": "video", "status": "in_progress", "progress": 40}),
        )
    }
    fn finished(&self, _uri: &str) -> ResponseTemplate {
        json_response(
            200,
            // Assets expire a day after completion; a finished video past it is gone.
            json!({"id": "video_68d7", "object": "video", "status": "completed", "progress": 100, "completed_at": 1758941600, "expires_at": chrono::Utc::now().timestamp() + 86_400}),
        )
    }
    fn failed(&self, _uri: &str) -> ResponseTemplate {
        json_response(
            200,
            json!({"id": "video_68d7", "object": "video", "status": "failed", "progress": 0, "error": {"code": "moderation_blocked", "message": "Your request was blocked by our moderation system."}}),
        )
    }
    fn failure_message(&self) -> &'static str {
        "blocked by our moderation system"
    }
    async fn mount_result(&self, f: &Fixture) {
        Mock::given(method("GET"))
            .and(path("/v1/videos/video_68d7/content"))
            .and(header(
                "authorization",
                format!("Bearer {}", key()).as_str(),
            ))
            .respond_with(ResponseTemplate::new(200).set_body_raw(mp4_bytes(), "video/mp4"))
            .mount(&f.server)
            .await;
    }
    fn cancel_route(&self) -> Option<(&'static str, String)> {
        None
    }
    fn check_submission(&self, body: &Value) {
        assert_eq!(
            body,
            &json!({"model": "sora-2", "prompt": "雨夜的车站，\"旧友\"重逢\nwide shot", "seconds": "4", "size": "1280x720"})
        );
    }
}

/// A custom API described entirely by an `async_task` table.
pub struct Custom;

#[async_trait]
impl ProviderMock for Custom {
    fn kind(&self) -> ModelKind {
        ModelKind::Image
    }
    fn config(&self, uri: &str) -> ModelConfig {
        let mut config = model("Custom", ModelKind::Image, AdapterKind::AsyncTask, uri);
        config.model = Some("painter-v2".into());
        config.async_task = Some(json!({
            "headers": {"X-Api-Key": "{{api_key}}"},
            "submit": {
                "url": "{{base_url}}/generate",
                "body": "{\"model\": \"{{model}}\", \"prompt\": \"{{prompt}}\", \"w\": \"{{width}}\", \"h\": \"{{height}}\", \"ref\": \"{{image_url}}\", \"tag\": \"{{model}}-{{width|string}}\"}"
            },
            "task_id_path": "data.taskId",
            "poll": {"url": "{{base_url}}/tasks/{{task_id}}"},
            "status_path": "data.state",
            "progress_path": "data.percent",
            "progress_max": 1.0,
            "result_url_path": "data.result.image_url",
            "error_path": "data.reason",
            "success_statuses": ["done"],
            "failure_statuses": ["error"],
            "cancelled_statuses": ["cancelled"],
            "cancel": {"url": "{{base_url}}/tasks/{{task_id}}", "method": "DELETE"}
        }));
        config
    }
    fn submit_route(&self) -> (&'static str, String) {
        ("POST", "/generate".into())
    }
    fn submitted(&self, _uri: &str) -> ResponseTemplate {
        json_response(
            200,
            json!({"code": 0, "data": {"taskId": "c/1", "state": "queued"}}),
        )
    }
    fn poll_route(&self) -> (&'static str, String) {
        ("GET", "/tasks/c%2F1".into())
    }
    fn running(&self, _uri: &str) -> ResponseTemplate {
        json_response(
            200,
            json!({"code": 0, "data": {"state": "RUNNING", "percent": 0.5}}),
        )
    }
    fn finished(&self, uri: &str) -> ResponseTemplate {
        json_response(
            200,
            json!({"code": 0, "data": {"state": "DONE", "percent": 1.0, "result": {"image_url": format!("{uri}/out/c1.png")}}}),
        )
    }
    fn failed(&self, _uri: &str) -> ResponseTemplate {
        json_response(
            200,
            json!({"code": 0, "data": {"state": "error", "reason": "GPU worker crashed"}}),
        )
    }
    fn failure_message(&self) -> &'static str {
        "GPU worker crashed"
    }
    async fn mount_result(&self, f: &Fixture) {
        serve_file(f, "/out/c1.png", ModelKind::Image).await;
    }
    fn cancel_route(&self) -> Option<(&'static str, String)> {
        Some(("DELETE", "/tasks/c%2F1".into()))
    }
    fn check_submission(&self, body: &Value) {
        assert_eq!(
            body,
            &json!({"model": "painter-v2", "prompt": "雨夜的车站，\"旧友\"重逢\nwide shot", "w": 1024, "h": 576, "tag": "painter-v2-1024"})
        );
    }
}

lifecycle_tests!(replicate, super::Replicate);
lifecycle_tests!(fal, super::Fal);
lifecycle_tests!(dashscope, super::Dashscope);
lifecycle_tests!(openai_videos, super::OpenAiVideos);
lifecycle_tests!(custom_async_task, super::Custom);

mod edge_cases {
    use nosyntask_engine::ports::{MediaModel, ModelCatalog};
    use nosyntask_engine::{CancellationToken, Checkpoints};
    use serde_json::json;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, ResponseTemplate};

    use super::{Custom, Dashscope};
    use crate::common::*;
    use crate::scenarios::ProviderMock;

    #[tokio::test]
    async fn a_missing_api_key_variable_is_named() {
        let f = Fixture::new().await;
        let mut config = Dashscope.config(&f.uri());
        config.api_key_env = Some("NOSYNTASK_TEST_SURELY_UNSET_KEY".into());
        let model = f.catalog(&[config]).video(None).unwrap();
        let (ctx, _) = context(&Checkpoints::in_memory(None), &CancellationToken::new());
        let err = model.generate(request("clip"), ctx).await.unwrap_err();
        assert!(!err.is_retryable());
        assert!(
            err.to_string().contains("NOSYNTASK_TEST_SURELY_UNSET_KEY"),
            "{err}"
        );
        assert_eq!(
            f.count(
                "POST",
                "/api/v1/services/aigc/video-generation/video-synthesis"
            )
            .await,
            0
        );
    }

    #[tokio::test]
    async fn a_proxy_page_while_polling_is_retried_not_fatal() {
        let f = Fixture::new().await;
        let uri = f.uri();
        Mock::given(method("POST"))
            .and(path("/generate"))
            .respond_with(Custom.submitted(&uri))
            .mount(&f.server)
            .await;
        let (responder, _) = Sequence::new(vec![
            html_page(),
            ResponseTemplate::new(502),
            Custom.finished(&uri),
        ]);
        Mock::given(method("GET"))
            .and(path("/tasks/c%2F1"))
            .respond_with(responder)
            .mount(&f.server)
            .await;
        Custom.mount_result(&f).await;
        let config = with_async(Custom.config(&uri), json!({"poll_interval_ms": 100}));
        let model = f.catalog(&[config]).image(None).unwrap();
        let (ctx, _) = context(&Checkpoints::in_memory(None), &CancellationToken::new());
        assert!(model.generate(request("img"), ctx).await.is_ok());
        assert_eq!(f.count("GET", "/tasks/c%2F1").await, 3);
    }

    #[tokio::test]
    async fn synchronous_answers_are_not_polled() {
        let f = Fixture::new().await;
        let uri = f.uri();
        Mock::given(method("POST"))
            .and(path("/generate"))
            .respond_with(json_response(200, json!({"data": {"taskId": "s1", "state": "done", "result": {"image_url": format!("{uri}/out/c1.png")}}})))
            .mount(&f.server)
            .await;
        Custom.mount_result(&f).await;
        let model = f.catalog(&[Custom.config(&uri)]).image(None).unwrap();
        let (ctx, _) = context(&Checkpoints::in_memory(None), &CancellationToken::new());
        let output = model.generate(request("img"), ctx).await.unwrap();
        assert_eq!(f.stored(&output.url), png_bytes());
        let polls = f
            .server
            .received_requests()
            .await
            .unwrap()
            .iter()
            .filter(|r| r.url.path().starts_with("/tasks"))
            .count();
        assert_eq!(polls, 0);
    }

    #[tokio::test]
    async fn a_task_that_outlives_the_timeout_is_kept_for_the_next_attempt() {
        let f = Fixture::new().await;
        let uri = f.uri();
        Mock::given(method("POST"))
            .and(path("/generate"))
            .respond_with(Custom.submitted(&uri))
            .mount(&f.server)
            .await;
        Mock::given(method("GET"))
            .and(path("/tasks/c%2F1"))
            .respond_with(Custom.running(&uri))
            .mount(&f.server)
            .await;
        let mut config = with_async(Custom.config(&uri), json!({"poll_interval_ms": 200}));
        config.timeout_secs = Some(1);
        let model = f.catalog(&[config]).image(None).unwrap();
        let checkpoint = Checkpoints::in_memory(None);
        let (ctx, _) = context(&checkpoint, &CancellationToken::new());
        let err = model.generate(request("img"), ctx).await.unwrap_err();
        assert!(
            err.is_retryable() && err.to_string().contains("did not finish within 1 s"),
            "{err}"
        );
        assert_eq!(checkpoint.entry("img").await.unwrap()["task"]["id"], "c/1");
    }

    #[tokio::test]
    async fn a_task_cancelled_with_its_job_is_submitted_again_on_resume() {
        let f = Fixture::new().await;
        let uri = f.uri();
        Mock::given(method("POST"))
            .and(path("/generate"))
            .respond_with(Custom.submitted(&uri))
            .mount(&f.server)
            .await;
        Mock::given(method("GET"))
            .and(path("/tasks/c%2F1"))
            .respond_with(Custom.finished(&uri))
            .mount(&f.server)
            .await;
        Mock::given(method("GET"))
            .and(path("/tasks/old"))
            .respond_with(json_response(200, json!({"data": {"state": "cancelled"}})))
            .mount(&f.server)
            .await;
        Custom.mount_result(&f).await;
        let config = with_async(Custom.config(&uri), json!({"poll_interval_ms": 100}));
        let model: std::sync::Arc<dyn MediaModel> = f.catalog(&[config]).image(None).unwrap();
        let checkpoint = Checkpoints::in_memory(Some(
            json!({"img": {"provider": "async_task", "task": {"id": "old"}}}),
        ));
        let (ctx, _) = context(&checkpoint, &CancellationToken::new());
        assert!(model.generate(request("img"), ctx).await.is_ok());
        assert_eq!(f.count("GET", "/tasks/old").await, 1);
        assert_eq!(f.count("POST", "/generate").await, 1);
    }
}
