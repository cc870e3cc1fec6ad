//! The workflows today's NanoStory frontend starts, beyond the seed's nine: their results, the
//! standalone params that replace NanoStory's row reads, the typed model fields resolved at
//! start, and the `think` flag passed through to every text request.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use nosyntask_domain::TaskError;
use nosyntask_engine::CancellationToken;
use nosyntask_engine::ports::{
    MediaModel, ModelCatalog, ModelInfo, TextModel, TextRequest, TextResponse,
};
use nosyntask_providers::{ModelConfig, default_models};
use serde_json::{Value, json};
use support::{run_step, run_workflow};

/// A catalog whose text models record the `think` flag of every request.
struct Recording {
    inner: Arc<dyn ModelCatalog>,
    thinks: Arc<Mutex<Vec<Option<bool>>>>,
}

struct RecordingText {
    inner: Arc<dyn TextModel>,
    thinks: Arc<Mutex<Vec<Option<bool>>>>,
}

#[async_trait]
impl TextModel for RecordingText {
    fn info(&self) -> &ModelInfo {
        self.inner.info()
    }

    async fn complete(
        &self,
        request: TextRequest,
        cancel: &CancellationToken,
    ) -> Result<TextResponse, TaskError> {
        self.thinks.lock().unwrap().push(request.think);
        self.inner.complete(request, cancel).await
    }
}

impl ModelCatalog for Recording {
    fn text(&self, name: Option<&str>) -> Result<Arc<dyn TextModel>, TaskError> {
        Ok(Arc::new(RecordingText {
            inner: self.inner.text(name)?,
            thinks: self.thinks.clone(),
        }))
    }
    fn image(&self, name: Option<&str>) -> Result<Arc<dyn MediaModel>, TaskError> {
        self.inner.image(name)
    }
    fn video(&self, name: Option<&str>) -> Result<Arc<dyn MediaModel>, TaskError> {
        self.inner.video(name)
    }
    fn list(&self) -> Vec<ModelInfo> {
        self.inner.list()
    }
}

/// The default simulated models and a second text model.
fn models() -> Vec<ModelConfig> {
    let mut models = default_models();
    models.push(ModelConfig::simulated(
        "DeepSeek Chat",
        nosyntask_engine::ports::ModelKind::Text,
        false,
    ));
    models
}

fn recording() -> (
    nosyntask_engine::Registry,
    Arc<Mutex<Vec<Option<bool>>>>,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let thinks = Arc::new(Mutex::new(Vec::new()));
    let catalog = Recording {
        inner: support::catalog(&models(), dir.path()),
        thinks: thinks.clone(),
    };
    (
        nosyntask_workflows::registry(Arc::new(catalog)),
        thinks,
        dir,
    )
}

fn with(params: &Value, key: &str, value: Value) -> Value {
    let mut params = params.clone();
    params[key] = value;
    params
}

/// Every workflow that calls a text model, with params that make it call one.
fn text_workflows() -> Vec<(&'static str, Value)> {
    vec![
        (
            "storyboard_generation",
            json!({"scriptContent": "林冲推门。"}),
        ),
        (
            "character_extraction",
            json!({"scriptContent": "林冲推门。"}),
        ),
        ("prompt_generate", json!({"description": "雪夜"})),
        ("script_only", json!({"title": "风雪山神庙"})),
        ("camera_run_generation", json!({"description": "林冲推门"})),
        ("smart_parse", json!({"apiDoc": "POST /v1/images {prompt}"})),
        ("single_frame_generation", json!({"description": "雪夜"})),
        (
            "character_views_generation",
            json!({"characterName": "林冲"}),
        ),
        ("scene_image_generation", json!({"sceneName": "山神庙"})),
        ("scene_video", json!({"description": "林冲推门"})),
        (
            "batch_scene_video_generation",
            json!({"storyboards": [{"id": 1, "description": "雪夜"}]}),
        ),
        (
            "script_to_storyboard",
            json!({"scriptContent": "林冲推门。"}),
        ),
    ]
}

/// Point 6: `think` reaches every text request as given; NanoStory's defaults (`true` for the
/// storyboard, camera runs and batch videos) apply when it is absent.
#[tokio::test]
async fn think_is_passed_through_to_every_text_request() {
    for (workflow, params) in text_workflows() {
        for think in [true, false] {
            let (registry, thinks, _dir) = recording();
            run_workflow(&registry, workflow, &with(&params, "think", json!(think))).await;
            let seen = thinks.lock().unwrap().clone();
            assert!(!seen.is_empty(), "{workflow} made no text request");
            assert!(
                seen.iter().all(|t| *t == Some(think)),
                "{workflow} think={think}: {seen:?}"
            );
        }
        let (registry, thinks, _dir) = recording();
        run_workflow(&registry, workflow, &params).await;
        let default = match workflow {
            "storyboard_generation" | "camera_run_generation" | "batch_scene_video_generation" => {
                Some(true)
            }
            _ => None,
        };
        let seen = thinks.lock().unwrap().clone();
        assert!(seen.iter().all(|t| *t == default), "{workflow}: {seen:?}");
    }
}

