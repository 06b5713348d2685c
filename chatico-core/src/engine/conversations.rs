//! Conversations: direct and group, membership, roles, archive.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::error::{Error, Result};
use crate::ids::{ConversationId, Timestamp, UserId};
use crate::model::{Conversation, ConversationKind, ConversationSummary, Member, Role, SystemNotice};
use crate::ports::NewConversation;
use crate::sync::{Change, ChangeKind, Delivery};

use super::{ConversationDetails, Engine, Outcome, live, page, validate};

impl Engine {
    /// The direct conversation between the caller and `other`, created on first use (one per
    /// pair; calling again returns the same one and delivers nothing). Refused across a
    /// block.
    pub async fn open_direct(&self, actor: UserId, other: UserId) -> Result<Outcome<Conversation>> {
        if other == actor {
            return Err(Error::invalid("user_id", "must be another user"));
        }
        self.require_user(other).await?;
        if self.store.is_blocked_either_way(actor, other).await? {
            return Err(Error::forbidden("blocked"));
        }
        if let Some(c) = self.store.find_direct(actor, other).await? {
            return Ok(Outcome::new(c));
        }
        let now = self.now();
        let new = NewConversation {
            id: ConversationId::new(now),
            kind: ConversationKind::Direct,
            title: None,
            avatar_url: None,
            created_by: actor,
            created_at: now,
            members: vec![(actor, Role::Member), (other, Role::Member)],
        };
        let (conv, changes) = self.store.create_conversation(&new).await?;
        let deliveries = join_deliveries(Vec::new(), changes);
        Ok(Outcome::with(conv, deliveries))
    }

    /// Checks invitees: they exist and there is no block either way with the caller.
    async fn check_invitees(&self, actor: UserId, invitees: &BTreeSet<UserId>) -> Result<()> {
        let ids: Vec<UserId> = invitees.iter().copied().collect();
        if self.store.get_users(&ids).await?.len() != ids.len() {
            return Err(Error::not_found("user"));
        }
        let blocked = self.store.blocked_either_way(actor).await?;
        if blocked.iter().any(|b| invitees.contains(b)) {
            return Err(Error::forbidden(
                "cannot invite a user who blocked you or whom you blocked",
            ));
        }
        Ok(())
    }

    /// The member list from a request without duplicates and the caller, at most the
    /// group size.
    fn invitee_set(&self, actor: UserId, members: &[UserId]) -> Result<BTreeSet<UserId>> {
        let max = self.config.limits.max_group_members;
        let set: BTreeSet<UserId> = members.iter().copied().filter(|u| *u != actor).collect();
        if set.len() > max {
            return Err(Error::invalid("members", format!("a group has at most {max} members")));
        }
        Ok(set)
    }

    /// Creates a group owned by the caller with `members` (duplicates and the caller ignored).
    pub async fn create_group(
        &self,
        actor: UserId,
        title: String,
        members: Vec<UserId>,
    ) -> Result<Outcome<Conversation>> {
        let l = &self.config.limits;
        let title = validate::name("title", &title, l.max_group_title_chars)?;
        let invitees = self.invitee_set(actor, &members)?;
        if invitees.len() + 1 > l.max_group_members {
            return Err(Error::invalid(
                "members",
                format!("a group has at most {} members", l.max_group_members),
            ));
        }
        self.check_invitees(actor, &invitees).await?;
        let now = self.now();
        let mut initial = vec![(actor, Role::Owner)];
        initial.extend(invitees.iter().map(|u| (*u, Role::Member)));
        let new = NewConversation {
            id: ConversationId::new(now),
            kind: ConversationKind::Group,
            title: Some(title.clone()),
            avatar_url: None,
            created_by: actor,
            created_at: now,
            members: initial,
        };
        let (conv, changes) = self.store.create_conversation(&new).await?;
        let mut deliveries = join_deliveries(Vec::new(), changes);
        let recipients: Vec<UserId> = new.members.iter().map(|(u, _)| *u).collect();
        self.notice(
            actor,
            conv.id,
            SystemNotice::GroupCreated { title },
            &recipients,
            &mut deliveries,
        )
        .await;
        Ok(Outcome::with(conv, deliveries))
    }

