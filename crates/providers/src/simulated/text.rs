//! Deterministic text for the simulated provider: plain prose or JSON in the shape of the
//! requested example, made of words taken from the prompt (Chinese or not).

use serde_json::{Map, Value};

use super::Rng;

const FALLBACK_WORDS: &[&str] = &["故事", "场景", "角色", "清晨", "城市", "微笑"];

/// Words of a prompt: Latin words as they are, runs of CJK characters cut into 2–4 character
/// pieces; duplicates and one-letter words dropped.
pub fn prompt_words(prompt: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    let mut push = |word: String| {
        if word.chars().count() >= 2 && !words.contains(&word) {
            words.push(word);
        }
    };
    let mut latin = String::new();
    let mut cjk: Vec<char> = Vec::new();
    let flush_cjk = |cjk: &mut Vec<char>, push: &mut dyn FnMut(String)| {
        let mut i = 0;
        while i < cjk.len() {
            let len = [2, 3, 2, 4][i % 4].min(cjk.len() - i);
            push(cjk[i..i + len].iter().collect());
            i += len;
        }
        cjk.clear();
    };
    for c in prompt.chars() {
        if is_cjk(c) {
            if !latin.is_empty() {
                push(std::mem::take(&mut latin));
            }
            cjk.push(c);
        } else if c.is_alphanumeric() {
            flush_cjk(&mut cjk, &mut push);
            latin.push(c);
        } else {
            flush_cjk(&mut cjk, &mut push);
            if !latin.is_empty() {
                push(std::mem::take(&mut latin));
            }
        }
    }
    flush_cjk(&mut cjk, &mut push);
    if !latin.is_empty() {
        push(latin);
    }
    if words.is_empty() {
        words = FALLBACK_WORDS.iter().map(|w| (*w).to_owned()).collect();
    }
    words
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x3040..=0x30FF | 0xAC00..=0xD7AF)
}

/// Builds text and JSON from a prompt's words.
pub struct Writer {
    words: Vec<String>,
    chinese: bool,
    rng: Rng,
}

impl Writer {
    pub fn new(prompt: &str, seed: u64) -> Self {
        let cjk = prompt.chars().filter(|c| is_cjk(*c)).count();
        let latin = prompt.chars().filter(|c| c.is_ascii_alphabetic()).count();
        Writer {
            words: prompt_words(prompt),
            chinese: cjk * 3 >= latin,
            rng: Rng::new(seed),
        }
    }

    fn word(&mut self) -> String {
        let index = (self.rng.next() % self.words.len() as u64) as usize;
        self.words[index].clone()
    }

    fn phrase(&mut self, count: usize) -> String {
        let words: Vec<String> = (0..count.max(1)).map(|_| self.word()).collect();
        words.join(if self.chinese { "" } else { " " })
    }

    /// One sentence of `count` words.
    pub fn sentence(&mut self, count: usize) -> String {
        let mut parts = Vec::new();
        let mut left = count.max(2);
        while left > 0 {
            let take = left.min(2 + (self.rng.next() % 3) as usize);
            parts.push(self.phrase(take));
            left -= take;
        }
        if self.chinese {
            format!("{}。", parts.join("，"))
        } else {
            let mut text = parts.join(", ");
            if let Some(first) = text.get(..1) {
                text = first.to_uppercase() + &text[1..];
            }
            text + "."
        }
    }

    /// A few sentences.
    pub fn prose(&mut self) -> String {
        let count = 2 + (self.rng.next() % 3) as usize;
        let sentences: Vec<String> = (0..count)
            .map(|_| {
                let n = 4 + (self.rng.next() % 5) as usize;
                self.sentence(n)
            })
            .collect();
        sentences.join(if self.chinese { "" } else { " " })
    }

    /// A value shaped like `example`: same keys, arrays of 2–4 items shaped like their first
    /// element, strings about as long as the example's, numbers in a plausible range.
    pub fn like(&mut self, example: &Value) -> Value {
        self.value(example, None, 0)
    }

