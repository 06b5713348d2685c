//! Pinned conversations: per user, bounded, first in the conversation list.

use crate::error::Result;
use crate::ids::{ConversationId, UserId};
use crate::protocol::PinState;
use crate::sync::ChangeKind;

use super::{Engine, Outcome, live};

impl Engine {
    /// Pins a conversation for the caller (all their devices): it lists before every
    /// unpinned one, pinned conversations newest pin first. At most `Limits::max_pins` at once
    /// (`TooLarge("pins")` past it, nothing changed); pinning a pinned conversation keeps its
    /// pin time and records nothing. The `pinned` change reaches the caller's devices.
    pub async fn pin(&self, actor: UserId, conversation: ConversationId) -> Result<Outcome<PinState>> {
        self.member(actor, conversation).await?;
        let now = self.now();
        let (pinned_at, change) = self
            .store
            .set_pin(conversation, actor, true, now, self.config.limits.max_pins)
            .await?;
        let state = PinState {
            conversation_id: conversation,
            pinned_at: pinned_at.unwrap_or(now),
        };
        Ok(Outcome::with(
            state,
            change.map(|c| live(&[actor], c)).into_iter().collect(),
        ))
    }

    /// Unpins a conversation for the caller (nothing changes when it was not pinned).
    pub async fn unpin(&self, actor: UserId, conversation: ConversationId) -> Result<Outcome<()>> {
        self.member(actor, conversation).await?;
        let (_, change) = self
            .store
            .set_pin(conversation, actor, false, self.now(), self.config.limits.max_pins)
            .await?;
        debug_assert!(
            change
                .as_ref()
                .is_none_or(|c| matches!(c.kind, ChangeKind::Pinned { pinned: false, .. }))
        );
        Ok(Outcome::with(
            (),
            change.map(|c| live(&[actor], c)).into_iter().collect(),
        ))
    }
}
