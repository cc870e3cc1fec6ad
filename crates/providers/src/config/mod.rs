//! The `[[models]]` configuration (contract section 7) as plain data: the deserialized types
//! and accessors that need nothing but the entry itself. Unknown keys are rejected by serde.
//!
//! This module imports nothing else of the crate, so every other module may build on it: what
//! each adapter name means (the model kinds it serves, its default base URL, its preset
//! `async_task` table) is the adapter table in `presets.rs`, and the checks of the values, which
//! need that knowledge and the adapters', are in `validate.rs` (`validate_models`).

mod profile;

use std::collections::BTreeMap;
use std::time::Duration;

use nosyntask_engine::ports::ModelKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use profile::{Prices, ProfileConfig};

/// The concurrency limit of simulated models when none is configured.
const SIMULATED_CONCURRENCY: usize = nosyntask_engine::ports::UNLIMITED_CONCURRENCY;

/// Which adapter speaks to a model's provider. A new name needs a variant here and its row in
/// the adapter table (`presets::ADAPTERS`), which also gives it `kinds()` and
/// `default_base_url()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdapterKind {
    OpenaiCompatible,
    OpenaiImages,
    AsyncTask,
    Replicate,
    Fal,
    Dashscope,
    OpenaiVideos,
    Simulated,
}

impl AdapterKind {
    /// The adapter's name in the configuration (serde's spelling of the variant).
    pub fn as_str(self) -> &'static str {
        match self {
            AdapterKind::OpenaiCompatible => "openai_compatible",
            AdapterKind::OpenaiImages => "openai_images",
            AdapterKind::AsyncTask => "async_task",
            AdapterKind::Replicate => "replicate",
            AdapterKind::Fal => "fal",
            AdapterKind::Dashscope => "dashscope",
            AdapterKind::OpenaiVideos => "openai_videos",
            AdapterKind::Simulated => "simulated",
        }
    }
}

impl std::fmt::Display for AdapterKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Options of the `simulated` adapter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulatedConfig {
    /// How long one call takes; media calls report progress meanwhile.
    #[serde(default)]
    pub latency_ms: Option<u64>,
    /// Share of calls (0–1) that fail with a retryable error.
    #[serde(default)]
    pub failure_rate: f64,
    /// Mixed into the deterministic output, so two simulated models differ.
    #[serde(default)]
    pub seed: u64,
}

/// One `[[models]]` entry.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// What `jobParams.modelName` refers to.
    pub name: String,
    pub kind: ModelKind,
    pub adapter: AdapterKind,
    /// The provider's API base URL; presets have a default.
    #[serde(default)]
    pub base_url: Option<String>,
    /// The provider's model id; defaults to `name`.
    #[serde(default)]
    pub model: Option<String>,
    /// The environment variable holding the API key (read when a call is made).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Calls beyond this many at once wait (default 4; simulated models 100000).
    #[serde(default)]
    pub max_concurrency: Option<usize>,
    /// Calls a minute this model may start across every worker (the claim admits at most this
    /// many of its tasks per minute); none by default.
    #[serde(default)]
    pub requests_per_minute: Option<u32>,
    /// Limit of one call (default: text 180 s, image 600 s, video 1800 s).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    /// The model used for its kind when a job names none (else the first of its kind).
    #[serde(default)]
    pub default: bool,
    /// Extra HTTP headers sent with every request (values may use `{{api_key}}`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A JSON object merged into every request body (e.g. `{ enable_thinking = false }`).
    #[serde(default)]
    pub extra_body: Option<Value>,
    /// Ask for JSON with `response_format: json_object` when a caller wants JSON (default true).
    #[serde(default)]
    pub json_mode: Option<bool>,
    /// Sizes the provider accepts (`"1280x720"`); requests use the closest in aspect ratio.
    #[serde(default)]
    pub sizes: Vec<String>,
    /// Video durations (seconds) the provider accepts; requests use the closest.
    #[serde(default)]
    pub durations: Vec<u32>,
    /// Largest generated file downloaded (default: image 50 MiB, video 500 MiB).
    #[serde(default)]
    pub max_media_mb: Option<u64>,
    /// Submit/poll templates of `async_task` models; for presets, overrides of their defaults.
    #[serde(default)]
    pub async_task: Option<Value>,
    /// Options of `simulated` models.
    #[serde(default)]
    pub simulated: Option<SimulatedConfig>,
    /// The model's capability profile, over its family's preset (see [`crate::profile`]).
    #[serde(default)]
    pub profile: Option<ProfileConfig>,
}

