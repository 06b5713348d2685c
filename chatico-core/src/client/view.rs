use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::ids::{ConversationId, Timestamp, UserId};
use crate::model::{Conversation, ConversationSummary, MemberInfo, Message, Presence, Reaction, Role, UserProfile};
use crate::sync::{Change, ChangeKind, EphemeralSnapshot, Event};

/// How many messages per conversation the view keeps (the newest).
pub const DEFAULT_WINDOW: usize = 500;

/// One conversation as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationView {
    /// The conversation.
    pub conversation: Conversation,
    /// Its members, with enough profile to draw them.
    pub members: Vec<MemberInfo>,
    /// Archived for the caller.
    pub archived: bool,
    /// Pushes muted by the caller (from the `muted` changes of sync).
    #[serde(default)]
    pub muted: bool,
    /// End of the mute (ms since the Unix epoch); `None` = until unmuted.
    #[serde(default)]
    pub muted_until: Option<Timestamp>,
    /// When the caller pinned it (from the list and the `pinned` changes); `None` = not
    /// pinned. Pinned conversations list first.
    #[serde(default)]
    pub pinned_at: Option<Timestamp>,
    /// The server's unread-mention count at the last list load, for seqs up to
    /// `mentions_floor`.
    #[serde(default)]
    pub mentions_base: i64,
    /// The conversation's `last_seq` when `mentions_base` was counted.
    #[serde(default)]
    pub mentions_floor: i64,
    /// Seqs of known messages from others that mention the caller (live or loaded).
    #[serde(default)]
    pub mention_seqs: BTreeSet<i64>,
    /// The caller's own watermarks.
    pub delivered_seq: i64,
    /// The caller's read watermark.
    pub read_seq: i64,
    /// The newest message, if any.
    pub last_message: Option<Message>,
    /// The newest messages known, by seq (a window, not the whole history).
    pub messages: BTreeMap<i64, Message>,
    /// Who is typing, until when.
    pub typing: BTreeMap<UserId, Timestamp>,
}

impl ConversationView {
    /// `last_seq - read_seq`, at least 0.
    pub fn unread(&self) -> i64 {
        (self.conversation.last_seq - self.read_seq).max(0)
    }

    /// Messages mentioning the caller above their `read_seq`: the server's count at the last
    /// list load (until the caller reads past it) plus the mentions known since.
    pub fn unread_mentions(&self) -> i64 {
        let base = if self.read_seq < self.mentions_floor {
            self.mentions_base
        } else {
            0
        };
        let from = self.read_seq.max(self.mentions_floor);
        base + self.mention_seqs.range(from + 1..).count() as i64
    }

    /// Pinned by the caller.
    pub fn pinned(&self) -> bool {
        self.pinned_at.is_some()
    }

    /// Users typing at `now` (expired entries are ignored).
    pub fn typing_at(&self, now: Timestamp) -> Vec<UserId> {
        self.typing
            .iter()
            .filter(|(_, until)| **until > now)
            .map(|(u, _)| *u)
            .collect()
    }

    fn activity(&self) -> Timestamp {
        self.last_message
            .as_ref()
            .map(|m| m.created_at)
            .unwrap_or(self.conversation.created_at)
    }

    fn member_mut(&mut self, user: UserId) -> Option<&mut MemberInfo> {
        self.members.iter_mut().find(|m| m.user_id == user)
    }
}

/// What an applied change or event altered, for UI callbacks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ViewUpdate {
    /// A conversation appeared, changed or lost a message/receipt/typing state.
    Conversation {
        /// The conversation that changed.
        conversation_id: ConversationId,
    },
    /// The caller left or was removed: the conversation is gone from the view.
    ConversationRemoved {
        /// The conversation removed from the view.
        conversation_id: ConversationId,
    },
    /// A change concerns a conversation the view does not know yet (e.g. the caller was added
    /// to a group): fetch it (`GET /v1/conversations/{id}`) and load it.
    ConversationUnknown {
        /// The conversation to fetch.
        conversation_id: ConversationId,
    },
    /// Someone's presence or profile changed.
    User {
        /// The user whose presence or profile changed.
        user_id: UserId,
    },
    /// Contacts or blocks changed.
    Contacts,
}

/// The client's local view, kept current from events. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalView {
    me: UserId,
    window: usize,
    conversations: HashMap<ConversationId, ConversationView>,
    /// Members announced before their conversation (`MemberJoined` precedes `ConversationCreated`).
    pending_members: HashMap<ConversationId, Vec<(UserId, Role)>>,
    /// Messages of a conversation not loaded yet (they arrived before the list did), kept
    /// for when it loads.
    #[serde(default)]
    pending_messages: HashMap<ConversationId, BTreeMap<i64, Message>>,
    presence: HashMap<UserId, Presence>,
    profiles: HashMap<UserId, UserProfile>,
    contacts: BTreeSet<UserId>,
    blocked: BTreeSet<UserId>,
    /// Conversations whose own flags (archived, muted, pinned) a change set since the
    /// list being loaded was asked for: that list may predate the change, so the change
    /// wins (every later change reaches the view too).
    #[serde(default, skip)]
    flags_changed: HashSet<ConversationId>,
}