/// Point 1 at the workflow level: `prepare` resolves each used kind's field (the default when
/// absent), keeps `modelName` as the main kind's alias and names the field it refuses.
#[test]
fn models_are_resolved_at_start_naming_the_field() {
    let (registry, _, _dir) = recording();
    let prepare = |workflow: &str, params: Value| {
        let definition = registry.get(workflow).unwrap();
        let params = definition.params.validate(&params).unwrap();
        (definition.prepare.as_ref().expect("prepare"))(params)
    };
    for workflow in nosyntask_workflows::WORKFLOW_TYPES {
        assert!(
            registry.get(workflow).unwrap().prepare.is_some(),
            "{workflow}"
        );
    }
    let out = prepare("scene_video", json!({"prompt": "p"})).unwrap();
    assert_eq!(
        (&out["videoModel"], &out["textModel"], &out["modelName"]),
        (&json!("sim-video"), &json!("sim-text"), &json!("sim-video"))
    );
    let out = prepare(
        "storyboard_generation",
        json!({"scriptContent": "x", "textModel": "DeepSeek Chat"}),
    )
    .unwrap();
    assert_eq!(out["modelName"], "DeepSeek Chat");
    let out = prepare(
        "storyboard_generation",
        json!({"scriptContent": "x", "modelName": "DeepSeek Chat", "textModel": ""}),
    )
    .unwrap();
    assert_eq!(
        out["textModel"], "DeepSeek Chat",
        "an empty field is absent"
    );
    // Integers as JSON Schema counts them: `3.0` is 3, for a param and inside a shot.
    let out = prepare(
        "batch_scene_video_generation",
        json!({"storyboards": [{"id": 1, "prompt": "a", "duration": 4.0}], "duration": 3.0,
               "maxConcurrency": 2.0}),
    )
    .unwrap();
    assert_eq!(
        (&out["duration"], &out["maxConcurrency"]),
        (&json!(3), &json!(2))
    );
    for (workflow, params, field, says) in [
        (
            "storyboard_generation",
            json!({"scriptContent": "x", "textModel": "GPT-9"}),
            "textModel",
            "unknown model",
        ),
        (
            "frame_generation",
            json!({"prompt": "x", "imageModel": "DeepSeek Chat"}),
            "imageModel",
            "is a text model",
        ),
        (
            "scene_image_generation",
            json!({"sceneName": "x", "textModel": "sim-image"}),
            "textModel",
            "is a image model",
        ),
        (
            "prompt_generate",
            json!({"description": "x", "modelName": "nope"}),
            "modelName",
            "unknown model",
        ),
        // `modelName` is checked even where the typed field wins over it.
        (
            "storyboard_generation",
            json!({"scriptContent": "x", "textModel": "sim-text", "modelName": "GPT-9"}),
            "modelName",
            "unknown model",
        ),
        // A batch's shots are checked at start, before a task exists for any of them.
        (
            "batch_frame_generation",
            json!({"storyboards": [{"id": 1, "prompt": "a"}, {"id": 2}]}),
            "storyboards",
            "storyboards[1]: prompt or description is needed",
        ),
        (
            "batch_scene_video_generation",
            json!({"storyboards": [{"id": 1, "prompt": "a", "hasAction": "yes"}]}),
            "storyboards",
            "storyboards[0]",
        ),
    ] {
        let err = prepare(workflow, params).unwrap_err();
        assert_eq!(err.field, field, "{workflow}: {err}");
        assert!(err.message.contains(says), "{workflow}: {err}");
        assert!(err.message_zh.is_some(), "{workflow}");
    }
}

#[tokio::test]
async fn script_only_writes_an_episode() {
    let (registry, _, _dir) = recording();
    let results = run_workflow(
        &registry,
        "script_only",
        &json!({"title": "风雪山神庙", "description": "林冲在雪夜避难", "episodeNumber": "2"}),
    )
    .await;
    let result = &results[0];
    support::assert_keys(
        result,
        &[
            "content",
            "title",
            "tokens",
            "provider",
            "modelName",
            "episodeNumber",
        ],
    );
    assert!(!result["content"].as_str().unwrap().is_empty());
    assert_eq!(result["episodeNumber"], 2);
    assert_eq!(result["modelName"], "sim-text");
}

