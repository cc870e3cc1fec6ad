//! Spawning the real `nosyntask-server` binary for end-to-end tests: fresh temporary data
//! directory (SQLite under it), port 0, a known JWT secret; the port is read from the listening
//! line the server prints.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

pub const SECRET: &str = "e2e-test-secret-0123456789-abcdefghij";

/// A running server process; killed on drop.
pub struct Server {
    child: Child,
    pub base: String,
    pub dir: PathBuf,
    _tempdir: Option<tempfile::TempDir>,
    pub stdout: Vec<String>,
    stdout_rx: mpsc::Receiver<String>,
    pub client: reqwest::Client,
}

/// How to start a server.
pub struct Options {
    pub env: Vec<(String, String)>,
    /// TOML written to `config.toml` and passed with `--config`.
    pub config: Option<String>,
    /// Set `JWT_SECRET` to [`SECRET`] (otherwise the development secret is used).
    pub secret: bool,
    /// Run in this directory instead of a fresh temporary one.
    pub dir: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            env: Vec::new(),
            config: None,
            secret: true,
            dir: None,
        }
    }
}

impl Options {
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    pub fn config(mut self, toml: &str) -> Self {
        self.config = Some(toml.to_owned());
        self
    }
}

/// Simulated models that take a while and report progress: text 1.5 s.
pub const SLOW_MODELS: &str = r#"
[[models]]
name = "sim-text"
kind = "text"
adapter = "simulated"
default = true
simulated = { latency_ms = 1500 }

[[models]]
name = "sim-image"
kind = "image"
adapter = "simulated"
default = true
simulated = { latency_ms = 1500 }

[[models]]
name = "sim-video"
kind = "video"
adapter = "simulated"
default = true
simulated = { latency_ms = 1500 }
"#;

/// The binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_nosyntask-server")
}

