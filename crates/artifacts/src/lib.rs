//! # nosyntask artifacts
//!
//! Generated images and videos on object storage, through the `object_store` crate (Apache
//! Arrow's; see `docs/operations.md` for why not OpenDAL): a local directory by default, or an
//! S3-compatible bucket shared by every machine.
//!
//! - [`ArtifactKey`]: content-addressed keys (`ab/cdef….png`, the SHA-256 of the bytes: the key
//!   is the checksum, and the same bytes are stored once whoever generates them);
//! - [`Artifacts`]: the store (the engine's `ArtifactStore` port): type sniffed from the bytes,
//!   size limits per kind, reads checked against the checksum, the URLs of [`UrlMode`];
//! - [`links::rewrite_json`]: job reads carry URLs that load now;
//! - [`retention`]: artifacts no job refers to any more are deleted.

pub mod key;
pub mod links;
pub mod retention;
pub mod signing;
mod store;

pub use key::{ArtifactKey, FILES_PREFIX, MEDIA_TYPES, extension_for, keys_in};
pub use object_store::GetRange;
pub use signing::{SignatureError, UrlSigner};
pub use store::{
    ArtifactConfig, ArtifactError, Artifacts, Backend, DEFAULT_MAX_IMAGE_BYTES,
    DEFAULT_MAX_VIDEO_BYTES, MAX_PRESIGNED_TTL, S3Config, Served, UrlMode,
};
