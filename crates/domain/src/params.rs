//! Parameter schemas: each workflow declares its params once, and the same declaration validates
//! a start request (naming the offending field) and is served as JSON Schema (`paramsSchema`).

use serde_json::{Map, Value, json};

/// The JSON type of one parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    String,
    Integer,
    Number,
    Boolean,
    Array,
    Object,
}

impl ParamKind {
    fn json_type(self) -> &'static str {
        match self {
            ParamKind::String => "string",
            ParamKind::Integer => "integer",
            ParamKind::Number => "number",
            ParamKind::Boolean => "boolean",
            ParamKind::Array => "array",
            ParamKind::Object => "object",
        }
    }

    fn accepts(self, value: &Value) -> bool {
        match self {
            ParamKind::String => value.is_string(),
            ParamKind::Integer => {
                value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            ParamKind::Number => value.is_number(),
            ParamKind::Boolean => value.is_boolean(),
            ParamKind::Array => value.is_array(),
            ParamKind::Object => value.is_object(),
        }
    }
}

/// One declared parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    pub name: String,
    pub kind: ParamKind,
    pub description: String,
    pub required: bool,
    pub default: Option<Value>,
    pub minimum: Option<f64>,
    pub maximum: Option<f64>,
    pub allowed: Option<Vec<String>>,
    pub max_length: Option<usize>,
    /// An array whose items must be objects (records: shots, scenes).
    pub records: bool,
    /// The named list of values this param takes (`text models`: the configured text models'
    /// names), known only where the list is (the server's document lists them as an `enum`). The
    /// workflow checks them when a job starts, not [`ParamsSchema::validate`].
    pub listed_in: Option<String>,
    /// The JSON Schema of a records array's items, where the workflow checks more than "an
    /// object" (documented; the workflow's own start check enforces it).
    pub items: Option<Value>,
    /// The most items an array param takes (documented; enforced by the workflow).
    pub max_items: Option<usize>,
}

impl ParamSpec {
    pub fn new(name: &str, kind: ParamKind, description: &str) -> Self {
        ParamSpec {
            name: name.to_owned(),
            kind,
            description: description.to_owned(),
            required: false,
            default: None,
            minimum: None,
            maximum: None,
            allowed: None,
            max_length: None,
            records: false,
            listed_in: None,
            items: None,
            max_items: None,
        }
    }

    /// The schema of a records array's items (see [`ParamSpec::items`]).
    pub fn items(mut self, schema: Value) -> Self {
        self.items = Some(schema);
        self
    }

    /// At most `max` items (see [`ParamSpec::max_items`]).
    pub fn max_items(mut self, max: usize) -> Self {
        self.max_items = Some(max);
        self
    }

    /// Takes the values of the named list (see [`ParamSpec::listed_in`]).
    pub fn listed_in(mut self, list: &str) -> Self {
        self.listed_in = Some(list.to_owned());
        self
    }

    /// An array of records: each item must be a JSON object.
    pub fn records(mut self) -> Self {
        self.records = true;
        self
    }

    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    pub fn default_value(mut self, value: Value) -> Self {
        self.default = Some(value);
        self
    }

    pub fn range(mut self, minimum: f64, maximum: f64) -> Self {
        self.minimum = Some(minimum);
        self.maximum = Some(maximum);
        self
    }

    pub fn one_of(mut self, allowed: &[&str]) -> Self {
        self.allowed = Some(allowed.iter().map(|s| (*s).to_owned()).collect());
        self
    }

    pub fn max_length(mut self, max: usize) -> Self {
        self.max_length = Some(max);
        self
    }

