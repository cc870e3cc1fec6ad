//! The registry lists the nine workflows with their steps, and each one's params schema rejects
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
fn lists_all_nine_with_their_steps() {
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
                "分镜生成",
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
                vec![("scene_image", "scene")]
            ),
            (
                "frame_generation",
                "首尾帧生成",
                vec![("frame_generation", "shot")]
            ),
            ("scene_video", "视频生成", vec![("scene_video", "shot")]),
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
        ("scene_image_generation", 10),
        ("frame_generation", 10),
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
        ("scene_video", json!({}), "prompt"),
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
            json!({"prompt": "p", "duration": "5"}),
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

#[test]
fn params_are_the_contracts() {
    let registry = registry();
    let names = |workflow: &str| -> Vec<(String, bool)> {
        registry
            .get(workflow)
            .unwrap()
            .params
            .params()
            .iter()
            .map(|p| (p.name.clone(), p.required))
            .collect()
    };
    let declared = |list: &[(&str, bool)]| -> Vec<(String, bool)> {
        list.iter().map(|(n, r)| ((*n).to_owned(), *r)).collect()
    };
    assert_eq!(
        names("storyboard_generation"),
        declared(&[
            ("scriptContent", true),
            ("scriptTitle", false),
            ("modelName", false)
        ])
    );
    let extraction = declared(&[
        ("scriptContent", false),
        ("scenes", false),
        ("projectId", false),
        ("scriptId", false),
        ("modelName", false),
    ]);
    assert_eq!(names("character_extraction"), extraction);
    assert_eq!(names("scene_extraction"), extraction);
    assert_eq!(
        names("character_views_generation"),
        declared(&[
            ("characterName", true),
            ("characterId", false),
            ("appearance", false),
            ("personality", false),
            ("description", false),
            ("style", false),
            ("modelName", false),
            ("width", false),
            ("height", false),
        ])
    );
    assert_eq!(
        names("scene_image_generation"),
        declared(&[
            ("sceneName", false),
            ("description", false),
            ("sceneId", false),
            ("environment", false),
            ("lighting", false),
            ("mood", false),
            ("style", false),
            ("modelName", false),
            ("width", false),
            ("height", false),
        ])
    );
    assert_eq!(
        names("frame_generation"),
        declared(&[
            ("prompt", true),
            ("modelName", false),
            ("width", false),
            ("height", false)
        ])
    );
    assert_eq!(
        names("scene_video"),
        declared(&[
            ("prompt", true),
            ("imageUrl", false),
            ("startFrame", false),
            ("endFrame", false),
            ("modelName", false),
            ("duration", false),
        ])
    );
    assert_eq!(
        names("prompt_generate"),
        declared(&[
            ("description", true),
            ("kind", false),
            ("style", false),
            ("modelName", false)
        ])
    );
    assert_eq!(
        names("script_to_storyboard"),
        declared(&[("scriptContent", true), ("modelName", false)])
    );
}
