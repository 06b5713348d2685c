//! The in-memory [`Store`]: the reference implementation of the store contract, used by
//! tests, by embedders who need no persistence, and as the model the conformance suite is
//! checked against. Everything sits behind one mutex, so every method is trivially atomic
//! and positions are commit-ordered.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::ids::{ConversationId, Phone, SessionId, Timestamp, UserId};
use crate::model::{
    BlobMeta, Content, Conversation, ConversationKind, ConversationSummary, HistoryDirection, HistoryQuery, Member,
    MemberInfo, Message, NewMessage, ProfilePatch, Role, Session, User, direct_pair,
};
use crate::ports::{NewConversation, Store, StoredReaction};
use crate::push::{Mute, Platform, PushDevice};
use crate::search::{self, MessageSearch};
use crate::sync::{Change, ChangeKind, SyncCursor, SyncPage};

/// See the module docs.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    users: HashMap<UserId, User>,
    by_phone: HashMap<String, UserId>,
    sessions: HashMap<SessionId, Session>,
    contacts: BTreeSet<(UserId, UserId)>,
    blocks: BTreeSet<(UserId, UserId)>,
    conversations: HashMap<ConversationId, Conversation>,
    directs: HashMap<(UserId, UserId), ConversationId>,
    /// Members of each conversation, in join order.
    members: HashMap<ConversationId, Vec<Member>>,
    /// The pos of each current member's `MemberJoined` change.
    join_pos: HashMap<(ConversationId, UserId), SyncCursor>,
    /// Messages of each conversation; index = seq - 1.
    messages: HashMap<ConversationId, Vec<Message>>,
    by_client_id: HashMap<(UserId, String), (ConversationId, i64)>,
    hidden: HashSet<(UserId, ConversationId, i64)>,
    /// Reactions of each message (conversation, seq), in the order they were added.
    reactions: HashMap<(ConversationId, i64), Vec<StoredReaction>>,
    blobs: HashMap<String, BlobMeta>,
    /// The media messages referencing each blob key, as (conversation, seq); a message
    /// deleted for everyone stays listed but has no content any more.
    media_refs: HashMap<String, Vec<(ConversationId, i64)>>,
    changes: Vec<Recorded>,
    /// Sync indexes (positions ascending): the conversation-wide changes of each
    /// conversation, the changes targeted at each user, and each user's current
    /// conversations. `sync` reads only these, so its cost follows the user's own changes,
    /// not the whole log.
    conv_changes: HashMap<ConversationId, Vec<SyncCursor>>,
    targeted: HashMap<UserId, Vec<SyncCursor>>,
    user_convs: HashMap<UserId, BTreeSet<ConversationId>>,
    /// Push devices by session.
    push_devices: HashMap<SessionId, PushDevice>,
    /// Mutes: (conversation, user) → until (`None` = until unmuted).
    mutes: HashMap<(ConversationId, UserId), Option<Timestamp>>,
    /// Pins: (user, conversation) → when pinned.
    pins: HashMap<(UserId, ConversationId), Timestamp>,
}

#[derive(Debug, Clone)]
struct Recorded {
    pos: SyncCursor,
    conversation_id: Option<ConversationId>,
    target: Option<UserId>,
    kind: ChangeKind,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<MutexGuard<'_, Inner>> {
        self.inner
            .lock()
            .map_err(|_| Error::internal("memory store mutex poisoned"))
    }

    /// How many blobs are registered (a test hook: a refused upload must leave none behind).
    pub fn blob_count(&self) -> usize {
        self.lock().map_or(0, |g| g.blobs.len())
    }
}

impl Inner {
    fn record(&mut self, conversation_id: Option<ConversationId>, target: Option<UserId>, kind: ChangeKind) -> Change {
        let pos = self.changes.len() as SyncCursor + 1;
        let change = Change {
            pos,
            conversation_id,
            kind: kind.clone(),
        };
        self.changes.push(Recorded {
            pos,
            conversation_id,
            target,
            kind,
        });
        match (target, conversation_id) {
            (Some(t), _) => self.targeted.entry(t).or_default().push(pos),
            (None, Some(c)) => self.conv_changes.entry(c).or_default().push(pos),
            (None, None) => {}
        }
        change
    }

    /// `user` is a member of `conversation` from the change at `pos` on.
    fn join(&mut self, conversation: ConversationId, user: UserId, pos: SyncCursor) {
        self.join_pos.insert((conversation, user), pos);
        self.user_convs.entry(user).or_default().insert(conversation);
    }

    /// `user` is no longer a member of `conversation`.
    fn leave(&mut self, conversation: ConversationId, user: UserId) {
        self.join_pos.remove(&(conversation, user));
        if let Some(cs) = self.user_convs.get_mut(&user) {
            cs.remove(&conversation);
            if cs.is_empty() {
                self.user_convs.remove(&user);
            }
        }
    }

    /// Positions after `since` of the changes `user` sees, ascending, at most `limit + 1`
    /// (one more than asked, to tell whether the page is limited). Same answer as filtering
    /// the whole log with `visible_to`, from the indexes.
    fn visible_after(&self, user: UserId, since: SyncCursor, limit: usize) -> Vec<SyncCursor> {
        // One sorted run per source: targeted changes, then each conversation from the
        // later of `since` and the user's join.
        let mut runs: Vec<&[SyncCursor]> = Vec::new();
        if let Some(t) = self.targeted.get(&user) {
            runs.push(&t[t.partition_point(|&p| p <= since)..]);
        }
        for c in self.user_convs.get(&user).into_iter().flatten() {
            let (Some(list), Some(&jp)) = (self.conv_changes.get(c), self.join_pos.get(&(*c, user))) else {
                continue;
            };
            runs.push(&list[list.partition_point(|&p| p <= since || p < jp)..]);
        }
        runs.retain(|r| !r.is_empty());
        let mut heap: std::collections::BinaryHeap<std::cmp::Reverse<(SyncCursor, usize)>> = runs
            .iter()
            .enumerate()
            .map(|(i, r)| std::cmp::Reverse((r[0], i)))
            .collect();
        let mut at = vec![0usize; runs.len()];
        let mut out = Vec::new();
        while let Some(std::cmp::Reverse((pos, i))) = heap.pop() {
            out.push(pos);
            if out.len() > limit {
                break;
            }
            at[i] += 1;
            if let Some(&next) = runs[i].get(at[i]) {
                heap.push(std::cmp::Reverse((next, i)));
            }
        }
        out
    }

