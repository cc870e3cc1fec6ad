//! `GET /api/workflows/{jobId}/events`: Server-Sent Events of one job.
//!
//! The stream follows the job through the process's [`crate::watch::JobWatch`]: one version poll
//! for all watched jobs, one read per change of a job however many streams watch it; changes
//! made by any process are seen (workers elsewhere, another API server). It ends after sending a
//! terminal state, when the job disappears, or when the server shuts down.

use std::time::Duration;

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, get, web};
use futures::Stream;
use serde_json::Value;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::auth::StreamCaller;
use crate::error::{ApiError, ErrorBody};
use crate::reads::{JobSnapshot, etag_of, if_none_match};
use crate::state::AppState;
use crate::views::JobEvent;
use crate::watch::Latest;

/// Streams the job: a `job` event with the full Job (tasks included) on every change; with
/// `changes=true`, the full Job first and then a `changes` event per change with only what
/// changed.
#[utoipa::path(
    tag = "workflows",
    security(("bearer" = [])),
    params(
        ("jobId" = i64, Path, description = "Job id"),
        ("access_token" = Option<String>, Query, description = "The bearer token, for clients \
            that cannot send headers (browser EventSource); the Authorization header wins"),
        ("changes" = Option<bool>, Query, description = "`true`: after the first `job` event, \
            `changes` events carry the job's `id`, its top-level fields that changed (`null` for \
            one that went away) and under `tasks` the tasks that changed (`id` and changed \
            fields; a new task whole): apply each as a shallow merge, tasks matched by `id`"),
        ("If-None-Match" = Option<String>, Header, description = "With `changes=true`: the \
            ETag of the job read the client holds; when it is still current, the stream \
            starts with the changes since it instead of the whole job"),
    ),
    responses(
        (status = 200, description = "`text/event-stream` of `event: job` / `data: <Job JSON>` \
            messages (or `event: changes` ones, see `changes`), one per change, ending after a \
            terminal status; comment lines keep the connection alive",
            content_type = "text/event-stream", body = JobEvent),
        (status = 400, description = "The job id is not an integer, or `changes` not true or false", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "No such job for this user", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
#[get("/api/workflows/{jobId}/events")]
pub async fn job_events(
    caller: StreamCaller,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let first = state
        .reads
        .get(&caller.0, id)
        .await
        .map_err(|e| state.error(e))?;
    let own_base = crate::state::own_base(&req);
    let changes = match web::Query::<EventsQuery>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.into_inner().changes)
        .as_deref()
    {
        None | Some("false" | "0") => false,
        Some("true" | "1") => true,
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("changes: true or false, got `{other}`"),
            )
            .zh(format!("changes：应为 true 或 false，实际为“{other}”")));
        }
    };
    // The client read the job just before (a job page does): changes since that read, then.
    let known = changes && {
        let body = state.with_links(&req, &first.body).await;
        if_none_match(&req, &etag_of(&body))
    };
    let stream = events(state.into_inner(), first, own_base, changes, known);
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/event-stream"))
        .insert_header((CACHE_CONTROL, "no-cache"))
        // Tell reverse proxies (nginx) not to buffer the stream.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream))
}

/// The query of an event stream (besides `access_token`, which the caller extractor reads).
#[derive(Debug, serde::Deserialize)]
struct EventsQuery {
    changes: Option<String>,
}

struct Cursor {
    state: std::sync::Arc<AppState>,
    updates: watch::Receiver<Latest>,
    /// The address the stream was opened at (media URLs are made absolute with it).
    own_base: String,
    pending: Option<std::sync::Arc<JobSnapshot>>,
    last: Option<Bytes>,
    /// The last job sent, as sent, when the stream sends changes.
    sent: Option<Value>,
    changes: bool,
    /// The client holds the first version already (changes only): it is not sent.
    known: bool,
    last_write: Instant,
    started: bool,
    done: bool,
}

fn events(
    state: std::sync::Arc<AppState>,
    first: std::sync::Arc<JobSnapshot>,
    own_base: String,
    changes: bool,
    known: bool,
) -> impl Stream<Item = Result<Bytes, actix_web::Error>> {
    let cursor = Cursor {
        updates: state.watch.subscribe(&first),
        state,
        own_base,
        pending: Some(first),
        last: None,
        sent: None,
        changes,
        known,
        last_write: Instant::now(),
        started: false,
        done: false,
    };
    futures::stream::unfold(cursor, |mut cursor| async move {
        let chunk = next_chunk(&mut cursor).await?;
        cursor.last_write = Instant::now();
        Some((Ok(Bytes::from(chunk)), cursor))
    })
}

/// The next bytes to send, or `None` when the stream is over.
async fn next_chunk(cursor: &mut Cursor) -> Option<Vec<u8>> {
    if cursor.done {
        return None;
    }
    if !cursor.started {
        cursor.started = true;
        // Reconnect quickly if the connection drops.
        return Some(b"retry: 1000\n\n".to_vec());
    }
    let keepalive = cursor.state.events.keepalive;
    loop {
        if let Some(job) = cursor.pending.take() {
            if job.job.job.status.is_terminal() {
                cursor.done = true;
            }
            if cursor.last.as_ref() != Some(&job.body) || cursor.done {
                let body = nosyntask_artifacts::links::rewrite_json(
                    &cursor.state.artifacts,
                    &job.body,
                    Some(&cursor.own_base),
                )
                .await;
                cursor.last = Some(job.body.clone());
                if !cursor.changes {
                    return Some(frame(b"job", &body));
                }
                let Ok(now) = serde_json::from_slice::<Value>(&body) else {
                    return Some(frame(b"job", &body));
                };
                // The first frame is the whole job, unless the client holds it already;
                // later ones what changed since the last.
                if std::mem::take(&mut cursor.known) {
                    cursor.sent = Some(now);
                    if cursor.done {
                        return None;
                    }
                    continue;
                }
                let change = cursor
                    .sent
                    .as_ref()
                    .map(|before| crate::changes::job_changes(before, &now));
                cursor.sent = Some(now);
                return Some(match change {
                    Some(change) => frame(b"changes", change.to_string().as_bytes()),
                    None => frame(b"job", &body),
                });
            }
        }
        let silence = keepalive.saturating_sub(cursor.last_write.elapsed());
        if silence.is_zero() {
            return Some(b": keep-alive\n\n".to_vec());
        }
        tokio::select! {
            () = cursor.state.shutdown.cancelled() => return None,
            () = tokio::time::sleep(silence.max(Duration::from_millis(10))) => {}
            changed = cursor.updates.changed() => {
                // The watcher is gone only when the server shuts down.
                if changed.is_err() {
                    return None;
                }
                match cursor.updates.borrow_and_update().clone() {
                    Latest::Job(job) => cursor.pending = Some(job),
                    // The job was pruned or deleted: nothing more will come.
                    Latest::Gone => return None,
                }
            }
        }
    }
}

fn frame(event: &[u8], json: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(json.len() + 24);
    frame.extend_from_slice(b"event: ");
    frame.extend_from_slice(event);
    frame.extend_from_slice(b"\ndata: ");
    frame.extend_from_slice(json);
    frame.extend_from_slice(b"\n\n");
    frame
}
