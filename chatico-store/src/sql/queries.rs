//! The statements both dialects run as they are. Parameters are `$N`: Postgres's own form,
//! and one SQLite reads as a numbered parameter too (sqlx binds `$N` to the N-th argument on
//! both), so a statement can use one twice. What the dialects write differently is in
//! `sqlite/queries.rs` and `postgres/queries.rs`.

pub const INSERT_USER: &str = "INSERT INTO users (id, phone, display_name, name_lower, bio, created_at) \
     VALUES ($1, $2, $3, $4, '', $5) ON CONFLICT (phone) DO NOTHING \
     RETURNING id, phone, display_name, bio, avatar_url, created_at, last_seen_at";
pub const GET_USER_BY_PHONE: &str =
    "SELECT id, phone, display_name, bio, avatar_url, created_at, last_seen_at FROM users WHERE phone = $1";
pub const GET_USER: &str =
    "SELECT id, phone, display_name, bio, avatar_url, created_at, last_seen_at FROM users WHERE id = $1";
/// $2/$3 display name (+lower), $4 bio, $5 whether the avatar is set, $6 the avatar.
pub const UPDATE_PROFILE: &str = "UPDATE users SET \
       display_name = COALESCE($2, display_name), name_lower = COALESCE($3, name_lower), \
       bio = COALESCE($4, bio), avatar_url = CASE WHEN $5 THEN $6 ELSE avatar_url END \
     WHERE id = $1 \
     RETURNING id, phone, display_name, bio, avatar_url, created_at, last_seen_at";
pub const SET_LAST_SEEN: &str = "UPDATE users SET last_seen_at = $2 WHERE id = $1";

pub const INSERT_SESSION: &str = "INSERT INTO sessions (id, user_id, refresh_hash, created_at, expires_at, device) \
     VALUES ($1, $2, $3, $4, $5, $6)";
pub const GET_SESSION: &str =
    "SELECT id, user_id, refresh_hash, created_at, expires_at, device FROM sessions WHERE id = $1";
pub const ROTATE_SESSION: &str =
    "UPDATE sessions SET refresh_hash = $3, expires_at = $4 WHERE id = $1 AND refresh_hash = $2";
pub const DELETE_SESSION: &str = "DELETE FROM sessions WHERE id = $1";
pub const DELETE_USER_SESSIONS: &str = "DELETE FROM sessions WHERE user_id = $1";

pub const INSERT_CONTACT: &str =
    "INSERT INTO contacts (owner_id, contact_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
pub const DELETE_CONTACT: &str = "DELETE FROM contacts WHERE owner_id = $1 AND contact_id = $2";
pub const CONTACT_OWNERS: &str = "SELECT owner_id AS id FROM contacts WHERE contact_id = $1";
pub const INSERT_BLOCK: &str =
    "INSERT INTO blocks (blocker_id, blocked_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
pub const DELETE_BLOCK: &str = "DELETE FROM blocks WHERE blocker_id = $1 AND blocked_id = $2";
pub const IS_BLOCKED_EITHER_WAY: &str = "SELECT 1 AS hit FROM blocks \
     WHERE (blocker_id = $1 AND blocked_id = $2) OR (blocker_id = $2 AND blocked_id = $1) LIMIT 1";
pub const BLOCKED_EITHER_WAY: &str = "SELECT blocked_id AS id FROM blocks WHERE blocker_id = $1 \
     UNION SELECT blocker_id FROM blocks WHERE blocked_id = $1";

pub const GET_CONVERSATION: &str =
    "SELECT id, kind, title, avatar_url, created_by, created_at, last_seq FROM conversations WHERE id = $1";
pub const FIND_DIRECT: &str = "SELECT c.id, c.kind, c.title, c.avatar_url, c.created_by, c.created_at, c.last_seq \
     FROM direct_pairs d JOIN conversations c ON c.id = d.conversation_id \
     WHERE d.user_lo = $1 AND d.user_hi = $2";
/// Inserting the pair first makes a concurrent creator of the same pair wait for (or, on
/// SQLite, queue behind) the first and then find its conversation.
pub const INSERT_DIRECT_PAIR: &str = "INSERT INTO direct_pairs (user_lo, user_hi, conversation_id) \
     VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
pub const INSERT_CONVERSATION: &str = "INSERT INTO conversations \
     (id, kind, title, avatar_url, created_by, created_at, last_seq) VALUES ($1, $2, $3, $4, $5, $6, 0)";
