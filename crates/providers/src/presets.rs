//! Presets: `async_task` configurations for the wire formats of Replicate predictions, the fal
//! queue, DashScope async tasks and the OpenAI videos API. A model's own `[models.async_task]`
//! table is merged over them, so any part can be adjusted (e.g. a model's input field names).

use nosyntask_engine::ports::ModelKind;
use serde_json::{Value, json};

use crate::config::{AdapterKind, ModelConfig};

/// The preset's `async_task` table for this model, or `None` for non-preset adapters.
pub fn defaults(model: &ModelConfig) -> Option<Value> {
    match model.adapter {
        AdapterKind::Replicate => Some(replicate(model.provider_model(), model.kind)),
        AdapterKind::Fal => Some(fal(model.kind)),
        AdapterKind::Dashscope => Some(dashscope(model.provider_model(), model.kind)),
        AdapterKind::OpenaiVideos => Some(openai_videos()),
        _ => None,
    }
}

/// Replicate predictions: `POST /models/{owner}/{name}/predictions` (or `POST /predictions`
/// with `version` for `owner/name:version`), `GET /predictions/{id}`, `POST …/cancel`.
/// Statuses: starting, processing, succeeded, failed, canceled, and aborted (terminated before
/// it started, e.g. past its deadline); `output` is a URL or a list.
fn replicate(model: &str, kind: ModelKind) -> Value {
    let input = match kind {
        ModelKind::Video => json!({
            "prompt": "{{prompt}}",
            "negative_prompt": "{{negative_prompt}}",
            "duration": "{{duration}}",
            "image": "{{image_url}}",
            "end_image": "{{end_image_url}}"
        }),
        _ => json!({
            "prompt": "{{prompt}}",
            "negative_prompt": "{{negative_prompt}}",
            "width": "{{width}}",
            "height": "{{height}}",
            "image": "{{image_url}}"
        }),
    };
    let submit = match model.split_once(':') {
        Some((_, version)) => json!({
            "url": "{{base_url}}/predictions",
            "body": {"version": version, "input": input}
        }),
        None => json!({
            "url": format!("{{{{base_url}}}}/models/{model}/predictions"),
            "body": {"input": input}
        }),
    };
    json!({
        "headers": {"Authorization": "Bearer {{api_key}}"},
        "submit": submit,
        "task_id_path": "id",
        "poll": {"url": "{{base_url}}/predictions/{{task_id}}"},
        "status_path": "status",
        "result_url_path": "output",
        "error_path": "error",
        "success_statuses": ["succeeded"],
        "failure_statuses": ["failed", "aborted"],
        "cancelled_statuses": ["canceled"],
        "cancel": {"url": "{{base_url}}/predictions/{{task_id}}/cancel", "method": "POST"},
        "extra_path": "input",
        "poll_interval_ms": 2000,
        "expected_secs": if kind == ModelKind::Video { 180 } else { 20 }
    })
}

/// The fal queue: `POST https://queue.fal.run/{model}` with the input as the body answers
/// `{request_id, status_url, response_url, cancel_url}`; the status URL reports `IN_QUEUE`,
/// `IN_PROGRESS`, `COMPLETED`; the response URL gives the output; cancel is `PUT cancel_url`.
fn fal(kind: ModelKind) -> Value {
    let (body, result) = match kind {
        ModelKind::Video => (
            json!({
                "prompt": "{{prompt}}",
                "negative_prompt": "{{negative_prompt}}",
                "image_url": "{{image_url}}",
                "tail_image_url": "{{end_image_url}}",
                "duration": "{{duration|string}}"
            }),
            "video.url",
        ),
        _ => (
            json!({
                "prompt": "{{prompt}}",
                "negative_prompt": "{{negative_prompt}}",
                "image_size": {"width": "{{width}}", "height": "{{height}}"},
                "image_url": "{{image_url}}",
                "num_images": 1
            }),
            "images[0].url",
        ),
    };
    json!({
        "headers": {"Authorization": "Key {{api_key}}"},
        "submit": {"url": "{{base_url}}/{{model}}", "body": body},
        "task_id_path": "request_id",
        "capture": {"status_url": "status_url", "response_url": "response_url", "cancel_url": "cancel_url"},
        "poll": {"url": "{{status_url}}"},
        "status_path": "status",
        "error_path": "error",
        "success_statuses": ["COMPLETED"],
        "result": {"url": "{{response_url}}"},
        "result_url_path": result,
        "cancel": {"url": "{{cancel_url}}", "method": "PUT"},
        "poll_interval_ms": 2000,
        "expected_secs": if kind == ModelKind::Video { 180 } else { 20 }
    })
}

