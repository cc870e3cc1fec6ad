//! Worker tuning: intervals, batch sizes, leases, retention.

use std::time::Duration;

use crate::backoff::Backoff;
use crate::ports::ModelLimit;

/// How old terminal jobs get before they are deleted.
#[derive(Debug, Clone)]
pub struct RetentionConfig {
    pub consumed_after: Duration,
    pub unconsumed_after: Duration,
    pub interval: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            consumed_after: Duration::from_secs(7 * 24 * 3600),
            unconsumed_after: Duration::from_secs(30 * 24 * 3600),
            interval: Duration::from_secs(3600),
        }
    }
}

/// Tuning of one worker process.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Lease owner name; unique per process (host, pid and a random suffix by default).
    pub owner: String,
    /// Handlers running at once.
    pub concurrency: usize,
    /// Most tasks taken by one claim statement.
    pub claim_batch: u32,
    /// Most completions written by one transaction.
    pub completion_batch: usize,
    /// Most single-task writes (checkpoints, failures) in flight at once; the others wait their
    /// turn in a queue. A write waiting for a database connection holds far more memory than one
    /// waiting here, and thousands of handlers may write at the same moment.
    pub task_writes_in_flight: usize,
    pub lease_ttl: Duration,
    pub heartbeat_interval: Duration,
    /// Longest wait for work without a notification.
    pub poll_interval: Duration,
    /// Progress is written at most once per task per interval.
    pub progress_interval: Duration,
    /// Most tasks one progress flush writes. With more tasks changed, the starts of new attempts
    /// go first, then the tasks whose progress was written longest ago; the others wait for a
    /// later flush. This bounds the progress writes of a process (two rows per task: the task
    /// and its job) whatever the number of tasks it waits on: 100,000 tasks each reporting
    /// every 3 s would otherwise write 66,000 rows a second.
    pub progress_writes_per_flush: usize,
    /// How often running tasks are checked for cancellation (across processes).
    pub cancel_check_interval: Duration,
    /// How long a cancelled handler may take to clean up (e.g. cancel the provider task).
    pub cancel_grace: Duration,
    /// Self-fencing: a runner whose last confirmed renewal is so old that its lease may lapse
    /// within this margin is cancelled (and handed back when the database answers again), so it
    /// has stopped calling providers before another worker can take the task over. Should cover
    /// `cancel_grace` and a little more. Short leases get a shorter margin, see
    /// [`WorkerConfig::effective_self_fence_margin`].
    pub self_fence_margin: Duration,
    /// How long a finished result waits for the database (an outage) before it is given up.
    /// Its fence keeps holding until another worker claims the task, so waiting is worth it.
    pub completion_retry: Duration,
    /// Completion batches written at once (a slow batch does not hold up the others).
    pub completion_writes_in_flight: usize,
    /// How often expired leases are swept back to pending.
    pub sweep_interval: Duration,
    /// How long running handlers may finish after shutdown starts.
    pub shutdown_grace: Duration,
    pub backoff: Backoff,
    pub retention: Option<RetentionConfig>,
    /// The configured models' limits, recorded in the database at start so that the claims of
    /// every process hold them (see `JobStore::set_model_limits`).
    pub model_limits: Vec<ModelLimit>,
    /// How often the coordinator of a fan-out step looks at its items (and readies the next).
    pub fan_out_poll: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            owner: default_owner(),
            concurrency: 32,
            claim_batch: 64,
            completion_batch: 512,
            task_writes_in_flight: 16,
            lease_ttl: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(10),
            poll_interval: Duration::from_secs(1),
            progress_interval: Duration::from_secs(1),
            progress_writes_per_flush: 1_000,
            cancel_check_interval: Duration::from_secs(1),
            cancel_grace: Duration::from_secs(5),
            self_fence_margin: Duration::from_secs(7),
            completion_retry: Duration::from_secs(600),
            completion_writes_in_flight: 4,
            sweep_interval: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(10),
            backoff: Backoff::default(),
            retention: Some(RetentionConfig::default()),
            model_limits: Vec::new(),
            fan_out_poll: Duration::from_millis(500),
        }
    }
}

impl WorkerConfig {
    /// The self-fencing margin in force: at most half of what a lease has left after one
    /// heartbeat, so a lease shorter than the configured margin is not fenced off at once while
    /// its renewals arrive on time.
    pub fn effective_self_fence_margin(&self) -> Duration {
        self.self_fence_margin
            .min(self.lease_ttl.saturating_sub(self.heartbeat_interval) / 2)
    }
}

fn default_owner() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".to_owned());
    format!(
        "{host}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}
