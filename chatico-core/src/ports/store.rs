use async_trait::async_trait;

use crate::SendSyncOutsideWasm;
use crate::error::Result;
use crate::ids::{ConversationId, Phone, SessionId, Timestamp, UserId};
use crate::model::{
    BlobMeta, Content, Conversation, ConversationKind, ConversationSummary, HistoryQuery, Member, Message, NewMessage,
    ProfilePatch, Role, Session, User,
};
use crate::push::{Mute, Platform, PushDevice};
use crate::search::MessageSearch;
use crate::sync::{Change, SyncCursor, SyncPage};

/// A conversation to create, with its initial members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewConversation {
    /// The id chosen by the engine.
    pub id: ConversationId,
    /// Direct or group.
    pub kind: ConversationKind,
    /// Group title; `None` for direct.
    pub title: Option<String>,
    /// Group avatar URL, if any.
    pub avatar_url: Option<String>,
    /// The creating user.
    pub created_by: UserId,
    /// Creation time (ms since the Unix epoch).
    pub created_at: Timestamp,
    /// Direct: exactly the two users. Group: the creator (as owner) and the invitees.
    pub members: Vec<(UserId, Role)>,
}

/// One user's reaction to one message, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReaction {
    /// Seq of the message.
    pub seq: i64,
    /// Who reacted.
    pub user_id: UserId,
    /// The emoji (validated by the engine).
    pub emoji: String,
    /// When (ms since the Unix epoch).
    pub created_at: Timestamp,
}

/// Where ChatiCO keeps its data: the in-memory store here, SQLite and Postgres in
/// `chatico-store`. Every backend runs the conformance suite (`chatico_core::testing`,
/// feature `testing`).
///
/// The store does **storage, atomicity and sync recording**; the engine does authorization
/// and validation before calling it. Contracts every backend keeps:
///
/// - each write method is one transaction, and records the [`crate::sync::Change`]s its doc
///   names in that same transaction; positions are commit-ordered (see [`crate::sync`]);
/// - each write method **returns the changes it recorded**, with their positions and
///   resolved exactly as a later `sync` returns them (`None` / empty when it recorded
///   nothing, e.g. an idempotent retry). The engine sends these same changes live, so a
///   client recognises by `pos` a change it got live when a resume returns it again;
/// - `insert_message` assigns the next gap-free `seq` of the conversation (from 1) in the
///   transaction that stores the message, and is idempotent on `(sender, client_msg_id)`;
///   it returns only after commit (group commit may batch several callers into one
///   transaction);
/// - receipts are monotonic and clamped to the conversation's `last_seq`;
/// - reads never show deleted content: a message deleted for everyone reads as a tombstone
///   (`content: None`) everywhere, history and sync included;
/// - a lost connection to the database answers [`crate::Error::Unavailable`], and the store
///   recovers by itself when the database is back.
#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
pub trait Store: SendSyncOutsideWasm {
    // ---- users -------------------------------------------------------------------------

    /// The user with this phone, created (with `new_id`, an empty bio and `display_name`)
    /// if there is none. Returns the user and whether it was created. Concurrent calls for
    /// one phone create exactly one user.
    async fn get_or_create_user(
        &self,
        phone: &Phone,
        new_id: UserId,
        display_name: &str,
        now: Timestamp,
    ) -> Result<(User, bool)>;
    /// The user with this id, if any.
    async fn get_user(&self, id: UserId) -> Result<Option<User>>;
    /// The users among `ids` that exist, in no particular order.
    async fn get_users(&self, ids: &[UserId]) -> Result<Vec<User>>;
    /// Users whose display name contains `query` (case-insensitive) or whose phone starts
    /// with it; all users when `query` is `None`. Ordered by id; `after` is the last id of
    /// the previous page.
    async fn search_users(&self, query: Option<&str>, after: Option<UserId>, limit: u32) -> Result<Vec<User>>;
    /// Applies a (validated) patch. `NotFound` if the user does not exist.
    async fn update_profile(&self, id: UserId, patch: &ProfilePatch) -> Result<User>;
    /// `NotFound` if the user does not exist.
    async fn set_last_seen(&self, id: UserId, at: Timestamp) -> Result<()>;

