//! Step defaults by the kind of work a step does (contract section 3.7: text 3 min, image 10 min,
//! video 30 min).

use std::sync::Arc;
use std::time::Duration;

use nosyntask_domain::ParamsSchema;
use nosyntask_engine::{StepDefinition, StepHandler};

use super::input::declared_params;

/// Wall-clock limit of a step that only calls a text model.
pub(crate) const TEXT_TIMEOUT: Duration = Duration::from_secs(3 * 60);
/// Wall-clock limit of a step that generates images.
pub(crate) const IMAGE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Wall-clock limit of a step that generates a video.
pub(crate) const VIDEO_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Attempts of every step: a retryable failure (timeout, 5xx, 429) is tried again twice.
pub(crate) const ATTEMPTS: u32 = 3;

/// A step of a one-step workflow: the declared params as input.
pub(crate) fn single_step(
    task_type: &str,
    target_type: &str,
    handler: Arc<dyn StepHandler>,
    params: &ParamsSchema,
    timeout: Duration,
) -> StepDefinition {
    StepDefinition::new(task_type, target_type, handler)
        .input(declared_params(params))
        .max_attempts(ATTEMPTS)
        .timeout(timeout)
}
