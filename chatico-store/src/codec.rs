//! What both SQL backends share below the statements: column encodings (roles, kinds,
//! content JSON, change payloads), row decoding through [`RowExt`] (rows, conversation-list
//! summaries, sync pages), and the planning step of a group-commit batch.

use std::collections::HashMap;

use chatico_core::ids::{ConversationId, MessageId, Phone, SessionId, UserId};
use chatico_core::model::{
    BlobMeta, BlobPurpose, Content, Conversation, ConversationKind, ConversationSummary, Member, MemberInfo, Message,
    NewMessage, Role, Session, User,
};
use chatico_core::push::{Platform, PushDevice};
use chatico_core::sync::{Change, ChangeKind, SyncCursor, SyncPage};
use chatico_core::{Error, Result};
use serde::Deserialize;
use sqlx::{ColumnIndex, Decode, Type};

use crate::writer::InsertResult;
use uuid::Uuid;

/// Typed column access that hides how each backend stores ids (SQLite: UUID text;
/// Postgres: `uuid`). Decode failures are [`Error::Internal`]: the schema is ours.
pub(crate) trait RowExt: sqlx::Row {
    fn uuid(&self, col: &str) -> Result<Uuid>;
    fn opt_uuid(&self, col: &str) -> Result<Option<Uuid>>;
    fn int(&self, col: &str) -> Result<i64>;
    fn opt_int(&self, col: &str) -> Result<Option<i64>>;
    fn text(&self, col: &str) -> Result<String>;
    fn opt_text(&self, col: &str) -> Result<Option<String>>;
    fn boolean(&self, col: &str) -> Result<bool>;
}

/// How a backend's rows hold an id column (the one column type the backends store
/// differently).
pub(crate) trait IdColumn: sqlx::Row {
    fn id_column(&self, col: &str) -> Result<Option<Uuid>>;
}

impl<R> RowExt for R
where
    R: IdColumn,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
{
    fn uuid(&self, col: &str) -> Result<Uuid> {
        self.id_column(col)?.ok_or_else(|| decode_err(col, "unexpected NULL"))
    }
    fn opt_uuid(&self, col: &str) -> Result<Option<Uuid>> {
        self.id_column(col)
    }
    fn int(&self, col: &str) -> Result<i64> {
        self.try_get(col).map_err(|e| decode_err(col, e))
    }
    fn opt_int(&self, col: &str) -> Result<Option<i64>> {
        self.try_get(col).map_err(|e| decode_err(col, e))
    }
    fn text(&self, col: &str) -> Result<String> {
        self.try_get(col).map_err(|e| decode_err(col, e))
    }
    fn opt_text(&self, col: &str) -> Result<Option<String>> {
        self.try_get(col).map_err(|e| decode_err(col, e))
    }
    fn boolean(&self, col: &str) -> Result<bool> {
        self.try_get(col).map_err(|e| decode_err(col, e))
    }
}

pub(crate) fn decode_err(col: &str, e: impl std::fmt::Display) -> Error {
    Error::internal(format!("decoding column {col}: {e}"))
}

/// A UUID kept as text (SQLite; Postgres has a native type).
#[cfg(feature = "sqlite")]
pub(crate) fn parse_uuid(col: &str, s: &str) -> Result<Uuid> {
    Uuid::parse_str(s).map_err(|e| decode_err(col, e))
}

pub(crate) fn kind_str(kind: ConversationKind) -> &'static str {
    match kind {
        ConversationKind::Direct => "direct",
        ConversationKind::Group => "group",
    }
}

fn parse_kind(s: &str) -> Result<ConversationKind> {
    match s {
        "direct" => Ok(ConversationKind::Direct),
        "group" => Ok(ConversationKind::Group),
        other => Err(decode_err("kind", other)),
    }
}

fn parse_role(s: &str) -> Result<Role> {
    Role::parse(s).ok_or_else(|| decode_err("role", s))
}

pub(crate) fn purpose_str(p: BlobPurpose) -> &'static str {
    match p {
        BlobPurpose::Avatar => "avatar",
        BlobPurpose::Media => "media",
    }
}

fn parse_purpose(s: &str) -> Result<BlobPurpose> {
    match s {
        "avatar" => Ok(BlobPurpose::Avatar),
        "media" => Ok(BlobPurpose::Media),
        other => Err(decode_err("purpose", other)),
    }
}

