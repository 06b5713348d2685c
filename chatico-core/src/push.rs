//! Push notifications for devices without a live connection: the model, the
//! [`PushSender`] port, and the pure parts of the pipeline (which delivery calls for a push,
//! what a notification carries, how an app reads one back).
//!
//! The pipeline, end to end:
//!
//! 1. After a message is committed and acknowledged, the gateway hands each of its
//!    deliveries to [`intent_of`]: a new message (text, media, a group's creation, members
//!    added) becomes a [`PushIntent`]; everything else is ignored. This is pure and cheap, so
//!    a send's hot path pays nothing more.
//! 2. Off the send path, [`Engine::push_recipients`](crate::Engine::push_recipients) applies
//!    the rules: never the sender, never someone with a live connection, never across a
//!    block, never a conversation the recipient muted; invitations only to the invited.
//! 3. The gateway collapses what one user gets for one conversation within a window, then
//!    [`Engine::push_notifications`](crate::Engine::push_notifications) builds one
//!    [`PushNotification`] per registered device: no message text unless the host opted in
//!    to previews, the badge is the user's total unread count, the collapse id is the
//!    conversation.
//! 4. A [`PushSender`] (APNs, FCM in `chatico-transport`) delivers it; a [`PushError`] says
//!    whether to retry (and when), to drop the token, or to give up.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::SendSyncOutsideWasm;
use crate::error::{Error, Result};
use crate::ids::{ConversationId, SessionId, Timestamp, UserId};
use crate::model::{Content, SystemNotice};
use crate::sync::{ChangeKind, Delivery, Event};

/// The title of a notification without preview: the payload carries no message text.
pub const DEFAULT_TITLE: &str = "New message";

/// The data keys every notification carries (APNs: top-level keys beside `aps`; FCM: the
/// `data` map, whose values are strings). [`parse_payload`] reads them back.
pub mod keys {
    /// The conversation id (UUID text).
    pub const CONVERSATION: &str = "chatico_conversation";
    /// The seq to open (decimal text).
    pub const SEQ: &str = "chatico_seq";
    /// `message`, `reply` or `invitation`.
    pub const KIND: &str = "chatico_kind";
}

/// Which push service delivers to a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    /// Apple Push Notification service (iOS, iPadOS, macOS apps).
    Apns,
    /// Firebase Cloud Messaging (Android, and apps that route Apple devices through FCM).
    Fcm,
}

impl Platform {
    /// The stored and wire name (`apns`, `fcm`).
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Apns => "apns",
            Platform::Fcm => "fcm",
        }
    }

    /// The platform of a stored name.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "apns" => Ok(Platform::Apns),
            "fcm" => Ok(Platform::Fcm),
            _ => Err(Error::invalid("platform", "expected apns or fcm")),
        }
    }
}

/// One device's registration, held per session (a session has at most one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushDevice {
    /// The session (device login) that registered it; it goes when the session goes.
    pub session_id: SessionId,
    /// Its user.
    pub user_id: UserId,
    /// The service that delivers to it.
    pub platform: Platform,
    /// The provider's device token (APNs hex token, FCM registration token).
    pub token: String,
    /// The app's bundle id (APNs topic) or Android package / Firebase app.
    pub app_id: String,
    /// The device's locale (BCP 47, e.g. `fr-CA`), for localised titles by a host.
    pub locale: Option<String>,
    /// When it was registered or last replaced (ms since the Unix epoch).
    pub updated_at: Timestamp,
}

/// A conversation a user muted: no pushes from it until `until` (forever when `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mute {
    /// The user who muted it.
    pub user_id: UserId,
    /// End of the mute (ms since the Unix epoch), or `None` for "until unmuted".
    pub until: Option<Timestamp>,
}

impl Mute {
    /// Whether it silences pushes at `now`.
    pub fn active(&self, now: Timestamp) -> bool {
        self.until.is_none_or(|u| u > now)
    }
}

