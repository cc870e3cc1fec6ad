//! Fan-out steps: a step that maps over a list runs each item as a task row of its own
//! (`parent_task_id` = the step's task, `item_index` = the item's place in the list; -1 for
//! step rows), with its own attempts, checkpoint, progress and result. The step's uniqueness
//! becomes (job, step, item).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum GenerationTasks {
    Table,
    JobId,
    StepIndex,
    ParentTaskId,
    ItemIndex,
}

const OLD_UNIQUE: &str = "ux_generation_tasks_job_step";
const UNIQUE: &str = "ux_generation_tasks_job_step_item";
const PARENT: &str = "ix_generation_tasks_parent";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use GenerationTasks as T;
        manager
            .alter_table(
                Table::alter()
                    .table(T::Table)
                    .add_column(ColumnDef::new(T::ParentTaskId).big_integer().null())
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(T::Table)
                    .add_column(
                        ColumnDef::new(T::ItemIndex)
                            .integer()
                            .not_null()
                            .default(-1),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(UNIQUE)
                    .table(T::Table)
                    .col(T::JobId)
                    .col(T::StepIndex)
                    .col(T::ItemIndex)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(Index::drop().name(OLD_UNIQUE).table(T::Table).to_owned())
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(PARENT)
                    .table(T::Table)
                    .col(T::ParentTaskId)
                    .col(T::ItemIndex)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use GenerationTasks as T;
        manager
            .drop_index(Index::drop().name(PARENT).table(T::Table).to_owned())
            .await?;
        manager
            .get_connection()
            .execute_unprepared("DELETE FROM generation_tasks WHERE item_index >= 0")
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(OLD_UNIQUE)
                    .table(T::Table)
                    .col(T::JobId)
                    .col(T::StepIndex)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(Index::drop().name(UNIQUE).table(T::Table).to_owned())
            .await?;
        for column in [T::ItemIndex, T::ParentTaskId] {
            manager
                .alter_table(
                    Table::alter()
                        .table(T::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
