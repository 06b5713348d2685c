//! `CloudinaryBlobStore` against a local mock of Cloudinary's Upload API and delivery URLs
//! (axum on 127.0.0.1:0). The mock recomputes every signature with its own implementation
//! of Cloudinary's rule, checks the API key, the field set and the timestamp's age, keeps
//! the uploaded bytes, and serves them back; failure modes use wiremock.
#![cfg(feature = "blob-cloudinary")]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Multipart, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use bytes::Bytes;
use chatico_core::ids::BlobKey;
use chatico_core::ports::{BlobStore, ManualClock};
use chatico_core::retry::RetryPolicy;
use chatico_core::{Error, ErrorCode};
use chatico_store::blob::{CloudinaryBlobStore, CloudinaryConfig, SignatureAlgorithm};
use serde_json::json;
use sha1::Digest as _;

/// A blob key for a test literal.
fn k(key: &str) -> BlobKey {
    BlobKey::parse(key).expect(key)
}

const CLOUD: &str = "demo-cloud";
const API_KEY: &str = "123456789012345";
const SECRET: &str = "cloudinary-test-secret";
/// 2023-11-14T22:13:20Z, in ms.
const NOW_MS: i64 = 1_700_000_000_000;
const PNG: &[u8] = include_bytes!("../../chatico-core/testdata/media/rgb-7x5.png");

// ----- the mock -----

#[derive(Debug, Clone)]
struct Recorded {
    endpoint: &'static str,
    fields: Vec<(String, String)>,
    file: Option<(Option<String>, Option<String>, usize)>,
}

struct Fake {
    secret: String,
    sha256: bool,
    now_secs: i64,
    assets: Mutex<HashMap<String, (Bytes, String)>>,
    log: Mutex<Vec<Recorded>>,
}

type Shared = Arc<Fake>;

fn cloudinary_error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": { "message": message } }))).into_response()
}

impl Fake {
    /// Cloudinary's rule, written again here: drop file/cloud_name/resource_type/api_key and
    /// the signature itself, sort by name, `k=v` joined by `&`, append the secret, hex digest.
    fn expected_signature(&self, fields: &[(String, String)]) -> String {
        let mut signed: Vec<&(String, String)> = fields
            .iter()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "file" | "cloud_name" | "resource_type" | "api_key" | "signature"
                )
            })
            .collect();
        signed.sort();
        let joined: Vec<String> = signed.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let payload = format!("{}{}", joined.join("&"), self.secret);
        if self.sha256 {
            hex::encode(sha2::Sha256::digest(payload.as_bytes()))
        } else {
            hex::encode(sha1::Sha1::digest(payload.as_bytes()))
        }
    }

    /// The checks Cloudinary makes on a signed call; `Err` is the answer to send.
    fn authenticate(&self, fields: &[(String, String)], required: &[&str]) -> Result<(), (StatusCode, String)> {
        let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        for name in required {
            if field(name).is_none() {
                return Err((StatusCode::BAD_REQUEST, format!("Missing required parameter - {name}")));
            }
        }
        if field("api_key").as_deref() != Some(API_KEY) {
            return Err((StatusCode::UNAUTHORIZED, "Unknown API key".to_owned()));
        }
        let timestamp: i64 = field("timestamp").and_then(|t| t.parse().ok()).unwrap_or(0);
        if (self.now_secs - timestamp).abs() > 3600 {
            return Err((
                StatusCode::BAD_REQUEST,
                "Stale request - reported time is more than 1 hour ago".to_owned(),
            ));
        }
        let expected = self.expected_signature(fields);
        if field("signature").as_deref() != Some(expected.as_str()) {
            return Err((
                StatusCode::UNAUTHORIZED,
                "Invalid Signature. String to sign - <...>".to_owned(),
            ));
        }
        Ok(())
    }
}

