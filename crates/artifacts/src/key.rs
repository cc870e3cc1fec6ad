//! Artifact keys: `ab/cdef….png`, the SHA-256 of the bytes in hex (split after two digits so no
//! directory holds millions of files) and the extension of the content type. A key is also the
//! artifact's checksum. URL paths are `/files/<key>`.

use sha2::{Digest, Sha256};

/// The URL path prefix of stored artifacts.
pub const FILES_PREFIX: &str = "/files/";

pub(crate) use nosyntask_providers::lowercase_hex as hex;
pub use nosyntask_providers::{MEDIA_TYPES, extension_for};

/// A valid artifact key. Parsing is strict (two hex digits, `/`, 62 hex digits, `.`, a known
/// extension), so a key never holds `..`, a second `/` or anything else a path could escape by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArtifactKey(String);

impl ArtifactKey {
    /// The key of `bytes` stored as `content_type`; `None` for a type the store does not keep.
    pub fn of(bytes: &[u8], content_type: &str) -> Option<ArtifactKey> {
        let ext = extension_for(content_type)?;
        let digest = hex(&Sha256::digest(bytes));
        Some(ArtifactKey(format!(
            "{}/{}.{ext}",
            &digest[..2],
            &digest[2..]
        )))
    }

    /// Parses a key (`ab/cdef….png`).
    pub fn parse(key: &str) -> Option<ArtifactKey> {
        let (shard, name) = key.split_once('/')?;
        let (stem, ext) = name.split_once('.')?;
        let hex = |s: &str, len: usize| {
            s.len() == len && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
        };
        (hex(shard, 2) && hex(stem, 62) && MEDIA_TYPES.iter().any(|(_, e)| *e == ext))
            .then(|| ArtifactKey(key.to_owned()))
    }

    /// The key of a URL path `/files/<key>` (no query string).
    pub fn from_path(path: &str) -> Option<ArtifactKey> {
        ArtifactKey::parse(path.strip_prefix(FILES_PREFIX)?)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URL path: `/files/<key>`.
    pub fn path(&self) -> String {
        format!("{FILES_PREFIX}{}", self.0)
    }

    /// The SHA-256 of the content, in hex.
    pub fn sha256(&self) -> String {
        self.0
            .replace('/', "")
            .split('.')
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    /// The content type the key's extension stands for.
    pub fn content_type(&self) -> &'static str {
        let ext = self.0.rsplit('.').next().unwrap_or_default();
        MEDIA_TYPES
            .iter()
            .find(|(_, e)| *e == ext)
            .map(|(t, _)| *t)
            .unwrap_or("application/octet-stream")
    }

    /// Whether the content type is a video.
    pub fn is_video(&self) -> bool {
        self.content_type().starts_with("video/")
    }
}

impl std::fmt::Display for ArtifactKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Every artifact key that occurs in `text`, in any URL form (`/files/…`, absolute, signed,
/// presigned with a key prefix): the retention sweep finds what jobs still refer to with it.
pub fn keys_in(text: &str) -> Vec<ArtifactKey> {
    let bytes = text.as_bytes();
    let mut keys = Vec::new();
    // A key is 2 hex + '/' + 62 hex + '.' + extension; look at every '.' preceded by 62 hex.
    for (dot, _) in text.match_indices('.') {
        let Some(start) = dot.checked_sub(65) else {
            continue;
        };
        if bytes[start + 2] != b'/' {
            continue;
        }
        if start > 0 && bytes[start - 1].is_ascii_hexdigit() {
            continue;
        }
        let ext_end = text[dot + 1..]
            .find(|c: char| !c.is_ascii_alphanumeric())
            .map_or(text.len(), |i| dot + 1 + i);
        if let Some(key) = ArtifactKey::parse(&text[start..ext_end]) {
            keys.push(key);
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_strict_and_found_in_any_url_form() {
        let key = ArtifactKey::of(b"\x89PNG\r\n\x1a\nx", "image/png").unwrap();
        assert_eq!(ArtifactKey::parse(key.as_str()), Some(key.clone()));
        assert_eq!(ArtifactKey::from_path(&key.path()), Some(key.clone()));
        assert_eq!(key.content_type(), "image/png");
        assert_eq!(key.sha256().len(), 64);
        assert_eq!(ArtifactKey::of(b"x", "text/html"), None);
        for bad in [
            "../etc/passwd",
            "ab/../../x.png",
            "ab/cd.png",
            "AB/cd.png",
            "ab/cd.html",
            &format!("{}.html", &key.as_str()[..65]),
            &format!("{}/x", key.as_str()),
        ] {
            assert_eq!(ArtifactKey::parse(bad), None, "{bad}");
        }
        let text = format!(
            r#"{{"a":"/files/{k}","b":"http://h:1/files/{k}?exp=1&sig=ab","c":"http://s3/bkt/pre/{k}?X-Amz-Date=1","d":"f{k}"}}"#,
            k = key
        );
        let found = keys_in(&text);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found.iter().all(|k| *k == key));
    }
}
