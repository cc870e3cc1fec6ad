//! Profiles of the common families, and how a body is fitted to them.

use nosyntask_engine::ports::ModelKind;
use serde_json::json;

use super::*;
use crate::config::AdapterKind;

fn text_model(id: &str, profile: Option<Value>) -> ModelConfig {
    let mut model = ModelConfig::simulated("m", ModelKind::Text, true);
    model.adapter = AdapterKind::OpenaiCompatible;
    model.simulated = None;
    model.model = Some(id.into());
    model.profile = profile.map(|p| serde_json::from_value(p).unwrap());
    model
}

fn fitted(id: &str, profile: Option<Value>, max: Option<u32>, think: Option<bool>) -> Value {
    let model = text_model(id, profile);
    let mut body = json!({"model": id, "temperature": 0.2, "stream": false});
    Profile::for_model(&model).fit_text_body(&mut body, max, think, model.extra_body.as_ref());
    body
}

#[test]
fn token_limits_are_fitted_per_family() {
    let deepseek = fitted("deepseek-chat", None, Some(16_384), None);
    assert_eq!(deepseek["max_tokens"], 8192);
    let gpt5 = fitted("gpt-5-mini", None, Some(16_384), None);
    assert_eq!(gpt5["max_completion_tokens"], 16_384);
    assert!(gpt5.get("max_tokens").is_none() && gpt5.get("temperature").is_none());
    let o3 = fitted("o3-mini", None, Some(200_000), None);
    assert_eq!(o3["max_completion_tokens"], 100_000);
    let unknown = fitted("llama3.1:8b", None, Some(16_384), None);
    assert_eq!(unknown["max_tokens"], 16_384);
    assert_eq!(
        fitted("deepseek-chat", None, None, None).get("max_tokens"),
        None
    );
}

#[test]
fn qwen3_thinking_is_off_by_default_and_configuration_can_remove_it() {
    assert_eq!(
        fitted("qwen3-32b", None, None, None)["enable_thinking"],
        false
    );
    // A `think` request cannot switch it on without streaming.
    assert_eq!(
        fitted("qwen3-32b", None, None, Some(true))["enable_thinking"],
        false
    );
    let removed = fitted(
        "qwen3-32b",
        Some(json!({"drop_params": ["enable_thinking"]})),
        None,
        None,
    );
    assert!(removed.get("enable_thinking").is_none(), "{removed}");
    assert!(
        fitted("deepseek-chat", None, None, None)
            .get("enable_thinking")
            .is_none()
    );
}

#[test]
fn think_maps_through_the_profile_and_is_ignored_where_unsupported() {
    assert_eq!(
        fitted("gpt-5", None, None, Some(true))["reasoning_effort"],
        "high"
    );
    assert_eq!(
        fitted("gpt-5", None, None, Some(false))["reasoning_effort"],
        "minimal"
    );
    let deepseek = json!({"think_on": {"model": "deepseek-reasoner"}});
    assert_eq!(
        fitted("deepseek-chat", Some(deepseek), None, Some(true))["model"],
        "deepseek-reasoner"
    );
    let plain = fitted("llama3", None, None, Some(true));
    assert_eq!(
        plain,
        json!({"model": "llama3", "temperature": 0.2, "stream": false})
    );
}

#[test]
fn configuration_overrides_the_preset() {
    let body = fitted(
        "deepseek-chat",
        Some(
            json!({"max_output_tokens": 4096, "token_param": "max_completion_tokens", "params": {"top_p": 0.9}}),
        ),
        Some(16_384),
        None,
    );
    assert_eq!(body["max_completion_tokens"], 4096);
    assert_eq!(body["top_p"], 0.9);
    assert!(body.get("max_tokens").is_none());
    let model = text_model("x", Some(json!({"token_param": "max_length"})));
    assert!(model.profile.as_ref().unwrap().check().is_err());
}

#[test]
fn media_families_have_their_sizes_and_durations() {
    let media = |adapter, kind, id: &str| {
        let mut model = ModelConfig::simulated("m", kind, true);
        model.adapter = adapter;
        model.simulated = None;
        model.model = Some(id.into());
        Profile::for_model(&model)
    };
    let gpt_image = media(AdapterKind::OpenaiImages, ModelKind::Image, "gpt-image-1");
    assert_eq!(
        gpt_image.sizes,
        vec![(1024, 1024), (1536, 1024), (1024, 1536)]
    );
    let dalle = media(AdapterKind::OpenaiImages, ModelKind::Image, "dall-e-3");
    assert_eq!(dalle.sizes, vec![(1024, 1024), (1792, 1024), (1024, 1792)]);
    let sora = media(AdapterKind::OpenaiVideos, ModelKind::Video, "sora-2");
    assert_eq!(sora.default_size, Some((1280, 720)));
    assert!(sora.inline_references);
    assert_eq!(sora.durations, vec![4, 8, 12]);
    let kling = media(
        AdapterKind::Fal,
        ModelKind::Video,
        "fal-ai/kling-video/v2.1/standard/image-to-video",
    );
    assert_eq!(kling.durations, vec![5, 10]);
    let wan = media(AdapterKind::Dashscope, ModelKind::Video, "wan2.1-i2v-turbo");
    assert_eq!(wan.durations, vec![5]);
}
