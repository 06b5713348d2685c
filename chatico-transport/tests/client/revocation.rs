//! A client whose session is revoked elsewhere (here: a stolen refresh token used twice)
//! sees its WebSocket closed with 4001, tries one refresh, and stops as signed out instead
//! of reconnecting in a loop.

use std::time::Duration;

use chatico_transport::client::{ClientEvent, ConnectionState};

use crate::common::*;

#[tokio::test]
async fn a_revoked_session_closes_the_socket_and_the_client_signs_out() {
    let server = TestServer::start().await;
    let alice = login(&server, &server.url(), "+15550000061", "Alice").await;
    let mut events = alice.events();
    alice.connect().await.expect("connect");
    let mut state = alice.watch_connection();
    tokio::time::timeout(PATIENCE, state.wait_for(|s| *s == ConnectionState::Connected))
        .await
        .expect("timed out connecting")
        .expect("watch");
    let stolen = alice.session().await.expect("session").refresh_token;

    // The thief refreshes with the stolen token, then presents it again: reuse detection
    // revokes the session.
    let http = reqwest::Client::new();
    let url = format!("{}/v1/auth/refresh", server.url());
    let body = serde_json::json!({ "refresh_token": stolen });
    let first = http.post(&url).json(&body).send().await.expect("refresh");
    assert_eq!(first.status(), 200);
    let reuse = http.post(&url).json(&body).send().await.expect("reuse");
    assert_eq!(reuse.status(), 401);

    // Alice's socket is closed with 4001; her one refresh is refused: signed out.
    tokio::time::timeout(PATIENCE, state.wait_for(|s| *s == ConnectionState::LoggedOut))
        .await
        .expect("the client did not sign out")
        .expect("watch");
    wait_for(&mut events, |e| matches!(e, ClientEvent::SessionExpired).then_some(())).await;
    assert!(alice.session().await.is_none());
    // And it stays signed out: no reconnect loop.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(*state.borrow(), ConnectionState::LoggedOut);
}
