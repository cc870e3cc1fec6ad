//! Storyboard, character and scene extraction against an OpenAI-compatible server on loopback
//! that answers the way real models do: `<think>` blocks, prose around a fenced JSON array,
//! trailing commas, an array cut off at the token limit. The lists still come out right, or the
//! step fails with a message that says why.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use nosyntask_domain::TaskError;
use nosyntask_providers::ModelConfig;
use serde_json::{Value, json};
use support::{catalog, run_step};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Answers each request with the next completion in line (the last one repeats).
struct Script(Mutex<VecDeque<(String, &'static str)>>);

impl Respond for Script {
    fn respond(&self, _request: &Request) -> ResponseTemplate {
        let mut answers = self.0.lock().unwrap();
        let (content, finish_reason) = if answers.len() > 1 {
            answers.pop_front().unwrap()
        } else {
            answers.front().cloned().unwrap()
        };
        ResponseTemplate::new(200).set_body_json(json!({
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1_767_225_600,
            "model": "deepseek-chat",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish_reason
            }],
            "usage": {"prompt_tokens": 120, "completion_tokens": 80, "total_tokens": 200}
        }))
    }
}

/// A mock provider answering `answers` in turn, and the workflows over it.
async fn provider(
    answers: Vec<(&str, &'static str)>,
) -> (MockServer, nosyntask_engine::Registry, tempfile::TempDir) {
    let server = MockServer::start().await;
    let answers = answers
        .into_iter()
        .map(|(c, f)| (c.to_owned(), f))
        .collect();
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(Script(Mutex::new(answers)))
        .mount(&server)
        .await;
    let config: ModelConfig = serde_json::from_value(json!({
        "name": "DeepSeek Chat", "kind": "text", "adapter": "openai_compatible",
        "base_url": format!("{}/v1", server.uri()), "model": "deepseek-chat", "default": true
    }))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let registry = nosyntask_workflows::registry(catalog(&[config], dir.path()));
    (server, registry, dir)
}

async fn requests(server: &MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

async fn run(
    registry: &nosyntask_engine::Registry,
    workflow: &str,
    params: Value,
) -> Result<Value, TaskError> {
    run_step(registry, workflow, &params, 0, &BTreeMap::new(), None)
        .await
        .result
}

const SCRIPT: &str = "第一场 山神庙 夜\n林冲推开庙门，抖落身上的雪。\n林冲：这雪下得好大。";

const STORYBOARD_ANSWER: &str = "<think>\n用户要我把剧本拆成分镜。先是远景建立山神庙，然后林冲推门……\n注意 JSON 格式。\n</think>\n\n好的，以下是根据剧本生成的分镜：\n\n```json\n[\n  {\"order\": 1, \"shotType\": \"远景\", \"description\": \"风雪中的山神庙\", \"hasAction\": false, \"startFrame\": \"\", \"endFrame\": \"\", \"dialogue\": \"\", \"duration\": 3, \"characters\": [], \"location\": \"山神庙外\", \"emotion\": \"萧瑟\"},\n  {\"order\": 2, \"shotType\": \"中景\", \"description\": \"林冲推开庙门，抖落身上的雪\", \"hasAction\": true, \"startFrame\": \"林冲站在门外\", \"endFrame\": \"林冲跨进门内\", \"dialogue\": \"这雪下得好大。\", \"duration\": \"4秒\", \"characters\": [\"林冲\"], \"location\": \"山神庙内\", \"emotion\": \"疲惫\"},\n]\n```\n\n如需调整镜头数量，请告诉我。";

#[tokio::test]
async fn storyboard_from_a_thinking_model_with_prose_fences_and_a_trailing_comma() {
    let (server, registry, _dir) = provider(vec![(STORYBOARD_ANSWER, "stop")]).await;
    let result = run(
        &registry,
        "storyboard_generation",
        json!({"scriptContent": SCRIPT}),
    )
    .await
    .unwrap();
    assert_eq!(result["count"], 2);
    assert_eq!(result["tokens"], 200);
    assert_eq!(result["provider"], "openai_compatible");
    let shots = result["scenes"].as_array().unwrap();
    assert_eq!(shots[0]["shotType"], "远景");
    assert_eq!(shots[0]["characters"], json!([]));
    assert_eq!(shots[1]["description"], "林冲推开庙门，抖落身上的雪");
    assert_eq!(shots[1]["dialogue"], "这雪下得好大。");
    assert_eq!(shots[1]["duration"], 4, "\"4秒\" is read as 4");
    assert_eq!(shots[1]["hasAction"], true);
    assert_eq!(shots[1]["characters"], json!(["林冲"]));

    let sent = requests(&server).await;
    assert_eq!(sent.len(), 1, "no repair request was needed");
    assert_eq!(sent[0]["response_format"], json!({"type": "json_object"}));
    assert_eq!(sent[0]["max_tokens"], 8192);
    let system = sent[0]["messages"][0]["content"].as_str().unwrap();
    assert!(
        system.contains("Simplified Chinese"),
        "a Chinese script gets a Chinese answer"
    );
    assert!(
        sent[0]["messages"][1]["content"]
            .as_str()
            .unwrap()
            .contains("林冲推开庙门")
    );
}

const CHARACTERS_CUT: &str = "<think>Two characters at least.</think>\nHere are the characters:\n```json\n[\n  {\"name\": \"Lin Chong\", \"appearance\": \"tall, black beard, felt hat\", \"personality\": \"patient\", \"description\": \"exiled instructor\"},\n  {\"name\": \"Lu Qian\", \"appearance\": \"thin, silk robe\", \"personal";
const CHARACTERS_FULL: &str = "Sure! Here is the complete list.\n\n```json\n[\n  {\"name\": \"Lin Chong\", \"appearance\": \"tall, black beard, felt hat\", \"personality\": \"patient\", \"description\": \"exiled instructor\"},\n  {\"name\": \"Lu Qian\", \"appearance\": \"thin, silk robe\", \"personality\": \"treacherous\", \"description\": \"Lin Chong's false friend\"},\n  {\"name\": \"Fu An\", \"appearance\": \"stocky, carries a torch\", \"personality\": \"servile\", \"description\": \"Lu Qian's accomplice\",},\n]\n```";

#[tokio::test]
async fn a_truncated_character_list_is_asked_again_and_comes_out_complete() {
    let (server, registry, _dir) =
        provider(vec![(CHARACTERS_CUT, "length"), (CHARACTERS_FULL, "stop")]).await;
    let script = "INT. TEMPLE - NIGHT\nLIN CHONG warms himself. LU QIAN and FU AN creep outside.";
    let result = run(
        &registry,
        "character_extraction",
        json!({"scriptContent": script, "scriptId": 3}),
    )
    .await
    .unwrap();
    let names: Vec<&str> = result["characters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Lin Chong", "Lu Qian", "Fu An"]);
    assert_eq!(result["characters"][1]["personality"], "treacherous");
    assert_eq!(result["count"], 3);
    assert_eq!(result["tokens"], 400, "both calls are counted");

    let sent = requests(&server).await;
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0]["max_tokens"], 4096);
    assert_eq!(
        sent[1]["max_tokens"], 8192,
        "the second request has room for the whole list"
    );
    assert!(
        sent[0]["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("in English")
    );
}

