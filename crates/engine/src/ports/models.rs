//! Model ports: the text, image and video models step handlers call, the catalog that names them,
//! and the artifact store generated media are copied into.
//!
//! The providers crate implements them (OpenAI-compatible, async task APIs, simulated); handlers
//! only see these traits, so they run the same against a real provider or the offline simulation.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nosyntask_domain::TaskError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::checkpoint::Checkpoints;
use crate::progress::ProgressReporter;

/// What a model produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    Text,
    Image,
    Video,
}

impl ModelKind {
    /// `text`, `image` or `video`.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::Text => "text",
            ModelKind::Image => "image",
            ModelKind::Video => "video",
        }
    }
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A configured model as callers and `GET /api/models` see it. Holds no secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    /// What `jobParams.modelName` refers to (`DeepSeek Chat`).
    pub name: String,
    pub kind: ModelKind,
    /// The adapter that speaks to the provider (`openai_compatible`, `replicate`, `simulated`, …).
    pub adapter: String,
    /// The provider's model id (`deepseek-chat`).
    pub model: String,
    /// The model used for its kind when a job names none.
    pub is_default: bool,
    /// Calls beyond this many at once wait for a free slot; tasks of this model beyond this many
    /// at once across the cluster wait unclaimed.
    pub max_concurrency: usize,
    /// Tasks of this model started per minute across the cluster, if limited.
    pub requests_per_minute: Option<u32>,
    /// Limit of one call, including the wait of an asynchronous generation.
    pub timeout: Duration,
}

/// One message of a chat conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn system(content: impl Into<String>) -> Self {
        ChatMessage {
            role: "system".to_owned(),
            content: content.into(),
        }
    }

    pub fn user(content: impl Into<String>) -> Self {
        ChatMessage {
            role: "user".to_owned(),
            content: content.into(),
        }
    }

    pub fn assistant(content: impl Into<String>) -> Self {
        ChatMessage {
            role: "assistant".to_owned(),
            content: content.into(),
        }
    }
}

/// A chat completion request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TextRequest {
    pub messages: Vec<ChatMessage>,
    pub temperature: Option<f32>,
    pub max_tokens: Option<u32>,
    /// Ask for a JSON answer (`response_format: json_object` where the provider supports it).
    pub json_output: bool,
    /// The JSON shape wanted, as an example value; the simulated model answers in this shape.
    pub json_example: Option<Value>,
    /// Switch the model's deep-thinking mode on (`Some(true)`) or off (`Some(false)`); `None`
    /// leaves the model's default. Adapters map it through the model's profile and ignore it
    /// where the model has no such switch.
    pub think: Option<bool>,
}

impl TextRequest {
    /// A request of one user message.
    pub fn user(prompt: impl Into<String>) -> Self {
        TextRequest {
            messages: vec![ChatMessage::user(prompt)],
            ..TextRequest::default()
        }
    }

    /// Asks for a JSON answer shaped like `example`.
    pub fn json(mut self, example: Value) -> Self {
        self.json_output = true;
        self.json_example = Some(example);
        self
    }
}

/// Token counts of one call, as the `tokens` field of a step's result records them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenUsage {
    #[serde(alias = "prompt_tokens")]
    pub prompt_tokens: u64,
    #[serde(alias = "completion_tokens")]
    pub completion_tokens: u64,
    #[serde(alias = "total_tokens")]
    pub total_tokens: u64,
}

impl std::ops::Add for TokenUsage {
    type Output = TokenUsage;

    fn add(self, other: TokenUsage) -> TokenUsage {
        TokenUsage {
            prompt_tokens: self.prompt_tokens + other.prompt_tokens,
            completion_tokens: self.completion_tokens + other.completion_tokens,
            total_tokens: self.total_tokens + other.total_tokens,
        }
    }
}

impl std::ops::AddAssign for TokenUsage {
    fn add_assign(&mut self, other: TokenUsage) {
        *self = *self + other;
    }
}

pub use nosyntask_domain::Usage;

/// A chat completion answer.
#[derive(Debug, Clone, PartialEq)]
pub struct TextResponse {
    pub content: String,
    /// `stop`, `length` (the answer was cut off), …
    pub finish_reason: Option<String>,
    pub usage: TokenUsage,
    /// The cost of the call, in millionths of the prices' currency, where the model has prices.
    pub cost_micros: Option<u64>,
    /// The configured model name that answered.
    pub model: String,
    /// The adapter / provider that answered (`openai_compatible`, `simulated`, …).
    pub provider: String,
}

