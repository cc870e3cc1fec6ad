//! Tolerant field readers for model output: LLMs return `"5秒"` for a number, `"是"` for a bool,
//! `"张三, 李四"` for a list, or `null` for anything. Each reader turns what it gets into the
//! contract's type instead of failing the whole answer over one field.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A string: numbers and booleans are written out, lists joined, `null` is empty.
pub(crate) fn string<'de, D: Deserializer<'de>>(de: D) -> Result<String, D::Error> {
    Ok(string_of(&Value::deserialize(de)?))
}

/// A boolean: `true`, `"true"`, `"yes"`, `"是"`, non-zero numbers are true.
pub(crate) fn boolean<'de, D: Deserializer<'de>>(de: D) -> Result<bool, D::Error> {
    Ok(match Value::deserialize(de)? {
        Value::Bool(b) => b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => matches!(
            s.trim().to_lowercase().as_str(),
            "true" | "yes" | "y" | "1" | "是" | "有" | "对"
        ),
        _ => false,
    })
}

/// A number, if one can be read: `5`, `"5"`, `"5秒"`, `"3.5 seconds"`.
pub(crate) fn number<'de, D: Deserializer<'de>>(de: D) -> Result<Option<f64>, D::Error> {
    Ok(number_of(&Value::deserialize(de)?))
}

/// A list of strings: an array (of strings, numbers or objects with a `name`), or one string
/// split on commas and list separators.
pub(crate) fn strings<'de, D: Deserializer<'de>>(de: D) -> Result<Vec<String>, D::Error> {
    let value = Value::deserialize(de)?;
    let items: Vec<String> = match value {
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::Object(map) => map.get("name").map(string_of).unwrap_or_default(),
                other => string_of(other),
            })
            .collect(),
        Value::String(s) => s
            .split([',', '，', '、', ';', '；', '/'])
            .map(str::to_owned)
            .collect(),
        Value::Null => Vec::new(),
        other => vec![string_of(&other)],
    };
    Ok(items
        .into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect())
}

/// A JSON value as text, trimmed.
pub(crate) fn string_of(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.trim().to_owned(),
        Value::Array(items) => items
            .iter()
            .map(string_of)
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(", "),
        Value::Object(_) | Value::Bool(_) | Value::Number(_) => value.to_string(),
    }
}

/// The leading number of a value, if it has one.
pub(crate) fn number_of(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => {
            let s = s.trim();
            let end = s
                .char_indices()
                .find(|&(i, c)| !(c.is_ascii_digit() || (c == '.' && i > 0)))
                .map_or(s.len(), |(i, _)| i);
            s[..end].parse().ok()
        }
        _ => None,
    }
    .filter(|f: &f64| f.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Deserialize)]
    struct Probe {
        #[serde(default, deserialize_with = "string")]
        s: String,
        #[serde(default, deserialize_with = "boolean")]
        b: bool,
        #[serde(default, deserialize_with = "number")]
        n: Option<f64>,
        #[serde(default, deserialize_with = "strings")]
        l: Vec<String>,
    }

    fn probe(value: Value) -> Probe {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn reads_what_models_write() {
        let p = probe(json!({"s": 12, "b": "是", "n": "5秒", "l": "张三、李四, Bob"}));
        assert_eq!(p.s, "12");
        assert!(p.b);
        assert_eq!(p.n, Some(5.0));
        assert_eq!(p.l, ["张三", "李四", "Bob"]);

        let p = probe(json!({"s": null, "b": 0, "n": "3.5 seconds", "l": [{"name": "A"}, 7, ""]}));
        assert_eq!(p.s, "");
        assert!(!p.b);
        assert_eq!(p.n, Some(3.5));
        assert_eq!(p.l, ["A", "7"]);

        let p = probe(json!({}));
        assert_eq!((p.s.as_str(), p.b, p.n, p.l.len()), ("", false, None, 0));
        assert_eq!(probe(json!({"n": "about"})).n, None);
        assert_eq!(probe(json!({"s": ["a", "b"]})).s, "a, b");
    }
}
