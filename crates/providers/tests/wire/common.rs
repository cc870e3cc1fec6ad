//! Shared fixtures: a loopback mock provider, a temporary artifact store, media contexts.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use nosyntask_engine::ports::{ArtifactStore, MediaContext, MediaRequest, ModelKind};
use nosyntask_engine::{CancellationToken, Checkpoints, Metrics, ProgressReporter, ProgressSlot};
use nosyntask_providers::{AdapterKind, Catalog, LocalArtifacts, ModelConfig};
use serde_json::{Value, json};
use tokio::sync::Notify;
use wiremock::{MockServer, Request, Respond, ResponseTemplate};

/// An environment variable cargo sets for test processes: it stands in for an API key, so the
/// tests need not change the environment.
pub const KEY_ENV: &str = "CARGO_PKG_NAME";

pub fn key() -> String {
    std::env::var(KEY_ENV).expect("cargo sets CARGO_PKG_NAME")
}

pub struct Fixture {
    pub server: MockServer,
    /// Kept so the directory lives as long as the fixture.
    pub _dir: tempfile::TempDir,
    pub artifacts: Arc<LocalArtifacts>,
}

impl Fixture {
    pub async fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        Fixture {
            server: MockServer::start().await,
            artifacts: Arc::new(LocalArtifacts::new(dir.path(), "/files")),
            _dir: dir,
        }
    }

    pub fn uri(&self) -> String {
        self.server.uri()
    }

    pub fn catalog(&self, models: &[ModelConfig]) -> Catalog {
        let artifacts: Arc<dyn ArtifactStore> = self.artifacts.clone();
        Catalog::from_config(models, artifacts, Arc::new(Metrics::new())).unwrap()
    }

    /// How many requests the mock saw with this method and path.
    pub async fn count(&self, method: &str, path: &str) -> usize {
        self.server
            .received_requests()
            .await
            .unwrap()
            .iter()
            .filter(|r| r.method.as_str() == method && r.url.path() == path)
            .count()
    }

    pub async fn requests(&self, method: &str, path: &str) -> Vec<Request> {
        self.server
            .received_requests()
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.method.as_str() == method && r.url.path() == path)
            .collect()
    }

    /// Reads a stored artifact back.
    pub fn stored(&self, url: &str) -> Vec<u8> {
        std::fs::read(self.artifacts.resolve(url).unwrap()).unwrap()
    }
}

/// A model of `adapter` pointing at the mock.
pub fn model(name: &str, kind: ModelKind, adapter: AdapterKind, base_url: &str) -> ModelConfig {
    let mut config = ModelConfig::simulated(name, kind, true);
    config.adapter = adapter;
    config.simulated = None;
    config.base_url = Some(base_url.to_owned());
    config.api_key_env = Some(KEY_ENV.to_owned());
    config.max_concurrency = Some(4);
    config.timeout_secs = Some(20);
    config
}

/// Merges `patch` into the model's `async_task` table.
pub fn with_async(mut config: ModelConfig, patch: Value) -> ModelConfig {
    let mut table = config.async_task.take().unwrap_or_else(|| json!({}));
    for (k, v) in patch.as_object().unwrap() {
        table[k] = v.clone();
    }
    config.async_task = Some(table);
    config
}

/// A media context with in-memory checkpoints, and the progress slot it reports to.
pub fn context(
    checkpoint: &Checkpoints,
    cancel: &CancellationToken,
) -> (MediaContext, Arc<ProgressSlot>) {
    let slot = ProgressSlot::new();
    let ctx = MediaContext::new(
        ProgressReporter::new(slot.clone()),
        checkpoint.clone(),
        cancel.clone(),
    );
    (ctx, slot)
}

pub fn request(key: &str) -> MediaRequest {
    MediaRequest {
        prompt: "雨夜的车站，\"旧友\"重逢\nwide shot".into(),
        width: 1024,
        height: 576,
        duration_secs: Some(5),
        checkpoint_key: key.into(),
        ..MediaRequest::default()
    }
}

/// A real PNG (the simulated renderer's).
pub fn png_bytes() -> Vec<u8> {
    let request = MediaRequest {
        prompt: "fixture".into(),
        width: 64,
        height: 48,
        ..MediaRequest::default()
    };
    nosyntask_providers::simulated::simulated_media(ModelKind::Image, &request, 1)
        .unwrap()
        .0
}

/// The start of an MP4 file (what the downloader checks).
pub fn mp4_bytes() -> Vec<u8> {
    let mut bytes = b"\0\0\0\x20ftypisom\0\0\x02\0isomiso2avc1mp41".to_vec();
    bytes.extend_from_slice(&[0u8; 64]);
    bytes
}

/// Responds with the templates in turn, repeating the last; signals `notify` on every call.
pub struct Sequence {
    pub templates: Vec<ResponseTemplate>,
    pub calls: AtomicUsize,
    pub notify: Arc<Notify>,
}

impl Sequence {
    pub fn new(templates: Vec<ResponseTemplate>) -> (Sequence, Arc<Notify>) {
        let notify = Arc::new(Notify::new());
        (
            Sequence {
                templates,
                calls: AtomicUsize::new(0),
                notify: notify.clone(),
            },
            notify,
        )
    }
}

impl Respond for Sequence {
    fn respond(&self, _request: &Request) -> ResponseTemplate {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        self.notify.notify_one();
        self.templates[call.min(self.templates.len() - 1)].clone()
    }
}

pub fn json_response(status: u16, body: Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(body)
}

pub fn html_page() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(
        "<!DOCTYPE html><html><head><title>Welcome to nginx!</title></head><body>It works</body></html>",
        "text/html",
    )
}

/// A stand-in endpoint: answers each request with what `F` makes of it, so a stand-in can
/// enforce a provider's documented rules.
pub struct Rule<F>(pub F);

impl<F> Respond for Rule<F>
where
    F: Fn(&Request) -> ResponseTemplate + Send + Sync + 'static,
{
    fn respond(&self, request: &Request) -> ResponseTemplate {
        (self.0)(request)
    }
}

/// Records when each request arrived and answers with the templates in turn (the last repeats).
pub struct Timed {
    pub templates: Vec<ResponseTemplate>,
    pub seen: Arc<std::sync::Mutex<Vec<std::time::Instant>>>,
}

impl Respond for Timed {
    fn respond(&self, _request: &Request) -> ResponseTemplate {
        let mut seen = self.seen.lock().unwrap();
        seen.push(std::time::Instant::now());
        self.templates[(seen.len() - 1).min(self.templates.len() - 1)].clone()
    }
}

/// A model built from a configuration table, as the server reads `[[models]]`.
pub fn model_from(table: Value) -> ModelConfig {
    serde_json::from_value(table).unwrap()
}
