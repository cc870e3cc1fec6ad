//! Acceptance 1 of issue 13: for each provider the presets speak, the NanoStory workflow that
//! uses it runs to completion through a loopback stand-in of that provider (`standins`), which
//! refuses what the real API refuses. Text models write a storyboard whose first answer is cut
//! off at the token limit (the retry must stay within the model's limits); image models draw
//! character views and frames; video models make a scene video from a start frame. Reference
//! frames reach the provider as a URL it fetches (a public base URL served on loopback) or
//! inline. Each run also checks the usage the task records.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod standins;
mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use nosyntask_domain::TaskUsage;
use nosyntask_engine::UsageMeter;
use nosyntask_engine::ports::ArtifactStore;
use nosyntask_providers::{Catalog, LocalArtifacts, ModelConfig};
use serde_json::{Value, json};
use standins::{ChatRules, Seen};
use support::run_step;
use wiremock::MockServer;

/// The environment variable standing in for an API key (cargo sets it for tests).
const KEY_ENV: &str = "CARGO_PKG_NAME";

/// One provider's stand-in and the models configured against it.
struct Harness {
    provider: MockServer,
    artifacts: Arc<LocalArtifacts>,
    /// Serves the artifacts at the public base URL; kept alive with the harness.
    _files: Option<MockServer>,
    _dir: tempfile::TempDir,
}

impl Harness {
    /// `public`: the artifact store has a public base URL on loopback (providers fetch the
    /// reference frames from it); otherwise references are sent inline.
    async fn new(public: bool) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let mut artifacts = Arc::new(LocalArtifacts::new(dir.path(), "/files"));
        let mut files = None;
        if public {
            let server = standins::file_server(artifacts.clone()).await;
            artifacts = Arc::new(
                LocalArtifacts::new(dir.path(), "/files").with_public_base_url(Some(&server.uri())),
            );
            files = Some(server);
        }
        Harness {
            provider: MockServer::start().await,
            artifacts,
            _files: files,
            _dir: dir,
        }
    }

    fn uri(&self) -> String {
        self.provider.uri()
    }

    /// The model under test (the default of its kind), over the simulated defaults of the other
    /// kinds.
    fn registry(&self, model: Value) -> nosyntask_engine::Registry {
        let mut table = json!({"api_key_env": KEY_ENV, "default": true, "timeout_secs": 20});
        for (k, v) in model.as_object().unwrap() {
            table[k] = v.clone();
        }
        if table["adapter"] != "openai_compatible" && table["adapter"] != "openai_images" {
            let mut async_task = table
                .get("async_task")
                .cloned()
                .unwrap_or_else(|| json!({}));
            async_task["poll_interval_ms"] = json!(100);
            table["async_task"] = async_task;
        }
        let config: ModelConfig = serde_json::from_value(table).unwrap();
        let mut configs: Vec<ModelConfig> = nosyntask_providers::default_models()
            .into_iter()
            .filter(|m| m.kind != config.kind)
            .collect();
        configs.push(config);
        let artifacts: Arc<dyn ArtifactStore> = self.artifacts.clone();
        let catalog =
            Catalog::from_config(&configs, artifacts, Arc::new(Default::default())).unwrap();
        nosyntask_workflows::registry(Arc::new(catalog))
    }

    /// A frame in the artifact store, as frame_generation leaves it.
    async fn frame(&self) -> String {
        self.artifacts
            .put(standins::png(), "image/png", "frame")
            .await
            .unwrap()
    }
}

/// Runs every step of `workflow` as a worker would, each inside a usage meter; returns the
/// results and what the steps used.
async fn run(
    registry: &nosyntask_engine::Registry,
    workflow: &str,
    params: Value,
) -> (Vec<Value>, Option<TaskUsage>) {
    let steps = registry.get(workflow).unwrap().steps.len();
    let mut previous = BTreeMap::new();
    let mut usages = Vec::new();
    for step in 0..steps {
        let meter = UsageMeter::new();
        let outcome = meter
            .measure(run_step(registry, workflow, &params, step, &previous, None))
            .await;
        let result = outcome
            .result
            .unwrap_or_else(|err| panic!("{workflow} step {step}: {err}"));
        previous.insert(step as i32, result);
        usages.extend(meter.usage());
    }
    (previous.into_values().collect(), TaskUsage::sum(&usages))
}

