//! The local artifact store: generated media are written once, content-addressed
//! (`<dir>/ab/cdef….png` named by their SHA-256), and served by the server under `/files/`.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use nosyntask_domain::TaskError;
use nosyntask_engine::ports::ArtifactStore;
use sha2::{Digest, Sha256};

use crate::http::human_bytes;
use crate::media::sniff;

/// Default largest artifact: 512 MiB.
pub const DEFAULT_MAX_ARTIFACT_BYTES: usize = 512 * 1024 * 1024;

/// Content types the artifact stores accept (media only: never HTML or scripts), with the
/// extension files get.
pub const MEDIA_TYPES: &[(&str, &str)] = &[
    ("image/png", "png"),
    ("image/jpeg", "jpg"),
    ("image/gif", "gif"),
    ("image/webp", "webp"),
    ("video/mp4", "mp4"),
    ("video/webm", "webm"),
    ("video/quicktime", "mov"),
];

/// The extension of a content type the store accepts.
pub fn extension_for(content_type: &str) -> Option<&'static str> {
    let base = content_type.split(';').next().unwrap_or("").trim();
    MEDIA_TYPES
        .iter()
        .find(|(t, _)| t.eq_ignore_ascii_case(base))
        .map(|(_, ext)| *ext)
}

/// The content type of a stored file name (for serving).
pub fn content_type_for_path(path: &Path) -> Option<&'static str> {
    let ext = path.extension()?.to_str()?;
    MEDIA_TYPES.iter().find(|(_, e)| *e == ext).map(|(t, _)| *t)
}

/// Artifacts in a local directory.
#[derive(Debug, Clone)]
pub struct LocalArtifacts {
    dir: PathBuf,
    public_prefix: String,
    max_bytes: usize,
    /// Where the server is reachable from the internet (`https://media.example.com`), if known.
    public_base_url: Option<String>,
}

impl LocalArtifacts {
    /// Files go to `dir`; URLs start with `public_prefix` (e.g. `/files`).
    pub fn new(dir: impl Into<PathBuf>, public_prefix: &str) -> Self {
        LocalArtifacts {
            dir: dir.into(),
            public_prefix: public_prefix.trim_end_matches('/').to_owned(),
            max_bytes: DEFAULT_MAX_ARTIFACT_BYTES,
            public_base_url: None,
        }
    }

    /// Sets the absolute URL the server's `/files/` paths are reachable at from the internet,
    /// so providers can fetch reference images instead of receiving them inline.
    pub fn with_public_base_url(mut self, base: Option<&str>) -> Self {
        self.public_base_url = base
            .map(|b| b.trim().trim_end_matches('/').to_owned())
            .filter(|b| b.starts_with("http://") || b.starts_with("https://"));
        self
    }

    /// Sets the largest artifact accepted.
    pub fn with_max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn public_prefix(&self) -> &str {
        &self.public_prefix
    }

    /// The file behind a public URL path, if it is one of this store's (no `..` escapes).
    pub fn resolve(&self, url_path: &str) -> Option<PathBuf> {
        let rest = url_path
            .strip_prefix(&self.public_prefix)?
            .strip_prefix('/')?;
        let (shard, name) = rest.split_once('/')?;
        let (stem, ext) = name.split_once('.')?;
        let hex = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_hexdigit());
        let known_ext = MEDIA_TYPES.iter().any(|(_, e)| *e == ext);
        if shard.len() != 2 || !hex(shard) || !hex(stem) || !known_ext {
            return None;
        }
        Some(self.dir.join(shard).join(name))
    }
}

/// `bytes` in lowercase hexadecimal (artifact keys, signatures).
pub fn lowercase_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0x0f) as usize] as char);
    }
    out
}

