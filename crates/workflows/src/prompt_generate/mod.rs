//! `prompt_generate` (提示词生成): a plain description becomes a prompt (and a negative prompt)
//! for an image or a video model. Scene images use the same writer.
//!
//! Phases: 5 % started, 10 % model chosen, 10–95 % the model writes the prompt.

mod prompt;

use std::sync::Arc;

use async_trait::async_trait;
use nosyntask_domain::{ParamKind, ParamSpec, ParamsSchema, TaskError};
use nosyntask_engine::ports::{ModelCatalog, ModelKind, TextModel};
use nosyntask_engine::{
    CancellationToken, ProgressReporter, StepHandler, StepRun, WorkflowDefinition,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::common::input::{non_empty, parse_input};
use crate::common::language::Language;
use crate::common::lenient;
use crate::common::llm::{JsonQuestion, Usage, ask_json};
use crate::common::models::{self, Uses};
use crate::common::params;
use crate::common::steps::{TEXT_TIMEOUT, single_step};

/// The workflow type.
pub const WORKFLOW: &str = "prompt_generate";

/// What the prompt is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum MediaKind {
    #[default]
    Image,
    Video,
}

/// Params: **description**, kind=image|video, style, modelName.
pub(crate) fn params() -> ParamsSchema {
    let schema = ParamsSchema::new()
        .param(params::text("description", "What the picture or clip shows.").required())
        .param(
            ParamSpec::new(
                "kind",
                ParamKind::String,
                "Write a prompt for an image or a video model.",
            )
            .one_of(&["image", "video"])
            .default_value(json!("image")),
        )
        .param(params::style())
        .param(params::think(None));
    models::declare(schema, Uses::only(ModelKind::Text))
}

pub(crate) fn definition(models: Arc<dyn ModelCatalog>) -> WorkflowDefinition {
    let params = params();
    let handler = Arc::new(PromptHandler {
        models: models.clone(),
    });
    let step = single_step("prompt_generate", "prompt", handler, &params, TEXT_TIMEOUT);
    WorkflowDefinition::new(WORKFLOW, "提示词生成", params)
        .step(step)
        .prepare(models::resolver(models, Uses::only(ModelKind::Text)))
}

/// What to write a prompt for.
#[derive(Debug, Clone)]
pub(crate) struct Brief<'a> {
    pub kind: MediaKind,
    pub description: &'a str,
    pub style: Option<&'a str>,
    /// The request's deep-thinking flag.
    pub think: Option<bool>,
}

/// A written prompt.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WrittenPrompt {
    #[serde(default, deserialize_with = "lenient::string")]
    pub prompt: String,
    #[serde(
        default,
        alias = "negative_prompt",
        deserialize_with = "lenient::string"
    )]
    pub negative_prompt: String,
}

/// Asks `model` for a prompt, in the description's language.
pub(crate) async fn write_prompt(
    model: &Arc<dyn TextModel>,
    brief: &Brief<'_>,
    progress: &ProgressReporter,
    cancel: &CancellationToken,
) -> Result<(WrittenPrompt, Usage), TaskError> {
    let language = Language::detect(brief.description);
    let question = JsonQuestion {
        task: "prompt writing",
        system: prompt::system(brief.kind, language),
        user: prompt::user(brief.description, brief.style, language),
        example: prompt::example(brief.kind, language),
        max_tokens: 1_500,
        temperature: 0.7,
        think: brief.think,
    };
    let answer = ask_json(model, &question, written_prompt, progress, cancel).await?;
    Ok((answer.value, answer.usage))
}

fn written_prompt(value: Value) -> Result<WrittenPrompt, String> {
    let written: WrittenPrompt = match value {
        Value::String(prompt) => WrittenPrompt {
            prompt,
            negative_prompt: String::new(),
        },
        Value::Object(_) => serde_json::from_value(value).map_err(|err| err.to_string())?,
        other => return Err(format!("expected an object with a \"prompt\", got {other}")),
    };
    if written.prompt.trim().is_empty() {
        return Err("the answer has no \"prompt\"".to_owned());
    }
    Ok(written)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Input {
    description: String,
    #[serde(default)]
    kind: MediaKind,
    style: Option<String>,
    model_name: Option<String>,
    think: Option<bool>,
}

/// Writes one prompt.
struct PromptHandler {
    models: Arc<dyn ModelCatalog>,
}

#[async_trait]
impl StepHandler for PromptHandler {
    async fn run(&self, run: StepRun) -> Result<Value, TaskError> {
        let input: Input = parse_input(run.input.clone())?;
        let description = non_empty(Some(&input.description))
            .ok_or_else(|| TaskError::permanent("description is empty"))?;
        run.progress.report(5.0);
        let model = self.models.text(input.model_name.as_deref())?;
        run.progress.report(10.0);
        let brief = Brief {
            kind: input.kind,
            description,
            style: non_empty(input.style.as_deref()),
            think: input.think,
        };
        let (written, usage) = write_prompt(
            &model,
            &brief,
            &run.progress.scaled(10.0, 95.0),
            &run.cancel,
        )
        .await?;
        tracing::info!(tokens = usage.total(), model = %usage.model, "prompt written");
        Ok(json!({
            "prompt": written.prompt,
            "negativePrompt": written.negative_prompt,
            "modelName": model.info().name,
        }))
    }
}
