//! The durable outbox of after-commit hooks (`event_outbox`). The transaction that completes,
//! fails or cancels writes one row per event and subscriber (see `crate::hooks`), so an event
//! is recorded exactly when its result is; a delivery loop (the server's webhooks) claims the
//! rows after commit with a lease, delivers them at least once and marks them delivered, or
//! schedules the next attempt. A process killed mid-delivery leaves the lease to lapse and the
//! row is claimed again. Within a subscriber, a job's events go out one at a time in id order:
//! a row is claimable only when no earlier row of its job is still pending.

use std::time::Duration;

use chrono::{DateTime, Utc};
use nosyntask_domain::JobId;
use nosyntask_engine::StoreError;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde_json::{Value, json};

use crate::entities::event_outbox;
use crate::error::{Result, retrying, retrying_read};
use crate::hooks::{HookEvent, HookEventKind};
use crate::sql::{ms, padded_ids, padded_len, placeholders, stmt, time};
use crate::store::Store;

/// Who the outbox keeps events for: a name (a webhook endpoint's) and the kinds it wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxSubscriber {
    pub name: String,
    /// `None`: every kind.
    pub events: Option<Vec<HookEventKind>>,
}

impl OutboxSubscriber {
    fn wants(&self, kind: HookEventKind) -> bool {
        self.events
            .as_ref()
            .is_none_or(|kinds| kinds.contains(&kind))
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Not delivered yet: due at `next_attempt_at` (or being delivered, under a lease).
    Pending,
    Delivered,
    /// Given up on after its retry period; a redelivery makes it pending again.
    Failed,
}

/// One row of the outbox: an event for one subscriber, and how its delivery went.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxDelivery {
    /// The delivery id: the same on every attempt and redelivery, for receivers to deduplicate.
    pub id: i64,
    pub subscriber: String,
    pub event: String,
    pub job_id: JobId,
    pub task_id: Option<i64>,
    /// What is sent: `{type, timestamp, data}` (the Standard Webhooks payload shape).
    pub payload: Value,
    pub status: DeliveryStatus,
    /// Attempts made so far (a claim counts as one).
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// Filters of [`Store::list_outbox`].
#[derive(Debug, Clone, Default)]
pub struct OutboxFilter {
    pub subscriber: Option<String>,
    pub job_id: Option<JobId>,
    pub status: Option<DeliveryStatus>,
    /// Newest first, at most this many.
    pub limit: u64,
}

const DELIVERY_STATUSES: [DeliveryStatus; 3] = [
    DeliveryStatus::Pending,
    DeliveryStatus::Delivered,
    DeliveryStatus::Failed,
];

impl DeliveryStatus {
    /// The status as the `status` column and the API spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }
}

impl std::str::FromStr for DeliveryStatus {
    type Err = ();

    fn from_str(text: &str) -> std::result::Result<Self, ()> {
        DELIVERY_STATUSES
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or(())
    }
}

fn delivery(row: event_outbox::Model) -> Result<OutboxDelivery, sea_orm::DbErr> {
    let status = crate::sql::parse_status::<DeliveryStatus>(&row.status)?;
    Ok(OutboxDelivery {
        id: row.id,
        subscriber: row.subscriber,
        event: row.event,
        job_id: row.job_id,
        task_id: row.task_id,
        payload: crate::sql::parse_json(&row.payload, "event_outbox.payload")?,
        status,
        attempts: row.attempts,
        next_attempt_at: time(row.next_attempt_at),
        last_error: row.last_error,
        created_at: time(row.created_at),
        delivered_at: row.delivered_at.map(time),
    })
}

/// The payload of `event`: `{type, timestamp, data}`, data in the API's naming.
fn payload(event: &HookEvent) -> Value {
    let job = &event.job;
    let task = event.task.as_ref();
    json!({
        "type": event.kind.as_str(),
        "timestamp": job.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": {
            "jobId": job.id,
            "workflowType": job.workflow_type,
            "projectId": job.project_id,
            "userId": job.user_id,
            "status": job.status.as_str(),
            "progress": job.progress,
            "taskId": task.map(|t| t.id),
            "stepIndex": task.map(|t| t.step_index),
            "taskType": task.map(|t| t.task_type.clone()),
            "itemIndex": task.and_then(|t| t.item_index),
            "result": task.and_then(|t| t.result_data.clone()),
            "error": task
                .and_then(|t| t.error_message.clone())
                .or_else(|| job.error_message.clone()),
        },
    })
}

