//! The model catalog: builds the configured models and wraps each with its concurrency limit
//! (calls beyond it wait for a slot), its timeout and latency metrics.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use nosyntask_domain::TaskError;
use nosyntask_engine::Metrics;
use nosyntask_engine::ports::{
    ArtifactStore, MediaContext, MediaModel, MediaOutput, MediaRequest, ModelCatalog, ModelInfo,
    ModelKind, TextModel, TextRequest, TextResponse, Usage,
};
use nosyntask_engine::usage;
use serde_json::json;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::adapters::async_task::AsyncTaskModel;
use crate::adapters::openai_compatible::OpenAiCompatible;
use crate::adapters::openai_images::OpenAiImages;
use crate::config::{AdapterKind, ModelConfig};
use crate::http::HttpClient;
use crate::simulated::{SimulatedMedia, SimulatedText};
use crate::validate::{ConfigError, validate_models};

/// Extra time a media call gets past its model's timeout before it is cut off: the adapter's
/// own deadline fires first and keeps the provider task for the next attempt.
const MEDIA_GRACE: Duration = Duration::from_secs(30);

#[derive(Clone)]
enum Handle {
    Text(Arc<dyn TextModel>),
    Media(Arc<dyn MediaModel>),
}

#[derive(Clone)]
struct Entry {
    info: ModelInfo,
    handle: Handle,
}

