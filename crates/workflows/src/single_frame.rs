//! `single_frame_generation` (分镜单帧生成): the one frame of a shot without action. The text
//! model turns the shot's description into an image prompt, the image model paints it.
//!
//! Phases: 5 % started, 10–30 % the prompt, 30–99 % the picture. The prompt and the picture are
//! checkpointed, so a rerun after a crash neither rewrites nor repaints.

use std::sync::Arc;

use async_trait::async_trait;
use nosyntask_domain::{ParamsSchema, TaskError};
use nosyntask_engine::ports::{MediaRequest, ModelCatalog, ModelKind};
use nosyntask_engine::{StepHandler, StepRun, WorkflowDefinition};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::common::input::{non_empty, parse_input};
use crate::common::media::{Slot, generate_once};
use crate::common::models::{self, Uses};
use crate::common::params;
use crate::common::prompt_cache::saved_prompt;
use crate::common::steps::{IMAGE_TIMEOUT, single_step};
use crate::prompt_generate::{Brief, MediaKind};

/// The workflow type.
pub const WORKFLOW: &str = "single_frame_generation";

/// The models it calls: the image model paints, the text model writes the prompt.
const USES: Uses = Uses::with(ModelKind::Image, ModelKind::Text);

const FRAME: Slot = Slot {
    call_key: "frame",
    done_key: "frameUrl",
};

/// Params: **description**, storyboardId, imageModel (alias modelName), textModel, style,
/// think, width=1024, height=576.
pub(crate) fn params() -> ParamsSchema {
    let schema = ParamsSchema::new()
        .param(params::text("description", "What the frame shows.").required())
        .param(params::id(
            "storyboardId",
            "The NanoStory storyboard (shot) the frame is for; kept for the frontend's recovery.",
        ))
        .param(params::style())
        .param(params::think(None))
        .param(params::pixels("width", 1024))
        .param(params::pixels("height", 576));
    models::declare(schema, USES)
}

pub(crate) fn definition(models: Arc<dyn ModelCatalog>) -> WorkflowDefinition {
    let params = params();
    let handler = Arc::new(SingleFrameHandler {
        models: models.clone(),
    });
    let step = single_step(
        "single_frame",
        "storyboard",
        handler,
        &params,
        IMAGE_TIMEOUT,
    )
    .target_id_param("storyboardId");
    WorkflowDefinition::new(WORKFLOW, "分镜单帧生成", params)
        .step(step)
        .prepare(models::resolver(models, USES))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Input {
    description: String,
    model_name: Option<String>,
    text_model: Option<String>,
    style: Option<String>,
    think: Option<bool>,
    width: Option<u32>,
    height: Option<u32>,
}

struct SingleFrameHandler {
    models: Arc<dyn ModelCatalog>,
}

#[async_trait]
impl StepHandler for SingleFrameHandler {
    async fn run(&self, mut run: StepRun) -> Result<Value, TaskError> {
        // The input moves into the typed one: a waiting handler keeps no copy of its JSON.
        let input: Input = parse_input(std::mem::take(&mut run.input))?;
        let description = non_empty(Some(&input.description))
            .ok_or_else(|| TaskError::permanent("description is empty"))?;
        run.progress.report(5.0);
        let image_model = self.models.image(input.model_name.as_deref())?;
        let brief = Brief {
            kind: MediaKind::Image,
            description,
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
        let request = MediaRequest {
            prompt: saved.prompt.clone(),
            negative_prompt: non_empty(Some(&saved.negative_prompt)).map(str::to_owned),
            width: input.width.unwrap_or(1024),
            height: input.height.unwrap_or(576),
            ..MediaRequest::default()
        };
        let url = generate_once(
            &image_model,
            request,
            FRAME,
            &run.checkpoint,
            run.progress.scaled(30.0, 100.0),
            &run.cancel,
        )
        .await?;
        Ok(json!({
            "startFrame": url,
            "endFrame": Value::Null,
            "imageUrl": url,
            "prompt": saved.prompt,
            "imageModel": image_model.info().name,
            "textModel": saved.text_model,
        }))
    }
}