#[tokio::test]
async fn an_answer_cut_off_twice_fails_saying_so() {
    let (server, registry, _dir) = provider(vec![(CHARACTERS_CUT, "length")]).await;
    let err = run(
        &registry,
        "character_extraction",
        json!({"scriptContent": "LIN CHONG waits."}),
    )
    .await
    .unwrap_err();
    assert!(!err.is_retryable());
    let message = err.to_string();
    assert!(message.contains("character extraction"), "{message}");
    assert!(
        message.contains("cut off") && message.contains("finish_reason=length"),
        "{message}"
    );
    assert_eq!(requests(&server).await.len(), 2);
}

const SCENES_ANSWER: &str = "<think>地点：山神庙内外，草料场。</think>\n根据剧本，共有以下场景：\n```\n{\"locations\": [\n  {\"name\": \"山神庙内\", \"description\": \"林冲避雪的破庙\", \"environment\": \"残破神像，稻草堆\", \"lighting\": \"篝火微光\", \"mood\": \"凄凉\"},\n  {'name': '草料场', 'description': '被火烧的草料场', 'environment': '成堆的草料', 'lighting': '冲天火光', 'mood': '紧张'},\n  {\"name\": \"山神庙内\", \"description\": \"\", \"environment\": \"\", \"lighting\": \"\", \"mood\": \"\"},\n]}\n```\n以上。";

