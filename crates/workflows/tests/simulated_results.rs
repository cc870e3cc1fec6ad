//! Every workflow against the default (simulated) models: the result has exactly the contract's
//! fields (section 5), with the contract's types.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};
use support::{assert_keys, run_step, run_workflow, simulated};

const SHOT_KEYS: [&str; 11] = [
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
];
const CHARACTER_KEYS: [&str; 4] = ["name", "appearance", "personality", "description"];
const LOCATION_KEYS: [&str; 5] = ["name", "description", "environment", "lighting", "mood"];

const SCRIPT_ZH: &str = "第一场 山神庙 夜\n暴风雪中，林冲推开破庙的门，抖落身上的雪。\n林冲：这雪下得好大。\n他在供桌旁生起一堆火，靠着墙坐下。\n第二场 草料场 夜\n陆谦和富安举着火把悄悄靠近草料场。\n陆谦：烧了它，林冲必死无疑。";
const SCRIPT_EN: &str = "INT. MOUNTAIN TEMPLE - NIGHT\nA blizzard howls. LIN CHONG pushes the broken door open and shakes the snow off.\nLIN CHONG: What a storm.\nHe lights a fire by the altar and sits against the wall.\nEXT. FODDER DEPOT - NIGHT\nLU QIAN and FU AN creep towards the depot with torches.\nLU QIAN: Burn it. Lin Chong is finished.";

fn text(value: &Value, key: &str) -> String {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string in {value}"))
        .to_owned()
}

fn count(value: &Value, list: &str) -> usize {
    let items = value[list]
        .as_array()
        .unwrap_or_else(|| panic!("{list} is not an array"));
    assert_eq!(
        value["count"].as_u64(),
        Some(items.len() as u64),
        "count of {value}"
    );
    assert!(value["tokens"].as_u64().unwrap() > 0, "tokens of {value}");
    assert_eq!(value["provider"], "simulated");
    items.len()
}

fn assert_storyboard(result: &Value) {
    assert_keys(result, &["scenes", "count", "tokens", "provider"]);
    assert!(count(result, "scenes") >= 1);
    for (index, shot) in result["scenes"].as_array().unwrap().iter().enumerate() {
        assert_keys(shot, &SHOT_KEYS);
        assert_eq!(shot["order"].as_u64(), Some(index as u64 + 1));
        let duration = shot["duration"].as_u64().unwrap();
        assert!((1..=10).contains(&duration), "{shot}");
        assert!(shot["hasAction"].is_boolean());
        assert!(
            shot["characters"]
                .as_array()
                .unwrap()
                .iter()
                .all(Value::is_string)
        );
        for key in [
            "shotType",
            "description",
            "startFrame",
            "endFrame",
            "dialogue",
            "location",
            "emotion",
        ] {
            text(shot, key);
        }
        assert!(!text(shot, "description").is_empty());
    }
}

fn assert_characters(result: &Value) {
    assert_keys(result, &["characters", "count", "tokens", "provider"]);
    assert!(count(result, "characters") >= 1);
    for character in result["characters"].as_array().unwrap() {
        assert_keys(character, &CHARACTER_KEYS);
        for key in CHARACTER_KEYS {
            text(character, key);
        }
        assert!(!text(character, "name").is_empty());
    }
}

fn assert_locations(result: &Value) {
    assert_keys(result, &["scenes", "count", "tokens", "provider"]);
    assert!(count(result, "scenes") >= 1);
    for location in result["scenes"].as_array().unwrap() {
        assert_keys(location, &LOCATION_KEYS);
        for key in LOCATION_KEYS {
            text(location, key);
        }
    }
}

/// A `/files/…` URL whose file exists in `dir`.
fn assert_file(dir: &Path, url: &str) {
    let relative = url
        .strip_prefix("/files/")
        .unwrap_or_else(|| panic!("not an artifact URL: {url}"));
    let path = dir.join(relative);
    let bytes = std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    assert!(bytes.len() > 16, "{url} is empty");
}

#[tokio::test]
async fn storyboard_in_chinese_and_english() {
    let dir = tempfile::tempdir().unwrap();
    let registry = nosyntask_workflows::registry(simulated(dir.path()));
    for script in [SCRIPT_ZH, SCRIPT_EN] {
        let params = json!({"scriptContent": script, "scriptTitle": "风雪山神庙"});
        let outcome = run_step(
            &registry,
            "storyboard_generation",
            &params,
            0,
            &BTreeMap::new(),
            None,
        )
        .await;
        assert_storyboard(&outcome.result.unwrap());
        assert!(outcome.progress >= 95, "progress {}", outcome.progress);
    }
}

#[tokio::test]
async fn extractions_from_a_script_and_from_shots() {
    let dir = tempfile::tempdir().unwrap();
    let registry = nosyntask_workflows::registry(simulated(dir.path()));
    let shots = json!([
        {"order": 1, "description": "林冲推开庙门", "characters": ["林冲"], "location": "山神庙", "dialogue": "这雪下得好大。"},
        {"order": 2, "description": "陆谦举着火把", "characters": ["陆谦"], "location": "草料场"}
    ]);
    for params in [
        json!({"scriptContent": SCRIPT_ZH, "scriptId": 3, "projectId": 7}),
        json!({"scriptContent": SCRIPT_EN}),
        json!({"scenes": shots}),
    ] {
        let characters = run_workflow(&registry, "character_extraction", &params).await;
        assert_characters(&characters[0]);
        let locations = run_workflow(&registry, "scene_extraction", &params).await;
        assert_locations(&locations[0]);
    }
}

