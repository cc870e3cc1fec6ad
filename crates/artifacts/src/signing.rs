//! URLs signed by the server: `/files/<key>?exp=<unix seconds>&sig=<hex HMAC-SHA256>` over
//! `<key>\n<exp>` with a configured secret. Anyone holding the URL may read the file until `exp`;
//! nobody can make one for another key or a later time without the secret.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::key::{ArtifactKey, hex};

/// Shortest accepted signing secret (as for HS256 JWT secrets).
pub const MIN_SIGNING_KEY_BYTES: usize = 32;

/// Why a signed URL was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the URL carries no signature (exp and sig)")]
    Missing,
    #[error("the URL's signature is wrong")]
    Wrong,
    #[error("the URL's signature has expired")]
    Expired,
}

/// Signs and checks `/files/` URLs.
#[derive(Clone)]
pub struct UrlSigner {
    secret: Vec<u8>,
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlSigner(..)")
    }
}

impl UrlSigner {
    pub fn new(secret: &[u8]) -> UrlSigner {
        UrlSigner {
            secret: secret.to_vec(),
        }
    }

    fn mac(&self, key: &ArtifactKey, exp: u64) -> Hmac<Sha256> {
        // HMAC takes keys of any length.
        #[allow(clippy::expect_used)]
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC accepts any key length");
        mac.update(key.as_str().as_bytes());
        mac.update(b"\n");
        mac.update(exp.to_string().as_bytes());
        mac
    }

    /// The query string (`exp=…&sig=…`) that lets `key` be read until `exp`.
    pub fn query(&self, key: &ArtifactKey, exp: u64) -> String {
        let sig = hex(&self.mac(key, exp).finalize().into_bytes());
        format!("exp={exp}&sig={sig}")
    }

    /// Checks the `exp` and `sig` of a request's query string at `now` (unix seconds).
    pub fn verify(&self, key: &ArtifactKey, query: &str, now: u64) -> Result<(), SignatureError> {
        let mut exp = None;
        let mut sig = None;
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("exp", v)) => exp = Some(v),
                Some(("sig", v)) => sig = Some(v),
                _ => {}
            }
        }
        let (Some(exp), Some(sig)) = (exp, sig) else {
            return Err(SignatureError::Missing);
        };
        let exp: u64 = exp.parse().map_err(|_| SignatureError::Wrong)?;
        let sig = unhex(sig).ok_or(SignatureError::Wrong)?;
        // Constant-time comparison.
        self.mac(key, exp)
            .verify_slice(&sig)
            .map_err(|_| SignatureError::Wrong)?;
        if exp < now {
            return Err(SignatureError::Expired);
        }
        Ok(())
    }
}

/// The expiry of a URL signed at `now` for `ttl` seconds, rounded up to a tenth of `ttl`: reads
/// within the same tenth get the same URL (stable ETags, browser caches), and every URL handed
/// out stays valid for at least nine tenths of `ttl`.
pub fn expiry(now: u64, ttl: u64) -> u64 {
    let step = (ttl / 10).max(1);
    (now + ttl).div_ceil(step) * step
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_bind_key_and_expiry() {
        let signer = UrlSigner::new(b"0123456789abcdef0123456789abcdef");
        let key = ArtifactKey::of(b"GIF89a...", "image/gif").unwrap();
        let other = ArtifactKey::of(b"GIF89a..!", "image/gif").unwrap();
        let query = signer.query(&key, 1000);
        assert_eq!(signer.verify(&key, &query, 999), Ok(()));
        assert_eq!(
            signer.verify(&key, &query, 1001),
            Err(SignatureError::Expired)
        );
        assert_eq!(signer.verify(&other, &query, 0), Err(SignatureError::Wrong));
        let later = query.replace("exp=1000", "exp=9999");
        assert_eq!(signer.verify(&key, &later, 0), Err(SignatureError::Wrong));
        assert_eq!(signer.verify(&key, "", 0), Err(SignatureError::Missing));
        assert_eq!(
            signer.verify(&key, "exp=5&sig=zz", 0),
            Err(SignatureError::Wrong)
        );
        let foreign = UrlSigner::new(b"another-secret-another-secret-xx");
        assert_eq!(foreign.verify(&key, &query, 0), Err(SignatureError::Wrong));
        assert_eq!(expiry(1000, 100), 1100);
        assert_eq!(expiry(1001, 100), 1110);
    }
}
