//! Image and video generation that survives a crash. Each generation has two checkpoint entries:
//! the model's own (under the request's `checkpoint_key`: the provider task id while it waits)
//! and the finished URL (under `done_key`). A rerun returns a finished URL without calling the
//! model, and resumes an unfinished provider task instead of paying for a second one.

use std::sync::Arc;

use nosyntask_domain::TaskError;
use nosyntask_engine::ports::{MediaContext, MediaModel, MediaRequest, Usage};
use nosyntask_engine::{CancellationToken, Checkpoints, ProgressReporter};
use serde_json::json;

/// Where one generation keeps its state in the task's checkpoint.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot {
    /// The model call's own entry (provider task id while it runs).
    pub call_key: &'static str,
    /// The finished URL's entry.
    pub done_key: &'static str,
}

/// The generated (or already generated) media's URL.
pub(crate) async fn generate_once(
    model: &Arc<dyn MediaModel>,
    request: MediaRequest,
    slot: Slot,
    checkpoint: &Checkpoints,
    progress: ProgressReporter,
    cancel: &CancellationToken,
) -> Result<String, TaskError> {
    let keys = (slot.call_key.to_owned(), slot.done_key.to_owned());
    generate_once_keyed(model, request, keys, checkpoint, progress, cancel).await
}

/// [`generate_once`] with keys made at run time (one pair per item of a batch): the model
/// call's entry and the finished URL's entry.
pub(crate) async fn generate_once_keyed(
    model: &Arc<dyn MediaModel>,
    mut request: MediaRequest,
    (call_key, done_key): (String, String),
    checkpoint: &Checkpoints,
    progress: ProgressReporter,
    cancel: &CancellationToken,
) -> Result<String, TaskError> {
    if let Some(url) = finished(checkpoint, &done_key).await {
        // Paid for by an earlier attempt: still part of what the task used.
        if let Some(entry) = checkpoint.entry(&done_key).await
            && let Some(usage) = entry
                .get("usage")
                .and_then(|u| serde_json::from_value::<Usage>(u.clone()).ok())
        {
            let model = entry.get("model").and_then(|m| m.as_str()).unwrap_or("");
            nosyntask_engine::usage::record(model, usage);
        }
        tracing::info!(
            entry = %done_key,
            %url,
            "already generated before a restart; not generating again"
        );
        progress.report(100.0);
        return Ok(url);
    }
    request.checkpoint_key = call_key;
    let ctx = MediaContext::new(progress, checkpoint.clone(), cancel.clone());
    let output = model.generate(request, ctx).await?;
    // Boxed: its state would otherwise be part of every waiting call's future.
    Box::pin(checkpoint.merge_entry(
        &done_key,
        json!({"url": output.url, "model": model.info().name, "usage": output.usage}),
        None,
    ))
    .await?;
    Ok(output.url)
}

/// The URL a previous attempt finished under `key`.
pub(crate) async fn finished(checkpoint: &Checkpoints, key: &str) -> Option<String> {
    checkpoint
        .entry(key)
        .await
        .and_then(|entry| entry.get("url")?.as_str().map(str::to_owned))
        .filter(|url| !url.is_empty())
}
