//! `smart_parse` (AI 智能解析, NanoStory's admin page): the text model reads a provider's API
//! documentation and proposes a model configuration for it.
//!
//! Result: `{config, tokens, provider, rawContent}`; `config` is the proposed configuration
//! object (`name, kind, baseUrl, model, authHeader, request, response`), `rawContent` the
//! answer as JSON text.

use std::sync::Arc;

use async_trait::async_trait;
use nosyntask_domain::{ParamKind, ParamSpec, ParamsSchema, TaskError};
use nosyntask_engine::ports::ModelCatalog;
use nosyntask_engine::{StepHandler, StepRun, WorkflowDefinition};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::common::input::{non_empty, parse_input};
use crate::common::llm::{JsonQuestion, ask_json};
use crate::common::params;

/// The workflow type.
pub const WORKFLOW: &str = "smart_parse";

/// Longest API documentation accepted (characters).
const MAX_DOC_CHARS: usize = 100_000;

/// Params: **apiDoc**, customPrompt, textModel (alias modelName), think.
fn params() -> ParamsSchema {
    ParamsSchema::new()
        .param(
            ParamSpec::new(
                "apiDoc",
                ParamKind::String,
                "The provider's API documentation (text, curl examples, JSON).",
            )
            .max_length(MAX_DOC_CHARS)
            .required(),
        )
        .param(params::text(
            "customPrompt",
            "Extra instructions for the parser.",
        ))
        .param(params::think(None))
}

pub(crate) fn definition(models: Arc<dyn ModelCatalog>) -> WorkflowDefinition {
    let handler = Arc::new(SmartParseHandler {
        models: models.clone(),
    });
    super::definition(
        super::Names {
            workflow: WORKFLOW,
            name: "AI 智能解析",
            task_type: "smart_parse",
            target_type: "ai_model_config",
            target_id_param: None,
        },
        params(),
        handler,
        models,
    )
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Input {
    api_doc: String,
    custom_prompt: Option<String>,
    model_name: Option<String>,
    think: Option<bool>,
}

fn config(value: Value) -> Result<Value, String> {
    let config = match value {
        Value::Object(mut map) if map.get("config").is_some_and(Value::is_object) => {
            map.remove("config").unwrap_or_default()
        }
        value @ Value::Object(_) => value,
        other => return Err(format!("expected a configuration object, got {other}")),
    };
    for key in ["baseUrl", "model"] {
        if config
            .get(key)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(format!("the configuration has no \"{key}\""));
        }
    }
    Ok(config)
}

struct SmartParseHandler {
    models: Arc<dyn ModelCatalog>,
}

#[async_trait]
impl StepHandler for SmartParseHandler {
    async fn run(&self, run: StepRun) -> Result<Value, TaskError> {
        let input: Input = parse_input(run.input.clone())?;
        let doc = non_empty(Some(&input.api_doc))
            .ok_or_else(|| TaskError::permanent("apiDoc is empty"))?;
        run.progress.report(5.0);
        let model = self.models.text(input.model_name.as_deref())?;
        let mut system = "You read AI provider API documentation and write the configuration \
                          that calls it: the model's kind (text, image or video), base URL, \
                          provider model id, how the key is sent, the request body with \
                          {{placeholders}} and where the answer's fields are. Answer JSON only."
            .to_owned();
        if let Some(extra) = non_empty(input.custom_prompt.as_deref()) {
            system.push('\n');
            system.push_str(extra);
        }
        let question = JsonQuestion {
            task: "API documentation parsing",
            system,
            user: doc.to_owned(),
            example: json!({
                "name": "Example Images",
                "kind": "image",
                "baseUrl": "https://api.example.com/v1",
                "model": "example-image-1",
                "authHeader": "Authorization: Bearer {{apiKey}}",
                "request": {"path": "/images/generations", "body": {"prompt": "{{prompt}}"}},
                "response": {"url": "data[0].url"},
            }),
            max_tokens: 8_192,
            temperature: 0.1,
            think: input.think,
        };
        let answer = ask_json(
            &model,
            &question,
            config,
            &run.progress.scaled(5.0, 95.0),
            &run.cancel,
        )
        .await?;
        Ok(json!({
            "rawContent": answer.value.to_string(),
            "config": answer.value,
            "tokens": answer.usage.total(),
            "provider": answer.usage.provider,
        }))
    }
}
