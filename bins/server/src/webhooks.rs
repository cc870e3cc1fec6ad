//! Webhooks: the engine's events (`step.completed`, `job.completed`, `step.failed`,
//! `job.failed`, `job.cancelled`) POSTed to the `[[webhooks]]` endpoints from the store's
//! durable outbox, signed as the Standard Webhooks specification says (`webhook-id`,
//! `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>`), with the maintained
//! `standardwebhooks` crate.
//!
//! Every event is written to the outbox in the transaction that records it, so none is lost;
//! each endpoint's loop delivers at least once, in order per job, retrying with backoff for
//! the endpoint's retry period. `webhook-id` is the outbox row's id: the same on every attempt
//! and redelivery, so a receiver deduplicates by it. A process killed mid-delivery leaves the
//! claim's lease to lapse and any process running workers delivers it again.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use nosyntask_engine::ports::Clock;
use nosyntask_engine::{Backoff, CancellationToken};
use nosyntask_store::{HookEventKind, OutboxDelivery, OutboxSubscriber, Store};
use serde::Deserialize;
use tokio::task::JoinHandle;
use tracing::{debug, error, warn};

use crate::config::Secret;

/// Every event kind, by its name.
const KINDS: [HookEventKind; 5] = [
    HookEventKind::StepCompleted,
    HookEventKind::StepFailed,
    HookEventKind::JobCompleted,
    HookEventKind::JobFailed,
    HookEventKind::JobCancelled,
];

/// The outbox's subscriber column is 64 characters.
const MAX_NAME: usize = 64;
/// Deliveries claimed per round; each job has at most one of them.
const BATCH: u32 = 16;
/// How long an endpoint's loop sleeps when nothing is due.
const IDLE: Duration = Duration::from_millis(250);

static DELIVERED: AtomicU64 = AtomicU64::new(0);
static FAILED: AtomicU64 = AtomicU64::new(0);
static GIVEN_UP: AtomicU64 = AtomicU64::new(0);

/// What this process's delivery loops did, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryCounts {
    pub delivered: u64,
    /// Attempts that failed (each retry counts).
    pub failed: u64,
    pub given_up: u64,
}

pub fn counts() -> DeliveryCounts {
    DeliveryCounts {
        delivered: DELIVERED.load(Ordering::Relaxed),
        failed: FAILED.load(Ordering::Relaxed),
        given_up: GIVEN_UP.load(Ordering::Relaxed),
    }
}

/// `[[webhooks]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// The endpoint's name in the delivery log (unique, at most 64 characters); default: the
    /// URL.
    #[serde(default)]
    pub name: Option<String>,
    /// `http://` or `https://` URL the events are POSTed to.
    pub url: String,
    /// Event types to send (`job.completed`, …); empty: all.
    #[serde(default)]
    pub events: Vec<String>,
    /// The signing secret, `whsec_` and base64 (as Standard Webhooks libraries take it).
    pub secret: Secret,
    /// How long after an event its delivery is retried before it is given up on (default three
    /// days); the admin API redelivers it after that.
    #[serde(default = "default_retry_for")]
    pub retry_for_secs: u64,
    /// How long one attempt may take (default 10 s).
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_retry_for() -> u64 {
    3 * 24 * 3600
}

fn default_timeout() -> u64 {
    10
}

impl WebhookSettings {
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.url)
    }

    fn kinds(&self) -> Option<Vec<HookEventKind>> {
        if self.events.is_empty() {
            return None;
        }
        Some(
            KINDS
                .into_iter()
                .filter(|k| self.events.iter().any(|e| e == k.as_str()))
                .collect(),
        )
    }
}

