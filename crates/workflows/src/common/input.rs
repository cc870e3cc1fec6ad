//! Step inputs: built from the job params by each step's input builder, read back by the handler
//! into a typed struct.

use nosyntask_domain::{ParamsSchema, TaskError};
use nosyntask_engine::StepContext;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// An input builder that copies the declared params of `schema` from the job params (the spec's
/// `buildInput: (ctx) => ({characterId: ctx.jobParams.characterId, ...})`).
pub(crate) fn declared_params(
    schema: &ParamsSchema,
) -> impl Fn(&StepContext) -> Value + Send + Sync + 'static {
    let names: Vec<String> = schema.params().iter().map(|p| p.name.clone()).collect();
    move |ctx: &StepContext| pick(&ctx.job_params, &names)
}

/// The entries of `params` named in `names` that are set.
pub(crate) fn pick(params: &Value, names: &[String]) -> Value {
    let mut out = Map::new();
    for name in names {
        if let Some(value) = params.get(name).filter(|v| !v.is_null()) {
            out.insert(name.clone(), value.clone());
        }
    }
    Value::Object(out)
}

/// Reads a step input into the handler's typed input. A mismatch is a permanent error: retrying
/// the same input cannot fix it.
pub(crate) fn parse_input<T: DeserializeOwned>(input: Value) -> Result<T, TaskError> {
    serde_json::from_value(input)
        .map_err(|err| TaskError::permanent(format!("invalid step input: {err}")))
}

/// `Some(text)` when `text` has something besides whitespace.
pub(crate) fn non_empty(text: Option<&str>) -> Option<&str> {
    text.map(str::trim).filter(|s| !s.is_empty())
}

/// An optional count (`3`, `3.0` or `"3"`: JSON Schema's integers, and how frontends send them)
/// for a record field the params schema documents as an integer.
pub(crate) fn lenient_count<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u32>, D::Error> {
    let value = <Value as serde::Deserialize>::deserialize(deserializer)?;
    if value.is_null() {
        return Ok(None);
    }
    nosyntask_domain::lenient_integer(&value)
        .and_then(|n| u32::try_from(n).ok())
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom(format!("`{value}` is not a whole number ≥ 0")))
}
