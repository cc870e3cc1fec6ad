//! Validation of the `[[models]]` configuration: each entry's values and the list as a whole,
//! reporting bad values naming the model and the key.
//!
//! Layered above the configuration data (`crate::config`), the adapter table
//! (`crate::presets`) and the adapters: checking an entry needs what its adapter name serves and
//! defaults to, and for `async_task` models and presets the parsed submit/poll spec. Keeping
//! these checks out of `config` is what keeps the module graph acyclic.

use std::collections::{BTreeMap, HashSet};

use crate::adapters::async_task::AsyncTaskSpec;
use crate::config::{AdapterKind, ModelConfig, parse_size};
use crate::template::{BUILTIN_VARS, check};

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

// A method of the configuration type, as before, but defined here: its checks read the adapter
// table and the async_task spec, which the plain configuration module must not import.
impl ModelConfig {
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
            check(value, BUILTIN_VARS)
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

#[cfg(test)]
mod tests {
    use nosyntask_engine::ports::ModelKind;
    use serde_json::{Value, json};

    use super::*;
    use crate::config::default_models;
    use crate::presets::ADAPTERS;

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
    fn every_preset_is_a_valid_async_task_config() {
        for row in ADAPTERS.iter().filter(|row| row.async_task.is_some()) {
            let adapter = row.adapter;
            for kind in adapter.kinds() {
                let mut model = ModelConfig::simulated("m", *kind, false);
                model.adapter = adapter;
                model.simulated = None;
                model.model = Some("owner/name".into());
                AsyncTaskSpec::from_model(&model)
                    .unwrap_or_else(|e| panic!("{adapter} {kind}: {e:?}"));
            }
        }
    }
}
