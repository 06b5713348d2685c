//! Property tests for store backends: proptest strategies that generate scripts, and
//! model-based checkers that run a script against a fresh store and panic on any
//! divergence from the contract. [`crate::store_conformance_proptests!`] wires them up; a
//! backend may also call them from its own `proptest!` blocks.
//!
//! - [`send_script`] / [`check_send_script`]: batches of concurrent sends and retries into
//!   two conversations; seqs stay `1..=n` per conversation, each `(sender, client_msg_id)`
//!   is stored once, and every call for it returns the same message.
//! - [`receipt_script`] / [`check_receipt_script`]: sends and (concurrent) receipt marks
//!   with out-of-range values; watermarks follow `max(old, min(given, last_seq))` with
//!   `delivered >= read`, and a `Receipt` change is recorded exactly when something moved.
//! - [`sync_script`] / [`check_sync_script`]: random operations of every kind while live
//!   clients sync page by page; at the end every client (live, replayed from 0 with random
//!   page sizes, resumed from random cursors) holds the same state as the store.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::join_all;
use proptest::prelude::*;
use proptest::sample::Index;

use crate::ids::{ConversationId, UserId};
use crate::model::{Conversation, Message, NewMessage, Role, User};
use crate::ports::Store;
use crate::sync::{Change, ChangeKind, SyncCursor};

use super::fixtures::{Fx, RecordedChanges, assert_returned, check_page, sync_all, text};

// ---- seq gap-freeness -------------------------------------------------------------------

/// Users in a [`SendScript`].
pub const SEND_USERS: usize = 4;
/// Conversations in a [`SendScript`] (groups of all users).
pub const SEND_CONVERSATIONS: usize = 2;

/// One call to `insert_message`: `sender` sends with client_msg_id `k{key}` into
/// `conversation`. Repeated `(sender, key)` pairs are retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendOp {
    /// Index of the sending user (below [`SEND_USERS`]).
    pub sender: usize,
    /// The client_msg_id is `k{key}`; a repeated `(sender, key)` is a retry.
    pub key: u8,
    /// Index of the conversation (below [`SEND_CONVERSATIONS`]).
    pub conversation: usize,
}

/// Batches run one after the other; the sends of a batch run concurrently (`join_all`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendScript {
    /// The batches, in order.
    pub batches: Vec<Vec<SendOp>>,
}

/// A strategy for one [`SendOp`].
pub fn send_op() -> impl Strategy<Value = SendOp> {
    (0..SEND_USERS, 0u8..6, 0..SEND_CONVERSATIONS).prop_map(|(sender, key, conversation)| SendOp {
        sender,
        key,
        conversation,
    })
}

/// A strategy for a [`SendScript`] of 1 to 5 batches of 1 to 15 sends.
pub fn send_script() -> impl Strategy<Value = SendScript> {
    prop::collection::vec(prop::collection::vec(send_op(), 1..16), 1..6).prop_map(|batches| SendScript { batches })
}

