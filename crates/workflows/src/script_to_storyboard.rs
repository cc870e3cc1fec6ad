//! `script_to_storyboard` (剧本转分镜): three steps that pass results along. Step 0 writes the
//! storyboard; steps 1 and 2 read step 0's shots (from the context's `previousResults`) and
//! extract the characters and the locations.

use std::sync::Arc;

use nosyntask_domain::ParamsSchema;
use nosyntask_engine::ports::{ModelCatalog, ModelKind};
use nosyntask_engine::{StepContext, StepDefinition, WorkflowDefinition};
use serde_json::{Map, Value, json};

use crate::common::input::declared_params;
use crate::common::models::{self, Uses};
use crate::common::params;
use crate::common::steps::{ATTEMPTS, TEXT_TIMEOUT};
use crate::extraction::characters::Characters;
use crate::extraction::scenes::Scenes;
use crate::extraction::{self, Extraction};
use crate::storyboard::StoryboardHandler;

/// The workflow type.
pub const WORKFLOW: &str = "script_to_storyboard";

/// Params: **scriptContent**, textModel (alias modelName), think.
pub(crate) fn params() -> ParamsSchema {
    let schema = ParamsSchema::new()
        .param(params::script("scriptContent").required())
        .param(params::think(None));
    models::declare(schema, Uses::only(ModelKind::Text))
}

pub(crate) fn definition(models: Arc<dyn ModelCatalog>) -> WorkflowDefinition {
    let params = params();
    let storyboard = StepDefinition::new(
        "storyboard",
        "script",
        Arc::new(StoryboardHandler {
            models: models.clone(),
        }),
    )
    .input(declared_params(&params))
    .max_attempts(ATTEMPTS)
    .timeout(TEXT_TIMEOUT);
    WorkflowDefinition::new(WORKFLOW, "剧本转分镜", params)
        .step(storyboard)
        .step(from_shots::<Characters>(models.clone()))
        .step(from_shots::<Scenes>(models.clone()))
        .prepare(models::resolver(models, Uses::only(ModelKind::Text)))
}

/// An extraction step over step 0's shots.
fn from_shots<E: Extraction>(models: Arc<dyn ModelCatalog>) -> StepDefinition {
    extraction::step::<E>(models).input(shots_input)
}

/// `{scenes: <step 0's scenes>, modelName}`.
pub(crate) fn shots_input(ctx: &StepContext) -> Value {
    let mut input = Map::new();
    let shots = ctx
        .previous_results
        .get(&0)
        .and_then(|result| result.get("scenes"))
        .cloned()
        .unwrap_or_else(|| json!([]));
    input.insert("scenes".to_owned(), shots);
    for key in ["modelName", "think"] {
        if let Some(value) = ctx.job_params.get(key).filter(|m| !m.is_null()) {
            input.insert(key.to_owned(), value.clone());
        }
    }
    Value::Object(input)
}
