//! Shared pieces for the engine's behaviour tests and benchmarks: test workflows whose handlers
//! count their invocations, and waiting helpers.
//!
//! The engine's own tests live here (in `tests/`) rather than in `nosyntask-engine`, because they
//! run the engine over the real store, which itself depends on the engine.

pub mod counting;
pub mod hook_log;
pub mod proxy;
pub mod standin;
pub mod workflows;

use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