// ---------------------------------------------------------------------------------------------
// Text: a storyboard whose first answer is cut off.
// ---------------------------------------------------------------------------------------------

const CUT: &str = "[{\"order\": 1, \"shotType\": \"远景\", \"description\": \"风雪中的山神庙\"}, {\"order\": 2, \"shotType\": \"中";
const WHOLE: &str = "[{\"order\": 1, \"shotType\": \"远景\", \"description\": \"风雪中的山神庙\"}, {\"order\": 2, \"shotType\": \"中景\", \"description\": \"林冲推门\"}]";

async fn storyboard(rules: ChatRules, model: Value) -> Vec<Value> {
    let h = Harness::new(false).await;
    let seen = standins::chat(&h.provider, "/v1", rules, CUT, WHOLE).await;
    let mut table = json!({"name": "Text", "kind": "text", "adapter": "openai_compatible",
                           "base_url": format!("{}/v1", h.uri()), "model": rules.model});
    for (k, v) in model.as_object().unwrap() {
        table[k] = v.clone();
    }
    let registry = h.registry(table);
    let (results, usage) = run(
        &registry,
        "storyboard_generation",
        json!({"scriptContent": "第一场 山神庙 夜\n林冲推开庙门。"}),
    )
    .await;
    assert_eq!(results[0]["count"], 2, "{}: {}", rules.model, results[0]);
    let bodies = bodies(&seen);
    assert_eq!(
        bodies.len(),
        2,
        "{}: one answer cut off, one retry",
        rules.model
    );
    // Both calls reported 100 + 50 tokens; the task records their sum.
    let usage = usage.expect("the storyboard's usage");
    assert_eq!(
        (usage.total.prompt_tokens, usage.total.completion_tokens),
        (Some(200), Some(100)),
        "{}",
        rules.model
    );
    bodies
}

fn bodies(seen: &Seen) -> Vec<Value> {
    seen.lock()
        .unwrap()
        .iter()
        .map(|(_, b)| b.clone())
        .collect()
}

#[tokio::test]
async fn openai_gpt4o_storyboard() {
    let bodies = storyboard(standins::GPT_4O, json!({"api_key_env": KEY_ENV})).await;
    assert!(
        bodies
            .iter()
            .all(|b| b["max_tokens"].as_u64().unwrap() <= 16_384)
    );
}

#[tokio::test]
async fn openai_gpt5_storyboard() {
    let bodies = storyboard(
        standins::GPT_5,
        json!({"profile": {"prices": {"input_per_million": 0.25, "output_per_million": 2.0}}}),
    )
    .await;
    assert!(
        bodies
            .iter()
            .all(|b| b.get("max_completion_tokens").is_some())
    );
}

#[tokio::test]
async fn deepseek_storyboard() {
    let bodies = storyboard(standins::DEEPSEEK, json!({})).await;
    // The retry asks for more, but never above DeepSeek's 8192.
    assert_eq!(bodies[1]["max_tokens"], 8192);
}

#[tokio::test]
async fn qwen_plus_storyboard() {
    storyboard(standins::QWEN_PLUS, json!({})).await;
}

#[tokio::test]
async fn qwen3_storyboard() {
    let bodies = storyboard(standins::QWEN3, json!({})).await;
    assert!(bodies.iter().all(|b| b["enable_thinking"] == false));
}

#[tokio::test]
async fn ollama_storyboard() {
    // Ollama takes no `enable_thinking`: the configuration removes the Qwen3 default, and its
    // own output limit applies (docs/providers.md's example).
    let bodies = storyboard(
        standins::OLLAMA,
        json!({"json_mode": false, "profile": {"drop_params": ["enable_thinking"], "max_output_tokens": 4096}}),
    )
    .await;
    assert!(bodies.iter().all(|b| b.get("enable_thinking").is_none()));
}

// ---------------------------------------------------------------------------------------------
// Images: character views and frames.
// ---------------------------------------------------------------------------------------------

