//! Batched job reads: concurrent reads of different jobs share one store read.
//!
//! Status polling from many frontends reads many different jobs at once. One store read per
//! job is two statements per request, and on SQLite each statement is a hand-off to a database
//! thread and back (docs/benchmarks.md, "HTTP: status polling"): reads of 200 distinct jobs ran
//! at a tenth of the `/healthz` rate. Here reads queue, and a few readers (at most
//! [`READERS`]) each take every queued id, up to [`MAX_BATCH`], and read them in one go. A read
//! alone on an idle server starts at once; under load the batches grow by themselves (group
//! commit, for reads). Every id is read by a query that starts after its request was queued,
//! so no answer is older than its request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::future::BoxFuture;
use nosyntask_domain::{JobId, JobWithTasks};
use nosyntask_engine::{Engine, EngineError};
use tokio::sync::oneshot;

/// Store reads running at once: the SQLite read pool's default size, so a batch never waits
/// for a connection behind another batch.
const READERS: usize = 4;

/// Most jobs one store read takes (the store's own statement size).
const MAX_BATCH: usize = 256;

type Answer = Result<Option<JobWithTasks>, EngineError>;

/// Reads many jobs from the store (a function so tests can watch and hold the batches).
pub type FetchMany = Arc<
    dyn Fn(Vec<JobId>) -> BoxFuture<'static, Result<Vec<JobWithTasks>, EngineError>> + Send + Sync,
>;

#[derive(Default)]
struct Queue {
    waiting: Vec<(JobId, oneshot::Sender<Answer>)>,
    readers: usize,
}

/// The queue of job reads; shared by all HTTP workers of a process.
pub struct ReadBatches {
    fetch: FetchMany,
    queue: Mutex<Queue>,
}

impl ReadBatches {
    /// Reads through `engine`'s store.
    pub fn new(engine: Engine) -> Arc<Self> {
        Self::with_fetch(Arc::new(move |ids| {
            let engine = engine.clone();
            Box::pin(async move { engine.read_any_jobs(&ids).await })
        }))
    }

    pub fn with_fetch(fetch: FetchMany) -> Arc<Self> {
        Arc::new(ReadBatches {
            fetch,
            queue: Mutex::new(Queue::default()),
        })
    }

    /// The job with `id`, whoever owns it, read after this call.
    pub async fn read(self: &Arc<Self>, id: JobId) -> Answer {
        let (answer, receiver) = oneshot::channel();
        {
            let mut queue = self.lock();
            queue.waiting.push((id, answer));
            if queue.readers < READERS {
                queue.readers += 1;
                // A task of its own, so queued reads are served even when the client that
                // started the reader has gone away.
                tokio::spawn(Arc::clone(self).serve());
            }
        }
        receiver.await.unwrap_or_else(|_| {
            Err(EngineError::Internal(
                "the job read was dropped before it answered".into(),
            ))
        })
    }

    /// Reads what is queued, batch after batch, until the queue is empty.
    async fn serve(self: Arc<Self>) {
        let _reader = Reader(&self);
        while let Some(batch) = self.next_batch() {
            let ids: Vec<JobId> = batch.iter().map(|(id, _)| *id).collect();
            let answers = (self.fetch)(ids).await;
            answer(batch, answers);
        }
    }

    /// The next batch, or `None` (and one reader fewer) when nothing is queued.
    fn next_batch(&self) -> Option<Vec<(JobId, oneshot::Sender<Answer>)>> {
        let mut queue = self.lock();
        if queue.waiting.is_empty() {
            queue.readers -= 1;
            return None;
        }
        let take = queue.waiting.len().min(MAX_BATCH);
        let rest = queue.waiting.split_off(take);
        Some(std::mem::replace(&mut queue.waiting, rest))
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // The queue holds no invariant a panicking holder could break halfway.
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Gives a reader's place back if its task panics, and fails the reads still queued, so nobody
/// waits for a reader that is gone; the next read starts a new one.
struct Reader<'a>(&'a ReadBatches);

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut queue = self.0.lock();
            queue.readers -= 1;
            queue.waiting.clear();
        }
    }
}

