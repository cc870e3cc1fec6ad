//! `batch_frame_generation` (批量分镜帧生成): the frames of every shot of a script — first and
//! last frame for a shot with action, one frame otherwise. Shots that have a frame are skipped
//! unless `overwriteFrames`.

use std::sync::Arc;

use async_trait::async_trait;
use nosyntask_domain::{ParamKind, ParamSpec, ParamsSchema, TaskError};
use nosyntask_engine::ports::{MediaModel, MediaRequest, ModelCatalog, ModelKind};
use nosyntask_engine::{
    CancellationToken, Checkpoints, ProgressReporter, StepHandler, StepRun, WorkflowDefinition,
};
use serde_json::{Value, json};

use super::Shot;
use crate::common::input::non_empty;
use crate::common::media::generate_once_keyed;
use crate::common::models::{self, Uses};
use crate::common::params;
use crate::common::steps::IMAGE_TIMEOUT;
use crate::frames::frame_prompts;

/// The workflow type.
pub const WORKFLOW: &str = "batch_frame_generation";

const USES: Uses = Uses::only(ModelKind::Image);

/// Params: **storyboards**, scriptId, imageModel (alias modelName), overwriteFrames,
/// maxConcurrency=20, width=1024, height=576.
fn params() -> ParamsSchema {
    let schema = ParamsSchema::new()
        .param(super::storyboards_param())
        .param(super::script_id_param())
        .param(ParamSpec::new(
            "overwriteFrames",
            ParamKind::Boolean,
            "Paint shots that already have a frame again.",
        ))
        .param(super::max_concurrency_param(20))
        .param(params::pixels("width", 1024))
        .param(params::pixels("height", 576));
    models::declare(schema, USES)
}

pub(crate) fn definition(models: Arc<dyn ModelCatalog>) -> WorkflowDefinition {
    super::Batch {
        workflow: WORKFLOW,
        name: "批量分镜帧生成",
        task_type: "batch_frame",
        params: params(),
        handler: Arc::new(BatchFramesHandler {
            models: models.clone(),
        }),
        // One shot paints at most two frames.
        shot_timeout: IMAGE_TIMEOUT * 2,
        default_concurrency: 20,
        uses: USES,
    }
    .definition(models)
}

struct BatchFramesHandler {
    models: Arc<dyn ModelCatalog>,
}

/// What every shot of the batch shares.
struct Shared {
    model: Arc<dyn MediaModel>,
    checkpoint: Checkpoints,
    cancel: CancellationToken,
    width: u32,
    height: u32,
}

impl Shared {
    async fn paint(
        &self,
        key: &str,
        name: &str,
        prompt: String,
        progress: ProgressReporter,
    ) -> Result<String, TaskError> {
        let request = MediaRequest {
            prompt,
            width: self.width,
            height: self.height,
            ..MediaRequest::default()
        };
        let keys = (format!("{name}:{key}"), format!("{name}Url:{key}"));
        generate_once_keyed(
            &self.model,
            request,
            keys,
            &self.checkpoint,
            progress,
            &self.cancel,
        )
        .await
    }

    async fn shot(
        &self,
        index: usize,
        shot: Shot,
        overwrite: bool,
        progress: ProgressReporter,
    ) -> Result<Value, TaskError> {
        let has_frame = non_empty(shot.start_frame.as_deref())
            .or(non_empty(shot.image_url.as_deref()))
            .is_some();
        if has_frame && !overwrite {
            return Ok(json!({"storyboardId": shot.id, "status": "skipped"}));
        }
        let key = shot.key(index);
        let text = shot.text().unwrap_or_default().to_owned();
        let (start, end) = if shot.has_action {
            let (start, end) = frame_prompts(&text);
            let first = self
                .paint(&key, "start", start, progress.scaled(0.0, 50.0))
                .await?;
            let last = self
                .paint(&key, "end", end, progress.scaled(50.0, 100.0))
                .await?;
            (first, Some(last))
        } else {
            (self.paint(&key, "frame", text, progress).await?, None)
        };
        Ok(json!({
            "storyboardId": shot.id,
            "status": "completed",
            "type": if shot.has_action { "frame" } else { "single_frame" },
            "startFrame": start,
            "endFrame": end,
            "imageUrl": start,
        }))
    }
}

/// Paints one shot of the batch (an item of the fan-out step).
#[async_trait]
impl StepHandler for BatchFramesHandler {
    async fn run(&self, run: StepRun) -> Result<Value, TaskError> {
        let (index, shot) = super::item(&run.input)?;
        let input = &run.input;
        let model_name = input.get("modelName").and_then(Value::as_str);
        let shared = Shared {
            model: self.models.image(model_name)?,
            checkpoint: run.checkpoint.clone(),
            cancel: run.cancel.clone(),
            width: number(input, "width").unwrap_or(1024),
            height: number(input, "height").unwrap_or(576),
        };
        let overwrite = super::flag(input, "overwriteFrames");
        shared
            .shot(index, shot, overwrite, run.progress.scaled(0.0, 100.0))
            .await
    }
}

/// A positive integer param of the step input.
pub(super) fn number(input: &Value, key: &str) -> Option<u32> {
    input
        .get(key)
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| *n > 0)
}
