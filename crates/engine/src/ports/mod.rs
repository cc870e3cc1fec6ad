//! The engine's ports: the traits its adapters implement. Each is object-safe so the server wires
//! `Arc<dyn …>`; constructors live on the implementations.

mod clock;
mod models;
mod params;
mod store;

pub use clock::{Clock, DatabaseClock, SystemClock};
pub use models::*;
pub use params::{ParamsSource, Starter};
pub use store::*;
