//! Artifacts on the real binary: the `/files/` hardening (traversal, symbolic links, no HTML,
//! nosniff, JSON 404s), absolute URLs by default, signed mode (403 JSON without, with a wrong or
//! with an expired signature), two processes that share only PostgreSQL and an S3 server, and an
//! image-to-video provider that downloads its reference image over HTTP.
//!
//! The two-process test needs `NOSYNTASK_TEST_POSTGRES_URL` and the `NOSYNTASK_TEST_S3_*`
//! variables `.ci/s3.sh` prints (Garage on loopback); without them it prints why and passes.
//! CI sets both and fails when either server cannot run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Options, Server, error_body, token};
use nosyntask_artifacts::{ArtifactKey, UrlSigner};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const LONG: Duration = Duration::from_secs(60);
const SIGNING_KEY: &str = "artifact-signing-key-0123456789abcdef";

async fn completed(server: &Server, t: &str, workflow: &str, params: Value) -> Value {
    let id = server.start_job(t, workflow, params).await;
    let job = server
        .wait_job(t, id, LONG, |j| {
            j["status"] == "completed" || j["status"] == "failed"
        })
        .await;
    assert_eq!(job["status"], "completed", "{job}");
    job
}

async fn frame(server: &Server, t: &str) -> String {
    let job = completed(
        server,
        t,
        "frame_generation",
        json!({"prompt": "a fox jumps over a log", "width": 256, "height": 144}),
    )
    .await;
    job["tasks"][0]["result_data"]["startFrame"]
        .as_str()
        .unwrap_or_else(|| panic!("no startFrame in {job}"))
        .to_owned()
}

fn key_of(url: &str) -> ArtifactKey {
    let path = url.split('?').next().unwrap();
    let at = path.find("/files/").unwrap();
    ArtifactKey::from_path(&path[at..]).unwrap_or_else(|| panic!("no key in {url}"))
}

#[tokio::test]
async fn files_are_hardened() {
    let server = Server::start();
    let t = token(1);
    let url = frame(&server, &t).await;
    // No configuration: absolute, at the server's own address.
    assert!(url.starts_with(&format!("{}/files/", server.base)), "{url}");
    let client = &server.client;

    // nosniff, a media type, a CSP that runs nothing, no token needed (public mode).
    let file = client.get(&url).send().await.unwrap();
    assert_eq!(file.status(), 200);
    assert_eq!(file.headers()["content-type"], "image/png");
    assert_eq!(file.headers()["x-content-type-options"], "nosniff");
    assert_eq!(
        file.headers()["content-security-policy"],
        "default-src 'none'; sandbox"
    );
    let bytes = file.bytes().await.unwrap();
    assert!(bytes.starts_with(b"\x89PNG"));
    // Ranges (video players ask for them).
    let part = client
        .get(&url)
        .header("Range", "bytes=0-3")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 0-3/{}", bytes.len()).as_str()
    );
    assert_eq!(part.bytes().await.unwrap().as_ref(), b"\x89PNG");

    // Unknown keys: JSON 404.
    let unknown = format!("/files/00/{}.png", "0".repeat(62));
    let body = error_body(client.get(server.url(&unknown)).send().await.unwrap(), 404).await;
    assert_eq!(body["code"], "not_found", "{body}");

    // Traversal: nothing outside the store, whatever the encoding.
    std::fs::write(server.dir.join("data/secret.png"), &bytes).unwrap();
    for path in [
        "/files/..%2f..%2fdata%2fjwt-secret",
        "/files/..%2fsecret.png",
        "/files/%2e%2e/secret.png",
        "/files/ab/..%2f..%2fsecret.png",
        "/files/..\\secret.png",
        "/files//etc/passwd",
    ] {
        let response = client.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "not_found", "{path}: {body}");
    }

    // HTML is never served: not under an .html key, and bytes planted under a media key are
    // sent as that media type with nosniff, so no browser renders them as a page.
    let artifacts = server.dir.join("data/artifacts");
    let html = b"<!doctype html><script>alert(document.cookie)</script>";
    let stem = "a".repeat(62);
    std::fs::create_dir_all(artifacts.join("aa")).unwrap();
    std::fs::write(artifacts.join(format!("aa/{stem}.html")), html).unwrap();
    let response = client
        .get(server.url(&format!("/files/aa/{stem}.html")))
        .send()
        .await
        .unwrap();
    error_body(response, 404).await;
    std::fs::write(artifacts.join(format!("aa/{stem}.png")), html).unwrap();
    let planted = client
        .get(server.url(&format!("/files/aa/{stem}.png")))
        .send()
        .await
        .unwrap();
    assert_eq!(planted.headers()["content-type"], "image/png");
    assert_eq!(planted.headers()["x-content-type-options"], "nosniff");

    // Symbolic links out of the store are not followed: a file, and a whole shard directory.
    let outside = server.dir.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("leak.png"), &bytes).unwrap();
    std::fs::create_dir_all(artifacts.join("bb")).unwrap();
    let linked_file = format!("bb/{}.png", "b".repeat(62));
    std::os::unix::fs::symlink(outside.join("leak.png"), artifacts.join(&linked_file)).unwrap();
    std::os::unix::fs::symlink(&outside, artifacts.join("cc")).unwrap();
    std::fs::rename(
        outside.join("leak.png"),
        outside.join(format!("{}.png", "c".repeat(62))),
    )
    .unwrap();
    std::fs::write(outside.join("leak.png"), &bytes).unwrap();
    for path in [
        format!("/files/{linked_file}"),
        format!("/files/cc/{}.png", "c".repeat(62)),
    ] {
        let response = client.get(server.url(&path)).send().await.unwrap();
        let body = error_body(response, 404).await;
        assert_eq!(body["code"], "not_found", "{path}");
    }
}

