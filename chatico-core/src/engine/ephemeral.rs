//! Presence, typing and sync (persistent changes plus the ephemeral snapshot). Presence
//! and typing reach the [`crate::ports::PresenceTracker`] from here only.

use std::collections::{BTreeMap, HashSet};

use crate::error::{Error, Result};
use crate::ids::{ConversationId, Timestamp, UserId};
use crate::model::Presence;
use crate::sync::{Change, ChangeKind, EphemeralSnapshot, Event, SyncCursor, SyncPage};

use super::{Engine, Outcome, SyncResponse, deliver, page, validate};

impl Engine {
    /// The caller starts (`true`) or stops typing in a conversation. A start lasts
    /// `limits.typing_expiry_ms` unless refreshed. Other members are told, except across a
    /// block.
    pub async fn typing(&self, actor: UserId, conversation: ConversationId, typing: bool) -> Result<Outcome<()>> {
        self.member(actor, conversation).await?;
        let now = self.now();
        let expires_at = now + self.config.limits.typing_expiry_ms;
        if typing {
            self.presence.set_typing(conversation, actor, expires_at, now).await?;
        } else {
            self.presence.clear_typing(conversation, actor).await?;
        }
        let blocked: HashSet<UserId> = self.store.blocked_either_way(actor).await?.into_iter().collect();
        let recipients: Vec<UserId> = self
            .member_ids(conversation)
            .await?
            .into_iter()
            .filter(|u| *u != actor && !blocked.contains(u))
            .collect();
        if recipients.is_empty() {
            return Ok(Outcome::new(()));
        }
        let event = Event::Typing {
            conversation_id: conversation,
            user_id: actor,
            typing,
            expires_at: typing.then_some(expires_at),
        };
        Ok(Outcome::with((), vec![deliver(&recipients, event)]))
    }

    /// A connection of `user` opened on this node. When the presence tracker reports the
    /// user's first connection (cluster-wide with a shared tracker), users who have them as
    /// a contact or share a conversation with them are told (not across a block).
    pub async fn connected(&self, user: UserId, connection_id: u64) -> Result<Outcome<()>> {
        if !self.presence.connect(user, connection_id, self.now()).await? {
            return Ok(Outcome::new(()));
        }
        self.presence_event(user, true, None).await
    }

    /// A connection of `user` on this node closed. When it was their last one (cluster-wide
    /// with a shared tracker), they go offline: last seen is stored and the same audience as
    /// [`Engine::connected`] is told; their typing indicators end.
    pub async fn disconnected(&self, user: UserId, connection_id: u64) -> Result<Outcome<()>> {
        let now = self.now();
        if !self.presence.disconnect(user, connection_id, now).await? {
            return Ok(Outcome::new(()));
        }
        self.went_offline(user, now).await
    }

    /// Stores last seen and tells the audience that `user` went offline at `last_seen`.
    async fn went_offline(&self, user: UserId, last_seen: Timestamp) -> Result<Outcome<()>> {
        if let Err(e) = self.store.set_last_seen(user, last_seen).await {
            // The connection is gone whatever the store says; peers still learn it.
            tracing::warn!(target: "chatico::engine", error = %e, %user, "last seen not stored");
        }
        self.presence_event(user, false, Some(last_seen)).await
    }

    async fn presence_event(&self, user: UserId, online: bool, last_seen_at: Option<Timestamp>) -> Result<Outcome<()>> {
        let recipients = self.audience(user).await?;
        let event = Event::Presence(Presence {
            user_id: user,
            online,
            last_seen_at,
        });
        Ok(Outcome::with((), vec![deliver(&recipients, event)]))
    }

    /// The presence tracker's periodic tick, called by the gateway every few seconds (see
    /// [`crate::ports::PresenceTracker::maintain`]): renews this node's lease, re-registers
    /// its connections when the shared state lost them, and reaps dead nodes. The outcome
    /// carries an `offline` event (last seen = the dead node's lease expiry, also stored)
    /// for each user who had connections only on a reaped node, and an `online` event for
    /// each user this node brought back after it had been reaped itself. With the default
    /// in-memory tracker it only drops expired typing entries.
    ///
    /// A failure of one user's event (their audience could not be read) is logged and the
    /// others still go out; the tracker's own failure is returned.
    pub async fn maintain_presence(&self) -> Result<Outcome<()>> {
        let changes = self.presence.maintain(self.now()).await?;
        let mut deliveries = Vec::new();
        for (user, last_seen) in changes.offline {
            match self.went_offline(user, last_seen).await {
                Ok(out) => deliveries.extend(out.deliveries),
                Err(e) => {
                    tracing::warn!(target: "chatico::engine", error = %e, %user, "offline event of a reaped user not sent")
                }
            }
        }
        for user in changes.online {
            match self.presence_event(user, true, None).await {
                Ok(out) => deliveries.extend(out.deliveries),
                Err(e) => {
                    tracing::warn!(target: "chatico::engine", error = %e, %user, "online event of a re-registered user not sent")
                }
            }
        }
        Ok(Outcome::with((), deliveries))
    }

    /// Graceful shutdown of this node (before its connections are closed): with a shared
    /// tracker, the disconnects that follow make no one offline, so a rolling restart does
    /// not flap presence; users who do not reconnect elsewhere go offline when the node's
    /// lease lapses and another node reaps it. See [`crate::ports::PresenceTracker::retire`].
    pub async fn retire_presence(&self) -> Result<()> {
        self.presence.retire(self.now()).await
    }

