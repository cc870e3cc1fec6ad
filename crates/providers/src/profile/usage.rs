//! What one call used, as the provider reports it, and its cost from the profile's prices.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Prices of a model (any currency, the same for all keys of one model).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prices {
    /// Per million prompt (input) tokens.
    #[serde(default)]
    pub input_per_million: Option<f64>,
    /// Per million completion (output) tokens.
    #[serde(default)]
    pub output_per_million: Option<f64>,
    #[serde(default)]
    pub per_image: Option<f64>,
    #[serde(default)]
    pub per_video_second: Option<f64>,
}

impl Prices {
    pub(super) fn check(&self) -> Result<(), (String, String)> {
        for (key, value) in [
            ("input_per_million", self.input_per_million),
            ("output_per_million", self.output_per_million),
            ("per_image", self.per_image),
            ("per_video_second", self.per_video_second),
        ] {
            if value.is_some_and(|v| !v.is_finite() || v < 0.0) {
                return Err((key.to_owned(), "must be a non-negative number".to_owned()));
            }
        }
        Ok(())
    }
}

/// What a call used: whatever the provider reported, and the cost where prices are known.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<f64>,
}

fn uint(value: &Value, keys: &[&str]) -> Option<u64> {
    keys.iter().find_map(|k| {
        let v = value.get(*k)?;
        v.as_u64()
            .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f.round() as u64))
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
    })
}

fn number(value: &Value, keys: &[&str]) -> Option<f64> {
    keys.iter().find_map(|k| {
        let v = value.get(*k)?;
        v.as_f64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .filter(|f: &f64| f.is_finite() && *f >= 0.0)
    })
}

impl Usage {
    /// True when the provider reported nothing.
    pub fn is_empty(&self) -> bool {
        self.prompt_tokens.is_none()
            && self.completion_tokens.is_none()
            && self.images.is_none()
            && self.video_seconds.is_none()
    }

    /// Reads the usage a response reports, in any of the wire formats spoken here:
    /// chat completions' `usage.prompt_tokens` / `completion_tokens`; the OpenAI images
    /// API's `usage.input_tokens` / `output_tokens` (gpt-image-1); DashScope's
    /// `usage.image_count` / `video_count` / `video_duration` (or `duration`); the OpenAI
    /// videos object's `seconds`; Replicate's `metrics.image_count` / `predict_time` is not a
    /// billed unit and is left out.
    pub fn from_response(body: &Value) -> Usage {
        let mut usage = Usage::default();
        if let Some(u) = body.get("usage").filter(|u| u.is_object()) {
            usage.prompt_tokens = uint(u, &["prompt_tokens", "input_tokens"]);
            usage.completion_tokens = uint(u, &["completion_tokens", "output_tokens"]);
            usage.images = uint(u, &["image_count", "images"]);
            usage.video_seconds = number(u, &["video_duration", "duration"]);
            if usage.video_seconds.is_none() && uint(u, &["video_count"]).is_some() {
                usage.video_seconds = number(u, &["seconds"]);
            }
        }
        if let Some(m) = body.get("metrics").filter(|m| m.is_object()) {
            usage.images = usage.images.or_else(|| uint(m, &["image_count"]));
        }
        if body.get("object").and_then(Value::as_str) == Some("video") {
            usage.video_seconds = usage.video_seconds.or_else(|| number(body, &["seconds"]));
        }
        usage
    }

    /// Fills in what the provider did not report but the call produced (one image, a video of
    /// the length asked for), then the cost from `prices`.
    pub fn finish(
        mut self,
        images: Option<u64>,
        video_seconds: Option<f64>,
        prices: Option<&Prices>,
    ) -> Usage {
        self.images = self.images.or(images);
        self.video_seconds = self.video_seconds.or(video_seconds);
        self.cost = prices.and_then(|p| self.cost_with(p));
        self
    }

    /// The cost of this usage, when at least one used unit has a price.
    pub fn cost_with(&self, prices: &Prices) -> Option<f64> {
        let parts = [
            (
                self.prompt_tokens.map(|t| t as f64 / 1e6),
                prices.input_per_million,
            ),
            (
                self.completion_tokens.map(|t| t as f64 / 1e6),
                prices.output_per_million,
            ),
            (self.images.map(|n| n as f64), prices.per_image),
            (self.video_seconds, prices.per_video_second),
        ];
        let priced: Vec<f64> = parts
            .iter()
            .filter_map(|(amount, price)| Some((*amount)? * (*price)?))
            .collect();
        (!priced.is_empty()).then(|| {
            // Rounded to a millionth so that sums compare as written in prices.
            (priced.iter().sum::<f64>() * 1e6).round() / 1e6
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn usage_of_each_wire_format() {
        let chat = Usage::from_response(&json!({
            "usage": {"prompt_tokens": 1200, "completion_tokens": 800, "total_tokens": 2000}
        }));
        assert_eq!(
            (chat.prompt_tokens, chat.completion_tokens),
            (Some(1200), Some(800))
        );
        let prices = Prices {
            input_per_million: Some(2.0),
            output_per_million: Some(8.0),
            ..Prices::default()
        };
        assert_eq!(
            chat.clone().finish(None, None, Some(&prices)).cost,
            Some(0.0088)
        );

        let images = Usage::from_response(&json!({
            "created": 1, "data": [{"b64_json": "…"}],
            "usage": {"input_tokens": 50, "output_tokens": 4160, "total_tokens": 4210,
                      "input_tokens_details": {"image_tokens": 0, "text_tokens": 50}}
        }));
        assert_eq!(images.completion_tokens, Some(4160));

        let dashscope = Usage::from_response(&json!({
            "output": {"task_status": "SUCCEEDED"},
            "usage": {"video_duration": 5, "video_ratio": "1280*720", "video_count": 1}
        }));
        assert_eq!(dashscope.video_seconds, Some(5.0));
        let wanx = Usage::from_response(&json!({"usage": {"image_count": 1}}));
        assert_eq!(wanx.images, Some(1));

        let sora = Usage::from_response(&json!({
            "id": "video_1", "object": "video", "status": "completed", "seconds": "8"
        }));
        assert_eq!(sora.video_seconds, Some(8.0));
        let per_second = Prices {
            per_video_second: Some(0.1),
            ..Prices::default()
        };
        assert_eq!(sora.finish(None, None, Some(&per_second)).cost, Some(0.8));

        let none = Usage::from_response(&json!({"status": "succeeded", "output": "u"}));
        assert!(none.is_empty());
        let filled = none.finish(
            Some(1),
            None,
            Some(&Prices {
                per_image: Some(0.04),
                ..Prices::default()
            }),
        );
        assert_eq!((filled.images, filled.cost), (Some(1), Some(0.04)));
        assert_eq!(
            Usage::default().finish(None, None, Some(&prices)).cost,
            None
        );
    }
}
