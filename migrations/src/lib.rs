//! Schema migrations of nosyntask, written once with the sea-query schema builder so the same
//! migration runs on SQLite, PostgreSQL and MySQL/MariaDB.
//!
//! Conventions: timestamps are `BIGINT` epoch milliseconds; JSON is serialized into `TEXT`
//! (`LONGTEXT` on MySQL); ids are auto-increment `BIGINT` (`INTEGER PRIMARY KEY AUTOINCREMENT` on
//! SQLite, so ids are never reused after pruning).

pub use sea_orm_migration::prelude::*;

mod m20250101_000001_create_jobs;
mod m20250101_000002_index_task_completion;
mod m20261201_000003_claim_epoch;
mod m20261202_000004_task_attempts;
mod m20261202_000005_active_indexes;
mod m20261202_000100_model_limits;
mod m20261202_000101_fair_share;
mod m20261202_000102_fan_out;
mod m20261202_000201_task_usage;
mod m20261203_000300_hook_error;
mod m20261203_000301_event_outbox;
mod m20261204_000400_owner_leases;

/// Every migration of the schema, in order.
#[derive(Debug, Clone, Copy, Default)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20250101_000001_create_jobs::Migration),
            Box::new(m20250101_000002_index_task_completion::Migration),
            Box::new(m20261201_000003_claim_epoch::Migration),
            Box::new(m20261202_000004_task_attempts::Migration),
            Box::new(m20261202_000201_task_usage::Migration),
            Box::new(m20261202_000100_model_limits::Migration),
            Box::new(m20261202_000101_fair_share::Migration),
            Box::new(m20261202_000102_fan_out::Migration),
            Box::new(m20261202_000005_active_indexes::Migration),
            Box::new(m20261203_000300_hook_error::Migration),
            Box::new(m20261203_000301_event_outbox::Migration),
            Box::new(m20261204_000400_owner_leases::Migration),
        ]
    }
}
