//! `GET /files/<key>`: generated media, from the artifact store (local directory or S3).
//!
//! Hardening: a key is parsed strictly (two hex digits, `/`, 62 hex digits, a media extension),
//! so no path can escape the store; a local file that is a symbolic link out of the store's
//! directory is not served; only image and video types are ever sent (the type comes from the
//! key, which came from sniffing the bytes), with `X-Content-Type-Options: nosniff` and a
//! sandboxing CSP; unknown keys are a JSON 404. In `signed` and `presigned` modes a request
//! needs a valid, unexpired signature (a JSON 403 otherwise). Public mode needs no token: the
//! URL is the capability (see docs/operations.md, "Who can read media").

use actix_web::http::StatusCode;
use actix_web::http::header::{
    ACCEPT_RANGES, CACHE_CONTROL, CONTENT_RANGE, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG,
    HeaderValue, RANGE, X_CONTENT_TYPE_OPTIONS,
};
use actix_web::{HttpRequest, HttpResponse, web};
use futures::StreamExt;
use nosyntask_artifacts::{ArtifactKey, Artifacts, GetRange, SignatureError, UrlMode};

use crate::error::ApiError;
use crate::state::AppState;

/// The handler of `/files/{key:.*}` (GET and HEAD).
pub async fn serve(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let artifacts: &Artifacts = &state.artifacts;
    let raw = req.match_info().query("key");
    let Some(key) = ArtifactKey::parse(raw) else {
        return Err(ApiError::not_found("no such file").zh("没有这个文件"));
    };
    artifacts
        .authorize(&key, req.query_string())
        .map_err(forbidden)?;
    let range = match req.headers().get(RANGE).and_then(|v| v.to_str().ok()) {
        Some(header) => parse_range(header).ok_or_else(|| {
            ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "invalid_range",
                "only one byte range (bytes=a-b, bytes=a-, bytes=-n) is supported",
            )
        })?,
        None => None,
    };
    let partial = range.is_some();
    let served = match artifacts.open_for_serving(&key, range).await {
        Ok(Some(served)) => served,
        Ok(None) => return Err(ApiError::not_found("no such file").zh("没有这个文件")),
        Err(nosyntask_artifacts::ArtifactError::Store(object_store_error))
            if partial && object_store_error.to_string().contains("range") =>
        {
            return Err(ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "invalid_range",
                "the range lies outside the file",
            ));
        }
        Err(err) => return Err(ApiError::internal(err)),
    };
    let mut response = if partial {
        HttpResponse::PartialContent()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((CONTENT_TYPE, served.content_type))
        .insert_header((X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        // Even if a browser were talked into rendering it as a document, it could run nothing.
        .insert_header((
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; sandbox"),
        ))
        .insert_header(("Cross-Origin-Resource-Policy", "cross-origin"))
        .insert_header((ACCEPT_RANGES, "bytes"))
        .insert_header((ETAG, format!("\"{}\"", key.sha256())))
        .insert_header((CACHE_CONTROL, cache_control(artifacts.url_mode())))
        .no_chunking(served.range.end.saturating_sub(served.range.start));
    if partial {
        response.insert_header((
            CONTENT_RANGE,
            format!(
                "bytes {}-{}/{}",
                served.range.start,
                served.range.end.saturating_sub(1),
                served.size
            ),
        ));
    }
    if req.method() == actix_web::http::Method::HEAD {
        return Ok(response.finish());
    }
    let body = served
        .body
        .map(|chunk| chunk.map_err(actix_web::error::ErrorInternalServerError));
    Ok(response.streaming(body))
}

/// A key's bytes never change (content-addressed); signed URLs are cached no longer than they
/// are valid for, and only privately.
fn cache_control(mode: UrlMode) -> &'static str {
    match mode {
        UrlMode::Public => "public, max-age=31536000, immutable",
        UrlMode::Signed | UrlMode::Presigned => "private, max-age=300",
    }
}

fn forbidden(err: SignatureError) -> ApiError {
    let zh = match err {
        SignatureError::Missing => "这个链接没有签名",
        SignatureError::Wrong => "这个链接的签名不正确",
        SignatureError::Expired => "这个链接的签名已过期",
    };
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", err.to_string()).zh(zh)
}

/// One byte range: `bytes=a-b`, `bytes=a-` or `bytes=-n`. `Some(None)` is never returned;
/// `None` means the header is not one such range.
fn parse_range(header: &str) -> Option<Option<GetRange>> {
    let spec = header.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (start, end) = spec.split_once('-')?;
    let range = match (start.trim(), end.trim()) {
        ("", n) => GetRange::Suffix(n.parse().ok()?),
        (a, "") => GetRange::Offset(a.parse().ok()?),
        (a, b) => {
            let (a, b): (u64, u64) = (a.parse().ok()?, b.parse().ok()?);
            if b < a {
                return None;
            }
            GetRange::Bounded(a..b + 1)
        }
    };
    Some(Some(range))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse() {
        assert!(matches!(
            parse_range("bytes=0-99"),
            Some(Some(GetRange::Bounded(r))) if r == (0..100)
        ));
        assert!(matches!(
            parse_range("bytes=5-"),
            Some(Some(GetRange::Offset(5)))
        ));
        assert!(matches!(
            parse_range("bytes=-5"),
            Some(Some(GetRange::Suffix(5)))
        ));
        assert!(parse_range("bytes=9-1").is_none());
        assert!(parse_range("bytes=0-1,3-4").is_none());
        assert!(parse_range("items=0-1").is_none());
    }
}
