//! Loopback stand-ins of the real providers, one per API the presets speak. Each enforces the
//! documented rules the workflows could break (token limits and parameter names, sizes,
//! durations, reference frames it must be able to fetch) and answers a violation with the
//! provider's error body, quoted from its docs or SDK (the comment names the source). A stand-in
//! reports usage the way its provider does, so the runs also check what a task records.

#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// The JSON bodies a stand-in accepted or refused, in order, with the path they were sent to.
pub type Seen = Arc<Mutex<Vec<(String, Value)>>>;

/// Answers each request with what the closure makes of it.
struct Rule<F>(F);

impl<F> Respond for Rule<F>
where
    F: Fn(&Request) -> ResponseTemplate + Send + Sync + 'static,
{
    fn respond(&self, request: &Request) -> ResponseTemplate {
        (self.0)(request)
    }
}

fn reply(status: u16, body: Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(body)
}

/// Fetches a reference image as the provider would: a `data:` URL is decoded, an http(s) URL
/// downloaded (on its own thread: the stand-in's server must keep answering). `Err` says why
/// the provider could not read it; a server path such as `/files/…` means nothing to a
/// provider on the internet.
pub fn fetch_image(reference: &str) -> Result<Vec<u8>, String> {
    let bytes = if let Some(rest) = reference.strip_prefix("data:") {
        let (meta, data) = rest.split_once(',').ok_or("a data URL without a comma")?;
        if !meta.starts_with("image/") || !meta.ends_with(";base64") {
            return Err(format!("a data URL of {meta}, not a base64 image"));
        }
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|e| format!("bad base64: {e}"))?
    } else if reference.starts_with("http://") || reference.starts_with("https://") {
        let url = reference.to_owned();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let response = reqwest::get(&url).await.map_err(|e| e.to_string())?;
                if !response.status().is_success() {
                    return Err(format!("{url} answered {}", response.status()));
                }
                response
                    .bytes()
                    .await
                    .map(|b| b.to_vec())
                    .map_err(|e| e.to_string())
            })
        })
        .join()
        .map_err(|_| "the download thread panicked".to_owned())??
    } else {
        return Err(format!("{reference:?} is not a URL the provider can fetch"));
    };
    let is_image = bytes.starts_with(b"\x89PNG") || bytes.starts_with(b"\xff\xd8");
    if is_image {
        Ok(bytes)
    } else {
        Err("the file is not a PNG or JPEG image".to_owned())
    }
}

/// A real PNG and the start of an MP4 file: what the adapters' downloads check.
pub fn png() -> Vec<u8> {
    let request = nosyntask_engine::ports::MediaRequest {
        prompt: "fixture".into(),
        width: 64,
        height: 48,
        ..Default::default()
    };
    nosyntask_providers::simulated::simulated_media(
        nosyntask_engine::ports::ModelKind::Image,
        &request,
        1,
    )
    .unwrap()
    .0
}

pub fn mp4() -> Vec<u8> {
    let mut bytes = b"\0\0\0\x20ftypisom\0\0\x02\0isomiso2avc1mp41".to_vec();
    bytes.extend_from_slice(&[0u8; 64]);
    bytes
}

/// Serves the generated files the providers' results point at.
async fn serve_outputs(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path_regex(r"^/out/.*\.png$"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(png(), "image/png"))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(r"^/out/.*\.mp4$"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(mp4(), "video/mp4"))
        .mount(server)
        .await;
}

async fn mount_post<F>(server: &MockServer, route: &str, seen: &Seen, rule: F)
where
    F: Fn(&Value) -> ResponseTemplate + Send + Sync + 'static,
{
    let keep = seen.clone();
    Mock::given(method("POST"))
        .and(path(route))
        .respond_with(Rule(move |r: &Request| {
            let body: Value = r.body_json().unwrap_or(Value::Null);
            keep.lock()
                .unwrap()
                .push((r.url.path().to_owned(), body.clone()));
            rule(&body)
        }))
        .mount(server)
        .await;
}

async fn mount_get(server: &MockServer, route: &str, body: Value) {
    Mock::given(method("GET"))
        .and(path(route))
        .respond_with(reply(200, body))
        .mount(server)
        .await;
}

