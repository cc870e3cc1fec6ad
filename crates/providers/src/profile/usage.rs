//! What one call used, as the provider reports it, and its cost from the profile's prices.

use nosyntask_engine::ports::Usage;
use serde_json::Value;

// The `[models.profile.prices]` table is configuration data; its check and use are here.
pub use crate::config::Prices;

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

fn uint(value: &Value, keys: &[&str]) -> Option<u64> {
    keys.iter().find_map(|k| {
        let v = value.get(*k)?;
        v.as_u64()
            .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f.round() as u64))
            .or_else(|| {
                v.as_str()
                    .and_then(|s| s.trim().parse::<f64>().ok())
                    .filter(|f| *f >= 0.0)
                    .map(|f| f.round() as u64)
            })
    })
}

/// True when nothing was reported.
pub fn is_empty(usage: &Usage) -> bool {
    usage.prompt_tokens.is_none()
        && usage.completion_tokens.is_none()
        && usage.images.is_none()
        && usage.video_seconds.is_none()
}

/// Reads the usage a response reports, in any of the wire formats spoken here: chat
/// completions' `usage.prompt_tokens` / `completion_tokens`; the OpenAI images API's
/// `usage.input_tokens` / `output_tokens` (gpt-image-1); DashScope's `usage.image_count` /
/// `video_duration`; the OpenAI videos object's `seconds`; Replicate's `metrics.image_count`
/// (its `predict_time` is run time, not a billed unit, and is left out).
pub fn from_response(body: &Value) -> Usage {
    let mut usage = Usage::default();
    if let Some(u) = body.get("usage").filter(|u| u.is_object()) {
        usage.prompt_tokens = uint(u, &["prompt_tokens", "input_tokens"]);
        usage.completion_tokens = uint(u, &["completion_tokens", "output_tokens"]);
        usage.images = uint(u, &["image_count", "images"]);
        usage.video_seconds = uint(u, &["video_duration", "duration"]);
    }
    if let Some(m) = body.get("metrics").filter(|m| m.is_object()) {
        usage.images = usage.images.or_else(|| uint(m, &["image_count"]));
    }
    if body.get("object").and_then(Value::as_str) == Some("video") {
        usage.video_seconds = usage.video_seconds.or_else(|| uint(body, &["seconds"]));
    }
    usage
}

/// Fills in what the provider did not report but the call produced (one image, a video of the
/// length asked for), then the cost from `prices`.
pub fn finish(
    mut usage: Usage,
    images: Option<u64>,
    video_seconds: Option<u64>,
    prices: Option<&Prices>,
) -> Usage {
    usage.images = usage.images.or(images);
    usage.video_seconds = usage.video_seconds.or(video_seconds);
    usage.cost_micros = prices.and_then(|p| cost_micros(&usage, p));
    usage
}

/// The cost of `usage` in millionths of the prices' currency, when a used unit has a price.
pub fn cost_micros(usage: &Usage, prices: &Prices) -> Option<u64> {
    let parts = [
        (
            usage.prompt_tokens.map(|t| t as f64 / 1e6),
            prices.input_per_million,
        ),
        (
            usage.completion_tokens.map(|t| t as f64 / 1e6),
            prices.output_per_million,
        ),
        (usage.images.map(|n| n as f64), prices.per_image),
        (
            usage.video_seconds.map(|s| s as f64),
            prices.per_video_second,
        ),
    ];
    let priced: Vec<f64> = parts
        .iter()
        .filter_map(|(amount, price)| Some((*amount)? * (*price)?))
        .collect();
    (!priced.is_empty()).then(|| (priced.iter().sum::<f64>() * 1e6).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn usage_of_each_wire_format() {
        let chat = from_response(&json!({
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
        // 1200 × 2 / 1e6 + 800 × 8 / 1e6 = 0.0088
        assert_eq!(
            finish(chat, None, None, Some(&prices)).cost_micros,
            Some(8800)
        );

        let images = from_response(&json!({
            "created": 1, "data": [{"b64_json": "…"}],
            "usage": {"input_tokens": 50, "output_tokens": 4160, "total_tokens": 4210,
                      "input_tokens_details": {"image_tokens": 0, "text_tokens": 50}}
        }));
        assert_eq!(images.completion_tokens, Some(4160));

        let dashscope = from_response(&json!({
            "output": {"task_status": "SUCCEEDED"},
            "usage": {"video_duration": 5, "video_ratio": "1280*720", "video_count": 1}
        }));
        assert_eq!(dashscope.video_seconds, Some(5));
        assert_eq!(
            from_response(&json!({"usage": {"image_count": 1}})).images,
            Some(1)
        );

        let sora = from_response(&json!({
            "id": "video_1", "object": "video", "status": "completed", "seconds": "8"
        }));
        assert_eq!(sora.video_seconds, Some(8));
        let per_second = Prices {
            per_video_second: Some(0.1),
            ..Prices::default()
        };
        assert_eq!(
            finish(sora, None, None, Some(&per_second)).cost_micros,
            Some(800_000)
        );

        let none = from_response(&json!({"status": "succeeded", "output": "u"}));
        assert!(is_empty(&none));
        let per_image = Prices {
            per_image: Some(0.04),
            ..Prices::default()
        };
        let filled = finish(none, Some(1), None, Some(&per_image));
        assert_eq!((filled.images, filled.cost_micros), (Some(1), Some(40_000)));
        assert_eq!(
            finish(Usage::default(), None, None, Some(&prices)).cost_micros,
            None
        );
    }
}
