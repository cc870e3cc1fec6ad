//! The in-transaction completion hook: a hook that writes a row of its own (as NanoStory's
//! `UPDATE characters …` would) next to each event. The worker is "killed" at every point
//! around a completion: before it completes (its lease lapses), in the middle of the completion
//! transaction (the future is dropped after the task's update and the hook's insert, before the
//! commit), and after the commit (it never learns the answer and sends the completion again).
//! The hook's row and the task's result are both there or both absent, never written twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use nosyntask_domain::{JobStatus, TaskStatus};
use nosyntask_engine::ports::Failure;
use nosyntask_store::{
    DeliveryStatus, HookEvent, HookEventKind, OutboxFilter, OutboxSubscriber, Store,
    TransactionHook,
};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr, Statement};
use serde_json::json;

use super::{LEASE, Shared, at, claim, claim_one, completion, create, get, new_job};

const NORMAL: u8 = 0;
/// Insert the row, then never return: the worker dies inside the completion transaction.
const HANG_AFTER_WRITE: u8 = 1;
/// Insert the row, then fail: the hook's write must be rolled back, the result kept.
const FAIL_AFTER_WRITE: u8 = 2;

/// The embedding service's side effect: one `hook_log` row per event.
struct Recorder {
    mode: AtomicU8,
}

#[async_trait]
impl TransactionHook for Recorder {
    async fn on_event(&self, txn: &DatabaseTransaction, event: &HookEvent) -> Result<(), DbErr> {
        let result = event
            .task
            .as_ref()
            .and_then(|t| t.result_data.as_ref())
            .map(|r| r.to_string());
        txn.execute_raw(Statement::from_sql_and_values(
            txn.get_database_backend(),
            sql(
                txn,
                "INSERT INTO hook_log (event, job_id, task_id, result) VALUES (?, ?, ?, ?)",
            ),
            [
                event.kind.as_str().into(),
                event.job.id.into(),
                event.task.as_ref().map(|t| t.id).into(),
                result.into(),
            ],
        ))
        .await?;
        match self.mode.load(Ordering::SeqCst) {
            HANG_AFTER_WRITE => std::future::pending().await,
            FAIL_AFTER_WRITE => Err(DbErr::Custom("the characters row is gone".into())),
            _ => Ok(()),
        }
    }
}

/// `?` placeholders as the backend spells them.
fn sql(conn: &impl ConnectionTrait, text: &str) -> String {
    if conn.get_database_backend() != sea_orm::DbBackend::Postgres {
        return text.to_owned();
    }
    let mut n = 0;
    text.chars()
        .map(|c| {
            if c == '?' {
                n += 1;
                format!("${n}")
            } else {
                c.to_string()
            }
        })
        .collect()
}

async fn hooked(store: &Store) -> (Shared, Arc<Recorder>) {
    store
        .connection()
        .execute_unprepared(
            "CREATE TABLE hook_log (event VARCHAR(32) NOT NULL, job_id BIGINT NOT NULL, \
             task_id BIGINT NULL, result TEXT NULL)",
        )
        .await
        .unwrap();
    let recorder = Arc::new(Recorder {
        mode: AtomicU8::new(NORMAL),
    });
    assert!(store.set_transaction_hook(recorder.clone()).is_ok());
    assert!(
        store.set_transaction_hook(recorder.clone()).is_err(),
        "a second hook is refused"
    );
    (Arc::new(store.clone()), recorder)
}

