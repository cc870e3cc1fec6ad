//! Configuration: built-in defaults, then an optional TOML file, then environment overrides
//! `NOSYNTASK__SECTION__KEY` (and `JWT_SECRET` for `auth.jwt_secret`, as the NanoStory backend
//! reads it). Unknown keys and invalid values are errors that name the key.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use config::{Config, Environment, File, FileFormat, Map, Source, Value, ValueKind};
use serde::Deserialize;

pub use nosyntask_providers::ModelConfig;

/// Shortest accepted `auth.jwt_secret`, in bytes.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration: {0}")]
    Read(String),
    #[error("invalid configuration key `{key}`: {message}")]
    Invalid { key: String, message: String },
}

impl ConfigError {
    fn invalid(key: &str, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.to_owned(),
            message: message.into(),
        }
    }
}

/// A secret string: deserialized like a string, never printed by `Debug`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value; keep it out of logs.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// What a process does: serve the API, run workers, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum Role {
    /// HTTP API only (plus health and metrics).
    Api,
    /// Worker pool only; HTTP serves `/healthz`, `/readyz` and `/metrics`.
    Worker,
    /// Both.
    All,
}

impl Role {
    pub fn serves_api(self) -> bool {
        matches!(self, Role::Api | Role::All)
    }

    pub fn runs_workers(self) -> bool {
        matches!(self, Role::Worker | Role::All)
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum LogFormat {
    Pretty,
    Json,
}

impl TryFrom<String> for Role {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        match value.as_str() {
            "api" => Ok(Role::Api),
            "worker" => Ok(Role::Worker),
            "all" => Ok(Role::All),
            other => Err(format!("must be one of api, worker, all (got `{other}`)")),
        }
    }
}

impl TryFrom<String> for LogFormat {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        match value.as_str() {
            "pretty" => Ok(LogFormat::Pretty),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("must be pretty or json (got `{other}`)")),
        }
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub auth: AuthSettings,
    pub artifacts: ArtifactSettings,
    pub worker: WorkerSettings,
    pub limits: LimitSettings,
    pub retention: RetentionSettings,
    /// `[[models]]`; absent: the simulated default models.
    pub models: Option<Vec<ModelConfig>>,
    /// `[[webhooks]]`: endpoints that get the engine's events, signed (Standard Webhooks).
    pub webhooks: Vec<crate::webhooks::WebhookSettings>,
    /// `[nanostory]`: NanoStory mode.
    pub nanostory: NanostorySettings,
}

/// `[nanostory]`: NanoStory mode, on NanoStory's own MySQL database. Workflows started with an
/// id read the row it names, and results are written into NanoStory's tables in the transaction
/// that stores them (see `nosyntask_nanostory`). Run `nosyntask-server nanostory-upgrade` once
/// first: it moves NanoStory's own `workflow_jobs` and `generation_tasks` aside.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NanostorySettings {
    /// NanoStory's database (`mysql://…`). Set: NanoStory mode, and the engine's own tables live
    /// on this database too (so a result commits with NanoStory's rows); `database.url` then
    /// names the same database or is left out.
    pub database_url: Option<Secret>,
    /// The base of the media URLs written into NanoStory's columns (where this server's
    /// `/files/` is reached from NanoStory's pages); unset: `artifacts.public_base_url`.
    pub media_base_url: Option<String>,
}