    // ---- sessions (refresh tokens) -----------------------------------------------------

    /// Stores a new session; `Conflict` if the id is taken.
    async fn create_session(&self, session: &Session) -> Result<()>;
    /// The session with this id, if it exists (expired or not).
    async fn get_session(&self, id: SessionId) -> Result<Option<Session>>;
    /// Compare-and-swap of the refresh hash: succeeds (true) only if the session exists and
    /// its current hash is `old_hash`; then stores `new_hash` and `expires_at`.
    async fn rotate_session(
        &self,
        id: SessionId,
        old_hash: &str,
        new_hash: &str,
        expires_at: Timestamp,
    ) -> Result<bool>;
    /// Revokes one session (and removes its push device); false if it did not exist.
    async fn delete_session(&self, id: SessionId) -> Result<bool>;
    /// Revokes every session of the user (and removes their push devices); returns how many.
    async fn delete_user_sessions(&self, user: UserId) -> Result<u64>;

    // ---- contacts and blocks -----------------------------------------------------------

    /// Adds `contact` to `owner`'s contacts; records `ContactAdded` (targeted at `owner`)
    /// when it was not there (returned; `None` when it was there already).
    async fn add_contact(&self, owner: UserId, contact: UserId, now: Timestamp) -> Result<Option<Change>>;
    /// Records `ContactRemoved` (targeted at `owner`) when it was there.
    async fn remove_contact(&self, owner: UserId, contact: UserId) -> Result<Option<Change>>;
    /// `owner`'s contacts, ordered by display name then id.
    async fn list_contacts(&self, owner: UserId) -> Result<Vec<User>>;
    /// The users who have `user` among their contacts.
    async fn contact_owners(&self, user: UserId) -> Result<Vec<UserId>>;
    /// Records `Blocked` (targeted at `blocker`) when it was not blocked already.
    async fn block(&self, blocker: UserId, blocked: UserId, now: Timestamp) -> Result<Option<Change>>;
    /// Records `Unblocked` (targeted at `blocker`) when it was blocked.
    async fn unblock(&self, blocker: UserId, blocked: UserId) -> Result<Option<Change>>;
    /// Users `blocker` has blocked, ordered by display name then id.
    async fn list_blocked(&self, blocker: UserId) -> Result<Vec<User>>;
    /// True if either user blocked the other.
    async fn is_blocked_either_way(&self, a: UserId, b: UserId) -> Result<bool>;
    /// Every user who blocked `user` or whom `user` blocked.
    async fn blocked_either_way(&self, user: UserId) -> Result<Vec<UserId>>;

    // ---- conversations and members -----------------------------------------------------

