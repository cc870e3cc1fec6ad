//! `model_limits`: one row per configured model, holding what every process on the database
//! must agree on to share a provider: the model's concurrency limit (written by each worker from
//! its configuration at start), its requests per minute, and the time until which a provider's
//! 429 paused it. The claim locks these rows, so a model's limit holds across processes.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ModelLimits {
    Table,
    Name,
    MaxConcurrency,
    /// Requests (claims) per minute; `NULL`: no rate limit.
    RequestsPerMinute,
    /// Claims in the current minute window, and when that window began (epoch ms).
    WindowStartedAt,
    WindowClaims,
    /// Epoch ms until which the model is paused (a provider's `Retry-After`).
    PausedUntil,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use ModelLimits as M;
        manager
            .create_table(
                Table::create()
                    .table(M::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(M::Name)
                            .string_len(255)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(M::MaxConcurrency).integer().not_null())
                    .col(ColumnDef::new(M::RequestsPerMinute).integer().null())
                    .col(
                        ColumnDef::new(M::WindowStartedAt)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .col(
                        ColumnDef::new(M::WindowClaims)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .col(ColumnDef::new(M::PausedUntil).big_integer().null())
                    .col(ColumnDef::new(M::UpdatedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(ModelLimits::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}