    /// A group the caller manages (owner or admin): membership, kind and role checked in an
    /// order that never reveals a conversation to a non-member.
    async fn managed_group(&self, actor: UserId, conversation: ConversationId) -> Result<(Conversation, Member)> {
        let (conv, me) = self.membership(actor, conversation).await?;
        if conv.kind != ConversationKind::Group {
            return Err(Error::forbidden("direct conversations have no member management"));
        }
        if !me.role.can_manage_members() {
            return Err(Error::forbidden("only the owner and admins manage the group"));
        }
        Ok((conv, me))
    }

    /// Adds members to a group (owner/admin). Users who are members already are skipped;
    /// returns the members added.
    pub async fn add_members(
        &self,
        actor: UserId,
        conversation: ConversationId,
        users: Vec<UserId>,
    ) -> Result<Outcome<Vec<Member>>> {
        let invitees = self.invitee_set(actor, &users)?;
        if invitees.is_empty() {
            return Err(Error::invalid("members", "name at least one other user"));
        }
        self.managed_group(actor, conversation).await?;
        self.check_invitees(actor, &invitees).await?;
        let current = self.member_ids(conversation).await?;
        let fresh: Vec<(UserId, Role)> = invitees
            .iter()
            .filter(|u| !current.contains(u))
            .map(|u| (*u, Role::Member))
            .collect();
        let max = self.config.limits.max_group_members;
        if current.len() + fresh.len() > max {
            return Err(Error::invalid("members", format!("a group has at most {max} members")));
        }
        if fresh.is_empty() {
            return Ok(Outcome::new(Vec::new()));
        }
        let (added, changes) = self.store.add_members(conversation, &fresh, self.now()).await?;
        if added.is_empty() {
            return Ok(Outcome::new(added));
        }
        let mut deliveries = join_deliveries(current, changes);
        let recipients = self.member_ids(conversation).await?;
        let users = added.iter().map(|m| m.user_id).collect();
        self.notice(
            actor,
            conversation,
            SystemNotice::MembersAdded { users },
            &recipients,
            &mut deliveries,
        )
        .await;
        Ok(Outcome::with(added, deliveries))
    }

    /// Removes a member from a group. Owner and admins remove plain members; only the owner
    /// removes admins; nobody removes the owner. To remove yourself, `leave`.
    pub async fn remove_member(
        &self,
        actor: UserId,
        conversation: ConversationId,
        user: UserId,
    ) -> Result<Outcome<()>> {
        let (_, me) = self.managed_group(actor, conversation).await?;
        if user == actor {
            return Err(Error::invalid("user_id", "use leave to remove yourself"));
        }
        let target = self
            .store
            .get_member(conversation, user)
            .await?
            .ok_or(Error::not_found("member"))?;
        let allowed = match target.role {
            Role::Owner => false,
            Role::Admin => me.role == Role::Owner,
            Role::Member => true,
        };
        if !allowed {
            return Err(Error::forbidden(
                "only the owner removes admins; nobody removes the owner",
            ));
        }
        let changes = self.store.remove_member(conversation, user, actor).await?;
        if changes.is_empty() {
            return Err(Error::not_found("member"));
        }
        let remaining = self.member_ids(conversation).await?;
        let mut deliveries = left_deliveries(user, &remaining, changes);
        self.notice(
            actor,
            conversation,
            SystemNotice::MemberRemoved { user },
            &remaining,
            &mut deliveries,
        )
        .await;
        Ok(Outcome::with((), deliveries))
    }

