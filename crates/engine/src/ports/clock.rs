use chrono::{DateTime, Utc};

/// Where the engine reads the time it writes into the database (ready-at, lease expiry, ...).
/// Tests swap in a clock they move by hand.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
