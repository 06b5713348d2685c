//! The engine: every chat operation, with its rules, over the ports.
//!
//! [`Engine`] is sans-I/O in the sense that matters here: it reaches storage only through
//! [`Store`], time only through [`Clock`], codes only through
//! [`crate::ports::OtpVerifier`] / [`crate::ports::OtpCache`]. Transports (the gateway, an embedding server, tests) call it
//! with an authenticated actor and get back either a value (reads) or an [`Outcome`]
//! (changes): the value to acknowledge plus the [`Delivery`]s to fan out afterwards.
//!
//! # Rules enforced here, for every operation
//!
//! - A conversation the actor is not a member of answers exactly like a missing one:
//!   `Error::not_found("conversation")`. Membership is checked before anything that
//!   could tell the two apart.
//! - Input is validated before anything is written; an error means nothing changed (a
//!   store failure between two writes of one operation is logged and reported).
//! - Blocking (either direction) forbids opening or sending in a direct conversation and
//!   inviting to a group, and hides presence, typing, last seen, profile updates and
//!   receipts (live `receipt` changes, their replay in sync, members' watermarks, which
//!   read as 0) both ways. Group messages still reach every member.
//! - Roles: the owner and admins add members, remove plain members and edit the group; only
//!   the owner removes admins and changes roles (to `admin` or `member`); ownership passes
//!   only when the owner leaves, to the oldest admin, else the oldest member. Direct
//!   conversations have no member management and cannot be left (archive them instead).
//! - Delete for everyone: the sender, or in a group an owner/admin. System notices cannot be
//!   deleted.
//! - Edit: the sender only, within `Limits::edit_window_ms`, never a deleted message or a
//!   system notice; a media message edits its caption. Reactions: any member, one of each
//!   emoji per user, at most `Limits::max_reactions_per_message` distinct emoji per message.
//!   Edits and reactions of a message do not reach members who joined after it, and
//!   reactions do not cross a block (either way), live, in sync and in history.
//!
//! # Live events and positions
//!
//! Every store write returns the changes it recorded, with their positions; the engine sends
//! exactly those changes live, each to exactly its sync audience (the members who see a
//! conversation change, the one user of a targeted change). A client thus recognises by
//! `pos` a change it got live when a resume returns it again (`client::SyncState`).
//!
//! # Ephemeral state
//!
//! Presence (open connections per user) and typing indicators go through the
//! [`PresenceTracker`] port, and only from `engine/ephemeral.rs`: in this process's memory
//! by default ([`crate::presence::MemoryPresence`], one node), or shared by several nodes
//! ([`Engine::with_presence`], e.g. Redis). The tracker reports the cluster-wide
//! online/offline transitions; the engine turns each into exactly one presence event.

mod blobs;
mod conversations;
mod edit;
mod ephemeral;
mod mentions;
mod messages;
mod pins;
mod push;
mod reactions;
mod search;
mod users;
pub(crate) mod validate;

#[cfg(feature = "server")]
mod auth;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::ids::{ConversationId, MessageId, SessionId, Timestamp, UserId};
use crate::model::{Content, Conversation, ConversationKind, Member, NewMessage, SystemNotice, User};
use crate::ports::{BlobStore, Clock, PresenceTracker, Store};
use crate::presence::MemoryPresence;
use crate::sync::{Change, Delivery, Event, SyncCursor};

#[cfg(feature = "server")]
use crate::auth::{RateLimiter, TokenService};
#[cfg(feature = "server")]
use crate::ports::{OtpCache, OtpVerifier, SmsSender};

pub use crate::sync::Outcome;
pub use blobs::{BlobContent, SIGNED_URL_TTL_SECS};

// The wire types the engine takes and returns live in `protocol`; re-exported here for
// engine callers.
pub use crate::protocol::{AuthTokens, ConversationDetails, OtpRequested, SendMessage, SyncResponse};

/// Upper bound on the conversations scanned to find who shares one with a user.
const PEER_SCAN_LIMIT: u32 = 10_000;

