//! Engine metrics in Prometheus form. The server encodes `Metrics::registry` at `/metrics` and
//! adds the store's gauges (queue depth, running tasks) at scrape time.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorkflowLabels {
    pub workflow_type: String,
    pub task_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelLabels {
    pub model: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UsageLabels {
    pub model: String,
    /// `prompt_tokens`, `completion_tokens`, `images`, `video_seconds` or `cost_micros`.
    pub unit: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelNameLabels {
    pub model: String,
}

type DurationFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    // 10 ms … ~45 min
    Histogram::new(exponential_buckets(0.01, 2.5, 14))
}

/// The counters the engine and providers update.
pub struct Metrics {
    pub tasks_started: Family<WorkflowLabels, Counter>,
    pub tasks_completed: Family<WorkflowLabels, Counter>,
    pub tasks_failed: Family<WorkflowLabels, Counter>,
    pub tasks_retried: Family<WorkflowLabels, Counter>,
    pub task_duration: DurationFamily<WorkflowLabels>,
    pub provider_latency: DurationFamily<ModelLabels>,
    /// What provider calls used, by model and unit.
    pub model_usage: Family<UsageLabels, Counter>,
    /// Handlers running in this process.
    pub running_here: Gauge,
    /// Pauses of a model this process recorded after a provider asked to wait (429).
    pub model_pauses: Family<ModelNameLabels, Counter>,
    registry: Registry,
}

impl Metrics {
    pub fn new() -> Self {
        let tasks_started = Family::<WorkflowLabels, Counter>::default();
        let tasks_completed = Family::<WorkflowLabels, Counter>::default();
        let tasks_failed = Family::<WorkflowLabels, Counter>::default();
        let tasks_retried = Family::<WorkflowLabels, Counter>::default();
        let task_duration: DurationFamily<WorkflowLabels> =
            Family::new_with_constructor(duration_histogram);
        let provider_latency: DurationFamily<ModelLabels> =
            Family::new_with_constructor(duration_histogram);
        let running_here = Gauge::default();
        let model_usage = Family::<UsageLabels, Counter>::default();
        let model_pauses = Family::<ModelNameLabels, Counter>::default();

        let mut registry = Registry::with_prefix("nosyntask");
        registry.register(
            "task_attempts_started",
            "Task attempts started by this process",
            tasks_started.clone(),
        );
        registry.register(
            "tasks_completed",
            "Tasks completed by this process",
            tasks_completed.clone(),
        );
        registry.register(
            "tasks_failed",
            "Tasks failed permanently by this process",
            tasks_failed.clone(),
        );
        registry.register(
            "task_retries",
            "Task attempts that failed and were scheduled again",
            tasks_retried.clone(),
        );
        registry.register(
            "task_duration_seconds",
            "Wall time of task attempts",
            task_duration.clone(),
        );
        registry.register(
            "provider_latency_seconds",
            "Latency of AI provider calls by model",
            provider_latency.clone(),
        );
        registry.register(
            "model_usage",
            "What provider calls used by model: tokens, images, video seconds and the cost in \
             millionths of the prices' currency (unit label)",
            model_usage.clone(),
        );
        registry.register(
            "running_tasks_in_process",
            "Step handlers running in this process",
            running_here.clone(),
        );
        registry.register(
            "model_pauses",
            "Pauses of a model for every worker after a provider asked to wait (HTTP 429)",
            model_pauses.clone(),
        );
        Metrics {
            model_pauses,
            tasks_started,
            tasks_completed,
            tasks_failed,
            tasks_retried,
            task_duration,
            provider_latency,
            model_usage,
            running_here,
            registry,
        }
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Records one provider call.
    pub fn observe_provider(&self, model: &str, ok: bool, seconds: f64) {
        self.provider_latency
            .get_or_create(&ModelLabels {
                model: model.to_owned(),
                outcome: if ok { "ok" } else { "error" }.to_owned(),
            })
            .observe(seconds);
    }

    /// Adds what one provider call of `model` used.
    pub fn observe_usage(&self, model: &str, usage: &nosyntask_domain::Usage) {
        for (unit, amount) in [
            ("prompt_tokens", usage.prompt_tokens),
            ("completion_tokens", usage.completion_tokens),
            ("images", usage.images),
            ("video_seconds", usage.video_seconds),
            ("cost_micros", usage.cost_micros),
        ] {
            if let Some(amount) = amount {
                self.model_usage
                    .get_or_create(&UsageLabels {
                        model: model.to_owned(),
                        unit: unit.to_owned(),
                    })
                    .inc_by(amount);
            }
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}
