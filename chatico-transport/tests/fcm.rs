//! The FCM HTTP v1 sender against a local mock (wiremock) of Google's token endpoint and of
//! FCM: the mock checks the exact requests — the JWT-bearer grant's form and its assertion
//! (RS256 signature with the service account's public key, header `kid`, claims `iss`,
//! `scope`, `aud`, `iat`, `exp`), the send's bearer token, content type and JSON body — and
//! answers with the documented error shapes.
//!
//! `tests/testdata/fcm-test-key.pem` is a throwaway RSA key made for these tests only.
#![cfg(feature = "fcm")]

use std::time::Duration;

use chatico_core::ids::{ConversationId, UserId};
use chatico_core::push::{Platform, PushError, PushKind, PushNotification, PushSender};
use chatico_transport::push::{FCM_SCOPE, FcmConfig, FcmSender, ServiceAccountKey};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

const PRIVATE_KEY: &str = include_str!("testdata/fcm-test-key.pem");
const PUBLIC_KEY: &str = include_str!("testdata/fcm-test-key.pub.pem");
const EMAIL: &str = "chatico-push@demo-project.iam.gserviceaccount.com";
const KEY_ID: &str = "0123456789abcdef0123456789abcdef01234567";
const SEND_PATH: &str = "/v1/projects/demo-project/messages:send";

fn key(server: &MockServer) -> ServiceAccountKey {
    ServiceAccountKey::from_json(
        &json!({
            "type": "service_account",
            "project_id": "demo-project",
            "private_key_id": KEY_ID,
            "private_key": PRIVATE_KEY,
            "client_email": EMAIL,
            "client_id": "1234567890",
            "token_uri": format!("{}/token", server.uri()),
        })
        .to_string(),
    )
    .expect("key json")
}

fn sender(server: &MockServer) -> FcmSender {
    let mut config = FcmConfig::new(key(server));
    config.base_url = server.uri();
    config.timeout = Duration::from_secs(5);
    FcmSender::new(config).expect("sender")
}

fn notification(token: &str) -> PushNotification {
    let c = ConversationId(uuid::Uuid::from_u128(0x0190_a0b0_0000_7000_8000_0000_0000_0001));
    PushNotification {
        platform: Platform::Fcm,
        token: token.to_owned(),
        app_id: "com.example.chat".into(),
        locale: None,
        user_id: UserId(uuid::Uuid::from_u128(2)),
        title: "New message".into(),
        body: None,
        conversation_id: c,
        seq: 12,
        kind: PushKind::Reply,
        badge: 4,
        collapse_id: c.to_string(),
    }
}

/// The JWT-bearer grant exactly as Google documents it, with a valid assertion.
struct ValidGrant {
    token_uri: String,
}

impl Match for ValidGrant {
    fn matches(&self, req: &Request) -> bool {
        let form: Vec<(String, String)> = url_pairs(&req.body);
        let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        if form.len() != 2 || get("grant_type").as_deref() != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
            return false;
        }
        if req.headers.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/x-www-form-urlencoded") {
            return false;
        }
        let Some(assertion) = get("assertion") else {
            return false;
        };
        let Ok(header) = jsonwebtoken::decode_header(&assertion) else {
            return false;
        };
        if header.alg != Algorithm::RS256 || header.kid.as_deref() != Some(KEY_ID) {
            return false;
        }
        let mut v = Validation::new(Algorithm::RS256);
        v.set_audience(&[&self.token_uri]);
        v.set_issuer(&[EMAIL]);
        v.set_required_spec_claims(&["exp", "iat", "iss", "aud"]);
        let key = DecodingKey::from_rsa_pem(PUBLIC_KEY.as_bytes()).expect("public key");
        let Ok(data) = jsonwebtoken::decode::<Value>(&assertion, &key, &v) else {
            return false;
        };
        let c = data.claims;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("time")
            .as_secs() as i64;
        let iat = c["iat"].as_i64().unwrap_or(0);
        c["scope"] == FCM_SCOPE && c["exp"].as_i64() == Some(iat + 3600) && (now - iat).abs() < 60
    }
}

/// `application/x-www-form-urlencoded` pairs, decoded.
fn url_pairs(body: &[u8]) -> Vec<(String, String)> {
    let s = String::from_utf8_lossy(body);
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap_or(b'?'));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn token_endpoint(server: &MockServer, access_token: &str, times: u64) {
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(ValidGrant {
            token_uri: format!("{}/token", server.uri()),
        })
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": access_token, "expires_in": 3599, "token_type": "Bearer"
        })))
        .up_to_n_times(times)
        .expect(times)
        .mount(server)
        .await;
}

fn expected_body(token: &str) -> Value {
    let c = "0190a0b0-0000-7000-8000-000000000001";
    json!({
        "message": {
            "token": token,
            "notification": { "title": "New message" },
            "data": { "chatico_conversation": c, "chatico_seq": "12", "chatico_kind": "reply" },
            "android": {
                "collapse_key": c,
                "priority": "high",
                "notification": { "tag": c, "notification_count": 4 },
            },
            "apns": {
                "headers": { "apns-collapse-id": c },
                "payload": { "aps": { "alert": { "title": "New message" }, "badge": 4, "sound": "default" } },
            },
        }
    })
}

