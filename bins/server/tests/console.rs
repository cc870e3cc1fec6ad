//! The web console and its admin endpoint, on the real binary: `GET /` serves the page, every
//! file it loads is served with its content type and nothing comes from another origin;
//! `GET /api/admin/stats` is for admins only.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Server, admin_token, error_body, is_terminal, token};
use serde_json::{Value, json};

/// `/console/…` paths referred to by `src`/`href` attributes or by relative module imports.
fn referenced(path: &str, body: &str) -> Vec<String> {
    let mut out = Vec::new();
    for marker in ["src=\"/console/", "href=\"/console/"] {
        for (i, _) in body.match_indices(marker) {
            let rest = &body[i + marker.len() - "/console/".len()..];
            out.push(rest[..rest.find('"').unwrap()].to_owned());
        }
    }
    if path.ends_with(".js") {
        // Files a module loads itself (the chart library).
        for (i, _) in body.match_indices("'/console/") {
            let rest = &body[i + 1..];
            out.push(rest[..rest.find('\'').unwrap()].to_owned());
        }
        for (i, _) in body.match_indices("from './") {
            let rest = &body[i + "from './".len()..];
            out.push(format!("/console/{}", &rest[..rest.find('\'').unwrap()]));
        }
    }
    out
}

fn assert_no_foreign_urls(path: &str, body: &str) {
    // The SVG namespace is a name, not a download; nor is a vendored file's licence banner.
    let body = body.replace("http://www.w3.org/2000/svg", "");
    let body = match body.strip_prefix("/*!") {
        Some(rest) => rest[rest.find("*/").unwrap()..].to_owned(),
        None => body,
    };
    for needle in ["https://", "http://", "//cdn", "@import", "url(http"] {
        assert!(!body.contains(needle), "{path} refers to {needle}");
    }
}

#[tokio::test]
async fn root_serves_the_console_and_every_file_it_loads() {
    let server = Server::start();
    let client = &server.client;

    let page = client.get(server.url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let html = page.text().await.unwrap();
    assert!(html.starts_with("<!doctype html>"));
    assert!(html.contains("<script type=\"module\" src=\"/console/app.js\"></script>"));
    assert_no_foreign_urls("/", &html);

    // Revalidation and HEAD.
    let again = client
        .get(server.url("/"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let head = client.head(server.url("/")).send().await.unwrap();
    assert_eq!(head.status(), 200);

    // Follow every reference from the page, transitively.
    let mut seen = BTreeSet::new();
    let mut queue = referenced("/", &html);
    while let Some(path) = queue.pop() {
        if !seen.insert(path.clone()) {
            continue;
        }
        let response = client.get(server.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        let expected = match path.rsplit('.').next().unwrap() {
            "js" => "text/javascript; charset=utf-8",
            "css" => "text/css; charset=utf-8",
            "svg" => "image/svg+xml",
            other => panic!("unexpected asset type {other} ({path})"),
        };
        assert_eq!(content_type, expected, "{path}");
        let body = response.text().await.unwrap();
        assert!(!body.is_empty(), "{path}");
        assert_no_foreign_urls(&path, &body);
        queue.extend(referenced(&path, &body));
    }
    for path in [
        "/console/app.js",
        "/console/console.css",
        "/console/job.js",
        "/console/start.js",
        "/console/admin.js",
        "/console/charts.js",
        "/console/vendor/uPlot.iife.min.js",
        "/console/vendor/uPlot.min.css",
    ] {
        assert!(seen.contains(path), "{path} not reached from the page");
    }

    // Unknown console files are the API's JSON 404.
    let missing = client
        .get(server.url("/console/nope.js"))
        .send()
        .await
        .unwrap();
    error_body(missing, 404).await;
}

#[tokio::test]
async fn admin_stats_are_for_admins_and_count_recent_tasks() {
    let server = Server::start();
    let unauthenticated = server
        .client
        .get(server.url("/api/admin/stats"))
        .send()
        .await
        .unwrap();
    error_body(unauthenticated, 401).await;
    let user = server
        .get("/api/admin/stats", &token(1))
        .send()
        .await
        .unwrap();
    let body = error_body(user, 403).await;
    assert_eq!(body["code"], "forbidden");

    let t = token(1);
    let id = server
        .start_job(
            &t,
            "prompt_generate",
            json!({"description": "a red kite", "modelName": "sim-text"}),
        )
        .await;
    let job = server
        .wait_job(&t, id, Duration::from_secs(30), is_terminal)
        .await;
    assert_eq!(job["status"], "completed", "{job}");

    let response = server
        .get("/api/admin/stats", &admin_token(9))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let stats: Value = response.json().await.unwrap();
    assert_eq!(stats["windowSecs"], 3600);
    assert_eq!(stats["backend"], "sqlite");
    assert_eq!(
        stats["queue"],
        json!({"ready": 0, "scheduled": 0, "running": 0})
    );
    assert_eq!(stats["jobsByStatus"], json!({"pending": 0, "running": 0}));
    let row = json!({"queued": 0, "running": 0, "completed": 1, "failed": 0, "cancelled": 0, "retries": 0});
    let mut model = row.clone();
    model["name"] = json!("sim-text");
    assert_eq!(stats["models"], json!([model]));
    let mut step = row;
    step["name"] = job["tasks"][0]["task_type"].clone();
    assert_eq!(stats["taskTypes"], json!([step]));
    assert!(stats["generatedAt"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn admin_series_chart_each_models_finished_tasks_over_the_hour() {
    let server = Server::start();
    let user = server
        .get("/api/admin/series", &token(1))
        .send()
        .await
        .unwrap();
    assert_eq!(error_body(user, 403).await["code"], "forbidden");
    let admin = admin_token(9);
    for bad in ["minutes=4", "minutes=x", "minutes=10081"] {
        let response = server
            .get(&format!("/api/admin/series?{bad}"), &admin)
            .send()
            .await
            .unwrap();
        let body = error_body(response, 400).await;
        assert!(
            body["message"].as_str().unwrap().starts_with("minutes:"),
            "{body}"
        );
    }

    let t = token(1);
    for description in ["a red kite", "a blue kite"] {
        let id = server
            .start_job(
                &t,
                "prompt_generate",
                json!({"description": description, "modelName": "sim-text"}),
            )
            .await;
        let job = server
            .wait_job(&t, id, Duration::from_secs(30), is_terminal)
            .await;
        assert_eq!(job["status"], "completed", "{job}");
    }
    let series = server.get_json("/api/admin/series", &admin).await;
    assert_eq!(series["bucketSecs"], 120, "{series}");
    let buckets = series["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 30);
    let models = series["models"].as_array().unwrap();
    assert_eq!(models.len(), 1, "{series}");
    let model = &models[0];
    assert_eq!(model["name"], "sim-text");
    for column in ["completed", "failed", "meanMs", "costMicros"] {
        assert_eq!(model[column].as_array().unwrap().len(), 30, "{column}");
    }
    let completed: u64 = model["completed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(completed, 2, "{series}");
    // Both finished within the last two buckets; a bucket with completions has a mean run time.
    let with_mean = model["meanMs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| !m.is_null())
        .count();
    assert!((1..=2).contains(&with_mean), "{series}");
    assert!(model["failed"].as_array().unwrap().iter().all(|n| n == 0));
}
