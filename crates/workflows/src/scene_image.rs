//! `scene_image_generation` (场景图片生成): a picture of a location, as an empty set.
//!
//! Phases: 5 % started, 10 % models chosen, 10–30 % the text model writes the image prompt,
//! 30–99 % the image model paints it. The prompt and the finished image are checkpointed, so a
//! rerun after a crash neither rewrites the prompt nor paints again.

use std::sync::Arc;

use async_trait::async_trait;
use nosyntask_domain::{ParamsSchema, TaskError};
use nosyntask_engine::ports::{MediaRequest, ModelCatalog};
use nosyntask_engine::{StepHandler, StepRun, WorkflowDefinition};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::common::input::{non_empty, parse_input};
use crate::common::language::Language;
use crate::common::media::{Slot, generate_once};
use crate::common::params;
use crate::common::steps::{IMAGE_TIMEOUT, single_step};
use crate::prompt_generate::{Brief, MediaKind, write_prompt};

/// The workflow type.
pub const WORKFLOW: &str = "scene_image_generation";

const PROMPT_ENTRY: &str = "prompt";
const IMAGE: Slot = Slot {
    call_key: "image",
    done_key: "imageUrl",
};

/// Params: **sceneName** or **description**, sceneId, environment, lighting, mood, style,
/// modelName, width=1024, height=576.
pub(crate) fn params() -> ParamsSchema {
    ParamsSchema::new()
        .param(params::text("sceneName", "Name of the location.").max_length(500))
        .param(params::text("description", "What the location is."))
        .param(params::id(
            "sceneId",
            "The scene; one image job per scene runs at a time.",
        ))
        .param(params::text(
            "environment",
            "The set: architecture or landscape, objects, weather.",
        ))
        .param(params::text(
            "lighting",
            "Light sources, direction, colour.",
        ))
        .param(params::text("mood", "Atmosphere."))
        .param(params::style())
        .param(params::model_name("image"))
        .param(params::pixels("width", 1024))
        .param(params::pixels("height", 576))
        .require_any_of(&["sceneName", "description"])
}

pub(crate) fn definition(models: Arc<dyn ModelCatalog>) -> WorkflowDefinition {
    let params = params();
    let handler = Arc::new(SceneImageHandler { models });
    let step = single_step("scene_image", "scene", handler, &params, IMAGE_TIMEOUT)
        .target_id_param("sceneId");
    WorkflowDefinition::new(WORKFLOW, "场景图片生成", params)
        .step(step)
        .unique_by_param("sceneId")
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Input {
    scene_name: Option<String>,
    description: Option<String>,
    scene_id: Option<Value>,
    environment: Option<String>,
    lighting: Option<String>,
    mood: Option<String>,
    style: Option<String>,
    model_name: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
}

impl Input {
    /// The scene written out for the prompt writer, in the scene's language.
    fn brief_text(&self) -> Option<String> {
        let fields = [
            (&self.scene_name, "场景", "Location"),
            (&self.description, "描述", "Description"),
            (&self.environment, "环境", "Environment"),
            (&self.lighting, "光线", "Lighting"),
            (&self.mood, "氛围", "Mood"),
        ];
        let given: Vec<(&str, &str, &str)> = fields
            .iter()
            .filter_map(|(value, zh, en)| non_empty(value.as_deref()).map(|v| (v, *zh, *en)))
            .collect();
        if given.is_empty() {
            return None;
        }
        let all: String = given
            .iter()
            .map(|(v, _, _)| *v)
            .collect::<Vec<_>>()
            .join(" ");
        let language = Language::detect(&all);
        let mut text: Vec<String> = given
            .iter()
            .map(|(value, zh, en)| format!("{}: {value}", language.pick(zh, en)))
            .collect();
        text.push(
            language
                .pick(
                    "画面要求：场景空镜，不出现任何人物，用作场景设定图。",
                    "The picture shows the empty set without any people, as a location reference.",
                )
                .to_owned(),
        );
        Some(text.join("\n"))
    }
}

/// The prompt kept in the checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SavedPrompt {
    prompt: String,
    negative_prompt: String,
    text_model: String,
}

/// Paints one location.
struct SceneImageHandler {
    models: Arc<dyn ModelCatalog>,
}

#[async_trait]
impl StepHandler for SceneImageHandler {
    async fn run(&self, run: StepRun) -> Result<Value, TaskError> {
        let input: Input = parse_input(&run.input)?;
        let brief_text = input
            .brief_text()
            .ok_or_else(|| TaskError::permanent("sceneName or description: one must be given"))?;
        run.progress.report(5.0);
        let image_model = self.models.image(input.model_name.as_deref())?;
        run.progress.report(10.0);

        let saved = match run.checkpoint.entry(PROMPT_ENTRY).await {
            Some(saved) => serde_json::from_value::<SavedPrompt>(saved).ok(),
            None => None,
        };
        let saved = match saved {
            Some(saved) => saved,
            None => {
                let text_model = self.models.text(None)?;
                let brief = Brief {
                    kind: MediaKind::Image,
                    description: &brief_text,
                    style: non_empty(input.style.as_deref()),
                };
                let (written, usage) = write_prompt(
                    &text_model,
                    &brief,
                    &run.progress.scaled(10.0, 30.0),
                    &run.cancel,
                )
                .await?;
                tracing::info!(tokens = usage.total(), model = %usage.model, "scene prompt written");
                let saved = SavedPrompt {
                    prompt: written.prompt,
                    negative_prompt: written.negative_prompt,
                    text_model: text_model.info().name.clone(),
                };
                let entry = serde_json::to_value(&saved)
                    .map_err(|err| TaskError::permanent(format!("checkpoint: {err}")))?;
                run.checkpoint
                    .merge_entry(PROMPT_ENTRY, entry, None)
                    .await?;
                saved
            }
        };
        run.progress.report(30.0);

        let request = MediaRequest {
            prompt: saved.prompt.clone(),
            negative_prompt: non_empty(Some(&saved.negative_prompt)).map(str::to_owned),
            width: input.width.unwrap_or(1024),
            height: input.height.unwrap_or(576),
            ..MediaRequest::default()
        };
        let image_url = generate_once(
            &image_model,
            request,
            IMAGE,
            &run.checkpoint,
            run.progress.scaled(30.0, 100.0),
            &run.cancel,
        )
        .await?;
        Ok(json!({
            "imageUrl": image_url,
            "sceneId": input.scene_id.unwrap_or(Value::Null),
            "prompt": saved.prompt,
            "imageModel": image_model.info().name,
            "textModel": saved.text_model,
        }))
    }
}
