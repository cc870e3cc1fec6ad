//! `workflow_jobs`, `generation_tasks` and `workflow_user_locks`.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum WorkflowJobs {
    Table,
    Id,
    UserId,
    ProjectId,
    WorkflowType,
    Status,
    CurrentStepIndex,
    TotalSteps,
    InputParams,
    ErrorMessage,
    IsConsumed,
    Progress,
    IdempotencyKey,
    IdempotencyExpiresAt,
    /// The enforced copy of the uniqueness key: set only while the job is active.
    UniqueKey,
    /// The job's uniqueness key, kept for the job's whole life (resume restores `unique_key`).
    UniqueKeyValue,
    CreatedAt,
    UpdatedAt,
    StartedAt,
    CompletedAt,
}

#[derive(DeriveIden)]
enum GenerationTasks {
    Table,
    Id,
    JobId,
    StepIndex,
    UserId,
    ProjectId,
    TaskType,
    TargetType,
    TargetId,
    ModelName,
    InputParams,
    Status,
    Progress,
    ResultData,
    ErrorMessage,
    Attempts,
    MaxAttempts,
    ReadyAt,
    LeaseOwner,
    LeaseExpiresAt,
    Checkpoint,
    ExternalTaskId,
    CreatedAt,
    UpdatedAt,
    StartedAt,
    CompletedAt,
}

/// One row per user that ever started a job; MySQL/MariaDB lock it to serialize a user's starts
/// (quota, idempotency and uniqueness checks), as PostgreSQL does with an advisory lock.
#[derive(DeriveIden)]
enum WorkflowUserLocks {
    Table,
    UserId,
}

pub(crate) fn id(backend: DbBackend, name: impl IntoIden) -> ColumnDef {
    let mut column = ColumnDef::new(name);
    if backend == DbBackend::Sqlite {
        // SQLite only auto-increments an `INTEGER PRIMARY KEY`; AUTOINCREMENT keeps ids unique
        // forever instead of reusing the highest one after a delete.
        column.integer();
    } else {
        column.big_integer();
    }
    column.not_null().auto_increment().primary_key();
    column
}

pub(crate) fn json_text(backend: DbBackend, name: impl IntoIden) -> ColumnDef {
    let mut column = ColumnDef::new(name);
    if backend == DbBackend::MySql {
        // MySQL's TEXT holds only 64 KiB.
        column.custom(Alias::new("LONGTEXT"));
    } else {
        column.text();
    }
    column
}

pub(crate) fn millis(name: impl IntoIden) -> ColumnDef {
    let mut column = ColumnDef::new(name);
    column.big_integer();
    column
}

pub(crate) fn int(name: impl IntoIden) -> ColumnDef {
    let mut column = ColumnDef::new(name);
    column.integer().not_null();
    column
}

