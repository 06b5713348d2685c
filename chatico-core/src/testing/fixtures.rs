//! Fixtures for the conformance suite: users, conversations, messages, and a checked sync
//! pager. Everything goes through the [`Store`] port.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::ids::{ConversationId, MessageId, Phone, Timestamp, UserId};
use crate::model::{
    Content, Conversation, ConversationKind, HistoryDirection, HistoryQuery, Member, Message, NewMessage, Role, User,
};
use crate::ports::{NewConversation, Store};
use crate::sync::{Change, ChangeKind, SyncCursor, SyncPage};

/// The suite's epoch (2023-11-14); fixture clocks start here.
pub const T0: Timestamp = 1_700_000_000_000;

/// A test fixture over one store: a clock that only moves forward (1 s per [`Fx::tick`]),
/// unique phone numbers, and helpers that build data through the port and check what they
/// get back.
pub struct Fx<'a> {
    /// The store under test.
    pub store: &'a dyn Store,
    clock: AtomicI64,
    phones: AtomicU64,
    /// Random per fixture so that phones stay unique even if a backend shares a database.
    phone_prefix: u32,
}

impl<'a> Fx<'a> {
    /// A fixture over `store`, its clock at [`T0`].
    pub fn new(store: &'a dyn Store) -> Self {
        Fx {
            store,
            clock: AtomicI64::new(T0),
            phones: AtomicU64::new(0),
            phone_prefix: rand::random::<u32>() % 90_000 + 10_000,
        }
    }

    /// The current fixture time.
    pub fn now(&self) -> Timestamp {
        self.clock.load(Ordering::SeqCst)
    }

    /// Moves the clock one second forward and returns the new time (strictly increasing).
    pub fn tick(&self) -> Timestamp {
        self.clock.fetch_add(1000, Ordering::SeqCst) + 1000
    }

    /// A fresh, valid E.164 phone number: `+1`, a 5-digit fixture prefix, a 5-digit counter.
    pub fn phone(&self) -> Phone {
        let n = self.phones.fetch_add(1, Ordering::SeqCst);
        Phone::parse(&format!("+1{}{:05}", self.phone_prefix, n)).expect("fixture phone is E.164")
    }

    /// Creates a user with a fresh phone and checks the store's answer.
    pub async fn user(&self, name: &str) -> User {
        let phone = self.phone();
        let id = UserId::new(self.now());
        let at = self.tick();
        let (user, created) = self
            .store
            .get_or_create_user(&phone, id, name, at)
            .await
            .expect("get_or_create_user");
        assert!(created, "a fresh phone must create a user");
        assert_eq!(user.id, id);
        assert_eq!(user.phone, phone);
        assert_eq!(user.display_name, name);
        user
    }

    /// Several users, in order.
    pub async fn users(&self, names: &[&str]) -> Vec<User> {
        let mut out = Vec::with_capacity(names.len());
        for n in names {
            out.push(self.user(n).await);
        }
        out
    }

    /// The `NewConversation` for a group owned by `owner` with `members` as plain members.
    pub fn new_group(&self, owner: &User, members: &[&User], title: &str) -> NewConversation {
        let mut all = vec![(owner.id, Role::Owner)];
        all.extend(members.iter().map(|u| (u.id, Role::Member)));
        NewConversation {
            id: ConversationId::new(self.now()),
            kind: ConversationKind::Group,
            title: Some(title.to_owned()),
            avatar_url: None,
            created_by: owner.id,
            created_at: self.tick(),
            members: all,
        }
    }

    /// Creates a group (owner first, then members) and checks it was created.
    pub async fn group(&self, owner: &User, members: &[&User]) -> Conversation {
        let new = self.new_group(owner, members, "group");
        let before = self.latest_pos().await;
        let (conv, changes) = self.store.create_conversation(&new).await.expect("create group");
        assert!(!changes.is_empty(), "a new group id must create a conversation");
        assert_eq!(conv.id, new.id);
        let members: Vec<UserId> = new.members.iter().map(|(u, _)| *u).collect();
        self.assert_returned(before, &changes, &members).await;
        conv
    }

    /// The `NewConversation` for the direct conversation `a`–`b`.
    pub fn new_direct(&self, a: &User, b: &User) -> NewConversation {
        NewConversation {
            id: ConversationId::new(self.now()),
            kind: ConversationKind::Direct,
            title: None,
            avatar_url: None,
            created_by: a.id,
            created_at: self.tick(),
            members: vec![(a.id, Role::Member), (b.id, Role::Member)],
        }
    }

    /// Creates (or finds) the direct conversation between `a` and `b`.
    pub async fn direct(&self, a: &User, b: &User) -> Conversation {
        self.store
            .create_conversation(&self.new_direct(a, b))
            .await
            .expect("create direct")
            .0
    }