/// The stored form of a message's content: compact JSON, serde tag first, so a media
/// message's starts with `{"type":"media",` — what the partial index `messages_blob_key`
/// (both dialects) selects media messages by (pinned by a test below).
pub(crate) fn content_json(c: &Content) -> Result<String> {
    serde_json::to_string(c).map_err(|e| Error::internal(format!("encoding content: {e}")))
}

fn parse_content(s: Option<String>) -> Result<Option<Content>> {
    s.map(|s| serde_json::from_str(&s).map_err(|e| decode_err("content", e)))
        .transpose()
}

/// The lowercase form `search_users` matches against (Rust's Unicode lowercase, so both
/// backends agree with the in-memory store whatever the database's collation).
pub(crate) fn name_lower(name: &str) -> String {
    name.to_lowercase()
}

pub(crate) fn user_from_row(r: &impl RowExt) -> Result<User> {
    Ok(User {
        id: UserId(r.uuid("id")?),
        phone: Phone::parse(&r.text("phone")?).map_err(|e| decode_err("phone", e))?,
        display_name: r.text("display_name")?,
        bio: r.text("bio")?,
        avatar_url: r.opt_text("avatar_url")?,
        created_at: r.int("created_at")?,
        last_seen_at: r.opt_int("last_seen_at")?,
    })
}

pub(crate) fn session_from_row(r: &impl RowExt) -> Result<Session> {
    Ok(Session {
        id: SessionId(r.uuid("id")?),
        user_id: UserId(r.uuid("user_id")?),
        refresh_hash: r.text("refresh_hash")?,
        created_at: r.int("created_at")?,
        expires_at: r.int("expires_at")?,
        device: r.opt_text("device")?,
    })
}

pub(crate) fn push_device_from_row(r: &impl RowExt) -> Result<PushDevice> {
    Ok(PushDevice {
        session_id: SessionId(r.uuid("session_id")?),
        user_id: UserId(r.uuid("user_id")?),
        platform: Platform::parse(&r.text("platform")?)?,
        token: r.text("token")?,
        app_id: r.text("app_id")?,
        locale: r.opt_text("locale")?,
        updated_at: r.int("updated_at")?,
    })
}

pub(crate) fn conversation_from_row(r: &impl RowExt) -> Result<Conversation> {
    Ok(Conversation {
        id: ConversationId(r.uuid("id")?),
        kind: parse_kind(&r.text("kind")?)?,
        title: r.opt_text("title")?,
        avatar_url: r.opt_text("avatar_url")?,
        created_by: UserId(r.uuid("created_by")?),
        created_at: r.int("created_at")?,
        last_seq: r.int("last_seq")?,
    })
}

/// Decodes a member from columns named with `prefix` (`""` for a plain `members` row).
pub(crate) fn member_from_row(r: &impl RowExt, prefix: &str) -> Result<Member> {
    let c = |name: &str| format!("{prefix}{name}");
    Ok(Member {
        conversation_id: ConversationId(r.uuid(&c("conversation_id"))?),
        user_id: UserId(r.uuid(&c("user_id"))?),
        role: parse_role(&r.text(&c("role"))?)?,
        archived: r.boolean(&c("archived"))?,
        delivered_seq: r.int(&c("delivered_seq"))?,
        read_seq: r.int(&c("read_seq"))?,
        joined_at: r.int(&c("joined_at"))?,
        joined_seq: r.int(&c("joined_seq"))?,
    })
}

/// Decodes a message from columns named with `prefix`.
pub(crate) fn message_from_row(r: &impl RowExt, prefix: &str) -> Result<Message> {
    let c = |name: &str| format!("{prefix}{name}");
    Ok(Message {
        id: MessageId(r.uuid(&c("id"))?),
        conversation_id: ConversationId(r.uuid(&c("conversation_id"))?),
        seq: r.int(&c("seq"))?,
        sender_id: UserId(r.uuid(&c("sender_id"))?),
        client_msg_id: r.text(&c("client_msg_id"))?,
        content: parse_content(r.opt_text(&c("content"))?)?,
        reply_to_seq: r.opt_int(&c("reply_to_seq"))?,
        created_at: r.int(&c("created_at"))?,
        deleted_at: r.opt_int(&c("deleted_at"))?,
        edited_at: r.opt_int(&c("edited_at"))?,
        reactions: Vec::new(),
    })
}

