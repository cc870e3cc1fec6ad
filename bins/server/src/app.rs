//! Building the actix `App`: the shared state and the routes by role (from [`crate::routes`]),
//! extractor error handlers, the middleware stack and the fallback that tells 404 from 405.

use std::sync::Arc;

use actix_cors::Cors;
use actix_web::body::MessageBody;
use actix_web::dev::{ResourceDef, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header::{
    ACCEPT, ACCEPT_LANGUAGE, AUTHORIZATION, CONTENT_TYPE, ETAG, IF_NONE_MATCH, RETRY_AFTER,
};
use actix_web::{App, Error, HttpRequest, HttpResponse, middleware, web};
use utoipa::openapi::OpenApi;
use utoipa_actix_web::AppExt;

use crate::auth::JwtAuth;
use crate::config::Role;
use crate::edge::{DEFAULT_BODY_READ_TIMEOUT, EdgeConfig};
use crate::error::{self, ApiError};
use crate::middleware::HttpMetrics;
use crate::openapi;
use crate::routes::{self, api_routes, system_routes};
pub use crate::state::{AppState, EventTiming, own_base};

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
        let models = state.models.list();
        let openapi = openapi::document(&openapi::ModelLists::of(
            models.iter().map(|m| (m.name.as_str(), m.kind)),
        ));
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
        app = app.configure(|cfg| routes::pages(cfg, openapi));
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
