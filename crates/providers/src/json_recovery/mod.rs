//! Recovering JSON from LLM output: strip `<think>` blocks, code fences and the prose around the
//! JSON; parse; repair sloppy or truncated JSON (trailing commas, single quotes, unquoted keys and
//! values, cut-off arrays and objects) with `jsonrepair-rs`; then deserialize into the caller's
//! type, or fail with a message that says what was wrong.

use nosyntask_domain::TaskError;
use nosyntask_engine::ports::{ChatMessage, TextModel, TextRequest, TextResponse};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::http::excerpt;

mod repair;

/// Deeper nesting than this is refused before repair (it would only come from garbage).
const MAX_DEPTH: usize = 256;
/// How many candidate start positions are tried in prose.
const MAX_CANDIDATES: usize = 32;

/// Why no JSON value could be recovered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecoveryError {
    #[error("the model returned an empty answer")]
    Empty,
    #[error("the model's answer ended inside its <think> block, before any JSON")]
    OnlyThinking,
    #[error("the model's answer contains no JSON: {0}")]
    NoJson(String),
    #[error("the model's JSON could not be repaired ({reason}): {excerpt}")]
    Unrepairable { reason: String, excerpt: String },
}

/// Removes `<think>…</think>` blocks; an unclosed `<think>` hides the rest; a lone `</think>`
/// (templates that open the block in the prompt) hides what came before it.
pub fn strip_thinking(text: &str) -> Result<String, RecoveryError> {
    let lower = text.to_ascii_lowercase();
    let mut out = String::new();
    let mut rest_start = 0;
    if let Some(close) = lower.rfind("</think>")
        && !lower[..close].contains("<think>")
    {
        rest_start = close + "</think>".len();
    }
    let mut cursor = rest_start;
    while let Some(open) = lower[cursor..].find("<think>").map(|i| cursor + i) {
        out.push_str(&text[cursor..open]);
        match lower[open..].find("</think>") {
            Some(close) => cursor = open + close + "</think>".len(),
            None => {
                cursor = text.len();
                if out.trim().is_empty() {
                    return Err(RecoveryError::OnlyThinking);
                }
            }
        }
    }
    out.push_str(&text[cursor..]);
    Ok(out)
}

/// The content of the first fenced code block that looks like JSON (an unclosed fence runs to
/// the end), or the whole text when there is none.
pub fn strip_fences(text: &str) -> &str {
    let mut search = 0;
    while let Some(open) = text[search..].find("```").map(|i| search + i) {
        let after_ticks = open + 3;
        let body_start = match text[after_ticks..].find('\n') {
            Some(nl) => after_ticks + nl + 1,
            None => text.len(),
        };
        let (body, next) = match text[body_start..].find("```") {
            Some(close) => (
                &text[body_start..body_start + close],
                body_start + close + 3,
            ),
            None => (&text[body_start..], text.len()),
        };
        if body.trim_start().starts_with(['{', '[']) {
            return body;
        }
        search = next;
        if search >= text.len() {
            break;
        }
    }
    text
}

