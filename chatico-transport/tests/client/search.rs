//! The native client's message search against a real gateway: results, paging by cursor,
//! the typed errors of a bad query or cursor, and nothing of a conversation after leaving.

use chatico_core::ErrorCode;
use chatico_core::model::Content;
use chatico_core::protocol::{DeleteScope, PostMessage, SearchRequest};

use crate::common::*;

fn post(key: &str, text: &str) -> PostMessage {
    PostMessage {
        client_msg_id: key.into(),
        content: Content::text(text),
        reply_to_seq: None,
    }
}

fn texts(r: &chatico_core::protocol::SearchResults) -> Vec<String> {
    r.messages
        .iter()
        .map(|m| match &m.content {
            Some(Content::Text { text, .. }) => text.clone(),
            other => panic!("not a text: {other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn a_client_searches_pages_and_gets_typed_errors() {
    let server = TestServer::start().await;
    let alice = login(&server, &server.url(), "+15550190101", "Alice").await;
    let bob = login(&server, &server.url(), "+15550190102", "Bob").await;
    let bob_id = bob.user_id().expect("bob");
    let group = alice.create_group("Fruit", vec![bob_id], None).await.expect("group").id;
    for i in 0..3 {
        alice
            .send_now(group, &post(&format!("k{i}"), &format!("Quince jam #{i}")))
            .await
            .expect("send");
    }
    let gone = bob
        .send_now(group, &post("gone", "quince to delete"))
        .await
        .expect("send");
    bob.delete_message(group, gone.seq, DeleteScope::Everyone)
        .await
        .expect("delete");

    let req = |q: &str| SearchRequest {
        q: q.into(),
        limit: Some(2),
        ..SearchRequest::default()
    };
    let first = bob.search(&req("QUINCE")).await.expect("search");
    assert_eq!(texts(&first), ["Quince jam #2", "Quince jam #1"]);
    let cursor = first.next_cursor.clone().expect("a second page");
    let second = bob
        .search(&SearchRequest {
            cursor: Some(cursor.clone()),
            ..req("quince")
        })
        .await
        .expect("page 2");
    assert_eq!(texts(&second), ["Quince jam #0"]);
    assert_eq!(second.next_cursor, None);

    let e = bob.search(&req("?!")).await.expect_err("no words");
    assert_eq!(e.code(), ErrorCode::InvalidInput);
    let e = alice
        .search(&SearchRequest {
            cursor: Some(cursor),
            ..req("quince")
        })
        .await
        .expect_err("bob's cursor");
    assert_eq!(e.code(), ErrorCode::InvalidInput);

    bob.leave(group).await.expect("leave");
    assert!(bob.search(&req("quince")).await.expect("search").messages.is_empty());
    let e = bob
        .search(&SearchRequest {
            conversation_id: Some(group),
            ..req("quince")
        })
        .await
        .expect_err("not a member");
    assert_eq!(e.code(), ErrorCode::NotFound);
    assert_eq!(alice.search(&req("jam")).await.expect("search").messages.len(), 2);
}