#[tokio::test]
async fn camera_run_and_smart_parse_answer_in_nanostorys_shapes() {
    let (registry, _, _dir) = recording();
    let camera = &run_workflow(
        &registry,
        "camera_run_generation",
        &json!({"storyboardId": "9", "description": "林冲推门而入", "shotType": "中景", "hasAction": true}),
    )
    .await[0];
    support::assert_keys(
        camera,
        &[
            "cameraRunPrompt",
            "storyboardId",
            "shotType",
            "cameraMovement",
            "duration",
            "tokens",
            "provider",
        ],
    );
    assert!(!camera["cameraRunPrompt"].as_str().unwrap().is_empty());
    assert_eq!(camera["storyboardId"], 9);
    assert_eq!(camera["duration"], 3);

    let parsed = &run_workflow(
        &registry,
        "smart_parse",
        &json!({"apiDoc": "curl https://api.example.com/v1/images -d '{\"prompt\": \"...\"}'"}),
    )
    .await[0];
    support::assert_keys(parsed, &["config", "tokens", "provider", "rawContent"]);
    assert!(parsed["config"]["baseUrl"].is_string(), "{parsed}");
    assert_eq!(
        serde_json::from_str::<Value>(parsed["rawContent"].as_str().unwrap()).unwrap(),
        parsed["config"]
    );
}

#[tokio::test]
async fn single_frame_paints_one_frame() {
    let (registry, _, _dir) = recording();
    let result = &run_workflow(
        &registry,
        "single_frame_generation",
        &json!({"storyboardId": 42, "description": "山神庙外大雪", "width": 640, "height": 360}),
    )
    .await[0];
    assert!(
        result["startFrame"]
            .as_str()
            .unwrap()
            .starts_with("/files/")
    );
    assert_eq!(result["endFrame"], Value::Null);
    assert_eq!(result["imageUrl"], result["startFrame"]);
    assert_eq!(
        (&result["imageModel"], &result["textModel"]),
        (&json!("sim-image"), &json!("sim-text"))
    );
}

/// `scene_image_generation` is NanoStory's two steps: the style analysis picks a reference from
/// the project's other scenes, the painting step sends it with the image request.
#[tokio::test]
async fn scene_image_analyses_the_style_then_paints_with_a_reference() {
    let (registry, _, _dir) = recording();
    let params = json!({
        "sceneId": "5", "sceneName": "山神庙", "description": "破庙",
        "allScenes": [
            {"id": 1, "name": "草料场", "description": "雪夜"},
            {"id": 2, "name": "酒店", "imageUrl": "/files/aa/ref.png"}
        ]
    });
    let results = run_workflow(&registry, "scene_image_generation", &params).await;
    assert_eq!(results.len(), 2);
    assert!(!results[0]["styleDescription"].as_str().unwrap().is_empty());
    assert_eq!(results[0]["referenceImageUrl"], "/files/aa/ref.png");
    assert_eq!(results[0]["referenceSceneId"], 2);
    let painted = &results[1];
    assert!(painted["imageUrl"].as_str().unwrap().starts_with("/files/"));
    assert_eq!(painted["referenceImageUrl"], "/files/aa/ref.png");
    assert_eq!(painted["styleDescription"], results[0]["styleDescription"]);
    assert_eq!(painted["sceneId"], 5);

    let mut previous = std::collections::BTreeMap::new();
    previous.insert(0, results[0].clone());
    let outcome = run_step(
        &registry,
        "scene_image_generation",
        &params,
        1,
        &previous,
        None,
    )
    .await;
    assert_eq!(outcome.input["referenceImageUrl"], "/files/aa/ref.png");
}

/// Point 5: the batches are fan-out steps, one item per shot carrying the shot, its place and
/// the shared params (never the whole list), at most `maxConcurrency` at once (NanoStory's
/// defaults 20 and 3).
#[test]
fn batches_fan_out_one_item_per_shot() {
    let (registry, _, _dir) = recording();
    for (workflow, default) in [
        ("batch_frame_generation", 20),
        ("batch_scene_video_generation", 3),
    ] {
        let definition = registry.get(workflow).unwrap();
        let fan_out = definition.steps[0].fan_out.as_ref().expect(workflow);
        assert_eq!(
            fan_out.on_item_failure,
            nosyntask_engine::ItemFailure::Continue
        );
        let params = definition
            .params
            .validate(&json!({"scriptId": 3, "storyboards": [
                {"id": 11, "prompt": "a"}, {"id": 12, "description": "b"}
            ]}))
            .unwrap();
        assert_eq!((fan_out.limit)(&params), default, "{workflow}");
        assert_eq!(
            (fan_out.limit)(&with(&params, "maxConcurrency", json!(5))),
            5
        );
        let ctx = nosyntask_engine::StepContext {
            job_params: params,
            previous_results: Default::default(),
            user_id: 1,
            project_id: 1,
            step_index: 0,
        };
        let items = (fan_out.items)(&ctx);
        assert_eq!(items.len(), 2, "{workflow}");
        assert_eq!(items[1]["shot"]["id"], 12);
        assert_eq!(items[1]["shotIndex"], 1);
        assert_eq!(items[1]["scriptId"], 3);
        assert!(items[1].get("storyboards").is_none(), "{}", items[1]);
    }
}

