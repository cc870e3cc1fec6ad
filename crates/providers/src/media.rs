//! Generated media from providers: downloads within a size limit, `data:` URLs and base64,
//! and the check that a file is the kind expected (sniffing generic content types).

use base64::Engine as _;
use nosyntask_domain::TaskError;
use reqwest::RequestBuilder;

use crate::http::{content_type, excerpt, human_bytes, send_bytes};

/// What a generated file must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Image,
    Video,
}

impl MediaKind {
    /// Whether `content_type` is acceptable: `image/*` for images; `video/*` or an animated
    /// `image/gif` for videos.
    pub fn accepts(self, content_type: &str) -> bool {
        match self {
            MediaKind::Image => content_type.starts_with("image/"),
            MediaKind::Video => content_type.starts_with("video/") || content_type == "image/gif",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            MediaKind::Image => "an image",
            MediaKind::Video => "a video",
        }
    }
}

/// A downloaded or decoded media file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    pub bytes: Vec<u8>,
    pub content_type: String,
}

/// Fetches a generated file from `url` (or decodes a `data:` URL) within `limit` bytes and
/// checks it is the kind expected.
pub async fn fetch_media(
    request: RequestBuilder,
    kind: MediaKind,
    limit: usize,
) -> Result<Media, TaskError> {
    let (headers, bytes) = send_bytes(request, limit).await?;
    check_media(content_type(&headers), bytes, kind)
}

/// Decodes a `data:<type>;base64,<data>` URL.
pub fn decode_data_url(url: &str, kind: MediaKind, limit: usize) -> Result<Media, TaskError> {
    let rest = url
        .strip_prefix("data:")
        .ok_or_else(|| TaskError::permanent("not a data URL"))?;
    let (meta, data) = rest
        .split_once(',')
        .ok_or_else(|| TaskError::permanent("malformed data URL"))?;
    if !meta.ends_with(";base64") {
        return Err(TaskError::permanent("data URL is not base64"));
    }
    let declared = meta.trim_end_matches(";base64").to_ascii_lowercase();
    let bytes = decode_base64(data, limit)?;
    check_media(Some(declared).filter(|d| !d.is_empty()), bytes, kind)
}

/// Decodes base64 media (OpenAI's `b64_json`) within `limit` bytes.
pub fn decode_base64(data: &str, limit: usize) -> Result<Vec<u8>, TaskError> {
    if data.len() / 4 * 3 > limit {
        return Err(TaskError::permanent(format!(
            "base64 media is larger than the {} limit",
            human_bytes(limit)
        )));
    }
    let compact: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|err| TaskError::permanent(format!("provider sent invalid base64 media: {err}")))
}

/// Checks (and, for generic or missing types, sniffs) the type of a media file.
pub fn check_media(
    declared: Option<String>,
    bytes: Vec<u8>,
    kind: MediaKind,
) -> Result<Media, TaskError> {
    if bytes.is_empty() {
        return Err(TaskError::permanent(format!(
            "provider sent an empty file instead of {}",
            kind.noun()
        )));
    }
    let sniffed = sniff(&bytes);
    let generic = |t: &str| {
        matches!(
            t,
            "application/octet-stream" | "binary/octet-stream" | "application/binary"
        )
    };
    let content_type = match declared {
        Some(t) if kind.accepts(&t) => t,
        Some(t) if !generic(&t) => {
            return Err(TaskError::permanent(format!(
                "expected {}, the provider sent {t} ({} bytes): {}",
                kind.noun(),
                bytes.len(),
                excerpt(&bytes)
            )));
        }
        _ => match sniffed {
            Some(t) if kind.accepts(t) => t.to_owned(),
            _ => {
                return Err(TaskError::permanent(format!(
                    "expected {}, the provider sent a file of unknown type ({} bytes)",
                    kind.noun(),
                    bytes.len()
                )));
            }
        },
    };
    Ok(Media {
        bytes,
        content_type,
    })
}

/// The media type of well-known image and video files, from their first bytes.
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        Some(if &bytes[8..12] == b"qt  " {
            "video/quicktime"
        } else {
            "video/mp4"
        })
    } else if bytes.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        Some("video/webm")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_are_checked_and_sniffed() {
        let png = b"\x89PNG\r\n\x1a\nrest".to_vec();
        let media = check_media(
            Some("application/octet-stream".into()),
            png.clone(),
            MediaKind::Image,
        )
        .unwrap();
        assert_eq!(media.content_type, "image/png");
        assert!(check_media(Some("text/html".into()), png.clone(), MediaKind::Image).is_err());
        assert!(check_media(None, png, MediaKind::Video).is_err());
        let gif = b"GIF89a....".to_vec();
        assert_eq!(
            check_media(None, gif, MediaKind::Video)
                .unwrap()
                .content_type,
            "image/gif"
        );
        let mp4 = b"\0\0\0\x18ftypisom".to_vec();
        assert_eq!(
            check_media(None, mp4, MediaKind::Video)
                .unwrap()
                .content_type,
            "video/mp4"
        );
        let data = format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(b"\x89PNG\r\n\x1a\nxx")
        );
        assert_eq!(
            decode_data_url(&data, MediaKind::Image, 1024)
                .unwrap()
                .content_type,
            "image/png"
        );
        assert!(decode_base64("AAAA", 2).is_err());
    }
}