impl LocalView {
    /// An empty view for user `me`.
    pub fn new(me: UserId) -> Self {
        LocalView {
            me,
            window: DEFAULT_WINDOW,
            conversations: HashMap::new(),
            pending_members: HashMap::new(),
            pending_messages: HashMap::new(),
            presence: HashMap::new(),
            profiles: HashMap::new(),
            contacts: BTreeSet::new(),
            blocked: BTreeSet::new(),
            flags_changed: HashSet::new(),
        }
    }

    /// The user this view belongs to.
    pub fn me(&self) -> UserId {
        self.me
    }

    /// Conversations, pinned first (newest pin first), then newest activity; archived ones
    /// only when asked. The server's list order.
    pub fn conversations(&self, archived: bool) -> Vec<&ConversationView> {
        let mut v: Vec<&ConversationView> = self.conversations.values().filter(|c| c.archived == archived).collect();
        v.sort_by(|a, b| {
            (b.pinned(), b.pinned_at, b.activity(), b.conversation.id).cmp(&(
                a.pinned(),
                a.pinned_at,
                a.activity(),
                a.conversation.id,
            ))
        });
        v
    }

    /// One conversation, if known.
    pub fn conversation(&self, id: ConversationId) -> Option<&ConversationView> {
        self.conversations.get(&id)
    }

    /// Known messages of a conversation, ascending seq.
    pub fn messages(&self, id: ConversationId) -> Vec<&Message> {
        self.conversations
            .get(&id)
            .map(|c| c.messages.values().collect())
            .unwrap_or_default()
    }

    /// A user's presence, if known.
    pub fn presence(&self, user: UserId) -> Option<&Presence> {
        self.presence.get(&user)
    }

    /// A user's profile, if known.
    pub fn profile(&self, user: UserId) -> Option<&UserProfile> {
        self.profiles.get(&user)
    }

    /// The caller's contacts.
    pub fn contacts(&self) -> &BTreeSet<UserId> {
        &self.contacts
    }

    /// The users the caller blocked.
    pub fn blocked(&self) -> &BTreeSet<UserId> {
        &self.blocked
    }

    /// Total unread over non-archived conversations.
    pub fn total_unread(&self) -> i64 {
        self.conversations
            .values()
            .filter(|c| !c.archived)
            .map(ConversationView::unread)
            .sum()
    }

    /// A list of conversations is being asked for: from now on, flags that changes set win
    /// over that list's (see [`LocalView::load_summary`]).
    pub fn list_requested(&mut self) {
        self.flags_changed.clear();
    }

    /// Loads (or replaces) conversations from the server's list.
    pub fn load_summaries(&mut self, summaries: Vec<ConversationSummary>) -> Vec<ViewUpdate> {
        summaries.into_iter().map(|s| self.load_summary(s)).collect()
    }

    /// Loads one conversation from the server, keeping messages already known.
    pub fn load_summary(&mut self, s: ConversationSummary) -> ViewUpdate {
        let id = s.conversation.id;
        self.pending_members.remove(&id);
        let old = self.conversations.remove(&id);
        let old_marks = old
            .as_ref()
            .map(|o| (o.conversation.last_seq, o.delivered_seq, o.read_seq));
        let old_flags = old
            .as_ref()
            .filter(|_| self.flags_changed.contains(&id))
            .map(|o| (o.archived, o.muted, o.muted_until, o.pinned_at));
        let (messages, typing, mention_seqs) = old
            .map(|old| (old.messages, old.typing, old.mention_seqs))
            .unwrap_or_default();
        let floor = s.conversation.last_seq;
        let mut view = ConversationView {
            conversation: s.conversation,
            members: s.members,
            archived: s.me.archived,
            muted: s.muted,
            muted_until: s.muted_until,
            pinned_at: s.pinned_at,
            mentions_base: s.unread_mentions,
            mentions_floor: floor,
            mention_seqs,
            delivered_seq: s.me.delivered_seq,
            read_seq: s.me.read_seq,
            last_message: None,
            messages,
            typing,
        };
        // A list fetched over REST may be older than changes applied meanwhile: counters and
        // watermarks never move back.
        if let Some(old) = &old_marks {
            view.conversation.last_seq = view.conversation.last_seq.max(old.0);
            view.delivered_seq = view.delivered_seq.max(old.1);
            view.read_seq = view.read_seq.max(old.2);
        }
        if let Some(f) = old_flags {
            (view.archived, view.muted, view.muted_until, view.pinned_at) = f;
        }
        if let Some(mut m) = s.last_message {
            note_mention(&mut view, self.me, &m);
            // A summary's last message carries no reactions: a copy from history keeps its.
            if m.reactions.is_empty()
                && let Some(old) = view.messages.get_mut(&m.seq)
            {
                m.reactions = std::mem::take(&mut old.reactions);
            }
            view.messages.insert(m.seq, m);
        }
        self.take_pending_messages(&mut view);
        self.trim(&mut view);
        self.conversations.insert(id, view);
        ViewUpdate::Conversation { conversation_id: id }
    }

