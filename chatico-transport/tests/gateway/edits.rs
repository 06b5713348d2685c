//! Edits and reactions over REST and the WebSocket: the happy paths reach every member live
//! and through sync; attackers (someone else's message, a conversation they are not in, a
//! closed edit window, a deleted message, a non-member reacting) change nothing.

use chatico_core::ids::ConversationId;
use chatico_core::protocol::paths;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

fn conv(id: &str) -> ConversationId {
    ConversationId(id.parse().expect("uuid"))
}

async fn group(srv: &TestServer, owner: &User, members: &[&User]) -> String {
    let ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
    srv.ok(
        Method::POST,
        "/v1/conversations/group",
        owner,
        json!({ "title": "Team", "members": ids }),
    )
    .await["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

async fn edit(srv: &TestServer, u: &User, c: &str, seq: i64, text: &str) -> (StatusCode, Value) {
    srv.call(
        Method::PATCH,
        &paths::message(conv(c), seq),
        Some(&u.token),
        Some(json!({ "text": text })),
    )
    .await
}

async fn react(srv: &TestServer, method: Method, u: &User, c: &str, seq: i64, emoji: &str) -> (StatusCode, Value) {
    srv.call(method, &paths::reaction(conv(c), seq, emoji), Some(&u.token), None)
        .await
}

async fn history(srv: &TestServer, u: &User, c: &str) -> Vec<Value> {
    srv.get(&paths::messages(conv(c)), u)
        .await
        .as_array()
        .expect("array")
        .clone()
}

fn find(history: &[Value], seq: i64) -> Value {
    history
        .iter()
        .find(|m| m["seq"] == seq)
        .cloned()
        .expect("message in history")
}

async fn sync_kinds(srv: &TestServer, u: &User) -> Vec<Value> {
    let v = srv.get("/v1/sync?since=0&limit=500", u).await;
    v["page"]["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| c["kind"].clone())
        .collect()
}

#[tokio::test]
async fn an_edit_reaches_every_member_live_and_through_sync() {
    let srv = TestServer::start().await;
    let (a, b) = (srv.login("+15550001001").await, srv.login("+15550001002").await);
    let c = srv.open_direct(&a, &b).await;
    let mut wb = srv.ws(&b).await;
    let sent = srv.send_text(&c, &a, "m1", "helo").await;
    let seq = sent["seq"].as_i64().expect("seq");
    let (s, v) = edit(&srv, &a, &c, seq, "hello").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["content"]["text"], "hello");
    assert_eq!(v["seq"], seq);
    assert!(v["edited_at"].is_i64());
    let ev = wb.event(|e| is_change(e, "message_edited")).await;
    assert_eq!(ev["kind"]["seq"], seq);
    assert_eq!(ev["kind"]["content"]["text"], "hello");
    assert_eq!(ev["kind"]["edited_at"], v["edited_at"]);
    let m = find(&history(&srv, &b, &c).await, seq);
    assert_eq!(
        (m["content"]["text"].clone(), m["edited_at"].clone()),
        (json!("hello"), v["edited_at"].clone())
    );
    let kinds = sync_kinds(&srv, &b).await;
    assert!(
        kinds
            .iter()
            .any(|k| k["type"] == "message_edited" && k["content"]["text"] == "hello")
    );
    assert!(
        kinds
            .iter()
            .any(|k| k["type"] == "message" && k["message"]["content"]["text"] == "hello"),
        "the message change reads as edited"
    );
}

#[tokio::test]
async fn edits_by_attackers_late_or_of_deleted_messages_are_refused_and_change_nothing() {
    // A one-minute window (the engine's configuration), well inside the access token's life.
    let srv = TestServer::builder()
        .engine_config(|c| c.limits.edit_window_ms = 60_000)
        .start()
        .await;
    let [a, b, x] = [
        srv.login("+15550001011").await,
        srv.login("+15550001012").await,
        srv.login("+15550001013").await,
    ];
    let c = group(&srv, &a, &[&b]).await;
    let seq = srv.send_text(&c, &a, "m1", "original").await["seq"]
        .as_i64()
        .expect("seq");
    // Someone else's message: forbidden.
    let (s, v) = edit(&srv, &b, &c, seq, "pwned").await;
    assert_eq!(
        (s, v["code"].clone()),
        (StatusCode::FORBIDDEN, json!("forbidden")),
        "{v}"
    );
    // A conversation the caller is not in: as if it did not exist.
    let (s, v) = edit(&srv, &x, &c, seq, "pwned").await;
    assert_eq!(
        (s, v["code"].clone()),
        (StatusCode::NOT_FOUND, json!("not_found")),
        "{v}"
    );
    // An unknown conversation id answers the same.
    let other = ConversationId::new(0).to_string();
    let (s, _) = edit(&srv, &a, &other, seq, "x").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // A system notice (seq 1: the group's creation).
    let (s, _) = edit(&srv, &a, &c, 1, "x").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Bad input.
    let (s, v) = edit(&srv, &a, &c, seq, "   ").await;
    assert_eq!((s, v["field"].clone()), (StatusCode::BAD_REQUEST, json!("text")), "{v}");
    let (s, _) = srv
        .call(
            Method::PATCH,
            &paths::message(conv(&c), seq),
            Some(&a.token),
            Some(json!({ "txt": 1 })),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // After the window (the test server's clock is manual).
    srv.clock.advance(60_001);
    let (s, v) = edit(&srv, &a, &c, seq, "too late").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    // A deleted message.
    let seq2 = srv.send_text(&c, &a, "m2", "to delete").await["seq"]
        .as_i64()
        .expect("seq");
    let (s, _) = srv
        .call(
            Method::DELETE,
            &format!("{}?scope=everyone", paths::message(conv(&c), seq2)),
            Some(&a.token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = edit(&srv, &a, &c, seq2, "resurrect").await;
    assert_eq!((s, v["code"].clone()), (StatusCode::CONFLICT, json!("conflict")), "{v}");
    // Nothing changed, and nobody got an edit.
    let h = history(&srv, &b, &c).await;
    assert_eq!(find(&h, seq)["content"]["text"], "original");
    assert!(find(&h, seq).get("edited_at").is_none());
    assert!(find(&h, seq2)["content"].is_null());
    assert!(sync_kinds(&srv, &b).await.iter().all(|k| k["type"] != "message_edited"));
}

#[tokio::test]
async fn reactions_are_idempotent_counted_and_live() {
    let srv = TestServer::start().await;
    let [a, b, x] = [
        srv.login("+15550001021").await,
        srv.login("+15550001022").await,
        srv.login("+15550001023").await,
    ];
    let c = group(&srv, &a, &[&b]).await;
    let seq = srv.send_text(&c, &a, "m1", "react").await["seq"].as_i64().expect("seq");
    let mut wa = srv.ws(&a).await;
    let (s, v) = react(&srv, Method::PUT, &b, &c, seq, "👍").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["reactions"], json!([{ "emoji": "👍", "count": 1, "users": [b.id] }]));
    let ev = wa.event(|e| is_change(e, "reaction_added")).await;
    assert_eq!(
        ev["kind"],
        json!({ "type": "reaction_added", "seq": seq, "user_id": b.id, "emoji": "👍" })
    );
    // Again: the same answer, nothing recorded.
    let before = sync_kinds(&srv, &a).await.len();
    let (s, v2) = react(&srv, Method::PUT, &b, &c, seq, "👍").await;
    assert_eq!((s, v2["reactions"].clone()), (StatusCode::OK, v["reactions"].clone()));
    assert_eq!(sync_kinds(&srv, &a).await.len(), before);
    srv.clock.advance(1);
    let (_, v) = react(&srv, Method::PUT, &a, &c, seq, "👍").await;
    assert_eq!(v["reactions"][0]["count"], 2);
    assert_eq!(
        find(&history(&srv, &b, &c).await, seq)["reactions"][0]["users"],
        json!([b.id, a.id])
    );
    // Take back, twice.
    let (s, _) = react(&srv, Method::DELETE, &b, &c, seq, "👍").await;
    assert_eq!(s, StatusCode::OK);
    let ev = wa.event(|e| is_change(e, "reaction_removed")).await;
    assert_eq!(ev["kind"]["user_id"], json!(b.id));
    let before = sync_kinds(&srv, &a).await.len();
    let (s, v) = react(&srv, Method::DELETE, &b, &c, seq, "👍").await;
    assert_eq!(
        (s, v["reactions"].clone()),
        (StatusCode::OK, json!([{ "emoji": "👍", "count": 1, "users": [a.id] }]))
    );
    assert_eq!(sync_kinds(&srv, &a).await.len(), before);
    // A non-member: not found, both ways, nothing recorded.
    for m in [Method::PUT, Method::DELETE] {
        let (s, v) = react(&srv, m, &x, &c, seq, "🎉").await;
        assert_eq!(
            (s, v["code"].clone()),
            (StatusCode::NOT_FOUND, json!("not_found")),
            "{v}"
        );
    }
    // Not an emoji.
    for bad in ["a", "👍👍", "%", "../x"] {
        let (s, v) = react(&srv, Method::PUT, &b, &c, seq, bad).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
    assert_eq!(sync_kinds(&srv, &a).await.len(), before);
}

#[tokio::test]
async fn the_reaction_bound_answers_too_large() {
    let srv = TestServer::builder()
        .engine_config(|c| c.limits.max_reactions_per_message = 2)
        .start()
        .await;
    let (a, b) = (srv.login("+15550001031").await, srv.login("+15550001032").await);
    let c = srv.open_direct(&a, &b).await;
    let seq = srv.send_text(&c, &a, "m1", "x").await["seq"].as_i64().expect("seq");
    for (u, e) in [(&a, "👍"), (&b, "❤️")] {
        let (s, v) = react(&srv, Method::PUT, u, &c, seq, e).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let (s, v) = react(&srv, Method::PUT, &b, &c, seq, "😂").await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!((v["code"].clone(), v["limit"].clone()), (json!("too_large"), json!(2)));
}

#[tokio::test]
async fn a_blocked_users_reactions_are_hidden_from_the_blocker() {
    let srv = TestServer::start().await;
    let [o, a, b] = [
        srv.login("+15550001041").await,
        srv.login("+15550001042").await,
        srv.login("+15550001043").await,
    ];
    let c = group(&srv, &o, &[&a, &b]).await;
    let seq = srv.send_text(&c, &o, "m1", "hi").await["seq"].as_i64().expect("seq");
    let (s, _) = srv
        .call(Method::PUT, &format!("/v1/blocks/{}", b.id), Some(&a.token), None)
        .await;
    assert!(s.is_success());
    let mut wa = srv.ws(&a).await;
    let (s, _) = react(&srv, Method::PUT, &b, &c, seq, "👍").await;
    assert_eq!(s, StatusCode::OK);
    srv.clock.advance(1);
    let (s, _) = react(&srv, Method::PUT, &o, &c, seq, "🎉").await;
    assert_eq!(s, StatusCode::OK);
    // The blocker's next reaction event is the owner's, not the blocked user's.
    let ev = wa.event(|e| is_change(e, "reaction_added")).await;
    assert_eq!(ev["kind"]["user_id"], json!(o.id));
    let emojis = |h: &[Value]| -> Vec<String> {
        find(h, seq)["reactions"]
            .as_array()
            .map(|r| {
                r.iter()
                    .map(|x| x["emoji"].as_str().expect("emoji").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(emojis(&history(&srv, &a, &c).await), vec!["🎉"]);
    assert_eq!(emojis(&history(&srv, &o, &c).await), vec!["👍", "🎉"]);
    assert!(
        sync_kinds(&srv, &a)
            .await
            .iter()
            .all(|k| !(k["type"] == "reaction_added" && k["user_id"] == json!(b.id)))
    );
}
