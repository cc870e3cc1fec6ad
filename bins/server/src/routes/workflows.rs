//! `/api/workflows…`: start, read, list, consume, cancel and resume jobs.

use actix_web::http::header::{CACHE_CONTROL, ETAG, VARY};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use nosyntask_domain::{JobStatus, JobWithTasks, TaskStatus, lenient_integer};
use nosyntask_engine::{ListQuery, StartRequest};
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::i18n;
use crate::reads::{etag_of, if_none_match};
use crate::requests::StartWorkflowRequest;
use crate::state::AppState;
use crate::views::{
    ConsumeResponse, Job, JobList, JobStatusChange, NO_PROJECT, StartWorkflowResponse,
    WorkflowType, WorkflowTypes,
};

const MAX_LIST_LIMIT: u64 = 200;
const DEFAULT_LIST_LIMIT: u64 = 50;
const DEFAULT_ACTIVE_LIMIT: u64 = 5;
const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;

/// Lists the registered workflow types with their steps and params schemas.
#[utoipa::path(
    tag = "workflows",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The workflow types", body = WorkflowTypes),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
    )
)]
#[get("/api/workflows/types")]
pub async fn workflow_types(
    _caller: Caller,
    state: web::Data<AppState>,
) -> web::Json<WorkflowTypes> {
    let workflows = state
        .engine
        .registry()
        .all()
        .iter()
        .map(|definition| WorkflowType::from(definition.as_ref()))
        .collect();
    web::Json(WorkflowTypes { workflows })
}

/// Starts a workflow job (or returns the job an idempotency key already started).
#[utoipa::path(
    tag = "workflows",
    security(("bearer" = [])),
    request_body = StartWorkflowRequest,
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Same as the body's idempotencyKey"),
    ),
    responses(
        (status = 202, description = "Started (or deduplicated)", body = StartWorkflowResponse,
            links(
                ("GetJob" = (operation_id = "get_job", parameters(("jobId" = "$response.body#/jobId")))),
                ("JobEvents" = (operation_id = "job_events", parameters(("jobId" = "$response.body#/jobId")))),
                ("ConsumeJob" = (operation_id = "consume_job", parameters(("jobId" = "$response.body#/jobId")))),
                ("CancelJob" = (operation_id = "cancel_job", parameters(("jobId" = "$response.body#/jobId")))),
                ("ResumeJob" = (operation_id = "resume_job", parameters(("jobId" = "$response.body#/jobId")))),
            )),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 408, description = "The body did not arrive in time", body = ErrorBody),
        (status = 409, description = "`idempotencyKey` and the `Idempotency-Key` header differ", body = ErrorBody),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 415, description = "The body is not declared JSON (Content-Type)", body = ErrorBody),
        (status = 422, description = "Unknown workflow type or invalid params; the message names the field", body = ErrorBody),
        (status = 429, description = "Too many active jobs; see Retry-After", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
#[post("/api/workflows")]
pub async fn start_workflow(
    caller: Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let header_key = match req.headers().get("Idempotency-Key") {
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| {
                    ApiError::bad_request("bad_request", "Idempotency-Key header is not ASCII")
                        .zh("Idempotency-Key 请求头必须是 ASCII")
                })?
                .to_owned(),
        ),
        None => None,
    };
    let body = body.into_inner();
    crate::edge::refuse_nul(&body)?;
    let request = parse_start(caller, body, header_key)?;
    let started = state
        .engine
        .start(request)
        .await
        .map_err(|e| state.error(e))?;
    Ok(HttpResponse::Accepted().json(StartWorkflowResponse::new(
        &started.job,
        started.deduplicated,
        i18n::of_request(&req),
    )))
}

