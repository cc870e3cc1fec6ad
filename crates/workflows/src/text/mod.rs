//! NanoStory's one-question text workflows: `script_only` (剧本生成), `camera_run_generation`
//! (精细运镜生成) and `smart_parse` (AI 智能解析). Each asks the text model one JSON question and
//! returns the answer's fields; they share the step shape and the model handling here.

pub(crate) mod camera_run;
pub(crate) mod script;
pub(crate) mod smart_parse;

use std::sync::Arc;

use nosyntask_domain::ParamsSchema;
use nosyntask_engine::ports::{ModelCatalog, ModelKind};
use nosyntask_engine::{StepHandler, WorkflowDefinition};

use crate::common::models::{self, Uses};
use crate::common::steps::{TEXT_TIMEOUT, single_step};

/// The models these workflows call.
const USES: Uses = Uses::only(ModelKind::Text);

/// What a one-step text workflow is called and what its task is about.
struct Names {
    workflow: &'static str,
    /// NanoStory's display name.
    name: &'static str,
    task_type: &'static str,
    target_type: &'static str,
    /// The param whose value is the task's `target_id`.
    target_id_param: Option<&'static str>,
}

/// A one-step text workflow: `params` plus the text model fields, `handler` as its step.
fn definition(
    names: Names,
    params: ParamsSchema,
    handler: Arc<dyn StepHandler>,
    models: Arc<dyn ModelCatalog>,
) -> WorkflowDefinition {
    let Names {
        workflow,
        name,
        task_type,
        target_type,
        target_id_param,
    } = names;
    let params = models::declare(params, USES);
    let mut step = single_step(task_type, target_type, handler, &params, TEXT_TIMEOUT);
    if let Some(param) = target_id_param {
        step = step.target_id_param(param);
    }
    WorkflowDefinition::new(workflow, name, params)
        .step(step)
        .prepare(models::resolver(models, USES))
}
