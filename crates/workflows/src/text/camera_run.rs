//! `camera_run_generation` (精细运镜生成): the text model writes a detailed camera-movement prompt
//! for one shot, for a video model. NanoStory's engine reads the shot's row by `storyboardId`;
//! standalone, the request carries the shot (`description`, the rest optional).
//!
//! Result: `{cameraRunPrompt, storyboardId, shotType, cameraMovement, duration, tokens, provider}`.

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
pub const WORKFLOW: &str = "camera_run_generation";

/// Params: **description**, storyboardId, shotType, cameraMovement, emotion, hasAction,
/// startFrame, endFrame, dialogue, duration, textModel (alias modelName), think=true.
fn params() -> ParamsSchema {
    ParamsSchema::new()
        .param(
            params::text(
                "description",
                "The shot (NanoStory reads it from the storyboard row; standalone it is required).",
            )
            .required(),
        )
        .param(params::id(
            "storyboardId",
            "The NanoStory storyboard (shot).",
        ))
        .param(params::text("shotType", "Shot size: 特写, 中景, wide shot…").max_length(100))
        .param(params::text("cameraMovement", "The movement planned so far.").max_length(500))
        .param(params::text("emotion", "The shot's emotion.").max_length(200))
        .param(ParamSpec::new(
            "hasAction",
            ParamKind::Boolean,
            "Whether something moves between the first and the last frame.",
        ))
        .param(params::text("startFrame", "What the first frame shows."))
        .param(params::text("endFrame", "What the last frame shows."))
        .param(params::text("dialogue", "Lines spoken in the shot."))
        .param(
            ParamSpec::new(
                "duration",
                ParamKind::Integer,
                "Seconds (3 with action, else 2).",
            )
            .range(1.0, 10.0),
        )
        .param(params::think(Some(true)))
}

pub(crate) fn definition(models: Arc<dyn ModelCatalog>) -> WorkflowDefinition {
    let handler = Arc::new(CameraRunHandler {
        models: models.clone(),
    });
    super::definition(
        super::Names {
            workflow: WORKFLOW,
            name: "精细运镜生成",
            task_type: "camera_run_generation",
            target_type: "storyboard",
            target_id_param: Some("storyboardId"),
        },
        params(),
        handler,
        models,
    )
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Input {
    description: String,
    storyboard_id: Option<Value>,
    shot_type: Option<String>,
    camera_movement: Option<String>,
    emotion: Option<String>,
    #[serde(default)]
    has_action: bool,
    start_frame: Option<String>,
    end_frame: Option<String>,
    dialogue: Option<String>,
    duration: Option<u32>,
    model_name: Option<String>,
    think: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    #[serde(default, alias = "prompt", deserialize_with = "lenient::string")]
    camera_run_prompt: String,
    #[serde(default, deserialize_with = "lenient::string")]
    camera_movement: String,
}

fn answer(value: Value) -> Result<Answer, String> {
    let answer: Answer = serde_json::from_value(value).map_err(|err| err.to_string())?;
    if answer.camera_run_prompt.is_empty() {
        return Err("the answer has no \"cameraRunPrompt\"".to_owned());
    }
    Ok(answer)
}

struct CameraRunHandler {
    models: Arc<dyn ModelCatalog>,
}

#[async_trait]
impl StepHandler for CameraRunHandler {
    async fn run(&self, run: StepRun) -> Result<Value, TaskError> {
        let input: Input = parse_input(run.input.clone())?;
        let description = non_empty(Some(&input.description))
            .ok_or_else(|| TaskError::permanent("description is empty"))?;
        run.progress.report(5.0);
        let model = self.models.text(input.model_name.as_deref())?;
        let language = Language::detect(description);
        let duration = input
            .duration
            .unwrap_or(if input.has_action { 3 } else { 2 });
        let mut shot = vec![format!("{}: {description}", language.pick("画面", "Shot"))];
        for (value, zh, en) in [
            (&input.shot_type, "景别", "Shot size"),
            (&input.camera_movement, "原运镜", "Planned movement"),
            (&input.emotion, "情绪", "Emotion"),
            (&input.start_frame, "首帧", "First frame"),
            (&input.end_frame, "尾帧", "Last frame"),
            (&input.dialogue, "台词", "Dialogue"),
        ] {
            if let Some(value) = non_empty(value.as_deref()) {
                shot.push(format!("{}: {value}", language.pick(zh, en)));
            }
        }
        shot.push(format!(
            "{}: {duration}s",
            language.pick("时长", "Duration")
        ));
        let question = JsonQuestion {
            task: "camera run",
            system: format!(
                "You are a director of photography. Write a precise camera-run prompt for a \
                 video model: the camera's movement second by second, its speed, the framing \
                 at start and end, and what the subject does. Answer JSON only. {}",
                language.instruction()
            ),
            user: shot.join("\n"),
            example: json!({
                "cameraRunPrompt": language.pick(
                    "0-1秒：中景缓慢推近林冲；1-3秒：镜头跟随他推门，门外风雪灌入，结束于门框特写",
                    "0-1s: slow push-in on a medium shot; 1-3s: follow the door opening, end on a close-up of the frame"
                ),
                "cameraMovement": language.pick("缓推", "slow push-in"),
            }),
            max_tokens: 4_096,
            temperature: 0.6,
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
        let movement = non_empty(Some(&answer.value.camera_movement))
            .or(non_empty(input.camera_movement.as_deref()))
            .unwrap_or_default()
            .to_owned();
        Ok(json!({
            "cameraRunPrompt": answer.value.camera_run_prompt,
            "storyboardId": input.storyboard_id.unwrap_or(Value::Null),
            "shotType": input.shot_type.unwrap_or_default(),
            "cameraMovement": movement,
            "duration": duration,
            "tokens": answer.usage.total(),
            "provider": answer.usage.provider,
        }))
    }
}