fn max_depth(text: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    for c in text.chars() {
        match c {
            '{' | '[' => {
                depth += 1;
                max = max.max(depth);
            }
            '}' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Recovers the JSON value in an LLM answer (the first candidate, when there are several).
pub fn recover_json(raw: &str) -> Result<Value, RecoveryError> {
    recover_json_matching(raw, |_| true)
}

/// Recovers the JSON value in an LLM answer, preferring the first candidate `accept` takes (the
/// one of the expected shape) over an example or a bracketed note earlier in the prose; when no
/// candidate is accepted, the first one is returned, for the caller to report its shape.
pub fn recover_json_matching(
    raw: &str,
    accept: impl Fn(&Value) -> bool,
) -> Result<Value, RecoveryError> {
    if raw.trim().is_empty() {
        return Err(RecoveryError::Empty);
    }
    let visible = strip_thinking(&unify_thinking_tags(raw))?;
    // Repaired as a whole before it is split: full-width separators between tokens would
    // otherwise hide where a value ends. Messages quote the answer as the model wrote it.
    let shown = || excerpt(visible.trim().as_bytes());
    let text = repair::ascii_separators(visible.trim());
    let text = text.trim();
    if text.is_empty() {
        return Err(RecoveryError::Empty);
    }
    if let Ok(value) = serde_json::from_str::<Value>(text)
        && (value.is_object() || value.is_array())
    {
        return Ok(value);
    }
    // Fenced JSON blocks come first, then the whole text (where the answer may follow an
    // example in a fence).
    let mut regions: Vec<&str> = json_fences(text);
    regions.push(text);
    let mut spans: Vec<String> = Vec::new();
    for region in regions {
        for span in repair::candidate_spans(region, MAX_CANDIDATES) {
            if spans.len() < MAX_CANDIDATES * 2 && !spans.contains(&span) {
                spans.push(span);
            }
        }
    }
    if spans.is_empty() {
        return Err(RecoveryError::NoJson(shown()));
    }
    let strict: Vec<Value> = spans
        .iter()
        .filter_map(|span| serde_json::from_str::<Value>(span).ok())
        .filter(|v| v.is_object() || v.is_array())
        .collect();
    if let Some(value) = strict.iter().find(|v| accept(v)) {
        return Ok(value.clone());
    }
    let mut first_error = None;
    let mut repaired = Vec::new();
    for span in &spans {
        if max_depth(span) > MAX_DEPTH {
            first_error.get_or_insert_with(|| format!("nested deeper than {MAX_DEPTH} levels"));
            continue;
        }
        match jsonrepair_rs::jsonrepair(span) {
            Ok(text) => match serde_json::from_str::<Value>(&text) {
                Ok(value) if value.is_object() || value.is_array() => {
                    if accept(&value) {
                        return Ok(value);
                    }
                    repaired.push(value);
                }
                Ok(_) => {
                    first_error.get_or_insert_with(|| "not an object or array".to_owned());
                }
                Err(err) => {
                    first_error.get_or_insert_with(|| err.to_string());
                }
            },
            Err(err) => {
                first_error.get_or_insert_with(|| err.to_string());
            }
        }
    }
    if let Some(value) = strict.into_iter().chain(repaired).next() {
        return Ok(value);
    }
    Err(RecoveryError::Unrepairable {
        reason: first_error.unwrap_or_else(|| "unknown".to_owned()),
        excerpt: shown(),
    })
}

/// The bodies of the fenced code blocks that look like JSON, in order (an unclosed fence runs
/// to the end).
fn json_fences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut search = 0;
    while search < text.len() {
        let Some(open) = text[search..].find("```").map(|i| search + i) else {
            break;
        };
        let after_ticks = open + 3;
        let body_start = match text[after_ticks..].find('\n') {
            Some(nl) => after_ticks + nl + 1,
            None => text.len(),
        };
        let (body, next) = match text[body_start..].find("```") {
            Some(close) => (
                &text[body_start..body_start + close],
                body_start + close + 3,
            ),
            None => (&text[body_start..], text.len()),
        };
        if body.trim_start().starts_with(['{', '[']) {
            out.push(body);
        }
        search = next;
    }
    out
}

/// Thinking blocks under other names (`<thinking>`, `<reasoning>`, Kimi's `◁think▷`) as
/// `<think>` blocks.
fn unify_thinking_tags(text: &str) -> String {
    let mut out = text.to_owned();
    for name in ["thinking", "reasoning", "reflection"] {
        out = replace_ignore_case(&out, &format!("<{name}>"), "<think>");
        out = replace_ignore_case(&out, &format!("</{name}>"), "</think>");
    }
    out.replace("◁think▷", "<think>")
        .replace("◁/think▷", "</think>")
}

fn replace_ignore_case(text: &str, pattern: &str, with: &str) -> String {
    // ASCII lowercasing keeps byte offsets, so positions found in `lower` index `text`.
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut cursor = 0;
    while let Some(at) = lower[cursor..].find(pattern).map(|i| cursor + i) {
        out.push_str(&text[cursor..at]);
        out.push_str(with);
        cursor = at + pattern.len();
    }
    out.push_str(&text[cursor..]);
    out
}

/// Recovers the JSON in `text` and deserializes it into `T`; errors are permanent and say what
/// was wrong (with the path of a value of the wrong shape).
pub fn parse_llm_json<T: DeserializeOwned>(text: &str) -> Result<T, TaskError> {
    let value =
        recover_json_matching(text, fits::<T>).map_err(|e| TaskError::permanent(e.to_string()))?;
    from_value(value)
}

/// Whether `value` deserializes into `T`.
fn fits<T: DeserializeOwned>(value: &Value) -> bool {
    T::deserialize(value).is_ok()
}

/// Deserializes a recovered value, naming the path of the first mismatch.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, TaskError> {
    let shown = excerpt(value.to_string().as_bytes());
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let at = if path == "." {
            String::new()
        } else {
            format!(" at {path}")
        };
        TaskError::permanent(format!(
            "the model's JSON does not have the expected shape{at}: {}: {shown}",
            err.into_inner()
        ))
    })
}