/// An authenticated caller: the user and the session (device login) the token belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuthContext {
    /// The authenticated user.
    pub user_id: UserId,
    /// The session the token belongs to; revoking it ends this caller.
    pub session_id: SessionId,
}

#[cfg(feature = "server")]
struct AuthParts {
    tokens: TokenService,
    otp: Option<(Arc<dyn OtpVerifier>, RateLimiter)>,
}

/// The chat engine. Cheap to share behind an `Arc`; every method takes `&self`.
pub struct Engine {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// Where uploads go ([`Engine::with_blob_store`]).
    blobs: Option<Arc<dyn BlobStore>>,
    config: Config,
    /// Presence and typing ([`Engine::with_presence`]); used only by `ephemeral.rs`.
    presence: Arc<dyn PresenceTracker>,
    /// Kinds of the conversations seen so far. A kind never changes, so a send reads the
    /// conversation only when it needs more (a reply). Bounded: emptied when full.
    kinds: Mutex<HashMap<ConversationId, ConversationKind>>,
    /// Message text in pushes ([`Engine::with_push_previews`]).
    push_previews: bool,
    #[cfg(feature = "server")]
    auth: AuthParts,
}

/// Most conversation kinds [`Engine`] remembers (~40 bytes each).
const KIND_CACHE_MAX: usize = 100_000;

