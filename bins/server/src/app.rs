//! Building the actix `App`: shared state, routes by role, extractor error handlers, the fallback
//! that tells 404 from 405, static artifacts and the API docs.

use std::sync::Arc;
use std::time::Duration;

use actix_cors::Cors;
use actix_web::body::MessageBody;
use actix_web::dev::{ResourceDef, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header::{
    ACCEPT, ACCEPT_LANGUAGE, AUTHORIZATION, CONTENT_TYPE, ETAG, IF_NONE_MATCH, LOCATION,
    RETRY_AFTER,
};
use actix_web::{App, Error, HttpRequest, HttpResponse, middleware, web};
use futures::StreamExt;
use nosyntask_artifacts::Artifacts;
use nosyntask_domain::{Job as DomainJob, Viewer};
use nosyntask_engine::ports::ModelCatalog;
use nosyntask_engine::{Engine, EngineError, WorkflowDefinition};
use tokio_util::sync::CancellationToken;
use utoipa::openapi::OpenApi;
use utoipa_actix_web::AppExt;
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_swagger_ui::SwaggerUi;

use crate::auth::JwtAuth;
use crate::config::Role;
use crate::edge::{DEFAULT_BODY_READ_TIMEOUT, EdgeConfig};
use crate::error::{self, ApiError};
use crate::i18n::Lang;
use crate::middleware::HttpMetrics;
use crate::openapi;
use crate::reads::JobReads;
use crate::routes::{admin, console, events, files, series, system, workflows};
use crate::views::{Job, JobList, JobSummary};

/// Jobs of a list whose tasks are read at the same time.
const LIST_READS_AT_ONCE: usize = 8;

/// Event stream timing.
#[derive(Debug, Clone, Copy)]
pub struct EventTiming {
    /// How often a stream re-reads its job.
    pub poll: Duration,
    /// Longest silence before a keep-alive comment.
    pub keepalive: Duration,
}

/// The address a request reached the server at (`http://host:port`, following `Forwarded` /
/// `X-Forwarded-*` behind a proxy): media URLs of job reads are made absolute with it when no
/// `artifacts.public_base_url` is configured.
pub fn own_base(req: &HttpRequest) -> String {
    let info = req.connection_info();
    format!("{}://{}", info.scheme(), info.host())
}

/// What handlers share.
pub struct AppState {
    pub engine: Engine,
    /// Coalesced job reads (status polling, event streams).
    pub reads: Arc<JobReads>,
    /// Live watching of jobs, shared by every event stream of the process.
    pub watch: Arc<crate::watch::JobWatch>,
    pub models: Arc<dyn ModelCatalog>,
    /// Generated media: served under `/files/`, and the URLs job reads carry.
    pub artifacts: Arc<Artifacts>,
    pub events: EventTiming,
    /// `Retry-After` of a quota answer.
    pub quota_retry_after_secs: u64,
    /// Fires when the server starts shutting down: event streams end, readiness fails.
    pub shutdown: CancellationToken,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// `json` with its artifact references replaced by URLs that load now for this request's
    /// reader (absolute at `public_base_url`, or at the address the request reached).
    pub async fn with_links(&self, req: &HttpRequest, json: &[u8]) -> Vec<u8> {
        let own = own_base(req);
        nosyntask_artifacts::links::rewrite_json(&self.artifacts, json, Some(&own)).await
    }

    /// A JSON response of `value` with working artifact URLs.
    pub async fn json_with_links<T: serde::Serialize>(
        &self,
        req: &HttpRequest,
        status: actix_web::http::StatusCode,
        value: &T,
    ) -> Result<HttpResponse, ApiError> {
        let body = serde_json::to_vec(value).map_err(ApiError::internal)?;
        let body = self.with_links(req, &body).await;
        Ok(HttpResponse::build(status)
            .content_type("application/json")
            .body(body))
    }

    /// The HTTP error of an engine error.
    pub fn error(&self, err: EngineError) -> ApiError {
        ApiError::from_engine(err, self.quota_retry_after_secs)
    }

    /// The definition of a registered workflow type.
    pub fn definition(&self, workflow_type: &str) -> Option<&WorkflowDefinition> {
        self.engine
            .registry()
            .get(workflow_type)
            .map(|definition| definition.as_ref())
    }

    /// List views of jobs, with their tasks when `with_tasks` (read a few jobs at a time; a job
    /// pruned in between is left out).
    pub async fn job_list(
        &self,
        viewer: &Viewer,
        jobs: &[DomainJob],
        with_tasks: bool,
        lang: Lang,
    ) -> Result<JobList, ApiError> {
        if !with_tasks {
            let jobs = jobs
                .iter()
                .map(|job| JobSummary::new(job, self.definition(&job.workflow_type), lang).into())
                .collect();
            return Ok(JobList::of(jobs));
        }
        let reads = futures::stream::iter(jobs.iter().map(|job| self.engine.get(viewer, job.id)))
            .buffered(LIST_READS_AT_ONCE)
            .collect::<Vec<_>>()
            .await;
        let mut listed = Vec::with_capacity(reads.len());
        for read in reads {
            match read {
                Ok(job) => listed
                    .push(Job::new(&job, self.definition(&job.job.workflow_type), lang).into()),
                Err(EngineError::NotFound(_)) => {}
                Err(err) => return Err(self.error(err)),
            }
        }
        Ok(JobList::of(listed))
    }
}

/// Everything an app instance is built from; cloned into each HTTP worker thread.
#[derive(Clone)]
pub struct AppParts {
    pub state: web::Data<AppState>,
    pub auth: web::Data<JwtAuth>,
    pub http_metrics: web::Data<HttpMetrics>,
    pub edge: web::Data<EdgeConfig>,
    pub role: Role,
    pub body_limit_bytes: usize,
    /// CORS origins (`*` for any); empty: no CORS.
    pub cors_allowed_origins: Arc<Vec<String>>,
    routes: Arc<RouteTable>,
    openapi: Arc<OpenApi>,
}

impl AppParts {
    pub fn new(
        state: AppState,
        auth: JwtAuth,
        role: Role,
        body_limit_bytes: usize,
        cors_allowed_origins: Vec<String>,
    ) -> Self {
        let openapi = openapi::document();
        let served = route_doc(role);
        AppParts {
            state: web::Data::new(state),
            auth: web::Data::new(auth),
            http_metrics: web::Data::new(HttpMetrics::new()),
            edge: web::Data::new(EdgeConfig {
                body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            }),
            role,
            body_limit_bytes,
            cors_allowed_origins: Arc::new(cors_allowed_origins),
            routes: Arc::new(RouteTable::from_openapi(&served)),
            openapi: Arc::new(openapi),
        }
    }

    /// Sets the edge's limits (default: [`DEFAULT_BODY_READ_TIMEOUT`] to read a body).
    pub fn with_edge(mut self, edge: EdgeConfig) -> Self {
        self.edge = web::Data::new(edge);
        self
    }
}

/// Registers the authenticated API routes. Order matters: fixed segments (`types`, `active`)
/// before `{jobId}`.
pub fn api_routes(cfg: &mut ServiceConfig) {
    cfg.service(workflows::workflow_types)
        .service(workflows::active_jobs)
        .service(workflows::list_jobs)
        .service(workflows::start_workflow)
        .service(events::job_events)
        .service(workflows::get_job)
        .service(workflows::consume_job)
        .service(workflows::cancel_job)
        .service(workflows::resume_job)
        .service(system::models)
        .service(admin::admin_stats)
        .service(series::model_series);
}

/// Registers health, readiness and metrics (served in every role).
pub fn system_routes(cfg: &mut ServiceConfig) {
    cfg.service(system::healthz)
        .service(system::readyz)
        .service(system::metrics);
}

/// The OpenAPI paths a process of `role` serves.
fn route_doc(role: Role) -> OpenApi {
    let app = App::new().into_utoipa_app().configure(system_routes);
    let app = if role.serves_api() {
        app.configure(api_routes)
    } else {
        app
    };
    app.split_for_parts().1
}

/// Builds the app of one HTTP worker thread.
pub fn build_app(
    parts: AppParts,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = Error,
        InitError = (),
    >,
> {
    let routes = parts.routes;
    let app = App::new()
        .app_data(parts.state.clone())
        .app_data(parts.auth.clone())
        .app_data(parts.http_metrics.clone())
        .app_data(parts.edge.clone())
        .app_data(
            web::JsonConfig::default()
                .limit(parts.body_limit_bytes)
                // A body must say it is JSON (`application/json`, any parameters, or a `+json`
                // type): without this an absent or unparsable Content-Type was parsed as JSON.
                .content_type_required(true)
                .error_handler(error::json_error),
        )
        .app_data(web::QueryConfig::default().error_handler(error::query_error))
        .app_data(web::PathConfig::default().error_handler(error::path_error))
        .app_data(web::PayloadConfig::default().limit(parts.body_limit_bytes))
        .into_utoipa_app()
        .configure(system_routes);
    let app = if parts.role.serves_api() {
        app.configure(api_routes)
    } else {
        app
    };
    let mut app = app.into_app();
    if parts.role.serves_api() {
        let openapi = Arc::unwrap_or_clone(parts.openapi);
        app = app
            .configure(console::routes)
            .route("/docs", web::get().to(docs_redirect))
            .service(SwaggerUi::new("/docs/{_:.*}").url("/api/openapi.json", openapi))
            .service(
                web::resource("/files/{key:.*}")
                    .route(web::get().to(files::serve))
                    .route(web::head().to(files::serve)),
            );
    }
    let cors = !parts.cors_allowed_origins.is_empty();
    app.default_service(web::to(move |req: HttpRequest| {
        let routes = Arc::clone(&routes);
        async move { Err::<HttpResponse, _>(routes.fallback(&req)) }
    }))
    .wrap(middleware::from_fn(crate::edge::guard))
    // Outside the guard, so the guard's own answers follow the request's language too.
    .wrap(middleware::from_fn(crate::i18n::scope))
    .wrap(middleware::Condition::new(
        cors,
        cors_middleware(&parts.cors_allowed_origins),
    ))
    .wrap(middleware::from_fn(crate::middleware::observe))
    // gzip, br or zstd as the client accepts, outermost so that it encodes the final answer
    // (`observe` may replace an error body). Event streams too: the encoder flushes whenever
    // the stream pauses, so no event waits.
    .wrap(middleware::Compress::default())
}

/// CORS for the configured origins (validated by the configuration).
fn cors_middleware(origins: &[String]) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods(["GET", "POST"])
        .allowed_headers([
            AUTHORIZATION,
            CONTENT_TYPE,
            IF_NONE_MATCH,
            ACCEPT,
            ACCEPT_LANGUAGE,
        ])
        .allowed_header("idempotency-key")
        .expose_headers([ETAG, RETRY_AFTER])
        .max_age(3600);
    if origins.iter().any(|o| o == "*") {
        cors = cors.allow_any_origin().send_wildcard();
    } else {
        for origin in origins {
            cors = cors.allowed_origin(origin);
        }
    }
    cors
}

async fn docs_redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((LOCATION, "/docs/"))
        .finish()
}