impl TextResponse {
    /// True when the provider stopped because of the token limit.
    pub fn is_truncated(&self) -> bool {
        self.finish_reason.as_deref() == Some("length")
    }
}

/// A text (LLM) model.
#[async_trait]
pub trait TextModel: Send + Sync {
    fn info(&self) -> &ModelInfo;

    /// Runs one chat completion. Waits for a concurrency slot first; the model's timeout applies.
    async fn complete(
        &self,
        request: TextRequest,
        cancel: &CancellationToken,
    ) -> Result<TextResponse, TaskError>;
}

/// An image or video generation request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MediaRequest {
    pub prompt: String,
    pub negative_prompt: Option<String>,
    pub width: u32,
    pub height: u32,
    /// Video length.
    pub duration_secs: Option<u32>,
    /// Reference image, or a video's start frame.
    pub image_url: Option<String>,
    /// A video's end frame.
    pub end_image_url: Option<String>,
    /// Where this call keeps its state inside the task's checkpoint object (e.g. `frontView`);
    /// distinct for every media call of one handler.
    pub checkpoint_key: String,
    /// Provider-specific extra input, merged into the request where the adapter supports it.
    pub extra: Value,
}

/// What a media call needs from the running step.
#[derive(Debug, Clone)]
pub struct MediaContext {
    /// Progress of this call, usually a `scaled` part of the step's reporter.
    pub progress: ProgressReporter,
    /// The task's checkpoint object; the call reads and writes only its `checkpoint_key` entry.
    pub checkpoint: Checkpoints,
    pub cancel: CancellationToken,
}

impl MediaContext {
    pub fn new(
        progress: ProgressReporter,
        checkpoint: Checkpoints,
        cancel: CancellationToken,
    ) -> Self {
        MediaContext {
            progress,
            checkpoint,
            cancel,
        }
    }

    /// A context recorded nowhere (tests, direct calls).
    pub fn detached() -> Self {
        MediaContext {
            progress: ProgressReporter::detached(),
            checkpoint: Checkpoints::in_memory(None),
            cancel: CancellationToken::new(),
        }
    }

    /// This call's entry of the checkpoint object, if a previous attempt saved one.
    pub async fn checkpoint_entry(&self, key: &str) -> Option<Value> {
        self.checkpoint.entry(key).await
    }

    /// Saves this call's entry, keeping the other entries, durably before returning.
    pub async fn save_checkpoint_entry(
        &self,
        key: &str,
        value: Value,
        external_task_id: Option<&str>,
    ) -> Result<(), TaskError> {
        self.checkpoint
            .merge_entry(key, value, external_task_id)
            .await
    }
}

/// A generated image or video, copied into the artifact store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaOutput {
    /// The artifact store URL (`/files/ab/cdef….png`).
    pub url: String,
    pub content_type: String,
    /// Where the provider served it, if it came from a URL (may expire).
    pub source_url: Option<String>,
    /// What the call used and cost, where the provider or the model's profile tells.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// An image or video model.
#[async_trait]
pub trait MediaModel: Send + Sync {
    fn info(&self) -> &ModelInfo;

    /// Generates one image or video and stores it. Resumes the provider task recorded under
    /// `request.checkpoint_key` instead of submitting again.
    async fn generate(
        &self,
        request: MediaRequest,
        ctx: MediaContext,
    ) -> Result<MediaOutput, TaskError>;
}

/// The concurrency of a model that has no limit of its own (a simulated model, unless its
/// configuration gives one).
pub const UNLIMITED_CONCURRENCY: usize = 100_000;

/// The cluster-wide limits of the configured models that have any: every model that costs
/// something, and a simulated model given a concurrency or rate limit (unlimited simulated models
/// keep the claim free of limit checks): what a worker records with
/// `JobStore::set_model_limits`.
pub fn model_limits(models: &[ModelInfo]) -> Vec<crate::ports::ModelLimit> {
    models
        .iter()
        .filter(|m| {
            m.adapter != "simulated"
                || m.requests_per_minute.is_some()
                || m.max_concurrency < UNLIMITED_CONCURRENCY
        })
        .map(|m| crate::ports::ModelLimit {
            name: m.name.clone(),
            max_concurrency: u32::try_from(m.max_concurrency).unwrap_or(u32::MAX),
            requests_per_minute: m.requests_per_minute,
        })
        .collect()
}

