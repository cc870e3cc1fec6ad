//! One call of an `async_task` model: rendering its requests and reading the provider's answers.

use std::time::Duration;

use async_trait::async_trait;
use nosyntask_domain::TaskError;
use nosyntask_engine::ports::{ModelKind, Usage};
use reqwest::Method;
use serde_json::Value;

use super::AsyncTaskModel;
use super::spec::{AsyncTaskSpec, RequestConfig};
use crate::adapters::{RequestSpec, ResultRef, build_request, merge_json, parse_method};
use crate::http::{Failure, excerpt, is_gone_status, send_bytes, send_json_checked};
use crate::normalize::{extract_image_url, extract_video_url, looks_like_url};
use crate::poll::{PollState, ProviderTask, RemoteJob, Submitted};
use crate::profile::usage::from_response;
use crate::template::Vars;

/// One generation call: the model and the call's values.
pub(super) struct Job<'a> {
    pub(super) model: &'a AsyncTaskModel,
    pub(super) vars: Vars,
    pub(super) extra: Value,
    /// What the provider reported the finished task used.
    pub(super) usage: std::sync::Mutex<Usage>,
}

/// What a response says, read through the configured paths.
#[derive(Debug, Default)]
struct Reading {
    status: Option<String>,
    progress: Option<f64>,
    result: Option<ResultText>,
    error: Option<String>,
    /// Until when the output can be fetched (epoch seconds).
    expires_at: Option<f64>,
    usage: Usage,
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
    /// Keeps what a response reports, over what earlier responses did.
    fn keep_usage(&self, reported: Usage) {
        if let Ok(mut usage) = self.usage.lock() {
            usage.prompt_tokens = reported.prompt_tokens.or(usage.prompt_tokens);
            usage.completion_tokens = reported.completion_tokens.or(usage.completion_tokens);
            usage.images = reported.images.or(usage.images);
            usage.video_seconds = reported.video_seconds.or(usage.video_seconds);
        }
    }

    /// What the finished task used, as reported.
    pub(super) fn usage(&self) -> Usage {
        self.usage.lock().map(|u| *u).unwrap_or_default()
    }

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
            usage: from_response(body),
            expires_at: spec
                .expires_at
                .as_ref()
                .and_then(|p| p.get(body))
                .and_then(Value::as_f64),
        }
    }

    /// Turns a reading of a finished task into where its file is (or why there is none).
    async fn finish(
        &self,
        reading: Reading,
        task: Option<&ProviderTask>,
    ) -> Result<PollState<ResultRef>, TaskError> {
        let cfg = &self.spec().config;
        let vars = match task {
            Some(task) => self.task_vars(task),
            None => self.vars.clone(),
        };
        self.keep_usage(reading.usage);
        if let Some(expires_at) = reading.expires_at
            && expires_at <= chrono::Utc::now().timestamp() as f64
        {
            return Ok(PollState::Gone(format!(
                "its output expired at {}",
                chrono::DateTime::from_timestamp(expires_at as i64, 0)
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_else(|| expires_at.to_string())
            )));
        }
        if let Some(download) = &cfg.download {
            let url = crate::template::render_url(&download.url, &vars);
            let request = self.request(download, Method::GET, &vars, None, "download")?;
            return Ok(PollState::Done(ResultRef::Endpoint(Box::new(request), url)));
        }
        let reading = match &cfg.result {
            Some(result) if task.is_some() => {
                let request =
                    self.request(result, Method::GET, &vars, result.body.clone(), "result")?;
                let body = match send_json_checked(request, false).await {
                    Ok(body) => body,
                    Err(failure) => return result_failure(failure),
                };
                let fetched = self.read(&body);
                self.keep_usage(fetched.usage);
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
            Some(ResultText::Url(url)) => Ok(PollState::Done(ResultRef::Url(url))),
            Some(ResultText::Base64(data)) => Ok(PollState::Done(ResultRef::Base64(data))),
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
                self.finish(reading, task).await
            }
            Some(_) => Ok(PollState::Running {
                progress: reading.progress,
            }),
            None if reading.result.is_some() => self.finish(reading, task).await,
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

/// What a failed result request means. fal answers a request that failed with its error on the
/// result endpoint, also with 5xx codes: its documented `{"detail": [{loc, msg, type, url}]}`
/// (docs.fal.ai, "Error Reference") or the older `{"detail": …, "error_type": …}`. The task
/// failed, and fetching the result again cannot change that. A 404 means the result is gone.
fn result_failure(failure: Failure) -> Result<PollState<ResultRef>, TaskError> {
    match failure {
        Failure::Status { status, error, .. } if is_gone_status(status) => {
            Ok(PollState::Gone(error.to_string()))
        }
        Failure::Status {
            body: Some(body),
            error,
            ..
        } if body.get("error_type").is_some() => {
            let detail = crate::http::provider_message(&body).unwrap_or_else(|| error.to_string());
            let kind = body
                .get("error_type")
                .and_then(Value::as_str)
                .unwrap_or("error");
            Ok(PollState::Failed(format!("{detail} ({kind})")))
        }
        Failure::Status {
            body: Some(body),
            error,
            ..
        } if is_error_list(&body) => Ok(PollState::Failed(
            crate::http::provider_message(&body).unwrap_or_else(|| error.to_string()),
        )),
        Failure::Status { status, error, .. }
            if status.is_client_error() && !matches!(status.as_u16(), 408 | 425 | 429) =>
        {
            Ok(PollState::Failed(error.to_string()))
        }
        other => Err(other.into_error()),
    }
}

/// fal's documented error body: `detail` is a list of `{loc, msg, type, …}`.
fn is_error_list(body: &Value) -> bool {
    body.get("detail")
        .and_then(Value::as_array)
        .is_some_and(|items| {
            !items.is_empty()
                && items
                    .iter()
                    .all(|i| i.get("type").is_some() && i.get("msg").is_some())
        })
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
        let body = send_json_checked(request, false)
            .await
            .map_err(Failure::into_error)?;
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
            return match self.finish(reading, None).await? {
                PollState::Done(result) => Ok(Submitted::Done(result)),
                PollState::Failed(message) | PollState::Gone(message) => {
                    Err(TaskError::permanent(message))
                }
                PollState::Running { .. } | PollState::Cancelled => Err(TaskError::permanent(
                    "the provider's synchronous answer has no file",
                )),
            };
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
        let body = match send_json_checked(request, true).await {
            Ok(body) => body,
            // The provider no longer knows the id (expired, deleted, another account's).
            Err(Failure::Status { status, error, .. }) if is_gone_status(status) => {
                return Ok(PollState::Gone(error.to_string()));
            }
            Err(failure) => return Err(failure.into_error()),
        };
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
