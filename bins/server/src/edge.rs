//! Guards at the HTTP edge, before any handler runs. actix-http bounds the time a request *head*
//! may take (`client_request_timeout`, 5 s) but not a body: a body is read by whichever extractor
//! wants it, for as long as the client takes, holding up to the body limit in memory. So:
//! - a body must arrive within `server.body_read_timeout_secs` of its head, or the request is
//!   answered 408 and the connection closed;
//! - one client IP may hold at most `server.max_connections_per_ip` connections; the requests of
//!   the others are answered 429 and their connections closed;
//! - query strings with a NUL character are refused (400): PostgreSQL cannot store NUL in text,
//!   so a filter with one would otherwise fail deep down as a 500. [`refuse_nul`] does the same
//!   for JSON bodies (422, naming the field).
//!
//! What the application cannot shape: the answers actix-http gives by itself. Its HTTP/1
//! dispatcher (actix-http 3.20, `h1/dispatcher.rs`) answers a request it cannot parse with
//! `Response::bad_request().drop_body()` (400), a head over its 128 KiB buffer with
//! `Response::with_body(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, ())` (431) and a head not
//! complete within `client_request_timeout` with `Response::with_body(REQUEST_TIMEOUT, ())`
//! (408). It writes them to the socket itself: all three go through
//! `InnerDispatcher::send_error_response(res, BoxBody::new(()))`, which encodes the head and an
//! empty body straight into the write buffer. There is no request for any `Service` or
//! middleware to see, and neither `HttpServer` nor `HttpServiceBuilder` has a hook for them (its
//! knobs are the timeouts, `expect`, `upgrade` and `on_connect_ext`; the 128 KiB head limit and
//! 96 headers are constants of `h1/decoder.rs`). So those three stay empty-bodied; their log
//! noise (`stream error: …` at ERROR, from `Dispatcher::poll`, for the 400 and 431; the head
//! timeout logs nothing) is handled in `telemetry`.

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Extensions, Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_LENGTH, RETRY_AFTER, TRANSFER_ENCODING};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{Error, HttpMessage, HttpResponse, web};
use futures::Stream;
use serde_json::Value;

use crate::error::ApiError;

/// Time to read a body unless configured (`server.body_read_timeout_secs`): ample for the 1 MiB
/// default body limit on a slow mobile link, short enough that held bodies drain quickly.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(20);

/// The edge's settings, shared by the HTTP worker threads.
#[derive(Debug, Clone, Copy)]
pub struct EdgeConfig {
    /// Longest time from a request's head to the end of its body.
    pub body_read_timeout: Duration,
}

/// Connections open per client IP, counted across all HTTP worker threads.
#[derive(Debug, Clone)]
pub struct ConnectionLimiter {
    /// 0: unlimited.
    limit: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl ConnectionLimiter {
    pub fn new(limit: usize) -> Self {
        ConnectionLimiter {
            limit,
            open: Arc::default(),
        }
    }

    /// The `HttpServer::on_connect` hook: counts the connection and leaves its slot in the
    /// connection's data, where the slot lives (and is counted) until the connection closes.
    /// actix offers no way to refuse a connection here, so an over-limit connection is marked
    /// and its first request answered 429 by [`guard`].
    pub fn on_connect(&self, connection: &dyn Any, data: &mut Extensions) {
        if self.limit == 0 {
            return;
        }
        let Some(stream) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() else {
            return;
        };
        let Ok(peer) = stream.peer_addr() else {
            return;
        };
        let ip = peer.ip().to_canonical();
        let count = {
            let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
            let count = open.entry(ip).or_insert(0);
            *count += 1;
            *count
        };
        data.insert(ConnectionSlot {
            ip,
            over_limit: count > self.limit,
            open: Arc::clone(&self.open),
        });
    }
}

/// One counted connection; uncounted when the connection's data is dropped.
#[derive(Debug)]
struct ConnectionSlot {
    ip: IpAddr,
    over_limit: bool,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// The edge middleware (see the module documentation).
pub async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<BoxBody>>, Error> {
    if req
        .conn_data::<ConnectionSlot>()
        .is_some_and(|slot| slot.over_limit)
    {
        let err = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_connections",
            "too many connections from this address; close some and retry",
        );
        let response = HttpResponse::build(err.status)
            .insert_header((RETRY_AFTER, "1"))
            .force_close()
            .json(err.body());
        return Ok(req.into_response(response).map_into_right_body());
    }
    if let Some(name) = nul_query_parameter(req.query_string()) {
        let err = ApiError::bad_request(
            "invalid_query",
            format!("query parameter {name} must not contain NUL characters (%00)"),
        );
        return Ok(req.error_response(err).map_into_right_body());
    }
    if !has_body(&req) {
        return next
            .call(req)
            .await
            .map(|response| response.map_into_boxed_body().map_into_left_body());
    }
    let timeout = req
        .app_data::<web::Data<EdgeConfig>>()
        .map(|config| config.body_read_timeout)
        .unwrap_or(DEFAULT_BODY_READ_TIMEOUT);
    let inner = Rc::new(RefCell::new(req.take_payload()));
    let deadline = BodyDeadline {
        inner: Rc::clone(&inner),
        sleep: Box::pin(tokio::time::sleep(timeout)),
        timeout,
        expired: false,
    };
    let stream: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> = Box::pin(deadline);
    req.set_payload(Payload::from(stream));
    let response = next.call(req).await?;
    // The request payload stays alive until the answer is written: actix then sees a body that
    // was not read to its end and closes the connection, instead of draining (and waiting for)
    // the rest of a chunked body that the client may never finish.
    Ok(response
        .map_into_boxed_body()
        .map_body(|_, body| {
            HoldPayload {
                body,
                _payload: inner,
            }
            .boxed()
        })
        .map_into_left_body())
}

fn has_body(req: &ServiceRequest) -> bool {
    let headers = req.headers();
    headers.contains_key(TRANSFER_ENCODING)
        || headers
            .get(CONTENT_LENGTH)
            .is_some_and(|length| length.as_bytes() != b"0")
}

/// The name of the first query parameter whose name or value holds a percent-encoded NUL. (A raw
/// NUL cannot reach here: the request line parser refuses it.)
fn nul_query_parameter(query: &str) -> Option<String> {
    if !query.contains("%00") {
        return None;
    }
    query
        .split('&')
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .find(|(name, value)| name.contains("%00") || value.contains("%00"))
        .map(|(name, _)| {
            if name.contains("%00") || name.is_empty() {
                "names".to_owned()
            } else {
                format!("`{name}`")
            }
        })
}

/// Why a body stopped: it did not arrive within the limit.
#[derive(Debug, thiserror::Error)]
#[error("the request body was not received within {} s", .0.as_secs())]
pub struct BodyTimedOut(pub Duration);

/// The request payload, failing with [`BodyTimedOut`] once the deadline passes.
struct BodyDeadline {
    inner: Rc<RefCell<Payload>>,
    sleep: Pin<Box<tokio::time::Sleep>>,
    timeout: Duration,
    expired: bool,
}

impl Stream for BodyDeadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.expired {
            return Poll::Ready(None);
        }
        // The deadline first: a body trickling in one byte at a time always has data ready.
        if this.sleep.as_mut().poll(cx).is_ready() {
            this.expired = true;
            return Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                BodyTimedOut(this.timeout),
            )))));
        }
        let mut inner = this.inner.borrow_mut();
        Pin::new(&mut *inner).poll_next(cx)
    }
}

