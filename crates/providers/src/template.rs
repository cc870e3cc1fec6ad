//! `{{placeholder}}` templates of declarative (async task) adapters. Values are substituted into
//! parsed JSON, never into JSON text, so they are always escaped; a placeholder that is a whole
//! string becomes a typed value (`"{{width}}"` → `1024`; `"{{width|string}}"` → `"1024"`), and one
//! whose value is missing removes its key. Templates only substitute: nothing is evaluated.

use std::collections::BTreeMap;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

/// The placeholders every template may use; captured response values add more.
pub const BUILTIN_VARS: &[&str] = &[
    "prompt",
    "negative_prompt",
    "model",
    "width",
    "height",
    "size",
    "duration",
    "image_url",
    "end_image_url",
    "api_key",
    "base_url",
    "task_id",
];

/// Characters kept as they are when a task id is put into a URL path.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// One value a template can refer to.
#[derive(Debug, Clone, PartialEq)]
pub enum Var {
    Text(String),
    Number(u64),
}

impl Var {
    fn text(&self) -> String {
        match self {
            Var::Text(s) => s.clone(),
            Var::Number(n) => n.to_string(),
        }
    }

    fn json(&self, force_string: bool) -> Value {
        match self {
            Var::Number(n) if !force_string => Value::from(*n),
            other => Value::String(other.text()),
        }
    }
}

/// The values of one call. A name that is absent renders as missing.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    values: BTreeMap<String, Var>,
}

impl Vars {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set(&mut self, name: &str, value: Var) -> &mut Self {
        self.values.insert(name.to_owned(), value);
        self
    }

    pub fn set_text(&mut self, name: &str, value: impl Into<String>) -> &mut Self {
        self.set(name, Var::Text(value.into()))
    }

    pub fn set_opt(&mut self, name: &str, value: Option<&str>) -> &mut Self {
        match value.filter(|v| !v.is_empty()) {
            Some(v) => self.set_text(name, v),
            None => {
                self.values.remove(name);
                self
            }
        }
    }

    pub fn get(&self, name: &str) -> Option<&Var> {
        self.values.get(name)
    }
}

struct Placeholder<'a> {
    name: &'a str,
    filter: Option<&'a str>,
}

enum Part<'a> {
    Literal(&'a str),
    Placeholder(Placeholder<'a>),
}

/// Splits `text` into literal parts and placeholders (an unclosed `{{` stays literal).
fn scan(text: &str) -> Vec<Part<'_>> {
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let Some(close) = rest[open + 2..].find("}}") else {
            break;
        };
        parts.push(Part::Literal(&rest[..open]));
        let inner = rest[open + 2..open + 2 + close].trim();
        let (name, filter) = match inner.split_once('|') {
            Some((name, filter)) => (name.trim(), Some(filter.trim())),
            None => (inner, None),
        };
        parts.push(Part::Placeholder(Placeholder { name, filter }));
        rest = &rest[open + 2 + close + 2..];
    }
    parts.push(Part::Literal(rest));
    parts
}

/// Checks every placeholder of `text` is a known name with a known filter.
pub fn check(text: &str, known: &[&str]) -> Result<(), String> {
    for part in scan(text) {
        match part {
            Part::Literal(lit) if lit.contains("{{") => {
                return Err(format!("unclosed `{{{{` in `{text}`"));
            }
            Part::Literal(_) => {}
            Part::Placeholder(p) => {
                if !known.contains(&p.name) {
                    return Err(format!(
                        "unknown placeholder `{{{{{}}}}}` (known: {})",
                        p.name,
                        known.join(", ")
                    ));
                }
                if let Some(filter) = p.filter.filter(|f| *f != "string") {
                    return Err(format!("unknown filter `{filter}` (only `string` exists)"));
                }
            }
        }
    }
    Ok(())
}

/// Checks every string inside a JSON template.
pub fn check_value(value: &Value, known: &[&str]) -> Result<(), String> {
    match value {
        Value::String(s) => check(s, known),
        Value::Array(items) => items.iter().try_for_each(|v| check_value(v, known)),
        Value::Object(map) => map.iter().try_for_each(|(k, v)| {
            check(k, known)?;
            check_value(v, known)
        }),
        _ => Ok(()),
    }
}

/// Renders text; a missing value renders as nothing.
pub fn render(text: &str, vars: &Vars) -> String {
    let mut out = String::with_capacity(text.len());
    for part in scan(text) {
        match part {
            Part::Literal(lit) => out.push_str(lit),
            Part::Placeholder(p) => {
                if let Some(v) = vars.get(p.name) {
                    out.push_str(&v.text());
                }
            }
        }
    }
    out
}

