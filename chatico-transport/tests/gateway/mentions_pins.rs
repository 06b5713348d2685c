//! Mentions and pins over REST and the WebSocket, with attacker cases: mentioning a
//! non-member, ranges outside the text, mentions in a direct conversation, pinning a
//! conversation you are not in, past the bound.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

async fn group(srv: &TestServer, owner: &User, members: &[&User], title: &str) -> String {
    let ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
    srv.ok(
        Method::POST,
        "/v1/conversations/group",
        owner,
        json!({ "title": title, "members": ids }),
    )
    .await["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

fn post(key: &str, text: &str, mentions: Value) -> Value {
    json!({ "client_msg_id": key, "content": { "type": "text", "text": text, "mentions": mentions } })
}

fn summary<'a>(list: &'a Value, conv: &str) -> &'a Value {
    list.as_array()
        .expect("list")
        .iter()
        .find(|s| s["conversation"]["id"] == json!(conv))
        .expect("listed")
}

async fn last_seq(srv: &TestServer, conv: &str, u: &User) -> i64 {
    srv.get(&format!("/v1/conversations/{conv}"), u).await["conversation"]["last_seq"]
        .as_i64()
        .expect("last_seq")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mentions_are_checked_stored_synced_and_counted_until_read() {
    let srv = TestServer::start().await;
    let a = srv.login("+15550190001").await;
    let b = srv.login("+15550190002").await;
    let c = srv.login("+15550190003").await;
    let x = srv.login("+15550190004").await;
    let g = group(&srv, &a, &[&b, &c], "Team").await;
    let d = srv.open_direct(&a, &b).await;
    let mut wb = srv.ws(&b).await;

    // "é @B": the mention is 2..4 in UTF-16 code units.
    let m = srv
        .ok(
            Method::POST,
            &format!("/v1/conversations/{g}/messages"),
            &a,
            post("m1", "é @B", json!([{ "user_id": b.id, "start": 2, "end": 4 }])),
        )
        .await;
    assert_eq!(m["content"]["mentions"][0]["user_id"], json!(b.id));
    let live = wb.event(|f| is_change(f, "message")).await;
    assert_eq!(live["kind"]["message"]["content"]["mentions"], m["content"]["mentions"]);
    let list = srv.get("/v1/conversations", &b).await;
    assert_eq!(summary(&list, &g)["unread_mentions"], json!(1));
    let list = srv.get("/v1/conversations", &c).await;
    assert_eq!(summary(&list, &g)["unread_mentions"], json!(0), "c was not mentioned");
    let sync = srv.get("/v1/sync?since=0", &c).await;
    assert!(
        sync["page"]["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .any(|ch| ch["kind"]["message"]["content"]["mentions"][0]["start"] == json!(2)),
        "sync carries the mentions: {sync}"
    );

    // Attackers and mistakes: 400 `mentions`, nothing stored.
    let before = last_seq(&srv, &g, &a).await;
    let bad = [
        ("a non-member", json!([{ "user_id": x.id, "start": 2, "end": 4 }])),
        ("past the end", json!([{ "user_id": b.id, "start": 2, "end": 5 }])),
        (
            "splitting nothing but empty",
            json!([{ "user_id": b.id, "start": 3, "end": 3 }]),
        ),
        (
            "overlapping",
            json!([{ "user_id": b.id, "start": 0, "end": 3 }, { "user_id": c.id, "start": 2, "end": 4 }]),
        ),
    ];
    for (i, (why, mentions)) in bad.into_iter().enumerate() {
        let (s, v) = srv
            .call(
                Method::POST,
                &format!("/v1/conversations/{g}/messages"),
                Some(&a.token),
                Some(post(&format!("bad{i}"), "é @B", mentions)),
            )
            .await;
        assert_eq!(
            (s, v["code"].as_str(), v["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_input"), Some("mentions")),
            "{why}: {v}"
        );
    }
    // A malformed user id never reaches the engine.
    let (s, _) = srv
        .call(
            Method::POST,
            &format!("/v1/conversations/{g}/messages"),
            Some(&a.token),
            Some(post(
                "bad-id",
                "é @B",
                json!([{ "user_id": "nope", "start": 2, "end": 4 }]),
            )),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // Over the WebSocket too.
    let mut wa = srv.ws(&a).await;
    let f = wa
        .request(
            "send",
            json!({ "conversation_id": g, "client_msg_id": "ws-bad",
                    "content": { "type": "text", "text": "hi", "mentions": [{ "user_id": x.id, "start": 0, "end": 2 }] } }),
        )
        .await;
    assert_eq!(
        (f["type"].as_str(), f["error"]["field"].as_str()),
        (Some("error"), Some("mentions")),
        "{f}"
    );
    assert_eq!(last_seq(&srv, &g, &a).await, before, "nothing refused was stored");
    // Direct conversations carry no mentions.
    let (s, v) = srv
        .call(
            Method::POST,
            &format!("/v1/conversations/{d}/messages"),
            Some(&a.token),
            Some(post("direct", "@B", json!([{ "user_id": b.id, "start": 0, "end": 2 }]))),
        )
        .await;
    assert_eq!(
        (s, v["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("mentions")),
        "{v}"
    );
    // An outsider learns nothing: the group does not exist for them.
    let (s, _) = srv
        .call(
            Method::POST,
            &format!("/v1/conversations/{g}/messages"),
            Some(&x.token),
            Some(post("x1", "@B", json!([{ "user_id": b.id, "start": 0, "end": 2 }]))),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // b reads: no unread mention left; deleted mentions stop counting too.
    let seq = m["seq"].as_i64().expect("seq");
    srv.ok(
        Method::POST,
        &format!("/v1/conversations/{g}/receipts"),
        &b,
        json!({ "read_seq": seq }),
    )
    .await;
    let list = srv.get("/v1/conversations", &b).await;
    assert_eq!(summary(&list, &g)["unread_mentions"], json!(0));
    let m2 = srv
        .ok(
            Method::POST,
            &format!("/v1/conversations/{g}/messages"),
            &a,
            post("m2", "@C", json!([{ "user_id": c.id, "start": 0, "end": 2 }])),
        )
        .await;
    let list = srv.get("/v1/conversations", &c).await;
    assert_eq!(summary(&list, &g)["unread_mentions"], json!(1));
    let (s, _) = srv
        .call(
            Method::DELETE,
            &format!("/v1/conversations/{g}/messages/{}?scope=everyone", m2["seq"]),
            Some(&a.token),
            None,
        )
        .await;
    assert!(s.is_success());
    let list = srv.get("/v1/conversations", &c).await;
    assert_eq!(
        summary(&list, &g)["unread_mentions"],
        json!(0),
        "a deleted mention is gone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pins_are_per_user_bounded_listed_first_and_reach_every_device() {
    let srv = TestServer::builder()
        .engine_config(|c| c.limits.max_pins = 2)
        .start()
        .await;
    let a = srv.login("+15550190011").await;
    let b = srv.login("+15550190012").await;
    let x = srv.login("+15550190013").await;
    let g1 = group(&srv, &a, &[&b], "One").await;
    let g2 = group(&srv, &a, &[&b], "Two").await;
    let g3 = group(&srv, &a, &[&b], "Three").await;
    let mut phone = srv.ws(&a).await;
    let mut other = srv.ws(&b).await;

    let p = srv
        .ok(Method::PUT, &format!("/v1/conversations/{g1}/pin"), &a, Value::Null)
        .await;
    assert_eq!(p["conversation_id"], json!(g1));
    let at = p["pinned_at"].as_i64().expect("pinned_at");
    let ev = phone.event(|f| is_change(f, "pinned")).await;
    assert_eq!(
        (
            ev["conversation_id"].clone(),
            ev["kind"]["pinned"].clone(),
            ev["kind"]["at"].clone()
        ),
        (json!(g1), json!(true), json!(at))
    );
    srv.clock.advance(5);
    srv.ok(Method::PUT, &format!("/v1/conversations/{g2}/pin"), &a, Value::Null)
        .await;
    let again = srv
        .ok(Method::PUT, &format!("/v1/conversations/{g1}/pin"), &a, Value::Null)
        .await;
    assert_eq!(again["pinned_at"], json!(at), "pinning again keeps the first time");

    // Past the bound: 413 with the limit, nothing changed.
    let (s, v) = srv
        .call(
            Method::PUT,
            &format!("/v1/conversations/{g3}/pin"),
            Some(&a.token),
            None,
        )
        .await;
    assert_eq!(
        (s, v["code"].as_str(), v["limit"].as_u64()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("too_large"), Some(2)),
        "{v}"
    );

    let list = srv.get("/v1/conversations", &a).await;
    let order: Vec<&str> = list
        .as_array()
        .expect("list")
        .iter()
        .map(|s| s["conversation"]["id"].as_str().expect("id"))
        .collect();
    assert_eq!(
        order,
        vec![g2.as_str(), g1.as_str(), g3.as_str()],
        "pinned first, newest pin first"
    );
    assert_eq!(summary(&list, &g1)["pinned"], json!(true));
    assert_eq!(summary(&list, &g3)["pinned"], json!(false));
    let blist = srv.get("/v1/conversations", &b).await;
    assert_eq!(summary(&blist, &g1)["pinned"], json!(false), "per user");

    // Attackers: a conversation you are not in, one that does not exist, a malformed id.
    for method in [Method::PUT, Method::DELETE] {
        let (s, _) = srv
            .call(
                method.clone(),
                &format!("/v1/conversations/{g3}/pin"),
                Some(&x.token),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{method} by an outsider");
        let (s, _) = srv
            .call(
                method.clone(),
                &format!(
                    "/v1/conversations/{}/pin",
                    uuid::Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0042)
                ),
                Some(&a.token),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{method} of a missing conversation");
        let (s, _) = srv
            .call(method.clone(), "/v1/conversations/not-a-uuid/pin", Some(&a.token), None)
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{method} of a malformed id");
        let (s, _) = srv
            .call(method.clone(), &format!("/v1/conversations/{g1}/pin"), None, None)
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{method} without a token");
    }
    let list = srv.get("/v1/conversations", &a).await;
    assert_eq!(
        summary(&list, &g3)["pinned"],
        json!(false),
        "the outsider changed nothing"
    );

    // Unpin: 204, a `pinned: false` change for a's devices only; room for another pin.
    let (s, _) = srv
        .call(
            Method::DELETE,
            &format!("/v1/conversations/{g1}/pin"),
            Some(&a.token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let ev = phone
        .event(|f| is_change(f, "pinned") && f["kind"]["pinned"] == json!(false))
        .await;
    assert_eq!(ev["conversation_id"], json!(g1));
    srv.ok(Method::PUT, &format!("/v1/conversations/{g3}/pin"), &a, Value::Null)
        .await;
    let sync = srv.get("/v1/sync?since=0", &b).await;
    assert!(
        sync["page"]["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .all(|c| c["kind"]["type"] != "pinned"),
        "b never sees a's pins: {sync}"
    );
    // b's live stream: a message from a arrives, no pin event ever came before it.
    srv.send_text(&g2, &a, "after-pins", "hello").await;
    let frames = other
        .until(|f| f["type"] == "event" && is_change(&f["event"], "message"))
        .await;
    assert!(frames.iter().all(|f| !is_change(&f["event"], "pinned")));
}
