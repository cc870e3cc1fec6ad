//! An index on `generation_tasks.completed_at`, so the console's "finished in the last hour"
//! counts read only recent rows instead of the whole table. Written once per task (at its end),
//! so it costs the hot paths almost nothing.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum GenerationTasks {
    Table,
    CompletedAt,
}

const INDEX: &str = "ix_generation_tasks_completed";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(GenerationTasks::Table)
                    .col(GenerationTasks::CompletedAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(INDEX)
                    .table(GenerationTasks::Table)
                    .to_owned(),
            )
            .await
    }
}
