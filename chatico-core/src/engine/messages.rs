//! Messages: send, history, deletes, receipts.

use crate::error::{Error, Result};
use crate::ids::{BlobKey, ConversationId, MessageId, UserId};
use crate::model::{Content, ConversationKind, HistoryQuery, MediaRef, Member, Message, NewMessage};

use super::{Engine, Outcome, SendMessage, live, mentions, page, validate};

impl Engine {
    /// Sends a message. Idempotent on `(caller, client_msg_id)`: a retry returns the
    /// original message and delivers nothing new. Refused in a direct conversation across
    /// a block. A text's mentions name current members of a group, by ranges inside the
    /// text (`InvalidInput("mentions")` otherwise). A media message must reference a blob
    /// the caller registered; its type, size and dimensions are taken from the registered
    /// blob.
    pub async fn send(&self, actor: UserId, req: SendMessage) -> Result<Outcome<Message>> {
        let l = &self.config.limits;
        validate::token("client_msg_id", &req.client_msg_id, l.max_client_msg_id_chars)?;
        if let Some(r) = req.reply_to_seq {
            validate::seq("reply_to_seq", r, 1)?;
        }
        let content = match req.content {
            Content::Text { text, mentions: list } => {
                let text = validate::message_text("text", &text, l.max_text_chars)?;
                mentions::check_ranges(&text, &list, l.max_mentions)?;
                Content::Text { text, mentions: list }
            }
            Content::Media(m) => {
                let caption = match m.caption {
                    Some(c) if c.trim().is_empty() => None,
                    Some(c) => Some(validate::message_text("caption", &c, l.max_text_chars)?),
                    None => None,
                };
                BlobKey::parse_field("blob_key", &m.blob_key)?;
                Content::Media(MediaRef { caption, ..m })
            }
            Content::System(_) => return Err(Error::invalid("content", "system notices are written by the server")),
        };
        // One read for the membership check and the recipients (a send is on every chat's
        // hot path: each store call is a round trip, and on SQLite a thread hop).
        let all = self.store.list_members(req.conversation_id).await?;
        let me = all
            .iter()
            .find(|m| m.user_id == actor)
            .cloned()
            .ok_or(Error::not_found("conversation"))?;
        let members: Vec<UserId> = all.into_iter().map(|m| m.user_id).collect();
        // The conversation itself is read only for a reply (its last seq bounds the target);
        // otherwise its kind, which never changes, is enough.
        let kind = match req.reply_to_seq {
            Some(r) => {
                let conv = self
                    .store
                    .get_conversation(req.conversation_id)
                    .await?
                    .ok_or(Error::not_found("conversation"))?;
                if r > conv.last_seq || r <= me.joined_seq {
                    return Err(Error::invalid("reply_to_seq", "no such message"));
                }
                self.remember_kind(conv.id, conv.kind);
                conv.kind
            }
            None => self.conversation_kind(req.conversation_id).await?,
        };
        let content = match content {
            Content::Media(m) => {
                let blob = self
                    .store
                    .get_blob(&m.blob_key)
                    .await?
                    .ok_or(Error::not_found("blob"))?;
                if blob.owner_id != actor {
                    return Err(Error::forbidden("media must reference your own upload"));
                }
                Content::Media(MediaRef {
                    blob_key: blob.key,
                    content_type: blob.content_type,
                    size: blob.size,
                    width: blob.width,
                    height: blob.height,
                    caption: m.caption,
                })
            }
            other => other,
        };
        if let Content::Text { mentions: list, .. } = &content {
            mentions::check_members(kind, list, &members)?;
        }
        if kind == ConversationKind::Direct {
            for other in members.iter().filter(|u| **u != actor) {
                if self.store.is_blocked_either_way(actor, *other).await? {
                    return Err(Error::forbidden("blocked"));
                }
            }
        }
        let now = self.now();
        let new = NewMessage {
            id: MessageId::new(now),
            conversation_id: req.conversation_id,
            sender_id: actor,
            client_msg_id: req.client_msg_id,
            content,
            reply_to_seq: req.reply_to_seq,
            created_at: now,
        };
        let (message, change) = self.store.insert_message(&new).await?;
        let Some(change) = change else {
            if message.conversation_id != req.conversation_id {
                return Err(Error::conflict("client_msg_id already used in another conversation"));
            }
            return Ok(Outcome::new(message));
        };
        Ok(Outcome::with(message, vec![live(&members, change)]))
    }

    /// A page of history by seq (ascending), as the caller sees it: without messages hidden
    /// for them and without what came before they joined. `limit` is clamped.
    pub async fn history(
        &self,
        actor: UserId,
        conversation: ConversationId,
        query: HistoryQuery,
    ) -> Result<Vec<Message>> {
        if let Some(a) = query.anchor {
            validate::seq("anchor", a, 0)?;
        }
        let query = HistoryQuery {
            limit: page(query.limit, self.config.limits.max_history_page),
            ..query
        };
        self.member(actor, conversation).await?;
        let mut page = self.store.history(conversation, actor, query).await?;
        self.fill_reactions(actor, conversation, &mut page).await?;
        Ok(page)
    }