/// Records `event` for every subscriber that wants it, in `txn` (the event's own transaction).
pub(crate) async fn record(
    txn: &DatabaseTransaction,
    subscribers: &[OutboxSubscriber],
    event: &HookEvent,
) -> Result<()> {
    let wanted: Vec<&OutboxSubscriber> =
        subscribers.iter().filter(|s| s.wants(event.kind)).collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let payload = payload(event).to_string();
    let at = ms(event.job.updated_at);
    let mut values = Vec::new();
    for subscriber in &wanted {
        values.extend([
            subscriber.name.clone().into(),
            event.kind.as_str().into(),
            event.job.id.into(),
            event.task.as_ref().map(|t| t.id).into(),
            payload.clone().into(),
            at.into(),
            at.into(),
        ]);
    }
    let rows = vec!["(?, ?, ?, ?, ?, 'pending', 0, ?, ?)"; wanted.len()].join(", ");
    txn.execute_raw(stmt(
        txn.get_database_backend(),
        &format!(
            "INSERT INTO event_outbox (subscriber, event, job_id, task_id, payload, status, \
             attempts, next_attempt_at, created_at) VALUES {rows}"
        ),
        values,
    ))
    .await?;
    Ok(())
}

impl Store {
    /// Keeps an outbox row of every event (completions, failures, cancellations) for each of
    /// `subscribers`, written in the event's transaction. Once per store; a second call is
    /// refused with the list given back.
    pub fn set_outbox_subscribers(
        &self,
        subscribers: Vec<OutboxSubscriber>,
    ) -> std::result::Result<(), Vec<OutboxSubscriber>> {
        self.inner.outbox.set(subscribers)
    }

