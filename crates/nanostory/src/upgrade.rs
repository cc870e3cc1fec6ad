//! # nosyntask beside NanoStory
//!
//! NanoStory's database already has a `workflow_jobs` and a `generation_tasks` table, in the
//! shape of NanoStory's own engine (`INT` ids, `DATETIME`s, `JSON`, task status `processing`).
//! The engine cannot share them, and a table prefix would split the two engines' history, so
//! [`upgrade`] moves NanoStory's tables aside and brings their history into the engine's:
//!
//! 1. `RENAME TABLE` NanoStory's two tables to `nanostory_workflow_jobs` and
//!    `nanostory_generation_tasks` (one atomic statement; their rows, indexes and foreign keys
//!    go with them and stay there untouched, as the backup). No other table is touched.
//! 2. Run the engine's migrations (which refuse to run while NanoStory's tables still have
//!    those names).
//! 3. Copy the jobs and their tasks into the engine's tables in one transaction, keeping their
//!    ids (the frontend's job ids stay valid): times to epoch milliseconds (read in the
//!    database server's time zone, as NanoStory wrote them), JSON to text, a NULL project to no
//!    project. A job NanoStory's engine was still running cannot go on in another engine: it
//!    becomes `failed`, with a message saying so, and `POST /api/workflows/{id}/resume`
//!    continues it from its first unfinished step. Of several task rows of one step (NanoStory
//!    kept retries as new rows) the newest is copied; tasks without a job are not jobs and stay
//!    only in the backup.
//!
//! Every step can run again: a second run renames nothing, migrates nothing new and copies only
//! the rows not copied yet, so an upgrade cut off half-way is finished by running it again.
//! MySQL and MariaDB only, as NanoStory is.

use nosyntask_engine::JobStore;
use nosyntask_store::Store;
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, TransactionTrait};

/// Where NanoStory's tables are kept after the upgrade.
pub const LEGACY_JOBS: &str = "nanostory_workflow_jobs";
pub const LEGACY_TASKS: &str = "nanostory_generation_tasks";

/// What the error message of an interrupted job says.
pub const INTERRUPTED: &str =
    "interrupted by the move from NanoStory's engine to nosyntask; resume it to continue";

/// What an upgrade did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpgradeReport {
    /// NanoStory's tables were renamed by this run (false: already aside, or never there).
    pub renamed: bool,
    pub jobs_copied: u64,
    pub tasks_copied: u64,
    /// Jobs NanoStory's engine was running or had queued, now failed and resumable.
    pub jobs_interrupted: u64,
    /// Task rows left in the backup only: without a job, or an older row of a step.
    pub tasks_left_aside: u64,
}

#[derive(Debug)]
pub enum UpgradeError {
    /// Not MySQL or MariaDB.
    Backend(&'static str),
    Store(nosyntask_engine::StoreError),
    Db(DbErr),
}

impl std::fmt::Display for UpgradeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpgradeError::Backend(name) => write!(
                f,
                "the NanoStory upgrade runs on NanoStory's MySQL or MariaDB database, not on {name}"
            ),
            UpgradeError::Store(err) => write!(f, "{err}"),
            UpgradeError::Db(err) => write!(f, "{err}"),
        }
    }
}

impl std::error::Error for UpgradeError {}

impl From<DbErr> for UpgradeError {
    fn from(err: DbErr) -> Self {
        UpgradeError::Db(err)
    }
}

impl From<nosyntask_engine::StoreError> for UpgradeError {
    fn from(err: nosyntask_engine::StoreError) -> Self {
        UpgradeError::Store(err)
    }
}

/// Epoch milliseconds of a `DATETIME` expression (NULL stays NULL).
fn millis(expr: &str) -> String {
    format!("CAST(UNIX_TIMESTAMP({expr}) * 1000 AS SIGNED)")
}

/// A NanoStory row's four times (table alias `row`) as the engine's epoch milliseconds: the
/// engine's `created_at` and `updated_at` are never NULL.
struct Times {
    created: String,
    updated: String,
    started: String,
    completed: String,
}

fn times(row: &str) -> Times {
    Times {
        created: millis(&format!("COALESCE({row}.created_at, NOW())")),
        updated: millis(&format!(
            "COALESCE({row}.updated_at, {row}.created_at, NOW())"
        )),
        started: millis(&format!("{row}.started_at")),
        completed: millis(&format!("{row}.completed_at")),
    }
}