pub(crate) fn blob_from_row(r: &impl RowExt) -> Result<BlobMeta> {
    let dim = |col: &str| -> Result<Option<u32>> {
        r.opt_int(col)?
            .map(|v| u32::try_from(v).map_err(|e| decode_err(col, e)))
            .transpose()
    };
    Ok(BlobMeta {
        key: r.text("key")?,
        owner_id: UserId(r.uuid("owner_id")?),
        content_type: r.text("content_type")?,
        size: u64::try_from(r.int("size")?).map_err(|e| decode_err("size", e))?,
        width: dim("width")?,
        height: dim("height")?,
        purpose: parse_purpose(&r.text("purpose")?)?,
        created_at: r.int("created_at")?,
    })
}

/// A change to write. Message changes are stored as a reference (`msg_seq`, resolved by a
/// join when read); the others store their [`ChangeKind`] as JSON. `kind` is kept to build
/// the [`Change`] the write method returns once the position is known.
#[derive(Debug, Clone)]
pub(crate) struct NewChange {
    pub conversation_id: Option<ConversationId>,
    pub target_user: Option<UserId>,
    pub msg_seq: Option<i64>,
    pub payload: Option<String>,
    pub kind: ChangeKind,
}

impl NewChange {
    /// A conversation change (seen by the conversation's current members).
    pub fn conversation(conversation: ConversationId, kind: ChangeKind) -> Result<Self> {
        Ok(NewChange {
            conversation_id: Some(conversation),
            target_user: None,
            msg_seq: None,
            payload: Some(payload(&kind)?),
            kind,
        })
    }

    /// A change seen by `user` alone.
    pub fn targeted(user: UserId, conversation: Option<ConversationId>, kind: ChangeKind) -> Result<Self> {
        Ok(NewChange {
            conversation_id: conversation,
            target_user: Some(user),
            msg_seq: None,
            payload: Some(payload(&kind)?),
            kind,
        })
    }

    /// A conversation change about the message at `seq` (an edit, a reaction): stored with
    /// its payload and `msg_seq`, so an edit's content is resolved by the sync join.
    pub fn about_message(conversation: ConversationId, seq: i64, kind: ChangeKind) -> Result<Self> {
        Ok(NewChange {
            msg_seq: Some(seq),
            ..Self::conversation(conversation, kind)?
        })
    }

    /// A new message, stored as a reference.
    pub fn message(message: &Message) -> Self {
        NewChange {
            conversation_id: Some(message.conversation_id),
            target_user: None,
            msg_seq: Some(message.seq),
            payload: None,
            kind: ChangeKind::Message {
                message: message.clone(),
            },
        }
    }

    /// The change as `sync` returns it, at `pos`.
    pub fn at(self, pos: i64) -> Change {
        Change {
            pos,
            conversation_id: self.conversation_id,
            kind: self.kind,
        }
    }

    /// The columns to write.
    pub fn row(&self) -> ChangeRow<'_> {
        ChangeRow {
            conversation_id: self.conversation_id.map(|c| c.0),
            target_user: self.target_user.map(|u| u.0),
            msg_seq: self.msg_seq,
            payload: self.payload.as_deref(),
        }
    }
}

/// The columns of a change-log row, as a backend appends it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChangeRow<'a> {
    pub conversation_id: Option<Uuid>,
    pub target_user: Option<Uuid>,
    pub msg_seq: Option<i64>,
    pub payload: Option<&'a str>,
}

impl ChangeRow<'_> {
    /// A new message's change: a reference to it (no payload).
    pub fn message(m: &Message) -> Self {
        ChangeRow {
            conversation_id: Some(m.conversation_id.0),
            target_user: None,
            msg_seq: Some(m.seq),
            payload: None,
        }
    }
}

fn payload(kind: &ChangeKind) -> Result<String> {
    serde_json::to_string(kind).map_err(|e| Error::internal(format!("encoding change: {e}")))
}

/// Decodes a sync row: `pos`, `conversation_id`, `msg_seq`, `payload`, and the joined
/// message's columns prefixed `m_` (NULL when the change is not a message).
pub(crate) fn change_from_row(r: &impl RowExt) -> Result<Change> {
    let pos = r.int("pos")?;
    let conversation_id = r.opt_uuid("conversation_id")?.map(ConversationId);
    let payload = r.opt_text("payload")?;
    let kind = match (r.opt_int("msg_seq")?, payload) {
        (Some(_), None) => ChangeKind::Message {
            message: message_from_row(r, "m_")?,
        },
        (_, Some(p)) => match serde_json::from_str(&p).map_err(|e| decode_err("payload", e))? {
            // An edit reads as the content now (its latest edit; none once deleted).
            ChangeKind::MessageEdited {
                seq,
                edited_at,
                content,
            } => ChangeKind::MessageEdited {
                seq,
                content: match r.opt_int("m_seq")? {
                    Some(_) => parse_content(r.opt_text("m_content")?)?,
                    None => content,
                },
                edited_at,
            },
            other => other,
        },
        (None, None) => return Err(decode_err("payload", "missing")),
    };
    Ok(Change {
        pos,
        conversation_id,
        kind,
    })
}

