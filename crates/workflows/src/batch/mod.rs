//! NanoStory's batch workflows over a script's shots: `batch_frame_generation` (批量分镜帧生成)
//! and `batch_scene_video_generation` (批量分镜视频生成).
//!
//! NanoStory's engine reads the shots of `scriptId` itself; standalone, the request carries them
//! in `storyboards: [{id, prompt | description, hasAction, startFrame, endFrame, imageUrl,
//! videoUrl, duration}]`, checked at start (422 naming `storyboards[i]`), and a request with
//! only a `scriptId` is refused naming `storyboards`.
//! Each is one fan-out step: every shot is its own task (its own attempts, checkpoint, time
//! limit and progress), at most `maxConcurrency` of a job's shots run at once (NanoStory's
//! defaults: 20 frames, 3 videos) and within the model's cluster-wide limit; a shot that fails
//! for good is reported in `results` and the others go on.
//!
//! Result: `{total, completed, skipped, failed, results: [{storyboardId, status, ...}], model}`.

pub(crate) mod frames;
pub(crate) mod videos;

use std::sync::Arc;
use std::time::Duration;

use nosyntask_domain::{ParamError, ParamKind, ParamSpec, ParamsSchema, TaskError};
use nosyntask_engine::ports::ModelCatalog;
use nosyntask_engine::{ItemFailure, StepContext, StepDefinition, StepHandler, WorkflowDefinition};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::common::input::{declared_params, lenient_count, non_empty};
use crate::common::models::{self, Uses};
use crate::common::params;
use crate::common::steps::ATTEMPTS;

/// The most shots one batch takes.
const MAX_SHOTS: usize = 500;

/// `storyboards`, required.
fn storyboards_param() -> ParamSpec {
    ParamSpec::new(
        "storyboards",
        ParamKind::Array,
        "The script's shots, [{id, prompt or description, hasAction, startFrame, endFrame, \
         imageUrl, videoUrl, duration}] (NanoStory's engine reads them by scriptId; standalone \
         they are required).",
    )
    .records()
    .items(shot_schema())
    .max_items(MAX_SHOTS)
    .required()
}

/// A [`Shot`] as JSON Schema: its fields' types, and a prompt or a description that is not
/// blank (one branch for each, as the document's schema model keeps either properties or
/// `anyOf`).
fn shot_schema() -> Value {
    let text = json!({"type": ["string", "null"]});
    let properties = json!({
        "prompt": text,
        "description": text,
        "hasAction": {"type": "boolean"},
        "startFrame": text,
        "endFrame": text,
        "imageUrl": text,
        "videoUrl": text,
        "duration": {"type": ["integer", "null"], "minimum": 0, "maximum": u32::MAX},
    });
    let branch = |field: &str| {
        let mut properties = properties.clone();
        properties[field] = json!({"type": "string", "pattern": "\\S"});
        json!({
            "type": "object",
            "additionalProperties": true,
            "properties": properties,
            "required": [field],
        })
    };
    json!({"anyOf": [branch("prompt"), branch("description")]})
}

fn script_id_param() -> ParamSpec {
    params::id(
        "scriptId",
        "The NanoStory script; one batch per script runs at a time.",
    )
}

fn max_concurrency_param(default: u32) -> ParamSpec {
    ParamSpec::new(
        "maxConcurrency",
        ParamKind::Integer,
        "Shots generated at the same time.",
    )
    .range(1.0, 50.0)
    .default_value(json!(default))
}

/// One shot of a batch.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Shot {
    #[serde(default)]
    id: Value,
    prompt: Option<String>,
    description: Option<String>,
    #[serde(default)]
    has_action: bool,
    start_frame: Option<String>,
    end_frame: Option<String>,
    image_url: Option<String>,
    video_url: Option<String>,
    #[serde(default, deserialize_with = "lenient_count")]
    duration: Option<u32>,
}

impl Shot {
    /// What the shot shows: its prompt, else its description.
    fn text(&self) -> Option<&str> {
        non_empty(self.prompt.as_deref()).or_else(|| non_empty(self.description.as_deref()))
    }

