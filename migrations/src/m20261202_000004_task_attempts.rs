//! Attempt history: `task_attempts` keeps one row per finished attempt of a task (its worker,
//! start, end, outcome and error), written in the same statement or transaction that ends the
//! attempt; `generation_tasks.attempt_started_at` is the start of the attempt running now (the
//! task's `started_at` stays the first start of all). A resume keeps the rows: it starts new
//! attempts, it does not erase the old ones.

use sea_orm_migration::prelude::*;

use crate::m20250101_000001_create_jobs::{id, int, json_text, millis, string};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum GenerationTasks {
    Table,
    AttemptStartedAt,
}

#[derive(DeriveIden)]
enum TaskAttempts {
    Table,
    Id,
    TaskId,
    JobId,
    Attempt,
    ClaimEpoch,
    Worker,
    StartedAt,
    EndedAt,
    Outcome,
    ErrorMessage,
}

const INDEX: &str = "ix_task_attempts_job";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        manager
            .alter_table(
                Table::alter()
                    .table(GenerationTasks::Table)
                    .add_column(millis(GenerationTasks::AttemptStartedAt).null())
                    .to_owned(),
            )
            .await?;
        use TaskAttempts as A;
        manager
            .create_table(
                Table::create()
                    .table(A::Table)
                    .if_not_exists()
                    .col(id(backend, A::Id))
                    .col(millis(A::TaskId).not_null())
                    .col(millis(A::JobId).not_null())
                    .col(int(A::Attempt))
                    .col(millis(A::ClaimEpoch).not_null())
                    .col(string(A::Worker, 255).null())
                    .col(millis(A::StartedAt).null())
                    .col(millis(A::EndedAt).not_null())
                    .col(string(A::Outcome, 16).not_null())
                    .col(json_text(backend, A::ErrorMessage).null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(A::Table)
                    .col(A::JobId)
                    .col(A::TaskId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(TaskAttempts::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(GenerationTasks::Table)
                    .drop_column(GenerationTasks::AttemptStartedAt)
                    .to_owned(),
            )
            .await
    }
}
