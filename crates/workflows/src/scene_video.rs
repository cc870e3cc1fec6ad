//! `scene_video` (分镜视频生成): a clip of one shot from a video model, usually a submit-and-poll
//! API. The model keeps the provider's task id in the step's checkpoint, so a rerun after a crash
//! polls the same task instead of paying for a second video.
//!
//! NanoStory's own engine reads the shot's row by `storyboardId`; standalone, the request carries
//! the shot: a `prompt`, or the shot's `description` (with its `startFrame`/`endFrame` images)
//! from which the text model writes the video prompt.
//!
//! Phases: 5 % started, 10 % model chosen, 10–25 % the prompt (when it is written), 25–99 % the
//! video model's own progress.

use std::sync::Arc;

use async_trait::async_trait;
use nosyntask_domain::{ParamKind, ParamSpec, ParamsSchema, TaskError};
use nosyntask_engine::ports::{MediaRequest, ModelCatalog, ModelKind};
use nosyntask_engine::{StepHandler, StepRun, WorkflowDefinition};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::common::input::{non_empty, parse_input};
use crate::common::media::{Slot, generate_once};
use crate::common::models::{self, Uses};
use crate::common::params;
use crate::common::prompt_cache::saved_prompt;
use crate::common::steps::{VIDEO_TIMEOUT, single_step};
use crate::prompt_generate::{Brief, MediaKind};

/// The workflow type.
pub const WORKFLOW: &str = "scene_video";

const VIDEO: Slot = Slot {
    call_key: "video",
    done_key: "videoUrl",
};

/// The models it calls: the video model, and the text model when it writes the prompt.
const USES: Uses = Uses::with(ModelKind::Video, ModelKind::Text);

/// Params: **prompt** or **description**, storyboardId, imageUrl, startFrame, endFrame,
/// videoModel (alias modelName), textModel, think, duration=5 (1–10).
pub(crate) fn params() -> ParamsSchema {
    let url = |name: &str, description: &str| {
        ParamSpec::new(name, ParamKind::String, description).max_length(4_096)
    };
    let schema = ParamsSchema::new()
        .param(params::text("prompt", "What happens in the clip."))
        .param(params::text(
            "description",
            "The shot, when no prompt is given: the text model writes the video prompt from it.",
        ))
        .param(params::id(
            "storyboardId",
            "The NanoStory storyboard (shot); kept for the frontend's recovery.",
        ))
        .param(params::think(None))
        .param(url(
            "imageUrl",
            "A reference image; the first frame when no startFrame is given.",
        ))
        .param(url(
            "startFrame",
            "The clip's first frame (e.g. frame_generation's startFrame).",
        ))
        .param(url(
            "endFrame",
            "The clip's last frame, for models that animate between two frames.",
        ))
        .param(
            ParamSpec::new("duration", ParamKind::Integer, "Clip length in seconds.")
                .range(1.0, 10.0)
                .default_value(json!(5)),
        )
        .require_any_of(&["prompt", "description"]);
    models::declare(schema, USES)
}

pub(crate) fn definition(models: Arc<dyn ModelCatalog>) -> WorkflowDefinition {
    let params = params();
    let handler = Arc::new(SceneVideoHandler {
        models: models.clone(),
    });
    let step = single_step("scene_video", "storyboard", handler, &params, VIDEO_TIMEOUT)
        .target_id_param("storyboardId");
    WorkflowDefinition::new(WORKFLOW, "分镜视频生成", params)
        .step(step)
        .prepare(models::resolver(models, USES))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Input {
    prompt: Option<String>,
    description: Option<String>,
    image_url: Option<String>,
    start_frame: Option<String>,
    end_frame: Option<String>,
    model_name: Option<String>,
    text_model: Option<String>,
    think: Option<bool>,
    duration: Option<u32>,
}

/// Makes one clip.
struct SceneVideoHandler {
    models: Arc<dyn ModelCatalog>,
}

#[async_trait]
impl StepHandler for SceneVideoHandler {
    async fn run(&self, mut run: StepRun) -> Result<Value, TaskError> {
        // The input moves into the typed one: a waiting handler keeps no copy of its JSON.
        let input: Input = parse_input(std::mem::take(&mut run.input))?;
        run.progress.report(5.0);
        let model = self.models.video(input.model_name.as_deref())?;
        run.progress.report(10.0);
        let prompt = match non_empty(input.prompt.as_deref()) {
            Some(prompt) => prompt.to_owned(),
            None => {
                let description = non_empty(input.description.as_deref())
                    .ok_or_else(|| TaskError::permanent("prompt or description: one is needed"))?;
                let brief = Brief {
                    kind: MediaKind::Video,
                    description,
                    style: None,
                    think: input.think,
                };
                saved_prompt(
                    self.models.as_ref(),
                    input.text_model.as_deref(),
                    &brief,
                    &run,
                    (10.0, 25.0),
                )
                .await?
                .prompt
            }
        };
        let first_frame = non_empty(input.start_frame.as_deref())
            .or_else(|| non_empty(input.image_url.as_deref()))
            .map(str::to_owned);
        let request = MediaRequest {
            prompt: prompt.clone(),
            duration_secs: Some(input.duration.unwrap_or(5).clamp(1, 10)),
            image_url: first_frame,
            end_image_url: non_empty(input.end_frame.as_deref()).map(str::to_owned),
            ..MediaRequest::default()
        };
        // Not kept across the minutes the model takes.
        drop(input);
        let url = generate_once(
            &model,
            request,
            VIDEO,
            &run.checkpoint,
            run.progress.scaled(25.0, 100.0),
            &run.cancel,
        )
        .await?;
        Ok(json!({
            "videoUrl": url,
            "model": model.info().name,
            "prompt": prompt,
        }))
    }
}