/// Why a user is pushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PushKind {
    /// A new message in one of their conversations.
    Message,
    /// A reply to one of their messages.
    Reply,
    /// They were added to a group (at its creation or later).
    Invitation,
    /// A message mentioning them: pushed even when they muted the conversation.
    Mention,
}

impl PushKind {
    /// The wire name (`message`, `reply`, `invitation`, `mention`).
    pub fn as_str(self) -> &'static str {
        match self {
            PushKind::Message => "message",
            PushKind::Reply => "reply",
            PushKind::Invitation => "invitation",
            PushKind::Mention => "mention",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "message" => Some(PushKind::Message),
            "reply" => Some(PushKind::Reply),
            "invitation" => Some(PushKind::Invitation),
            "mention" => Some(PushKind::Mention),
            _ => None,
        }
    }
}

/// A committed message that may call for pushes: what [`intent_of`] reads from a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushIntent {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// The message's seq.
    pub seq: i64,
    /// Who sent it (never pushed).
    pub sender_id: UserId,
    /// Invitation or message (a message becomes a reply per recipient, see
    /// [`Engine::push_recipients`](crate::Engine::push_recipients)).
    pub kind: PushKind,
    /// The seq it replies to, if any.
    pub reply_to_seq: Option<i64>,
    /// The users the message's text mentions (a mention is pushed through a mute).
    pub mentioned: Vec<UserId>,
    /// Who may be pushed: the delivery's recipients without the sender (for members added,
    /// only the added users).
    pub candidates: Vec<UserId>,
}

/// The push a delivery calls for, if any: a new message (text or media) to its recipients,
/// a group's creation and members added to the users invited. Other changes (receipts,
/// deletions, other notices) never push. Pure and cheap: called on every delivery.
pub fn intent_of(delivery: &Delivery) -> Option<PushIntent> {
    let Event::Change(change) = &delivery.event else {
        return None;
    };
    let ChangeKind::Message { message } = &change.kind else {
        return None;
    };
    let sender = message.sender_id;
    let others = || delivery.recipients.iter().copied().filter(|u| *u != sender).collect();
    let (kind, candidates): (PushKind, Vec<UserId>) = match message.content.as_ref()? {
        Content::Text { .. } | Content::Media(_) => (PushKind::Message, others()),
        Content::System(SystemNotice::GroupCreated { .. }) => (PushKind::Invitation, others()),
        Content::System(SystemNotice::MembersAdded { users }) => (
            PushKind::Invitation,
            users
                .iter()
                .copied()
                .filter(|u| *u != sender && delivery.recipients.contains(u))
                .collect(),
        ),
        Content::System(_) => return None,
    };
    if candidates.is_empty() {
        return None;
    }
    Some(PushIntent {
        conversation_id: message.conversation_id,
        seq: message.seq,
        sender_id: sender,
        kind,
        reply_to_seq: message.reply_to_seq,
        mentioned: message.content.as_ref().map(Content::mentioned).unwrap_or_default(),
        candidates,
    })
}

/// One notification to one device, as a [`PushSender`] delivers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushNotification {
    /// The device's service.
    pub platform: Platform,
    /// The device token.
    pub token: String,
    /// Bundle id / app id the token belongs to (the APNs topic).
    pub app_id: String,
    /// The device's locale, if registered.
    pub locale: Option<String>,
    /// The user it is for.
    pub user_id: UserId,
    /// The visible title: [`DEFAULT_TITLE`] unless previews are on.
    pub title: String,
    /// The visible body: `None` unless previews are on (then the text or a media label).
    pub body: Option<String>,
    /// The conversation to open.
    pub conversation_id: ConversationId,
    /// The seq to open.
    pub seq: i64,
    /// Why.
    pub kind: PushKind,
    /// The user's total unread count (the app icon badge).
    pub badge: i64,
    /// Notifications with the same id replace each other on the device (APNs
    /// `apns-collapse-id`, FCM `collapse_key`): the conversation id.
    pub collapse_id: String,
}

