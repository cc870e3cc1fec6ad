//! `event_outbox`: the after-commit side of completion hooks. The transaction that completes,
//! fails or cancels writes one row per event and subscriber (a webhook endpoint, by name); a
//! delivery loop sends the rows after commit, at least once, in id order per job and
//! subscriber, retried with backoff until it gives up (`status` failed). The row's id is the
//! delivery id a receiver deduplicates by. Rows stay as the delivery log until a redelivery or
//! the job is pruned.

use sea_orm_migration::prelude::*;

use crate::m20250101_000001_create_jobs::{id, int, json_text, millis, string};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum EventOutbox {
    Table,
    Id,
    Subscriber,
    Event,
    JobId,
    TaskId,
    Payload,
    Status,
    Attempts,
    NextAttemptAt,
    LeaseExpiresAt,
    LastError,
    CreatedAt,
    DeliveredAt,
}

/// The delivery loop's claim: a subscriber's pending rows by due time.
const DUE: &str = "ix_event_outbox_due";
/// Order per job: the earlier pending row of the same job and subscriber.
const PER_JOB: &str = "ix_event_outbox_job";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        use EventOutbox as O;
        manager
            .create_table(
                Table::create()
                    .table(O::Table)
                    .if_not_exists()
                    .col(id(backend, O::Id))
                    .col(string(O::Subscriber, 64).not_null())
                    .col(string(O::Event, 32).not_null())
                    .col(millis(O::JobId).not_null())
                    .col(millis(O::TaskId).null())
                    .col(json_text(backend, O::Payload).not_null())
                    .col(string(O::Status, 16).not_null())
                    .col(int(O::Attempts))
                    .col(millis(O::NextAttemptAt).not_null())
                    .col(millis(O::LeaseExpiresAt).null())
                    .col(json_text(backend, O::LastError).null())
                    .col(millis(O::CreatedAt).not_null())
                    .col(millis(O::DeliveredAt).null())
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            (DUE, [O::Subscriber, O::Status, O::NextAttemptAt]),
            (PER_JOB, [O::Subscriber, O::JobId, O::Id]),
        ] {
            let mut index = Index::create();
            index.name(name).table(O::Table).if_not_exists();
            for column in columns {
                index.col(column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(EventOutbox::Table).to_owned())
            .await
    }
}
