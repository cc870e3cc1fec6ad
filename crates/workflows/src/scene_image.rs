//! `scene_image_generation` (场景图片生成): a picture of a location, as an empty set, in two
//! steps as NanoStory runs it: step 0 (`scene_style_analysis`, see [`crate::style_analysis`])
//! reads the project's other scenes (`allScenes`) for a consistent style and a reference
//! picture; step 1 paints the scene with that reference.
//!
//! Phases of step 1: 5 % started, 10 % models chosen, 10–30 % the text model writes the image
//! prompt, 30–99 % the image model paints it. The prompt and the finished image are
//! checkpointed, so a rerun after a crash neither rewrites the prompt nor paints again.

use std::sync::Arc;

use async_trait::async_trait;
use nosyntask_domain::{ParamsSchema, TaskError};
use nosyntask_engine::ports::{MediaRequest, ModelCatalog, ModelKind};
use nosyntask_engine::{StepContext, StepHandler, StepRun, WorkflowDefinition};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::common::input::{declared_params, non_empty, parse_input, pick};
use crate::common::language::Language;
use crate::common::media::{Slot, generate_once};
use crate::common::models::{self, Uses};
use crate::common::params;
use crate::common::prompt_cache::saved_prompt;
use crate::common::steps::{IMAGE_TIMEOUT, TEXT_TIMEOUT, single_step};
use crate::prompt_generate::{Brief, MediaKind};
use crate::style_analysis;

/// The workflow type.
pub const WORKFLOW: &str = "scene_image_generation";

const IMAGE: Slot = Slot {
    call_key: "image",
    done_key: "imageUrl",
};

/// The models it calls: the image model paints, the text model analyses the style and writes
/// the prompt.
const USES: Uses = Uses::with(ModelKind::Image, ModelKind::Text);

/// Params: **sceneName** or **description**, sceneId, environment, lighting, mood, style,
/// allScenes, imageModel (alias modelName), textModel, think, width=1024, height=576.
pub(crate) fn params() -> ParamsSchema {
    let schema = ParamsSchema::new()
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
        .param(style_analysis::all_scenes_param())
        .param(params::think(None))
        .param(params::pixels("width", 1024))
        .param(params::pixels("height", 576))
        .require_any_of(&["sceneName", "description"]);
    models::declare(schema, USES)
}

pub(crate) fn definition(models: Arc<dyn ModelCatalog>) -> WorkflowDefinition {
    let params = params();
    let analysis = single_step(
        style_analysis::TASK_TYPE,
        "scene",
        Arc::new(style_analysis::StyleAnalysisHandler {
            models: models.clone(),
        }),
        &params,
        TEXT_TIMEOUT,
    )
    .target_id_param("sceneId")
    .input(|ctx: &StepContext| {
        let names: Vec<String> = style_analysis::INPUT
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        models::recording(
            pick(&ctx.job_params, &names),
            &ctx.job_params,
            ModelKind::Text,
        )
    });
    let declared = declared_params(&params);
    let image = single_step(
        "scene_image_generation",
        "scene",
        Arc::new(SceneImageHandler {
            models: models.clone(),
        }),
        &params,
        IMAGE_TIMEOUT,
    )
    .target_id_param("sceneId")
    .input(move |ctx: &StepContext| {
        let mut input = declared(ctx);
        let analysis = ctx.previous_results.get(&0);
        for key in ["referenceImageUrl", "styleDescription"] {
            if let (Value::Object(map), Some(value)) =
                (&mut input, analysis.and_then(|a| a.get(key)))
            {
                map.insert(key.to_owned(), value.clone());
            }
        }
        input
    });
    WorkflowDefinition::new(WORKFLOW, "场景图片生成", params)
        .step(analysis)
        .step(image)
        .unique_by_param("sceneId")
        .prepare(models::resolver(models, USES))
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
    text_model: Option<String>,
    think: Option<bool>,
    width: Option<u32>,
    height: Option<u32>,
    /// From the style analysis: a picture of a related scene to keep the look consistent.
    reference_image_url: Option<String>,
    style_description: Option<String>,
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
            (&self.style_description, "统一风格", "Consistent style"),
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

/// Paints one location.
struct SceneImageHandler {
    models: Arc<dyn ModelCatalog>,
}

#[async_trait]
impl StepHandler for SceneImageHandler {
    async fn run(&self, mut run: StepRun) -> Result<Value, TaskError> {
        // The input moves into the typed one: a waiting handler keeps no copy of its JSON.
        let input: Input = parse_input(std::mem::take(&mut run.input))?;
        let brief_text = input
            .brief_text()
            .ok_or_else(|| TaskError::permanent("sceneName or description: one must be given"))?;
        run.progress.report(5.0);
        let image_model = self.models.image(input.model_name.as_deref())?;
        run.progress.report(10.0);

        let brief = Brief {
            kind: MediaKind::Image,
            description: &brief_text,
            style: non_empty(input.style.as_deref()),
            think: input.think,
        };
        let saved = saved_prompt(
            self.models.as_ref(),
            input.text_model.as_deref(),
            &brief,
            &run,
            (10.0, 30.0),
        )
        .await?;
        run.progress.report(30.0);

        let request = MediaRequest {
            prompt: saved.prompt.clone(),
            negative_prompt: non_empty(Some(&saved.negative_prompt)).map(str::to_owned),
            width: input.width.unwrap_or(1024),
            height: input.height.unwrap_or(576),
            image_url: non_empty(input.reference_image_url.as_deref()).map(str::to_owned),
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
            "referenceImageUrl": input.reference_image_url,
            "styleDescription": input.style_description,
        }))
    }
}
