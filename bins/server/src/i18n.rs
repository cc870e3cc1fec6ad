//! The language of the messages a client reads: NanoStory's UI shows `message` (and a cancelled
//! job's `error_message`) verbatim, so they follow the request's `Accept-Language` (Chinese or
//! English), else the configured `server.default_language`. Codes never change with it.
//!
//! The request's language is set for the duration of its handler (a task-local), so an error
//! rendered anywhere inside it (extractors included) speaks the caller's language without every
//! call site passing it along.

use std::sync::OnceLock;

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::ACCEPT_LANGUAGE;
use actix_web::middleware::Next;
use serde::Deserialize;

/// A language messages are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    En,
    Zh,
}

impl Lang {
    /// Picks the text for this language.
    pub fn pick<T>(self, zh: T, en: T) -> T {
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }
}

static DEFAULT: OnceLock<Lang> = OnceLock::new();

tokio::task_local! {
    static CURRENT: Lang;
}

/// Sets the configured default (once, at start; later calls are ignored).
pub fn set_default(lang: Lang) {
    let _ = DEFAULT.set(lang);
}

/// The configured default language.
pub fn default_lang() -> Lang {
    DEFAULT.get().copied().unwrap_or_default()
}

/// The language of the request being handled, or the default outside one.
pub fn current() -> Lang {
    CURRENT
        .try_with(|lang| *lang)
        .unwrap_or_else(|_| default_lang())
}

/// The preferred supported language of an `Accept-Language` value (`zh-CN,zh;q=0.9,en;q=0.8`):
/// the highest-weighted `zh*` or `en*` range; `None` when it names neither.
pub fn parse_accept_language(header: &str) -> Option<Lang> {
    let mut best: Option<(f32, Lang)> = None;
    for range in header.split(',') {
        let mut parts = range.split(';');
        let tag = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let weight = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let lang = if tag == "zh" || tag.starts_with("zh-") {
            Lang::Zh
        } else if tag == "en" || tag.starts_with("en-") {
            Lang::En
        } else {
            continue;
        };
        if weight > 0.0 && best.is_none_or(|(w, _)| weight > w) {
            best = Some((weight, lang));
        }
    }
    best.map(|(_, lang)| lang)
}

/// The language of a request's headers.
pub fn of_request(req: &actix_web::HttpRequest) -> Lang {
    req.headers()
        .get(ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_accept_language)
        .unwrap_or_else(default_lang)
}

/// Middleware: runs the rest of the request with its language set.
pub async fn scope(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let lang = of_request(req.request());
    CURRENT.scope(lang, next.call(req)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_heaviest_supported_range() {
        assert_eq!(
            parse_accept_language("zh-CN,zh;q=0.9,en;q=0.8"),
            Some(Lang::Zh)
        );
        assert_eq!(parse_accept_language("en-US,en;q=0.9"), Some(Lang::En));
        assert_eq!(
            parse_accept_language("fr;q=1, en;q=0.5, zh;q=0.7"),
            Some(Lang::Zh)
        );
        assert_eq!(parse_accept_language("fr, de"), None);
        assert_eq!(parse_accept_language("zh;q=0, en"), Some(Lang::En));
        assert_eq!(parse_accept_language(""), None);
    }
}
