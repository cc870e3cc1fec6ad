//! `owner_leases`: one lease per worker process (its lease owner name), renewed by one
//! single-row write per heartbeat however many tasks the process runs. While it holds, every
//! running task of that owner stays its, even after the task's own lease (set at claim) ran
//! out; the expiry sweep deletes a lapsed one and requeues its tasks in the same transaction.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum OwnerLeases {
    Table,
    /// The `generation_tasks.lease_owner` it covers (128 characters there too).
    Owner,
    /// Epoch ms (the database's clock) until which it holds.
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use OwnerLeases as L;
        manager
            .create_table(
                Table::create()
                    .table(L::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(L::Owner)
                            .string_len(128)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(L::ExpiresAt).big_integer().not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(OwnerLeases::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}
