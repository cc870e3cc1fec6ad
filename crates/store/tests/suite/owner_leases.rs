//! Owner leases: one row per worker process that keeps every task it runs, so that a heartbeat
//! is one write however many tasks wait; the sweep's treatment of a lapsed one; reading which
//! claims were taken from a process without writing.

use nosyntask_domain::{AttemptOutcome, TaskStatus};
use nosyntask_engine::ports::Fence;

use super::*;

fn ids(tasks: &[ClaimedTask]) -> Vec<i64> {
    let mut ids: Vec<i64> = tasks.iter().map(|c| c.task.id).collect();
    ids.sort_unstable();
    ids
}

fn fences(tasks: &[ClaimedTask]) -> Vec<Fence> {
    tasks.iter().map(|c| c.fence.clone()).collect()
}

pub async fn an_owner_lease_keeps_its_tasks_until_it_lapses(store: Shared) {
    let a = create(&store, new_job(1, 1), at(0)).await;
    let b = create(&store, new_job(1, 1), at(0)).await;
    let claimed = claim(&store, "w1", 10, at(1)).await;
    assert_eq!(claimed.len(), 2);
    // No owner lease yet: nothing to renew.
    assert!(!store.renew_owner_lease("w1", LEASE, at(2)).await.unwrap());
    store.start_owner_lease("w1", LEASE, at(2)).await.unwrap();
    assert!(
        store
            .renew_owner_lease("w1", LEASE, at(20_000))
            .await
            .unwrap()
    );
    // The tasks' own leases ran out at 30,001; the owner's holds until 50,000.
    assert_eq!(store.requeue_expired(at(40_000)).await.unwrap(), 0);
    assert!(claim(&store, "w2", 10, at(40_001)).await.is_empty());
    assert!(
        store
            .lost_fences(&fences(&claimed))
            .await
            .unwrap()
            .is_empty()
    );
    // Another owner's lease changes nothing for w1.
    store
        .start_owner_lease("w2", LEASE, at(40_002))
        .await
        .unwrap();
    // It lapses: the sweep deletes it and requeues both tasks.
    assert_eq!(store.requeue_expired(at(50_001)).await.unwrap(), 2);
    assert!(
        !store
            .renew_owner_lease("w1", LEASE, at(50_002))
            .await
            .unwrap()
    );
    let taken = claim(&store, "w2", 10, at(50_003)).await;
    assert_eq!(ids(&taken), ids(&claimed));
    let mut lost = store.lost_fences(&fences(&claimed)).await.unwrap();
    lost.sort_unstable();
    assert_eq!(lost, ids(&claimed));
    // w1's per-task renewal, which follows a lapse, finds them taken.
    let lost = store
        .renew_leases(&fences(&claimed), LEASE, at(50_004))
        .await
        .unwrap();
    assert_eq!(lost.len(), 2);
    // The lost attempts ended when the owner's lease did, not when the tasks' own leases had.
    for job in [a.job.id, b.job.id] {
        let read = get(&store, job).await;
        let lost: Vec<_> = read
            .history
            .iter()
            .filter(|h| h.outcome == AttemptOutcome::Lost)
            .collect();
        assert_eq!(lost.len(), 1, "{:?}", read.history);
        assert_eq!(lost[0].worker.as_deref(), Some("w1"));
        assert_eq!(lost[0].ended_at, at(50_000));
    }
}

pub async fn a_live_runner_takes_its_tasks_back_after_its_owner_lease_lapsed(store: Shared) {
    create(&store, new_job(1, 1), at(0)).await;
    let claimed = claim(&store, "w1", 10, at(1)).await;
    store.start_owner_lease("w1", LEASE, at(2)).await.unwrap();
    // The runner lost the database past its owner lease: swept back to pending.
    assert_eq!(store.requeue_expired(at(30_003)).await.unwrap(), 1);
    assert!(
        !store
            .renew_owner_lease("w1", LEASE, at(30_004))
            .await
            .unwrap()
    );
    // As the heartbeat does then: every task renewed (taken back), then the owner lease again.
    let lost = store
        .renew_leases(&fences(&claimed), LEASE, at(30_005))
        .await
        .unwrap();
    assert!(lost.is_empty(), "{lost:?}");
    store
        .start_owner_lease("w1", LEASE, at(30_006))
        .await
        .unwrap();
    assert!(claim(&store, "w2", 10, at(30_007)).await.is_empty());
    assert_eq!(store.requeue_expired(at(60_000)).await.unwrap(), 0);
    assert!(
        store
            .renew_owner_lease("w1", LEASE, at(60_001))
            .await
            .unwrap()
    );
}