async fn upload(State(fake): State<Shared>, Path(cloud): Path<String>, mut multipart: Multipart) -> Response {
    if cloud != CLOUD {
        return cloudinary_error(StatusCode::NOT_FOUND, "cloud not found");
    }
    let mut fields = Vec::new();
    let mut file = None;
    while let Ok(Some(part)) = multipart.next_field().await {
        let name = part.name().unwrap_or_default().to_owned();
        if name == "file" {
            let file_name = part.file_name().map(str::to_owned);
            let content_type = part.content_type().map(str::to_owned);
            let Ok(bytes) = part.bytes().await else {
                return cloudinary_error(StatusCode::BAD_REQUEST, "broken file part");
            };
            file = Some((file_name, content_type, bytes));
        } else {
            let Ok(value) = part.text().await else {
                return cloudinary_error(StatusCode::BAD_REQUEST, "broken field");
            };
            fields.push((name, value));
        }
    }
    fake.log.lock().expect("lock").push(Recorded {
        endpoint: "upload",
        fields: fields.clone(),
        file: file.as_ref().map(|(n, c, b)| (n.clone(), c.clone(), b.len())),
    });
    let Some((_, content_type, bytes)) = file else {
        return cloudinary_error(StatusCode::BAD_REQUEST, "Missing required parameter - file");
    };
    if let Err((status, message)) = fake.authenticate(&fields, &["api_key", "timestamp", "signature"]) {
        return cloudinary_error(status, &message);
    }
    if !bytes.starts_with(b"\x89PNG") && !bytes.starts_with(&[0xFF, 0xD8]) && !bytes.starts_with(b"GIF8") {
        return cloudinary_error(StatusCode::BAD_REQUEST, "Invalid image file");
    }
    let public_id = fields
        .iter()
        .find(|(k, _)| k == "public_id")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| "random".into());
    let len = bytes.len();
    let ct = content_type.unwrap_or_else(|| "application/octet-stream".into());
    fake.assets.lock().expect("lock").insert(public_id.clone(), (bytes, ct));
    Json(json!({
        "public_id": public_id,
        "version": 1,
        "resource_type": "image",
        "type": "upload",
        "bytes": len,
        "secure_url": format!("https://res.example.invalid/{CLOUD}/image/upload/v1/{public_id}"),
    }))
    .into_response()
}

async fn destroy(
    State(fake): State<Shared>,
    Path(cloud): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    if cloud != CLOUD {
        return cloudinary_error(StatusCode::NOT_FOUND, "cloud not found");
    }
    fake.log.lock().expect("lock").push(Recorded {
        endpoint: "destroy",
        fields: fields.clone(),
        file: None,
    });
    if let Err((status, message)) = fake.authenticate(&fields, &["public_id", "api_key", "timestamp", "signature"]) {
        return cloudinary_error(status, &message);
    }
    let public_id = fields
        .iter()
        .find(|(k, _)| k == "public_id")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let removed = fake.assets.lock().expect("lock").remove(&public_id).is_some();
    Json(json!({ "result": if removed { "ok" } else { "not found" } })).into_response()
}

