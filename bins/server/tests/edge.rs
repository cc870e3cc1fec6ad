//! The HTTP edge: what a broken or hostile client can make the server do. Slow bodies and piles
//! of connections are bounded, malformed requests do not flood the log, tokens not valid yet,
//! non-JSON bodies, out-of-range project ids, NUL characters and invented methods are refused or
//! bounded at the door. Raw TCP where an HTTP client library would not send the bytes.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Options, SECRET, Server, command, error_body, exp_in, sign, token};
use serde_json::{Value, json};

fn address(server: &Server) -> String {
    server.base.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection or `limit` passes; says whether it closed.
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, bool) {
    let deadline = Instant::now() + limit;
    let mut received = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            return (String::from_utf8_lossy(&received).into_owned(), false);
        };
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match stream.read(&mut buffer) {
            Ok(0) => return (String::from_utf8_lossy(&received).into_owned(), true),
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return (String::from_utf8_lossy(&received).into_owned(), false);
            }
            // A reset after the answer is a close too.
            Err(_) => return (String::from_utf8_lossy(&received).into_owned(), true),
        }
    }
}

/// Sends `request` on a fresh connection and reads the answer until the server closes.
fn raw_exchange(server: &Server, request: &[u8]) -> (String, bool) {
    let mut stream = TcpStream::connect(address(server)).unwrap();
    stream.write_all(request).unwrap();
    read_until_closed(&mut stream, Duration::from_secs(10))
}

/// The JSON body of a raw HTTP/1.1 answer (not chunked: error answers have a length).
fn json_of(answer: &str) -> Value {
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    serde_json::from_str(body).unwrap_or(Value::Null)
}

