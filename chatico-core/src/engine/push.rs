//! Push notifications: device registration, muting, and the rules of who is pushed with
//! what (the delivery itself, with its queue and retries, is the transport's; see
//! [`crate::push`]).

use std::collections::HashSet;

use crate::error::{Error, Result};
use crate::ids::{ConversationId, Timestamp, UserId};
use crate::model::{Content, ConversationKind, SystemNotice};
use crate::protocol::RegisterPushRequest;
use crate::push::{DEFAULT_TITLE, Platform, PushDevice, PushIntent, PushKind, PushNotification};

use super::{AuthContext, Engine, Outcome, live};

/// Longest device token accepted (FCM tokens are ~160 characters, APNs tokens 64 hex digits).
const MAX_TOKEN_CHARS: usize = 4096;
/// Longest app / bundle id.
const MAX_APP_ID_CHARS: usize = 255;
/// Longest locale tag.
const MAX_LOCALE_CHARS: usize = 35;
/// Longest preview body (characters); longer texts are cut and end with `…`.
const MAX_PREVIEW_CHARS: usize = 200;

/// A token or id: `1..=max` printable ASCII characters, no spaces.
fn printable(field: &str, s: &str, max: usize) -> Result<()> {
    if s.is_empty() || s.len() > max {
        return Err(Error::invalid(field, format!("must be 1 to {max} characters")));
    }
    if !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::invalid(field, "printable ASCII without spaces only"));
    }
    Ok(())
}

impl Engine {
    /// Shows message text in pushes (title: the sender or the group, body: the text). Off
    /// by default: a push then says only "New message" and carries the conversation and seq,
    /// and the app fetches the content over its own authenticated connection.
    pub fn with_push_previews(mut self, on: bool) -> Self {
        self.push_previews = on;
        self
    }