/// A command for the binary with a clean `NOSYNTASK*`/`JWT_SECRET` environment.
pub fn command(dir: &Path) -> Command {
    let mut command = Command::new(binary());
    command.current_dir(dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("NOSYNTASK") || key == "JWT_SECRET" || key == "RUST_LOG" {
            command.env_remove(key);
        }
    }
    command
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(Options::default())
    }

    pub fn start_with(options: Options) -> Server {
        let (tempdir, dir) = match options.dir {
            Some(dir) => (None, dir),
            None => {
                let tempdir = tempfile::tempdir().expect("tempdir");
                let dir = tempdir.path().to_path_buf();
                (Some(tempdir), dir)
            }
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("server.log"))
            .expect("log file");
        let mut command = command(&dir);
        command
            .env("NOSYNTASK__SERVER__BIND", "127.0.0.1:0")
            .env("NOSYNTASK__SERVER__HTTP_WORKERS", "2")
            .env("NOSYNTASK__SERVER__EVENTS_POLL_MS", "100")
            .env("NOSYNTASK__WORKER__POLL_INTERVAL_MS", "100")
            .env("NOSYNTASK__WORKER__PROGRESS_INTERVAL_MS", "100")
            .env("NOSYNTASK__WORKER__CANCEL_CHECK_INTERVAL_MS", "100")
            .env("NOSYNTASK__WORKER__SHUTDOWN_GRACE_SECS", "2")
            .env("RUST_LOG", "info,nosyntask_server=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        if options.secret {
            command.env("JWT_SECRET", SECRET);
        }
        if let Some(config) = &options.config {
            std::fs::write(dir.join("config.toml"), config).expect("config");
            command.arg("--config").arg(dir.join("config.toml"));
        }
        for (key, value) in &options.env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("spawn nosyntask-server");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Server {
            child,
            base: String::new(),
            dir,
            _tempdir: tempdir,
            stdout: Vec::new(),
            stdout_rx: rx,
            client: reqwest::Client::new(),
        };
        let line = server
            .wait_for_line("nosyntask listening on ", Duration::from_secs(60))
            .unwrap_or_else(|| panic!("server did not start; log:\n{}", server.log()));
        server.base = line
            .trim_start_matches("nosyntask listening on ")
            .trim()
            .to_owned();
        server
    }

    /// Waits for a stdout line starting with `prefix`.
    pub fn wait_for_line(&mut self, prefix: &str, timeout: Duration) -> Option<String> {
        if let Some(line) = self.stdout.iter().find(|l| l.starts_with(prefix)) {
            return Some(line.clone());
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.stdout_rx.recv_timeout(left) {
                Ok(line) => {
                    let hit = line.starts_with(prefix);
                    self.stdout.push(line.clone());
                    if hit {
                        return Some(line);
                    }
                }
                Err(_) => return None,
            }
        }
    }

    /// `path` on this server; an absolute URL (a media URL from a job read) as it is.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            return path.to_owned();
        }
        format!("{}{}", self.base, path)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn get(&self, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path)).bearer_auth(token)
    }

    /// GETs `path` and reads its JSON answer, whatever the status.
    pub async fn get_json(&self, path: &str, token: &str) -> Value {
        self.get(path, token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub fn post(&self, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.client.post(self.url(path)).bearer_auth(token)
    }

    /// Starts a workflow in project 1 and returns the job id (asserting 202).
    pub async fn start_job(&self, token: &str, workflow_type: &str, params: Value) -> i64 {
        self.start_job_in(token, 1, workflow_type, params).await
    }

    /// Starts a workflow in `project` and returns the job id (asserting 202).
    pub async fn start_job_in(
        &self,
        token: &str,
        project: i64,
        workflow_type: &str,
        params: Value,
    ) -> i64 {
        let response = self
            .post("/api/workflows", token)
            .json(&json!({"workflowType": workflow_type, "projectId": project, "params": params}))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 202, "{body}");
        body["jobId"].as_i64().unwrap()
    }

    pub async fn job(&self, token: &str, id: i64) -> Value {
        let response = self
            .get(&format!("/api/workflows/{id}"), token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// The text of `GET /metrics` (no token needed).
    pub async fn metrics(&self) -> String {
        let response = self.client.get(self.url("/metrics")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    }

    /// Polls the job until `done` holds, or panics after `timeout`.
    pub async fn wait_job(
        &self,
        token: &str,
        id: i64,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let job = self.job(token, id).await;
            if done(&job) {
                return job;
            }
            assert!(
                Instant::now() < deadline,
                "job {id} did not reach the expected state: {job}\nlog:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- server log ({}) ---\n{}", self.base, self.log());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the server binary with `args` on the database `url` in `dir`: whether it succeeded,
/// and its output.
pub fn run_on(url: &str, dir: &Path, args: &[&str]) -> (bool, String) {
    let output = command(dir)
        .args(args)
        .env("NOSYNTASK__DATABASE__URL", url)
        .env("JWT_SECRET", SECRET)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// Runs a SQL script of `;`-separated statements (`--` comment lines may hold semicolons).
pub async fn run_sql(conn: &impl sea_orm::ConnectionTrait, script: &str) {
    let sql: Vec<&str> = script
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect();
    for statement in sql.join("\n").split(';').map(str::trim) {
        if !statement.is_empty() {
            conn.execute_unprepared(statement)
                .await
                .unwrap_or_else(|err| panic!("{statement}: {err}"));
        }
    }
}

/// A token as the NanoStory backend signs it.
pub fn token(user_id: i64) -> String {
    sign(
        json!({"userId": user_id, "email": format!("u{user_id}@example.com"), "role": "user", "exp": exp_in(3600)}),
        SECRET,
    )
}

pub fn admin_token(user_id: i64) -> String {
    sign(
        json!({"userId": user_id, "role": "admin", "exp": exp_in(3600)}),
        SECRET,
    )
}

pub fn exp_in(seconds: i64) -> i64 {
    chrono::Utc::now().timestamp() + seconds
}

pub fn sign(claims: Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()).unwrap(),
    )
    .unwrap()
}

pub fn is_terminal(job: &Value) -> bool {
    matches!(
        job["status"].as_str(),
        Some("completed" | "failed" | "cancelled")
    )
}

/// Asserts the contract's error body and returns it.
pub async fn error_body(response: reqwest::Response, status: u16) -> Value {
    let actual = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(actual, status, "{body}");
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    assert!(body["message"].is_string(), "{body}");
    let code = body["code"].as_str().unwrap_or_default();
    assert!(
        !code.is_empty() && code.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
        "{body}"
    );
    body
}
