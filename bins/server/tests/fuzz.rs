//! Throws random methods, paths, query strings, headers and bodies at every route of a running
//! server and asserts that none is answered with a 5xx (and that the server stays up).
//!
//! Seeded and bounded so it is reproducible and quick by default. Run it longer with e.g.
//! `NOSYNTASK_FUZZ_CASES=100000 NOSYNTASK_FUZZ_SECS=600 NOSYNTASK_FUZZ_SEED=7 \
//!  cargo test -p nosyntask-server --test fuzz -- --nocapture`.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Server, admin_token, sign, token};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{Map, Value, json};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// `/api/workflows` three times: its POST has the most input to get wrong.
const ROUTES: [&str; 20] = [
    "/api/workflows/types",
    "/api/workflows",
    "/api/workflows",
    "/api/workflows",
    "/api/workflows/{id}",
    "/api/workflows/active",
    "/api/workflows/{id}/consume",
    "/api/workflows/{id}/cancel",
    "/api/workflows/{id}/resume",
    "/api/workflows/{id}/events",
    "/api/models",
    "/api/admin/stats",
    "/api/admin/series",
    "/",
    "/healthz",
    "/readyz",
    "/metrics",
    "/api/openapi.json",
    "/docs/",
    "/files/{id}",
];

const WORKFLOW_TYPES: [&str; 6] = [
    "prompt_generate",
    "storyboard_generation",
    "character_views_generation",
    "scene_video",
    "frame_generation",
    "nope",
];

struct Gen {
    rng: StdRng,
    known_ids: Vec<i64>,
}

