//! Pieces every handler shares: reading inputs, asking a text model for JSON, reading lists out
//! of model answers, tolerant field readers, checkpointed media generation, params and step
//! defaults.

pub(crate) mod batch;
pub(crate) mod input;
pub(crate) mod language;
pub(crate) mod lenient;
pub(crate) mod list;
pub(crate) mod llm;
pub(crate) mod media;
pub(crate) mod models;
pub(crate) mod params;
pub(crate) mod prompt_cache;
pub(crate) mod steps;