/// Runs a [`SendScript`] on a fresh store and checks gap-free seqs and idempotency.
pub async fn check_send_script(store: &dyn Store, script: &SendScript) {
    let fx = Fx::new(store);
    let mut users = Vec::new();
    for i in 0..SEND_USERS {
        users.push(fx.user(&format!("sender {i}")).await);
    }
    let refs: Vec<&User> = users[1..].iter().collect();
    let mut convs = Vec::new();
    for _ in 0..SEND_CONVERSATIONS {
        convs.push(fx.group(&users[0], &refs).await);
    }
    let start = fx.latest_pos().await;

    // (sender, key) -> (the message every call returned, batch where it was inserted)
    let mut canonical: BTreeMap<(usize, u8), (Message, usize)> = BTreeMap::new();
    for (b, batch) in script.batches.iter().enumerate() {
        let news: Vec<NewMessage> = batch
            .iter()
            .map(|op| NewMessage {
                content: text(&format!("batch {b} from {} into {}", op.sender, op.conversation)),
                ..fx.new_message(convs[op.conversation].id, users[op.sender].id, &format!("k{}", op.key))
            })
            .collect();
        let before = fx.latest_pos().await;
        let results = join_all(news.iter().map(|n| store.insert_message(n))).await;
        // Per key in this batch: every call got the same message, and exactly one call
        // inserted it if the key is new (none if it was stored by an earlier batch).
        let mut got: BTreeMap<(usize, u8), (Message, usize)> = BTreeMap::new();
        let mut returned: Vec<Change> = Vec::new();
        for ((op, new), r) in batch.iter().zip(&news).zip(results) {
            let (msg, change) = r.expect("insert_message");
            let inserted = change.is_some();
            if let Some(c) = change {
                assert_eq!(c.kind, ChangeKind::Message { message: msg.clone() });
                returned.push(c);
            }
            let key = (op.sender, op.key);
            assert_eq!(
                (msg.sender_id, msg.client_msg_id.as_str()),
                (new.sender_id, new.client_msg_id.as_str())
            );
            if inserted {
                assert_eq!(msg.conversation_id, new.conversation_id);
                assert_eq!(msg.content.as_ref(), Some(&new.content));
            }
            let entry = got.entry(key).or_insert_with(|| (msg.clone(), 0));
            assert_eq!(
                entry.0, msg,
                "{key:?}: every concurrent call returns the same message (batch {b})"
            );
            entry.1 += usize::from(inserted);
        }
        // The calls returned exactly the changes sync now shows, positions included.
        returned.sort_by_key(|c| c.pos);
        let everyone: Vec<UserId> = users.iter().map(|u| u.id).collect();
        fx.assert_returned(before, &returned, &everyone).await;
        for (key, (msg, inserts)) in got {
            match canonical.get(&key) {
                Some((m, _)) => {
                    assert_eq!(inserts, 0, "{key:?} stored again in batch {b}");
                    assert_eq!(m, &msg, "{key:?}: retries return the original");
                }
                None => {
                    assert_eq!(inserts, 1, "{key:?}: new in batch {b}, so inserted exactly once");
                    canonical.insert(key, (msg, b));
                }
            }
        }
        // A sequential retry of the whole batch inserts nothing and returns the originals.
        for (op, new) in batch.iter().zip(&news) {
            let (msg, inserted) = store.insert_message(new).await.expect("insert_message retry");
            assert_eq!(inserted, None, "a retry after the batch must not insert");
            assert_eq!(Some(&msg), canonical.get(&(op.sender, op.key)).map(|(m, _)| m));
        }
    }

    for (ci, conv) in convs.iter().enumerate() {
        let mut stored: Vec<Message> = canonical
            .values()
            .filter(|(m, _)| m.conversation_id == conv.id)
            .map(|(m, _)| m.clone())
            .collect();
        stored.sort_by_key(|m| m.seq);
        let n = stored.len() as i64;
        assert_eq!(
            stored.iter().map(|m| m.seq).collect::<Vec<_>>(),
            (1..=n).collect::<Vec<_>>(),
            "conversation {ci}: seqs are 1..=n without gaps or duplicates"
        );
        assert_eq!(fx.conversation(conv.id).await.last_seq, n);
        assert_eq!(fx.full_history(conv.id, users[0].id).await, stored);
        let changes = fx.sync_all(users[1].id, start, 16).await;
        let seqs: Vec<i64> = changes
            .iter()
            .filter_map(|c| match &c.kind {
                ChangeKind::Message { message } if message.conversation_id == conv.id => Some(message.seq),
                _ => None,
            })
            .collect();
        assert_eq!(
            seqs,
            (1..=n).collect::<Vec<_>>(),
            "one Message change per message, in seq order"
        );
        for u in &users {
            let newest = stored
                .iter()
                .filter(|m| m.sender_id == u.id)
                .map(|m| m.seq)
                .max()
                .unwrap_or(0);
            let m = fx.member(conv.id, u.id).await;
            assert_eq!((m.delivered_seq, m.read_seq), (newest, newest), "sender watermarks");
        }
    }
}

// ---- receipt monotonicity ---------------------------------------------------------------

/// Members of the conversation in a receipt script.
pub const RECEIPT_USERS: usize = 3;

/// One `update_receipts` call (values may be out of range on purpose).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    /// Index of the marking member (below [`RECEIPT_USERS`]).
    pub user: usize,
    /// The delivered value to set, possibly out of range.
    pub delivered: Option<i64>,
    /// The read value to set, possibly out of range.
    pub read: Option<i64>,
}

/// One step of a receipt script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiptOp {
    /// `user` sends a message (their watermarks move to its seq).
    Send {
        /// Index of the sender (below [`RECEIPT_USERS`]).
        sender: usize,
    },
    /// Marks run concurrently (one mark: sequentially, and a `Receipt` change must be
    /// recorded exactly when something moved).
    Marks(Vec<Mark>),
}

/// A strategy for one [`Mark`], values from -2 to 29.
pub fn mark() -> impl Strategy<Value = Mark> {
    (
        0..RECEIPT_USERS,
        prop::option::of(-2i64..30),
        prop::option::of(-2i64..30),
    )
        .prop_map(|(user, delivered, read)| Mark { user, delivered, read })
}

/// A strategy for a receipt script: sends and marks, mixed.
pub fn receipt_script() -> impl Strategy<Value = Vec<ReceiptOp>> {
    let op = prop_oneof![
        2 => (0..RECEIPT_USERS).prop_map(|sender| ReceiptOp::Send { sender }),
        3 => prop::collection::vec(mark(), 1..2).prop_map(ReceiptOp::Marks),
        1 => prop::collection::vec(mark(), 2..6).prop_map(ReceiptOp::Marks),
    ];
    prop::collection::vec(op, 1..40)
}

