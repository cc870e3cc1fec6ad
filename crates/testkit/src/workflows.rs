//! Test workflows. Their handlers record every invocation so tests can prove exactly-once and
//! ordering, and can be told to fail, hang or checkpoint.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use nosyntask_domain::{JobId, ParamKind, ParamSpec, ParamsSchema, TaskError};
use nosyntask_engine::{Registry, StepDefinition, StepHandler, StepRun, WorkflowDefinition};
use serde_json::{Value, json};

/// Who ran what: (job, step) → number of handler invocations that returned a result.
#[derive(Debug, Default)]
pub struct Invocations {
    finished: Mutex<HashMap<(JobId, i32), usize>>,
    started: AtomicUsize,
}

impl Invocations {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn started(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }

    /// Invocations that returned a result, per (job, step).
    pub fn finished(&self) -> HashMap<(JobId, i32), usize> {
        self.finished.lock().map(|m| m.clone()).unwrap_or_default()
    }

    fn record_finished(&self, job_id: JobId, step: i32) {
        if let Ok(mut map) = self.finished.lock() {
            *map.entry((job_id, step)).or_default() += 1;
        }
    }
}

/// A step that checks it sees every previous step's result, optionally sleeps, and returns
/// `{step, previousSteps, attempt}`.
pub struct CountingStep {
    pub invocations: Arc<Invocations>,
    pub sleep: Duration,
}

#[async_trait]
impl StepHandler for CountingStep {
    async fn run(&self, run: StepRun) -> Result<Value, TaskError> {
        self.invocations.started.fetch_add(1, Ordering::SeqCst);
        let previous = run.input["previousSteps"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        // Each previous step's result must be there, in order.
        for (index, result) in previous.iter().enumerate() {
            if result["step"] != json!(index) {
                return Err(TaskError::permanent(format!(
                    "step {} saw a wrong previous result at {index}: {result}",
                    run.step_index
                )));
            }
        }
        if !self.sleep.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(self.sleep) => {}
                _ = run.cancel.cancelled() => return Err(TaskError::Cancelled),
            }
        }
        self.invocations.record_finished(run.job_id, run.step_index);
        Ok(json!({
            "step": run.step_index,
            "previousSteps": previous.len(),
            "attempt": run.attempt,
        }))
    }
}

/// `counting_<steps>`: a workflow of `steps` counting steps; each step's input carries the
/// previous results (`previousSteps`) so the handler can check them.
pub fn counting_workflow(
    steps: usize,
    invocations: Arc<Invocations>,
    sleep: Duration,
) -> WorkflowDefinition {
    let params = ParamsSchema::new().param(ParamSpec::new("label", ParamKind::String, "free text"));
    let mut workflow = WorkflowDefinition::new(
        &format!("counting_{steps}"),
        "Counting test workflow",
        params,
    );
    for _ in 0..steps {
        let handler = Arc::new(CountingStep {
            invocations: invocations.clone(),
            sleep,
        });
        workflow = workflow.step(StepDefinition::new("count", "test", handler).input(|ctx| {
            json!({
                "previousSteps": ctx.previous_results.values().cloned().collect::<Vec<_>>(),
                "stepIndex": ctx.step_index,
            })
        }));
    }
    workflow
}

/// A registry with `counting_1`, `counting_3` and the given extra workflows.
pub fn counting_registry(invocations: Arc<Invocations>, sleep: Duration) -> Registry {
    let mut registry = Registry::new();
    registry.register(counting_workflow(1, invocations.clone(), sleep));
    registry.register(counting_workflow(3, invocations, sleep));
    registry
}

/// The no-op step the benchmarks measure engine overhead with.
pub struct NoopStep;

#[async_trait]
impl StepHandler for NoopStep {
    async fn run(&self, run: StepRun) -> Result<Value, TaskError> {
        Ok(json!({"step": run.step_index}))
    }
}

/// `noop_<steps>`: steps that do nothing.
pub fn noop_workflow(steps: usize) -> WorkflowDefinition {
    let mut workflow = WorkflowDefinition::new(
        &format!("noop_{steps}"),
        "No-op benchmark workflow",
        ParamsSchema::new(),
    );
    for _ in 0..steps {
        workflow = workflow.step(StepDefinition::new("noop", "bench", Arc::new(NoopStep)));
    }
    workflow
}