    fn check(&self, value: &Value) -> Result<(), ParamError> {
        let field = || self.name.clone();
        if self.records
            && let Some(at) = value
                .as_array()
                .and_then(|items| items.iter().position(|item| !item.is_object()))
        {
            return Err(
                ParamError::new(format!("{}[{at}]", self.name), "must be an object")
                    .zh("必须是对象"),
            );
        }
        if !self.kind.accepts(value) {
            return Err(ParamError::new(
                field(),
                format!("must be of type {}", self.kind.json_type()),
            )
            .zh(format!("类型必须是 {}", self.kind.json_type())));
        }
        if self.required && value.as_str().is_some_and(|s| s.trim().is_empty()) {
            return Err(ParamError::new(field(), "must not be empty").zh("不能为空"));
        }
        if let Some(number) = value.as_f64()
            && (self.minimum.is_some_and(|min| number < min)
                || self.maximum.is_some_and(|max| number > max))
        {
            return Err(ParamError::new(
                field(),
                format!(
                    "must be between {} and {}",
                    self.minimum.unwrap_or(f64::MIN),
                    self.maximum.unwrap_or(f64::MAX)
                ),
            )
            .zh(format!(
                "必须在 {} 到 {} 之间",
                self.minimum.unwrap_or(f64::MIN),
                self.maximum.unwrap_or(f64::MAX)
            )));
        }
        if let (Some(allowed), Some(text)) = (&self.allowed, value.as_str())
            && !allowed.iter().any(|a| a == text)
        {
            return Err(ParamError::new(
                field(),
                format!("must be one of: {}", allowed.join(", ")),
            )
            .zh(format!("必须是以下之一：{}", allowed.join(", "))));
        }
        if let (Some(max), Some(text)) = (self.max_length, value.as_str())
            && text.chars().count() > max
        {
            return Err(
                ParamError::new(field(), format!("must be at most {max} characters"))
                    .zh(format!("最多 {max} 个字符")),
            );
        }
        Ok(())
    }

    fn json_schema(&self) -> Value {
        let mut schema = Map::new();
        schema.insert("type".into(), json!(self.kind.json_type()));
        if !self.description.is_empty() {
            schema.insert("description".into(), json!(self.description));
        }
        if let Some(default) = &self.default {
            schema.insert("default".into(), default.clone());
        }
        if let Some(min) = self.minimum {
            schema.insert("minimum".into(), json!(min));
        }
        if let Some(max) = self.maximum {
            schema.insert("maximum".into(), json!(max));
        }
        if let Some(allowed) = &self.allowed {
            schema.insert("enum".into(), json!(allowed));
        }
        if let Some(max) = self.max_length {
            schema.insert("maxLength".into(), json!(max));
        }
        if let Some(items) = &self.items {
            schema.insert("items".into(), items.clone());
        } else if self.records {
            schema.insert(
                "items".into(),
                json!({"type": "object", "additionalProperties": true}),
            );
        }
        if let Some(max) = self.max_items {
            schema.insert("maxItems".into(), json!(max));
        }
        // A required string must not be blank (see `check`).
        if self.required && self.kind == ParamKind::String {
            schema.insert("pattern".into(), json!("\\S"));
        }
        Value::Object(schema)
    }
}

/// A parameter that failed validation: `field` names it, `message` says what is wrong (in
/// English; `message_zh` in Chinese when the writer gave one, for `Accept-Language: zh`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ParamError {
    pub field: String,
    pub message: String,
    pub message_zh: Option<String>,
}

impl ParamError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ParamError {
            field: field.into(),
            message: message.into(),
            message_zh: None,
        }
    }

    /// The same message in Chinese.
    pub fn zh(mut self, message: impl Into<String>) -> Self {
        self.message_zh = Some(message.into());
        self
    }
}

/// The declared parameters of a workflow.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParamsSchema {
    params: Vec<ParamSpec>,
    /// Groups of which at least one member must be present (e.g. `scriptContent` or `scenes`).
    any_of: Vec<Vec<String>>,
}

impl ParamsSchema {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn param(mut self, spec: ParamSpec) -> Self {
        self.params.push(spec);
        self
    }

