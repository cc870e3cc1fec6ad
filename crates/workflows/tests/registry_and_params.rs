//! The registry lists the workflows of today's NanoStory with their steps, and each one's params schema rejects
//! a missing or mistyped required param naming the field.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::simulated;

fn registry() -> nosyntask_engine::Registry {
    let dir = tempfile::tempdir().unwrap();
    nosyntask_workflows::registry(simulated(dir.path()))
}

/// A workflow as listed: type, display name, steps as (task type, target type).
type Listed<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>);

#[test]
fn lists_the_catalogue_of_todays_nanostory_with_their_steps() {
    let registry = registry();
    let listed: Vec<Listed> = registry
        .all()
        .iter()
        .map(|w| {
            let steps = w
                .steps
                .iter()
                .map(|s| (s.task_type.as_str(), s.target_type.as_str()))
                .collect();
            (w.workflow_type.as_str(), w.name.as_str(), steps)
        })
        .collect();
    assert_eq!(
        listed,
        vec![
            (
                "storyboard_generation",
                "智能分镜",
                vec![("storyboard", "script")]
            ),
            (
                "character_extraction",
                "角色提取",
                vec![("character_extraction", "script")]
            ),
            (
                "scene_extraction",
                "场景提取",
                vec![("scene_extraction", "script")]
            ),
            (
                "character_views_generation",
                "角色三视图生成",
                vec![("character_views", "character")]
            ),
            (
                "scene_image_generation",
                "场景图片生成",
                vec![
                    ("scene_style_analysis", "scene"),
                    ("scene_image_generation", "scene")
                ]
            ),
            (
                "frame_generation",
                "分镜首尾帧生成",
                vec![("frame_generation", "storyboard")]
            ),
            (
                "scene_video",
                "分镜视频生成",
                vec![("scene_video", "storyboard")]
            ),
            (
                "prompt_generate",
                "提示词生成",
                vec![("prompt_generate", "prompt")]
            ),
            (
                "script_to_storyboard",
                "剧本转分镜",
                vec![
                    ("storyboard", "script"),
                    ("character_extraction", "script"),
                    ("scene_extraction", "script")
                ]
            ),
            (
                "script_only",
                "剧本生成",
                vec![("script_generation", "script")]
            ),
            (
                "single_frame_generation",
                "分镜单帧生成",
                vec![("single_frame", "storyboard")]
            ),
            (
                "smart_parse",
                "AI 智能解析",
                vec![("smart_parse", "ai_model_config")]
            ),
            (
                "camera_run_generation",
                "精细运镜生成",
                vec![("camera_run_generation", "storyboard")]
            ),
            (
                "batch_frame_generation",
                "批量分镜帧生成",
                vec![("batch_frame", "storyboard")]
            ),
            (
                "batch_scene_video_generation",
                "批量分镜视频生成",
                vec![("batch_scene_video", "storyboard")]
            ),
        ]
    );
    let types: Vec<&str> = registry
        .all()
        .iter()
        .map(|w| w.workflow_type.as_str())
        .collect();
    assert_eq!(types, nosyntask_workflows::WORKFLOW_TYPES);
}

#[test]
fn steps_have_the_contract_limits_targets_and_uniqueness() {
    let registry = registry();
    let step = |workflow: &str| registry.get(workflow).unwrap().steps[0].clone();
    for (workflow, minutes) in [
        ("storyboard_generation", 3),
        ("character_extraction", 3),
        ("prompt_generate", 3),
        ("character_views_generation", 10),
        ("scene_image_generation", 3),
        ("frame_generation", 10),
        ("single_frame_generation", 10),
        ("scene_video", 30),
    ] {
        assert_eq!(
            step(workflow).timeout,
            Duration::from_secs(minutes * 60),
            "{workflow}"
        );
        assert_eq!(step(workflow).max_attempts, 3, "{workflow}");
    }
    assert_eq!(
        step("character_views_generation")
            .target_id_param
            .as_deref(),
        Some("characterId")
    );
    assert_eq!(
        step("scene_image_generation").target_id_param.as_deref(),
        Some("sceneId")
    );

    let unique = |workflow: &str, params: Value| {
        let definition = registry.get(workflow).unwrap();
        definition.unique_key.as_ref().and_then(|key| key(&params))
    };
    assert_eq!(
        unique("character_views_generation", json!({"characterId": 12})).as_deref(),
        Some("12")
    );
    assert_eq!(
        unique("scene_image_generation", json!({"sceneId": 5})).as_deref(),
        Some("5")
    );
    assert_eq!(
        unique("character_extraction", json!({"scriptId": 3})).as_deref(),
        Some("3")
    );
    assert_eq!(
        unique("scene_extraction", json!({"scriptId": 3})).as_deref(),
        Some("3")
    );
    assert_eq!(
        unique("character_extraction", json!({"scriptContent": "x"})),
        None,
        "no scriptId, no key"
    );
    assert_eq!(
        unique("storyboard_generation", json!({"scriptId": 3})),
        None
    );
}

