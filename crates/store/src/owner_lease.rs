//! Owner leases: one row per worker process (`owner_leases`), so that a process waiting on
//! 100,000 tasks renews them with one single-row write per heartbeat instead of 100,000 row
//! updates. While an owner's lease holds, the expiry sweep leaves its running tasks alone even
//! after their own leases (set at claim) ran out; a lapsed owner lease is deleted by the sweep in
//! the same transaction that requeues its tasks, so a renewal either lands before the sweep (and
//! nothing of the owner is requeued) or finds the row gone (and the runner renews its tasks one
//! by one, taking back what nobody claimed since).

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use nosyntask_domain::TaskId;
use nosyntask_engine::StoreError;
use nosyntask_engine::ports::Fence;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};

use crate::claim::{held_fences_without_locks, lease_until};
use crate::entities::owner_leases;
use crate::error::{Result, retrying, retrying_read};
use crate::sql::{IN_LIST_CHUNK, ms, stmt};
use crate::store::Store;

use owner_leases::Column as L;

/// Requeues the running tasks that no owner lease covers and whose own lease ran out: tasks of
/// owners that hold none (a process that never took one, or that died before taking it back
/// after a lapse). Every `?` is the sweep's time.
const REQUEUE_UNOWNED: &str = "UPDATE generation_tasks SET status = 'pending', ready_at = ?, \
     updated_at = ? WHERE status = 'running' AND lease_expires_at < ? \
     AND NOT EXISTS (SELECT 1 FROM owner_leases o WHERE o.owner = generation_tasks.lease_owner)";

impl Store {
    /// See [`nosyntask_engine::JobStore::renew_owner_lease`].
    pub(crate) async fn renew_owner_lease_impl(
        &self,
        owner: &str,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let until = lease_until(now, lease);
        retrying(|| async {
            let renewed = owner_leases::Entity::update_many()
                .col_expr(L::ExpiresAt, Expr::value(until))
                .filter(L::Owner.eq(owner))
                .exec(&self.inner.heartbeat)
                .await?;
            Ok(renewed.rows_affected > 0)
        })
        .await
    }

    /// See [`nosyntask_engine::JobStore::start_owner_lease`].
    pub(crate) async fn start_owner_lease_impl(
        &self,
        owner: &str,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let until = lease_until(now, lease);
        retrying(|| async {
            owner_leases::Entity::insert(owner_leases::ActiveModel {
                owner: Set(owner.to_owned()),
                expires_at: Set(until),
            })
            .on_conflict(
                OnConflict::column(L::Owner)
                    .update_column(L::ExpiresAt)
                    .to_owned(),
            )
            .exec_without_returning(&self.inner.heartbeat)
            .await?;
            Ok(())
        })
        .await
    }

    /// See [`nosyntask_engine::JobStore::lost_fences`].
    pub(crate) async fn lost_fences_impl(
        &self,
        fences: &[Fence],
    ) -> Result<Vec<TaskId>, StoreError> {
        let mut held: HashSet<TaskId> = HashSet::with_capacity(fences.len());
        for chunk in fences.chunks(IN_LIST_CHUNK) {
            let still = retrying_read(|| async {
                Ok(held_fences_without_locks(&self.inner.read, self.backend(), chunk).await?)
            })
            .await?;
            held.extend(still.into_keys());
        }
        Ok(fences
            .iter()
            .map(|f| f.task_id)
            .filter(|id| !held.contains(id))
            .collect())
    }
}

/// How long a cancelled task keeps its owner while that owner's lease holds: the runner learns
/// of the cancellation by its owner (`cancelled_claims`, every second), and the list stays short.
pub(crate) const CANCEL_NOTICE_MS: i64 = 60_000;

/// The expiry sweep's part for owner leases, in its transaction: deletes the owner leases that
/// lapsed (locking them first, so a renewal in flight either commits before and keeps its row,
/// or waits and then finds it gone), requeues their tasks whose own lease ran out too, then the
/// running tasks that no owner lease covers and whose own lease ran out. A task requeued for
/// its owner's lapse records that lapse as the end of its lease (the attempt history reads it).
/// Gives back the tasks requeued.
pub(crate) async fn requeue_lapsed(txn: &DatabaseTransaction, now: DateTime<Utc>) -> Result<u64> {
    let backend = txn.get_database_backend();
    let now_ms = ms(now);
    let mut lapsed = owner_leases::Entity::find()
        .filter(L::ExpiresAt.lt(now_ms))
        .order_by_asc(L::Owner);
    if backend != DbBackend::Sqlite {
        lapsed = lapsed.lock_exclusive();
    }
    let lapsed = lapsed.all(txn).await?;
    let mut requeued = 0;
    for lease in &lapsed {
        owner_leases::Entity::delete_by_id(lease.owner.clone())
            .exec(txn)
            .await?;
        requeued += txn
            .execute_raw(stmt(
                backend,
                "UPDATE generation_tasks SET status = 'pending', ready_at = ?, updated_at = ?, \
                 lease_expires_at = CASE WHEN lease_expires_at < ? THEN ? \
                 ELSE lease_expires_at END \
                 WHERE status = 'running' AND lease_owner = ? AND lease_expires_at < ?",
                vec![
                    now_ms.into(),
                    now_ms.into(),
                    lease.expires_at.into(),
                    lease.expires_at.into(),
                    lease.owner.clone().into(),
                    now_ms.into(),
                ],
            ))
            .await?
            .rows_affected();
    }
    requeued += txn
        .execute_raw(stmt(
            backend,
            REQUEUE_UNOWNED,
            vec![now_ms.into(), now_ms.into(), now_ms.into()],
        ))
        .await?
        .rows_affected();
    Ok(requeued)
}