    /// At least one of `names` must be given (non-null, non-empty).
    pub fn require_any_of(mut self, names: &[&str]) -> Self {
        self.any_of
            .push(names.iter().map(|s| (*s).to_owned()).collect());
        self
    }

    pub fn params(&self) -> &[ParamSpec] {
        &self.params
    }

    /// Checks `params` and returns them with defaults filled in. Unknown keys are kept as they
    /// are: the frontend sends extra context that handlers may read.
    pub fn validate(&self, params: &Value) -> Result<Value, ParamError> {
        let object = match params {
            Value::Object(object) => object,
            Value::Null => &Map::new(),
            _ => {
                return Err(
                    ParamError::new("params", "must be a JSON object").zh("必须是 JSON 对象")
                );
            }
        };
        let mut out = object.clone();
        for spec in &self.params {
            match object.get(&spec.name) {
                None | Some(Value::Null) => {
                    if spec.required {
                        return Err(
                            ParamError::new(spec.name.clone(), "is required").zh("为必填项")
                        );
                    }
                    if let Some(default) = &spec.default {
                        out.insert(spec.name.clone(), default.clone());
                    }
                }
                // Ids arrive as strings from routes that pass `req.params.id` along, and an
                // integral float (`3.0`) is an integer to JSON Schema: either is stored as the
                // integer it stands for, so handlers read it as one.
                Some(value) if spec.kind == ParamKind::Integer => match lenient_integer(value) {
                    Some(number) => {
                        let value = Value::from(number);
                        spec.check(&value)?;
                        out.insert(spec.name.clone(), value);
                    }
                    None => spec.check(value)?,
                },
                Some(value) => spec.check(value)?,
            }
        }
        for group in &self.any_of {
            let present = group.iter().any(|name| is_present(object.get(name)));
            if !present {
                return Err(ParamError::new(
                    group.join(" or "),
                    format!("one of {} is required", group.join(", ")),
                )
                .zh(format!("{} 至少需要提供一个", group.join("、"))));
            }
        }
        Ok(Value::Object(out))
    }

    /// The JSON Schema served as `paramsSchema`.
    pub fn to_json_schema(&self) -> Value {
        let properties: Map<String, Value> = self
            .params
            .iter()
            .map(|spec| (spec.name.clone(), spec.json_schema()))
            .collect();
        let required: Vec<&str> = self
            .params
            .iter()
            .filter(|spec| spec.required)
            .map(|spec| spec.name.as_str())
            .collect();
        let mut schema = json!({
            "type": "object",
            "properties": properties,
            "required": required,
        });
        if !self.any_of.is_empty() {
            let any_of: Vec<Value> = self
                .any_of
                .iter()
                .flat_map(|group| group.iter().map(|name| json!({"required": [name]})))
                .collect();
            schema["anyOf"] = Value::Array(any_of);
        }
        schema
    }
}

/// An integer given as a JSON number or a numeric string (`12`, `"12"`): how ids arrive from
/// frontends.
pub fn lenient_integer(value: &Value) -> Option<i64> {
    // 2^63 as a float: integral floats below it in magnitude convert exactly.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    match value {
        // `3.0` is an integer to JSON Schema (and to JavaScript) too.
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < LIMIT)
                .map(|f| f as i64)
        }),
        Value::String(s) => {
            let s = s.trim();
            s.parse().ok().or_else(|| {
                s.parse::<f64>()
                    .ok()
                    .and_then(|f| lenient_integer(&Value::from(f)))
            })
        }
        _ => None,
    }
}