// ---------------------------------------------------------------------------------------------
// Chat completions
// ---------------------------------------------------------------------------------------------

/// What one chat completions API refuses.
#[derive(Debug, Clone, Copy)]
pub struct ChatRules {
    pub model: &'static str,
    /// The largest `max_tokens` (or `max_completion_tokens`) accepted.
    pub max_output: u64,
    /// gpt-5 / o-series: `max_tokens` and a temperature other than 1 are refused.
    pub reasoning: bool,
    /// Qwen3 open-source models in DashScope compatible mode: a non-streaming call must send
    /// `enable_thinking: false`.
    pub needs_thinking_off: bool,
    /// The body of a `max_tokens` above `max_output`.
    pub too_many_tokens: fn(u64, u64) -> Value,
}

/// OpenAI chat completions: "max_tokens is too large: 20000. This model supports at most 16384
/// completion tokens, whereas you provided 20000." (the API's 400, as quoted in the test tables
/// of projects that parse it; openai-python's `BadRequestError` carries this `{error: {message,
/// type, param, code}}` body). For reasoning models (`openai-python`
/// `CompletionCreateParams.max_tokens`: "not compatible with o-series models") the API answers
/// `unsupported_parameter`.
pub fn openai_too_many(max: u64, got: u64) -> Value {
    json!({"error": {"message": format!("max_tokens is too large: {got}. This model supports at most {max} completion tokens, whereas you provided {got}."),
                     "type": "invalid_request_error", "param": "max_tokens", "code": null}})
}

/// DeepSeek: `{"error":{"message":"Invalid max_tokens value, the valid range of max_tokens is
/// [1, 8192]","type":"invalid_request_error","param":null,"code":"invalid_request_error"}}`
/// (quoted in deepseek-ai/DeepSeek-V3#69).
pub fn deepseek_too_many(max: u64, _got: u64) -> Value {
    json!({"error": {"message": format!("Invalid max_tokens value, the valid range of max_tokens is [1, {max}]"),
                     "type": "invalid_request_error", "param": null, "code": "invalid_request_error"}})
}

/// DashScope compatible mode: "Range of max_tokens should be [1, xxx]" (Qwen Cloud's error code
/// reference, "max_tokens is out of range"), prefixed `InternalError.Algo.InvalidParameter:` as
/// the API sends it, in the OpenAI-shaped body of compatible mode.
pub fn dashscope_too_many(max: u64, _got: u64) -> Value {
    json!({"error": {"message": format!("<400> InternalError.Algo.InvalidParameter: Range of max_tokens should be [1, {max}]"),
                     "type": "invalid_request_error", "param": null, "code": "invalid_parameter_error"}})
}

/// Ollama's OpenAI-compatible endpoint (`openai/openai.go`, `NewError`): 400s are
/// `invalid_request_error`, in `{error: {message, type, param, code}}`. Ollama takes any
/// `max_tokens` (it becomes `num_predict`), so the limit here is only the configured one.
pub fn ollama_too_many(max: u64, got: u64) -> Value {
    json!({"error": {"message": format!("max_tokens {got} is above this deployment's num_predict limit {max}"),
                     "type": "invalid_request_error", "param": null, "code": null}})
}

pub const GPT_4O: ChatRules = ChatRules {
    model: "gpt-4o",
    max_output: 16_384,
    reasoning: false,
    needs_thinking_off: false,
    too_many_tokens: openai_too_many,
};
pub const GPT_5: ChatRules = ChatRules {
    model: "gpt-5-mini",
    max_output: 128_000,
    reasoning: true,
    needs_thinking_off: false,
    too_many_tokens: openai_too_many,
};
pub const DEEPSEEK: ChatRules = ChatRules {
    model: "deepseek-chat",
    max_output: 8192,
    reasoning: false,
    needs_thinking_off: false,
    too_many_tokens: deepseek_too_many,
};
pub const QWEN_PLUS: ChatRules = ChatRules {
    model: "qwen-plus",
    max_output: 8192,
    reasoning: false,
    needs_thinking_off: false,
    too_many_tokens: dashscope_too_many,
};
pub const QWEN3: ChatRules = ChatRules {
    model: "qwen3-32b",
    max_output: 8192,
    reasoning: false,
    needs_thinking_off: true,
    too_many_tokens: dashscope_too_many,
};
pub const OLLAMA: ChatRules = ChatRules {
    model: "qwen3:8b",
    max_output: 4096,
    reasoning: false,
    needs_thinking_off: false,
    too_many_tokens: ollama_too_many,
};