fn parse_start(
    caller: Caller,
    body: Value,
    header_key: Option<String>,
) -> Result<StartRequest, ApiError> {
    let body = StartWorkflowRequest::from_json(body)?;
    // NanoStory's model test page starts jobs outside any project.
    let project_id = body.project_id.unwrap_or(NO_PROJECT);
    let params = Value::Object(body.params.unwrap_or_default());
    // Orders the caller's own jobs (interactive over batch); other users' share is unaffected.
    let priority = body.priority.unwrap_or(0);
    let body_key = body.idempotency_key;
    let idempotency_key = match (body_key, header_key) {
        // Each is valid on its own; together they contradict each other.
        (Some(a), Some(b)) if a != b => {
            return Err(ApiError::new(
                actix_web::http::StatusCode::CONFLICT,
                "idempotency_key_conflict",
                "idempotencyKey and the Idempotency-Key header differ; send one of them",
            )
            .zh("idempotencyKey 与 Idempotency-Key 请求头不一致；只需提供其一"));
        }
        (Some(key), _) | (None, Some(key)) => Some(key),
        (None, None) => None,
    };
    if idempotency_key
        .as_ref()
        .is_some_and(|k| k.chars().count() > MAX_IDEMPOTENCY_KEY_CHARS)
    {
        return Err(ApiError::unprocessable(
            "invalid_body",
            format!("idempotencyKey must be at most {MAX_IDEMPOTENCY_KEY_CHARS} characters"),
        )
        .zh(format!(
            "idempotencyKey 最多 {MAX_IDEMPOTENCY_KEY_CHARS} 个字符"
        )));
    }
    Ok(StartRequest {
        user_id: caller.0.user_id,
        project_id,
        workflow_type: body.workflow_type,
        params,
        idempotency_key,
        priority,
    })
}

/// Reads one job with its tasks. Answers 304 when `If-None-Match` holds its current ETag.
#[utoipa::path(
    tag = "workflows",
    security(("bearer" = [])),
    params(
        ("jobId" = i64, Path, description = "Job id"),
        ("If-None-Match" = Option<String>, Header, description = "ETag of a previous answer"),
    ),
    responses(
        (status = 200, description = "The job", body = Job, headers(("ETag" = String))),
        (status = 304, description = "Not modified since the given ETag"),
        (status = 400, description = "The job id is not an integer", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "No such job for this user", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
#[get("/api/workflows/{jobId}")]
pub async fn get_job(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let job = state
        .reads
        .get(&caller.0, path.into_inner())
        .await
        .map_err(|e| state.error(e))?;
    let lang = i18n::of_request(&req);
    let body = if lang != i18n::default_lang() && has_cancellation(&job.job) {
        // The shared snapshot speaks the default language; this reader reads another.
        let view = Job::new(&job.job, state.definition(&job.job.job.workflow_type), lang);
        Bytes::from(serde_json::to_vec(&view).map_err(ApiError::internal)?)
    } else {
        job.body.clone()
    };
    // Media URLs are made for this reader now (its address, a signature that is valid), so
    // the ETag is of what this reader gets: a new signature is a new version.
    let body = Bytes::from(state.with_links(&req, &body).await);
    Ok(conditional_json(&req, body))
}

/// A JSON answer with its ETag, or 304 when `If-None-Match` already holds it: a poll that
/// finds nothing new costs headers only.
fn conditional_json(req: &HttpRequest, body: Bytes) -> HttpResponse {
    let etag = etag_of(&body);
    let fresh = if_none_match(req, &etag);
    let mut response = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((ETAG, etag))
        .insert_header((CACHE_CONTROL, "no-cache"))
        .insert_header((VARY, "Accept-Language"));
    if fresh {
        response.finish()
    } else {
        response.content_type("application/json").body(body)
    }
}

/// Whether the job's view carries a message of the reader's language (a cancellation).
fn has_cancellation(job: &JobWithTasks) -> bool {
    job.job.status == JobStatus::Cancelled
        || job.tasks.iter().any(|t| t.status == TaskStatus::Cancelled)
}

/// Filters of the job list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only jobs of this project.
    #[param(value_type = Option<i64>)]
    project_id: Option<String>,
    /// Only jobs of this workflow type.
    workflow_type: Option<String>,
    /// Comma-separated statuses (`pending,running`).
    #[param(
        pattern = "^((pending|running|completed|failed|cancelled)(,(pending|running|completed|failed|cancelled))*)?$"
    )]
    status: Option<String>,
    /// 1–200, default 50.
    #[param(value_type = Option<u64>, minimum = 1, maximum = 200)]
    limit: Option<String>,
    /// Only jobs with a smaller id (the last id of the previous page).
    #[param(value_type = Option<i64>)]
    before: Option<String>,
    /// `false` lists the jobs without their `tasks` (a lighter answer, e.g. for the console);
    /// default `true`.
    #[param(value_type = Option<bool>)]
    tasks: Option<String>,
    /// `false` lists each job with `input_params: null` (with `tasks=false`, a list of summaries
    /// whose size does not grow with the jobs' scripts); default `true`.
    #[param(value_type = Option<bool>)]
    params: Option<String>,
    /// Only jobs whose input params contain this text (keys or values, ignoring case), at most
    /// 200 characters.
    #[param(max_length = 200)]
    q: Option<String>,
}

