//! PostgreSQL only: the indexes that find active work hold active rows only, so what finding it
//! costs follows the work in flight and never the history kept in the tables (issue 10: a
//! `/metrics` scrape read one more buffer per index descent when the full indexes grew a level
//! between 10 k and 1 M jobs).
//!
//! - `ix_generation_tasks_claim (status, ready_at, id)` becomes partial on pending and running
//!   tasks: every statement that reads it names one of those statuses (the stats counts, the
//!   readiness and activity reads); finished tasks no longer enter it at all.
//! - `ix_workflow_jobs_active (status)`, partial on pending and running jobs: the active-job
//!   count of the gauges.
//!
//! SQLite keeps its full indexes: its planner takes a partial index only when the query repeats
//! the index's own condition, and `status = 'pending'` does not repeat `status IN (...)`.
//! MySQL/MariaDB have no partial indexes.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const ACTIVE: &str = "status IN ('pending', 'running')";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let conn = manager.get_connection();
        conn.execute_unprepared("DROP INDEX IF EXISTS ix_generation_tasks_claim")
            .await?;
        conn.execute_unprepared(&format!(
            "CREATE INDEX ix_generation_tasks_claim ON generation_tasks (status, ready_at, id) \
             WHERE {ACTIVE}"
        ))
        .await?;
        conn.execute_unprepared(&format!(
            "CREATE INDEX IF NOT EXISTS ix_workflow_jobs_active ON workflow_jobs (status) \
             WHERE {ACTIVE}"
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let conn = manager.get_connection();
        conn.execute_unprepared("DROP INDEX IF EXISTS ix_workflow_jobs_active")
            .await?;
        conn.execute_unprepared("DROP INDEX IF EXISTS ix_generation_tasks_claim")
            .await?;
        conn.execute_unprepared(
            "CREATE INDEX ix_generation_tasks_claim ON generation_tasks (status, ready_at, id)",
        )
        .await?;
        Ok(())
    }
}
