//! NanoStory's batch workflows over a script's shots: `batch_frame_generation` (批量分镜帧生成)
//! and `batch_scene_video_generation` (批量分镜视频生成).
//!
//! NanoStory's engine reads the shots of `scriptId` itself; standalone, the request carries them
//! in `storyboards: [{id, prompt | description, hasAction, startFrame, endFrame, imageUrl,
//! videoUrl, duration}]`, and a request with only a `scriptId` is refused naming `storyboards`.
//! Each is one step that runs the shots at most `maxConcurrency` at a time (NanoStory's
//! defaults: 20 frames, 3 videos) inside its handler ([`crate::common::batch`]), because the
//! engine's fan-out steps are not used here yet (the step holds one worker slot and one model
//! slot for the whole batch); a shot that fails is reported in `results` and the others go on.
//!
//! Result: `{total, completed, skipped, failed, results: [{storyboardId, status, ...}]}`.

pub(crate) mod frames;
pub(crate) mod videos;

use std::future::Future;

use nosyntask_domain::{ParamKind, ParamSpec, TaskError};
use nosyntask_engine::{ProgressReporter, StepRun};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::common::batch::run_items;
use crate::common::input::non_empty;
use crate::common::params;

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
    .required()
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

/// The shots of the input, each with something to show.
fn shots(input: &Value) -> Result<Vec<Shot>, TaskError> {
    let items = input
        .get("storyboards")
        .and_then(Value::as_array)
        .ok_or_else(|| TaskError::permanent("storyboards: a list of shots is needed"))?;
    if items.len() > MAX_SHOTS {
        return Err(TaskError::permanent(format!(
            "storyboards: at most {MAX_SHOTS} shots per batch"
        )));
    }
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let shot: Shot = serde_json::from_value(item.clone())
                .map_err(|err| TaskError::permanent(format!("storyboards[{index}]: {err}")))?;
            if shot.text().is_none() {
                return Err(TaskError::permanent(format!(
                    "storyboards[{index}]: prompt or description is needed"
                )));
            }
            Ok(shot)
        })
        .collect()
}

/// Runs the shots at most `maxConcurrency` at a time (`default_concurrency` when the input
/// names none), progress from 2 % to 100 % as the shots' average, and sums the results up
/// with the model's name.
async fn run_shots<F, Fut>(
    run: &StepRun,
    shots: Vec<Shot>,
    default_concurrency: u32,
    model: &str,
    shot: F,
) -> Result<Value, TaskError>
where
    F: Fn(usize, Shot, ProgressReporter) -> Fut,
    Fut: Future<Output = Value>,
{
    let concurrency = frames::number(&run.input, "maxConcurrency").unwrap_or(default_concurrency);
    run.progress.report(2.0);
    let items: Vec<(usize, Shot)> = shots.into_iter().enumerate().collect();
    let results = run_items(
        items,
        concurrency as usize,
        &run.progress.scaled(2.0, 100.0),
        |(index, item), progress| shot(index, item, progress),
    )
    .await;
    let mut result = summary(results)?;
    result["model"] = json!(model);
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