    fn member_mut(&mut self, conversation: ConversationId, user: UserId) -> Result<&mut Member> {
        self.members
            .get_mut(&conversation)
            .and_then(|ms| ms.iter_mut().find(|m| m.user_id == user))
            .ok_or_else(|| Error::not_found("member"))
    }

    fn member(&self, conversation: ConversationId, user: UserId) -> Option<&Member> {
        self.members
            .get(&conversation)
            .and_then(|ms| ms.iter().find(|m| m.user_id == user))
    }

    fn users_sorted(&self, ids: impl Iterator<Item = UserId>) -> Vec<User> {
        let mut v: Vec<User> = ids.filter_map(|id| self.users.get(&id).cloned()).collect();
        v.sort_by(|a, b| a.display_name.cmp(&b.display_name).then(a.id.cmp(&b.id)));
        v
    }

    fn message(&self, conversation: ConversationId, seq: i64) -> Option<&Message> {
        if seq < 1 {
            return None;
        }
        self.messages.get(&conversation).and_then(|v| v.get((seq - 1) as usize))
    }

    fn visible_to(&self, r: &Recorded, user: UserId) -> bool {
        match (r.target, r.conversation_id) {
            (Some(t), _) => t == user,
            (None, Some(c)) => self.join_pos.get(&(c, user)).is_some_and(|&jp| r.pos >= jp),
            (None, None) => false,
        }
    }

    fn resolve(&self, r: &Recorded) -> Change {
        let kind = match &r.kind {
            ChangeKind::Message { message } => ChangeKind::Message {
                message: self
                    .message(message.conversation_id, message.seq)
                    .cloned()
                    .unwrap_or_else(|| message.clone()),
            },
            ChangeKind::MessageEdited {
                seq,
                content,
                edited_at,
            } => {
                let now = r.conversation_id.and_then(|c| self.message(c, *seq));
                ChangeKind::MessageEdited {
                    seq: *seq,
                    content: now.map_or_else(|| content.clone(), |m| m.content.clone()),
                    edited_at: *edited_at,
                }
            }
            other => other.clone(),
        };
        Change {
            pos: r.pos,
            conversation_id: r.conversation_id,
            kind,
        }
    }
}

#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
impl Store for MemoryStore {
    async fn get_or_create_user(
        &self,
        phone: &Phone,
        new_id: UserId,
        display_name: &str,
        now: Timestamp,
    ) -> Result<(User, bool)> {
        let mut g = self.lock()?;
        if let Some(id) = g.by_phone.get(phone.as_str()) {
            let user = g
                .users
                .get(id)
                .cloned()
                .ok_or_else(|| Error::internal("phone index dangling"))?;
            return Ok((user, false));
        }
        let user = User {
            id: new_id,
            phone: phone.clone(),
            display_name: display_name.to_owned(),
            bio: String::new(),
            avatar_url: None,
            created_at: now,
            last_seen_at: None,
        };
        g.by_phone.insert(phone.as_str().to_owned(), new_id);
        g.users.insert(new_id, user.clone());
        Ok((user, true))
    }

    async fn get_user(&self, id: UserId) -> Result<Option<User>> {
        Ok(self.lock()?.users.get(&id).cloned())
    }

    async fn get_users(&self, ids: &[UserId]) -> Result<Vec<User>> {
        let g = self.lock()?;
        let unique: BTreeSet<UserId> = ids.iter().copied().collect();
        Ok(unique.into_iter().filter_map(|id| g.users.get(&id).cloned()).collect())
    }

    async fn search_users(&self, query: Option<&str>, after: Option<UserId>, limit: u32) -> Result<Vec<User>> {
        let g = self.lock()?;
        let q = query.map(|q| q.to_lowercase());
        let mut v: Vec<User> = g
            .users
            .values()
            .filter(|u| after.is_none_or(|a| u.id > a))
            .filter(|u| match &q {
                None => true,
                Some(q) => {
                    u.display_name.to_lowercase().contains(q.as_str()) || u.phone.as_str().starts_with(q.as_str())
                }
            })
            .cloned()
            .collect();
        v.sort_by_key(|u| u.id);
        v.truncate(limit as usize);
        Ok(v)
    }

    async fn update_profile(&self, id: UserId, patch: &ProfilePatch) -> Result<User> {
        let mut g = self.lock()?;
        let u = g.users.get_mut(&id).ok_or_else(|| Error::not_found("user"))?;
        if let Some(n) = &patch.display_name {
            u.display_name = n.clone();
        }
        if let Some(b) = &patch.bio {
            u.bio = b.clone();
        }
        if let Some(a) = &patch.avatar_url {
            u.avatar_url = a.clone();
        }
        Ok(u.clone())
    }

    async fn set_last_seen(&self, id: UserId, at: Timestamp) -> Result<()> {
        let mut g = self.lock()?;
        let u = g.users.get_mut(&id).ok_or_else(|| Error::not_found("user"))?;
        u.last_seen_at = Some(at);
        Ok(())
    }

    async fn create_session(&self, session: &Session) -> Result<()> {
        let mut g = self.lock()?;
        if g.sessions.contains_key(&session.id) {
            return Err(Error::conflict("session exists"));
        }
        g.sessions.insert(session.id, session.clone());
        Ok(())
    }

    async fn get_session(&self, id: SessionId) -> Result<Option<Session>> {
        Ok(self.lock()?.sessions.get(&id).cloned())
    }

