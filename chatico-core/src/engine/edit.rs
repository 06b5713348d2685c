//! Editing a message: the sender, within the edit window, not after a delete; a media
//! message edits its caption only.

use crate::error::{Error, Result};
use crate::ids::{ConversationId, UserId};
use crate::model::{Content, ConversationKind, MediaRef, Message};

use super::{Engine, Outcome, live, mentions, validate};
use crate::protocol::EditMessage;

impl Engine {
    /// Edits a message the caller sent: `text` replaces a text message's text, or a media
    /// message's caption (blank removes the caption). The message keeps its seq and gains
    /// an `edited_at`; a `message_edited` change reaches every member who can see it.
    ///
    /// Refused: a message the caller cannot see (`not_found`), someone else's message, a
    /// system notice, an edit after `Limits::edit_window_ms`, an edit across a block in a
    /// direct conversation (`forbidden`), a message deleted for everyone (`conflict`), and
    /// a text that is blank or too long (`invalid_input`). Editing to the current content
    /// changes nothing and delivers nothing.
    pub async fn edit_message(
        &self,
        actor: UserId,
        conversation: ConversationId,
        seq: i64,
        edit: EditMessage,
    ) -> Result<Outcome<Message>> {
        let EditMessage { text, mentions: list } = edit;
        validate::seq("seq", seq, 1)?;
        let l = &self.config.limits;
        let all = self.store.list_members(conversation).await?;
        let me = all
            .iter()
            .find(|m| m.user_id == actor)
            .cloned()
            .ok_or(Error::not_found("conversation"))?;
        let message = self.visible_message(&me, conversation, seq).await?;
        if message.sender_id != actor {
            return Err(Error::forbidden("only the sender edits a message"));
        }
        let content = match message.content {
            None => return Err(Error::conflict("message deleted")),
            Some(Content::System(_)) => return Err(Error::forbidden("system notices cannot be edited")),
            Some(Content::Text { .. }) => {
                let text = validate::message_text("text", &text, l.max_text_chars)?;
                mentions::check_ranges(&text, &list, l.max_mentions)?;
                Content::Text { text, mentions: list }
            }
            Some(Content::Media(_)) if !list.is_empty() => {
                return Err(Error::invalid("mentions", "a caption carries no mentions"));
            }
            Some(Content::Media(m)) => {
                let caption = if text.trim().is_empty() {
                    None
                } else {
                    Some(validate::message_text("text", &text, l.max_text_chars)?)
                };
                Content::Media(MediaRef { caption, ..m })
            }
        };
        let now = self.now();
        if now.saturating_sub(message.created_at) > l.edit_window_ms {
            return Err(Error::forbidden("the edit window has passed"));
        }
        let kind = self.conversation_kind(conversation).await?;
        if let Content::Text { mentions: list, .. } = &content {
            let ids: Vec<UserId> = all.iter().map(|m| m.user_id).collect();
            mentions::check_members(kind, list, &ids)?;
        }
        if kind == ConversationKind::Direct {
            for other in all.iter().filter(|m| m.user_id != actor) {
                if self.store.is_blocked_either_way(actor, other.user_id).await? {
                    return Err(Error::forbidden("blocked"));
                }
            }
        }
        let (mut edited, change) = self.store.edit_message(conversation, seq, &content, now).await?;
        self.fill_reactions(actor, conversation, std::slice::from_mut(&mut edited))
            .await?;
        let Some(change) = change else {
            return Ok(Outcome::new(edited));
        };
        // Members who joined after the message do not see it, nor its edits.
        let recipients: Vec<UserId> = all.iter().filter(|m| m.joined_seq < seq).map(|m| m.user_id).collect();
        Ok(Outcome::with(edited, vec![live(&recipients, change)]))
    }
}
