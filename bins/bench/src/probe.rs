//! Measurements taken from outside the engine: the process's resident memory, and the rows the
//! database itself says were written (to check the counting store against).

use anyhow::Context;
use nosyntask_store::Store;
use sea_orm::{ConnectionTrait, DbBackend, Statement};

/// A field of `/proc/self/status` in MiB (`VmRSS`: resident now; `VmHWM`: peak resident).
/// `None` where there is no procfs.
pub fn proc_status_mb(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line
        .trim_start_matches(field)
        .trim_start_matches(':')
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// What the database counts as rows written, where it can say so for the whole run:
/// - SQLite: `total_changes()` of the store's single writer connection (rows inserted,
///   updated or deleted through it since it opened).
/// - PostgreSQL: `n_tup_ins + n_tup_upd + n_tup_del` of the two tables in
///   `pg_stat_user_tables` (a backend reports its counts when it goes idle or exits).
pub async fn db_rows_written(store: &Store) -> anyhow::Result<Option<i64>> {
    let (backend, sql) = match store.connection().get_database_backend() {
        DbBackend::Sqlite => (DbBackend::Sqlite, "SELECT total_changes()"),
        DbBackend::Postgres => (
            DbBackend::Postgres,
            "SELECT COALESCE(SUM(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint \
             FROM pg_stat_user_tables WHERE relname IN ('workflow_jobs', 'generation_tasks')",
        ),
        _ => return Ok(None),
    };
    let row = store
        .connection()
        .query_one_raw(Statement::from_string(backend, sql))
        .await
        .context("reading the database's write counters")?;
    Ok(match row {
        Some(row) => Some(row.try_get_by_index::<i64>(0)?),
        None => None,
    })
}
