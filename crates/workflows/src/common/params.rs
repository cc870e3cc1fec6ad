//! Param declarations shared by the workflows' schemas.

use nosyntask_domain::{ParamKind, ParamSpec};
use serde_json::json;

/// Longest script accepted (characters): about a feature film; longer input is split upstream.
pub(crate) const MAX_SCRIPT_CHARS: usize = 200_000;
/// Longest description, prompt or name field accepted (characters).
pub(crate) const MAX_TEXT_CHARS: usize = 8_000;

/// A free-text param.
pub(crate) fn text(name: &str, description: &str) -> ParamSpec {
    ParamSpec::new(name, ParamKind::String, description).max_length(MAX_TEXT_CHARS)
}

/// The script a text workflow reads.
pub(crate) fn script(name: &str) -> ParamSpec {
    ParamSpec::new(
        name,
        ParamKind::String,
        "The script text (Chinese or English; the answer is in the script's language).",
    )
    .max_length(MAX_SCRIPT_CHARS)
}

/// An id of the NanoStory backend (character, scene, script, project).
pub(crate) fn id(name: &str, description: &str) -> ParamSpec {
    ParamSpec::new(name, ParamKind::Integer, description)
}

/// `think`: the text model's deep-thinking mode for this request, passed through to the
/// provider (ignored by models without one).
pub(crate) fn think(default: Option<bool>) -> ParamSpec {
    let spec = ParamSpec::new(
        "think",
        ParamKind::Boolean,
        "Ask the text model for its deep-thinking mode (ignored where the model has none).",
    );
    match default {
        Some(default) => spec.default_value(json!(default)),
        None => spec,
    }
}

/// A pixel size with its default.
pub(crate) fn pixels(name: &str, default: u32) -> ParamSpec {
    ParamSpec::new(
        name,
        ParamKind::Integer,
        &format!("Image {name} in pixels."),
    )
    .range(64.0, 4096.0)
    .default_value(json!(default))
}

/// The visual style (`动漫风格`, `watercolor`, ...).
pub(crate) fn style() -> ParamSpec {
    text("style", "Visual style, e.g. 动漫风格 or cinematic realism.").max_length(200)
}
