//! The presence and typing port: who is online (multi-device, cluster-wide) and who is typing
//! where.
//!
//! One node keeps this in memory ([`crate::presence::MemoryPresence`], the default); several
//! nodes share it through Redis (`chatico-store`, feature `redis`). The
//! [`crate::engine::Engine`] is the only caller: it turns the transitions this port reports
//! into presence events, so exactly one `online` and one `offline` event is emitted
//! cluster-wide per transition, whichever node saw it.

use async_trait::async_trait;

use crate::SendSyncOutsideWasm;
use crate::error::Result;
use crate::ids::{ConversationId, Timestamp, UserId};
use crate::model::Typing;

/// What one [`PresenceTracker::maintain`] tick found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PresenceChanges {
    /// Users who went offline cluster-wide because the node holding their last connection
    /// died (its lease expired), each with their last seen time: that lease's expiry.
    pub offline: Vec<(UserId, Timestamp)>,
    /// Users who came online again because this node re-registered its connections after
    /// the cluster had reaped it (it was cut off from the shared state longer than its
    /// lease). Not filled after the shared state lost its data: then every node
    /// re-registers silently, since what clients were last told is still true.
    pub online: Vec<UserId>,
}

/// Presence (connections per user) and typing indicators, atomic with respect to every
/// caller on every node sharing the tracker.
///
/// - A user is online while at least one connection of theirs is registered on a node that
///   has not been reaped. [`connect`](Self::connect) and [`disconnect`](Self::disconnect)
///   report the cluster-wide transition they caused, so exactly one caller sees each.
/// - Connection ids are unique per node (the node's hub registration ids), not across nodes.
/// - Typing entries lapse at their `expires_at`; a user's entries end when they go offline.
/// - A shared implementation that cannot reach its backend falls back to this node's own
///   view (its own connections and the typing it saw) instead of failing: presence and
///   typing are ephemeral and degrade, they never fail a connection.
#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
pub trait PresenceTracker: SendSyncOutsideWasm {
    /// Registers `connection` of `user` on this node. `true` when the user was offline
    /// cluster-wide before (the caller emits `online`). Registering the same connection
    /// twice is `false` the second time.
    async fn connect(&self, user: UserId, connection: u64, now: Timestamp) -> Result<bool>;
    /// Ends `connection` of `user` on this node. `true` when it was the user's last
    /// connection cluster-wide (the caller stores last seen and emits `offline`); their
    /// typing entries end then. An unknown connection is `false` and changes nothing.
    async fn disconnect(&self, user: UserId, connection: u64, now: Timestamp) -> Result<bool>;
    /// Which of `users` are online, in the order given, once each.
    async fn online(&self, users: &[UserId]) -> Result<Vec<UserId>>;
    /// `user` types in `conversation` until `expires_at` (replacing an earlier entry); `now`
    /// lets an implementation drop what already expired.
    async fn set_typing(
        &self,
        conversation: ConversationId,
        user: UserId,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<()>;
    /// `user` stopped typing in `conversation`.
    async fn clear_typing(&self, conversation: ConversationId, user: UserId) -> Result<()>;
    /// Live typing entries (`expires_at > now`) in `conversations`, sorted by conversation
    /// then user.
    async fn typing(&self, conversations: &[ConversationId], now: Timestamp) -> Result<Vec<Typing>>;
    /// The periodic tick (every few seconds, from the node's gateway): renews this node's
    /// lease, re-registers its connections if the shared state lost them, and reaps nodes
    /// whose lease expired. One node: nothing to do.
    async fn maintain(&self, now: Timestamp) -> Result<PresenceChanges>;
    /// Graceful shutdown of this node: its connections are about to close, and their
    /// disconnects must not make anyone offline (a rolling restart must not flap presence).
    /// After this, [`disconnect`](Self::disconnect) reports no transition for a shared
    /// tracker; the node's lease lapses and the reaper turns offline only the users who did
    /// not reconnect elsewhere meanwhile. A single-node tracker has nobody to hand over to
    /// and keeps reporting transitions (so last seen is stored).
    async fn retire(&self, now: Timestamp) -> Result<()>;
}