    /// Registers the push token of the caller's session, replacing the session's previous
    /// one (the OS rotated it). The same token under another session (a new login on the
    /// same install) moves to this one. The registration ends with the session (logout,
    /// revocation) or when the provider reports the token invalid.
    pub async fn register_push(&self, ctx: AuthContext, req: RegisterPushRequest) -> Result<PushDevice> {
        printable("token", &req.token, MAX_TOKEN_CHARS)?;
        if req.platform == Platform::Apns && !req.token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::invalid("token", "an APNs device token is hexadecimal"));
        }
        printable("app_id", &req.app_id, MAX_APP_ID_CHARS)?;
        if let Some(l) = &req.locale
            && (l.is_empty()
                || l.len() > MAX_LOCALE_CHARS
                || !l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        {
            return Err(Error::invalid("locale", "a BCP 47 tag such as fr-CA"));
        }
        let device = PushDevice {
            session_id: ctx.session_id,
            user_id: ctx.user_id,
            platform: req.platform,
            token: req.token,
            app_id: req.app_id,
            locale: req.locale,
            updated_at: self.now(),
        };
        self.store.register_push_device(&device).await?;
        Ok(device)
    }

    /// Removes the push token of the caller's session; false if there was none.
    pub async fn unregister_push(&self, ctx: AuthContext) -> Result<bool> {
        self.store.unregister_push_device(ctx.session_id).await
    }

    /// Mutes a conversation's pushes for the caller (all their devices) until `until`
    /// (a future time, ms since the Unix epoch) or until unmuted. The `muted` change reaches
    /// the caller's devices like other per-user conversation state.
    pub async fn mute(
        &self,
        actor: UserId,
        conversation: ConversationId,
        until: Option<Timestamp>,
    ) -> Result<Outcome<()>> {
        if let Some(u) = until
            && u <= self.now()
        {
            return Err(Error::invalid("until", "must be in the future"));
        }
        self.member(actor, conversation).await?;
        let change = self.store.set_mute(conversation, actor, true, until).await?;
        Ok(Outcome::with(
            (),
            change.map(|c| live(&[actor], c)).into_iter().collect(),
        ))
    }

    /// Lifts the caller's mute of a conversation (nothing changes when it was not muted).
    pub async fn unmute(&self, actor: UserId, conversation: ConversationId) -> Result<Outcome<()>> {
        self.member(actor, conversation).await?;
        let change = self.store.set_mute(conversation, actor, false, None).await?;
        Ok(Outcome::with(
            (),
            change.map(|c| live(&[actor], c)).into_iter().collect(),
        ))
    }

    /// Removes a token the provider reported invalid (APNs `Unregistered`, FCM
    /// `UNREGISTERED`); answers how many registrations went.
    pub async fn drop_push_token(&self, platform: Platform, token: &str) -> Result<u64> {
        self.store.remove_push_token(platform, token).await
    }

    /// Which of `users` have a live connection on any node: the one place the push rules ask
    /// presence. When the shared presence cannot answer (Redis down), nobody counts as
    /// connected: a push too many beats a message nobody is told of.
    async fn push_connected(&self, users: &[UserId]) -> HashSet<UserId> {
        match self.online_set(users).await {
            Ok(online) => online,
            Err(e) => {
                tracing::warn!(error = %e, "presence unavailable: pushing as if offline");
                HashSet::new()
            }
        }
    }

    /// Who of an intent's candidates is pushed, and why: not the sender, nobody with a live
    /// connection, nobody in a block with the sender (either way), nobody who muted the
    /// conversation (an active mute) unless the message mentions them; a message mentioning
    /// the recipient is a [`PushKind::Mention`] for them (a mention beats a mute, as in
    /// WhatsApp and Slack), else one replying to one of their own messages a
    /// [`PushKind::Reply`].
    pub async fn push_recipients(&self, intent: &PushIntent) -> Result<Vec<(UserId, PushKind)>> {
        let now = self.now();
        let connected = self.push_connected(&intent.candidates).await;
        let offline: Vec<UserId> = intent
            .candidates
            .iter()
            .copied()
            .filter(|u| *u != intent.sender_id && !connected.contains(u))
            .collect();
        if offline.is_empty() {
            return Ok(Vec::new());
        }
        let blocked: HashSet<UserId> = self
            .store
            .blocked_either_way(intent.sender_id)
            .await?
            .into_iter()
            .collect();
        let muted: HashSet<UserId> = self
            .store
            .mutes(intent.conversation_id)
            .await?
            .into_iter()
            .filter(|m| m.active(now))
            .map(|m| m.user_id)
            .collect();
        let replied_to = match (intent.kind, intent.reply_to_seq) {
            (PushKind::Message, Some(r)) => self
                .store
                .get_message(intent.conversation_id, r)
                .await?
                .map(|m| m.sender_id),
            _ => None,
        };
        let mentioned = |u: &UserId| intent.kind == PushKind::Message && intent.mentioned.contains(u);
        Ok(offline
            .into_iter()
            .filter(|u| !blocked.contains(u) && (!muted.contains(u) || mentioned(u)))
            .map(|u| {
                let kind = if mentioned(&u) {
                    PushKind::Mention
                } else if replied_to == Some(u) {
                    PushKind::Reply
                } else {
                    intent.kind
                };
                (u, kind)
            })
            .collect())
    }

    /// The notifications for `user` about the message at `seq` (the newest of those
    /// collapsed together), one per registered device; empty when the user has connected
    /// since, is no longer a member, muted the conversation meanwhile (a
    /// [`PushKind::Mention`] goes through a mute), or the message is gone. Title [`DEFAULT_TITLE`] and no body unless previews are on; the badge is the
    /// user's total unread count; the collapse id is the conversation.
    pub async fn push_notifications(
        &self,
        user: UserId,
        conversation: ConversationId,
        seq: i64,
        kind: PushKind,
    ) -> Result<Vec<PushNotification>> {
        if self.push_connected(&[user]).await.contains(&user) {
            return Ok(Vec::new());
        }
        let now = self.now();
        let devices = self.store.push_devices(user, now).await?;
        if devices.is_empty() {
            return Ok(Vec::new());
        }
        let Some(me) = self.store.get_member(conversation, user).await? else {
            return Ok(Vec::new());
        };
        if seq <= me.joined_seq && kind != PushKind::Invitation {
            return Ok(Vec::new());
        }
        if kind != PushKind::Mention
            && self
                .store
                .mutes(conversation)
                .await?
                .iter()
                .any(|m| m.user_id == user && m.active(now))
        {
            return Ok(Vec::new());
        }
        let Some(message) = self.store.get_message(conversation, seq).await? else {
            return Ok(Vec::new());
        };
        let Some(content) = message.content else {
            return Ok(Vec::new()); // deleted for everyone meanwhile
        };
        let (title, body) = if self.push_previews {
            self.preview(conversation, message.sender_id, &content).await?
        } else {
            (DEFAULT_TITLE.to_owned(), None)
        };
        let badge = self.store.total_unread(user).await?;
        Ok(devices
            .into_iter()
            .map(|d| PushNotification {
                platform: d.platform,
                token: d.token,
                app_id: d.app_id,
                locale: d.locale,
                user_id: user,
                title: title.clone(),
                body: body.clone(),
                conversation_id: conversation,
                seq,
                kind,
                badge,
                collapse_id: conversation.to_string(),
            })
            .collect())
    }

    /// Title and body of a preview: the group's title or the sender's name, and the text
    /// (cut), the caption or a media label, or the invitation.
    async fn preview(
        &self,
        conversation: ConversationId,
        sender: UserId,
        content: &Content,
    ) -> Result<(String, Option<String>)> {
        let conv = self
            .store
            .get_conversation(conversation)
            .await?
            .ok_or(Error::not_found("conversation"))?;
        let sender_name = self
            .store
            .get_user(sender)
            .await?
            .map_or_else(|| DEFAULT_TITLE.to_owned(), |u| u.display_name);
        let group = (conv.kind == ConversationKind::Group).then(|| conv.title.clone().unwrap_or_default());
        let title = group.clone().unwrap_or_else(|| sender_name.clone());
        let prefix = |s: String| match &group {
            Some(_) => format!("{sender_name}: {s}"),
            None => s,
        };
        let body = match content {
            Content::Text { text, .. } => prefix(cut(text)),
            Content::Media(m) => prefix(m.caption.as_deref().map_or_else(|| "Photo".to_owned(), cut)),
            Content::System(SystemNotice::GroupCreated { .. } | SystemNotice::MembersAdded { .. }) => {
                format!("{sender_name} added you")
            }
            Content::System(_) => return Ok((title, None)),
        };
        Ok((title, Some(body)))
    }
}

fn cut(s: &str) -> String {
    if s.chars().count() <= MAX_PREVIEW_CHARS {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(MAX_PREVIEW_CHARS - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn previews_are_cut() {
        let long = "é".repeat(300);
        let c = super::cut(&long);
        assert_eq!(c.chars().count(), super::MAX_PREVIEW_CHARS);
        assert!(c.ends_with('…'));
        assert_eq!(super::cut("hi"), "hi");
    }
}
