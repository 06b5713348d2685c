//! `S3BlobStore` against a real S3-compatible server on loopback (moto_server, started by
//! scripts/services.sh). Reads `CHATICO_TEST_S3_URL`; skipped loudly when it is unset.
#![cfg(feature = "blob-s3")]

use std::time::Duration;

use bytes::Bytes;
use chatico_core::ids::BlobKey;
use chatico_core::retry::RetryPolicy;
use chatico_core::{Error, ErrorCode, ports::BlobStore};
use chatico_store::blob::{S3BlobStore, S3Config};

/// A blob key for a test literal.
fn k(key: &str) -> BlobKey {
    BlobKey::parse(key).expect(key)
}

fn s3_url() -> Option<String> {
    match std::env::var("CHATICO_TEST_S3_URL") {
        Ok(url) if !url.is_empty() => Some(url.trim_end_matches('/').to_owned()),
        _ => {
            eprintln!("SKIPPED: CHATICO_TEST_S3_URL not set (run scripts/services.sh, or scripts/test-all.sh)");
            None
        }
    }
}

/// A fresh bucket per test. moto accepts an unsigned CreateBucket (a real S3 would not,
/// which is why creating buckets is not part of the store's API).
async fn fresh_bucket(url: &str) -> String {
    let bucket = format!("chatico-test-{}", hex::encode(rand::random::<[u8; 6]>()));
    let resp = reqwest::Client::new()
        .put(format!("{url}/{bucket}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("S3 test server at {url} unreachable: {e}"));
    assert!(
        resp.status().is_success(),
        "creating bucket {bucket}: {}",
        resp.status()
    );
    bucket
}

fn config(url: &str, bucket: &str) -> S3Config {
    let mut c = S3Config::new(bucket, "us-east-1", "test-access-key", "test-secret-key");
    c.endpoint = Some(url.to_owned());
    c.allow_http = true;
    c.retry = RetryPolicy {
        max_attempts: 2,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(20),
    };
    c
}

async fn store() -> Option<(String, String, S3BlobStore)> {
    let url = s3_url()?;
    let bucket = fresh_bucket(&url).await;
    let store = S3BlobStore::new(config(&url, &bucket)).expect("store");
    Some((url, bucket, store))
}

#[tokio::test]
async fn put_get_delete_round_trip_keeps_bytes_and_content_type() {
    let Some((_url, _bucket, s)) = store().await else {
        return;
    };
    let payload: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    s.put(&k("media/u1/photo-1"), Bytes::from(payload.clone()), "image/jpeg")
        .await
        .expect("put");
    s.put(&k("avatars/u1/a"), Bytes::from_static(b"GIF89a"), "image/gif")
        .await
        .expect("put");
    let blob = s.get(&k("media/u1/photo-1")).await.expect("get");
    assert_eq!(blob.bytes.len(), payload.len());
    assert!(blob.bytes == payload, "bytes differ");
    assert_eq!(blob.content_type, "image/jpeg");
    assert_eq!(s.get(&k("avatars/u1/a")).await.expect("get").content_type, "image/gif");

    s.delete(&k("media/u1/photo-1")).await.expect("delete");
    assert_eq!(s.get(&k("media/u1/photo-1")).await, Err(Error::not_found("blob")));
    // Deleting again, or a key that never existed, is not an error.
    s.delete(&k("media/u1/photo-1")).await.expect("delete again");
    s.delete(&k("never/was")).await.expect("delete missing");
    // The other object is untouched.
    assert_eq!(
        s.get(&k("avatars/u1/a")).await.expect("get").bytes,
        Bytes::from_static(b"GIF89a")
    );
}

#[tokio::test]
async fn signed_url_is_a_presigned_get_that_fetches_the_bytes() {
    let Some((url, bucket, s)) = store().await else { return };
    s.put(
        &k("media/x/y.png"),
        Bytes::from_static(b"\x89PNG\r\n\x1a\nrest"),
        "image/png",
    )
    .await
    .expect("put");
    let signed = s
        .signed_url(&k("media/x/y.png"), 300)
        .await
        .expect("sign")
        .expect("some url");
    assert!(
        signed.starts_with(&format!("{url}/{bucket}/media/x/y.png?")),
        "{signed}"
    );
    for part in [
        "X-Amz-Algorithm=AWS4-HMAC-SHA256",
        "X-Amz-Expires=300",
        "X-Amz-Signature=",
        "X-Amz-Credential=test-access-key",
    ] {
        assert!(signed.contains(part), "{part} missing from {signed}");
    }
    let resp = reqwest::get(&signed).await.expect("fetch signed url");
    assert!(resp.status().is_success(), "{}", resp.status());
    assert_eq!(
        resp.headers().get("content-type").and_then(|v| v.to_str().ok()),
        Some("image/png")
    );
    assert_eq!(
        resp.bytes().await.expect("body"),
        Bytes::from_static(b"\x89PNG\r\n\x1a\nrest")
    );

    for bad_ttl in [0, 7 * 24 * 3600 + 1] {
        let e = s.signed_url(&k("media/x/y.png"), bad_ttl).await.expect_err("ttl");
        assert_eq!(e.code(), ErrorCode::InvalidInput);
    }
}

#[tokio::test]
async fn a_prefix_namespaces_every_key_in_the_bucket() {
    let Some(url) = s3_url() else { return };
    let bucket = fresh_bucket(&url).await;
    let mut c = config(&url, &bucket);
    c.prefix = Some("tenant-a".into());
    let a = S3BlobStore::new(c).expect("store");
    let plain = S3BlobStore::new(config(&url, &bucket)).expect("store");
    a.put(&k("k1"), Bytes::from_static(b"one"), "text/plain")
        .await
        .expect("put");
    assert_eq!(
        plain.get(&k("tenant-a/k1")).await.expect("raw").bytes,
        Bytes::from_static(b"one")
    );
    assert_eq!(plain.get(&k("k1")).await, Err(Error::not_found("blob")));
}

#[tokio::test]
async fn bad_keys_are_refused_before_any_request() {
    let Some((_url, _bucket, s)) = store().await else {
        return;
    };
    for key in ["../x", "/abs", "a//b", ".hidden", "a b"] {
        // The store takes only `BlobKey`s: such a key cannot even be built.
        let e = BlobKey::parse(key).expect_err(key);
        assert_eq!(e.code(), ErrorCode::InvalidInput, "{key}");
    }
    let e = s
        .put(&k("ok"), Bytes::from_static(b"x"), "not a type")
        .await
        .expect_err("ct");
    assert_eq!(e.code(), ErrorCode::InvalidInput);
}

#[tokio::test]
async fn a_missing_bucket_or_a_dead_endpoint_is_unavailable() {
    let Some(url) = s3_url() else { return };
    // A bucket that does not exist: the server answers NoSuchBucket (404) on put.
    let s = S3BlobStore::new(config(&url, "chatico-no-such-bucket-zz")).expect("store");
    let e = s
        .put(&k("k"), Bytes::from_static(b"x"), "text/plain")
        .await
        .expect_err("no bucket");
    assert_eq!(e.code(), ErrorCode::Unavailable, "{e}");

    // Nothing listens on this port any more.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let s = S3BlobStore::new(config(&dead, "b")).expect("store");
    let e = s.get(&k("k")).await.expect_err("dead");
    assert_eq!(e.code(), ErrorCode::Unavailable, "{e}");
}

#[tokio::test]
async fn plain_http_needs_allow_http_and_secrets_are_not_printed() {
    let Some((url, bucket, s)) = store().await else { return };
    s.put(&k("k"), Bytes::from_static(b"x"), "text/plain")
        .await
        .expect("put over http, allowed");
    let mut c = config(&url, &bucket);
    assert!(!format!("{c:?}").contains("test-secret-key"));
    c.allow_http = false;
    let strict = S3BlobStore::new(c).expect("builds");
    // The same object, through a store that may not use plain HTTP: refused, not fetched.
    let e = strict.get(&k("k")).await.expect_err("http refused");
    assert_eq!(e.code(), ErrorCode::Unavailable, "{e}");
}
