//! Presence, typing and sync (persistent changes plus the ephemeral snapshot).

use std::collections::{BTreeMap, HashSet};

use crate::error::{Error, Result};
use crate::ids::{ConversationId, UserId};
use crate::model::{Presence, Typing};
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
        {
            let mut eph = self.ephemeral()?;
            eph.typing.retain(|_, exp| *exp > now);
            if typing {
                eph.typing.insert((conversation, actor), expires_at);
            } else {
                eph.typing.remove(&(conversation, actor));
            }
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

    /// A connection of `user` opened. The first one makes them online: users who have them
    /// as a contact or share a conversation with them are told (not across a block).
    pub async fn connected(&self, user: UserId, connection_id: u64) -> Result<Outcome<()>> {
        let first = {
            let mut eph = self.ephemeral()?;
            let conns = eph.connections.entry(user).or_default();
            let was_offline = conns.is_empty();
            conns.insert(connection_id) && was_offline
        };
        if !first {
            return Ok(Outcome::new(()));
        }
        let recipients = self.audience(user).await?;
        let event = Event::Presence(Presence {
            user_id: user,
            online: true,
            last_seen_at: None,
        });
        Ok(Outcome::with((), vec![deliver(&recipients, event)]))
    }

    /// A connection of `user` closed. When it was the last one, they go offline: last seen
    /// is stored and the same audience as [`Engine::connected`] is told; their typing
    /// indicators end.
    pub async fn disconnected(&self, user: UserId, connection_id: u64) -> Result<Outcome<()>> {
        let last = {
            let mut eph = self.ephemeral()?;
            let removed_last = match eph.connections.get_mut(&user) {
                Some(conns) => conns.remove(&connection_id) && conns.is_empty(),
                None => false,
            };
            if removed_last {
                eph.connections.remove(&user);
                eph.typing.retain(|(_, u), _| *u != user);
            }
            removed_last
        };
        if !last {
            return Ok(Outcome::new(()));
        }
        let now = self.now();
        if let Err(e) = self.store.set_last_seen(user, now).await {
            // The connection is gone whatever the store says; peers still learn it.
            tracing::warn!(target: "chatico::engine", error = %e, %user, "last seen not stored");
        }
        let recipients = self.audience(user).await?;
        let event = Event::Presence(Presence {
            user_id: user,
            online: false,
            last_seen_at: Some(now),
        });
        Ok(Outcome::with((), vec![deliver(&recipients, event)]))
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
        let eph = self.ephemeral()?;
        let by_id: BTreeMap<UserId, Presence> = found
            .into_iter()
            .map(|u| {
                let hidden = blocked.contains(&u.id);
                let p = Presence {
                    user_id: u.id,
                    online: !hidden && eph.connections.contains_key(&u.id),
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
        let interests = self.interests(actor).await?;
        let presence = self.presence_of_unchecked(&interests).await?;
        let now = self.now();
        let typing_now: Vec<(ConversationId, UserId, i64)> = {
            let mut eph = self.ephemeral()?;
            eph.typing.retain(|_, exp| *exp > now);
            eph.typing.iter().map(|((c, u), exp)| (*c, *u, *exp)).collect()
        };
        let blocked: HashSet<UserId> = self.store.blocked_either_way(actor).await?.into_iter().collect();
        let mut member_of: BTreeMap<ConversationId, bool> = BTreeMap::new();
        let mut typing = Vec::new();
        for (c, u, exp) in typing_now {
            if u == actor || blocked.contains(&u) {
                continue;
            }
            let is_member = match member_of.get(&c) {
                Some(m) => *m,
                None => {
                    let m = self.store.get_member(c, actor).await?.is_some();
                    member_of.insert(c, m);
                    m
                }
            };
            if is_member {
                typing.push(Typing {
                    conversation_id: c,
                    user_id: u,
                    expires_at: exp,
                });
            }
        }
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
        let eph = self.ephemeral()?;
        Ok(found
            .into_iter()
            .map(|u| Presence {
                user_id: u.id,
                online: eph.connections.contains_key(&u.id),
                last_seen_at: u.last_seen_at,
            })
            .collect())
    }

    /// Whether `user` has an open connection on this node.
    pub fn is_online(&self, user: UserId) -> bool {
        self.ephemeral()
            .map(|e| e.connections.contains_key(&user))
            .unwrap_or(false)
    }
}
