//! Fair share between users. `workflow_jobs.priority` orders a user's own jobs (interactive over
//! batch). `generation_tasks.fair_offset` is set when the job starts: how far back the user's
//! queue puts it (the user's active jobs of at least its priority, times the quantum).
//! `claim_key` is the ready time plus that offset, computed by the database, and the claim takes
//! ready tasks in `claim_key` order: one user's 500 queued jobs interleave with another user's
//! single job instead of all going first. Every statement that sets `ready_at` keeps
//! `claim_key` right without knowing of it.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum WorkflowJobs {
    Table,
    Priority,
}

#[derive(DeriveIden)]
enum GenerationTasks {
    Table,
    FairOffset,
}

const INDEX: &str = "ix_generation_tasks_fair_claim";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(WorkflowJobs::Table)
                    .add_column(
                        ColumnDef::new(WorkflowJobs::Priority)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(GenerationTasks::Table)
                    .add_column(
                        ColumnDef::new(GenerationTasks::FairOffset)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;
        // SQLite can add only a virtual generated column (it can be indexed all the same).
        let kind = if manager.get_database_backend() == DbBackend::Sqlite {
            "VIRTUAL"
        } else {
            "STORED"
        };
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "ALTER TABLE generation_tasks ADD COLUMN claim_key BIGINT \
                 GENERATED ALWAYS AS (ready_at + fair_offset) {kind}"
            ))
            .await?;
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "CREATE INDEX {INDEX} ON generation_tasks (status, claim_key, id)"
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let on = if manager.get_database_backend() == DbBackend::MySql {
            " ON generation_tasks"
        } else {
            ""
        };
        let conn = manager.get_connection();
        conn.execute_unprepared(&format!("DROP INDEX {INDEX}{on}"))
            .await?;
        conn.execute_unprepared("ALTER TABLE generation_tasks DROP COLUMN claim_key")
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(GenerationTasks::Table)
                    .drop_column(GenerationTasks::FairOffset)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(WorkflowJobs::Table)
                    .drop_column(WorkflowJobs::Priority)
                    .to_owned(),
            )
            .await
    }
}
