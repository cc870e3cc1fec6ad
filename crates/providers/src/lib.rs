//! # nosyntask providers
//!
//! The AI model adapters behind the engine's model ports ([`TextModel`], [`MediaModel`],
//! [`ModelCatalog`], [`ArtifactStore`]):
//!
//! - [`Catalog`] builds the configured models (`[[models]]`, see [`ModelConfig`]) and wraps each
//!   with its concurrency limit, timeout and latency metrics;
//! - adapters: `openai_compatible` chat completions, `openai_images`, the declarative
//!   `async_task` submit/poll adapter and its presets (`replicate`, `fal`, `dashscope`,
//!   `openai_videos`), and the offline `simulated` provider (the default configuration);
//! - [`submit_and_poll`]: checkpointed polling of provider tasks, so a crash never pays twice;
//! - [`json_recovery`]: getting typed JSON out of LLM answers;
//! - [`LocalArtifacts`]: the content-addressed file store generated media are copied into.
//!
//! Inside, no module imports one layered above it: the `[[models]]` configuration is plain
//! data (`config`); `profile` and `presets` (the adapter table: kinds, base URLs, preset
//! `async_task` tables) build on it; the `adapters` on those; the validation of a configuration
//! (`validate`) and the [`Catalog`] on the adapters.
//!
//! [`TextModel`]: nosyntask_engine::ports::TextModel
//! [`MediaModel`]: nosyntask_engine::ports::MediaModel
//! [`ModelCatalog`]: nosyntask_engine::ports::ModelCatalog
//! [`ArtifactStore`]: nosyntask_engine::ports::ArtifactStore

pub mod adapters;
mod artifacts;
mod catalog;
mod config;
pub mod http;
pub mod json_recovery;
pub mod media;
mod merge;
pub mod normalize;
mod poll;
pub mod presets;
pub mod profile;
pub mod simulated;
pub mod template;
mod validate;

pub use artifacts::{
    DEFAULT_MAX_ARTIFACT_BYTES, LocalArtifacts, MEDIA_TYPES, content_type_for_path, extension_for,
    lowercase_hex,
};
pub use catalog::Catalog;
pub use config::{AdapterKind, ModelConfig, SimulatedConfig, default_models, parse_size};
pub use json_recovery::{
    RecoveryError, parse_llm_json, parse_llm_response, parse_or_repair, recover_json,
    recover_json_matching,
};
pub use poll::{
    PollOptions, PollState, ProviderTask, RemoteJob, Submitted, checkpointed_task, submit_and_poll,
};
pub use profile::{Prices, Profile, ProfileConfig};
pub use validate::{ConfigError, validate_models};
