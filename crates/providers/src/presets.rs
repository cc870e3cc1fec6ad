//! What each adapter name means, in one table ([`ADAPTERS`]): the model kinds it serves, its
//! provider's default base URL and, for the presets, the builder of its default `async_task`
//! table. Presets are configurations of the `async_task` adapter for the wire formats of
//! Replicate predictions, the fal queue, DashScope async tasks and the OpenAI videos API; a
//! model's own `[models.async_task]` table is merged over them, so any part can be adjusted
//! (e.g. a model's input field names).
//!
//! Layering: this module builds only on the plain configuration data (`crate::config`); the
//! adapters and the validation read it, and nothing here reads them, so the module graph stays
//! acyclic. Adding a preset is adding an `AdapterKind` variant and its row here.

use nosyntask_engine::ports::ModelKind;
use serde_json::{Value, json};

use crate::config::{AdapterKind, ModelConfig};

const OPENAI: Option<&str> = Some("https://api.openai.com/v1");
const IMAGE_OR_VIDEO: &[ModelKind] = &[ModelKind::Image, ModelKind::Video];

/// One adapter name's row of [`ADAPTERS`].
#[derive(Debug)]
pub struct AdapterRow {
    pub adapter: AdapterKind,
    /// The kinds of model it can serve.
    pub kinds: &'static [ModelKind],
    /// The provider's public API base URL, for adapters that have one.
    pub base_url: Option<&'static str>,
    /// For presets: builds the model's default `async_task` table (from its provider model id
    /// and kind). `None` for the adapters that are code, and for `async_task` itself, whose
    /// table is all configuration.
    pub async_task: Option<fn(&ModelConfig) -> Value>,
}

/// Every adapter name, one row each; the rows with an `async_task` builder are the presets.
pub static ADAPTERS: &[AdapterRow] = &[
    AdapterRow {
        adapter: AdapterKind::OpenaiCompatible,
        kinds: &[ModelKind::Text],
        base_url: OPENAI,
        async_task: None,
    },
    AdapterRow {
        adapter: AdapterKind::OpenaiImages,
        kinds: &[ModelKind::Image],
        base_url: OPENAI,
        async_task: None,
    },
    AdapterRow {
        adapter: AdapterKind::AsyncTask,
        kinds: IMAGE_OR_VIDEO,
        base_url: None,
        async_task: None,
    },
    AdapterRow {
        adapter: AdapterKind::Replicate,
        kinds: IMAGE_OR_VIDEO,
        base_url: Some("https://api.replicate.com/v1"),
        async_task: Some(|m| replicate(m.provider_model(), m.kind)),
    },
    AdapterRow {
        adapter: AdapterKind::Fal,
        kinds: IMAGE_OR_VIDEO,
        base_url: Some("https://queue.fal.run"),
        async_task: Some(|m| fal(m.kind)),
    },
    AdapterRow {
        adapter: AdapterKind::Dashscope,
        kinds: IMAGE_OR_VIDEO,
        base_url: Some("https://dashscope.aliyuncs.com/api/v1"),
        async_task: Some(|m| dashscope(m.provider_model(), m.kind)),
    },
    AdapterRow {
        adapter: AdapterKind::OpenaiVideos,
        kinds: &[ModelKind::Video],
        base_url: OPENAI,
        async_task: Some(|_| openai_videos()),
    },
    AdapterRow {
        adapter: AdapterKind::Simulated,
        kinds: &[ModelKind::Text, ModelKind::Image, ModelKind::Video],
        base_url: None,
        async_task: None,
    },
];

/// The row of an adapter name. Every `AdapterKind` has one (a test checks); a name without
/// one would serve no kind of model, so its entries fail validation instead of panicking.
pub fn row(adapter: AdapterKind) -> Option<&'static AdapterRow> {
    ADAPTERS.iter().find(|row| row.adapter == adapter)
}

/// The preset's `async_task` table for this model, or `None` for non-preset adapters.
pub fn defaults(model: &ModelConfig) -> Option<Value> {
    row(model.adapter)?.async_task.map(|build| build(model))
}

// The facts of the table as methods of the configuration types, where callers look for them.
// They are defined here rather than in `crate::config` so that the configuration stays plain
// data with no knowledge of particular adapters.
impl AdapterKind {
    /// The kinds of model this adapter can serve.
    pub fn kinds(self) -> &'static [ModelKind] {
        row(self).map_or(&[], |row| row.kinds)
    }

    /// The provider's public API base URL, for adapters that have one.
    pub fn default_base_url(self) -> Option<&'static str> {
        row(self).and_then(|row| row.base_url)
    }

    /// Whether this name is a preset (a configuration of the `async_task` adapter).
    pub fn is_preset(self) -> bool {
        row(self).is_some_and(|row| row.async_task.is_some())
    }
}

impl ModelConfig {
    /// The base URL without a trailing slash (the preset's default when not configured).
    pub fn base(&self) -> String {
        self.base_url
            .as_deref()
            .or(self.adapter.default_base_url())
            .unwrap_or("")
            .trim_end_matches('/')
            .to_owned()
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

    #[test]
    fn every_adapter_kind_has_one_row() {
        // The exhaustive match makes a new variant fail to compile until it is listed here (and
        // then in `all`).
        let listed = |k: AdapterKind| match k {
            AdapterKind::OpenaiCompatible
            | AdapterKind::OpenaiImages
            | AdapterKind::AsyncTask
            | AdapterKind::Replicate
            | AdapterKind::Fal
            | AdapterKind::Dashscope
            | AdapterKind::OpenaiVideos
            | AdapterKind::Simulated => k,
        };
        let all = [
            AdapterKind::OpenaiCompatible,
            AdapterKind::OpenaiImages,
            AdapterKind::AsyncTask,
            AdapterKind::Replicate,
            AdapterKind::Fal,
            AdapterKind::Dashscope,
            AdapterKind::OpenaiVideos,
            AdapterKind::Simulated,
        ]
        .map(listed);
        for kind in all {
            let rows = ADAPTERS.iter().filter(|r| r.adapter == kind).count();
            assert_eq!(rows, 1, "{kind}");
        }
        assert_eq!(ADAPTERS.len(), all.len());
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