impl NanostorySettings {
    pub fn enabled(&self) -> bool {
        self.database_url.is_some()
    }
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Address to listen on; port 0 picks a free port (the real one is printed).
    pub bind: String,
    pub role: Role,
    /// Largest accepted request body.
    pub body_limit_bytes: usize,
    /// Longest time a request body may take to arrive after its head (408 after it). The head
    /// itself has 5 s.
    pub body_read_timeout_secs: u64,
    /// Connections one client IP may hold open at once; the requests of any more are answered
    /// 429 and their connections closed. 0: unlimited. Behind a reverse proxy every client has
    /// the proxy's address: raise it (or set 0) and limit at the proxy.
    pub max_connections_per_ip: usize,
    /// HTTP worker threads; absent: one per CPU.
    pub http_workers: Option<usize>,
    /// How often an event stream re-reads its job.
    pub events_poll_ms: u64,
    /// Keep-alive comment interval of event streams.
    pub events_keepalive_secs: u64,
    pub log_format: LogFormat,
    /// `tracing` filter (`RUST_LOG` syntax); env `RUST_LOG` wins.
    pub log_level: String,
    /// Browser origins allowed to call the API from another origin (CORS), e.g.
    /// `https://app.example.com`; `*` allows any. Empty: no CORS headers.
    pub cors_allowed_origins: Vec<String>,
    /// Language of messages (`zh` or `en`) for requests whose `Accept-Language` names neither.
    pub default_language: crate::i18n::Lang,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            bind: "127.0.0.1:8080".to_owned(),
            role: Role::All,
            body_limit_bytes: 1024 * 1024,
            body_read_timeout_secs: crate::edge::DEFAULT_BODY_READ_TIMEOUT.as_secs(),
            max_connections_per_ip: 512,
            http_workers: None,
            events_poll_ms: 300,
            events_keepalive_secs: 15,
            log_format: LogFormat::Pretty,
            log_level: "info".to_owned(),
            cors_allowed_origins: Vec::new(),
            default_language: crate::i18n::Lang::En,
        }
    }
}

/// `[database]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// `sqlite://…`, `postgres://…` or `mysql://…`; may hold a password.
    pub url: Secret,
    /// Connections of the PostgreSQL/MySQL pool of this process.
    pub max_connections: u32,
    /// SQLite file databases: read connections beside the single writer.
    pub sqlite_read_connections: u32,
    /// How long a call waits for a free connection before answering 503.
    pub acquire_timeout_secs: u64,
    /// Apply pending migrations at start. With several processes on one database, turn it off
    /// and run `nosyntask-server migrate` once per upgrade instead.
    pub auto_migrate: bool,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            url: Secret::new("sqlite://data/nosyntask.db?mode=rwc"),
            max_connections: 10,
            sqlite_read_connections: 4,
            acquire_timeout_secs: 5,
            auto_migrate: true,
        }
    }
}

/// `[auth]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// HS256 secret of the NanoStory backend; absent: a development secret kept in
    /// `dev_secret_file` (created on first start).
    pub jwt_secret: Option<Secret>,
    pub dev_secret_file: PathBuf,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            jwt_secret: None,
            dev_secret_file: PathBuf::from("data/jwt-secret"),
        }
    }
}

/// `[artifacts]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArtifactSettings {
    /// Where generated media are kept: `local` (the directory `dir`) or `s3` (`[artifacts.s3]`).
    pub backend: ArtifactBackend,
    /// Local directory of generated media (backend `local`), served under `/files/`.
    pub dir: PathBuf,
    pub s3: S3Settings,
    /// The base that makes media URLs absolute (`https://media.example.com`: a CDN, a public
    /// bucket holding the keys under `files/`, or the server's public address); providers
    /// fetch reference images from it. Unset: job reads use the address the request reached
    /// the server at, and reference images are sent to providers inline.
    pub public_base_url: Option<String>,
    /// `public` (plain URLs, no expiry), `signed` (`/files/KEY?exp=…&sig=…`, HMAC with
    /// `signing_key`) or `presigned` (URLs presigned by the S3 store, at most 7 days).
    pub urls: UrlModeSetting,
    /// Secret of signed URLs (at least 32 bytes; env `NOSYNTASK__ARTIFACTS__SIGNING_KEY`).
    pub signing_key: Option<Secret>,
    /// Lifetime of signed and presigned URLs.
    pub url_ttl_secs: u64,
    /// Largest stored image and video.
    pub max_image_bytes: usize,
    pub max_video_bytes: usize,
    /// Files younger than this are never deleted by retention (a running step may have stored
    /// one its task does not name yet).
    pub retention_grace_secs: u64,
}

impl Default for ArtifactSettings {
    fn default() -> Self {
        ArtifactSettings {
            backend: ArtifactBackend::Local,
            dir: PathBuf::from("data/artifacts"),
            s3: S3Settings::default(),
            public_base_url: None,
            urls: UrlModeSetting::Public,
            signing_key: None,
            url_ttl_secs: 24 * 3600,
            max_image_bytes: nosyntask_artifacts::DEFAULT_MAX_IMAGE_BYTES,
            max_video_bytes: nosyntask_artifacts::DEFAULT_MAX_VIDEO_BYTES,
            retention_grace_secs: 24 * 3600,
        }
    }
}

