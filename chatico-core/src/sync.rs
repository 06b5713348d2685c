//! Changes, sync pages and live events.
//!
//! Every persistent state change is recorded by the store, in the same transaction as the
//! change itself, as a [`Change`] with a store-wide position `pos`. Positions are assigned in
//! commit order: once a reader sees `pos = p`, every change with a smaller pos is committed
//! and visible too. A user's sync cursor is the pos of the last change they have applied;
//! `sync(since)` returns the changes that concern them with `pos > since`, in pos order.
//!
//! Who sees a change (the *audience*):
//! - a **conversation change** (`conversation_id = Some(c)`, `target_user = None`) is seen by
//!   every *current* member of `c` who joined at or before it (`pos >= ` the pos of their own
//!   `MemberJoined` change);
//! - a **targeted change** (`target_user = Some(u)`) is seen by `u` alone, member or not.
//!
//! Presence, typing and profile updates are ephemeral: they travel as [`Event`]s only and a
//! sync returns them as a snapshot, not as history.

use serde::{Deserialize, Serialize};

use crate::ids::{ConversationId, SessionId, Timestamp, UserId};
use crate::model::{Content, Conversation, Message, Presence, Role, Typing, UserProfile};

/// A sync position (store-wide, commit-ordered). `0` is "before everything".
pub type SyncCursor = i64;

/// One recorded change, as a reader receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Change {
    /// The change's position in the store-wide order (0 for a live change whose position is not
    /// known yet).
    pub pos: SyncCursor,
    /// The conversation it happened in; `None` for contact and block changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<ConversationId>,
    /// What changed.
    pub kind: ChangeKind,
}

/// What changed. The doc of each variant says which store operation records it and for whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChangeKind {
    /// A new message (conversation change, recorded by `insert_message` when it inserts).
    /// Resolved at read time: a message deleted for everyone later reads as its tombstone.
    /// Implies the sender's `delivered_seq` and `read_seq` moved to the message's seq.
    Message {
        /// The message (its tombstone if deleted since).
        message: Message,
    },
    /// A message deleted for everyone (conversation change, `delete_message_for_everyone`).
    MessageDeleted {
        /// Seq of the deleted message.
        seq: i64,
        /// When it was deleted (ms since the Unix epoch).
        deleted_at: Timestamp,
    },
    /// A message hidden for one user (targeted change, `hide_message`).
    MessageHidden {
        /// Seq of the hidden message.
        seq: i64,
    },
    /// A member's watermarks moved (conversation change, `update_receipts`).
    Receipt {
        /// The member whose watermarks moved.
        user_id: UserId,
        /// The member's delivered watermark now.
        delivered_seq: i64,
        /// The member's read watermark now.
        read_seq: i64,
    },
    /// A conversation was created (conversation change, `create_conversation`; its initial
    /// members see it because their `MemberJoined` changes precede it).
    ConversationCreated {
        /// The conversation as created.
        conversation: Conversation,
    },
    /// Title or avatar changed (conversation change, `update_conversation`).
    ConversationUpdated {
        /// The title now (`None` for direct conversations).
        title: Option<String>,
        /// The avatar URL now, if any.
        avatar_url: Option<String>,
    },
    /// A user joined (conversation change, `create_conversation` / `add_members`). A member
    /// sees changes from their own `MemberJoined` on.
    MemberJoined {
        /// The user who joined.
        user_id: UserId,
        /// Their role.
        role: Role,
    },
    /// A member was removed or left (`remove_member`): recorded twice, as a conversation
    /// change for the remaining members and as a targeted change for the removed user.
    MemberLeft {
        /// The user who left or was removed.
        user_id: UserId,
        /// Who did it: the user themself when they left, else the admin.
        by: UserId,
    },
    /// A member's role changed (conversation change, `set_role`).
    RoleChanged {
        /// The member whose role changed.
        user_id: UserId,
        /// The new role.
        role: Role,
    },
    /// Archived / unarchived for the target user (targeted change, `set_archived`).
    Archived {
        /// `true` when archived, `false` when restored.
        archived: bool,
    },
    /// Muted / unmuted for the target user (targeted change, `set_mute`): no pushes from
    /// the conversation while muted.
    Muted {
        /// `true` when muted, `false` when unmuted.
        muted: bool,
        /// End of the mute (ms since the Unix epoch); `None` = until unmuted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<Timestamp>,
    },
    /// Contact list changed (targeted change, `add_contact` / `remove_contact`; no
    /// conversation).
    ContactAdded {
        /// The user added.
        user_id: UserId,
    },
    /// A contact was removed (targeted change for the owner of the list, `remove_contact`).
    ContactRemoved {
        /// The user removed.
        user_id: UserId,
    },
    /// Block list changed (targeted change for the blocker, `block` / `unblock`).
    Blocked {
        /// The user blocked.
        user_id: UserId,
    },
    /// A block was lifted (targeted change for the blocker, `unblock`).
    Unblocked {
        /// The user unblocked.
        user_id: UserId,
    },
    /// Pinned / unpinned for the target user (targeted change, `set_pin`): pinned
    /// conversations come first in the user's list.
    Pinned {
        /// `true` when pinned, `false` when unpinned.
        pinned: bool,
        /// When it was pinned (ms since the Unix epoch); absent when unpinned.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at: Option<Timestamp>,
    },
    /// A message was edited by its sender (conversation change, `edit_message`). Resolved
    /// at read time like `message`: `content` is the message's content now (its latest
    /// edit; `None` once deleted for everyone). The message keeps its seq. Not shown to a
    /// member who joined after the message (the engine filters it, live and in sync).
    MessageEdited {
        /// Seq of the edited message.
        seq: i64,
        /// The content now.
        content: Option<Content>,
        /// When it was edited (ms since the Unix epoch).
        edited_at: Timestamp,
    },
    /// A member reacted to a message (conversation change, `add_reaction`). Not shown across
    /// a block (either way) nor to a member who joined after the message (engine filter).
    ReactionAdded {
        /// Seq of the message.
        seq: i64,
        /// Who reacted.
        user_id: UserId,
        /// The emoji.
        emoji: String,
    },
    /// A member took a reaction back (conversation change, `remove_reaction`); filtered like
    /// `reaction_added`.
    ReactionRemoved {
        /// Seq of the message.
        seq: i64,
        /// Whose reaction it was.
        user_id: UserId,
        /// The emoji.
        emoji: String,
    },
}

