//! `async_task`: a declarative adapter for APIs that take a generation request, answer with a
//! task id, and are polled until the task finishes. Everything is configuration: URL, header and
//! body templates with `{{placeholders}}`, dot paths into the responses and the status values
//! that mean success, failure or cancellation. The presets (Replicate, fal, DashScope, OpenAI
//! videos) are such configurations.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nosyntask_domain::TaskError;
use nosyntask_engine::ports::{
    ArtifactStore, MediaContext, MediaModel, MediaOutput, MediaRequest, ModelInfo, ModelKind,
};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    RequestSpec, ResultRef, build_request, fit_duration, fit_size, merge_json, parse_method,
    store_result,
};
use crate::config::{ModelConfig, parse_size};
use crate::http::{HttpClient, MediaKind, excerpt, poll_json, redact, send_bytes, send_json};
use crate::normalize::{JsonPath, extract_image_url, extract_video_url, looks_like_url};
use crate::poll::{PollOptions, PollState, ProviderTask, RemoteJob, Submitted, submit_and_poll};
use crate::presets;
use crate::template::{BUILTIN_VARS, Var, Vars, check, check_value};

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
    task_id: Option<JsonPath>,
    capture: Vec<(String, JsonPath)>,
    status: Option<JsonPath>,
    progress: Option<JsonPath>,
    result_url: Option<JsonPath>,
    result_base64: Option<JsonPath>,
    error: Option<JsonPath>,
    extra_path: Vec<String>,
}

type KeyError = (String, String);

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
            capture,
            extra_path,
            config,
        })
    }
}

/// A media model behind a declarative async task API.
pub struct AsyncTaskModel {
    info: ModelInfo,
    config: ModelConfig,
    spec: AsyncTaskSpec,
    http: HttpClient,
    artifacts: Arc<dyn ArtifactStore>,
    sizes: Vec<(u32, u32)>,
    durations: Vec<u32>,
}

impl AsyncTaskModel {
    pub fn new(
        info: ModelInfo,
        config: ModelConfig,
        http: HttpClient,
        artifacts: Arc<dyn ArtifactStore>,
    ) -> Result<Self, KeyError> {
        let spec = AsyncTaskSpec::from_model(&config)?;
        let (preset_sizes, preset_durations) = presets::limits(config.adapter);
        let sizes = if config.sizes.is_empty() {
            preset_sizes.iter().filter_map(|s| parse_size(s)).collect()
        } else {
            config.sizes.iter().filter_map(|s| parse_size(s)).collect()
        };
        let durations = if config.durations.is_empty() {
            preset_durations.to_vec()
        } else {
            config.durations.clone()
        };
        Ok(AsyncTaskModel {
            info,
            config,
            spec,
            http,
            artifacts,
            sizes,
            durations,
        })
    }

    fn media_kind(&self) -> MediaKind {
        match self.info.kind {
            ModelKind::Video => MediaKind::Video,
            _ => MediaKind::Image,
        }
    }

    fn vars(&self, request: &MediaRequest, api_key: Option<&str>) -> Vars {
        let (width, height) = fit_size(request.width, request.height, &self.sizes);
        let mut vars = Vars::new();
        vars.set_text("prompt", request.prompt.clone())
            .set_opt("negative_prompt", request.negative_prompt.as_deref())
            .set_text("model", self.config.provider_model())
            .set_text("base_url", self.config.base())
            .set_opt("image_url", request.image_url.as_deref())
            .set_opt("end_image_url", request.end_image_url.as_deref())
            .set_opt("api_key", api_key);
        if width > 0 && height > 0 {
            vars.set("width", Var::Number(width.into()))
                .set("height", Var::Number(height.into()))
                .set_text("size", format!("{width}x{height}"));
        }
        if let Some(duration) = request.duration_secs.filter(|d| *d > 0) {
            vars.set(
                "duration",
                Var::Number(fit_duration(duration, &self.durations).into()),
            );
        }
        vars
    }
}

#[async_trait]
impl MediaModel for AsyncTaskModel {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    async fn generate(
        &self,
        request: MediaRequest,
        ctx: MediaContext,
    ) -> Result<MediaOutput, TaskError> {
        let api_key = self.config.api_key()?;
        let job = Job {
            model: self,
            vars: self.vars(&request, api_key.as_deref()),
            extra: request.extra.clone(),
        };
        let cfg = &self.spec.config;
        let mut options = PollOptions::new(
            self.config.adapter.as_str(),
            Duration::from_millis(cfg.poll_interval_ms),
            self.info.timeout,
        );
        options.expected = Duration::from_secs(cfg.expected_secs);
        let result = async {
            let result = submit_and_poll(&job, &request.checkpoint_key, &ctx, &options).await?;
            ctx.progress.report(92.0);
            let output = store_result(
                &self.http,
                &self.artifacts,
                result,
                self.media_kind(),
                self.config.max_media_bytes(),
                self.info.timeout,
                &request.checkpoint_key,
            )
            .await?;
            ctx.progress.report(99.0);
            Ok(output)
        }
        .await;
        result.map_err(|err| redact(err, api_key.as_deref()))
    }
}