impl std::fmt::Debug for ModelConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Header values may carry literal credentials; show only their names.
        f.debug_struct("ModelConfig")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("adapter", &self.adapter)
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key_env", &self.api_key_env)
            .field("max_concurrency", &self.max_concurrency)
            .field("requests_per_minute", &self.requests_per_minute)
            .field("timeout_secs", &self.timeout_secs)
            .field("default", &self.default)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl ModelConfig {
    /// A simulated model with default options.
    pub fn simulated(name: &str, kind: ModelKind, default: bool) -> Self {
        ModelConfig {
            name: name.to_owned(),
            kind,
            adapter: AdapterKind::Simulated,
            base_url: None,
            model: None,
            api_key_env: None,
            max_concurrency: None,
            requests_per_minute: None,
            timeout_secs: None,
            default,
            headers: BTreeMap::new(),
            extra_body: None,
            json_mode: None,
            sizes: Vec::new(),
            durations: Vec::new(),
            max_media_mb: None,
            async_task: None,
            simulated: Some(SimulatedConfig {
                latency_ms: None,
                failure_rate: 0.0,
                seed: 0,
            }),
            profile: None,
        }
    }

    /// The provider's model id.
    pub fn provider_model(&self) -> &str {
        self.model.as_deref().unwrap_or(&self.name)
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs.unwrap_or(match self.kind {
            ModelKind::Text => 180,
            ModelKind::Image => 600,
            ModelKind::Video => 1800,
        }))
    }

    /// The concurrency limit: as configured, else 4 (simulated models: practically unlimited,
    /// since they cost nothing).
    pub fn concurrency(&self) -> usize {
        self.max_concurrency.unwrap_or(match self.adapter {
            AdapterKind::Simulated => SIMULATED_CONCURRENCY,
            _ => 4,
        })
    }

    /// Largest generated file this model may download.
    pub fn max_media_bytes(&self) -> usize {
        let mb = self.max_media_mb.unwrap_or(match self.kind {
            ModelKind::Video => 500,
            _ => 50,
        });
        usize::try_from(mb.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX)
    }

    /// Reads the API key from the configured environment variable (at call time, so a key can
    /// be rotated without a restart). `Ok(None)` when no variable is configured; a configured
    /// variable that is unset or empty is a permanent error naming it.
    pub fn api_key(&self) -> Result<Option<String>, nosyntask_domain::TaskError> {
        let Some(var) = self.api_key_env.as_deref() else {
            return Ok(None);
        };
        match std::env::var(var) {
            Ok(key) if !key.trim().is_empty() => Ok(Some(key.trim().to_owned())),
            _ => Err(nosyntask_domain::TaskError::permanent(format!(
                "the API key variable {var} (api_key_env of model {:?}) is not set",
                self.name
            ))),
        }
    }
}

/// Parses `"1280x720"` (also `*` as separator).
pub fn parse_size(size: &str) -> Option<(u32, u32)> {
    let (w, h) = size.split_once(['x', 'X', '*'])?;
    let w = w.trim().parse::<u32>().ok().filter(|w| *w > 0)?;
    let h = h.trim().parse::<u32>().ok().filter(|h| *h > 0)?;
    Some((w, h))
}

/// The configuration used when none is given: offline simulated text, image and video models.
pub fn default_models() -> Vec<ModelConfig> {
    vec![
        ModelConfig::simulated("sim-text", ModelKind::Text, true),
        ModelConfig::simulated("sim-image", ModelKind::Image, true),
        ModelConfig::simulated("sim-video", ModelKind::Video, true),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn model(value: Value) -> Result<ModelConfig, String> {
        serde_json::from_value(value).map_err(|e| e.to_string())
    }

    #[test]
    fn unknown_keys_and_values_are_named() {
        let err = model(json!({"name": "x", "kind": "text", "adapter": "simulated", "colour": 1}))
            .unwrap_err();
        assert!(err.contains("unknown field `colour`"), "{err}");
        let err = model(json!({"name": "x", "kind": "audio", "adapter": "simulated"})).unwrap_err();
        assert!(err.contains("audio"), "{err}");
        let err = model(json!({"name": "x", "kind": "text", "adapter": "openai"})).unwrap_err();
        assert!(err.contains("openai_compatible"), "{err}");
    }

    #[test]
    fn debug_hides_header_values() {
        let mut m = ModelConfig::simulated("a", ModelKind::Text, true);
        m.headers.insert("X-Key".into(), "literal-secret".into());
        let text = format!("{m:?}");
        assert!(text.contains("X-Key") && !text.contains("literal-secret"));
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("1280x720"), Some((1280, 720)));
        assert_eq!(parse_size("1024*1024"), Some((1024, 1024)));
        assert_eq!(parse_size("0x5"), None);
    }
}