/// What a chat call is answered with when it breaks a rule.
fn chat_violation(rules: &ChatRules, body: &Value) -> Option<Value> {
    let invalid = |message: String, param: Value, code: &str| json!({"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}});
    if rules.reasoning {
        // The API's answers to o-series / gpt-5 requests (also quoted in the profile presets).
        if body.get("max_tokens").is_some() {
            return Some(invalid(
                "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.".into(),
                json!("max_tokens"),
                "unsupported_parameter",
            ));
        }
        if let Some(t) = body.get("temperature").and_then(Value::as_f64)
            && t != 1.0
        {
            return Some(invalid(
                format!(
                    "Unsupported value: 'temperature' does not support {t} with this model. Only the default (1) value is supported."
                ),
                json!("temperature"),
                "unsupported_value",
            ));
        }
    }
    let limit = body
        .get("max_tokens")
        .or_else(|| body.get("max_completion_tokens"))
        .and_then(Value::as_u64);
    if let Some(got) = limit
        && !(1..=rules.max_output).contains(&got)
    {
        return Some((rules.too_many_tokens)(rules.max_output, got));
    }
    let streaming = body.get("stream").and_then(Value::as_bool) == Some(true);
    if rules.needs_thinking_off && !streaming && body.get("enable_thinking") != Some(&json!(false))
    {
        // Model Studio, "Deep thinking" (Qwen3 open-source models think by default; thinking is
        // only available with streaming output); the message as Qwen Cloud's error-code
        // reference lists it under `InvalidParameter`.
        return Some(
            json!({"error": {"code": "invalid_parameter_error", "param": null,
            "message": "parameter.enable_thinking must be set to false for non-streaming calls",
            "type": "invalid_request_error"}}),
        );
    }
    None
}

/// Mounts `POST {prefix}/chat/completions`: the first answer is cut off at the token limit
/// (`finish_reason: "length"`), the next ones are whole. Every answer reports 100 prompt and 50
/// completion tokens.
pub async fn chat(
    server: &MockServer,
    prefix: &str,
    rules: ChatRules,
    cut: &'static str,
    whole: &'static str,
) -> Seen {
    let seen: Seen = Arc::default();
    let calls = Arc::new(AtomicUsize::new(0));
    mount_post(server, &format!("{prefix}/chat/completions"), &seen, move |body| {
        if let Some(error) = chat_violation(&rules, body) {
            return reply(400, error);
        }
        let first = calls.fetch_add(1, Ordering::SeqCst) == 0;
        let (content, reason) = if first { (cut, "length") } else { (whole, "stop") };
        reply(200, json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": rules.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": reason}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150}
        }))
    })
    .await;
    seen
}

// ---------------------------------------------------------------------------------------------
// OpenAI images
// ---------------------------------------------------------------------------------------------

