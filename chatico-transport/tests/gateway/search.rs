//! Message search over REST (`GET /v1/search`): what a caller finds is what they can read,
//! and no request about someone else's conversation, a left group, a hidden or a deleted
//! message reveals anything; bad queries and cursors get typed errors, never a 500.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestServer, User};

/// Percent-encodes a query parameter value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn search(srv: &TestServer, u: &User, query: &str) -> (StatusCode, Value) {
    srv.call(Method::GET, &format!("/v1/search?{query}"), Some(&u.token), None)
        .await
}

/// The texts found by `u` for `q` (and the extra parameters), best first.
async fn texts(srv: &TestServer, u: &User, q: &str, extra: &str) -> Vec<String> {
    let (s, v) = search(srv, u, &format!("q={}{extra}", enc(q))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["content"]["text"].as_str().expect("text").to_owned())
        .collect()
}

fn assert_invalid(s: StatusCode, v: &Value, field: &str) {
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["code"], "invalid_input", "{v}");
    assert_eq!(v["field"], field, "{v}");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_only_what_the_caller_can_read() {
    let srv = TestServer::start().await;
    let a = srv.login("+15550001001").await;
    let b = srv.login("+15550001002").await;
    let c = srv.login("+15550001003").await;
    let g = group(&srv, &a, &[&b]).await;
    let d = srv.open_direct(&a, &c).await;
    srv.send_text(&g, &a, "g1", "kiwi salad at noon").await;
    srv.send_text(&d, &c, "d1", "secret kiwi plan").await;
    let hidden = srv.send_text(&g, &b, "g2", "kiwi to hide").await;
    let deleted = srv.send_text(&g, &a, "g3", "kiwi to delete").await;

    assert_eq!(texts(&srv, &a, "KIWI", "").await.len(), 4, "a reads both conversations");
    assert_eq!(texts(&srv, &b, "kiwi", "").await.len(), 3, "b is not in the direct");
    assert_eq!(texts(&srv, &c, "kiwi", "").await, ["secret kiwi plan"]);

    // Another user's conversation by id: 404, as if it did not exist.
    let (s, v) = search(&srv, &b, &format!("q=kiwi&conversation_id={d}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(v["code"], "not_found");
    let (s, v) = search(&srv, &b, "q=kiwi&conversation_id=0190aaaa-0000-7000-8000-000000000000").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let (s, v) = search(&srv, &b, "q=kiwi&conversation_id=not-a-uuid").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");

    // Hidden for b only; deleted for everyone.
    let seq = |m: &Value| m["seq"].as_i64().expect("seq");
    let (s, v) = srv
        .call(
            Method::DELETE,
            &format!("/v1/conversations/{g}/messages/{}?scope=me", seq(&hidden)),
            Some(&b.token),
            None,
        )
        .await;
    assert!(s.is_success(), "{v}");
    let (s, v) = srv
        .call(
            Method::DELETE,
            &format!("/v1/conversations/{g}/messages/{}?scope=everyone", seq(&deleted)),
            Some(&a.token),
            None,
        )
        .await;
    assert!(s.is_success(), "{v}");
    assert_eq!(
        texts(&srv, &b, "kiwi", &format!("&conversation_id={g}")).await,
        ["kiwi salad at noon"]
    );
    assert_eq!(
        texts(&srv, &a, "kiwi", &format!("&conversation_id={g}")).await,
        ["kiwi to hide", "kiwi salad at noon"]
    );
    assert_eq!(texts(&srv, &a, "delete", "").await, Vec::<String>::new());

    // After leaving: nothing of the group, and the group by id is 404.
    let (s, v) = srv
        .call(
            Method::POST,
            &format!("/v1/conversations/{g}/leave"),
            Some(&b.token),
            None,
        )
        .await;
    assert!(s.is_success(), "{v}");
    assert_eq!(texts(&srv, &b, "kiwi", "").await, Vec::<String>::new());
    let (s, v) = search(&srv, &b, &format!("q=kiwi&conversation_id={g}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");

    // A newcomer reads from their join on only.
    srv.ok(
        Method::POST,
        &format!("/v1/conversations/{g}/members"),
        &a,
        json!({ "user_ids": [c.id] }),
    )
    .await;
    srv.send_text(&g, &a, "g4", "kiwi for c").await;
    assert_eq!(
        texts(&srv, &c, "kiwi", &format!("&conversation_id={g}")).await,
        ["kiwi for c"]
    );

    // No token: 401.
    let (s, _) = srv.call(Method::GET, "/v1/search?q=kiwi", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_queries_and_cursors_get_typed_errors() {
    let srv = TestServer::start().await;
    let a = srv.login("+15550001011").await;
    let b = srv.login("+15550001012").await;
    let d = srv.open_direct(&a, &b).await;
    for i in 0..5 {
        srv.send_text(&d, &a, &format!("m{i}"), &format!("fig number {i}"))
            .await;
    }

    for (q, why) in [
        ("", "empty"),
        ("   ", "blank"),
        ("***", "no words"),
        ("\"\" () -- :", "only syntax characters"),
        ("a b c d e f g h i", "more than 8 words"),
        (&"x".repeat(65), "too long"),
    ] {
        let (s, v) = search(&srv, &a, &format!("q={}", enc(q))).await;
        assert_eq!(v["field"], "q", "{why}");
        assert_invalid(s, &v, "q");
    }
    let (s, v) = search(&srv, &a, "").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "q is required: {v}");

    // FTS and tsquery syntax is plain words: found when the words are there, never a 500.
    for q in [
        "fig OR",
        "\"fig\"",
        "fig*",
        "NEAR(fig number)",
        "fig:1",
        "fig & !number",
        "fig' | 'x",
        "^fig",
        "fig AND NOT x",
    ] {
        let (s, v) = search(&srv, &a, &format!("q={}", enc(q))).await;
        assert_eq!(s, StatusCode::OK, "{q}: {v}");
    }
    assert_eq!(texts(&srv, &a, "\"fig\" & NUMBER:*", "").await.len(), 5);
    assert_eq!(texts(&srv, &a, "fig OR banana", "").await.len(), 0, "OR is a word");

    // Paging: limit 2 → three pages, then the cursor is gone.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..3 {
        let extra = cursor
            .as_deref()
            .map(|c| format!("&cursor={}", enc(c)))
            .unwrap_or_default();
        let (s, v) = search(&srv, &b, &format!("q=fig&limit=2{extra}")).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        for m in v["messages"].as_array().expect("messages") {
            seen.push(m["content"]["text"].as_str().expect("text").to_owned());
        }
        cursor = v["next_cursor"].as_str().map(str::to_owned);
    }
    assert_eq!(cursor, None, "no cursor after the last page");
    let want: Vec<String> = (0..5).rev().map(|i| format!("fig number {i}")).collect();
    assert_eq!(seen, want, "equal matches, newest first, no gaps or repeats");

    // A cursor from another query, another user, another filter, or forged: 400 cursor.
    let (_, v) = search(&srv, &b, "q=fig&limit=2").await;
    let c = enc(v["next_cursor"].as_str().expect("cursor"));
    for (who, query) in [
        (&b, format!("q=number&cursor={c}")),
        (&a, format!("q=fig&cursor={c}")),
        (&b, format!("q=fig&conversation_id={d}&cursor={c}")),
        (&b, "q=fig&cursor=s1.2.0000000000000000".to_owned()),
        (&b, "q=fig&cursor=garbage".to_owned()),
        (&b, "q=fig&cursor=".to_owned()),
    ] {
        let (s, v) = search(&srv, who, &query).await;
        assert_invalid(s, &v, "cursor");
    }
    // The same cursor with the same search still works (case and punctuation aside).
    let (s, v) = search(&srv, &b, &format!("q=FIG!&limit=2&cursor={c}")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["messages"].as_array().expect("messages").len(), 2);
}