fn status_of(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_slow_body_gets_408_json_and_a_closed_connection_within_the_bound() {
    let server = Server::start_with(
        Options::default().env("NOSYNTASK__SERVER__BODY_READ_TIMEOUT_SECS", "2"),
    );
    let t = token(1);
    // A stalled body with a length, a stalled chunked body, and a body that trickles one byte
    // every 200 ms (never stalling, never finishing in time).
    let heads = [
        (
            "stalled",
            "Content-Length: 1000\r\n",
            "{\"workflowType\": \"prompt",
        ),
        (
            "chunked",
            "Transfer-Encoding: chunked\r\n",
            "5\r\n{\"wor\r\n",
        ),
        ("trickle", "Content-Length: 100000\r\n", "{"),
    ];
    for (what, framing, first_bytes) in heads {
        let mut stream = TcpStream::connect(address(&server)).unwrap();
        let head = format!(
            "POST /api/workflows HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {t}\r\nContent-Type: application/json\r\n{framing}\r\n{first_bytes}"
        );
        stream.write_all(head.as_bytes()).unwrap();
        let started = Instant::now();
        let trickle = (what == "trickle").then(|| {
            let mut writer = stream.try_clone().unwrap();
            std::thread::spawn(move || {
                for _ in 0..100 {
                    std::thread::sleep(Duration::from_millis(200));
                    if writer.write_all(b" ").is_err() {
                        break;
                    }
                }
            })
        });
        // A generous outer limit: the point is that the read ends (with 408) instead of hanging,
        // not how promptly a loaded machine fires the 2 s timer.
        let (answer, closed) = read_until_closed(&mut stream, Duration::from_secs(20));
        let elapsed = started.elapsed();
        assert_eq!(status_of(&answer), 408, "{what}: {answer}");
        // Not before the bound: the 408 is the body timer's, not an early refusal.
        assert!(
            elapsed >= Duration::from_millis(1500),
            "{what}: answered after {elapsed:?}"
        );
        assert!(
            answer
                .to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{what}: {answer}"
        );
        let body = json_of(&answer);
        assert_eq!(body["code"], "request_timeout", "{what}: {answer}");
        assert!(body["message"].is_string(), "{what}: {answer}");
        assert!(closed, "{what}: the connection stayed open after {answer}");
        drop(stream);
        if let Some(trickle) = trickle {
            trickle.join().unwrap();
        }
    }
    // A body sent at once is not affected.
    let body = r#"{"workflowType":"prompt_generate","projectId":1,"params":{"description":"x"}}"#;
    let (answer, _) = raw_exchange(
        &server,
        format!(
            "POST /api/workflows HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {t}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    assert_eq!(status_of(&answer), 202, "{answer}");
}

#[test]
fn connections_per_client_ip_are_limited() {
    let server = Server::start_with(
        Options::default().env("NOSYNTASK__SERVER__MAX_CONNECTIONS_PER_IP", "3"),
    );
    let held: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(address(&server)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let (answer, closed) = raw_exchange(&server, b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n");
    assert_eq!(status_of(&answer), 429, "{answer}");
    assert_eq!(json_of(&answer)["code"], "too_many_connections", "{answer}");
    assert!(closed, "{answer}");

    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    let (answer, _) = raw_exchange(
        &server,
        b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status_of(&answer), 200, "{answer}");
}

#[test]
fn protocol_errors_are_answered_but_not_logged_as_errors() {
    let server = Server::start();
    let big_header = format!(
        "GET /healthz HTTP/1.1\r\nHost: test\r\nX-Big: {}\r\n\r\n",
        "a".repeat(200 * 1024)
    );
    let requests: [&[u8]; 4] = [
        b"GET /a b c d HTTP/1.1\r\n\r\n",
        b"\x01\x02\x03 NOT HTTP\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: test\r\nIdempotency-Key: a\x00b\r\n\r\n",
        big_header.as_bytes(),
    ];
    for request in requests {
        let (answer, closed) = raw_exchange(&server, request);
        let status = status_of(&answer);
        assert!(status == 400 || status == 431, "{answer}");
        assert!(closed, "{answer}");
    }
    // A head that never ends: actix-http answers 408 after its 5 s head timeout.
    let mut stream = TcpStream::connect(address(&server)).unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n")
        .unwrap();
    let (answer, closed) = read_until_closed(&mut stream, Duration::from_secs(10));
    assert_eq!(status_of(&answer), 408, "{answer}");
    assert!(closed, "{answer}");
    // Logging is asynchronous to the answer only by the time a write takes.
    std::thread::sleep(Duration::from_millis(300));
    let log = server.log();
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
    assert!(
        errors.is_empty(),
        "protocol errors logged as errors:\n{log}"
    );
    // They are still seen at debug level (the tests run with nosyntask_server=debug).
    assert!(log.contains("malformed request"), "{log}");
}

#[tokio::test]
async fn tokens_not_valid_yet_are_refused() {
    let server = Server::start();
    let path = "/api/workflows?projectId=1";
    let early = sign(
        json!({"userId": 1, "nbf": exp_in(600), "exp": exp_in(3600)}),
        SECRET,
    );
    let response = server.get(path, &early).send().await.unwrap();
    let body = error_body(response, 401).await;
    assert!(body["message"].as_str().unwrap().contains("nbf"), "{body}");
    let valid = sign(
        json!({"userId": 1, "nbf": exp_in(-5), "exp": exp_in(3600)}),
        SECRET,
    );
    let response = server.get(path, &valid).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn bodies_must_be_declared_json() {
    let server = Server::start();
    let t = token(1);
    let body = r#"{"workflowType":"prompt_generate","projectId":1,"params":{"description":"x"}}"#;
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("nonsense"),
        Some("application/jsonx"),
        None,
    ] {
        let mut request = server.post("/api/workflows", &t).body(body);
        if let Some(content_type) = content_type {
            request = request.header("Content-Type", content_type);
        }
        let response = request.send().await.unwrap();
        let error = error_body(response, 415).await;
        assert_eq!(error["code"], "unsupported_media_type", "{content_type:?}");
    }
    for content_type in [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/vnd.nanostory+json",
    ] {
        let response = server
            .post("/api/workflows", &t)
            .header("Content-Type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202, "{content_type}");
    }
}

#[tokio::test]
async fn project_ids_are_positive() {
    let server = Server::start();
    let t = token(1);
    for project_id in [json!(0), json!(-1), json!("-3"), json!("0")] {
        let response = server
            .post("/api/workflows", &t)
            .json(
                &json!({"workflowType": "prompt_generate", "projectId": project_id,
                "params": {"description": "x"}}),
            )
            .send()
            .await
            .unwrap();
        let body = error_body(response, 422).await;
        assert!(
            body["message"].as_str().unwrap().contains("projectId"),
            "{project_id}: {body}"
        );
    }
}

#[test]
fn a_short_jwt_secret_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    for (secret, via) in [
        ("12345678", "JWT_SECRET"),
        (&"x".repeat(31)[..], "JWT_SECRET"),
        ("short-secret", "NOSYNTASK__AUTH__JWT_SECRET"),
    ] {
        let output = command(dir.path())
            .env(via, secret)
            .args(["token", "--user", "1"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{via}={secret} was accepted");
        assert!(
            stderr.contains("auth.jwt_secret") && stderr.contains("JWT_SECRET"),
            "{stderr}"
        );
        assert!(stderr.contains("32"), "{stderr}");
    }
    // The server does not start either.
    let output = command(dir.path())
        .env("JWT_SECRET", "12345678")
        .env("NOSYNTASK__SERVER__BIND", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("auth.jwt_secret"),
        "{output:?}"
    );
    let output = command(dir.path())
        .env("JWT_SECRET", "x".repeat(32))
        .args(["token", "--user", "1"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
}

#[tokio::test]
async fn invented_methods_share_one_metric_label() {
    let server = Server::start();
    for method in ["FOO", "PROPFIND", "X-RAY-1", "BREW"] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        for path in ["/healthz", "/api/nope"] {
            let response = server
                .client
                .request(method.clone(), server.url(path))
                .send()
                .await
                .unwrap();
            assert!(response.status().is_client_error(), "{method} {path}");
        }
    }
    server
        .client
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    let text = server.metrics().await;
    let mut labels: Vec<&str> = text
        .split("method=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    labels.sort_unstable();
    labels.dedup();
    assert!(
        labels.contains(&"GET") && labels.contains(&"other"),
        "{labels:?}"
    );
    for label in &labels {
        assert!(
            [
                "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "other"
            ]
            .contains(label),
            "unbounded method label {label}:\n{text}"
        );
    }
}

/// Every text of a start request and of a list filter that reaches the database: NUL is
/// refused at the edge (PostgreSQL cannot store it in text or jsonb), naming the field.
async fn check_nul_refused(server: &Server) {
    let t = token(1);
    let start = |body: Value| server.post("/api/workflows", &t).json(&body).send();
    let cases = [
        (
            json!({"workflowType": "prompt_generate", "projectId": 1,
                "params": {"description": "a\u{0}b"}}),
            "params.description",
        ),
        (
            json!({"workflowType": "prompt_generate", "projectId": 1,
                "params": {"description": "x", "modelName": "sim\u{0}"}}),
            "params.modelName",
        ),
        (
            json!({"workflowType": "prompt_generate", "projectId": 1,
                "params": {"description": "x", "style": {"tags": ["ok", "b\u{0}d"]}}}),
            "params.style.tags[1]",
        ),
        (
            json!({"workflowType": "prompt_generate", "projectId": 1,
                "params": {"description": "x", "bad\u{0}key": 1}}),
            "params",
        ),
        (
            json!({"workflowType": "prompt_generate", "projectId": 1,
                "params": {"description": "x"}, "idempotencyKey": "k\u{0}"}),
            "idempotencyKey",
        ),
        (
            json!({"workflowType": "prompt_generate\u{0}", "projectId": 1,
                "params": {"description": "x"}}),
            "workflowType",
        ),
    ];
    for (body, field) in cases {
        let response = start(body.clone()).await.unwrap();
        let error = error_body(response, 422).await;
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(field), "{body}: {error}");
    }
    for query in [
        "/api/workflows?workflowType=a%00b",
        "/api/workflows?status=pending%00",
        "/api/workflows/active?projectId=1&limit=5%00",
    ] {
        let response = server.get(query, &t).send().await.unwrap();
        let error = error_body(response, 400).await;
        assert_eq!(error["code"], "invalid_query", "{query}: {error}");
    }
    // A NUL-free request still works, and the refusals wrote nothing.
    let id = server
        .start_job(&t, "prompt_generate", json!({"description": "fine"}))
        .await;
    let list: Value = server
        .get("/api/workflows", &t)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<i64> = list["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [id]);
}

#[tokio::test]
async fn nul_characters_are_refused_at_the_edge() {
    check_nul_refused(&Server::start()).await;
}

#[tokio::test]
async fn nul_characters_are_refused_at_the_edge_on_postgres() {
    let Some(db) = nosyntask_store::testing::test_store("postgres")
        .await
        .expect("create the test database")
    else {
        println!("skipped: set NOSYNTASK_TEST_POSTGRES_URL to run the NUL test on PostgreSQL");
        return;
    };
    let server = Server::start_with(Options::default().env("NOSYNTASK__DATABASE__URL", db.url()));
    check_nul_refused(&server).await;
}