impl ChangeKind {
    /// The seq of the message an edit or a reaction change is about (`None` for the others).
    pub fn about_seq(&self) -> Option<i64> {
        match self {
            ChangeKind::MessageEdited { seq, .. }
            | ChangeKind::ReactionAdded { seq, .. }
            | ChangeKind::ReactionRemoved { seq, .. } => Some(*seq),
            _ => None,
        }
    }
}

/// A page of changes for one user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SyncPage {
    /// The changes, in ascending `pos`.
    pub changes: Vec<Change>,
    /// The cursor to resume from: the pos of the last change returned, or the request's
    /// `since` (or later) when there was nothing.
    pub next: SyncCursor,
    /// True when more changes exist after `next`: ask again.
    pub limited: bool,
}

/// Ephemeral state returned with a sync: who is online, who is typing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EphemeralSnapshot {
    /// Online state and last-seen of the users the caller may see.
    pub presence: Vec<Presence>,
    /// Typing indicators live now in the caller's conversations.
    pub typing: Vec<Typing>,
}

/// A live event for fan-out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A persistent change (also obtainable through sync).
    Change(Change),
    /// Someone started or stopped typing.
    Typing {
        /// The conversation being typed in.
        conversation_id: ConversationId,
        /// Who is typing.
        user_id: UserId,
        /// Started (`true`) or stopped (`false`).
        typing: bool,
        /// When a started indicator lapses unless renewed (ms since the Unix epoch).
        expires_at: Option<Timestamp>,
    },
    /// Someone went online or offline.
    Presence(Presence),
    /// Someone's public profile changed.
    Profile(UserProfile),
}

/// An event and the users it must reach (every device of each). Nobody else gets it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Delivery {
    /// The users to deliver to (every device of each).
    pub recipients: Vec<UserId>,
    /// The event.
    pub event: Event,
}

/// An instruction to every gateway node, fanned out beside the deliveries through the same
/// backplane (as a [`crate::ports::Payload::Control`]). Never sent to a client: a node acts on it
/// for its own connections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "control", rename_all = "snake_case")]
pub enum Control {
    /// These sessions of `user_id` were revoked (logout, refresh-token reuse): every node
    /// closes the connections they opened with 4001.
    SessionsRevoked {
        /// The user whose sessions ended.
        user_id: UserId,
        /// The revoked sessions.
        sessions: Vec<SessionId>,
    },
    /// Every session of `user_id` was revoked (logout everywhere): every node closes all of
    /// the user's connections with 4001.
    UserRevoked {
        /// The user signed out everywhere.
        user_id: UserId,
    },
}

/// The result of an engine operation: its value, plus the events to fan out *after* the
/// caller has acknowledged the operation (persist, then acknowledge, then fan out), and the
/// controls every gateway node must act on (a revoked session's sockets are closed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome<T> {
    /// What the operation returns to its caller.
    pub value: T,
    /// Events to fan out once the caller has acknowledged the operation.
    pub deliveries: Vec<Delivery>,
    /// Instructions every gateway node must act on.
    pub controls: Vec<Control>,
}

impl<T> Outcome<T> {
    /// A value with nothing to fan out.
    pub fn new(value: T) -> Self {
        Outcome {
            value,
            deliveries: Vec::new(),
            controls: Vec::new(),
        }
    }
    /// A value with deliveries and no controls.
    pub fn with(value: T, deliveries: Vec<Delivery>) -> Self {
        Outcome {
            value,
            deliveries,
            controls: Vec::new(),
        }
    }
    /// A value with controls and no deliveries.
    pub fn controlled(value: T, controls: Vec<Control>) -> Self {
        Outcome {
            value,
            deliveries: Vec::new(),
            controls,
        }
    }
    /// Transforms the value, keeping deliveries and controls.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Outcome<U> {
        Outcome {
            value: f(self.value),
            deliveries: self.deliveries,
            controls: self.controls,
        }
    }
}
