//! The `[[models]]` configuration (contract section 7) and its validation. Unknown keys are
//! rejected by serde; [`validate_models`] reports bad values naming the model and the key.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use nosyntask_engine::ports::ModelKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::adapters::async_task::AsyncTaskSpec;
use crate::profile::ProfileConfig;

/// The concurrency limit of simulated models when none is configured.
const SIMULATED_CONCURRENCY: usize = nosyntask_engine::ports::UNLIMITED_CONCURRENCY;

/// Which adapter speaks to a model's provider.
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

    /// The kinds of model this adapter can serve.
    pub fn kinds(self) -> &'static [ModelKind] {
        match self {
            AdapterKind::OpenaiCompatible => &[ModelKind::Text],
            AdapterKind::OpenaiImages => &[ModelKind::Image],
            AdapterKind::OpenaiVideos => &[ModelKind::Video],
            AdapterKind::AsyncTask
            | AdapterKind::Replicate
            | AdapterKind::Fal
            | AdapterKind::Dashscope => &[ModelKind::Image, ModelKind::Video],
            AdapterKind::Simulated => &[ModelKind::Text, ModelKind::Image, ModelKind::Video],
        }
    }

    /// The provider's public API base URL, for adapters that have one.
    pub fn default_base_url(self) -> Option<&'static str> {
        match self {
            AdapterKind::OpenaiCompatible
            | AdapterKind::OpenaiImages
            | AdapterKind::OpenaiVideos => Some("https://api.openai.com/v1"),
            AdapterKind::Replicate => Some("https://api.replicate.com/v1"),
            AdapterKind::Fal => Some("https://queue.fal.run"),
            AdapterKind::Dashscope => Some("https://dashscope.aliyuncs.com/api/v1"),
            AdapterKind::AsyncTask | AdapterKind::Simulated => None,
        }
    }

    fn is_preset(self) -> bool {
        matches!(
            self,
            AdapterKind::Replicate
                | AdapterKind::Fal
                | AdapterKind::Dashscope
                | AdapterKind::OpenaiVideos
        )
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

/// A configuration problem, naming the model and the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("models[{index}] ({name:?}): {key}: {message}")]
    Invalid {
        index: usize,
        name: String,
        key: String,
        message: String,
    },
    #[error("models: {0}")]
    Models(String),
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

    /// The base URL without a trailing slash (the preset's default when not configured).
    pub fn base(&self) -> String {
        self.base_url
            .as_deref()
            .or(self.adapter.default_base_url())
            .unwrap_or("")
            .trim_end_matches('/')
            .to_owned()
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

    fn invalid(&self, index: usize, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            index,
            name: self.name.clone(),
            key: key.to_owned(),
            message: message.into(),
        }
    }

    /// Checks the values of this entry (`index` is its position, for messages).
    pub fn validate(&self, index: usize) -> Result<(), ConfigError> {
        if self.name.trim().is_empty() {
            return Err(self.invalid(index, "name", "must not be empty"));
        }
        if !self.adapter.kinds().contains(&self.kind) {
            let kinds: Vec<&str> = self.adapter.kinds().iter().map(|k| k.as_str()).collect();
            return Err(self.invalid(
                index,
                "kind",
                format!(
                    "adapter {} serves {} models, not {}",
                    self.adapter,
                    kinds.join("/"),
                    self.kind
                ),
            ));
        }
        if self.max_concurrency == Some(0) {
            return Err(self.invalid(index, "max_concurrency", "must be at least 1"));
        }
        if self.requests_per_minute == Some(0) {
            return Err(self.invalid(index, "requests_per_minute", "must be at least 1"));
        }
        if let Some(t) = self.timeout_secs
            && !(1..=7 * 24 * 3600).contains(&t)
        {
            return Err(self.invalid(index, "timeout_secs", format!("must be 1–604800, got {t}")));
        }
        if self.max_media_mb == Some(0) {
            return Err(self.invalid(index, "max_media_mb", "must be at least 1"));
        }
        if self.adapter != AdapterKind::Simulated {
            let base = self.base();
            if base.is_empty() {
                return Err(self.invalid(index, "base_url", "is required for this adapter"));
            }
            if !(base.starts_with("http://") || base.starts_with("https://"))
                || reqwest::Url::parse(&base).is_err()
            {
                return Err(self.invalid(
                    index,
                    "base_url",
                    format!("must be an http(s) URL, got {base:?}"),
                ));
            }
        }
        if let Some(var) = &self.api_key_env
            && (var.is_empty() || var.contains('=') || var.contains('\0'))
        {
            return Err(self.invalid(
                index,
                "api_key_env",
                format!("{var:?} is not a variable name"),
            ));
        }
        for (name, value) in &self.headers {
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(self.invalid(
                    index,
                    "headers",
                    format!("{name:?} is not a header name"),
                ));
            }
            crate::template::check(value, crate::template::BUILTIN_VARS)
                .map_err(|m| self.invalid(index, &format!("headers.{name}"), m))?;
        }
        if let Some(extra) = &self.extra_body
            && !extra.is_object()
        {
            return Err(self.invalid(index, "extra_body", "must be a table"));
        }
        for size in &self.sizes {
            if parse_size(size).is_none() {
                return Err(self.invalid(
                    index,
                    "sizes",
                    format!("{size:?} is not WIDTHxHEIGHT (e.g. \"1280x720\")"),
                ));
            }
        }
        if self.durations.contains(&0) {
            return Err(self.invalid(index, "durations", "must be positive"));
        }
        let async_capable = self.adapter == AdapterKind::AsyncTask || self.adapter.is_preset();
        if self.async_task.is_some() && !async_capable {
            return Err(self.invalid(
                index,
                "async_task",
                format!(
                    "only async_task and preset adapters take it, not {}",
                    self.adapter
                ),
            ));
        }
        if self.simulated.is_some() && self.adapter != AdapterKind::Simulated {
            return Err(self.invalid(
                index,
                "simulated",
                format!("not an option of {}", self.adapter),
            ));
        }
        if let Some(sim) = &self.simulated
            && !(0.0..=1.0).contains(&sim.failure_rate)
        {
            return Err(self.invalid(
                index,
                "simulated.failure_rate",
                format!("must be between 0 and 1, got {}", sim.failure_rate),
            ));
        }
        if let Some(profile) = &self.profile {
            profile
                .check()
                .map_err(|(key, message)| self.invalid(index, &key, message))?;
        }
        if async_capable {
            AsyncTaskSpec::from_model(self)
                .map_err(|(key, message)| self.invalid(index, &key, message))?;
        }
        Ok(())
    }
}

