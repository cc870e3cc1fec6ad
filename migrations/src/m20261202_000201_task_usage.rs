//! `generation_tasks.usage`: what the task's model calls used and cost (tokens, images, video
//! seconds, cost in millionths), as JSON text written with the task's result. Nullable: tasks
//! that called no model, and every task from before this column, have none.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum GenerationTasks {
    Table,
    Usage,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(GenerationTasks::Table)
                    // A few hundred bytes: TEXT is enough on every backend (64 KiB on MySQL).
                    .add_column(ColumnDef::new(GenerationTasks::Usage).text().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(GenerationTasks::Table)
                    .drop_column(GenerationTasks::Usage)
                    .to_owned(),
            )
            .await
    }
}
