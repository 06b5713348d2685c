//! Reactions: any member adds or removes emoji on a message they can see; one of each emoji
//! per user, a bounded number of distinct emoji per message; hidden across a block.

use std::collections::{HashMap, HashSet};

use crate::error::{Error, Result};
use crate::ids::{ConversationId, UserId};
use crate::model::{ConversationKind, Member, Message, Reaction};
use crate::sync::{Change, ChangeKind};

use super::{Engine, Outcome, live, validate};

impl Engine {
    /// Adds the caller's reaction `emoji` to the message at `seq` (idempotent: a second
    /// add changes nothing). Answers the message with its reactions as the caller sees them.
    ///
    /// Refused: a message the caller cannot see (`not_found`), a message deleted for
    /// everyone (`conflict`), a reaction across a block in a direct conversation
    /// (`forbidden`), a string that is not one emoji (`invalid_input`), and a new emoji on
    /// a message with `Limits::max_reactions_per_message` distinct emoji already
    /// (`too_large`, `what = "reactions"`).
    pub async fn react(
        &self,
        actor: UserId,
        conversation: ConversationId,
        seq: i64,
        emoji: &str,
    ) -> Result<Outcome<Message>> {
        self.reaction(actor, conversation, seq, emoji, true).await
    }

    /// Takes the caller's reaction `emoji` back (idempotent). Answers like [`Engine::react`].
    pub async fn unreact(
        &self,
        actor: UserId,
        conversation: ConversationId,
        seq: i64,
        emoji: &str,
    ) -> Result<Outcome<Message>> {
        self.reaction(actor, conversation, seq, emoji, false).await
    }

    async fn reaction(
        &self,
        actor: UserId,
        conversation: ConversationId,
        seq: i64,
        emoji: &str,
        add: bool,
    ) -> Result<Outcome<Message>> {
        validate::seq("seq", seq, 1)?;
        validate::emoji("emoji", emoji)?;
        let all = self.store.list_members(conversation).await?;
        let me = all
            .iter()
            .find(|m| m.user_id == actor)
            .cloned()
            .ok_or(Error::not_found("conversation"))?;
        let message = self.visible_message(&me, conversation, seq).await?;
        if add && message.deleted_at.is_some() {
            return Err(Error::conflict("message deleted"));
        }
        let blocked: HashSet<UserId> = self.store.blocked_either_way(actor).await?.into_iter().collect();
        if add
            && self.conversation_kind(conversation).await? == ConversationKind::Direct
            && all.iter().any(|m| blocked.contains(&m.user_id))
        {
            return Err(Error::forbidden("blocked"));
        }
        let change = if add {
            let max = self.config.limits.max_reactions_per_message;
            self.store
                .add_reaction(conversation, seq, actor, emoji, self.now(), max)
                .await?
        } else {
            self.store.remove_reaction(conversation, seq, actor, emoji).await?
        };
        let mut message = message;
        self.fill_reactions(actor, conversation, std::slice::from_mut(&mut message))
            .await?;
        let Some(change) = change else {
            return Ok(Outcome::new(message));
        };
        // Members who see the message, except across a block (either way) with the reactor.
        let recipients: Vec<UserId> = all
            .iter()
            .filter(|m| m.joined_seq < seq && !blocked.contains(&m.user_id))
            .map(|m| m.user_id)
            .collect();
        Ok(Outcome::with(message, vec![live(&recipients, change)]))
    }

    /// Fills in the reactions of `messages` (of one conversation) as `viewer` sees them:
    /// without users in a block with the viewer (either way), without deleted messages'.
    pub(crate) async fn fill_reactions(
        &self,
        viewer: UserId,
        conversation: ConversationId,
        messages: &mut [Message],
    ) -> Result<()> {
        let (Some(from), Some(to)) = (
            messages.iter().map(|m| m.seq).min(),
            messages.iter().map(|m| m.seq).max(),
        ) else {
            return Ok(());
        };
        let rows = self.store.reactions(conversation, from, to).await?;
        if rows.is_empty() {
            return Ok(());
        }
        let blocked: HashSet<UserId> = self.store.blocked_either_way(viewer).await?.into_iter().collect();
        let mut by_seq: HashMap<i64, Vec<Reaction>> = HashMap::new();
        for r in rows.into_iter().filter(|r| !blocked.contains(&r.user_id)) {
            let groups = by_seq.entry(r.seq).or_default();
            match groups.iter_mut().find(|g| g.emoji == r.emoji) {
                Some(g) => {
                    g.users.push(r.user_id);
                    g.count += 1;
                }
                None => groups.push(Reaction {
                    emoji: r.emoji,
                    count: 1,
                    users: vec![r.user_id],
                }),
            }
        }
        for m in messages.iter_mut() {
            m.reactions = if m.deleted_at.is_some() {
                Vec::new()
            } else {
                by_seq.remove(&m.seq).unwrap_or_default()
            };
        }
        Ok(())
    }

    /// Drops from a sync page what `actor` must not see of edits and reactions: those about
    /// messages from before they joined, and reactions of users in a block with them
    /// (either way) — the live path leaves the same recipients out.
    pub(crate) async fn hide_edits_and_reactions(&self, actor: UserId, changes: &mut Vec<Change>) -> Result<()> {
        if !changes.iter().any(|c| c.kind.about_seq().is_some()) {
            return Ok(());
        }
        let mut joined: HashMap<ConversationId, i64> = HashMap::new();
        for c in changes.iter().filter(|c| c.kind.about_seq().is_some()) {
            if let Some(id) = c.conversation_id
                && !joined.contains_key(&id)
            {
                let floor = self
                    .store
                    .get_member(id, actor)
                    .await?
                    .map_or(i64::MAX, |m: Member| m.joined_seq);
                joined.insert(id, floor);
            }
        }
        let blocked: HashSet<UserId> = self.store.blocked_either_way(actor).await?.into_iter().collect();
        changes.retain(|c| {
            let Some(seq) = c.kind.about_seq() else {
                return true;
            };
            let floor = c
                .conversation_id
                .and_then(|id| joined.get(&id))
                .copied()
                .unwrap_or(i64::MAX);
            if seq <= floor {
                return false;
            }
            !matches!(&c.kind, ChangeKind::ReactionAdded { user_id, .. } | ChangeKind::ReactionRemoved { user_id, .. }
                if blocked.contains(user_id))
        });
        Ok(())
    }
}
