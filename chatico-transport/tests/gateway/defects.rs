//! Issue 12 over the real gateway: tokens not valid yet, cursors from the future, error texts
//! said once, receipts across a block, phone numbers, avatars.

use chatico_core::ports::Clock as _;
use chatico_core::protocol::close_code;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::common::*;

/// `token` re-signed with the server's secret and `nbf` set `secs` from the server's clock.
fn with_nbf(srv: &TestServer, token: &str, secs: i64) -> String {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("b64");
    let mut claims: Value = serde_json::from_slice(&bytes).expect("claims");
    claims["nbf"] = json!(srv.clock.now_ms() / 1000 + secs);
    let secret = &srv.gateway.engine().config().auth.jwt_secret;
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("encode")
}

#[tokio::test]
async fn a_token_whose_nbf_is_ahead_is_refused_on_rest_the_handshake_and_the_auth_frame() {
    let srv = TestServer::start().await;
    let a = srv.login("+15557770001").await;
    let early = with_nbf(&srv, &a.token, 600);
    // REST.
    let (s, v) = srv.call(Method::GET, "/v1/me", Some(&early), None).await;
    assert_eq!(
        (s, v["code"].clone()),
        (StatusCode::UNAUTHORIZED, json!("unauthorized")),
        "{v}"
    );
    // The WebSocket handshake.
    let r = Ws::connect(srv.addr, Some(&early), None).await;
    match r {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 401),
        other => panic!("handshake with a token not valid yet: {:?}", other.map(|_| ())),
    }
    // The auth frame.
    let mut w = Ws::connect(srv.addr, None, None).await.expect("connect");
    let f = w.request("auth", json!({ "token": early })).await;
    assert_eq!(f["error"]["code"], "unauthorized", "{f}");
    assert_eq!(w.close_code().await.0, close_code::UNAUTHORIZED);
    // Once the clock reaches it, the same token works; an nbf in the past always did.
    srv.clock.advance(600_000);
    let (s, _) = srv.call(Method::GET, "/v1/me", Some(&early), None).await;
    assert_eq!(s, StatusCode::OK);
    let past = with_nbf(&srv, &a.token, -60);
    let (s, _) = srv.call(Method::GET, "/v1/me", Some(&past), None).await;
    assert_eq!(s, StatusCode::OK);
}


#[tokio::test]
async fn error_texts_say_things_once_and_the_json_413_states_its_limit() {
    let srv = TestServer::start().await;
    let a = srv.login("+15557770021").await;
    let limit = srv.gateway.config().max_body_bytes;
    let big = json!({ "bio": "x".repeat(limit + 10) });
    let (s, v) = srv.call(Method::PATCH, "/v1/me", Some(&a.token), Some(big)).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!(v["code"], "too_large");
    assert_eq!(v["limit"], json!(limit));
    assert_eq!(v["message"], json!(format!("request body too large (limit {limit})")));
    // A bad phone: the field named once.
    let (s, v) = srv
        .call(Method::POST, "/v1/auth/otp", None, Some(json!({ "phone": "12" })))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let m = v["message"].as_str().expect("message");
    assert_eq!(m.matches("phone").count(), 1, "{m}");
    assert_eq!(v["field"], "phone");
    // And back through the one mapping every client uses: the same text, once.
    let body = serde_json::to_vec(&v).expect("json");
    let e = chatico_core::Error::from_response(s.as_u16(), &body);
    assert_eq!(e.to_string(), m);
}

