//! The one error type of the HTTP layer: every non-2xx answer is `{"message", "code"}`.

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::http::header::{ALLOW, RETRY_AFTER};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use nosyntask_engine::EngineError;
use serde::Serialize;
use utoipa::ToSchema;

use crate::i18n::{self, Lang};

/// The body of every error answer. The frontend shows `message` (in the request's
/// `Accept-Language`, Chinese or English); `code` is stable.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Human readable; names the offending field where there is one.
    #[schema(example = "invalid params: description: is required")]
    pub message: String,
    /// Stable snake_case code: `bad_request`, `invalid_json`, `invalid_query`, `invalid_path`,
    /// `unauthorized`, `forbidden`, `not_found`, `method_not_allowed`, `request_timeout`,
    /// `conflict`, `payload_too_large`, `unsupported_media_type`, `unknown_workflow`,
    /// `invalid_params`, `invalid_body`, `quota_exceeded`, `too_many_connections`,
    /// `unavailable`, `internal`.
    #[schema(example = "invalid_params")]
    pub code: String,
}

/// An error answer: status, code, message and optional headers.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    /// English.
    pub message: String,
    /// Chinese; when absent, a Chinese sentence for `code` is shown to Chinese readers.
    pub message_zh: Option<String>,
    pub retry_after_secs: Option<u64>,
    pub allow: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            message_zh: None,
            retry_after_secs: None,
            allow: None,
        }
    }

    /// The same message in Chinese.
    pub fn zh(mut self, message: impl Into<String>) -> Self {
        self.message_zh = Some(message.into());
        self
    }

    /// The message in `lang`.
    pub fn message_in(&self, lang: Lang) -> String {
        match lang {
            Lang::En => self.message.clone(),
            Lang::Zh => self
                .message_zh
                .clone()
                .unwrap_or_else(|| code_zh(self.code, &self.message)),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub fn method_not_allowed(allow: String) -> Self {
        let mut err = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("method not allowed; allowed: {allow}"),
        );
        err.allow = Some(allow);
        err
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// A failure that is not the client's; `detail` goes to the log, not to the client.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }

    /// Maps an engine error to its status, logging what the client is not told.
    pub fn from_engine(err: EngineError, quota_retry_after_secs: u64) -> Self {
        match err {
            EngineError::UnknownWorkflow(name) => Self::unprocessable(
                "unknown_workflow",
                format!("unknown workflow type `{name}` (field workflowType)"),
            )
            .zh(format!("未知的工作流类型“{name}”（字段 workflowType）")),
            EngineError::InvalidParams(param) => Self::unprocessable(
                "invalid_params",
                format!("invalid params: {}: {}", param.field, param.message),
            )
            .zh(format!(
                "参数无效：{}：{}",
                param.field,
                param.message_zh.as_deref().unwrap_or(&param.message)
            )),
            EngineError::NotFound(id) => Self::not_found(format!("workflow job {id} not found"))
                .zh(format!("工作流任务 {id} 不存在")),
            EngineError::Conflict(message) => {
                let zh = conflict_zh(&message);
                Self::new(StatusCode::CONFLICT, "conflict", message).zh(zh)
            }
            EngineError::QuotaExceeded { active, limit } => {
                let mut err = Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "quota_exceeded",
                    format!(
                        "too many active jobs: {active} of {limit} allowed; wait for one to finish"
                    ),
                )
                .zh(format!(
                    "进行中的任务过多：已有 {active} 个，上限 {limit} 个；请等待任务完成后再试"
                ));
                err.retry_after_secs = Some(quota_retry_after_secs.max(1));
                err
            }
            EngineError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "store unavailable");
                Self::unavailable("the job store is unavailable; try again shortly")
            }
            EngineError::Internal(detail) => Self::internal(detail),
        }
    }

    /// The body only, for places that build their own response; in the language of the
    /// request being handled.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            message: self.message_in(i18n::current()),
            code: self.code.to_owned(),
        }
    }
}

