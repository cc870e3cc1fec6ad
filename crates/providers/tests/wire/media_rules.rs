//! Image and video stand-ins that enforce the providers' documented sizes, durations and
//! reference inputs, answering violations with the providers' error bodies.

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use nosyntask_engine::ports::{ArtifactStore, MediaRequest, ModelCatalog};
use nosyntask_engine::{CancellationToken, Checkpoints};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, Request, ResponseTemplate};

use crate::common::*;

fn invalid_value(param: &str, got: &str, allowed: &[&str]) -> ResponseTemplate {
    let list: Vec<String> = allowed.iter().map(|s| format!("'{s}'")).collect();
    json_response(
        400,
        json!({"error": {
            "message": format!("Invalid value: '{got}'. Supported values are: {}.", list.join(", ")),
            "type": "invalid_request_error", "param": param, "code": "invalid_value"
        }}),
    )
}

/// Records the JSON bodies a stand-in saw.
type Seen = Arc<Mutex<Vec<Value>>>;

async fn mount_rule<F>(f: &Fixture, verb: &str, route: &str, rule: F) -> Seen
where
    F: Fn(&Value) -> ResponseTemplate + Send + Sync + 'static,
{
    let seen: Seen = Arc::default();
    let keep = seen.clone();
    Mock::given(method(verb))
        .and(path(route))
        .respond_with(Rule(move |r: &Request| {
            let body: Value = r.body_json().unwrap_or(Value::Null);
            keep.lock().unwrap().push(body.clone());
            rule(&body)
        }))
        .mount(&f.server)
        .await;
    seen
}

fn media_model(kind: &str, adapter: &str, id: &str, base: &str) -> Value {
    let mut table = json!({
        "name": id, "kind": kind, "adapter": adapter, "base_url": base, "model": id,
        "api_key_env": KEY_ENV, "timeout_secs": 20,
    });
    if adapter != "openai_images" {
        table["async_task"] = json!({"poll_interval_ms": 100});
    }
    table
}

fn sized(width: u32, height: u32) -> MediaRequest {
    MediaRequest {
        width,
        height,
        ..request("img")
    }
}

/// images.generate `size` (openai-python `image_generate_params.py`): "Must be one of 1024x1024,
/// 1536x1024 (landscape), 1024x1536 (portrait), or `auto` (default value) for the GPT image
/// models, … and one of 1024x1024, 1792x1024, or 1024x1792 for `dall-e-3`."
#[tokio::test]
async fn openai_images_sizes_are_fitted_to_the_model() {
    for (id, allowed, wide, tall) in [
        (
            "gpt-image-1",
            &["1024x1024", "1536x1024", "1024x1536", "auto"][..],
            "1536x1024",
            "1024x1536",
        ),
        (
            "dall-e-3",
            &["1024x1024", "1792x1024", "1024x1792"][..],
            "1792x1024",
            "1024x1792",
        ),
    ] {
        let f = Fixture::new().await;
        let png = base64::engine::general_purpose::STANDARD.encode(png_bytes());
        let allowed_sizes: Vec<&'static str> = allowed.to_vec();
        let seen = mount_rule(&f, "POST", "/v1/images/generations", move |body| {
            let size = body["size"].as_str().unwrap_or("auto");
            if !allowed_sizes.contains(&size) {
                return invalid_value("size", size, &allowed_sizes);
            }
            json_response(200, json!({"created": 1, "data": [{"b64_json": png}]}))
        })
        .await;
        let config = model_from(media_model(
            "image",
            "openai_images",
            id,
            &format!("{}/v1", f.uri()),
        ));
        let model = f.catalog(&[config]).image(None).unwrap();
        // NanoStory's scene (16:9) and character (2:3) sizes.
        for (w, h) in [(1024, 576), (512, 768)] {
            let out = model
                .generate(
                    sized(w, h),
                    nosyntask_engine::ports::MediaContext::detached(),
                )
                .await;
            assert!(out.is_ok(), "{id} {w}x{h}: {out:?}");
            assert_eq!(out.unwrap().usage.unwrap().images, Some(1));
        }
        let sizes: Vec<Value> = seen
            .lock()
            .unwrap()
            .iter()
            .map(|b| b["size"].clone())
            .collect();
        assert_eq!(sizes, vec![json!(wide), json!(tall)], "{id}");
    }
}

