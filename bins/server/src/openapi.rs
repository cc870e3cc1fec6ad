//! The OpenAPI 3.1 document, collected from the handlers' `#[utoipa::path]` annotations.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix_web::App;
use nosyntask_domain::ParamsSchema;
use nosyntask_engine::ports::ModelKind;
use nosyntask_providers::{Catalog, default_models};
use serde_json::{Value, json};
use utoipa::openapi::OpenApi as Document;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;

use crate::routes::{api_routes, system_routes};

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

/// The configured models' names by the list name model params refer to (see
/// `nosyntask_workflows::model_list`): what the document lists as those params' `enum`.
#[derive(Debug, Clone, Default)]
pub struct ModelLists(BTreeMap<String, Vec<String>>);

impl ModelLists {
    pub fn of<'a>(models: impl IntoIterator<Item = (&'a str, ModelKind)>) -> Self {
        let mut lists: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, kind) in models {
            lists
                .entry(nosyntask_workflows::model_list(kind))
                // An empty name stands for the kind's default model.
                .or_insert_with(|| vec![String::new()])
                .push(name.to_owned());
        }
        ModelLists(lists)
    }

    /// The models of the embedded defaults, which the committed document describes.
    pub fn defaults() -> Self {
        let models = default_models();
        Self::of(models.iter().map(|m| (m.name.as_str(), m.kind)))
    }
}

/// The full document (every route, whatever the role of this process), its model params listing
/// `models`.
pub fn document(models: &ModelLists) -> Document {
    let mut document = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(system_routes)
        .configure(api_routes)
        .split_for_parts()
        .1;
    type_start_requests(&mut document, models);
    document
}

/// `StartWorkflowRequest` as one schema per workflow type (`oneOf` by `workflowType`), each with
/// that workflow's params schema, the one `GET /api/workflows/types` serves: a client generated
/// from the document (or a fuzzer) knows what each workflow needs.
fn type_start_requests(document: &mut Document, models: &ModelLists) {
    // Params schemas do not depend on the configured models (their values are listed below): an
    // empty catalog will do.
    let registry = nosyntask_workflows::registry(Arc::new(Catalog::new(None)));
    let Some(components) = document.components.as_mut() else {
        return;
    };
    let Some(base) = components
        .schemas
        .get(START)
        .and_then(|schema| serde_json::to_value(schema).ok())
    else {
        return;
    };
    let mut branches = Vec::new();
    let mut mapping = serde_json::Map::new();
    for definition in registry.all() {
        let name = format!("{START}_{}", definition.workflow_type);
        let reference = format!("#/components/schemas/{name}");
        let mut schema = base.clone();
        let params = documented_params(listing(&definition.params, models));
        // `projectId` must be there, if only as `null` (a job outside any project).
        let mut required = vec![json!("workflowType"), json!("projectId")];
        if params["required"].as_array().is_some_and(|r| !r.is_empty())
            || params.get("anyOf").is_some()
        {
            required.push(json!("params"));
        }
        schema["description"] = json!(format!(
            "`POST /api/workflows` body of `{}` ({}).",
            definition.workflow_type, definition.name
        ));
        schema["properties"]["workflowType"] =
            json!({"type": "string", "enum": [definition.workflow_type]});
        schema["properties"]["params"] = params;
        schema["required"] = Value::Array(required);
        let Ok(schema) = serde_json::from_value::<RefOr<Schema>>(schema) else {
            return;
        };
        components.schemas.insert(name, schema);
        mapping.insert(definition.workflow_type.clone(), json!(reference));
        branches.push(json!({"$ref": reference}));
    }
    let one_of = json!({
        "description": "`POST /api/workflows` body: one schema per workflow type.",
        "oneOf": branches,
        "discriminator": {"propertyName": "workflowType", "mapping": mapping},
    });
    if let Ok(schema) = serde_json::from_value::<RefOr<Schema>>(one_of) {
        components.schemas.insert(START.to_owned(), schema);
    }
}

const START: &str = "StartWorkflowRequest";