/// A member as the conversation list aggregates it (JSON built by the database).
#[derive(Debug, Deserialize)]
struct MemberJson {
    user_id: Uuid,
    role: String,
    display_name: Option<String>,
    avatar_url: Option<String>,
    delivered_seq: i64,
    read_seq: i64,
    joined_at: i64,
}

/// Decodes the JSON array of members built by `list_conversations`, ordered like
/// `list_members` (join time, then user id).
pub(crate) fn members_from_json(json: &str) -> Result<Vec<MemberInfo>> {
    let mut raw: Vec<MemberJson> = serde_json::from_str(json).map_err(|e| decode_err("members", e))?;
    raw.sort_by_key(|m| (m.joined_at, m.user_id));
    raw.into_iter()
        .map(|m| {
            Ok(MemberInfo {
                user_id: UserId(m.user_id),
                role: parse_role(&m.role)?,
                display_name: m.display_name.unwrap_or_default(),
                avatar_url: m.avatar_url,
                delivered_seq: m.delivered_seq,
                read_seq: m.read_seq,
            })
        })
        .collect()
}

/// Decodes a row of the conversation list: the conversation, the caller's membership
/// (`me_*`), the newest message visible to them (`m_*`, NULL if none) and the members
/// (`members_json`).
pub(crate) fn summary_from_row(r: &impl RowExt) -> Result<ConversationSummary> {
    let conversation = conversation_from_row(r)?;
    let me = member_from_row(r, "me_")?;
    let last_message = match r.opt_int("m_seq")? {
        Some(_) => Some(message_from_row(r, "m_")?),
        None => None,
    };
    let members = members_from_json(&r.text("members_json")?)?;
    let pinned_at = r.opt_int("pinned_at")?;
    Ok(ConversationSummary {
        unread: (conversation.last_seq - me.read_seq).max(0),
        muted: false,
        muted_until: None,
        unread_mentions: r.int("unread_mentions")?,
        pinned: pinned_at.is_some(),
        pinned_at,
        conversation,
        me,
        last_message,
        members,
    })
}

/// Builds a page from the sync statement's rows (`latest` on every row; an empty page is
/// one row whose `pos` is NULL). Not limited: the cursor moves to the newest pos read in the
/// same statement, since every change the user may see up to it was returned.
pub(crate) fn sync_page(rows: &[impl RowExt], since: SyncCursor, limit: u32) -> Result<SyncPage> {
    let latest = match rows.first() {
        Some(r) => r.int("latest")?,
        None => since,
    };
    let mut changes = Vec::with_capacity(rows.len().min(limit as usize));
    let mut limited = false;
    for r in rows {
        if r.opt_int("pos")?.is_none() {
            continue;
        }
        if changes.len() == limit as usize {
            limited = true;
            break;
        }
        changes.push(change_from_row(r)?);
    }
    let next = if limited {
        changes.last().map_or(since, |c| c.pos)
    } else {
        since.max(latest)
    };
    Ok(SyncPage { changes, next, limited })
}

// ---- group-commit planning ---------------------------------------------------------------

/// What a batch of `insert_message` requests turns into, decided before writing anything:
/// which requests return an existing message, which fail alone, and the new rows with
/// their seqs.
pub(crate) struct BatchPlan {
    pub outcomes: Vec<Planned>,
    /// New messages in insertion order, seqs assigned.
    pub new_messages: Vec<Message>,
}

pub(crate) enum Planned {
    /// Already stored before this batch (returned with `false`).
    Existing(Box<Message>),
    /// Inserted by this batch: index into `new_messages`; `true` for the first request
    /// with its key, `false` for a duplicate inside the batch.
    New(usize, bool),
    Failed(Error),
}