/// A shot whose task failed for good is a failed shot of the batch, with its id; the others
/// are kept. Every shot failing fails the step.
#[test]
fn a_failed_shot_is_reported_and_the_others_kept() {
    let (registry, _, _dir) = recording();
    let definition = registry.get("batch_frame_generation").unwrap();
    let summarize = definition.steps[0]
        .fan_out
        .as_ref()
        .and_then(|f| f.summarize.clone())
        .unwrap();
    let params = json!({"modelName": "sim-image", "storyboards": [{"id": 11}, {"id": 12}]});
    let result = summarize(
        &params,
        vec![
            json!({"storyboardId": 11, "status": "completed", "startFrame": "/files/a.png"}),
            json!({"error": "content policy"}),
        ],
    )
    .unwrap();
    assert_eq!(
        (&result["completed"], &result["failed"]),
        (&json!(1), &json!(1))
    );
    assert_eq!(
        result["results"][1],
        json!({"storyboardId": 12, "status": "failed", "error": "content policy"})
    );
    assert_eq!(result["model"], "sim-image");
    let err = summarize(&params, vec![json!({"error": "a"}), json!({"error": "b"})]).unwrap_err();
    assert!(
        err.to_string().contains("every shot of the batch failed"),
        "{err}"
    );
}

#[tokio::test]
async fn batch_frames_paint_each_shot_and_skip_finished_ones() {
    let (registry, _, _dir) = recording();
    let params = json!({
        "scriptId": "3",
        "maxConcurrency": 2,
        "storyboards": [
            {"id": 11, "prompt": "林冲拔刀", "hasAction": true},
            {"id": 12, "description": "大雪"},
            {"id": 13, "description": "庙门", "startFrame": "/files/old.png"}
        ]
    });
    let outcome = run_step(
        &registry,
        "batch_frame_generation",
        &params,
        0,
        &Default::default(),
        None,
    )
    .await;
    let result = outcome.result.unwrap();
    assert_eq!(
        (
            &result["total"],
            &result["completed"],
            &result["skipped"],
            &result["failed"]
        ),
        (&json!(3), &json!(2), &json!(1), &json!(0))
    );
    let results = result["results"].as_array().unwrap();
    assert_eq!(results[0]["storyboardId"], 11);
    assert_eq!(results[0]["type"], "frame");
    assert!(
        results[0]["endFrame"]
            .as_str()
            .unwrap()
            .starts_with("/files/")
    );
    assert_eq!(results[1]["type"], "single_frame");
    assert_eq!(results[1]["endFrame"], Value::Null);
    assert_eq!(results[2]["status"], "skipped");
    assert!(outcome.progress >= 90, "progress {}", outcome.progress);

    // A rerun after a crash finds every frame in the checkpoint.
    let again = run_step(
        &registry,
        "batch_frame_generation",
        &with(&params, "overwriteFrames", json!(true)),
        0,
        &Default::default(),
        outcome.checkpoint.clone(),
    )
    .await
    .result
    .unwrap();
    assert_eq!(again["results"][0]["startFrame"], results[0]["startFrame"]);
    assert_eq!(again["completed"], 3);
}

#[tokio::test]
async fn batch_videos_write_missing_prompts_and_make_each_clip() {
    let (registry, _, _dir) = recording();
    let params = json!({
        "scriptId": 3,
        "storyboards": [
            {"id": 21, "prompt": "林冲推门", "startFrame": "/files/a.png", "duration": 4},
            {"id": 22, "description": "风雪灌进庙里", "hasAction": true},
            {"id": 23, "description": "x", "videoUrl": "/files/done.gif"}
        ]
    });
    let result = &run_workflow(&registry, "batch_scene_video_generation", &params).await[0];
    assert_eq!(
        (&result["completed"], &result["skipped"]),
        (&json!(2), &json!(1))
    );
    let results = result["results"].as_array().unwrap();
    assert_eq!(results[0]["prompt"], "林冲推门");
    assert!(
        results[0]["videoUrl"]
            .as_str()
            .unwrap()
            .starts_with("/files/")
    );
    assert!(!results[1]["prompt"].as_str().unwrap().is_empty());
    assert_eq!(result["model"], "sim-video");
}