async fn images(model: &'static str) {
    let h = Harness::new(false).await;
    let seen = standins::openai_images(&h.provider, model).await;
    let registry = h.registry(json!({
        "name": "Image", "kind": "image", "adapter": "openai_images",
        "base_url": format!("{}/v1", h.uri()), "model": model,
        "profile": {"prices": {"per_image": 0.04}}
    }));
    let (views, usage) = run(
        &registry,
        "character_views_generation",
        json!({"characterName": "林冲", "appearance": "豹头环眼"}),
    )
    .await;
    for key in ["frontViewUrl", "sideViewUrl", "backViewUrl"] {
        assert!(
            views[0][key].as_str().unwrap().starts_with("/files/"),
            "{model}: {}",
            views[0]
        );
    }
    let usage = usage.unwrap();
    assert_eq!(usage.models["Image"].images, Some(3), "{model}");
    // 3 images at 0.04.
    assert_eq!(usage.models["Image"].cost_micros, Some(120_000), "{model}");

    let (frames, _) = run(
        &registry,
        "frame_generation",
        json!({"prompt": "雪夜，山神庙外"}),
    )
    .await;
    assert!(
        frames[0]["startFrame"]
            .as_str()
            .unwrap()
            .starts_with("/files/")
    );
    // NanoStory's 512x768 characters and 1024x576 frames, fitted to the model's sizes.
    let sizes: Vec<Value> = bodies(&seen).iter().map(|b| b["size"].clone()).collect();
    assert!(sizes.len() >= 4, "{sizes:?}");
}

#[tokio::test]
async fn openai_gpt_image_1_views_and_frames() {
    images("gpt-image-1").await;
}

#[tokio::test]
async fn openai_dall_e_3_views_and_frames() {
    images("dall-e-3").await;
}

// ---------------------------------------------------------------------------------------------
// Video: a scene video from a start frame.
// ---------------------------------------------------------------------------------------------

/// Runs scene_video through the stand-in; returns the bodies it accepted and the usage.
async fn scene_video(
    h: &Harness,
    model: Value,
    params: Value,
    seen: &Seen,
) -> (Vec<Value>, TaskUsage) {
    let registry = h.registry(model);
    let (results, usage) = run(&registry, "scene_video", params).await;
    let url = results[0]["videoUrl"].as_str().unwrap_or_default();
    assert!(
        url.starts_with("/files/") && url.ends_with(".mp4"),
        "{}",
        results[0]
    );
    (bodies(seen), usage.expect("the video's usage"))
}

#[tokio::test]
async fn replicate_kling_scene_video_from_a_start_frame() {
    let h = Harness::new(true).await;
    let seen = standins::replicate(&h.provider).await;
    let frame = h.frame().await;
    // docs/providers.md's Kling on Replicate: `start_image` and `duration` in its input.
    let model = json!({"name": "Kling on Replicate", "kind": "video", "adapter": "replicate",
        "base_url": format!("{}/v1", h.uri()), "model": "kwaivgi/kling-v2.1",
        "async_task": {"submit": {"url": "{{base_url}}/models/kwaivgi/kling-v2.1/predictions",
            "body": {"input": {"prompt": "{{prompt}}", "start_image": "{{image_url}}", "duration": "{{duration}}"}}}}});
    let (bodies, usage) = scene_video(
        &h,
        model,
        json!({"prompt": "林冲推门", "startFrame": frame}),
        &seen,
    )
    .await;
    // The frame went as the public URL the stand-in fetched.
    assert!(
        bodies[0]["input"]["start_image"]
            .as_str()
            .unwrap()
            .starts_with("http://")
    );
    // Replicate reports run time only: the requested length is recorded.
    assert_eq!(usage.total.video_seconds, Some(5));
}

#[tokio::test]
async fn fal_kling_scene_video_from_a_start_frame() {
    let h = Harness::new(true).await;
    let seen = standins::fal(&h.provider).await;
    let frame = h.frame().await;
    let model = json!({"name": "Kling", "kind": "video", "adapter": "fal", "base_url": h.uri(),
        "model": "fal-ai/kling-video/v2.1/standard/image-to-video"});
    let (bodies, _) = scene_video(
        &h,
        model,
        json!({"prompt": "林冲推门", "startFrame": frame, "duration": 8}),
        &seen,
    )
    .await;
    assert_eq!(bodies[0]["duration"], "10", "8 s fitted to Kling's 5 / 10");
    assert!(
        bodies[0]["image_url"]
            .as_str()
            .unwrap()
            .starts_with("http://")
    );
}

