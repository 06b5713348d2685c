//! Users, profiles, contacts and blocks.

use std::collections::HashSet;

use crate::error::{Error, Result};
use crate::ids::{BlobKey, Phone, UserId};
use crate::model::{BlobPurpose, ProfilePatch, User, UserProfile};
use crate::protocol::paths;
use crate::sync::{Change, Event};

use super::{Engine, Outcome, deliver, live, page, validate};

impl Engine {
    /// The caller's own full record.
    pub async fn me(&self, actor: UserId) -> Result<User> {
        self.require_user(actor).await
    }

    /// Whose phone numbers `viewer` may see: their own, those of users who have `viewer`
    /// among their contacts, and those of users sharing a conversation with `viewer`. (An
    /// exact-number lookup shows the one number asked for as well.) Adding someone as a
    /// contact takes only their id, which "all users" gives, so the contact relation counts
    /// in the owner's direction only.
    async fn phones_visible_to(&self, viewer: UserId) -> Result<HashSet<UserId>> {
        let mut out: HashSet<UserId> = self.co_members(viewer).await?.into_iter().collect();
        out.extend(self.store.contact_owners(viewer).await?);
        out.insert(viewer);
        Ok(out)
    }

    /// Who may see `owner`'s phone number: the inverse of [`Engine::phones_visible_to`].
    async fn phone_viewers_of(&self, owner: UserId) -> Result<HashSet<UserId>> {
        let mut out: HashSet<UserId> = self.co_members(owner).await?.into_iter().collect();
        out.extend(self.store.list_contacts(owner).await?.into_iter().map(|u| u.id));
        out.insert(owner);
        Ok(out)
    }

    /// Profiles as `viewer` sees them: last seen and online hidden across a block; the phone
    /// number only where [`Engine::phones_visible_to`] allows it.
    async fn profiles_for(&self, viewer: UserId, users: Vec<User>) -> Result<Vec<UserProfile>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let blocked: HashSet<UserId> = self.store.blocked_either_way(viewer).await?.into_iter().collect();
        let phones = self.phones_visible_to(viewer).await?;
        let ids: Vec<UserId> = users.iter().map(|u| u.id).collect();
        let online = self.online_set(&ids).await?;
        Ok(users
            .iter()
            .map(|u| {
                let mut p = UserProfile::from_user(u);
                if phones.contains(&u.id) {
                    p.phone = Some(u.phone.clone());
                }
                if blocked.contains(&u.id) {
                    p.last_seen_at = None;
                    p.online = false;
                } else {
                    p.online = online.contains(&u.id);
                }
                p
            })
            .collect())
    }

    /// Users whose display name contains `query` (case-insensitive; all users without a
    /// query), ordered by id, after `after`, at most `limit` (clamped), phone numbers shown
    /// as `Engine::phones_visible_to` allows.
    ///
    /// A query that starts with `+` is an exact-number lookup instead: the one user whose
    /// phone is that E.164 number (spaces, dashes, dots and parentheses ignored), with the
    /// number shown — the way to find someone to start a chat with. Anything that is not a
    /// whole number finds no one: numbers are never matched by prefix, which would let a
    /// caller read them digit by digit.
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
        if let Some(q) = query.filter(|q| q.starts_with('+')) {
            let Ok(phone) = Phone::parse(q) else {
                return Ok(Vec::new());
            };
            return Ok(self
                .user_by_phone(actor, &phone)
                .await?
                .filter(|p| after.is_none_or(|a| p.id > a))
                .into_iter()
                .collect());
        }
        let users = self
            .store
            .search_users(query, after, page(limit, l.max_user_page))
            .await?;
        self.profiles_for(actor, users).await
    }

    /// The user whose phone is exactly `phone`, as `actor` sees them, with the number.
    async fn user_by_phone(&self, actor: UserId, phone: &Phone) -> Result<Option<UserProfile>> {
        // The store matches a query against names and phone prefixes: keep the exact number.
        let found = self
            .store
            .search_users(Some(phone.as_str()), None, self.config.limits.max_user_page)
            .await?
            .into_iter()
            .find(|u| u.phone == *phone);
        let Some(user) = found else { return Ok(None) };
        let mut p = self.profiles_for(actor, vec![user]).await?.pop();
        if let Some(p) = p.as_mut() {
            p.phone = Some(phone.clone());
        }
        Ok(p)
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
                Some(Some(u)) => Some(Some(self.own_avatar(actor, u).await?)),
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
        profile.online = self.is_online(actor).await?;
        // Those who may see the number get it in the event, the others the same profile
        // without it.
        let viewers = self.phone_viewers_of(actor).await?;
        let (with, without): (Vec<UserId>, Vec<UserId>) = recipients.into_iter().partition(|u| viewers.contains(u));
        let mut deliveries = Vec::new();
        if !without.is_empty() {
            deliveries.push(deliver(&without, Event::Profile(profile.clone())));
        }
        profile.phone = Some(after.phone.clone());
        deliveries.push(deliver(&with, Event::Profile(profile)));
        Ok(Outcome::with(after, deliveries))
    }

    /// Checks an `avatar_url` (profile or group) and returns it as stored: exactly
    /// [`paths::blob`]`(key)`, where `key` names an existing blob of purpose `avatar` that
    /// `actor` uploaded. Anything else — an outside URL (every viewer's client would fetch it
    /// and leak its address to a third party), another path, someone else's blob, a media
    /// blob — is `invalid_input` (field `avatar_url`) and changes nothing.
    pub(crate) async fn own_avatar(&self, actor: UserId, url: &str) -> Result<String> {
        let l = &self.config.limits;
        let t = validate::url("avatar_url", url, l.max_url_chars)?;
        let refused = || {
            Error::invalid(
                "avatar_url",
                format!(
                    "must be {}{{key}} of an avatar you uploaded (POST {}?purpose=avatar)",
                    paths::blob_prefix(),
                    paths::BLOBS
                ),
            )
        };
        let key = t
            .strip_prefix(paths::blob_prefix())
            .and_then(percent_decode)
            .and_then(|k| BlobKey::parse(&k).ok())
            .ok_or_else(refused)?;
        match self.store.get_blob(key.as_str()).await? {
            Some(b) if b.owner_id == actor && b.purpose == BlobPurpose::Avatar => Ok(t),
            _ => Err(refused()),
        }
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

/// `%XX`-decodes a path segment (what `encodeURIComponent` produces); `None` when it is not
/// valid percent-encoding of UTF-8 or holds a `/`, `?` or `#` unencoded.
fn percent_decode(s: &str) -> Option<String> {
    if s.contains(['/', '?', '#']) {
        return None;
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
