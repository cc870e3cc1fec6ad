//! The `simulated` provider: offline, deterministic models for every kind, with configurable
//! latency and failure rate. It is the default configuration, so a fresh server works without
//! network or keys.
//!
//! Text honours a requested JSON shape; images are real PNGs of the requested size; videos are
//! small looping animated GIFs. Media calls behave like an async task API: the simulated task is
//! checkpointed, reports progress while it "renders", and resumes after a crash where it was.

mod render;
mod text;

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use nosyntask_domain::TaskError;
use nosyntask_engine::ports::{
    ArtifactStore, MediaContext, MediaModel, MediaOutput, MediaRequest, ModelInfo, ModelKind,
    TextModel, TextRequest, TextResponse, TokenUsage,
};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::config::{ModelConfig, SimulatedConfig};
use crate::poll::{PollOptions, PollState, ProviderTask, RemoteJob, Submitted, submit_and_poll};

pub use render::MAX_SIDE;
pub use text::prompt_words;

/// SplitMix64: a tiny deterministic generator, stable across crate versions.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// FNV-1a: the seed of a prompt.
pub(crate) fn hash(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in *part {
            h ^= *b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn options(config: &ModelConfig) -> SimulatedConfig {
    config.simulated.clone().unwrap_or(SimulatedConfig {
        latency_ms: None,
        failure_rate: 0.0,
        seed: 0,
    })
}

fn latency(config: &SimulatedConfig, kind: ModelKind) -> Duration {
    Duration::from_millis(config.latency_ms.unwrap_or(match kind {
        ModelKind::Text => 300,
        ModelKind::Image => 1000,
        ModelKind::Video => 3000,
    }))
}

fn maybe_fail(config: &SimulatedConfig) -> Result<(), TaskError> {
    if config.failure_rate > 0.0 && rand::random::<f64>() < config.failure_rate {
        return Err(TaskError::retryable(format!(
            "simulated provider failure (failure_rate={})",
            config.failure_rate
        )));
    }
    Ok(())
}

/// A simulated text model.
pub struct SimulatedText {
    info: ModelInfo,
    options: SimulatedConfig,
}

impl SimulatedText {
    pub fn new(info: ModelInfo, config: &ModelConfig) -> Self {
        SimulatedText {
            info,
            options: options(config),
        }
    }
}

/// The answer the simulated text model gives to `request` (without latency or failures).
pub fn simulated_answer(request: &TextRequest, seed: u64) -> String {
    let prompt: String = request
        .messages
        .iter()
        .filter(|m| m.role != "system")
        .map(|m| m.content.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let mut writer = text::Writer::new(&prompt, hash(&[prompt.as_bytes(), &seed.to_le_bytes()]));
    match (&request.json_example, request.json_output) {
        (Some(example), _) => writer.like(example).to_string(),
        (None, true) => json!({"content": writer.prose()}).to_string(),
        (None, false) => writer.prose(),
    }
}

#[async_trait]
impl TextModel for SimulatedText {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    async fn complete(
        &self,
        request: TextRequest,
        cancel: &CancellationToken,
    ) -> Result<TextResponse, TaskError> {
        tokio::select! {
            _ = cancel.cancelled() => return Err(TaskError::Cancelled),
            _ = tokio::time::sleep(latency(&self.options, ModelKind::Text)) => {}
        }
        maybe_fail(&self.options)?;
        let content = simulated_answer(&request, self.options.seed);
        let prompt_chars: usize = request
            .messages
            .iter()
            .map(|m| m.content.chars().count())
            .sum();
        let prompt_tokens = (prompt_chars as u64).div_ceil(2);
        let completion_tokens = (content.chars().count() as u64).div_ceil(2);
        Ok(TextResponse {
            content,
            finish_reason: Some("stop".to_owned()),
            usage: TokenUsage {
                prompt_tokens,
                completion_tokens,
                total_tokens: prompt_tokens + completion_tokens,
            },
            cost_micros: None,
            model: self.info.name.clone(),
            provider: "simulated".to_owned(),
        })
    }
}

/// A simulated image or video model.
pub struct SimulatedMedia {
    info: ModelInfo,
    options: SimulatedConfig,
    artifacts: Arc<dyn ArtifactStore>,
}

impl SimulatedMedia {
    pub fn new(info: ModelInfo, config: &ModelConfig, artifacts: Arc<dyn ArtifactStore>) -> Self {
        SimulatedMedia {
            info,
            options: options(config),
            artifacts,
        }
    }
}

/// Renders running at once in this process: one per CPU. Rendering is CPU work; thousands of
/// simulated calls finishing together would otherwise fill the blocking pool with hundreds of
/// threads that starve the runtime (and the database connection) and hold their buffers at once.
static RENDERS: LazyLock<Semaphore> =
    LazyLock::new(|| Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())));

/// The file the simulated model makes for a request: `(bytes, content type)`.
pub fn simulated_media(
    kind: ModelKind,
    request: &MediaRequest,
    seed: u64,
) -> Result<(Vec<u8>, &'static str), String> {
    let seed = hash(&[
        request.prompt.as_bytes(),
        request.image_url.as_deref().unwrap_or("").as_bytes(),
        &seed.to_le_bytes(),
    ]);
    match kind {
        ModelKind::Video => {
            render::gif(seed, request.width, request.height).map(|b| (b, "image/gif"))
        }
        _ => {
            let (w, h) = match (request.width, request.height) {
                (0, _) | (_, 0) => (512, 512),
                size => size,
            };
            render::png(seed, w, h).map(|b| (b, "image/png"))
        }
    }
}

struct Render<'a> {
    model: &'a SimulatedMedia,
    latency: Duration,
}

