//! Job reads carry URLs that work now: the database keeps each artifact's stable reference
//! (`"/files/<key>"`), and every serialized answer has those JSON strings replaced with the
//! URL the reader can load at this moment (absolute, signed or presigned). Only whole string
//! values that are exactly such a reference are touched.

use std::collections::HashMap;

use crate::key::{ArtifactKey, FILES_PREFIX};
use crate::store::Artifacts;

/// Positions of `"/files/<key>"` string values in a JSON text: (start of the key, end of it).
fn references(json: &[u8]) -> Vec<(usize, usize, ArtifactKey)> {
    let text = String::from_utf8_lossy(json);
    let needle = format!("\"{FILES_PREFIX}");
    let mut found = Vec::new();
    for (at, _) in text.match_indices(&needle) {
        let start = at + 1;
        let Some(len) = text[start..].find('"') else {
            continue;
        };
        if let Some(key) = ArtifactKey::from_path(&text[start..start + len]) {
            found.push((start, start + len, key));
        }
    }
    found
}

/// `json` with every artifact reference replaced by the URL that loads it now for a reader who
/// reached the server at `own_base`. References without a URL (no base known) stay as they are.
pub async fn rewrite_json(artifacts: &Artifacts, json: &[u8], own_base: Option<&str>) -> Vec<u8> {
    let found = references(json);
    if found.is_empty() {
        return json.to_vec();
    }
    let mut links: HashMap<&ArtifactKey, Option<String>> = HashMap::new();
    for (_, _, key) in &found {
        if !links.contains_key(key) {
            links.insert(key, artifacts.link(key, own_base).await);
        }
    }
    let mut out = Vec::with_capacity(json.len() + found.len() * 64);
    let mut copied = 0;
    for (start, end, key) in &found {
        if let Some(Some(url)) = links.get(key) {
            out.extend_from_slice(&json[copied..*start]);
            // URLs made here hold no `"` or `\`: nothing to escape.
            out.extend_from_slice(url.as_bytes());
            copied = *end;
        }
    }
    out.extend_from_slice(&json[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ArtifactConfig, UrlMode};

    #[tokio::test]
    async fn references_become_absolute_or_signed_urls() {
        let dir = tempfile::tempdir().unwrap();
        let store = Artifacts::open(ArtifactConfig::local(dir.path())).unwrap();
        let key = store
            .store(b"GIF89a-frames".to_vec(), "image/gif")
            .await
            .unwrap();
        let body = serde_json::to_vec(&serde_json::json!({
            "url": key.path(),
            "list": [key.path(), "/files/not-a-key.png", format!("x{}", key.path())],
        }))
        .unwrap();
        let out = rewrite_json(&store, &body, Some("http://127.0.0.1:9")).await;
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let absolute = format!("http://127.0.0.1:9{}", key.path());
        assert_eq!(value["url"], absolute.as_str());
        assert_eq!(value["list"][0], absolute.as_str());
        assert_eq!(value["list"][1], "/files/not-a-key.png");
        assert_eq!(value["list"][2], format!("x{}", key.path()).as_str());
        assert_eq!(rewrite_json(&store, &body, None).await, body);

        let mut config = ArtifactConfig::local(dir.path());
        config.urls = UrlMode::Signed;
        config.signing_key = Some(b"0123456789abcdef0123456789abcdef".to_vec());
        config.public_base_url = Some("https://media.example.com/".into());
        let signed = Artifacts::open(config).unwrap();
        let out = rewrite_json(&signed, &body, Some("http://127.0.0.1:9")).await;
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let url = value["url"].as_str().unwrap();
        assert!(
            url.starts_with(&format!("https://media.example.com{}?exp=", key.path())),
            "{url}"
        );
        let query = url.split_once('?').unwrap().1;
        assert_eq!(signed.authorize(&key, query), Ok(()));
        assert!(signed.authorize(&key, "").is_err());
    }
}