/// The widest position range [`Engine::position_audience`] answers in one call.
pub const AUDIENCE_SPAN_MAX: SyncCursor = 10_000;

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine over `store` and `clock`. Fails if `config` is not valid. With feature
    /// `server`, tokens work at once; OTP login needs `Engine::with_otp` or
    /// `Engine::with_local_otp`.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, config: Config) -> Result<Self> {
        config.validate()?;
        Ok(Engine {
            #[cfg(feature = "server")]
            auth: AuthParts {
                tokens: TokenService::new(&config.auth),
                otp: None,
            },
            store,
            clock,
            blobs: None,
            config,
            presence: Arc::new(MemoryPresence::new()),
            kinds: Mutex::new(HashMap::new()),
            push_previews: false,
        })
    }

    /// The kind of a conversation (`NotFound` if there is none), from memory when known.
    async fn conversation_kind(&self, id: ConversationId) -> Result<ConversationKind> {
        if let Some(k) = self.kinds.lock().unwrap_or_else(|e| e.into_inner()).get(&id) {
            return Ok(*k);
        }
        let conv = self
            .store
            .get_conversation(id)
            .await?
            .ok_or(Error::not_found("conversation"))?;
        self.remember_kind(id, conv.kind);
        Ok(conv.kind)
    }

    fn remember_kind(&self, id: ConversationId, kind: ConversationKind) {
        let mut kinds = self.kinds.lock().unwrap_or_else(|e| e.into_inner());
        if kinds.len() >= KIND_CACHE_MAX {
            kinds.clear();
        }
        kinds.insert(id, kind);
    }

    /// Uses `verifier` for OTP codes and `limits_cache` for the rate-limit counters.
    #[cfg(feature = "server")]
    pub fn with_otp(mut self, verifier: Arc<dyn OtpVerifier>, limits_cache: Arc<dyn OtpCache>) -> Self {
        let limiter = RateLimiter::new(limits_cache, &self.config.auth);
        self.auth.otp = Some((verifier, limiter));
        self
    }

    /// Uses the core's own codes ([`crate::auth::LocalOtpVerifier`]), kept in `cache` (which
    /// also holds the rate-limit counters) and sent with `sms`.
    #[cfg(feature = "server")]
    pub fn with_local_otp(self, cache: Arc<dyn OtpCache>, sms: Arc<dyn SmsSender>) -> Self {
        let verifier = Arc::new(crate::auth::LocalOtpVerifier::new(
            cache.clone(),
            sms,
            &self.config.auth,
        ));
        self.with_otp(verifier, cache)
    }

    /// Tracks presence and typing with `presence` instead of this process's memory: a
    /// tracker shared by several nodes (Redis) makes presence and typing cluster-wide. Set it
    /// before the engine serves connections.
    pub fn with_presence(mut self, presence: Arc<dyn PresenceTracker>) -> Self {
        self.presence = presence;
        self
    }

    /// The configuration the engine enforces.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The engine's clock (ms since the Unix epoch).
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The position of the newest recorded change: the cursor of a client that starts
    /// "from now" (a WebSocket `subscribe` without `since`) and wants only what comes next.
    pub async fn latest_position(&self) -> Result<SyncCursor> {
        self.store.latest_pos().await
    }

    /// The users the changes with `from < pos <= to` concern ([`Store::audience`]): a
    /// gateway node whose live copy of those positions never arrived checkpoints only their
    /// connections. A range wider than [`AUDIENCE_SPAN_MAX`] positions is refused
    /// (`invalid_input`): the caller asks in slices.
    pub async fn position_audience(&self, from: SyncCursor, to: SyncCursor) -> Result<Vec<UserId>> {
        if from < 0 || to.saturating_sub(from) > AUDIENCE_SPAN_MAX {
            return Err(Error::invalid(
                "range",
                format!("from >= 0 and at most {AUDIENCE_SPAN_MAX} positions"),
            ));
        }
        self.store.audience(from, to).await
    }

    fn now(&self) -> Timestamp {
        self.clock.now_ms()
    }

    // ---- shared helpers ------------------------------------------------------------------

    /// The conversation and the actor's membership; `NotFound("conversation")` alike when
    /// the conversation is missing and when the actor is not a member.
    /// The caller's membership (`NotFound("conversation")` when they are not in it, as if it
    /// did not exist). One store read: use it where the conversation itself is not needed.
    async fn member(&self, actor: UserId, conversation: ConversationId) -> Result<Member> {
        self.store
            .get_member(conversation, actor)
            .await?
            .ok_or(Error::not_found("conversation"))
    }

    async fn membership(&self, actor: UserId, conversation: ConversationId) -> Result<(Conversation, Member)> {
        let member = self.member(actor, conversation).await?;
        let conv = self
            .store
            .get_conversation(conversation)
            .await?
            .ok_or(Error::not_found("conversation"))?;
        Ok((conv, member))
    }

    async fn require_user(&self, id: UserId) -> Result<User> {
        self.store.get_user(id).await?.ok_or(Error::not_found("user"))
    }

    async fn member_ids(&self, conversation: ConversationId) -> Result<Vec<UserId>> {
        Ok(self
            .store
            .list_members(conversation)
            .await?
            .into_iter()
            .map(|m| m.user_id)
            .collect())
    }

    /// Everyone who shares a conversation with `user` (not `user`).
    async fn co_members(&self, user: UserId) -> Result<BTreeSet<UserId>> {
        Ok(self.conversations_and_co_members(user).await?.1)
    }

    /// The conversations `user` is a member of (archived too), and everyone who shares one
    /// with them (not `user`).
    async fn conversations_and_co_members(&self, user: UserId) -> Result<(Vec<ConversationId>, BTreeSet<UserId>)> {
        let mut conversations = Vec::new();
        let mut out = BTreeSet::new();
        for archived in [false, true] {
            for s in self.store.list_conversations(user, archived, PEER_SCAN_LIMIT).await? {
                conversations.push(s.conversation.id);
                out.extend(s.members.iter().map(|m| m.user_id));
            }
        }
        out.remove(&user);
        Ok((conversations, out))
    }

    /// Who is told about `user`'s presence and profile: users who have `user` as a contact
    /// and users sharing a conversation with them, except across a block and except `user`.
    async fn audience(&self, user: UserId) -> Result<Vec<UserId>> {
        let mut out = self.co_members(user).await?;
        out.extend(self.store.contact_owners(user).await?);
        for b in self.store.blocked_either_way(user).await? {
            out.remove(&b);
        }
        out.remove(&user);
        Ok(out.into_iter().collect())
    }

    /// Whose presence `user` sees in a sync snapshot (their contacts and users sharing a
    /// conversation with them, except across a block and except `user`), with the
    /// conversations `user` is in.
    async fn interests(&self, user: UserId) -> Result<(Vec<ConversationId>, Vec<UserId>)> {
        let (conversations, mut out) = self.conversations_and_co_members(user).await?;
        out.extend(self.store.list_contacts(user).await?.into_iter().map(|u| u.id));
        for b in self.store.blocked_either_way(user).await? {
            out.remove(&b);
        }
        out.remove(&user);
        Ok((conversations, out.into_iter().collect()))
    }

    /// Writes a system notice into a conversation's timeline and queues its change for
    /// `recipients`. The operation it describes has already happened, so a failure here is
    /// logged, not returned.
    async fn notice(
        &self,
        actor: UserId,
        conversation: ConversationId,
        notice: SystemNotice,
        recipients: &[UserId],
        out: &mut Vec<Delivery>,
    ) {
        let now = self.now();
        let id = MessageId::new(now);
        let new = NewMessage {
            id,
            conversation_id: conversation,
            sender_id: actor,
            client_msg_id: format!("system:{id}"),
            content: Content::System(notice),
            reply_to_seq: None,
            created_at: now,
        };
        match self.store.insert_message(&new).await {
            Ok((_, Some(change))) => out.push(live(recipients, change)),
            Ok((_, None)) => {}
            Err(e) => tracing::warn!(target: "chatico::engine", error = %e, %conversation, "system notice not written"),
        }
    }
}