pub async fn tasks_claimed_without_an_owner_lease_lapse_on_their_own(store: Shared) {
    create(&store, new_job(1, 1), at(0)).await;
    create(&store, new_job(1, 1), at(0)).await;
    // w1 holds an owner lease; w2 never took one (or died before taking it back).
    let first = claim(&store, "w1", 1, at(1)).await;
    store.start_owner_lease("w1", LEASE, at(2)).await.unwrap();
    let second = claim(&store, "w2", 1, at(3)).await;
    assert_eq!((first.len(), second.len()), (1, 1));
    assert!(
        store
            .renew_owner_lease("w1", LEASE, at(20_000))
            .await
            .unwrap()
    );
    assert_eq!(store.requeue_expired(at(30_004)).await.unwrap(), 1);
    let again = claim(&store, "w3", 10, at(30_005)).await;
    assert_eq!(ids(&again), ids(&second));
}

pub async fn lost_fences_names_claims_cancelled_resumed_finished_or_unknown(store: Shared) {
    let a = create(&store, new_job(1, 1), at(0)).await;
    let b = create(&store, new_job(1, 1), at(0)).await;
    let c = create(&store, new_job(1, 1), at(0)).await;
    let claimed = claim(&store, "w1", 10, at(1)).await;
    let of = |job: i64| claimed.iter().find(|t| t.task.job_id == job).unwrap();
    let mut all = fences(&claimed);
    all.push(Fence {
        task_id: 10_000_000,
        job_id: a.job.id,
        owner: "w1".to_owned(),
        attempt: 1,
        epoch: 1,
    });
    assert_eq!(store.lost_fences(&all).await.unwrap(), vec![10_000_000]);
    // Cancelled, then resumed and claimed again by the same owner: a new epoch.
    store.cancel_job(a.job.id, at(2)).await.unwrap();
    store.resume_job(a.job.id, None, at(3)).await.unwrap();
    let again = claim_one(&store, "w1", at(4)).await;
    assert_eq!(again.task.id, of(a.job.id).task.id);
    complete(&store, of(b.job.id), json!({}), at(5)).await;
    let mut lost = store.lost_fences(&all).await.unwrap();
    lost.sort_unstable();
    let mut expected = vec![of(a.job.id).task.id, of(b.job.id).task.id, 10_000_000];
    expected.sort_unstable();
    assert_eq!(lost, expected);
    assert!(
        store
            .lost_fences(std::slice::from_ref(&again.fence))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        get(&store, c.job.id).await.tasks[0].status,
        TaskStatus::Running
    );
}

pub async fn a_cancelled_task_keeps_its_live_owner_a_minute(store: Shared) {
    let job = create(&store, new_job(1, 1), at(0)).await;
    let claimed = claim_one(&store, "w1", at(1)).await;
    store.start_owner_lease("w1", LEASE, at(2)).await.unwrap();
    assert!(
        store
            .renew_owner_lease("w1", LEASE, at(34_000))
            .await
            .unwrap()
    );
    // Cancelled after the task's own lease ran out, while the owner's holds.
    store.cancel_job(job.job.id, at(35_000)).await.unwrap();
    store.requeue_expired(at(36_000)).await.unwrap();
    assert_eq!(
        store.cancelled_claims("w1").await.unwrap(),
        vec![claimed.task.id]
    );
    assert!(
        store
            .renew_owner_lease("w1", LEASE, at(60_000))
            .await
            .unwrap()
    );
    store.requeue_expired(at(89_000)).await.unwrap();
    assert_eq!(
        store.cancelled_claims("w1").await.unwrap(),
        vec![claimed.task.id]
    );
    // A minute after the cancel it is let go, though the owner still lives.
    assert!(
        store
            .renew_owner_lease("w1", LEASE, at(80_000))
            .await
            .unwrap()
    );
    store.requeue_expired(at(95_001)).await.unwrap();
    assert!(store.cancelled_claims("w1").await.unwrap().is_empty());
}
