//! Model limits that hold across every process on the database: the rows of `model_limits`
//! (concurrency, requests per minute, a provider's pause) and the claim that admits a task only
//! while its model has room.
//!
//! The claim of a store that recorded limits runs in one transaction: it locks the model rows
//! (every claim of the cluster takes them in name order, so the counts below cannot be raced),
//! counts the running tasks of each model in a statement of its own (so that on PostgreSQL and
//! under MySQL's READ COMMITTED it sees what the previous holder of the locks committed), picks
//! ready tasks whose model has room, and marks them running like the plain claim. A task whose
//! model is full or paused is simply not picked: it stays pending, holds no worker slot, uses no
//! attempt and runs no timeout.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};
use nosyntask_domain::AttemptOutcome;
use nosyntask_engine::StoreError;
use nosyntask_engine::ports::{ClaimedTask, Fence, ModelLimit, ModelUsage};
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, IsolationLevel, TransactionTrait, Value,
};

use crate::error::{Result, retrying, retrying_read};
use crate::history;
use crate::sql::{self, col, ms, placeholders, stmt};
use crate::store::{Store, begin_on};

/// Length of a requests-per-minute window.
const MINUTE_MS: i64 = 60_000;

/// A `model_limits` row as the claim reads it.
struct ModelRow {
    name: String,
    max_concurrency: i64,
    requests_per_minute: Option<i64>,
    window_started_at: i64,
    window_claims: i64,
    paused_until: Option<i64>,
}

impl ModelRow {
    fn decode(row: &sea_orm::QueryResult) -> Result<ModelRow, DbErr> {
        Ok(ModelRow {
            name: col(row, 0)?,
            max_concurrency: col::<i32>(row, 1)?.into(),
            requests_per_minute: col::<Option<i32>>(row, 2)?.map(i64::from),
            window_started_at: col(row, 3)?,
            window_claims: col::<i32>(row, 4)?.into(),
            paused_until: col(row, 5)?,
        })
    }

    /// Claims in the window that is current at `now`.
    fn minute_claims(&self, now: i64) -> i64 {
        if now - self.window_started_at < MINUTE_MS {
            self.window_claims
        } else {
            0
        }
    }

    /// How many more tasks of this model may start now.
    fn room(&self, running: i64, now: i64) -> i64 {
        if self.paused_until.is_some_and(|until| until > now) {
            return 0;
        }
        let mut room = self.max_concurrency - running;
        if let Some(rate) = self.requests_per_minute {
            room = room.min(rate - self.minute_claims(now));
        }
        room.max(0)
    }

    fn usage(&self, running: i64, now: i64) -> ModelUsage {
        let count = |n: i64| u32::try_from(n.max(0)).unwrap_or(u32::MAX);
        ModelUsage {
            name: self.name.clone(),
            max_concurrency: count(self.max_concurrency),
            requests_per_minute: self.requests_per_minute.map(count),
            running: count(running),
            minute_claims: count(self.minute_claims(now)),
            paused_until: self.paused_until.filter(|u| *u > now).map(sql::time),
        }
    }
}

const MODEL_COLUMNS: &str =
    "name, max_concurrency, requests_per_minute, window_started_at, window_claims, paused_until";

/// Running tasks per model.
async fn running_by_model(
    conn: &impl ConnectionTrait,
    backend: DbBackend,
) -> Result<BTreeMap<String, i64>, DbErr> {
    let rows = conn
        .query_all_raw(stmt(
            backend,
            "SELECT model_name, COUNT(*) FROM generation_tasks \
             WHERE status = 'running' AND model_name IS NOT NULL GROUP BY model_name",
            Vec::new(),
        ))
        .await?;
    rows.iter()
        .map(|row| Ok((col::<String>(row, 0)?, col::<i64>(row, 1)?)))
        .collect()
}

/// Why a parked attempt ended: its model asked the cluster to wait (a 429 or `Retry-After`).
const PARKED_MESSAGE: &str = "handed back to wait for its model (the provider asked to wait)";

