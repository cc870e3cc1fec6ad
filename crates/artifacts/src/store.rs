//! [`Artifacts`]: generated media on an object store (a local directory or an S3-compatible
//! bucket), under content-addressed keys, with the URLs that make them loadable by browsers and
//! providers.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use nosyntask_domain::TaskError;
use nosyntask_engine::ports::ArtifactStore;
use nosyntask_providers::http::human_bytes;
use nosyntask_providers::media::sniff;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::signer::Signer;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload};

use crate::key::{ArtifactKey, FILES_PREFIX, keys_in};
use crate::signing::{SignatureError, UrlSigner, expiry};

/// Where artifacts are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// A local directory (one machine, or a shared volume).
    Local { dir: PathBuf },
    /// An S3-compatible bucket (AWS S3, MinIO, Garage, Cloudflare R2, Aliyun OSS in S3 mode).
    S3(S3Config),
}

/// An S3-compatible bucket. Credentials come from the environment (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, optionally `AWS_SESSION_TOKEN`, or the instance's role).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct S3Config {
    pub bucket: String,
    pub region: String,
    /// `http(s)://host:port` of a non-AWS service; absent: AWS for `region`.
    pub endpoint: Option<String>,
    /// Path-style requests (`endpoint/bucket/key`, what MinIO and Garage expect) instead of
    /// virtual-hosted ones (`bucket.endpoint/key`).
    pub path_style: bool,
    /// Keys are stored under this prefix (`nosyntask/ab/cd….png`); empty: at the bucket's root.
    pub prefix: String,
}

/// What URL a stored file is handed out at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UrlMode {
    /// `<base>/files/<key>`, readable by anyone who knows it; never expires.
    #[default]
    Public,
    /// `<base>/files/<key>?exp=…&sig=…`, signed by the server; `/files/` refuses anything else.
    Signed,
    /// A URL presigned by the object store (S3 SigV4, at most 7 days); `/files/` is private.
    Presigned,
}

/// The configuration of an [`Artifacts`] store.
#[derive(Debug, Clone)]
pub struct ArtifactConfig {
    pub backend: Backend,
    /// The base `/files/` URLs are made absolute with (a CDN, a public bucket, the server's
    /// public address); absent: the address a request reached the server at.
    pub public_base_url: Option<String>,
    pub urls: UrlMode,
    /// The HMAC secret of [`UrlMode::Signed`].
    pub signing_key: Option<Vec<u8>>,
    /// Lifetime of signed and presigned URLs.
    pub url_ttl: Duration,
    pub max_image_bytes: usize,
    pub max_video_bytes: usize,
}

impl ArtifactConfig {
    /// A local directory with public URLs and the default limits.
    pub fn local(dir: impl Into<PathBuf>) -> ArtifactConfig {
        ArtifactConfig {
            backend: Backend::Local { dir: dir.into() },
            public_base_url: None,
            urls: UrlMode::Public,
            signing_key: None,
            url_ttl: Duration::from_secs(24 * 3600),
            max_image_bytes: DEFAULT_MAX_IMAGE_BYTES,
            max_video_bytes: DEFAULT_MAX_VIDEO_BYTES,
        }
    }
}

