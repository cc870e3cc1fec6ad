//! The HTTP handlers, thin: extract, call one engine method, convert to a view.

pub mod admin;
pub mod console;
pub mod events;
pub mod files;
pub mod series;
pub mod system;
pub mod workflows;
