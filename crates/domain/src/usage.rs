//! What model calls used: tokens, images, video seconds, and their cost where the model has
//! prices. One [`Usage`] per call; a task's [`TaskUsage`] adds up its calls, per model too.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What one model call (or several added up) used, as the provider reported it (or as the call
/// implies: one image, the requested video length), and its cost where the model's profile gives
/// prices.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_seconds: Option<u64>,
    /// The cost in millionths of the prices' currency (integers add up exactly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_micros: Option<u64>,
}

fn add(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
    }
}

impl Usage {
    /// True when nothing was reported.
    pub fn is_empty(&self) -> bool {
        *self == Usage::default()
    }
}

impl std::ops::AddAssign for Usage {
    /// Adds field by field; a field stays unset only when both are.
    fn add_assign(&mut self, other: Usage) {
        self.prompt_tokens = add(self.prompt_tokens, other.prompt_tokens);
        self.completion_tokens = add(self.completion_tokens, other.completion_tokens);
        self.images = add(self.images, other.images);
        self.video_seconds = add(self.video_seconds, other.video_seconds);
        self.cost_micros = add(self.cost_micros, other.cost_micros);
    }
}

/// What a task's model calls used: the sum, and the part of each model (by configured name).
/// `costMicros` of the sum adds the priced calls only (prices of all models are taken to be in
/// one currency).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskUsage {
    #[serde(flatten)]
    pub total: Usage,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub models: BTreeMap<String, Usage>,
}

impl TaskUsage {
    /// Adds one call of `model`.
    pub fn record(&mut self, model: &str, usage: Usage) {
        self.total += usage;
        *self.models.entry(model.to_owned()).or_default() += usage;
    }

    /// Adds another task's usage (a job's usage is the sum of its tasks').
    pub fn absorb(&mut self, other: &TaskUsage) {
        for (model, usage) in &other.models {
            self.record(model, *usage);
        }
    }

    /// True when no call reported anything.
    pub fn is_empty(&self) -> bool {
        self.models.values().all(Usage::is_empty)
    }

    /// The sum over `usages`, `None` when none reported anything.
    pub fn sum<'a>(usages: impl IntoIterator<Item = &'a TaskUsage>) -> Option<TaskUsage> {
        let mut sum = TaskUsage::default();
        for usage in usages {
            sum.absorb(usage);
        }
        (!sum.is_empty()).then_some(sum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn calls_add_up_per_model_and_in_total() {
        let mut task = TaskUsage::default();
        let chat = Usage {
            prompt_tokens: Some(100),
            completion_tokens: Some(50),
            cost_micros: Some(70),
            ..Usage::default()
        };
        task.record("DeepSeek Chat", chat);
        task.record("DeepSeek Chat", chat);
        task.record(
            "GPT Image",
            Usage {
                images: Some(1),
                ..Usage::default()
            },
        );
        assert_eq!(
            serde_json::to_value(&task).unwrap(),
            json!({
                "promptTokens": 200, "completionTokens": 100, "images": 1, "costMicros": 140,
                "models": {
                    "DeepSeek Chat": {"promptTokens": 200, "completionTokens": 100, "costMicros": 140},
                    "GPT Image": {"images": 1}
                }
            })
        );
        let back: TaskUsage = serde_json::from_value(serde_json::to_value(&task).unwrap()).unwrap();
        assert_eq!(back, task);
        let job = TaskUsage::sum([&task, &task]).unwrap();
        assert_eq!(job.total.prompt_tokens, Some(400));
        assert_eq!(job.models["GPT Image"].images, Some(2));
        assert_eq!(TaskUsage::sum([&TaskUsage::default()]), None);
    }
}