impl PushNotification {
    /// The data keys of [`keys`] with their values, for the payload's custom data.
    pub fn data(&self) -> [(&'static str, String); 3] {
        [
            (keys::CONVERSATION, self.conversation_id.to_string()),
            (keys::SEQ, self.seq.to_string()),
            (keys::KIND, self.kind.as_str().to_owned()),
        ]
    }
}

/// What an app opens for a received push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushTarget {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// The message seq.
    pub seq: i64,
    /// Why it was pushed.
    pub kind: PushKind,
}

/// Reads a received push's data back: `payload` is the JSON of the APNs `userInfo`
/// dictionary or the FCM `data` map (or a whole FCM message with `data` inside). Values may
/// be strings or (APNs) numbers. `invalid_input` when it is not a ChatiCO push.
pub fn parse_payload(payload: &str) -> Result<PushTarget> {
    let v: serde_json::Value =
        serde_json::from_str(payload).map_err(|e| Error::invalid("payload", format!("not JSON: {e}")))?;
    let obj = match v.get("data") {
        Some(d) if d.is_object() && v.get(keys::CONVERSATION).is_none() => d,
        _ => &v,
    };
    let text = |k: &str| -> Option<String> {
        match obj.get(k)? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let conversation_id = text(keys::CONVERSATION)
        .and_then(|s| s.parse::<uuid::Uuid>().ok())
        .map(ConversationId)
        .ok_or_else(|| Error::invalid("payload", "no chatico_conversation"))?;
    let seq = text(keys::SEQ)
        .and_then(|s| s.parse::<i64>().ok())
        .filter(|s| *s >= 1)
        .ok_or_else(|| Error::invalid("payload", "no valid chatico_seq"))?;
    let kind = match text(keys::KIND) {
        Some(k) => PushKind::parse(&k).ok_or_else(|| Error::invalid("payload", "unknown chatico_kind"))?,
        None => PushKind::Message,
    };
    Ok(PushTarget {
        conversation_id,
        seq,
        kind,
    })
}

/// Why a push was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// The provider says the token is no longer valid (APNs 410 `Unregistered` or 400
    /// `BadDeviceToken`, FCM `UNREGISTERED`): remove it.
    #[error("device token no longer valid")]
    Unregistered,
    /// A transient failure (429, 5xx, timeout, connection refused): try again, not before
    /// `retry_after` when the provider said (`Retry-After`).
    #[error("transient push failure: {reason}")]
    Retry {
        /// When the provider asked to come back, if it did.
        retry_after: Option<Duration>,
        /// What happened (for the log).
        reason: String,
    },
    /// A permanent failure for this notification (bad credentials, a malformed request,
    /// no sender for the platform): logged, not retried.
    #[error("push refused: {0}")]
    Rejected(String),
}

/// Delivers notifications to one or more push services (adapters in `chatico-transport`,
/// features `apns` and `fcm`). An implementation makes one attempt: the caller retries.
#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
pub trait PushSender: SendSyncOutsideWasm {
    /// Sends one notification, once.
    async fn send(&self, notification: &PushNotification) -> std::result::Result<(), PushError>;
}

/// Routes each notification to the sender of its platform: how a host configures APNs and
/// FCM together.
#[derive(Default)]
pub struct PushRouter {
    apns: Option<std::sync::Arc<dyn PushSender>>,
    fcm: Option<std::sync::Arc<dyn PushSender>>,
}

impl std::fmt::Debug for PushRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushRouter")
            .field("apns", &self.apns.is_some())
            .field("fcm", &self.fcm.is_some())
            .finish()
    }
}

impl PushRouter {
    /// A router with no sender (every notification is `Rejected` until one is set).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends `platform`'s notifications with `sender`.
    pub fn with(mut self, platform: Platform, sender: std::sync::Arc<dyn PushSender>) -> Self {
        match platform {
            Platform::Apns => self.apns = Some(sender),
            Platform::Fcm => self.fcm = Some(sender),
        }
        self
    }

    /// Whether any sender is configured.
    pub fn is_empty(&self) -> bool {
        self.apns.is_none() && self.fcm.is_none()
    }
}