/// `images.generate` `size` (openai-python `image_generate_params.py`): "Must be one of
/// 1024x1024, 1536x1024 (landscape), 1024x1536 (portrait), or `auto` (default value) for the GPT
/// image models, … and one of 1024x1024, 1792x1024, or 1024x1792 for `dall-e-3`." A size outside
/// the list is the API's `invalid_value` 400. gpt-image-1 "will always return base64-encoded
/// images" (`response_format` is only for dall-e-2/3) and reports token usage; dall-e-3 answers
/// URLs by default (they expire after an hour).
pub async fn openai_images(server: &MockServer, model: &'static str) -> Seen {
    let seen: Seen = Arc::default();
    let uri = server.uri();
    let gpt_image = model.starts_with("gpt-image");
    let sizes: &'static [&'static str] = if gpt_image {
        &["1024x1024", "1536x1024", "1024x1536", "auto"]
    } else {
        &["1024x1024", "1792x1024", "1024x1792"]
    };
    let png64 = base64::engine::general_purpose::STANDARD.encode(png());
    let count = Arc::new(AtomicUsize::new(0));
    mount_post(server, "/v1/images/generations", &seen, move |body| {
        let size = body["size"].as_str().unwrap_or(if gpt_image { "auto" } else { "1024x1024" });
        if !sizes.contains(&size) {
            let list: Vec<String> = sizes.iter().map(|s| format!("'{s}'")).collect();
            return reply(400, json!({"error": {
                "message": format!("Invalid value: '{size}'. Supported values are: {}.", list.join(", ")),
                "type": "invalid_request_error", "param": "size", "code": "invalid_value"}}));
        }
        if gpt_image && body.get("response_format").is_some() {
            return reply(400, json!({"error": {"message": "Unknown parameter: 'response_format'.",
                "type": "invalid_request_error", "param": "response_format", "code": "unknown_parameter"}}));
        }
        let n = count.fetch_add(1, Ordering::SeqCst);
        if gpt_image {
            reply(200, json!({"created": 1, "data": [{"b64_json": png64}],
                "usage": {"input_tokens": 50, "output_tokens": 4160, "total_tokens": 4210,
                          "input_tokens_details": {"image_tokens": 0, "text_tokens": 50}}}))
        } else {
            reply(200, json!({"created": 1, "data": [{"url": format!("{uri}/out/dalle-{n}.png"), "revised_prompt": "…"}]}))
        }
    })
    .await;
    serve_outputs(server).await;
    seen
}

// ---------------------------------------------------------------------------------------------
// Video task APIs
// ---------------------------------------------------------------------------------------------

/// Replicate, Kling v2.1 (`kwaivgi/kling-v2.1`): `POST /v1/models/{owner}/{name}/predictions`
/// with `input.start_image` (required: Kling v2.1 is image-to-video) and `duration` 5 or 10;
/// `GET /v1/predictions/{id}` until `succeeded`, `output` the video URL. A value outside the
/// model's schema is Replicate's 422, as API users quote it:
/// `{"detail":"- input.output_format: output_format must be one of the following: \"jpg\",
/// \"png\"\n","status":422,"title":"Input validation failed","invalid_fields":[{"type":"enum",
/// "field":"input.output_format","description":"…"}]}` (replicate-python's `ReplicateError`
/// reads these RFC 7807 fields). No public source shows the body of a file input Replicate
/// cannot download; it is given here in the same validation shape.
pub async fn replicate(server: &MockServer) -> Seen {
    let seen: Seen = Arc::default();
    let uri = server.uri();
    let base = uri.clone();
    mount_post(server, "/v1/models/kwaivgi/kling-v2.1/predictions", &seen, move |body| {
        let input = &body["input"];
        let invalid = |kind: &str, field: &str, description: String| {
            reply(422, json!({"detail": format!("- input.{field}: {description}\n"), "status": 422,
                "title": "Input validation failed",
                "invalid_fields": [{"type": kind, "field": format!("input.{field}"), "description": description}]}))
        };
        let duration = input["duration"].to_string();
        if !matches!(duration.trim_matches('"'), "5" | "10") {
            return invalid("enum", "duration", "duration must be one of the following: 5, 10".into());
        }
        match input["start_image"].as_str().map(fetch_image) {
            Some(Ok(_)) => {}
            Some(Err(why)) => return invalid("format", "start_image", format!("could not read the file: {why}")),
            None => return invalid("required", "start_image", "start_image is required".into()),
        }
        reply(201, json!({"id": "rp1", "model": "kwaivgi/kling-v2.1", "status": "starting", "input": input,
            "urls": {"get": format!("{base}/v1/predictions/rp1"), "cancel": format!("{base}/v1/predictions/rp1/cancel")}}))
    })
    .await;
    mount_get(
        server,
        "/v1/predictions/rp1",
        json!({"id": "rp1", "status": "succeeded", "output": format!("{uri}/out/rp1.mp4"),
               "metrics": {"predict_time": 93.2}}),
    )
    .await;
    serve_outputs(server).await;
    seen
}

