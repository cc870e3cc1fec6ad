//! `openai_compatible` against a loopback server speaking the chat completions format.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nosyntask_domain::TaskError;
use nosyntask_engine::CancellationToken;
use nosyntask_engine::ports::{ModelCatalog, ModelKind, TextModel, TextRequest};
use nosyntask_providers::{AdapterKind, ModelConfig, parse_llm_response};
use serde::Deserialize;
use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, Request, Respond, ResponseTemplate};

use crate::common::*;

fn config(f: &Fixture) -> ModelConfig {
    let mut config = model(
        "DeepSeek Chat",
        ModelKind::Text,
        AdapterKind::OpenaiCompatible,
        &format!("{}/v1", f.uri()),
    );
    config.model = Some("deepseek-chat".into());
    config
}

fn text_model(f: &Fixture, config: ModelConfig) -> Arc<dyn TextModel> {
    f.catalog(&[config]).text(None).unwrap()
}

fn completion(content: &str, finish_reason: &str) -> Value {
    json!({
        "id": "930c60df-bf64-41c9-a88e-3ec75f81e00e",
        "object": "chat.completion",
        "created": 1705651092,
        "model": "deepseek-chat",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "logprobs": null, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 16, "completion_tokens": 10, "total_tokens": 26, "prompt_cache_hit_tokens": 0}
    })
}

async fn mount(f: &Fixture, response: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(response)
        .mount(&f.server)
        .await;
}

async fn call(
    model: &Arc<dyn TextModel>,
) -> Result<nosyntask_engine::ports::TextResponse, TaskError> {
    model
        .complete(
            TextRequest::user("提取角色，输出 JSON"),
            &CancellationToken::new(),
        )
        .await
}

#[derive(Debug, Deserialize, PartialEq)]
struct Characters {
    characters: Vec<String>,
}

