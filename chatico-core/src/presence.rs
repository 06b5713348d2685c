//! [`MemoryPresence`]: the in-process [`PresenceTracker`] of a single node (the default).
//!
//! Several nodes share presence through a networked tracker (Redis, in `chatico-store`)
//! implementing the same port; that one keeps a `MemoryPresence` as this node's own view,
//! which it answers from when its backend is unreachable.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::ids::{ConversationId, Timestamp, UserId};
use crate::model::Typing;
use crate::ports::{PresenceChanges, PresenceTracker};

#[derive(Debug, Default)]
struct Inner {
    /// Open connections per user (no empty sets).
    connections: HashMap<UserId, HashSet<u64>>,
    /// Who is typing where, until when.
    typing: HashMap<(ConversationId, UserId), Timestamp>,
}

/// Presence and typing in a `Mutex`: this node's connections are the whole truth.
#[derive(Debug, Default)]
pub struct MemoryPresence {
    inner: Mutex<Inner>,
}

impl MemoryPresence {
    /// No one online, no one typing.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<MutexGuard<'_, Inner>> {
        self.inner
            .lock()
            .map_err(|_| Error::internal("presence state lock poisoned"))
    }

    /// The users with open connections here and how many each has, sorted by user: what a
    /// shared tracker re-registers when its backend lost this node's entries.
    pub fn connection_counts(&self) -> Result<Vec<(UserId, u32)>> {
        let inner = self.lock()?;
        let mut out: Vec<(UserId, u32)> = inner
            .connections
            .iter()
            .map(|(u, c)| (*u, u32::try_from(c.len()).unwrap_or(u32::MAX)))
            .collect();
        out.sort_unstable();
        Ok(out)
    }

    /// Adds `connection` of `user`: (whether it was new, whether it is the user's first
    /// here).
    pub fn add(&self, user: UserId, connection: u64) -> Result<(bool, bool)> {
        let mut inner = self.lock()?;
        let conns = inner.connections.entry(user).or_default();
        let was_empty = conns.is_empty();
        let inserted = conns.insert(connection);
        Ok((inserted, inserted && was_empty))
    }

    /// Removes `connection` of `user`: (whether it was there, whether it was the user's last
    /// here — their typing entries here end then).
    pub fn remove(&self, user: UserId, connection: u64) -> Result<(bool, bool)> {
        let mut inner = self.lock()?;
        let (removed, last) = match inner.connections.get_mut(&user) {
            Some(conns) => {
                let removed = conns.remove(&connection);
                (removed, removed && conns.is_empty())
            }
            None => (false, false),
        };
        if last {
            inner.connections.remove(&user);
            inner.typing.retain(|(_, u), _| *u != user);
        }
        Ok((removed, last))
    }

    /// Whether `user` has a connection open here.
    pub fn has_connections(&self, user: UserId) -> Result<bool> {
        Ok(self.lock()?.connections.contains_key(&user))
    }
}

#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
impl PresenceTracker for MemoryPresence {
    async fn connect(&self, user: UserId, connection: u64, _now: Timestamp) -> Result<bool> {
        Ok(self.add(user, connection)?.1)
    }

    async fn disconnect(&self, user: UserId, connection: u64, _now: Timestamp) -> Result<bool> {
        Ok(self.remove(user, connection)?.1)
    }

    async fn online(&self, users: &[UserId]) -> Result<Vec<UserId>> {
        let inner = self.lock()?;
        let mut seen = HashSet::new();
        Ok(users
            .iter()
            .copied()
            .filter(|u| inner.connections.contains_key(u) && seen.insert(*u))
            .collect())
    }

    async fn set_typing(
        &self,
        conversation: ConversationId,
        user: UserId,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<()> {
        let mut inner = self.lock()?;
        inner.typing.retain(|_, exp| *exp > now);
        inner.typing.insert((conversation, user), expires_at);
        Ok(())
    }

    async fn clear_typing(&self, conversation: ConversationId, user: UserId) -> Result<()> {
        self.lock()?.typing.remove(&(conversation, user));
        Ok(())
    }

    async fn typing(&self, conversations: &[ConversationId], now: Timestamp) -> Result<Vec<Typing>> {
        let mut inner = self.lock()?;
        inner.typing.retain(|_, exp| *exp > now);
        let wanted: HashSet<ConversationId> = conversations.iter().copied().collect();
        let mut out: Vec<Typing> = inner
            .typing
            .iter()
            .filter(|((c, _), _)| wanted.contains(c))
            .map(|((c, u), exp)| Typing {
                conversation_id: *c,
                user_id: *u,
                expires_at: *exp,
            })
            .collect();
        out.sort_by_key(|t| (t.conversation_id, t.user_id));
        Ok(out)
    }

    async fn maintain(&self, now: Timestamp) -> Result<PresenceChanges> {
        // One node: no lease, no other node to reap. Expired typing goes here too.
        self.lock()?.typing.retain(|_, exp| *exp > now);
        Ok(PresenceChanges::default())
    }

    async fn retire(&self, _now: Timestamp) -> Result<()> {
        Ok(())
    }
}