/// `[artifacts] backend`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactBackend {
    Local,
    S3,
}

/// `[artifacts] urls`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UrlModeSetting {
    Public,
    Signed,
    Presigned,
}

/// `[artifacts.s3]`: an S3-compatible bucket. Credentials come from the environment
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, or an instance role).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Settings {
    pub bucket: String,
    pub region: String,
    /// `http(s)://host:port` of MinIO, Garage, R2, OSS…; unset: AWS.
    pub endpoint: Option<String>,
    /// `endpoint/bucket/key` requests (MinIO, Garage) instead of `bucket.endpoint/key`.
    pub path_style: bool,
    /// Keys are stored under this prefix.
    pub prefix: String,
}

impl Default for S3Settings {
    fn default() -> Self {
        S3Settings {
            bucket: String::new(),
            region: "us-east-1".to_owned(),
            endpoint: None,
            path_style: false,
            prefix: String::new(),
        }
    }
}

impl ArtifactSettings {
    /// The store's configuration.
    pub fn store_config(&self) -> nosyntask_artifacts::ArtifactConfig {
        use nosyntask_artifacts::{ArtifactConfig, Backend, S3Config, UrlMode};
        let backend = match self.backend {
            ArtifactBackend::Local => Backend::Local {
                dir: self.dir.clone(),
            },
            ArtifactBackend::S3 => Backend::S3(S3Config {
                bucket: self.s3.bucket.clone(),
                region: self.s3.region.clone(),
                endpoint: self.s3.endpoint.clone(),
                path_style: self.s3.path_style,
                prefix: self.s3.prefix.clone(),
            }),
        };
        ArtifactConfig {
            backend,
            public_base_url: self.public_base_url.clone(),
            urls: match self.urls {
                UrlModeSetting::Public => UrlMode::Public,
                UrlModeSetting::Signed => UrlMode::Signed,
                UrlModeSetting::Presigned => UrlMode::Presigned,
            },
            signing_key: self
                .signing_key
                .as_ref()
                .map(|k| k.expose().as_bytes().to_vec()),
            url_ttl: Duration::from_secs(self.url_ttl_secs),
            max_image_bytes: self.max_image_bytes,
            max_video_bytes: self.max_video_bytes,
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(base) = &self.public_base_url
            && !(base.starts_with("http://") || base.starts_with("https://"))
        {
            return Err(ConfigError::invalid(
                "artifacts.public_base_url",
                format!("must be an http(s) URL, got {base:?}"),
            ));
        }
        positive("artifacts.url_ttl_secs", self.url_ttl_secs)?;
        positive("artifacts.max_image_bytes", self.max_image_bytes as u64)?;
        positive("artifacts.max_video_bytes", self.max_video_bytes as u64)?;
        if self.urls == UrlModeSetting::Signed
            && self.signing_key.as_ref().is_none_or(|k| {
                k.expose().len() < nosyntask_artifacts::signing::MIN_SIGNING_KEY_BYTES
            })
        {
            return Err(ConfigError::invalid(
                "artifacts.signing_key",
                format!(
                    "urls = \"signed\" needs a signing key of at least {} bytes",
                    nosyntask_artifacts::signing::MIN_SIGNING_KEY_BYTES
                ),
            ));
        }
        if self.urls == UrlModeSetting::Presigned {
            if self.backend != ArtifactBackend::S3 {
                return Err(ConfigError::invalid(
                    "artifacts.urls",
                    "presigned URLs need backend = \"s3\" (use signed with a local directory)",
                ));
            }
            if self.url_ttl_secs > nosyntask_artifacts::MAX_PRESIGNED_TTL.as_secs() {
                return Err(ConfigError::invalid(
                    "artifacts.url_ttl_secs",
                    "presigned URLs live at most 604800 s (7 days)",
                ));
            }
        }
        if self.backend == ArtifactBackend::S3 && self.s3.bucket.trim().is_empty() {
            return Err(ConfigError::invalid(
                "artifacts.s3.bucket",
                "backend = \"s3\" needs a bucket",
            ));
        }
        if let Some(endpoint) = &self.s3.endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            return Err(ConfigError::invalid(
                "artifacts.s3.endpoint",
                format!("must be an http(s) URL, got {endpoint:?}"),
            ));
        }
        Ok(())
    }
}