/// fal queue, Kling v2.1 image-to-video: `POST queue.fal.run/{model}` answers `{request_id,
/// status_url, response_url, cancel_url}`. Errors are fal's documented shape (docs.fal.ai
/// "Error Reference", mirrored in henjicc/Henji-AI `docs/api/fal/base/errors.md`): a `detail`
/// array of `{loc, msg, type, url, ctx?, input?}`; a value outside an enum is 422 `one_of`
/// (`"msg": "Input should be 'EulerA' or 'DPM++'"`, `ctx.expected`), a URL fal cannot download
/// 422 `file_download_error` (`"msg": "File download error"`).
pub async fn fal(server: &MockServer) -> Seen {
    let seen: Seen = Arc::default();
    let uri = server.uri();
    let app = "/fal-ai/kling-video/v2.1/standard/image-to-video";
    let base = uri.clone();
    mount_post(server, app, &seen, move |body| {
        let duration = body["duration"].as_str().unwrap_or("5");
        if !matches!(duration, "5" | "10") {
            return reply(422, json!({"detail": [{"loc": ["body", "duration"], "msg": "Input should be '5' or '10'",
                "type": "one_of", "url": "https://docs.fal.ai/errors/#one_of", "ctx": {"expected": ["5", "10"]}, "input": duration}]}));
        }
        for field in ["image_url", "tail_image_url"] {
            if let Some(reference) = body[field].as_str()
                && fetch_image(reference).is_err()
            {
                return reply(422, json!({"detail": [{"loc": ["body", field], "msg": "File download error",
                    "type": "file_download_error", "url": "https://docs.fal.ai/errors/#file_download_error", "input": reference}]}));
            }
        }
        if body["image_url"].as_str().is_none() {
            return reply(422, json!({"detail": [{"loc": ["body", "image_url"], "msg": "Field required", "type": "missing"}]}));
        }
        reply(200, json!({"request_id": "fal1", "status_url": format!("{base}/q/fal1/status"),
            "response_url": format!("{base}/q/fal1"), "cancel_url": format!("{base}/q/fal1/cancel")}))
    })
    .await;
    mount_get(
        server,
        "/q/fal1/status",
        json!({"status": "COMPLETED", "request_id": "fal1"}),
    )
    .await;
    mount_get(
        server,
        "/q/fal1",
        json!({"video": {"url": format!("{uri}/out/fal1.mp4")}}),
    )
    .await;
    serve_outputs(server).await;
    seen
}

/// DashScope video synthesis (Model Studio API reference). Text-to-video (`wan2.1-t2v-turbo`)
/// and image-to-video at `video-generation/video-synthesis`, first-and-last-frame
/// (`wan2.1-kf2v-plus`) at `image2video/video-synthesis` with `input.first_frame_url` and
/// `input.last_frame_url`, each "a public URL or a Base64-encoded image (data:{MIME};base64,…)";
/// the request needs `X-DashScope-Async: enable`. wan2.1's `duration` is 5. Errors are
/// `{code, message, request_id}`. The message of a reference DashScope cannot download is
/// not in the docs; the code (`InvalidParameter`) and the wording "Failed to download" are
/// those users report from the API (docs.apiyi.com "Wan3.0 Failed to download").
pub async fn dashscope(server: &MockServer) -> Seen {
    let seen: Seen = Arc::default();
    let uri = server.uri();
    let invalid = |message: String| {
        reply(
            400,
            json!({"code": "InvalidParameter", "message": message, "request_id": "7a9e0b4c"}),
        )
    };
    for route in [
        "/api/v1/services/aigc/video-generation/video-synthesis",
        "/api/v1/services/aigc/image2video/video-synthesis",
    ] {
        let keyframes = route.contains("image2video");
        mount_post(server, route, &seen, move |body| {
            let input = &body["input"];
            let model = body["model"].as_str().unwrap_or_default();
            if keyframes != model.contains("kf2v") {
                return reply(400, json!({"code": "InvalidParameter", "message": "Model not exist.", "request_id": "7a9e0b4d"}));
            }
            if let Some(d) = body["parameters"]["duration"].as_u64()
                && model.starts_with("wan2.1")
                && d != 5
            {
                return invalid(format!("The parameter duration {d} is invalid: wan2.1 generates 5-second videos"));
            }
            let frames: &[&str] = if keyframes { &["first_frame_url", "last_frame_url"] } else { &["img_url"] };
            for field in frames {
                match input[*field].as_str() {
                    Some(reference) => {
                        if let Err(why) = fetch_image(reference) {
                            return invalid(format!("Failed to download {reference}: {why}"));
                        }
                    }
                    None if keyframes && *field == "first_frame_url" => {
                        return invalid("Field required: input.first_frame_url".into());
                    }
                    None => {}
                }
            }
            reply(200, json!({"output": {"task_status": "PENDING", "task_id": "ds1"}, "request_id": "7a9f"}))
        })
        .await;
    }
    mount_get(
        server,
        "/api/v1/tasks/ds1",
        json!({"request_id": "7b00", "output": {"task_id": "ds1", "task_status": "SUCCEEDED",
               "video_url": format!("{uri}/out/ds1.mp4")},
               "usage": {"video_duration": 5, "video_ratio": "1280*720", "video_count": 1}}),
    )
    .await;
    serve_outputs(server).await;
    seen
}