    /// Creates the conversation and its members (each with `joined_seq = 0`, watermarks 0,
    /// `joined_at = created_at`, not archived), recording one
    /// `MemberJoined` per member and then `ConversationCreated`. For a direct conversation
    /// there is at most one per unordered pair of users: if it exists already, nothing is
    /// written and the existing one is returned with no changes.
    async fn create_conversation(&self, new: &NewConversation) -> Result<(Conversation, Vec<Change>)>;
    /// The direct conversation between `a` and `b`, if any.
    async fn find_direct(&self, a: UserId, b: UserId) -> Result<Option<Conversation>>;
    /// The conversation with this id, if any.
    async fn get_conversation(&self, id: ConversationId) -> Result<Option<Conversation>>;
    /// `user`'s membership of `conversation`, if they are a member.
    async fn get_member(&self, conversation: ConversationId, user: UserId) -> Result<Option<Member>>;
    /// Members ordered by join time then user id.
    async fn list_members(&self, conversation: ConversationId) -> Result<Vec<Member>>;
    /// Adds members that are not members yet (`joined_seq`, `delivered_seq` and `read_seq`
    /// = the current `last_seq`, not archived), recording `MemberJoined` for each; returns
    /// the ones added, in argument order, and the changes. `NotFound` if the conversation
    /// does not exist.
    async fn add_members(
        &self,
        conversation: ConversationId,
        members: &[(UserId, Role)],
        now: Timestamp,
    ) -> Result<(Vec<Member>, Vec<Change>)>;
    /// Removes a member, recording `MemberLeft` both as a conversation change and targeted
    /// at the removed user (returned in that order), and drops their pin of it. Empty if
    /// they were not a member.
    async fn remove_member(&self, conversation: ConversationId, user: UserId, by: UserId) -> Result<Vec<Change>>;
    /// Records `RoleChanged` when the role changes. `NotFound` if not a member.
    async fn set_role(
        &self,
        conversation: ConversationId,
        user: UserId,
        role: Role,
    ) -> Result<(Member, Option<Change>)>;
    /// Records `Archived` (targeted) when the flag changes. `NotFound` if not a member.
    async fn set_archived(
        &self,
        conversation: ConversationId,
        user: UserId,
        archived: bool,
    ) -> Result<(Member, Option<Change>)>;
    /// Sets the title and/or avatar (`None` = unchanged; `Some(None)` clears the avatar),
    /// recording `ConversationUpdated` with the resulting values when anything changed.
    /// `NotFound` if the conversation does not exist.
    async fn update_conversation(
        &self,
        conversation: ConversationId,
        title: Option<String>,
        avatar_url: Option<Option<String>>,
    ) -> Result<(Conversation, Option<Change>)>;
    /// The user's conversations with `archived` equal to the argument: first those the user
    /// pinned, newest pin first, then the others by newest activity (the `created_at` of
    /// the conversation's newest message, else the conversation's own `created_at`); ties by
    /// conversation id, descending. At most `limit`, each with its last message visible to
    /// the user, unread count (`last_seq - read_seq`, at least 0), unread mentions (messages
    /// with seq above the user's `read_seq` whose text mentions them, not deleted for
    /// everyone and not hidden by them), the pin (`pinned`, `pinned_at`) and members (in
    /// `list_members` order); `muted` stays false (the engine fills it): one round trip on
    /// SQL backends.
    async fn list_conversations(&self, user: UserId, archived: bool, limit: u32) -> Result<Vec<ConversationSummary>>;

    /// Pins (`pinned`, at `now`) or unpins the conversation for `user`, recording `Pinned`
    /// (targeted) when the state changes; pinning a pinned conversation keeps its time and
    /// records nothing. Returns the pin time after the call (`None` when unpinned).
    /// `TooLarge { what: "pins", limit: max_pins }` when pinning would give the user more
    /// than `max_pins` pinned conversations (checked in the writing transaction, so
    /// concurrent pins cannot pass the bound); `NotFound("member")` if not a member.
    async fn set_pin(
        &self,
        conversation: ConversationId,
        user: UserId,
        pinned: bool,
        now: Timestamp,
        max_pins: u32,
    ) -> Result<(Option<Timestamp>, Option<Change>)>;

    // ---- messages ----------------------------------------------------------------------

