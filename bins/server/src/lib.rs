//! The nosyntask server: the HTTP API of contract section 2 over the engine, plus the wiring of
//! store, models, workflows and workers by configuration. `main.rs` is only the command line.

pub mod app;
pub mod artifact_retention;
pub mod auth;
pub mod changes;
pub mod config;
pub mod edge;
pub mod error;
pub mod i18n;
pub mod middleware;
pub mod openapi;
pub mod read_batches;
pub mod reads;
pub mod requests;
pub mod routes;
pub mod state;
pub mod telemetry;
pub mod views;
pub mod watch;
pub mod webhooks;
