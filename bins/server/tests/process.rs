//! The binary as a process: zero-configuration start, subcommands, configuration errors, roles
//! and graceful shutdown.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Options, SECRET, Server, command, token};
use serde_json::{Value, json};

#[tokio::test]
async fn starts_with_nothing_configured_and_prints_a_working_dev_token() {
    let mut server = Server::start_with(Options {
        secret: false,
        ..Options::default()
    });
    assert!(
        server.base.starts_with("http://127.0.0.1:"),
        "{}",
        server.base
    );
    assert_ne!(server.base, "http://127.0.0.1:0");
    let line = server
        .wait_for_line("  export TOKEN=", Duration::from_secs(5))
        .expect("dev token line");
    let dev_token = line.trim_start_matches("  export TOKEN=").trim().to_owned();
    server
        .wait_for_line("  curl ", Duration::from_secs(5))
        .expect("curl example");

    let secret_file = server.dir.join("data/jwt-secret");
    assert!(secret_file.is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secret_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(server.dir.join("data/nosyntask.db").is_file());
    assert!(server.dir.join("data/artifacts").is_dir());

    let id = server
        .start_job(
            &dev_token,
            "prompt_generate",
            json!({"description": "hello"}),
        )
        .await;
    let job = server
        .wait_job(&dev_token, id, Duration::from_secs(30), |j| {
            j["status"] == "completed"
        })
        .await;
    assert_eq!(job["user_id"], 1);

    // `token` signs with the same development secret.
    let output = command(&server.dir)
        .args(["token", "--user", "1", "--role", "admin"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let admin = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    let read = server
        .get(&format!("/api/workflows/{id}"), &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
}

#[test]
fn token_command_uses_the_configured_secret() {
    let dir = tempfile::tempdir().unwrap();
    let output = command(dir.path())
        .env("JWT_SECRET", SECRET)
        .args(["token", "--user", "42", "--ttl-hours", "2"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let token = String::from_utf8(output.stdout).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_required_spec_claims(&["exp"]);
    let data = jsonwebtoken::decode::<Value>(
        token.trim(),
        &jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes()).unwrap(),
        &validation,
    )
    .unwrap();
    assert_eq!(data.claims["userId"], 42);
    assert_eq!(data.claims["role"], "user");
    let exp = data.claims["exp"].as_i64().unwrap();
    let now = chrono::Utc::now().timestamp();
    assert!((now + 7000..=now + 7300).contains(&exp));
    assert!(!dir.path().join("data").exists());
}

#[test]
fn openapi_and_migrate_commands() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("api.yaml");
    let status = command(dir.path())
        .args(["openapi", "--out"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.starts_with("openapi: 3.1.0"));

    let output = command(dir.path())
        .env("NOSYNTASK__DATABASE__URL", "sqlite://db/x.db?mode=rwc")
        .arg("migrate")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(dir.path().join("db/x.db").is_file());
}

#[test]
fn bad_configuration_stops_the_server_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, Option<&str>, (&str, &str)); 4] = [
        ("[server]\nbindd = \"x\"\n", None, ("", "server.bindd")),
        (
            "[worker]\nconcurrency = \"lots\"\n",
            None,
            ("", "worker.concurrency"),
        ),
        ("", None, ("NOSYNTASK__SERVER__ROLE", "server.role")),
        (
            "[[models]]\nname = \"m\"\nkind = \"text\"\nadapter = \"simulated\"\nflavour = 1\n",
            None,
            ("", "flavour"),
        ),
    ];
    for (toml, _, (env_key, named)) in cases {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, toml).unwrap();
        let mut cmd = command(dir.path());
        cmd.arg("--config").arg(&path).arg("serve");
        if !env_key.is_empty() {
            cmd.env(env_key, "boss");
        }
        let output = cmd.output().unwrap();
        assert!(!output.status.success(), "{toml}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(named), "{toml}: {stderr}");
    }
    let missing = command(dir.path())
        .args(["--config", "does-not-exist.toml"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
}

#[tokio::test]
async fn worker_role_serves_only_health_and_api_role_runs_no_handlers() {
    let dir = tempfile::tempdir().unwrap();
    let api = Server::start_with(Options {
        dir: Some(dir.path().to_path_buf()),
        ..Options::default().env("NOSYNTASK__SERVER__ROLE", "api")
    });
    let t = token(1);
    let id = api
        .start_job(&t, "prompt_generate", json!({"description": "queued"}))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(api.job(&t, id).await["status"], "pending");

    let worker = Server::start_with(Options {
        dir: Some(dir.path().to_path_buf()),
        ..Options::default().env("NOSYNTASK__SERVER__ROLE", "worker")
    });
    for path in ["/healthz", "/readyz", "/metrics"] {
        let response = worker.client.get(worker.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    let response = worker
        .get(&format!("/api/workflows/{id}"), &t)
        .send()
        .await
        .unwrap();
    common::error_body(response, 404).await;
    // The worker process runs the job the API process queued.
    api.wait_job(&t, id, Duration::from_secs(30), |j| {
        j["status"] == "completed"
    })
    .await;
}

#[tokio::test]
async fn sigterm_shuts_down_gracefully() {
    let mut server = Server::start_with(Options::default().config(common::SLOW_MODELS));
    let t = token(1);
    let id = server
        .start_job(&t, "prompt_generate", json!({"description": "in flight"}))
        .await;
    server
        .wait_job(&t, id, Duration::from_secs(30), |j| {
            j["status"] == "running"
        })
        .await;
    // An open event stream must not hold the shutdown up.
    let stream = server
        .get(&format!("/api/workflows/{id}/events"), &t)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let status = server
        .terminate(Duration::from_secs(15))
        .expect("server did not exit after SIGTERM");
    assert!(status.success(), "{status:?}\n{}", server.log());
    assert!(server.log().contains("stopped"), "{}", server.log());
}