    /// Inserts a message with the conversation's next seq, or returns the existing one for
    /// `(sender_id, client_msg_id)` (second value `None`; nothing is written). On insert it
    /// records `Message`, and moves the sender's `delivered_seq` and `read_seq` to the new
    /// seq. `NotFound` if the conversation does not exist.
    async fn insert_message(&self, message: &NewMessage) -> Result<(Message, Option<Change>)>;
    /// The message at `seq` (its tombstone if deleted for everyone), if any.
    async fn get_message(&self, conversation: ConversationId, seq: i64) -> Result<Option<Message>>;
    /// A page of the conversation as `viewer` sees it: ascending seq, without messages
    /// hidden for `viewer` and without seqs at or below their `joined_seq`.
    async fn history(&self, conversation: ConversationId, viewer: UserId, query: HistoryQuery) -> Result<Vec<Message>>;
    /// Tombstones a message (content gone from every read), recording `MessageDeleted` the
    /// first time. Returns the tombstone. `NotFound` if there is no such message.
    async fn delete_message_for_everyone(
        &self,
        conversation: ConversationId,
        seq: i64,
        now: Timestamp,
    ) -> Result<(Message, Option<Change>)>;
    /// Hides a message for one user, recording `MessageHidden` (targeted) the first time.
    /// `NotFound` if there is no such message.
    async fn hide_message(&self, user: UserId, conversation: ConversationId, seq: i64) -> Result<Option<Change>>;
    /// One page of a message search by `viewer` (see [`crate::search`] for the rule): the
    /// messages whose searchable text contains every term, in conversations `viewer` is a
    /// member of now (only `search.conversation` when given), with a seq above their
    /// `joined_seq`, not deleted for everyone and not hidden for `viewer`; ordered by the
    /// backend's relevance, then `created_at`, seq and conversation id descending;
    /// `search.offset` skipped, at most `search.limit`. SQL backends answer from a
    /// full-text index (SQLite FTS5, Postgres GIN over a `tsvector`) kept in step with
    /// `messages` by the database in the statement that writes a message, edits it or
    /// tombstones it.
    async fn search_messages(&self, viewer: UserId, search: &MessageSearch) -> Result<Vec<Message>>;
    /// Moves watermarks forward: each becomes `max(old, min(given, last_seq))`, and
    /// `delivered_seq` is at least `read_seq`. Records `Receipt` if anything moved.
    /// `NotFound` if not a member.
    async fn update_receipts(
        &self,
        conversation: ConversationId,
        user: UserId,
        delivered: Option<i64>,
        read: Option<i64>,
    ) -> Result<(Member, Option<Change>)>;

    // ---- edits and reactions -----------------------------------------------------------

    /// Rewrites the content of the message at `seq` and sets its `edited_at` to `now`
    /// (seq, sender and times stay), recording `MessageEdited`. Answers the message as
    /// stored now (its `reactions` empty, like every store read). `NotFound("message")` if
    /// there is no such message; `Conflict` if it was deleted for everyone (nothing
    /// written). When `content` equals the stored content nothing is written (no change).
    async fn edit_message(
        &self,
        conversation: ConversationId,
        seq: i64,
        content: &Content,
        now: Timestamp,
    ) -> Result<(Message, Option<Change>)>;
    /// Adds `user`'s reaction `emoji` to the message at `seq`, recording `ReactionAdded`;
    /// `None` when the user had it already (nothing written). A new emoji on a message that
    /// has `max_distinct` distinct emoji already is refused with `TooLarge("reactions")`,
    /// checked in the writing transaction (concurrent reactors cannot exceed it).
    /// `NotFound("message")` if there is no such message, `Conflict` if it was deleted for
    /// everyone.
    async fn add_reaction(
        &self,
        conversation: ConversationId,
        seq: i64,
        user: UserId,
        emoji: &str,
        now: Timestamp,
        max_distinct: u32,
    ) -> Result<Option<Change>>;
    /// Removes `user`'s reaction `emoji` from the message at `seq`, recording
    /// `ReactionRemoved`; `None` when there was none. `NotFound("message")` if there is no
    /// such message.
    async fn remove_reaction(
        &self,
        conversation: ConversationId,
        seq: i64,
        user: UserId,
        emoji: &str,
    ) -> Result<Option<Change>>;
    /// The reactions to the messages with `from <= seq <= to` that are not deleted for
    /// everyone, ordered by seq, then time, then user id, then emoji.
    async fn reactions(&self, conversation: ConversationId, from: i64, to: i64) -> Result<Vec<StoredReaction>>;

    // ---- push devices, mutes, badges ---------------------------------------------------