/// Mounts the OpenAI videos stand-in: POST /videos checks `size` and `seconds` ("allowed values:
/// 720x1280, 1280x720 … Defaults to 720x1280"; seconds "4", "8", "12"), then the video is
/// completed at once and its content served.
async fn openai_videos(f: &Fixture) -> Seen {
    let seen = mount_rule(f, "POST", "/v1/videos", |body| {
        let size = body["size"].as_str().unwrap_or("720x1280");
        let sizes = ["720x1280", "1280x720"];
        if !sizes.contains(&size) {
            return invalid_value("size", size, &sizes);
        }
        let seconds = body["seconds"].as_str().unwrap_or("4");
        if !["4", "8", "12"].contains(&seconds) {
            return invalid_value("seconds", seconds, &["4", "8", "12"]);
        }
        if let Some(reference) = body.get("input_reference") {
            // openai-python `ImageInputReferenceParam`: `{image_url}` ("a fully qualified URL
            // or base64-encoded data URL") or `{file_id}`; a bare string is not a JSON form.
            let Some(url) = reference.get("image_url").and_then(Value::as_str) else {
                return invalid_value("input_reference", &reference.to_string(), &["{image_url}", "{file_id}"]);
            };
            if let Err(why) = crate::standins::fetch_image(url) {
                return invalid_value("input_reference.image_url", &why, &["a URL or data URL of an image"]);
            }
        }
        json_response(
            200,
            json!({"id": "video_1", "object": "video", "model": "sora-2", "status": "queued", "progress": 0, "size": size, "seconds": seconds}),
        )
    })
    .await;
    Mock::given(method("GET"))
        .and(path("/v1/videos/video_1"))
        .respond_with(json_response(
            200,
            json!({"id": "video_1", "object": "video", "status": "completed", "progress": 100, "seconds": "4"}),
        ))
        .mount(&f.server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/videos/video_1/content"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(mp4_bytes(), "video/mp4"))
        .mount(&f.server)
        .await;
    seen
}

#[tokio::test]
async fn openai_videos_get_a_landscape_size_and_the_start_frame_inline() {
    let f = Fixture::new().await;
    let seen = openai_videos(&f).await;
    let frame = f
        .artifacts
        .put(png_bytes(), "image/png", "frame")
        .await
        .unwrap();
    let config = model_from(media_model(
        "video",
        "openai_videos",
        "sora-2",
        &format!("{}/v1", f.uri()),
    ));
    let model = f.catalog(&[config]).video(None).unwrap();
    // The scene video handler names no size: the shot must not come back portrait.
    let clip = MediaRequest {
        width: 0,
        height: 0,
        duration_secs: Some(5),
        image_url: Some(frame),
        ..request("clip")
    };
    let (ctx, _) = context(&Checkpoints::in_memory(None), &CancellationToken::new());
    let out = model.generate(clip, ctx).await;
    assert!(out.is_ok(), "{out:?}");
    let body = seen.lock().unwrap()[0].clone();
    assert_eq!(body["size"], "1280x720");
    assert_eq!(body["seconds"], "4");
    let reference = body["input_reference"]["image_url"]
        .as_str()
        .unwrap_or_default();
    let data = reference.strip_prefix("data:image/png;base64,").unwrap();
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap(),
        png_bytes()
    );
}

