//! A prompt written by the text model once per task: kept in the checkpoint, so a rerun after a
//! crash paints from the same prompt instead of paying for (and getting) a different one.

use serde::{Deserialize, Serialize};

use nosyntask_domain::TaskError;
use nosyntask_engine::StepRun;
use nosyntask_engine::ports::ModelCatalog;

use crate::prompt_generate::{Brief, write_prompt};

const PROMPT_ENTRY: &str = "prompt";

/// The prompt kept in the checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SavedPrompt {
    pub prompt: String,
    pub negative_prompt: String,
    /// The text model that wrote it.
    pub text_model: String,
}

/// The prompt a previous attempt wrote, or a new one from `text_model` (the default when
/// `None`), reporting progress within `range` of the step.
pub(crate) async fn saved_prompt(
    models: &dyn ModelCatalog,
    text_model: Option<&str>,
    brief: &Brief<'_>,
    run: &StepRun,
    range: (f64, f64),
) -> Result<SavedPrompt, TaskError> {
    if let Some(saved) = run.checkpoint.entry(PROMPT_ENTRY).await
        && let Ok(saved) = serde_json::from_value::<SavedPrompt>(saved)
    {
        return Ok(saved);
    }
    let model = models.text(text_model)?;
    let (written, usage) = write_prompt(
        &model,
        brief,
        &run.progress.scaled(range.0, range.1),
        &run.cancel,
    )
    .await?;
    tracing::info!(tokens = usage.total(), model = %usage.model, "image prompt written");
    let saved = SavedPrompt {
        prompt: written.prompt,
        negative_prompt: written.negative_prompt,
        text_model: model.info().name.clone(),
    };
    let entry = serde_json::to_value(&saved)
        .map_err(|err| TaskError::permanent(format!("checkpoint: {err}")))?;
    run.checkpoint
        .merge_entry(PROMPT_ENTRY, entry, None)
        .await?;
    run.progress.report(range.1);
    Ok(saved)
}