/// Moves NanoStory's workflow tables aside, migrates, and copies their history (module docs).
pub async fn upgrade(store: &Store) -> Result<UpgradeReport, UpgradeError> {
    let conn = store.connection();
    if conn.get_database_backend() != DbBackend::MySql {
        return Err(UpgradeError::Backend(store.backend_name()));
    }
    let mut report = UpgradeReport::default();
    if store.has_foreign_workflow_tables().await? {
        conn.execute_unprepared(&format!(
            "RENAME TABLE workflow_jobs TO {LEGACY_JOBS}, generation_tasks TO {LEGACY_TASKS}"
        ))
        .await?;
        report.renamed = true;
    }
    store.migrate().await?;
    if !store.has_table(LEGACY_JOBS).await? {
        return Ok(report);
    }
    let txn = conn.begin().await?;
    // NanoStory's DATETIMEs are in the database server's own time zone (CURRENT_TIMESTAMP of
    // sessions that set none); sqlx's sessions are in UTC. Read them as written.
    txn.execute_unprepared("SET time_zone = @@global.time_zone")
        .await?;
    let active = "n.status IS NULL OR n.status IN ('pending', 'running')";
    let Times {
        created,
        updated,
        started,
        completed,
    } = times("n");
    let jobs = txn
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::MySql,
            format!(
                "INSERT INTO workflow_jobs (id, user_id, project_id, workflow_type, status, \
                 current_step_index, total_steps, input_params, error_message, is_consumed, \
                 progress, created_at, updated_at, started_at, completed_at, priority) \
                 SELECT n.id, n.user_id, COALESCE(n.project_id, 0), n.workflow_type, \
                 CASE WHEN {active} THEN 'failed' ELSE n.status END, \
                 COALESCE(n.current_step_index, 0), n.total_steps, \
                 COALESCE(CAST(n.input_params AS CHAR), '{{}}'), \
                 CASE WHEN {active} THEN ? ELSE n.error_message END, \
                 COALESCE(n.is_consumed, 0) <> 0, \
                 CASE WHEN n.status = 'completed' THEN 100 WHEN n.total_steps > 0 \
                   THEN LEAST(100, COALESCE(n.current_step_index, 0) * 100 DIV n.total_steps) \
                   ELSE 0 END, \
                 {created}, {updated}, {started}, \
                 CASE WHEN {active} THEN {updated} ELSE {completed} END, 0 \
                 FROM {LEGACY_JOBS} n \
                 WHERE NOT EXISTS (SELECT 1 FROM workflow_jobs w WHERE w.id = n.id) \
                 ORDER BY n.id"
            ),
            [INTERRUPTED.into()],
        ))
        .await?;
    report.jobs_copied = jobs.rows_affected();
    // The newest row of each step of each job, not copied yet.
    let newest = format!(
        "t.job_id IS NOT NULL AND t.id = (SELECT MAX(t2.id) FROM {LEGACY_TASKS} t2 \
         WHERE t2.job_id = t.job_id AND t2.step_index <=> t.step_index)"
    );
    let Times {
        created,
        updated,
        started,
        completed,
    } = times("t");
    let tasks = txn
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::MySql,
            format!(
                "INSERT INTO generation_tasks (id, job_id, step_index, user_id, project_id, \
                 task_type, target_type, target_id, model_name, input_params, status, progress, \
                 result_data, error_message, attempts, max_attempts, external_task_id, \
                 created_at, updated_at, started_at, completed_at, claim_epoch, \
                 attempt_started_at, fair_offset, item_index) \
                 SELECT t.id, t.job_id, COALESCE(t.step_index, 0), t.user_id, \
                 COALESCE(t.project_id, 0), t.task_type, t.target_type, t.target_id, \
                 t.model_name, CAST(t.input_params AS CHAR), \
                 CASE WHEN t.status = 'processing' THEN 'failed' \
                   WHEN t.status = 'pending' AND j.status = 'cancelled' THEN 'cancelled' \
                   ELSE COALESCE(t.status, 'pending') END, \
                 CASE WHEN t.status = 'completed' THEN 100 ELSE COALESCE(t.progress, 0) END, \
                 CAST(t.result_data AS CHAR), \
                 CASE WHEN t.status = 'processing' THEN ? ELSE t.error_message END, \
                 CASE WHEN t.status IN ('completed', 'failed', 'processing') THEN 1 ELSE 0 END, \
                 3, t.external_task_id, {created}, {updated}, {started}, \
                 CASE WHEN t.status = 'processing' THEN {updated} ELSE {completed} END, \
                 0, {started}, 0, -1 \
                 FROM {LEGACY_TASKS} t JOIN workflow_jobs j ON j.id = t.job_id \
                 WHERE {newest} \
                 AND NOT EXISTS (SELECT 1 FROM generation_tasks g WHERE g.id = t.id) \
                 ORDER BY t.id"
            ),
            [INTERRUPTED.into()],
        ))
        .await?;
    report.tasks_copied = tasks.rows_affected();
    let count = |sql: String| {
        let txn = &txn;
        async move {
            let row = txn
                .query_one_raw(Statement::from_string(DbBackend::MySql, sql))
                .await?;
            row.map_or(Ok(0), |row| row.try_get_by_index::<i64>(0))
                .map(|n| u64::try_from(n).unwrap_or_default())
        }
    };
    report.jobs_interrupted = if report.jobs_copied == 0 {
        0
    } else {
        count(format!(
            "SELECT COUNT(*) FROM {LEGACY_JOBS} n WHERE {active}"
        ))
        .await?
    };
    report.tasks_left_aside = count(format!(
        "SELECT COUNT(*) FROM {LEGACY_TASKS} t WHERE NOT ({newest})"
    ))
    .await?;
    txn.execute_unprepared("SET time_zone = '+00:00'").await?;
    txn.commit().await?;
    Ok(report)
}