fn signed_config() -> String {
    format!("[artifacts]\nurls = \"signed\"\nsigning_key = \"{SIGNING_KEY}\"\nurl_ttl_secs = 600\n")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn signed_mode_refuses_missing_wrong_and_expired_signatures() {
    let server = Server::start_with(Options::default().config(&signed_config()));
    let t = token(1);
    let url = frame(&server, &t).await;
    assert!(url.starts_with(&format!("{}/files/", server.base)), "{url}");
    let (path, query) = url
        .split_once('?')
        .unwrap_or_else(|| panic!("unsigned: {url}"));
    let exp: u64 = query
        .split('&')
        .find_map(|p| p.strip_prefix("exp="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(exp >= now() + 540 && exp <= now() + 660, "{exp}");
    let client = &server.client;

    let valid = client.get(&url).send().await.unwrap();
    assert_eq!(valid.status(), 200);
    assert_eq!(valid.headers()["content-type"], "image/png");

    let key = key_of(&url);
    let signer = UrlSigner::new(SIGNING_KEY.as_bytes());
    let expired = format!("{path}?{}", signer.query(&key, now() - 5));
    let other_key = format!(
        "{path}?{}",
        UrlSigner::new(b"not-the-servers-key-0123456789abcdef").query(&key, now() + 600)
    );
    let tampered = url.replace(&format!("exp={exp}"), &format!("exp={}", exp + 3600));
    for (what, candidate, message) in [
        ("no signature", path.to_owned(), "no signature"),
        ("wrong key", other_key, "wrong"),
        ("later expiry", tampered, "wrong"),
        ("expired", expired, "expired"),
    ] {
        let response = client.get(&candidate).send().await.unwrap();
        let body = error_body(response, 403).await;
        assert_eq!(body["code"], "forbidden", "{what}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains(message),
            "{what}: {body}"
        );
    }
    // An unknown key is still a 404 once signed.
    let unknown = ArtifactKey::parse(&format!("00/{}.png", "0".repeat(62))).unwrap();
    let response = client
        .get(server.url(&format!(
            "{}?{}",
            unknown.path(),
            signer.query(&unknown, now() + 60)
        )))
        .send()
        .await
        .unwrap();
    error_body(response, 404).await;
}

/// A free loopback port for a server whose public address must be known before it starts.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A plain HTTP/1.0 GET, as a provider's downloader does (blocking: it runs in the stand-in's
/// responder thread). Returns status and body.
fn download(url: &str) -> Result<(u16, Vec<u8>), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("not an http URL: {url}"))?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut stream = TcpStream::connect(host).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET /{path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: provider-fetcher\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| e.to_string())?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no header end")?;
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no status")?;
    Ok((status, response[split + 4..].to_vec()))
}

/// Replicate's image-to-video API: the submitted `input.image` is downloaded at once, and a
/// reference it cannot download fails the prediction, as Replicate does ("input.image: could
/// not download").
#[derive(Default)]
struct ImageToVideo {
    base: std::sync::OnceLock<String>,
    seen: Mutex<Vec<(String, Vec<u8>)>>,
}

struct Submit(Arc<ImageToVideo>);

impl Respond for Submit {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let image = body["input"]["image"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        match download(&image) {
            Ok((200, bytes)) => self.0.seen.lock().unwrap().push((image, bytes)),
            other => {
                return ResponseTemplate::new(422).set_body_json(json!({
                    "title": "Input validation failed",
                    "detail": format!("input.image: could not download {image:?}: {other:?}"),
                    "status": 422,
                }));
            }
        }
        let base = self.0.base.get().unwrap();
        ResponseTemplate::new(201).set_body_json(json!({
            "id": "i2v-1",
            "status": "starting",
            "output": null,
            "error": null,
            "urls": {"get": format!("{base}/v1/predictions/i2v-1")},
        }))
    }
}

async fn image_to_video_provider(state: Arc<ImageToVideo>, clip: Vec<u8>) -> MockServer {
    let server = MockServer::start().await;
    state.base.set(server.uri()).unwrap();
    Mock::given(method("POST"))
        .and(path("/v1/models/acme/i2v/predictions"))
        .respond_with(Submit(state.clone()))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/predictions/i2v-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "i2v-1",
            "status": "succeeded",
            "output": format!("{}/delivery/clip.gif", server.uri()),
            "error": null,
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/delivery/clip.gif"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(clip, "image/gif"))
        .mount(&server)
        .await;
    server
}

fn simulated_gif() -> Vec<u8> {
    let request = nosyntask_engine::ports::MediaRequest {
        prompt: "clip".into(),
        width: 64,
        height: 48,
        ..Default::default()
    };
    nosyntask_providers::simulated::simulated_media(
        nosyntask_engine::ports::ModelKind::Video,
        &request,
        3,
    )
    .unwrap()
    .0
}

/// Runs a start frame and a scene video from it; `artifacts` is the `[artifacts]` table (with
/// `{base}` for the server's address), `env` more environment, `fetched_from` where the provider
/// must have downloaded the frame from.
async fn image_to_video(artifacts: &str, env: &[(String, String)], fetched_from: Option<&str>) {
    let state = Arc::new(ImageToVideo::default());
    let clip = simulated_gif();
    let provider = image_to_video_provider(state.clone(), clip.clone()).await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let config = format!(
        r#"
[artifacts]
{artifacts}

[[models]]
name = "sim-text"
kind = "text"
adapter = "simulated"
default = true

[[models]]
name = "sim-image"
kind = "image"
adapter = "simulated"
default = true

[[models]]
name = "i2v"
kind = "video"
adapter = "replicate"
base_url = "{provider}/v1"
model = "acme/i2v"
api_key_env = "I2V_KEY"
default = true
[models.async_task]
poll_interval_ms = 100
"#,
        provider = provider.uri(),
        artifacts = artifacts.replace("{base}", &base),
    );
    let mut options = Options::default()
        .config(&config)
        .env("NOSYNTASK__SERVER__BIND", &format!("127.0.0.1:{port}"))
        .env("I2V_KEY", "r8-key");
    for (key, value) in env {
        options = options.env(key, value);
    }
    let server = Server::start_with(options);
    assert_eq!(server.base, base);
    let t = token(1);
    let start_frame = frame(&server, &t).await;
    let stored = server
        .client
        .get(&start_frame)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();

    // The frontend passes the URL it read back in; the provider gets one it can fetch.
    let job = completed(
        &server,
        &t,
        "scene_video",
        json!({"prompt": "the fox lands", "startFrame": start_frame, "duration": 5}),
    )
    .await;
    let seen = state.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let (fetched_url, fetched) = &seen[0];
    let fetched_from = fetched_from.map_or_else(|| format!("{base}/files/"), str::to_owned);
    assert!(fetched_url.starts_with(&fetched_from), "{fetched_url}");
    assert_eq!(fetched, &stored.to_vec(), "the provider saw other bytes");
    let video = job["tasks"][0]["result_data"]["videoUrl"].as_str().unwrap();
    let served = server.client.get(video).send().await.unwrap();
    assert_eq!(served.status(), 200, "{video}");
    assert_eq!(served.bytes().await.unwrap().as_ref(), clip.as_slice());
}

#[tokio::test]
async fn image_to_video_provider_downloads_the_generated_start_frame() {
    // Signed URLs under the server's public address.
    let artifacts = format!(
        "public_base_url = \"{{base}}\"\nurls = \"signed\"\nsigning_key = \"{SIGNING_KEY}\""
    );
    image_to_video(&artifacts, &[], None).await;
}

#[tokio::test]
async fn image_to_video_provider_downloads_a_presigned_start_frame_from_s3() {
    let prefix = format!("presigned-{}-{}", std::process::id(), now());
    let Some(s3) = s3_env(&prefix) else {
        println!("skipped: run .ci/s3.sh and export its NOSYNTASK_TEST_S3_* variables");
        return;
    };
    // Presigned by the S3 server: the provider downloads from the bucket, not from nosyntask.
    let endpoint = std::env::var("NOSYNTASK_TEST_S3_ENDPOINT").unwrap();
    let bucket = std::env::var("NOSYNTASK_TEST_S3_BUCKET").unwrap();
    image_to_video(
        "urls = \"presigned\"",
        &s3,
        Some(&format!("{endpoint}/{bucket}/{prefix}/")),
    )
    .await;
}

/// The environment of a server on the test S3 bucket, or `None` when it is not configured.
fn s3_env(prefix: &str) -> Option<Vec<(String, String)>> {
    let endpoint = std::env::var("NOSYNTASK_TEST_S3_ENDPOINT").ok()?;
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    Some(vec![
        ("NOSYNTASK__ARTIFACTS__BACKEND".into(), "s3".into()),
        ("NOSYNTASK__ARTIFACTS__S3__ENDPOINT".into(), endpoint),
        (
            "NOSYNTASK__ARTIFACTS__S3__BUCKET".into(),
            var("NOSYNTASK_TEST_S3_BUCKET"),
        ),
        (
            "NOSYNTASK__ARTIFACTS__S3__REGION".into(),
            var("NOSYNTASK_TEST_S3_REGION"),
        ),
        ("NOSYNTASK__ARTIFACTS__S3__PATH_STYLE".into(), "true".into()),
        ("NOSYNTASK__ARTIFACTS__S3__PREFIX".into(), prefix.into()),
        (
            "AWS_ACCESS_KEY_ID".into(),
            var("NOSYNTASK_TEST_S3_ACCESS_KEY_ID"),
        ),
        (
            "AWS_SECRET_ACCESS_KEY".into(),
            var("NOSYNTASK_TEST_S3_SECRET_ACCESS_KEY"),
        ),
    ])
}

#[tokio::test]
async fn two_processes_share_only_postgres_and_s3() {
    let prefix = format!("two-processes-{}-{}", std::process::id(), now());
    let Some(s3) = s3_env(&prefix) else {
        println!("skipped: run .ci/s3.sh and export its NOSYNTASK_TEST_S3_* variables");
        return;
    };
    let Some(db) = nosyntask_store::testing::test_store("postgres")
        .await
        .expect("create the test database")
    else {
        println!("skipped: set NOSYNTASK_TEST_POSTGRES_URL");
        return;
    };
    let options = |role: &str, config: &str| {
        let mut options = Options::default()
            .config(config)
            .env("NOSYNTASK__DATABASE__URL", db.url())
            .env("NOSYNTASK__SERVER__ROLE", role);
        for (key, value) in &s3 {
            options = options.env(key, value);
        }
        options
    };
    // A: API only, public URLs at its own address. B: API and workers, signed URLs. Each runs
    // in a directory of its own.
    let a = Server::start_with(options("api", ""));
    let b = Server::start_with(options("all", &signed_config()));
    let t = token(1);
    let id = a
        .start_job(
            &t,
            "character_views_generation",
            json!({"characterName": "林夏", "appearance": "短发，风衣", "style": "动漫风格"}),
        )
        .await;
    let through_b = b
        .wait_job(&t, id, LONG, |j| j["status"] == "completed")
        .await;
    // A runs no workers: B ran it.
    let through_a = a.job(&t, id).await;
    let views = ["frontViewUrl", "sideViewUrl", "backViewUrl"];
    let mut keys = Vec::new();
    for view in views {
        let url_a = through_a["tasks"][0]["result_data"][view].as_str().unwrap();
        let url_b = through_b["tasks"][0]["result_data"][view].as_str().unwrap();
        assert!(url_a.starts_with(&format!("{}/files/", a.base)), "{url_a}");
        assert!(url_b.starts_with(&format!("{}/files/", b.base)), "{url_b}");
        assert!(url_b.contains("&sig="), "{url_b}");
        assert_eq!(key_of(url_a), key_of(url_b));
        let from_a = a.client.get(url_a).send().await.unwrap();
        assert_eq!(from_a.status(), 200, "{url_a}");
        let from_a = from_a.bytes().await.unwrap();
        let from_b = b.client.get(url_b).send().await.unwrap();
        assert_eq!(from_b.status(), 200, "{url_b}");
        assert_eq!(from_a, from_b.bytes().await.unwrap());
        assert!(from_a.starts_with(b"\x89PNG"));
        keys.push(key_of(url_a));
    }
    keys.dedup();
    assert_eq!(keys.len(), 3, "three different images");
    // No common directory: neither process wrote media to its own disk.
    for server in [&a, &b] {
        let local = server.dir.join("data/artifacts");
        assert!(!local.exists(), "{} exists", local.display());
    }
}

/// Retention: once old jobs are pruned, the worker's sweep deletes the files no remaining job
/// names; a file another job generated too (same bytes, same key) stays. Runs on SQLite, and
/// on PostgreSQL and MariaDB when their test URLs are set.
async fn pruned_jobs_lose_their_artifacts_unless_shared(backend: &str) {
    use nosyntask_engine::JobStore;
    let db = nosyntask_store::testing::test_store(backend)
        .await
        .expect("create the test database");
    let Some(db) = db else {
        println!("skipped on {backend}: its test URL is not set");
        return;
    };
    let server = Server::start_with(
        Options::default()
            .config("[retention]\ninterval_secs = 1\n[artifacts]\nretention_grace_secs = 1\n")
            .env("NOSYNTASK__DATABASE__URL", db.url()),
    );
    let t = token(1);
    let frame_of = async |prompt: &str| {
        let job = completed(
            &server,
            &t,
            "frame_generation",
            json!({"prompt": prompt, "width": 128, "height": 72}),
        )
        .await;
        let url = job["tasks"][0]["result_data"]["startFrame"]
            .as_str()
            .unwrap()
            .to_owned();
        (job["id"].as_i64().unwrap(), key_of(&url))
    };
    let (shared_pruned, shared) = frame_of("a shared lighthouse").await;
    let (_kept_job, shared_again) = frame_of("a shared lighthouse").await;
    let (lone_pruned, lone) = frame_of("a lone fox").await;
    assert_eq!(shared, shared_again, "the same prompt draws the same bytes");
    assert_ne!(shared, lone);
    let file = |key: &ArtifactKey| server.dir.join("data/artifacts").join(key.as_str());
    assert!(file(&shared).is_file() && file(&lone).is_file());

    // Consume two of them, then prune what is consumed (the engine's own statement).
    for id in [shared_pruned, lone_pruned] {
        let consumed = server
            .post(&format!("/api/workflows/{id}/consume"), &t)
            .send()
            .await
            .unwrap();
        assert_eq!(consumed.status(), 200);
    }
    let far = chrono::Utc::now() + chrono::Duration::days(1);
    let long_ago = chrono::Utc::now() - chrono::Duration::days(1);
    assert_eq!(db.store().prune(far, long_ago).await.unwrap(), 2);

    let deadline = std::time::Instant::now() + LONG;
    while file(&lone).exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the pruned job's file was not deleted; log:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        file(&shared).is_file(),
        "a file a remaining job names was deleted"
    );
    let gone = server
        .client
        .get(server.url(&lone.path()))
        .send()
        .await
        .unwrap();
    error_body(gone, 404).await;
}

#[tokio::test]
async fn retention_deletes_unshared_artifacts_of_pruned_jobs_on_sqlite() {
    pruned_jobs_lose_their_artifacts_unless_shared("sqlite-file").await;
}

#[tokio::test]
async fn retention_deletes_unshared_artifacts_of_pruned_jobs_on_postgres() {
    pruned_jobs_lose_their_artifacts_unless_shared("postgres").await;
}

#[tokio::test]
async fn retention_deletes_unshared_artifacts_of_pruned_jobs_on_mysql() {
    pruned_jobs_lose_their_artifacts_unless_shared("mysql").await;
}
