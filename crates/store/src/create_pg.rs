//! Starts on PostgreSQL in as few round trips as possible. One statement checks idempotency and
//! uniqueness and inserts the job and its tasks only if they pass; the unique indexes make those
//! checks exact even for concurrent starts (the loser's insert fails and runs again, finding the
//! winner). So a start without a quota is one autocommit round trip. A quota needs the user's
//! starts serialized: `BEGIN` with the user's advisory lock, the statement, `COMMIT` (three).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use nosyntask_domain::JobWithTasks;
use nosyntask_engine::StoreError;
use nosyntask_engine::ports::{CreateOutcome, FAIR_SHARE_DEPTH, NewJob};
use sea_orm::{DbErr, QueryResult, RuntimeErr, Value};
use sqlx::Postgres;
use sqlx::postgres::{PgArguments, PgConnection};

use crate::create::{JOB_INSERT, built};
use crate::error::{Result, is_unique_violation};
use crate::jobs::load_job;
use crate::sql::{col, ms, number_placeholders};
use crate::store::Store;

fn sqlx_err(err: sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(Arc::new(err)))
}

fn bind(
    sql: String,
    values: Vec<Value>,
) -> Result<sqlx::query::Query<'static, Postgres, PgArguments>, DbErr> {
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for value in values {
        query = match value {
            Value::BigInt(v) => query.bind(v),
            Value::Int(v) => query.bind(v),
            Value::String(v) => query.bind(v.map(|text| {
                if text.contains('\0') {
                    crate::sql::storable_text(&text)
                } else {
                    text
                }
            })),
            Value::Bool(v) => query.bind(v),
            other => return Err(DbErr::Type(format!("cannot bind {other:?}"))),
        };
    }
    Ok(query)
}

/// What one run of the check-and-insert statement did.
enum Attempt {
    Inserted(Box<JobWithTasks>),
    /// An earlier job with the idempotency key or the uniqueness key.
    Existing(i64),
    /// The user has this many active jobs.
    OverQuota(u64),
    /// A concurrent start won a unique index.
    LostRace,
}

/// The check-and-insert statement: inserted `(0, job_id, task_id, step_index)` rows, or one
/// `(1, prior id, prior expiry, unique id, active count)` row when a check refused.
fn check_and_insert(job: &NewJob, now: DateTime<Utc>) -> (String, Vec<Value>) {
    let mut ctes = Vec::new();
    let mut conditions = vec!["TRUE".to_owned()];
    let mut values: Vec<Value> = Vec::new();
    let (mut prior, mut prior_expiry, mut unique, mut active) = (
        "NULL::bigint",
        "NULL::bigint",
        "NULL::bigint",
        "NULL::bigint",
    );
    if let Some(key) = &job.idempotency_key {
        ctes.push(
            "prior AS (SELECT id, idempotency_expires_at AS expires FROM workflow_jobs \
             WHERE user_id = ? AND idempotency_key = ?)",
        );
        values.extend([job.user_id.into(), key.clone().into()]);
        conditions.push("NOT EXISTS (SELECT 1 FROM prior)".to_owned());
        prior = "(SELECT id FROM prior)";
        prior_expiry = "(SELECT expires FROM prior)";
    }
    if let Some(key) = &job.unique_key {
        ctes.push(
            "uniq AS (SELECT id FROM workflow_jobs \
             WHERE user_id = ? AND workflow_type = ? AND unique_key = ?)",
        );
        values.extend([
            job.user_id.into(),
            job.workflow_type.clone().into(),
            key.clone().into(),
        ]);
        conditions.push("NOT EXISTS (SELECT 1 FROM uniq)".to_owned());
        unique = "(SELECT id FROM uniq)";
    }
    if let Some(limit) = job.max_active_per_user {
        ctes.push(
            "active AS (SELECT COUNT(*) AS n FROM workflow_jobs \
             WHERE user_id = ? AND status IN ('pending', 'running'))",
        );
        values.push(job.user_id.into());
        conditions.push(format!(
            "(SELECT n FROM active) < {}",
            i64::try_from(limit).unwrap_or(i64::MAX)
        ));
        active = "(SELECT n FROM active)";
    }
    let mut fair = "0".to_owned();
    if !job.fair_share_quantum.is_zero() {
        ctes.push(
            "fair AS (SELECT COUNT(*) AS n FROM (SELECT 1 FROM workflow_jobs \
             WHERE user_id = ? AND status IN ('pending', 'running') AND priority >= ? \
             LIMIT ?) ahead)",
        );
        values.extend([
            job.user_id.into(),
            job.priority.into(),
            i64::from(FAIR_SHARE_DEPTH).into(),
        ]);
        fair = format!("(SELECT n FROM fair) * {}", job.fair_offset_ms(1));
    }
    ctes.push("");
    let (rows, task_values) = Store::task_values(job, now);
    let sql = format!(
        "WITH {ctes} \
         j AS (INSERT INTO workflow_jobs ({JOB_INSERT}) \
           SELECT ?, ?, ?, 'pending', 0, ?, ?, FALSE, 0, ?, ?, ?, ?, ?, ?, ? \
           WHERE {conditions} RETURNING id), \
         t AS (INSERT INTO generation_tasks (job_id, step_index, user_id, project_id, task_type, \
           target_type, target_id, max_attempts, ready_at, model_name, fair_offset, status, \
           progress, attempts, created_at, updated_at) \
           SELECT j.id, v.step_index, ?, ?, v.task_type, v.target_type, v.target_id, \
           v.max_attempts, v.ready_at, v.model_name, {fair}, 'pending', 0, 0, ?, ? \
           FROM j CROSS JOIN (VALUES {rows}) AS v (step_index, task_type, target_type, \
           target_id, max_attempts, ready_at, model_name) \
           RETURNING job_id, id, step_index) \
         SELECT 0, t.job_id, t.id, t.step_index::bigint, NULL::bigint FROM t \
         UNION ALL \
         SELECT 1, {prior}, {prior_expiry}, {unique}, {active} \
           WHERE NOT EXISTS (SELECT 1 FROM j)",
        ctes = ctes.join(", "),
        conditions = conditions.join(" AND "),
    );
    values.extend(Store::job_values(job, now));
    values.extend([
        job.user_id.into(),
        job.project_id.into(),
        ms(now).into(),
        ms(now).into(),
    ]);
    values.extend(task_values);
    (number_placeholders(&sql), values)
}

