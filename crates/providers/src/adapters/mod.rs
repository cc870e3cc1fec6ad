//! The adapters that speak to real providers, and what they share: request building from
//! templates, fitting sizes and durations to what a provider accepts, storing fetched media.

pub mod async_task;
pub mod openai_compatible;
pub mod openai_images;
pub mod references;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use nosyntask_domain::TaskError;
use nosyntask_engine::ports::{ArtifactStore, MediaOutput};
use reqwest::{Method, RequestBuilder};
use serde_json::Value;

use crate::http::HttpClient;
use crate::media::{MediaKind, check_media, decode_base64, decode_data_url, fetch_media};
use crate::template::{Vars, render, render_url, render_value};

// Re-exported from its leaf module, where it moved so `profile` need not import `adapters`.
pub use crate::merge::merge_json;

/// The accepted size closest in aspect ratio (then in area) to the requested one.
pub fn fit_size(width: u32, height: u32, allowed: &[(u32, u32)]) -> (u32, u32) {
    if allowed.is_empty() || width == 0 || height == 0 {
        return (width, height);
    }
    let ratio = (width as f64 / height as f64).ln();
    let area = (width as f64 * height as f64).ln();
    let score = |&(w, h): &(u32, u32)| {
        let r = ((w as f64 / h as f64).ln() - ratio).abs();
        let a = ((w as f64 * h as f64).ln() - area).abs();
        r * 10.0 + a
    };
    allowed
        .iter()
        .copied()
        .min_by(|a, b| score(a).total_cmp(&score(b)))
        .unwrap_or((width, height))
}

/// The accepted duration closest to the requested one.
pub fn fit_duration(duration: u32, allowed: &[u32]) -> u32 {
    allowed
        .iter()
        .copied()
        .min_by_key(|d| d.abs_diff(duration))
        .unwrap_or(duration)
}

/// One HTTP request of a declarative adapter.
pub struct RequestSpec<'a> {
    pub method: Method,
    pub url: &'a str,
    pub headers: Vec<(&'a str, &'a str)>,
    pub body: Option<Value>,
    pub timeout: Duration,
}

/// Renders and builds a request; a URL that does not render to an http(s) URL is a permanent
/// error naming what was being built.
pub fn build_request(
    http: &HttpClient,
    spec: RequestSpec<'_>,
    vars: &Vars,
    what: &str,
) -> Result<RequestBuilder, TaskError> {
    let url = render_url(spec.url, vars);
    let parsed = reqwest::Url::parse(&url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| {
            TaskError::permanent(format!(
                "the {what} URL template `{}` gave {url:?}, which is not an http(s) URL",
                spec.url
            ))
        })?;
    let mut request = http
        .inner()
        .request(spec.method, parsed)
        .timeout(spec.timeout);
    // Later headers override earlier ones of the same name.
    let mut headers = BTreeMap::new();
    for (name, value) in spec.headers {
        headers.insert(name.to_ascii_lowercase(), (name, value));
    }
    for (_, (name, template)) in headers {
        // Without an API key, the header carrying it is left out rather than sent half empty.
        if template.contains("api_key") && vars.get("api_key").is_none() {
            continue;
        }
        let value = render(template, vars);
        if !value.trim().is_empty() {
            request = request.header(name, value);
        }
    }
    if let Some(body) = spec.body {
        request = request.json(&render_value(&body, vars).unwrap_or(Value::Null));
    }
    Ok(request)
}

/// Adds the model's configured headers (their `{{api_key}}` rendered) and, when there is a key
/// and no configured `Authorization` header, `Authorization: Bearer <key>`.
pub fn with_model_headers(
    mut request: RequestBuilder,
    headers: &BTreeMap<String, String>,
    api_key: Option<&str>,
) -> RequestBuilder {
    let mut vars = Vars::new();
    vars.set_opt("api_key", api_key);
    if let Some(key) = api_key
        && !headers
            .keys()
            .any(|h| h.eq_ignore_ascii_case("authorization"))
    {
        request = request.bearer_auth(key);
    }
    for (name, template) in headers {
        if template.contains("api_key") && api_key.is_none() {
            continue;
        }
        request = request.header(name, render(template, &vars));
    }
    request
}

/// Parses a configured HTTP method.
pub fn parse_method(method: Option<&str>, default: Method) -> Result<Method, String> {
    match method.map(|m| m.trim().to_ascii_uppercase()) {
        None => Ok(default),
        Some(m) => match m.as_str() {
            "GET" => Ok(Method::GET),
            "POST" => Ok(Method::POST),
            "PUT" => Ok(Method::PUT),
            "PATCH" => Ok(Method::PATCH),
            "DELETE" => Ok(Method::DELETE),
            other => Err(format!("unsupported HTTP method {other:?}")),
        },
    }
}

/// Where a finished generation's file is.
#[derive(Debug)]
pub enum ResultRef {
    /// A URL the provider gave (downloaded without credentials), or a `data:` URL.
    Url(String),
    /// Base64 bytes in the response.
    Base64(String),
    /// A provider endpoint that serves the file itself and needs the API credentials.
    Endpoint(Box<RequestBuilder>, String),
}

/// Downloads (or decodes) a result and copies it into the artifact store.
pub async fn store_result(
    http: &HttpClient,
    artifacts: &Arc<dyn ArtifactStore>,
    result: ResultRef,
    kind: MediaKind,
    limit: usize,
    download_timeout: Duration,
    name_hint: &str,
) -> Result<MediaOutput, TaskError> {
    let (media, source_url) = match result {
        ResultRef::Url(url) if url.starts_with("data:") => {
            (decode_data_url(&url, kind, limit)?, None)
        }
        ResultRef::Url(url) => {
            let parsed = reqwest::Url::parse(&url)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .ok_or_else(|| {
                    TaskError::permanent(format!("provider gave an invalid result URL {url:?}"))
                })?;
            let request = http.inner().get(parsed).timeout(download_timeout);
            (fetch_media(request, kind, limit).await?, Some(url))
        }
        ResultRef::Base64(data) => {
            let bytes = decode_base64(&data, limit)?;
            (check_media(None, bytes, kind)?, None)
        }
        ResultRef::Endpoint(request, url) => (fetch_media(*request, kind, limit).await?, Some(url)),
    };
    let url = artifacts
        .put(media.bytes, &media.content_type, name_hint)
        .await?;
    Ok(MediaOutput {
        url,
        content_type: media.content_type,
        source_url,
        usage: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merging_and_fitting() {
        let mut base = json!({"input": {"prompt": "p", "n": 1}, "model": "m"});
        merge_json(
            &mut base,
            &json!({"input": {"n": 2, "seed": 3}, "stream": false}),
        );
        assert_eq!(
            base,
            json!({"input": {"prompt": "p", "n": 2, "seed": 3}, "model": "m", "stream": false})
        );
        let sora = [(720, 1280), (1280, 720), (1024, 1792), (1792, 1024)];
        assert_eq!(fit_size(1024, 576, &sora), (1280, 720));
        assert_eq!(fit_size(512, 768, &sora), (720, 1280));
        assert_eq!(fit_size(300, 200, &[]), (300, 200));
        assert_eq!(fit_duration(5, &[4, 8, 12]), 4);
        assert_eq!(fit_duration(10, &[4, 8, 12]), 8);
        assert_eq!(fit_duration(7, &[]), 7);
    }
}
