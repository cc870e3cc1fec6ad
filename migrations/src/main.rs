//! The sea-orm-migration command line (`up`, `down`, `status`, `fresh`, ...) for the nosyntask
//! schema; the database URL comes from `--database-url` or `DATABASE_URL`.

use sea_orm_migration::cli;

#[tokio::main]
async fn main() {
    cli::run_cli(nosyntask_migration::Migrator).await;
}