/// The watermark rule: each moves to `max(old, min(given, last_seq))`, then delivered is
/// raised to read.
pub fn apply_mark(old: (i64, i64), last_seq: i64, delivered: Option<i64>, read: Option<i64>) -> (i64, i64) {
    let d = delivered.map_or(old.0, |d| old.0.max(d.min(last_seq)));
    let r = read.map_or(old.1, |r| old.1.max(r.min(last_seq)));
    (d.max(r), r)
}

/// Runs a receipt script on a fresh store against the watermark model.
pub async fn check_receipt_script(store: &dyn Store, ops: &[ReceiptOp]) {
    let fx = Fx::new(store);
    let mut users = Vec::new();
    for i in 0..RECEIPT_USERS {
        users.push(fx.user(&format!("reader {i}")).await);
    }
    let refs: Vec<&User> = users[1..].iter().collect();
    let conv = fx.group(&users[0], &refs).await;
    let start = fx.latest_pos().await;
    let mut model = vec![(0i64, 0i64); RECEIPT_USERS];
    let mut last_seq = 0i64;
    // Every watermark pair the log must show, per user, in order.
    let mut expected_log: Vec<Vec<(i64, i64)>> = vec![Vec::new(); RECEIPT_USERS];
    for op in ops {
        match op {
            ReceiptOp::Send { sender } => {
                let m = fx.send(conv.id, users[*sender].id).await;
                last_seq += 1;
                assert_eq!(m.seq, last_seq);
                model[*sender] = (last_seq, last_seq);
            }
            ReceiptOp::Marks(marks) if marks.len() == 1 => {
                let mk = marks[0];
                let everyone: Vec<UserId> = users.iter().map(|u| u.id).collect();
                let (got, change) = fx
                    .checked(
                        &everyone,
                        store.update_receipts(conv.id, users[mk.user].id, mk.delivered, mk.read),
                    )
                    .await;
                let want = apply_mark(model[mk.user], last_seq, mk.delivered, mk.read);
                assert_eq!(
                    (got.delivered_seq, got.read_seq),
                    want,
                    "{mk:?} from {:?}",
                    model[mk.user]
                );
                let moved = want != model[mk.user];
                assert_eq!(
                    change.map(|c| c.kind),
                    moved.then_some(ChangeKind::Receipt {
                        user_id: users[mk.user].id,
                        delivered_seq: want.0,
                        read_seq: want.1
                    }),
                    "a Receipt change is recorded exactly when a watermark moved ({mk:?})"
                );
                if moved {
                    expected_log[mk.user].push(want);
                }
                model[mk.user] = want;
            }
            ReceiptOp::Marks(marks) => {
                let results = join_all(
                    marks
                        .iter()
                        .map(|mk| store.update_receipts(conv.id, users[mk.user].id, mk.delivered, mk.read)),
                )
                .await;
                for (mk, r) in marks.iter().zip(results) {
                    let (got, _) = r.expect("update_receipts");
                    assert!(got.delivered_seq >= got.read_seq && got.delivered_seq <= last_seq);
                    let floor = apply_mark(model[mk.user], last_seq, mk.delivered, mk.read);
                    assert!(
                        got.delivered_seq >= floor.0 && got.read_seq >= floor.1,
                        "a concurrent mark returns at least its own effect"
                    );
                }
                // The rule commutes, so the final state is the sequential one; concurrent
                // marks may be recorded as fewer moves, ending at that state.
                let before = model.clone();
                for mk in marks {
                    model[mk.user] = apply_mark(model[mk.user], last_seq, mk.delivered, mk.read);
                }
                for (u, log) in expected_log.iter_mut().enumerate() {
                    if model[u] != before[u] {
                        log.push(model[u]);
                    }
                }
            }
        }
        for (i, u) in users.iter().enumerate() {
            let m = fx.member(conv.id, u.id).await;
            assert_eq!((m.delivered_seq, m.read_seq), model[i], "user {i} after {op:?}");
            assert!(m.read_seq <= m.delivered_seq && m.delivered_seq <= last_seq);
        }
    }
    // The Receipt log: monotonic, ends at the model, and (for sequential marks) exactly the
    // moves of the model.
    let changes = fx.sync_all(users[0].id, start, 8).await;
    for (i, u) in users.iter().enumerate() {
        let log: Vec<(i64, i64)> = changes
            .iter()
            .filter_map(|c| match c.kind {
                ChangeKind::Receipt {
                    user_id,
                    delivered_seq,
                    read_seq,
                } if user_id == u.id => Some((delivered_seq, read_seq)),
                _ => None,
            })
            .collect();
        for w in log.windows(2) {
            assert!(
                w[1].0 >= w[0].0 && w[1].1 >= w[0].1 && w[1] != w[0],
                "user {i}: {log:?}"
            );
        }
        let concurrent = ops
            .iter()
            .any(|op| matches!(op, ReceiptOp::Marks(m) if m.len() > 1 && m.iter().any(|mk| mk.user == i)));
        if concurrent {
            assert_eq!(
                log.last(),
                expected_log[i].last(),
                "user {i}: the log ends at the last marked state"
            );
        } else {
            assert_eq!(log, expected_log[i], "user {i}: one Receipt change per move");
        }
    }
}