#[test]
fn defaults_are_filled_in() {
    let registry = registry();
    let validate = |workflow: &str, params: Value| {
        registry
            .get(workflow)
            .unwrap()
            .params
            .validate(&params)
            .unwrap()
    };
    let views = validate("character_views_generation", json!({"characterName": "A"}));
    assert_eq!(
        (views["width"].clone(), views["height"].clone()),
        (json!(512), json!(768))
    );
    for workflow in ["scene_image_generation", "frame_generation"] {
        let params = validate(workflow, json!({"sceneName": "A", "prompt": "p"}));
        assert_eq!(
            (params["width"].clone(), params["height"].clone()),
            (json!(1024), json!(576)),
            "{workflow}"
        );
    }
    assert_eq!(
        validate("scene_video", json!({"prompt": "p"}))["duration"],
        5
    );
    assert_eq!(
        validate("prompt_generate", json!({"description": "d"}))["kind"],
        "image"
    );
}

#[test]
fn invalid_params_name_the_field() {
    let registry = registry();
    let cases: Vec<(&str, Value, &str)> = vec![
        ("storyboard_generation", json!({}), "scriptContent"),
        (
            "storyboard_generation",
            json!({"scriptContent": 42}),
            "scriptContent",
        ),
        (
            "storyboard_generation",
            json!({"scriptContent": "  "}),
            "scriptContent",
        ),
        (
            "storyboard_generation",
            json!({"scriptContent": "x", "modelName": 1}),
            "modelName",
        ),
        ("character_extraction", json!({}), "scriptContent or scenes"),
        (
            "character_extraction",
            json!({"scenes": []}),
            "scriptContent or scenes",
        ),
        ("character_extraction", json!({"scenes": "shots"}), "scenes"),
        (
            "character_extraction",
            json!({"scriptContent": "x", "scriptId": "three"}),
            "scriptId",
        ),
        (
            "scene_extraction",
            json!({"projectId": 1}),
            "scriptContent or scenes",
        ),
        (
            "scene_extraction",
            json!({"scriptContent": ["x"]}),
            "scriptContent",
        ),
        ("character_views_generation", json!({}), "characterName"),
        (
            "character_views_generation",
            json!({"characterName": 7}),
            "characterName",
        ),
        (
            "character_views_generation",
            json!({"characterName": "A", "width": "wide"}),
            "width",
        ),
        (
            "character_views_generation",
            json!({"characterName": "A", "height": 100000}),
            "height",
        ),
        (
            "character_views_generation",
            json!({"characterName": "A", "characterId": 1.5}),
            "characterId",
        ),
        (
            "scene_image_generation",
            json!({"sceneId": 5}),
            "sceneName or description",
        ),
        (
            "scene_image_generation",
            json!({"sceneName": {"a": 1}}),
            "sceneName",
        ),
        (
            "scene_image_generation",
            json!({"description": "d", "width": 0}),
            "width",
        ),
        ("frame_generation", json!({}), "prompt"),
        ("frame_generation", json!({"prompt": true}), "prompt"),
        ("scene_video", json!({}), "prompt or description"),
        (
            "scene_video",
            json!({"storyboardId": "43", "videoModel": "v"}),
            "prompt or description",
        ),
        (
            "batch_frame_generation",
            json!({"scriptId": 3}),
            "storyboards",
        ),
        (
            "batch_scene_video_generation",
            json!({"scriptId": "3"}),
            "storyboards",
        ),
        (
            "camera_run_generation",
            json!({"storyboardId": 9}),
            "description",
        ),
        (
            "single_frame_generation",
            json!({"storyboardId": 9}),
            "description",
        ),
        ("script_only", json!({"style": "x"}), "title or description"),
        ("smart_parse", json!({}), "apiDoc"),
        (
            "scene_video",
            json!({"prompt": "p", "duration": 11}),
            "duration",
        ),
        (
            "scene_video",
            json!({"prompt": "p", "duration": 0}),
            "duration",
        ),
        (
            "scene_video",
            json!({"prompt": "p", "duration": "five"}),
            "duration",
        ),
        (
            "scene_video",
            json!({"prompt": "p", "imageUrl": 3}),
            "imageUrl",
        ),
        ("prompt_generate", json!({}), "description"),
        (
            "prompt_generate",
            json!({"description": "d", "kind": "audio"}),
            "kind",
        ),
        ("script_to_storyboard", json!({}), "scriptContent"),
        (
            "script_to_storyboard",
            json!({"scriptContent": null}),
            "scriptContent",
        ),
    ];
    for (workflow, params, field) in cases {
        let definition = registry.get(workflow).unwrap();
        let err = definition
            .params
            .validate(&params)
            .expect_err(&format!("{workflow} accepted {params}"));
        assert_eq!(err.field, field, "{workflow} {params}: {err}");
    }
    for workflow in nosyntask_workflows::WORKFLOW_TYPES {
        let schema = registry.get(workflow).unwrap().params.to_json_schema();
        assert_eq!(schema["type"], "object", "{workflow}");
        assert!(
            schema["properties"]
                .as_object()
                .is_some_and(|p| !p.is_empty()),
            "{workflow}"
        );
    }
}

