//! The configuration examples of the README parse and validate.

use nosyntask_providers::{ModelConfig, validate_models};
use serde::Deserialize;

#[derive(Deserialize)]
struct Root {
    models: Vec<ModelConfig>,
}

#[test]
fn readme_examples_are_valid_configuration() {
    let readme = include_str!("../../README.md");
    let blocks: Vec<&str> = readme
        .split("```toml\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    assert_eq!(blocks.len(), 2);
    let source = config::Config::builder()
        .add_source(config::File::from_str(
            &blocks.concat(),
            config::FileFormat::Toml,
        ))
        .build()
        .unwrap();
    let root: Root = source.try_deserialize().unwrap();
    assert_eq!(root.models.len(), 8);
    validate_models(&root.models).unwrap();
}
