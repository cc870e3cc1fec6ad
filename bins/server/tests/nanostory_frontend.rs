//! NanoStory's frontend against the real server binary, request by request, as it is written at
//! the seed commit (`a3b8d73d`) and today (`main`, `e0dce76f`): what `startWorkflow` / `runTask`
//! send at each call site, the polling of `useTaskRunner` and `useWorkflow`, the active-list
//! recovery, consume, cancel and resume, and the task-queue bubble's list. Every field that code
//! reads in an answer is checked.
//!
//! The requests are written from reading the frontend's source (hooks/useWorkflow.ts,
//! hooks/useTaskRunner.ts, views/StoryBoard/useSceneGeneration.ts,
//! components/TaskQueueBubble/useTaskQueue.ts, views/admin/AIModels/ModelTest); no code of it
//! is copied.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Options, Server, error_body, is_terminal, token};
use serde_json::{Value, json};

/// Two text models (the default and a chosen one), default image and video models, and a slow
/// video model to cancel while it runs.
const MODELS: &str = r#"
[[models]]
name = "sim-text"
kind = "text"
adapter = "simulated"
default = true

[[models]]
name = "DeepSeek Chat"
kind = "text"
adapter = "simulated"
simulated = { seed = 7 }

[[models]]
name = "sim-image"
kind = "image"
adapter = "simulated"
default = true

[[models]]
name = "Flux"
kind = "image"
adapter = "simulated"
simulated = { seed = 3 }

[[models]]
name = "sim-video"
kind = "video"
adapter = "simulated"
default = true

[[models]]
name = "Slow Video"
kind = "video"
adapter = "simulated"
simulated = { latency_ms = 30000 }
"#;

const WAIT: Duration = Duration::from_secs(30);

fn server() -> Server {
    Server::start_with(Options::default().config(MODELS))
}

/// The frontend's `fetchApi`: JSON in and out, the bearer token, the browser's language.
struct Frontend<'a> {
    server: &'a Server,
    token: String,
    language: &'static str,
}

