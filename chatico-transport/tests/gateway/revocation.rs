//! A revoked session keeps no socket: refresh-token reuse, logout and logout-everywhere close
//! the session's sockets with 4001 at once, on every node (through the backplane), and the
//! periodic session check closes those of a session revoked where no control reached.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chatico_core::ids::SessionId;
use chatico_core::ports::{Backplane, Store};
use chatico_core::protocol::close_code;
use chatico_transport::backplane::InProcessBackplane;
use chatico_transport::gateway::{Gateway, GatewayConfig};
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::common::{GatewayConfigExt, TestServer, User, Ws, test_config};

/// "At once": well under the session check interval of these tests (60 s unless a test
/// shortens it), so only the revocation itself can have closed the socket.
const AT_ONCE: Duration = Duration::from_secs(3);

/// The close code the server sends within `within` (frames before it are skipped).
async fn closed_within(ws: &mut Ws, within: Duration) -> u16 {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let m = tokio::time::timeout_at(deadline, ws.stream.next())
            .await
            .unwrap_or_else(|_| panic!("the socket is still open after {within:?}"));
        match m {
            Some(Ok(Message::Close(Some(c)))) => return u16::from(c.code),
            Some(Ok(Message::Close(None))) => panic!("close frame without a code"),
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("connection failed before a close frame: {e}"),
            None => panic!("stream ended without a close frame"),
        }
    }
}

/// The socket still answers requests.
async fn still_open(ws: &mut Ws) {
    let r = ws.request("ping", json!({})).await;
    assert_eq!(r["type"], "ack", "{r}");
}

fn session_of(ready: &serde_json::Value) -> SessionId {
    serde_json::from_value(ready["session_id"].clone()).expect("session id")
}

async fn ws_with_session(srv_addr: SocketAddr, u: &User) -> (Ws, SessionId) {
    let mut ws = Ws::connect(srv_addr, Some(&u.token), None).await.expect("connect");
    let ready = ws.expect_ready().await;
    ws.subscribe(None).await;
    (ws, session_of(&ready))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_token_reuse_closes_the_sessions_sockets_at_once() {
    let srv = TestServer::start().await;
    let phone = "+15550002001";
    let a = srv.login(phone).await;
    let other_device = srv.login(phone).await;
    let (mut w1, _) = ws_with_session(srv.addr, &a).await;
    let (mut w2, _) = ws_with_session(srv.addr, &a).await;
    let (mut w_other, _) = ws_with_session(srv.addr, &other_device).await;

    // A legitimate rotation revokes nothing.
    let (s, rotated) = srv
        .call(
            Method::POST,
            "/v1/auth/refresh",
            None,
            Some(json!({ "refresh_token": a.refresh })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{rotated}");
    still_open(&mut w1).await;

    // The old refresh token again: reuse revokes the session, and its sockets close.
    let (s, body) = srv
        .call(
            Method::POST,
            "/v1/auth/refresh",
            None,
            Some(json!({ "refresh_token": a.refresh })),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(closed_within(&mut w1, AT_ONCE).await, close_code::UNAUTHORIZED);
    assert_eq!(closed_within(&mut w2, AT_ONCE).await, close_code::UNAUTHORIZED);
    // The same user's other session keeps its socket.
    still_open(&mut w_other).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_closes_only_that_sessions_sockets_and_logout_everywhere_all() {
    let srv = TestServer::start().await;
    let phone = "+15550002002";
    let a = srv.login(phone).await;
    let b = srv.login(phone).await;
    let c = srv.login(phone).await;
    let (mut wa, _) = ws_with_session(srv.addr, &a).await;
    let (mut wb, _) = ws_with_session(srv.addr, &b).await;
    let (mut wc, _) = ws_with_session(srv.addr, &c).await;

    let (s, _) = srv.call(Method::POST, "/v1/auth/logout", Some(&a.token), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(closed_within(&mut wa, AT_ONCE).await, close_code::UNAUTHORIZED);
    still_open(&mut wb).await;

    let (s, v) = srv
        .call(Method::POST, "/v1/auth/logout-everywhere", Some(&b.token), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(closed_within(&mut wb, AT_ONCE).await, close_code::UNAUTHORIZED);
    assert_eq!(closed_within(&mut wc, AT_ONCE).await, close_code::UNAUTHORIZED);
}

/// A second gateway node over the same engine (store) and backplane, on its own port.
async fn second_node(srv: &TestServer, bp: Arc<dyn Backplane>, config: GatewayConfig) -> (Gateway, SocketAddr) {
    let gw = Gateway::builder(srv.gateway.engine().clone())
        .backplane(bp)
        .config(config)
        .start()
        .await
        .expect("second node");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = gw.router();
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .await
            .expect("serve");
    });
    (gw, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_close_sockets_on_other_nodes_through_the_backplane() {
    let bp: Arc<dyn Backplane> = Arc::new(InProcessBackplane::default());
    let srv = TestServer::start_with(test_config(), Some(bp.clone())).await;
    let (_node2, addr2) = second_node(&srv, bp, test_config()).await;
    let phone = "+15550002003";
    let a = srv.login(phone).await;
    let b = srv.login(phone).await;
    let c = srv.login(phone).await;
    // Sockets on node 2; the revocations are made through node 1.
    let (mut wa, _) = ws_with_session(addr2, &a).await;
    let (mut wb, _) = ws_with_session(addr2, &b).await;
    let (mut wc, _) = ws_with_session(addr2, &c).await;

    let (s, _) = srv.call(Method::POST, "/v1/auth/logout", Some(&a.token), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(closed_within(&mut wa, AT_ONCE).await, close_code::UNAUTHORIZED);
    still_open(&mut wb).await;

    let (s, rotated) = srv
        .call(
            Method::POST,
            "/v1/auth/refresh",
            None,
            Some(json!({ "refresh_token": b.refresh })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{rotated}");
    let (s, _) = srv
        .call(
            Method::POST,
            "/v1/auth/refresh",
            None,
            Some(json!({ "refresh_token": b.refresh })),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(closed_within(&mut wb, AT_ONCE).await, close_code::UNAUTHORIZED);
    still_open(&mut wc).await;

    let (s, _) = srv
        .call(Method::POST, "/v1/auth/logout-everywhere", Some(&c.token), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(closed_within(&mut wc, AT_ONCE).await, close_code::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_check_closes_sockets_of_sessions_revoked_or_expired_without_a_control() {
    let cfg = GatewayConfigExt::with(test_config(), |c| {
        c.session_check_interval = Duration::from_millis(200);
        // The server's heartbeat must not interfere with the manual clock advance below.
        c.heartbeat_interval = Duration::from_secs(60);
    });
    let srv = TestServer::start_with(cfg, None).await;
    let phone = "+15550002004";
    let a = srv.login(phone).await;
    let b = srv.login(phone).await;
    let (mut wa, sid_a) = ws_with_session(srv.addr, &a).await;
    let (mut wb, _) = ws_with_session(srv.addr, &b).await;

    // Revoked behind the gateway's back (another node whose control was lost).
    assert!(srv.store.delete_session(sid_a).await.expect("delete"));
    assert_eq!(closed_within(&mut wa, AT_ONCE).await, close_code::UNAUTHORIZED);
    still_open(&mut wb).await;

    // A session that reaches its end (the refresh token's lifetime) closes its sockets too,
    // though nothing revoked it.
    srv.clock.advance(31 * 86_400_000);
    assert_eq!(closed_within(&mut wb, AT_ONCE).await, close_code::UNAUTHORIZED);
}
