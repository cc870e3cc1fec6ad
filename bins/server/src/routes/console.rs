//! The web console: a static page and its ES modules, embedded in the binary and served at `/`
//! and `/console/…`. Nothing is fetched from elsewhere: the page's Content-Security-Policy only
//! allows this origin (and media from http(s) URLs, for artifact stores on another host).

use actix_web::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use actix_web::{HttpRequest, HttpResponse, guard, web};

/// One embedded file.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// The URL path it is served at.
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

macro_rules! asset {
    ($file:literal, $type:expr) => {
        Asset {
            path: concat!("/console/", $file),
            content_type: $type,
            body: include_bytes!(concat!("../../console/", $file)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file of the console; the page itself is served at `/`.
pub const ASSETS: &[Asset] = &[
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("../../console/index.html"),
    },
    asset!("console.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("sse.js", JS),
    asset!("dom.js", JS),
    asset!("when.js", JS),
    asset!("timeline.js", JS),
    asset!("media.js", JS),
    asset!("usage.js", JS),
    asset!("params.js", JS),
    asset!("samples.js", JS),
    asset!("signin.js", JS),
    asset!("jobs.js", JS),
    asset!("bulk.js", JS),
    asset!("job.js", JS),
    asset!("results.js", JS),
    asset!("start.js", JS),
    asset!("admin.js", JS),
    asset!("charts.js", JS),
    // uPlot 1.6.32 (MIT, console/vendor/uPlot.LICENSE), as npm publishes it.
    asset!("vendor/uPlot.iife.min.js", JS),
    asset!("vendor/uPlot.min.css", "text/css; charset=utf-8"),
];

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
    img-src 'self' data: http: https:; media-src 'self' http: https:; font-src 'self'; \
    form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Registers a GET/HEAD route per asset.
pub fn routes(cfg: &mut web::ServiceConfig) {
    for asset in ASSETS {
        cfg.route(
            asset.path,
            web::route()
                .guard(guard::Any(guard::Get()).or(guard::Head()))
                .to(move |req: HttpRequest| async move { serve(asset, &req) }),
        );
    }
}

fn serve(asset: &Asset, req: &HttpRequest) -> HttpResponse {
    let etag = etag_of(asset.body);
    let fresh = req
        .headers()
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    let mut response = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((ETAG, etag))
        // Revalidate every time: a new binary serves new files under the same names.
        .insert_header((CACHE_CONTROL, "no-cache"))
        .insert_header((X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((REFERRER_POLICY, "no-referrer"));
    if asset.content_type.starts_with("text/html") {
        response
            .insert_header((CONTENT_SECURITY_POLICY, CSP))
            .insert_header((X_FRAME_OPTIONS, "DENY"));
    }
    if fresh {
        return response.finish();
    }
    response
        .insert_header((CONTENT_TYPE, asset.content_type))
        .body(asset.body)
}

/// A strong ETag over the file (FNV-1a 64).
fn etag_of(body: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in body {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("\"{hash:016x}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_the_page_imports_is_served() {
        let served: Vec<&str> = ASSETS.iter().map(|a| a.path).collect();
        for asset in ASSETS {
            let text = std::str::from_utf8(asset.body).unwrap();
            for (i, _) in text.match_indices("/console/") {
                let rest = &text[i..];
                let end = rest
                    .find(|c: char| c == '"' || c == '\'' || c == '`' || c.is_whitespace())
                    .unwrap_or(rest.len());
                let path = &rest[..end];
                if path.len() > "/console/".len() {
                    assert!(served.contains(&path), "{} refers to {path}", asset.path);
                }
            }
            for (i, _) in text.match_indices("from './") {
                let rest = &text[i + "from './".len()..];
                let file = &rest[..rest.find('\'').unwrap()];
                let path = format!("/console/{file}");
                assert!(
                    served.contains(&path.as_str()),
                    "{} imports {path}",
                    asset.path
                );
            }
        }
    }
}
