//! Conformance: message search (`Store::search_messages`, the rule in [`crate::search`]).

use crate::ids::{ConversationId, UserId};
use crate::model::{Content, MediaRef, Message, Role, SystemNotice};
use crate::ports::Store;
use crate::search::{self, MessageSearch};

use super::fixtures::{Fx, text};

/// Stores a message with `content` from `sender`.
async fn say_content(fx: &Fx<'_>, conversation: ConversationId, sender: UserId, content: Content) -> Message {
    let key = format!("s-{:016x}", rand::random::<u64>());
    let mut new = fx.new_message(conversation, sender, &key);
    new.content = content;
    let (m, change) = fx.store.insert_message(&new).await.expect("insert_message");
    assert!(change.is_some(), "a fresh client_msg_id inserts");
    m
}

/// Stores a text message from `sender`.
async fn say(fx: &Fx<'_>, conversation: ConversationId, sender: UserId, s: &str) -> Message {
    say_content(fx, conversation, sender, text(s)).await
}

/// `viewer`'s search for `q` (optionally in one conversation), one page.
async fn find_page(
    store: &dyn Store,
    viewer: UserId,
    q: &str,
    conversation: Option<ConversationId>,
    offset: u32,
    limit: u32,
) -> Vec<(ConversationId, i64)> {
    let search = MessageSearch {
        terms: search::terms(q),
        conversation,
        offset,
        limit,
    };
    let found = store.search_messages(viewer, &search).await.expect("search_messages");
    for m in &found {
        assert!(
            m.deleted_at.is_none() && m.content.is_some(),
            "never a tombstone: {m:?}"
        );
    }
    found.iter().map(|m| (m.conversation_id, m.seq)).collect()
}

/// `viewer`'s search for `q` everywhere, the first 100 results.
async fn find(store: &dyn Store, viewer: UserId, q: &str) -> Vec<(ConversationId, i64)> {
    find_page(store, viewer, q, None, 0, 100).await
}

fn ids(messages: &[&Message]) -> Vec<(ConversationId, i64)> {
    messages.iter().map(|m| (m.conversation_id, m.seq)).collect()
}

fn sorted(mut v: Vec<(ConversationId, i64)>) -> Vec<(ConversationId, i64)> {
    v.sort();
    v
}

/// Whole words, every term required, case folded; a media caption is searchable, a
/// system notice and a caption-less media message are not; the terms of a query that a
/// full-text engine would read as syntax (`OR`, `NEAR`, `AND`, `NOT`) are plain words.
pub async fn search_matches_every_term_as_whole_words(store: &dyn Store) {
    let fx = Fx::new(store);
    let (a, b) = (fx.user("a").await, fx.user("b").await);
    let c = fx.group(&a, &[&b]).await;
    let pie = say(&fx, c.id, a.id, "Apple pie for dinner").await;
    let pine = say(&fx, c.id, b.id, "pineapple juice").await;
    let apple = say(&fx, c.id, b.id, "an APPLE a day").await;
    let syntax = say(&fx, c.id, a.id, "this OR that, NEAR and NOT far").await;
    let media = |caption: Option<&str>| {
        Content::Media(MediaRef {
            blob_key: "0190aaaa-0000-7000-8000-000000000000.png".into(),
            content_type: "image/png".into(),
            size: 10,
            width: Some(1),
            height: Some(1),
            caption: caption.map(str::to_owned),
        })
    };
    let photo = say_content(&fx, c.id, a.id, media(Some("Sunset over the apple orchard"))).await;
    say_content(&fx, c.id, a.id, media(None)).await;
    say_content(
        &fx,
        c.id,
        a.id,
        Content::System(SystemNotice::GroupCreated { title: "apple".into() }),
    )
    .await;

    assert_eq!(
        sorted(find(store, b.id, "apple").await),
        sorted(ids(&[&pie, &apple, &photo]))
    );
    assert_eq!(find(store, b.id, "apple PIE").await, ids(&[&pie]));
    assert_eq!(find(store, a.id, "pineapple").await, ids(&[&pine]));
    assert_eq!(find(store, a.id, "apple juice").await, vec![]);
    assert_eq!(find(store, a.id, "orchard sunset").await, ids(&[&photo]));
    assert_eq!(find(store, a.id, "or").await, ids(&[&syntax]));
    assert_eq!(find(store, a.id, "near not").await, ids(&[&syntax]));
    assert_eq!(find(store, a.id, "and").await, ids(&[&syntax]));
    assert_eq!(find(store, a.id, "appl").await, vec![], "whole words, not prefixes");
}