    /// Changes a member's role to `admin` or `member` (owner only). Ownership is not given
    /// away here: it passes when the owner leaves.
    pub async fn set_role(
        &self,
        actor: UserId,
        conversation: ConversationId,
        user: UserId,
        role: Role,
    ) -> Result<Outcome<Member>> {
        let (_, me) = self.managed_group(actor, conversation).await?;
        if me.role != Role::Owner {
            return Err(Error::forbidden("only the owner changes roles"));
        }
        if role == Role::Owner {
            return Err(Error::invalid("role", "ownership passes only when the owner leaves"));
        }
        if user == actor {
            return Err(Error::invalid("user_id", "the owner's role changes only by leaving"));
        }
        let target = self
            .store
            .get_member(conversation, user)
            .await?
            .ok_or(Error::not_found("member"))?;
        if target.role == role {
            return Ok(Outcome::new(target));
        }
        let (updated, change) = self.store.set_role(conversation, user, role).await?;
        let Some(change) = change else {
            return Ok(Outcome::new(updated));
        };
        let recipients = self.member_ids(conversation).await?;
        let mut deliveries = vec![live(&recipients, change)];
        self.notice(
            actor,
            conversation,
            SystemNotice::RoleChanged { user, role },
            &recipients,
            &mut deliveries,
        )
        .await;
        Ok(Outcome::with(updated, deliveries))
    }

    /// Leaves a group. An owner leaving hands ownership to the oldest admin, else the
    /// oldest member. Direct conversations cannot be left (archive them).
    pub async fn leave(&self, actor: UserId, conversation: ConversationId) -> Result<Outcome<()>> {
        let (conv, me) = self.membership(actor, conversation).await?;
        if conv.kind != ConversationKind::Group {
            return Err(Error::forbidden(
                "direct conversations cannot be left; archive them instead",
            ));
        }
        let members = self.store.list_members(conversation).await?;
        let remaining: Vec<UserId> = members.iter().map(|m| m.user_id).filter(|u| *u != actor).collect();
        let mut deliveries = Vec::new();
        if me.role == Role::Owner {
            // `list_members` is in join order: the first admin, else the first other member.
            let others = members.iter().filter(|m| m.user_id != actor);
            let successor = others
                .clone()
                .find(|m| m.role == Role::Admin)
                .or_else(|| others.clone().next())
                .map(|m| m.user_id);
            if let Some(next) = successor {
                let (_, change) = self.store.set_role(conversation, next, Role::Owner).await?;
                // The leaver stops seeing conversation changes once gone, so only the others.
                deliveries.extend(change.map(|c| live(&remaining, c)));
            }
        }
        let changes = self.store.remove_member(conversation, actor, actor).await?;
        if changes.is_empty() {
            return Err(Error::not_found("conversation"));
        }
        deliveries.extend(left_deliveries(actor, &remaining, changes));
        if !remaining.is_empty() {
            self.notice(
                actor,
                conversation,
                SystemNotice::MemberLeft { user: actor },
                &remaining,
                &mut deliveries,
            )
            .await;
        }
        Ok(Outcome::with((), deliveries))
    }

    /// Changes a group's title and/or avatar (owner/admin). `None` leaves a field as it is;
    /// `avatar_url: Some(None)` clears the avatar. An avatar is `/v1/blobs/{key}` of an
    /// avatar blob the caller uploaded (see `Engine::own_avatar`).
    pub async fn update_group(
        &self,
        actor: UserId,
        conversation: ConversationId,
        title: Option<String>,
        avatar_url: Option<Option<String>>,
    ) -> Result<Outcome<Conversation>> {
        let l = &self.config.limits;
        let title = match title {
            Some(t) => Some(validate::name("title", &t, l.max_group_title_chars)?),
            None => None,
        };
        let (before, _) = self.managed_group(actor, conversation).await?;
        let avatar_url = match avatar_url {
            Some(Some(u)) => Some(Some(self.own_avatar(actor, &u).await?)),
            other => other,
        };
        if title.is_none() && avatar_url.is_none() {
            return Ok(Outcome::new(before));
        }
        let (after, change) = self.store.update_conversation(conversation, title, avatar_url).await?;
        let Some(change) = change else {
            return Ok(Outcome::new(after));
        };
        let recipients = self.member_ids(conversation).await?;
        let mut deliveries = vec![live(&recipients, change)];
        if after.title != before.title
            && let Some(t) = after.title.clone()
        {
            self.notice(
                actor,
                conversation,
                SystemNotice::TitleChanged { title: t },
                &recipients,
                &mut deliveries,
            )
            .await;
        }
        Ok(Outcome::with(after, deliveries))
    }