    /// Replaces the contact and block lists (e.g. from `GET /v1/contacts` and `GET /v1/blocks`).
    pub fn load_contacts(&mut self, contacts: BTreeSet<UserId>, blocked: BTreeSet<UserId>) -> Vec<ViewUpdate> {
        self.contacts = contacts;
        self.blocked = blocked;
        vec![ViewUpdate::Contacts]
    }

    /// Records a user's profile (and its presence fields) fetched from the server.
    pub fn load_profile(&mut self, p: UserProfile) -> ViewUpdate {
        let id = p.id;
        self.presence.entry(id).or_insert(Presence {
            user_id: id,
            online: p.online,
            last_seen_at: p.last_seen_at,
        });
        self.apply_event(&Event::Profile(p));
        ViewUpdate::User { user_id: id }
    }

    /// Applies the ephemeral snapshot a subscription or sync returns: who is online and who
    /// is typing now. Typing state not in the snapshot is dropped (it expired while away).
    pub fn apply_snapshot(&mut self, snapshot: &EphemeralSnapshot) -> Vec<ViewUpdate> {
        let mut updates = Vec::new();
        for p in &snapshot.presence {
            self.presence.insert(p.user_id, p.clone());
            updates.push(ViewUpdate::User { user_id: p.user_id });
        }
        for (id, view) in self.conversations.iter_mut() {
            let before = std::mem::take(&mut view.typing);
            for t in snapshot.typing.iter().filter(|t| t.conversation_id == *id) {
                view.typing.insert(t.user_id, t.expires_at);
            }
            if before != view.typing {
                updates.push(ViewUpdate::Conversation { conversation_id: *id });
            }
        }
        updates
    }

    /// Adds a page of history (e.g. from `GET .../messages`).
    pub fn load_messages(&mut self, id: ConversationId, messages: Vec<Message>) -> Option<ViewUpdate> {
        let mut view = self.conversations.remove(&id)?;
        for m in messages {
            view.conversation.last_seq = view.conversation.last_seq.max(m.seq);
            note_mention(&mut view, self.me, &m);
            view.messages.insert(m.seq, m);
        }
        self.trim(&mut view);
        self.conversations.insert(id, view);
        Some(ViewUpdate::Conversation { conversation_id: id })
    }

    /// Applies a live event. Changes must already have passed [`super::SyncState::accept`].
    pub fn apply_event(&mut self, event: &Event) -> Vec<ViewUpdate> {
        match event {
            Event::Change(c) => self.apply_change(c),
            Event::Typing {
                conversation_id,
                user_id,
                typing,
                expires_at,
            } => {
                let Some(view) = self.conversations.get_mut(conversation_id) else {
                    return vec![];
                };
                match (typing, expires_at) {
                    (true, Some(until)) => {
                        view.typing.insert(*user_id, *until);
                    }
                    (true, None) => {
                        view.typing.insert(*user_id, Timestamp::MAX);
                    }
                    (false, _) => {
                        view.typing.remove(user_id);
                    }
                }
                vec![ViewUpdate::Conversation {
                    conversation_id: *conversation_id,
                }]
            }
            Event::Presence(p) => {
                self.presence.insert(p.user_id, p.clone());
                vec![ViewUpdate::User { user_id: p.user_id }]
            }
            Event::Profile(p) => {
                for view in self.conversations.values_mut() {
                    if let Some(m) = view.member_mut(p.id) {
                        m.display_name = p.display_name.clone();
                        m.avatar_url = p.avatar_url.clone();
                    }
                }
                self.profiles.insert(p.id, p.clone());
                vec![ViewUpdate::User { user_id: p.id }]
            }
        }
    }

