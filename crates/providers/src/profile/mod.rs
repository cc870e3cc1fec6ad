//! Capability profiles: what a model accepts, so requests are fitted to it instead of being
//! answered with a 400. A profile comes from the model family's preset ([`families`]) with the
//! model's `[models.profile]` table (and its `sizes` / `durations` keys) over it.
//!
//! Text models: the largest output the provider allows, the name of the token parameter
//! (`max_tokens` or `max_completion_tokens`), default parameters (Qwen3's
//! `enable_thinking = false`), parameters never sent, and how deep thinking is switched.
//! Media models: accepted sizes and durations, the size sent when a request names none, whether
//! reference images are sent inline, and prices for the cost of a call.

mod families;
pub mod usage;

use serde_json::Value;

use crate::config::{ModelConfig, parse_size};
use crate::merge::merge_json;

// The tables are configuration data (`crate::config`); this module gives them their meaning.
pub use crate::config::ProfileConfig;
pub use usage::Prices;

impl ProfileConfig {
    /// Lays `other` over `self`: its set keys win; `drop_params` lists are joined.
    fn overlay(mut self, other: &ProfileConfig) -> ProfileConfig {
        let o = other.clone();
        self.max_output_tokens = o.max_output_tokens.or(self.max_output_tokens);
        self.token_param = o.token_param.or(self.token_param);
        self.params = match (self.params.take(), o.params) {
            (Some(mut base), Some(patch)) => {
                merge_json(&mut base, &patch);
                Some(base)
            }
            (base, patch) => patch.or(base),
        };
        self.drop_params.extend(o.drop_params);
        self.think_on = o.think_on.or(self.think_on);
        self.think_off = o.think_off.or(self.think_off);
        self.default_size = o.default_size.or(self.default_size);
        self.inline_references = o.inline_references.or(self.inline_references);
        self.prices = o.prices.or(self.prices);
        self
    }

    /// Checks the values; errors name the key below `profile`.
    pub fn check(&self) -> Result<(), (String, String)> {
        let err = |key: &str, message: String| (format!("profile.{key}"), message);
        if self.max_output_tokens == Some(0) {
            return Err(err("max_output_tokens", "must be at least 1".into()));
        }
        if let Some(param) = &self.token_param
            && !matches!(param.as_str(), "max_tokens" | "max_completion_tokens")
        {
            return Err(err(
                "token_param",
                format!("must be max_tokens or max_completion_tokens, got {param:?}"),
            ));
        }
        for (key, value) in [
            ("params", &self.params),
            ("think_on", &self.think_on),
            ("think_off", &self.think_off),
        ] {
            if value.as_ref().is_some_and(|v| !v.is_object()) {
                return Err(err(key, "must be a table".into()));
            }
        }
        if let Some(size) = &self.default_size
            && parse_size(size).is_none()
        {
            return Err(err(
                "default_size",
                format!("{size:?} is not WIDTHxHEIGHT (e.g. \"1280x720\")"),
            ));
        }
        if let Some(prices) = &self.prices {
            prices
                .check()
                .map_err(|(k, m)| err(&format!("prices.{k}"), m))?;
        }
        Ok(())
    }
}

/// A model's resolved capability profile.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Profile {
    pub max_output_tokens: Option<u32>,
    pub token_param: String,
    pub params: Option<Value>,
    pub drop_params: Vec<String>,
    pub think_on: Option<Value>,
    pub think_off: Option<Value>,
    pub sizes: Vec<(u32, u32)>,
    pub durations: Vec<u32>,
    pub default_size: Option<(u32, u32)>,
    pub inline_references: bool,
    pub prices: Option<Prices>,
}

impl Profile {
    /// The family preset of the model, with its configuration over it.
    pub fn for_model(model: &ModelConfig) -> Profile {
        let preset = families::preset(model.adapter, model.kind, model.provider_model());
        let config = preset
            .config
            .overlay(model.profile.as_ref().unwrap_or(&ProfileConfig::default()));
        let sizes = if model.sizes.is_empty() {
            preset.sizes.iter().filter_map(|s| parse_size(s)).collect()
        } else {
            model.sizes.iter().filter_map(|s| parse_size(s)).collect()
        };
        let durations = if model.durations.is_empty() {
            preset.durations.to_vec()
        } else {
            model.durations.clone()
        };
        Profile {
            max_output_tokens: config.max_output_tokens,
            token_param: config
                .token_param
                .unwrap_or_else(|| "max_tokens".to_owned()),
            params: config.params,
            drop_params: config.drop_params,
            think_on: config.think_on,
            think_off: config.think_off,
            sizes,
            durations,
            default_size: config.default_size.as_deref().and_then(parse_size),
            inline_references: config.inline_references.unwrap_or(false),
            prices: config.prices,
        }
    }

    /// The output limit to send for a requested one: never above the model's maximum.
    pub fn fit_max_tokens(&self, requested: u32) -> u32 {
        match self.max_output_tokens {
            Some(max) => requested.clamp(1, max),
            None => requested.max(1),
        }
    }

    /// Fits a chat completion body: defaults first, the think switch, `extra_body` (the
    /// model's own configuration wins over presets), the output limit under its parameter name,
    /// then the dropped parameters removed.
    pub fn fit_text_body(
        &self,
        body: &mut Value,
        max_tokens: Option<u32>,
        think: Option<bool>,
        extra_body: Option<&Value>,
    ) {
        if let Some(params) = &self.params {
            merge_json(body, params);
        }
        let switch = match think {
            Some(true) => self.think_on.as_ref(),
            Some(false) => self.think_off.as_ref(),
            None => None,
        };
        if let Some(switch) = switch {
            merge_json(body, switch);
        }
        if let Some(extra) = extra_body {
            merge_json(body, extra);
        }
        if let Some(obj) = body.as_object_mut() {
            // Whatever was configured, one limit under the name this model takes.
            let configured = ["max_tokens", "max_completion_tokens"]
                .iter()
                .filter_map(|k| obj.remove(*k))
                .find_map(|v| v.as_u64())
                .and_then(|v| u32::try_from(v).ok());
            if let Some(limit) = max_tokens.or(configured) {
                obj.insert(
                    self.token_param.clone(),
                    Value::from(self.fit_max_tokens(limit)),
                );
            }
        }
        for path in &self.drop_params {
            remove_path(body, path);
        }
    }
}

/// Removes the key at a dot path (`response_format`, `parameters.watermark`).
fn remove_path(body: &mut Value, path: &str) {
    let mut parts: Vec<&str> = path.split('.').collect();
    let Some(last) = parts.pop() else { return };
    let mut current = body;
    for part in parts {
        match current.get_mut(part) {
            Some(next) => current = next,
            None => return,
        }
    }
    if let Some(obj) = current.as_object_mut() {
        obj.remove(last);
    }
}

#[cfg(test)]
mod tests;