impl Store {
    pub(crate) async fn set_model_limits_impl(
        &self,
        limits: &[ModelLimit],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if limits.is_empty() {
            return Ok(());
        }
        let mut sorted: Vec<&ModelLimit> = limits.iter().collect();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        retrying(|| async {
            let backend = self.backend();
            let txn = self.begin().await?;
            for limit in &sorted {
                let upsert = match backend {
                    DbBackend::MySql => {
                        "INSERT INTO model_limits (name, max_concurrency, requests_per_minute, \
                         updated_at) VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE \
                         max_concurrency = VALUES(max_concurrency), \
                         requests_per_minute = VALUES(requests_per_minute), \
                         updated_at = VALUES(updated_at)"
                    }
                    _ => {
                        "INSERT INTO model_limits (name, max_concurrency, requests_per_minute, \
                         updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET \
                         max_concurrency = excluded.max_concurrency, \
                         requests_per_minute = excluded.requests_per_minute, \
                         updated_at = excluded.updated_at"
                    }
                };
                let clamp = |n: u32| i32::try_from(n.max(1)).unwrap_or(i32::MAX);
                txn.execute_raw(stmt(
                    backend,
                    upsert,
                    vec![
                        limit.name.clone().into(),
                        clamp(limit.max_concurrency).into(),
                        limit.requests_per_minute.map(clamp).into(),
                        ms(now).into(),
                    ],
                ))
                .await?;
            }
            txn.commit().await?;
            Ok(())
        })
        .await?;
        self.inner.limits_in_use.store(true, Ordering::SeqCst);
        Ok(())
    }