#[tokio::test]
async fn sends_the_exact_message_and_reuses_the_access_token() {
    let server = MockServer::start().await;
    token_endpoint(&server, "ya29.first", 1).await;
    Mock::given(method("POST"))
        .and(path(SEND_PATH))
        .and(header("authorization", "Bearer ya29.first"))
        .and(header("content-type", "application/json"))
        .and(body_json(expected_body("device-token-1")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "name": "projects/demo-project/messages/0:1" })))
        .expect(2)
        .mount(&server)
        .await;
    let s = sender(&server);
    s.send(&notification("device-token-1")).await.expect("first send");
    s.send(&notification("device-token-1"))
        .await
        .expect("second send, same token");
    // `expect(..)` counts are verified when the server drops.
}

#[tokio::test]
async fn unregistered_tokens_quota_and_outages_map_to_push_errors() {
    let server = MockServer::start().await;
    token_endpoint(&server, "ya29.t", 1).await;
    let fcm_error = |code: u16, status: &str, error_code: &str, message: &str| {
        json!({ "error": { "code": code, "message": message, "status": status, "details": [
            { "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": error_code }
        ] } })
    };
    for (token, resp) in [
        (
            "gone",
            ResponseTemplate::new(404).set_body_json(fcm_error(
                404,
                "NOT_FOUND",
                "UNREGISTERED",
                "Requested entity was not found.",
            )),
        ),
        (
            "busy",
            ResponseTemplate::new(429)
                .insert_header("retry-after", "7")
                .set_body_json(fcm_error(
                    429,
                    "RESOURCE_EXHAUSTED",
                    "QUOTA_EXCEEDED",
                    "Quota exceeded.",
                )),
        ),
        (
            "down",
            ResponseTemplate::new(503).set_body_json(fcm_error(
                503,
                "UNAVAILABLE",
                "UNAVAILABLE",
                "The service is currently unavailable.",
            )),
        ),
        (
            "bad",
            ResponseTemplate::new(400).set_body_json(fcm_error(
                400,
                "INVALID_ARGUMENT",
                "INVALID_ARGUMENT",
                "The registration token is not a valid FCM registration token",
            )),
        ),
    ] {
        Mock::given(method("POST"))
            .and(path(SEND_PATH))
            .and(body_json(expected_body(token)))
            .respond_with(resp)
            .expect(1)
            .mount(&server)
            .await;
    }
    let s = sender(&server);
    assert_eq!(s.send(&notification("gone")).await, Err(PushError::Unregistered));
    match s.send(&notification("busy")).await {
        Err(PushError::Retry { retry_after, .. }) => assert_eq!(retry_after, Some(Duration::from_secs(7))),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        s.send(&notification("down")).await,
        Err(PushError::Retry { retry_after: None, .. })
    ));
    assert!(matches!(
        s.send(&notification("bad")).await,
        Err(PushError::Rejected(_))
    ));
}

#[tokio::test]
async fn a_refused_access_token_is_renewed_once() {
    let server = MockServer::start().await;
    let s = sender(&server);
    // The first grant answers a token FCM then refuses; the second a new one.
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(ValidGrant {
            token_uri: format!("{}/token", server.uri()),
        })
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "ya29.old", "expires_in": 3599, "token_type": "Bearer"
        })))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(ValidGrant {
            token_uri: format!("{}/token", server.uri()),
        })
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "ya29.new", "expires_in": 3599, "token_type": "Bearer"
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(SEND_PATH))
        .and(header("authorization", "Bearer ya29.old"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({ "error": {
            "code": 401, "status": "UNAUTHENTICATED",
            "message": "Request had invalid authentication credentials."
        } })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(SEND_PATH))
        .and(header("authorization", "Bearer ya29.new"))
        .and(body_json(expected_body("t")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "name": "projects/demo-project/messages/0:2" })))
        .expect(1)
        .mount(&server)
        .await;
    s.send(&notification("t")).await.expect("sent after one renewal");
}

#[tokio::test]
async fn a_refused_grant_is_a_configuration_error_and_an_outage_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": "invalid_grant", "error_description": "Invalid JWT Signature."
        })))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(503).insert_header("retry-after", "3"))
        .mount(&server)
        .await;
    let s = sender(&server);
    match s.send(&notification("t")).await {
        Err(PushError::Rejected(r)) => assert!(r.contains("invalid_grant"), "{r}"),
        other => panic!("{other:?}"),
    }
    match s.send(&notification("t")).await {
        Err(PushError::Retry { retry_after, .. }) => assert_eq!(retry_after, Some(Duration::from_secs(3))),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_configuration_is_refused() {
    let k = ServiceAccountKey {
        project_id: "demo-project".into(),
        private_key_id: KEY_ID.into(),
        private_key: "not a key".into(),
        client_email: EMAIL.into(),
        token_uri: "https://example.invalid/token".into(),
    };
    let e = FcmSender::new(FcmConfig::new(k.clone())).expect_err("bad key");
    assert_eq!(e.code(), chatico_core::ErrorCode::InvalidInput);
    let e = FcmSender::new(FcmConfig::new(ServiceAccountKey {
        project_id: "a/b".into(),
        private_key: PRIVATE_KEY.into(),
        ..k
    }))
    .expect_err("bad project");
    assert_eq!(e.code(), chatico_core::ErrorCode::InvalidInput);
    assert!(ServiceAccountKey::from_json("{}").is_err());
}