/// The configured models by name. Implements [`ModelCatalog`].
#[derive(Clone, Default)]
pub struct Catalog {
    entries: Vec<Entry>,
    metrics: Option<Arc<Metrics>>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field(
                "models",
                &self
                    .entries
                    .iter()
                    .map(|e| &e.info.name)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Catalog {
    /// An empty catalog; add models with [`Catalog::add_text`] / [`Catalog::add_media`].
    pub fn new(metrics: Option<Arc<Metrics>>) -> Self {
        Catalog {
            entries: Vec::new(),
            metrics,
        }
    }

    /// Builds every configured model. Fails on the first invalid entry, naming it.
    pub fn from_config(
        models: &[ModelConfig],
        artifacts: Arc<dyn ArtifactStore>,
        metrics: Arc<Metrics>,
    ) -> Result<Catalog, ConfigError> {
        validate_models(models)?;
        let http = HttpClient::new().map_err(ConfigError::Models)?;
        let mut catalog = Catalog::new(Some(metrics));
        for (index, config) in models.iter().enumerate() {
            let has_default = models.iter().any(|m| m.kind == config.kind && m.default);
            let first_of_kind = models.iter().position(|m| m.kind == config.kind) == Some(index);
            let info = ModelInfo {
                name: config.name.clone(),
                kind: config.kind,
                adapter: config.adapter.as_str().to_owned(),
                model: config.provider_model().to_owned(),
                is_default: config.default || (!has_default && first_of_kind),
                max_concurrency: config.concurrency(),
                requests_per_minute: config.requests_per_minute,
                timeout: config.timeout(),
            };
            let invalid = |(key, message): (String, String)| ConfigError::Invalid {
                index,
                name: config.name.clone(),
                key,
                message,
            };
            match (config.adapter, config.kind) {
                (AdapterKind::Simulated, ModelKind::Text) => {
                    catalog.add_text(Arc::new(SimulatedText::new(info, config)));
                }
                (AdapterKind::Simulated, _) => {
                    catalog.add_media(Arc::new(SimulatedMedia::new(
                        info,
                        config,
                        artifacts.clone(),
                    )));
                }
                (AdapterKind::OpenaiCompatible, _) => {
                    catalog.add_text(Arc::new(OpenAiCompatible::new(
                        info,
                        config.clone(),
                        http.clone(),
                    )));
                }
                (AdapterKind::OpenaiImages, _) => {
                    catalog.add_media(Arc::new(OpenAiImages::new(
                        info,
                        config.clone(),
                        http.clone(),
                        artifacts.clone(),
                    )));
                }
                _ => {
                    let model =
                        AsyncTaskModel::new(info, config.clone(), http.clone(), artifacts.clone())
                            .map_err(invalid)?;
                    catalog.add_media(Arc::new(model));
                }
            }
        }
        Ok(catalog)
    }

    /// Adds a text model, wrapped with the limits of its [`ModelInfo`].
    pub fn add_text(&mut self, model: Arc<dyn TextModel>) {
        let info = model.info().clone();
        let limited = LimitedText {
            limits: Limits::new(&info, self.metrics.clone()),
            inner: model,
        };
        self.entries.push(Entry {
            info,
            handle: Handle::Text(Arc::new(limited)),
        });
    }

    /// Adds an image or video model, wrapped with the limits of its [`ModelInfo`].
    pub fn add_media(&mut self, model: Arc<dyn MediaModel>) {
        let info = model.info().clone();
        let limited = LimitedMedia {
            limits: Limits::new(&info, self.metrics.clone()),
            inner: model,
        };
        self.entries.push(Entry {
            info,
            handle: Handle::Media(Arc::new(limited)),
        });
    }

    fn find(&self, kind: ModelKind, name: Option<&str>) -> Result<&Entry, TaskError> {
        let of_kind = || self.entries.iter().filter(move |e| e.info.kind == kind);
        let name = name.map(str::trim).filter(|n| !n.is_empty());
        let found = match name {
            None => of_kind()
                .find(|e| e.info.is_default)
                .or_else(|| of_kind().next()),
            Some(name) => of_kind()
                .find(|e| e.info.name == name)
                .or_else(|| of_kind().find(|e| e.info.name.eq_ignore_ascii_case(name))),
        };
        found.ok_or_else(|| {
            let names: Vec<&str> = of_kind().map(|e| e.info.name.as_str()).collect();
            match (name, names.is_empty()) {
                (_, true) => TaskError::permanent(format!("no {kind} model is configured")),
                (Some(name), false) => TaskError::permanent(format!(
                    "unknown {kind} model {name:?}; configured {kind} models: {}",
                    names.join(", ")
                )),
                (None, false) => TaskError::permanent(format!("no default {kind} model")),
            }
        })
    }

    fn media(&self, kind: ModelKind, name: Option<&str>) -> Result<Arc<dyn MediaModel>, TaskError> {
        match &self.find(kind, name)?.handle {
            Handle::Media(model) => Ok(model.clone()),
            Handle::Text(_) => Err(TaskError::permanent(format!(
                "{name:?} is not a {kind} model"
            ))),
        }
    }
}

impl ModelCatalog for Catalog {
    fn text(&self, name: Option<&str>) -> Result<Arc<dyn TextModel>, TaskError> {
        match &self.find(ModelKind::Text, name)?.handle {
            Handle::Text(model) => Ok(model.clone()),
            Handle::Media(_) => Err(TaskError::permanent(format!(
                "{name:?} is not a text model"
            ))),
        }
    }

    fn image(&self, name: Option<&str>) -> Result<Arc<dyn MediaModel>, TaskError> {
        self.media(ModelKind::Image, name)
    }

    fn video(&self, name: Option<&str>) -> Result<Arc<dyn MediaModel>, TaskError> {
        self.media(ModelKind::Video, name)
    }

    fn list(&self) -> Vec<ModelInfo> {
        self.entries.iter().map(|e| e.info.clone()).collect()
    }
}

/// What both wrappers share: the slot queue, the deadline and metrics.
struct Limits {
    info: ModelInfo,
    slots: Arc<Semaphore>,
    metrics: Option<Arc<Metrics>>,
}

impl Limits {
    fn new(info: &ModelInfo, metrics: Option<Arc<Metrics>>) -> Self {
        Limits {
            info: info.clone(),
            slots: Arc::new(Semaphore::new(
                info.max_concurrency.clamp(1, Semaphore::MAX_PERMITS),
            )),
            metrics,
        }
    }

    /// Waits for a free slot (or cancellation).
    async fn slot(
        &self,
        cancel: &CancellationToken,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, TaskError> {
        tokio::select! {
            _ = cancel.cancelled() => Err(TaskError::Cancelled),
            permit = self.slots.clone().acquire_owned() => {
                permit.map_err(|_| TaskError::permanent("the model is shut down"))
            }
        }
    }

    fn observe<T>(&self, started: Instant, result: &Result<T, TaskError>) {
        if let (Some(metrics), false) = (&self.metrics, matches!(result, Err(TaskError::Cancelled)))
        {
            metrics.observe_provider(
                &self.info.name,
                result.is_ok(),
                started.elapsed().as_secs_f64(),
            );
        }
    }

    /// Adds a call's usage to the running step's and to the model's counters.
    fn used(&self, usage: Usage) {
        usage::record(&self.info.name, usage);
        if let Some(metrics) = &self.metrics {
            metrics.observe_usage(&self.info.name, &usage);
        }
    }

    fn context(&self, err: TaskError) -> TaskError {
        err.context(&format!("model {:?}", self.info.name))
    }
}

/// A chat answer's usage; token counts of 0 (a provider that reports none) are left unset.
fn text_usage(response: &TextResponse) -> Usage {
    let tokens = response.usage;
    let reported = tokens.prompt_tokens + tokens.completion_tokens > 0;
    Usage {
        prompt_tokens: reported.then_some(tokens.prompt_tokens),
        completion_tokens: reported.then_some(tokens.completion_tokens),
        cost_micros: response.cost_micros,
        ..Usage::default()
    }
}

struct LimitedText {
    limits: Limits,
    inner: Arc<dyn TextModel>,
}

#[async_trait]
impl TextModel for LimitedText {
    fn info(&self) -> &ModelInfo {
        &self.limits.info
    }

    async fn complete(
        &self,
        request: TextRequest,
        cancel: &CancellationToken,
    ) -> Result<TextResponse, TaskError> {
        let _slot = self.limits.slot(cancel).await?;
        let started = Instant::now();
        let timeout = self.limits.info.timeout;
        let result = match tokio::time::timeout(timeout, self.inner.complete(request, cancel)).await
        {
            Ok(result) => result,
            Err(_) => Err(TaskError::retryable(format!(
                "no answer within {} s",
                timeout.as_secs()
            ))),
        };
        self.limits.observe(started, &result);
        let response = result.map_err(|e| self.limits.context(e))?;
        self.limits.used(text_usage(&response));
        Ok(response)
    }
}

struct LimitedMedia {
    limits: Limits,
    inner: Arc<dyn MediaModel>,
}

#[async_trait]
impl MediaModel for LimitedMedia {
    fn info(&self) -> &ModelInfo {
        &self.limits.info
    }

    async fn generate(
        &self,
        mut request: MediaRequest,
        ctx: MediaContext,
    ) -> Result<MediaOutput, TaskError> {
        if request.checkpoint_key.trim().is_empty() {
            request.checkpoint_key = self.limits.info.kind.as_str().to_owned();
        }
        let key = request.checkpoint_key.clone();
        // A previous attempt already stored this call's file: nothing to generate or download.
        if let Some(output) = ctx
            .checkpoint_entry(&key)
            .await
            .and_then(|entry| entry.get("output").cloned())
            .and_then(|output| serde_json::from_value::<MediaOutput>(output).ok())
        {
            // Paid for by an earlier attempt of this task: the task's usage, not this call's.
            if let Some(usage) = output.usage {
                usage::record(&self.limits.info.name, usage);
            }
            return Ok(output);
        }
        let _slot = self.limits.slot(&ctx.cancel).await?;
        let started = Instant::now();
        let deadline = self.limits.info.timeout + MEDIA_GRACE;
        let result =
            match tokio::time::timeout(deadline, self.inner.generate(request, ctx.clone())).await {
                Ok(result) => result,
                Err(_) => Err(TaskError::retryable(format!(
                    "no result within {} s",
                    self.limits.info.timeout.as_secs()
                ))),
            };
        self.limits.observe(started, &result);
        let output = result.map_err(|e| self.limits.context(e))?;
        if let Some(usage) = output.usage {
            self.limits.used(usage);
        }
        let entry = json!({"provider": self.limits.info.adapter, "output": output});
        // Boxed: a state the waiting call does not need (see `poll::submit_and_poll`).
        match Box::pin(ctx.save_checkpoint_entry(&key, entry, None)).await {
            Ok(()) => {}
            Err(TaskError::Cancelled) => return Err(TaskError::Cancelled),
            Err(err) => warn!(error = %err, "could not checkpoint the stored file; continuing"),
        }
        Ok(output)
    }
}
