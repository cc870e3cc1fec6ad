//! `workflow_jobs.hook_error`: the last failure of the store's in-transaction completion hook
//! for the job (which event, and the hook's message). The hook's writes were rolled back to
//! their savepoint and the task's result committed without them, so the job read says so.
//! Nullable: jobs whose hooks never failed, and every job from before this column, have none.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum WorkflowJobs {
    Table,
    HookError,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(WorkflowJobs::Table)
                    .add_column(ColumnDef::new(WorkflowJobs::HookError).text().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(WorkflowJobs::Table)
                    .drop_column(WorkflowJobs::HookError)
                    .to_owned(),
            )
            .await
    }
}