#[tokio::test]
async fn dashscope_text_to_video() {
    let h = Harness::new(false).await;
    let seen = standins::dashscope(&h.provider).await;
    let model = json!({"name": "Wan t2v", "kind": "video", "adapter": "dashscope",
        "base_url": format!("{}/api/v1", h.uri()), "model": "wan2.1-t2v-turbo",
        "profile": {"prices": {"per_video_second": 0.24}}});
    let (bodies, usage) = scene_video(&h, model, json!({"prompt": "雪夜，山神庙外"}), &seen).await;
    assert!(bodies[0]["input"].get("img_url").is_none_or(Value::is_null));
    // DashScope reports `usage.video_duration`: 5 s at 0.24.
    assert_eq!(
        (usage.total.video_seconds, usage.total.cost_micros),
        (Some(5), Some(1_200_000))
    );
}

#[tokio::test]
async fn dashscope_first_and_last_frame_video() {
    let h = Harness::new(true).await;
    let seen = standins::dashscope(&h.provider).await;
    let first = h.frame().await;
    let last = h.frame().await;
    let model = json!({"name": "Wan keyframes", "kind": "video", "adapter": "dashscope",
        "base_url": format!("{}/api/v1", h.uri()), "model": "wan2.1-kf2v-plus"});
    let params = json!({"prompt": "林冲推门", "startFrame": first, "endFrame": last});
    let (bodies, _) = scene_video(&h, model, params, &seen).await;
    for field in ["first_frame_url", "last_frame_url"] {
        assert!(
            bodies[0]["input"][field]
                .as_str()
                .unwrap()
                .starts_with("http://"),
            "{field}"
        );
    }
}

#[tokio::test]
async fn openai_videos_scene_video_from_a_start_frame() {
    let h = Harness::new(true).await;
    let seen = standins::openai_videos(&h.provider).await;
    let frame = h.frame().await;
    let model = json!({"name": "Sora", "kind": "video", "adapter": "openai_videos",
        "base_url": format!("{}/v1", h.uri()), "model": "sora-2",
        "profile": {"prices": {"per_video_second": 0.1}}});
    let (bodies, usage) = scene_video(
        &h,
        model,
        json!({"prompt": "林冲推门", "startFrame": frame}),
        &seen,
    )
    .await;
    assert_eq!(bodies[0]["size"], "1280x720");
    // The API takes the image itself: inline even with a public URL.
    assert!(
        bodies[0]["input_reference"]["image_url"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,")
    );
    assert_eq!(
        (usage.total.video_seconds, usage.total.cost_micros),
        (Some(4), Some(400_000))
    );
}

#[tokio::test]
async fn a_stand_in_refuses_a_frame_it_cannot_fetch() {
    // The check the runs rely on: a server path means nothing to a provider.
    assert!(standins::fetch_image("/files/ab/cd.png").is_err());
    assert!(standins::fetch_image("http://127.0.0.1:9/none.png").is_err());
    assert!(standins::fetch_image("data:text/plain;base64,aGk=").is_err());
    let png = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, standins::png());
    assert!(standins::fetch_image(&format!("data:image/png;base64,{png}")).is_ok());
}

#[tokio::test]
async fn a_rerun_that_reuses_a_finished_video_still_records_its_usage() {
    let h = Harness::new(false).await;
    let seen = standins::dashscope(&h.provider).await;
    let registry = h.registry(
        json!({"name": "Wan t2v", "kind": "video", "adapter": "dashscope",
        "base_url": format!("{}/api/v1", h.uri()), "model": "wan2.1-t2v-turbo"}),
    );
    let params = json!({"prompt": "雪夜，山神庙外"});
    let first = run_step(&registry, "scene_video", &params, 0, &BTreeMap::new(), None).await;
    first.result.unwrap();
    // The attempt's result was lost (say the worker died before completing): the next attempt
    // starts from the checkpoint, reuses the stored video and pays nothing new, but the task
    // still used those 5 seconds.
    let meter = UsageMeter::new();
    let again = meter
        .measure(run_step(
            &registry,
            "scene_video",
            &params,
            0,
            &BTreeMap::new(),
            first.checkpoint,
        ))
        .await;
    again.result.unwrap();
    assert_eq!(bodies(&seen).len(), 1, "no second submission");
    assert_eq!(
        meter.usage().unwrap().models["Wan t2v"].video_seconds,
        Some(5)
    );
}
