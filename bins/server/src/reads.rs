//! Coalesced job reads: concurrent reads of one job share a database query, without ever
//! answering with a state older than the request.
//!
//! A status endpoint is polled hard (many tabs, event streams and pollers on the same job). Per
//! job id there is at most one query running and at most one queued behind it. A request joins
//! the queued query (which starts only after the running one ends, so after the request
//! arrived), or queues a new one. Every answer therefore reflects the database at some moment
//! after the request came in: no cache, no staleness, just fewer identical queries. The queued
//! query also serializes the job once for all of its readers. Queries of different jobs are
//! batched into one store read (`read_batches`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use actix_web::http::header::IF_NONE_MATCH;
use actix_web::web::Bytes;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use nosyntask_domain::{JobId, JobWithTasks, Viewer};
use nosyntask_engine::{Engine, EngineError};

use crate::i18n;
use crate::read_batches::ReadBatches;
use crate::views::Job;

/// One read of a job: the domain value, its JSON body and the body's ETag.
#[derive(Debug)]
pub struct JobSnapshot {
    pub job: JobWithTasks,
    pub body: Bytes,
    pub etag: String,
}

type Read = Shared<BoxFuture<'static, Result<Arc<JobSnapshot>, EngineError>>>;

#[derive(Default)]
struct Slot {
    /// A query that has started.
    running: Option<(u64, Read)>,
    /// A query that starts when `running` ends; requests join it.
    queued: Option<(u64, Read)>,
}

/// Reads one job from the store (a function so tests can hold reads in flight).
type Fetch =
    Arc<dyn Fn(JobId) -> BoxFuture<'static, Result<Arc<JobSnapshot>, EngineError>> + Send + Sync>;

/// Coalesces reads of the same job; shared by all HTTP workers of a process.
pub struct JobReads {
    fetch: Fetch,
    slots: Mutex<HashMap<JobId, Slot>>,
    generation: AtomicU64,
    /// Reads that went to the store (after coalescing).
    fetches: AtomicU64,
}

impl std::fmt::Debug for JobReads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobReads").finish_non_exhaustive()
    }
}

impl JobReads {
    /// Reads through `engine`'s store, batched with the reads of other jobs.
    pub fn new(engine: Engine) -> Arc<Self> {
        let batches = ReadBatches::new(engine.clone());
        Self::with_fetch(Arc::new(move |id| {
            let (engine, batches) = (engine.clone(), Arc::clone(&batches));
            async move {
                let job = batches.read(id).await?.ok_or(EngineError::NotFound(id))?;
                snapshot(&engine, job)
            }
            .boxed()
        }))
    }

    fn with_fetch(fetch: Fetch) -> Arc<Self> {
        Arc::new(JobReads {
            fetch,
            slots: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            fetches: AtomicU64::new(0),
        })
    }

    /// The job as `viewer` may see it (another user's job is `NotFound`, as in `Engine::get`).
    pub async fn get(
        self: &Arc<Self>,
        viewer: &Viewer,
        id: JobId,
    ) -> Result<Arc<JobSnapshot>, EngineError> {
        let snapshot = self.read(id).await?;
        if viewer.can_read(snapshot.job.job.user_id) {
            Ok(snapshot)
        } else {
            Err(EngineError::NotFound(id))
        }
    }

    /// The job whoever owns it (callers check access themselves).
    pub async fn read_any(self: &Arc<Self>, id: JobId) -> Result<Arc<JobSnapshot>, EngineError> {
        self.read(id).await
    }

