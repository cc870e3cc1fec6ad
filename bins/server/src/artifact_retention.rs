//! Deleting the artifacts of pruned jobs. After the engine prunes old jobs (`[retention]`), a
//! sweep collects every artifact key the remaining jobs and tasks name (their params, results
//! and checkpoints, in any URL form) and deletes the stored files no one names, unless they are
//! younger than `artifacts.retention_grace_secs`. Keys are content hashes, so a file two jobs
//! generated is kept while either of them remains. Several processes may sweep at once: the
//! worst case is deleting a file twice.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use nosyntask_artifacts::retention::{self, Sweep};
use nosyntask_artifacts::{ArtifactKey, Artifacts, keys_in};
use nosyntask_store::Store;
use sea_orm::{ConnectionTrait, Statement, Value};
use tracing::{info, warn};

/// Rows read per statement.
const PAGE: u64 = 1000;

/// Runs a sweep every `interval`, the first one after `interval`.
pub fn spawn(
    artifacts: Arc<Artifacts>,
    store: Arc<Store>,
    interval: Duration,
    grace: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(interval).await;
            match sweep_once(&artifacts, &store, grace).await {
                Ok(sweep) if sweep.deleted > 0 => {
                    info!(
                        deleted = sweep.deleted,
                        stored = sweep.stored,
                        "deleted unreferenced artifacts"
                    );
                }
                Ok(_) => {}
                Err(err) => warn!(error = %err, "artifact retention sweep failed"),
            }
        }
    })
}

/// One sweep: the keys the database names, then the files no one names.
pub async fn sweep_once(
    artifacts: &Artifacts,
    store: &Store,
    grace: Duration,
) -> anyhow::Result<Sweep> {
    // Taken before reading the references: a file stored after this instant is young.
    let cutoff = SystemTime::now()
        .checked_sub(grace)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let referenced = referenced_keys(store).await?;
    Ok(retention::sweep(artifacts, &referenced, cutoff).await?)
}

/// Every artifact key named by a job's params or a task's params, result or checkpoint.
pub async fn referenced_keys(store: &Store) -> anyhow::Result<HashSet<ArtifactKey>> {
    let mut keys = HashSet::new();
    scan(store, "workflow_jobs", &["input_params"], &mut keys).await?;
    scan(
        store,
        "generation_tasks",
        &["input_params", "result_data", "checkpoint"],
        &mut keys,
    )
    .await?;
    Ok(keys)
}

async fn scan(
    store: &Store,
    table: &str,
    columns: &[&str],
    keys: &mut HashSet<ArtifactKey>,
) -> anyhow::Result<()> {
    let db = store.connection();
    let backend = db.get_database_backend();
    let placeholder = match backend {
        sea_orm::DbBackend::Postgres => "$1",
        _ => "?",
    };
    let sql = format!(
        "SELECT id, {} FROM {table} WHERE id > {placeholder} ORDER BY id LIMIT {PAGE}",
        columns.join(", ")
    );
    let mut after: i64 = 0;
    loop {
        let rows = db
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                &sql,
                [Value::BigInt(Some(after))],
            ))
            .await?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        after = last.try_get::<i64>("", "id")?;
        for row in &rows {
            for column in columns {
                if let Ok(Some(text)) = row.try_get::<Option<String>>("", column) {
                    keys.extend(keys_in(&text));
                }
            }
        }
        if (rows.len() as u64) < PAGE {
            return Ok(());
        }
    }
}
