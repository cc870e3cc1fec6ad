//! The workflows against a DeepSeek stand-in that enforces its documented output limit
//! (`max_tokens` 1–8192 for deepseek-chat, else 400 "Invalid max_tokens value, the valid range of
//! max_tokens is [1, 8192]"), and an answer that lists its shots without the array brackets.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::sync::Mutex;

use nosyntask_providers::ModelConfig;
use serde_json::{Value, json};
use support::{catalog, run_step};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Answers the scripted completions in turn, rejecting a `max_tokens` DeepSeek rejects.
struct DeepSeek {
    answers: Mutex<Vec<(&'static str, &'static str)>>,
    seen: Mutex<Vec<Value>>,
}

impl Respond for DeepSeek {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        self.seen.lock().unwrap().push(body.clone());
        if body["max_tokens"]
            .as_u64()
            .is_some_and(|m| !(1..=8192).contains(&m))
        {
            return ResponseTemplate::new(400).set_body_json(json!({"error": {
                "message": "Invalid max_tokens value, the valid range of max_tokens is [1, 8192]",
                "type": "invalid_request_error", "param": null, "code": "invalid_request_error"}}));
        }
        let mut answers = self.answers.lock().unwrap();
        let (content, reason) = if answers.len() > 1 {
            answers.remove(0)
        } else {
            answers[0]
        };
        ResponseTemplate::new(200).set_body_json(json!({
            "id": "1", "object": "chat.completion", "created": 1, "model": "deepseek-chat",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": reason}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150}
        }))
    }
}

async fn storyboard(
    answers: Vec<(&'static str, &'static str)>,
) -> (Result<Value, nosyntask_domain::TaskError>, Vec<Value>) {
    let server = MockServer::start().await;
    let deepseek = std::sync::Arc::new(DeepSeek {
        answers: Mutex::new(answers),
        seen: Mutex::new(Vec::new()),
    });
    struct Shared(std::sync::Arc<DeepSeek>);
    impl Respond for Shared {
        fn respond(&self, request: &Request) -> ResponseTemplate {
            self.0.respond(request)
        }
    }
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(Shared(deepseek.clone()))
        .mount(&server)
        .await;
    let config: ModelConfig = serde_json::from_value(json!({
        "name": "DeepSeek Chat", "kind": "text", "adapter": "openai_compatible",
        "base_url": format!("{}/v1", server.uri()), "model": "deepseek-chat", "default": true
    }))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let registry = nosyntask_workflows::registry(catalog(&[config], dir.path()));
    let params = json!({"scriptContent": "第一场 山神庙 夜\n林冲推开庙门。"});
    let result = run_step(
        &registry,
        "storyboard_generation",
        &params,
        0,
        &BTreeMap::new(),
        None,
    )
    .await
    .result;
    let seen = deepseek.seen.lock().unwrap().clone();
    (result, seen)
}

const CUT: &str = "[{\"order\": 1, \"shotType\": \"远景\", \"description\": \"风雪中的山神庙\"}, {\"order\": 2, \"shotType\": \"中";
const WHOLE: &str = "[{\"order\": 1, \"shotType\": \"远景\", \"description\": \"风雪中的山神庙\"}, {\"order\": 2, \"shotType\": \"中景\", \"description\": \"林冲推门\"}]";

#[tokio::test]
async fn a_truncated_storyboard_is_retried_within_deepseeks_limit() {
    let (result, seen) = storyboard(vec![(CUT, "length"), (WHOLE, "stop")]).await;
    let result = result.unwrap();
    assert_eq!(result["count"], 2);
    assert_eq!(seen.len(), 2);
    assert!(
        seen.iter()
            .all(|b| b["max_tokens"].as_u64().unwrap() <= 8192),
        "{:?}",
        seen.iter()
            .map(|b| b["max_tokens"].clone())
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn shots_listed_without_brackets_all_come_out() {
    let shots = "好的：\n{\"order\": 1, \"shotType\": \"远景\", \"description\": \"山神庙\"},\n{\"order\": 2, \"shotType\": \"中景\", \"description\": \"推门\"},\n{\"order\": 3, \"shotType\": \"特写\", \"description\": \"雪\"}";
    let (result, _) = storyboard(vec![(shots, "stop")]).await;
    assert_eq!(result.unwrap()["count"], 3);
}