/// [`parse_llm_json`] on a model's answer. When the answer was cut off (`finish_reason=length`),
/// an incomplete last item of the last array is dropped if that is what stops the
/// deserialization; when it still cannot be parsed, the error says the output was cut off.
pub fn parse_llm_response<T: DeserializeOwned>(response: &TextResponse) -> Result<T, TaskError> {
    let cut_off = |err: TaskError| {
        TaskError::permanent(format!(
            "the model's output was cut off (finish_reason=length): {err}"
        ))
    };
    if !response.is_truncated() {
        return parse_llm_json(&response.content);
    }
    let value = recover_json_matching(&response.content, fits::<T>)
        .map_err(|e| cut_off(TaskError::permanent(e.to_string())))?;
    let first_error = match from_value::<T>(value.clone()) {
        Ok(parsed) => return Ok(parsed),
        Err(err) => err,
    };
    // Where the answer was cut off is not known from the value (object keys are unordered), so
    // each array in turn loses its last item, deepest first.
    let mut arrays = Vec::new();
    array_paths(&value, &mut Vec::new(), &mut arrays);
    arrays.sort_by_key(|path| std::cmp::Reverse(path.len()));
    for path in arrays.iter().take(MAX_ARRAYS_TRIED) {
        let mut trimmed = value.clone();
        if let Some(Value::Array(items)) = get_mut(&mut trimmed, path) {
            items.pop();
        }
        if let Ok(parsed) = from_value::<T>(trimmed) {
            warn!("the model's output was cut off; its incomplete last item was dropped");
            return Ok(parsed);
        }
    }
    Err(cut_off(first_error))
}

/// How many arrays of a cut-off answer are tried without their last item.
const MAX_ARRAYS_TRIED: usize = 16;

#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

fn array_paths(value: &Value, path: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    match value {
        Value::Array(items) => {
            if !items.is_empty() {
                out.push(path.clone());
            }
            for (i, item) in items.iter().enumerate() {
                path.push(Step::Index(i));
                array_paths(item, path, out);
                path.pop();
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                path.push(Step::Key(key.clone()));
                array_paths(item, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn get_mut<'a>(value: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    path.iter().try_fold(value, |current, step| match step {
        Step::Key(key) => current.get_mut(key.as_str()),
        Step::Index(index) => current.get_mut(*index),
    })
}

/// Parses a model's answer; if that fails, asks `model` once to repair the JSON (the spec's
/// `repairJsonResponse`) and parses its answer.
pub async fn parse_or_repair<T: DeserializeOwned>(
    response: &TextResponse,
    model: &dyn TextModel,
    example: Option<&Value>,
    cancel: &CancellationToken,
) -> Result<(T, Option<TextResponse>), TaskError> {
    let first = match parse_llm_response(response) {
        Ok(value) => return Ok((value, None)),
        Err(err) => err,
    };
    let shape = example
        .map(|e| format!("\nThe JSON must have this shape:\n{e}"))
        .unwrap_or_default();
    let mut request = TextRequest {
        messages: vec![
            ChatMessage::system(
                "You repair broken JSON. Answer with the corrected JSON only, no explanation.",
            ),
            ChatMessage::user(format!(
                "This JSON is broken ({first}). Return it as valid JSON, keeping its content.{shape}\n\n{}",
                response.content
            )),
        ],
        temperature: Some(0.0),
        ..TextRequest::default()
    };
    request.json_output = true;
    request.json_example = example.cloned();
    let repaired = model.complete(request, cancel).await?;
    let value = parse_llm_response(&repaired).map_err(|err| {
        err.context("the JSON could not be recovered even after a repair request")
    })?;
    Ok((value, Some(repaired)))
}

#[cfg(test)]
mod tests;
