//! `character_views_generation` (角色三视图生成): a character sheet of three pictures.
//!
//! Phases, as in the spec's `characterViewsGeneration`: 5 % started, 10 % models chosen, 10–30 %
//! the text model writes the three prompts, 30–100 % the three views, drawn in parallel (their
//! average). The prompts and each finished picture are checkpointed as separate entries, so a rerun
//! after a crash skips what is done and resumes an unfinished picture's provider task.

mod prompt;

use std::sync::Arc;

use async_trait::async_trait;
use nosyntask_domain::{ParamsSchema, TaskError};
use nosyntask_engine::ports::{MediaRequest, ModelCatalog, ModelKind};
use nosyntask_engine::{ProgressReporter, StepHandler, StepRun, WorkflowDefinition};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::common::batch::run_items;
use crate::common::input::{non_empty, parse_input};
use crate::common::language::Language;
use crate::common::lenient;
use crate::common::llm::{JsonQuestion, ask_json};
use crate::common::media::{Slot, generate_once};
use crate::common::models::{self, Uses};
use crate::common::params;
use crate::common::steps::{IMAGE_TIMEOUT, single_step};

/// The workflow type.
pub const WORKFLOW: &str = "character_views_generation";

/// Checkpoint entry of the three prompts.
const PROMPTS_ENTRY: &str = "prompts";
/// The three pictures' checkpoint entries: the model call's and the finished URL's
/// (`{"url": …, "model": …}`).
const FRONT: Slot = Slot {
    call_key: "frontView",
    done_key: "frontViewUrl",
};
const SIDE: Slot = Slot {
    call_key: "sideView",
    done_key: "sideViewUrl",
};
const BACK: Slot = Slot {
    call_key: "backView",
    done_key: "backViewUrl",
};

/// Params: **characterName**, characterId, appearance, personality, description, style,
/// imageModel (alias modelName), textModel, think, width=512, height=768.
pub(crate) fn params() -> ParamsSchema {
    let schema = ParamsSchema::new()
        .param(
            params::text("characterName", "The character's name.")
                .max_length(200)
                .required(),
        )
        .param(params::id(
            "characterId",
            "The character; one views job per character runs at a time.",
        ))
        .param(params::text("appearance", "What the character looks like."))
        .param(params::text("personality", "The character's temperament."))
        .param(params::text(
            "description",
            "The character's role in the story.",
        ))
        .param(params::style())
        .param(params::think(None))
        .param(params::pixels("width", 512))
        .param(params::pixels("height", 768));
    models::declare(schema, USES)
}

/// The models it calls: the image model draws, the text model writes the three prompts.
const USES: Uses = Uses::with(ModelKind::Image, ModelKind::Text);

pub(crate) fn definition(models: Arc<dyn ModelCatalog>) -> WorkflowDefinition {
    let params = params();
    let handler = Arc::new(CharacterViewsHandler {
        models: models.clone(),
    });
    let step = single_step(
        "character_views",
        "character",
        handler,
        &params,
        IMAGE_TIMEOUT,
    )
    .target_id_param("characterId");
    WorkflowDefinition::new(WORKFLOW, "角色三视图生成", params)
        .step(step)
        .unique_by_param("characterId")
        .prepare(models::resolver(models, USES))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Input {
    character_name: String,
    appearance: Option<String>,
    personality: Option<String>,
    description: Option<String>,
    style: Option<String>,
    model_name: Option<String>,
    text_model: Option<String>,
    think: Option<bool>,
    width: Option<u32>,
    height: Option<u32>,
}

impl Input {
    fn profile(&self, language: Language) -> String {
        let mut lines = vec![format!(
            "{}: {}",
            language.pick("姓名", "Name"),
            self.character_name.trim()
        )];
        for (value, zh, en) in [
            (&self.appearance, "外貌", "Appearance"),
            (&self.personality, "性格", "Personality"),
            (&self.description, "简介", "Description"),
        ] {
            if let Some(value) = non_empty(value.as_deref()) {
                lines.push(format!("{}: {value}", language.pick(zh, en)));
            }
        }
        lines.join("\n")
    }
}

/// The three prompts, as written by the model and kept in the checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ViewPrompts {
    #[serde(default, alias = "front", deserialize_with = "lenient::string")]
    pub front_prompt: String,
    #[serde(default, alias = "side", deserialize_with = "lenient::string")]
    pub side_prompt: String,
    #[serde(default, alias = "back", deserialize_with = "lenient::string")]
    pub back_prompt: String,
    #[serde(default, alias = "negative", deserialize_with = "lenient::string")]
    pub negative_prompt: String,
}

