//! Helpers shared by every query: statements with the right placeholders, column lists, row
//! decoding and time conversion.

use std::collections::BTreeMap;
use std::sync::{LazyLock, OnceLock};

use chrono::{DateTime, Utc};
use nosyntask_domain::{Job, JobStatus, Task, TaskStatus};
use sea_orm::{DbBackend, DbErr, QueryResult, Statement, TryGetable, Value};

/// Epoch milliseconds, as stored.
pub(crate) fn ms(time: DateTime<Utc>) -> i64 {
    time.timestamp_millis()
}

/// Back from epoch milliseconds (out-of-range values clamp to the epoch rather than fail).
pub(crate) fn time(millis: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(millis).unwrap_or_default()
}

/// A statement written with `?` placeholders, numbered `$1, $2, …` for PostgreSQL. Every text
/// value goes through [`storable_text`].
pub(crate) fn stmt(backend: DbBackend, sql: &str, mut values: Vec<Value>) -> Statement {
    let sql = if backend == DbBackend::Postgres {
        number_placeholders(sql)
    } else {
        sql.to_owned()
    };
    for value in &mut values {
        if let Value::String(Some(text)) = value
            && text.contains('\0')
        {
            *text = storable_text(text);
        }
    }
    Statement::from_sql_and_values(backend, sql, values)
}

/// `text` with each NUL character replaced by U+FFFD. PostgreSQL rejects NUL in any text value,
/// and a provider's error message or a model's output may carry one: the write must not fail
/// (a failure that cannot be recorded would be retried forever). JSON documents never reach
/// this with a raw NUL: serialized JSON escapes it as `\u0000`, which every backend stores.
pub(crate) fn storable_text(text: &str) -> String {
    text.replace('\0', "\u{FFFD}")
}

/// `?` placeholders numbered `$1, $2, …` (PostgreSQL).
pub(crate) fn number_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// `?, ?, ?` with `count` placeholders (at least one `NULL` so `IN ()` stays valid).
pub(crate) fn placeholders(count: usize) -> String {
    if count == 0 {
        return "NULL".to_owned();
    }
    let mut out = String::with_capacity(count * 3);
    for i in 0..count {
        if i > 0 {
            out.push_str(", ");
        }
        out.push('?');
    }
    out
}

/// How many placeholders a list of `len` values takes once padded: the next power of two, so a
/// statement comes in a few shapes that the prepared-statement cache keeps.
pub(crate) fn padded_len(len: usize) -> usize {
    if len == 0 { 0 } else { len.next_power_of_two() }
}

/// `ids` as values, padded to [`padded_len`] by repeating the last (harmless in `IN`).
pub(crate) fn padded_ids(ids: impl IntoIterator<Item = i64>) -> Vec<Value> {
    let mut values: Vec<Value> = ids.into_iter().map(Value::from).collect();
    if let Some(last) = values.last().cloned() {
        values.resize(padded_len(values.len()), last);
    }
    values
}

/// Most ids one job read's `IN` list takes (a power of two).
pub(crate) const MAX_JOBS_PER_READ: usize = 256;

/// A statement over an `IN` list per padded size up to [`MAX_JOBS_PER_READ`], each written
/// once per process: a handful of statements for the connections' statement caches.
pub(crate) struct InListStatements([OnceLock<String>; IN_LIST_SIZES]);

/// How many padded sizes of id lists up to [`MAX_JOBS_PER_READ`] there are.
const IN_LIST_SIZES: usize = MAX_JOBS_PER_READ.trailing_zeros() as usize + 1;

impl InListStatements {
    /// None written yet, for a `static`.
    pub(crate) const fn new() -> Self {
        InListStatements([const { OnceLock::new() }; IN_LIST_SIZES])
    }

    /// The statement for `count` ids (a [`padded_len`]), written by `write` from its
    /// placeholders the first time.
    pub(crate) fn get(
        &'static self,
        count: usize,
        write: impl FnOnce(&str) -> String,
    ) -> &'static str {
        debug_assert!(count.is_power_of_two() && count <= MAX_JOBS_PER_READ);
        self.0[count.trailing_zeros() as usize].get_or_init(|| write(&placeholders(count)))
    }
}

/// Serializes a JSON value for a TEXT column.
pub(crate) fn json_text(value: &serde_json::Value) -> String {
    value.to_string()
}

pub(crate) fn parse_json(text: &str, column: &str) -> Result<serde_json::Value, DbErr> {
    serde_json::from_str(text).map_err(|err| DbErr::Json(format!("column {column}: {err}")))
}