    /// A message the caller can see (`NotFound("message")` otherwise).
    pub(super) async fn visible_message(&self, me: &Member, conversation: ConversationId, seq: i64) -> Result<Message> {
        validate::seq("seq", seq, 1)?;
        if seq <= me.joined_seq {
            return Err(Error::not_found("message"));
        }
        self.store
            .get_message(conversation, seq)
            .await?
            .ok_or(Error::not_found("message"))
    }

    /// Hides a message for the caller only (all their devices).
    pub async fn delete_for_me(&self, actor: UserId, conversation: ConversationId, seq: i64) -> Result<Outcome<()>> {
        validate::seq("seq", seq, 1)?;
        let me = self.member(actor, conversation).await?;
        self.visible_message(&me, conversation, seq).await?;
        let change = self.store.hide_message(actor, conversation, seq).await?;
        Ok(Outcome::with(
            (),
            change.map(|c| live(&[actor], c)).into_iter().collect(),
        ))
    }

    /// Deletes a message for everyone: its content is gone from every read, the seq stays
    /// as a tombstone. Allowed to the sender, and in a group to the owner and admins.
    pub async fn delete_for_everyone(
        &self,
        actor: UserId,
        conversation: ConversationId,
        seq: i64,
    ) -> Result<Outcome<Message>> {
        validate::seq("seq", seq, 1)?;
        let (conv, me) = self.membership(actor, conversation).await?;
        let message = self.visible_message(&me, conversation, seq).await?;
        if matches!(message.content, Some(Content::System(_))) {
            return Err(Error::forbidden("system notices cannot be deleted"));
        }
        let moderator = conv.kind == ConversationKind::Group && me.role.can_manage_members();
        if message.sender_id != actor && !moderator {
            return Err(Error::forbidden(
                "only the sender or a group admin deletes for everyone",
            ));
        }
        if message.deleted_at.is_some() {
            return Ok(Outcome::new(message));
        }
        let (tombstone, change) = self
            .store
            .delete_message_for_everyone(conversation, seq, self.now())
            .await?;
        let Some(change) = change else {
            return Ok(Outcome::new(tombstone));
        };
        let recipients = self.member_ids(conversation).await?;
        Ok(Outcome::with(tombstone, vec![live(&recipients, change)]))
    }

    /// Moves the caller's delivered watermark to `seq` (monotonic, clamped to the last seq).
    /// The `receipt` change reaches the members, except those in a block with the caller
    /// (either way).
    pub async fn mark_delivered(
        &self,
        actor: UserId,
        conversation: ConversationId,
        seq: i64,
    ) -> Result<Outcome<Member>> {
        self.receipt(actor, conversation, Some(seq), None).await
    }

    /// Moves the caller's read (and delivered) watermark to `seq` (monotonic, clamped).
    pub async fn mark_read(&self, actor: UserId, conversation: ConversationId, seq: i64) -> Result<Outcome<Member>> {
        self.receipt(actor, conversation, None, Some(seq)).await
    }

    /// Moves the caller's watermarks as a receipt asks (REST `receipts`, WebSocket
    /// `receipt`): `read` first (it moves delivered too), then `delivered` only when it goes
    /// further than `read`. At least one of the two is required. Answers the caller's
    /// membership after the last move, with the deliveries of every move.
    pub async fn mark_receipts(
        &self,
        actor: UserId,
        conversation: ConversationId,
        delivered: Option<i64>,
        read: Option<i64>,
    ) -> Result<Outcome<Member>> {
        if delivered.is_none() && read.is_none() {
            return Err(Error::invalid("delivered_seq", "give delivered_seq, read_seq or both"));
        }
        let mut deliveries = Vec::new();
        let mut member = None;
        if let Some(r) = read {
            let o = self.mark_read(actor, conversation, r).await?;
            deliveries.extend(o.deliveries);
            member = Some(o.value);
        }
        if let Some(d) = delivered
            && read.is_none_or(|r| d > r)
        {
            let o = self.mark_delivered(actor, conversation, d).await?;
            deliveries.extend(o.deliveries);
            member = Some(o.value);
        }
        let member = member.ok_or_else(|| Error::internal("receipt without a result"))?;
        Ok(Outcome::with(member, deliveries))
    }

    async fn receipt(
        &self,
        actor: UserId,
        conversation: ConversationId,
        delivered: Option<i64>,
        read: Option<i64>,
    ) -> Result<Outcome<Member>> {
        for v in delivered.iter().chain(read.iter()) {
            validate::seq("seq", *v, 0)?;
        }
        self.member(actor, conversation).await?;
        let (after, change) = self.store.update_receipts(conversation, actor, delivered, read).await?;
        let Some(change) = change else {
            return Ok(Outcome::new(after));
        };
        // Watermarks do not cross a block (either way): see `Engine::hide_blocked_receipts`.
        let blocked = self.store.blocked_either_way(actor).await?;
        let recipients: Vec<UserId> = self
            .member_ids(conversation)
            .await?
            .into_iter()
            .filter(|u| !blocked.contains(u))
            .collect();
        Ok(Outcome::with(after, vec![live(&recipients, change)]))
    }
}