#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
impl PushSender for PushRouter {
    async fn send(&self, n: &PushNotification) -> std::result::Result<(), PushError> {
        let sender = match n.platform {
            Platform::Apns => self.apns.as_ref(),
            Platform::Fcm => self.fcm.as_ref(),
        };
        match sender {
            Some(s) => s.send(n).await,
            None => Err(PushError::Rejected(format!(
                "no push sender configured for {}",
                n.platform.as_str()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::MessageId;
    use crate::model::Message;
    use crate::sync::Change;

    fn u(n: u128) -> UserId {
        UserId(uuid::Uuid::from_u128(n))
    }

    fn c(n: u128) -> ConversationId {
        ConversationId(uuid::Uuid::from_u128(n))
    }

    fn message(sender: UserId, content: Content) -> Delivery {
        let c = c(7);
        Delivery {
            recipients: vec![u(1), u(2), u(3)],
            event: Event::Change(Change {
                pos: 9,
                conversation_id: Some(c),
                kind: ChangeKind::Message {
                    message: Message {
                        id: MessageId::new(1),
                        conversation_id: c,
                        seq: 4,
                        sender_id: sender,
                        client_msg_id: "x".into(),
                        content: Some(content),
                        reply_to_seq: Some(2),
                        created_at: 1,
                        deleted_at: None,
                        edited_at: None,
                        reactions: Vec::new(),
                    },
                },
            }),
        }
    }

    #[test]
    fn messages_push_everyone_but_the_sender() {
        let i = intent_of(&message(u(2), Content::text("hi"))).unwrap();
        assert_eq!(i.candidates, vec![u(1), u(3)]);
        assert_eq!((i.seq, i.kind, i.reply_to_seq), (4, PushKind::Message, Some(2)));
    }

    #[test]
    fn members_added_push_only_the_invited_and_other_notices_nobody() {
        let added = SystemNotice::MembersAdded {
            users: vec![u(3), u(2)],
        };
        let i = intent_of(&message(u(2), Content::System(added))).unwrap();
        assert_eq!((i.kind, i.candidates), (PushKind::Invitation, vec![u(3)]));
        let left = SystemNotice::MemberLeft { user: u(3) };
        assert_eq!(intent_of(&message(u(2), Content::System(left))), None);
        let typing = Delivery {
            recipients: vec![u(1)],
            event: Event::Typing {
                conversation_id: c(1),
                user_id: u(2),
                typing: true,
                expires_at: None,
            },
        };
        assert_eq!(intent_of(&typing), None);
    }

    #[test]
    fn payloads_read_back_from_apns_and_fcm_shapes() {
        let c = c(5);
        let apns =
            format!(r#"{{"aps":{{"badge":3}},"chatico_conversation":"{c}","chatico_seq":12,"chatico_kind":"reply"}}"#);
        let t = parse_payload(&apns).unwrap();
        assert_eq!((t.conversation_id, t.seq, t.kind), (c, 12, PushKind::Reply));
        let fcm = format!(r#"{{"data":{{"chatico_conversation":"{c}","chatico_seq":"3"}}}}"#);
        let t = parse_payload(&fcm).unwrap();
        assert_eq!((t.seq, t.kind), (3, PushKind::Message));
        for bad in [
            "nope",
            "{}",
            r#"{"chatico_conversation":"x","chatico_seq":"1"}"#,
            &format!(r#"{{"chatico_conversation":"{c}","chatico_seq":"0"}}"#),
            &format!(r#"{{"chatico_conversation":"{c}","chatico_seq":"1","chatico_kind":"z"}}"#),
        ] {
            let e = parse_payload(bad).unwrap_err();
            assert_eq!(e.code(), crate::ErrorCode::InvalidInput, "{bad}");
        }
    }

    #[test]
    fn mutes_end_at_their_time() {
        let m = Mute {
            user_id: u(1),
            until: Some(100),
        };
        assert!(m.active(99) && !m.active(100));
        assert!(Mute { until: None, ..m }.active(i64::MAX));
    }
}