/// Parses `"1280x720"` (also `*` as separator).
pub fn parse_size(size: &str) -> Option<(u32, u32)> {
    let (w, h) = size.split_once(['x', 'X', '*'])?;
    let w = w.trim().parse::<u32>().ok().filter(|w| *w > 0)?;
    let h = h.trim().parse::<u32>().ok().filter(|h| *h > 0)?;
    Some((w, h))
}

/// Checks every entry and the list as a whole: names unique, at most one default per kind.
pub fn validate_models(models: &[ModelConfig]) -> Result<(), ConfigError> {
    let mut names = HashSet::new();
    let mut defaults: BTreeMap<&str, &str> = BTreeMap::new();
    for (index, model) in models.iter().enumerate() {
        model.validate(index)?;
        if !names.insert(model.name.as_str()) {
            return Err(model.invalid(index, "name", "is used by another model"));
        }
        if model.default
            && let Some(other) = defaults.insert(model.kind.as_str(), model.name.as_str())
        {
            return Err(model.invalid(
                index,
                "default",
                format!("{other:?} is already the default {} model", model.kind),
            ));
        }
    }
    Ok(())
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
    fn the_contract_example_parses() {
        let m = model(json!({
            "name": "DeepSeek Chat", "kind": "text", "adapter": "openai_compatible",
            "base_url": "https://api.deepseek.com/v1", "model": "deepseek-chat",
            "api_key_env": "DEEPSEEK_API_KEY", "max_concurrency": 10, "timeout_secs": 180,
            "default": true
        }))
        .unwrap();
        assert!(validate_models(&[m]).is_ok());
        assert!(validate_models(&default_models()).is_ok());
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
    fn bad_values_name_model_and_key() {
        let base =
            json!({"name": "Wan", "kind": "video", "adapter": "dashscope", "api_key_env": "K"});
        let check = |patch: Value| {
            let mut v = base.clone();
            for (k, val) in patch.as_object().unwrap() {
                v[k] = val.clone();
            }
            validate_models(&[model(v).unwrap()])
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            check(json!({"max_concurrency": 0})),
            "models[0] (\"Wan\"): max_concurrency: must be at least 1"
        );
        assert!(check(json!({"base_url": "ftp://x"})).contains("base_url"));
        assert!(
            check(json!({"kind": "text"})).contains("kind: adapter dashscope serves image/video")
        );
        assert!(check(json!({"sizes": ["big"]})).contains("sizes"));
        assert!(check(json!({"async_task": {"poll_interval_ms": "fast"}})).contains("async_task"));
        assert!(check(json!({"simulated": {"failure_rate": 0.5}})).contains("simulated"));
        assert!(
            check(json!({"profile": {"token_param": "max_output"}}))
                .contains("profile.token_param: must be max_tokens or max_completion_tokens")
        );
        assert!(
            check(json!({"profile": {"default_size": "wide"}})).contains("profile.default_size")
        );

        let two_defaults = vec![
            ModelConfig::simulated("a", ModelKind::Text, true),
            ModelConfig::simulated("b", ModelKind::Text, true),
        ];
        assert!(
            validate_models(&two_defaults)
                .unwrap_err()
                .to_string()
                .contains("default")
        );
        let same_name = vec![
            ModelConfig::simulated("a", ModelKind::Text, false),
            ModelConfig::simulated("a", ModelKind::Image, false),
        ];
        assert!(
            validate_models(&same_name)
                .unwrap_err()
                .to_string()
                .contains("name")
        );
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