/// DashScope async tasks: `POST /services/aigc/…` with `X-DashScope-Async: enable` answers
/// `{output:{task_id, task_status}}`; `GET /tasks/{id}` reports PENDING, RUNNING, SUCCEEDED,
/// FAILED, CANCELED or UNKNOWN; images at `output.results[].url`, videos at `output.video_url`;
/// `POST /tasks/{id}/cancel` cancels a task that is still pending. First-and-last-frame models
/// (`wan2.1-kf2v-*`) take `first_frame_url` / `last_frame_url` at `image2video`.
fn dashscope(model: &str, kind: ModelKind) -> Value {
    let (url, body, result) = match kind {
        ModelKind::Video if model.contains("kf2v") => (
            "{{base_url}}/services/aigc/image2video/video-synthesis",
            json!({
                "model": "{{model}}",
                "input": {
                    "prompt": "{{prompt}}",
                    "negative_prompt": "{{negative_prompt}}",
                    "first_frame_url": "{{image_url}}",
                    "last_frame_url": "{{end_image_url}}"
                },
                "parameters": {"duration": "{{duration}}"}
            }),
            "output.video_url",
        ),
        ModelKind::Video => (
            "{{base_url}}/services/aigc/video-generation/video-synthesis",
            json!({
                "model": "{{model}}",
                "input": {
                    "prompt": "{{prompt}}",
                    "negative_prompt": "{{negative_prompt}}",
                    "img_url": "{{image_url}}"
                },
                "parameters": {"duration": "{{duration}}"}
            }),
            "output.video_url",
        ),
        _ => (
            "{{base_url}}/services/aigc/text2image/image-synthesis",
            json!({
                "model": "{{model}}",
                "input": {"prompt": "{{prompt}}", "negative_prompt": "{{negative_prompt}}"},
                "parameters": {"size": "{{width}}*{{height}}", "n": 1}
            }),
            "output.results[0].url",
        ),
    };
    json!({
        "headers": {"Authorization": "Bearer {{api_key}}"},
        "submit": {"url": url, "headers": {"X-DashScope-Async": "enable"}, "body": body},
        "task_id_path": "output.task_id",
        "poll": {"url": "{{base_url}}/tasks/{{task_id}}"},
        "status_path": "output.task_status",
        "result_url_path": result,
        "error_path": "output.message",
        "success_statuses": ["SUCCEEDED"],
        "failure_statuses": ["FAILED", "UNKNOWN"],
        "cancelled_statuses": ["CANCELED"],
        "cancel": {"url": "{{base_url}}/tasks/{{task_id}}/cancel", "method": "POST"},
        "extra_path": "parameters",
        "poll_interval_ms": 5000,
        "expected_secs": if kind == ModelKind::Video { 300 } else { 30 }
    })
}

/// The OpenAI videos API: `POST /videos` answers a video object `{id, status, progress}`;
/// `GET /videos/{id}` reports queued, in_progress, completed or failed (with `error.message`);
/// the MP4 is `GET /videos/{id}/content` with the same credentials. There is no cancel call.
/// The start frame is `input_reference`: in a JSON body the object `{image_url}`, "a fully
/// qualified URL or base64-encoded data URL" (openai-python `ImageInputReferenceParam`; a bare
/// string is the multipart file upload's form). The profile sends it inline.
fn openai_videos() -> Value {
    json!({
        "headers": {"Authorization": "Bearer {{api_key}}"},
        "submit": {
            "url": "{{base_url}}/videos",
            "body": {
                "model": "{{model}}",
                "prompt": "{{prompt}}",
                "seconds": "{{duration|string}}",
                "size": "{{size}}",
                "input_reference": {"image_url": "{{image_url}}"}
            }
        },
        "task_id_path": "id",
        "poll": {"url": "{{base_url}}/videos/{{task_id}}"},
        "status_path": "status",
        "progress_path": "progress",
        "error_path": "error.message",
        "success_statuses": ["completed"],
        "failure_statuses": ["failed"],
        "download": {"url": "{{base_url}}/videos/{{task_id}}/content"},
        "expires_at_path": "expires_at",
        "poll_interval_ms": 5000,
        "expected_secs": 240
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::async_task::AsyncTaskSpec;

    #[test]
    fn every_preset_is_a_valid_async_task_config() {
        for adapter in [
            AdapterKind::Replicate,
            AdapterKind::Fal,
            AdapterKind::Dashscope,
            AdapterKind::OpenaiVideos,
        ] {
            for kind in adapter.kinds() {
                let mut model = ModelConfig::simulated("m", *kind, false);
                model.adapter = adapter;
                model.simulated = None;
                model.model = Some("owner/name".into());
                AsyncTaskSpec::from_model(&model)
                    .unwrap_or_else(|e| panic!("{adapter} {kind}: {e:?}"));
            }
        }
    }

    #[test]
    fn replicate_versions_use_the_predictions_endpoint() {
        let v = replicate("owner/name:abc123", ModelKind::Image);
        assert_eq!(v["submit"]["url"], "{{base_url}}/predictions");
        assert_eq!(v["submit"]["body"]["version"], "abc123");
        let v = replicate("black-forest-labs/flux-schnell", ModelKind::Image);
        assert_eq!(
            v["submit"]["url"],
            "{{base_url}}/models/black-forest-labs/flux-schnell/predictions"
        );
    }
}
