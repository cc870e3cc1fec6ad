//! The HTTP handlers, thin: extract, call one engine method, convert to a view; and where each
//! is registered (the documented API and system routes, then the console, docs and files).

use actix_web::http::header::LOCATION;
use actix_web::{HttpResponse, web};
use utoipa::openapi::OpenApi;
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_swagger_ui::SwaggerUi;

pub mod admin;
pub mod console;
pub mod events;
pub mod files;
pub mod series;
pub mod system;
pub mod webhooks;
pub mod workflows;

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
        .service(webhooks::webhook_deliveries)
        .service(webhooks::redeliver)
        .service(series::model_series);
}

/// Registers health, readiness and metrics (served in every role).
pub fn system_routes(cfg: &mut ServiceConfig) {
    cfg.service(system::healthz)
        .service(system::readyz)
        .service(system::metrics);
}

/// Registers what an API process serves beside the documented routes: the web console, the API
/// docs (with the document at `/api/openapi.json`) and the artifact files.
pub fn pages(cfg: &mut web::ServiceConfig, openapi: OpenApi) {
    cfg.configure(console::routes)
        .route("/docs", web::get().to(docs_redirect))
        .service(SwaggerUi::new("/docs/{_:.*}").url("/api/openapi.json", openapi))
        .service(
            web::resource("/files/{key:.*}")
                .route(web::get().to(files::serve))
                .route(web::head().to(files::serve)),
        );
}

async fn docs_redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((LOCATION, "/docs/"))
        .finish()
}
