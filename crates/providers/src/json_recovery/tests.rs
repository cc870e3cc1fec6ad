//! Real-looking LLM answers, each with the value recovered or the error given.

use nosyntask_domain::TaskError;
use serde::Deserialize;
use serde_json::{Value, json};

use super::*;

enum Expect {
    Value(Value),
    Error(&'static str),
}

fn cases() -> Vec<(&'static str, &'static str, Expect)> {
    use Expect::{Error, Value as V};
    vec![
        (
            "plain object with Chinese",
            r#"{"characters":[{"name":"李明","appearance":"短发，戴眼镜"}]}"#,
            V(json!({"characters": [{"name": "李明", "appearance": "短发，戴眼镜"}]})),
        ),
        (
            "json code fence",
            "```json\n{\"scenes\": [{\"name\": \"客厅\", \"mood\": \"温馨\"}]}\n```",
            V(json!({"scenes": [{"name": "客厅", "mood": "温馨"}]})),
        ),
        (
            "bare code fence with prose around it",
            "以下是分镜：\n```\n[{\"order\": 1, \"shotType\": \"远景\"}]\n```\n如需调整请告诉我。",
            V(json!([{"order": 1, "shotType": "远景"}])),
        ),
        (
            "prose before and after",
            "好的，以下是提取的角色信息：\n{\"characters\": [{\"name\": \"王芳\"}]}\n希望对你有帮助！",
            V(json!({"characters": [{"name": "王芳"}]})),
        ),
        (
            "think block with braces inside",
            "<think>\n用户要角色列表，格式像 {\"name\": ...}，我先想想。\n</think>\n\n{\"characters\": [{\"name\": \"张三\"}]}",
            V(json!({"characters": [{"name": "张三"}]})),
        ),
        (
            "think block, then a fence and prose",
            "<think>Let me list the scenes [carefully].</think>\nHere you go:\n```json\n{\"scenes\": [\"开场\"]}\n```\nDone.",
            V(json!({"scenes": ["开场"]})),
        ),
        (
            "closing think tag only (template opened it)",
            "先分析剧本……人物有两个。\n</think>\n{\"count\": 2}",
            V(json!({"count": 2})),
        ),
        (
            "unclosed think block",
            "<think>\n我需要仔细分析这个剧本，首先",
            Error("ended inside its <think> block"),
        ),
        (
            "trailing commas",
            "{\"scenes\": [{\"order\": 1, \"description\": \"清晨\",}, {\"order\": 2,},],}",
            V(json!({"scenes": [{"order": 1, "description": "清晨"}, {"order": 2}]})),
        ),
        (
            "array cut off inside a string",
            "{\"scenes\": [{\"order\": 1, \"description\": \"清晨的街道\"}, {\"order\": 2, \"description\": \"主角走进咖",
            V(
                json!({"scenes": [{"order": 1, "description": "清晨的街道"}, {"order": 2, "description": "主角走进咖"}]}),
            ),
        ),
        (
            "array cut off after a comma",
            "```json\n{\"scenes\": [{\"order\": 1}, {\"order\": 2},",
            V(json!({"scenes": [{"order": 1}, {"order": 2}]})),
        ),
        (
            "cut off after a key",
            "{\"name\": \"李雷\", \"personality\":",
            V(json!({"name": "李雷", "personality": null})),
        ),
        (
            "single quotes",
            "{'name': '李雷', 'personality': '开朗'}",
            V(json!({"name": "李雷", "personality": "开朗"})),
        ),
        (
            "unquoted keys",
            "{name: \"韩梅梅\", age: 18}",
            V(json!({"name": "韩梅梅", "age": 18})),
        ),
        (
            "unquoted values",
            "{\"name\": 李雷, \"mood\": happy}",
            V(json!({"name": "李雷", "mood": "happy"})),
        ),
        (
            "Python literals",
            "{\"hasAction\": True, \"dialogue\": None}",
            V(json!({"hasAction": true, "dialogue": null})),
        ),
        (
            "comments",
            "{\n  // 第一场\n  \"order\": 1, /* 时长 */ \"duration\": 5\n}",
            V(json!({"order": 1, "duration": 5})),
        ),
        (
            "curly quotes",
            "{“name”: “小红”}",
            V(json!({"name": "小红"})),
        ),
        (
            "unescaped quotes in dialogue",
            "{\"dialogue\": \"他说\"你好\"然后离开\"}",
            V(json!({"dialogue": "他说\"你好\"然后离开"})),
        ),
        (
            "raw newline inside a string",
            "{\"description\": \"第一行\n第二行\"}",
            V(json!({"description": "第一行\n第二行"})),
        ),
        (
            "missing comma between items",
            "[{\"name\": \"A\"} {\"name\": \"B\"}]",
            V(json!([{"name": "A"}, {"name": "B"}])),
        ),
        (
            "bracketed note before the JSON",
            "注意[重要]：结果如下 {\"count\": 1, \"characters\": [{\"name\": \"老王\"}]}",
            V(json!({"count": 1, "characters": [{"name": "老王"}]})),
        ),
        (
            "two JSON values: the first wins",
            "Result: {\"a\": 1}\nAlternative: {\"b\": 2}",
            V(json!({"a": 1})),
        ),
        (
            "objects without the array brackets (a 3-shot storyboard)",
            "{\"order\": 1, \"shotType\": \"远景\"},\n{\"order\": 2, \"shotType\": \"中景\"},\n{\"order\": 3, \"shotType\": \"特写\"}",
            V(
                json!([{"order": 1, "shotType": "远景"}, {"order": 2, "shotType": "中景"}, {"order": 3, "shotType": "特写"}]),
            ),
        ),
        (
            "objects without brackets after prose, trailing comma",
            "分镜如下：\n{\"order\": 1},\n{\"order\": 2},\n",
            V(json!([{"order": 1}, {"order": 2}])),
        ),
        (
            "full-width colon and comma between tokens",
            "{\"name\"：\"李雷\"，\"appearance\"：\"短发，戴眼镜\"}",
            V(json!({"name": "李雷", "appearance": "短发，戴眼镜"})),
        ),
        (
            "full-width separators in a list of objects",
            "[{\"order\"：1，\"description\"：\"雨夜\"}，{\"order\"：2，\"description\"：\"车站\"}]",
            V(json!([{"order": 1, "description": "雨夜"}, {"order": 2, "description": "车站"}])),
        ),
        (
            "<thinking> block with JSON inside",
            "<thinking>先列出 {\"draft\": true}</thinking>\n{\"characters\": [{\"name\": \"张三\"}]}",
            V(json!({"characters": [{"name": "张三"}]})),
        ),
        (
            "<Reasoning> block, upper case",
            "<Reasoning>[step 1] read the script</Reasoning>{\"count\": 1}",
            V(json!({"count": 1})),
        ),
        (
            "unclosed <thinking> block",
            "<thinking>我需要仔细分析这个剧本 {\"a\":",
            Error("ended inside its <think> block"),
        ),
        (
            "a refusal has no JSON",
            "抱歉，我无法完成这个请求。",
            Error("contains no JSON: 抱歉，我无法完成这个请求。"),
        ),
        ("empty answer", "  \n ", Error("empty answer")),
        (
            "only a think block and a fence with text",
            "<think>ok</think>```text\nno json here\n```",
            Error("contains no JSON"),
        ),
    ]
}

#[test]
fn recovers_real_looking_llm_outputs() {
    let mut failures = Vec::new();
    let all = cases();
    assert!(all.len() >= 20);
    for (name, input, expect) in all {
        let got = recover_json(input);
        let ok = match (&expect, &got) {
            (Expect::Value(want), Ok(value)) => want == value,
            (Expect::Error(part), Err(err)) => err.to_string().contains(part),
            _ => false,
        };
        if !ok {
            failures.push(format!("{name}: got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[derive(Debug, Deserialize, PartialEq)]
struct Scene {
    order: u32,
    description: String,
}

#[derive(Debug, Deserialize, PartialEq)]
struct Storyboard {
    scenes: Vec<Scene>,
}

#[test]
fn typed_parsing_names_what_is_wrong() {
    let board: Storyboard =
        parse_llm_json("```json\n{\"scenes\": [{\"order\": 1, \"description\": \"雨夜\"},]}\n```")
            .unwrap();
    assert_eq!(
        board.scenes,
        vec![Scene {
            order: 1,
            description: "雨夜".into()
        }]
    );

    let err =
        parse_llm_json::<Storyboard>("{\"scenes\": [{\"order\": \"一\", \"description\": \"x\"}]}")
            .unwrap_err();
    assert!(!err.is_retryable());
    let text = err.to_string();
    assert!(
        text.contains("at scenes[0].order") && text.contains("invalid type"),
        "{text}"
    );

    let err = parse_llm_json::<Storyboard>("{\"shots\": []}").unwrap_err();
    assert!(err.to_string().contains("missing field `scenes`"), "{err}");
}

#[test]
fn the_expected_shape_wins_over_notes_and_examples() {
    let want = vec![
        Scene {
            order: 1,
            description: "雨夜".into(),
        },
        Scene {
            order: 2,
            description: "车站".into(),
        },
    ];
    // A bracketed citation before the answer.
    let board: Storyboard = parse_llm_json(
        "根据剧本[1]，分镜如下：{\"scenes\": [{\"order\": 1, \"description\": \"雨夜\"}, {\"order\": 2, \"description\": \"车站\"}]}",
    )
    .unwrap();
    assert_eq!(board.scenes, want);
    // An example of the format in a fence, then the real answer in prose.
    let board: Storyboard = parse_llm_json(
        "The format is:\n```json\n{\"example\": {\"order\": 0}}\n```\nHere it is:\n{\"scenes\": [{\"order\": 1, \"description\": \"雨夜\"}, {\"order\": 2, \"description\": \"车站\"},]}",
    )
    .unwrap();
    assert_eq!(board.scenes, want);
    // Objects without brackets, as a list type.
    let scenes: Vec<Scene> = parse_llm_json(
        "{\"order\": 1, \"description\": \"雨夜\"},\n{\"order\": 2, \"description\": \"车站\"}",
    )
    .unwrap();
    assert_eq!(scenes, want);
    // No candidate of the shape: the first one is reported.
    let err = parse_llm_json::<Storyboard>("见[1]").unwrap_err();
    assert!(err.to_string().contains("expected shape"), "{err}");
}

#[test]
fn truncated_answers_say_so_when_unrecoverable() {
    let response = |content: &str, reason: &str| TextResponse {
        content: content.into(),
        finish_reason: Some(reason.into()),
        usage: Default::default(),
        cost_micros: None,
        model: "m".into(),
        provider: "p".into(),
    };
    let err = parse_llm_response::<Storyboard>(&response("<think>让我想想这个剧本", "length"))
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("the model's output was cut off (finish_reason=length)"),
        "{err}"
    );
    let board: Storyboard = parse_llm_response(&response(
        "{\"scenes\": [{\"order\": 1, \"description\": \"雨\"}, {\"ord",
        "length",
    ))
    .unwrap();
    assert_eq!(
        board.scenes,
        vec![Scene {
            order: 1,
            description: "雨".into()
        }],
        "the cut-off item is dropped"
    );
    // Not cut off: an incomplete item is an error, not silently dropped.
    assert!(
        parse_llm_response::<Storyboard>(&response(
            "{\"scenes\": [{\"order\": 1, \"description\": \"雨\"}, {\"ord",
            "stop"
        ))
        .is_err()
    );
}

#[test]
fn absurd_nesting_is_refused_not_overflowed() {
    let deep = "[".repeat(100_000);
    assert!(matches!(
        recover_json(&deep),
        Err(RecoveryError::Unrepairable { .. })
    ));
}

/// A model that answers one fixed text and counts its calls.
struct Fixed(
    &'static str,
    std::sync::atomic::AtomicUsize,
    nosyntask_engine::ports::ModelInfo,
);

#[async_trait::async_trait]
impl TextModel for Fixed {
    fn info(&self) -> &nosyntask_engine::ports::ModelInfo {
        &self.2
    }

    async fn complete(
        &self,
        request: TextRequest,
        _cancel: &CancellationToken,
    ) -> Result<TextResponse, TaskError> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        assert!(request.json_output && request.messages[1].content.contains("scenes"));
        Ok(TextResponse {
            content: self.0.into(),
            finish_reason: Some("stop".into()),
            usage: Default::default(),
            cost_micros: None,
            model: "fixer".into(),
            provider: "test".into(),
        })
    }
}

fn fixer(answer: &'static str) -> Fixed {
    Fixed(
        answer,
        Default::default(),
        nosyntask_engine::ports::ModelInfo {
            name: "fixer".into(),
            kind: nosyntask_engine::ports::ModelKind::Text,
            adapter: "test".into(),
            model: "fixer".into(),
            is_default: true,
            max_concurrency: 1,
            requests_per_minute: None,
            timeout: std::time::Duration::from_secs(1),
        },
    )
}

#[tokio::test]
async fn one_repair_request_when_local_recovery_fails() {
    let broken = TextResponse {
        content: "scenes: 第一场 雨夜; 第二场 车站".into(),
        finish_reason: Some("stop".into()),
        usage: Default::default(),
        cost_micros: None,
        model: "m".into(),
        provider: "p".into(),
    };
    let model = fixer("{\"scenes\": [{\"order\": 1, \"description\": \"雨夜\"}]}");
    let (board, repaired): (Storyboard, _) = parse_or_repair(
        &broken,
        &model,
        Some(&json!({"scenes": []})),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(board.scenes[0].description, "雨夜");
    assert_eq!(repaired.unwrap().model, "fixer");
    assert_eq!(model.1.load(std::sync::atomic::Ordering::SeqCst), 1);

    let hopeless = fixer("我做不到");
    let err = parse_or_repair::<Storyboard>(&broken, &hopeless, None, &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("the JSON could not be recovered even after a repair request"),
        "{err}"
    );

    // Parseable answers never call the model.
    let ok = TextResponse {
        content: "{\"scenes\": []}".into(),
        ..broken.clone()
    };
    let untouched = fixer("{}");
    parse_or_repair::<Storyboard>(&ok, &untouched, None, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(untouched.1.load(std::sync::atomic::Ordering::SeqCst), 0);
}