/// `[worker]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerSettings {
    /// Step handlers running at once in this process.
    pub concurrency: usize,
    pub lease_ttl_secs: u64,
    pub heartbeat_interval_secs: u64,
    pub poll_interval_ms: u64,
    pub progress_interval_ms: u64,
    /// Most tasks one progress flush writes (the longest unwritten first).
    pub progress_writes_per_flush: usize,
    pub cancel_check_interval_ms: u64,
    pub sweep_interval_secs: u64,
    pub shutdown_grace_secs: u64,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            concurrency: 32,
            lease_ttl_secs: 30,
            heartbeat_interval_secs: 10,
            poll_interval_ms: 1000,
            progress_interval_ms: 1000,
            progress_writes_per_flush: 1000,
            cancel_check_interval_ms: 1000,
            sweep_interval_secs: 5,
            shutdown_grace_secs: 10,
        }
    }
}

/// `[limits]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    /// Pending/running jobs one user may have; 0 means unlimited.
    pub max_active_jobs_per_user: u64,
    /// `Retry-After` sent with a 429.
    pub quota_retry_after_secs: u64,
    /// Fair share between users: each active job a user already has moves a new job of theirs
    /// this many seconds back in the claim order (0: first come, first served).
    pub fair_share_quantum_secs: u64,
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            max_active_jobs_per_user: 20,
            quota_retry_after_secs: 5,
            fair_share_quantum_secs: 60,
        }
    }
}

/// `[retention]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSettings {
    /// Whether this process prunes old terminal jobs (worker roles only).
    pub enabled: bool,
    pub consumed_days: u32,
    pub unconsumed_days: u32,
    pub interval_secs: u64,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings {
            enabled: true,
            consumed_days: 7,
            unconsumed_days: 30,
            interval_secs: 3600,
        }
    }
}

/// `JWT_SECRET` from the environment, as `auth.jwt_secret`.
#[derive(Debug, Clone)]
struct JwtSecretEnv(Option<String>);

impl Source for JwtSecretEnv {
    fn clone_into_box(&self) -> Box<dyn Source + Send + Sync> {
        Box::new(self.clone())
    }

    fn collect(&self) -> Result<Map<String, Value>, config::ConfigError> {
        let mut map = Map::new();
        if let Some(secret) = self.0.as_ref().filter(|s| !s.is_empty()) {
            let origin = "env JWT_SECRET".to_owned();
            map.insert(
                "auth.jwt_secret".to_owned(),
                Value::new(Some(&origin), ValueKind::String(secret.clone())),
            );
        }
        Ok(map)
    }
}