pub const SET_CONVERSATION: &str = "UPDATE conversations SET title = $2, avatar_url = $3 WHERE id = $1";

pub const GET_MEMBER: &str = "SELECT conversation_id, user_id, role, archived, delivered_seq, read_seq, joined_at, \
       joined_seq \
     FROM members WHERE conversation_id = $1 AND user_id = $2";
pub const LIST_MEMBERS: &str = "SELECT conversation_id, user_id, role, archived, delivered_seq, read_seq, joined_at, \
       joined_seq \
     FROM members WHERE conversation_id = $1 ORDER BY joined_at, user_id";
pub const DELETE_MEMBER: &str = "DELETE FROM members WHERE conversation_id = $1 AND user_id = $2";
pub const SET_ROLE: &str = "UPDATE members SET role = $3 WHERE conversation_id = $1 AND user_id = $2";
pub const SET_ARCHIVED: &str = "UPDATE members SET archived = $3 WHERE conversation_id = $1 AND user_id = $2";
pub const SET_RECEIPTS: &str =
    "UPDATE members SET delivered_seq = $3, read_seq = $4 WHERE conversation_id = $1 AND user_id = $2";

pub const GET_MESSAGE: &str = "SELECT conversation_id, seq, id, sender_id, client_msg_id, content, reply_to_seq, \
       created_at, deleted_at, edited_at \
     FROM messages WHERE conversation_id = $1 AND seq = $2";
/// A message by its idempotency key `(sender, client_msg_id)` (a retried send).
pub const GET_MESSAGE_BY_CLIENT_ID: &str = "SELECT conversation_id, seq, id, sender_id, client_msg_id, content, \
       reply_to_seq, created_at, deleted_at, edited_at \
     FROM messages WHERE sender_id = $1 AND client_msg_id = $2";
/// $1 conversation, $2 viewer, $3 anchor (exclusive), $4 limit; newest first.
pub const HISTORY_BEFORE: &str = "SELECT m.conversation_id, m.seq, m.id, m.sender_id, m.client_msg_id, m.content, \
       m.reply_to_seq, m.created_at, m.deleted_at, m.edited_at \
     FROM messages m \
     WHERE m.conversation_id = $1 AND m.seq < $3 \
       AND m.seq > COALESCE((SELECT joined_seq FROM members WHERE conversation_id = $1 AND user_id = $2), 0) \
       AND NOT EXISTS (SELECT 1 FROM hidden_messages h \
                        WHERE h.user_id = $2 AND h.conversation_id = $1 AND h.seq = m.seq) \
     ORDER BY m.seq DESC LIMIT $4";
pub const TOMBSTONE_MESSAGE: &str = "UPDATE messages SET content = NULL, deleted_at = $3 \
     WHERE conversation_id = $1 AND seq = $2 AND deleted_at IS NULL";
/// $1 conversation, $2 seq, $3 content JSON, $4 now: an edit (never of a deleted message).
pub const EDIT_MESSAGE: &str = "UPDATE messages SET content = $3, edited_at = $4 \
     WHERE conversation_id = $1 AND seq = $2 AND deleted_at IS NULL";
/// $1 conversation, $2 seq, $3 emoji: columns `distinct_emoji` (on the message) and `has`
/// (whether `$3` is among them).
pub const REACTION_EMOJI: &str = "SELECT CAST(COUNT(DISTINCT emoji) AS BIGINT) AS distinct_emoji, \
       CAST(COALESCE(MAX(CASE WHEN emoji = $3 THEN 1 ELSE 0 END), 0) AS BIGINT) AS has \
     FROM reactions WHERE conversation_id = $1 AND seq = $2";
/// $1 conversation, $2 seq, $3 user, $4 emoji, $5 now.
pub const INSERT_REACTION: &str = "INSERT INTO reactions (conversation_id, seq, user_id, emoji, created_at) \
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING";
/// $1 conversation, $2 seq, $3 user, $4 emoji.
pub const DELETE_REACTION: &str =
    "DELETE FROM reactions WHERE conversation_id = $1 AND seq = $2 AND user_id = $3 AND emoji = $4";
