//! The URLs NanoStory's columns hold. A job's result keeps each artifact as its stable
//! reference (`/files/<key>`), which job reads turn into a URL for each reader; NanoStory's
//! pages put a column's value straight into `<img src>`, from another origin, at any later time.
//! So the columns get the artifact's absolute, unexpiring URL on the engine's public address.

use nosyntask_artifacts::ArtifactKey;

/// Turns results' artifact references into the URLs NanoStory stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaUrls {
    base: String,
}

impl MediaUrls {
    /// URLs on `base` (`https://media.example.com`, where this server's `/files/` is reached);
    /// a trailing `/` is dropped.
    pub fn new(base: &str) -> Self {
        MediaUrls {
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// The URL NanoStory stores for a result's value: an artifact reference made absolute; a
    /// URL that is no reference (a provider's own) as it is.
    pub fn url(&self, value: &str) -> String {
        match ArtifactKey::from_path(value) {
            Some(key) => format!("{}{}", self.base, key.path()),
            None => value.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_become_absolute_and_other_urls_stay() {
        let media = MediaUrls::new("https://media.example.com/");
        let key = ArtifactKey::of(b"a frame", "image/png").unwrap().path();
        assert_eq!(media.url(&key), format!("https://media.example.com{key}"));
        let provider = "https://cdn.provider.example/a.png";
        assert_eq!(media.url(provider), provider);
        assert_eq!(media.url("/files/../etc/passwd"), "/files/../etc/passwd");
    }
}
