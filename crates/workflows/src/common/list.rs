//! Reading a list out of a model's JSON answer. Asked for `{"scenes": [...]}`, models answer
//! with that, with a bare array, with the list under another key, or with one lone object.

use serde::de::DeserializeOwned;
use serde_json::Value;

/// The items of the list in `value`: a bare array, the array under the first of `keys` present,
/// the only array in an object, or a single object that looks like an item (has `item_key`).
pub(crate) fn items_of(value: Value, keys: &[&str], item_key: &str) -> Result<Vec<Value>, String> {
    match value {
        Value::Array(items) => Ok(items),
        Value::Object(mut map) => {
            let named = keys
                .iter()
                .find(|key| map.get(**key).is_some_and(Value::is_array))
                .map(|key| (*key).to_owned());
            let key = named.or_else(|| {
                let mut arrays = map.iter().filter(|(_, v)| v.is_array()).map(|(k, _)| k);
                match (arrays.next(), arrays.next()) {
                    (Some(only), None) => Some(only.clone()),
                    _ => None,
                }
            });
            if let Some(Value::Array(items)) = key.and_then(|key| map.remove(&key)) {
                return Ok(items);
            }
            if map.contains_key(item_key) {
                return Ok(vec![Value::Object(map)]);
            }
            Err(format!(
                "expected a JSON array or an object with a \"{}\" array, got an object with keys {:?}",
                keys.first().copied().unwrap_or("items"),
                map.keys().collect::<Vec<_>>()
            ))
        }
        other => Err(format!("expected a JSON array, got {}", kind_of(&other))),
    }
}

/// The list in `value` as typed items. Items that are not objects are skipped; an answer whose
/// items all fail is an error.
pub(crate) fn typed_items<T: DeserializeOwned>(
    value: Value,
    keys: &[&str],
    item_key: &str,
) -> Result<Vec<T>, String> {
    let items = items_of(value, keys, item_key)?;
    let total = items.len();
    let mut out = Vec::with_capacity(total);
    let mut first_error = None;
    for item in items {
        if !item.is_object() {
            first_error
                .get_or_insert_with(|| format!("an item is {}, not an object", kind_of(&item)));
            continue;
        }
        match serde_json::from_value(item) {
            Ok(parsed) => out.push(parsed),
            Err(err) => {
                first_error.get_or_insert_with(|| err.to_string());
            }
        }
    }
    match first_error {
        Some(err) if out.is_empty() => Err(format!("no usable item among {total}: {err}")),
        Some(err) => {
            tracing::warn!(
                skipped = total - out.len(),
                total,
                error = %err,
                "skipped unusable items of a model's list"
            );
            Ok(out)
        }
        None => Ok(out),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_the_list_wherever_the_model_put_it() {
        let keys = ["characters", "roles"];
        for value in [
            json!([{"name": "A"}]),
            json!({"characters": [{"name": "A"}]}),
            json!({"roles": [{"name": "A"}], "note": "x"}),
            json!({"result": [{"name": "A"}]}),
            json!({"name": "A"}),
        ] {
            let items = items_of(value.clone(), &keys, "name").unwrap();
            assert_eq!(items, vec![json!({"name": "A"})], "{value}");
        }
        assert!(items_of(json!({"a": [1], "b": [2]}), &keys, "name").is_err());
        assert!(items_of(json!("text"), &keys, "name").is_err());
    }

    #[test]
    fn skips_bad_items_but_not_all() {
        #[derive(Debug, serde::Deserialize)]
        struct Item {
            #[allow(dead_code)]
            name: String,
        }
        let ok: Vec<Item> =
            typed_items(json!([{"name": "A"}, "B", {"x": 1}]), &[], "name").unwrap();
        assert_eq!(ok.len(), 1);
        let err = typed_items::<Item>(json!(["A", "B"]), &[], "name").unwrap_err();
        assert!(err.contains("no usable item among 2"), "{err}");
    }
}