    /// Applies a persistent change (from an event or a sync page).
    pub fn apply_change(&mut self, change: &Change) -> Vec<ViewUpdate> {
        let me = self.me;
        let cid = change.conversation_id;
        match &change.kind {
            ChangeKind::ContactAdded { user_id } => {
                self.contacts.insert(*user_id);
                return vec![ViewUpdate::Contacts];
            }
            ChangeKind::ContactRemoved { user_id } => {
                self.contacts.remove(user_id);
                return vec![ViewUpdate::Contacts];
            }
            ChangeKind::Blocked { user_id } => {
                self.blocked.insert(*user_id);
                return vec![ViewUpdate::Contacts];
            }
            ChangeKind::Unblocked { user_id } => {
                self.blocked.remove(user_id);
                return vec![ViewUpdate::Contacts];
            }
            _ => {}
        }
        let Some(cid) = cid else { return vec![] };
        match &change.kind {
            ChangeKind::ConversationCreated { conversation } => {
                let members = self.pending_members.remove(&cid).unwrap_or_default();
                let mut view = match self.conversations.remove(&cid) {
                    Some(v) => v,
                    None => ConversationView {
                        conversation: conversation.clone(),
                        members: members
                            .into_iter()
                            .map(|(user_id, role)| MemberInfo {
                                user_id,
                                role,
                                display_name: String::new(),
                                avatar_url: None,
                                delivered_seq: 0,
                                read_seq: 0,
                            })
                            .collect(),
                        archived: false,
                        muted: false,
                        muted_until: None,
                        pinned_at: None,
                        mentions_base: 0,
                        mentions_floor: 0,
                        mention_seqs: BTreeSet::new(),
                        delivered_seq: 0,
                        read_seq: 0,
                        last_message: None,
                        messages: BTreeMap::new(),
                        typing: BTreeMap::new(),
                    },
                };
                self.take_pending_messages(&mut view);
                self.trim(&mut view);
                self.conversations.insert(cid, view);
                return vec![ViewUpdate::Conversation { conversation_id: cid }];
            }
            ChangeKind::MemberJoined { user_id, role } if !self.conversations.contains_key(&cid) => {
                self.pending_members.entry(cid).or_default().push((*user_id, *role));
                // The caller joining an existing conversation must fetch it; a brand-new one is
                // announced by the `ConversationCreated` that follows.
                return if *user_id == me {
                    vec![ViewUpdate::ConversationUnknown { conversation_id: cid }]
                } else {
                    vec![]
                };
            }
            ChangeKind::MemberLeft { user_id, .. } if *user_id == me => {
                self.pending_members.remove(&cid);
                self.pending_messages.remove(&cid);
                return match self.conversations.remove(&cid) {
                    Some(_) => vec![ViewUpdate::ConversationRemoved { conversation_id: cid }],
                    None => vec![],
                };
            }
            _ => {}
        }
        let Some(mut view) = self.conversations.remove(&cid) else {
            if let ChangeKind::Message { message } = &change.kind {
                let p = self.pending_messages.entry(cid).or_default();
                p.insert(message.seq, message.clone());
                while p.len() > self.window {
                    p.pop_first();
                }
            }
            return vec![ViewUpdate::ConversationUnknown { conversation_id: cid }];
        };
        match &change.kind {
            ChangeKind::Message { message } => {
                let seq = message.seq;
                view.conversation.last_seq = view.conversation.last_seq.max(seq);
                if message.sender_id == me {
                    view.delivered_seq = view.delivered_seq.max(seq);
                    view.read_seq = view.read_seq.max(seq);
                }
                if let Some(m) = view.member_mut(message.sender_id) {
                    m.delivered_seq = m.delivered_seq.max(seq);
                    m.read_seq = m.read_seq.max(seq);
                }
                view.typing.remove(&message.sender_id);
                note_mention(&mut view, me, message);
                let mut message = message.clone();
                // A message change carries no reactions (the reaction changes after it do):
                // a copy loaded from history keeps the ones it had.
                if message.reactions.is_empty()
                    && let Some(old) = view.messages.get_mut(&seq)
                {
                    message.reactions = std::mem::take(&mut old.reactions);
                }
                view.messages.insert(seq, message);
            }
            ChangeKind::MessageEdited {
                seq,
                content,
                edited_at,
            } => {
                if let Some(m) = view.messages.get(seq)
                    && m.deleted_at.is_none()
                {
                    // An edit may add or drop a mention of the caller: count it afresh.
                    let mut m = m.clone();
                    forget_mention(&mut view, me, *seq);
                    m.content = content.clone();
                    m.edited_at = Some(*edited_at);
                    if *seq <= view.mentions_floor {
                        let mentions_me = m.sender_id != me
                            && *seq > view.read_seq
                            && m.content.as_ref().is_some_and(|c| c.mentioned().contains(&me));
                        view.mentions_base += i64::from(mentions_me);
                    } else {
                        note_mention(&mut view, me, &m);
                    }
                    view.messages.insert(*seq, m);
                }
            }
            ChangeKind::ReactionAdded { seq, user_id, emoji } => {
                if let Some(m) = view.messages.get_mut(seq) {
                    apply_reaction(m, *user_id, emoji, true);
                }
            }
            ChangeKind::ReactionRemoved { seq, user_id, emoji } => {
                if let Some(m) = view.messages.get_mut(seq) {
                    apply_reaction(m, *user_id, emoji, false);
                }
            }
            ChangeKind::MessageDeleted { seq, deleted_at } => {
                forget_mention(&mut view, me, *seq);
                if let Some(m) = view.messages.get_mut(seq) {
                    m.content = None;
                    m.deleted_at = Some(*deleted_at);
                    m.reactions.clear();
                }
            }
            ChangeKind::MessageHidden { seq } => {
                forget_mention(&mut view, me, *seq);
                view.messages.remove(seq);
            }
            ChangeKind::Receipt {
                user_id,
                delivered_seq,
                read_seq,
            } => {
                if *user_id == me {
                    view.delivered_seq = view.delivered_seq.max(*delivered_seq);
                    view.read_seq = view.read_seq.max(*read_seq);
                    view.mention_seqs = view.mention_seqs.split_off(&(view.read_seq + 1));
                }
                if let Some(m) = view.member_mut(*user_id) {
                    m.delivered_seq = m.delivered_seq.max(*delivered_seq);
                    m.read_seq = m.read_seq.max(*read_seq);
                }
            }
            ChangeKind::ConversationUpdated { title, avatar_url } => {
                view.conversation.title = title.clone();
                view.conversation.avatar_url = avatar_url.clone();
            }
            ChangeKind::MemberJoined { user_id, role } if view.member_mut(*user_id).is_none() => {
                let seq = view.conversation.last_seq;
                view.members.push(MemberInfo {
                    user_id: *user_id,
                    role: *role,
                    display_name: self
                        .profiles
                        .get(user_id)
                        .map(|p| p.display_name.clone())
                        .unwrap_or_default(),
                    avatar_url: self.profiles.get(user_id).and_then(|p| p.avatar_url.clone()),
                    delivered_seq: seq,
                    read_seq: seq,
                });
            }
            ChangeKind::MemberLeft { user_id, .. } => {
                view.members.retain(|m| m.user_id != *user_id);
                view.typing.remove(user_id);
            }
            ChangeKind::RoleChanged { user_id, role } => {
                if let Some(m) = view.member_mut(*user_id) {
                    m.role = *role;
                }
            }
            ChangeKind::Archived { archived } => {
                view.archived = *archived;
                self.flags_changed.insert(cid);
            }
            ChangeKind::Muted { muted, until } => {
                view.muted = *muted;
                view.muted_until = if *muted { *until } else { None };
                self.flags_changed.insert(cid);
            }
            ChangeKind::Pinned { pinned, at } => {
                view.pinned_at = if *pinned { *at } else { None };
                self.flags_changed.insert(cid);
            }
            _ => {}
        }
        self.trim(&mut view);
        self.conversations.insert(cid, view);
        vec![ViewUpdate::Conversation { conversation_id: cid }]
    }