/// A response body that keeps the request payload alive until it is written.
struct HoldPayload {
    body: BoxBody,
    _payload: Rc<RefCell<Payload>>,
}

impl MessageBody for HoldPayload {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.body).poll_next(cx)
    }
}

/// The time-out of a body read, if `err` is one.
pub fn body_timed_out(err: &PayloadError) -> Option<&BodyTimedOut> {
    match err {
        PayloadError::Io(io) => io.get_ref()?.downcast_ref::<BodyTimedOut>(),
        _ => None,
    }
}

/// Refuses a JSON request body with a NUL character in any string or object key (422, naming
/// the field as `params.scenes[2].name`): PostgreSQL stores neither text nor jsonb with one.
pub fn refuse_nul(body: &Value) -> Result<(), ApiError> {
    match nul_path(body, String::new()) {
        None => Ok(()),
        Some(path) => {
            let code = if path.starts_with("params") {
                "invalid_params"
            } else {
                "invalid_body"
            };
            let path = if path.is_empty() {
                "the body".to_owned()
            } else {
                path
            };
            Err(ApiError::unprocessable(
                code,
                format!("{path} must not contain NUL characters (\\u0000)"),
            ))
        }
    }
}

fn nul_path(value: &Value, path: String) -> Option<String> {
    match value {
        Value::String(text) => text.contains('\0').then_some(path),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_path(item, format!("{path}[{i}]"))),
        Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            if key.contains('\0') {
                // The key itself cannot be shown; name the object that holds it.
                let holder = if path.is_empty() { "the body" } else { &path };
                return Some(format!("{holder} (a field name)"));
            }
            let child = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            nul_path(item, child)
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nul_is_found_and_named() {
        assert!(refuse_nul(&json!({"params": {"a": ["x", {"b": "ok"}]}})).is_ok());
        let cases = [
            (
                json!({"params": {"a": "x\u{0}"}}),
                "params.a ",
                "invalid_params",
            ),
            (
                json!({"params": {"a": ["x", {"b": "\u{0}"}]}}),
                "params.a[1].b ",
                "invalid_params",
            ),
            (
                json!({"idempotencyKey": "\u{0}"}),
                "idempotencyKey ",
                "invalid_body",
            ),
            (
                json!({"params": {"k\u{0}": 1}}),
                "params (a field name)",
                "invalid_params",
            ),
            (json!("\u{0}"), "the body", "invalid_body"),
        ];
        for (body, named, code) in cases {
            let err = refuse_nul(&body).unwrap_err();
            assert!(err.message.starts_with(named), "{body}: {}", err.message);
            assert_eq!(err.code, code, "{body}");
            assert_eq!(err.status.as_u16(), 422);
        }
    }

    #[test]
    fn nul_query_parameters_are_named() {
        assert_eq!(nul_query_parameter("a=1&b=2%20"), None);
        assert_eq!(
            nul_query_parameter("projectId=1&workflowType=x%00y").as_deref(),
            Some("`workflowType`")
        );
        assert_eq!(nul_query_parameter("x%00=1").as_deref(), Some("names"));
    }

    #[test]
    fn the_deadline_error_is_recognised() {
        let err = PayloadError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            BodyTimedOut(Duration::from_secs(3)),
        ));
        assert_eq!(
            body_timed_out(&err).map(ToString::to_string).as_deref(),
            Some("the request body was not received within 3 s")
        );
        let other = PayloadError::Io(std::io::Error::other("reset"));
        assert!(body_timed_out(&other).is_none());
    }
}
