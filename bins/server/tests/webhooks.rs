//! Webhooks end to end, through the real server binary and a receiver on loopback: the
//! receiver is down while jobs complete and are cancelled, then up, and gets every event at
//! least once, in order per job, each signed as Standard Webhooks says — checked here with the
//! specification's HMAC computed by hand, not with the signing library. A server SIGKILLed
//! while a delivery is in flight delivers it again (the same `webhook-id`) after a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{Options, SLOW_MODELS, Server, admin_token, is_terminal, token};
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Base64 of the key, after the `whsec_` prefix, as Standard Webhooks libraries take it.
const KEY: &str = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn config(port: u16) -> String {
    format!(
        "{SLOW_MODELS}\n[[webhooks]]\nname = \"app\"\nurl = \"http://127.0.0.1:{port}/hooks\"\n\
         secret = \"whsec_{KEY}\"\ntimeout_secs = 2\n"
    )
}

/// A loopback port held for the receiver: bound, not listening yet, so connections to it are
/// refused (the receiver is down) and no other socket takes it meanwhile.
fn reserved_port() -> (tokio::net::TcpSocket, u16) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = socket.local_addr().unwrap().port();
    (socket, port)
}

/// The receiver on the reserved port, answering `first` to the first delivery and 200 to the rest.
async fn receiver(socket: tokio::net::TcpSocket, first: ResponseTemplate) -> MockServer {
    let listener = socket.listen(128).unwrap().into_std().unwrap();
    let server = MockServer::builder().listener(listener).start().await;
    Mock::given(method("POST"))
        .and(path("/hooks"))
        .respond_with(first)
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/hooks"))
        .respond_with(ResponseTemplate::new(200))
        .with_priority(2)
        .mount(&server)
        .await;
    server
}

/// One delivery as received, its signature checked: `base64(HMAC-SHA256(key,
/// "{webhook-id}.{webhook-timestamp}.{body}"))` among the `v1,` signatures of the header.
fn verified(request: &wiremock::Request) -> (String, Value) {
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .unwrap_or_else(|| panic!("{name} header"))
            .to_str()
            .unwrap()
            .to_owned()
    };
    let (id, timestamp, signatures) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    let sent: i64 = timestamp.parse().unwrap();
    assert!(
        (chrono::Utc::now().timestamp() - sent).abs() < 300,
        "fresh timestamp"
    );
    let key = base64::engine::general_purpose::STANDARD
        .decode(KEY)
        .unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(&request.body);
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    assert!(
        signatures
            .split(' ')
            .any(|s| s.strip_prefix("v1,") == Some(expected.as_str())),
        "signature {signatures} does not match {expected}"
    );
    (id, serde_json::from_slice(&request.body).unwrap())
}