    /// Moves the messages that arrived before the conversation loaded into it.
    fn take_pending_messages(&mut self, view: &mut ConversationView) {
        for (seq, m) in self.pending_messages.remove(&view.conversation.id).unwrap_or_default() {
            view.conversation.last_seq = view.conversation.last_seq.max(seq);
            note_mention(view, self.me, &m);
            view.messages.insert(seq, m);
        }
    }

    /// Keeps the newest `window` messages and recomputes the last message.
    fn trim(&self, view: &mut ConversationView) {
        while view.messages.len() > self.window {
            view.messages.pop_first();
        }
        view.last_message = view.messages.values().next_back().cloned();
    }
}

/// Notes a message from someone else that mentions the caller.
fn note_mention(view: &mut ConversationView, me: UserId, m: &Message) {
    if m.sender_id != me
        && let Some(crate::model::Content::Text { mentions, .. }) = &m.content
        && mentions.iter().any(|x| x.user_id == me)
    {
        view.mention_seqs.insert(m.seq);
    }
}

/// A message at `seq` is gone for the caller (deleted for everyone, hidden): it no longer
/// counts as an unread mention, whether it was known live or counted by the server.
fn forget_mention(view: &mut ConversationView, me: UserId, seq: i64) {
    view.mention_seqs.remove(&seq);
    let counted_by_server = seq <= view.mentions_floor && seq > view.read_seq;
    let mentioned_me = view
        .messages
        .get(&seq)
        .and_then(|m| m.content.as_ref())
        .is_some_and(|c| c.mentioned().contains(&me));
    if counted_by_server && mentioned_me {
        view.mentions_base = (view.mentions_base - 1).max(0);
    }
}

