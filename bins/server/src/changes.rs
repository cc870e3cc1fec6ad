//! What changed between two views of one job: the compact live updates of an event stream
//! (`…/events?changes=true`). A job page's update is then its progress and timestamps, not its
//! 60,000-character script again.
//!
//! A change is a JSON object with the job's `id` and each top-level field whose value differs
//! (`null` for a field that went away), and under `tasks` the tasks that differ: each with its
//! `id` and its changed fields, or whole when it is new. Fields compare as whole values: a step's
//! `result_data` is sent again only when it changed. Applying it is a shallow merge per object.

use serde_json::{Map, Value};

/// The change from `before` to `after` (both job views, objects with an `id`).
pub fn job_changes(before: &Value, after: &Value) -> Value {
    let (Some(before), Some(after)) = (before.as_object(), after.as_object()) else {
        return after.clone();
    };
    let mut change = fields_changed(before, after, &["tasks"]);
    let empty = Vec::new();
    let old_tasks = before
        .get("tasks")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let tasks: Vec<Value> = after
        .get("tasks")
        .and_then(Value::as_array)
        .unwrap_or(&empty)
        .iter()
        .filter_map(|task| {
            let old = old_tasks.iter().find(|t| t.get("id") == task.get("id"));
            match (old.and_then(Value::as_object), task.as_object()) {
                (Some(old), Some(new)) => {
                    let diff = fields_changed(old, new, &[]);
                    (diff.len() > 1).then_some(Value::Object(diff))
                }
                _ => Some(task.clone()),
            }
        })
        .collect();
    if !tasks.is_empty() {
        change.insert("tasks".to_owned(), Value::Array(tasks));
    }
    Value::Object(change)
}

/// `id`, then the fields of `after` that differ from `before`'s and those `before` had that
/// `after` lacks (as `null`); `skip` fields are left to the caller.
fn fields_changed(
    before: &Map<String, Value>,
    after: &Map<String, Value>,
    skip: &[&str],
) -> Map<String, Value> {
    let mut change = Map::new();
    if let Some(id) = after.get("id") {
        change.insert("id".to_owned(), id.clone());
    }
    for (key, value) in after {
        if key != "id" && !skip.contains(&key.as_str()) && before.get(key) != Some(value) {
            change.insert(key.clone(), value.clone());
        }
    }
    for key in before.keys() {
        if !after.contains_key(key) && !skip.contains(&key.as_str()) {
            change.insert(key.clone(), Value::Null);
        }
    }
    change
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(progress: i64, tasks: Value) -> Value {
        json!({"id": 7, "status": "running", "progress": progress,
            "input_params": {"scriptContent": "a long script"}, "tasks": tasks})
    }

    #[test]
    fn only_what_changed_is_sent() {
        let before = job(
            10,
            json!([
                {"id": 1, "progress": 100, "result_data": {"big": "x"}, "waiting_reason": "busy"},
                {"id": 2, "progress": 0, "result_data": null},
            ]),
        );
        let after = job(
            40,
            json!([
                {"id": 1, "progress": 100, "result_data": {"big": "x"}},
                {"id": 2, "progress": 30, "result_data": null},
                {"id": 3, "progress": 0},
            ]),
        );
        assert_eq!(
            job_changes(&before, &after),
            json!({"id": 7, "progress": 40, "tasks": [
                {"id": 1, "waiting_reason": null},
                {"id": 2, "progress": 30},
                {"id": 3, "progress": 0},
            ]})
        );
    }

    #[test]
    fn no_change_is_the_id_alone() {
        let same = job(10, json!([{"id": 1, "progress": 5}]));
        assert_eq!(job_changes(&same, &same), json!({"id": 7}));
    }
}
