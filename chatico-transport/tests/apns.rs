//! The APNs sender against a local mock of Apple's service: HTTP/2 only (ALPN `h2`) over TLS
//! on loopback, with a certificate from a test CA made here (rcgen). The mock checks every
//! request exactly — HTTP/2, method and path, the provider token (ES256 signature with the
//! key's public half, `kid`, `iss`, `iat`), the `apns-*` headers and the JSON payload — and
//! answers with the statuses and `{"reason": ...}` bodies Apple documents.
#![cfg(feature = "apns")]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chatico_core::ids::{ConversationId, UserId};
use chatico_core::push::{Platform, PushError, PushKind, PushNotification, PushSender};
use chatico_transport::push::{ApnsConfig, ApnsSender};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, pki_types};

const KEY_ID: &str = "ABC123DEFG";
const TEAM_ID: &str = "DEF123GHIJ";
const TOPIC: &str = "com.example.chat";
const OK_TOKEN: &str = "0a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728aa";

/// What the mock saw, and the key it checks tokens with.
struct Mock {
    public_key_pem: String,
    /// Provider tokens seen, in order.
    tokens: Mutex<Vec<String>>,
    /// Requests that failed a check, with why.
    mismatches: Mutex<Vec<String>>,
    /// Requests that passed every check.
    accepted: Mutex<u32>,
}

struct Apns {
    addr: SocketAddr,
    ca_pem: String,
    key_pem: String,
    mock: Arc<Mock>,
}

fn expected_payload(body: Option<&str>) -> Value {
    let c = "0190a0b0-0000-7000-8000-000000000001";
    let mut alert = json!({ "title": "New message" });
    if let Some(b) = body {
        alert["body"] = json!(b);
    }
    json!({
        "aps": { "alert": alert, "badge": 4, "sound": "default", "thread-id": c },
        "chatico_conversation": c,
        "chatico_seq": "12",
        "chatico_kind": "message",
    })
}

impl Mock {
    /// Every check of one request; the reason of the first that fails.
    fn check(&self, parts: &hyper::http::request::Parts, body: &[u8]) -> Result<String, String> {
        if parts.version != Version::HTTP_2 {
            return Err(format!("not HTTP/2: {:?}", parts.version));
        }
        if parts.method != hyper::Method::POST {
            return Err(format!("method {}", parts.method));
        }
        let token = parts
            .uri
            .path()
            .strip_prefix("/3/device/")
            .ok_or_else(|| format!("path {}", parts.uri.path()))?
            .to_owned();
        let h = |n: &str| {
            parts
                .headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let auth = h("authorization");
        let jwt = auth
            .strip_prefix("bearer ")
            .ok_or("authorization is not `bearer <jwt>`")?;
        let header = jsonwebtoken::decode_header(jwt).map_err(|e| e.to_string())?;
        if header.alg != Algorithm::ES256 || header.kid.as_deref() != Some(KEY_ID) {
            return Err(format!("jwt header {header:?}"));
        }
        let mut v = Validation::new(Algorithm::ES256);
        v.set_issuer(&[TEAM_ID]);
        v.set_required_spec_claims(&["iss"]);
        v.validate_exp = false;
        let key = DecodingKey::from_ec_pem(self.public_key_pem.as_bytes()).map_err(|e| e.to_string())?;
        let claims = jsonwebtoken::decode::<Value>(jwt, &key, &v)
            .map_err(|e| format!("jwt: {e}"))?
            .claims;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_secs() as i64;
        if claims.as_object().map(|o| o.len()) != Some(2) || (now - claims["iat"].as_i64().unwrap_or(0)).abs() > 60 {
            return Err(format!("claims {claims}"));
        }
        self.tokens.lock().expect("lock").push(jwt.to_owned());
        for (name, want) in [
            ("apns-topic", TOPIC),
            ("apns-push-type", "alert"),
            ("apns-priority", "10"),
            ("apns-collapse-id", "0190a0b0-0000-7000-8000-000000000001"),
            ("content-type", "application/json"),
        ] {
            if h(name) != want {
                return Err(format!("{name}: {:?}", h(name)));
            }
        }
        let exp: i64 = h("apns-expiration").parse().map_err(|_| "apns-expiration")?;
        if (exp - now - 86_400).abs() > 60 {
            return Err(format!("apns-expiration {exp}"));
        }
        let got: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        let want = expected_payload(if token == OK_TOKEN { None } else { Some("hi") });
        if token == OK_TOKEN && got != want {
            return Err(format!("payload {got}"));
        }
        Ok(token)
    }

    fn answer(&self, token: &str) -> Response<Full<Bytes>> {
        let (status, body) = match token {
            OK_TOKEN => (StatusCode::OK, String::new()),
            t if t.starts_with("dead") => (
                StatusCode::GONE,
                json!({ "reason": "Unregistered", "timestamp": 1_700_000_000_000_i64 }).to_string(),
            ),
            t if t.starts_with("bad") => (
                StatusCode::BAD_REQUEST,
                json!({ "reason": "BadDeviceToken" }).to_string(),
            ),
            t if t.starts_with("bbb") => (
                StatusCode::TOO_MANY_REQUESTS,
                json!({ "reason": "TooManyRequests" }).to_string(),
            ),
            _ => (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "reason": "ServiceUnavailable" }).to_string(),
            ),
        };
        let mut r = Response::builder()
            .status(status)
            .header("apns-id", "EC1BF194-B3B2-424A-89A9-5A918A6E6B5D");
        if status == StatusCode::TOO_MANY_REQUESTS {
            r = r.header("retry-after", "5");
        }
        r.body(Full::new(Bytes::from(body))).expect("response")
    }
}