/// Each workflow's params as NanoStory's field table names them (`*` marks required ones), with
/// the typed model fields of the kinds it calls and `modelName` as the main kind's alias.
#[test]
fn params_are_the_contracts() {
    let registry = registry();
    let names = |workflow: &str| -> String {
        registry
            .get(workflow)
            .unwrap()
            .params
            .params()
            .iter()
            .map(|p| format!("{}{}", if p.required { "*" } else { "" }, p.name))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let extraction = "scriptContent scenes projectId scriptId think textModel modelName";
    for (workflow, expected) in [
        (
            "storyboard_generation",
            "*scriptContent scriptTitle think textModel modelName",
        ),
        ("character_extraction", extraction),
        ("scene_extraction", extraction),
        (
            "character_views_generation",
            "*characterName characterId appearance personality description style think width \
             height imageModel textModel modelName",
        ),
        (
            "scene_image_generation",
            "sceneName description sceneId environment lighting mood style allScenes think width \
             height imageModel textModel modelName",
        ),
        (
            "frame_generation",
            "*prompt storyboardId width height imageModel modelName",
        ),
        (
            "scene_video",
            "prompt description storyboardId think imageUrl startFrame endFrame duration \
             videoModel textModel modelName",
        ),
        (
            "prompt_generate",
            "*description kind style think textModel modelName",
        ),
        (
            "script_to_storyboard",
            "*scriptContent think textModel modelName",
        ),
        (
            "script_only",
            "title description style length episodeNumber projectId think textModel modelName",
        ),
        (
            "single_frame_generation",
            "*description storyboardId style think width height imageModel textModel modelName",
        ),
        (
            "smart_parse",
            "*apiDoc customPrompt think textModel modelName",
        ),
        (
            "camera_run_generation",
            "*description storyboardId shotType cameraMovement emotion hasAction startFrame \
             endFrame dialogue duration think textModel modelName",
        ),
        (
            "batch_frame_generation",
            "*storyboards scriptId overwriteFrames maxConcurrency width height imageModel modelName",
        ),
        (
            "batch_scene_video_generation",
            "*storyboards scriptId duration overwriteVideos think maxConcurrency videoModel \
             textModel modelName",
        ),
    ] {
        assert_eq!(names(workflow), expected, "{workflow}");
    }
}