/// A recorded change, live to `recipients`.
fn live(recipients: &[UserId], change: Change) -> Delivery {
    deliver(recipients, Event::Change(change))
}

/// A delivery to `recipients` (sorted, without duplicates).
fn deliver(recipients: &[UserId], event: Event) -> Delivery {
    let set: BTreeSet<UserId> = recipients.iter().copied().collect();
    Delivery {
        recipients: set.into_iter().collect(),
        event,
    }
}

/// Clamps a requested page size to `1..=max`.
fn page(limit: u32, max: u32) -> u32 {
    limit.clamp(1, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_are_deduplicated_and_sorted() {
        let a = UserId::new(1);
        let b = UserId::new(2);
        let d = deliver(
            &[b, a, b],
            Event::Presence(crate::model::Presence {
                user_id: a,
                online: true,
                last_seen_at: None,
            }),
        );
        assert_eq!(d.recipients, vec![a, b]);
    }

    #[test]
    fn page_sizes_are_clamped() {
        assert_eq!(page(0, 10), 1);
        assert_eq!(page(1000, 10), 10);
        assert_eq!(page(5, 10), 5);
    }

    /// The engine's futures must be `Send` so multi-threaded runtimes can drive them.
    #[cfg(not(target_family = "wasm"))]
    #[allow(dead_code)]
    fn futures_are_send(e: &Engine, u: UserId, c: ConversationId) {
        fn is_send<T: Send>(_: T) {}
        is_send(e.send(
            u,
            SendMessage {
                conversation_id: c,
                client_msg_id: "x".into(),
                content: Content::text("x"),
                reply_to_seq: None,
            },
        ));
        is_send(e.connected(u, 1));
        is_send(e.disconnected(u, 1));
        is_send(e.maintain_presence());
        is_send(e.retire_presence());
        is_send(e.typing(u, c, true));
        is_send(e.sync(u, 0, 10));
        is_send(e.create_group(u, "t".into(), vec![]));
        is_send(e.update_profile(u, Default::default()));
        #[cfg(feature = "server")]
        {
            is_send(e.request_otp("+15550000000", "ip"));
            is_send(e.verify_otp("+15550000000", "123456", "ip", None));
            is_send(e.refresh("t"));
            is_send(e.authenticate("t"));
        }
    }
}