#[tokio::test]
async fn success_reads_content_finish_reason_and_usage() {
    let f = Fixture::new().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", format!("Bearer {}", key()).as_str()))
        .and(body_partial_json(json!({"model": "deepseek-chat", "response_format": {"type": "json_object"}, "stream": false, "temperature": 0.2})))
        .respond_with(json_response(200, completion("```json\n{\"characters\": [\"李明\", \"王芳\"],}\n```", "stop")))
        .expect(1)
        .mount(&f.server)
        .await;
    let model = text_model(&f, config(&f));
    let mut request =
        TextRequest::user("列出角色，用 JSON 回答").json(json!({"characters": ["名字"]}));
    request.temperature = Some(0.2);
    let response = model
        .complete(request, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(response.finish_reason.as_deref(), Some("stop"));
    assert_eq!(response.usage.total_tokens, 26);
    assert_eq!(
        (response.model.as_str(), response.provider.as_str()),
        ("DeepSeek Chat", "openai_compatible")
    );
    let parsed: Characters = parse_llm_response(&response).unwrap();
    assert_eq!(parsed.characters, vec!["李明", "王芳"]);
}

#[tokio::test]
async fn json_mode_mentions_json_when_the_prompt_does_not() {
    let f = Fixture::new().await;
    mount(&f, json_response(200, completion("{}", "stop"))).await;
    let model = text_model(&f, config(&f));
    let request = TextRequest::user("列出角色").json(json!({"characters": []}));
    model
        .complete(request, &CancellationToken::new())
        .await
        .unwrap();
    let body: Value = f.requests("POST", "/v1/chat/completions").await[0]
        .body_json()
        .unwrap();
    assert_eq!(body["messages"][0]["role"], "system");
    assert!(
        body["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("JSON")
    );
}

#[tokio::test]
async fn provider_errors_are_permanent_with_the_provider_message() {
    let f = Fixture::new().await;
    // OpenAI's wording of `context_length_exceeded` ("This model's maximum context length is N
    // tokens. …"), which DeepSeek's OpenAI-compatible API repeats; the `{error: {message, type,
    // param, code}}` shape is openai-python's `APIError.body`. Not quoted from a first-party
    // page: the message is as API users report it.
    mount(
        &f,
        json_response(400, json!({"error": {"message": "This model's maximum context length is 65536 tokens.", "type": "invalid_request_error", "param": null, "code": "context_length_exceeded"}})),
    )
    .await;
    let err = call(&text_model(&f, config(&f))).await.unwrap_err();
    assert_eq!(
        err,
        TaskError::permanent(
            "model \"DeepSeek Chat\": HTTP 400 from 127.0.0.1: This model's maximum context length is 65536 tokens. (type: invalid_request_error, code: context_length_exceeded)"
        )
    );
}

#[tokio::test]
async fn bad_key_payment_and_quota_are_permanent_and_the_key_is_not_echoed() {
    let f = Fixture::new().await;
    // OpenAI's error-codes guide: "401 - Incorrect API key provided", "429 - You exceeded your
    // current quota, please check your plan and billing details" (`insufficient_quota`).
    // DeepSeek's error codes: "402 - Insufficient Balance"; the body shape (type
    // `unknown_error`, code `invalid_request_error`) is as DeepSeek API users quote it, the docs
    // give only the message.
    let bodies = [
        (
            401,
            json!({"error": {"message": format!("Incorrect API key provided: {}.", key()), "type": "invalid_request_error", "code": "invalid_api_key"}}),
        ),
        (
            402,
            json!({"error": {"message": "Insufficient Balance", "type": "unknown_error", "param": null, "code": "invalid_request_error"}}),
        ),
        (
            429,
            json!({"error": {"message": "You exceeded your current quota, please check your plan and billing details.", "type": "insufficient_quota", "code": "insufficient_quota"}}),
        ),
    ];
    for (status, body) in bodies {
        f.server.reset().await;
        mount(
            &f,
            json_response(status, body).insert_header("retry-after", "1"),
        )
        .await;
        let err = call(&text_model(&f, config(&f))).await.unwrap_err();
        assert!(!err.is_retryable(), "{status}: {err:?}");
        assert!(!err.to_string().contains(&key()), "{err}");
        assert!(err.to_string().contains(&format!("HTTP {status}")), "{err}");
    }
}

#[tokio::test]
async fn rate_limits_are_retryable_after_the_given_time() {
    let f = Fixture::new().await;
    // OpenAI's error-codes guide: "429 - Rate limit reached for requests"; `type: requests`
    // and `code: rate_limit_exceeded` as the API sends it (quoted by API users; the guide shows
    // only the message).
    mount(
        &f,
        json_response(429, json!({"error": {"message": "Rate limit reached for requests", "type": "requests", "code": "rate_limit_exceeded"}}))
            .insert_header("retry-after", "12"),
    )
    .await;
    match call(&text_model(&f, config(&f))).await {
        Err(TaskError::Retryable { retry_after, .. }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(12)))
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn server_error_then_success() {
    let f = Fixture::new().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(json_response(
            503,
            json!({"error": {"message": "Service is too busy", "type": "server_error"}}),
        ))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&f.server)
        .await;
    mount(&f, json_response(200, completion("你好", "stop"))).await;
    let model = text_model(&f, config(&f));
    let err = call(&model).await.unwrap_err();
    assert!(
        err.is_retryable() && err.to_string().contains("Service is too busy"),
        "{err}"
    );
    assert_eq!(call(&model).await.unwrap().content, "你好");
}

#[tokio::test]
async fn a_hanging_server_times_out() {
    let f = Fixture::new().await;
    mount(
        &f,
        json_response(200, completion("late", "stop")).set_delay(Duration::from_secs(30)),
    )
    .await;
    let mut config = config(&f);
    config.timeout_secs = Some(1);
    let started = Instant::now();
    let err = call(&text_model(&f, config)).await.unwrap_err();
    assert_eq!(
        err,
        TaskError::retryable("model \"DeepSeek Chat\": no answer within 1 s")
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_garbage_body_gets_a_clear_message() {
    let f = Fixture::new().await;
    mount(&f, html_page()).await;
    let err = call(&text_model(&f, config(&f))).await.unwrap_err();
    assert!(!err.is_retryable());
    assert!(
        err.to_string()
            .contains("provider returned a non-JSON body (text/html, 94 bytes): <!DOCTYPE html>"),
        "{err}"
    );
    // A 200 JSON answer that is not a completion is also reported, not a panic.
    f.server.reset().await;
    mount(
        &f,
        json_response(200, json!({"object": "list", "data": []})),
    )
    .await;
    let err = call(&text_model(&f, config(&f))).await.unwrap_err();
    assert!(err.to_string().contains("has no choices"), "{err}");
}

#[tokio::test]
async fn cancel_stops_a_call_in_flight() {
    let f = Fixture::new().await;
    let (responder, arrived) = Sequence::new(vec![
        json_response(200, completion("late", "stop")).set_delay(Duration::from_secs(30)),
    ]);
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(responder)
        .mount(&f.server)
        .await;
    let model = text_model(&f, config(&f));
    let cancel = CancellationToken::new();
    let call = {
        let cancel = cancel.clone();
        tokio::spawn(async move { model.complete(TextRequest::user("hi"), &cancel).await })
    };
    arrived.notified().await;
    cancel.cancel();
    let result = tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(result.unwrap_err(), TaskError::Cancelled);
}

#[tokio::test]
async fn truncated_answers_are_flagged() {
    let f = Fixture::new().await;
    mount(
        &f,
        json_response(
            200,
            completion("{\"characters\": [\"李明\", \"王", "length"),
        ),
    )
    .await;
    let response = call(&text_model(&f, config(&f))).await.unwrap();
    assert!(response.is_truncated());
    let parsed: Characters = parse_llm_response(&response).unwrap();
    assert_eq!(parsed.characters, vec!["李明", "王"]);
}

/// Records when each request arrives.
struct Arrivals(Arc<Mutex<Vec<Instant>>>);

impl Respond for Arrivals {
    fn respond(&self, _request: &Request) -> ResponseTemplate {
        self.0.lock().unwrap().push(Instant::now());
        json_response(200, completion("ok", "stop")).set_delay(Duration::from_millis(200))
    }
}

#[tokio::test]
async fn calls_beyond_the_concurrency_limit_wait_their_turn() {
    let f = Fixture::new().await;
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(Arrivals(arrivals.clone()))
        .mount(&f.server)
        .await;
    let mut config = config(&f);
    config.max_concurrency = Some(1);
    let model = text_model(&f, config);
    let calls: Vec<_> = (0..3).map(|_| call(&model)).collect();
    for result in futures::future::join_all(calls).await {
        assert_eq!(result.unwrap().content, "ok", "queued, not failed");
    }
    let arrivals = arrivals.lock().unwrap();
    assert_eq!(arrivals.len(), 3);
    for pair in arrivals.windows(2) {
        assert!(
            pair[1] - pair[0] >= Duration::from_millis(190),
            "one at a time: {:?}",
            pair[1] - pair[0]
        );
    }
}