#[async_trait]
impl ArtifactStore for LocalArtifacts {
    async fn put(
        &self,
        bytes: Vec<u8>,
        content_type: &str,
        _name_hint: &str,
    ) -> Result<String, TaskError> {
        if bytes.len() > self.max_bytes {
            return Err(TaskError::permanent(format!(
                "artifact of {} is larger than the {} limit",
                human_bytes(bytes.len()),
                human_bytes(self.max_bytes)
            )));
        }
        let ext = extension_for(content_type).ok_or_else(|| {
            TaskError::permanent(format!("artifacts of type {content_type} are not stored"))
        })?;
        if let Some(actual) = sniff(&bytes)
            && extension_for(actual) != Some(ext)
        {
            return Err(TaskError::permanent(format!(
                "artifact declared as {content_type} is {actual}"
            )));
        }
        let digest = lowercase_hex(&Sha256::digest(&bytes));
        let (shard, rest) = digest.split_at(2);
        let name = format!("{rest}.{ext}");
        let shard_dir = self.dir.join(shard);
        let path = shard_dir.join(&name);
        let url = format!("{}/{shard}/{name}", self.public_prefix);
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Ok(url);
        }
        let io_error = |err: std::io::Error| {
            TaskError::retryable(format!("writing the artifact failed: {err}"))
        };
        tokio::fs::create_dir_all(&shard_dir)
            .await
            .map_err(io_error)?;
        // Write to a unique temporary name, then rename: readers never see a partial file and
        // concurrent writers of the same content do not interfere.
        let tmp = shard_dir.join(format!(".{rest}.{}.tmp", rand::random::<u64>()));
        if let Err(err) = tokio::fs::write(&tmp, &bytes).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(io_error(err));
        }
        if let Err(err) = tokio::fs::rename(&tmp, &path).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(io_error(err));
        }
        Ok(url)
    }

    async fn get(&self, url: &str) -> Result<Option<(Vec<u8>, String)>, TaskError> {
        let Some(path) = self.resolve(url) else {
            return Ok(None);
        };
        let content_type = content_type_for_path(&path).unwrap_or("application/octet-stream");
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Some((bytes, content_type.to_owned()))),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(TaskError::retryable(format!(
                "reading the artifact {url} failed: {err}"
            ))),
        }
    }

    async fn public_url(&self, url: &str) -> Option<String> {
        let base = self.public_base_url.as_deref()?;
        self.resolve(url)?;
        Some(format!("{base}{url}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn files_are_content_addressed_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalArtifacts::new(dir.path(), "/files/").with_max_bytes(64);
        let png = b"\x89PNG\r\n\x1a\nimage-bytes".to_vec();
        let url = store.put(png.clone(), "image/png", "front").await.unwrap();
        assert!(url.starts_with("/files/") && url.ends_with(".png"), "{url}");
        assert_eq!(
            store.put(png.clone(), "image/png", "again").await.unwrap(),
            url
        );
        let path = store.resolve(&url).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), png);
        assert_eq!(content_type_for_path(&path), Some("image/png"));

        assert!(store.put(png.clone(), "text/html", "x").await.is_err());
        assert!(
            store.put(png, "video/mp4", "x").await.is_err(),
            "declared type must match"
        );
        assert!(store.put(vec![0; 65], "image/png", "x").await.is_err());
        assert_eq!(store.resolve("/files/../etc/passwd"), None);
        assert_eq!(store.resolve("/other/ab/cd.png"), None);
    }

    #[tokio::test]
    async fn stored_files_read_back_and_get_public_urls() {
        let dir = tempfile::tempdir().unwrap();
        let png = b"\x89PNG\r\n\x1a\nimage-bytes".to_vec();
        let store = LocalArtifacts::new(dir.path(), "/files");
        let url = store.put(png.clone(), "image/png", "ref").await.unwrap();
        assert_eq!(
            store.get(&url).await.unwrap(),
            Some((png, "image/png".to_owned()))
        );
        assert_eq!(store.get("/files/ab/cd.png").await.unwrap(), None);
        assert_eq!(
            store.public_url(&url).await,
            None,
            "no public base URL configured"
        );
        let public = store.with_public_base_url(Some("https://media.example.com/"));
        assert_eq!(
            public.public_url(&url).await,
            Some(format!("https://media.example.com{url}"))
        );
        assert_eq!(public.public_url("/etc/passwd").await, None);
    }
}