/// Plans a batch. `existing` holds the already-stored messages among the requests' keys;
/// `last_seq` the current `last_seq` of every requested conversation that exists.
pub(crate) fn plan_batch(
    requests: &[NewMessage],
    existing: &HashMap<(UserId, String), Message>,
    last_seq: &HashMap<ConversationId, i64>,
) -> BatchPlan {
    let mut next: HashMap<ConversationId, i64> = HashMap::new();
    let mut in_batch: HashMap<(UserId, &str), usize> = HashMap::new();
    let mut outcomes = Vec::with_capacity(requests.len());
    let mut new_messages = Vec::with_capacity(requests.len());
    for req in requests {
        let key = (req.sender_id, req.client_msg_id.clone());
        if let Some(m) = existing.get(&key) {
            outcomes.push(Planned::Existing(Box::new(m.clone())));
            continue;
        }
        if let Some(&i) = in_batch.get(&(req.sender_id, req.client_msg_id.as_str())) {
            outcomes.push(Planned::New(i, false));
            continue;
        }
        let Some(&base) = last_seq.get(&req.conversation_id) else {
            outcomes.push(Planned::Failed(Error::not_found("conversation")));
            continue;
        };
        let seq = next.entry(req.conversation_id).or_insert(base);
        *seq += 1;
        let idx = new_messages.len();
        new_messages.push(Message {
            id: req.id,
            conversation_id: req.conversation_id,
            seq: *seq,
            sender_id: req.sender_id,
            client_msg_id: req.client_msg_id.clone(),
            content: Some(req.content.clone()),
            reply_to_seq: req.reply_to_seq,
            created_at: req.created_at,
            deleted_at: None,
            edited_at: None,
            reactions: Vec::new(),
        });
        in_batch.insert((req.sender_id, req.client_msg_id.as_str()), idx);
        outcomes.push(Planned::New(idx, true));
    }
    BatchPlan { outcomes, new_messages }
}

impl BatchPlan {
    /// The per-request results once the batch has committed; `positions[i]` is the pos of
    /// `new_messages[i]`'s change.
    pub fn into_results(self, positions: &[i64]) -> Vec<InsertResult> {
        let BatchPlan { outcomes, new_messages } = self;
        outcomes
            .into_iter()
            .map(|o| match o {
                Planned::Existing(m) => Ok((*m, None)),
                Planned::New(i, created) => {
                    let m = new_messages
                        .get(i)
                        .cloned()
                        .ok_or_else(|| Error::internal("batch plan index out of range"))?;
                    let change = match created {
                        false => None,
                        true => {
                            let pos = *positions
                                .get(i)
                                .ok_or_else(|| Error::internal("batch position missing"))?;
                            Some(NewChange::message(&m).at(pos))
                        }
                    };
                    Ok((m, change))
                }
                Planned::Failed(e) => Err(e),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use chatico_core::model::{Content, MediaRef, SystemNotice};

    use super::content_json;

    /// How a media message's content JSON starts.
    const MEDIA_CONTENT_PREFIX: &str = r#"{"type":"media","#;

    /// The blob-key index of both SQL dialects selects media messages by the first 16
    /// characters of their content JSON: media content must start with them, and no other
    /// content may.
    #[test]
    fn media_content_json_starts_with_the_indexed_prefix() {
        assert_eq!(MEDIA_CONTENT_PREFIX.len(), 16);
        let predicate = format!("substr(content, 1, 16) = '{MEDIA_CONTENT_PREFIX}'");
        for migration in [
            include_str!("../migrations/sqlite/0003_media_blob_keys.sql"),
            include_str!("../migrations/postgres/0002_media_blob_keys.sql"),
        ] {
            assert!(migration.contains(&predicate), "{migration}");
        }
        let in_query = format!("substr(m.content, 1, 16) = '{MEDIA_CONTENT_PREFIX}'");
        #[cfg(feature = "sqlite")]
        assert!(crate::sqlite::queries::SQL.blob_shared_with.contains(&in_query));
        #[cfg(feature = "postgres")]
        assert!(crate::postgres::queries::SQL.blob_shared_with.contains(&in_query));
        let _ = in_query;
        let media = Content::Media(MediaRef {
            blob_key: "k".into(),
            content_type: "image/png".into(),
            size: 1,
            width: None,
            height: None,
            caption: Some(MEDIA_CONTENT_PREFIX.into()),
        });
        assert!(content_json(&media).expect("json").starts_with(MEDIA_CONTENT_PREFIX));
        for other in [
            Content::text(MEDIA_CONTENT_PREFIX),
            Content::System(SystemNotice::GroupCreated {
                title: MEDIA_CONTENT_PREFIX.into(),
            }),
        ] {
            assert!(!content_json(&other).expect("json").starts_with(MEDIA_CONTENT_PREFIX));
        }
    }
}
