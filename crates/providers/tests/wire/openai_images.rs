//! `openai_images` against a loopback server speaking the images API.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use nosyntask_domain::TaskError;
use nosyntask_engine::ports::{MediaModel, ModelCatalog, ModelKind};
use nosyntask_engine::{CancellationToken, Checkpoints};
use nosyntask_providers::{AdapterKind, ModelConfig};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::common::*;

fn config(f: &Fixture) -> ModelConfig {
    let mut config = model(
        "GPT Image",
        ModelKind::Image,
        AdapterKind::OpenaiImages,
        &format!("{}/v1", f.uri()),
    );
    config.model = Some("dall-e-3".into());
    config.sizes = vec!["1024x1024".into(), "1792x1024".into(), "1024x1792".into()];
    config
}

fn image_model(f: &Fixture, config: ModelConfig) -> Arc<dyn MediaModel> {
    f.catalog(&[config]).image(None).unwrap()
}

async fn mount(f: &Fixture, response: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path("/v1/images/generations"))
        .respond_with(response)
        .mount(&f.server)
        .await;
}

async fn generate(
    model: &Arc<dyn MediaModel>,
) -> Result<nosyntask_engine::ports::MediaOutput, TaskError> {
    let (ctx, _) = context(&Checkpoints::in_memory(None), &CancellationToken::new());
    model.generate(request("frontView"), ctx).await
}