fn is_present(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(Value::Array(items)) => !items.is_empty(),
        Some(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_read_as_json_schema_counts_them() {
        for (value, expected) in [
            (json!(12), Some(12)),
            (json!(12.0), Some(12)),
            (json!("12"), Some(12)),
            (json!(" 12.0 "), Some(12)),
            (json!(-3.0), Some(-3)),
            (json!(1.5), None),
            (json!("1.5"), None),
            (json!(1e30), None),
            (json!("NaN"), None),
            (json!(true), None),
        ] {
            assert_eq!(lenient_integer(&value), expected, "{value}");
        }
        let schema = ParamsSchema::new().param(ParamSpec::new("n", ParamKind::Integer, ""));
        assert_eq!(
            schema.validate(&json!({"n": 7.0})).unwrap(),
            json!({"n": 7})
        );
    }

    fn schema() -> ParamsSchema {
        ParamsSchema::new()
            .param(ParamSpec::new("prompt", ParamKind::String, "what to draw").required())
            .param(
                ParamSpec::new("duration", ParamKind::Integer, "seconds")
                    .range(1.0, 10.0)
                    .default_value(json!(5)),
            )
            .param(ParamSpec::new("kind", ParamKind::String, "").one_of(&["image", "video"]))
    }

    #[test]
    fn fills_defaults_and_keeps_unknown_keys() {
        let out = schema()
            .validate(&json!({"prompt": "a cat", "extra": 1}))
            .unwrap();
        assert_eq!(out, json!({"prompt": "a cat", "duration": 5, "extra": 1}));
    }

    #[test]
    fn names_the_offending_field() {
        let cases = [
            (json!({}), "prompt"),
            (json!({"prompt": "  "}), "prompt"),
            (json!({"prompt": 3}), "prompt"),
            (json!({"prompt": "x", "duration": 11}), "duration"),
            (json!({"prompt": "x", "duration": 2.5}), "duration"),
            (json!({"prompt": "x", "kind": "audio"}), "kind"),
            (json!([1]), "params"),
        ];
        for (params, field) in cases {
            let err = schema().validate(&params).unwrap_err();
            assert_eq!(err.field, field, "{params}");
        }
    }

    #[test]
    fn records_must_be_objects_and_the_schema_says_what_is_accepted() {
        let schema = ParamsSchema::new()
            .param(ParamSpec::new("shots", ParamKind::Array, "the shots").records())
            .param(ParamSpec::new("title", ParamKind::String, "a title").required());
        assert!(
            schema
                .validate(&json!({"title": "t", "shots": [{"id": 1}]}))
                .is_ok()
        );
        let err = schema
            .validate(&json!({"title": "t", "shots": [{"id": 1}, false]}))
            .unwrap_err();
        assert_eq!(
            (err.field.as_str(), err.message.as_str()),
            ("shots[1]", "must be an object")
        );
        let served = schema.to_json_schema();
        assert_eq!(
            served["properties"]["shots"]["items"],
            json!({"type": "object", "additionalProperties": true})
        );
        // A required string is refused when blank: the schema says it needs a non-space.
        assert_eq!(served["properties"]["title"]["pattern"], json!("\\S"));
        assert!(schema.validate(&json!({"title": " "})).is_err());
    }

    #[test]
    fn any_of_groups_need_one_member() {
        let schema = ParamsSchema::new().require_any_of(&["scriptContent", "scenes"]);
        assert!(schema.validate(&json!({"scenes": [{"a": 1}]})).is_ok());
        let err = schema.validate(&json!({"scenes": []})).unwrap_err();
        assert_eq!(err.field, "scriptContent or scenes");
        assert_eq!(
            schema.to_json_schema()["anyOf"][0],
            json!({"required": ["scriptContent"]})
        );
    }

    #[test]
    fn integer_valued_strings_become_integers() {
        let out = schema()
            .validate(&json!({"prompt": "x", "duration": " 7 "}))
            .unwrap();
        assert_eq!(out["duration"], json!(7));
        let err = schema()
            .validate(&json!({"prompt": "x", "duration": "12"}))
            .unwrap_err();
        assert_eq!(err.field, "duration");
        let err = schema()
            .validate(&json!({"prompt": "x", "duration": "seven"}))
            .unwrap_err();
        assert_eq!(err.field, "duration");
        assert_eq!(err.message_zh.as_deref(), Some("类型必须是 integer"));
    }
}
