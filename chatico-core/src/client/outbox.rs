use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::ids::{ClientMsgId, ConversationId, Timestamp, time_ordered_uuid};
use crate::model::{Content, Message};

/// A message the app asked to send that the server has not acknowledged yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingMessage {
    /// The conversation to post to.
    pub conversation_id: ConversationId,
    /// Chosen once, kept across every retry: the server's idempotency key.
    pub client_msg_id: ClientMsgId,
    /// The message body.
    pub content: Content,
    /// Seq of the message it replies to, if any.
    pub reply_to_seq: Option<i64>,
    /// When the app queued it (ms since the Unix epoch).
    pub queued_at: Timestamp,
    /// How many times it was handed to the transport.
    pub attempts: u32,
}

/// Unacknowledged sends, in the order the app made them. Serializable, so an app can persist
/// it and resend after a restart.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outbox {
    pending: Vec<PendingMessage>,
}

impl Outbox {
    /// An empty outbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues a message with a fresh `client_msg_id` and returns it.
    pub fn enqueue(
        &mut self,
        conversation_id: ConversationId,
        content: Content,
        reply_to_seq: Option<i64>,
        now: Timestamp,
    ) -> PendingMessage {
        let p = PendingMessage {
            conversation_id,
            client_msg_id: time_ordered_uuid(now).to_string(),
            content,
            reply_to_seq,
            queued_at: now,
            attempts: 0,
        };
        self.pending.push(p.clone());
        p
    }

    /// Everything still pending, oldest first: what to (re)send after a (re)connect.
    pub fn pending(&self) -> &[PendingMessage] {
        &self.pending
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Notes that a message was handed to the transport (for diagnostics and backoff).
    pub fn mark_attempt(&mut self, client_msg_id: &str) {
        if let Some(p) = self.pending.iter_mut().find(|p| p.client_msg_id == client_msg_id) {
            p.attempts += 1;
        }
    }

    /// The server acknowledged the send: the message leaves the outbox.
    pub fn acknowledge(&mut self, message: &Message) -> Option<PendingMessage> {
        self.take(&message.client_msg_id)
    }

    /// The server refused the send. Errors that a retry cannot fix (invalid input, not found,
    /// forbidden, too large, conflict) drop the message and return it so the app can show
    /// the failure; transient ones (unavailable, rate limited, internal, unauthorized — the
    /// client refreshes its token) keep it for the next attempt and return `None`.
    pub fn reject(&mut self, client_msg_id: &str, error: &Error) -> Option<PendingMessage> {
        if Self::is_permanent(error) {
            self.take(client_msg_id)
        } else {
            None
        }
    }

    /// Whether an error means a resend can never succeed.
    pub fn is_permanent(error: &Error) -> bool {
        matches!(
            error,
            Error::InvalidInput { .. }
                | Error::NotFound { .. }
                | Error::Forbidden { .. }
                | Error::TooLarge { .. }
                | Error::Conflict { .. }
        )
    }

    fn take(&mut self, client_msg_id: &str) -> Option<PendingMessage> {
        let i = self.pending.iter().position(|p| p.client_msg_id == client_msg_id)?;
        Some(self.pending.remove(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{MessageId, UserId};

    fn text(s: &str) -> Content {
        Content::text(s)
    }

    #[test]
    fn keeps_order_and_ids_until_acknowledged() {
        let conv = ConversationId::new(1);
        let mut o = Outbox::new();
        let a = o.enqueue(conv, text("a"), None, 10);
        let b = o.enqueue(conv, text("b"), None, 11);
        assert_ne!(a.client_msg_id, b.client_msg_id);
        o.mark_attempt(&a.client_msg_id);
        o.mark_attempt(&a.client_msg_id);
        assert_eq!(o.pending()[0].attempts, 2);
        // A transient failure keeps the message (same id for the retry).
        assert!(o.reject(&a.client_msg_id, &Error::unavailable("db")).is_none());
        assert_eq!(o.pending().len(), 2);
        let acked = Message {
            id: MessageId::new(12),
            conversation_id: conv,
            seq: 1,
            sender_id: UserId::new(1),
            client_msg_id: a.client_msg_id.clone(),
            content: Some(text("a")),
            reply_to_seq: None,
            created_at: 12,
            deleted_at: None,
            edited_at: None,
            reactions: Vec::new(),
        };
        assert_eq!(o.acknowledge(&acked).map(|p| p.client_msg_id), Some(a.client_msg_id));
        assert_eq!(o.pending(), std::slice::from_ref(&b));
        // A permanent failure drops it.
        assert!(
            o.reject(&b.client_msg_id, &Error::invalid("content", "too long"))
                .is_some()
        );
        assert!(o.is_empty());
    }

    #[test]
    fn survives_serialization() {
        let mut o = Outbox::new();
        o.enqueue(ConversationId::new(1), text("x"), Some(3), 5);
        let json = serde_json::to_string(&o).expect("ser");
        let back: Outbox = serde_json::from_str(&json).expect("de");
        assert_eq!(back, o);
    }
}