// ---- sync completeness ------------------------------------------------------------------

/// Users in a sync script. Conversations: group 0 = {u0 (owner), u1, u2}, group 1 =
/// {u1 (owner), u3}, direct 2 = {u0, u3}.
pub const SYNC_USERS: usize = 4;
/// Conversations in a sync script (see [`SYNC_USERS`]).
pub const SYNC_CONVERSATIONS: usize = 3;

/// One step of a sync script. Steps whose preconditions do not hold (sending into a
/// conversation one is not in, removing a non-member...) are skipped, as the engine would
/// refuse them before reaching the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOp {
    /// `user` sends a message into `conv`.
    Send {
        /// Index of the conversation (below [`SYNC_CONVERSATIONS`]).
        conv: usize,
        /// Index of the user (below [`SYNC_USERS`]).
        user: usize,
    },
    /// Resend the `n`-th (mod count) earlier message with the same key.
    Retry {
        /// Which earlier message to resend.
        n: usize,
    },
    /// The `nth` (mod count) message of `conv` is deleted for everyone.
    Delete {
        /// Index of the conversation.
        conv: usize,
        /// Which message, mod the conversation's count.
        nth: i64,
    },
    /// `user` hides the `nth` (mod count) message of `conv` for themself.
    Hide {
        /// Index of the conversation.
        conv: usize,
        /// Index of the user.
        user: usize,
        /// Which message, mod the conversation's count.
        nth: i64,
    },
    /// `user` marks receipts in `conv` (values may be out of range).
    Receipt {
        /// Index of the conversation.
        conv: usize,
        /// Index of the user.
        user: usize,
        /// The delivered value to set.
        delivered: i64,
        /// The read value to set.
        read: i64,
    },
    /// `user` is added to `conv`.
    Add {
        /// Index of the conversation.
        conv: usize,
        /// Index of the user.
        user: usize,
    },
    /// `user` is removed from `conv`.
    Remove {
        /// Index of the conversation.
        conv: usize,
        /// Index of the user.
        user: usize,
    },
    /// `user` archives or restores `conv`.
    Archive {
        /// Index of the conversation.
        conv: usize,
        /// Index of the user.
        user: usize,
        /// Archive (`true`) or restore (`false`).
        archived: bool,
    },
    /// `conv` is renamed (groups only).
    Rename {
        /// Index of the conversation.
        conv: usize,
    },
    /// `user` becomes an admin or a member of `conv`.
    Role {
        /// Index of the conversation.
        conv: usize,
        /// Index of the user.
        user: usize,
        /// Admin (`true`) or member (`false`).
        admin: bool,
    },
    /// `owner` adds or removes `other` as a contact.
    Contact {
        /// Index of the user whose list changes.
        owner: usize,
        /// Index of the contact.
        other: usize,
        /// Add (`true`) or remove (`false`).
        add: bool,
    },
    /// `blocker` blocks or unblocks `other`.
    Block {
        /// Index of the blocking user.
        blocker: usize,
        /// Index of the blocked user.
        other: usize,
        /// Block (`true`) or unblock (`false`).
        block: bool,
    },
    /// The live client of `user` fetches one page of `page` changes.
    Sync {
        /// Index of the user.
        user: usize,
        /// Page size.
        page: u32,
    },
}

/// A sync script: the steps, then how to drain and replay each user's changes.
#[derive(Debug, Clone)]
pub struct SyncScript {
    /// The steps, run in order.
    pub ops: Vec<SyncOp>,
    /// Page sizes used in turn when draining and replaying.
    pub pages: Vec<u32>,
    /// Cursors to resume from (indexes into each user's full change list).
    pub cuts: Vec<Index>,
}