/// Default largest image: 50 MiB.
pub const DEFAULT_MAX_IMAGE_BYTES: usize = 50 * 1024 * 1024;
/// Default largest video: 512 MiB.
pub const DEFAULT_MAX_VIDEO_BYTES: usize = 512 * 1024 * 1024;
/// The longest lifetime S3 accepts for a presigned URL (SigV4).
pub const MAX_PRESIGNED_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Errors of opening or reading the store.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("invalid artifact store configuration: {0}")]
    Config(String),
    #[error("the artifact store failed: {0}")]
    Store(#[from] object_store::Error),
    #[error(transparent)]
    Signature(#[from] SignatureError),
}

/// A stored file opened for serving.
pub struct Served {
    pub content_type: &'static str,
    /// Size of the whole object.
    pub size: u64,
    /// The bytes served (all, or the range asked for).
    pub range: std::ops::Range<u64>,
    pub body: futures::stream::BoxStream<'static, Result<Bytes, object_store::Error>>,
}

/// Generated media on an object store.
pub struct Artifacts {
    store: Arc<dyn ObjectStore>,
    /// The S3 client, for presigned URLs.
    s3: Option<Arc<AmazonS3>>,
    prefix: Option<ObjectPath>,
    /// The (canonical) directory of a local store: files must resolve inside it.
    local_root: Option<PathBuf>,
    urls: UrlMode,
    signer: Option<UrlSigner>,
    ttl: Duration,
    public_base_url: Option<String>,
    max_image_bytes: usize,
    max_video_bytes: usize,
    /// Presigned URLs by key, reused while they have most of their lifetime left.
    presigned: Mutex<HashMap<ArtifactKey, (String, u64)>>,
}

impl std::fmt::Debug for Artifacts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Artifacts")
            .field("store", &self.store.to_string())
            .field("urls", &self.urls)
            .finish_non_exhaustive()
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn trim_base(base: &str) -> String {
    base.trim().trim_end_matches('/').to_owned()
}

impl Artifacts {
    /// Opens the configured store (creating a local directory).
    pub fn open(config: ArtifactConfig) -> Result<Artifacts, ArtifactError> {
        if config.urls == UrlMode::Signed
            && config
                .signing_key
                .as_ref()
                .is_none_or(|k| k.len() < crate::signing::MIN_SIGNING_KEY_BYTES)
        {
            return Err(ArtifactError::Config(format!(
                "signed URLs need a signing key of at least {} bytes",
                crate::signing::MIN_SIGNING_KEY_BYTES
            )));
        }
        if config.url_ttl.is_zero() {
            return Err(ArtifactError::Config(
                "the URL lifetime must be positive".into(),
            ));
        }
        let (store, s3, prefix, local_root): (Arc<dyn ObjectStore>, _, _, _) = match &config.backend
        {
            Backend::Local { dir } => {
                std::fs::create_dir_all(dir).map_err(|err| {
                    ArtifactError::Config(format!("cannot create {}: {err}", dir.display()))
                })?;
                let root = dir.canonicalize().map_err(|err| {
                    ArtifactError::Config(format!("cannot open {}: {err}", dir.display()))
                })?;
                if config.urls == UrlMode::Presigned {
                    return Err(ArtifactError::Config(
                            "presigned URLs need the s3 backend (use signed URLs with a local directory)"
                                .into(),
                        ));
                }
                let fs = LocalFileSystem::new_with_prefix(&root)?;
                (Arc::new(fs), None, None, Some(root))
            }
            Backend::S3(s3) => {
                if s3.bucket.is_empty() {
                    return Err(ArtifactError::Config("artifacts.s3.bucket is empty".into()));
                }
                if config.urls == UrlMode::Presigned && config.url_ttl > MAX_PRESIGNED_TTL {
                    return Err(ArtifactError::Config(
                        "presigned URLs live at most 7 days (604800 s)".into(),
                    ));
                }
                let mut builder = AmazonS3Builder::from_env()
                    .with_bucket_name(&s3.bucket)
                    .with_region(&s3.region)
                    .with_virtual_hosted_style_request(!s3.path_style);
                if let Some(endpoint) = &s3.endpoint {
                    builder = builder
                        .with_endpoint(trim_base(endpoint))
                        .with_allow_http(endpoint.starts_with("http://"));
                }
                let client = Arc::new(builder.build()?);
                let prefix = s3.prefix.trim_matches('/');
                let prefix = (!prefix.is_empty()).then(|| ObjectPath::from(prefix));
                let store: Arc<dyn ObjectStore> = client.clone();
                (store, Some(client), prefix, None)
            }
        };
        Ok(Artifacts {
            store,
            s3,
            prefix,
            local_root,
            urls: config.urls,
            signer: config.signing_key.as_deref().map(UrlSigner::new),
            ttl: config.url_ttl,
            public_base_url: config.public_base_url.as_deref().map(trim_base),
            max_image_bytes: config.max_image_bytes,
            max_video_bytes: config.max_video_bytes,
            presigned: Mutex::new(HashMap::new()),
        })
    }

    pub fn url_mode(&self) -> UrlMode {
        self.urls
    }

    pub fn public_base_url(&self) -> Option<&str> {
        self.public_base_url.as_deref()
    }

    fn location(&self, key: &ArtifactKey) -> ObjectPath {
        match &self.prefix {
            Some(prefix) => prefix
                .clone()
                .join(key.as_str().split('/').next().unwrap_or("")),
            None => ObjectPath::from(key.as_str().split('/').next().unwrap_or("")),
        }
        .join(key.as_str().rsplit('/').next().unwrap_or(""))
    }

    /// Stores `bytes` (checked against the type they declare and sniffed from their first
    /// bytes) and returns their key; storing the same bytes again writes nothing.
    pub async fn store(&self, bytes: Vec<u8>, declared: &str) -> Result<ArtifactKey, TaskError> {
        let Some(actual) = sniff(&bytes) else {
            return Err(TaskError::permanent(format!(
                "artifact declared as {declared} is not an image or video this store keeps \
                 (unrecognised content)"
            )));
        };
        let declared_base = declared.split(';').next().unwrap_or("").trim();
        let generic = matches!(
            declared_base,
            "" | "application/octet-stream" | "binary/octet-stream"
        );
        // The bytes decide the type; a declaration only has to be of the same kind (providers
        // say image/jpg, video/mp4 for a QuickTime file, video/… for an animated GIF).
        let kind = |t: &str| {
            let t = t.to_ascii_lowercase();
            if t.starts_with("image/") {
                "image"
            } else if t.starts_with("video/") {
                "video"
            } else {
                "other"
            }
        };
        let same_kind = kind(declared_base) == kind(actual)
            || (kind(declared_base) == "video" && actual == "image/gif");
        if !generic && !same_kind {
            return Err(TaskError::permanent(format!(
                "artifact declared as {declared} is {actual}"
            )));
        }
        let limit = if actual.starts_with("video/") {
            self.max_video_bytes
        } else {
            self.max_image_bytes
        };
        if bytes.len() > limit {
            return Err(TaskError::permanent(format!(
                "artifact of {} is larger than the {} limit for {}",
                human_bytes(bytes.len()),
                human_bytes(limit),
                if actual.starts_with("video/") {
                    "videos"
                } else {
                    "images"
                }
            )));
        }
        let key = ArtifactKey::of(&bytes, actual).ok_or_else(|| {
            TaskError::permanent(format!("artifacts of type {actual} are not stored"))
        })?;
        let location = self.location(&key);
        let failed = |err: object_store::Error| {
            TaskError::retryable(format!("storing the artifact {key} failed: {err}"))
        };
        match self.store.head(&location).await {
            Ok(_) => return Ok(key),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(err) => return Err(failed(err)),
        }
        // Puts are atomic on every backend (the local one writes a temporary file and renames
        // it): readers never see a partial file, concurrent writers of the same bytes agree.
        self.store
            .put(&location, PutPayload::from(bytes))
            .await
            .map_err(failed)?;
        Ok(key)
    }

    /// The bytes behind `key`, checked against the key's checksum; `None` when absent.
    pub async fn read(&self, key: &ArtifactKey) -> Result<Option<Bytes>, TaskError> {
        let location = self.location(key);
        let bytes = match self.store.get(&location).await {
            Ok(result) => result.bytes().await,
            Err(err) => Err(err),
        };
        match bytes {
            Ok(bytes) => {
                let digest = crate::key::hex(&<sha2::Sha256 as sha2::Digest>::digest(&bytes));
                if digest != key.sha256() {
                    return Err(TaskError::permanent(format!(
                        "the stored artifact {key} does not match its checksum"
                    )));
                }
                Ok(Some(bytes))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(err) => Err(TaskError::retryable(format!(
                "reading the artifact {key} failed: {err}"
            ))),
        }
    }

    /// Opens `key` for serving, all of it or `range`; `None` when absent. A local file that is
    /// (or lies behind) a symbolic link pointing outside the store's directory is absent.
    pub async fn open_for_serving(
        &self,
        key: &ArtifactKey,
        range: Option<GetRange>,
    ) -> Result<Option<Served>, ArtifactError> {
        if let Some(root) = &self.local_root {
            let path = root.join(key.as_str());
            match tokio::fs::canonicalize(&path).await {
                Ok(real) if real.starts_with(root) => {}
                Ok(real) => {
                    tracing::warn!(key = %key, target = %real.display(), "refusing an artifact that links outside the store");
                    return Ok(None);
                }
                Err(_) => return Ok(None),
            }
        }
        let options = GetOptions {
            range,
            ..GetOptions::default()
        };
        match self.store.get_opts(&self.location(key), options).await {
            Ok(result) => Ok(Some(Served {
                content_type: key.content_type(),
                size: result.meta.size,
                range: result.range.clone(),
                body: result.into_stream(),
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// Checks a `/files/` request's query string: `Ok` when the mode is public or the signature
    /// is valid now.
    pub fn authorize(&self, key: &ArtifactKey, query: &str) -> Result<(), SignatureError> {
        match (self.urls, &self.signer) {
            (UrlMode::Public, _) => Ok(()),
            (_, Some(signer)) => signer.verify(key, query, now_secs()),
            // Presigned mode without a signing key: only the object store hands out URLs.
            (_, None) => Err(SignatureError::Missing),
        }
    }

    /// The URL that loads `key` now, for a reader who reached the server at `own_base`
    /// (`http://host:port`); `None` when there is no base to make it absolute with.
    pub async fn link(&self, key: &ArtifactKey, own_base: Option<&str>) -> Option<String> {
        if self.urls == UrlMode::Presigned {
            return self.presign(key).await;
        }
        let base = self.public_base_url.as_deref().or(own_base)?;
        Some(self.server_url(base, key))
    }

    fn server_url(&self, base: &str, key: &ArtifactKey) -> String {
        let path = key.path();
        match (&self.urls, &self.signer) {
            (UrlMode::Signed, Some(signer)) => {
                let exp = expiry(now_secs(), self.ttl.as_secs());
                format!("{base}{path}?{}", signer.query(key, exp))
            }
            _ => format!("{base}{path}"),
        }
    }

    async fn presign(&self, key: &ArtifactKey) -> Option<String> {
        let s3 = self.s3.as_ref()?;
        let now = now_secs();
        let ttl = self.ttl.as_secs();
        if let Some((url, until)) = self.lock_presigned().get(key)
            && now + ttl * 9 / 10 <= *until
        {
            return Some(url.clone());
        }
        match s3
            .signed_url(
                object_store::signer::Method::GET,
                &self.location(key),
                self.ttl,
            )
            .await
        {
            Ok(url) => {
                let url = url.to_string();
                let mut cache = self.lock_presigned();
                if cache.len() > 10_000 {
                    cache.clear();
                }
                cache.insert(key.clone(), (url.clone(), now + ttl));
                Some(url)
            }
            Err(err) => {
                tracing::warn!(key = %key, error = %err, "cannot presign an artifact URL");
                None
            }
        }
    }

    fn lock_presigned(&self) -> std::sync::MutexGuard<'_, HashMap<ArtifactKey, (String, u64)>> {
        self.presigned
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The URL a provider on the internet can fetch `key` at: presigned, or under the configured
    /// public base URL (signed in signed mode). `None` without a public address: the adapter
    /// then sends the bytes inline.
    pub async fn provider_url(&self, key: &ArtifactKey) -> Option<String> {
        if self.urls == UrlMode::Presigned {
            return self.presign(key).await;
        }
        let base = self.public_base_url.as_deref()?;
        Some(self.server_url(base, key))
    }

    /// Every stored key with when it was written.
    pub async fn list(&self) -> Result<Vec<(ArtifactKey, SystemTime)>, ArtifactError> {
        let mut stream = self.store.list(self.prefix.as_ref());
        let mut keys = Vec::new();
        while let Some(meta) = stream.next().await {
            let meta = meta?;
            let raw = meta.location.as_ref();
            let relative = match &self.prefix {
                Some(prefix) => raw
                    .strip_prefix(prefix.as_ref())
                    .map(|r| r.trim_start_matches('/'))
                    .unwrap_or(raw),
                None => raw,
            };
            // Anything else in the bucket (or a local temporary file) is not ours.
            if let Some(key) = ArtifactKey::parse(relative) {
                keys.push((key, SystemTime::from(meta.last_modified)));
            }
        }
        Ok(keys)
    }

    /// Deletes `key` (absent is fine).
    pub async fn delete(&self, key: &ArtifactKey) -> Result<(), ArtifactError> {
        match self.store.delete(&self.location(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    /// The key a reference names, in any URL form this store hands out (or an older one of
    /// another configuration: the key is the content's hash, so the bytes are the same).
    fn key_of_reference(reference: &str) -> Option<ArtifactKey> {
        if let Some(key) = ArtifactKey::from_path(reference) {
            return Some(key);
        }
        if reference.starts_with("http://") || reference.starts_with("https://") {
            let path = reference.split(['?', '#']).next().unwrap_or_default();
            return keys_in(path)
                .into_iter()
                .find(|key| path.ends_with(key.as_str()));
        }
        None
    }
}

#[async_trait]
impl ArtifactStore for Artifacts {
    async fn put(
        &self,
        bytes: Vec<u8>,
        content_type: &str,
        _name_hint: &str,
    ) -> Result<String, TaskError> {
        Ok(self.store(bytes, content_type).await?.path())
    }

    async fn get(&self, url: &str) -> Result<Option<(Vec<u8>, String)>, TaskError> {
        let Some(key) = Self::key_of_reference(url) else {
            return Ok(None);
        };
        Ok(self
            .read(&key)
            .await?
            .map(|bytes| (bytes.to_vec(), key.content_type().to_owned())))
    }

    async fn public_url(&self, url: &str) -> Option<String> {
        let key = Self::key_of_reference(url)?;
        // An absolute URL of some other server that merely looks like ours is left alone.
        if !url.starts_with(FILES_PREFIX) {
            let location = self.location(&key);
            self.store.head(&location).await.ok()?;
        }
        self.provider_url(&key).await
    }
}