/// Only conversations the viewer is a member of now, only seqs above their `joined_seq`;
/// the conversation filter narrows to one; someone who left (or was removed) finds nothing
/// there any more, and after rejoining only what came after the new join.
pub async fn search_covers_member_conversations_from_their_join(store: &dyn Store) {
    let fx = Fx::new(store);
    let (a, b, c, d) = (
        fx.user("a").await,
        fx.user("b").await,
        fx.user("c").await,
        fx.user("d").await,
    );
    let g = fx.group(&a, &[&b]).await;
    let dm = fx.direct(&a, &d).await;
    let early = say(&fx, g.id, a.id, "kiwi before c joined").await;
    store
        .add_members(g.id, &[(c.id, Role::Member)], fx.tick())
        .await
        .expect("add c");
    let late = say(&fx, g.id, b.id, "kiwi after c joined").await;
    let private = say(&fx, dm.id, d.id, "kiwi between a and d").await;

    assert_eq!(
        sorted(find(store, a.id, "kiwi").await),
        sorted(ids(&[&early, &late, &private]))
    );
    assert_eq!(
        find(store, c.id, "kiwi").await,
        ids(&[&late]),
        "c sees only from their join"
    );
    assert_eq!(find(store, d.id, "kiwi").await, ids(&[&private]));
    assert_eq!(
        sorted(find_page(store, a.id, "kiwi", Some(g.id), 0, 100).await),
        sorted(ids(&[&early, &late]))
    );
    assert_eq!(
        find_page(store, a.id, "kiwi", Some(dm.id), 0, 100).await,
        ids(&[&private])
    );
    // The store answers nothing of a conversation the viewer is not in, even when asked
    // for it by id (the engine refuses that request before the store sees it).
    assert_eq!(find_page(store, c.id, "kiwi", Some(dm.id), 0, 100).await, vec![]);
    assert_eq!(find_page(store, b.id, "kiwi", Some(dm.id), 0, 100).await, vec![]);

    store.remove_member(g.id, c.id, a.id).await.expect("remove c");
    assert_eq!(
        find(store, c.id, "kiwi").await,
        vec![],
        "a removed member finds nothing"
    );
    assert_eq!(find_page(store, c.id, "kiwi", Some(g.id), 0, 100).await, vec![]);
    let while_away = say(&fx, g.id, a.id, "kiwi while c was away").await;
    store
        .add_members(g.id, &[(c.id, Role::Member)], fx.tick())
        .await
        .expect("re-add c");
    let back = say(&fx, g.id, b.id, "kiwi after c came back").await;
    assert_eq!(find(store, c.id, "kiwi").await, ids(&[&back]));
    assert_eq!(find(store, b.id, "kiwi").await.len(), 4);
    drop(while_away);
}

/// Deleted for everyone: gone for all, in the same write (the index follows `content`).
/// Hidden: gone for the one who hid it only.
pub async fn search_skips_deleted_and_hidden_messages(store: &dyn Store) {
    let fx = Fx::new(store);
    let (a, b) = (fx.user("a").await, fx.user("b").await);
    let c = fx.group(&a, &[&b]).await;
    let one = say(&fx, c.id, a.id, "mango one").await;
    let two = say(&fx, c.id, a.id, "mango two").await;
    let three = say(&fx, c.id, b.id, "mango three").await;

    store
        .delete_message_for_everyone(c.id, two.seq, fx.tick())
        .await
        .expect("delete");
    store.hide_message(b.id, c.id, three.seq).await.expect("hide");
    assert_eq!(sorted(find(store, a.id, "mango").await), sorted(ids(&[&one, &three])));
    assert_eq!(find(store, b.id, "mango").await, ids(&[&one]));
    assert_eq!(find(store, a.id, "two").await, vec![], "a tombstone has no words");
    // Deleting again changes nothing; a new message with the same words is found.
    store
        .delete_message_for_everyone(c.id, two.seq, fx.tick())
        .await
        .expect("delete again");
    let four = say(&fx, c.id, a.id, "mango two again").await;
    assert_eq!(find(store, b.id, "two").await, ids(&[&four]));
}

/// Better matches first (more occurrences of the terms in a short text); equal matches
/// newest first (by seq within one millisecond); offset and limit page through one order
/// without gaps or repeats.
pub async fn search_ranks_then_orders_by_recency_and_pages(store: &dyn Store) {
    let fx = Fx::new(store);
    let (a, b) = (fx.user("a").await, fx.user("b").await);
    let c = fx.group(&a, &[&b]).await;
    let dm = fx.direct(&a, &b).await;
    let weak = say(&fx, c.id, a.id, "plum with lots of other words around it today").await;
    let strong = say(&fx, c.id, b.id, "plum plum plum").await;
    let mut same = Vec::new();
    for i in 0..7 {
        let conv = if i % 2 == 0 { c.id } else { dm.id };
        same.push(say(&fx, conv, a.id, "a plum tree").await);
    }
    let all = find(store, b.id, "plum").await;
    assert_eq!(all.len(), 9);
    assert_eq!(
        all[0],
        (strong.conversation_id, strong.seq),
        "the strongest match first"
    );
    assert_eq!(all[8], (weak.conversation_id, weak.seq), "the weakest match last");
    let newest_first: Vec<_> = same.iter().rev().map(|m| (m.conversation_id, m.seq)).collect();
    assert_eq!(all[1..8], newest_first[..], "equal matches newest first");

    let mut paged = Vec::new();
    for offset in (0..12).step_by(2) {
        paged.extend(find_page(store, b.id, "plum", None, offset, 2).await);
    }
    assert_eq!(paged, all, "pages concatenate to the whole order");
    assert_eq!(find_page(store, b.id, "plum", None, 9, 5).await, vec![]);

    // Stored in the same millisecond: still newest (highest seq) first.
    let at = fx.tick();
    let mut burst = Vec::new();
    for i in 0..3 {
        let mut new = fx.new_message(c.id, a.id, &format!("burst-{i}-{at}"));
        new.created_at = at;
        new.content = text("damson jam");
        burst.push(store.insert_message(&new).await.expect("insert").0);
    }
    let newest_first: Vec<_> = burst.iter().rev().map(|m| (m.conversation_id, m.seq)).collect();
    assert_eq!(find(store, b.id, "damson").await, newest_first);
}