    pub(crate) async fn model_usage_impl(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<ModelUsage>, StoreError> {
        retrying_read(|| async {
            let backend = self.backend();
            let conn = &self.inner.read;
            let rows = conn
                .query_all_raw(stmt(
                    backend,
                    &format!("SELECT {MODEL_COLUMNS} FROM model_limits ORDER BY name"),
                    Vec::new(),
                ))
                .await?;
            if rows.is_empty() {
                return Ok(Vec::new());
            }
            let running = running_by_model(conn, backend).await?;
            rows.iter()
                .map(|row| {
                    let model = ModelRow::decode(row)?;
                    let busy = running.get(&model.name).copied().unwrap_or(0);
                    Ok(model.usage(busy, ms(now)))
                })
                .collect::<Result<Vec<_>, DbErr>>()
                .map_err(Into::into)
        })
        .await
    }

    pub(crate) async fn pause_model_impl(
        &self,
        name: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        retrying(|| async {
            self.inner
                .write
                .execute_raw(stmt(
                    self.backend(),
                    "UPDATE model_limits SET paused_until = ?, updated_at = ? \
                     WHERE name = ? AND (paused_until IS NULL OR paused_until < ?)",
                    vec![
                        ms(until).into(),
                        ms(now).into(),
                        name.to_owned().into(),
                        ms(until).into(),
                    ],
                ))
                .await?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn park_task_impl(
        &self,
        fence: &Fence,
        ready_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let held = retrying(|| async {
            let txn = self.begin().await?;
            let updated = txn
                .execute_raw(stmt(
                    self.backend(),
                    "UPDATE generation_tasks SET status = 'pending', ready_at = ?, \
                     attempts = attempts - 1, lease_owner = NULL, lease_expires_at = NULL, \
                     updated_at = ? WHERE id = ? \
                     AND status NOT IN ('completed', 'failed', 'cancelled') \
                     AND lease_owner = ? AND claim_epoch = ?",
                    vec![
                        ms(ready_at).into(),
                        ms(now).into(),
                        fence.task_id.into(),
                        fence.owner.clone().into(),
                        fence.epoch.into(),
                    ],
                ))
                .await?;
            let held = updated.rows_affected() > 0;
            if held {
                // Parked without cost: the attempt was taken back above.
                history::record_one(
                    &txn,
                    fence.task_id,
                    &fence.owner,
                    now,
                    AttemptOutcome::HandedBack,
                    Some(PARKED_MESSAGE),
                    1,
                )
                .await?;
            }
            txn.commit().await?;
            Ok(held)
        })
        .await?;
        if held {
            self.announce();
        }
        Ok(held)
    }

    /// The claim when model limits are in use (see the module documentation).
    pub(crate) async fn claim_limited(
        &self,
        owner: &str,
        limit: u32,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<ClaimedTask>> {
        let backend = self.backend();
        let txn = self.begin_claim().await?;
        let (lock, skip) = match backend {
            DbBackend::Sqlite => ("", ""),
            _ => (" FOR UPDATE", " FOR UPDATE SKIP LOCKED"),
        };
        let models = txn
            .query_all_raw(stmt(
                backend,
                &format!("SELECT {MODEL_COLUMNS} FROM model_limits ORDER BY name{lock}"),
                Vec::new(),
            ))
            .await?
            .iter()
            .map(ModelRow::decode)
            .collect::<Result<Vec<_>, DbErr>>()?;
        let running = running_by_model(&txn, backend).await?;
        let now_ms = ms(now);
        let mut room: BTreeMap<String, i64> = models
            .iter()
            .map(|m| {
                let busy = running.get(&m.name).copied().unwrap_or(0);
                (m.name.clone(), m.room(busy, now_ms))
            })
            .collect();
        let wanted = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut admitted: Vec<i64> = Vec::new();
        let mut admitted_set: HashSet<i64> = HashSet::new();
        let mut started: BTreeMap<String, i64> = BTreeMap::new();
        // Each round either fills the claim, finds nothing it may take, or closes at least one
        // more model (the one whose rejected task made the round end short): at most one round
        // per model plus one.
        for _ in 0..=models.len() {
            let closed: Vec<String> = room
                .iter()
                .filter(|(_, r)| **r <= 0)
                .map(|(name, _)| name.clone())
                .collect();
            let mut values: Vec<Value> = vec![now_ms.into()];
            let exclude = if closed.is_empty() {
                String::new()
            } else {
                values.extend(closed.iter().map(|name| Value::from(name.clone())));
                format!(
                    " AND (model_name IS NULL OR model_name NOT IN ({}))",
                    placeholders(closed.len())
                )
            };
            // Tasks admitted in an earlier round come back (still pending, locked by us): ask
            // for as many as the claim wants in all.
            values.push(i64::try_from(wanted).unwrap_or(i64::MAX).into());
            let rows = txn
                .query_all_raw(stmt(
                    backend,
                    &format!(
                        "SELECT id, model_name FROM generation_tasks \
                         WHERE status = 'pending' AND +ready_at <= ?{exclude} \
                         AND claim_key IS NOT NULL ORDER BY claim_key, id LIMIT ?{skip}"
                    ),
                    values,
                ))
                .await?;
            let mut turned_away = false;
            for row in &rows {
                if admitted.len() >= wanted {
                    break;
                }
                let id: i64 = col(row, 0)?;
                if admitted_set.contains(&id) {
                    continue;
                }
                let model: Option<String> = col(row, 1)?;
                if let Some(left) = model.as_ref().and_then(|m| room.get_mut(m)) {
                    if *left <= 0 {
                        turned_away = true;
                        continue;
                    }
                    *left -= 1;
                    if let Some(model) = model {
                        *started.entry(model).or_default() += 1;
                    }
                }
                admitted.push(id);
                admitted_set.insert(id);
            }
            if admitted.len() >= wanted || !turned_away {
                break;
            }
        }
        if admitted.is_empty() {
            txn.commit().await?;
            return Ok(Vec::new());
        }
        for (name, count) in &started {
            let Some(model) = models.iter().find(|m| &m.name == name) else {
                continue;
            };
            if model.requests_per_minute.is_none() {
                continue;
            }
            let (window, claims) = if now_ms - model.window_started_at < MINUTE_MS {
                (model.window_started_at, model.window_claims + count)
            } else {
                (now_ms, *count)
            };
            txn.execute_raw(stmt(
                backend,
                "UPDATE model_limits SET window_started_at = ?, window_claims = ? WHERE name = ?",
                vec![
                    window.into(),
                    i32::try_from(claims).unwrap_or(i32::MAX).into(),
                    name.clone().into(),
                ],
            ))
            .await?;
        }
        admitted.sort_unstable();
        let claimed = self
            .claim_picked(&txn, &admitted, owner, lease, now)
            .await?;
        txn.commit().await?;
        Ok(claimed)
    }

    /// The claim's transaction: READ COMMITTED on MySQL, so that the count after the model
    /// locks sees the commits of the claim that held them before.
    async fn begin_claim(&self) -> Result<DatabaseTransaction, DbErr> {
        match self.backend() {
            DbBackend::MySql => {
                self.inner
                    .write
                    .begin_with_config(Some(IsolationLevel::ReadCommitted), None)
                    .await
            }
            backend => begin_on(&self.inner.write, backend).await,
        }
    }
}
