//! `storyboard_generation` (分镜生成): a script becomes a list of shots.
//!
//! Phases: 5 % started, 10 % model chosen, 10–85 % the model writes the shots (a second request
//! when the answer was cut off, a repair request when it is not valid JSON), 85–99 % the shots are
//! checked and numbered.

mod prompt;

use std::sync::Arc;

use async_trait::async_trait;
use nosyntask_domain::{ParamsSchema, TaskError};
use nosyntask_engine::ports::{ModelCatalog, ModelKind};
use nosyntask_engine::{StepHandler, StepRun, WorkflowDefinition};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::common::input::{non_empty, parse_input};
use crate::common::language::Language;
use crate::common::llm::{JsonQuestion, ask_json};
use crate::common::models::{self, Uses};
use crate::common::steps::{TEXT_TIMEOUT, single_step};
use crate::common::{lenient, list, params};

/// The workflow type.
pub const WORKFLOW: &str = "storyboard_generation";

/// Shots get this length when the model gives none (seconds).
const DEFAULT_DURATION: f64 = 3.0;
/// Shot lengths are kept within what `scene_video` accepts.
const MIN_DURATION: f64 = 1.0;
const MAX_DURATION: f64 = 10.0;

/// The models it calls.
pub(crate) const USES: Uses = Uses::only(ModelKind::Text);

/// Params: **scriptContent**, scriptTitle, textModel (alias modelName), think=true.
pub(crate) fn params() -> ParamsSchema {
    let schema = ParamsSchema::new()
        .param(params::script("scriptContent").required())
        .param(params::text("scriptTitle", "Title of the script.").max_length(500))
        .param(params::think(Some(true)));
    models::declare(schema, USES)
}

pub(crate) fn definition(models: Arc<dyn ModelCatalog>) -> WorkflowDefinition {
    let params = params();
    let models_of_definition = models.clone();
    let handler = Arc::new(StoryboardHandler { models });
    let step = single_step("storyboard", "script", handler, &params, TEXT_TIMEOUT);
    WorkflowDefinition::new(WORKFLOW, "智能分镜", params)
        .step(step)
        .prepare(models::resolver(models_of_definition, USES))
}

/// One shot of the storyboard, as the frontend reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Shot {
    #[serde(default, deserialize_with = "lenient::number")]
    pub order: Option<f64>,
    #[serde(default, alias = "shot_type", deserialize_with = "lenient::string")]
    pub shot_type: String,
    #[serde(default, deserialize_with = "lenient::string")]
    pub description: String,
    #[serde(default, alias = "has_action", deserialize_with = "lenient::boolean")]
    pub has_action: bool,
    #[serde(default, alias = "start_frame", deserialize_with = "lenient::string")]
    pub start_frame: String,
    #[serde(default, alias = "end_frame", deserialize_with = "lenient::string")]
    pub end_frame: String,
    #[serde(default, deserialize_with = "lenient::string")]
    pub dialogue: String,
    #[serde(default, deserialize_with = "lenient::number")]
    pub duration: Option<f64>,
    #[serde(default, deserialize_with = "lenient::strings")]
    pub characters: Vec<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub location: String,
    #[serde(default, deserialize_with = "lenient::string")]
    pub emotion: String,
}

/// Typed shots out of the model's answer: shots without a description are dropped, the rest
/// numbered 1.. in the order given, with durations of 1–10 s.
pub(crate) fn shots_of(value: Value) -> Result<Vec<Shot>, String> {
    let shots: Vec<Shot> =
        list::typed_items(value, &["scenes", "shots", "storyboard"], "description")?;
    let total = shots.len();
    let shots: Vec<Shot> = shots
        .into_iter()
        .filter(|shot| !shot.description.is_empty())
        .enumerate()
        .map(|(index, mut shot)| {
            shot.order = Some((index + 1) as f64);
            shot.duration = Some(
                shot.duration
                    .filter(|d| *d > 0.0)
                    .unwrap_or(DEFAULT_DURATION)
                    .round()
                    .clamp(MIN_DURATION, MAX_DURATION),
            );
            shot
        })
        .collect();
    if shots.is_empty() {
        return Err(format!("none of the {total} shots has a description"));
    }
    Ok(shots)
}

/// The result's JSON for `shots`: integers for order and duration.
fn shot_json(shot: &Shot) -> Value {
    json!({
        "order": shot.order.unwrap_or_default() as u64,
        "shotType": shot.shot_type,
        "description": shot.description,
        "hasAction": shot.has_action,
        "startFrame": shot.start_frame,
        "endFrame": shot.end_frame,
        "dialogue": shot.dialogue,
        "duration": shot.duration.unwrap_or(DEFAULT_DURATION) as u64,
        "characters": shot.characters,
        "location": shot.location,
        "emotion": shot.emotion,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Input {
    script_content: String,
    script_title: Option<String>,
    model_name: Option<String>,
    think: Option<bool>,
}

/// Writes the storyboard of a script.
pub(crate) struct StoryboardHandler {
    pub(crate) models: Arc<dyn ModelCatalog>,
}

#[async_trait]
impl StepHandler for StoryboardHandler {
    async fn run(&self, run: StepRun) -> Result<Value, TaskError> {
        let input: Input = parse_input(run.input.clone())?;
        let script = non_empty(Some(&input.script_content))
            .ok_or_else(|| TaskError::permanent("scriptContent is empty"))?;
        run.progress.report(5.0);
        let model = self.models.text(input.model_name.as_deref())?;
        run.progress.report(10.0);
        let language = Language::detect(script);
        let question = JsonQuestion {
            task: "storyboard",
            system: prompt::system(language),
            user: prompt::user(non_empty(input.script_title.as_deref()), script, language),
            example: prompt::example(language),
            max_tokens: 8_192,
            temperature: 0.3,
            think: input.think,
        };
        let answer = ask_json(
            &model,
            &question,
            shots_of,
            &run.progress.scaled(10.0, 85.0),
            &run.cancel,
        )
        .await?;
        run.progress.report(95.0);
        let scenes: Vec<Value> = answer.value.iter().map(shot_json).collect();
        tracing::info!(
            shots = scenes.len(),
            tokens = answer.usage.total(),
            model = %answer.usage.model,
            "storyboard written"
        );
        Ok(json!({
            "scenes": scenes,
            "count": scenes.len(),
            "tokens": answer.usage.total(),
            "provider": answer.usage.provider,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shots_are_numbered_and_bounded() {
        let shots = shots_of(json!([
            {"order": 7, "description": "A", "duration": "12秒", "characters": "甲、乙"},
            {"order": 3, "description": ""},
            {"description": "B", "hasAction": "no", "startFrame": "s", "endFrame": "e"},
        ]))
        .unwrap();
        let json: Vec<Value> = shots.iter().map(shot_json).collect();
        assert_eq!(json[0]["order"], 1);
        assert_eq!(json[0]["duration"], 10);
        assert_eq!(json[0]["characters"], json!(["甲", "乙"]));
        assert_eq!(json[1]["order"], 2);
        assert_eq!(json[1]["duration"], 3);
        assert_eq!(json[1]["hasAction"], false);
        assert!(shots_of(json!([{"description": ""}])).is_err());
    }
}
