//! (Public so that tests and tools can inspect the query plans.)
//! The SQLite statements that differ from Postgres's (the shared ones are in
//! `crate::sql::queries`). Lists of values travel as one JSON array parameter read with
//! `json_each`, so every statement text is fixed (prepared once, cached) whatever the batch
//! size. `BEGIN IMMEDIATE` holds the write lock, so the `lock_*` statements lock nothing more.

use crate::sql::Dialect;
pub use crate::sql::queries::{AUDIENCE, GET_MESSAGE_BY_CLIENT_ID, HISTORY_BEFORE};
use crate::sql::queries::{change_columns, history_after, summary_columns};

/// The dialect's statements (see the crate-private `Dialect` for each one's parameters).
pub const SQL: Dialect = Dialect {
    get_users: "SELECT id, phone, display_name, bio, avatar_url, created_at, last_seen_at FROM users \
     WHERE id IN (SELECT value FROM json_each($1))",
    search_users: "SELECT id, phone, display_name, bio, avatar_url, created_at, last_seen_at \
         FROM users \
         WHERE ($1 IS NULL OR instr(name_lower, $1) > 0 OR substr(phone, 1, length($1)) = $1) \
           AND ($2 IS NULL OR id > $2) \
         ORDER BY id LIMIT $3",
    list_contacts: "SELECT u.id, u.phone, u.display_name, u.bio, u.avatar_url, u.created_at, \
       u.last_seen_at \
     FROM contacts c JOIN users u ON u.id = c.contact_id \
     WHERE c.owner_id = $1 ORDER BY u.display_name, u.id",
    list_blocked: "SELECT u.id, u.phone, u.display_name, u.bio, u.avatar_url, u.created_at, \
       u.last_seen_at \
     FROM blocks b JOIN users u ON u.id = b.blocked_id \
     WHERE b.blocker_id = $1 ORDER BY u.display_name, u.id",
    lock_conversation: crate::sql::queries::GET_CONVERSATION,
    lock_member: crate::sql::queries::GET_MEMBER,
    lock_message: crate::sql::queries::GET_MESSAGE,
    lock_member_with_last_seq: "SELECT m.conversation_id, m.user_id, m.role, m.archived, m.delivered_seq, m.read_seq, \
           m.joined_at, m.joined_seq, c.last_seq \
         FROM members m JOIN conversations c ON c.id = m.conversation_id \
         WHERE m.conversation_id = $1 AND m.user_id = $2",
    // $1 user (SQLite's single writer already serializes every write).
    lock_user: "SELECT id FROM users WHERE id = $1",
    // The user's conversations, pinned first (newest pin first), then newest activity (the
    // newest message's time, hidden or not, else the creation time; ties by id, descending),
    // each with the caller's membership, their pin, their unread mentions (a count over the
    // `message_mentions` primary key), the newest message visible to them (`m_*`) and every
    // member with enough profile to draw the list (a JSON array): the whole screen in one
    // statement. The page is chosen first on cheap columns (`page`, materialized), so the
    // last message and the members are built for the returned rows only.
    list_conversations: concat!(
        "\
WITH page AS MATERIALIZED (
  SELECT c.id AS cid, p.pinned_at,
         COALESCE((SELECT newest.created_at FROM messages newest
                    WHERE newest.conversation_id = c.id AND newest.seq = c.last_seq), c.created_at) AS activity
    FROM members me
    JOIN conversations c ON c.id = me.conversation_id
    LEFT JOIN pins p ON p.user_id = $1 AND p.conversation_id = c.id
   WHERE me.user_id = $1 AND me.archived = $2
   ORDER BY p.pinned_at IS NULL, p.pinned_at DESC, activity DESC, c.id DESC
   LIMIT $3)
",
        summary_columns!(),
        "       page.pinned_at AS pinned_at,
       (SELECT COUNT(*) FROM message_mentions mn
         WHERE mn.user_id = $1 AND mn.conversation_id = page.cid AND mn.seq > me.read_seq
           AND NOT EXISTS (SELECT 1 FROM hidden_messages h
                            WHERE h.user_id = $1 AND h.conversation_id = mn.conversation_id
                              AND h.seq = mn.seq)) AS unread_mentions,
       (SELECT json_group_array(json_object(
                 'user_id', mm.user_id, 'role', mm.role, 'display_name', u.display_name,
                 'avatar_url', u.avatar_url, 'delivered_seq', mm.delivered_seq,
                 'read_seq', mm.read_seq, 'joined_at', mm.joined_at))
          FROM members mm LEFT JOIN users u ON u.id = mm.user_id
         WHERE mm.conversation_id = c.id) AS members_json
  FROM page
  JOIN conversations c ON c.id = page.cid
  JOIN members me ON me.conversation_id = page.cid AND me.user_id = $1
  LEFT JOIN messages lm ON lm.conversation_id = me.conversation_id AND lm.seq = (
         SELECT m2.seq FROM messages m2
          WHERE m2.conversation_id = me.conversation_id AND m2.seq > me.joined_seq
            AND NOT EXISTS (SELECT 1 FROM hidden_messages h
                             WHERE h.user_id = me.user_id AND h.conversation_id = m2.conversation_id
                               AND h.seq = m2.seq)
          ORDER BY m2.seq DESC LIMIT 1)
 ORDER BY page.pinned_at IS NULL, page.pinned_at DESC, page.activity DESC, page.cid DESC"
    ),
    history_after: history_after!("max"),
    // $1 blob key, $2 user. Whether a media message referencing the key (not deleted for
    // everyone) is in one of the user's conversations above their `joined_seq`. The two
    // `content` expressions are exactly those of the partial index `messages_blob_key`
    // (migration 0003), so the lookup is an index seek, then a primary-key probe of `members`.
    blob_shared_with: "SELECT EXISTS (SELECT 1 FROM messages m \
       JOIN members mb ON mb.conversation_id = m.conversation_id AND mb.user_id = $2 \
      WHERE json_extract(m.content, '$.blob_key') = $1 \
        AND substr(m.content, 1, 16) = '{\"type\":\"media\",' \
        AND m.seq > mb.joined_seq) AS shared",
    // $1 user, $2 since, $3 limit. The positions the user may see (targeted at them, or
    // conversation changes of their conversations from their join on), then the changes with
    // message changes resolved against `messages` (so a deleted message reads as its tombstone).
    // Every row also carries the newest pos overall, read in the same statement (one snapshot),
    // and an empty page is one row of NULLs with it.
    sync: concat!(
        "\
WITH picked AS (
    SELECT pos FROM changes WHERE target_user = $1 AND pos > $2
    UNION ALL
    SELECT ch.pos FROM members mb
      JOIN changes ch ON ch.conversation_id = mb.conversation_id
     WHERE mb.user_id = $1 AND ch.target_user IS NULL AND ch.pos > $2 AND ch.pos >= mb.joined_pos
    ORDER BY pos LIMIT $3
),
latest AS (SELECT COALESCE(MAX(pos), 0) AS latest FROM changes)
SELECT latest.latest, page.*
  FROM latest LEFT JOIN (
",
        change_columns!(),
        "      FROM picked p
      JOIN changes ch ON ch.pos = p.pos
      LEFT JOIN messages m ON m.conversation_id = ch.conversation_id AND m.seq = ch.msg_seq
  ) page ON 1
 ORDER BY page.pos"
    ),
    latest_pos: "SELECT COALESCE(MAX(pos), 0) AS latest FROM changes",
    // The FTS5 index (migration 0007) gives the matching docids, ranked by bm25 (lower is
    // better); each is mapped to its message by `message_search`'s primary key and checked
    // against the viewer's membership (primary key of `members`) and hidden messages.
    search_messages: "\
SELECT m.conversation_id, m.seq, m.id, m.sender_id, m.client_msg_id, m.content, m.reply_to_seq,
       m.created_at, m.deleted_at, m.edited_at
  FROM message_fts f
  JOIN message_search s ON s.docid = f.rowid
  JOIN members mb ON mb.conversation_id = s.conversation_id AND mb.user_id = $2
  JOIN messages m ON m.conversation_id = s.conversation_id AND m.seq = s.seq
 WHERE message_fts MATCH $1
   AND s.seq > mb.joined_seq
   AND ($3 IS NULL OR s.conversation_id = $3)
   AND m.deleted_at IS NULL
   AND NOT EXISTS (SELECT 1 FROM hidden_messages h
                    WHERE h.user_id = $2 AND h.conversation_id = s.conversation_id AND h.seq = s.seq)
 ORDER BY f.rank, m.created_at DESC, m.seq DESC, m.conversation_id DESC
 LIMIT $4 OFFSET $5",
    search_query: fts5_match,
};