/// A strategy for one [`SyncOp`] (sends weighted highest).
pub fn sync_op() -> impl Strategy<Value = SyncOp> {
    let u = 0..SYNC_USERS;
    let c = 0..SYNC_CONVERSATIONS;
    prop_oneof![
        6 => (c.clone(), u.clone()).prop_map(|(conv, user)| SyncOp::Send { conv, user }),
        1 => any::<usize>().prop_map(|n| SyncOp::Retry { n }),
        1 => (c.clone(), 0i64..100).prop_map(|(conv, nth)| SyncOp::Delete { conv, nth }),
        1 => (c.clone(), u.clone(), 0i64..100).prop_map(|(conv, user, nth)| SyncOp::Hide { conv, user, nth }),
        3 => (c.clone(), u.clone(), -1i64..40, -1i64..40)
            .prop_map(|(conv, user, delivered, read)| SyncOp::Receipt { conv, user, delivered, read }),
        2 => (c.clone(), u.clone()).prop_map(|(conv, user)| SyncOp::Add { conv, user }),
        2 => (c.clone(), u.clone()).prop_map(|(conv, user)| SyncOp::Remove { conv, user }),
        1 => (c.clone(), u.clone(), any::<bool>()).prop_map(|(conv, user, archived)| SyncOp::Archive {
            conv,
            user,
            archived
        }),
        1 => c.clone().prop_map(|conv| SyncOp::Rename { conv }),
        1 => (c.clone(), u.clone(), any::<bool>()).prop_map(|(conv, user, admin)| SyncOp::Role { conv, user, admin }),
        1 => (u.clone(), u.clone(), any::<bool>()).prop_map(|(owner, other, add)| SyncOp::Contact { owner, other, add }),
        1 => (u.clone(), u.clone(), any::<bool>()).prop_map(|(blocker, other, block)| SyncOp::Block {
            blocker,
            other,
            block
        }),
        4 => (u, 1u32..6).prop_map(|(user, page)| SyncOp::Sync { user, page }),
    ]
}

/// A strategy for a [`SyncScript`] of 1 to 59 steps.
pub fn sync_script() -> impl Strategy<Value = SyncScript> {
    (
        prop::collection::vec(sync_op(), 1..60),
        prop::collection::vec(1u32..8, 1..4),
        prop::collection::vec(any::<Index>(), 1..4),
    )
        .prop_map(|(ops, pages, cuts)| SyncScript { ops, pages, cuts })
}

/// What a client knows of one conversation, rebuilt from sync alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientConversation {
    /// Title, once a `ConversationCreated` or `ConversationUpdated` told it.
    pub title: Option<Option<String>>,
    /// Archived for this client, as last told.
    pub archived: bool,
    /// Members whose join or role the client saw (members who joined before the client may
    /// be missing), with their role.
    pub members: BTreeMap<UserId, Role>,
    /// Watermarks the client saw move (from `Receipt` and `Message` changes).
    pub watermarks: BTreeMap<UserId, (i64, i64)>,
    /// Messages since the client joined, as currently resolved.
    pub messages: BTreeMap<i64, Message>,
    /// Seqs hidden for this client.
    pub hidden: BTreeSet<i64>,
}

/// A reference client: applies sync changes in order and checks, as it goes, the audience
/// rules it can see (no conversation change for a conversation it is not in, except its
/// own `MemberJoined`; messages arrive gap-free in seq order once it has seen one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncClient {
    /// The user this client is.
    pub user: UserId,
    /// The position of the last change applied.
    pub cursor: SyncCursor,
    /// What it knows per conversation.
    pub conversations: BTreeMap<ConversationId, ClientConversation>,
    /// Its contacts, as told by contact changes.
    pub contacts: BTreeSet<UserId>,
    /// The users it blocked, as told by block changes.
    pub blocked: BTreeSet<UserId>,
}

impl SyncClient {
    /// A client of `user` that has seen nothing.
    pub fn new(user: UserId) -> Self {
        SyncClient {
            user,
            cursor: 0,
            conversations: BTreeMap::new(),
            contacts: BTreeSet::new(),
            blocked: BTreeSet::new(),
        }
    }

