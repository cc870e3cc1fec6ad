//! Every NanoStory workflow end to end through the HTTP API with the default simulated models:
//! started with `POST /api/workflows`, polled to completion, and its `result_data` has exactly the
//! fields of the contract's table with the right types. Invalid params answer 422 naming the field.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Server, error_body, token};
use serde_json::{Value, json};

const SCRIPT: &str = "第一场 咖啡馆 日\n林夏推门而入，环顾四周。\n林夏：你来了。\n陈默抬起头，笑了笑。\n\
                      第二场 街道 夜\n雨中，两人并肩走过霓虹灯下。";

fn keys(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect()
}

fn assert_keys(value: &Value, expected: &[&str]) {
    assert_eq!(keys(value), expected.iter().copied().collect(), "{value}");
}

fn assert_file_url(value: &Value) {
    let url = value
        .as_str()
        .unwrap_or_else(|| panic!("not a URL: {value}"));
    // Absolute, at the server's own address (no public base URL is configured).
    assert!(
        url.starts_with("http://127.0.0.1:") && url.contains("/files/"),
        "{url}"
    );
}

/// The contract's result shape of each single-step workflow, checked field by field.
fn check_result(workflow: &str, result: &Value) {
    match workflow {
        "storyboard_generation" => {
            assert_keys(result, &["scenes", "count", "tokens", "provider"]);
            let scenes = result["scenes"].as_array().unwrap();
            assert!(!scenes.is_empty());
            assert_eq!(result["count"], json!(scenes.len()));
            for scene in scenes {
                assert_keys(
                    scene,
                    &[
                        "order",
                        "shotType",
                        "description",
                        "hasAction",
                        "startFrame",
                        "endFrame",
                        "dialogue",
                        "duration",
                        "characters",
                        "location",
                        "emotion",
                    ],
                );
                assert!(scene["order"].is_i64() && scene["duration"].is_number());
                assert!(scene["hasAction"].is_boolean() && scene["characters"].is_array());
                assert!(scene["description"].is_string() && scene["shotType"].is_string());
            }
            assert!(result["tokens"].is_number() && result["provider"].is_string());
        }
        "character_extraction" => {
            assert_keys(result, &["characters", "count", "tokens", "provider"]);
            let characters = result["characters"].as_array().unwrap();
            assert_eq!(result["count"], json!(characters.len()));
            for character in characters {
                assert_keys(
                    character,
                    &["name", "appearance", "personality", "description"],
                );
                assert!(character["name"].is_string());
            }
        }
        "scene_extraction" => {
            assert_keys(result, &["scenes", "count", "tokens", "provider"]);
            let scenes = result["scenes"].as_array().unwrap();
            assert_eq!(result["count"], json!(scenes.len()));
            for scene in scenes {
                assert_keys(
                    scene,
                    &["name", "description", "environment", "lighting", "mood"],
                );
            }
        }
        "character_views_generation" => {
            assert_keys(
                result,
                &[
                    "frontViewUrl",
                    "sideViewUrl",
                    "backViewUrl",
                    "imageUrl",
                    "modelName",
                    "prompts",
                ],
            );
            for view in ["frontViewUrl", "sideViewUrl", "backViewUrl"] {
                assert_file_url(&result[view]);
            }
            assert_eq!(result["imageUrl"], result["frontViewUrl"]);
            assert!(result["modelName"].is_string() && result["prompts"].is_object());
        }
        "scene_image_generation" => {
            assert_keys(
                result,
                &[
                    "imageUrl",
                    "sceneId",
                    "prompt",
                    "imageModel",
                    "textModel",
                    "referenceImageUrl",
                    "styleDescription",
                ],
            );
            assert!(result["styleDescription"].is_string(), "{result}");
            assert_file_url(&result["imageUrl"]);
            assert_eq!(result["sceneId"], json!(21));
            assert!(result["prompt"].is_string());
        }
        "frame_generation" => {
            assert_keys(result, &["startFrame", "endFrame", "model"]);
            assert_file_url(&result["startFrame"]);
            assert_file_url(&result["endFrame"]);
        }
        "scene_video" => {
            assert_keys(result, &["videoUrl", "model", "prompt"]);
            assert_file_url(&result["videoUrl"]);
        }
        "script_only" => {
            assert_keys(
                result,
                &[
                    "content",
                    "title",
                    "tokens",
                    "provider",
                    "modelName",
                    "episodeNumber",
                ],
            );
            assert!(result["content"].as_str().is_some_and(|c| !c.is_empty()));
        }
        "single_frame_generation" => {
            assert_keys(
                result,
                &[
                    "startFrame",
                    "endFrame",
                    "imageUrl",
                    "prompt",
                    "imageModel",
                    "textModel",
                ],
            );
            assert_file_url(&result["startFrame"]);
            assert_eq!(result["endFrame"], Value::Null);
        }
        "smart_parse" => {
            assert_keys(result, &["config", "tokens", "provider", "rawContent"]);
            assert!(result["config"].is_object() && result["rawContent"].is_string());
        }
        "camera_run_generation" => {
            assert_keys(
                result,
                &[
                    "cameraRunPrompt",
                    "storyboardId",
                    "shotType",
                    "cameraMovement",
                    "duration",
                    "tokens",
                    "provider",
                ],
            );
            assert!(
                result["cameraRunPrompt"]
                    .as_str()
                    .is_some_and(|c| !c.is_empty())
            );
        }
        "batch_frame_generation" | "batch_scene_video_generation" => {
            assert_keys(
                result,
                &[
                    "total",
                    "completed",
                    "skipped",
                    "failed",
                    "results",
                    "model",
                ],
            );
            assert_eq!(result["completed"], result["total"], "{result}");
            for item in result["results"].as_array().unwrap() {
                assert_eq!(item["status"], "completed", "{item}");
                let url = item.get("startFrame").unwrap_or(&item["videoUrl"]);
                assert_file_url(url);
            }
        }
        "prompt_generate" => {
            assert_keys(result, &["prompt", "negativePrompt", "modelName"]);
            assert!(result["prompt"].as_str().is_some_and(|p| !p.is_empty()));
        }
        other => panic!("no expectation for {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_workflow_completes_through_the_api_with_the_contract_result_shape() {
    let server = Server::start();
    let token = token(41);
    let runs = [
        (
            "storyboard_generation",
            json!({"scriptContent": SCRIPT, "scriptTitle": "雨夜"}),
        ),
        (
            "character_extraction",
            json!({"scriptContent": SCRIPT, "scriptId": 5}),
        ),
        ("scene_extraction", json!({"scriptContent": SCRIPT})),
        (
            "character_views_generation",
            json!({"characterName": "林夏", "characterId": 12, "appearance": "短发，风衣", "style": "动漫风格"}),
        ),
        (
            "scene_image_generation",
            json!({"sceneName": "雨夜街道", "sceneId": 21, "mood": "忧郁"}),
        ),
        (
            "frame_generation",
            json!({"prompt": "a girl opens a cafe door, morning light"}),
        ),
        (
            "scene_video",
            json!({"prompt": "two people walk in the rain under neon", "duration": 3}),
        ),
        (
            "prompt_generate",
            json!({"description": "a lighthouse at dawn", "kind": "video"}),
        ),
        ("script_to_storyboard", json!({"scriptContent": SCRIPT})),
        (
            "script_only",
            json!({"title": "雨夜", "description": "林夏在雨夜开了一家咖啡馆"}),
        ),
        (
            "single_frame_generation",
            json!({"storyboardId": "3", "description": "雨夜咖啡馆的招牌"}),
        ),
        (
            "smart_parse",
            json!({"apiDoc": "POST https://api.example.com/v1/images {\"prompt\": \"...\"}"}),
        ),
        (
            "camera_run_generation",
            json!({"storyboardId": 4, "description": "林夏推开咖啡馆的门"}),
        ),
        (
            "batch_frame_generation",
            json!({"scriptId": 5, "storyboards": [
                {"id": 1, "prompt": "林夏推门", "hasAction": true},
                {"id": 2, "description": "雨夜街道"}
            ]}),
        ),
        (
            "batch_scene_video_generation",
            json!({"scriptId": 5, "storyboards": [
                {"id": 1, "prompt": "林夏推门"},
                {"id": 2, "description": "雨夜街道，霓虹闪烁"}
            ]}),
        ),
    ];
    let mut jobs = Vec::new();
    for (workflow, params) in &runs {
        jobs.push((
            *workflow,
            server.start_job(&token, workflow, params.clone()).await,
        ));
    }
    for (workflow, id) in jobs {
        let job = server
            .wait_job(&token, id, Duration::from_secs(90), common::is_terminal)
            .await;
        assert_eq!(job["status"], "completed", "{workflow}: {job}");
        assert_eq!(job["progress"], 100);
        let tasks = job["tasks"].as_array().unwrap();
        if workflow == "script_to_storyboard" {
            assert_eq!(tasks.len(), 3);
            check_result("storyboard_generation", &tasks[0]["result_data"]);
            check_result("character_extraction", &tasks[1]["result_data"]);
            check_result("scene_extraction", &tasks[2]["result_data"]);
            // Steps 1 and 2 worked from step 0's shots.
            assert!(
                tasks[1]["input_params"]["scenes"].is_array(),
                "{}",
                tasks[1]
            );
        } else if workflow == "scene_image_generation" {
            assert_eq!(tasks.len(), 2);
            assert_eq!(tasks[0]["task_type"], "scene_style_analysis");
            assert!(tasks[0]["result_data"]["styleDescription"].is_string());
            check_result(workflow, &tasks[1]["result_data"]);
        } else if workflow.starts_with("batch_") {
            // A fan-out step: its task, then one item per shot, in order, each with its result.
            assert_eq!(tasks.len(), 3, "{workflow}");
            check_result(workflow, &tasks[0]["result_data"]);
            for (index, item) in tasks[1..].iter().enumerate() {
                assert_eq!(item["parent_task_id"], tasks[0]["id"], "{item}");
                assert_eq!(item["item_index"], index, "{item}");
                assert_eq!(item["status"], "completed", "{item}");
                assert_eq!(
                    item["result_data"], tasks[0]["result_data"]["results"][index],
                    "{item}"
                );
            }
        } else {
            assert_eq!(tasks.len(), 1, "{workflow}");
            check_result(workflow, &tasks[0]["result_data"]);
        }
        // Generated media are served.
        let text = job.to_string();
        if let Some(start) = text.find("/files/") {
            let url: String = text[start..].chars().take_while(|c| *c != '"').collect();
            let file = server.client.get(server.url(&url)).send().await.unwrap();
            assert_eq!(file.status(), 200, "{url}");
        }
    }
}

#[tokio::test]
async fn types_list_the_whole_catalogue_and_invalid_params_name_the_field() {
    let server = Server::start();
    let token = token(42);
    let types: Value = server
        .get("/api/workflows/types", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed: BTreeSet<&str> = types["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["type"].as_str().unwrap())
        .collect();
    let expected = [
        "storyboard_generation",
        "character_extraction",
        "scene_extraction",
        "character_views_generation",
        "scene_image_generation",
        "frame_generation",
        "scene_video",
        "prompt_generate",
        "script_to_storyboard",
        "script_only",
        "single_frame_generation",
        "smart_parse",
        "camera_run_generation",
        "batch_frame_generation",
        "batch_scene_video_generation",
    ];
    assert_eq!(listed, expected.into_iter().collect());
    for workflow in types["workflows"].as_array().unwrap() {
        assert_eq!(
            workflow["totalSteps"],
            json!(workflow["steps"].as_array().unwrap().len())
        );
        assert_eq!(workflow["paramsSchema"]["type"], "object", "{workflow}");
    }

    let invalid = [
        ("storyboard_generation", json!({}), "scriptContent"),
        (
            "character_extraction",
            json!({"scriptId": 1}),
            "scriptContent",
        ),
        (
            "scene_extraction",
            json!({"scenes": "not a list"}),
            "scenes",
        ),
        (
            "character_views_generation",
            json!({"style": "x"}),
            "characterName",
        ),
        (
            "character_views_generation",
            json!({"characterName": "A", "width": "wide"}),
            "width",
        ),
        (
            "scene_image_generation",
            json!({"mood": "calm"}),
            "sceneName",
        ),
        ("frame_generation", json!({"prompt": 7}), "prompt"),
        (
            "scene_video",
            json!({"prompt": "x", "duration": 11}),
            "duration",
        ),
        (
            "prompt_generate",
            json!({"description": "x", "kind": "audio"}),
            "kind",
        ),
        (
            "script_to_storyboard",
            json!({"scriptContent": "   "}),
            "scriptContent",
        ),
    ];
    for (workflow, params, field) in invalid {
        let response = server
            .post("/api/workflows", &token)
            .json(&json!({"workflowType": workflow, "projectId": 1, "params": params}))
            .send()
            .await
            .unwrap();
        let body = error_body(response, 422).await;
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains(field),
            "{workflow}: `{message}` should name {field}"
        );
    }
}

#[tokio::test]
async fn usage_is_shown_on_the_task_the_job_and_in_metrics_by_model() {
    let server = Server::start();
    let token = token(43);
    let id = server
        .start_job(
            &token,
            "storyboard_generation",
            json!({"scriptContent": SCRIPT}),
        )
        .await;
    let job = server
        .wait_job(&token, id, Duration::from_secs(60), common::is_terminal)
        .await;
    assert_eq!(job["status"], "completed", "{job}");
    // The simulated text model reports tokens the way a chat completion does.
    let usage = &job["tasks"][0]["usage"];
    let prompt = usage["prompt_tokens"].as_u64().unwrap_or(0);
    assert!(prompt > 0, "{usage}");
    let models = usage["models"].as_object().unwrap();
    assert_eq!(models.len(), 1, "{usage}");
    let (model, part) = models.iter().next().unwrap();
    assert_eq!(part["prompt_tokens"], usage["prompt_tokens"]);
    assert_eq!(
        &job["usage"], usage,
        "one task: the job's sum is the task's"
    );

    let metrics = server.metrics().await;
    let line = format!("nosyntask_model_usage_total{{model=\"{model}\",unit=\"prompt_tokens\"}} ");
    let counted: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix(&line))
        .unwrap_or_else(|| panic!("no {line} in\n{metrics}"))
        .trim()
        .parse()
        .unwrap();
    assert!(counted >= prompt, "{counted} < {prompt}");
}
