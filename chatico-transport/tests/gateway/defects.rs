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
async fn a_cursor_from_the_future_is_refused_on_sync_and_subscribe_and_delivery_goes_on() {
    let srv = TestServer::start().await;
    let a = srv.login("+15557770011").await;
    let b = srv.login("+15557770012").await;
    let d = srv
        .ok(Method::POST, "/v1/conversations/direct", &a, json!({ "user_id": b.id }))
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let end = srv.get("/v1/sync?since=0", &b).await["page"]["next"]
        .as_i64()
        .expect("next");
    let future = end + 100_000;
    let (s, v) = srv
        .call(Method::GET, &format!("/v1/sync?since={future}"), Some(&b.token), None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(
        (v["code"].clone(), v["field"].clone()),
        (json!("invalid_input"), json!("since"))
    );
    // The end itself is a valid cursor.
    srv.get(&format!("/v1/sync?since={end}"), &b).await;

    // WebSocket: subscribe with the future cursor is refused, the connection stays usable.
    let mut w = Ws::connect(srv.addr, Some(&b.token), None).await.expect("connect");
    w.expect_ready().await;
    let f = w.request("subscribe", json!({ "since": future })).await;
    assert_eq!(f["type"], "error", "{f}");
    assert_eq!(
        (f["error"]["code"].clone(), f["error"]["field"].clone()),
        (json!("invalid_input"), json!("since"))
    );
    let f = w.request("sync", json!({ "since": future })).await;
    assert_eq!(f["error"]["field"], "since", "{f}");
    // A valid subscribe afterwards, and a new message is delivered on that socket.
    w.subscribe(Some(end)).await;
    srv.ok(
        Method::POST,
        &format!("/v1/conversations/{d}/messages"),
        &a,
        json!({ "client_msg_id": "m1", "content": { "type": "text", "text": "still here?" } }),
    )
    .await;
    let e = w.event(|e| is_change(e, "message")).await;
    assert_eq!(text_of(&e), "still here?");
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

#[tokio::test]
async fn receipts_across_a_block_reach_neither_socket_nor_the_member_list() {
    let srv = TestServer::start().await;
    let a = srv.login("+15557770031").await;
    let b = srv.login("+15557770032").await;
    let c = srv.login("+15557770033").await;
    let g = srv
        .ok(
            Method::POST,
            "/v1/conversations/group",
            &a,
            json!({ "title": "G", "members": [b.id, c.id] }),
        )
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let sent = srv
        .ok(
            Method::POST,
            &format!("/v1/conversations/{g}/messages"),
            &c,
            json!({ "client_msg_id": "m1", "content": { "type": "text", "text": "hi" } }),
        )
        .await;
    let seq = sent["seq"].as_i64().expect("seq");
    srv.ok(Method::PUT, &format!("/v1/blocks/{}", a.id), &b, json!({}))
        .await;
    let since = srv.get("/v1/sync?since=0&limit=500", &b).await["page"]["next"]
        .as_i64()
        .expect("next");
    let mut wb = srv.ws(&b).await;
    let mut wc = srv.ws(&c).await;
    srv.ok(
        Method::POST,
        &format!("/v1/conversations/{g}/receipts"),
        &a,
        json!({ "read_seq": seq }),
    )
    .await;
    // C sees A's receipt; B does not (a sentinel from C shows B's stream went past it).
    let e = wc.event(|e| is_change(e, "receipt")).await;
    assert_eq!(e["kind"]["user_id"], json!(a.id));
    srv.ok(
        Method::POST,
        &format!("/v1/conversations/{g}/messages"),
        &c,
        json!({ "client_msg_id": "sentinel", "content": { "type": "text", "text": "sentinel" } }),
    )
    .await;
    let frames = wb
        .until(|f| f["type"] == "event" && text_of(&f["event"]) == "sentinel")
        .await;
    assert!(
        !frames.iter().any(|f| is_change(&f["event"], "receipt")),
        "a receipt crossed the block: {frames:?}"
    );
    // Sync agrees.
    let page = srv.get(&format!("/v1/sync?since={since}"), &b).await;
    let changes = page["page"]["changes"].as_array().expect("changes");
    assert!(!changes.iter().any(|c| c["kind"]["type"] == "receipt"), "{page}");
    // The member list: A's watermarks hidden from B, shown to C.
    let seen = |v: &Value| {
        let m = v["members"]
            .as_array()
            .expect("members")
            .iter()
            .find(|m| m["user_id"] == json!(a.id))
            .expect("a")
            .clone();
        (m["delivered_seq"].clone(), m["read_seq"].clone())
    };
    let path = format!("/v1/conversations/{g}");
    assert_eq!(seen(&srv.get(&path, &b).await), (json!(0), json!(0)));
    assert_eq!(seen(&srv.get(&path, &c).await), (json!(seq), json!(seq)));
}

#[tokio::test]
async fn phones_are_shown_only_where_expected_and_an_exact_number_finds_its_user() {
    let srv = TestServer::start().await;
    let a = srv.login("+15557770041").await;
    let b = srv.login("+15557770042").await;
    let all = srv.get("/v1/users?limit=100", &a).await;
    let listed = |v: &Value, id: &str| {
        v.as_array()
            .expect("list")
            .iter()
            .find(|p| p["id"] == json!(id))
            .cloned()
            .expect("listed")
    };
    let pb = listed(&all, &b.id);
    assert!(pb["display_name"].is_string());
    assert!(pb.get("phone").is_none(), "a stranger's number: {pb}");
    assert_eq!(listed(&all, &a.id)["phone"], "+15557770041", "your own");
    // No prefix search.
    let r = srv.get("/v1/users?q=%2B1555777004", &a).await;
    assert_eq!(r, json!([]));
    // The exact number finds B, with the number.
    let r = srv.get("/v1/users?q=%2B15557770042", &a).await;
    assert_eq!(r.as_array().map(Vec::len), Some(1), "{r}");
    assert_eq!(
        (r[0]["id"].clone(), r[0]["phone"].clone()),
        (json!(b.id), json!("+15557770042"))
    );
    // After a chat starts, the number shows to the peer.
    srv.ok(Method::POST, "/v1/conversations/direct", &a, json!({ "user_id": b.id }))
        .await;
    let pb = srv.get(&format!("/v1/users/{}", b.id), &a).await;
    assert_eq!(pb["phone"], "+15557770042");
}

#[tokio::test]
async fn an_avatar_url_must_be_your_own_avatar_upload() {
    let srv = TestServer::start().await;
    let a = srv.login("+15557770051").await;
    let (s, v) = srv
        .call(
            Method::PATCH,
            "/v1/me",
            Some(&a.token),
            Some(json!({ "avatar_url": "https://tracker.example/pixel.png" })),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(
        (v["code"].clone(), v["field"].clone()),
        (json!("invalid_input"), json!("avatar_url"))
    );
    let me = srv.get("/v1/me", &a).await;
    assert_eq!(me["avatar_url"], Value::Null, "nothing changed");
}