impl Settings {
    /// Loads the configuration from the process environment and the optional file.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        Self::load_from(file, None, std::env::var("JWT_SECRET").ok())
    }

    /// Loads with an explicit environment (`NOSYNTASK__…` variables) instead of the process's;
    /// `None` reads the process environment.
    pub fn load_from(
        file: Option<&Path>,
        env: Option<Map<String, String>>,
        jwt_secret_env: Option<String>,
    ) -> Result<Settings, ConfigError> {
        let mut builder = Config::builder();
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError::Read(format!(
                    "configuration file {} does not exist",
                    path.display()
                )));
            }
            builder = builder.add_source(File::from(path).format(FileFormat::Toml));
        }
        let config = builder
            .add_source(JwtSecretEnv(jwt_secret_env))
            .add_source(
                Environment::with_prefix("NOSYNTASK")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true)
                    .list_separator(",")
                    .with_list_parse_key("server.cors_allowed_origins")
                    .source(env),
            )
            .build()
            .map_err(|err| ConfigError::Read(err.to_string()))?;
        let mut settings: Settings = serde_path_to_error::deserialize(config).map_err(|err| {
            let key = err.path().to_string();
            ConfigError::invalid(&key, strip_key_suffix(&err.inner().to_string()))
        })?;
        settings.use_nanostory_database()?;
        settings.validate()?;
        Ok(settings)
    }

    /// In NanoStory mode the engine's database is NanoStory's.
    fn use_nanostory_database(&mut self) -> Result<(), ConfigError> {
        let Some(url) = &self.nanostory.database_url else {
            return Ok(());
        };
        let given = self.database.url.expose();
        if given != DatabaseSettings::default().url.expose() && given != url.expose() {
            return Err(ConfigError::invalid(
                "nanostory.database_url",
                "names another database than database.url: NanoStory mode keeps the engine's \
                 tables on NanoStory's database (results commit with NanoStory's rows); set only \
                 one of them",
            ));
        }
        self.database.url = url.clone();
        Ok(())
    }

    /// The base of the media URLs NanoStory mode writes.
    pub fn nanostory_media_base(&self) -> Option<&str> {
        self.nanostory
            .media_base_url
            .as_deref()
            .or(self.artifacts.public_base_url.as_deref())
    }

    /// NanoStory mode runs on MySQL, and writes URLs that load from NanoStory's pages for as
    /// long as NanoStory keeps them.
    fn validate_nanostory(&self) -> Result<(), ConfigError> {
        if !self.nanostory.enabled() {
            return Ok(());
        }
        let url = self.database.url.expose();
        if !(url.starts_with("mysql:") || url.starts_with("mariadb:")) {
            return Err(ConfigError::invalid(
                "nanostory.database_url",
                "must be NanoStory's MySQL database (mysql://…)",
            ));
        }
        match self.nanostory_media_base() {
            None => {
                return Err(ConfigError::invalid(
                    "nanostory.media_base_url",
                    "is needed (or artifacts.public_base_url): NanoStory's pages load the media \
                     URLs written into its tables as they are, from another origin",
                ));
            }
            Some(base) if !(base.starts_with("http://") || base.starts_with("https://")) => {
                return Err(ConfigError::invalid(
                    "nanostory.media_base_url",
                    format!("must be an http(s) URL, got {base:?}"),
                ));
            }
            Some(_) => {}
        }
        if self.artifacts.urls != UrlModeSetting::Public {
            return Err(ConfigError::invalid(
                "artifacts.urls",
                "must be \"public\" in NanoStory mode: the URLs written into NanoStory's tables \
                 are kept there, and signed or presigned ones expire",
            ));
        }
        Ok(())
    }

    /// Checks what types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.server.bind_addr()?;
        crate::webhooks::validate(&self.webhooks)
            .map_err(|(key, message)| ConfigError::invalid(&key, message))?;
        if self.server.body_limit_bytes < 1024 {
            return Err(ConfigError::invalid(
                "server.body_limit_bytes",
                "must be at least 1024",
            ));
        }
        positive(
            "server.body_read_timeout_secs",
            self.server.body_read_timeout_secs,
        )?;
        if self.server.http_workers == Some(0) {
            return Err(ConfigError::invalid(
                "server.http_workers",
                "must be at least 1",
            ));
        }
        positive("server.events_poll_ms", self.server.events_poll_ms)?;
        positive(
            "server.events_keepalive_secs",
            self.server.events_keepalive_secs,
        )?;
        for origin in &self.server.cors_allowed_origins {
            check_origin(origin)?;
        }
        tracing_subscriber::EnvFilter::try_new(&self.server.log_level)
            .map_err(|err| ConfigError::invalid("server.log_level", err.to_string()))?;
        let url = self.database.url.expose();
        if !["sqlite:", "postgres:", "postgresql:", "mysql:", "mariadb:"]
            .iter()
            .any(|scheme| url.starts_with(scheme))
        {
            return Err(ConfigError::invalid(
                "database.url",
                "must start with sqlite:, postgres:// or mysql://",
            ));
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError::invalid(
                "database.max_connections",
                "must be at least 1",
            ));
        }
        if self.database.sqlite_read_connections == 0 {
            return Err(ConfigError::invalid(
                "database.sqlite_read_connections",
                "must be at least 1",
            ));
        }
        positive(
            "database.acquire_timeout_secs",
            self.database.acquire_timeout_secs,
        )?;
        // HS256 keys shorter than the hash (32 bytes) are guessable offline from one token
        // (RFC 7518 section 3.2 requires at least 32).
        if self
            .auth
            .jwt_secret
            .as_ref()
            .is_some_and(|s| s.expose().len() < MIN_JWT_SECRET_BYTES)
        {
            return Err(ConfigError::invalid(
                "auth.jwt_secret",
                format!(
                    "must be at least {MIN_JWT_SECRET_BYTES} bytes for HS256 \
                     (set in the file, by NOSYNTASK__AUTH__JWT_SECRET or by env JWT_SECRET)"
                ),
            ));
        }
        self.artifacts.validate()?;
        self.validate_nanostory()?;
        let w = &self.worker;
        if w.concurrency == 0 {
            return Err(ConfigError::invalid(
                "worker.concurrency",
                "must be at least 1",
            ));
        }
        positive("worker.lease_ttl_secs", w.lease_ttl_secs)?;
        positive("worker.heartbeat_interval_secs", w.heartbeat_interval_secs)?;
        if w.heartbeat_interval_secs >= w.lease_ttl_secs {
            return Err(ConfigError::invalid(
                "worker.heartbeat_interval_secs",
                "must be shorter than worker.lease_ttl_secs",
            ));
        }
        positive("worker.poll_interval_ms", w.poll_interval_ms)?;
        positive("worker.progress_interval_ms", w.progress_interval_ms)?;
        positive(
            "worker.progress_writes_per_flush",
            w.progress_writes_per_flush as u64,
        )?;
        positive(
            "worker.cancel_check_interval_ms",
            w.cancel_check_interval_ms,
        )?;
        positive("worker.sweep_interval_secs", w.sweep_interval_secs)?;
        let r = &self.retention;
        positive("retention.consumed_days", u64::from(r.consumed_days))?;
        positive("retention.unconsumed_days", u64::from(r.unconsumed_days))?;
        positive("retention.interval_secs", r.interval_secs)?;
        if let Some(models) = &self.models {
            if models.is_empty() {
                return Err(ConfigError::invalid(
                    "models",
                    "needs at least one [[models]] entry (leave it out for the simulated models)",
                ));
            }
            nosyntask_providers::validate_models(models)
                .map_err(|err| ConfigError::invalid("models", err.to_string()))?;
        }
        Ok(())
    }
}

