//! Every configuration example of `docs/providers.md` parses, validates and builds, and the
//! profiles it describes are the ones the models get.

use std::sync::Arc;

use nosyntask_engine::Metrics;
use nosyntask_engine::ports::ArtifactStore;
use nosyntask_providers::{Catalog, LocalArtifacts, ModelConfig, Profile, validate_models};
use serde::Deserialize;

#[derive(Deserialize)]
struct Root {
    models: Vec<ModelConfig>,
}

fn blocks() -> Vec<&'static str> {
    include_str!("../../../../docs/providers.md")
        .split("```toml\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect()
}

fn load(block: &str) -> Vec<ModelConfig> {
    let source = config::Config::builder()
        .add_source(config::File::from_str(block, config::FileFormat::Toml))
        .build()
        .unwrap_or_else(|e| panic!("{e}\n{block}"));
    let root: Root = source
        .try_deserialize()
        .unwrap_or_else(|e| panic!("{e}\n{block}"));
    root.models
}

#[test]
fn every_example_in_the_providers_doc_is_valid_configuration() {
    let blocks = blocks();
    assert!(blocks.len() >= 10, "{} examples", blocks.len());
    let dir = tempfile::tempdir().unwrap();
    let artifacts: Arc<dyn ArtifactStore> = Arc::new(LocalArtifacts::new(dir.path(), "/files"));
    let mut all = Vec::new();
    for block in blocks {
        let models = load(block);
        assert!(!models.is_empty(), "{block}");
        validate_models(&models).unwrap_or_else(|e| panic!("{e}\n{block}"));
        Catalog::from_config(&models, artifacts.clone(), Arc::new(Metrics::new()))
            .unwrap_or_else(|e| panic!("{e}\n{block}"));
        all.extend(models);
    }
    let profile = |name: &str| Profile::for_model(all.iter().find(|m| m.name == name).unwrap());
    assert_eq!(profile("DeepSeek Chat").max_output_tokens, Some(8192));
    assert_eq!(profile("GPT-5 mini").token_param, "max_completion_tokens");
    assert!(profile("Qwen3").params.is_some());
    assert_eq!(profile("Qwen3 local").drop_params, vec!["enable_thinking"]);
    assert_eq!(profile("Sora").default_size, Some((1280, 720)));
    assert_eq!(profile("Kling").durations, vec![5, 10]);
    assert_eq!(profile("Wan i2v").durations, vec![5]);
    assert_eq!(profile("GPT Image").sizes.len(), 3);
    assert_eq!(profile("DALL-E 3").sizes[1], (1792, 1024));
    assert_eq!(profile("GPT-4o").max_output_tokens, Some(16_384));
    assert_eq!(profile("Qwen Plus").max_output_tokens, Some(8192));
    // Prices are read and used for the cost.
    let usage = nosyntask_engine::ports::Usage {
        prompt_tokens: Some(1_000_000),
        completion_tokens: Some(100_000),
        ..Default::default()
    };
    let cost = |name: &str| {
        nosyntask_providers::profile::usage::cost_micros(
            &usage,
            profile(name).prices.as_ref().unwrap(),
        )
    };
    // 1M × 2.5 + 0.1M × 10 = 3.5.
    assert_eq!(cost("GPT-4o"), Some(3_500_000));
    assert_eq!(
        profile("Wan t2v").prices.unwrap().per_video_second,
        Some(0.24)
    );
}