pub(crate) fn parse_opt_json(
    text: Option<String>,
    column: &str,
) -> Result<Option<serde_json::Value>, DbErr> {
    text.map(|text| parse_json(&text, column)).transpose()
}

/// `= 'pending'` spelled so that no status index can serve it. Where rows are already found by
/// key, a planner whose counts are stale (a queue grows and drains fast) would otherwise pick the
/// status index and scan every pending row (seen with auto_explain: 1.7 of 2.3 ms per claim).
/// The fence predicate over a task row `t` and an input row `x` (`owner`, `epoch`): the claim
/// still holds while the task is running under it, or pending after the expiry sweep and not
/// claimed by anyone since (the sweep keeps owner and epoch; every claim and resume raises the
/// epoch, release and retries clear the owner). The status test is spelled as a `NOT IN` for
/// the reason given at [`IS_PENDING_BY_KEY`]: rows are found by id, and an `IN ('running',
/// 'pending')` let the planner scan every pending task instead (exactly_once on PostgreSQL went
/// from seconds to minutes).
pub(crate) const FENCE_HOLDS: &str = "t.status NOT IN ('completed', 'failed', 'cancelled') \
     AND t.lease_owner = x.owner AND t.claim_epoch = x.epoch";

/// The most values one `IN (…)` list takes: SQLite allows 32,766 variables per statement, and
/// lists are padded to a power of two.
pub(crate) const IN_LIST_CHUNK: usize = 1000;

pub(crate) const IS_PENDING_BY_KEY: &str = "NOT IN ('running', 'completed', 'failed', 'cancelled')";

/// `= 'completed'` spelled so that no status index can serve it, for the reason given at
/// [`IS_PENDING_BY_KEY`]: the claim reads the earlier steps' results by job and step, and with
/// stale counts (few completed tasks when the table was last analyzed) PostgreSQL served
/// `status = 'completed'` with a bitmap of every completed task AND-ed to the key lookup
/// (auto_explain, 3-step drain of 20,000 jobs: 42,437 index entries read per claimed task,
/// 22 of 25 ms per claim).
pub(crate) const IS_COMPLETED_BY_KEY: &str = "NOT IN ('pending', 'running', 'failed', 'cancelled')";

pub(crate) const JOB_FIELDS: [&str; 16] = [
    "id",
    "user_id",
    "project_id",
    "workflow_type",
    "status",
    "current_step_index",
    "total_steps",
    "input_params",
    "error_message",
    "is_consumed",
    "progress",
    "created_at",
    "updated_at",
    "started_at",
    "completed_at",
    "hook_error",
];

pub(crate) const TASK_FIELDS: [&str; 23] = [
    "id",
    "job_id",
    "step_index",
    "task_type",
    "target_type",
    "target_id",
    "model_name",
    "input_params",
    "status",
    "progress",
    "result_data",
    "error_message",
    "attempts",
    "max_attempts",
    "external_task_id",
    "started_at",
    "completed_at",
    "updated_at",
    "attempt_started_at",
    "ready_at",
    "usage",
    "parent_task_id",
    "item_index",
];

