//! Running workflow steps directly, as a worker would, without a database.

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use nosyntask_domain::TaskError;
use nosyntask_engine::ports::ModelCatalog;
use nosyntask_engine::{
    CancellationToken, Checkpoints, Metrics, ProgressReporter, ProgressSlot, Registry, StepContext,
    StepRun,
};
use nosyntask_providers::{Catalog, LocalArtifacts, ModelConfig, default_models};
use serde_json::Value;

/// The models of `configs`, storing media under `dir`.
pub fn catalog(configs: &[ModelConfig], dir: &Path) -> Arc<Catalog> {
    let artifacts = Arc::new(LocalArtifacts::new(dir, "/files"));
    Arc::new(Catalog::from_config(configs, artifacts, Arc::new(Metrics::new())).unwrap())
}

/// The default configuration: simulated text, image and video models.
pub fn simulated(dir: &Path) -> Arc<dyn ModelCatalog> {
    catalog(&default_models(), dir)
}

/// What one step run returned, and how far its progress got.
pub struct Outcome {
    pub result: Result<Value, TaskError>,
    pub progress: i32,
    pub checkpoint: Option<Value>,
    pub input: Value,
}

/// Runs step `step` of `workflow` with validated `params`, the results of earlier steps and a
/// checkpoint left by an earlier attempt.
pub async fn run_step(
    registry: &Registry,
    workflow: &str,
    params: &Value,
    step: usize,
    previous: &BTreeMap<i32, Value>,
    checkpoint: Option<Value>,
) -> Outcome {
    let definition = registry
        .get(workflow)
        .unwrap_or_else(|| panic!("{workflow} is registered"));
    let job_params = definition
        .params
        .validate(params)
        .unwrap_or_else(|err| panic!("{workflow} params: {err}"));
    let step_definition = &definition.steps[step];
    let ctx = StepContext {
        job_params,
        previous_results: previous.clone(),
        user_id: 1,
        project_id: 7,
        step_index: step as i32,
    };
    if let Some(fan_out) = &step_definition.fan_out {
        return run_items(definition, step, ctx, fan_out, checkpoint).await;
    }
    let input = (step_definition.build_input)(&ctx);
    let slot = ProgressSlot::new();
    let checkpoints = Checkpoints::in_memory(checkpoint);
    let run = StepRun {
        input: input.clone(),
        progress: ProgressReporter::new(slot.clone()),
        checkpoint: checkpoints.clone(),
        cancel: CancellationToken::new(),
        job_id: 1,
        task_id: 1,
        step_index: step as i32,
        attempt: 1,
        user_id: 1,
        project_id: 7,
    };
    let result = step_definition.handler.run(run).await;
    Outcome {
        result,
        progress: slot.current(),
        checkpoint: checkpoints.last().await,
        input,
    }
}

/// Runs a fan-out step as the engine's coordinator does, one item after the other: each item's
/// handler run with the item's input and its own checkpoint (`checkpoint`, if given, is the list
/// of them an earlier run returned), a failed item's place `{"error": message}`, then the step's
/// summary. The outcome's checkpoint is the items' list, its progress their average.
async fn run_items(
    definition: &nosyntask_engine::WorkflowDefinition,
    step: usize,
    mut ctx: StepContext,
    fan_out: &nosyntask_engine::FanOut,
    checkpoint: Option<Value>,
) -> Outcome {
    if let Some(prepare) = &definition.prepare {
        ctx.job_params = prepare(ctx.job_params).unwrap_or_else(|err| panic!("prepare: {err}"));
    }
    let step_definition = &definition.steps[step];
    let items = (fan_out.items)(&ctx);
    let (mut results, mut checkpoints, mut progress) = (Vec::new(), Vec::new(), 0);
    for (index, item) in items.iter().enumerate() {
        let slot = ProgressSlot::new();
        let earlier = checkpoint.as_ref().and_then(|c| c.get(index)).cloned();
        let checkpoints_of_item = Checkpoints::in_memory(earlier.filter(|c| !c.is_null()));
        let run = StepRun {
            input: item.clone(),
            progress: ProgressReporter::new(slot.clone()),
            checkpoint: checkpoints_of_item.clone(),
            cancel: CancellationToken::new(),
            job_id: 1,
            task_id: 2 + index as i64,
            step_index: step as i32,
            attempt: 1,
            user_id: 1,
            project_id: 7,
        };
        let outcome = step_definition.handler.run(run).await;
        // A completed item counts 100 %, as the coordinator counts it.
        progress += if outcome.is_ok() { 100 } else { slot.current() };
        results.push(outcome.unwrap_or_else(|err| serde_json::json!({"error": err.to_string()})));
        checkpoints.push(checkpoints_of_item.last().await.unwrap_or(Value::Null));
    }
    let result = match &fan_out.summarize {
        Some(summarize) => summarize(&ctx.job_params, results),
        None => Ok(Value::Array(results)),
    };
    Outcome {
        result,
        progress: if items.is_empty() {
            100
        } else {
            progress / items.len() as i32
        },
        checkpoint: Some(Value::Array(checkpoints)),
        input: Value::Array(items),
    }
}

/// Runs every step of `workflow` in order, each seeing the earlier results; returns them.
pub async fn run_workflow(registry: &Registry, workflow: &str, params: &Value) -> Vec<Value> {
    let steps = registry.get(workflow).unwrap().steps.len();
    let mut previous = BTreeMap::new();
    for step in 0..steps {
        let outcome = run_step(registry, workflow, params, step, &previous, None).await;
        let result = outcome
            .result
            .unwrap_or_else(|err| panic!("{workflow} step {step}: {err}"));
        previous.insert(step as i32, result);
    }
    previous.into_values().collect()
}

/// The keys of a JSON object.
pub fn keys(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect()
}

/// Asserts that `value` has exactly `expected` keys.
pub fn assert_keys(value: &Value, expected: &[&str]) {
    let expected: BTreeSet<&str> = expected.iter().copied().collect();
    assert_eq!(keys(value), expected, "keys of {value}");
}
