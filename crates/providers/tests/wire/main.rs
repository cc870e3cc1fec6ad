//! Wire-level tests: every adapter and preset against a real HTTP server on loopback that
//! speaks the provider's format.

// Test fixtures outside `#[test]` functions unwrap too: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod dead_tasks;
mod docs;
mod media_rules;
mod openai_compatible;
mod openai_images;
mod presets;
mod readme;
mod scenarios;
mod simulated;
/// The provider stand-ins the workflow runs use; here for `fetch_image`.
#[path = "../../../workflows/tests/standins/mod.rs"]
mod standins;
mod text_rules;
