//! Embedding the nosyntask engine in a Rust service: register a workflow, run a worker pool in the
//! same process, start a job and wait for its result.
//!
//! Run with `cargo run -p nosyntask-testkit --example embed`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nosyntask_domain::{ParamKind, ParamSpec, ParamsSchema, TaskError, Viewer};
use nosyntask_engine::{
    Engine, Registry, StartRequest, StepDefinition, StepHandler, StepRun, Worker, WorkerConfig,
    WorkflowDefinition,
};
use serde_json::{Value, json};

/// A step handler: gets its input, reports progress, returns a JSON result.
struct Greet;

#[async_trait]
impl StepHandler for Greet {
    async fn run(&self, run: StepRun) -> Result<Value, TaskError> {
        let name = run.input["name"]
            .as_str()
            .ok_or_else(|| TaskError::permanent("name is missing"))?;
        run.progress.report(50.0);
        Ok(json!({ "greeting": format!("你好, {name}!") }))
    }
}

/// The second step reads the first step's result from its context.
struct Shout;

#[async_trait]
impl StepHandler for Shout {
    async fn run(&self, run: StepRun) -> Result<Value, TaskError> {
        let greeting = run.input["greeting"].as_str().unwrap_or_default();
        Ok(json!({ "shout": greeting.to_uppercase() }))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Any of sqlite://…, postgres://…, mysql://…
    let store = nosyntask_store::Store::connect("sqlite::memory:").await?;
    store.migrate().await?;

    let mut registry = Registry::new();
    registry.register(
        WorkflowDefinition::new(
            "greeting",
            "Greeting",
            ParamsSchema::new().param(ParamSpec::new("name", ParamKind::String, "who").required()),
        )
        .step(StepDefinition::new("greet", "person", Arc::new(Greet)))
        .step(
            StepDefinition::new("shout", "person", Arc::new(Shout))
                .input(|ctx| json!({ "greeting": ctx.previous_results[&0]["greeting"] })),
        ),
    );
    let engine = Engine::new(Arc::new(store), registry);
    let worker = Worker::new(engine.clone(), WorkerConfig::default()).spawn();

    let started = engine
        .start(StartRequest {
            user_id: 1,
            project_id: 1,
            workflow_type: "greeting".into(),
            params: json!({ "name": "Nano" }),
            idempotency_key: None,
            priority: 0,
        })
        .await?;
    let job_id = started.job.job.id;
    let viewer = Viewer::user(1);
    let job = loop {
        let job = engine.get(&viewer, job_id).await?;
        if job.job.status.is_terminal() {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    worker.shutdown().await;

    println!("job {job_id} {}", job.job.status);
    for task in &job.tasks {
        println!(
            "  step {}: {}",
            task.step_index,
            task.result_data.clone().unwrap_or_default()
        );
    }
    Ok(())
}