    fn read(self: &Arc<Self>, id: JobId) -> Read {
        let mut slots = self.lock();
        let slot = slots.entry(id).or_default();
        if let Some((_, queued)) = &slot.queued {
            return queued.clone();
        }
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        let previous = slot.running.as_ref().map(|(_, read)| read.clone());
        let this = Arc::clone(self);
        // A task of its own, so the read completes (and its slot is cleaned up) even when every
        // client waiting for it has gone away.
        let task = tokio::spawn(async move {
            if let Some(previous) = previous {
                // Only its completion matters; its result is older than our readers.
                let _ = previous.await;
            }
            this.started(id, generation);
            this.fetches.fetch_add(1, Ordering::Relaxed);
            let result = (this.fetch)(id).await;
            this.finished(id, generation);
            result
        });
        let read = async move {
            task.await
                .unwrap_or_else(|err| Err(EngineError::Internal(format!("job read failed: {err}"))))
        }
        .boxed()
        .shared();
        slot.queued = Some((generation, read.clone()));
        read
    }

    /// The queued read of `generation` starts: new requests must queue behind it.
    fn started(&self, id: JobId, generation: u64) {
        let mut slots = self.lock();
        if let Some(slot) = slots.get_mut(&id)
            && slot.queued.as_ref().is_some_and(|(g, _)| *g == generation)
        {
            slot.running = slot.queued.take();
        }
    }