fn view_prompts(value: Value) -> Result<ViewPrompts, String> {
    let prompts: ViewPrompts = serde_json::from_value(value).map_err(|err| err.to_string())?;
    for (name, text) in [
        ("frontPrompt", &prompts.front_prompt),
        ("sidePrompt", &prompts.side_prompt),
        ("backPrompt", &prompts.back_prompt),
    ] {
        if text.is_empty() {
            return Err(format!("the answer has no \"{name}\""));
        }
    }
    Ok(prompts)
}

/// Draws a character's front, side and back views.
struct CharacterViewsHandler {
    models: Arc<dyn ModelCatalog>,
}

impl CharacterViewsHandler {
    /// The prompts saved by an earlier attempt, or newly written and saved.
    async fn prompts(&self, input: &Input, run: &StepRun) -> Result<ViewPrompts, TaskError> {
        if let Some(saved) = run.checkpoint.entry(PROMPTS_ENTRY).await
            && let Ok(prompts) = serde_json::from_value::<ViewPrompts>(saved)
        {
            tracing::info!("view prompts written before a restart; reusing them");
            return Ok(prompts);
        }
        let model = self.models.text(input.text_model.as_deref())?;
        let profile_text = format!(
            "{} {} {} {}",
            input.character_name,
            input.appearance.as_deref().unwrap_or_default(),
            input.personality.as_deref().unwrap_or_default(),
            input.description.as_deref().unwrap_or_default()
        );
        let language = Language::detect(&profile_text);
        let style = non_empty(input.style.as_deref())
            .unwrap_or_else(|| language.pick("动漫风格", "anime style"));
        let question = JsonQuestion {
            task: "character view prompts",
            system: prompt::system(language),
            user: prompt::user(&input.profile(language), style, language),
            example: prompt::example(language),
            max_tokens: 2_000,
            temperature: 0.5,
            think: input.think,
        };
        let answer = ask_json(
            &model,
            &question,
            view_prompts,
            &run.progress.scaled(10.0, 30.0),
            &run.cancel,
        )
        .await?;
        tracing::info!(
            tokens = answer.usage.total(),
            model = %answer.usage.model,
            "view prompts written"
        );
        let entry = serde_json::to_value(&answer.value)
            .map_err(|err| TaskError::permanent(format!("checkpoint: {err}")))?;
        run.checkpoint
            .merge_entry(PROMPTS_ENTRY, entry, None)
            .await?;
        Ok(answer.value)
    }
}

#[async_trait]
impl StepHandler for CharacterViewsHandler {
    async fn run(&self, mut run: StepRun) -> Result<Value, TaskError> {
        // The input moves into the typed one: a waiting handler keeps no copy of its JSON.
        let input: Input = parse_input(std::mem::take(&mut run.input))?;
        if input.character_name.trim().is_empty() {
            return Err(TaskError::permanent("characterName is empty"));
        }
        run.progress.report(5.0);
        let image_model = self.models.image(input.model_name.as_deref())?;
        run.progress.report(10.0);
        let prompts = self.prompts(&input, &run).await?;
        run.progress.report(30.0);

        let negative = non_empty(Some(&prompts.negative_prompt)).map(str::to_owned);
        // The three views are drawn at the same time, each under its own checkpoint entries;
        // the step's progress from 30 % is their average.
        let draw = |(slot, prompt): (Slot, String), progress: ProgressReporter| {
            let request = MediaRequest {
                prompt,
                negative_prompt: negative.clone(),
                width: input.width.unwrap_or(512),
                height: input.height.unwrap_or(768),
                ..MediaRequest::default()
            };
            let (model, checkpoint, cancel) = (&image_model, &run.checkpoint, &run.cancel);
            async move { generate_once(model, request, slot, checkpoint, progress, cancel).await }
        };
        let views = vec![
            (FRONT, prompts.front_prompt.clone()),
            (SIDE, prompts.side_prompt.clone()),
            (BACK, prompts.back_prompt.clone()),
        ];
        let mut drawn = run_items(views, 3, &run.progress.scaled(30.0, 100.0), draw)
            .await
            .into_iter();
        let mut next = || {
            drawn
                .next()
                .unwrap_or_else(|| Err(TaskError::permanent("no view")))
        };
        let (front, side, back) = (next()?, next()?, next()?);
        Ok(json!({
            "frontViewUrl": front,
            "sideViewUrl": side,
            "backViewUrl": back,
            "imageUrl": front,
            "modelName": image_model.info().name,
            "prompts": {
                "front": prompts.front_prompt,
                "side": prompts.side_prompt,
                "back": prompts.back_prompt,
            },
        }))
    }
}
