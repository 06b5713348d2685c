//! Message search through the engine: the query rule's bounds and typed errors (nothing is
//! syntax), the cursor bound to its search, page clamping and depth, and what a member who
//! left, a newcomer, a hider and a blocker each see.

mod common;

use chatico_core::ids::{ConversationId, UserId};
use chatico_core::protocol::{SearchRequest, SearchResults};
use common::*;

fn req(q: &str) -> SearchRequest {
    SearchRequest {
        q: q.into(),
        ..Default::default()
    }
}

fn search(h: &Harness, who: UserId, r: SearchRequest) -> chatico_core::Result<SearchResults> {
    block_on(h.engine.search_messages(who, r))
}

fn seqs(r: &SearchResults) -> Vec<(ConversationId, i64)> {
    r.messages.iter().map(|m| (m.conversation_id, m.seq)).collect()
}

#[test]
fn bad_queries_are_typed_errors_and_syntax_is_plain_words() {
    let h = Harness::new();
    let [a, b] = h.users(&["A", "B"])[..] else {
        unreachable!()
    };
    let d = h.direct(a, b);
    h.say(a, d, "near OR far");
    for q in [
        "",
        "   ",
        "*",
        "\"\" () : - ^",
        &"x".repeat(65),
        "a b c d e f g h i",
        "tab\there",
    ] {
        assert_eq!(invalid_field(search(&h, a, req(q))), Some("q".to_owned()), "{q:?}");
    }
    for q in ["NEAR(far)", "\"or\"", "far*", "-near", "near OR", "or:far"] {
        assert_eq!(search(&h, a, req(q)).expect(q).messages.len(), 1, "{q}");
    }
    assert!(search(&h, a, req("near NOT")).expect("not").messages.is_empty());
}

#[test]
fn cursors_page_to_the_end_and_belong_to_their_search() {
    let h = Harness::new();
    let [a, b, c] = h.users(&["A", "B", "C"])[..] else {
        unreachable!()
    };
    let d = h.direct(a, b);
    let g = h.group(a, "G", &[b, c]);
    for i in 0..7 {
        h.say(a, if i % 2 == 0 { d } else { g }, &format!("lime {i}"));
    }
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let page = search(
            &h,
            b,
            SearchRequest {
                cursor: cursor.clone(),
                limit: Some(3),
                ..req("lime")
            },
        )
        .expect("page");
        assert!(page.messages.len() <= 3);
        all.extend(seqs(&page));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(all.len(), 7);
    let first = search(
        &h,
        b,
        SearchRequest {
            limit: Some(3),
            ..req("lime")
        },
    )
    .expect("first");
    let token = first.next_cursor.expect("more");
    let with = |who: UserId, r: SearchRequest| {
        invalid_field(search(
            &h,
            who,
            SearchRequest {
                cursor: Some(token.clone()),
                ..r
            },
        ))
    };
    assert_eq!(with(c, req("lime")), Some("cursor".into()), "another user");
    assert_eq!(with(b, req("lime 1")), Some("cursor".into()), "other words");
    assert_eq!(
        with(
            b,
            SearchRequest {
                conversation_id: Some(g),
                ..req("lime")
            }
        ),
        Some("cursor".into()),
        "another filter"
    );
    assert_eq!(with(b, req("LIME!")), None, "the same words");
    // Pages are clamped to the limit; 0 asks for one.
    assert_eq!(
        search(
            &h,
            b,
            SearchRequest {
                limit: Some(0),
                ..req("lime")
            }
        )
        .expect("0")
        .messages
        .len(),
        1
    );
    assert_eq!(
        search(
            &h,
            b,
            SearchRequest {
                limit: Some(10_000),
                ..req("lime")
            }
        )
        .expect("big")
        .messages
        .len(),
        7
    );
}

#[test]
fn what_leavers_newcomers_hiders_and_blockers_see() {
    let h = Harness::new();
    let [a, b, c] = h.users(&["A", "B", "C"])[..] else {
        unreachable!()
    };
    let g = h.group(a, "G", &[b]);
    let before = h.say(a, g, "pear before c");
    block_on(h.engine.add_members(a, g, vec![c])).expect("add c");
    let after = h.say(b, g, "pear after c");
    let hits = |who| seqs(&search(&h, who, req("pear")).expect("search"));
    assert_eq!(hits(c), vec![(g, after)], "a newcomer reads from their join");
    assert_eq!(hits(a).len(), 2);

    block_on(h.engine.delete_for_me(a, g, after)).expect("hide");
    assert_eq!(hits(a), vec![(g, before)], "hidden for a");
    assert_eq!(hits(b).len(), 2, "not for b");

    // Blocking does not hide messages in history, so neither in search.
    block_on(h.engine.block(c, b)).expect("block");
    assert_eq!(hits(c), vec![(g, after)]);

    block_on(h.engine.leave(c, g)).expect("leave");
    assert!(hits(c).is_empty(), "nothing of a group after leaving");
    let r = search(
        &h,
        c,
        SearchRequest {
            conversation_id: Some(g),
            ..req("pear")
        },
    );
    assert_eq!(r.map(|_| ()), Err(not_found_conversation()));
}
