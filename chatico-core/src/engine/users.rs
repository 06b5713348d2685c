//! Users, profiles, contacts and blocks.

use std::collections::HashSet;

use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::model::{ProfilePatch, User, UserProfile};
use crate::sync::{Change, Event};

use super::{Engine, Outcome, deliver, live, page, validate};

impl Engine {
    /// The caller's own full record.
    pub async fn me(&self, actor: UserId) -> Result<User> {
        self.require_user(actor).await
    }

    /// Profiles as `viewer` sees them: last seen and online hidden across a block.
    async fn profiles_for(&self, viewer: UserId, users: Vec<User>) -> Result<Vec<UserProfile>> {
        let blocked: HashSet<UserId> = self.store.blocked_either_way(viewer).await?.into_iter().collect();
        let eph = self.ephemeral()?;
        Ok(users
            .iter()
            .map(|u| {
                let mut p = UserProfile::from_user(u);
                if blocked.contains(&u.id) {
                    p.last_seen_at = None;
                    p.online = false;
                } else {
                    p.online = eph.connections.contains_key(&u.id);
                }
                p
            })
            .collect())
    }

    /// Users whose display name contains `query` or whose phone starts with it (all users
    /// without a query), ordered by id, after `after`, at most `limit` (clamped).
    pub async fn list_users(
        &self,
        actor: UserId,
        query: Option<&str>,
        after: Option<UserId>,
        limit: u32,
    ) -> Result<Vec<UserProfile>> {
        let l = &self.config.limits;
        let query = match query.map(str::trim) {
            Some("") | None => None,
            Some(q) => {
                validate::name("query", q, l.max_search_query_chars)?;
                Some(q)
            }
        };
        let users = self
            .store
            .search_users(query, after, page(limit, l.max_user_page))
            .await?;
        self.profiles_for(actor, users).await
    }

    /// One user's profile as the caller sees it.
    pub async fn get_profile(&self, actor: UserId, user: UserId) -> Result<UserProfile> {
        let u = self.require_user(user).await?;
        let mut v = self.profiles_for(actor, vec![u]).await?;
        v.pop().ok_or(Error::not_found("user"))
    }

    /// Edits the caller's profile. Tells the caller's other devices, their contacts'
    /// owners and everyone sharing a conversation with them — never across a block.
    pub async fn update_profile(&self, actor: UserId, patch: ProfilePatch) -> Result<Outcome<User>> {
        let l = &self.config.limits;
        let valid = ProfilePatch {
            display_name: match &patch.display_name {
                Some(n) => Some(validate::name("display_name", n, l.max_display_name_chars)?),
                None => None,
            },
            bio: match &patch.bio {
                Some(b) => Some(validate::free_text("bio", b, l.max_bio_chars)?),
                None => None,
            },
            avatar_url: match &patch.avatar_url {
                Some(Some(u)) => Some(Some(validate::url("avatar_url", u, l.max_url_chars)?)),
                Some(None) => Some(None),
                None => None,
            },
        };
        let before = self.require_user(actor).await?;
        let after = self.store.update_profile(actor, &valid).await?;
        if (&after.display_name, &after.bio, &after.avatar_url)
            == (&before.display_name, &before.bio, &before.avatar_url)
        {
            return Ok(Outcome::new(after));
        }
        let mut recipients = self.audience(actor).await?;
        recipients.push(actor);
        let mut profile = UserProfile::from_user(&after);
        profile.online = self.ephemeral()?.connections.contains_key(&actor);
        Ok(Outcome::with(
            after,
            vec![deliver(&recipients, Event::Profile(profile))],
        ))
    }

    /// Checks that `other` is someone else who exists.
    async fn other_user(&self, actor: UserId, other: UserId) -> Result<User> {
        if other == actor {
            return Err(Error::invalid("user_id", "must be another user"));
        }
        self.require_user(other).await
    }

    /// Adds a contact; true if it was not one already.
    pub async fn add_contact(&self, actor: UserId, user: UserId) -> Result<Outcome<bool>> {
        self.other_user(actor, user).await?;
        let change = self.store.add_contact(actor, user, self.now()).await?;
        Ok(targeted(actor, change))
    }

    /// Removes a contact; true if it was one.
    pub async fn remove_contact(&self, actor: UserId, user: UserId) -> Result<Outcome<bool>> {
        self.other_user(actor, user).await?;
        let change = self.store.remove_contact(actor, user).await?;
        Ok(targeted(actor, change))
    }

    /// The caller's contacts (last seen and online hidden across a block).
    pub async fn list_contacts(&self, actor: UserId) -> Result<Vec<UserProfile>> {
        let users = self.store.list_contacts(actor).await?;
        self.profiles_for(actor, users).await
    }

    /// Blocks a user; true if they were not blocked already. From now on neither sees the
    /// other's presence, typing, last seen or profile updates, and direct messages and
    /// group invitations between them are refused.
    pub async fn block(&self, actor: UserId, user: UserId) -> Result<Outcome<bool>> {
        self.other_user(actor, user).await?;
        let change = self.store.block(actor, user, self.now()).await?;
        Ok(targeted(actor, change))
    }

    /// Unblocks a user; true if they were blocked.
    pub async fn unblock(&self, actor: UserId, user: UserId) -> Result<Outcome<bool>> {
        self.other_user(actor, user).await?;
        let change = self.store.unblock(actor, user).await?;
        Ok(targeted(actor, change))
    }

    /// The users the caller has blocked (their last seen and online hidden).
    pub async fn list_blocked(&self, actor: UserId) -> Result<Vec<UserProfile>> {
        let users = self.store.list_blocked(actor).await?;
        self.profiles_for(actor, users).await
    }
}

/// A change for the actor alone (their other devices); `true` when something changed.
fn targeted(actor: UserId, change: Option<Change>) -> Outcome<bool> {
    match change {
        Some(c) => Outcome::with(true, vec![live(&[actor], c)]),
        None => Outcome::new(false),
    }
}