    /// A text message to insert, with the given idempotency key.
    pub fn new_message(&self, conversation: ConversationId, sender: UserId, client_msg_id: &str) -> NewMessage {
        let at = self.tick();
        NewMessage {
            id: MessageId::new(at),
            conversation_id: conversation,
            sender_id: sender,
            client_msg_id: client_msg_id.to_owned(),
            content: text(&format!("message {client_msg_id}")),
            reply_to_seq: None,
            created_at: at,
        }
    }

    /// Sends a text message with a fresh idempotency key; checks it was inserted.
    pub async fn send(&self, conversation: ConversationId, sender: UserId) -> Message {
        let key = format!("cm-{:016x}", rand::random::<u64>());
        let new = self.new_message(conversation, sender, &key);
        let before = self.latest_pos().await;
        let (msg, change) = self.store.insert_message(&new).await.expect("insert_message");
        let change = change.expect("a fresh client_msg_id must insert");
        assert_message_matches(&msg, &new);
        assert_eq!(change.kind, ChangeKind::Message { message: msg.clone() });
        assert_eq!(change.conversation_id, Some(conversation));
        self.assert_returned(before, &[change], &[sender]).await;
        msg
    }

    /// Sends `n` messages from `sender`, sequentially.
    pub async fn send_n(&self, conversation: ConversationId, sender: UserId, n: usize) -> Vec<Message> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.send(conversation, sender).await);
        }
        out
    }

    /// Conversation `id`; panics if missing.
    pub async fn conversation(&self, id: ConversationId) -> Conversation {
        self.store
            .get_conversation(id)
            .await
            .expect("get_conversation")
            .expect("conversation exists")
    }

    /// `user`'s membership of `conversation`; panics if not a member.
    pub async fn member(&self, conversation: ConversationId, user: UserId) -> Member {
        self.store
            .get_member(conversation, user)
            .await
            .expect("get_member")
            .expect("is a member")
    }

    /// Whether `user` is a member of `conversation`.
    pub async fn is_member(&self, conversation: ConversationId, user: UserId) -> bool {
        self.store
            .get_member(conversation, user)
            .await
            .expect("get_member")
            .is_some()
    }

    /// Every message `viewer` may see, ascending (history after seq 0, one big page).
    pub async fn full_history(&self, conversation: ConversationId, viewer: UserId) -> Vec<Message> {
        self.store
            .history(conversation, viewer, after(0, 100_000))
            .await
            .expect("history")
    }

    /// The store's latest sync position.
    pub async fn latest_pos(&self) -> SyncCursor {
        self.store.latest_pos().await.expect("latest_pos")
    }

    /// Checks what a write returned against what it recorded, when no other write ran
    /// concurrently: the returned changes have ascending positions after `before`, the last
    /// of them is `latest_pos` (or `latest_pos` is still `before` when none was returned),
    /// and what each user of `audience` can sync after `before` is exactly the returned
    /// changes meant for them (same positions, same resolved content) — together, all of
    /// them. Changes nobody in `audience` sees make this fail: pass the full audience.
    pub async fn assert_returned(&self, before: SyncCursor, returned: &[Change], audience: &[UserId]) {
        assert_returned(self.store, before, returned, audience, true).await;
    }

    /// Runs one write (the future is lazy: nothing happens before it is awaited here) and
    /// checks the changes it returned with [`Fx::assert_returned`]; returns its result.
    pub async fn checked<R: RecordedChanges>(
        &self,
        audience: &[UserId],
        write: impl std::future::Future<Output = crate::Result<R>>,
    ) -> R {
        let before = self.latest_pos().await;
        let r = write.await.expect("store write");
        self.assert_returned(before, &r.recorded(), audience).await;
        r
    }

    /// Every change for `user` after `since`, fetched in pages of `page`, checking the paging
    /// contract on each page (see [`sync_all`]).
    pub async fn sync_all(&self, user: UserId, since: SyncCursor, page: u32) -> Vec<Change> {
        sync_all(self.store, user, since, &[page]).await
    }
}

/// The changes a store write returned, whatever the shape of its result.
pub trait RecordedChanges {
    /// The changes recorded by the write.
    fn recorded(&self) -> Vec<Change>;
}

impl RecordedChanges for Option<Change> {
    fn recorded(&self) -> Vec<Change> {
        self.iter().cloned().collect()
    }
}

impl RecordedChanges for Vec<Change> {
    fn recorded(&self) -> Vec<Change> {
        self.clone()
    }
}

impl<T> RecordedChanges for (T, Option<Change>) {
    fn recorded(&self) -> Vec<Change> {
        self.1.recorded()
    }
}

impl<T> RecordedChanges for (T, Vec<Change>) {
    fn recorded(&self) -> Vec<Change> {
        self.1.clone()
    }
}

