//! The OpenAPI 3.1 document, collected from the handlers' `#[utoipa::path]` annotations.

use actix_web::App;
use utoipa::openapi::OpenApi as Document;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;

use crate::app::{api_routes, system_routes};

/// The document's fixed parts; paths and schemas come from the registered routes.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "nosyntask",
        description = "The durable workflow engine of NanoStory: start AI workflow jobs, follow \
            their steps and progress, consume their results. Every `/api` route needs \
            `Authorization: Bearer <JWT>` (HS256, claim `userId`). Every error answer is \
            `{\"message\", \"code\"}`.",
        license(name = "MIT", identifier = "MIT"),
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "workflows", description = "Workflow jobs and their tasks"),
        (name = "models", description = "Configured AI models"),
        (name = "admin", description = "Engine statistics for admins (token role `admin`)"),
        (name = "system", description = "Health, readiness and metrics"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The full document (every route, whatever the role of this process).
pub fn document() -> Document {
    App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(system_routes)
        .configure(api_routes)
        .split_for_parts()
        .1
}

/// The document as YAML, as committed in `openapi.yaml`.
pub fn yaml() -> Result<String, String> {
    document().to_yaml().map_err(|err| err.to_string())
}