/// DashScope first-and-last-frame video (`wan2.1-kf2v-plus`): POST
/// /services/aigc/image2video/video-synthesis with `input.first_frame_url` and
/// `input.last_frame_url`, each "a public URL or a Base64-encoded image (data:{MIME};base64,…)".
/// The stand-in fetches both (or decodes the data URL). A URL DashScope cannot download fails
/// with its `{code, message, request_id}` body; the docs do not quote that message: the code
/// and the "Failed to download" wording are those users report (docs.apiyi.com, "Wan3.0 Failed
/// to download").
#[tokio::test]
async fn dashscope_maps_the_start_and_end_frames_as_fetchable_images() {
    let f = Fixture::new().await;
    // The end frame lives on another host (a CDN), which the stand-in downloads from.
    let cdn = wiremock::MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/end.png"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(png_bytes(), "image/png"))
        .mount(&cdn)
        .await;
    let end_url = format!("{}/end.png", cdn.uri());
    let seen = mount_rule(
        &f,
        "POST",
        "/api/v1/services/aigc/image2video/video-synthesis",
        move |body| {
            let input = &body["input"];
            for field in ["first_frame_url", "last_frame_url"] {
                let fetched = input[field]
                    .as_str()
                    .ok_or_else(|| "missing".to_owned())
                    .and_then(crate::standins::fetch_image);
                if let Err(why) = fetched {
                    return json_response(
                        400,
                        json!({"code": "InvalidParameter", "message": format!("Failed to download {}: {why}", input[field]), "request_id": "7a9e"}),
                    );
                }
            }
            json_response(200, json!({"output": {"task_status": "PENDING", "task_id": "ds1"}, "request_id": "7a9f"}))
        },
    )
    .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/tasks/ds1"))
        .respond_with(json_response(
            200,
            json!({"output": {"task_id": "ds1", "task_status": "SUCCEEDED", "video_url": format!("{}/out/ds1.mp4", f.uri())},
                   "usage": {"video_duration": 5, "video_count": 1}}),
        ))
        .mount(&f.server)
        .await;
    Mock::given(method("GET"))
        .and(path("/out/ds1.mp4"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(mp4_bytes(), "video/mp4"))
        .mount(&f.server)
        .await;
    let first = f
        .artifacts
        .put(png_bytes(), "image/png", "a")
        .await
        .unwrap();
    let mut table = media_model(
        "video",
        "dashscope",
        "wan2.1-kf2v-plus",
        &format!("{}/api/v1", f.uri()),
    );
    table["profile"] = json!({"prices": {"per_video_second": 0.1}});
    let config = model_from(table);
    let model = f.catalog(&[config]).video(None).unwrap();
    let clip = MediaRequest {
        image_url: Some(first),
        end_image_url: Some(end_url.clone()),
        ..request("clip")
    };
    let (ctx, _) = context(&Checkpoints::in_memory(None), &CancellationToken::new());
    let out = model.generate(clip, ctx).await;
    assert!(out.is_ok(), "{out:?}");
    // The task reports `usage.video_duration`; the profile prices a second at 0.1.
    let usage = out.unwrap().usage.unwrap();
    assert_eq!(
        (usage.video_seconds, usage.cost_micros),
        (Some(5), Some(500_000))
    );
    let body = seen.lock().unwrap()[0].clone();
    assert!(
        body["input"]["first_frame_url"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,"),
        "a /files/ path with no public URL is sent inline: {body}"
    );
    assert_eq!(body["input"]["last_frame_url"], end_url);
}

/// Kling on fal: `duration` is the enum "5" | "10" (fal model API schema); anything else is
/// fal's 422 `one_of` error (docs.fal.ai "Error Reference", mirrored in henjicc/Henji-AI
/// `docs/api/fal/base/errors.md`: `{"detail": [{loc, msg, type, url, ctx: {expected}, input}]}`).
#[tokio::test]
async fn kling_durations_are_fitted() {
    let f = Fixture::new().await;
    let app = "/fal-ai/kling-video/v2.1/standard/image-to-video";
    let uri = f.uri();
    let seen = mount_rule(&f, "POST", app, move |body| {
        if !matches!(body["duration"].as_str(), Some("5" | "10")) {
            return json_response(
                422,
                json!({"detail": [{"loc": ["body", "duration"], "msg": "Input should be '5' or '10'", "type": "one_of",
                    "url": "https://docs.fal.ai/errors/#one_of", "ctx": {"expected": ["5", "10"]}, "input": body["duration"]}]}),
            );
        }
        json_response(
            200,
            json!({"request_id": "k1", "status_url": format!("{uri}/q/k1/status"), "response_url": format!("{uri}/q/k1"), "cancel_url": format!("{uri}/q/k1/cancel")}),
        )
    })
    .await;
    Mock::given(method("GET"))
        .and(path("/q/k1/status"))
        .respond_with(json_response(200, json!({"status": "COMPLETED"})))
        .mount(&f.server)
        .await;
    Mock::given(method("GET"))
        .and(path("/q/k1"))
        .respond_with(json_response(
            200,
            json!({"video": {"url": format!("{}/out/k1.mp4", f.uri())}}),
        ))
        .mount(&f.server)
        .await;
    Mock::given(method("GET"))
        .and(path("/out/k1.mp4"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(mp4_bytes(), "video/mp4"))
        .mount(&f.server)
        .await;
    let config = model_from(media_model(
        "video",
        "fal",
        "fal-ai/kling-video/v2.1/standard/image-to-video",
        &f.uri(),
    ));
    let model = f.catalog(&[config]).video(None).unwrap();
    let clip = MediaRequest {
        duration_secs: Some(8),
        ..request("clip")
    };
    let (ctx, _) = context(&Checkpoints::in_memory(None), &CancellationToken::new());
    let out = model.generate(clip, ctx).await;
    assert!(out.is_ok(), "{out:?}");
    assert_eq!(seen.lock().unwrap()[0]["duration"], "10");
}