/// One generation call: the model and the call's values.
struct Job<'a> {
    model: &'a AsyncTaskModel,
    vars: Vars,
    extra: Value,
}

/// What a response says, read through the configured paths.
#[derive(Debug, Default)]
struct Reading {
    status: Option<String>,
    progress: Option<f64>,
    result: Option<ResultText>,
    error: Option<String>,
}

#[derive(Debug)]
enum ResultText {
    Url(String),
    Base64(String),
}

fn in_list(list: &[String], status: &str) -> bool {
    list.iter().any(|s| s.eq_ignore_ascii_case(status))
}

impl Job<'_> {
    fn spec(&self) -> &AsyncTaskSpec {
        &self.model.spec
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.spec().config.request_timeout_secs)
    }

    fn task_vars(&self, task: &ProviderTask) -> Vars {
        let mut vars = self.vars.clone();
        for (name, value) in &task.vars {
            vars.set_text(name, value.clone());
        }
        vars.set_text("task_id", task.id.clone());
        vars
    }

    fn request(
        &self,
        request: &RequestConfig,
        default_method: Method,
        vars: &Vars,
        body: Option<Value>,
        what: &str,
    ) -> Result<reqwest::RequestBuilder, TaskError> {
        let method = parse_method(request.method.as_deref(), default_method)
            .map_err(TaskError::permanent)?;
        let headers = self
            .model
            .config
            .headers
            .iter()
            .chain(&self.spec().config.headers)
            .chain(&request.headers)
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        build_request(
            &self.model.http,
            RequestSpec {
                method,
                url: &request.url,
                headers,
                body,
                timeout: self.timeout(),
            },
            vars,
            what,
        )
    }

    fn submit_body(&self) -> Option<Value> {
        let mut body = self.spec().config.submit.body.clone()?;
        if let Some(extra) = &self.model.config.extra_body {
            merge_json(&mut body, extra);
        }
        if self.extra.as_object().is_some_and(|m| !m.is_empty()) {
            let mut patch = self.extra.clone();
            for key in self.spec().extra_path.iter().rev() {
                patch = Value::Object(serde_json::Map::from_iter([(key.clone(), patch)]));
            }
            merge_json(&mut body, &patch);
        }
        Some(body)
    }

    fn read(&self, body: &Value) -> Reading {
        let spec = self.spec();
        let result = if let Some(path) = &spec.result_base64 {
            path.get_text(body).map(ResultText::Base64)
        } else {
            None
        };
        let result = result.or_else(|| {
            let url = match &spec.result_url {
                Some(path) => path.get_text(body),
                None => match self.model.info.kind {
                    ModelKind::Video => extract_video_url(body),
                    _ => extract_image_url(body),
                },
            };
            url.filter(|u| looks_like_url(u)).map(ResultText::Url)
        });
        Reading {
            status: spec.status.as_ref().and_then(|p| p.get_text(body)),
            progress: spec
                .progress
                .as_ref()
                .and_then(|p| p.get(body))
                .and_then(|v| {
                    v.as_f64()
                        .or_else(|| {
                            v.as_str()
                                .and_then(|s| s.trim().trim_end_matches('%').parse().ok())
                        })
                        .map(|p| p * 100.0 / spec.config.progress_max)
                }),
            result,
            error: spec.error.as_ref().and_then(|p| p.get_text(body)),
        }
    }

    /// Turns a reading of a finished task into where its file is.
    async fn finish(
        &self,
        reading: Reading,
        task: Option<&ProviderTask>,
    ) -> Result<ResultRef, TaskError> {
        let cfg = &self.spec().config;
        let vars = match task {
            Some(task) => self.task_vars(task),
            None => self.vars.clone(),
        };
        if let Some(download) = &cfg.download {
            let url = crate::template::render_url(&download.url, &vars);
            let request = self.request(download, Method::GET, &vars, None, "download")?;
            return Ok(ResultRef::Endpoint(Box::new(request), url));
        }
        let reading = match &cfg.result {
            Some(result) if task.is_some() => {
                let request =
                    self.request(result, Method::GET, &vars, result.body.clone(), "result")?;
                let body = send_json(request).await?;
                let fetched = self.read(&body);
                if fetched.result.is_none() {
                    return Err(TaskError::permanent(match fetched.error {
                        Some(error) => format!("the provider reported: {error}"),
                        None => format!(
                            "the result response has no file URL: {}",
                            excerpt(body.to_string().as_bytes())
                        ),
                    }));
                }
                fetched
            }
            _ => reading,
        };
        match reading.result {
            Some(ResultText::Url(url)) => Ok(ResultRef::Url(url)),
            Some(ResultText::Base64(data)) => Ok(ResultRef::Base64(data)),
            None => Err(TaskError::permanent(format!(
                "the task finished but the response has no file at `{}`",
                cfg.result_url_path
                    .as_deref()
                    .unwrap_or("image_url/video_url/url")
            ))),
        }
    }

    /// Decides what a reading means.
    async fn state(
        &self,
        reading: Reading,
        body: &Value,
        task: Option<&ProviderTask>,
    ) -> Result<PollState<ResultRef>, TaskError> {
        let cfg = &self.spec().config;
        match reading.status.clone() {
            Some(status) if in_list(&cfg.failure_statuses, &status) => Ok(PollState::Failed(
                reading.error.unwrap_or_else(|| format!("status {status}")),
            )),
            Some(status) if in_list(&cfg.cancelled_statuses, &status) => Ok(PollState::Cancelled),
            Some(status) if in_list(&cfg.success_statuses, &status) => {
                // A finished task with an error and no file failed (fal reports failures so).
                if reading.result.is_none()
                    && let Some(error) = reading.error
                {
                    return Ok(PollState::Failed(error));
                }
                self.finish(reading, task).await.map(PollState::Done)
            }
            Some(_) => Ok(PollState::Running {
                progress: reading.progress,
            }),
            None if reading.result.is_some() => {
                self.finish(reading, task).await.map(PollState::Done)
            }
            None if reading.error.is_some() => {
                Ok(PollState::Failed(reading.error.unwrap_or_default()))
            }
            None if self.spec().status.is_some() => Err(TaskError::permanent(format!(
                "the provider's response has no status at `{}`: {}",
                cfg.status_path.as_deref().unwrap_or_default(),
                excerpt(body.to_string().as_bytes())
            ))),
            None => Ok(PollState::Running {
                progress: reading.progress,
            }),
        }
    }
}

