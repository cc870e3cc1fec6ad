//! The `[models.async_task]` table and its validation.

use std::collections::BTreeMap;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::adapters::{merge_json, parse_method};
use crate::config::ModelConfig;
use crate::normalize::JsonPath;
use crate::presets;
use crate::template::{BUILTIN_VARS, check, check_value};

/// One request template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestConfig {
    /// URL template (`{{base_url}}/tasks/{{task_id}}`).
    pub url: String,
    /// GET, POST, PUT, PATCH or DELETE (default: POST to submit, GET otherwise).
    #[serde(default)]
    pub method: Option<String>,
    /// Headers of this request, over the common ones.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// JSON body template (a table, or a string of JSON text).
    #[serde(default)]
    pub body: Option<Value>,
}

/// The `[models.async_task]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AsyncTaskConfig {
    /// Headers sent with submit, poll, result, download and cancel requests.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub submit: RequestConfig,
    /// Where the provider's task id is in the submit response.
    #[serde(default)]
    pub task_id_path: Option<String>,
    /// Values to keep from the submit response for later templates: name → path.
    #[serde(default)]
    pub capture: BTreeMap<String, String>,
    /// The status request; without it the API is synchronous.
    #[serde(default)]
    pub poll: Option<RequestConfig>,
    #[serde(default)]
    pub status_path: Option<String>,
    #[serde(default)]
    pub progress_path: Option<String>,
    /// The value of `progress_path` that means done (100, or 1 for fractions).
    #[serde(default = "default_progress_max")]
    pub progress_max: f64,
    /// Where the result URL is (in the poll response, or the `result` response). Without it the
    /// usual fields are tried (`image_url`, `imageUrl`, `video_url`, `url`, `output`, …).
    #[serde(default)]
    pub result_url_path: Option<String>,
    /// Where base64 media are, for APIs that inline the file.
    #[serde(default)]
    pub result_base64_path: Option<String>,
    /// Where the provider's error message is.
    #[serde(default)]
    pub error_path: Option<String>,
    /// Where a finished task says until when its output can be downloaded (epoch seconds, as
    /// OpenAI videos' `expires_at`); an expired task is cleared from the checkpoint.
    #[serde(default)]
    pub expires_at_path: Option<String>,
    /// Status values (case-insensitive) meaning the task succeeded / failed / was cancelled.
    #[serde(default)]
    pub success_statuses: Vec<String>,
    #[serde(default)]
    pub failure_statuses: Vec<String>,
    #[serde(default)]
    pub cancelled_statuses: Vec<String>,
    /// A request made after success whose response holds the result (fal's `response_url`).
    #[serde(default)]
    pub result: Option<RequestConfig>,
    /// A request that returns the file itself, with the credentials (OpenAI videos' `/content`).
    #[serde(default)]
    pub download: Option<RequestConfig>,
    /// The request that cancels a task.
    #[serde(default)]
    pub cancel: Option<RequestConfig>,
    /// Where in the submit body a request's `extra` object is merged (e.g. `input`).
    #[serde(default)]
    pub extra_path: Option<String>,
    #[serde(default = "default_poll_interval")]
    pub poll_interval_ms: u64,
    /// Typical generation time, for the progress shown when the provider reports none.
    #[serde(default = "default_expected")]
    pub expected_secs: u64,
    /// Limit of each submit / poll request.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_secs: u64,
}

fn default_progress_max() -> f64 {
    100.0
}
fn default_poll_interval() -> u64 {
    3000
}
fn default_expected() -> u64 {
    60
}
fn default_request_timeout() -> u64 {
    60
}

/// A validated `async_task` configuration with its paths parsed.
#[derive(Debug, Clone)]
pub struct AsyncTaskSpec {
    pub config: AsyncTaskConfig,
    pub(super) task_id: Option<JsonPath>,
    pub(super) capture: Vec<(String, JsonPath)>,
    pub(super) status: Option<JsonPath>,
    pub(super) progress: Option<JsonPath>,
    pub(super) result_url: Option<JsonPath>,
    pub(super) result_base64: Option<JsonPath>,
    pub(super) error: Option<JsonPath>,
    pub(super) expires_at: Option<JsonPath>,
    pub(super) extra_path: Vec<String>,
}

/// A configuration problem: the key (`async_task.submit.url`) and what is wrong.
pub type KeyError = (String, String);