pub(crate) fn string(name: impl IntoIden, len: u32) -> ColumnDef {
    let mut column = ColumnDef::new(name);
    column.string_len(len);
    column
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        use WorkflowJobs as J;
        manager
            .create_table(
                Table::create()
                    .table(J::Table)
                    .if_not_exists()
                    .col(id(backend, J::Id))
                    .col(millis(J::UserId).not_null())
                    .col(millis(J::ProjectId).not_null())
                    .col(string(J::WorkflowType, 64).not_null())
                    .col(string(J::Status, 16).not_null())
                    .col(int(J::CurrentStepIndex))
                    .col(int(J::TotalSteps))
                    .col(json_text(backend, J::InputParams).not_null())
                    .col(json_text(backend, J::ErrorMessage).null())
                    .col(ColumnDef::new(J::IsConsumed).boolean().not_null())
                    .col(int(J::Progress))
                    .col(string(J::IdempotencyKey, 255).null())
                    .col(millis(J::IdempotencyExpiresAt).null())
                    .col(string(J::UniqueKey, 255).null())
                    .col(string(J::UniqueKeyValue, 255).null())
                    .col(millis(J::CreatedAt).not_null())
                    .col(millis(J::UpdatedAt).not_null())
                    .col(millis(J::StartedAt).null())
                    .col(millis(J::CompletedAt).null())
                    .to_owned(),
            )
            .await?;
        let job_indexes = [
            (
                "ux_workflow_jobs_idempotency",
                true,
                vec![J::UserId, J::IdempotencyKey],
            ),
            (
                "ux_workflow_jobs_unique_key",
                true,
                vec![J::UserId, J::WorkflowType, J::UniqueKey],
            ),
            (
                "ix_workflow_jobs_user_project",
                false,
                vec![J::UserId, J::ProjectId, J::Id],
            ),
            // Counting a user's active jobs for the quota.
            (
                "ix_workflow_jobs_user_status",
                false,
                vec![J::UserId, J::Status],
            ),
            (
                "ix_workflow_jobs_status_completed",
                false,
                vec![J::Status, J::CompletedAt],
            ),
        ];
        for (name, unique, columns) in job_indexes {
            let mut index = Index::create();
            index.name(name).table(J::Table).if_not_exists();
            for column in columns {
                index.col(column);
            }
            if unique {
                index.unique();
            }
            manager.create_index(index.to_owned()).await?;
        }

        use GenerationTasks as T;
        manager
            .create_table(
                Table::create()
                    .table(T::Table)
                    .if_not_exists()
                    .col(id(backend, T::Id))
                    .col(millis(T::JobId).not_null())
                    .col(int(T::StepIndex))
                    .col(millis(T::UserId).not_null())
                    .col(millis(T::ProjectId).not_null())
                    .col(string(T::TaskType, 64).not_null())
                    .col(string(T::TargetType, 64).not_null())
                    .col(millis(T::TargetId).null())
                    .col(string(T::ModelName, 255).null())
                    .col(json_text(backend, T::InputParams).null())
                    .col(string(T::Status, 16).not_null())
                    .col(int(T::Progress))
                    .col(json_text(backend, T::ResultData).null())
                    .col(json_text(backend, T::ErrorMessage).null())
                    .col(int(T::Attempts))
                    .col(int(T::MaxAttempts))
                    .col(millis(T::ReadyAt).null())
                    .col(string(T::LeaseOwner, 128).null())
                    .col(millis(T::LeaseExpiresAt).null())
                    .col(json_text(backend, T::Checkpoint).null())
                    .col(string(T::ExternalTaskId, 255).null())
                    .col(millis(T::CreatedAt).not_null())
                    .col(millis(T::UpdatedAt).not_null())
                    .col(millis(T::StartedAt).null())
                    .col(millis(T::CompletedAt).null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_generation_tasks_job")
                            .from(T::Table, T::JobId)
                            .to(J::Table, J::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        let task_indexes = [
            (
                "ux_generation_tasks_job_step",
                true,
                vec![T::JobId, T::StepIndex],
            ),
            // Claiming: pending tasks in ready order.
            (
                "ix_generation_tasks_claim",
                false,
                vec![T::Status, T::ReadyAt, T::Id],
            ),
            // The sweep of expired leases.
            (
                "ix_generation_tasks_lease",
                false,
                vec![T::Status, T::LeaseExpiresAt],
            ),
            ("ix_generation_tasks_owner", false, vec![T::LeaseOwner]),
        ];
        for (name, unique, columns) in task_indexes {
            let mut index = Index::create();
            index.name(name).table(T::Table).if_not_exists();
            for column in columns {
                index.col(column);
            }
            if unique {
                index.unique();
            }
            manager.create_index(index.to_owned()).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(WorkflowUserLocks::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(WorkflowUserLocks::UserId)
                            .big_integer()
                            .not_null()
                            .primary_key(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(WorkflowUserLocks::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(
                Table::drop()
                    .table(GenerationTasks::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(
                Table::drop()
                    .table(WorkflowJobs::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}