/// A params schema whose listed params (see `ParamSpec::listed_in`) take one of their list's
/// values: the server refuses any other.
fn listing(params: &ParamsSchema, models: &ModelLists) -> Value {
    let mut schema = params.to_json_schema();
    for spec in params.params() {
        if let Some(values) = spec.listed_in.as_ref().and_then(|list| models.0.get(list)) {
            schema["properties"][&spec.name]["enum"] = json!(values);
        }
    }
    schema
}

/// A workflow's params schema as the document states it: what the server accepts, exactly.
/// An optional param may be `null` (the server reads it as absent); "one of a, b" groups are
/// spelled out ([`spelled_out_any_of`]).
fn documented_params(params: Value) -> Value {
    let mut params = spelled_out_any_of(params);
    match params.get_mut("anyOf").and_then(Value::as_array_mut) {
        Some(branches) => branches.iter_mut().for_each(nullable_optionals),
        None => nullable_optionals(&mut params),
    }
    params
}

fn nullable_optionals(schema: &mut Value) {
    let required: Vec<String> = schema["required"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|n| n.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let Some(properties) = schema["properties"].as_object_mut() else {
        return;
    };
    for (name, property) in properties.iter_mut() {
        if !required.contains(name)
            && let Some(kind) = property["type"].as_str()
        {
            property["type"] = json!([kind, "null"]);
            if let Some(values) = property["enum"].as_array_mut() {
                values.push(Value::Null);
            }
        }
    }
}

/// A params schema whose `anyOf: [{required: [a]}, {required: [b]}]` ("one of a, b") is spelled
/// out as whole branches: the document's schema model keeps an object schema's properties or its
/// `anyOf`, not both. In each branch the named param must be present as the server checks it
/// (not blank, not an empty list).
fn spelled_out_any_of(mut params: Value) -> Value {
    let Some(Value::Array(groups)) = params.as_object_mut().and_then(|p| p.remove("anyOf")) else {
        return params;
    };
    let branches: Vec<Value> = groups
        .iter()
        .filter_map(|group| group["required"][0].as_str())
        .map(|name| {
            let mut branch = params.clone();
            if let Some(required) = branch["required"].as_array_mut() {
                required.push(json!(name));
            }
            let property = &mut branch["properties"][name];
            match property["type"].as_str() {
                Some("string") => property["pattern"] = json!("\\S"),
                Some("array") => property["minItems"] = json!(1),
                _ => {}
            }
            branch
        })
        .collect();
    json!({ "anyOf": branches })
}

/// The document as YAML, as committed in `openapi.yaml`.
pub fn yaml() -> Result<String, String> {
    document(&ModelLists::defaults())
        .to_yaml()
        .map_err(|err| err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model param lists the configured models of its kind (and the empty name and `null`
    /// that stand for the default): the server refuses every other name.
    #[test]
    fn model_params_list_the_configured_models() {
        let lists = ModelLists::of([("gpt-4o", ModelKind::Text), ("flux", ModelKind::Image)]);
        let document = serde_json::to_value(document(&lists)).unwrap();
        let schemas = &document["components"]["schemas"];
        let params =
            &schemas["StartWorkflowRequest_scene_image_generation"]["properties"]["params"];
        let branch = params.get("anyOf").map_or(params, |branches| &branches[0]);
        assert_eq!(
            branch["properties"]["imageModel"]["enum"],
            json!(["", "flux", null])
        );
        assert_eq!(
            branch["properties"]["textModel"]["enum"],
            json!(["", "gpt-4o", null])
        );
        assert_eq!(
            branch["properties"]["modelName"]["enum"],
            json!(["", "flux", null])
        );
        // No video model configured: nothing to list, and `videoModel` of scene_video is open.
        let video = &schemas["StartWorkflowRequest_scene_video"]["properties"]["params"];
        let video = video.get("anyOf").map_or(video, |branches| &branches[0]);
        assert!(video["properties"]["videoModel"].get("enum").is_none());
    }
}