fn answer(
    batch: Vec<(JobId, oneshot::Sender<Answer>)>,
    answers: Result<Vec<JobWithTasks>, EngineError>,
) {
    match answers {
        Ok(jobs) => {
            let mut found: HashMap<JobId, JobWithTasks> =
                jobs.into_iter().map(|job| (job.job.id, job)).collect();
            let mut wanted: HashMap<JobId, usize> = HashMap::new();
            for (id, _) in &batch {
                *wanted.entry(*id).or_default() += 1;
            }
            for (id, sender) in batch {
                // The last asker of an id takes the job; any earlier one gets a copy.
                let job = match wanted.get_mut(&id) {
                    Some(count) if *count > 1 => {
                        *count -= 1;
                        found.get(&id).cloned()
                    }
                    _ => found.remove(&id),
                };
                let _ = sender.send(Ok(job));
            }
        }
        Err(err) => {
            for (_, sender) in batch {
                let _ = sender.send(Err(err.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::sync::Semaphore;

    use crate::reads::tests::until;
    use nosyntask_domain::JobStatus;

    /// A fake store holding jobs 1..=1000: it records each batch and holds it until a permit.
    struct Fake {
        batches: Mutex<Vec<Vec<JobId>>>,
        started: AtomicUsize,
        permits: Semaphore,
        fail: bool,
    }

    fn job(id: JobId) -> JobWithTasks {
        let mut job = crate::reads::tests::job(JobStatus::Completed, 1);
        job.job.id = id;
        job
    }

    fn batches(fake: &Arc<Fake>) -> Arc<ReadBatches> {
        let fake = Arc::clone(fake);
        ReadBatches::with_fetch(Arc::new(move |ids: Vec<JobId>| {
            let fake = Arc::clone(&fake);
            Box::pin(async move {
                fake.batches.lock().unwrap().push(ids.clone());
                fake.started.fetch_add(1, Ordering::SeqCst);
                fake.permits.acquire().await.unwrap().forget();
                if fake.fail {
                    return Err(EngineError::Internal("database is down".into()));
                }
                let mut found: Vec<_> = ids.into_iter().filter(|id| *id <= 1000).collect();
                found.sort_unstable();
                found.dedup();
                Ok(found.into_iter().map(job).collect())
            })
        }))
    }

    fn fake(fail: bool) -> Arc<Fake> {
        Arc::new(Fake {
            batches: Mutex::new(Vec::new()),
            started: AtomicUsize::new(0),
            permits: Semaphore::new(0),
            fail,
        })
    }

    fn spawn_read(reads: &Arc<ReadBatches>, id: JobId) -> tokio::task::JoinHandle<Answer> {
        let reads = Arc::clone(reads);
        tokio::spawn(async move { reads.read(id).await })
    }

    /// Reads jobs 1, 2, … until every reader is busy with a read of its own.
    async fn busy_readers(
        fake: &Arc<Fake>,
        reads: &Arc<ReadBatches>,
    ) -> Vec<tokio::task::JoinHandle<Answer>> {
        let mut held = Vec::new();
        for id in 1..=READERS as JobId {
            held.push(spawn_read(reads, id));
            until("the reader started", || {
                fake.started.load(Ordering::SeqCst) == id as usize
            })
            .await;
        }
        held
    }

    #[tokio::test]
    async fn reads_of_different_jobs_queued_behind_busy_readers_share_one_store_read() {
        let fake = fake(false);
        let reads = batches(&fake);
        let first = busy_readers(&fake, &reads).await;
        // 300 reads of 150 jobs (each twice) and one of a job that does not exist, queued.
        let queued: Vec<_> = (0..300)
            .map(|i| spawn_read(&reads, 100 + i % 150))
            .chain([spawn_read(&reads, 5_000)])
            .collect();
        until("all queued", || reads.lock().waiting.len() == 301).await;
        assert_eq!(
            fake.started.load(Ordering::SeqCst),
            READERS,
            "queued, not read"
        );

        fake.permits.add_permits(1_000);
        for (read, id) in first.into_iter().zip(1..) {
            assert_eq!(read.await.unwrap().unwrap().unwrap().job.id, id);
        }
        for (i, read) in queued.into_iter().enumerate() {
            let answer = read.await.unwrap().unwrap();
            if i < 300 {
                assert_eq!(answer.unwrap().job.id, 100 + i as JobId % 150);
            } else {
                assert!(answer.is_none(), "a missing job is none");
            }
        }
        let batches = fake.batches.lock().unwrap().clone();
        let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
        assert_eq!(
            sizes[READERS..].iter().sum::<usize>(),
            301,
            "every queued read in a batch: {sizes:?}"
        );
        assert!(
            sizes[READERS..].iter().all(|&n| n <= MAX_BATCH) && sizes.len() <= READERS + 2,
            "301 queued reads in two store reads: {sizes:?}"
        );
        until("readers gone", || reads.lock().readers == 0).await;
    }

    #[tokio::test]
    async fn a_failed_store_read_answers_every_read_of_its_batch() {
        let fake = fake(true);
        let reads = batches(&fake);
        let held = busy_readers(&fake, &reads).await;
        let queued: Vec<_> = (10..20).map(|id| spawn_read(&reads, id)).collect();
        until("all queued", || reads.lock().waiting.len() == 10).await;
        fake.permits.add_permits(100);
        for read in held.into_iter().chain(queued) {
            assert!(matches!(read.await.unwrap(), Err(EngineError::Internal(_))));
        }
        assert_eq!(fake.started.load(Ordering::SeqCst), READERS + 1);
        until("readers gone", || reads.lock().readers == 0).await;
        // The next read after the failure starts a reader of its own.
        fake.permits.add_permits(1);
        assert!(reads.read(1).await.is_err());
    }
}