    /// Applies one change (panics on an audience or ordering violation).
    pub fn apply(&mut self, change: &Change) {
        assert!(change.pos > self.cursor, "changes arrive in position order");
        self.cursor = change.pos;
        let me = self.user;
        let Some(cid) = change.conversation_id else {
            match &change.kind {
                ChangeKind::ContactAdded { user_id } => assert!(self.contacts.insert(*user_id), "duplicate add"),
                ChangeKind::ContactRemoved { user_id } => assert!(self.contacts.remove(user_id), "unknown remove"),
                ChangeKind::Blocked { user_id } => assert!(self.blocked.insert(*user_id), "duplicate block"),
                ChangeKind::Unblocked { user_id } => assert!(self.blocked.remove(user_id), "unknown unblock"),
                other => panic!("{other:?} must carry a conversation id"),
            }
            return;
        };
        let targeted = matches!(
            &change.kind,
            ChangeKind::MessageHidden { .. }
                | ChangeKind::Archived { .. }
                | ChangeKind::Muted { .. }
                | ChangeKind::Pinned { .. }
        ) || matches!(&change.kind, ChangeKind::MemberLeft { user_id, .. } if *user_id == me);
        if let ChangeKind::MemberJoined { user_id, role } = &change.kind
            && *user_id == me
        {
            assert!(
                !self.conversations.contains_key(&cid),
                "a member sees their own MemberJoined only when joining (pos {})",
                change.pos
            );
            let mut conv = ClientConversation::default();
            conv.members.insert(me, *role);
            self.conversations.insert(cid, conv);
            return;
        }
        let Some(conv) = self.conversations.get_mut(&cid) else {
            assert!(
                targeted,
                "{me} got {:?} at pos {} for a conversation they are not in",
                change.kind, change.pos
            );
            return;
        };
        match &change.kind {
            ChangeKind::Message { message } => {
                if let Some((&last, _)) = conv.messages.last_key_value() {
                    assert_eq!(message.seq, last + 1, "messages arrive gap-free, in seq order");
                }
                assert_eq!(message.conversation_id, cid);
                conv.watermarks.insert(message.sender_id, (message.seq, message.seq));
                conv.messages.insert(message.seq, message.clone());
            }
            ChangeKind::MessageDeleted { seq, deleted_at } => {
                if let Some(m) = conv.messages.get_mut(seq) {
                    m.content = None;
                    m.deleted_at = Some(*deleted_at);
                }
            }
            ChangeKind::MessageHidden { seq } => {
                conv.hidden.insert(*seq);
            }
            ChangeKind::Receipt {
                user_id,
                delivered_seq,
                read_seq,
            } => {
                conv.watermarks.insert(*user_id, (*delivered_seq, *read_seq));
            }
            ChangeKind::ConversationCreated { conversation } => {
                assert_eq!(conversation.id, cid);
                conv.title = Some(conversation.title.clone());
            }
            ChangeKind::ConversationUpdated { title, .. } => conv.title = Some(title.clone()),
            ChangeKind::MemberJoined { user_id, role } => {
                conv.watermarks.remove(user_id);
                conv.members.insert(*user_id, *role);
            }
            ChangeKind::MemberLeft { user_id, .. } if *user_id == me => {
                self.conversations.remove(&cid);
            }
            ChangeKind::MemberLeft { user_id, .. } => {
                conv.members.remove(user_id);
                conv.watermarks.remove(user_id);
            }
            ChangeKind::RoleChanged { user_id, role } => {
                conv.members.insert(*user_id, *role);
            }
            ChangeKind::Archived { archived } => conv.archived = *archived,
            ChangeKind::Muted { .. } | ChangeKind::Pinned { .. } => {}
            other => panic!("{other:?} must not carry a conversation id"),
        }
    }

    /// Applies `changes` in order (see [`SyncClient::apply`]).
    pub fn apply_all(&mut self, changes: &[Change]) {
        for c in changes {
            self.apply(c);
        }
    }

    /// Fetches and applies one page; returns whether it was `limited`.
    pub async fn sync_page(&mut self, store: &dyn Store, limit: u32) -> bool {
        let since = self.cursor;
        let page = store.sync(self.user, since, limit).await.expect("sync");
        check_page(since, limit, &page);
        let latest = store.latest_pos().await.expect("latest_pos");
        assert!(
            page.next <= latest,
            "next ({}) is beyond latest_pos ({latest})",
            page.next
        );
        self.apply_all(&page.changes);
        self.cursor = self.cursor.max(page.next);
        page.limited
    }

    /// Syncs to the end with page sizes from `pages` in turn.
    pub async fn catch_up(&mut self, store: &dyn Store, pages: &[u32]) {
        for round in 0..1_000_000usize {
            if !self.sync_page(store, pages[round % pages.len()]).await {
                return;
            }
        }
        panic!("sync did not terminate");
    }