/// The configured models by name.
pub trait ModelCatalog: Send + Sync {
    /// The text model called `name`, or the default text model. An unknown name is a permanent
    /// error that lists the configured text models.
    fn text(&self, name: Option<&str>) -> Result<Arc<dyn TextModel>, TaskError>;
    /// The image model called `name`, or the default image model.
    fn image(&self, name: Option<&str>) -> Result<Arc<dyn MediaModel>, TaskError>;
    /// The video model called `name`, or the default video model.
    fn video(&self, name: Option<&str>) -> Result<Arc<dyn MediaModel>, TaskError>;
    /// Every configured model, in configuration order.
    fn list(&self) -> Vec<ModelInfo>;
}

/// Where generated media are kept and served from.
#[async_trait]
pub trait ArtifactStore: Send + Sync {
    /// Stores `bytes` and returns the public URL path (`/files/ab/cdef….png`). Storing the same
    /// bytes twice returns the same URL.
    async fn put(
        &self,
        bytes: Vec<u8>,
        content_type: &str,
        name_hint: &str,
    ) -> Result<String, TaskError>;

    /// The bytes and content type behind a URL path `put` returned; `Ok(None)` when the path is
    /// not one of this store's. Adapters use it to inline a reference image for a provider that
    /// cannot fetch it.
    async fn get(&self, _url: &str) -> Result<Option<(Vec<u8>, String)>, TaskError> {
        Ok(None)
    }

    /// The absolute URL a provider on the internet can fetch `url` at (a path `put` returned,
    /// or an absolute URL the store handed out, perhaps expired since), when the store knows
    /// one (a configured public base URL, a URL signed by the server or presigned by the
    /// object store).
    async fn public_url(&self, _url: &str) -> Option<String> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn concurrent_entries_of_one_checkpoint_are_all_kept() {
        let ctx = MediaContext::new(
            ProgressReporter::detached(),
            Checkpoints::in_memory(Some(json!({"handler": 1}))),
            CancellationToken::new(),
        );
        let keys = ["frontView", "sideView", "backView"];
        let saves = keys.iter().map(|key| {
            let ctx = ctx.clone();
            async move {
                ctx.save_checkpoint_entry(key, json!({"taskId": key}), Some(key))
                    .await
            }
        });
        for result in futures::future::join_all(saves).await {
            result.unwrap();
        }
        for key in keys {
            assert_eq!(
                ctx.checkpoint_entry(key).await,
                Some(json!({"taskId": key}))
            );
        }
        assert_eq!(ctx.checkpoint_entry("handler").await, Some(json!(1)));
        assert_eq!(ctx.checkpoint_entry("missing").await, None);
    }

    /// A simulated model given a concurrency limit holds it across the cluster like a paid
    /// one: otherwise its tasks were claimed, each held a worker slot waiting for the model
    /// inside the process, and a job on a free model waited behind them.
    #[test]
    fn limited_simulated_models_are_limited_across_the_cluster() {
        let model = |name: &str, adapter: &str, max_concurrency, rpm| ModelInfo {
            name: name.to_owned(),
            kind: ModelKind::Text,
            adapter: adapter.to_owned(),
            model: name.to_owned(),
            is_default: false,
            max_concurrency,
            requests_per_minute: rpm,
            timeout: Duration::from_secs(1),
        };
        let limits = model_limits(&[
            model("free", "simulated", UNLIMITED_CONCURRENCY, None),
            model("one-slot", "simulated", 1, None),
            model("rated", "simulated", UNLIMITED_CONCURRENCY, Some(30)),
            model("paid", "openai_compatible", 4, None),
        ]);
        let names: Vec<&str> = limits.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["one-slot", "rated", "paid"]);
        assert_eq!(limits[0].max_concurrency, 1);
    }

    #[test]
    fn token_usage_reads_provider_casing_and_writes_camel_case() {
        let usage: TokenUsage = serde_json::from_value(
            json!({"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}),
        )
        .unwrap();
        assert_eq!(
            serde_json::to_value(usage + usage).unwrap(),
            json!({"promptTokens": 6, "completionTokens": 8, "totalTokens": 14})
        );
    }
}