/// Adds or removes `user`'s `emoji` on `m` (set semantics: applying twice is applying once).
pub(crate) fn apply_reaction(m: &mut Message, user: UserId, emoji: &str, add: bool) {
    let at = m.reactions.iter().position(|r| r.emoji == emoji);
    match (add, at) {
        (true, Some(i)) => {
            let r = &mut m.reactions[i];
            if !r.users.contains(&user) {
                r.users.push(user);
                r.count = r.users.len() as u32;
            }
        }
        (true, None) => m.reactions.push(Reaction {
            emoji: emoji.to_owned(),
            count: 1,
            users: vec![user],
        }),
        (false, Some(i)) => {
            let r = &mut m.reactions[i];
            r.users.retain(|u| *u != user);
            r.count = r.users.len() as u32;
            if r.users.is_empty() {
                m.reactions.remove(i);
            }
        }
        (false, None) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::MessageId;
    use crate::model::{Content, ConversationKind, Member};

    fn msg(conv: ConversationId, seq: i64, sender: UserId) -> Message {
        Message {
            id: MessageId::new(seq),
            conversation_id: conv,
            seq,
            sender_id: sender,
            client_msg_id: format!("c{seq}"),
            content: Some(Content::text(format!("m{seq}"))),
            reply_to_seq: None,
            created_at: 1000 + seq,
            deleted_at: None,
            edited_at: None,
            reactions: Vec::new(),
        }
    }

    fn change(pos: i64, conv: Option<ConversationId>, kind: ChangeKind) -> Change {
        Change {
            pos,
            conversation_id: conv,
            kind,
        }
    }

    #[test]
    fn builds_a_conversation_from_changes_and_tracks_unread_receipts_and_deletes() {
        let me = UserId::new(1);
        let bob = UserId::new(2);
        let cid = ConversationId::new(3);
        let conv = Conversation {
            id: cid,
            kind: ConversationKind::Direct,
            title: None,
            avatar_url: None,
            created_by: me,
            created_at: 100,
            last_seq: 0,
        };
        let mut v = LocalView::new(me);
        assert!(
            v.apply_change(&change(
                1,
                Some(cid),
                ChangeKind::MemberJoined {
                    user_id: me,
                    role: Role::Member
                }
            ))
            .len()
                == 1
        );
        v.apply_change(&change(
            2,
            Some(cid),
            ChangeKind::MemberJoined {
                user_id: bob,
                role: Role::Member,
            },
        ));
        v.apply_change(&change(
            3,
            Some(cid),
            ChangeKind::ConversationCreated { conversation: conv },
        ));
        let c = v.conversation(cid).expect("created");
        assert_eq!(c.members.len(), 2);

        v.apply_change(&change(
            4,
            Some(cid),
            ChangeKind::Message {
                message: msg(cid, 1, bob),
            },
        ));
        v.apply_change(&change(
            5,
            Some(cid),
            ChangeKind::Message {
                message: msg(cid, 2, bob),
            },
        ));
        assert_eq!(v.conversation(cid).map(ConversationView::unread), Some(2));
        assert_eq!(v.total_unread(), 2);

        v.apply_change(&change(
            6,
            Some(cid),
            ChangeKind::Receipt {
                user_id: me,
                delivered_seq: 2,
                read_seq: 1,
            },
        ));
        assert_eq!(v.conversation(cid).map(ConversationView::unread), Some(1));

        v.apply_change(&change(
            7,
            Some(cid),
            ChangeKind::Message {
                message: msg(cid, 3, me),
            },
        ));
        assert_eq!(
            v.conversation(cid).map(ConversationView::unread),
            Some(0),
            "own message reads up to it"
        );

        v.apply_change(&change(
            8,
            Some(cid),
            ChangeKind::MessageDeleted {
                seq: 3,
                deleted_at: 2000,
            },
        ));
        let last = v.conversation(cid).and_then(|c| c.last_message.clone()).expect("last");
        assert_eq!((last.seq, last.content), (3, None));

        v.apply_change(&change(9, Some(cid), ChangeKind::MessageHidden { seq: 3 }));
        assert_eq!(
            v.conversation(cid).and_then(|c| c.last_message.as_ref()).map(|m| m.seq),
            Some(2)
        );

        v.apply_change(&change(10, Some(cid), ChangeKind::Archived { archived: true }));
        assert!(v.conversations(false).is_empty());
        assert_eq!(v.conversations(true).len(), 1);

        v.apply_change(&change(
            11,
            Some(cid),
            ChangeKind::Muted {
                muted: true,
                until: Some(99),
            },
        ));
        let c = v.conversation(cid).expect("conversation");
        assert_eq!((c.muted, c.muted_until), (true, Some(99)));
        v.apply_change(&change(
            12,
            Some(cid),
            ChangeKind::Muted {
                muted: false,
                until: None,
            },
        ));
        assert!(!v.conversation(cid).expect("conversation").muted);

        let upd = v.apply_change(&change(13, Some(cid), ChangeKind::MemberLeft { user_id: me, by: bob }));
        assert_eq!(upd, vec![ViewUpdate::ConversationRemoved { conversation_id: cid }]);
        assert!(v.conversation(cid).is_none());
    }

    #[test]
    fn a_summary_reloaded_after_history_keeps_the_reactions_history_gave() {
        let (me, bob) = (UserId::new(1), UserId::new(2));
        let cid = ConversationId::new(3);
        let conv = Conversation {
            id: cid,
            kind: ConversationKind::Direct,
            title: None,
            avatar_url: None,
            created_by: me,
            created_at: 100,
            last_seq: 1,
        };
        let summary = |last: Message| ConversationSummary {
            conversation: conv.clone(),
            me: Member {
                conversation_id: cid,
                user_id: me,
                role: Role::Member,
                archived: false,
                delivered_seq: 1,
                read_seq: 1,
                joined_at: 100,
                joined_seq: 0,
            },
            last_message: Some(last),
            unread: 0,
            muted: false,
            muted_until: None,
            members: Vec::new(),
            unread_mentions: 0,
            pinned: false,
            pinned_at: None,
        };
        let mut v = LocalView::new(me);
        let bare = msg(cid, 1, bob);
        v.load_summary(summary(bare.clone()));
        let mut with = bare.clone();
        apply_reaction(&mut with, me, "👍", true);
        v.load_messages(cid, vec![with]);
        // The list is fetched again (a reconnect, a reload) after history came in.
        v.load_summary(summary(bare));
        assert_eq!(v.messages(cid)[0].reactions.len(), 1);
    }

    #[test]
    fn a_list_asked_for_before_a_pin_does_not_undo_it() {
        let me = UserId::new(1);
        let cid = ConversationId::new(3);
        let conv = Conversation {
            id: cid,
            kind: ConversationKind::Group,
            title: Some("G".into()),
            avatar_url: None,
            created_by: me,
            created_at: 100,
            last_seq: 0,
        };
        let summary = ConversationSummary {
            conversation: conv,
            me: Member {
                conversation_id: cid,
                user_id: me,
                role: Role::Member,
                archived: false,
                delivered_seq: 0,
                read_seq: 0,
                joined_at: 100,
                joined_seq: 0,
            },
            last_message: None,
            unread: 0,
            muted: false,
            muted_until: None,
            members: Vec::new(),
            unread_mentions: 0,
            pinned: false,
            pinned_at: None,
        };
        let mut v = LocalView::new(me);
        v.load_summary(summary.clone());
        // A reload is asked for; the pin's change arrives before the (older) list does.
        v.list_requested();
        v.apply_change(&change(
            5,
            Some(cid),
            ChangeKind::Pinned {
                pinned: true,
                at: Some(7),
            },
        ));
        v.load_summary(summary.clone());
        assert_eq!(v.conversation(cid).map(|c| c.pinned_at), Some(Some(7)));
        // A list asked for after the change is current: it is taken as it is.
        v.list_requested();
        v.load_summary(summary);
        assert_eq!(v.conversation(cid).map(|c| c.pinned_at), Some(None));
    }

    #[test]
    fn edits_and_reactions_apply_once_whatever_the_repeats() {
        let (me, bob) = (UserId::new(1), UserId::new(2));
        let cid = ConversationId::new(3);
        let mut v = LocalView::new(me);
        let conv = Conversation {
            id: cid,
            kind: ConversationKind::Direct,
            title: None,
            avatar_url: None,
            created_by: me,
            created_at: 100,
            last_seq: 0,
        };
        v.apply_change(&change(
            1,
            Some(cid),
            ChangeKind::ConversationCreated { conversation: conv },
        ));
        let m1 = msg(cid, 1, bob);
        v.apply_change(&change(2, Some(cid), ChangeKind::Message { message: m1.clone() }));
        let edited = ChangeKind::MessageEdited {
            seq: 1,
            content: Some(Content::text("new")),
            edited_at: 5000,
        };
        let up = |u: UserId, e: &str| ChangeKind::ReactionAdded {
            seq: 1,
            user_id: u,
            emoji: e.into(),
        };
        let down = |u: UserId, e: &str| ChangeKind::ReactionRemoved {
            seq: 1,
            user_id: u,
            emoji: e.into(),
        };
        for (pos, kind) in [
            (3, edited.clone()),
            (4, up(bob, "👍")),
            (5, up(me, "👍")),
            (6, up(bob, "👍")),
            (7, up(me, "❤️")),
            (8, down(me, "❤️")),
            (9, down(me, "❤️")),
            (10, up(me, "😂")),
            (11, edited),
        ] {
            v.apply_change(&change(pos, Some(cid), kind));
        }
        let m = v.messages(cid)[0].clone();
        assert_eq!(m.content, Some(Content::text("new")));
        assert_eq!(m.edited_at, Some(5000));
        let shown: Vec<(&str, u32, Vec<UserId>)> = m
            .reactions
            .iter()
            .map(|r| (r.emoji.as_str(), r.count, r.users.clone()))
            .collect();
        assert_eq!(shown, vec![("👍", 2, vec![bob, me]), ("😂", 1, vec![me])]);
        // A replayed message change (no reactions of its own) keeps them; a delete clears
        // them and a late edit does not bring the content back.
        v.apply_change(&change(2, Some(cid), ChangeKind::Message { message: m1 }));
        assert_eq!(v.messages(cid)[0].reactions.len(), 2);
        v.apply_change(&change(
            12,
            Some(cid),
            ChangeKind::MessageDeleted {
                seq: 1,
                deleted_at: 6000,
            },
        ));
        v.apply_change(&change(
            13,
            Some(cid),
            ChangeKind::MessageEdited {
                seq: 1,
                content: None,
                edited_at: 5500,
            },
        ));
        let m = v.messages(cid)[0];
        assert_eq!((m.content.clone(), m.reactions.len()), (None, 0));
    }

    #[test]
    fn joining_an_existing_group_asks_for_it_and_typing_expires() {
        let me = UserId::new(1);
        let cid = ConversationId::new(3);
        let mut v = LocalView::new(me);
        let upd = v.apply_change(&change(
            1,
            Some(cid),
            ChangeKind::MemberJoined {
                user_id: me,
                role: Role::Member,
            },
        ));
        assert_eq!(upd, vec![ViewUpdate::ConversationUnknown { conversation_id: cid }]);
        let upd = v.apply_change(&change(
            2,
            Some(cid),
            ChangeKind::Message {
                message: msg(cid, 9, me),
            },
        ));
        assert_eq!(upd, vec![ViewUpdate::ConversationUnknown { conversation_id: cid }]);

        v.apply_change(&change(
            3,
            Some(cid),
            ChangeKind::ConversationCreated {
                conversation: Conversation {
                    id: cid,
                    kind: ConversationKind::Group,
                    title: Some("g".into()),
                    avatar_url: None,
                    created_by: me,
                    created_at: 1,
                    last_seq: 0,
                },
            },
        ));
        let bob = UserId::new(2);
        v.apply_event(&Event::Typing {
            conversation_id: cid,
            user_id: bob,
            typing: true,
            expires_at: Some(50),
        });
        let c = v.conversation(cid).expect("conv");
        assert_eq!(c.typing_at(10), vec![bob]);
        assert!(c.typing_at(50).is_empty());
    }

    #[test]
    fn snapshots_replace_typing_and_reloads_never_move_counters_back() {
        use crate::model::{Member, Typing};
        let me = UserId::new(1);
        let bob = UserId::new(2);
        let cid = ConversationId::new(3);
        let conv = Conversation {
            id: cid,
            kind: ConversationKind::Direct,
            title: None,
            avatar_url: None,
            created_by: me,
            created_at: 100,
            last_seq: 1,
        };
        let member = Member {
            conversation_id: cid,
            user_id: me,
            role: Role::Member,
            archived: false,
            delivered_seq: 0,
            read_seq: 0,
            joined_at: 100,
            joined_seq: 0,
        };
        let summary = ConversationSummary {
            conversation: conv,
            me: member,
            last_message: Some(msg(cid, 1, bob)),
            unread: 1,
            muted: false,
            muted_until: None,
            members: vec![],
            unread_mentions: 0,
            pinned: false,
            pinned_at: None,
        };
        let mut v = LocalView::new(me);
        v.load_summary(summary.clone());
        v.apply_change(&change(
            7,
            Some(cid),
            ChangeKind::Message {
                message: msg(cid, 2, bob),
            },
        ));
        // A stale list (fetched before seq 2) does not lose it.
        v.load_summary(summary);
        let c = v.conversation(cid).expect("conv");
        assert_eq!((c.conversation.last_seq, c.unread()), (2, 2));
        assert_eq!(c.last_message.as_ref().map(|m| m.seq), Some(2));

        v.apply_event(&Event::Typing {
            conversation_id: cid,
            user_id: bob,
            typing: true,
            expires_at: Some(10_000),
        });
        let snap = EphemeralSnapshot {
            presence: vec![Presence {
                user_id: bob,
                online: true,
                last_seen_at: None,
            }],
            typing: vec![],
        };
        let upd = v.apply_snapshot(&snap);
        assert!(upd.contains(&ViewUpdate::Conversation { conversation_id: cid }));
        assert!(
            v.conversation(cid).expect("conv").typing.is_empty(),
            "typing not in the snapshot is gone"
        );
        assert_eq!(v.presence(bob).map(|p| p.online), Some(true));
        let snap = EphemeralSnapshot {
            presence: vec![],
            typing: vec![Typing {
                conversation_id: cid,
                user_id: bob,
                expires_at: 50,
            }],
        };
        v.apply_snapshot(&snap);
        assert_eq!(v.conversation(cid).expect("conv").typing_at(10), vec![bob]);
    }

    #[test]
    fn pins_order_the_list_and_mentions_count_until_read_or_deleted() {
        let me = UserId::new(1);
        let bob = UserId::new(2);
        let mut v = LocalView::new(me);
        let (c1, c2) = (ConversationId::new(10), ConversationId::new(11));
        for (cid, at) in [(c1, 100), (c2, 200)] {
            v.apply_change(&change(
                1,
                Some(cid),
                ChangeKind::ConversationCreated {
                    conversation: Conversation {
                        id: cid,
                        kind: ConversationKind::Group,
                        title: Some("g".into()),
                        avatar_url: None,
                        created_by: bob,
                        created_at: at,
                        last_seq: 0,
                    },
                },
            ));
        }
        let order = |v: &LocalView| {
            v.conversations(false)
                .iter()
                .map(|c| c.conversation.id)
                .collect::<Vec<_>>()
        };
        assert_eq!(order(&v), vec![c2, c1], "newest activity first");
        v.apply_change(&change(
            2,
            Some(c1),
            ChangeKind::Pinned {
                pinned: true,
                at: Some(5),
            },
        ));
        assert_eq!(order(&v), vec![c1, c2], "pinned first");
        assert!(v.conversation(c1).is_some_and(ConversationView::pinned));
        v.apply_change(&change(
            3,
            Some(c1),
            ChangeKind::Pinned {
                pinned: false,
                at: None,
            },
        ));
        assert_eq!(order(&v), vec![c2, c1]);

        let mentioning = |seq: i64, who: UserId| {
            let mut m = msg(c1, seq, bob);
            m.content = Some(Content::Text {
                text: "@x".into(),
                mentions: vec![crate::model::Mention {
                    user_id: who,
                    start: 0,
                    end: 2,
                }],
            });
            ChangeKind::Message { message: m }
        };
        v.apply_change(&change(4, Some(c1), mentioning(1, me)));
        v.apply_change(&change(5, Some(c1), mentioning(2, bob)));
        v.apply_change(&change(6, Some(c1), mentioning(3, me)));
        v.apply_change(&change(7, Some(c1), mentioning(4, me)));
        assert_eq!(v.conversation(c1).map(ConversationView::unread_mentions), Some(3));
        v.apply_change(&change(
            8,
            Some(c1),
            ChangeKind::Receipt {
                user_id: me,
                delivered_seq: 1,
                read_seq: 1,
            },
        ));
        assert_eq!(v.conversation(c1).map(ConversationView::unread_mentions), Some(2));
        v.apply_change(&change(
            9,
            Some(c1),
            ChangeKind::MessageDeleted { seq: 3, deleted_at: 9 },
        ));
        v.apply_change(&change(10, Some(c1), ChangeKind::MessageHidden { seq: 4 }));
        assert_eq!(v.conversation(c1).map(ConversationView::unread_mentions), Some(0));
    }
}