    pub(crate) fn outbox_subscribers(&self) -> &[OutboxSubscriber] {
        self.inner
            .outbox
            .get()
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Claims up to `limit` due deliveries of `subscriber` for `lease`: the oldest first, and
    /// of each job only the earliest pending one. Each claim counts as an attempt.
    pub async fn claim_outbox(
        &self,
        subscriber: &str,
        limit: u32,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<OutboxDelivery>, StoreError> {
        retrying(|| async {
            let backend = self.backend();
            let now_ms = ms(now);
            let txn = self.begin().await?;
            // SQLite runs one write transaction at a time: no row locks to take.
            let lock = match backend {
                DbBackend::Sqlite => "",
                _ => " FOR UPDATE SKIP LOCKED",
            };
            let rows = txn
                .query_all_raw(stmt(
                    backend,
                    &format!(
                        "SELECT id FROM event_outbox o WHERE subscriber = ? \
                         AND status = 'pending' AND next_attempt_at <= ? \
                         AND (lease_expires_at IS NULL OR lease_expires_at <= ?) \
                         AND NOT EXISTS (SELECT 1 FROM event_outbox e \
                           WHERE e.subscriber = o.subscriber AND e.job_id = o.job_id \
                           AND e.status = 'pending' AND e.id < o.id) \
                         ORDER BY id LIMIT ?{lock}"
                    ),
                    vec![
                        subscriber.into(),
                        now_ms.into(),
                        now_ms.into(),
                        i64::from(limit).into(),
                    ],
                ))
                .await?;
            let ids = rows
                .iter()
                .map(|row| crate::sql::named::<i64>(row, "id"))
                .collect::<Result<Vec<_>, _>>()?;
            if ids.is_empty() {
                txn.commit().await?;
                return Ok(Vec::new());
            }
            let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
            let mut values = vec![now_ms.saturating_add(lease_ms).into()];
            values.extend(padded_ids(ids.iter().copied()));
            txn.execute_raw(stmt(
                backend,
                &format!(
                    "UPDATE event_outbox SET lease_expires_at = ?, attempts = attempts + 1 \
                     WHERE id IN ({})",
                    placeholders(padded_len(ids.len()))
                ),
                values,
            ))
            .await?;
            let claimed = event_outbox::Entity::find()
                .filter(event_outbox::Column::Id.is_in(ids))
                .order_by_asc(event_outbox::Column::Id)
                .all(&txn)
                .await?;
            txn.commit().await?;
            Ok(claimed
                .into_iter()
                .map(delivery)
                .collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Marks a claimed delivery delivered.
    pub async fn outbox_delivered(&self, id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.settle_delivery(
            "status = 'delivered', delivered_at = ?, lease_expires_at = NULL, last_error = NULL",
            vec![ms(now).into()],
            id,
        )
        .await
    }

    /// Records a failed attempt of a claimed delivery: due again at `retry_at`, or given up on
    /// (`None`: failed, until a redelivery).
    pub async fn outbox_attempt_failed(
        &self,
        id: i64,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let (set, mut values): (_, Vec<sea_orm::Value>) = match retry_at {
            Some(at) => (
                "next_attempt_at = ?, lease_expires_at = NULL, last_error = ?",
                vec![ms(at).into()],
            ),
            None => (
                "status = 'failed', lease_expires_at = NULL, last_error = ?",
                Vec::new(),
            ),
        };
        values.push(crate::sql::storable_text(error).into());
        self.settle_delivery(set, values, id).await
    }

    async fn settle_delivery(
        &self,
        set: &str,
        mut values: Vec<sea_orm::Value>,
        id: i64,
    ) -> Result<(), StoreError> {
        values.push(id.into());
        let sql = format!("UPDATE event_outbox SET {set} WHERE id = ? AND status = 'pending'");
        retrying(|| async {
            self.inner
                .write
                .execute_raw(stmt(self.backend(), &sql, values.clone()))
                .await?;
            Ok(())
        })
        .await
    }

    /// The delivery log, newest first.
    pub async fn list_outbox(
        &self,
        filter: &OutboxFilter,
    ) -> Result<Vec<OutboxDelivery>, StoreError> {
        use event_outbox::Column as O;
        retrying_read(|| async {
            let mut query = event_outbox::Entity::find();
            if let Some(subscriber) = &filter.subscriber {
                query = query.filter(O::Subscriber.eq(subscriber.as_str()));
            }
            if let Some(job_id) = filter.job_id {
                query = query.filter(O::JobId.eq(job_id));
            }
            if let Some(status) = filter.status {
                query = query.filter(O::Status.eq(status.as_str()));
            }
            let rows = query
                .order_by_desc(O::Id)
                .limit(filter.limit)
                .all(&self.inner.read)
                .await?;
            Ok(rows
                .into_iter()
                .map(delivery)
                .collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Sends a delivery again (delivered or given up on): pending, due at `now`, with the same
    /// delivery id. `NotFound` for an unknown id.
    pub async fn redeliver(
        &self,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<OutboxDelivery, StoreError> {
        use event_outbox::Column as O;
        retrying(|| async {
            let txn = self.begin().await?;
            event_outbox::Entity::update_many()
                .col_expr(O::Status, sea_orm::sea_query::Expr::value("pending"))
                .col_expr(O::NextAttemptAt, sea_orm::sea_query::Expr::value(ms(now)))
                .col_expr(O::LeaseExpiresAt, crate::query::null_int())
                .filter(O::Id.eq(id))
                .filter(O::Status.ne("pending"))
                .exec(&txn)
                .await?;
            let row = event_outbox::Entity::find_by_id(id).one(&txn).await?;
            txn.commit().await?;
            let Some(row) = row else {
                return Err(StoreError::NotFound(id).into());
            };
            Ok(delivery(row)?)
        })
        .await
    }
}