/// The FTS5 `MATCH` expression for the engine's terms: each a string in double quotes
/// (a quote inside doubled), so no term is syntax (`OR`, `NEAR`, `*`, `:`, ...); juxtaposed
/// strings must all match.
pub fn fts5_match(terms: &[String]) -> String {
    terms
        .iter()
        .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// What a batch needs to know before writing, in one statement: the stored messages under
/// the requests' idempotency keys (?1: JSON array of [sender_id, client_msg_id]; rows with
/// `kind = 'm'`) and the `last_seq` of the requested conversations (?2: JSON array of ids;
/// rows with `kind = 'c'`, the id in `conversation_id`, last_seq in `seq`).
pub const BATCH_READ: &str = "\
SELECT 'm' AS kind, m.conversation_id, m.seq, m.id, m.sender_id, m.client_msg_id, m.content, m.reply_to_seq,
       m.created_at, m.deleted_at, m.edited_at
  FROM json_each(?1) k
  JOIN messages m ON m.sender_id = k.value ->> 0 AND m.client_msg_id = k.value ->> 1
UNION ALL
SELECT 'c', c.id, c.last_seq, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
  FROM conversations c WHERE c.id IN (SELECT value FROM json_each(?2))";
/// ?1: JSON array of [conversation_id, seq, id, sender_id, client_msg_id, content,
/// reply_to_seq, created_at]. The `messages_advance` trigger (migration 0002) moves each
/// conversation's last_seq and each sender's watermarks.
pub const BATCH_INSERT_MESSAGES: &str = "INSERT INTO messages \
     (conversation_id, seq, id, sender_id, client_msg_id, content, reply_to_seq, created_at) \
     SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, \
            value ->> 7 \
       FROM json_each(?1) ORDER BY key";
/// ?1: JSON array of [conversation_id, target_user, msg_seq, payload]; rowids (positions)
/// follow the array order.
pub const APPEND_CHANGES: &str = "INSERT INTO changes (conversation_id, target_user, msg_seq, payload) \
     SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3 FROM json_each(?1) ORDER BY key \
     RETURNING pos";
/// ?1 conversation, ?2 now, ?3 joined seq, ?4 JSON array of [user_id, role]. Members whose
/// positions are not known yet (`joined_pos` is set once the changes are recorded, see
/// `SET_JOINED_POS`); returns the users inserted.
pub const INSERT_MEMBERS: &str = "INSERT INTO members \
     (conversation_id, user_id, role, archived, delivered_seq, read_seq, joined_at, joined_seq, joined_pos) \
     SELECT ?1, value ->> 0, value ->> 1, FALSE, ?3, ?3, ?2, ?3, 0 FROM json_each(?4) WHERE TRUE ORDER BY key \
     ON CONFLICT DO NOTHING RETURNING user_id";
/// ?1 conversation, ?2 JSON array of [user_id, joined_pos].
pub const SET_JOINED_POS: &str = "UPDATE members SET joined_pos = x.value ->> 1 \
     FROM json_each(?2) x WHERE members.conversation_id = ?1 AND members.user_id = x.value ->> 0";