    /// A key for this shot's checkpoint entries.
    fn key(&self, index: usize) -> String {
        match &self.id {
            Value::Null => format!("#{index}"),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}

/// The shots of the params, each with something to show, or what is wrong with them (in
/// English and Chinese, since NanoStory's UI shows the message).
fn shots(params: &Value) -> Result<Vec<Shot>, ParamError> {
    let invalid = |message: String, zh: String| ParamError::new("storyboards", message).zh(zh);
    let items = params
        .get("storyboards")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("a list of shots is needed".into(), "需要分镜列表".into()))?;
    if items.len() > MAX_SHOTS {
        return Err(invalid(
            format!("at most {MAX_SHOTS} shots per batch"),
            format!("每批最多 {MAX_SHOTS} 个分镜"),
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let shot: Shot = serde_json::from_value(item.clone()).map_err(|err| {
                invalid(
                    format!("storyboards[{index}]: {err}"),
                    format!("第 {} 个分镜格式不正确：{err}", index + 1),
                )
            })?;
            if shot.text().is_none() {
                return Err(invalid(
                    format!("storyboards[{index}]: prompt or description is needed"),
                    format!("第 {} 个分镜缺少提示词或描述", index + 1),
                ));
            }
            Ok(shot)
        })
        .collect()
}

/// The start-time check of a batch: its shots, then its models.
fn prepare(
    models: Arc<dyn ModelCatalog>,
    uses: Uses,
) -> impl Fn(Value) -> Result<Value, ParamError> + Send + Sync + 'static {
    let resolve = models::resolver(models, uses);
    move |params| {
        shots(&params)?;
        resolve(params)
    }
}

/// What sets one batch workflow apart from the other.
struct Batch {
    workflow: &'static str,
    /// NanoStory's name of it.
    name: &'static str,
    task_type: &'static str,
    params: ParamsSchema,
    /// Makes one shot (its result has a `status`).
    handler: Arc<dyn StepHandler>,
    shot_timeout: Duration,
    /// `maxConcurrency` when the request gives none (NanoStory's default).
    default_concurrency: u32,
    uses: Uses,
}

impl Batch {
    /// The workflow: one fan-out step with one item per shot, whose input is the step's params
    /// without the list plus `shot` and `shotIndex`; one batch per script at a time.
    fn definition(self, models: Arc<dyn ModelCatalog>) -> WorkflowDefinition {
        let step_params = declared_params(&self.params);
        let default_concurrency = self.default_concurrency;
        let step = StepDefinition::new(self.task_type, "storyboard", self.handler)
            .input(declared_params(&self.params))
            .max_attempts(ATTEMPTS)
            .timeout(self.shot_timeout)
            .target_id_param("scriptId")
            .fan_out(
                move |ctx: &StepContext| shot_items(step_params(ctx)),
                move |params| {
                    frames::number(params, "maxConcurrency").unwrap_or(default_concurrency)
                },
                ItemFailure::Continue,
            )
            .summarize(summarize);
        WorkflowDefinition::new(self.workflow, self.name, self.params)
            .step(step)
            .unique_by_param("scriptId")
            .prepare(prepare(models, self.uses))
    }
}

/// The items' inputs of a batch whose step params are `params`.
fn shot_items(mut params: Value) -> Vec<Value> {
    let shots = params
        .as_object_mut()
        .and_then(|p| p.remove("storyboards"))
        .and_then(|s| match s {
            Value::Array(shots) => Some(shots),
            _ => None,
        })
        .unwrap_or_default();
    shots
        .into_iter()
        .enumerate()
        .map(|(index, shot)| {
            let mut item = params.clone();
            item["shot"] = shot;
            item["shotIndex"] = json!(index);
            item
        })
        .collect()
}

/// The shot of an item's input, with its place in the batch.
fn item(input: &Value) -> Result<(usize, Shot), TaskError> {
    let index = input
        .get("shotIndex")
        .and_then(Value::as_u64)
        .and_then(|i| usize::try_from(i).ok())
        .ok_or_else(|| TaskError::permanent("the item has no shotIndex"))?;
    let shot = serde_json::from_value(input.get("shot").cloned().unwrap_or(Value::Null))
        .map_err(|err| TaskError::permanent(format!("the item's shot: {err}")))?;
    Ok((index, shot))
}

/// The batch result of the shots' results, with the model's name. A shot whose task failed for
/// good has only its error there (the engine's `{"error"}`): it becomes a failed shot.
fn summarize(params: &Value, results: Vec<Value>) -> Result<Value, TaskError> {
    let results = results
        .into_iter()
        .enumerate()
        .map(|(index, result)| {
            if result.get("status").is_some() {
                return result;
            }
            let id = params["storyboards"][index]
                .get("id")
                .cloned()
                .unwrap_or(Value::Null);
            let error = result
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("the shot failed");
            json!({"storyboardId": id, "status": "failed", "error": error})
        })
        .collect();
    let mut result = summary(results)?;
    result["model"] = params.get("modelName").cloned().unwrap_or(Value::Null);
    Ok(result)
}

/// A boolean input, false when absent.
fn flag(input: &Value, key: &str) -> bool {
    input.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// The batch result of per-shot results (each with a `status`). Every shot failing fails the
/// step with the first shot's error.
fn summary(results: Vec<Value>) -> Result<Value, TaskError> {
    let count = |status: &str| results.iter().filter(|r| r["status"] == status).count();
    let (completed, skipped, failed) = (count("completed"), count("skipped"), count("failed"));
    if failed > 0 && completed == 0 && skipped == 0 {
        let first = results
            .iter()
            .find_map(|r| r["error"].as_str())
            .unwrap_or("every shot failed");
        return Err(TaskError::permanent(format!(
            "every shot of the batch failed; the first: {first}"
        )));
    }
    Ok(json!({
        "total": results.len(),
        "completed": completed,
        "skipped": skipped,
        "failed": failed,
        "results": results,
    }))
}