impl Gen {
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.rng.random_range(0..items.len())]
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    fn text(&mut self) -> String {
        let choices = [
            String::new(),
            " ".to_owned(),
            "0".to_owned(),
            "-1".to_owned(),
            "1.5".to_owned(),
            "1e309".to_owned(),
            "9223372036854775808".to_owned(),
            "-9223372036854775809".to_owned(),
            "true".to_owned(),
            "null".to_owned(),
            "pending,running".to_owned(),
            "completed,,bogus".to_owned(),
            "名前".to_owned(),
            "😀".repeat(3),
            "%00".to_owned(),
            "'; DROP TABLE jobs; --".to_owned(),
            "../../etc/passwd".to_owned(),
            "a".repeat(self.rng.random_range(0..5000)),
            format!("{}", self.rng.random::<i64>()),
            format!("{}", self.rng.random_range(0..50)),
        ];
        self.pick(&choices).clone()
    }

    fn id_segment(&mut self) -> String {
        if !self.known_ids.is_empty() && self.chance(0.5) {
            let ids = self.known_ids.clone();
            return self.pick(&ids).to_string();
        }
        let text = self.text();
        percent_encode(&text)
    }

    fn json(&mut self, depth: u32) -> Value {
        let kind = if depth > 3 {
            self.rng.random_range(0..5)
        } else {
            self.rng.random_range(0..7)
        };
        match kind {
            0 => Value::Null,
            1 => json!(self.rng.random::<bool>()),
            2 => json!(self.rng.random::<i64>()),
            3 => json!(self.rng.random::<f64>() * 1e12),
            4 => json!(self.text()),
            5 => Value::Array(
                (0..self.rng.random_range(0..4))
                    .map(|_| self.json(depth + 1))
                    .collect(),
            ),
            _ => {
                let mut map = Map::new();
                for _ in 0..self.rng.random_range(0..5) {
                    let key = if self.chance(0.5) {
                        (*self.pick(&[
                            "description",
                            "kind",
                            "style",
                            "modelName",
                            "prompt",
                            "scriptContent",
                            "scenes",
                            "duration",
                            "width",
                            "characterName",
                        ]))
                        .to_owned()
                    } else {
                        self.text()
                    };
                    let value = self.json(depth + 1);
                    map.insert(key, value);
                }
                Value::Object(map)
            }
        }
    }

    fn start_body(&mut self) -> Value {
        if self.chance(0.3) {
            return json!({"workflowType": "prompt_generate", "projectId": self.rng.random_range(1..4),
                "params": {"description": format!("fuzz {}", self.rng.random::<u32>())}});
        }
        let mut body = Map::new();
        if self.chance(0.9) {
            let value = if self.chance(0.8) {
                json!(self.pick(&WORKFLOW_TYPES))
            } else {
                self.json(2)
            };
            body.insert("workflowType".into(), value);
        }
        if self.chance(0.9) {
            let value = if self.chance(0.7) {
                json!(self.rng.random_range(-3..100))
            } else {
                self.json(2)
            };
            body.insert("projectId".into(), value);
        }
        if self.chance(0.9) {
            let value = if self.chance(0.6) {
                json!({"description": self.text(), "kind": self.pick(&["image", "video", "x"])})
            } else {
                self.json(1)
            };
            body.insert("params".into(), value);
        }
        if self.chance(0.3) {
            let value = if self.chance(0.7) {
                json!(self.text())
            } else {
                self.json(2)
            };
            body.insert("idempotencyKey".into(), value);
        }
        Value::Object(body)
    }

    fn body(&mut self) -> Option<Vec<u8>> {
        match self.rng.random_range(0..6) {
            0 => None,
            1 | 2 => Some(serde_json::to_vec(&self.start_body()).unwrap_or_default()),
            3 => Some(serde_json::to_vec(&self.json(0)).unwrap_or_default()),
            4 => {
                let len = self.rng.random_range(0..2000);
                Some((0..len).map(|_| self.rng.random::<u8>()).collect())
            }
            _ => {
                let mut text = serde_json::to_string(&self.start_body()).unwrap_or_default();
                let cut = self.rng.random_range(0..=text.len());
                while !text.is_char_boundary(cut.min(text.len())) {
                    text.pop();
                }
                text.truncate(cut.min(text.len()));
                Some(text.into_bytes())
            }
        }
    }

    fn query(&mut self) -> String {
        let keys = [
            "projectId",
            "workflowType",
            "status",
            "limit",
            "before",
            "access_token",
        ];
        let mut parts = Vec::new();
        for _ in 0..self.rng.random_range(0..5) {
            let key = if self.chance(0.8) {
                (*self.pick(&keys)).to_owned()
            } else {
                percent_encode(&self.text())
            };
            let value = percent_encode(&self.text());
            parts.push(format!("{key}={value}"));
        }
        if self.chance(0.1) {
            parts.push("%zz&&==&".to_owned());
        }
        parts.join("&")
    }

    fn authorization(&mut self, good: &str, other: &str, admin: &str) -> Option<String> {
        match self.rng.random_range(0..10) {
            0..=4 => Some(format!("Bearer {good}")),
            5 => Some(format!("Bearer {other}")),
            6 => Some(format!("Bearer {admin}")),
            7 => None,
            8 => Some(format!("Bearer {}", self.text())),
            _ => Some(self.text()),
        }
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn random_requests_never_get_a_5xx() {
    let cases = env_or("NOSYNTASK_FUZZ_CASES", 1500);
    let seconds = env_or("NOSYNTASK_FUZZ_SECS", 40);
    let seed = env_or("NOSYNTASK_FUZZ_SEED", 20250131);
    println!("fuzz: seed {seed}, up to {cases} cases or {seconds} s");

    let server = Server::start();
    let good = token(1);
    let other = token(2);
    let admin = admin_token(3);
    let tricky = [
        sign(
            json!({"userId": "1", "exp": common::exp_in(600)}),
            common::SECRET,
        ),
        sign(
            json!({"userId": -5, "exp": common::exp_in(600)}),
            common::SECRET,
        ),
        sign(
            json!({"userId": 1e40, "exp": common::exp_in(600)}),
            common::SECRET,
        ),
        sign(json!({"userId": 1, "exp": "soon"}), common::SECRET),
        sign(
            json!({"userId": 1, "exp": common::exp_in(600), "role": ["admin"]}),
            common::SECRET,
        ),
    ];
    let known = server
        .start_job(&good, "prompt_generate", json!({"description": "seed job"}))
        .await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let mut g = Gen {
        rng: StdRng::seed_from_u64(seed),
        known_ids: vec![known, known + 1, 0, -1],
    };
    let methods = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::HEAD,
        Method::OPTIONS,
    ];
    let started = Instant::now();
    let mut statuses = std::collections::BTreeMap::<u16, u64>::new();
    let mut done = 0;
    while done < cases && started.elapsed() < Duration::from_secs(seconds) {
        done += 1;
        let route = *g.pick(&ROUTES);
        let mut path = route.replace("{id}", &g.id_segment());
        if g.chance(0.05) {
            path = format!("/{}", percent_encode(&g.text()));
        } else if g.chance(0.05) {
            path.push_str(&format!("/{}", percent_encode(&g.text())));
        }
        let method = if route == "/api/workflows"
            || route.ends_with("/consume")
            || route.ends_with("/cancel")
            || route.ends_with("/resume")
        {
            if g.chance(0.7) {
                Method::POST
            } else {
                g.pick(&methods).clone()
            }
        } else if g.chance(0.8) {
            Method::GET
        } else {
            g.pick(&methods).clone()
        };
        let query = g.query();
        let url = if query.is_empty() {
            server.url(&path)
        } else {
            server.url(&format!("{path}?{query}"))
        };
        let mut request = client.request(method.clone(), &url);
        let auth = if g.chance(0.05) {
            Some(format!("Bearer {}", g.pick(&tricky)))
        } else {
            g.authorization(&good, &other, &admin)
        };
        if let Some(auth) = auth
            && let Ok(value) = HeaderValue::from_str(&auth)
        {
            request = request.header("Authorization", value);
        }
        for _ in 0..g.rng.random_range(0..3) {
            let name = *g.pick(&[
                "Content-Type",
                "Idempotency-Key",
                "If-None-Match",
                "Accept",
                "X-Random",
                "Content-Encoding",
            ]);
            let value = match name {
                "Content-Type" => (*g.pick(&[
                    "application/json",
                    "text/plain",
                    "application/x-www-form-urlencoded",
                    "multipart/form-data; boundary=x",
                    "application/json; charset=latin1",
                ]))
                .to_owned(),
                "Content-Encoding" => (*g.pick(&["gzip", "br", "identity", "zstd"])).to_owned(),
                _ => g.text(),
            };
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                request = request.header(name, value);
            }
        }
        if let Some(body) = g.body() {
            request = request.body(body);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) => panic!("request {method} {url} failed: {err}"),
        };
        let status = response.status().as_u16();
        *statuses.entry(status).or_default() += 1;
        assert!(
            status < 500,
            "{method} {url} answered {status}: {}",
            response.text().await.unwrap_or_default()
        );
        if status == 202 {
            // Aim later paths at the jobs the fuzzer itself created.
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if let Some(id) = body["jobId"].as_i64() {
                g.known_ids.push(id);
            }
        } else if status >= 400 && method != Method::HEAD {
            let body: Value = response.json().await.unwrap_or(Value::Null);
            assert!(
                body["message"].is_string() && body["code"].is_string(),
                "{method} {url} answered {status} without the error body: {body}"
            );
        }
    }
    println!(
        "fuzz: {done} requests in {:?}: {statuses:?}",
        started.elapsed()
    );
    let health = client.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}