/// See [`Fx::assert_returned`]. With `complete = false`, only checks that each user's view is
/// a subset of the returned changes (for writes some of whose changes reach nobody, e.g. in a
/// conversation without members). Returns the positions the audience saw.
pub async fn assert_returned(
    store: &dyn Store,
    before: SyncCursor,
    returned: &[Change],
    audience: &[UserId],
    complete: bool,
) -> BTreeSet<SyncCursor> {
    let latest = store.latest_pos().await.expect("latest_pos");
    let mut prev = before;
    for c in returned {
        assert!(
            c.pos > prev,
            "returned changes ascend after the previous position ({} after {prev})",
            c.pos
        );
        prev = c.pos;
    }
    assert_eq!(
        latest, prev,
        "latest_pos is the last returned position (or unchanged when none)"
    );
    let by_pos: BTreeMap<SyncCursor, &Change> = returned.iter().map(|c| (c.pos, c)).collect();
    let mut seen: BTreeSet<SyncCursor> = BTreeSet::new();
    for u in audience {
        for c in sync_all(store, *u, before, &[64]).await {
            match by_pos.get(&c.pos) {
                Some(r) => assert_eq!(*r, &c, "{u} syncs the change exactly as the write returned it"),
                None => panic!("{u} syncs a change at {} the write did not return: {c:?}", c.pos),
            }
            seen.insert(c.pos);
        }
    }
    if complete {
        let all: BTreeSet<SyncCursor> = by_pos.keys().copied().collect();
        assert_eq!(seen, all, "every returned change reaches its audience");
    }
    seen
}

/// A text content.
pub fn text(s: &str) -> Content {
    Content::text(s.to_owned())
}

/// History query helpers.
pub fn before(anchor: Option<i64>, limit: u32) -> HistoryQuery {
    HistoryQuery {
        direction: HistoryDirection::Before,
        anchor,
        limit,
    }
}

/// Messages after seq `anchor`, at most `limit`.
pub fn after(anchor: i64, limit: u32) -> HistoryQuery {
    HistoryQuery {
        direction: HistoryDirection::After,
        anchor: Some(anchor),
        limit,
    }
}

/// The stored message carries exactly what was sent (seq aside), and is not deleted.
pub fn assert_message_matches(msg: &Message, new: &NewMessage) {
    assert_eq!(msg.id, new.id, "message id");
    assert_eq!(msg.conversation_id, new.conversation_id, "conversation id");
    assert_eq!(msg.sender_id, new.sender_id, "sender");
    assert_eq!(msg.client_msg_id, new.client_msg_id, "client_msg_id");
    assert_eq!(msg.content.as_ref(), Some(&new.content), "content");
    assert_eq!(msg.reply_to_seq, new.reply_to_seq, "reply_to_seq");
    assert_eq!(msg.created_at, new.created_at, "created_at");
    assert_eq!(msg.deleted_at, None, "deleted_at");
    assert!(msg.seq >= 1, "seq starts at 1");
}

/// Checks one sync page against the paging contract, for a request `(since, limit)`:
/// at most `limit` changes, positions strictly ascending and `> since`; on a `limited` page
/// `next` is the position of the last change returned and is `> since`; on the last page
/// (not `limited`) `next` is at least that position (or `since` when empty) — a store may
/// move it further, past changes the user can never see. Callers also check
/// `next <= latest_pos` (see [`sync_all`]).
pub fn check_page(since: SyncCursor, limit: u32, page: &SyncPage) {
    assert!(
        page.changes.len() <= limit as usize,
        "sync returned {} changes for limit {limit}",
        page.changes.len()
    );
    let mut prev = since;
    for c in &page.changes {
        assert!(
            c.pos > prev,
            "positions must be strictly ascending and after `since` ({} after {prev})",
            c.pos
        );
        prev = c.pos;
    }
    if page.limited {
        let last = page.changes.last().map(|c| c.pos);
        assert_eq!(Some(page.next), last, "a limited page resumes after its last change");
    } else {
        assert!(
            page.next >= prev,
            "next ({}) must not be before the last change returned or `since` ({prev})",
            page.next
        );
    }
}

/// Fetches every change for `user` after `since`, with page sizes taken in turn from
/// `pages` (cycled), checking every page with [`check_page`], and that a page that is not
/// `limited` is the last (the next page is empty). Panics on a violation.
pub async fn sync_all(store: &dyn Store, user: UserId, since: SyncCursor, pages: &[u32]) -> Vec<Change> {
    assert!(
        !pages.is_empty() && pages.iter().all(|p| *p > 0),
        "page sizes must be positive"
    );
    let mut out: Vec<Change> = Vec::new();
    let mut cursor = since;
    for round in 0..1_000_000usize {
        let limit = pages[round % pages.len()];
        let page = store.sync(user, cursor, limit).await.expect("sync");
        check_page(cursor, limit, &page);
        let latest = store.latest_pos().await.expect("latest_pos");
        assert!(
            page.next <= latest,
            "next ({}) is beyond latest_pos ({latest})",
            page.next
        );
        out.extend(page.changes.iter().cloned());
        if page.limited {
            cursor = page.next;
        } else {
            let rest = store.sync(user, page.next, limit).await.expect("sync");
            assert!(
                rest.changes.is_empty() && !rest.limited,
                "a page that is not `limited` must be the last: found {} more changes",
                rest.changes.len()
            );
            return out;
        }
    }
    panic!("sync did not terminate");
}