/// Lists the caller's jobs (every user's for admins), newest first, with their tasks unless
/// `tasks=false`, and how many match the filters. Answers 304 when `If-None-Match` holds the
/// current ETag.
#[utoipa::path(
    tag = "workflows",
    security(("bearer" = [])),
    params(
        ListParams,
        ("If-None-Match" = Option<String>, Header, description = "ETag of a previous answer"),
    ),
    responses(
        (status = 200, description = "The jobs", body = JobList, headers(("ETag" = String))),
        (status = 304, description = "Not modified since the given ETag"),
        (status = 400, description = "A query parameter is invalid", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
#[get("/api/workflows")]
pub async fn list_jobs(
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<ListParams>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let with_tasks = flag("tasks", query.tasks.as_deref())?;
    let with_params = flag("params", query.params.as_deref())?;
    let statuses = match query.status.as_deref() {
        None | Some("") => Vec::new(),
        Some(list) => list
            .split(',')
            .map(|s| {
                s.parse::<JobStatus>().map_err(|_| {
                    ApiError::bad_request(
                        "invalid_query",
                        format!(
                            "status: unknown status `{s}` (pending, running, completed, failed, cancelled)"
                        ),
                    )
                    .zh(format!(
                        "status：未知状态“{s}”（可选 pending、running、completed、failed、cancelled）"
                    ))
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let list = ListQuery {
        project_id: optional_id("projectId", query.project_id.as_deref())?,
        workflow_type: query.workflow_type.filter(|s| !s.is_empty()),
        statuses,
        before: optional_id("before", query.before.as_deref())?,
        limit: limit_of(query.limit.as_deref(), DEFAULT_LIST_LIMIT)?,
        without_params: !with_params,
        params_text: params_text(query.q)?,
    };
    let (jobs, counts) = futures::try_join!(
        state.engine.list(&caller.0, list.clone()),
        state.engine.count(&caller.0, list.clone()),
    )
    .map_err(|e| state.error(e))?;
    let mut answer = state
        .job_list(&caller.0, &jobs, with_tasks, i18n::of_request(&req))
        .await?
        .with_counts(&counts, &list.statuses);
    if !with_params {
        // With tasks, the params were read with them; they still stay off the wire.
        for job in &mut answer.jobs {
            job.job.input_params = Value::Null;
        }
    }
    let body = serde_json::to_vec(&answer).map_err(ApiError::internal)?;
    let body = Bytes::from(state.with_links(&req, &body).await);
    Ok(conditional_json(&req, body))
}

const MAX_SEARCH_CHARS: usize = 200;

/// The `q` of a job list: `None` when absent or blank, a 400 when too long.
fn params_text(q: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(q) = q.filter(|q| !q.trim().is_empty()) else {
        return Ok(None);
    };
    let chars = q.chars().count();
    if chars > MAX_SEARCH_CHARS {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("q: at most {MAX_SEARCH_CHARS} characters, got {chars}"),
        )
        .zh(format!(
            "q：最多 {MAX_SEARCH_CHARS} 个字符，实际 {chars} 个"
        )));
    }
    Ok(Some(q))
}

/// Query of the active-jobs list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ActiveParams {
    /// The project (required).
    #[param(value_type = i64, required = true)]
    project_id: Option<String>,
    /// 1–200, default 5.
    #[param(value_type = Option<u64>, minimum = 1, maximum = 200)]
    limit: Option<String>,
}

/// The caller's jobs in a project that are pending or running, or finished and not consumed,
/// with their tasks.
#[utoipa::path(
    tag = "workflows",
    security(("bearer" = [])),
    params(ActiveParams),
    responses(
        (status = 200, description = "The active jobs, newest first", body = JobList),
        (status = 400, description = "projectId is missing or a parameter is invalid", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
#[get("/api/workflows/active")]
pub async fn active_jobs(
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<ActiveParams>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let project_id = optional_id("projectId", query.project_id.as_deref())?.ok_or_else(|| {
        ApiError::bad_request("invalid_query", "projectId is required").zh("projectId 为必填项")
    })?;
    let limit = limit_of(query.limit.as_deref(), DEFAULT_ACTIVE_LIMIT)?;
    let jobs = state
        .engine
        .active(&caller.0, project_id, limit)
        .await
        .map_err(|e| state.error(e))?;
    let list = state
        .job_list(&caller.0, &jobs, true, i18n::of_request(&req))
        .await?;
    state
        .json_with_links(&req, actix_web::http::StatusCode::OK, &list)
        .await
}

/// Marks a finished job as consumed (idempotent).
#[utoipa::path(
    tag = "workflows",
    security(("bearer" = [])),
    params(("jobId" = i64, Path, description = "Job id")),
    responses(
        (status = 200, description = "Consumed", body = ConsumeResponse),
        (status = 400, description = "The job id is not an integer", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "No such job for this user", body = ErrorBody),
        (status = 409, description = "The job cannot be consumed in its state", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
#[post("/api/workflows/{jobId}/consume")]
pub async fn consume_job(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> Result<web::Json<ConsumeResponse>, ApiError> {
    state
        .engine
        .consume(&caller.0, path.into_inner())
        .await
        .map_err(|e| state.error(e))?;
    Ok(web::Json(ConsumeResponse { success: true }))
}

/// Cancels a job and its unfinished steps (idempotent); 409 when it already completed.
#[utoipa::path(
    tag = "workflows",
    security(("bearer" = [])),
    params(("jobId" = i64, Path, description = "Job id")),
    responses(
        (status = 200, description = "Cancelled", body = JobStatusChange),
        (status = 400, description = "The job id is not an integer", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "No such job for this user", body = ErrorBody),
        (status = 409, description = "The job already completed", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
#[post("/api/workflows/{jobId}/cancel")]
pub async fn cancel_job(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> Result<web::Json<JobStatusChange>, ApiError> {
    let job = state
        .engine
        .cancel(&caller.0, path.into_inner())
        .await
        .map_err(|e| state.error(e))?;
    Ok(web::Json(JobStatusChange {
        job_id: job.id,
        status: "cancelled".to_owned(),
    }))
}

/// Resumes a failed or cancelled job from its first unfinished step; 409 in any other state.
#[utoipa::path(
    tag = "workflows",
    security(("bearer" = [])),
    params(("jobId" = i64, Path, description = "Job id")),
    responses(
        (status = 200, description = "Resuming", body = JobStatusChange),
        (status = 400, description = "The job id is not an integer", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "No such job for this user", body = ErrorBody),
        (status = 409, description = "The job is not failed or cancelled", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
#[post("/api/workflows/{jobId}/resume")]
pub async fn resume_job(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> Result<web::Json<JobStatusChange>, ApiError> {
    let job = state
        .engine
        .resume(&caller.0, path.into_inner())
        .await
        .map_err(|e| state.error(e))?;
    Ok(web::Json(JobStatusChange {
        job_id: job.id,
        status: "resuming".to_owned(),
    }))
}

pub(crate) fn optional_id(name: &str, raw: Option<&str>) -> Result<Option<i64>, ApiError> {
    match raw {
        None => Ok(None),
        Some(text) => lenient_integer(&Value::from(text))
            .map(Some)
            .ok_or_else(|| {
                ApiError::bad_request("invalid_query", format!("{name} must be an integer"))
                    .zh(format!("{name} 必须是整数"))
            }),
    }
}

/// A boolean query parameter that defaults to `true`.
fn flag(name: &str, raw: Option<&str>) -> Result<bool, ApiError> {
    match raw {
        None | Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(_) => Err(ApiError::bad_request(
            "invalid_query",
            format!("{name} must be true or false"),
        )
        .zh(format!("{name} 必须是 true 或 false"))),
    }
}

pub(crate) fn limit_of(raw: Option<&str>, default: u64) -> Result<u64, ApiError> {
    match raw {
        None => Ok(default),
        Some(text) => match lenient_integer(&Value::from(text)).and_then(|n| u64::try_from(n).ok())
        {
            Some(limit) if (1..=MAX_LIST_LIMIT).contains(&limit) => Ok(limit),
            _ => Err(ApiError::bad_request(
                "invalid_query",
                format!("limit must be an integer between 1 and {MAX_LIST_LIMIT}"),
            )
            .zh(format!("limit 必须是 1 到 {MAX_LIST_LIMIT} 之间的整数"))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::IF_NONE_MATCH;
    use nosyntask_domain::Viewer;
    use serde_json::json;

    fn caller() -> Caller {
        Caller(Viewer::user(1))
    }

    #[test]
    fn start_body_fields_are_checked_by_name() {
        let cases = [
            (json!([]), "JSON object"),
            (json!({"projectId": 1}), "workflowType"),
            (json!({"workflowType": "x"}), "projectId"),
            (
                json!({"workflowType": "x", "projectId": "abc"}),
                "projectId",
            ),
            (json!({"workflowType": "x", "projectId": 0}), "projectId"),
            (json!({"workflowType": "x", "projectId": "-2"}), "projectId"),
            (
                json!({"workflowType": "x", "projectId": 1, "params": 3}),
                "params",
            ),
            (
                json!({"workflowType": "x", "projectId": 1, "idempotencyKey": 3}),
                "idempotencyKey",
            ),
        ];
        for (body, field) in cases {
            let err = parse_start(caller(), body.clone(), None).unwrap_err();
            assert!(err.message.contains(field), "{body}: {}", err.message);
        }
    }

    #[test]
    fn idempotency_key_from_body_or_header() {
        let body = json!({"workflowType": "x", "projectId": "7", "params": {"a": 1}});
        let request = parse_start(caller(), body.clone(), Some("k1".into())).unwrap();
        assert_eq!(request.idempotency_key.as_deref(), Some("k1"));
        assert_eq!(request.project_id, 7);
        let mut with_key = body.clone();
        with_key["idempotencyKey"] = json!("k2");
        let request = parse_start(caller(), with_key.clone(), None).unwrap();
        assert_eq!(request.idempotency_key.as_deref(), Some("k2"));
        assert!(parse_start(caller(), with_key, Some("other".into())).is_err());
    }

    #[test]
    fn limits_and_ids_are_validated() {
        assert_eq!(limit_of(None, 50).unwrap(), 50);
        assert_eq!(limit_of(Some("200"), 50).unwrap(), 200);
        for bad in ["0", "201", "-1", "ten"] {
            assert!(limit_of(Some(bad), 50).is_err(), "{bad}");
        }
        assert_eq!(optional_id("before", Some("12")).unwrap(), Some(12));
        assert!(optional_id("before", Some("x")).is_err());
        assert!(optional_id("before", Some("")).is_err());
        assert!(limit_of(Some(""), 50).is_err());
    }

    #[test]
    fn etags_match_lists_and_weak_forms() {
        let etag = etag_of(b"{}");
        assert_eq!(etag, etag_of(b"{}"));
        assert_ne!(etag, etag_of(b"{ }"));
        let req = actix_web::test::TestRequest::default()
            .insert_header((IF_NONE_MATCH, format!("\"zzz\", W/{etag}")))
            .to_http_request();
        assert!(if_none_match(&req, &etag));
    }
}
