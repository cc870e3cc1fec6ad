//! Where the engine reads "now". Every time that decides who may run what (ready-at, lease
//! expiry, the expiry sweep) is the database's: processes whose clocks disagree must still agree
//! on who holds a lease. [`DatabaseClock`] reads the database's clock and runs it forward on the
//! process's monotonic clock, which no wall-clock step or skew moves.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tracing::{debug, warn};

use super::{JobStore, StoreError};

/// Where the engine reads the time it writes into the database (ready-at, lease expiry, ...).
#[async_trait]
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;

    /// Brings the clock in line with its source (the database), if it has one. Workers call it
    /// before their first claim, the server before it serves.
    async fn sync(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Syncs if the clock has never been read from its source (a failure is logged; the next
    /// call tries again).
    async fn ensure_synced(&self) {}
}

/// The process's wall clock: for tools and tests that run without a shared database.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A reading of the database clock and the monotonic instant it belongs to.
#[derive(Debug, Clone, Copy)]
struct Anchor {
    at: Instant,
    database: DateTime<Utc>,
}

/// The database's clock, read with [`JobStore::database_time`] and carried forward on the
/// monotonic clock between readings (every [`DatabaseClock::RESYNC`]), so "now" costs no round
/// trip. Each reading takes the sample with the shortest round trip of a few and places the
/// database's answer at its midpoint.
pub struct DatabaseClock {
    store: Weak<dyn JobStore>,
    anchor: Mutex<Option<Anchor>>,
}

impl std::fmt::Debug for DatabaseClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseClock")
            .field("anchor", &self.anchor())
            .finish()
    }
}

impl DatabaseClock {
    /// How often the reading is renewed (monotonic clocks drift by parts per million).
    pub const RESYNC: Duration = Duration::from_secs(10);
    const SAMPLES: usize = 3;

    /// A clock over `store`, resynced in the background on the current tokio runtime (if any)
    /// for as long as the store lives. Until the first reading it answers the process's time.
    pub fn new(store: &Arc<dyn JobStore>) -> Arc<DatabaseClock> {
        let clock = Arc::new(DatabaseClock {
            store: Arc::downgrade(store),
            anchor: Mutex::new(None),
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let weak = Arc::downgrade(&clock);
            runtime.spawn(async move {
                loop {
                    let Some(clock) = weak.upgrade() else { return };
                    if let Err(err) = clock.sync().await {
                        debug!(error = %err, "could not read the database clock; keeping the last reading");
                    }
                    drop(clock);
                    tokio::time::sleep(Self::RESYNC).await;
                }
            });
        }
        clock
    }

    fn anchor(&self) -> Option<Anchor> {
        *self
            .anchor
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How far the process's wall clock is ahead of the database's (negative: behind), for logs.
    pub fn process_skew(&self) -> Option<chrono::Duration> {
        self.anchor().map(|_| Utc::now() - self.now())
    }
}

#[async_trait]
impl Clock for DatabaseClock {
    fn now(&self) -> DateTime<Utc> {
        match self.anchor() {
            Some(anchor) => {
                anchor.database
                    + chrono::Duration::from_std(anchor.at.elapsed()).unwrap_or_default()
            }
            None => Utc::now(),
        }
    }

    async fn ensure_synced(&self) {
        if self.anchor().is_none()
            && let Err(err) = self.sync().await
        {
            warn!(error = %err, "could not read the database clock; using this process's for now");
        }
    }

    async fn sync(&self) -> Result<(), StoreError> {
        let Some(store) = self.store.upgrade() else {
            return Ok(());
        };
        let mut best: Option<(Duration, Anchor)> = None;
        for _ in 0..Self::SAMPLES {
            let sent = Instant::now();
            let database = store.database_time().await?;
            let round_trip = sent.elapsed();
            let anchor = Anchor {
                at: sent + round_trip / 2,
                database,
            };
            if best.is_none_or(|(rt, _)| round_trip < rt) {
                best = Some((round_trip, anchor));
            }
        }
        if let Some((_, anchor)) = best {
            let first = self.anchor().is_none();
            *self
                .anchor
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(anchor);
            let skew = self.process_skew().unwrap_or_default();
            if first && skew.num_milliseconds().abs() > 1000 {
                warn!(
                    skew_ms = skew.num_milliseconds(),
                    "this process's clock disagrees with the database's; leases and ready times \
                     follow the database"
                );
            }
        }
        Ok(())
    }
}