    /// Asserts that what the client rebuilt matches the store: its conversations are
    /// exactly the ones it is a member of (among `conversations`), and for each the
    /// archived flag, the visible timeline (= `history`), `last_seq`, the roles and
    /// watermarks it knows, the members who joined after it, the title; and its contacts
    /// and blocks.
    pub async fn assert_matches_store(&self, store: &dyn Store, conversations: &[ConversationId], what: &str) {
        let me = self.user;
        let mut mine = BTreeSet::new();
        for c in conversations {
            if store.get_member(*c, me).await.expect("get_member").is_some() {
                mine.insert(*c);
            }
        }
        assert_eq!(
            self.conversations.keys().copied().collect::<BTreeSet<_>>(),
            mine,
            "{what}: the conversations {me} is in"
        );
        for (cid, conv) in &self.conversations {
            let stored: Conversation = store.get_conversation(*cid).await.expect("get").expect("exists");
            let my_member = store.get_member(*cid, me).await.expect("get").expect("member");
            assert_eq!(conv.archived, my_member.archived, "{what}: archived flag of {cid}");
            let timeline: Vec<Message> = conv
                .messages
                .values()
                .filter(|m| !conv.hidden.contains(&m.seq))
                .cloned()
                .collect();
            let history = store
                .history(*cid, me, super::fixtures::after(0, 100_000))
                .await
                .expect("history");
            assert_eq!(timeline, history, "{what}: the timeline of {cid} as {me} sees it");
            match conv.messages.last_key_value() {
                Some((&last, _)) => assert_eq!(last, stored.last_seq, "{what}: last_seq of {cid}"),
                None => assert_eq!(stored.last_seq, my_member.joined_seq, "{what}: {cid} missed a message"),
            }
            let members = store.list_members(*cid).await.expect("members");
            let by_id: BTreeMap<UserId, &crate::model::Member> = members.iter().map(|m| (m.user_id, m)).collect();
            for (uid, role) in &conv.members {
                let m = by_id
                    .get(uid)
                    .unwrap_or_else(|| panic!("{what}: {uid} is no longer in {cid}"));
                assert_eq!(m.role, *role, "{what}: role of {uid} in {cid}");
            }
            for m in &members {
                if m.joined_at > my_member.joined_at {
                    assert!(
                        conv.members.contains_key(&m.user_id),
                        "{what}: {} joined {cid} after {me} but was not seen",
                        m.user_id
                    );
                }
            }
            for (uid, wm) in &conv.watermarks {
                let m = by_id
                    .get(uid)
                    .unwrap_or_else(|| panic!("{what}: watermarks of {uid}, not in {cid}"));
                assert_eq!(
                    (m.delivered_seq, m.read_seq),
                    *wm,
                    "{what}: watermarks of {uid} in {cid}"
                );
            }
            if let Some(title) = &conv.title {
                assert_eq!(title, &stored.title, "{what}: title of {cid}");
            }
        }
        let contacts: BTreeSet<UserId> = store
            .list_contacts(me)
            .await
            .expect("contacts")
            .iter()
            .map(|u| u.id)
            .collect();
        assert_eq!(self.contacts, contacts, "{what}: contacts of {me}");
        let blocked: BTreeSet<UserId> = store
            .list_blocked(me)
            .await
            .expect("blocked")
            .iter()
            .map(|u| u.id)
            .collect();
        assert_eq!(self.blocked, blocked, "{what}: blocks of {me}");
    }
}

/// Runs one write of a sync script and checks the changes it returned against what `users`
/// can sync right after it (no other write runs meanwhile): same positions, same resolved
/// content; a returned change nobody sees must belong to a conversation left without members.
async fn write<R: RecordedChanges>(
    store: &dyn Store,
    users: &[UserId],
    write: impl std::future::Future<Output = crate::Result<R>>,
) -> R {
    let before = store.latest_pos().await.expect("latest_pos");
    let r = write.await.expect("store write");
    let returned = r.recorded();
    let seen = assert_returned(store, before, &returned, users, false).await;
    for c in returned.iter().filter(|c| !seen.contains(&c.pos)) {
        let cid = c
            .conversation_id
            .unwrap_or_else(|| panic!("{c:?} reached none of its users"));
        assert!(
            store.list_members(cid).await.expect("members").is_empty(),
            "{c:?} reached nobody though {cid} has members"
        );
    }
    r
}

