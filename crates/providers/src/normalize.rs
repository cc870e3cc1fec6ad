//! Reading provider responses: dot paths into JSON (`output.results[0].url`) and the spec's
//! field normalisation (`content`/`text`; `image_url`/`imageUrl`/`url`; `video_url`/`videoUrl`/`url`).

use std::fmt;

use serde_json::Value;

/// A parsed dot path such as `data[0].url`, `output.task_id` or `[0]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    text: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

impl JsonPath {
    /// Parses a dot path; keys are separated by `.`, array indexes written `[n]`.
    pub fn parse(text: &str) -> Result<JsonPath, String> {
        let mut segments = Vec::new();
        for part in text.split('.') {
            let (key, mut rest) = match part.find('[') {
                Some(at) => (&part[..at], &part[at..]),
                None => (part, ""),
            };
            if key.is_empty() && rest.is_empty() {
                return Err(format!("`{text}` has an empty segment"));
            }
            if !key.is_empty() {
                segments.push(Segment::Key(key.to_owned()));
            }
            while !rest.is_empty() {
                let close = rest
                    .find(']')
                    .ok_or_else(|| format!("`{text}` has an unclosed `[`"))?;
                let index = rest[1..close]
                    .trim()
                    .parse::<usize>()
                    .map_err(|_| format!("`{text}` has a bad index `{}`", &rest[..=close]))?;
                segments.push(Segment::Index(index));
                rest = &rest[close + 1..];
                if !rest.is_empty() && !rest.starts_with('[') {
                    return Err(format!("`{text}`: expected `.` or `[` after `]`"));
                }
            }
        }
        Ok(JsonPath {
            text: text.to_owned(),
            segments,
        })
    }

    /// The value at this path, if every segment exists.
    pub fn get<'a>(&self, value: &'a Value) -> Option<&'a Value> {
        self.segments
            .iter()
            .try_fold(value, |current, segment| match segment {
                Segment::Key(key) => current.get(key),
                Segment::Index(index) => current.get(index),
            })
    }

    /// The value at this path as text: a string, a number or a boolean; an array gives its first
    /// element (Replicate's `output` is a URL or a list of URLs); `null` and objects give `None`.
    pub fn get_text(&self, value: &Value) -> Option<String> {
        self.get(value).and_then(scalar_text)
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A scalar as text; the first element of an array; `None` for null, objects and empty text.
pub fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Array(items) => items.first().and_then(scalar_text),
        _ => None,
    }
}

/// The text of a text-model response: `content`, else `text`.
pub fn extract_text(response: &Value) -> Option<String> {
    first_text(response, &["content", "text"])
}

/// The image URL of a response: `image_url`, `imageUrl`, `url`, also inside `result`/`output`.
pub fn extract_image_url(response: &Value) -> Option<String> {
    extract_media_url(response, &["image_url", "imageUrl", "url"])
}

/// The video URL of a response: `video_url`, `videoUrl`, `url`, also inside `result`/`output`.
pub fn extract_video_url(response: &Value) -> Option<String> {
    extract_media_url(response, &["video_url", "videoUrl", "url"])
}

fn extract_media_url(response: &Value, keys: &[&str]) -> Option<String> {
    first_text(response, keys).or_else(|| {
        ["result", "output"]
            .iter()
            .filter_map(|wrapper| response.get(wrapper))
            .find_map(|inner| match inner {
                Value::String(s) if looks_like_url(s) => Some(s.clone()),
                Value::Array(items) => items.iter().find_map(|item| match item {
                    Value::String(s) if looks_like_url(s) => Some(s.clone()),
                    other => first_text(other, keys),
                }),
                other => first_text(other, keys),
            })
    })
}

fn first_text(value: &Value, keys: &[&str]) -> Option<String> {
    keys.iter()
        .filter_map(|key| value.get(key))
        .find_map(|v| match v {
            Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
            _ => None,
        })
}

/// True for `http(s)://…` and `data:` URLs.
pub fn looks_like_url(text: &str) -> bool {
    let lower = text
        .trim_start()
        .get(..8)
        .unwrap_or(text)
        .to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("data:")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_reach_nested_values() {
        let value =
            json!({"output": {"results": [{"url": "u1"}], "task_id": "t"}, "data": [[1, 2]]});
        assert_eq!(
            JsonPath::parse("output.task_id").unwrap().get_text(&value),
            Some("t".into())
        );
        assert_eq!(
            JsonPath::parse("output.results[0].url")
                .unwrap()
                .get_text(&value),
            Some("u1".into())
        );
        assert_eq!(
            JsonPath::parse("data[0][1]").unwrap().get(&value),
            Some(&json!(2))
        );
        assert_eq!(JsonPath::parse("output.missing").unwrap().get(&value), None);
        assert_eq!(
            JsonPath::parse("[0]").unwrap().get(&json!(["a"])),
            Some(&json!("a"))
        );
        assert!(JsonPath::parse("a..b").is_err());
        assert!(JsonPath::parse("a[x]").is_err());
        assert!(JsonPath::parse("a[0").is_err());
        assert!(JsonPath::parse("a[0]b").is_err());
    }

    #[test]
    fn arrays_give_their_first_element() {
        let value = json!({"output": ["https://a/1.png", "https://a/2.png"], "n": null});
        let path = JsonPath::parse("output").unwrap();
        assert_eq!(path.get_text(&value), Some("https://a/1.png".into()));
        assert_eq!(JsonPath::parse("n").unwrap().get_text(&value), None);
    }

    #[test]
    fn spec_field_normalisation() {
        assert_eq!(extract_text(&json!({"text": "b"})), Some("b".into()));
        assert_eq!(
            extract_text(&json!({"content": "a", "text": "b"})),
            Some("a".into())
        );
        assert_eq!(
            extract_image_url(&json!({"imageUrl": "i"})),
            Some("i".into())
        );
        assert_eq!(extract_image_url(&json!({"url": "u"})), Some("u".into()));
        assert_eq!(
            extract_image_url(&json!({"status": "completed", "result": {"image_url": "r"}})),
            Some("r".into())
        );
        assert_eq!(
            extract_video_url(&json!({"videoUrl": "v", "url": "u"})),
            Some("v".into())
        );
        assert_eq!(
            extract_video_url(&json!({"output": ["https://x/v.mp4"]})),
            Some("https://x/v.mp4".into())
        );
        assert_eq!(
            extract_video_url(&json!({"task_id": "t", "status": "pending"})),
            None
        );
    }
}
