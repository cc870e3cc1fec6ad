//! `script_only` (剧本生成): the text model writes one episode's script from a title and a
//! premise.
//!
//! Result: `{content, title, tokens, provider, modelName, episodeNumber}`.

use std::sync::Arc;

use async_trait::async_trait;
use nosyntask_domain::{ParamKind, ParamSpec, ParamsSchema, TaskError};
use nosyntask_engine::ports::ModelCatalog;
use nosyntask_engine::{StepHandler, StepRun, WorkflowDefinition};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::common::input::{non_empty, parse_input};
use crate::common::language::Language;
use crate::common::lenient;
use crate::common::llm::{JsonQuestion, ask_json};
use crate::common::params;

/// The workflow type.
pub const WORKFLOW: &str = "script_only";

/// Params: **title** or **description**, style, length, episodeNumber, projectId, textModel
/// (alias modelName), think.
fn params() -> ParamsSchema {
    ParamsSchema::new()
        .param(params::text("title", "The script's title.").max_length(500))
        .param(params::text(
            "description",
            "The premise: what the episode is about.",
        ))
        .param(params::style())
        .param(
            params::text(
                "length",
                "How long: 短篇 / 中篇 / 长篇, or short / medium / long.",
            )
            .max_length(50),
        )
        .param(
            ParamSpec::new(
                "episodeNumber",
                ParamKind::Integer,
                "The episode (1 when absent).",
            )
            .range(1.0, 10_000.0),
        )
        .param(params::id("projectId", "The NanoStory project."))
        .param(params::think(None))
        .require_any_of(&["title", "description"])
}

pub(crate) fn definition(models: Arc<dyn ModelCatalog>) -> WorkflowDefinition {
    let handler = Arc::new(ScriptHandler {
        models: models.clone(),
    });
    super::definition(
        super::Names {
            workflow: WORKFLOW,
            name: "剧本生成",
            task_type: "script_generation",
            target_type: "script",
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
    title: Option<String>,
    description: Option<String>,
    style: Option<String>,
    length: Option<String>,
    episode_number: Option<i64>,
    model_name: Option<String>,
    think: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct Answer {
    #[serde(default, alias = "script", deserialize_with = "lenient::string")]
    content: String,
    #[serde(default, deserialize_with = "lenient::string")]
    title: String,
}

fn answer(value: Value) -> Result<Answer, String> {
    let answer: Answer = match value {
        Value::String(content) => Answer {
            content,
            title: String::new(),
        },
        other => serde_json::from_value(other).map_err(|err| err.to_string())?,
    };
    if answer.content.is_empty() {
        return Err("the answer has no \"content\"".to_owned());
    }
    Ok(answer)
}

struct ScriptHandler {
    models: Arc<dyn ModelCatalog>,
}

#[async_trait]
impl StepHandler for ScriptHandler {
    async fn run(&self, run: StepRun) -> Result<Value, TaskError> {
        let input: Input = parse_input(run.input.clone())?;
        let title = non_empty(input.title.as_deref());
        let premise = non_empty(input.description.as_deref());
        if title.is_none() && premise.is_none() {
            return Err(TaskError::permanent("title or description: one is needed"));
        }
        run.progress.report(5.0);
        let model = self.models.text(input.model_name.as_deref())?;
        let episode = input.episode_number.unwrap_or(1);
        let language = Language::detect(&format!(
            "{} {}",
            title.unwrap_or_default(),
            premise.unwrap_or_default()
        ));
        let mut brief = Vec::new();
        for (value, zh, en) in [
            (title, "标题", "Title"),
            (premise, "梗概", "Premise"),
            (non_empty(input.style.as_deref()), "风格", "Style"),
            (non_empty(input.length.as_deref()), "篇幅", "Length"),
        ] {
            if let Some(value) = value {
                brief.push(format!("{}: {value}", language.pick(zh, en)));
            }
        }
        brief.push(format!("{}: {episode}", language.pick("集数", "Episode")));
        let question = JsonQuestion {
            task: "script writing",
            system: format!(
                "You are a screenwriter of short animated series. Write the complete script of \
                 the requested episode: scene headings, action and dialogue, ready to be split \
                 into shots. Answer JSON only. {}",
                language.instruction()
            ),
            user: brief.join("\n"),
            example: json!({
                "title": language.pick("风雪山神庙", "The Snow Temple"),
                "content": language.pick(
                    "第一场 山神庙 夜\n风雪呼啸。林冲推门而入……",
                    "SCENE 1. MOUNTAIN TEMPLE - NIGHT\nThe wind howls. Lin Chong pushes the door open..."
                ),
            }),
            max_tokens: 8_192,
            temperature: 0.9,
            think: input.think,
        };
        let answer = ask_json(
            &model,
            &question,
            answer,
            &run.progress.scaled(5.0, 95.0),
            &run.cancel,
        )
        .await?;
        Ok(json!({
            "content": answer.value.content,
            "title": non_empty(Some(&answer.value.title)).or(title).unwrap_or_default(),
            "tokens": answer.usage.total(),
            "provider": answer.usage.provider,
            "modelName": model.info().name,
            "episodeNumber": episode,
        }))
    }
}
