//! Task activity for the console: tasks in flight and tasks finished recently, grouped by model,
//! task type, status and attempts.

use chrono::{DateTime, Utc};
use nosyntask_domain::TaskStatus;
use nosyntask_engine::StoreError;
use nosyntask_engine::ports::TaskActivity;
use sea_orm::{ConnectionTrait, DbErr};

use crate::error::retrying;
use crate::sql::{col, ms, stmt};
use crate::store::Store;

// Two halves so each is served by an index: in-flight tasks by `ix_generation_tasks_claim`
// (status, ready_at), finished ones by `ix_generation_tasks_completed`. A pending task without a
// ready time is a later step waiting for an earlier one (or for a resume), not queued work. Grouping by `attempts`
// instead of summing it keeps the column types the same on every backend (MySQL's SUM is a
// DECIMAL).
const ACTIVITY_SQL: &str = "\
    SELECT model_name, task_type, status, attempts, COUNT(*) FROM generation_tasks \
    WHERE (status = 'pending' AND ready_at IS NOT NULL) OR status = 'running' \
    GROUP BY model_name, task_type, status, attempts \
    UNION ALL \
    SELECT model_name, task_type, status, attempts, COUNT(*) FROM generation_tasks \
    WHERE completed_at >= ? AND status IN ('completed', 'failed', 'cancelled') \
    GROUP BY model_name, task_type, status, attempts";

impl Store {
    pub(crate) async fn task_activity_impl(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<TaskActivity>, StoreError> {
        retrying(|| async {
            let rows = self
                .inner
                .read
                .query_all_raw(stmt(self.backend(), ACTIVITY_SQL, vec![ms(since).into()]))
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                let status: String = col(row, 2)?;
                let status = status
                    .parse::<TaskStatus>()
                    .map_err(|_| DbErr::Type(format!("unknown task status `{status}`")))?;
                out.push(TaskActivity {
                    model_name: col(row, 0)?,
                    task_type: col(row, 1)?,
                    status,
                    attempts: col(row, 3)?,
                    tasks: u64::try_from(col::<i64>(row, 4)?).unwrap_or_default(),
                });
            }
            out.sort_by(|a, b| {
                (&a.model_name, &a.task_type, a.status.as_str(), a.attempts).cmp(&(
                    &b.model_name,
                    &b.task_type,
                    b.status.as_str(),
                    b.attempts,
                ))
            });
            Ok(out)
        })
        .await
    }
}