#[tokio::test]
async fn script_to_storyboard_passes_the_shots_on() {
    let dir = tempfile::tempdir().unwrap();
    let registry = nosyntask_workflows::registry(simulated(dir.path()));
    let params = json!({"scriptContent": SCRIPT_ZH});
    let results = run_workflow(&registry, "script_to_storyboard", &params).await;
    assert_eq!(results.len(), 3);
    assert_storyboard(&results[0]);
    assert_characters(&results[1]);
    assert_locations(&results[2]);

    let previous = BTreeMap::from([(0, results[0].clone())]);
    let step1 = run_step(
        &registry,
        "script_to_storyboard",
        &params,
        1,
        &previous,
        None,
    )
    .await;
    assert_eq!(
        step1.input["scenes"], results[0]["scenes"],
        "step 1 reads step 0's shots"
    );
    assert!(step1.input.get("scriptContent").is_none());
}

#[tokio::test]
async fn character_views_make_three_pictures() {
    let dir = tempfile::tempdir().unwrap();
    let registry = nosyntask_workflows::registry(simulated(dir.path()));
    let params = json!({
        "characterName": "林冲", "characterId": 12, "appearance": "三十多岁，浓眉，黑色短须，毡笠",
        "personality": "隐忍刚烈", "style": "水墨风格"
    });
    let outcome = run_step(
        &registry,
        "character_views_generation",
        &params,
        0,
        &BTreeMap::new(),
        None,
    )
    .await;
    let result = outcome.result.unwrap();
    assert_keys(
        &result,
        &[
            "frontViewUrl",
            "sideViewUrl",
            "backViewUrl",
            "imageUrl",
            "modelName",
            "prompts",
        ],
    );
    assert_eq!(result["imageUrl"], result["frontViewUrl"]);
    assert_eq!(result["modelName"], "sim-image");
    assert_keys(&result["prompts"], &["front", "side", "back"]);
    let urls: Vec<String> = ["frontViewUrl", "sideViewUrl", "backViewUrl"]
        .iter()
        .map(|k| text(&result, k))
        .collect();
    for url in &urls {
        assert_file(dir.path(), url);
    }
    assert_ne!(urls[0], urls[1]);
    assert_ne!(urls[1], urls[2]);
    assert!(outcome.progress >= 95);
    assert_eq!(outcome.input["width"], 512, "default width");
    assert_eq!(outcome.input["height"], 768, "default height");
}

#[tokio::test]
async fn scene_image_frames_video_and_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let registry = nosyntask_workflows::registry(simulated(dir.path()));
    let none = BTreeMap::new();

    let params =
        json!({"sceneName": "山神庙内", "sceneId": 5, "lighting": "篝火微光", "mood": "凄凉"});
    let outcome = run_step(&registry, "scene_image_generation", &params, 1, &none, None).await;
    let image = outcome.result.unwrap();
    assert_keys(
        &image,
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
    assert_eq!(image["sceneId"], 5);
    assert_eq!(
        (image["imageModel"].as_str(), image["textModel"].as_str()),
        (Some("sim-image"), Some("sim-text"))
    );
    assert!(!text(&image, "prompt").is_empty());
    assert_file(dir.path(), &text(&image, "imageUrl"));
    assert_eq!(
        (
            outcome.input["width"].as_u64(),
            outcome.input["height"].as_u64()
        ),
        (Some(1024), Some(576))
    );

    let params = json!({"description": "A ruined temple in the snow at night"});
    let image = run_step(&registry, "scene_image_generation", &params, 1, &none, None)
        .await
        .result
        .unwrap();
    assert_keys(
        &image,
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
    assert_eq!(image["sceneId"], Value::Null, "no sceneId given");

    let params = json!({"prompt": "林冲翻身坐起，握住花枪"});
    let outcome = run_step(&registry, "frame_generation", &params, 0, &none, None).await;
    let frames = outcome.result.unwrap();
    assert_keys(&frames, &["startFrame", "endFrame", "model"]);
    assert_eq!(frames["model"], "sim-image");
    assert_file(dir.path(), &text(&frames, "startFrame"));
    assert_file(dir.path(), &text(&frames, "endFrame"));
    assert_ne!(frames["startFrame"], frames["endFrame"]);

    let params = json!({
        "prompt": "Lin Chong sits up and grabs his spear", "duration": 3,
        "startFrame": text(&frames, "startFrame"), "endFrame": text(&frames, "endFrame")
    });
    let outcome = run_step(&registry, "scene_video", &params, 0, &none, None).await;
    let video = outcome.result.unwrap();
    assert_keys(&video, &["videoUrl", "model", "prompt"]);
    assert_eq!(video["model"], "sim-video");
    assert_file(dir.path(), &text(&video, "videoUrl"));
    assert!(outcome.progress >= 95);

    for kind in ["image", "video"] {
        let params =
            json!({"description": "林冲在风雪中回望草料场的大火", "kind": kind, "style": "电影感"});
        let prompt = run_step(&registry, "prompt_generate", &params, 0, &none, None)
            .await
            .result
            .unwrap();
        assert_keys(&prompt, &["prompt", "negativePrompt", "modelName"]);
        assert!(!text(&prompt, "prompt").is_empty());
        text(&prompt, "negativePrompt");
        assert_eq!(prompt["modelName"], "sim-text");
    }
}