/// Starts the mock on 127.0.0.1 with a server certificate for `127.0.0.1` from a fresh CA.
async fn start() -> Apns {
    let ca_key = rcgen::KeyPair::generate().expect("ca key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "ChatiCO test CA");
    let ca = ca_params.self_signed(&ca_key).expect("ca");
    let server_key = rcgen::KeyPair::generate().expect("server key");
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("params");
    let cert = params.signed_by(&server_key, &ca, &ca_key).expect("server cert");

    let mut tls = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("tls versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into()),
        )
        .expect("tls config");
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(tls));

    let signing = rcgen::KeyPair::generate().expect("signing key"); // P-256, like an .p8 key
    let mock = Arc::new(Mock {
        public_key_pem: signing.public_key_pem(),
        tokens: Mutex::new(Vec::new()),
        mismatches: Mutex::new(Vec::new()),
        accepted: Mutex::new(0),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let m = mock.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let acceptor = acceptor.clone();
            let m = m.clone();
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(tcp).await else { return };
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let m = m.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        let resp = match m.check(&parts, &bytes) {
                            Ok(token) => {
                                *m.accepted.lock().expect("lock") += 1;
                                m.answer(&token)
                            }
                            Err(why) => {
                                m.mismatches.lock().expect("lock").push(why.clone());
                                Response::builder()
                                    .status(StatusCode::BAD_REQUEST)
                                    .body(Full::new(Bytes::from(json!({ "reason": why }).to_string())))
                                    .expect("response")
                            }
                        };
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Apns {
        addr,
        ca_pem: ca.pem(),
        key_pem: signing.serialize_pem(),
        mock,
    }
}

fn sender(apns: &Apns) -> ApnsSender {
    let mut config = ApnsConfig::new(apns.key_pem.clone(), KEY_ID, TEAM_ID);
    config.base_url = format!("https://{}", apns.addr);
    config.extra_roots_pem = Some(apns.ca_pem.clone());
    config.timeout = Duration::from_secs(5);
    ApnsSender::new(config).expect("sender")
}

fn notification(token: &str, body: Option<&str>) -> PushNotification {
    let c = ConversationId(uuid::Uuid::from_u128(0x0190_a0b0_0000_7000_8000_0000_0000_0001));
    PushNotification {
        platform: Platform::Apns,
        token: token.to_owned(),
        app_id: TOPIC.into(),
        locale: None,
        user_id: UserId(uuid::Uuid::from_u128(2)),
        title: "New message".into(),
        body: body.map(str::to_owned),
        conversation_id: c,
        seq: 12,
        kind: PushKind::Message,
        badge: 4,
        collapse_id: c.to_string(),
    }
}

#[tokio::test]
async fn sends_the_exact_request_over_http2_and_reuses_the_provider_token() {
    let apns = start().await;
    let s = sender(&apns);
    s.send(&notification(OK_TOKEN, None)).await.expect("first");
    s.send(&notification(OK_TOKEN, None)).await.expect("second");
    assert!(apns.mock.mismatches.lock().expect("lock").is_empty());
    assert_eq!(*apns.mock.accepted.lock().expect("lock"), 2);
    let tokens = apns.mock.tokens.lock().expect("lock").clone();
    assert_eq!(tokens.len(), 2);
    assert_eq!(
        tokens[0], tokens[1],
        "the provider token is reused, not signed per request"
    );
}

#[tokio::test]
async fn apple_error_answers_map_to_push_errors() {
    let apns = start().await;
    let s = sender(&apns);
    assert_eq!(
        s.send(&notification("deadbeef", Some("hi"))).await,
        Err(PushError::Unregistered)
    );
    assert_eq!(
        s.send(&notification("bad0", Some("hi"))).await,
        Err(PushError::Unregistered)
    );
    match s.send(&notification("bbb1", Some("hi"))).await {
        Err(PushError::Retry { retry_after, .. }) => assert_eq!(retry_after, Some(Duration::from_secs(5))),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        s.send(&notification("c0ffee", Some("hi"))).await,
        Err(PushError::Retry { retry_after: None, .. })
    ));
    assert!(
        apns.mock.mismatches.lock().expect("lock").is_empty(),
        "{:?}",
        apns.mock.mismatches
    );
    // A token that is not hex never leaves the process.
    assert_eq!(
        s.send(&notification("not-hex", None)).await,
        Err(PushError::Unregistered)
    );
    assert_eq!(*apns.mock.accepted.lock().expect("lock"), 4);
}

#[tokio::test]
async fn an_untrusted_server_is_not_spoken_to() {
    let apns = start().await;
    let mut config = ApnsConfig::new(apns.key_pem.clone(), KEY_ID, TEAM_ID);
    config.base_url = format!("https://{}", apns.addr);
    config.timeout = Duration::from_secs(5);
    let s = ApnsSender::new(config).expect("sender");
    assert!(matches!(
        s.send(&notification(OK_TOKEN, None)).await,
        Err(PushError::Retry { .. })
    ));
    assert_eq!(*apns.mock.accepted.lock().expect("lock"), 0);
    let bad = ApnsConfig::new("not a key", KEY_ID, TEAM_ID);
    assert!(ApnsSender::new(bad).is_err());
}