/// A Chinese sentence for an error without its own translation: what the code means, with the
/// English detail (which names the field or value) kept in parentheses.
fn code_zh(code: &str, english: &str) -> String {
    let what = match code {
        "bad_request" => "请求无效",
        "invalid_json" => "请求体不是有效的 JSON",
        "invalid_query" => "查询参数无效",
        "invalid_path" => "路径参数无效",
        "invalid_body" => "请求体字段无效",
        "invalid_params" => "参数无效",
        "unknown_workflow" => "未知的工作流类型",
        "unauthorized" => "未登录或登录已失效",
        "forbidden" => "无权访问",
        "not_found" => "资源不存在",
        "method_not_allowed" => "不支持该请求方法",
        "conflict" => "当前状态不允许该操作",
        "payload_too_large" => "请求体过大",
        "quota_exceeded" => "进行中的任务过多",
        "unavailable" => "服务暂时不可用，请稍后重试",
        "internal" => return "服务器内部错误".to_owned(),
        _ => "请求失败",
    };
    format!("{what}（{english}）")
}

/// The engine's conflict messages in Chinese.
fn conflict_zh(english: &str) -> String {
    if english.contains("already completed") {
        "任务已完成，不能取消".to_owned()
    } else if english.contains("only failed or cancelled jobs can be resumed") {
        "只有失败或已取消的任务可以恢复".to_owned()
    } else if english.contains("uniqueness key") {
        "同一对象已有进行中的任务，暂不能恢复".to_owned()
    } else {
        code_zh("conflict", english)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after_secs {
            response.insert_header((RETRY_AFTER, secs.to_string()));
        }
        if let Some(allow) = &self.allow {
            response.insert_header((ALLOW, allow.clone()));
        }
        response.json(self.body())
    }
}

/// `JsonConfig` error handler: malformed JSON is 400, an oversized body 413.
pub fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let api = match &err {
        JsonPayloadError::OverflowKnownLength { length, limit } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body of {length} bytes is over the limit of {limit} bytes"),
        ),
        JsonPayloadError::Overflow { limit } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body is over the limit of {limit} bytes"),
        ),
        JsonPayloadError::Deserialize(inner) => {
            ApiError::bad_request("invalid_json", format!("malformed JSON body: {inner}"))
        }
        JsonPayloadError::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the request body must be JSON: send Content-Type: application/json",
        ),
        JsonPayloadError::Payload(inner) => match crate::edge::body_timed_out(inner) {
            Some(timed_out) => ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                timed_out.to_string(),
            ),
            None => {
                ApiError::bad_request("bad_request", format!("cannot read request body: {inner}"))
            }
        },
        _ => ApiError::bad_request("invalid_json", format!("malformed JSON body: {err}")),
    };
    api.into()
}

/// `QueryConfig` error handler.
pub fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::bad_request("invalid_query", format!("malformed query string: {err}")).into()
}

/// `PathConfig` error handler: e.g. a job id that is not an integer.
pub fn path_error(err: PathError, req: &HttpRequest) -> actix_web::Error {
    let detail = match &err {
        PathError::Deserialize(inner) => inner.to_string(),
        _ => err.to_string(),
    };
    let what = req
        .match_info()
        .iter()
        .map(|(name, value)| format!("{name} `{value}`"))
        .collect::<Vec<_>>()
        .join(", ");
    ApiError::bad_request(
        "invalid_path",
        format!("invalid path parameter {what}: {detail}; job ids are integers"),
    )
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nosyntask_domain::ParamError;

    #[test]
    fn engine_errors_map_to_contract_statuses() {
        let cases = [
            (
                EngineError::UnknownWorkflow("nope".into()),
                422,
                "unknown_workflow",
            ),
            (
                EngineError::InvalidParams(ParamError::new("description", "is required")),
                422,
                "invalid_params",
            ),
            (EngineError::NotFound(3), 404, "not_found"),
            (EngineError::Conflict("done".into()), 409, "conflict"),
            (
                EngineError::QuotaExceeded {
                    active: 2,
                    limit: 2,
                },
                429,
                "quota_exceeded",
            ),
            (
                EngineError::Unavailable("SELECT 1 failed".into()),
                503,
                "unavailable",
            ),
            (
                EngineError::Internal("syntax error near SELECT".into()),
                500,
                "internal",
            ),
        ];
        for (err, status, code) in cases {
            let api = ApiError::from_engine(err, 5);
            assert_eq!(api.status.as_u16(), status);
            assert_eq!(api.code, code);
            assert!(!api.message.contains("SELECT"), "{}", api.message);
        }
    }

    #[test]
    fn quota_sets_retry_after() {
        let api = ApiError::from_engine(
            EngineError::QuotaExceeded {
                active: 1,
                limit: 1,
            },
            7,
        );
        let response = api.error_response();
        assert_eq!(response.headers().get(RETRY_AFTER).unwrap(), "7");
    }
}
