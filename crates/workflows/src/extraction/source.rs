//! What an extraction reads: the script text, or else the storyboard's shots written out as text.

use nosyntask_domain::TaskError;
use serde::Deserialize;
use serde_json::Value;

use crate::common::input::{non_empty, parse_input};
use crate::common::lenient::string_of;

/// The text an extraction reads, and the model it asks.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Source {
    pub text: String,
    /// True when the text is a written-out shot list rather than the script.
    pub from_shots: bool,
    pub model_name: Option<String>,
    pub think: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Input {
    script_content: Option<String>,
    #[serde(default)]
    scenes: Option<Vec<Value>>,
    model_name: Option<String>,
    think: Option<bool>,
}

impl Source {
    /// The script when it is given, else the shots.
    pub(crate) fn from_input(input: &Value) -> Result<Source, TaskError> {
        let input: Input = parse_input(input.clone())?;
        if let Some(script) = non_empty(input.script_content.as_deref()) {
            return Ok(Source {
                text: script.to_owned(),
                from_shots: false,
                model_name: input.model_name,
                think: input.think,
            });
        }
        let shots = shot_list(input.scenes.as_deref().unwrap_or_default());
        if shots.is_empty() {
            return Err(TaskError::permanent(
                "scriptContent or scenes: one of them must have content",
            ));
        }
        Ok(Source {
            text: shots,
            from_shots: true,
            model_name: input.model_name,
            think: input.think,
        })
    }
}

/// One line per shot: `3. [location] (characters) description "dialogue"`.
pub(crate) fn shot_list(shots: &[Value]) -> String {
    let mut out = String::new();
    for (index, shot) in shots.iter().enumerate() {
        let line = match shot {
            Value::Object(_) => {
                let field = |key: &str| shot.get(key).map(string_of).unwrap_or_default();
                let mut line = String::new();
                let location = field("location");
                if !location.is_empty() {
                    line.push_str(&format!("[{location}] "));
                }
                let characters = field("characters");
                if !characters.is_empty() {
                    line.push_str(&format!("({characters}) "));
                }
                line.push_str(&field("description"));
                let dialogue = field("dialogue");
                if !dialogue.is_empty() {
                    line.push_str(&format!(" \"{dialogue}\""));
                }
                let emotion = field("emotion");
                if !emotion.is_empty() {
                    line.push_str(&format!(" <{emotion}>"));
                }
                line
            }
            other => string_of(other),
        };
        let line = line.trim();
        if !line.is_empty() {
            out.push_str(&format!("{}. {line}\n", index + 1));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prefers_the_script_and_writes_out_shots() {
        let source =
            Source::from_input(&json!({"scriptContent": "Hi", "scenes": [{"a": 1}]})).unwrap();
        assert_eq!((source.text.as_str(), source.from_shots), ("Hi", false));

        let source = Source::from_input(&json!({"scenes": [
            {"description": "林冲坐起", "location": "山神庙内", "characters": ["林冲"], "dialogue": "谁？"},
            "A lone shot",
            {},
        ], "modelName": "m"}))
        .unwrap();
        assert_eq!(
            source.text,
            "1. [山神庙内] (林冲) 林冲坐起 \"谁？\"\n2. A lone shot\n"
        );
        assert!(source.from_shots);
        assert_eq!(source.model_name.as_deref(), Some("m"));

        assert!(Source::from_input(&json!({"scenes": [{}]})).is_err());
        assert!(Source::from_input(&json!({"scriptContent": " "})).is_err());
    }
}