/// $1 conversation, $2 from seq, $3 to seq (inclusive): reactions of messages not deleted.
pub const REACTIONS: &str = "SELECT r.seq, r.user_id, r.emoji, r.created_at FROM reactions r \
     JOIN messages m ON m.conversation_id = r.conversation_id AND m.seq = r.seq \
     WHERE r.conversation_id = $1 AND r.seq >= $2 AND r.seq <= $3 AND m.deleted_at IS NULL \
     ORDER BY r.seq, r.created_at, r.user_id, r.emoji";
pub const HIDE_MESSAGE: &str =
    "INSERT INTO hidden_messages (user_id, conversation_id, seq) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";

pub const INSERT_BLOB: &str = "INSERT INTO blobs \
     (key, owner_id, content_type, size, width, height, purpose, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
pub const GET_BLOB: &str =
    "SELECT key, owner_id, content_type, size, width, height, purpose, created_at FROM blobs WHERE key = $1";
pub const DELETE_BLOB: &str = "DELETE FROM blobs WHERE key = $1";

// ---- pieces of the dialects' statements ---------------------------------------------------

/// The columns of a conversation-list row (`codec::summary_from_row`): the conversation `c`,
/// the caller's membership `me` (`me_*`) and the newest message visible to them `lm` (`m_*`).
macro_rules! summary_columns {
    () => {
        "SELECT c.id, c.kind, c.title, c.avatar_url, c.created_by, c.created_at, c.last_seq,
       me.conversation_id AS me_conversation_id, me.user_id AS me_user_id, me.role AS me_role,
       me.archived AS me_archived, me.delivered_seq AS me_delivered_seq, me.read_seq AS me_read_seq,
       me.joined_at AS me_joined_at, me.joined_seq AS me_joined_seq,
       lm.conversation_id AS m_conversation_id, lm.seq AS m_seq, lm.id AS m_id, lm.sender_id AS m_sender_id,
       lm.client_msg_id AS m_client_msg_id, lm.content AS m_content, lm.reply_to_seq AS m_reply_to_seq,
       lm.created_at AS m_created_at, lm.deleted_at AS m_deleted_at, lm.edited_at AS m_edited_at,
"
    };
}
pub(crate) use summary_columns;

// ---- push devices and mutes ----------------------------------------------------------------

/// $1 session, $2 user, $3 platform, $4 token, $5 app id, $6 locale, $7 now: the session's
/// device, replacing its previous one; writes nothing when the session does not exist.
pub const UPSERT_PUSH_DEVICE: &str = "INSERT INTO push_devices \
     (session_id, user_id, platform, token, app_id, locale, updated_at) \
     SELECT $1, $2, $3, $4, $5, $6, $7 FROM sessions WHERE id = $1 \
     ON CONFLICT (session_id) DO UPDATE SET user_id = excluded.user_id, platform = excluded.platform, \
       token = excluded.token, app_id = excluded.app_id, locale = excluded.locale, updated_at = excluded.updated_at";
/// $1 platform, $2 token, $3 the session keeping it.
pub const DELETE_PUSH_TOKEN_ELSEWHERE: &str =
    "DELETE FROM push_devices WHERE platform = $1 AND token = $2 AND session_id <> $3";
/// $1 platform, $2 token.
pub const DELETE_PUSH_TOKEN: &str = "DELETE FROM push_devices WHERE platform = $1 AND token = $2";
/// $1 session.
pub const DELETE_PUSH_DEVICE: &str = "DELETE FROM push_devices WHERE session_id = $1";
/// $1 user.
pub const DELETE_USER_PUSH_DEVICES: &str = "DELETE FROM push_devices WHERE user_id = $1";
/// $1 user, $2 now: devices of live sessions.
pub const PUSH_DEVICES: &str = "SELECT d.session_id, d.user_id, d.platform, d.token, d.app_id, d.locale, d.updated_at \
     FROM push_devices d JOIN sessions s ON s.id = d.session_id \
     WHERE d.user_id = $1 AND s.expires_at > $2 ORDER BY d.session_id";
/// $1 conversation, $2 user: column `muted_until` (a row = muted).
pub const GET_MUTE: &str = "SELECT muted_until FROM mutes WHERE conversation_id = $1 AND user_id = $2";
/// $1 conversation, $2 user, $3 until.
pub const UPSERT_MUTE: &str = "INSERT INTO mutes (conversation_id, user_id, muted_until) VALUES ($1, $2, $3) \
     ON CONFLICT (conversation_id, user_id) DO UPDATE SET muted_until = excluded.muted_until";