#[async_trait]
impl RemoteJob for Render<'_> {
    type Output = ();

    async fn submit(&self) -> Result<Submitted<()>, TaskError> {
        maybe_fail(&self.model.options)?;
        if self.latency.is_zero() {
            return Ok(Submitted::Done(()));
        }
        Ok(Submitted::Started(ProviderTask::new(format!(
            "sim-{:016x}",
            rand::random::<u64>()
        ))))
    }

    async fn poll(&self, task: &ProviderTask) -> Result<PollState<()>, TaskError> {
        let elapsed = (chrono::Utc::now().timestamp_millis() - task.submitted_at_ms).max(0) as f64;
        let total = self.latency.as_millis().max(1) as f64;
        Ok(if elapsed >= total {
            PollState::Done(())
        } else {
            PollState::Running {
                progress: Some(100.0 * elapsed / total),
            }
        })
    }

    async fn cancel(&self, _task: &ProviderTask) -> Result<bool, TaskError> {
        Ok(true)
    }
}

#[async_trait]
impl MediaModel for SimulatedMedia {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    async fn generate(
        &self,
        request: MediaRequest,
        ctx: MediaContext,
    ) -> Result<MediaOutput, TaskError> {
        let latency = latency(&self.options, self.info.kind);
        // Progress moves in about 20 steps; slow renders poll every 3 s at most, which keeps
        // thousands of waiting tasks cheap.
        let interval = (latency / 20).clamp(Duration::from_millis(20), Duration::from_secs(3));
        let mut poll = PollOptions::new("simulated", interval, self.info.timeout);
        poll.expected = latency;
        submit_and_poll(
            &Render {
                model: self,
                latency,
            },
            &request.checkpoint_key,
            &ctx,
            &poll,
        )
        .await?;
        let kind = self.info.kind;
        let seed = self.options.seed;
        let name_hint = request.checkpoint_key.clone();
        let render = tokio::select! {
            _ = ctx.cancel.cancelled() => return Err(TaskError::Cancelled),
            permit = RENDERS.acquire() => permit.ok(),
        };
        let (bytes, content_type) =
            tokio::task::spawn_blocking(move || simulated_media(kind, &request, seed))
                .await
                .map_err(|_| TaskError::permanent("rendering the simulated file failed"))?
                .map_err(|e| {
                    TaskError::permanent(format!("rendering the simulated file failed: {e}"))
                })?;
        drop(render);
        let url = self.artifacts.put(bytes, content_type, &name_hint).await?;
        ctx.progress.report(99.0);
        Ok(MediaOutput {
            url,
            content_type: content_type.to_owned(),
            source_url: None,
            usage: None,
        })
    }
}

/// The JSON the simulated text model answers for an example (used by tests of callers).
pub fn simulated_json(prompt: &str, example: &Value, seed: u64) -> Value {
    let request = TextRequest::user(prompt).json(example.clone());
    serde_json::from_str(&simulated_answer(&request, seed)).unwrap_or(Value::Null)
}