impl ServerSettings {
    /// The listen address; host names are resolved.
    pub fn bind_addr(&self) -> Result<SocketAddr, ConfigError> {
        if let Ok(addr) = self.bind.parse::<SocketAddr>() {
            return Ok(addr);
        }
        self.bind
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| {
                ConfigError::invalid(
                    "server.bind",
                    format!("`{}` is not a host:port address", self.bind),
                )
            })
    }
}

impl WorkerSettings {
    pub fn lease_ttl(&self) -> Duration {
        Duration::from_secs(self.lease_ttl_secs)
    }
}

/// An origin is `scheme://host[:port]` (no path), or `*`.
fn check_origin(origin: &str) -> Result<(), ConfigError> {
    if origin == "*" {
        return Ok(());
    }
    let valid = origin
        .parse::<actix_web::http::Uri>()
        .ok()
        .and_then(|uri| {
            let scheme = uri.scheme_str()?;
            let authority = uri.authority()?;
            ((scheme == "http" || scheme == "https") && origin == format!("{scheme}://{authority}"))
                .then_some(())
        })
        .is_some();
    if valid {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            "server.cors_allowed_origins",
            format!("`{origin}` is not an origin like https://app.example.com (or *)"),
        ))
    }
}

fn positive(key: &str, value: u64) -> Result<(), ConfigError> {
    if value == 0 {
        Err(ConfigError::invalid(key, "must be greater than 0"))
    } else {
        Ok(())
    }
}

