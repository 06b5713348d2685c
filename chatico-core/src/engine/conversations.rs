//! Conversations: direct and group, membership, roles, archive.

use std::collections::BTreeSet;

use crate::error::{Error, Result};
use crate::ids::{ConversationId, UserId};
use crate::model::{Conversation, ConversationKind, ConversationSummary, Member, Role, SystemNotice};
use crate::ports::NewConversation;
use crate::sync::{ChangeKind, Delivery};

use super::{ConversationDetails, Engine, Outcome, change, deliver, page, validate};

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
        let (conv, created) = self.store.create_conversation(&new).await?;
        if !created {
            return Ok(Outcome::new(conv));
        }
        let deliveries = created_deliveries(&conv, &new.members);
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

    /// The member list from a request: not too long, without duplicates and the caller.
    fn invitee_set(&self, actor: UserId, members: &[UserId]) -> Result<BTreeSet<UserId>> {
        let max = self.config.limits.max_group_members;
        if members.len() > max {
            return Err(Error::invalid("members", format!("a group has at most {max} members")));
        }
        Ok(members.iter().copied().filter(|u| *u != actor).collect())
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
        let (conv, _) = self.store.create_conversation(&new).await?;
        let mut deliveries = created_deliveries(&conv, &new.members);
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
        let current: BTreeSet<UserId> = self.member_ids(conversation).await?.into_iter().collect();
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
        let added = self.store.add_members(conversation, &fresh, self.now()).await?;
        if added.is_empty() {
            return Ok(Outcome::new(added));
        }
        let recipients = self.member_ids(conversation).await?;
        let mut deliveries: Vec<Delivery> = added
            .iter()
            .map(|m| {
                deliver(
                    &recipients,
                    change(
                        Some(conversation),
                        ChangeKind::MemberJoined {
                            user_id: m.user_id,
                            role: m.role,
                        },
                    ),
                )
            })
            .collect();
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
        if !self.store.remove_member(conversation, user, actor).await? {
            return Err(Error::not_found("member"));
        }
        let remaining = self.member_ids(conversation).await?;
        let mut deliveries = vec![left_delivery(conversation, user, actor, &remaining)];
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
        let updated = self.store.set_role(conversation, user, role).await?;
        let recipients = self.member_ids(conversation).await?;
        let mut deliveries = vec![deliver(
            &recipients,
            change(Some(conversation), ChangeKind::RoleChanged { user_id: user, role }),
        )];
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
        let mut deliveries = Vec::new();
        let members = self.store.list_members(conversation).await?;
        if me.role == Role::Owner {
            let others = members.iter().filter(|m| m.user_id != actor);
            let successor = others
                .clone()
                .find(|m| m.role == Role::Admin)
                .or_else(|| others.clone().next())
                .map(|m| m.user_id);
            if let Some(next) = successor {
                self.store.set_role(conversation, next, Role::Owner).await?;
                let ids: Vec<UserId> = members.iter().map(|m| m.user_id).collect();
                deliveries.push(deliver(
                    &ids,
                    change(
                        Some(conversation),
                        ChangeKind::RoleChanged {
                            user_id: next,
                            role: Role::Owner,
                        },
                    ),
                ));
            }
        }
        if !self.store.remove_member(conversation, actor, actor).await? {
            return Err(Error::not_found("conversation"));
        }
        let remaining = self.member_ids(conversation).await?;
        deliveries.push(left_delivery(conversation, actor, actor, &remaining));
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
    /// `avatar_url: Some(None)` clears the avatar.
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
        let avatar_url = match avatar_url {
            Some(Some(u)) => Some(Some(validate::url("avatar_url", &u, l.max_url_chars)?)),
            other => other,
        };
        let (before, _) = self.managed_group(actor, conversation).await?;
        if title.is_none() && avatar_url.is_none() {
            return Ok(Outcome::new(before));
        }
        let after = self
            .store
            .update_conversation(conversation, title.clone(), avatar_url)
            .await?;
        if (&after.title, &after.avatar_url) == (&before.title, &before.avatar_url) {
            return Ok(Outcome::new(after));
        }
        let recipients = self.member_ids(conversation).await?;
        let mut deliveries = vec![deliver(
            &recipients,
            change(
                Some(conversation),
                ChangeKind::ConversationUpdated {
                    title: after.title.clone(),
                    avatar_url: after.avatar_url.clone(),
                },
            ),
        )];
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
        let (_, me) = self.membership(actor, conversation).await?;
        if me.archived == archived {
            return Ok(Outcome::new(me));
        }
        let updated = self.store.set_archived(conversation, actor, archived).await?;
        Ok(Outcome::with(
            updated,
            vec![deliver(
                &[actor],
                change(Some(conversation), ChangeKind::Archived { archived }),
            )],
        ))
    }

    /// The caller's conversations (archived or not), newest activity first, each with its
    /// last visible message, unread count and members. `limit` is clamped.
    pub async fn list_conversations(
        &self,
        actor: UserId,
        archived: bool,
        limit: u32,
    ) -> Result<Vec<ConversationSummary>> {
        let limit = page(limit, self.config.limits.max_conversation_page);
        self.store.list_conversations(actor, archived, limit).await
    }

    /// A conversation and its members.
    pub async fn get_conversation(&self, actor: UserId, conversation: ConversationId) -> Result<ConversationDetails> {
        let (conversation, _) = self.membership(actor, conversation).await?;
        let members = self.store.list_members(conversation.id).await?;
        Ok(ConversationDetails { conversation, members })
    }
}

/// `MemberJoined` for each initial member, then `ConversationCreated`, to every member.
fn created_deliveries(conv: &Conversation, members: &[(UserId, Role)]) -> Vec<Delivery> {
    let ids: Vec<UserId> = members.iter().map(|(u, _)| *u).collect();
    let mut out: Vec<Delivery> = members
        .iter()
        .map(|(u, r)| {
            deliver(
                &ids,
                change(Some(conv.id), ChangeKind::MemberJoined { user_id: *u, role: *r }),
            )
        })
        .collect();
    out.push(deliver(
        &ids,
        change(
            Some(conv.id),
            ChangeKind::ConversationCreated {
                conversation: conv.clone(),
            },
        ),
    ));
    out
}

/// `MemberLeft` to the remaining members and to the user who left (recorded for both).
fn left_delivery(conversation: ConversationId, user: UserId, by: UserId, remaining: &[UserId]) -> Delivery {
    let mut recipients = remaining.to_vec();
    recipients.push(user);
    deliver(
        &recipients,
        change(Some(conversation), ChangeKind::MemberLeft { user_id: user, by }),
    )
}