#[async_trait]
impl RemoteJob for Job<'_> {
    type Output = ResultRef;

    async fn submit(&self) -> Result<Submitted<ResultRef>, TaskError> {
        let cfg = &self.spec().config;
        let request = self.request(
            &cfg.submit,
            Method::POST,
            &self.vars,
            self.submit_body(),
            "submit",
        )?;
        let body = send_json(request).await?;
        let reading = self.read(&body);
        let finished_now = match &reading.status {
            Some(status) => in_list(&cfg.success_statuses, status),
            None => reading.result.is_some(),
        };
        if let Some(status) = &reading.status
            && (in_list(&cfg.failure_statuses, status) || in_list(&cfg.cancelled_statuses, status))
        {
            return Err(TaskError::permanent(format!(
                "the provider rejected the task: {}",
                reading.error.unwrap_or_else(|| format!("status {status}"))
            )));
        }
        if finished_now && (reading.result.is_some() || cfg.poll.is_none()) {
            return self.finish(reading, None).await.map(Submitted::Done);
        }
        if cfg.poll.is_none() {
            return Err(TaskError::permanent(format!(
                "the provider's answer has no file and no poll request is configured: {}",
                excerpt(body.to_string().as_bytes())
            )));
        }
        let id = self
            .spec()
            .task_id
            .as_ref()
            .and_then(|p| p.get_text(&body))
            .ok_or_else(|| {
                TaskError::permanent(format!(
                    "the submit response has no task id at `{}`: {}",
                    cfg.task_id_path.as_deref().unwrap_or_default(),
                    excerpt(body.to_string().as_bytes())
                ))
            })?;
        let mut task = ProviderTask::new(id);
        for (name, path) in &self.spec().capture {
            if let Some(value) = path.get_text(&body) {
                task.vars.insert(name.clone(), value);
            }
        }
        Ok(Submitted::Started(task))
    }

    async fn poll(&self, task: &ProviderTask) -> Result<PollState<ResultRef>, TaskError> {
        let cfg = &self.spec().config;
        let Some(poll) = &cfg.poll else {
            return Err(TaskError::permanent("no poll request is configured"));
        };
        let vars = self.task_vars(task);
        let request = self.request(poll, Method::GET, &vars, poll.body.clone(), "poll")?;
        let body = poll_json(request).await?;
        let reading = self.read(&body);
        self.state(reading, &body, Some(task)).await
    }

    async fn cancel(&self, task: &ProviderTask) -> Result<bool, TaskError> {
        let Some(cancel) = &self.spec().config.cancel else {
            return Ok(false);
        };
        let vars = self.task_vars(task);
        let request = self.request(cancel, Method::POST, &vars, cancel.body.clone(), "cancel")?;
        send_bytes(request, 64 * 1024).await?;
        Ok(true)
    }
}
