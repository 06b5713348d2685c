//! Bad input over REST and the WebSocket: each gets its documented error, and nothing is
//! stored or fanned out.

use std::time::Duration;

use chatico_core::protocol::close_code;
use futures::SinkExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::common::{TestServer, User, Ws, is_change, test_config, text_of};

fn assert_error(status: StatusCode, body: &Value, want_status: u16, code: &str) {
    assert_eq!(status.as_u16(), want_status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
}

fn tamper(token: &str) -> String {
    // Flip one character of the signature.
    let mut chars: Vec<char> = token.chars().collect();
    let i = chars.len() - 3;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

/// Three users, a direct conversation between A and B with one message, B subscribed.
async fn setup() -> (TestServer, User, User, User, String, Ws) {
    let srv = TestServer::start().await;
    let a = srv.login("+15550000011").await;
    let b = srv.login("+15550000012").await;
    let c = srv.login("+15550000013").await;
    let d = srv.open_direct(&a, &b).await;
    srv.send_text(&d, &a, "m1", "first").await;
    let wb = srv.ws(&b).await;
    (srv, a, b, c, d, wb)
}

/// A sends a sentinel into `d`; B's frames up to it must hold nothing else about `d`.
async fn assert_nothing_fanned_out(srv: &TestServer, a: &User, d: &str, wb: &mut Ws, tag: &str) {
    srv.send_text(d, a, tag, tag).await;
    let frames = wb.until(|f| f["type"] == "event" && text_of(&f["event"]) == tag).await;
    // Presence comes and goes with A's connections; no change other than the sentinel.
    let changes: Vec<&Value> = frames
        .iter()
        .filter(|f| f["type"] == "event" && f["event"]["event"] != "presence")
        .collect();
    assert_eq!(changes.len(), 1, "only the sentinel reached B: {frames:?}");
}

async fn history_len(srv: &TestServer, a: &User, d: &str) -> usize {
    srv.get(&format!("/v1/conversations/{d}/messages"), a)
        .await
        .as_array()
        .expect("history")
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_bad_input_gets_documented_errors_and_changes_nothing() {
    let (srv, a, _b, c, d, mut wb) = setup().await;
    let path = format!("/v1/conversations/{d}/messages");

    // Malformed JSON.
    let resp = srv
        .http
        .post(srv.url(&path))
        .bearer_auth(&a.token)
        .header("content-type", "application/json")
        .body("{\"client_msg_id\": \"x\", ")
        .send()
        .await
        .expect("http");
    let s = resp.status();
    let v: Value = resp.json().await.expect("json error body");
    assert_error(s, &v, 400, "invalid_input");
    assert_eq!(
        (v["field"].clone(), v["message"].clone()),
        (json!("body"), json!("invalid body: malformed JSON"))
    );
    // Well-formed JSON of the wrong shape.
    let (s, v) = srv
        .call(
            Method::POST,
            &path,
            Some(&a.token),
            Some(json!({ "client_msg_id": "x", "content": { "type": "video" } })),
        )
        .await;
    assert_error(s, &v, 400, "invalid_input");
    // Engine validation: an empty text.
    let (s, v) = srv
        .call(
            Method::POST,
            &path,
            Some(&a.token),
            Some(json!({ "client_msg_id": "x", "content": { "type": "text", "text": "  " } })),
        )
        .await;
    assert_error(s, &v, 400, "invalid_input");
    assert_eq!(v["field"], "text");
    // An oversized body.
    let big = "x".repeat(70 * 1024);
    let (s, v) = srv
        .call(
            Method::POST,
            &path,
            Some(&a.token),
            Some(json!({ "client_msg_id": "big", "content": { "type": "text", "text": big } })),
        )
        .await;
    assert_error(s, &v, 413, "too_large");
    // A malformed path parameter; an unknown route.
    let (s, v) = srv
        .call(Method::GET, "/v1/users/not-a-uuid", Some(&a.token), None)
        .await;
    assert_error(s, &v, 400, "invalid_input");
    let (s, v) = srv.call(Method::GET, "/v1/nothing-here", Some(&a.token), None).await;
    assert_error(s, &v, 404, "not_found");

    // Missing, malformed, tampered and expired tokens.
    let resp = srv.http.get(srv.url("/v1/me")).send().await.expect("http");
    assert_eq!(
        resp.headers().get("www-authenticate").map(|h| h.as_bytes()),
        Some(&b"Bearer"[..])
    );
    let s = resp.status();
    assert_error(s, &resp.json().await.expect("json"), 401, "unauthorized");
    let resp = srv
        .http
        .get(srv.url("/v1/me"))
        .header("authorization", "Token abc")
        .send()
        .await
        .expect("http");
    let s = resp.status();
    assert_error(s, &resp.json().await.expect("json"), 401, "unauthorized");
    let (s, v) = srv.call(Method::GET, "/v1/me", Some(&tamper(&a.token)), None).await;
    assert_error(s, &v, 401, "unauthorized");
    let (s, v) = srv
        .call(
            Method::POST,
            &path,
            Some(&tamper(&a.token)),
            Some(json!({ "client_msg_id": "t", "content": { "type": "text", "text": "tampered" } })),
        )
        .await;
    assert_error(s, &v, 401, "unauthorized");

    // OTP: a malformed phone, a wrong code.
    let (s, v) = srv
        .call(Method::POST, "/v1/auth/otp", None, Some(json!({ "phone": "12345" })))
        .await;
    assert_error(s, &v, 400, "invalid_input");
    assert_eq!(v["field"], "phone");
    srv.call(
        Method::POST,
        "/v1/auth/otp",
        None,
        Some(json!({ "phone": "+15550000019" })),
    )
    .await;
    let real = srv.sms.code_for("+15550000019");
    let wrong = if real == "000000" { "111111" } else { "000000" };
    let (s, v) = srv
        .call(
            Method::POST,
            "/v1/auth/verify",
            None,
            Some(json!({ "phone": "+15550000019", "code": wrong })),
        )
        .await;
    assert_error(s, &v, 401, "unauthorized");

    // Another user's conversation answers exactly like a missing one, for every operation.
    let missing = "0190a0b0-0000-7000-8000-00000000dead";
    let (s1, v1) = srv
        .call(Method::GET, &format!("/v1/conversations/{d}"), Some(&c.token), None)
        .await;
    let (s2, v2) = srv
        .call(
            Method::GET,
            &format!("/v1/conversations/{missing}"),
            Some(&c.token),
            None,
        )
        .await;
    assert_error(s1, &v1, 404, "not_found");
    assert_eq!((s1, v1), (s2, v2), "a foreign conversation looks missing");
    let attempts: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::POST,
            path.clone(),
            Some(json!({ "client_msg_id": "c1", "content": { "type": "text", "text": "intrude" } })),
        ),
        (Method::GET, path.clone(), None),
        (
            Method::POST,
            format!("/v1/conversations/{d}/receipts"),
            Some(json!({ "read_seq": 1 })),
        ),
        (
            Method::POST,
            format!("/v1/conversations/{d}/typing"),
            Some(json!({ "typing": true })),
        ),
        (
            Method::DELETE,
            format!("/v1/conversations/{d}/messages/1?scope=everyone"),
            None,
        ),
        (
            Method::DELETE,
            format!("/v1/conversations/{d}/messages/1?scope=me"),
            None,
        ),
        (
            Method::PUT,
            format!("/v1/conversations/{d}/archive"),
            Some(json!({ "archived": true })),
        ),
        (
            Method::PATCH,
            format!("/v1/conversations/{d}"),
            Some(json!({ "title": "mine now" })),
        ),
        (
            Method::POST,
            format!("/v1/conversations/{d}/members"),
            Some(json!({ "user_ids": [a.id] })),
        ),
        (Method::POST, format!("/v1/conversations/{d}/leave"), None),
    ];
    for (m, p, body) in attempts {
        let (s, v) = srv.call(m.clone(), &p, Some(&c.token), body).await;
        assert_error(s, &v, 404, "not_found");
        assert_eq!(v["message"], "conversation not found", "{m} {p}");
    }

    // Nothing was stored, nothing was fanned out.
    assert_eq!(history_len(&srv, &a, &d).await, 1);
    assert_nothing_fanned_out(&srv, &a, &d, &mut wb, "sentinel-rest").await;

    // An expired access token (the clock moves past its 15 minutes); refresh still works.
    srv.clock.advance(16 * 60 * 1000);
    let (s, v) = srv.call(Method::GET, "/v1/me", Some(&a.token), None).await;
    assert_error(s, &v, 401, "unauthorized");
    let (s, v) = srv
        .call(
            Method::POST,
            "/v1/auth/refresh",
            None,
            Some(json!({ "refresh_token": a.refresh })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let fresh = v["access_token"].as_str().expect("token");
    let (s, _) = srv.call(Method::GET, "/v1/me", Some(fresh), None).await;
    assert_eq!(s, StatusCode::OK);
    // The old refresh token is single use.
    let (s, v) = srv
        .call(
            Method::POST,
            "/v1/auth/refresh",
            None,
            Some(json!({ "refresh_token": a.refresh })),
        )
        .await;
    assert_error(s, &v, 401, "unauthorized");
}

async fn handshake_status(srv: &TestServer, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut req = srv
        .http
        .get(srv.url("/v1/ws"))
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("http");
    let s = resp.status().as_u16();
    (s, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_bad_input_gets_documented_errors_and_changes_nothing() {
    let (srv, a, _b, c, d, mut wb) = setup().await;

    // Handshakes: no subprotocol, a foreign origin, a tampered bearer header.
    let (s, v) = handshake_status(&srv, &[]).await;
    assert_eq!((s, v["code"].clone()), (400, json!("invalid_input")), "{v}");
    let (s, v) = handshake_status(
        &srv,
        &[
            ("sec-websocket-protocol", "chatico.v1.json"),
            ("origin", "https://evil.example"),
        ],
    )
    .await;
    assert_eq!((s, v["code"].clone()), (403, json!("forbidden")), "{v}");
    let bad = format!("Bearer {}", tamper(&a.token));
    let (s, v) = handshake_status(
        &srv,
        &[("sec-websocket-protocol", "chatico.v1.json"), ("authorization", &bad)],
    )
    .await;
    assert_eq!((s, v["code"].clone()), (401, json!("unauthorized")), "{v}");
    assert!(
        Ws::connect(srv.addr, Some(&a.token), Some("https://evil.example"))
            .await
            .is_err()
    );
    let mut ok = Ws::connect(srv.addr, Some(&a.token), Some("http://app.example"))
        .await
        .expect("allowed origin");
    ok.expect_ready().await;
    drop(ok);

    // Unauthenticated connections: a first frame that is not auth, a tampered token.
    let mut w = Ws::connect(srv.addr, None, None).await.expect("connect");
    let f = w.request("ping", json!({})).await;
    assert_eq!(
        (f["type"].clone(), f["error"]["code"].clone()),
        (json!("error"), json!("unauthorized"))
    );
    assert_eq!(w.close_code().await.0, close_code::UNAUTHORIZED);
    let mut w = Ws::connect(srv.addr, None, None).await.expect("connect");
    let f = w.request("auth", json!({ "token": tamper(&a.token) })).await;
    assert_eq!(f["error"]["code"], "unauthorized");
    assert_eq!(w.close_code().await.0, close_code::UNAUTHORIZED);

    // An authenticated connection: malformed JSON, an unknown type, missing fields, binary.
    let mut wa = srv.ws(&a).await;
    wa.send_text("{ nope").await;
    let f = wa.until(|f| f["type"] == "error").await.pop().expect("error");
    assert_eq!(
        (f["id"].clone(), f["error"]["code"].clone()),
        (Value::Null, json!("invalid_input"))
    );
    assert_eq!(f["error"]["field"], "frame");
    let f = wa.request("launch_missiles", json!({})).await;
    assert_eq!(
        (f["type"].clone(), f["error"]["field"].clone()),
        (json!("error"), json!("type"))
    );
    let f = wa.request("send", json!({ "conversation_id": d })).await;
    assert_eq!(
        (f["type"].clone(), f["error"]["code"].clone()),
        (json!("error"), json!("invalid_input"))
    );
    wa.stream.send(Message::binary(vec![1u8, 2, 3])).await.expect("send");
    let f = wa.until(|f| f["type"] == "error").await.pop().expect("error");
    assert_eq!(f["error"]["code"], "invalid_input");
    // The connection is still fine.
    assert_eq!(wa.ok("ping", json!({})).await["type"], "ping");

    // Another user's conversation over the socket.
    let mut wc = srv.ws(&c).await;
    let f = wc
        .request(
            "send",
            json!({ "conversation_id": d, "client_msg_id": "x", "content": { "type": "text", "text": "intrude" } }),
        )
        .await;
    assert_eq!(
        (f["type"].clone(), f["error"]["code"].clone()),
        (json!("error"), json!("not_found"))
    );
    for (kind, fields) in [
        ("receipt", json!({ "conversation_id": d, "read_seq": 1 })),
        ("typing", json!({ "conversation_id": d, "typing": true })),
    ] {
        let f = wc.request(kind, fields).await;
        assert_eq!(f["error"]["code"], "not_found", "{kind}: {f}");
    }

    // An oversized frame closes with 1009 and stores nothing.
    let big = "y".repeat(65 * 1024);
    let frame = json!({ "id": "big", "type": "send", "conversation_id": d, "client_msg_id": "big",
        "content": { "type": "text", "text": big } });
    wa.send_text(frame.to_string()).await;
    let (code, frames) = wa.close_code().await;
    assert_eq!(code, close_code::MESSAGE_TOO_BIG);
    assert!(
        !frames.iter().any(|f| f["id"] == "big"),
        "the frame was never answered: {frames:?}"
    );

    assert_eq!(history_len(&srv, &a, &d).await, 1);
    assert_nothing_fanned_out(&srv, &a, &d, &mut wb, "sentinel-ws").await;
    // Nothing reached A's conversation through C either.
    let frames = wb.until(|f| f["type"] == "cursor").await;
    assert!(!frames.iter().any(|f| is_change(&f["event"], "message")), "{frames:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_closed_by_auth_and_heartbeat_timeouts() {
    let cfg = crate::common::GatewayConfigExt::with(test_config(), |c| {
        c.auth_timeout = Duration::from_millis(200);
        c.heartbeat_interval = Duration::from_millis(100);
        c.heartbeat_timeout = Duration::from_millis(200);
    });
    let srv = TestServer::start_with(cfg, None).await;
    let a = srv.login("+15550000021").await;

    // No auth frame in time.
    let mut w = Ws::connect(srv.addr, None, None).await.expect("connect");
    assert_eq!(w.close_code().await.0, close_code::AUTH_TIMEOUT);

    // Authenticated, then silent: a client that does not read never answers the pings.
    let mut w = Ws::connect(srv.addr, Some(&a.token), None).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (code, frames) = w.close_code().await;
    assert_eq!(code, close_code::HEARTBEAT_TIMEOUT);
    assert_eq!(frames[0]["type"], "ready");

    // A client that reads (and so answers pings) stays connected across many intervals.
    let mut w = Ws::connect(srv.addr, Some(&a.token), None).await.expect("connect");
    w.expect_ready().await;
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(w.ok("ping", json!({})).await["type"], "ping");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_user_rate_limits_answer_rate_limited_and_store_nothing() {
    let cfg = crate::common::GatewayConfigExt::with(test_config(), |c| {
        c.rate_limit = chatico_transport::gateway::RateLimit {
            per_second: 1,
            burst: 4,
        };
    });
    let srv = TestServer::start_with(cfg, None).await;
    let a = srv.login("+15550000061").await;
    let b = srv.login("+15550000062").await;
    // The bucket refills with the (manual) clock, which only moves when the test says.
    let d = srv.open_direct(&a, &b).await;
    let mut wa = srv.ws(&a).await;
    // direct + subscribe + ping + me: the burst of 4 is used up.
    wa.ok("ping", json!({})).await;
    srv.get("/v1/me", &a).await;
    // Empty now: REST answers 429 with Retry-After, the socket an error frame.
    let resp = srv
        .http
        .post(srv.url(&format!("/v1/conversations/{d}/messages")))
        .bearer_auth(&a.token)
        .json(&json!({ "client_msg_id": "limited", "content": { "type": "text", "text": "no" } }))
        .send()
        .await
        .expect("http");
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "1");
    let v: Value = resp.json().await.expect("json");
    assert_eq!(
        (v["code"].clone(), v["retry_after_ms"].clone()),
        (json!("rate_limited"), json!(1000))
    );
    let f = wa
        .request(
            "send",
            json!({ "conversation_id": d, "client_msg_id": "limited-ws", "content": { "type": "text", "text": "no" } }),
        )
        .await;
    assert_eq!(
        (f["type"].clone(), f["error"]["code"].clone()),
        (json!("error"), json!("rate_limited"))
    );
    // Another user is unaffected, and nothing was stored.
    assert_eq!(srv.get(&format!("/v1/conversations/{d}/messages"), &b).await, json!([]));
    // A second later there is a token again.
    srv.clock.advance(1000);
    srv.send_text(&d, &a, "ok", "yes").await;
}
