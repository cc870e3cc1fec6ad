//! Waking idle workers: an in-process `Notify`, fed on PostgreSQL by `LISTEN nosyntask_work`
//! so starts and advances of any process wake this one.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::Notify;
use tracing::{debug, warn};

/// The PostgreSQL channel new work is announced on.
pub(crate) const CHANNEL: &str = "nosyntask_work";

const NOTIFY_SQL: &str = "SELECT pg_notify('nosyntask_work', '')";

/// At most one `NOTIFY` per window: a transaction that notifies serializes its commit with every
/// other notifying one, so announcing each start and step in its own transaction caps
/// throughput. Idle workers elsewhere wake at most this much later.
const ANNOUNCE_WINDOW: Duration = Duration::from_millis(10);

/// Wakes every waiting worker and keeps a permit for the next one to wait.
pub(crate) fn wake(notify: &Notify) {
    notify.notify_waiters();
    notify.notify_one();
}

/// Listens until the task is aborted, reconnecting with a growing pause after errors.
pub(crate) async fn listen(pool: PgPool, notify: Arc<Notify>) {
    let mut pause = Duration::from_millis(100);
    loop {
        match subscribe(&pool).await {
            Ok(mut listener) => {
                // Notifications sent while we were not listening are lost: look once.
                wake(&notify);
                loop {
                    match listener.try_recv().await {
                        Ok(Some(_)) => {
                            pause = Duration::from_millis(100);
                            wake(&notify);
                        }
                        Ok(None) => {
                            debug!("notification connection lost; reconnected");
                            wake(&notify);
                        }
                        Err(err) => {
                            warn!(error = %err, "notification listener failed; workers poll meanwhile");
                            break;
                        }
                    }
                }
            }
            Err(err) => {
                warn!(error = %err, retry_in_ms = pause.as_millis() as u64, "cannot listen for notifications; workers poll meanwhile");
            }
        }
        if pool.is_closed() {
            return;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

/// Sends `NOTIFY nosyntask_work` (outside any transaction, after the work committed) whenever
/// `requested` is signalled, coalescing requests within [`ANNOUNCE_WINDOW`]; runs until aborted.
pub(crate) async fn announce(pool: PgPool, requested: Arc<Notify>) {
    loop {
        requested.notified().await;
        if pool.is_closed() {
            return;
        }
        if let Err(err) = sqlx::query(NOTIFY_SQL).execute(&pool).await {
            debug!(error = %err, "could not announce new work; other processes will poll");
        }
        tokio::time::sleep(ANNOUNCE_WINDOW).await;
    }
}

async fn subscribe(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}
