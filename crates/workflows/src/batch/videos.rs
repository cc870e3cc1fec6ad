//! `batch_scene_video_generation` (批量分镜视频生成): a clip of every shot of a script. A shot
//! without a `prompt` gets one written from its `description` by the text model. Shots that have
//! a video are skipped unless `overwriteVideos`.

use std::sync::Arc;

use async_trait::async_trait;
use nosyntask_domain::{ParamKind, ParamSpec, ParamsSchema, TaskError};
use nosyntask_engine::ports::{MediaModel, MediaRequest, ModelCatalog, ModelKind, TextModel};
use nosyntask_engine::{
    CancellationToken, Checkpoints, ProgressReporter, StepHandler, StepRun, WorkflowDefinition,
};
use serde_json::{Value, json};

use super::Shot;
use super::frames::number;
use crate::common::input::non_empty;
use crate::common::media::generate_once_keyed;
use crate::common::models::{self, Uses, field};
use crate::common::params;
use crate::common::steps::VIDEO_TIMEOUT;
use crate::prompt_generate::{Brief, MediaKind, write_prompt};

/// The workflow type.
pub const WORKFLOW: &str = "batch_scene_video_generation";

const USES: Uses = Uses::with(ModelKind::Video, ModelKind::Text);

/// Params: **storyboards**, scriptId, videoModel (alias modelName), textModel, duration,
/// overwriteVideos, think=true, maxConcurrency=3.
fn params() -> ParamsSchema {
    let schema = ParamsSchema::new()
        .param(super::storyboards_param())
        .param(super::script_id_param())
        .param(
            ParamSpec::new(
                "duration",
                ParamKind::Integer,
                "Clip length in seconds for shots without their own (3 with action, else 2).",
            )
            .range(1.0, 10.0),
        )
        .param(ParamSpec::new(
            "overwriteVideos",
            ParamKind::Boolean,
            "Make clips of shots that already have one again.",
        ))
        .param(params::think(Some(true)))
        .param(super::max_concurrency_param(3));
    models::declare(schema, USES)
}

pub(crate) fn definition(models: Arc<dyn ModelCatalog>) -> WorkflowDefinition {
    super::Batch {
        workflow: WORKFLOW,
        name: "批量分镜视频生成",
        task_type: "batch_scene_video",
        params: params(),
        handler: Arc::new(BatchVideosHandler {
            models: models.clone(),
        }),
        shot_timeout: VIDEO_TIMEOUT,
        default_concurrency: 3,
        uses: USES,
    }
    .definition(models)
}

struct BatchVideosHandler {
    models: Arc<dyn ModelCatalog>,
}

struct Shared {
    model: Arc<dyn MediaModel>,
    text: Arc<dyn TextModel>,
    checkpoint: Checkpoints,
    cancel: CancellationToken,
    duration: Option<u32>,
    think: Option<bool>,
}

impl Shared {
    async fn clip(
        &self,
        index: usize,
        shot: &Shot,
        progress: &ProgressReporter,
    ) -> Result<(String, String), TaskError> {
        let prompt = match non_empty(shot.prompt.as_deref()) {
            Some(prompt) => prompt.to_owned(),
            None => {
                let brief = Brief {
                    kind: MediaKind::Video,
                    description: shot.text().unwrap_or_default(),
                    style: None,
                    think: self.think,
                };
                write_prompt(
                    &self.text,
                    &brief,
                    &progress.scaled(0.0, 15.0),
                    &self.cancel,
                )
                .await?
                .0
                .prompt
            }
        };
        let default_duration = if shot.has_action { 3 } else { 2 };
        let request = MediaRequest {
            prompt: prompt.clone(),
            duration_secs: Some(
                shot.duration
                    .or(self.duration)
                    .unwrap_or(default_duration)
                    .clamp(1, 10),
            ),
            image_url: non_empty(shot.start_frame.as_deref())
                .or(non_empty(shot.image_url.as_deref()))
                .map(str::to_owned),
            end_image_url: non_empty(shot.end_frame.as_deref()).map(str::to_owned),
            ..MediaRequest::default()
        };
        let key = shot.key(index);
        let keys = (format!("video:{key}"), format!("videoUrl:{key}"));
        let url = generate_once_keyed(
            &self.model,
            request,
            keys,
            &self.checkpoint,
            progress.scaled(15.0, 100.0),
            &self.cancel,
        )
        .await?;
        Ok((url, prompt))
    }

    async fn shot(
        &self,
        index: usize,
        shot: Shot,
        overwrite: bool,
        progress: ProgressReporter,
    ) -> Result<Value, TaskError> {
        if non_empty(shot.video_url.as_deref()).is_some() && !overwrite {
            return Ok(json!({"storyboardId": shot.id, "status": "skipped"}));
        }
        let (url, prompt) = self.clip(index, &shot, &progress).await?;
        Ok(json!({
            "storyboardId": shot.id,
            "status": "completed",
            "videoUrl": url,
            "prompt": prompt,
        }))
    }
}

/// Makes one shot's clip (an item of the fan-out step).
#[async_trait]
impl StepHandler for BatchVideosHandler {
    async fn run(&self, run: StepRun) -> Result<Value, TaskError> {
        let (index, shot) = super::item(&run.input)?;
        let input = &run.input;
        let name = |key: &str| input.get(key).and_then(Value::as_str);
        let shared = Shared {
            model: self.models.video(name("modelName"))?,
            text: self.models.text(name(field(ModelKind::Text)))?,
            checkpoint: run.checkpoint.clone(),
            cancel: run.cancel.clone(),
            duration: number(input, "duration"),
            think: input.get("think").and_then(Value::as_bool),
        };
        let overwrite = super::flag(input, "overwriteVideos");
        shared
            .shot(index, shot, overwrite, run.progress.scaled(0.0, 100.0))
            .await
    }
}