#[tokio::test]
async fn scenes_under_another_key_with_single_quotes_and_duplicates() {
    let (_server, registry, _dir) = provider(vec![(SCENES_ANSWER, "stop")]).await;
    let shots = json!([{"description": "林冲推开庙门", "location": "山神庙内"}, {"description": "火起", "location": "草料场"}]);
    let result = run(&registry, "scene_extraction", json!({"scenes": shots}))
        .await
        .unwrap();
    let names: Vec<&str> = result["scenes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["山神庙内", "草料场"], "the duplicate is merged");
    assert_eq!(result["scenes"][1]["lighting"], "冲天火光");
    assert_eq!(result["count"], 2);
}

#[tokio::test]
async fn prose_without_json_gets_one_repair_request() {
    let repaired = r#"{"scenes": [{"name": "Fodder depot", "description": "Where the fire starts", "environment": "Stacks of hay", "lighting": "Firelight", "mood": "Tense"}]}"#;
    let (server, registry, _dir) = provider(vec![
        (
            "The script takes place at a fodder depot, at night, with a fire.",
            "stop",
        ),
        (repaired, "stop"),
    ])
    .await;
    let result = run(
        &registry,
        "scene_extraction",
        json!({"scriptContent": "EXT. FODDER DEPOT - NIGHT. Fire."}),
    )
    .await
    .unwrap();
    assert_eq!(result["scenes"][0]["name"], "Fodder depot");
    assert_eq!(result["tokens"], 400);
    let sent = requests(&server).await;
    assert_eq!(sent.len(), 2);
    let repair = sent[1]["messages"][1]["content"].as_str().unwrap();
    assert!(
        repair.contains("fodder depot, at night"),
        "the repair request quotes the answer"
    );
}

#[tokio::test]
async fn unrecoverable_output_fails_with_a_clear_message() {
    let (server, registry, _dir) = provider(vec![("抱歉，我无法完成这个请求。", "stop")]).await;
    let err = run(
        &registry,
        "storyboard_generation",
        json!({"scriptContent": SCRIPT}),
    )
    .await
    .unwrap_err();
    assert!(!err.is_retryable(), "retrying the same answer is pointless");
    let message = err.to_string();
    assert!(
        message.starts_with("storyboard: could not read the model's answer as JSON"),
        "{message}"
    );
    assert!(message.contains("no JSON"), "{message}");
    assert!(
        message.contains("抱歉，我无法完成这个请求。"),
        "the message quotes the answer: {message}"
    );
    assert_eq!(
        requests(&server).await.len(),
        2,
        "one answer and one repair request"
    );

    let (_server, registry, _dir) =
        provider(vec![(r#"{"scenes": [{"description": ""}]}"#, "stop")]).await;
    let err = run(
        &registry,
        "storyboard_generation",
        json!({"scriptContent": SCRIPT}),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("none of the 1 shots has a description"),
        "{err}"
    );
}
