//! HTTP plumbing shared by the adapters: size-limited bodies, error mapping to retryable /
//! permanent [`TaskError`]s, `Retry-After`, and downloads of generated media.

use std::time::{Duration, SystemTime};

use nosyntask_domain::TaskError;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::Value;

/// Largest JSON body read from a provider.
pub const JSON_BODY_LIMIT: usize = 8 * 1024 * 1024;
/// How much of an unexpected body an error message quotes.
const EXCERPT_CHARS: usize = 200;
/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// A shared HTTP client (connection pool) for every model of a catalog.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
}

impl HttpClient {
    pub fn new() -> Result<HttpClient, String> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(90))
            .user_agent(concat!("nosyntask/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| format!("cannot build the HTTP client: {err}"))?;
        Ok(HttpClient { client })
    }

    pub fn inner(&self) -> &reqwest::Client {
        &self.client
    }
}

/// Sends `request` and reads a JSON answer, mapping every failure to a [`TaskError`].
pub async fn send_json(request: RequestBuilder) -> Result<Value, TaskError> {
    send_json_inner(request, false).await
}

/// [`send_json`] for status requests of a checkpointed task: a 2xx answer that is not JSON (a
/// proxy's page) is retryable there, since trying again costs nothing.
pub async fn poll_json(request: RequestBuilder) -> Result<Value, TaskError> {
    send_json_inner(request, true).await
}

async fn send_json_inner(request: RequestBuilder, lenient: bool) -> Result<Value, TaskError> {
    send_json_checked(request, lenient)
        .await
        .map_err(Failure::into_error)
}

/// Why a JSON request failed: the provider answered with an error status (its body kept, for
/// callers that read meaning into it), or something else went wrong.
#[derive(Debug)]
pub enum Failure {
    Status {
        status: StatusCode,
        body: Option<Value>,
        error: TaskError,
    },
    Other(TaskError),
}

impl Failure {
    pub fn into_error(self) -> TaskError {
        match self {
            Failure::Status { error, .. } | Failure::Other(error) => error,
        }
    }
}

/// [`send_json`] (or, `lenient`, [`poll_json`]) keeping the status and body of an error answer.
pub async fn send_json_checked(request: RequestBuilder, lenient: bool) -> Result<Value, Failure> {
    let response = request
        .send()
        .await
        .map_err(|e| Failure::Other(map_reqwest_error(e)))?;
    let status = response.status();
    let headers = response.headers().clone();
    let host = host_of(&response);
    let body = read_limited(response, JSON_BODY_LIMIT)
        .await
        .map_err(Failure::Other)?;
    if !status.is_success() {
        return Err(Failure::Status {
            status,
            body: serde_json::from_slice(&body).ok(),
            error: error_from_response(status, &headers, &body, &host),
        });
    }
    parse_json_body(&headers, &body).map_err(|err| {
        Failure::Other(match err {
            TaskError::Permanent { message } if lenient => TaskError::retryable(message),
            other => other,
        })
    })
}

/// True for an error answer meaning the resource is gone (404 Not Found, 410 Gone).
pub fn is_gone_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 404 | 410)
}

/// True when `err` is [`error_from_response`]'s message for a 404 or 410 answer (downloads go
/// through [`send_bytes`], which keeps only the error).
pub fn is_gone_error(err: &TaskError) -> bool {
    matches!(err, TaskError::Permanent { message }
        if message.starts_with("HTTP 404 from ") || message.starts_with("HTTP 410 from "))
}

/// Sends `request` and reads its body as bytes (within `limit`), failing on non-2xx answers.
pub async fn send_bytes(
    request: RequestBuilder,
    limit: usize,
) -> Result<(HeaderMap, Vec<u8>), TaskError> {
    let response = request.send().await.map_err(map_reqwest_error)?;
    let status = response.status();
    let headers = response.headers().clone();
    let host = host_of(&response);
    if !status.is_success() {
        let body = read_limited(response, JSON_BODY_LIMIT).await?;
        return Err(error_from_response(status, &headers, &body, &host));
    }
    let body = read_limited(response, limit).await?;
    Ok((headers, body))
}

fn host_of(response: &Response) -> String {
    response
        .url()
        .host_str()
        .unwrap_or("the provider")
        .to_owned()
}

/// Parses a 2xx body as JSON; a body that is not JSON gives a message quoting its start.
pub fn parse_json_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, TaskError> {
    serde_json::from_slice(body).map_err(|_| {
        TaskError::permanent(format!(
            "provider returned a non-JSON body ({}, {} bytes): {}",
            content_type(headers).unwrap_or_else(|| "no content type".to_owned()),
            body.len(),
            excerpt(body)
        ))
    })
}

