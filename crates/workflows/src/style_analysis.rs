//! `scene_style_analysis`, step 0 of `scene_image_generation`: the text model reads the scene
//! and the project's other scenes (`allScenes`: `[{id, name, description, imageUrl}]`) and
//! describes the style the new picture must share with them; the picture of the scene it names
//! as closest (or else the first scene that has one) becomes the painting step's reference image.
//!
//! Result: `{styleDescription, referenceImageUrl, referenceSceneId, tokens, provider}`.

use std::sync::Arc;

use async_trait::async_trait;
use nosyntask_domain::{ParamKind, ParamSpec, TaskError};
use nosyntask_engine::ports::ModelCatalog;
use nosyntask_engine::{StepHandler, StepRun};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::common::input::{non_empty, parse_input};
use crate::common::language::Language;
use crate::common::lenient::{self, string_of};
use crate::common::llm::{JsonQuestion, ask_json};

/// The step's task type (NanoStory's).
pub(crate) const TASK_TYPE: &str = "scene_style_analysis";

/// The job params the step reads.
pub(crate) const INPUT: [&str; 6] = [
    "sceneName",
    "description",
    "environment",
    "allScenes",
    "textModel",
    "think",
];

/// More scenes than this are not sent to the model; the first ones are the project's look.
const MAX_SCENES: usize = 30;

/// `allScenes`: the project's other scenes.
pub(crate) fn all_scenes_param() -> ParamSpec {
    ParamSpec::new(
        "allScenes",
        ParamKind::Array,
        "The project's other scenes, [{id, name, description, imageUrl}], for a consistent style; \
         one with an imageUrl becomes the reference picture.",
    )
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Input {
    scene_name: Option<String>,
    description: Option<String>,
    environment: Option<String>,
    #[serde(default)]
    all_scenes: Vec<Value>,
    model_name: Option<String>,
    think: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Analysis {
    #[serde(default, alias = "style", deserialize_with = "lenient::string")]
    style_description: String,
    #[serde(default, deserialize_with = "lenient::string")]
    reference_scene_id: String,
}

fn analysis(value: Value) -> Result<Analysis, String> {
    let analysis: Analysis = serde_json::from_value(value).map_err(|err| err.to_string())?;
    if analysis.style_description.is_empty() {
        return Err("the answer has no \"styleDescription\"".to_owned());
    }
    Ok(analysis)
}

/// The picture of the scene `id`, else of the first scene with one.
fn reference<'a>(scenes: &'a [Value], id: &str) -> Option<(&'a Value, String)> {
    let url =
        |scene: &Value| non_empty(scene.get("imageUrl").and_then(Value::as_str)).map(str::to_owned);
    scenes
        .iter()
        .filter(|scene| scene.get("id").map(string_of).as_deref() == Some(id))
        .chain(scenes.iter())
        .find_map(|scene| url(scene).map(|u| (scene, u)))
}

pub(crate) struct StyleAnalysisHandler {
    pub(crate) models: Arc<dyn ModelCatalog>,
}

#[async_trait]
impl StepHandler for StyleAnalysisHandler {
    async fn run(&self, run: StepRun) -> Result<Value, TaskError> {
        let input: Input = parse_input(run.input.clone())?;
        run.progress.report(5.0);
        let model = self.models.text(input.model_name.as_deref())?;
        let scene = [&input.scene_name, &input.description, &input.environment]
            .iter()
            .filter_map(|v| non_empty(v.as_deref()))
            .collect::<Vec<_>>()
            .join("\n");
        let language = Language::detect(&scene);
        let others: Vec<String> = input
            .all_scenes
            .iter()
            .take(MAX_SCENES)
            .map(|s| {
                let field = |key: &str| s.get(key).map(string_of).unwrap_or_default();
                format!(
                    "- id {}: {} {}",
                    field("id"),
                    field("name"),
                    field("description")
                )
            })
            .collect();
        let question = JsonQuestion {
            task: "scene style analysis",
            system: format!(
                "You are the art director of an animated series. Describe in one or two \
                 sentences the visual style (palette, rendering, era, light) a new location \
                 picture must share with the series' other locations, and name the id of the \
                 listed location closest to it. Answer JSON only. {}",
                language.instruction()
            ),
            user: format!(
                "{}\n\n{}\n{}",
                scene,
                language.pick("其他场景：", "Other locations:"),
                if others.is_empty() {
                    language.pick("（无）", "(none)").to_owned()
                } else {
                    others.join("\n")
                }
            ),
            example: json!({
                "styleDescription": language.pick(
                    "暖色调水彩质感，柔和逆光，与其他场景一致的古风建筑细节",
                    "warm watercolour palette, soft back light, the same period architecture"
                ),
                "referenceSceneId": "",
            }),
            max_tokens: 800,
            temperature: 0.3,
            think: input.think,
        };
        let answer = ask_json(
            &model,
            &question,
            analysis,
            &run.progress.scaled(5.0, 95.0),
            &run.cancel,
        )
        .await?;
        let picked = reference(&input.all_scenes, &answer.value.reference_scene_id);
        Ok(json!({
            "styleDescription": answer.value.style_description,
            "referenceImageUrl": picked.as_ref().map(|(_, url)| url.clone()),
            "referenceSceneId": picked.and_then(|(scene, _)| scene.get("id").cloned()),
            "tokens": answer.usage.total(),
            "provider": answer.usage.provider,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_named_scene_or_the_first_with_a_picture_is_the_reference() {
        let scenes = vec![
            json!({"id": 1, "name": "a"}),
            json!({"id": 2, "imageUrl": "http://x/2.png"}),
            json!({"id": 3, "imageUrl": "http://x/3.png"}),
        ];
        assert_eq!(reference(&scenes, "3").unwrap().1, "http://x/3.png");
        assert_eq!(reference(&scenes, "1").unwrap().1, "http://x/2.png");
        assert_eq!(reference(&scenes, "").unwrap().1, "http://x/2.png");
        assert!(reference(&scenes[..1], "1").is_none());
    }
}