/// Renders a URL. The base URL, the model id (fal's contain slashes) and values captured from
/// responses (provider-given URLs) are put in as they are; other values, such as the task id,
/// are percent-encoded as path segments.
pub fn render_url(text: &str, vars: &Vars) -> String {
    let mut out = String::with_capacity(text.len());
    for part in scan(text) {
        match part {
            Part::Literal(lit) => out.push_str(lit),
            Part::Placeholder(p) => match (p.name, vars.get(p.name)) {
                ("base_url" | "model", Some(v)) => out.push_str(&v.text()),
                (name, Some(v)) if BUILTIN_VARS.contains(&name) => {
                    out.extend(utf8_percent_encode(&v.text(), PATH_SEGMENT));
                }
                (_, Some(v)) => out.push_str(&v.text()),
                (_, None) => {}
            },
        }
    }
    out
}

/// Renders a JSON template. Returns `None` when the value is a whole placeholder whose value is
/// missing (its key or array element is then left out), or an object that became empty that way.
pub fn render_value(template: &Value, vars: &Vars) -> Option<Value> {
    match template {
        Value::String(s) => render_string_value(s, vars),
        Value::Array(items) => Some(Value::Array(
            items.iter().filter_map(|v| render_value(v, vars)).collect(),
        )),
        Value::Object(map) => {
            let rendered: serde_json::Map<String, Value> = map
                .iter()
                .filter_map(|(k, v)| render_value(v, vars).map(|v| (render(k, vars), v)))
                .collect();
            (map.is_empty() || !rendered.is_empty()).then_some(Value::Object(rendered))
        }
        other => Some(other.clone()),
    }
}

fn render_string_value(text: &str, vars: &Vars) -> Option<Value> {
    let parts = scan(text.trim());
    if let [Part::Literal(""), Part::Placeholder(p), Part::Literal("")] = parts.as_slice() {
        let force_string = p.filter == Some("string");
        return vars.get(p.name).map(|v| v.json(force_string));
    }
    Some(Value::String(render(text, vars)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars() -> Vars {
        let mut vars = Vars::new();
        vars.set_text("prompt", "a \"quoted\" 龙\nline")
            .set("width", Var::Number(1024))
            .set("height", Var::Number(576))
            .set_text("task_id", "a/b c")
            .set_text("base_url", "https://api.example.com/v1");
        vars
    }

    #[test]
    fn whole_placeholders_are_typed_and_missing_ones_dropped() {
        let template = json!({
            "input": {"prompt": "{{prompt}}", "image": "{{image_url}}", "ref": {"url": "{{image_url}}"}},
            "parameters": {"size": "{{width}}*{{height}}", "w": "{{ width }}", "ws": "{{width|string}}"},
            "list": ["{{image_url}}", "{{prompt}}"],
            "empty": {}
        });
        let rendered = render_value(&template, &vars()).unwrap();
        assert_eq!(
            rendered,
            json!({
                "input": {"prompt": "a \"quoted\" 龙\nline"},
                "parameters": {"size": "1024*576", "w": 1024, "ws": "1024"},
                "list": ["a \"quoted\" 龙\nline"],
                "empty": {}
            })
        );
        // Serialising escapes the prompt properly.
        let text = serde_json::to_string(&rendered).unwrap();
        assert!(text.contains(r#"a \"quoted\" 龙\nline"#));
    }

    #[test]
    fn urls_encode_values_but_not_base_urls_models_or_captured_urls() {
        assert_eq!(
            render_url("{{base_url}}/tasks/{{task_id}}/cancel", &vars()),
            "https://api.example.com/v1/tasks/a%2Fb%20c/cancel"
        );
        let mut with_capture = vars();
        with_capture
            .set_text("status_url", "https://q.example/r/1/status")
            .set_text("model", "fal-ai/flux/dev");
        assert_eq!(
            render_url("{{status_url}}?m={{model}}&p={{prompt}}", &with_capture),
            "https://q.example/r/1/status?m=fal-ai/flux/dev&p=a%20%22quoted%22%20%E9%BE%99%0Aline"
        );
        assert_eq!(render("Bearer {{api_key}}", &vars()), "Bearer ");
    }

    #[test]
    fn checking_names_unknown_placeholders_and_filters() {
        assert!(check("{{base_url}}/x/{{task_id}}", BUILTIN_VARS).is_ok());
        let err = check("{{promt}}", BUILTIN_VARS).unwrap_err();
        assert!(err.contains("`{{promt}}`"), "{err}");
        assert!(
            check("{{prompt|upper}}", BUILTIN_VARS)
                .unwrap_err()
                .contains("upper")
        );
        assert!(check("{{prompt", BUILTIN_VARS).is_err());
        assert!(check_value(&json!({"a": ["{{status_url}}"]}), BUILTIN_VARS).is_err());
    }
}