    async fn rotate_session(
        &self,
        id: SessionId,
        old_hash: &str,
        new_hash: &str,
        expires_at: Timestamp,
    ) -> Result<bool> {
        let mut g = self.lock()?;
        match g.sessions.get_mut(&id) {
            Some(s) if s.refresh_hash == old_hash => {
                s.refresh_hash = new_hash.to_owned();
                s.expires_at = expires_at;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete_session(&self, id: SessionId) -> Result<bool> {
        let mut g = self.lock()?;
        g.push_devices.remove(&id);
        Ok(g.sessions.remove(&id).is_some())
    }

    async fn delete_user_sessions(&self, user: UserId) -> Result<u64> {
        let mut g = self.lock()?;
        let before = g.sessions.len();
        g.sessions.retain(|_, s| s.user_id != user);
        let Inner {
            sessions, push_devices, ..
        } = &mut *g;
        push_devices.retain(|sid, _| sessions.contains_key(sid));
        Ok((before - g.sessions.len()) as u64)
    }

    async fn add_contact(&self, owner: UserId, contact: UserId, _now: Timestamp) -> Result<Option<Change>> {
        let mut g = self.lock()?;
        let added = g.contacts.insert((owner, contact));
        Ok(added.then(|| g.record(None, Some(owner), ChangeKind::ContactAdded { user_id: contact })))
    }

    async fn remove_contact(&self, owner: UserId, contact: UserId) -> Result<Option<Change>> {
        let mut g = self.lock()?;
        let removed = g.contacts.remove(&(owner, contact));
        Ok(removed.then(|| g.record(None, Some(owner), ChangeKind::ContactRemoved { user_id: contact })))
    }

    async fn list_contacts(&self, owner: UserId) -> Result<Vec<User>> {
        let g = self.lock()?;
        Ok(g.users_sorted(g.contacts.iter().filter(|(o, _)| *o == owner).map(|(_, c)| *c)))
    }

    async fn contact_owners(&self, user: UserId) -> Result<Vec<UserId>> {
        let g = self.lock()?;
        Ok(g.contacts.iter().filter(|(_, c)| *c == user).map(|(o, _)| *o).collect())
    }

    async fn block(&self, blocker: UserId, blocked: UserId, _now: Timestamp) -> Result<Option<Change>> {
        let mut g = self.lock()?;
        let added = g.blocks.insert((blocker, blocked));
        Ok(added.then(|| g.record(None, Some(blocker), ChangeKind::Blocked { user_id: blocked })))
    }

    async fn unblock(&self, blocker: UserId, blocked: UserId) -> Result<Option<Change>> {
        let mut g = self.lock()?;
        let removed = g.blocks.remove(&(blocker, blocked));
        Ok(removed.then(|| g.record(None, Some(blocker), ChangeKind::Unblocked { user_id: blocked })))
    }

    async fn list_blocked(&self, blocker: UserId) -> Result<Vec<User>> {
        let g = self.lock()?;
        Ok(g.users_sorted(g.blocks.iter().filter(|(b, _)| *b == blocker).map(|(_, x)| *x)))
    }

    async fn is_blocked_either_way(&self, a: UserId, b: UserId) -> Result<bool> {
        let g = self.lock()?;
        Ok(g.blocks.contains(&(a, b)) || g.blocks.contains(&(b, a)))
    }

    async fn blocked_either_way(&self, user: UserId) -> Result<Vec<UserId>> {
        let g = self.lock()?;
        let set: BTreeSet<UserId> = g
            .blocks
            .iter()
            .filter_map(|&(a, b)| {
                if a == user {
                    Some(b)
                } else if b == user {
                    Some(a)
                } else {
                    None
                }
            })
            .collect();
        Ok(set.into_iter().collect())
    }

    async fn create_conversation(&self, new: &NewConversation) -> Result<(Conversation, Vec<Change>)> {
        let mut g = self.lock()?;
        let key = if new.kind == ConversationKind::Direct {
            let [(a, _), (b, _)] = new.members.as_slice() else {
                return Err(Error::invalid(
                    "members",
                    "a direct conversation has exactly two members",
                ));
            };
            let key = direct_pair(*a, *b);
            if let Some(id) = g.directs.get(&key) {
                let existing = g
                    .conversations
                    .get(id)
                    .cloned()
                    .ok_or_else(|| Error::internal("direct index dangling"))?;
                return Ok((existing, Vec::new()));
            }
            Some(key)
        } else {
            None
        };
        if g.conversations.contains_key(&new.id) {
            return Err(Error::conflict("conversation id exists"));
        }
        let conv = Conversation {
            id: new.id,
            kind: new.kind,
            title: new.title.clone(),
            avatar_url: new.avatar_url.clone(),
            created_by: new.created_by,
            created_at: new.created_at,
            last_seq: 0,
        };
        let mut members = Vec::with_capacity(new.members.len());
        for &(user_id, role) in &new.members {
            if members.iter().any(|m: &Member| m.user_id == user_id) {
                continue;
            }
            members.push(Member {
                conversation_id: new.id,
                user_id,
                role,
                archived: false,
                delivered_seq: 0,
                read_seq: 0,
                joined_at: new.created_at,
                joined_seq: 0,
            });
        }
        let mut changes = Vec::with_capacity(members.len() + 1);
        for m in &members {
            let change = g.record(
                Some(new.id),
                None,
                ChangeKind::MemberJoined {
                    user_id: m.user_id,
                    role: m.role,
                },
            );
            g.join(new.id, m.user_id, change.pos);
            changes.push(change);
        }
        changes.push(g.record(
            Some(new.id),
            None,
            ChangeKind::ConversationCreated {
                conversation: conv.clone(),
            },
        ));
        if let Some(key) = key {
            g.directs.insert(key, new.id);
        }
        g.members.insert(new.id, members);
        g.messages.insert(new.id, Vec::new());
        g.conversations.insert(new.id, conv.clone());
        Ok((conv, changes))
    }

    async fn find_direct(&self, a: UserId, b: UserId) -> Result<Option<Conversation>> {
        let g = self.lock()?;
        Ok(g.directs
            .get(&direct_pair(a, b))
            .and_then(|id| g.conversations.get(id))
            .cloned())
    }

    async fn get_conversation(&self, id: ConversationId) -> Result<Option<Conversation>> {
        Ok(self.lock()?.conversations.get(&id).cloned())
    }

    async fn get_member(&self, conversation: ConversationId, user: UserId) -> Result<Option<Member>> {
        Ok(self.lock()?.member(conversation, user).cloned())
    }

    async fn list_members(&self, conversation: ConversationId) -> Result<Vec<Member>> {
        let g = self.lock()?;
        let mut v = g.members.get(&conversation).cloned().unwrap_or_default();
        v.sort_by(|a, b| a.joined_at.cmp(&b.joined_at).then(a.user_id.cmp(&b.user_id)));
        Ok(v)
    }

    async fn add_members(
        &self,
        conversation: ConversationId,
        members: &[(UserId, Role)],
        now: Timestamp,
    ) -> Result<(Vec<Member>, Vec<Change>)> {
        let mut g = self.lock()?;
        let last_seq = g
            .conversations
            .get(&conversation)
            .ok_or_else(|| Error::not_found("conversation"))?
            .last_seq;
        let mut added = Vec::new();
        let mut changes = Vec::new();
        for &(user_id, role) in members {
            if g.member(conversation, user_id).is_some() {
                continue;
            }
            let m = Member {
                conversation_id: conversation,
                user_id,
                role,
                archived: false,
                delivered_seq: last_seq,
                read_seq: last_seq,
                joined_at: now,
                joined_seq: last_seq,
            };
            let change = g.record(Some(conversation), None, ChangeKind::MemberJoined { user_id, role });
            g.join(conversation, user_id, change.pos);
            g.members.entry(conversation).or_default().push(m.clone());
            added.push(m);
            changes.push(change);
        }
        Ok((added, changes))
    }

    async fn remove_member(&self, conversation: ConversationId, user: UserId, by: UserId) -> Result<Vec<Change>> {
        let mut g = self.lock()?;
        let Some(ms) = g.members.get_mut(&conversation) else {
            return Ok(Vec::new());
        };
        let before = ms.len();
        ms.retain(|m| m.user_id != user);
        if ms.len() == before {
            return Ok(Vec::new());
        }
        g.leave(conversation, user);
        g.pins.remove(&(user, conversation));
        let kind = ChangeKind::MemberLeft { user_id: user, by };
        let everyone = g.record(Some(conversation), None, kind.clone());
        let removed = g.record(Some(conversation), Some(user), kind);
        Ok(vec![everyone, removed])
    }

    async fn set_role(
        &self,
        conversation: ConversationId,
        user: UserId,
        role: Role,
    ) -> Result<(Member, Option<Change>)> {
        let mut g = self.lock()?;
        let m = g.member_mut(conversation, user)?;
        let changed = m.role != role;
        m.role = role;
        let m = m.clone();
        let change = changed.then(|| {
            g.record(
                Some(conversation),
                None,
                ChangeKind::RoleChanged { user_id: user, role },
            )
        });
        Ok((m, change))
    }

    async fn set_archived(
        &self,
        conversation: ConversationId,
        user: UserId,
        archived: bool,
    ) -> Result<(Member, Option<Change>)> {
        let mut g = self.lock()?;
        let m = g.member_mut(conversation, user)?;
        let changed = m.archived != archived;
        m.archived = archived;
        let m = m.clone();
        let change = changed.then(|| g.record(Some(conversation), Some(user), ChangeKind::Archived { archived }));
        Ok((m, change))
    }

    async fn update_conversation(
        &self,
        conversation: ConversationId,
        title: Option<String>,
        avatar_url: Option<Option<String>>,
    ) -> Result<(Conversation, Option<Change>)> {
        let mut g = self.lock()?;
        let c = g
            .conversations
            .get_mut(&conversation)
            .ok_or_else(|| Error::not_found("conversation"))?;
        let before = (c.title.clone(), c.avatar_url.clone());
        if let Some(t) = title {
            c.title = Some(t);
        }
        if let Some(a) = avatar_url {
            c.avatar_url = a;
        }
        let c = c.clone();
        let change = ((c.title.clone(), c.avatar_url.clone()) != before).then(|| {
            g.record(
                Some(conversation),
                None,
                ChangeKind::ConversationUpdated {
                    title: c.title.clone(),
                    avatar_url: c.avatar_url.clone(),
                },
            )
        });
        Ok((c, change))
    }

    async fn list_conversations(&self, user: UserId, archived: bool, limit: u32) -> Result<Vec<ConversationSummary>> {
        let g = self.lock()?;
        let mut rows: Vec<(Option<Timestamp>, Timestamp, ConversationSummary)> = Vec::new();
        for (cid, ms) in &g.members {
            let Some(me) = ms.iter().find(|m| m.user_id == user) else {
                continue;
            };
            if me.archived != archived {
                continue;
            }
            let Some(conv) = g.conversations.get(cid) else { continue };
            let all = g.messages.get(cid).map(Vec::as_slice).unwrap_or(&[]);
            let activity = all.last().map(|m| m.created_at).unwrap_or(conv.created_at);
            let last_message = all
                .iter()
                .rev()
                .take_while(|m| m.seq > me.joined_seq)
                .find(|m| !g.hidden.contains(&(user, *cid, m.seq)))
                .cloned();
            let mut members: Vec<&Member> = ms.iter().collect();
            members.sort_by(|a, b| a.joined_at.cmp(&b.joined_at).then(a.user_id.cmp(&b.user_id)));
            let members = members
                .into_iter()
                .map(|m| {
                    let u = g.users.get(&m.user_id);
                    MemberInfo {
                        user_id: m.user_id,
                        role: m.role,
                        display_name: u.map(|u| u.display_name.clone()).unwrap_or_default(),
                        avatar_url: u.and_then(|u| u.avatar_url.clone()),
                        delivered_seq: m.delivered_seq,
                        read_seq: m.read_seq,
                    }
                })
                .collect();
            let unread_mentions = all
                .iter()
                .filter(|m| m.seq > me.read_seq && !g.hidden.contains(&(user, *cid, m.seq)))
                .filter(|m| m.content.as_ref().is_some_and(|c| c.mentioned().contains(&user)))
                .count() as i64;
            let pinned_at = g.pins.get(&(user, *cid)).copied();
            rows.push((
                pinned_at,
                activity,
                ConversationSummary {
                    conversation: conv.clone(),
                    me: me.clone(),
                    last_message,
                    unread: (conv.last_seq - me.read_seq).max(0),
                    muted: false,
                    muted_until: None,
                    members,
                    unread_mentions,
                    pinned: pinned_at.is_some(),
                    pinned_at,
                },
            ));
        }
        // Pinned first (newest pin first), then newest activity; `None < Some` reversed.
        rows.sort_by(|a, b| {
            (b.0.is_some(), b.0, b.1, b.2.conversation.id).cmp(&(a.0.is_some(), a.0, a.1, a.2.conversation.id))
        });
        Ok(rows.into_iter().take(limit as usize).map(|(_, _, s)| s).collect())
    }

    async fn insert_message(&self, new: &NewMessage) -> Result<(Message, Option<Change>)> {
        let mut g = self.lock()?;
        let key = (new.sender_id, new.client_msg_id.clone());
        if let Some(&(c, seq)) = g.by_client_id.get(&key) {
            let existing = g
                .message(c, seq)
                .cloned()
                .ok_or_else(|| Error::internal("client id index dangling"))?;
            return Ok((existing, None));
        }
        let conv = g
            .conversations
            .get_mut(&new.conversation_id)
            .ok_or_else(|| Error::not_found("conversation"))?;
        conv.last_seq += 1;
        let seq = conv.last_seq;
        let message = Message {
            id: new.id,
            conversation_id: new.conversation_id,
            seq,
            sender_id: new.sender_id,
            client_msg_id: new.client_msg_id.clone(),
            content: Some(new.content.clone()),
            reply_to_seq: new.reply_to_seq,
            created_at: new.created_at,
            deleted_at: None,
            edited_at: None,
            reactions: Vec::new(),
        };
        g.messages.entry(new.conversation_id).or_default().push(message.clone());
        g.by_client_id.insert(key, (new.conversation_id, seq));
        if let Content::Media(m) = &new.content {
            g.media_refs
                .entry(m.blob_key.clone())
                .or_default()
                .push((new.conversation_id, seq));
        }
        if let Ok(m) = g.member_mut(new.conversation_id, new.sender_id) {
            m.delivered_seq = m.delivered_seq.max(seq);
            m.read_seq = m.read_seq.max(seq);
        }
        let change = g.record(
            Some(new.conversation_id),
            None,
            ChangeKind::Message {
                message: message.clone(),
            },
        );
        Ok((message, Some(change)))
    }

    async fn get_message(&self, conversation: ConversationId, seq: i64) -> Result<Option<Message>> {
        Ok(self.lock()?.message(conversation, seq).cloned())
    }

    async fn history(&self, conversation: ConversationId, viewer: UserId, query: HistoryQuery) -> Result<Vec<Message>> {
        let g = self.lock()?;
        let floor = g.member(conversation, viewer).map(|m| m.joined_seq).unwrap_or(0);
        let all = g.messages.get(&conversation).map(Vec::as_slice).unwrap_or(&[]);
        let visible = |m: &&Message| m.seq > floor && !g.hidden.contains(&(viewer, conversation, m.seq));
        let limit = query.limit as usize;
        let mut page: Vec<Message> = match query.direction {
            HistoryDirection::Before => {
                let anchor = query.anchor.unwrap_or(i64::MAX);
                all.iter()
                    .rev()
                    .filter(|m| m.seq < anchor)
                    .filter(visible)
                    .take(limit)
                    .cloned()
                    .collect()
            }
            HistoryDirection::After => {
                let anchor = query.anchor.unwrap_or(0);
                all.iter()
                    .filter(|m| m.seq > anchor)
                    .filter(visible)
                    .take(limit)
                    .cloned()
                    .collect()
            }
        };
        page.sort_by_key(|m| m.seq);
        Ok(page)
    }

    async fn delete_message_for_everyone(
        &self,
        conversation: ConversationId,
        seq: i64,
        now: Timestamp,
    ) -> Result<(Message, Option<Change>)> {
        let mut g = self.lock()?;
        let m = g
            .messages
            .get_mut(&conversation)
            .and_then(|v| if seq >= 1 { v.get_mut((seq - 1) as usize) } else { None })
            .ok_or_else(|| Error::not_found("message"))?;
        let first = m.deleted_at.is_none();
        if first {
            m.content = None;
            m.deleted_at = Some(now);
        }
        let m = m.clone();
        let change = first.then(|| {
            g.record(
                Some(conversation),
                None,
                ChangeKind::MessageDeleted { seq, deleted_at: now },
            )
        });
        Ok((m, change))
    }

    async fn hide_message(&self, user: UserId, conversation: ConversationId, seq: i64) -> Result<Option<Change>> {
        let mut g = self.lock()?;
        if g.message(conversation, seq).is_none() {
            return Err(Error::not_found("message"));
        }
        let first = g.hidden.insert((user, conversation, seq));
        Ok(first.then(|| g.record(Some(conversation), Some(user), ChangeKind::MessageHidden { seq })))
    }

    async fn search_messages(&self, viewer: UserId, q: &MessageSearch) -> Result<Vec<Message>> {
        let g = self.lock()?;
        let convs: Vec<ConversationId> = match q.conversation {
            Some(c) => vec![c],
            None => g
                .user_convs
                .get(&viewer)
                .map(|s| s.iter().copied().collect())
                .unwrap_or_default(),
        };
        let mut hits: Vec<(usize, &Message)> = Vec::new();
        for c in convs {
            let Some(me) = g.member(c, viewer) else { continue };
            let all = g.messages.get(&c).map(Vec::as_slice).unwrap_or(&[]);
            for m in all.iter().filter(|m| m.seq > me.joined_seq && m.deleted_at.is_none()) {
                if g.hidden.contains(&(viewer, c, m.seq)) {
                    continue;
                }
                let Some(text) = search::searchable_text(m.content.as_ref()) else {
                    continue;
                };
                if let Some(score) = search::occurrences(text, &q.terms) {
                    hits.push((score, m));
                }
            }
        }
        hits.sort_by(|(sa, a), (sb, b)| {
            sb.cmp(sa)
                .then(b.created_at.cmp(&a.created_at))
                .then(b.seq.cmp(&a.seq))
                .then(b.conversation_id.cmp(&a.conversation_id))
        });
        Ok(hits
            .into_iter()
            .skip(q.offset as usize)
            .take(q.limit as usize)
            .map(|(_, m)| m.clone())
            .collect())
    }

    async fn update_receipts(
        &self,
        conversation: ConversationId,
        user: UserId,
        delivered: Option<i64>,
        read: Option<i64>,
    ) -> Result<(Member, Option<Change>)> {
        let mut g = self.lock()?;
        let last_seq = g
            .conversations
            .get(&conversation)
            .ok_or_else(|| Error::not_found("member"))?
            .last_seq;
        let m = g.member_mut(conversation, user)?;
        let before = (m.delivered_seq, m.read_seq);
        (m.delivered_seq, m.read_seq) = m.merged_receipts(delivered, read, last_seq);
        let m = m.clone();
        let change = ((m.delivered_seq, m.read_seq) != before).then(|| {
            g.record(
                Some(conversation),
                None,
                ChangeKind::Receipt {
                    user_id: user,
                    delivered_seq: m.delivered_seq,
                    read_seq: m.read_seq,
                },
            )
        });
        Ok((m, change))
    }

    async fn edit_message(
        &self,
        conversation: ConversationId,
        seq: i64,
        content: &Content,
        now: Timestamp,
    ) -> Result<(Message, Option<Change>)> {
        let mut g = self.lock()?;
        let m = g
            .messages
            .get_mut(&conversation)
            .and_then(|v| if seq >= 1 { v.get_mut((seq - 1) as usize) } else { None })
            .ok_or_else(|| Error::not_found("message"))?;
        if m.deleted_at.is_some() {
            return Err(Error::conflict("message deleted"));
        }
        if m.content.as_ref() == Some(content) {
            return Ok((m.clone(), None));
        }
        m.content = Some(content.clone());
        m.edited_at = Some(now);
        let m = m.clone();
        let change = g.record(
            Some(conversation),
            None,
            ChangeKind::MessageEdited {
                seq,
                content: Some(content.clone()),
                edited_at: now,
            },
        );
        Ok((m, Some(change)))
    }

    async fn add_reaction(
        &self,
        conversation: ConversationId,
        seq: i64,
        user: UserId,
        emoji: &str,
        now: Timestamp,
        max_distinct: u32,
    ) -> Result<Option<Change>> {
        let mut g = self.lock()?;
        let m = g
            .message(conversation, seq)
            .ok_or_else(|| Error::not_found("message"))?;
        if m.deleted_at.is_some() {
            return Err(Error::conflict("message deleted"));
        }
        let list = g.reactions.entry((conversation, seq)).or_default();
        if list.iter().any(|r| r.user_id == user && r.emoji == emoji) {
            return Ok(None);
        }
        if !list.iter().any(|r| r.emoji == emoji) {
            let distinct: HashSet<&str> = list.iter().map(|r| r.emoji.as_str()).collect();
            if distinct.len() >= max_distinct as usize {
                return Err(Error::TooLarge {
                    what: "reactions".into(),
                    limit: u64::from(max_distinct),
                });
            }
        }
        list.push(StoredReaction {
            seq,
            user_id: user,
            emoji: emoji.to_owned(),
            created_at: now,
        });
        let kind = ChangeKind::ReactionAdded {
            seq,
            user_id: user,
            emoji: emoji.to_owned(),
        };
        Ok(Some(g.record(Some(conversation), None, kind)))
    }

    async fn remove_reaction(
        &self,
        conversation: ConversationId,
        seq: i64,
        user: UserId,
        emoji: &str,
    ) -> Result<Option<Change>> {
        let mut g = self.lock()?;
        if g.message(conversation, seq).is_none() {
            return Err(Error::not_found("message"));
        }
        let Some(list) = g.reactions.get_mut(&(conversation, seq)) else {
            return Ok(None);
        };
        let before = list.len();
        list.retain(|r| !(r.user_id == user && r.emoji == emoji));
        if list.len() == before {
            return Ok(None);
        }
        let kind = ChangeKind::ReactionRemoved {
            seq,
            user_id: user,
            emoji: emoji.to_owned(),
        };
        Ok(Some(g.record(Some(conversation), None, kind)))
    }

    async fn reactions(&self, conversation: ConversationId, from: i64, to: i64) -> Result<Vec<StoredReaction>> {
        let g = self.lock()?;
        let mut out: Vec<StoredReaction> = g
            .reactions
            .iter()
            .filter(|((c, seq), _)| *c == conversation && (from..=to).contains(seq))
            .filter(|((c, seq), _)| g.message(*c, *seq).is_some_and(|m| m.deleted_at.is_none()))
            .flat_map(|(_, v)| v.iter().cloned())
            .collect();
        out.sort_by(|a, b| (a.seq, a.created_at, a.user_id, &a.emoji).cmp(&(b.seq, b.created_at, b.user_id, &b.emoji)));
        Ok(out)
    }

    async fn register_push_device(&self, device: &PushDevice) -> Result<()> {
        let mut g = self.lock()?;
        if !g.sessions.contains_key(&device.session_id) {
            return Err(Error::not_found("session"));
        }
        g.push_devices.retain(|sid, d| {
            *sid == device.session_id || (d.platform, d.token.as_str()) != (device.platform, device.token.as_str())
        });
        g.push_devices.insert(device.session_id, device.clone());
        Ok(())
    }

    async fn unregister_push_device(&self, session: SessionId) -> Result<bool> {
        Ok(self.lock()?.push_devices.remove(&session).is_some())
    }

    async fn push_devices(&self, user: UserId, now: Timestamp) -> Result<Vec<PushDevice>> {
        let g = self.lock()?;
        let mut out: Vec<PushDevice> = g
            .push_devices
            .values()
            .filter(|d| d.user_id == user)
            .filter(|d| g.sessions.get(&d.session_id).is_some_and(|s| s.expires_at > now))
            .cloned()
            .collect();
        out.sort_by_key(|d| d.session_id);
        Ok(out)
    }

    async fn remove_push_token(&self, platform: Platform, token: &str) -> Result<u64> {
        let mut g = self.lock()?;
        let before = g.push_devices.len();
        g.push_devices
            .retain(|_, d| (d.platform, d.token.as_str()) != (platform, token));
        Ok((before - g.push_devices.len()) as u64)
    }

    async fn set_mute(
        &self,
        conversation: ConversationId,
        user: UserId,
        muted: bool,
        until: Option<Timestamp>,
    ) -> Result<Option<Change>> {
        let mut g = self.lock()?;
        if !g.join_pos.contains_key(&(conversation, user)) {
            return Err(Error::not_found("member"));
        }
        let before = g.mutes.get(&(conversation, user)).copied();
        let after = muted.then_some(until);
        if before == after {
            return Ok(None);
        }
        match after {
            Some(u) => g.mutes.insert((conversation, user), u),
            None => g.mutes.remove(&(conversation, user)),
        };
        let until = if muted { until } else { None };
        Ok(Some(g.record(
            Some(conversation),
            Some(user),
            ChangeKind::Muted { muted, until },
        )))
    }

    async fn set_pin(
        &self,
        conversation: ConversationId,
        user: UserId,
        pinned: bool,
        now: Timestamp,
        max_pins: u32,
    ) -> Result<(Option<Timestamp>, Option<Change>)> {
        let mut g = self.lock()?;
        if !g.join_pos.contains_key(&(conversation, user)) {
            return Err(Error::not_found("member"));
        }
        let before = g.pins.get(&(user, conversation)).copied();
        if pinned {
            if before.is_some() {
                return Ok((before, None));
            }
            let count = g.pins.keys().filter(|(u, _)| *u == user).count();
            if count >= max_pins as usize {
                return Err(Error::too_large("pins", u64::from(max_pins)));
            }
            g.pins.insert((user, conversation), now);
            let kind = ChangeKind::Pinned {
                pinned: true,
                at: Some(now),
            };
            Ok((Some(now), Some(g.record(Some(conversation), Some(user), kind))))
        } else {
            if before.is_none() {
                return Ok((None, None));
            }
            g.pins.remove(&(user, conversation));
            let kind = ChangeKind::Pinned {
                pinned: false,
                at: None,
            };
            Ok((None, Some(g.record(Some(conversation), Some(user), kind))))
        }
    }

    async fn mutes(&self, conversation: ConversationId) -> Result<Vec<Mute>> {
        let g = self.lock()?;
        let mut out: Vec<Mute> = g
            .mutes
            .iter()
            .filter(|((c, u), _)| *c == conversation && g.join_pos.contains_key(&(*c, *u)))
            .map(|((_, u), until)| Mute {
                user_id: *u,
                until: *until,
            })
            .collect();
        out.sort_by_key(|m| m.user_id);
        Ok(out)
    }

    async fn user_mutes(&self, user: UserId) -> Result<Vec<(ConversationId, Option<Timestamp>)>> {
        let g = self.lock()?;
        let mut out: Vec<(ConversationId, Option<Timestamp>)> = g
            .mutes
            .iter()
            .filter(|((_, u), _)| *u == user)
            .map(|((c, _), until)| (*c, *until))
            .collect();
        out.sort_by_key(|(c, _)| *c);
        Ok(out)
    }

    async fn total_unread(&self, user: UserId) -> Result<i64> {
        let g = self.lock()?;
        let mut total = 0;
        for c in g.user_convs.get(&user).into_iter().flatten() {
            let last = g.conversations.get(c).map_or(0, |c| c.last_seq);
            if let Some(m) = g.members.get(c).and_then(|ms| ms.iter().find(|m| m.user_id == user)) {
                total += (last - m.read_seq).max(0);
            }
        }
        Ok(total)
    }

    async fn insert_blob(&self, meta: &BlobMeta) -> Result<()> {
        let mut g = self.lock()?;
        if g.blobs.contains_key(&meta.key) {
            return Err(Error::conflict("blob key exists"));
        }
        g.blobs.insert(meta.key.clone(), meta.clone());
        Ok(())
    }

    async fn get_blob(&self, key: &str) -> Result<Option<BlobMeta>> {
        Ok(self.lock()?.blobs.get(key).cloned())
    }

    async fn delete_blob(&self, key: &str) -> Result<bool> {
        Ok(self.lock()?.blobs.remove(key).is_some())
    }

    async fn blob_shared_with(&self, key: &str, user: UserId) -> Result<bool> {
        let g = self.lock()?;
        let Some(refs) = g.media_refs.get(key) else {
            return Ok(false);
        };
        Ok(refs.iter().any(|&(c, seq)| {
            let referenced = matches!(
                g.message(c, seq).and_then(|m| m.content.as_ref()),
                Some(Content::Media(m)) if m.blob_key == key
            );
            referenced && g.member(c, user).is_some_and(|m| seq > m.joined_seq)
        }))
    }

    async fn sync(&self, user: UserId, since: SyncCursor, limit: u32) -> Result<SyncPage> {
        let g = self.lock()?;
        let mut positions = g.visible_after(user, since.max(0), limit as usize);
        let limited = positions.len() > limit as usize;
        positions.truncate(limit as usize);
        let changes: Vec<Change> = positions
            .iter()
            .filter_map(|&p| g.changes.get((p - 1) as usize))
            .inspect(|r| debug_assert!(g.visible_to(r, user)))
            .map(|r| g.resolve(r))
            .collect();
        let next = if limited {
            changes.last().map(|c| c.pos).unwrap_or(since)
        } else {
            since.max(g.changes.len() as SyncCursor)
        };
        Ok(SyncPage { changes, next, limited })
    }

    async fn latest_pos(&self) -> Result<SyncCursor> {
        Ok(self.lock()?.changes.len() as SyncCursor)
    }

    async fn audience(&self, from: SyncCursor, to: SyncCursor) -> Result<Vec<UserId>> {
        let g = self.lock()?;
        let (lo, hi) = (from.max(0) as usize, (to.max(0) as usize).min(g.changes.len()));
        let mut out = BTreeSet::new();
        let mut convs = HashSet::new();
        for r in g.changes.get(lo..hi).unwrap_or(&[]) {
            match (r.target, r.conversation_id) {
                (Some(t), _) => {
                    out.insert(t);
                }
                (None, Some(c)) => {
                    convs.insert(c);
                }
                (None, None) => {}
            }
        }
        for c in convs {
            // The conversation's last change in the range: a member sees a change in the
            // range iff they joined at or before its last one.
            let Some(last) = g.conv_changes.get(&c).and_then(|list| {
                let end = list.partition_point(|&p| p <= to);
                list[..end].last().copied().filter(|&p| p > from)
            }) else {
                continue;
            };
            for m in g.members.get(&c).into_iter().flatten() {
                if g.join_pos.get(&(c, m.user_id)).is_some_and(|&jp| jp <= last) {
                    out.insert(m.user_id);
                }
            }
        }
        Ok(out.into_iter().collect())
    }
}

#[cfg(test)]
mod sync_index_tests {
    use super::*;
    use crate::ids::{MessageId, Phone};
    use crate::model::{Content, ConversationKind, NewMessage, Role};
    use crate::ports::NewConversation;

    /// The indexed `sync` answers exactly what a scan of the whole log with `visible_to`
    /// answers, for every user, cursor and page size, across joins, leaves, re-joins and
    /// targeted changes.
    #[test]
    fn indexed_sync_matches_a_full_scan() {
        futures::executor::block_on(async {
            let s = MemoryStore::new();
            let mut users = Vec::new();
            for i in 0..4 {
                let phone = Phone::parse(&format!("+1555000000{i}")).expect("phone");
                users.push(
                    s.get_or_create_user(&phone, UserId::new(i), "u", 1)
                        .await
                        .expect("user")
                        .0
                        .id,
                );
            }
            let (a, b, c, d) = (users[0], users[1], users[2], users[3]);
            let mut convs = Vec::new();
            for (n, members) in [vec![a, b, c], vec![a, d]].into_iter().enumerate() {
                let id = ConversationId::new(n as i64);
                let mut m: Vec<(UserId, Role)> = members.iter().map(|u| (*u, Role::Member)).collect();
                m[0].1 = Role::Owner;
                s.create_conversation(&NewConversation {
                    id,
                    kind: ConversationKind::Group,
                    title: Some("g".into()),
                    avatar_url: None,
                    created_by: a,
                    created_at: 1,
                    members: m,
                })
                .await
                .expect("conversation");
                convs.push(id);
            }
            let send = |conv: ConversationId, from: UserId, n: u32| NewMessage {
                id: MessageId::new(n as i64),
                conversation_id: conv,
                sender_id: from,
                client_msg_id: format!("m{n}"),
                content: Content::text("t"),
                reply_to_seq: None,
                created_at: 1,
            };
            let mut n = 0;
            let mut step = |k: u32| {
                n += 1;
                k * 1000 + n
            };
            for i in 0..3 {
                s.insert_message(&send(convs[0], a, step(i))).await.expect("send");
                s.insert_message(&send(convs[1], d, step(i))).await.expect("send");
            }
            s.remove_member(convs[0], c, a).await.expect("remove");
            s.insert_message(&send(convs[0], b, step(7))).await.expect("send");
            s.add_contact(b, c, 1).await.expect("contact");
            s.add_members(convs[0], &[(c, Role::Member), (d, Role::Admin)], 2)
                .await
                .expect("re-add");
            s.insert_message(&send(convs[0], c, step(8))).await.expect("send");
            s.remove_member(convs[1], d, a).await.expect("remove");
            s.insert_message(&send(convs[1], a, step(9))).await.expect("send");

            let latest = s.latest_pos().await.expect("latest");
            for user in users {
                for since in 0..=latest + 1 {
                    for limit in [1u32, 2, 3, 1000] {
                        let got = s.sync(user, since, limit).await.expect("sync");
                        let g = s.lock().expect("lock");
                        let all: Vec<SyncCursor> = g
                            .changes
                            .iter()
                            .filter(|r| r.pos > since && g.visible_to(r, user))
                            .map(|r| r.pos)
                            .collect();
                        let want: Vec<SyncCursor> = all.iter().copied().take(limit as usize).collect();
                        let positions: Vec<SyncCursor> = got.changes.iter().map(|c| c.pos).collect();
                        assert_eq!(positions, want, "user {user} since {since} limit {limit}");
                        assert_eq!(got.limited, all.len() > limit as usize);
                    }
                }
            }
        });
    }
}
