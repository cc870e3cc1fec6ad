//! `generation_tasks.claim_epoch`: a number that only grows, raised by every claim and every
//! resume of the task. Fences hold on it instead of the user-visible attempt count, which a resume
//! sets back to 0: with the count, a late write of a cancelled attempt could pass for the resumed
//! attempt's.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum GenerationTasks {
    Table,
    ClaimEpoch,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(GenerationTasks::Table)
                    .add_column(
                        ColumnDef::new(GenerationTasks::ClaimEpoch)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(GenerationTasks::Table)
                    .drop_column(GenerationTasks::ClaimEpoch)
                    .to_owned(),
            )
            .await
    }
}
