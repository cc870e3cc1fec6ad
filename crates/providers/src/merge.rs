//! JSON deep merge, shared by the presets' overrides (`async_task` tables), the profiles and
//! the request bodies. A leaf module, so neither `profile` nor `adapters` has to import the
//! other for it.

use serde_json::Value;

/// Deep-merges `patch` into `base`: objects merge key by key, anything else replaces.
pub fn merge_json(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(base), Value::Object(patch)) => {
            for (key, value) in patch {
                match base.get_mut(key) {
                    Some(existing) => merge_json(existing, value),
                    None => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (base, patch) => *base = patch.clone(),
    }
}