/// Checks `[[webhooks]]`; the error names the key.
pub fn validate(webhooks: &[WebhookSettings]) -> Result<(), (String, String)> {
    let mut names = std::collections::HashSet::new();
    for (i, hook) in webhooks.iter().enumerate() {
        let key = |field: &str| format!("webhooks[{i}].{field}");
        if !(hook.url.starts_with("http://") || hook.url.starts_with("https://")) {
            return Err((key("url"), "must be an http:// or https:// URL".into()));
        }
        if hook.name().is_empty() || hook.name().chars().count() > MAX_NAME {
            return Err((key("name"), format!("must be 1 to {MAX_NAME} characters")));
        }
        if !names.insert(hook.name()) {
            return Err((key("name"), format!("`{}` is used twice", hook.name())));
        }
        if let Some(unknown) = hook
            .events
            .iter()
            .find(|e| !KINDS.iter().any(|k| k.as_str() == e.as_str()))
        {
            let known: Vec<_> = KINDS.iter().map(|k| k.as_str()).collect();
            return Err((
                key("events"),
                format!("unknown event `{unknown}` (one of {})", known.join(", ")),
            ));
        }
        if standardwebhooks::Webhook::new(hook.secret.expose()).is_err() {
            return Err((
                key("secret"),
                "must be base64, optionally after `whsec_`".into(),
            ));
        }
        if hook.timeout_secs == 0 {
            return Err((key("timeout_secs"), "must be at least 1".into()));
        }
    }
    Ok(())
}

/// The outbox subscribers of the configured endpoints.
pub fn subscribers(webhooks: &[WebhookSettings]) -> Vec<OutboxSubscriber> {
    webhooks
        .iter()
        .map(|hook| OutboxSubscriber {
            name: hook.name().to_owned(),
            events: hook.kinds(),
        })
        .collect()
}

/// Starts one delivery loop per endpoint; they stop with `shutdown`. `clock` is the engine's
/// (the database's time, as every lease of the engine).
pub fn spawn(
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    webhooks: &[WebhookSettings],
    shutdown: CancellationToken,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    webhooks
        .iter()
        .map(|hook| {
            let endpoint = Endpoint {
                name: hook.name().to_owned(),
                url: hook.url.clone(),
                signer: standardwebhooks::Webhook::new(hook.secret.expose())?,
                retry_for: chrono::Duration::seconds(
                    i64::try_from(hook.retry_for_secs).unwrap_or(i64::MAX / 1000),
                ),
                timeout: Duration::from_secs(hook.timeout_secs),
            };
            let (store, clock, client, shutdown) = (
                store.clone(),
                clock.clone(),
                client.clone(),
                shutdown.clone(),
            );
            Ok(tokio::spawn(async move {
                endpoint.run(&store, &*clock, &client, shutdown).await;
            }))
        })
        .collect()
}

struct Endpoint {
    name: String,
    url: String,
    signer: standardwebhooks::Webhook,
    retry_for: chrono::Duration,
    timeout: Duration,
}

impl Endpoint {
    /// A claim outlives the attempt it is for, so only a dead process's claims lapse.
    fn lease(&self) -> Duration {
        self.timeout + Duration::from_secs(5)
    }

