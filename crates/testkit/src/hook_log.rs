//! A completion hook for crash drills: one `hook_log` row per completed step, holding the result
//! the hook saw, written in the completion's own transaction. It pauses after its insert, so a
//! process killed during a completion is often killed inside the open transaction, between the
//! task's update and the commit.

use std::time::Duration;

use async_trait::async_trait;
use nosyntask_store::{HookEvent, HookEventKind, TransactionHook};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, Statement};

/// The hook's table; the drill creates it beside the engine's.
pub const CREATE_TABLE: &str =
    "CREATE TABLE hook_log (task_id BIGINT NOT NULL, result TEXT NOT NULL)";

pub struct HookLog {
    /// How long the hook holds the transaction open after its insert.
    pub pause: Duration,
}

#[async_trait]
impl TransactionHook for HookLog {
    async fn on_event(&self, txn: &DatabaseTransaction, event: &HookEvent) -> Result<(), DbErr> {
        let (HookEventKind::StepCompleted, Some(task)) = (event.kind, &event.task) else {
            return Ok(());
        };
        let backend = txn.get_database_backend();
        let sql = match backend {
            DbBackend::Postgres => "INSERT INTO hook_log (task_id, result) VALUES ($1, $2)",
            _ => "INSERT INTO hook_log (task_id, result) VALUES (?, ?)",
        };
        let result = task
            .result_data
            .as_ref()
            .map(|r| r.to_string())
            .unwrap_or_default();
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [task.id.into(), result.into()],
        ))
        .await?;
        tokio::time::sleep(self.pause).await;
        Ok(())
    }
}