/// $1 conversation, $2 user.
pub const DELETE_MUTE: &str = "DELETE FROM mutes WHERE conversation_id = $1 AND user_id = $2";
/// $1 conversation: mutes of current members.
pub const MUTES: &str = "SELECT mu.user_id, mu.muted_until FROM mutes mu \
     JOIN members m ON m.conversation_id = mu.conversation_id AND m.user_id = mu.user_id \
     WHERE mu.conversation_id = $1 ORDER BY mu.user_id";
/// $1 user: every mute of the user.
pub const USER_MUTES: &str =
    "SELECT conversation_id, muted_until FROM mutes WHERE user_id = $1 ORDER BY conversation_id";
/// $1 user, $2 conversation: column `pinned_at` (a row = pinned).
pub const GET_PIN: &str = "SELECT pinned_at FROM pins WHERE user_id = $1 AND conversation_id = $2";
/// $1 user: column `n`, how many conversations the user has pinned.
pub const COUNT_PINS: &str = "SELECT COUNT(*) AS n FROM pins WHERE user_id = $1";
/// $1 user, $2 conversation, $3 now.
pub const INSERT_PIN: &str = "INSERT INTO pins (user_id, conversation_id, pinned_at) VALUES ($1, $2, $3)";
/// $1 user, $2 conversation.
pub const DELETE_PIN: &str = "DELETE FROM pins WHERE user_id = $1 AND conversation_id = $2";
/// $1 user: column `total`, the unread count over their conversations.
pub const TOTAL_UNREAD: &str = "SELECT CAST(COALESCE(SUM(CASE WHEN c.last_seq > m.read_seq \
       THEN c.last_seq - m.read_seq ELSE 0 END), 0) AS BIGINT) AS total \
     FROM members m JOIN conversations c ON c.id = m.conversation_id WHERE m.user_id = $1";

/// The columns of a sync row (`codec::change_from_row`): the change `ch` and the message it
/// refers to `m` (`m_*`, NULL for other changes).
macro_rules! change_columns {
    () => {
        "    SELECT ch.pos, ch.conversation_id, ch.msg_seq, ch.payload,
           m.conversation_id AS m_conversation_id, m.seq AS m_seq, m.id AS m_id, m.sender_id AS m_sender_id,
           m.client_msg_id AS m_client_msg_id, m.content AS m_content, m.reply_to_seq AS m_reply_to_seq,
           m.created_at AS m_created_at, m.deleted_at AS m_deleted_at, m.edited_at AS m_edited_at
"
    };
}
pub(crate) use change_columns;

/// $1 conversation, $2 viewer, $3 anchor (exclusive), $4 limit; oldest first. The argument
/// is the dialect's two-argument maximum (`max` / `GREATEST`).
macro_rules! history_after {
    ($greatest:literal) => {
        concat!(
            "SELECT m.conversation_id, m.seq, m.id, m.sender_id, m.client_msg_id, m.content, \
               m.reply_to_seq, m.created_at, m.deleted_at, m.edited_at \
             FROM messages m \
             WHERE m.conversation_id = $1 \
               AND m.seq > ",
            $greatest,
            "($3, COALESCE((SELECT joined_seq FROM members WHERE conversation_id = $1 AND user_id = $2), 0)) \
               AND NOT EXISTS (SELECT 1 FROM hidden_messages h \
                                WHERE h.user_id = $2 AND h.conversation_id = $1 AND h.seq = m.seq) \
             ORDER BY m.seq ASC LIMIT $4"
        )
    };
}
pub(crate) use history_after;

/// $1 from (exclusive), $2 to (inclusive): the users the changes in that range concern
/// (`Store::audience`). A targeted change concerns its target; a conversation change the
/// current members who joined at or before it, so per conversation only its last change in
/// the range matters. Reads the position range of the `changes` primary key and each
/// conversation's members by the `members` primary key.
pub const AUDIENCE: &str = "\
SELECT target_user AS id FROM changes WHERE pos > $1 AND pos <= $2 AND target_user IS NOT NULL
UNION
SELECT mb.user_id FROM (
    SELECT conversation_id, MAX(pos) AS last FROM changes
     WHERE pos > $1 AND pos <= $2 AND target_user IS NULL AND conversation_id IS NOT NULL
     GROUP BY conversation_id
  ) c
  JOIN members mb ON mb.conversation_id = c.conversation_id
 WHERE mb.joined_pos <= c.last";
