//! The artifact store on a real S3-compatible server (Garage on loopback, started by
//! `.ci/s3.sh`): store, read back against the checksum, list, presign (and fetch the presigned
//! URL over HTTP), delete. Needs the `NOSYNTASK_TEST_S3_*` variables `.ci/s3.sh` prints; without
//! them the test prints why and passes (CI always sets them, and fails when Garage cannot run).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use nosyntask_artifacts::{ArtifactConfig, Artifacts, Backend, S3Config, UrlMode};

/// The test server's S3 settings; sets the AWS credential variables the store reads.
pub fn s3_config(prefix: &str) -> Option<S3Config> {
    let endpoint = std::env::var("NOSYNTASK_TEST_S3_ENDPOINT").ok()?;
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    // SAFETY: set before any thread of the test reads the environment.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", var("NOSYNTASK_TEST_S3_ACCESS_KEY_ID"));
        std::env::set_var(
            "AWS_SECRET_ACCESS_KEY",
            var("NOSYNTASK_TEST_S3_SECRET_ACCESS_KEY"),
        );
    }
    Some(S3Config {
        bucket: var("NOSYNTASK_TEST_S3_BUCKET"),
        region: var("NOSYNTASK_TEST_S3_REGION"),
        endpoint: Some(endpoint),
        path_style: true,
        prefix: prefix.to_owned(),
    })
}

fn png(seed: u8) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend(std::iter::repeat_n(seed, 64));
    bytes.extend(rand_suffix());
    bytes
}

/// Unique bytes per run, so keys from earlier runs do not interfere.
fn rand_suffix() -> Vec<u8> {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        .to_le_bytes()
        .to_vec()
}

#[tokio::test]
async fn media_round_trip_through_a_real_s3_server() {
    let prefix = format!("lib-test-{}", std::process::id());
    let Some(s3) = s3_config(&prefix) else {
        println!("skipped: run .ci/s3.sh and export its NOSYNTASK_TEST_S3_* variables");
        return;
    };
    let mut config = ArtifactConfig::local("unused");
    config.backend = Backend::S3(s3);
    config.urls = UrlMode::Presigned;
    config.url_ttl = Duration::from_secs(600);
    config.max_image_bytes = 4096;
    let store = Artifacts::open(config).unwrap();

    let bytes = png(1);
    let key = store.store(bytes.clone(), "image/png").await.unwrap();
    assert_eq!(store.store(bytes.clone(), "image/png").await.unwrap(), key);
    assert_eq!(store.read(&key).await.unwrap().unwrap().as_ref(), bytes);
    // Type sniffed from the bytes, size limit per kind.
    assert!(store.store(bytes.clone(), "video/mp4").await.is_err());
    assert!(store.store(b"<html>".to_vec(), "image/png").await.is_err());
    let mut big = png(2);
    big.resize(5000, 0);
    let err = store.store(big, "image/png").await.unwrap_err();
    assert!(err.to_string().contains("limit for images"), "{err}");

    let listed = store.list().await.unwrap();
    assert_eq!(listed.iter().map(|(k, _)| k).collect::<Vec<_>>(), [&key]);

    // A presigned URL loads without credentials, straight from the S3 server.
    let url = store.link(&key, None).await.unwrap();
    assert!(
        url.contains(&prefix) && url.contains("X-Amz-Signature"),
        "{url}"
    );
    let fetched = reqwest::get(&url).await.unwrap();
    assert_eq!(fetched.status(), 200, "{url}");
    assert_eq!(fetched.bytes().await.unwrap().as_ref(), bytes);
    // Unsigned, the bucket refuses.
    let plain = reqwest::get(url.split('?').next().unwrap()).await.unwrap();
    assert_eq!(plain.status(), 403);

    store.delete(&key).await.unwrap();
    assert!(store.read(&key).await.unwrap().is_none());
    assert!(store.list().await.unwrap().is_empty());
}
