//! `openai_compatible`: chat completions (`POST {base_url}/chat/completions`) as OpenAI,
//! DeepSeek, Qwen's compatible mode and Ollama speak them.

use std::time::Duration;

use async_trait::async_trait;
use nosyntask_domain::TaskError;
use nosyntask_engine::ports::{ModelInfo, TextModel, TextRequest, TextResponse, TokenUsage, Usage};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::with_model_headers;
use crate::config::ModelConfig;
use crate::http::{HttpClient, excerpt, redact, send_json};
use crate::profile::Profile;
use crate::profile::usage::cost_micros;

/// A chat model behind an OpenAI-compatible API.
pub struct OpenAiCompatible {
    info: ModelInfo,
    config: ModelConfig,
    profile: Profile,
    http: HttpClient,
}

impl OpenAiCompatible {
    pub fn new(info: ModelInfo, config: ModelConfig, http: HttpClient) -> Self {
        let profile = Profile::for_model(&config);
        OpenAiCompatible {
            info,
            config,
            profile,
            http,
        }
    }

    /// The model's capability profile.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The request body, fitted to the model's profile.
    pub fn body(&self, request: &TextRequest) -> Value {
        let mut messages: Vec<Value> = request
            .messages
            .iter()
            .map(|m| json!({"role": m.role, "content": m.content}))
            .collect();
        let json_mode = request.json_output && self.config.json_mode.unwrap_or(true);
        if json_mode
            && !request
                .messages
                .iter()
                .any(|m| m.content.to_ascii_lowercase().contains("json"))
        {
            // OpenAI refuses `json_object` unless the conversation mentions JSON.
            messages.insert(
                0,
                json!({"role": "system", "content": "Respond with a JSON object."}),
            );
        }
        let mut body = json!({
            "model": self.config.provider_model(),
            "messages": messages,
            "stream": false,
        });
        if let Some(t) = request.temperature {
            // Through the shortest decimal form: 0.2f32 is sent as 0.2, not 0.20000000298.
            body["temperature"] = json!(t.to_string().parse::<f64>().unwrap_or(f64::from(t)));
        }
        if json_mode {
            body["response_format"] = json!({"type": "json_object"});
        }
        self.profile.fit_text_body(
            &mut body,
            request.max_tokens,
            request.think,
            self.config.extra_body.as_ref(),
        );
        body
    }
}

/// Reads `choices[0].message.content` (a string or a list of text parts), `finish_reason` and
/// `usage` from a chat completion.
pub fn parse_completion(body: &Value) -> Result<(String, Option<String>, TokenUsage), TaskError> {
    let choice = body.get("choices").and_then(|c| c.get(0)).ok_or_else(|| {
        TaskError::permanent(format!(
            "the provider's answer has no choices: {}",
            excerpt(body.to_string().as_bytes())
        ))
    })?;
    let content = choice
        .get("message")
        .and_then(|m| m.get("content"))
        .or_else(|| choice.get("text"));
    let content = match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str).or(p.as_str()))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    };
    let finish_reason = choice
        .get("finish_reason")
        .and_then(Value::as_str)
        .map(str::to_owned);
    // An answer that stopped for these reasons is not whole, whatever its content: reading it
    // would let JSON recovery close a cut-off list as if it were complete.
    match finish_reason.as_deref() {
        // DeepSeek: "the output is interrupted due to insufficient resources of the inference
        // system" — the same request may succeed later.
        Some("insufficient_system_resource") => {
            return Err(TaskError::retryable(
                "the provider stopped the answer early for lack of resources \
                 (finish_reason=insufficient_system_resource)",
            ));
        }
        Some("content_filter") => {
            return Err(TaskError::permanent(
                "the provider's content filter blocked the answer: the content was filtered \
                 (finish_reason=content_filter)",
            ));
        }
        _ => {}
    }
    if content.trim().is_empty() {
        let refusal = choice
            .get("message")
            .and_then(|m| m.get("refusal"))
            .and_then(Value::as_str);
        return Err(match (refusal, finish_reason.as_deref()) {
            (Some(refusal), _) => TaskError::permanent(format!("the model refused: {refusal}")),
            (None, Some("length")) => TaskError::permanent(
                "the model's output was cut off (finish_reason=length) before any content",
            ),
            _ => TaskError::retryable("the model returned an empty answer"),
        });
    }
    let usage = body
        .get("usage")
        .and_then(|u| serde_json::from_value::<TokenUsage>(u.clone()).ok())
        .map(|mut u| {
            if u.total_tokens == 0 {
                u.total_tokens = u.prompt_tokens + u.completion_tokens;
            }
            u
        })
        .unwrap_or_default();
    Ok((content, finish_reason, usage))
}

#[async_trait]
impl TextModel for OpenAiCompatible {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    async fn complete(
        &self,
        request: TextRequest,
        cancel: &CancellationToken,
    ) -> Result<TextResponse, TaskError> {
        let api_key = self.config.api_key()?;
        let url = format!("{}/chat/completions", self.config.base());
        let http = self
            .http
            .inner()
            .post(&url)
            .timeout(self.info.timeout + Duration::from_secs(1))
            .json(&self.body(&request));
        let http = with_model_headers(http, &self.config.headers, api_key.as_deref());
        let body = tokio::select! {
            _ = cancel.cancelled() => return Err(TaskError::Cancelled),
            body = send_json(http) => body.map_err(|e| redact(e, api_key.as_deref()))?,
        };
        let (content, finish_reason, usage) = parse_completion(&body)?;
        let cost_micros = self.profile.prices.as_ref().and_then(|prices| {
            let reported = Usage {
                prompt_tokens: Some(usage.prompt_tokens),
                completion_tokens: Some(usage.completion_tokens),
                ..Usage::default()
            };
            cost_micros(&reported, prices)
        });
        Ok(TextResponse {
            content,
            finish_reason,
            usage,
            cost_micros,
            model: self.info.name.clone(),
            provider: self.config.adapter.as_str().to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_of_several_shapes() {
        let (content, reason, usage) = parse_completion(&json!({
            "choices": [{"message": {"role": "assistant", "content": "你好"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
        }))
        .unwrap();
        assert_eq!(
            (content.as_str(), reason.as_deref(), usage.total_tokens),
            ("你好", Some("stop"), 7)
        );

        let (content, _, usage) = parse_completion(&json!({
            "choices": [{"message": {"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}}]
        }))
        .unwrap();
        assert_eq!((content.as_str(), usage), ("ab", TokenUsage::default()));

        let err = parse_completion(
            &json!({"choices": [{"message": {"content": null}, "finish_reason": "length"}]}),
        )
        .unwrap_err();
        assert!(err.to_string().contains("finish_reason=length"));
        assert!(parse_completion(&json!({"object": "error"})).is_err());
    }
}
