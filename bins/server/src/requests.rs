//! Request bodies: typed structs, the same types the OpenAPI document is generated from,
//! deserialized with [`serde_path_to_error`] so that a refusal names the field it is about.

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::error::ApiError;

/// `POST /api/workflows` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StartWorkflowRequest {
    /// A registered workflow type (see `GET /api/workflows/types`).
    #[schema(example = "prompt_generate")]
    #[serde(deserialize_with = "non_blank")]
    pub workflow_type: String,
    /// The project the job belongs to (a numeric string is accepted too); `null` for a job
    /// outside any project (NanoStory's model test page). Required, but may be `null`.
    #[schema(example = 1, minimum = 1)]
    #[serde(deserialize_with = "project_id")]
    pub project_id: Option<i64>,
    /// The workflow's params, checked against its `paramsSchema` (`GET /api/workflows/types`);
    /// a missing or invalid param answers 422 naming it.
    #[schema(value_type = Object, example = json!({"description": "a lighthouse at dawn"}))]
    #[serde(default)]
    pub params: Option<Map<String, Value>>,
    /// Same key from the same user within 24 h returns the original job. The
    /// `Idempotency-Key` header does the same (send one of them, or both alike).
    #[schema(max_length = 255)]
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// -100 to 100, default 0: the caller's jobs of a higher priority are claimed before the
    /// caller's lower ones (interactive over batch); other users' fair share is unaffected.
    #[schema(example = 0, minimum = -100, maximum = 100)]
    #[serde(default, deserialize_with = "priority")]
    pub priority: Option<i32>,
}

impl StartWorkflowRequest {
    /// The body as this type, or a 422 naming the field that is missing or wrong.
    pub fn from_json(body: Value) -> Result<Self, ApiError> {
        if !body.is_object() {
            return Err(ApiError::unprocessable(
                "invalid_body",
                "the request body must be a JSON object",
            )
            .zh("请求体必须是 JSON 对象"));
        }
        serde_path_to_error::deserialize(body).map_err(field_error)
    }
}

/// The 422 of a body field: "`field` is required" for a missing one, else the field's path and
/// what is wrong with it (the deserializers below word their own refusals).
fn field_error(err: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = err.path().to_string();
    let inner = err.inner().to_string();
    let code = if path.starts_with("params") {
        "invalid_params"
    } else {
        "invalid_body"
    };
    if let Some(field) = inner
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        return ApiError::unprocessable(code, format!("{field} is required"))
            .zh(format!("{field} 为必填项"));
    }
    let (en, zh) = match path.as_str() {
        "params" => (
            "must be a JSON object".to_owned(),
            "必须是 JSON 对象".to_owned(),
        ),
        "idempotencyKey" => ("must be a string".to_owned(), "必须是字符串".to_owned()),
        _ => match inner.split_once(" / ") {
            Some((en, zh)) => (en.to_owned(), zh.to_owned()),
            None => (inner.clone(), format!("无效：{inner}")),
        },
    };
    ApiError::unprocessable(code, format!("{path} {en}")).zh(format!("{path} {zh}"))
}

/// A refusal of a deserializer below, in English and Chinese (split again by `field_error`).
fn refusal<E: serde::de::Error>(en: &str, zh: &str) -> E {
    E::custom(format!("{en} / {zh}"))
}

fn non_blank<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::String(s) if !s.trim().is_empty() => Ok(s),
        _ => Err(refusal("must be a non-empty string", "必须是非空字符串")),
    }
}

/// A positive integer (or its decimal string), or `null` for no project.
fn project_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    let value = Value::deserialize(deserializer)?;
    if value.is_null() {
        return Ok(None);
    }
    nosyntask_domain::lenient_integer(&value)
        .filter(|id| *id > 0)
        .map(Some)
        .ok_or_else(|| refusal("must be a positive integer or null", "必须是正整数或 null"))
}

/// An integer (or its decimal string) from -100 to 100.
fn priority<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i32>, D::Error> {
    let value = Value::deserialize(deserializer)?;
    if value.is_null() {
        return Ok(None);
    }
    nosyntask_domain::lenient_integer(&value)
        .and_then(|p| i32::try_from(p).ok())
        .filter(|p| (-100..=100).contains(p))
        .map(Some)
        .ok_or_else(|| {
            refusal(
                "must be an integer from -100 to 100",
                "必须是 -100 到 100 之间的整数",
            )
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn refused(body: Value) -> (String, String) {
        let err = StartWorkflowRequest::from_json(body).unwrap_err();
        (err.code.to_owned(), err.message)
    }

    #[test]
    fn a_full_body_reads_with_lenient_numbers() {
        let request = StartWorkflowRequest::from_json(json!({
            "workflowType": "prompt_generate", "projectId": "7", "params": {"a": 1},
            "idempotencyKey": "k", "priority": "-5", "unknown": true
        }))
        .unwrap();
        assert_eq!(request.project_id, Some(7));
        assert_eq!(request.priority, Some(-5));
        assert_eq!(
            request.params,
            Some(json!({"a": 1}).as_object().unwrap().clone())
        );
        let request =
            StartWorkflowRequest::from_json(json!({"workflowType": "x", "projectId": null}))
                .unwrap();
        assert_eq!(
            (request.project_id, request.params, request.priority),
            (None, None, None)
        );
        // An integral float is an integer to JSON Schema.
        let request = StartWorkflowRequest::from_json(
            json!({"workflowType": "x", "projectId": 2632954469.0, "priority": 2.0}),
        )
        .unwrap();
        assert_eq!(
            (request.project_id, request.priority),
            (Some(2632954469), Some(2))
        );
    }

    #[test]
    fn each_refusal_names_its_field() {
        let cases = [
            (
                json!([]),
                "invalid_body",
                "the request body must be a JSON object",
            ),
            (
                json!({"projectId": 1}),
                "invalid_body",
                "workflowType is required",
            ),
            (
                json!({"workflowType": "x"}),
                "invalid_body",
                "projectId is required",
            ),
            (
                json!({"workflowType": " ", "projectId": 1}),
                "invalid_body",
                "workflowType must be a non-empty string",
            ),
            (
                json!({"workflowType": "x", "projectId": 0}),
                "invalid_body",
                "projectId must be a positive integer or null",
            ),
            (
                json!({"workflowType": "x", "projectId": 1, "params": []}),
                "invalid_params",
                "params must be a JSON object",
            ),
            (
                json!({"workflowType": "x", "projectId": 1, "priority": 101}),
                "invalid_body",
                "priority must be an integer from -100 to 100",
            ),
            (
                json!({"workflowType": "x", "projectId": 1, "idempotencyKey": 5}),
                "invalid_body",
                "idempotencyKey must be a string",
            ),
        ];
        for (body, code, message) in cases {
            assert_eq!(
                refused(body.clone()),
                (code.to_owned(), message.to_owned()),
                "{body}"
            );
        }
    }
}