/// The hook's rows: (event, task id, result), in insertion order per job.
async fn log(store: &Store) -> Vec<(String, Option<i64>, Option<serde_json::Value>)> {
    let rows = store
        .connection()
        .query_all_raw(Statement::from_string(
            store.connection().get_database_backend(),
            "SELECT event, task_id, result FROM hook_log ORDER BY job_id, task_id, event",
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|row| {
            let result: Option<String> = row.try_get_by("result").unwrap();
            (
                row.try_get_by("event").unwrap(),
                row.try_get_by("task_id").unwrap(),
                result.map(|r| serde_json::from_str(&r).unwrap()),
            )
        })
        .collect()
}

pub async fn hook_commits_with_the_result_at_every_kill_point(store: Store) {
    let (shared, recorder) = hooked(&store).await;
    let job = create(&shared, new_job(1, 2), at(0)).await;
    let (first, second) = (job.tasks[0].id, job.tasks[1].id);

    // Killed before completing: the lease lapses, nothing was written, another worker runs it.
    let lost = claim_one(&shared, "w1", at(1)).await;
    assert_eq!(
        shared
            .requeue_expired(at(2) + chrono::Duration::from_std(LEASE).unwrap())
            .await
            .unwrap(),
        1
    );
    assert!(log(&store).await.is_empty());
    let now = at(3) + chrono::Duration::from_std(LEASE).unwrap();
    let claimed = claim_one(&shared, "w2", now).await;
    assert_eq!(claimed.task.id, first);
    // The first claim's completion is fenced off, and so is its hook.
    assert_eq!(
        shared
            .complete_tasks(&[completion(&lost, json!({"url": "stale"}))], now)
            .await
            .unwrap(),
        vec![false]
    );
    assert!(log(&store).await.is_empty());

    // Killed in the middle of the completion transaction, after the task's update and the
    // hook's insert: nothing of it commits.
    recorder.mode.store(HANG_AFTER_WRITE, Ordering::SeqCst);
    let result = json!({"frontViewUrl": "/files/front.png"});
    let done = completion(&claimed, result.clone());
    let killed = tokio::time::timeout(
        Duration::from_millis(500),
        shared.complete_tasks(&[done], now),
    )
    .await;
    assert!(killed.is_err(), "the hook hangs until the worker is killed");
    recorder.mode.store(NORMAL, Ordering::SeqCst);
    let read = get(&shared, job.job.id).await;
    assert_eq!(read.tasks[0].status, TaskStatus::Running);
    assert_eq!(read.tasks[0].result_data, None);
    assert!(log(&store).await.is_empty());

    // The worker that replaces it runs the step again and completes it: one row, one result.
    let later = now + chrono::Duration::from_std(LEASE).unwrap() * 2;
    shared.requeue_expired(later).await.unwrap();
    let claimed = claim_one(&shared, "w3", later).await;
    let done = completion(&claimed, result.clone());
    let held = shared
        .complete_tasks(std::slice::from_ref(&done), later)
        .await
        .unwrap();
    assert_eq!(held, vec![true]);
    // Killed after the commit: it never heard the answer and sends the completion again.
    let again = shared.complete_tasks(&[done], later).await.unwrap();
    assert_eq!(again, vec![false]);
    let read = get(&shared, job.job.id).await;
    assert_eq!(read.tasks[0].result_data, Some(result.clone()));
    assert_eq!(
        log(&store).await,
        vec![("step.completed".into(), Some(first), Some(result.clone()))]
    );

    // The last step: its event and the job's, with the job completed as the hook saw it.
    let last = claim_one(&shared, "w3", later).await;
    assert_eq!(last.task.id, second);
    let views = json!({"sideViewUrl": "/files/side.png"});
    super::complete(&shared, &last, views.clone(), later).await;
    assert_eq!(
        log(&store).await,
        vec![
            ("step.completed".into(), Some(first), Some(result)),
            ("job.completed".into(), Some(second), Some(views.clone())),
            ("step.completed".into(), Some(second), Some(views)),
        ]
    );
    assert_eq!(get(&shared, job.job.id).await.job.hook_error, None);
    assert_eq!(store.hook_failures(), 0);
}

pub async fn a_failing_hook_keeps_the_result_and_says_so(store: Store) {
    let (shared, recorder) = hooked(&store).await;
    let job = create(&shared, new_job(1, 1), at(0)).await;
    let claimed = claim_one(&shared, "w1", at(1)).await;
    recorder.mode.store(FAIL_AFTER_WRITE, Ordering::SeqCst);
    let result = json!({"imageUrl": "/files/scene.png"});
    super::complete(&shared, &claimed, result.clone(), at(2)).await;
    let read = get(&shared, job.job.id).await;
    assert_eq!(read.job.status, JobStatus::Completed);
    assert_eq!(read.tasks[0].result_data, Some(result));
    // Both events failed; the last failure is on the job, and no row of the hook's stayed.
    assert_eq!(
        read.job.hook_error.as_deref(),
        Some("job.completed: Custom Error: the characters row is gone")
    );
    assert!(log(&store).await.is_empty());
    assert_eq!(store.hook_failures(), 2);
}

pub async fn hook_sees_failures_and_cancellations_once(store: Store) {
    let (shared, _) = hooked(&store).await;
    // A permanent failure: the step's event and the job's.
    let failing = create(&shared, new_job(1, 1), at(0)).await;
    let claimed = claim_one(&shared, "w1", at(1)).await;
    let failure = Failure {
        fence: claimed.fence.clone(),
        message: "content policy".into(),
        retry_at: None,
        started: None,
        job_progress: 0,
    };
    assert!(shared.fail_task(&failure, at(2)).await.unwrap());
    assert!(!shared.fail_task(&failure, at(3)).await.unwrap());
    // A retryable failure is no event: the step is not over.
    let retried = create(&shared, new_job(2, 1), at(4)).await;
    let claimed = claim(&shared, "w1", 1, at(5)).await.remove(0);
    assert_eq!(claimed.job.id, retried.job.id);
    let retry = Failure {
        retry_at: Some(at(10_000)),
        fence: claimed.fence.clone(),
        ..failure.clone()
    };
    assert!(shared.fail_task(&retry, at(6)).await.unwrap());
    // A cancellation, twice: one event.
    let cancelled = create(&shared, new_job(3, 2), at(7)).await;
    shared.cancel_job(cancelled.job.id, at(8)).await.unwrap();
    shared.cancel_job(cancelled.job.id, at(9)).await.unwrap();

    let task = failing.tasks[0].id;
    assert_eq!(
        log(&store).await,
        vec![
            ("job.failed".into(), Some(task), None),
            ("step.failed".into(), Some(task), None),
            ("job.cancelled".into(), None, None),
        ]
    );
}

fn subscriber(name: &str, events: Option<Vec<HookEventKind>>) -> OutboxSubscriber {
    OutboxSubscriber {
        name: name.into(),
        events,
    }
}

pub async fn outbox_delivers_each_event_in_order_per_job(store: Store) {
    assert!(
        store
            .set_outbox_subscribers(vec![
                subscriber("all", None),
                subscriber("done", Some(vec![HookEventKind::JobCompleted])),
            ])
            .is_ok()
    );
    let shared: Shared = Arc::new(store.clone());
    let job = create(&shared, new_job(1, 2), at(0)).await;
    let first = claim_one(&shared, "w1", at(1)).await;
    super::complete(&shared, &first, json!({"n": 1}), at(2)).await;
    let second = claim_one(&shared, "w1", at(3)).await;
    super::complete(&shared, &second, json!({"n": 2}), at(4)).await;
    // Another job's event, between.
    let other = create(&shared, new_job(2, 2), at(5)).await;
    shared.cancel_job(other.job.id, at(6)).await.unwrap();

    let lease = Duration::from_secs(10);
    // Of each job only the earliest pending event: job 1's first step, the other's cancel.
    let claimed = store.claim_outbox("all", 10, lease, at(10)).await.unwrap();
    let events: Vec<(i64, &str)> = claimed
        .iter()
        .map(|d| (d.job_id, d.event.as_str()))
        .collect();
    assert_eq!(
        events,
        vec![
            (job.job.id, "step.completed"),
            (other.job.id, "job.cancelled")
        ]
    );
    assert_eq!(claimed[0].payload["type"], "step.completed");
    assert_eq!(claimed[0].payload["data"]["result"], json!({"n": 1}));
    assert_eq!(claimed[0].payload["data"]["taskId"], first.task.id);
    assert_eq!(claimed[0].attempts, 1);
    // Leased: nobody else gets them, and job 1's later events wait for its first.
    assert!(
        store
            .claim_outbox("all", 10, lease, at(11))
            .await
            .unwrap()
            .is_empty()
    );

    // The first fails and is retried later; the lease of the other lapses (its process died).
    store
        .outbox_attempt_failed(claimed[0].id, "HTTP 503", Some(at(20_000)))
        .await
        .unwrap();
    let lapsed = store
        .claim_outbox("all", 10, lease, at(19_000))
        .await
        .unwrap();
    let ids: Vec<i64> = lapsed.iter().map(|d| d.id).collect();
    assert_eq!(
        ids,
        vec![claimed[1].id],
        "the lapsed lease, not the retry before its time"
    );
    let retried = store
        .claim_outbox("all", 10, lease, at(20_000))
        .await
        .unwrap();
    let ids: Vec<i64> = retried.iter().map(|d| d.id).collect();
    assert_eq!(ids, vec![claimed[0].id]);
    assert_eq!(retried[0].attempts, 2);
    assert_eq!(retried[0].last_error.as_deref(), Some("HTTP 503"));
    for d in lapsed.iter().chain(&retried) {
        store.outbox_delivered(d.id, at(20_001)).await.unwrap();
    }
    // Then job 1's next two events, one at a time in order.
    let mut order = Vec::new();
    loop {
        let batch = store
            .claim_outbox("all", 10, lease, at(20_002))
            .await
            .unwrap();
        if batch.is_empty() {
            break;
        }
        assert_eq!(batch.len(), 1, "one event of a job at a time");
        order.push(batch[0].event.clone());
        store
            .outbox_delivered(batch[0].id, at(20_003))
            .await
            .unwrap();
    }
    assert_eq!(order, vec!["step.completed", "job.completed"]);

    // The other subscriber got only what it asked for; it gives up, then a redelivery.
    let done = store
        .claim_outbox("done", 10, lease, at(30_000))
        .await
        .unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].event, "job.completed");
    store
        .outbox_attempt_failed(done[0].id, "gone", None)
        .await
        .unwrap();
    assert!(
        store
            .claim_outbox("done", 10, lease, at(90_000))
            .await
            .unwrap()
            .is_empty()
    );
    let log = store
        .list_outbox(&OutboxFilter {
            subscriber: Some("done".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].status, DeliveryStatus::Failed);
    let redelivered = store.redeliver(done[0].id, at(91_000)).await.unwrap();
    assert_eq!(redelivered.status, DeliveryStatus::Pending);
    let done_again = store
        .claim_outbox("done", 10, lease, at(91_000))
        .await
        .unwrap();
    assert_eq!(done_again[0].id, done[0].id, "the same delivery id");
    assert!(matches!(
        store.redeliver(i64::MAX, at(91_000)).await,
        Err(nosyntask_engine::StoreError::NotFound(_))
    ));
    let all = store
        .list_outbox(&OutboxFilter {
            job_id: Some(job.job.id),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 4, "three events for `all`, one for `done`");
}