    async fn run(
        &self,
        store: &Store,
        clock: &dyn Clock,
        client: &reqwest::Client,
        shutdown: CancellationToken,
    ) {
        let backoff = Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(3600),
        };
        while !shutdown.is_cancelled() {
            let claimed = store
                .claim_outbox(&self.name, BATCH, self.lease(), clock.now())
                .await;
            let deliveries = match claimed {
                Ok(deliveries) => deliveries,
                Err(err) => {
                    warn!(webhook = %self.name, error = %err, "cannot claim webhook deliveries");
                    Vec::new()
                }
            };
            if deliveries.is_empty() {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(IDLE) => continue,
                }
            }
            for delivery in deliveries {
                let outcome = self.attempt(client, &delivery).await;
                let settled = self.settle(store, clock.now(), &delivery, outcome, &backoff);
                if let Err(err) = settled.await {
                    // The lease lapses and the delivery is claimed again.
                    warn!(webhook = %self.name, delivery = delivery.id, error = %err,
                        "cannot record a webhook delivery");
                }
            }
        }
    }

    /// One signed POST; `Err` says why it did not count as delivered.
    async fn attempt(
        &self,
        client: &reqwest::Client,
        delivery: &OutboxDelivery,
    ) -> Result<(), String> {
        let id = format!("msg_{}", delivery.id);
        let body = delivery.payload.to_string();
        let timestamp = Utc::now().timestamp();
        let signature = self
            .signer
            .sign(&id, timestamp, body.as_bytes())
            .map_err(|err| format!("cannot sign: {err}"))?;
        let response = client
            .post(&self.url)
            .timeout(self.timeout)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(|err| format!("request failed: {err}"))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        Err(format!("HTTP {}", status.as_u16()))
    }

    async fn settle(
        &self,
        store: &Store,
        now: DateTime<Utc>,
        delivery: &OutboxDelivery,
        outcome: Result<(), String>,
        backoff: &Backoff,
    ) -> Result<(), nosyntask_engine::StoreError> {
        let Err(error) = outcome else {
            debug!(webhook = %self.name, delivery = delivery.id, "webhook delivered");
            DELIVERED.fetch_add(1, Ordering::Relaxed);
            return store.outbox_delivered(delivery.id, now).await;
        };
        FAILED.fetch_add(1, Ordering::Relaxed);
        let retry_at = now
            + chrono::Duration::from_std(backoff.delay(delivery.attempts, None))
                .unwrap_or_default();
        if retry_at - delivery.created_at > self.retry_for {
            error!(webhook = %self.name, delivery = delivery.id, job_id = delivery.job_id,
                event = %delivery.event, %error, attempts = delivery.attempts,
                "webhook delivery given up after its retry period");
            GIVEN_UP.fetch_add(1, Ordering::Relaxed);
            return store.outbox_attempt_failed(delivery.id, &error, None).await;
        }
        warn!(webhook = %self.name, delivery = delivery.id, %error, attempts = delivery.attempts,
            "webhook delivery failed; retrying");
        store
            .outbox_attempt_failed(delivery.id, &error, Some(retry_at))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(name: &str) -> WebhookSettings {
        WebhookSettings {
            name: Some(name.into()),
            url: "https://app.example/hooks".into(),
            events: Vec::new(),
            secret: Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            retry_for_secs: default_retry_for(),
            timeout_secs: default_timeout(),
        }
    }

    #[test]
    fn bad_endpoints_are_refused_naming_the_key() {
        type Change = fn(&mut WebhookSettings);
        let cases: [(Change, &str); 5] = [
            (|h| h.url = "ftp://x".into(), "webhooks[0].url"),
            (|h| h.events = vec!["job.done".into()], "webhooks[0].events"),
            (
                |h| h.secret = Secret::new("not base64!"),
                "webhooks[0].secret",
            ),
            (|h| h.timeout_secs = 0, "webhooks[0].timeout_secs"),
            (|h| h.name = Some("n".repeat(65)), "webhooks[0].name"),
        ];
        for (change, key) in cases {
            let mut settings = hook("a");
            change(&mut settings);
            let err = validate(&[settings]).unwrap_err();
            assert_eq!(err.0, key, "{}", err.1);
        }
        assert_eq!(
            validate(&[hook("a"), hook("a")]).unwrap_err().0,
            "webhooks[1].name"
        );
        let mut known = hook("a");
        known.events = vec!["job.completed".into(), "job.failed".into()];
        assert!(validate(&[known, hook("b")]).is_ok());
    }

    #[test]
    fn only_the_asked_for_events_are_kept() {
        let mut done = hook("done");
        done.events = vec!["job.completed".into()];
        let subscribers = subscribers(&[hook("all"), done]);
        assert_eq!(subscribers[0].events, None);
        assert_eq!(
            subscribers[1].events,
            Some(vec![HookEventKind::JobCompleted])
        );
    }
}