/// Reads at most `limit` bytes of a body; a larger body is a permanent error.
pub async fn read_limited(mut response: Response, limit: usize) -> Result<Vec<u8>, TaskError> {
    let too_large = || {
        TaskError::permanent(format!(
            "provider response is larger than the {} limit",
            human_bytes(limit)
        ))
    };
    if response
        .content_length()
        .is_some_and(|len| len > limit as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(map_reqwest_error)? {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Maps a transport failure: timeouts, connection errors and broken bodies are retryable.
pub fn map_reqwest_error(err: reqwest::Error) -> TaskError {
    let host = err
        .url()
        .and_then(|u| u.host_str())
        .unwrap_or("the provider")
        .to_owned();
    let (timeout, connect, invalid) = (
        err.is_timeout(),
        err.is_connect(),
        err.is_builder() || err.is_redirect(),
    );
    // Without the URL: a query string may carry credentials.
    let detail = error_chain(&err.without_url());
    if timeout {
        TaskError::retryable(format!("request to {host} timed out"))
    } else if connect {
        TaskError::retryable(format!("could not connect to {host}: {detail}"))
    } else if invalid {
        TaskError::permanent(format!("invalid request to {host}: {detail}"))
    } else {
        TaskError::retryable(format!("request to {host} failed: {detail}"))
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Maps a non-2xx answer. 408, 425, 429 and 5xx are retryable (honouring `Retry-After`);
/// other statuses, 402 and `insufficient_quota` bodies are permanent.
pub fn error_from_response(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    host: &str,
) -> TaskError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let detail = match parsed.as_ref().and_then(provider_message) {
        Some(message) => message,
        None if body.is_empty() => "empty body".to_owned(),
        None if parsed.is_some() => excerpt(body),
        None => format!(
            "non-JSON body ({}, {} bytes): {}",
            content_type(headers).unwrap_or_else(|| "no content type".to_owned()),
            body.len(),
            excerpt(body)
        ),
    };
    let message = format!("HTTP {} from {host}: {detail}", status.as_u16());
    let quota_exhausted = String::from_utf8_lossy(body).contains("insufficient_quota");
    let retryable = matches!(status.as_u16(), 408 | 425 | 429) || status.is_server_error();
    if retryable && !quota_exhausted {
        match retry_after(headers) {
            Some(after) => TaskError::retry_after(message, after),
            None => TaskError::retryable(message),
        }
    } else {
        TaskError::permanent(message)
    }
}

/// The human message of a provider's error body: OpenAI's `{error:{message,type,code}}`,
/// `{error:"…"}`, DashScope's `{code,message}`, Replicate/fal's `{detail}` / `{title}`.
pub fn provider_message(body: &Value) -> Option<String> {
    let text = |v: Option<&Value>| -> Option<String> {
        match v? {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            Value::Null => None,
            Value::String(_) => None,
            other => Some(other.to_string()),
        }
    };
    if let Some(error) = body.get("error") {
        if let Some(message) = text(error.get("message")) {
            let mut extra = Vec::new();
            if let Some(kind) = text(error.get("type")) {
                extra.push(format!("type: {kind}"));
            }
            if let Some(code) = text(error.get("code")) {
                extra.push(format!("code: {code}"));
            }
            return Some(if extra.is_empty() {
                message
            } else {
                format!("{message} ({})", extra.join(", "))
            });
        }
        if let Some(message) = text(Some(error)) {
            return Some(message);
        }
    }
    if let Some(message) = text(body.get("message")) {
        return Some(match text(body.get("code")) {
            Some(code) => format!("{message} (code: {code})"),
            None => message,
        });
    }
    // fal's (and FastAPI's) validation shape: `detail` is a list of `{loc, msg, type}`.
    if let Some(Value::Array(items)) = body.get("detail") {
        let messages: Vec<String> = items.iter().filter_map(detail_item).collect();
        if !messages.is_empty() {
            return Some(messages.join("; "));
        }
    }
    text(body.get("detail")).or_else(|| text(body.get("title")))
}

/// `image_url: File download error (type: file_download_error)` from one `detail` item.
fn detail_item(item: &Value) -> Option<String> {
    let msg = item.get("msg")?.as_str()?;
    let field = item
        .get("loc")
        .and_then(Value::as_array)
        .and_then(|loc| loc.iter().rev().find_map(Value::as_str))
        .filter(|field| *field != "body");
    let kind = item.get("type").and_then(Value::as_str);
    Some(match (field, kind) {
        (Some(field), Some(kind)) => format!("{field}: {msg} (type: {kind})"),
        (Some(field), None) => format!("{field}: {msg}"),
        (None, Some(kind)) => format!("{msg} (type: {kind})"),
        (None, None) => msg.to_owned(),
    })
}

/// `Retry-After` in seconds or as an HTTP date (also OpenAI's `retry-after-ms`).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    if let Some(ms) = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
    {
        return Some(Duration::from_secs_f64(ms / 1000.0).min(MAX_RETRY_AFTER));
    }
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let after = match value.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 => Duration::from_secs_f64(secs),
        Ok(_) => return None,
        Err(_) => {
            let at = httpdate::parse_http_date(value).ok()?;
            at.duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO)
        }
    };
    Some(after.min(MAX_RETRY_AFTER))
}

/// The media type of a response, lowercased, without parameters.
pub fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|v| !v.is_empty())
}