#[tokio::test]
async fn url_results_are_downloaded_into_the_store() {
    let f = Fixture::new().await;
    let uri = f.uri();
    mount(&f, json_response(200, json!({"created": 1713833628, "data": [{"url": format!("{uri}/blob/img-1.png?se=2025"), "revised_prompt": "A rainy station"}]}))).await;
    Mock::given(method("GET"))
        .and(path("/blob/img-1.png"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(png_bytes(), "image/png"))
        .mount(&f.server)
        .await;
    let output = generate(&image_model(&f, config(&f))).await.unwrap();
    assert_eq!(f.stored(&output.url), png_bytes());
    assert_eq!(
        output.source_url.as_deref(),
        Some(format!("{uri}/blob/img-1.png?se=2025").as_str())
    );
    let body: Value = f.requests("POST", "/v1/images/generations").await[0]
        .body_json()
        .unwrap();
    assert_eq!(
        body["size"], "1792x1024",
        "the allowed size closest to 1024x576"
    );
    assert_eq!(
        (body["model"].as_str(), body["n"].as_u64()),
        (Some("dall-e-3"), Some(1))
    );
}

#[tokio::test]
async fn b64_results_are_decoded_into_the_store() {
    let f = Fixture::new().await;
    let b64 = base64::engine::general_purpose::STANDARD.encode(png_bytes());
    mount(
        &f,
        json_response(
            200,
            json!({"created": 1, "data": [{"b64_json": b64}], "usage": {"total_tokens": 100}}),
        ),
    )
    .await;
    let output = generate(&image_model(&f, config(&f))).await.unwrap();
    assert_eq!(output.content_type, "image/png");
    assert_eq!(f.stored(&output.url), png_bytes());
    assert_eq!(output.source_url, None);
}

#[tokio::test]
async fn provider_failure_is_permanent() {
    let f = Fixture::new().await;
    // The images API's refusal, as API users quote it (no first-party page shows the body):
    // `content_policy_violation`, "Your request was rejected as a result of our safety system."
    mount(&f, json_response(400, json!({"error": {"code": "content_policy_violation", "message": "Your request was rejected as a result of our safety system.", "param": null, "type": "invalid_request_error"}}))).await;
    let err = generate(&image_model(&f, config(&f))).await.unwrap_err();
    assert!(
        !err.is_retryable()
            && err
                .to_string()
                .contains("rejected as a result of our safety system"),
        "{err}"
    );
}

#[tokio::test]
async fn rate_limited_with_retry_after() {
    let f = Fixture::new().await;
    // A 429 in OpenAI's `{error: {message, type}}` shape; the wording for the images limit is
    // the test's (the error-codes guide gives "Rate limit reached for requests").
    mount(&f, json_response(429, json!({"error": {"message": "Rate limit exceeded for images per minute", "type": "requests"}})).insert_header("retry-after", "20")).await;
    match generate(&image_model(&f, config(&f))).await {
        Err(TaskError::Retryable { retry_after, .. }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(20)))
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn server_error_then_success() {
    let f = Fixture::new().await;
    // OpenAI's error-codes guide: "500 - The server had an error while processing your
    // request".
    Mock::given(method("POST"))
        .and(path("/v1/images/generations"))
        .respond_with(json_response(500, json!({"error": {"message": "The server had an error while processing your request. Sorry about that!", "type": "server_error"}})))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&f.server)
        .await;
    let b64 = base64::engine::general_purpose::STANDARD.encode(png_bytes());
    mount(&f, json_response(200, json!({"data": [{"b64_json": b64}]}))).await;
    let model = image_model(&f, config(&f));
    assert!(generate(&model).await.unwrap_err().is_retryable());
    assert!(generate(&model).await.is_ok());
}

#[tokio::test]
async fn a_hanging_server_times_out() {
    let f = Fixture::new().await;
    mount(
        &f,
        json_response(200, json!({"data": []})).set_delay(Duration::from_secs(30)),
    )
    .await;
    let mut config = config(&f);
    config.timeout_secs = Some(1);
    let started = Instant::now();
    let err = generate(&image_model(&f, config)).await.unwrap_err();
    assert!(
        err.is_retryable() && err.to_string().contains("timed out"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn garbage_bodies_and_wrong_files_are_reported() {
    let f = Fixture::new().await;
    mount(&f, html_page()).await;
    let err = generate(&image_model(&f, config(&f))).await.unwrap_err();
    assert!(
        err.to_string().contains("non-JSON body (text/html"),
        "{err}"
    );

    // An expired link answering an HTML page instead of the image.
    f.server.reset().await;
    let uri = f.uri();
    mount(
        &f,
        json_response(
            200,
            json!({"data": [{"url": format!("{uri}/blob/gone.png")}]}),
        ),
    )
    .await;
    Mock::given(method("GET"))
        .and(path("/blob/gone.png"))
        .respond_with(html_page())
        .mount(&f.server)
        .await;
    let err = generate(&image_model(&f, config(&f))).await.unwrap_err();
    assert!(!err.is_retryable());
    assert!(
        err.to_string()
            .contains("expected an image, the provider sent text/html"),
        "{err}"
    );
}

#[tokio::test]
async fn downloads_are_size_limited() {
    let f = Fixture::new().await;
    let uri = f.uri();
    mount(
        &f,
        json_response(
            200,
            json!({"data": [{"url": format!("{uri}/blob/huge.png")}]}),
        ),
    )
    .await;
    let mut huge = png_bytes();
    huge.resize(2 * 1024 * 1024, 0);
    Mock::given(method("GET"))
        .and(path("/blob/huge.png"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(huge, "image/png"))
        .mount(&f.server)
        .await;
    let mut config = config(&f);
    config.max_media_mb = Some(1);
    let err = generate(&image_model(&f, config)).await.unwrap_err();
    assert!(
        err.to_string().contains("larger than the 1 MiB limit"),
        "{err}"
    );
}

#[tokio::test]
async fn cancel_stops_a_call_in_flight() {
    let f = Fixture::new().await;
    let (responder, arrived) = Sequence::new(vec![
        json_response(200, json!({"data": []})).set_delay(Duration::from_secs(30)),
    ]);
    Mock::given(method("POST"))
        .and(path("/v1/images/generations"))
        .respond_with(responder)
        .mount(&f.server)
        .await;
    let model = image_model(&f, config(&f));
    let cancel = CancellationToken::new();
    let (ctx, _) = context(&Checkpoints::in_memory(None), &cancel);
    let call = tokio::spawn(async move { model.generate(request("frontView"), ctx).await });
    arrived.notified().await;
    cancel.cancel();
    let result = tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(result.unwrap_err(), TaskError::Cancelled);
}