fn columns(table: &str, alias: &str, fields: &[&str]) -> String {
    fields
        .iter()
        // Unaliased where the name is the column's own: `usage` is a reserved word of MySQL,
        // fine after `t.` but not as an alias.
        .map(|field| match alias {
            "" => format!("{table}{field}"),
            _ => format!("{table}{field} AS {alias}{field}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Job columns of a table aliased `j`, each named `j_<column>` (beside a task's columns) for
/// `decode_job`.
pub(crate) static JOB_COLUMNS: LazyLock<String> =
    LazyLock::new(|| columns("j.", "j_", &JOB_FIELDS));
/// Task columns of a table aliased `t`, under their own names, for `decode_task`.
pub(crate) static TASK_COLUMNS: LazyLock<String> =
    LazyLock::new(|| columns("t.", "", &TASK_FIELDS));

/// Reads the column `name` of a row.
pub(crate) fn named<T: TryGetable>(row: &QueryResult, name: &str) -> Result<T, DbErr> {
    // The name whole: sea-orm's `try_get(prefix, name)` would allocate the joined name for every
    // column of every claimed row.
    row.try_get_by(name)
}

pub(crate) fn parse_status<S: std::str::FromStr>(text: &str) -> Result<S, DbErr> {
    text.parse()
        .map_err(|_| DbErr::Type(format!("unknown status `{text}`")))
}

/// Reads a job from the columns [`JOB_COLUMNS`] names (`j_id`, `j_status`, …).
pub(crate) fn decode_job(row: &QueryResult) -> Result<Job, DbErr> {
    let status: String = named(row, "j_status")?;
    let params: String = named(row, "j_input_params")?;
    Ok(Job {
        id: named(row, "j_id")?,
        user_id: named(row, "j_user_id")?,
        project_id: named(row, "j_project_id")?,
        workflow_type: named(row, "j_workflow_type")?,
        status: parse_status::<JobStatus>(&status)?,
        current_step_index: named(row, "j_current_step_index")?,
        total_steps: named(row, "j_total_steps")?,
        input_params: parse_json(&params, "workflow_jobs.input_params")?,
        error_message: named(row, "j_error_message")?,
        is_consumed: named(row, "j_is_consumed")?,
        progress: named(row, "j_progress")?,
        created_at: time(named(row, "j_created_at")?),
        updated_at: time(named(row, "j_updated_at")?),
        started_at: named::<Option<i64>>(row, "j_started_at")?.map(time),
        completed_at: named::<Option<i64>>(row, "j_completed_at")?.map(time),
        hook_error: named(row, "j_hook_error")?,
    })
}

/// Reads a task from the columns [`TASK_COLUMNS`] names (the task table's own).
pub(crate) fn decode_task(row: &QueryResult) -> Result<Task, DbErr> {
    let status: String = named(row, "status")?;
    let status = parse_status::<TaskStatus>(&status)?;
    let attempts: i32 = named(row, "attempts")?;
    let time_of = |name| named::<Option<i64>>(row, name).map(|t| t.map(time));
    let ready_at = time_of("ready_at")?;
    Ok(Task {
        id: named(row, "id")?,
        job_id: named(row, "job_id")?,
        step_index: named(row, "step_index")?,
        task_type: named(row, "task_type")?,
        target_type: named(row, "target_type")?,
        target_id: named(row, "target_id")?,
        model_name: named(row, "model_name")?,
        input_params: parse_opt_json(named(row, "input_params")?, "generation_tasks.input_params")?,
        status,
        progress: named(row, "progress")?,
        result_data: parse_opt_json(named(row, "result_data")?, "generation_tasks.result_data")?,
        error_message: named(row, "error_message")?,
        attempts,
        max_attempts: named(row, "max_attempts")?,
        external_task_id: named(row, "external_task_id")?,
        started_at: time_of("started_at")?,
        completed_at: time_of("completed_at")?,
        updated_at: time(named(row, "updated_at")?),
        attempt_started_at: time_of("attempt_started_at")?,
        // A pending task that has run before waits for its retry (or, after a lapsed lease or a
        // hand-back, is ready at once).
        next_attempt_at: ready_at.filter(|_| status == TaskStatus::Pending && attempts > 0),
        usage: parse_opt_json(named(row, "usage")?, "generation_tasks.usage")?
            .and_then(|usage| serde_json::from_value(usage).ok()),
        parent_task_id: named(row, "parent_task_id")?,
        item_index: Some(named::<i32>(row, "item_index")?).filter(|i| *i >= 0),
        waiting_reason: None,
    })
}

/// Reads column `index` of a row.
pub(crate) fn col<T: TryGetable>(row: &QueryResult, index: usize) -> Result<T, DbErr> {
    row.try_get_by_index(index)
}

/// Results by step index from a JSON object keyed by step (PostgreSQL `json_object_agg`).
pub(crate) fn results_from_object(
    text: Option<String>,
) -> Result<BTreeMap<i32, serde_json::Value>, DbErr> {
    let Some(text) = text else {
        return Ok(BTreeMap::new());
    };
    let object: BTreeMap<String, serde_json::Value> = serde_json::from_str(&text)
        .map_err(|err| DbErr::Json(format!("previous results: {err}")))?;
    object
        .into_iter()
        .map(|(step, value)| {
            step.parse::<i32>()
                .map(|step| (step, value))
                .map_err(|_| DbErr::Json(format!("previous results: bad step `{step}`")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_placeholders_for_postgres() {
        assert_eq!(
            number_placeholders("a = ? AND b IN (?, ?)"),
            "a = $1 AND b IN ($2, $3)"
        );
        assert_eq!(placeholders(3), "?, ?, ?");
        assert_eq!(placeholders(0), "NULL");
        assert_eq!(padded_len(5), 8);
        assert_eq!(padded_ids([1, 2, 3]).len(), 4);
    }

    #[test]
    fn millis_round_trip() {
        let now = time(1_700_000_000_123);
        assert_eq!(ms(now), 1_700_000_000_123);
    }
}
