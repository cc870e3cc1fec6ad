//! Live job watching shared by every event stream of a process.
//!
//! A thousand browsers watching one job must not mean a thousand database reads per tick. One
//! loop per process polls the versions of all watched jobs in a single query (a few index
//! lookups per job, whatever the watcher count or the size of the tables), reads a job whole only
//! when its version moved — through the coalesced [`JobReads`], so that read is shared with any
//! concurrent `GET` — and hands the new snapshot to every stream of that job through a
//! `tokio::sync::watch` channel. Changes made by any process are seen: versions come from the
//! database.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt;
use nosyntask_domain::JobId;
use nosyntask_engine::ports::JobVersion;
use nosyntask_engine::{CancellationToken, EngineError, JobStore};
use tokio::sync::watch;

use crate::reads::{JobReads, JobSnapshot};

/// The newest state of a watched job.
#[derive(Debug, Clone)]
pub enum Latest {
    Job(Arc<JobSnapshot>),
    /// The job no longer exists (pruned): its streams end.
    Gone,
}

struct Watched {
    sender: watch::Sender<Latest>,
    /// The version of the snapshot last sent.
    version: JobVersion,
}

/// Full reads of changed jobs running at once per tick.
const READS_AT_ONCE: usize = 16;

/// The watchers of a process; see the module docs.
pub struct JobWatch {
    reads: Arc<JobReads>,
    store: Arc<dyn JobStore>,
    jobs: Mutex<HashMap<JobId, Watched>>,
    /// Polls of versions, and whole reads of changed jobs, since the start.
    polls: AtomicU64,
    change_reads: AtomicU64,
}

impl std::fmt::Debug for JobWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobWatch")
            .field("jobs", &self.lock().len())
            .finish_non_exhaustive()
    }
}

impl JobWatch {
    /// Starts the polling loop (every `poll`, until `shutdown`).
    pub fn start(
        reads: Arc<JobReads>,
        store: Arc<dyn JobStore>,
        poll: Duration,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let watch = Arc::new(JobWatch {
            reads,
            store,
            jobs: Mutex::new(HashMap::new()),
            polls: AtomicU64::new(0),
            change_reads: AtomicU64::new(0),
        });
        let looping = Arc::clone(&watch);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(poll.max(Duration::from_millis(10)));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    _ = ticks.tick() => looping.tick().await,
                }
            }
        });
        watch
    }

    /// Follows the job of `first` (a snapshot the caller just read): the receiver sees every
    /// later state. The first one is marked seen.
    pub fn subscribe(&self, first: &Arc<JobSnapshot>) -> watch::Receiver<Latest> {
        let mut jobs = self.lock();
        let id = first.job.job.id;
        let version = JobVersion::of(&first.job);
        let watched = jobs.entry(id).or_insert_with(|| Watched {
            sender: watch::Sender::new(Latest::Job(Arc::clone(first))),
            version: version.clone(),
        });
        if newer(&version, &watched.version) {
            watched.version = version;
            watched.sender.send_replace(Latest::Job(Arc::clone(first)));
        }
        let mut receiver = watched.sender.subscribe();
        receiver.borrow_and_update();
        receiver
    }

    /// Jobs watched now (tests, metrics).
    pub fn watched(&self) -> usize {
        self.lock().len()
    }

    /// Version polls made (one per tick with jobs to watch).
    pub fn polls(&self) -> u64 {
        self.polls.load(Ordering::Relaxed)
    }

    /// Whole reads of jobs whose version moved.
    pub fn change_reads(&self) -> u64 {
        self.change_reads.load(Ordering::Relaxed)
    }

    /// One poll: versions of every watched job, then a whole read of each that changed.
    async fn tick(&self) {
        let watched: Vec<(JobId, JobVersion)> = {
            let mut jobs = self.lock();
            jobs.retain(|_, w| w.sender.receiver_count() > 0);
            jobs.iter()
                .map(|(id, w)| (*id, w.version.clone()))
                .collect()
        };
        if watched.is_empty() {
            return;
        }
        let ids: Vec<JobId> = watched.iter().map(|(id, _)| *id).collect();
        self.polls.fetch_add(1, Ordering::Relaxed);
        let versions = match self.store.job_versions(&ids).await {
            Ok(versions) => versions,
            Err(err) => {
                tracing::debug!(error = %err, "polling watched jobs failed");
                return;
            }
        };
        let now: HashMap<JobId, JobVersion> = versions.into_iter().map(|v| (v.job_id, v)).collect();
        let changed: Vec<JobId> = watched
            .iter()
            .filter(|(id, seen)| now.get(id) != Some(seen))
            .map(|(id, _)| *id)
            .collect();
        futures::stream::iter(changed)
            .for_each_concurrent(READS_AT_ONCE, |id| async move {
                self.change_reads.fetch_add(1, Ordering::Relaxed);
                let latest = match self.reads.read_any(id).await {
                    Ok(snapshot) => Latest::Job(snapshot),
                    Err(EngineError::NotFound(_)) => Latest::Gone,
                    Err(err) => {
                        tracing::debug!(error = %err, job_id = id, "reading a watched job failed");
                        return;
                    }
                };
                self.publish(id, latest);
            })
            .await;
    }

    fn publish(&self, id: JobId, latest: Latest) {
        let mut jobs = self.lock();
        let Some(watched) = jobs.get_mut(&id) else {
            return;
        };
        match &latest {
            Latest::Job(snapshot) => {
                let version = JobVersion::of(&snapshot.job);
                if !newer(&version, &watched.version) {
                    return;
                }
                watched.version = version;
                watched.sender.send_replace(latest);
            }
            Latest::Gone => {
                watched.sender.send_replace(latest);
                jobs.remove(&id);
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<JobId, Watched>> {
        // The map holds no invariant a panicking holder could break halfway.
        self.jobs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Whether `a` is a later state than `b`: different, and not older by the database's clock (a
/// read that started before another may finish after it).
fn newer(a: &JobVersion, b: &JobVersion) -> bool {
    a != b && (a.updated_at, a.tasks_updated_at) >= (b.updated_at, b.tasks_updated_at)
}