/// Runs the check-and-insert on `conn` (in a transaction or not), clearing an idempotency key
/// whose window is over and running it again once.
async fn attempt(conn: &mut PgConnection, job: &NewJob, now: DateTime<Utc>) -> Result<Attempt> {
    let mut cleared_expired_key = false;
    loop {
        let (sql, values) = check_and_insert(job, now);
        let rows = match bind(sql, values)?.fetch_all(&mut *conn).await {
            Ok(rows) => rows,
            Err(err) => {
                let err = sqlx_err(err);
                if is_unique_violation(&err) {
                    return Ok(Attempt::LostRace);
                }
                return Err(err.into());
            }
        };
        let rows: Vec<QueryResult> = rows.into_iter().map(QueryResult::from).collect();
        let Some(first) = rows.first() else {
            return Err(DbErr::Custom("start returned no row".to_owned()).into());
        };
        if col::<i32>(first, 0)? == 0 {
            let mut job_id = 0;
            let mut ids = Vec::with_capacity(rows.len());
            for row in &rows {
                job_id = col::<Option<i64>>(row, 1)?.unwrap_or_default();
                let task_id = col::<Option<i64>>(row, 2)?.unwrap_or_default();
                let step = col::<Option<i64>>(row, 3)?.unwrap_or_default();
                ids.push((i32::try_from(step).unwrap_or_default(), task_id));
            }
            return Ok(Attempt::Inserted(Box::new(built(job, job_id, ids, now)?)));
        }
        if let Some(id) = col::<Option<i64>>(first, 1)? {
            let expires = col::<Option<i64>>(first, 2)?.unwrap_or(0);
            if expires > ms(now) || cleared_expired_key {
                return Ok(Attempt::Existing(id));
            }
            // The key's window is over: a new job may take it.
            bind(
                "UPDATE workflow_jobs SET idempotency_key = NULL \
                 WHERE id = $1 AND idempotency_expires_at <= $2"
                    .to_owned(),
                vec![id.into(), ms(now).into()],
            )?
            .execute(&mut *conn)
            .await
            .map_err(sqlx_err)?;
            cleared_expired_key = true;
            continue;
        }
        if let Some(id) = col::<Option<i64>>(first, 3)? {
            return Ok(Attempt::Existing(id));
        }
        let active = col::<Option<i64>>(first, 4)?.unwrap_or_default();
        return Ok(Attempt::OverQuota(u64::try_from(active).unwrap_or(0)));
    }
}

impl Store {
    /// One start attempt; `None` when it lost a unique-index race (or the job it deduplicated
    /// to was pruned meanwhile): run again.
    pub(crate) async fn create_pg(
        &self,
        job: &NewJob,
        now: DateTime<Utc>,
    ) -> Result<Option<CreateOutcome>> {
        let pool = self.inner.write.get_postgres_connection_pool();
        let outcome = if job.max_active_per_user.is_some() {
            // The user's advisory lock rides on the BEGIN round trip; it makes the active-job
            // count exact against the user's concurrent starts.
            let mut tx = pool
                .begin_with(sqlx::AssertSqlSafe(format!(
                    "BEGIN; SELECT pg_advisory_xact_lock({})",
                    job.user_id
                )))
                .await
                .map_err(sqlx_err)?;
            let outcome = attempt(&mut tx, job, now).await?;
            match outcome {
                Attempt::Inserted(_) | Attempt::Existing(_) => tx.commit().await,
                Attempt::OverQuota(_) | Attempt::LostRace => tx.rollback().await,
            }
            .map_err(sqlx_err)?;
            outcome
        } else {
            let mut conn = pool.acquire().await.map_err(sqlx_err)?;
            attempt(&mut conn, job, now).await?
        };
        match outcome {
            Attempt::Inserted(job) => Ok(Some(CreateOutcome {
                job: *job,
                deduplicated: false,
            })),
            Attempt::Existing(id) => {
                Ok(load_job(&self.inner.write, id)
                    .await?
                    .map(|job| CreateOutcome {
                        job,
                        deduplicated: true,
                    }))
            }
            Attempt::OverQuota(active) => Err(StoreError::QuotaExceeded {
                user_id: job.user_id,
                active,
                limit: job.max_active_per_user.unwrap_or_default(),
            }
            .into()),
            Attempt::LostRace => Ok(None),
        }
    }
}