    fn value(&mut self, example: &Value, key: Option<&str>, index: usize) -> Value {
        match example {
            Value::Object(map) => {
                let mut out = Map::new();
                for (k, v) in map {
                    out.insert(k.clone(), self.value(v, Some(k), index));
                }
                Value::Object(out)
            }
            Value::Array(items) => match items.first() {
                None => Value::Array(Vec::new()),
                Some(first) => {
                    let count = 2 + (self.rng.next() % 3) as usize;
                    Value::Array(
                        (0..count)
                            .map(|i| self.value(items.get(i).unwrap_or(first), key, i))
                            .collect(),
                    )
                }
            },
            Value::String(s) => Value::String(self.string_like(s, key)),
            Value::Number(n) => self.number_like(n, key, index),
            Value::Bool(_) => Value::Bool(self.rng.next().is_multiple_of(2)),
            Value::Null => Value::Null,
        }
    }

    fn string_like(&mut self, example: &str, key: Option<&str>) -> String {
        let key = key.unwrap_or("").to_ascii_lowercase();
        if example.starts_with("http://") || example.starts_with("https://") || key.ends_with("url")
        {
            return format!("https://example.invalid/sim/{:x}.png", self.rng.next());
        }
        let length = example.chars().count();
        if key.contains("name") || key.contains("title") || length <= 6 {
            self.phrase(1)
        } else if length <= 20 {
            let count = 2 + (self.rng.next() % 2) as usize;
            self.phrase(count)
        } else {
            let n = 6 + (self.rng.next() % 6) as usize;
            self.sentence(n)
        }
    }

    fn number_like(
        &mut self,
        example: &serde_json::Number,
        key: Option<&str>,
        index: usize,
    ) -> Value {
        let key = key.unwrap_or("").to_ascii_lowercase();
        let counter = matches!(
            key.as_str(),
            "order" | "index" | "id" | "no" | "seq" | "number"
        ) || key.ends_with("index")
            || key.ends_with("order")
            || key.ends_with("number");
        if counter {
            return Value::from(index as u64 + 1);
        }
        if example.is_f64() {
            let f = example.as_f64().unwrap_or(1.0).abs().max(1.0);
            let value = (f * (0.5 + self.rng.unit()) * 10.0).round() / 10.0;
            return serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number);
        }
        let base = example.as_u64().unwrap_or(5).clamp(1, 1_000_000);
        Value::from(1 + self.rng.next() % (base * 2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn words_from_chinese_and_latin_prompts() {
        let words = prompt_words("请提取角色：李明在咖啡馆等待 Alice, then leaves.");
        assert!(words.contains(&"Alice".to_owned()));
        assert!(words.iter().any(|w| w.contains('李')));
        assert_eq!(
            prompt_words("?!"),
            FALLBACK_WORDS
                .iter()
                .map(|w| w.to_string())
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn values_follow_the_example_shape() {
        let example = json!({"characters": [{"name": "张三", "age": 30, "isMain": true, "description": "一个很长的描述文字，用来说明这个人物的外貌和性格特征"}], "count": 1});
        let mut writer = Writer::new("剧本：李明和王芳在雨夜的车站重逢，两人沉默良久。", 7);
        let value = writer.like(&example);
        let characters = value["characters"].as_array().unwrap();
        assert!((2..=4).contains(&characters.len()));
        for c in characters {
            assert!(c["name"].is_string() && c["age"].is_u64() && c["isMain"].is_boolean());
            assert!(c["description"].as_str().unwrap().ends_with('。'));
        }
        let again =
            Writer::new("剧本：李明和王芳在雨夜的车站重逢，两人沉默良久。", 7).like(&example);
        assert_eq!(value, again, "deterministic");
    }

    #[test]
    fn order_fields_count_up() {
        let value = Writer::new("scenes of a film", 1).like(&json!({"scenes": [{"order": 1}]}));
        let orders: Vec<u64> = value["scenes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["order"].as_u64().unwrap())
            .collect();
        assert_eq!(orders, (1..=orders.len() as u64).collect::<Vec<_>>());
    }
}
