//! Reference images (a character sheet, a video's start and end frames) as a provider can use
//! them. Handlers pass artifact store paths (`/files/ab/cd….png`), which a provider on the
//! internet cannot fetch: they become the store's public URL, or the bytes inline as a `data:`
//! URL when no public URL is known or the model's profile asks for inline references.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use nosyntask_domain::TaskError;
use nosyntask_engine::ports::ArtifactStore;

use crate::http::HttpClient;
use crate::media::{MediaKind, fetch_media};

/// Largest reference image inlined (providers take a few MiB at most).
const MAX_REFERENCE_BYTES: usize = 20 * 1024 * 1024;

/// How references are resolved for one model.
pub struct References<'a> {
    pub artifacts: &'a Arc<dyn ArtifactStore>,
    pub http: &'a HttpClient,
    /// Send the image itself even when a URL would do.
    pub inline: bool,
    pub timeout: Duration,
}

fn data_url(content_type: &str, bytes: &[u8]) -> String {
    format!(
        "data:{content_type};base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

impl References<'_> {
    /// The form of `reference` the provider can use.
    pub async fn resolve(&self, reference: &str) -> Result<String, TaskError> {
        let reference = reference.trim();
        if reference.starts_with("data:") {
            return Ok(reference.to_owned());
        }
        let absolute = reference.starts_with("http://") || reference.starts_with("https://");
        // The store's own files (a `/files/` path, or a URL it handed out, which may have
        // expired since) get a URL that works now.
        if !self.inline
            && let Some(public) = self.artifacts.public_url(reference).await
        {
            return Ok(public);
        }
        if absolute && !self.inline {
            return Ok(reference.to_owned());
        }
        if let Some((bytes, content_type)) = self.artifacts.get(reference).await? {
            if bytes.len() > MAX_REFERENCE_BYTES {
                return Err(TaskError::permanent(format!(
                    "the reference image {reference} is too large to send inline"
                )));
            }
            return Ok(data_url(&content_type, &bytes));
        }
        if absolute {
            // The API takes the image itself: fetch it once here.
            let parsed = reqwest::Url::parse(reference).map_err(|_| {
                TaskError::permanent(format!("invalid reference image URL {reference:?}"))
            })?;
            let request = self.http.inner().get(parsed).timeout(self.timeout);
            let media = fetch_media(request, MediaKind::Image, MAX_REFERENCE_BYTES).await?;
            return Ok(data_url(&media.content_type, &media.bytes));
        }
        Err(TaskError::permanent(format!(
            "the reference image {reference:?} is neither an absolute URL nor a file of the \
             artifact store, so the provider cannot fetch it"
        )))
    }

    /// [`References::resolve`] of an optional, possibly empty reference.
    pub async fn resolve_opt(&self, reference: Option<&str>) -> Result<Option<String>, TaskError> {
        match reference.map(str::trim).filter(|r| !r.is_empty()) {
            Some(r) => self.resolve(r).await.map(Some),
            None => Ok(None),
        }
    }
}