/// A step for crash tests: saves a checkpoint, sleeps, logs `task attempt pid` when it finishes.
pub struct CrashyStep {
    sleep: Duration,
    log: Arc<Mutex<std::fs::File>>,
}

#[async_trait]
impl StepHandler for CrashyStep {
    async fn run(&self, run: StepRun) -> Result<Value, TaskError> {
        let resumed = run.checkpoint.last().await;
        if resumed.is_none() {
            run.checkpoint
                .save(json!({"savedBy": std::process::id(), "attempt": run.attempt}))
                .await?;
        }
        tokio::select! {
            _ = tokio::time::sleep(self.sleep) => {}
            _ = run.cancel.cancelled() => return Err(TaskError::Cancelled),
        }
        if let Ok(mut log) = self.log.lock() {
            let _ = writeln!(
                log,
                "{} {} {}",
                run.task_id,
                run.attempt,
                std::process::id()
            );
        }
        Ok(json!({
            "pid": std::process::id(),
            "attempt": run.attempt,
            "resumedFromCheckpoint": resumed.is_some(),
            "checkpoint": resumed,
        }))
    }
}

/// The workflow the crash tests start: `crashy`, two steps.
pub fn crashy_workflow(sleep: Duration, log: Arc<Mutex<std::fs::File>>) -> WorkflowDefinition {
    let step = || {
        StepDefinition::new(
            "crashy",
            "test",
            Arc::new(CrashyStep {
                sleep,
                log: log.clone(),
            }),
        )
        .max_attempts(5)
    };
    WorkflowDefinition::new("crashy", "Crash test workflow", ParamsSchema::new())
        .step(step())
        .step(step())
}

/// The model every `model_call` job uses.
pub const STAND_IN_MODEL: &str = "Kling";

/// A step that makes one call to the provider stand-in at `addr` (see [`crate::standin`]).
pub struct ModelCallStep {
    addr: String,
}

#[async_trait]
impl StepHandler for ModelCallStep {
    async fn run(&self, run: StepRun) -> Result<Value, TaskError> {
        tokio::select! {
            called = crate::standin::call(&self.addr) => called?,
            _ = run.cancel.cancelled() => return Err(TaskError::Cancelled),
        }
        Ok(json!({"called": self.addr, "attempt": run.attempt}))
    }
}

/// `model_call`: one step that calls the video model [`STAND_IN_MODEL`] (served by the stand-in
/// at `addr`), recorded on the task when the job starts; `timeout` per attempt.
pub fn model_call_workflow(addr: &str, timeout: Duration) -> WorkflowDefinition {
    WorkflowDefinition::new("model_call", "Model call", ParamsSchema::new()).step(
        StepDefinition::new(
            "model_call",
            "test",
            Arc::new(ModelCallStep {
                addr: addr.to_owned(),
            }),
        )
        .model_from(|_| Some(STAND_IN_MODEL.to_owned()))
        .timeout(timeout),
    )
}

/// One item of the `fan_out` workflow: calls the stand-in at `/item/{index}`.
pub struct FanOutItemStep {
    addr: String,
}

#[async_trait]
impl StepHandler for FanOutItemStep {
    async fn run(&self, run: StepRun) -> Result<Value, TaskError> {
        let index = run.input["index"].as_u64().unwrap_or_default();
        let path = format!("/item/{index}");
        tokio::select! {
            called = crate::standin::call_path(&self.addr, &path) => called?,
            _ = run.cancel.cancelled() => return Err(TaskError::Cancelled),
        }
        Ok(json!({"index": index, "pid": std::process::id()}))
    }
}

/// `fan_out`: one fan-out step over `count` items (params), `maxConcurrency` of a job at once
/// (default 20), each calling the stand-in at `addr`; an item that fails fails the job.
pub fn fan_out_workflow(addr: &str) -> WorkflowDefinition {
    WorkflowDefinition::new("fan_out", "Fan-out", ParamsSchema::new()).step(
        StepDefinition::new(
            "fan_out_item",
            "test",
            Arc::new(FanOutItemStep {
                addr: addr.to_owned(),
            }),
        )
        .fan_out(
            |ctx| {
                let count = ctx.job_params["count"].as_u64().unwrap_or_default();
                (0..count).map(|index| json!({"index": index})).collect()
            },
            |params| {
                params["maxConcurrency"]
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .unwrap_or(20)
            },
            nosyntask_engine::ItemFailure::FailJob,
        )
        .timeout(Duration::from_secs(30)),
    )
}