    /// Presence of `users` as the caller sees it (offline, no last seen across a block).
    /// Unknown users are left out.
    pub async fn presence_of(&self, actor: UserId, users: &[UserId]) -> Result<Vec<Presence>> {
        let max = self.config.limits.max_presence_query;
        if users.len() > max {
            return Err(Error::invalid("users", format!("at most {max} users per query")));
        }
        let found = self.store.get_users(users).await?;
        let blocked: HashSet<UserId> = self.store.blocked_either_way(actor).await?.into_iter().collect();
        let ids: Vec<UserId> = found.iter().map(|u| u.id).collect();
        let online = self.online_set(&ids).await?;
        let by_id: BTreeMap<UserId, Presence> = found
            .into_iter()
            .map(|u| {
                let hidden = blocked.contains(&u.id);
                let p = Presence {
                    user_id: u.id,
                    online: !hidden && online.contains(&u.id),
                    last_seen_at: if hidden { None } else { u.last_seen_at },
                };
                (u.id, p)
            })
            .collect();
        // In the order asked, once each.
        let mut seen = HashSet::new();
        Ok(users
            .iter()
            .filter(|u| seen.insert(**u))
            .filter_map(|u| by_id.get(u).cloned())
            .collect())
    }

    /// Everything the caller missed since `since` (a page of at most `limit` changes,
    /// clamped, with `limited` set when more remain), and who is online and typing now.
    pub async fn sync(&self, actor: UserId, since: SyncCursor, limit: u32) -> Result<SyncResponse> {
        let page = self.sync_changes(actor, since, limit).await?;
        let ephemeral = self.snapshot(actor).await?;
        Ok(SyncResponse { page, ephemeral })
    }

    /// The page of [`Engine::sync`] without the ephemeral snapshot: what a connection's
    /// periodic checkpoint needs (the snapshot reads every contact and co-member's
    /// presence, which a checkpoint would throw away).
    ///
    /// A cursor beyond the log's end (`since` above the newest committed position) is
    /// `invalid_input` (field `since`): no server ever handed it out, and accepting it would
    /// make every change up to it look already seen. Checked only when the page is empty (a
    /// change after `since` proves it is not beyond the end), so a busy checkpoint pays
    /// nothing for it.
    pub async fn sync_changes(&self, actor: UserId, since: SyncCursor, limit: u32) -> Result<SyncPage> {
        validate::seq("since", since, 0)?;
        let limit = page(limit, self.config.limits.max_sync_page);
        let mut page = self.store.sync(actor, since, limit).await?;
        if page.changes.is_empty() && since > 0 && since > self.store.latest_pos().await? {
            return Err(Error::invalid(
                "since",
                "beyond the end of the log; resume from a cursor the server gave",
            ));
        }
        self.hide_blocked_receipts(actor, &mut page.changes).await?;
        self.hide_edits_and_reactions(actor, &mut page.changes).await?;
        Ok(page)
    }

    /// Takes out of a sync page the `receipt` changes of users in a block with `actor`
    /// (either way), so that sync agrees with live delivery, which never sends them.
    /// The block list is read only when the page holds someone else's receipt. `next` is
    /// left as the store gave it: the changes taken out are settled for this user.
    ///
    /// The filter is the block list *now*: a receipt made before a block is hidden from a
    /// resume after it (the client saw it live; it now sees less, never more), and one
    /// made during a block and replayed after an unblock carries a watermark the pair may
    /// see again by then (receipts are absolute watermarks, not events).
    pub(crate) async fn hide_blocked_receipts(&self, actor: UserId, changes: &mut Vec<Change>) -> Result<()> {
        let others = |c: &Change| matches!(c.kind, ChangeKind::Receipt { user_id, .. } if user_id != actor);
        if !changes.iter().any(others) {
            return Ok(());
        }
        let blocked: HashSet<UserId> = self.store.blocked_either_way(actor).await?.into_iter().collect();
        if blocked.is_empty() {
            return Ok(());
        }
        changes.retain(|c| !matches!(c.kind, ChangeKind::Receipt { user_id, .. } if blocked.contains(&user_id)));
        Ok(())
    }

    /// Presence of the caller's contacts and conversation peers, and live typing in the
    /// caller's conversations — nothing across a block.
    async fn snapshot(&self, actor: UserId) -> Result<EphemeralSnapshot> {
        let (conversations, interests) = self.interests(actor).await?;
        let presence = self.presence_of_unchecked(&interests).await?;
        let blocked: HashSet<UserId> = self.store.blocked_either_way(actor).await?.into_iter().collect();
        let mut typing = self.presence.typing(&conversations, self.now()).await?;
        typing.retain(|t| t.user_id != actor && !blocked.contains(&t.user_id));
        typing.sort_by_key(|t| (t.conversation_id, t.user_id));
        Ok(EphemeralSnapshot { presence, typing })
    }

    /// Presence of users already filtered for blocks.
    async fn presence_of_unchecked(&self, users: &[UserId]) -> Result<Vec<Presence>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let mut found = self.store.get_users(users).await?;
        found.sort_by_key(|u| u.id);
        let ids: Vec<UserId> = found.iter().map(|u| u.id).collect();
        let online = self.online_set(&ids).await?;
        Ok(found
            .into_iter()
            .map(|u| Presence {
                user_id: u.id,
                online: online.contains(&u.id),
                last_seen_at: u.last_seen_at,
            })
            .collect())
    }

    /// Which of `users` are online (cluster-wide with a shared presence tracker).
    pub(super) async fn online_set(&self, users: &[UserId]) -> Result<HashSet<UserId>> {
        Ok(self.presence.online(users).await?.into_iter().collect())
    }

    /// Whether `user` is online (cluster-wide with a shared presence tracker).
    pub async fn is_online(&self, user: UserId) -> Result<bool> {
        Ok(!self.presence.online(&[user]).await?.is_empty())
    }
}