/// The served routes by pattern, to answer 405 (with `Allow`) for a known path with another
/// method, and 404 for an unknown path.
#[derive(Debug)]
struct RouteTable {
    routes: Vec<(ResourceDef, Vec<&'static str>)>,
}

impl RouteTable {
    fn from_openapi(doc: &OpenApi) -> Self {
        let routes = doc
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let methods = [
                    ("GET", item.get.is_some()),
                    ("POST", item.post.is_some()),
                    ("PUT", item.put.is_some()),
                    ("PATCH", item.patch.is_some()),
                    ("DELETE", item.delete.is_some()),
                ]
                .into_iter()
                .filter_map(|(method, present)| present.then_some(method))
                .collect();
                (ResourceDef::new(path.as_str()), methods)
            })
            .collect();
        RouteTable { routes }
    }

    fn fallback(&self, req: &HttpRequest) -> ApiError {
        let mut allowed: Vec<&str> = self
            .routes
            .iter()
            .filter(|(def, _)| def.is_match(req.path()))
            .flat_map(|(_, methods)| methods.iter().copied())
            .collect();
        allowed.sort_unstable();
        allowed.dedup();
        if allowed.is_empty() {
            ApiError::not_found(format!("no route for {} {}", req.method(), req.path()))
        } else {
            ApiError::method_not_allowed(allowed.join(", "))
        }
    }
}