impl AsyncTaskSpec {
    /// The preset's defaults (if any) with the model's `async_task` table over them, checked.
    /// Errors give the key (`async_task.submit.url`) and what is wrong.
    pub fn from_model(model: &ModelConfig) -> Result<AsyncTaskSpec, KeyError> {
        let mut value = presets::defaults(model).unwrap_or(Value::Null);
        if let Some(overrides) = &model.async_task {
            if value.is_null() {
                value = overrides.clone();
            } else {
                merge_json(&mut value, overrides);
            }
        }
        if value.is_null() {
            return Err((
                "async_task".into(),
                "is required for the async_task adapter (submit and poll templates)".into(),
            ));
        }
        let config: AsyncTaskConfig = serde_path_to_error::deserialize(value).map_err(|err| {
            let path = err.path().to_string();
            let key = if path == "." {
                "async_task".to_owned()
            } else {
                format!("async_task.{path}")
            };
            (key, err.into_inner().to_string())
        })?;
        Self::check(config)
    }

    fn check(mut config: AsyncTaskConfig) -> Result<AsyncTaskSpec, KeyError> {
        let err = |key: &str, message: String| (format!("async_task.{key}"), message);
        let path = |key: &str, text: &Option<String>| -> Result<Option<JsonPath>, KeyError> {
            text.as_deref()
                .map(|t| JsonPath::parse(t).map_err(|m| err(key, m)))
                .transpose()
        };
        let mut known: Vec<&str> = BUILTIN_VARS.to_vec();
        let mut capture = Vec::new();
        for (name, p) in &config.capture {
            if BUILTIN_VARS.contains(&name.as_str()) {
                return Err(err(
                    "capture",
                    format!("`{name}` is a built-in placeholder"),
                ));
            }
            capture.push((
                name.clone(),
                JsonPath::parse(p).map_err(|m| err(&format!("capture.{name}"), m))?,
            ));
        }
        known.extend(config.capture.keys().map(String::as_str));
        for (name, value) in &config.headers {
            check(value, &known).map_err(|m| err(&format!("headers.{name}"), m))?;
        }
        let requests: [(&str, Option<&mut RequestConfig>); 5] = [
            ("submit", Some(&mut config.submit)),
            ("poll", config.poll.as_mut()),
            ("result", config.result.as_mut()),
            ("download", config.download.as_mut()),
            ("cancel", config.cancel.as_mut()),
        ];
        for (key, request) in requests {
            let Some(request) = request else { continue };
            check(&request.url, &known).map_err(|m| err(&format!("{key}.url"), m))?;
            parse_method(request.method.as_deref(), Method::GET)
                .map_err(|m| err(&format!("{key}.method"), m))?;
            for (name, value) in &request.headers {
                check(value, &known).map_err(|m| err(&format!("{key}.headers.{name}"), m))?;
            }
            if let Some(Value::String(text)) = &request.body {
                let parsed: Value = serde_json::from_str(text)
                    .map_err(|e| err(&format!("{key}.body"), format!("is not JSON: {e}")))?;
                request.body = Some(parsed);
            }
            if let Some(body) = &request.body {
                check_value(body, &known).map_err(|m| err(&format!("{key}.body"), m))?;
            }
        }
        if config.poll.is_some() {
            if config.status_path.is_none() {
                return Err(err("status_path", "is required when `poll` is set".into()));
            }
            if config.success_statuses.is_empty() {
                return Err(err(
                    "success_statuses",
                    "must list the status values of a finished task".into(),
                ));
            }
            if config.task_id_path.is_none() {
                return Err(err("task_id_path", "is required when `poll` is set".into()));
            }
        }
        if config.poll_interval_ms < 100 {
            return Err(err(
                "poll_interval_ms",
                format!("must be at least 100, got {}", config.poll_interval_ms),
            ));
        }
        if config.request_timeout_secs == 0 {
            return Err(err("request_timeout_secs", "must be at least 1".into()));
        }
        if config.progress_max.is_nan() || config.progress_max <= 0.0 {
            return Err(err("progress_max", "must be positive".into()));
        }
        let extra_path = match &config.extra_path {
            Some(p) if p.is_empty() => Vec::new(),
            Some(p) => p.split('.').map(str::to_owned).collect(),
            None => Vec::new(),
        };
        Ok(AsyncTaskSpec {
            task_id: path("task_id_path", &config.task_id_path)?,
            status: path("status_path", &config.status_path)?,
            progress: path("progress_path", &config.progress_path)?,
            result_url: path("result_url_path", &config.result_url_path)?,
            result_base64: path("result_base64_path", &config.result_base64_path)?,
            error: path("error_path", &config.error_path)?,
            expires_at: path("expires_at_path", &config.expires_at_path)?,
            capture,
            extra_path,
            config,
        })
    }
}