async fn deliver(State(fake): State<Shared>, Path((cloud, public_id)): Path<(String, String)>) -> Response {
    if cloud != CLOUD {
        return StatusCode::NOT_FOUND.into_response();
    }
    match fake.assets.lock().expect("lock").get(&public_id) {
        Some((bytes, ct)) => ([(header::CONTENT_TYPE, ct.clone())], bytes.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Starts the mock; returns its base URL and its state.
async fn start_fake(sha256: bool) -> (String, Shared) {
    let fake = Arc::new(Fake {
        secret: SECRET.into(),
        sha256,
        now_secs: NOW_MS / 1000,
        assets: Mutex::default(),
        log: Mutex::default(),
    });
    let app = Router::new()
        .route("/v1_1/{cloud}/image/upload", post(upload))
        .route("/v1_1/{cloud}/image/destroy", post(destroy))
        .route("/{cloud}/image/upload/{*public_id}", get(deliver))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    (format!("http://{addr}"), fake)
}

fn config(base: &str, clock: Arc<ManualClock>) -> CloudinaryConfig {
    let mut c = CloudinaryConfig::new(CLOUD, API_KEY, SECRET);
    c.api_base = base.to_owned();
    c.delivery_base = base.to_owned();
    c.clock = clock;
    c.retry = RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(2),
    };
    c.default_retry_after = Duration::from_secs(30);
    c
}

fn store(base: &str) -> CloudinaryBlobStore {
    CloudinaryBlobStore::new(config(base, Arc::new(ManualClock::new(NOW_MS)))).expect("store")
}

fn names(fields: &[(String, String)]) -> Vec<&str> {
    let mut v: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    v.sort_unstable();
    v
}

// ----- against the mock -----

#[tokio::test]
async fn signed_upload_then_get_then_destroy() {
    let (base, fake) = start_fake(false).await;
    let s = store(&base);
    s.put(&k("avatars/u1/a1b2"), Bytes::from_static(PNG), "image/png")
        .await
        .expect("upload accepted by the signature-checking mock");

    let log = fake.log.lock().expect("lock").clone();
    let up = &log[0];
    assert_eq!(up.endpoint, "upload");
    assert_eq!(names(&up.fields), ["api_key", "public_id", "signature", "timestamp"]);
    let field = |k: &str| up.fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(field("public_id"), Some("avatars/u1/a1b2"));
    assert_eq!(field("timestamp"), Some("1700000000"));
    assert_eq!(field("signature").map(str::len), Some(40), "SHA-1 hex");
    assert_eq!(
        up.file,
        Some((Some("a1b2.png".into()), Some("image/png".into()), PNG.len()))
    );

    let blob = s.get(&k("avatars/u1/a1b2")).await.expect("get");
    assert_eq!(blob.bytes, Bytes::from_static(PNG));
    assert_eq!(blob.content_type, "image/png");
    assert_eq!(
        s.signed_url(&k("avatars/u1/a1b2"), 60).await.expect("url"),
        Some(format!("{base}/{CLOUD}/image/upload/avatars/u1/a1b2"))
    );

    s.delete(&k("avatars/u1/a1b2")).await.expect("destroy");
    let log = fake.log.lock().expect("lock").clone();
    let del = log.last().expect("destroy logged");
    assert_eq!(del.endpoint, "destroy");
    assert_eq!(
        names(&del.fields),
        ["api_key", "invalidate", "public_id", "signature", "timestamp"]
    );
    assert_eq!(s.get(&k("avatars/u1/a1b2")).await, Err(Error::not_found("blob")));
    // Destroying a missing asset ("not found") is not an error.
    s.delete(&k("avatars/u1/a1b2")).await.expect("destroy again");
}

#[tokio::test]
async fn sha256_signatures_when_configured() {
    let (base, fake) = start_fake(true).await;
    let mut c = config(&base, Arc::new(ManualClock::new(NOW_MS)));
    c.signature_algorithm = SignatureAlgorithm::Sha256;
    let s = CloudinaryBlobStore::new(c).expect("store");
    s.put(&k("k256"), Bytes::from_static(PNG), "image/png")
        .await
        .expect("sha256 upload");
    let log = fake.log.lock().expect("lock").clone();
    let sig = log[0]
        .fields
        .iter()
        .find(|(k, _)| k == "signature")
        .map(|(_, v)| v.len());
    assert_eq!(sig, Some(64), "SHA-256 hex");
    s.delete(&k("k256")).await.expect("sha256 destroy");

    // The same mock refuses SHA-1 signatures: the check is real.
    let sha1_store = store(&base);
    let e = sha1_store
        .put(&k("k1"), Bytes::from_static(PNG), "image/png")
        .await
        .expect_err("wrong digest");
    assert_eq!(e.code(), ErrorCode::Internal, "{e}");
    assert!(fake.assets.lock().expect("lock").get("k1").is_none());
}

#[tokio::test]
async fn a_wrong_secret_is_refused_and_nothing_is_stored() {
    let (base, fake) = start_fake(false).await;
    let mut c = config(&base, Arc::new(ManualClock::new(NOW_MS)));
    c.api_secret = "not-the-secret".into();
    let s = CloudinaryBlobStore::new(c).expect("store");
    let e = s
        .put(&k("k"), Bytes::from_static(PNG), "image/png")
        .await
        .expect_err("401");
    assert_eq!(e.code(), ErrorCode::Internal);
    assert_eq!(e.body().message, "internal error", "no Cloudinary details on the wire");
    assert!(fake.assets.lock().expect("lock").is_empty());
    let e = s.delete(&k("k")).await.expect_err("401 on destroy");
    assert_eq!(e.code(), ErrorCode::Internal);
}

#[tokio::test]
async fn a_stale_timestamp_is_a_configuration_error_not_the_users() {
    let (base, fake) = start_fake(false).await;
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let s = CloudinaryBlobStore::new(config(&base, clock.clone())).expect("store");
    clock.advance(-2 * 3600 * 1000);
    let e = s
        .put(&k("k"), Bytes::from_static(PNG), "image/png")
        .await
        .expect_err("stale");
    assert_eq!(e.code(), ErrorCode::Internal, "{e}");
    assert!(fake.assets.lock().expect("lock").is_empty());
    clock.set(NOW_MS);
    s.put(&k("k"), Bytes::from_static(PNG), "image/png")
        .await
        .expect("fresh");
}

#[tokio::test]
async fn a_file_cloudinary_refuses_is_invalid_input() {
    let (base, _fake) = start_fake(false).await;
    // Declared as an image, but not one (the gateway sniffs first; this is the backstop).
    let e = store(&base)
        .put(&k("k"), Bytes::from_static(b"RIFF....WEBPnot really"), "image/webp")
        .await
        .expect_err("invalid image file");
    assert_eq!(
        (e.code(), e.body().field.as_deref()),
        (ErrorCode::InvalidInput, Some("file"))
    );
}

#[tokio::test]
async fn non_images_and_dotted_keys_are_refused_before_any_request() {
    let (base, fake) = start_fake(false).await;
    let s = store(&base);
    let e = s
        .put(&k("k"), Bytes::from_static(b"%PDF-1.7"), "application/pdf")
        .await
        .expect_err("pdf");
    assert_eq!(
        (e.code(), e.body().field.as_deref()),
        (ErrorCode::InvalidInput, Some("content_type"))
    );
    let e = s
        .put(&k("a.png"), Bytes::from_static(PNG), "image/png")
        .await
        .expect_err("dotted");
    assert_eq!(
        (e.code(), e.body().field.as_deref()),
        (ErrorCode::InvalidInput, Some("key"))
    );
    // Traversal cannot even be built as a `BlobKey`, so never reaches the store.
    for key in ["../x", "/x"] {
        let e = BlobKey::parse(key).expect_err(key);
        assert_eq!(
            (e.code(), e.body().field.as_deref()),
            (ErrorCode::InvalidInput, Some("key"))
        );
    }
    assert!(fake.log.lock().expect("lock").is_empty(), "no request was sent");
}

// ----- failure modes (wiremock) -----

use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn server_errors_are_retried_then_unavailable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/v1_1/{CLOUD}/image/upload")))
        .respond_with(ResponseTemplate::new(502))
        .expect(3)
        .mount(&server)
        .await;
    let e = store(&server.uri())
        .put(&k("k"), Bytes::from_static(PNG), "image/png")
        .await
        .expect_err("502");
    assert_eq!(e.code(), ErrorCode::Unavailable);
}

#[tokio::test]
async fn rate_limits_carry_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/v1_1/{CLOUD}/image/upload")))
        .respond_with(
            ResponseTemplate::new(420)
                .insert_header("Retry-After", "12")
                .set_body_json(json!({"error": {"message": "Rate Limit Exceeded"}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/v1_1/{CLOUD}/image/destroy")))
        .respond_with(ResponseTemplate::new(429))
        .expect(1)
        .mount(&server)
        .await;
    let s = store(&server.uri());
    assert_eq!(
        s.put(&k("k"), Bytes::from_static(PNG), "image/png").await,
        Err(Error::RateLimited { retry_after_ms: 12_000 })
    );
    assert_eq!(
        s.delete(&k("k")).await,
        Err(Error::RateLimited { retry_after_ms: 30_000 })
    );
}

#[tokio::test]
async fn delivery_errors_map_and_the_content_type_is_kept() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/{CLOUD}/image/upload/ok")))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "image/gif")
                .set_body_bytes(b"GIF89a...".to_vec()),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/{CLOUD}/image/upload/down")))
        .respond_with(ResponseTemplate::new(503))
        .expect(3)
        .mount(&server)
        .await;
    let s = store(&server.uri());
    let blob = s.get(&k("ok")).await.expect("get");
    assert_eq!(
        (blob.content_type.as_str(), &blob.bytes[..]),
        ("image/gif", &b"GIF89a..."[..])
    );
    assert_eq!(s.get(&k("missing")).await, Err(Error::not_found("blob")));
    assert_eq!(s.get(&k("down")).await.expect_err("503").code(), ErrorCode::Unavailable);
}

#[test]
fn configuration_is_checked_and_the_secret_never_printed() {
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let mut c = config("http://127.0.0.1:1", clock.clone());
    assert!(!format!("{c:?}").contains(SECRET));
    assert!(!format!("{:?}", CloudinaryBlobStore::new(c.clone()).expect("ok")).contains(SECRET));
    c.cloud_name = "demo/../x".into();
    assert!(CloudinaryBlobStore::new(c).is_err());
    let mut c = config("ftp://x", clock);
    c.delivery_base = "http://127.0.0.1:1".into();
    assert!(CloudinaryBlobStore::new(c).is_err());
}
