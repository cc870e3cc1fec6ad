//! The simulated provider and the catalog built from the default configuration.

use std::sync::Arc;
use std::time::Duration;

use nosyntask_domain::TaskError;
use nosyntask_engine::ports::{ArtifactStore, ModelCatalog, ModelKind, TextRequest};
use nosyntask_engine::{CancellationToken, Checkpoints, Metrics};
use nosyntask_providers::{Catalog, ConfigError, ModelConfig, SimulatedConfig, default_models};
use serde_json::json;

use crate::common::*;

fn catalog(f: &Fixture, models: &[ModelConfig]) -> Catalog {
    f.catalog(models)
}

fn fast(name: &str, kind: ModelKind, latency_ms: u64) -> ModelConfig {
    let mut config = ModelConfig::simulated(name, kind, true);
    config.simulated = Some(SimulatedConfig {
        latency_ms: Some(latency_ms),
        failure_rate: 0.0,
        seed: 0,
    });
    config
}

#[tokio::test]
async fn with_no_configuration_every_kind_works() {
    let f = Fixture::new().await;
    let catalog = catalog(&f, &default_models());
    let names: Vec<(String, ModelKind, bool)> = catalog
        .list()
        .into_iter()
        .map(|m| (m.name, m.kind, m.is_default))
        .collect();
    assert_eq!(
        names,
        vec![
            ("sim-text".into(), ModelKind::Text, true),
            ("sim-image".into(), ModelKind::Image, true),
            ("sim-video".into(), ModelKind::Video, true)
        ]
    );
    let text = catalog.text(None).unwrap();
    let example = json!({"characters": [{"name": "名字", "appearance": "外貌描述，越详细越好，包括发型和服装", "age": 20}]});
    let request = TextRequest::user("剧本：李明在雨夜的车站等待多年未见的朋友王芳。").json(example);
    let response = text
        .complete(request.clone(), &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(response.provider, "simulated");
    assert!(response.usage.total_tokens > 0);
    let value: serde_json::Value = serde_json::from_str(&response.content).unwrap();
    let characters = value["characters"].as_array().unwrap();
    assert!(!characters.is_empty());
    assert!(
        characters
            .iter()
            .all(|c| c["name"].is_string() && c["age"].is_u64())
    );
    let again = text
        .complete(request, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(again.content, response.content, "deterministic");

    let (ctx, _) = context(&Checkpoints::in_memory(None), &CancellationToken::new());
    let image = catalog
        .image(None)
        .unwrap()
        .generate(request_sized("front", 512, 768), ctx)
        .await
        .unwrap();
    assert_eq!(image.content_type, "image/png");
    let (ctx, _) = context(&Checkpoints::in_memory(None), &CancellationToken::new());
    let video = catalog
        .video(None)
        .unwrap()
        .generate(request_sized("clip", 1024, 576), ctx)
        .await
        .unwrap();
    assert_eq!(video.content_type, "image/gif");
    assert!(f.artifacts.resolve(&video.url).unwrap().exists());
}

fn request_sized(key: &str, width: u32, height: u32) -> nosyntask_engine::ports::MediaRequest {
    let mut r = request(key);
    r.width = width;
    r.height = height;
    r
}

#[tokio::test]
async fn images_are_real_pngs_of_the_requested_size() {
    let f = Fixture::new().await;
    let model = catalog(&f, &[fast("img", ModelKind::Image, 50)])
        .image(None)
        .unwrap();
    let (ctx, progress) = context(&Checkpoints::in_memory(None), &CancellationToken::new());
    let output = model
        .generate(request_sized("front", 640, 360), ctx)
        .await
        .unwrap();
    let bytes = f.stored(&output.url);
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let reader = decoder.read_info().unwrap();
    assert_eq!((reader.info().width, reader.info().height), (640, 360));
    assert!(
        progress.current() >= 90,
        "progress reported while rendering"
    );
}

#[tokio::test]
async fn videos_are_real_animated_gifs() {
    let f = Fixture::new().await;
    let model = catalog(&f, &[fast("vid", ModelKind::Video, 50)])
        .video(None)
        .unwrap();
    let (ctx, _) = context(&Checkpoints::in_memory(None), &CancellationToken::new());
    let output = model
        .generate(request_sized("clip", 1280, 720), ctx)
        .await
        .unwrap();
    let bytes = f.stored(&output.url);
    assert_eq!(&bytes[..6], b"GIF89a");
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::Indexed);
    let mut decoder = options.read_info(std::io::Cursor::new(bytes)).unwrap();
    assert_eq!((decoder.width(), decoder.height()), (192, 108));
    let mut frames = 0;
    while decoder.read_next_frame().unwrap().is_some() {
        frames += 1;
    }
    assert!(frames >= 8, "{frames} frames");
}

#[tokio::test]
async fn failure_rate_and_cancellation() {
    let f = Fixture::new().await;
    let mut failing = fast("fail", ModelKind::Text, 1);
    failing.simulated.as_mut().unwrap().failure_rate = 1.0;
    let err = catalog(&f, &[failing])
        .text(None)
        .unwrap()
        .complete(TextRequest::user("x"), &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        err.is_retryable() && err.to_string().contains("simulated provider failure"),
        "{err}"
    );

    let model = catalog(&f, &[fast("slow", ModelKind::Video, 60_000)])
        .video(None)
        .unwrap();
    let cancel = CancellationToken::new();
    let (ctx, _) = context(&Checkpoints::in_memory(None), &cancel);
    let call = tokio::spawn(async move { model.generate(request("clip"), ctx).await });
    cancel.cancel();
    let result = tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(result.unwrap_err(), TaskError::Cancelled);
}

#[tokio::test]
async fn a_finished_call_is_not_repeated() {
    let f = Fixture::new().await;
    let model = catalog(&f, &[fast("slow", ModelKind::Image, 60_000)])
        .image(None)
        .unwrap();
    let stored = json!({"front": {"output": {"url": "/files/ab/cd.png", "content_type": "image/png", "source_url": null}}, "other": 1});
    let (ctx, _) = context(
        &Checkpoints::in_memory(Some(stored)),
        &CancellationToken::new(),
    );
    let result = tokio::time::timeout(
        Duration::from_secs(2),
        model.generate(request("front"), ctx),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(result.url, "/files/ab/cd.png");
}

#[tokio::test]
async fn names_pick_models_and_unknown_names_list_the_configured_ones() {
    let f = Fixture::new().await;
    let mut a = fast("Writer A", ModelKind::Text, 1);
    a.default = false;
    let mut b = fast("Writer B", ModelKind::Text, 1);
    b.default = false;
    let catalog = catalog(&f, &[a, b]);
    assert_eq!(
        catalog.text(None).unwrap().info().name,
        "Writer A",
        "first of its kind without a default"
    );
    assert!(catalog.list()[0].is_default && !catalog.list()[1].is_default);
    assert_eq!(
        catalog.text(Some("writer b")).unwrap().info().name,
        "Writer B"
    );
    let err = catalog.text(Some("GPT-9")).err().unwrap();
    assert_eq!(
        err,
        TaskError::permanent(
            "unknown text model \"GPT-9\"; configured text models: Writer A, Writer B"
        )
    );
    assert_eq!(
        catalog.video(None).err().unwrap(),
        TaskError::permanent("no video model is configured")
    );
}

#[tokio::test]
async fn invalid_configuration_names_the_model_and_key() {
    let f = Fixture::new().await;
    let mut bad = ModelConfig::simulated("Broken", ModelKind::Video, true);
    bad.adapter = nosyntask_providers::AdapterKind::AsyncTask;
    bad.simulated = None;
    bad.base_url = Some(f.uri());
    bad.async_task =
        Some(json!({"submit": {"url": "{{base_url}}/go", "body": {"p": "{{promt}}"}}}));
    let artifacts: Arc<dyn ArtifactStore> = f.artifacts.clone();
    let err = Catalog::from_config(&[bad], artifacts, Arc::new(Metrics::new()))
        .err()
        .unwrap();
    match err {
        ConfigError::Invalid {
            name, key, message, ..
        } => {
            assert_eq!(
                (name.as_str(), key.as_str()),
                ("Broken", "async_task.submit.body")
            );
            assert!(
                message.contains("unknown placeholder `{{promt}}`"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn provider_latency_is_recorded_by_model() {
    let f = Fixture::new().await;
    let metrics = Arc::new(Metrics::new());
    let artifacts: Arc<dyn ArtifactStore> = f.artifacts.clone();
    let catalog = Catalog::from_config(
        &[fast("Timed", ModelKind::Text, 1)],
        artifacts,
        metrics.clone(),
    )
    .unwrap();
    catalog
        .text(None)
        .unwrap()
        .complete(TextRequest::user("x"), &CancellationToken::new())
        .await
        .unwrap();
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, metrics.registry()).unwrap();
    assert!(
        text.lines().any(
            |l| l.starts_with("nosyntask_provider_latency_seconds_count")
                && l.contains("model=\"Timed\"")
                && l.contains("outcome=\"ok\"")
        ),
        "{text}"
    );
}