    /// Registers `device` as its session's one push device, replacing what the session had;
    /// the same `(platform, token)` registered by any other session is removed (a token
    /// belongs to one install; a new login on it takes it over). `NotFound("session")` if
    /// the session does not exist (revoked meanwhile): nothing is written.
    async fn register_push_device(&self, device: &PushDevice) -> Result<()>;
    /// Removes the session's push device; false if it had none. `delete_session` and
    /// `delete_user_sessions` also remove the devices of the sessions they delete, in the
    /// same transaction.
    async fn unregister_push_device(&self, session: SessionId) -> Result<bool>;
    /// The push devices of `user` whose session has not expired at `now`, ordered by
    /// session id.
    async fn push_devices(&self, user: UserId, now: Timestamp) -> Result<Vec<PushDevice>>;
    /// Removes every registration of `(platform, token)` (the provider said it is invalid);
    /// answers how many.
    async fn remove_push_token(&self, platform: Platform, token: &str) -> Result<u64>;
    /// Mutes (`muted`, until `until` or until unmuted when `None`) or unmutes the
    /// conversation for `user`, recording `Muted` (targeted) when the state changes.
    /// `NotFound("member")` if not a member.
    async fn set_mute(
        &self,
        conversation: ConversationId,
        user: UserId,
        muted: bool,
        until: Option<Timestamp>,
    ) -> Result<Option<Change>>;
    /// The mutes of the conversation's current members, expired ones included (the caller
    /// compares with its clock), ordered by user id.
    async fn mutes(&self, conversation: ConversationId) -> Result<Vec<Mute>>;
    /// Every mute of `user` (expired ones too), as (conversation, until), ordered by
    /// conversation id.
    async fn user_mutes(&self, user: UserId) -> Result<Vec<(ConversationId, Option<Timestamp>)>>;
    /// The user's total unread count: over every conversation they are a member of,
    /// `last_seq - read_seq` (at least 0), summed.
    async fn total_unread(&self, user: UserId) -> Result<i64>;

    // ---- blobs -------------------------------------------------------------------------

    /// Records an uploaded blob's metadata; `Conflict` if the key exists.
    async fn insert_blob(&self, meta: &BlobMeta) -> Result<()>;
    /// The metadata of blob `key`, if registered.
    async fn get_blob(&self, key: &str) -> Result<Option<BlobMeta>>;
    /// Forgets blob `key`; `false` if it was not registered.
    async fn delete_blob(&self, key: &str) -> Result<bool>;
    /// Whether blob `key` was shared with `user` through a conversation: some media message
    /// whose `blob_key` is `key`, not deleted for everyone, is in a conversation `user` is a
    /// member of now, with a seq above their `joined_seq` (history they can read; a message
    /// they hid for themselves still counts). The engine uses it to authorize reads of media
    /// blobs. SQL backends answer from a partial index over the blob keys of media messages
    /// only, so it costs a text message's insert nothing.
    async fn blob_shared_with(&self, key: &str, user: UserId) -> Result<bool>;

    // ---- sync --------------------------------------------------------------------------

    /// The changes `user` may see with `pos > since`, ascending, at most `limit`, messages
    /// resolved (tombstoned if deleted since). See [`crate::sync`] for the audience rules.
    /// `next` is the pos of the last change returned when `limited`; otherwise any value
    /// `>= since` up to which everything has been scanned (at least the last returned pos).
    async fn sync(&self, user: UserId, since: SyncCursor, limit: u32) -> Result<SyncPage>;
    /// The newest committed position.
    async fn latest_pos(&self) -> Result<SyncCursor>;
    /// Who the changes with `from < pos <= to` concern: exactly the users for whom `sync`
    /// from `from` returns at least one change at or below `to` (the audience rules of
    /// [`crate::sync`] as they stand now), each once, ordered by id. Empty when `to <= from`.
    /// A gateway node asks it for positions that were committed but whose live delivery
    /// never arrived (a lost pub/sub message, a node that died between commit and publish,
    /// a broker outage) and checkpoints only those users' connections. SQL backends answer
    /// in one statement from the position index and the members' primary key.
    async fn audience(&self, from: SyncCursor, to: SyncCursor) -> Result<Vec<UserId>>;
}