    fn finished(&self, id: JobId, generation: u64) {
        let mut slots = self.lock();
        if let Some(slot) = slots.get_mut(&id) {
            if slot.running.as_ref().is_some_and(|(g, _)| *g == generation) {
                slot.running = None;
            }
            if slot.running.is_none() && slot.queued.is_none() {
                slots.remove(&id);
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<JobId, Slot>> {
        // The map holds no invariant a panicking holder could break halfway.
        self.slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Job reads that reached the store since the start.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// Slots in use (tests).
    pub fn in_flight(&self) -> usize {
        self.lock().len()
    }
}

/// Serializes the job once for all its readers.
fn snapshot(engine: &Engine, job: JobWithTasks) -> Result<Arc<JobSnapshot>, EngineError> {
    let definition = engine.registry().get(&job.job.workflow_type);
    // Shared by every reader, so in the default language; `get_job` re-renders the one field
    // that depends on the reader's (a cancelled job's message) for readers of another.
    let view = Job::new(&job, definition.map(|d| d.as_ref()), i18n::default_lang());
    let body = serde_json::to_vec(&view).map_err(|e| EngineError::Internal(e.to_string()))?;
    let etag = etag_of(&body);
    Ok(Arc::new(JobSnapshot {
        job,
        body: Bytes::from(body),
        etag,
    }))
}

/// Whether the request's `If-None-Match` names `etag` (or `*`; weak forms compare equal).
pub fn if_none_match(req: &actix_web::HttpRequest, etag: &str) -> bool {
    req.headers()
        .get_all(IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|candidate| {
            candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag
        })
}

/// A strong ETag over the JSON body (FNV-1a 64: stable across processes and versions).
pub fn etag_of(body: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in body {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("\"{hash:016x}\"")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::Utc;
    use nosyntask_domain::{Job as DomainJob, JobStatus};
    use std::sync::atomic::AtomicUsize;
    use tokio::sync::Semaphore;

    /// A fake database: one job whose status the test changes; every read waits for a permit.
    struct Fake {
        status: Mutex<JobStatus>,
        started: AtomicUsize,
        permits: Semaphore,
    }

    /// A job of one step in `status`, owned by `owner` (also for the batch tests).
    pub(crate) fn job(status: JobStatus, owner: i64) -> JobWithTasks {
        let now = Utc::now();
        JobWithTasks {
            job: DomainJob {
                id: 1,
                user_id: owner,
                project_id: 1,
                workflow_type: "t".into(),
                status,
                current_step_index: 0,
                total_steps: 1,
                input_params: serde_json::json!({}),
                error_message: None,
                is_consumed: false,
                progress: 0,
                created_at: now,
                updated_at: now,
                started_at: None,
                completed_at: None,
                hook_error: None,
            },
            tasks: Vec::new(),
            history: Vec::new(),
        }
    }

    fn reads(fake: &Arc<Fake>) -> Arc<JobReads> {
        let fake = Arc::clone(fake);
        JobReads::with_fetch(Arc::new(move |id| {
            let fake = Arc::clone(&fake);
            async move {
                // What the database holds when the query starts is what it answers.
                let status = *fake.status.lock().unwrap();
                fake.started.fetch_add(1, Ordering::SeqCst);
                fake.permits.acquire().await.unwrap().forget();
                if id != 1 {
                    return Err(EngineError::NotFound(id));
                }
                Ok(Arc::new(JobSnapshot {
                    job: job(status, 7),
                    body: Bytes::from(status.as_str()),
                    etag: etag_of(status.as_str().as_bytes()),
                }))
            }
            .boxed()
        }))
    }

    /// Yields until `check` holds (five seconds at most).
    pub(crate) async fn until(what: &str, check: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !check() {
            assert!(std::time::Instant::now() < deadline, "timed out: {what}");
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn readers_arriving_during_a_query_share_the_next_one_and_see_later_writes() {
        let fake = Arc::new(Fake {
            status: Mutex::new(JobStatus::Running),
            started: AtomicUsize::new(0),
            permits: Semaphore::new(0),
        });
        let shared = reads(&fake);
        let viewer = Viewer::user(7);

        let first = tokio::spawn({
            let shared = Arc::clone(&shared);
            async move { shared.get(&viewer, 1).await }
        });
        until("first query started", || {
            fake.started.load(Ordering::SeqCst) == 1
        })
        .await;

        // A write commits while the first query runs; readers arriving now must see it.
        *fake.status.lock().unwrap() = JobStatus::Cancelled;
        let later: Vec<_> = (0..20)
            .map(|_| {
                let shared = Arc::clone(&shared);
                tokio::spawn(async move { shared.get(&viewer, 1).await })
            })
            .collect();
        tokio::task::yield_now().await;
        assert_eq!(
            fake.started.load(Ordering::SeqCst),
            1,
            "the next query waits"
        );

        fake.permits.add_permits(2);
        let first = first.await.unwrap().unwrap();
        assert_eq!(first.job.job.status, JobStatus::Running);
        for reader in later {
            let snapshot = reader.await.unwrap().unwrap();
            assert_eq!(snapshot.job.job.status, JobStatus::Cancelled);
            assert_eq!(&snapshot.body[..], b"cancelled");
        }
        assert_eq!(
            fake.started.load(Ordering::SeqCst),
            2,
            "21 readers, 2 queries"
        );
        until("slots cleaned up", || shared.in_flight() == 0).await;
    }

    #[tokio::test]
    async fn other_users_get_not_found_and_abandoned_reads_finish() {
        let fake = Arc::new(Fake {
            status: Mutex::new(JobStatus::Completed),
            started: AtomicUsize::new(0),
            permits: Semaphore::new(100),
        });
        let plain = reads(&fake);
        assert!(matches!(
            plain.get(&Viewer::user(8), 1).await,
            Err(EngineError::NotFound(1))
        ));
        assert!(plain.get(&Viewer::admin(8), 1).await.is_ok());
        assert!(matches!(
            plain.get(&Viewer::user(7), 2).await,
            Err(EngineError::NotFound(2))
        ));

        // A client that gives up does not leave its read behind.
        let gated = Arc::new(Fake {
            status: Mutex::new(JobStatus::Running),
            started: AtomicUsize::new(0),
            permits: Semaphore::new(0),
        });
        let gated_reads = reads(&gated);
        let abandoned = tokio::spawn({
            let gated_reads = Arc::clone(&gated_reads);
            async move { gated_reads.get(&Viewer::user(7), 1).await }
        });
        until("query started", || {
            gated.started.load(Ordering::SeqCst) == 1
        })
        .await;
        abandoned.abort();
        gated.permits.add_permits(1);
        until("slot cleaned up", || gated_reads.in_flight() == 0).await;
    }
}
