//! `frame_generation` (首尾帧生成): the first and the last frame of a shot, for a video model
//! that animates between them.
//!
//! Phases: 5 % started, 10 % model chosen, 10–55 % start frame, 55–99 % end frame. Each finished
//! frame is checkpointed, so a rerun after a crash does not paint it again.

use std::sync::Arc;

use async_trait::async_trait;
use nosyntask_domain::{ParamsSchema, TaskError};
use nosyntask_engine::ports::{MediaRequest, ModelCatalog, ModelKind};
use nosyntask_engine::{StepHandler, StepRun, WorkflowDefinition};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::common::input::{non_empty, parse_input};
use crate::common::language::Language;
use crate::common::media::{Slot, generate_once};
use crate::common::models::{self, Uses};
use crate::common::params;
use crate::common::steps::{IMAGE_TIMEOUT, single_step};

/// The workflow type.
pub const WORKFLOW: &str = "frame_generation";

const START: Slot = Slot {
    call_key: "startFrame",
    done_key: "startFrameUrl",
};
const END: Slot = Slot {
    call_key: "endFrame",
    done_key: "endFrameUrl",
};

/// The models it calls.
const USES: Uses = Uses::only(ModelKind::Image);

/// Params: **prompt**, storyboardId, imageModel (alias modelName), width=1024, height=576.
pub(crate) fn params() -> ParamsSchema {
    let schema = ParamsSchema::new()
        .param(
            params::text(
                "prompt",
                "The shot: what happens from its first to its last frame.",
            )
            .required(),
        )
        .param(params::id(
            "storyboardId",
            "The NanoStory storyboard (shot) the frames are for; kept for the frontend's recovery.",
        ))
        .param(params::pixels("width", 1024))
        .param(params::pixels("height", 576));
    models::declare(schema, USES)
}

pub(crate) fn definition(models: Arc<dyn ModelCatalog>) -> WorkflowDefinition {
    let params = params();
    let handler = Arc::new(FramesHandler {
        models: models.clone(),
    });
    let step = single_step(
        "frame_generation",
        "storyboard",
        handler,
        &params,
        IMAGE_TIMEOUT,
    )
    .target_id_param("storyboardId");
    WorkflowDefinition::new(WORKFLOW, "分镜首尾帧生成", params)
        .step(step)
        .prepare(models::resolver(models, USES))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Input {
    prompt: String,
    model_name: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
}

/// The prompts of the two frames: the shot's prompt with the moment it shows.
pub(crate) fn frame_prompts(prompt: &str) -> (String, String) {
    let language = Language::detect(prompt);
    (
        format!(
            "{prompt}{}",
            language.pick(
                "，画面开始时刻，动作起始状态",
                ", the opening moment of the shot, the action about to begin"
            )
        ),
        format!(
            "{prompt}{}",
            language.pick(
                "，画面结束时刻，动作完成状态，延续首帧的场景、角色与光线",
                ", the closing moment of the shot, the action completed, same setting, characters and light as the opening frame"
            )
        ),
    )
}

/// Paints a shot's first and last frames.
struct FramesHandler {
    models: Arc<dyn ModelCatalog>,
}

#[async_trait]
impl StepHandler for FramesHandler {
    async fn run(&self, mut run: StepRun) -> Result<Value, TaskError> {
        // The input moves into the typed one: a waiting handler keeps no copy of its JSON.
        let input: Input = parse_input(std::mem::take(&mut run.input))?;
        let prompt = non_empty(Some(&input.prompt))
            .ok_or_else(|| TaskError::permanent("prompt is empty"))?;
        run.progress.report(5.0);
        let model = self.models.image(input.model_name.as_deref())?;
        run.progress.report(10.0);
        let (start_prompt, end_prompt) = frame_prompts(prompt);
        let request = |prompt: String| MediaRequest {
            prompt,
            width: input.width.unwrap_or(1024),
            height: input.height.unwrap_or(576),
            ..MediaRequest::default()
        };
        let start = generate_once(
            &model,
            request(start_prompt),
            START,
            &run.checkpoint,
            run.progress.scaled(10.0, 55.0),
            &run.cancel,
        )
        .await?;
        run.progress.report(55.0);
        let end = generate_once(
            &model,
            request(end_prompt),
            END,
            &run.checkpoint,
            run.progress.scaled(55.0, 100.0),
            &run.cancel,
        )
        .await?;
        Ok(json!({
            "startFrame": start,
            "endFrame": end,
            "model": model.info().name,
        }))
    }
}