impl<'a> Frontend<'a> {
    fn new(server: &'a Server, user: i64) -> Self {
        Frontend {
            server,
            token: token(user),
            language: "zh-CN,zh;q=0.9,en;q=0.8",
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request
            .header("Content-Type", "application/json")
            .header("Accept-Language", self.language)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `startWorkflow(workflowType, projectId, params)`.
    async fn start(&self, workflow_type: &str, project_id: Value, params: Value) -> (u16, Value) {
        let body =
            json!({"workflowType": workflow_type, "projectId": project_id, "params": params});
        self.send(self.server.post("/api/workflows", &self.token).json(&body))
            .await
    }

    /// `startWorkflow` that must be accepted; returns the job id after checking the answer the
    /// hooks read (`jobId`, `tasks`).
    async fn started(&self, workflow_type: &str, project_id: Value, params: Value) -> i64 {
        let (status, body) = self.start(workflow_type, project_id, params).await;
        assert_eq!(status, 202, "{workflow_type}: {body}");
        assert!(body["jobId"].as_i64().is_some(), "{body}");
        assert!(!body["tasks"].as_array().unwrap().is_empty(), "{body}");
        assert_eq!(body["tasks"][0]["status"], "pending");
        body["jobId"].as_i64().unwrap()
    }

    /// `getWorkflowStatus(jobId)`.
    async fn status(&self, job_id: i64) -> Value {
        let path = format!("/api/workflows/{job_id}");
        let (status, body) = self.send(self.server.get(&path, &self.token)).await;
        assert_eq!(status, 200, "{body}");
        check_job(&body);
        body
    }

    /// `useTaskRunner`'s poll loop until a terminal status: what it reads is `status`,
    /// `tasks[0].progress`, `tasks[0].result_data`, `error_message` / `tasks[0].error_message`.
    async fn poll(&self, job_id: i64) -> Value {
        let deadline = Instant::now() + WAIT;
        let mut last_progress = 0;
        loop {
            let job = self.status(job_id).await;
            let progress = job["tasks"][0]["progress"].as_i64().unwrap();
            assert!((0..=100).contains(&progress), "{job}");
            if job["tasks"].as_array().unwrap().len() == 1 {
                assert!(progress >= last_progress, "progress went back: {job}");
            }
            last_progress = progress;
            if is_terminal(&job) {
                return job;
            }
            assert!(
                Instant::now() < deadline,
                "job {job_id} did not finish: {job}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A job that must complete; returns the result `useTaskRunner` hands to its caller.
    async fn completed(&self, job_id: i64) -> (Value, Value) {
        let job = self.poll(job_id).await;
        assert_eq!(job["status"], "completed", "{job}");
        let last = job["tasks"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["progress"], 100, "{job}");
        (job.clone(), last["result_data"].clone())
    }

    /// `getActiveWorkflows(projectId)`.
    async fn active(&self, project_id: i64) -> Vec<Value> {
        let path = format!("/api/workflows/active?projectId={project_id}");
        let (status, body) = self.send(self.server.get(&path, &self.token)).await;
        assert_eq!(status, 200, "{body}");
        let jobs = body["jobs"].as_array().unwrap().clone();
        jobs.iter().for_each(check_job);
        jobs
    }

    /// `getWorkflowList({status})`, as the task-queue bubble polls it.
    async fn list(&self, query: &str) -> Vec<Value> {
        let path = format!("/api/workflows?{query}");
        let (status, body) = self.send(self.server.get(&path, &self.token)).await;
        assert_eq!(status, 200, "{body}");
        body["jobs"].as_array().unwrap().clone()
    }

    async fn action(&self, job_id: i64, action: &str) -> (u16, Value) {
        let path = format!("/api/workflows/{job_id}/{action}");
        self.send(self.server.post(&path, &self.token)).await
    }
}

/// The fields of `WorkflowJob` / `WorkflowTask` the frontend's types declare and reads.
fn check_job(job: &Value) {
    for key in [
        "id",
        "user_id",
        "workflow_type",
        "workflowName",
        "status",
        "current_step_index",
        "total_steps",
        "created_at",
    ] {
        assert!(!job[key].is_null(), "{key} missing: {job}");
    }
    for key in [
        "project_id",
        "input_params",
        "error_message",
        "started_at",
        "completed_at",
    ] {
        assert!(job.get(key).is_some(), "{key} missing: {job}");
    }
    assert!(job["input_params"].is_object(), "{job}");
    let tasks = job["tasks"].as_array().expect("tasks");
    assert_eq!(tasks.len() as i64, job["total_steps"].as_i64().unwrap());
    for task in tasks {
        for key in [
            "id",
            "job_id",
            "step_index",
            "task_type",
            "target_type",
            "status",
            "progress",
        ] {
            assert!(!task[key].is_null(), "task {key} missing: {task}");
        }
        for key in [
            "target_id",
            "model_name",
            "input_params",
            "result_data",
            "error_message",
            "started_at",
            "completed_at",
        ] {
            assert!(task.get(key).is_some(), "task {key} missing: {task}");
        }
    }
}

/// A generated file's URL: absolute with a configured public base URL, else under `/files/`.
fn is_media_url(url: &str) -> bool {
    url.starts_with("http") || url.starts_with("/files/")
}

/// The task-queue bubble's progress bar: the average of the tasks' progress.
fn bubble_progress(job: &Value) -> i64 {
    let tasks = job["tasks"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if tasks.is_empty() {
        return 0;
    }
    tasks
        .iter()
        .map(|t| t["progress"].as_i64().unwrap())
        .sum::<i64>()
        / tasks.len() as i64
}

// --- issue 15, point by point ----------------------------------------------------------------

/// Point 1: `textModel`/`imageModel`/`videoModel` choose the model, `modelName` stays an alias,
/// the resolved model (default included) is on the task, and a bad name is refused at start.
#[tokio::test]
async fn typed_model_fields_are_resolved_at_start_and_recorded() {
    let server = server();
    let ui = Frontend::new(&server, 1);

    let chosen = ui
        .started(
            "storyboard_generation",
            json!(1),
            json!({"scriptContent": "林冲推门而入。", "textModel": "DeepSeek Chat"}),
        )
        .await;
    let (job, _) = ui.completed(chosen).await;
    assert_eq!(job["tasks"][0]["model_name"], "DeepSeek Chat", "{job}");
    assert_eq!(job["input_params"]["textModel"], "DeepSeek Chat");

    let by_default = ui
        .started(
            "storyboard_generation",
            json!(1),
            json!({"scriptContent": "A knight rides at dawn."}),
        )
        .await;
    let (job, _) = ui.completed(by_default).await;
    assert_eq!(job["tasks"][0]["model_name"], "sim-text", "{job}");

    let alias = ui
        .started(
            "prompt_generate",
            json!(1),
            json!({"description": "a lighthouse", "modelName": "DeepSeek Chat"}),
        )
        .await;
    let (job, result) = ui.completed(alias).await;
    assert_eq!(job["tasks"][0]["model_name"], "DeepSeek Chat");
    assert_eq!(result["modelName"], "DeepSeek Chat");

    let image = ui
        .started(
            "character_views_generation",
            json!(1),
            json!({"characterName": "林冲", "imageModel": "Flux", "textModel": "DeepSeek Chat"}),
        )
        .await;
    let (job, result) = ui.completed(image).await;
    assert_eq!(job["tasks"][0]["model_name"], "Flux");
    assert_eq!(result["modelName"], "Flux");

    let cases = [
        (
            "storyboard_generation",
            json!({"scriptContent": "x", "textModel": "GPT-9"}),
            "textModel",
        ),
        (
            "frame_generation",
            json!({"prompt": "x", "imageModel": "DeepSeek Chat"}),
            "imageModel",
        ),
        (
            "scene_video",
            json!({"prompt": "x", "videoModel": "nope"}),
            "videoModel",
        ),
        (
            "character_views_generation",
            json!({"characterName": "x", "textModel": "Flux"}),
            "textModel",
        ),
        (
            "prompt_generate",
            json!({"description": "x", "modelName": "sim-video"}),
            "modelName",
        ),
    ];
    for (workflow, params, field) in cases {
        let response = server
            .post("/api/workflows", &ui.token)
            .header("Accept-Language", "en")
            .json(&json!({"workflowType": workflow, "projectId": 1, "params": params}))
            .send()
            .await
            .unwrap();
        let body = error_body(response, 422).await;
        assert_eq!(body["code"], "invalid_params");
        assert!(
            body["message"].as_str().unwrap().contains(field),
            "{workflow}: {body}"
        );
    }
}

/// Point 2: ids as NanoStory's routes pass them (`req.params.id`), and `projectId: null`.
#[tokio::test]
async fn string_ids_and_a_null_project_are_accepted() {
    let server = server();
    let ui = Frontend::new(&server, 2);
    let job_id = ui
        .started(
            "character_views_generation",
            json!("3"),
            json!({"characterId": "12", "characterName": "林冲"}),
        )
        .await;
    let (job, _) = ui.completed(job_id).await;
    assert_eq!(job["input_params"]["characterId"], 12, "{job}");
    assert_eq!(job["tasks"][0]["target_id"], 12);
    assert_eq!(job["project_id"], 3);

    let job_id = ui
        .started(
            "scene_image_generation",
            json!(3),
            json!({"sceneId": "5", "sceneName": "山神庙"}),
        )
        .await;
    let (job, _) = ui.completed(job_id).await;
    assert_eq!(job["input_params"]["sceneId"], 5);

    // The model test page: `startWorkflow(type, null, params)`.
    let job_id = ui
        .started(
            "prompt_generate",
            Value::Null,
            json!({"description": "test"}),
        )
        .await;
    let (job, _) = ui.completed(job_id).await;
    assert_eq!(job["project_id"], Value::Null, "{job}");

    let (status, body) = ui
        .start(
            "character_views_generation",
            json!(1),
            json!({"characterId": "twelve", "characterName": "x"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body["message"].as_str().unwrap().contains("characterId"));
}

/// Point 3: the task-queue bubble lists `pending,running` jobs and averages their tasks.
#[tokio::test]
async fn job_list_items_carry_their_tasks() {
    let server = server();
    let ui = Frontend::new(&server, 3);
    let running = ui
        .started(
            "scene_video",
            json!(1),
            json!({"prompt": "雪夜", "videoModel": "Slow Video"}),
        )
        .await;
    let done = ui
        .started("prompt_generate", json!(1), json!({"description": "x"}))
        .await;
    ui.completed(done).await;
    let deadline = Instant::now() + WAIT;
    let listed = loop {
        let jobs = ui.list("status=pending,running").await;
        let job = jobs.iter().find(|j| j["id"] == running).cloned().unwrap();
        if bubble_progress(&job) > 0 {
            break job;
        }
        assert!(Instant::now() < deadline, "no progress in the list: {job}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    check_job(&listed);
    assert_eq!(listed["tasks"][0]["task_type"], "scene_video");
    let all = ui.list("").await;
    let finished = all.iter().find(|j| j["id"] == done).unwrap();
    assert_eq!(bubble_progress(finished), 100, "{finished}");
    // The console's lighter form.
    let light = ui.list("tasks=false").await;
    assert!(light.iter().all(|j| j.get("tasks").is_none()), "{light:?}");
    ui.action(running, "cancel").await;
}

/// Point 4: NanoStory's names, messages in the caller's language with stable codes, and a
/// cancellation message on a cancelled job and its tasks.
#[tokio::test]
async fn names_and_messages_follow_accept_language() {
    let server = server();
    let ui = Frontend::new(&server, 4);
    let (status, types) = ui.send(server.get("/api/workflows/types", &ui.token)).await;
    assert_eq!(status, 200);
    let name = |t: &str| {
        types["workflows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["type"] == t)
            .map(|w| w["name"].as_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("{t} is not listed: {types}"))
    };
    assert_eq!(name("storyboard_generation"), "智能分镜");
    assert_eq!(name("frame_generation"), "分镜首尾帧生成");
    assert_eq!(name("scene_video"), "分镜视频生成");
    assert_eq!(name("scene_image_generation"), "场景图片生成");
    assert_eq!(name("character_views_generation"), "角色三视图生成");
    assert_eq!(name("character_extraction"), "角色提取");
    assert_eq!(name("scene_extraction"), "场景提取");

    let bad = json!({"workflowType": "frame_generation", "projectId": 1, "params": {}});
    let mut codes = Vec::new();
    for (language, expected) in [("zh-CN,zh;q=0.9", "必填"), ("en-US,en;q=0.9", "required")] {
        let response = server
            .post("/api/workflows", &ui.token)
            .header("Accept-Language", language)
            .json(&bad)
            .send()
            .await
            .unwrap();
        let body = error_body(response, 422).await;
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(expected), "{language}: {body}");
        assert!(message.contains("prompt"), "{language}: {body}");
        codes.push(body["code"].clone());
    }
    assert_eq!(codes[0], codes[1]);
    let response = server
        .get("/api/workflows/999999", &ui.token)
        .header("Accept-Language", "zh-CN")
        .send()
        .await
        .unwrap();
    let body = error_body(response, 404).await;
    assert!(
        body["message"].as_str().unwrap().contains("不存在"),
        "{body}"
    );
    assert_eq!(body["code"], "not_found");

    let (status, started) = ui
        .start("prompt_generate", json!(1), json!({"description": "x"}))
        .await;
    assert_eq!(status, 202);
    assert_eq!(started["message"], "工作流已启动");
}

#[tokio::test]
async fn cancelled_jobs_carry_a_cancellation_message() {
    let server = server();
    let ui = Frontend::new(&server, 5);
    let job_id = ui
        .started(
            "scene_video",
            json!(1),
            json!({"prompt": "雪夜", "videoModel": "Slow Video", "storyboardId": "8"}),
        )
        .await;
    server
        .wait_job(&ui.token, job_id, WAIT, |j| j["status"] == "running")
        .await;
    let (status, body) = ui.action(job_id, "cancel").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"jobId": job_id, "status": "cancelled"}));
    let job = ui.poll(job_id).await;
    assert_eq!(job["status"], "cancelled");
    // What useTaskRunner shows: `job.error_message || tasks[0].error_message || '任务失败'`.
    assert_eq!(job["error_message"], "用户取消", "{job}");
    assert_eq!(job["tasks"][0]["status"], "cancelled");
    assert_eq!(job["tasks"][0]["error_message"], "工作流已取消");
    let english = server
        .get(&format!("/api/workflows/{job_id}"), &ui.token)
        .header("Accept-Language", "en")
        .send()
        .await
        .unwrap();
    let english: Value = english.json().await.unwrap();
    assert_eq!(english["error_message"], "Cancelled by the user");

    // Resume continues it; cancel again ends it.
    let (status, body) = ui.action(job_id, "resume").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "resuming");
    let (status, _) = ui.action(job_id, "cancel").await;
    assert_eq!(status, 200);
}

// --- the replay ------------------------------------------------------------------------------

/// The seed commit's frontend: `useSceneGeneration` runs `frame_generation` with a prompt and
/// 640×360 and `scene_video` with the scene's params; the model test page starts `script_only`
/// (when there is one), `frame_generation` and `scene_video` with `projectId: null`.
#[tokio::test]
async fn replay_the_seed_frontend() {
    let server = server();
    let ui = Frontend::new(&server, 6);

    let frames = ui
        .started(
            "frame_generation",
            json!(7),
            json!({"prompt": "林冲雪夜踏入山神庙", "width": 640, "height": 360}),
        )
        .await;
    let (_, result) = ui.completed(frames).await;
    assert!(result["startFrame"].as_str().is_some_and(is_media_url));
    assert!(result["endFrame"].as_str().is_some_and(is_media_url));

    let video = ui
        .started(
            "scene_video",
            json!(7),
            json!({"prompt": "林冲推门", "imageUrl": result["startFrame"], "duration": 3}),
        )
        .await;
    let (_, video) = ui.completed(video).await;
    let url = video["video_url"].as_str().or(video["videoUrl"].as_str());
    assert!(url.is_some_and(is_media_url), "{video}");

    // ModelTest: `startWorkflow(workflowType, null as any, workflowParams)`.
    for (workflow, params) in [
        (
            "frame_generation",
            json!({"prompt": "test image", "imageModel": "Flux"}),
        ),
        (
            "scene_video",
            json!({"prompt": "test video", "videoModel": "sim-video"}),
        ),
    ] {
        let job_id = ui.started(workflow, Value::Null, params).await;
        let (job, _) = ui.completed(job_id).await;
        assert_eq!(job["project_id"], Value::Null);
    }

    // Finished jobs are consumed and leave the active list.
    let active = ui.active(7).await;
    assert!(active.iter().any(|j| j["id"] == frames));
    for job in &active {
        let (status, body) = ui.action(job["id"].as_i64().unwrap(), "consume").await;
        assert_eq!((status, body), (200, json!({"success": true})));
    }
    assert!(ui.active(7).await.is_empty());
}

/// Today's frontend: `useSceneGeneration` picks `frame_generation` or `single_frame_generation`
/// by `hasAction` and sends the shot's id and the chosen models; `scene_video` gets the shot id,
/// the models and a duration; `recoverTasks` maps active jobs back to `img_<storyboardId>` /
/// `vid_<storyboardId>` keys from `input_params.storyboardId`, and `clearTask` consumes.
#[tokio::test]
async fn replay_todays_frontend() {
    let server = server();
    let ui = Frontend::new(&server, 7);
    let extra = json!({"episodeNumber": 1, "storyboardIndex": 2, "isRegenerate": false});
    let with_extra = |mut params: Value| {
        params
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        params
    };

    let action = ui
        .started(
            "frame_generation",
            json!(9),
            with_extra(json!({
                "storyboardId": 41, "prompt": "林冲拔刀", "imageModel": "Flux",
                "textModel": "DeepSeek Chat", "width": 640, "height": 360
            })),
        )
        .await;
    let still = ui
        .started(
            "single_frame_generation",
            json!(9),
            with_extra(json!({
                "storyboardId": 42, "description": "山神庙外大雪", "imageModel": "Flux",
                "textModel": "DeepSeek Chat", "width": 640, "height": 360
            })),
        )
        .await;

    // The page reloads: recoverTasks(['frame_generation', 'single_frame_generation',
    // 'scene_video'], jobToTaskKey).
    let active = ui.active(9).await;
    let keys: Vec<String> = active
        .iter()
        .map(|job| {
            let id = &job["input_params"]["storyboardId"];
            assert!(!id.is_null(), "{job}");
            let prefix = if job["workflow_type"] == "scene_video" {
                "vid"
            } else {
                "img"
            };
            format!("{prefix}_{id}")
        })
        .collect();
    assert!(keys.contains(&"img_41".to_owned()), "{keys:?}");
    assert!(keys.contains(&"img_42".to_owned()), "{keys:?}");

    for (job_id, with_end) in [(action, true), (still, false)] {
        let (job, result) = ui.completed(job_id).await;
        assert_eq!(job["tasks"][0]["model_name"], "Flux", "{job}");
        let start = result["startFrame"].as_str();
        assert!(start.is_some_and(is_media_url), "{result}");
        assert_eq!(result["endFrame"].is_string(), with_end, "{result}");
        let (status, _) = ui.action(job_id, "consume").await;
        assert_eq!(status, 200);
    }

    // scene_video as today's frontend sends it: NanoStory's engine reads the shot by id; the
    // standalone engine needs the shot in the params and says which.
    let (status, body) = ui
        .start(
            "scene_video",
            json!(9),
            with_extra(json!({
                "storyboardId": "43", "videoModel": "sim-video", "textModel": "DeepSeek Chat",
                "duration": 3
            })),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("prompt") && message.contains("description"),
        "{body}"
    );
    let video = ui
        .started(
            "scene_video",
            json!(9),
            with_extra(json!({
                "storyboardId": "43", "videoModel": "sim-video", "textModel": "DeepSeek Chat",
                "duration": 3, "description": "林冲推门而入，风雪灌进庙里",
            })),
        )
        .await;
    let (job, result) = ui.completed(video).await;
    assert_eq!(job["input_params"]["storyboardId"], 43);
    assert_eq!(job["tasks"][0]["model_name"], "sim-video");
    let url = result["video_url"].as_str().or(result["videoUrl"].as_str());
    assert!(url.is_some_and(is_media_url), "{result}");
    assert!(!result["prompt"].as_str().unwrap().is_empty());

    // The task-queue bubble sees nothing pending once all are done.
    let queue = ui.list("status=pending,running").await;
    assert!(queue.is_empty(), "{queue:?}");
}