/// The OpenAI videos API (openai-python `video_create_params.py`): `size` "720x1280, 1280x720,
/// 1024x1792, 1792x1024" (sora-2 renders the first two), `seconds` "4", "8" or "12",
/// `input_reference` in a JSON body `{image_url}`, "a fully qualified URL or base64-encoded data
/// URL" (`ImageInputReferenceParam`), which the stand-in fetches. Out-of-list values are the
/// API's `invalid_value` 400 (the wording as API users quote it).
pub async fn openai_videos(server: &MockServer) -> Seen {
    let seen: Seen = Arc::default();
    mount_post(server, "/v1/videos", &seen, |body| {
        let invalid = |param: &str, got: &str, allowed: &[&str]| {
            let list: Vec<String> = allowed.iter().map(|s| format!("'{s}'")).collect();
            reply(400, json!({"error": {"message": format!("Invalid value: '{got}'. Supported values are: {}.", list.join(", ")),
                "type": "invalid_request_error", "param": param, "code": "invalid_value"}}))
        };
        let size = body["size"].as_str().unwrap_or("720x1280");
        if !["720x1280", "1280x720"].contains(&size) {
            return invalid("size", size, &["720x1280", "1280x720"]);
        }
        let seconds = body["seconds"].as_str().unwrap_or("4");
        if !["4", "8", "12"].contains(&seconds) {
            return invalid("seconds", seconds, &["4", "8", "12"]);
        }
        if let Some(reference) = body.get("input_reference") {
            let Some(url) = reference.get("image_url").and_then(Value::as_str) else {
                return invalid("input_reference", &reference.to_string(), &["{image_url}", "{file_id}"]);
            };
            if let Err(why) = fetch_image(url) {
                return invalid("input_reference.image_url", &why, &["a URL or data URL of an image"]);
            }
        }
        reply(200, json!({"id": "video_1", "object": "video", "model": "sora-2", "status": "queued",
            "progress": 0, "size": size, "seconds": seconds}))
    })
    .await;
    mount_get(
        server,
        "/v1/videos/video_1",
        json!({"id": "video_1", "object": "video", "status": "completed", "progress": 100, "seconds": "4"}),
    )
    .await;
    Mock::given(method("GET"))
        .and(path("/v1/videos/video_1/content"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(mp4(), "video/mp4"))
        .mount(server)
        .await;
    seen
}

/// Serves an artifact directory over HTTP, as the server's `/files/` route does behind a public
/// base URL, so providers that fetch reference images by URL can reach them.
pub async fn file_server(artifacts: Arc<nosyntask_providers::LocalArtifacts>) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(Rule(move |r: &Request| {
            match artifacts
                .resolve(r.url.path())
                .and_then(|p| std::fs::read(p).ok())
            {
                Some(bytes) => ResponseTemplate::new(200).set_body_raw(bytes, "image/png"),
                None => ResponseTemplate::new(404),
            }
        }))
        .mount(&server)
        .await;
    server
}