/// Runs a sync script on a fresh store: live clients sync while the script runs; then each
/// user's state is checked for the live client (drained), a replay from 0 with the script's
/// page sizes (which must equal one big page), and resumptions from the script's cursors.
pub async fn check_sync_script(store: &dyn Store, script: &SyncScript) {
    let fx = Fx::new(store);
    let mut users = Vec::new();
    for i in 0..SYNC_USERS {
        users.push(fx.user(&format!("syncer {i}")).await);
    }
    let convs = [
        fx.group(&users[0], &[&users[1], &users[2]]).await,
        fx.group(&users[1], &[&users[3]]).await,
        fx.direct(&users[0], &users[3]).await,
    ];
    let conv_ids: Vec<ConversationId> = convs.iter().map(|c| c.id).collect();
    let is_group = |c: usize| c < 2;
    let everyone: Vec<UserId> = users.iter().map(|u| u.id).collect();
    let mut live: Vec<SyncClient> = users.iter().map(|u| SyncClient::new(u.id)).collect();
    let mut sent: Vec<NewMessage> = Vec::new();
    let mut renames = 0;

    for op in &script.ops {
        match *op {
            SyncOp::Send { conv, user } => {
                if fx.is_member(conv_ids[conv], users[user].id).await {
                    let m = fx.send(conv_ids[conv], users[user].id).await;
                    let new = NewMessage {
                        id: m.id,
                        conversation_id: m.conversation_id,
                        sender_id: m.sender_id,
                        client_msg_id: m.client_msg_id.clone(),
                        content: m.content.clone().expect("fresh message has content"),
                        reply_to_seq: m.reply_to_seq,
                        created_at: m.created_at,
                    };
                    sent.push(new);
                }
            }
            SyncOp::Retry { n } => {
                if !sent.is_empty() {
                    let new = &sent[n % sent.len()];
                    let (m, inserted) = write(store, &everyone, store.insert_message(new)).await;
                    assert_eq!(inserted, None, "a retry must not insert");
                    let current = store
                        .get_message(new.conversation_id, m.seq)
                        .await
                        .expect("get")
                        .expect("stored");
                    assert_eq!(m, current, "a retry returns the stored message");
                    assert_eq!(m.id, new.id);
                }
            }
            SyncOp::Delete { conv, nth } => {
                let last = fx.conversation(conv_ids[conv]).await.last_seq;
                if last > 0 {
                    let at = fx.tick();
                    let seq = nth % last + 1;
                    write(
                        store,
                        &everyone,
                        store.delete_message_for_everyone(conv_ids[conv], seq, at),
                    )
                    .await;
                }
            }
            SyncOp::Hide { conv, user, nth } => {
                let last = fx.conversation(conv_ids[conv]).await.last_seq;
                if last > 0 && fx.is_member(conv_ids[conv], users[user].id).await {
                    let seq = nth % last + 1;
                    write(
                        store,
                        &everyone,
                        store.hide_message(users[user].id, conv_ids[conv], seq),
                    )
                    .await;
                }
            }
            SyncOp::Receipt {
                conv,
                user,
                delivered,
                read,
            } => {
                if fx.is_member(conv_ids[conv], users[user].id).await {
                    let w = store.update_receipts(conv_ids[conv], users[user].id, Some(delivered), Some(read));
                    write(store, &everyone, w).await;
                }
            }
            SyncOp::Add { conv, user } => {
                if is_group(conv) && !fx.is_member(conv_ids[conv], users[user].id).await {
                    let newcomer = [(users[user].id, Role::Member)];
                    let w = store.add_members(conv_ids[conv], &newcomer, fx.tick());
                    let (added, changes) = write(store, &everyone, w).await;
                    assert_eq!((added.len(), changes.len()), (1, 1));
                }
            }
            SyncOp::Remove { conv, user } => {
                if is_group(conv) && fx.is_member(conv_ids[conv], users[user].id).await {
                    let by = convs[conv].created_by;
                    let w = store.remove_member(conv_ids[conv], users[user].id, by);
                    assert_eq!(write(store, &everyone, w).await.len(), 2);
                }
            }
            SyncOp::Archive { conv, user, archived } => {
                if fx.is_member(conv_ids[conv], users[user].id).await {
                    let w = store.set_archived(conv_ids[conv], users[user].id, archived);
                    write(store, &everyone, w).await;
                }
            }
            SyncOp::Rename { conv } => {
                if is_group(conv) {
                    renames += 1;
                    let w = store.update_conversation(conv_ids[conv], Some(format!("title {renames}")), None);
                    write(store, &everyone, w).await;
                }
            }
            SyncOp::Role { conv, user, admin } => {
                if is_group(conv) && fx.is_member(conv_ids[conv], users[user].id).await {
                    let role = if admin { Role::Admin } else { Role::Member };
                    write(store, &everyone, store.set_role(conv_ids[conv], users[user].id, role)).await;
                }
            }
            SyncOp::Contact { owner, other, add } => {
                if owner != other {
                    let (o, x) = (users[owner].id, users[other].id);
                    if add {
                        write(store, &everyone, store.add_contact(o, x, fx.tick())).await;
                    } else {
                        write(store, &everyone, store.remove_contact(o, x)).await;
                    }
                }
            }
            SyncOp::Block { blocker, other, block } => {
                if blocker != other {
                    let (b, x) = (users[blocker].id, users[other].id);
                    if block {
                        write(store, &everyone, store.block(b, x, fx.tick())).await;
                    } else {
                        write(store, &everyone, store.unblock(b, x)).await;
                    }
                }
            }
            SyncOp::Sync { user, page } => {
                live[user].sync_page(store, page).await;
            }
        }
    }

    for (i, u) in users.iter().enumerate() {
        live[i].catch_up(store, &script.pages).await;
        live[i].assert_matches_store(store, &conv_ids, "live client").await;

        let full = sync_all(store, u.id, 0, &[100_000]).await;
        assert_eq!(
            sync_all(store, u.id, 0, &script.pages).await,
            full,
            "paged replay from 0 equals one big page"
        );
        let mut replayed = SyncClient::new(u.id);
        replayed.apply_all(&full);
        replayed.assert_matches_store(store, &conv_ids, "replay from 0").await;

        for (k, cut) in script.cuts.iter().enumerate() {
            let at = cut.index(full.len() + 1);
            let mut resumed = SyncClient::new(u.id);
            resumed.apply_all(&full[..at]);
            let mut pages = script.pages.clone();
            let shift = k % pages.len();
            pages.rotate_left(shift);
            resumed.catch_up(store, &pages).await;
            resumed.cursor = replayed.cursor;
            assert_eq!(resumed, replayed, "resumed from change {at} of {}", full.len());
        }
    }
}