async fn wait_for_requests(receiver: &MockServer, at_least: usize) -> Vec<wiremock::Request> {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let requests = receiver.received_requests().await.unwrap();
        if requests.len() >= at_least {
            return requests;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {at_least} deliveries arrived",
            requests.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_a_receiver_that_was_down_signed_and_in_order() {
    let (socket, port) = reserved_port();
    let server = Server::start_with(Options::default().config(&config(port)));
    let t = token(1);
    let done = server
        .start_job(
            &t,
            "prompt_generate",
            json!({"description": "a lighthouse"}),
        )
        .await;
    let cancelled = server
        .start_job(&t, "prompt_generate", json!({"description": "a harbour"}))
        .await;
    let response = server
        .post(&format!("/api/workflows/{cancelled}/cancel"), &t)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    server
        .wait_job(&t, done, Duration::from_secs(30), is_terminal)
        .await;
    // Down a while longer: attempts fail and are retried with backoff.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(server.log().contains("webhook delivery failed; retrying"));

    let receiver = receiver(socket, ResponseTemplate::new(204)).await;
    let requests = wait_for_requests(&receiver, 3).await;
    let mut first_seen: BTreeMap<String, (usize, Value)> = BTreeMap::new();
    for (i, request) in requests.iter().enumerate() {
        let (id, body) = verified(request);
        first_seen.entry(id).or_insert((i, body));
    }
    let events: Vec<(i64, String, usize)> = first_seen
        .values()
        .map(|(i, body)| {
            (
                body["data"]["jobId"].as_i64().unwrap(),
                body["type"].as_str().unwrap().to_owned(),
                *i,
            )
        })
        .collect();
    let of = |job: i64| {
        let mut kinds: Vec<_> = events.iter().filter(|e| e.0 == job).collect();
        kinds.sort_by_key(|e| e.2);
        kinds.iter().map(|e| e.1.clone()).collect::<Vec<_>>()
    };
    assert_eq!(of(done), vec!["step.completed", "job.completed"]);
    assert_eq!(of(cancelled), vec!["job.cancelled"]);
    let completed = first_seen
        .values()
        .find(|(_, b)| b["type"] == "job.completed")
        .unwrap();
    assert_eq!(completed.1["data"]["status"], "completed");
    assert!(completed.1["data"]["result"].is_object(), "{}", completed.1);
    assert!(completed.1["timestamp"].is_string());

    let metrics = server.metrics().await;
    assert!(
        metrics.contains("nosyntask_webhook_deliveries_total 3"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("nosyntask_webhook_attempts_failed_total 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("nosyntask_hook_failures_total 0"),
        "{metrics}"
    );

    // The delivery log says what happened; a redelivery sends the same delivery again.
    let admin = admin_token(9);
    let deliveries = |query: &'static str| {
        let (server, admin) = (&server, &admin);
        async move {
            let path = format!("/api/admin/webhooks/deliveries{query}");
            server.get_json(&path, admin).await["deliveries"].clone()
        }
    };
    let log = deliveries("?webhook=app").await;
    let log = log.as_array().unwrap();
    assert_eq!(log.len(), 3, "{log:?}");
    assert!(log.iter().all(|d| d["status"] == "delivered"), "{log:?}");
    let retried = log.iter().find(|d| d["attempts"].as_i64() > Some(1));
    assert!(
        retried.is_some(),
        "some attempt was refused while down: {log:?}"
    );
    let of_job = deliveries("?status=delivered&limit=1").await;
    assert_eq!(of_job.as_array().unwrap().len(), 1);
    let before = receiver.received_requests().await.unwrap().len();
    let again = &log[0];
    let response = server
        .post(
            &format!("/api/admin/webhooks/deliveries/{}/redeliver", again["id"]),
            &admin,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let requests = wait_for_requests(&receiver, before + 1).await;
    let (id, _) = verified(requests.last().unwrap());
    assert_eq!(id, format!("msg_{}", again["id"]));
    // Only admins read the log; an unknown delivery is a 404.
    let response = server
        .get("/api/admin/webhooks/deliveries", &t)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let response = server
        .post("/api/admin/webhooks/deliveries/999999/redeliver", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let response = server
        .get("/api/admin/webhooks/deliveries?status=lost", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_delivery_delivers_again_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (socket, port) = reserved_port();
    let options = || Options {
        dir: Some(dir.path().to_path_buf()),
        ..Options::default().config(&config(port))
    };
    // A receiver that takes the first delivery and does not answer before the kill.
    let receiver = receiver(
        socket,
        ResponseTemplate::new(200).set_delay(Duration::from_secs(60)),
    )
    .await;
    let server = Server::start_with(options());
    let t = token(1);
    let id = server
        .start_job(&t, "prompt_generate", json!({"description": "a kite"}))
        .await;
    let first = wait_for_requests(&receiver, 1).await;
    let (delivery, body) = verified(&first[0]);
    assert_eq!(body["data"]["jobId"], id);
    drop(server); // SIGKILL, with the delivery in flight

    let _restarted = Server::start_with(options());
    let requests = wait_for_requests(&receiver, 3).await;
    let after: Vec<(String, String)> = requests[1..]
        .iter()
        .map(|r| {
            let (id, body) = verified(r);
            (id, body["type"].as_str().unwrap().to_owned())
        })
        .collect();
    assert_eq!(after[0].0, delivery, "the same delivery, by its id, first");
    assert_eq!(after[0].1, "step.completed");
    assert_eq!(after[1].1, "job.completed");
}