// The config crate appends " for key `…`" itself for some errors; the path is already named.
fn strip_key_suffix(message: &str) -> String {
    match message.find(" for key `") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn env(pairs: &[(&str, &str)]) -> Option<Map<String, String>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        file
    }

    #[test]
    fn defaults_need_no_file() {
        let settings = Settings::load_from(None, env(&[]), None).unwrap();
        assert_eq!(settings.server.bind, "127.0.0.1:8080");
        assert_eq!(settings.server.role, Role::All);
        assert_eq!(settings.server.body_limit_bytes, 1024 * 1024);
        assert_eq!(
            settings.database.url.expose(),
            "sqlite://data/nosyntask.db?mode=rwc"
        );
        assert_eq!(settings.limits.max_active_jobs_per_user, 20);
        assert_eq!(settings.retention.consumed_days, 7);
        assert_eq!(settings.retention.unconsumed_days, 30);
        assert!(settings.models.is_none());
        assert!(settings.auth.jwt_secret.is_none());
    }

    #[test]
    fn env_overrides_file_and_jwt_secret_env_is_read() {
        let f = file(
            "[server]\nbind = \"0.0.0.0:9000\"\nrole = \"api\"\n[limits]\nmax_active_jobs_per_user = 3\n",
        );
        let settings = Settings::load_from(
            Some(f.path()),
            env(&[
                ("NOSYNTASK__SERVER__BIND", "127.0.0.1:0"),
                ("NOSYNTASK__DATABASE__URL", "postgres://u:p@h/db"),
            ]),
            Some("from-the-environment-0123456789abcdef".to_owned()),
        )
        .unwrap();
        assert_eq!(settings.server.bind, "127.0.0.1:0");
        assert_eq!(settings.server.role, Role::Api);
        assert_eq!(settings.limits.max_active_jobs_per_user, 3);
        assert_eq!(settings.database.url.expose(), "postgres://u:p@h/db");
        assert_eq!(
            settings.auth.jwt_secret.as_ref().map(Secret::expose),
            Some("from-the-environment-0123456789abcdef")
        );
    }

    #[test]
    fn cors_origins_from_file_or_env_list() {
        let settings = Settings::load_from(
            None,
            env(&[(
                "NOSYNTASK__SERVER__CORS_ALLOWED_ORIGINS",
                "https://a.example.com,http://localhost:5173",
            )]),
            None,
        )
        .unwrap();
        assert_eq!(
            settings.server.cors_allowed_origins,
            ["https://a.example.com", "http://localhost:5173"]
        );
        for bad in [
            "a.example.com",
            "https://a.example.com/",
            "ftp://x",
            "https://x/app",
        ] {
            let f = file(&format!("[server]\ncors_allowed_origins = [\"{bad}\"]\n"));
            let err = Settings::load_from(Some(f.path()), env(&[]), None)
                .unwrap_err()
                .to_string();
            assert!(err.contains("server.cors_allowed_origins"), "{bad}: {err}");
        }
    }

    #[test]
    fn nosyntask_env_beats_jwt_secret_env() {
        let settings = Settings::load_from(
            None,
            env(&[(
                "NOSYNTASK__AUTH__JWT_SECRET",
                "explicit-secret-0123456789abcdefghijk",
            )]),
            Some("generic-secret-0123456789abcdefghijkl".to_owned()),
        )
        .unwrap();
        assert_eq!(
            settings.auth.jwt_secret.map(|s| s.expose().to_owned()),
            Some("explicit-secret-0123456789abcdefghijk".to_owned())
        );
    }

    #[test]
    fn unknown_keys_are_named() {
        let f = file("[server]\nbindd = \"x\"\n");
        let err = Settings::load_from(Some(f.path()), env(&[]), None).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("bindd"), "{message}");

        let err = Settings::load_from(None, env(&[("NOSYNTASK__NOPE__X", "1")]), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("nope"), "{err}");
    }

    #[test]
    fn invalid_values_are_named() {
        let cases = [
            ("[server]\nrole = \"boss\"\n", "server.role"),
            ("[server]\nbind = \"not an address\"\n", "server.bind"),
            (
                "[limits]\nmax_active_jobs_per_user = \"many\"\n",
                "limits.max_active_jobs_per_user",
            ),
            ("[worker]\nconcurrency = 0\n", "worker.concurrency"),
            ("[database]\nurl = \"redis://x\"\n", "database.url"),
            (
                "[artifacts]\npublic_base_url = \"media.example.com\"\n",
                "artifacts.public_base_url",
            ),
            (
                "[server]\nbody_limit_bytes = -1\n",
                "server.body_limit_bytes",
            ),
            (
                "[server]\nbody_read_timeout_secs = 0\n",
                "server.body_read_timeout_secs",
            ),
            ("[auth]\njwt_secret = \"12345678\"\n", "auth.jwt_secret"),
            (
                "[artifacts]\nurls = \"signed\"\nsigning_key = \"short\"\n",
                "artifacts.signing_key",
            ),
            ("[artifacts]\nurls = \"presigned\"\n", "artifacts.urls"),
            ("[artifacts]\nbackend = \"s3\"\n", "artifacts.s3.bucket"),
            ("[artifacts]\nbackend = \"ftp\"\n", "artifacts.backend"),
            (
                "[artifacts]\nbackend = \"s3\"\nurls = \"presigned\"\nurl_ttl_secs = 604801\n[artifacts.s3]\nbucket = \"b\"\n",
                "artifacts.url_ttl_secs",
            ),
            (
                "[nanostory]\ndatabase_url = \"mysql://root@h/nanostory\"\n",
                "nanostory.media_base_url",
            ),
            (
                "[nanostory]\ndatabase_url = \"postgres://h/db\"\nmedia_base_url = \"https://m\"\n",
                "nanostory.database_url",
            ),
            (
                "[database]\nurl = \"mysql://root@h/engine\"\n[nanostory]\ndatabase_url = \"mysql://root@h/nanostory\"\nmedia_base_url = \"https://m\"\n",
                "nanostory.database_url",
            ),
            (
                "[nanostory]\ndatabase_url = \"mysql://root@h/n\"\nmedia_base_url = \"m.example\"\n",
                "nanostory.media_base_url",
            ),
            (
                "[artifacts]\nurls = \"signed\"\nsigning_key = \"a-signing-key-of-at-least-32-bytes!!\"\n[nanostory]\ndatabase_url = \"mysql://root@h/n\"\nmedia_base_url = \"https://m\"\n",
                "artifacts.urls",
            ),
        ];
        for (text, key) in cases {
            let f = file(text);
            let err = Settings::load_from(Some(f.path()), env(&[]), None)
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
    }

    /// The `[artifacts]` example of docs/operations.md ("S3, MinIO, Garage, R2, OSS") loads and
    /// opens an S3 store.
    #[test]
    fn the_documented_s3_configuration_loads() {
        let doc = include_str!("../../../docs/operations.md");
        let section = &doc[doc.find("### S3, MinIO, Garage, R2, OSS").unwrap()..];
        let start = section.find("```toml\n").unwrap() + "```toml\n".len();
        let example = &section[start..start + section[start..].find("```").unwrap()];
        let f = file(example);
        let settings = Settings::load_from(
            Some(f.path()),
            env(&[(
                "NOSYNTASK__ARTIFACTS__SIGNING_KEY",
                "a-signing-key-of-at-least-32-bytes!!",
            )]),
            None,
        )
        .unwrap();
        let a = &settings.artifacts;
        assert_eq!(a.backend, ArtifactBackend::S3);
        assert_eq!(a.urls, UrlModeSetting::Signed);
        assert_eq!(a.s3.bucket, "nanostory-media");
        assert!(a.s3.path_style);
        let store = nosyntask_artifacts::Artifacts::open(a.store_config()).unwrap();
        assert_eq!(store.public_base_url(), Some("https://api.example.com"));
        // Without the signing key the same file is refused, naming the key.
        let err = Settings::load_from(Some(f.path()), env(&[]), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("artifacts.signing_key"), "{err}");
    }

    /// `[nanostory] database_url` is the engine's database too; the media base falls back to
    /// the artifacts' public base.
    #[test]
    fn nanostory_mode_runs_on_nanostorys_database() {
        let f = file(
            "[artifacts]\npublic_base_url = \"https://api.example.com\"\n\
             [nanostory]\ndatabase_url = \"mysql://root@db/nanostory\"\n",
        );
        let settings = Settings::load_from(Some(f.path()), env(&[]), None).unwrap();
        assert!(settings.nanostory.enabled());
        assert_eq!(settings.database.url.expose(), "mysql://root@db/nanostory");
        assert_eq!(
            settings.nanostory_media_base(),
            Some("https://api.example.com")
        );
        let off = Settings::load_from(None, env(&[]), None).unwrap();
        assert!(!off.nanostory.enabled());
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let settings = Settings::load_from(
            None,
            env(&[("NOSYNTASK__DATABASE__URL", "postgres://u:hunter2@h/db")]),
            Some("super-secret-value-0123456789abcdefgh".to_owned()),
        )
        .unwrap();
        let debug = format!("{settings:?}");
        assert!(
            !debug.contains("super-secret-value-0123456789abcdefgh"),
            "{debug}"
        );
        assert!(!debug.contains("hunter2"), "{debug}");
    }
}