/// The first characters of a body, for error messages.
pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text
        .chars()
        .take(EXCERPT_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > EXCERPT_CHARS {
        out.push('…');
    }
    out.trim().to_owned()
}

pub fn human_bytes(bytes: usize) -> String {
    if bytes >= 1024 * 1024 {
        format!("{} MiB", bytes / (1024 * 1024))
    } else if bytes >= 1024 {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} bytes")
    }
}

/// Replaces a secret in an error message (providers sometimes echo the key they got).
pub fn redact(err: TaskError, secret: Option<&str>) -> TaskError {
    let Some(secret) = secret.filter(|s| s.len() >= 4) else {
        return err;
    };
    let clean = |m: String| m.replace(secret, "[redacted]");
    match err {
        TaskError::Retryable {
            message,
            retry_after,
        } => TaskError::Retryable {
            message: clean(message),
            retry_after,
        },
        TaskError::Permanent { message } => TaskError::Permanent {
            message: clean(message),
        },
        TaskError::Cancelled => TaskError::Cancelled,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;
    use serde_json::json;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn statuses_map_to_error_kinds() {
        let h = headers(&[("retry-after", "7")]);
        let err = error_from_response(StatusCode::TOO_MANY_REQUESTS, &h, b"{}", "api.x");
        assert_eq!(
            err,
            TaskError::retry_after("HTTP 429 from api.x: {}", Duration::from_secs(7))
        );
        let body = br#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#;
        let err = error_from_response(StatusCode::TOO_MANY_REQUESTS, &h, body, "api.x");
        assert!(!err.is_retryable());
        assert!(
            err.to_string()
                .contains("You exceeded your current quota (type: insufficient_quota")
        );
        for code in [400, 401, 402, 403, 404, 422] {
            let status = StatusCode::from_u16(code).unwrap();
            assert!(!error_from_response(status, &HeaderMap::new(), b"", "h").is_retryable());
        }
        for code in [408, 500, 502, 503] {
            let status = StatusCode::from_u16(code).unwrap();
            assert!(error_from_response(status, &HeaderMap::new(), b"", "h").is_retryable());
        }
    }

    #[test]
    fn html_error_pages_are_quoted_not_parsed() {
        let h = headers(&[("content-type", "text/html; charset=utf-8")]);
        let page = format!("<html><body>{}</body></html>", "Bad gateway ".repeat(40));
        let err = error_from_response(StatusCode::BAD_GATEWAY, &h, page.as_bytes(), "h");
        let text = err.to_string();
        assert!(
            text.starts_with("HTTP 502 from h: non-JSON body (text/html, "),
            "{text}"
        );
        assert!(text.ends_with('…'));
        let err = parse_json_body(&h, b"<html>oops</html>").unwrap_err();
        assert_eq!(
            err.to_string(),
            "provider returned a non-JSON body (text/html, 17 bytes): <html>oops</html>"
        );
    }

    #[test]
    fn provider_messages_of_known_shapes() {
        assert_eq!(
            provider_message(
                &json!({"code": "InvalidApiKey", "message": "Invalid API-key provided."})
            ),
            Some("Invalid API-key provided. (code: InvalidApiKey)".into())
        );
        assert_eq!(
            provider_message(&json!({"detail": "Invalid version or not permitted", "status": 422})),
            Some("Invalid version or not permitted".into())
        );
        assert_eq!(
            provider_message(&json!({"error": "boom"})),
            Some("boom".into())
        );
        assert_eq!(provider_message(&json!({"ok": true})), None);
    }

    #[test]
    fn retry_after_in_seconds_dates_and_ms() {
        let in_a_minute = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(60));
        let after = retry_after(&headers(&[("retry-after", &in_a_minute)])).unwrap();
        assert!(after > Duration::from_secs(55) && after <= Duration::from_secs(60));
        assert_eq!(
            retry_after(&headers(&[("retry-after-ms", "1500")])),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")])), None);
        assert_eq!(
            retry_after(&headers(&[("retry-after", "999999")])),
            Some(MAX_RETRY_AFTER)
        );
    }

    #[test]
    fn secrets_are_redacted() {
        let err = TaskError::permanent("Incorrect API key provided: sk-secret-1");
        assert_eq!(
            redact(err, Some("sk-secret-1")).to_string(),
            "Incorrect API key provided: [redacted]"
        );
    }
}
