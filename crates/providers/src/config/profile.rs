//! The `[models.profile]` table and its `prices`: plain data, so the configuration module does
//! not depend on `crate::profile` (which resolves these tables against the family presets and
//! so depends on the configuration). Their checks and the overlay logic live in `crate::profile`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The `[models.profile]` table: every key is optional and replaces the family preset's value;
/// `drop_params` adds to the preset's list, so a configuration can remove a default parameter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileConfig {
    /// The largest output the provider accepts; a request asking for more gets this many.
    #[serde(default)]
    pub max_output_tokens: Option<u32>,
    /// The name of the output limit parameter: `max_tokens` or `max_completion_tokens`.
    #[serde(default)]
    pub token_param: Option<String>,
    /// Parameters merged into every request body before `extra_body` (the preset's defaults).
    #[serde(default)]
    pub params: Option<Value>,
    /// Body keys never sent (dot paths such as `response_format`), defaults included.
    #[serde(default)]
    pub drop_params: Vec<String>,
    /// Merged into the body when a request asks for deep thinking; unset: not supported.
    #[serde(default)]
    pub think_on: Option<Value>,
    /// Merged into the body when a request asks for no deep thinking.
    #[serde(default)]
    pub think_off: Option<Value>,
    /// The size sent when a request names none (`"1280x720"`).
    #[serde(default)]
    pub default_size: Option<String>,
    /// Send reference images as `data:` URLs even when a public URL is known (APIs that take the
    /// image itself, or providers that cannot reach the server).
    #[serde(default)]
    pub inline_references: Option<bool>,
    /// Prices, for the cost recorded with a call's usage.
    #[serde(default)]
    pub prices: Option<Prices>,
}

/// Prices of a model (any currency, the same for all keys of one model).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prices {
    /// Per million prompt (input) tokens.
    #[serde(default)]
    pub input_per_million: Option<f64>,
    /// Per million completion (output) tokens.
    #[serde(default)]
    pub output_per_million: Option<f64>,
    #[serde(default)]
    pub per_image: Option<f64>,
    #[serde(default)]
    pub per_video_second: Option<f64>,
}
