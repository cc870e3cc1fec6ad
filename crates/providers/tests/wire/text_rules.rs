//! Chat completion stand-ins that reject what the real APIs reject, with the error bodies those
//! APIs answer, so a request that is not fitted to the model fails here as it would in
//! production.

use std::sync::{Arc, Mutex};

use nosyntask_engine::CancellationToken;
use nosyntask_engine::ports::{ModelCatalog, TextRequest};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, Request, ResponseTemplate};

use crate::common::*;

fn completion(model: &str, content: &str, finish_reason: &str) -> ResponseTemplate {
    json_response(
        200,
        json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1_705_651_092, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish_reason}],
            "usage": {"prompt_tokens": 16, "completion_tokens": 10, "total_tokens": 26}
        }),
    )
}

fn invalid_request(message: &str, param: Value, code: &str) -> ResponseTemplate {
    json_response(
        400,
        json!({"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}),
    )
}

/// DeepSeek's `deepseek-chat`: "max_tokens: integer, 1–8192" (api-docs.deepseek.com, Create
/// Chat Completion). Above that the API answers, as quoted in deepseek-ai/DeepSeek-V3#69:
/// `{"error":{"message":"Invalid max_tokens value, the valid range of max_tokens is [1, 8192]",
/// "type":"invalid_request_error","param":null,"code":"invalid_request_error"}}`.
fn deepseek(request: &Request) -> ResponseTemplate {
    let body: Value = request.body_json().unwrap();
    if let Some(max) = body.get("max_tokens")
        && !(1..=8192).contains(&max.as_u64().unwrap_or(0))
    {
        return invalid_request(
            "Invalid max_tokens value, the valid range of max_tokens is [1, 8192]",
            Value::Null,
            "invalid_request_error",
        );
    }
    completion("deepseek-chat", "{\"scenes\": []}", "stop")
}

/// OpenAI's reasoning models (gpt-5, o-series) on chat completions: `max_tokens` "is not
/// compatible with o-series models" (openai-python `CompletionCreateParams.max_tokens`), answered
/// with `unsupported_parameter`; a temperature other than 1 with `unsupported_value`.
fn openai_reasoning(request: &Request) -> ResponseTemplate {
    let body: Value = request.body_json().unwrap();
    if body.get("max_tokens").is_some() {
        return invalid_request(
            "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
            json!("max_tokens"),
            "unsupported_parameter",
        );
    }
    if let Some(t) = body.get("temperature").and_then(Value::as_f64)
        && t != 1.0
    {
        return invalid_request(
            &format!(
                "Unsupported value: 'temperature' does not support {t} with this model. Only the default (1) value is supported."
            ),
            json!("temperature"),
            "unsupported_value",
        );
    }
    completion("gpt-5-mini", "{\"scenes\": []}", "stop")
}

/// DashScope compatible mode, Qwen3 hybrid-thinking models: a non-streaming call must send
/// `enable_thinking: false` (Model Studio, "Deep thinking": the open-source Qwen3 models think by
/// default, and thinking is only available with streaming output). The message is the one Qwen
/// Cloud's error-code reference lists under `InvalidParameter` ("parameter.enable_thinking must
/// be set to false for non-streaming calls"); the surrounding body is compatible mode's
/// OpenAI-shaped error with its `id` / `request_id`, as users quote it.
fn qwen3(request: &Request) -> ResponseTemplate {
    let body: Value = request.body_json().unwrap();
    let streaming = body.get("stream").and_then(Value::as_bool) == Some(true);
    if !streaming && body.get("enable_thinking") != Some(&json!(false)) {
        return json_response(
            400,
            json!({
                "error": {"code": "invalid_parameter_error", "param": null,
                          "message": "parameter.enable_thinking must be set to false for non-streaming calls",
                          "type": "invalid_request_error"},
                "id": "chatcmpl-f5a1f1ee-dac6-9c1b-9bdb-2f0c22b8af45",
                "request_id": "f5a1f1ee-dac6-9c1b-9bdb-2f0c22b8af45"
            }),
        );
    }
    completion("qwen3-32b", "{\"scenes\": []}", "stop")
}

/// Mounts `rule` as the chat completions endpoint, keeping the bodies it saw.
async fn stand_in<F>(f: &Fixture, rule: F) -> Arc<Mutex<Vec<Value>>>
where
    F: Fn(&Request) -> ResponseTemplate + Send + Sync + 'static,
{
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(Rule(move |r: &Request| {
            keep.lock().unwrap().push(r.body_json::<Value>().unwrap());
            rule(r)
        }))
        .mount(&f.server)
        .await;
    seen
}

fn chat_model(f: &Fixture, id: &str, extra: Value) -> nosyntask_providers::ModelConfig {
    let mut table = json!({
        "name": id, "kind": "text", "adapter": "openai_compatible",
        "base_url": format!("{}/v1", f.uri()), "model": id, "api_key_env": KEY_ENV,
    });
    for (k, v) in extra.as_object().unwrap() {
        table[k] = v.clone();
    }
    model_from(table)
}

/// The workflows' retry budget for a truncated storyboard.
fn big_request() -> TextRequest {
    TextRequest {
        max_tokens: Some(16_384),
        temperature: Some(0.2),
        ..TextRequest::user("把剧本拆成分镜，输出 JSON")
    }
}

#[tokio::test]
async fn deepseek_gets_at_most_8192_tokens() {
    let f = Fixture::new().await;
    let seen = stand_in(&f, deepseek).await;
    let model = f
        .catalog(&[chat_model(&f, "deepseek-chat", json!({}))])
        .text(None)
        .unwrap();
    let answer = model
        .complete(big_request(), &CancellationToken::new())
        .await;
    assert!(answer.is_ok(), "{answer:?}");
    assert_eq!(seen.lock().unwrap()[0]["max_tokens"], 8192);
}

#[tokio::test]
async fn usage_and_cost_come_back_with_the_answer() {
    let f = Fixture::new().await;
    stand_in(&f, deepseek).await;
    let config = chat_model(
        &f,
        "deepseek-chat",
        json!({"profile": {"prices": {"input_per_million": 2.0, "output_per_million": 8.0}}}),
    );
    let answer = f
        .catalog(&[config])
        .text(None)
        .unwrap()
        .complete(big_request(), &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(
        (answer.usage.prompt_tokens, answer.usage.completion_tokens),
        (16, 10)
    );
    // 16 × 2 / 1e6 + 10 × 8 / 1e6 = 0.000112
    assert_eq!(answer.cost_micros, Some(112));
}

#[tokio::test]
async fn gpt5_gets_max_completion_tokens_and_no_temperature() {
    let f = Fixture::new().await;
    let seen = stand_in(&f, openai_reasoning).await;
    let model = f
        .catalog(&[chat_model(&f, "gpt-5-mini", json!({}))])
        .text(None)
        .unwrap();
    let answer = model
        .complete(big_request(), &CancellationToken::new())
        .await;
    assert!(answer.is_ok(), "{answer:?}");
    let body = seen.lock().unwrap()[0].clone();
    assert_eq!(body["max_completion_tokens"], 16_384);
    assert!(body.get("max_tokens").is_none() && body.get("temperature").is_none());
}

#[tokio::test]
async fn qwen3_in_compatible_mode_sends_enable_thinking_false() {
    let f = Fixture::new().await;
    let seen = stand_in(&f, qwen3).await;
    let model = f
        .catalog(&[chat_model(&f, "qwen3-32b", json!({}))])
        .text(None)
        .unwrap();
    let answer = model
        .complete(big_request(), &CancellationToken::new())
        .await;
    assert!(answer.is_ok(), "{answer:?}");
    assert_eq!(seen.lock().unwrap()[0]["enable_thinking"], false);
}

#[tokio::test]
async fn configuration_removes_a_default_parameter_and_renames_the_limit() {
    let f = Fixture::new().await;
    // A Qwen3 served by another gateway that takes neither `enable_thinking` nor `max_tokens`.
    let seen = stand_in(&f, |_: &Request| completion("qwen3", "{}", "stop")).await;
    let config = chat_model(
        &f,
        "qwen3-32b",
        json!({"profile": {"drop_params": ["enable_thinking"], "token_param": "max_completion_tokens", "max_output_tokens": 4096}}),
    );
    let model = f.catalog(&[config]).text(None).unwrap();
    model
        .complete(big_request(), &CancellationToken::new())
        .await
        .unwrap();
    let body = seen.lock().unwrap()[0].clone();
    assert!(body.get("enable_thinking").is_none(), "{body}");
    assert!(body.get("max_tokens").is_none(), "{body}");
    assert_eq!(body["max_completion_tokens"], 4096);
}

#[tokio::test]
async fn finish_reasons_that_mean_an_incomplete_answer_are_errors() {
    // DeepSeek's finish reasons (Create Chat Completion, `finish_reason`): `content_filter` "if
    // content was omitted due to a flag from our content filters", `insufficient_system_resource`
    // "if the request is interrupted due to insufficient resource of the inference system".
    let cut = "{\"scenes\": [{\"order\": 1, \"description\": \"雨夜\"}, {\"order\": 2, \"desc";
    for (reason, retryable, says) in [
        (
            "insufficient_system_resource",
            true,
            "insufficient_system_resource",
        ),
        ("content_filter", false, "the content was filtered"),
    ] {
        let f = Fixture::new().await;
        stand_in(&f, move |_: &Request| {
            completion("deepseek-chat", cut, reason)
        })
        .await;
        let model = f
            .catalog(&[chat_model(&f, "deepseek-chat", json!({}))])
            .text(None)
            .unwrap();
        let err = model
            .complete(big_request(), &CancellationToken::new())
            .await
            .unwrap_err();
        assert_eq!(err.is_retryable(), retryable, "{reason}: {err}");
        assert!(err.to_string().contains(says), "{reason}: {err}");
    }
}
