//! Profile presets for the common model families, matched on the adapter and the provider's
//! model id. Each value is the provider's documented limit; the comment says where it is from.

use nosyntask_engine::ports::ModelKind;
use serde_json::json;

use super::ProfileConfig;
use crate::config::AdapterKind;

/// A family's preset: profile values and the sizes / durations its provider accepts.
#[derive(Debug, Default)]
pub(super) struct Preset {
    pub config: ProfileConfig,
    pub sizes: &'static [&'static str],
    pub durations: &'static [u32],
}

fn text(max: Option<u32>, token_param: Option<&str>) -> ProfileConfig {
    ProfileConfig {
        max_output_tokens: max,
        token_param: token_param.map(str::to_owned),
        ..ProfileConfig::default()
    }
}

/// The preset of a model, or an empty one for unknown families.
pub(super) fn preset(adapter: AdapterKind, kind: ModelKind, model: &str) -> Preset {
    let id = model.to_ascii_lowercase();
    // `owner/name` ids (fal, Replicate, OpenRouter-style gateways): the family is in the name.
    let name = id.rsplit('/').next().unwrap_or(&id);
    match (adapter, kind) {
        (AdapterKind::OpenaiCompatible, _) => Preset {
            config: text_family(name),
            ..Preset::default()
        },
        (AdapterKind::OpenaiImages, _) => image_family(name),
        (AdapterKind::OpenaiVideos, _) => openai_videos(name),
        (_, ModelKind::Video) => video_family(&id),
        _ => Preset::default(),
    }
}

fn text_family(name: &str) -> ProfileConfig {
    let starts = |p: &str| name.starts_with(p);
    if starts("deepseek-chat") {
        // DeepSeek answers 400 "Invalid max_tokens value, the valid range of max_tokens is
        // [1, 8192]" above 8K (api-docs.deepseek.com, Models & Pricing: max output 8K).
        text(Some(8192), None)
    } else if starts("deepseek-reasoner") {
        // Reasoner: final answer up to 64K (Models & Pricing). Deep thinking is this model.
        text(Some(65536), None)
    } else if starts("gpt-5") || starts("o1") || starts("o3") || starts("o4") {
        // Reasoning models reject `max_tokens` ("Unsupported parameter: 'max_tokens' is not
        // supported with this model. Use 'max_completion_tokens' instead.") and any
        // temperature but the default ("Unsupported value: 'temperature' does not support 0.2
        // with this model. Only the default (1) value is supported.").
        let max = if starts("gpt-5") { 128_000 } else { 100_000 };
        ProfileConfig {
            drop_params: vec!["temperature".into()],
            think_on: Some(json!({"reasoning_effort": "high"})),
            think_off: Some(
                json!({"reasoning_effort": if starts("gpt-5") { "minimal" } else { "low" }}),
            ),
            ..text(Some(max), Some("max_completion_tokens"))
        }
    } else if starts("gpt-4o") {
        text(Some(16_384), None)
    } else if starts("gpt-4.1") {
        text(Some(32_768), None)
    } else if starts("qwen3") || starts("qwen-plus") || starts("qwen-flash") || starts("qwen-turbo")
    {
        // DashScope compatible mode answers 400 "parameter.enable_thinking must be set to false
        // for non-streaming calls" for the hybrid-thinking Qwen3 models; this adapter does not
        // stream, so thinking stays off and a `think` request cannot turn it on.
        ProfileConfig {
            params: Some(json!({"enable_thinking": false})),
            ..text(Some(8192), None)
        }
    } else if starts("qwen") {
        text(Some(8192), None)
    } else {
        ProfileConfig::default()
    }
}

fn image_family(name: &str) -> Preset {
    let sizes: &'static [&'static str] = if name.starts_with("gpt-image") {
        // images.generate `size`: "1024x1024, 1536x1024 (landscape), 1024x1536 (portrait), or
        // auto (default value) for the GPT image models" (openai-python, image_generate_params).
        &["1024x1024", "1536x1024", "1024x1536"]
    } else if name.starts_with("dall-e-3") {
        // "one of 1024x1024, 1792x1024, or 1024x1792 for dall-e-3".
        &["1024x1024", "1792x1024", "1024x1792"]
    } else if name.starts_with("dall-e-2") {
        // "one of 256x256, 512x512, or 1024x1024 for dall-e-2".
        &["256x256", "512x512", "1024x1024"]
    } else {
        &[]
    };
    Preset {
        sizes,
        ..Preset::default()
    }
}

fn openai_videos(name: &str) -> Preset {
    // POST /videos `size`: "allowed values: 720x1280, 1280x720, 1024x1792, 1792x1024. Defaults to
    // 720x1280" — sora-2 renders only the first two. `seconds`: 4, 8 or 12. Without a size
    // the video is portrait, so a shot that names none gets the landscape default.
    // `input_reference.image_url` takes a data URL: inline, so the frame always arrives.
    let sizes: &'static [&'static str] = if name.starts_with("sora-2-pro") {
        &["720x1280", "1280x720", "1024x1792", "1792x1024"]
    } else {
        &["720x1280", "1280x720"]
    };
    Preset {
        config: ProfileConfig {
            default_size: Some("1280x720".into()),
            inline_references: Some(true),
            ..ProfileConfig::default()
        },
        sizes,
        durations: &[4, 8, 12],
    }
}

fn video_family(id: &str) -> Preset {
    let durations: &'static [u32] = if id.contains("kling") {
        // Kling (fal, Replicate): `duration` "5" or "10".
        &[5, 10]
    } else if id.contains("wan2.1") || id.contains("wanx2.1") {
        // wan2.1 image-to-video: `duration` is fixed at 5 seconds.
        &[5]
    } else {
        &[]
    };
    Preset {
        durations,
        ..Preset::default()
    }
}