    /// Archives or unarchives a conversation for the caller only.
    pub async fn archive(
        &self,
        actor: UserId,
        conversation: ConversationId,
        archived: bool,
    ) -> Result<Outcome<Member>> {
        let me = self.member(actor, conversation).await?;
        if me.archived == archived {
            return Ok(Outcome::new(me));
        }
        let (updated, change) = self.store.set_archived(conversation, actor, archived).await?;
        let deliveries = change.map(|c| live(&[actor], c)).into_iter().collect();
        Ok(Outcome::with(updated, deliveries))
    }

    /// The caller's conversations (archived or not), newest activity first, each with its
    /// last visible message, unread count, the caller's mute and members. `limit` is clamped. Members in a block
    /// with the caller (either way) show watermarks of 0.
    pub async fn list_conversations(
        &self,
        actor: UserId,
        archived: bool,
        limit: u32,
    ) -> Result<Vec<ConversationSummary>> {
        let limit = page(limit, self.config.limits.max_conversation_page);
        let mut list = self.store.list_conversations(actor, archived, limit).await?;
        let mutes: HashMap<ConversationId, Option<Timestamp>> =
            self.store.user_mutes(actor).await?.into_iter().collect();
        for s in list.iter_mut() {
            if let Some(until) = mutes.get(&s.conversation.id) {
                (s.muted, s.muted_until) = (true, *until);
            }
        }
        let blocked: HashSet<UserId> = self.store.blocked_either_way(actor).await?.into_iter().collect();
        if !blocked.is_empty() {
            for m in list.iter_mut().flat_map(|s| s.members.iter_mut()) {
                if blocked.contains(&m.user_id) {
                    (m.delivered_seq, m.read_seq) = (0, 0);
                }
            }
        }
        Ok(list)
    }

    /// A conversation and its members. The watermarks of a member in a block with the
    /// caller (either way) read as 0: receipts do not cross a block.
    pub async fn get_conversation(&self, actor: UserId, conversation: ConversationId) -> Result<ConversationDetails> {
        let (conversation, _) = self.membership(actor, conversation).await?;
        let mut members = self.store.list_members(conversation.id).await?;
        let blocked: HashSet<UserId> = self.store.blocked_either_way(actor).await?.into_iter().collect();
        for m in members.iter_mut().filter(|m| blocked.contains(&m.user_id)) {
            (m.delivered_seq, m.read_seq) = (0, 0);
        }
        Ok(ConversationDetails { conversation, members })
    }
}

/// Changes of a creation or an addition, in order: a `MemberJoined` goes to the members
/// before it (`existing`, then the ones who joined earlier in the same write) and the one
/// joining; any other change (`ConversationCreated`, last) to everyone joined so far.
fn join_deliveries(existing: Vec<UserId>, changes: Vec<Change>) -> Vec<Delivery> {
    let mut audience = existing;
    changes
        .into_iter()
        .map(|c| {
            if let ChangeKind::MemberJoined { user_id, .. } = &c.kind {
                audience.push(*user_id);
            }
            live(&audience, c)
        })
        .collect()
}

/// `MemberLeft` as recorded twice, in this order: the conversation change to the remaining
/// members, the targeted change to the user who left.
fn left_deliveries(user: UserId, remaining: &[UserId], changes: Vec<Change>) -> Vec<Delivery> {
    changes
        .into_iter()
        .enumerate()
        .map(|(i, c)| if i == 0 { live(remaining, c) } else { live(&[user], c) })
        .collect()
}
