//! `scene_video` (视频生成): a clip of one shot from a video model, usually a submit-and-poll
//! API. The model keeps the provider's task id in the step's checkpoint, so a rerun after a crash
//! polls the same task instead of paying for a second video.
//!
//! Phases: 5 % started, 10 % model chosen, 10–99 % the video model's own progress.

use std::sync::Arc;

use async_trait::async_trait;
use nosyntask_domain::{ParamKind, ParamSpec, ParamsSchema, TaskError};
use nosyntask_engine::ports::{MediaRequest, ModelCatalog};
use nosyntask_engine::{StepHandler, StepRun, WorkflowDefinition};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::common::input::{non_empty, parse_input};
use crate::common::media::{Slot, generate_once};
use crate::common::params;
use crate::common::steps::{VIDEO_TIMEOUT, single_step};

/// The workflow type.
pub const WORKFLOW: &str = "scene_video";

const VIDEO: Slot = Slot {
    call_key: "video",
    done_key: "videoUrl",
};

/// Params: **prompt**, imageUrl, startFrame, endFrame, modelName, duration=5 (1–10).
pub(crate) fn params() -> ParamsSchema {
    let url = |name: &str, description: &str| {
        ParamSpec::new(name, ParamKind::String, description).max_length(4_096)
    };
    ParamsSchema::new()
        .param(params::text("prompt", "What happens in the clip.").required())
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
        .param(params::model_name("video"))
        .param(
            ParamSpec::new("duration", ParamKind::Integer, "Clip length in seconds.")
                .range(1.0, 10.0)
                .default_value(json!(5)),
        )
}

pub(crate) fn definition(models: Arc<dyn ModelCatalog>) -> WorkflowDefinition {
    let params = params();
    let handler = Arc::new(SceneVideoHandler { models });
    let step = single_step("scene_video", "shot", handler, &params, VIDEO_TIMEOUT);
    WorkflowDefinition::new(WORKFLOW, "视频生成", params).step(step)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Input {
    prompt: String,
    image_url: Option<String>,
    start_frame: Option<String>,
    end_frame: Option<String>,
    model_name: Option<String>,
    duration: Option<u32>,
}

/// Makes one clip.
struct SceneVideoHandler {
    models: Arc<dyn ModelCatalog>,
}

#[async_trait]
impl StepHandler for SceneVideoHandler {
    async fn run(&self, run: StepRun) -> Result<Value, TaskError> {
        let input: Input = parse_input(&run.input)?;
        let prompt = non_empty(Some(&input.prompt))
            .ok_or_else(|| TaskError::permanent("prompt is empty"))?;
        run.progress.report(5.0);
        let model = self.models.video(input.model_name.as_deref())?;
        run.progress.report(10.0);
        let first_frame = non_empty(input.start_frame.as_deref())
            .or_else(|| non_empty(input.image_url.as_deref()))
            .map(str::to_owned);
        let request = MediaRequest {
            prompt: prompt.to_owned(),
            duration_secs: Some(input.duration.unwrap_or(5).clamp(1, 10)),
            image_url: first_frame,
            end_image_url: non_empty(input.end_frame.as_deref()).map(str::to_owned),
            ..MediaRequest::default()
        };
        let url = generate_once(
            &model,
            request,
            VIDEO,
            &run.checkpoint,
            run.progress.scaled(10.0, 100.0),
            &run.cancel,
        )
        .await?;
        Ok(json!({
            "videoUrl": url,
            "model": model.info().name,
        }))
    }
}
