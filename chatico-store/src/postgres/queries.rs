//! (Public so that tests and tools can inspect the query plans.)
//! The Postgres statements that differ from SQLite's (the shared ones are in
//! `crate::sql::queries`). Lists travel as arrays (`UNNEST`, `= ANY`), so every statement
//! text is fixed (prepared once per connection) whatever the batch size.

use crate::sql::Dialect;
pub use crate::sql::queries::{AUDIENCE, GET_MESSAGE_BY_CLIENT_ID, HISTORY_BEFORE};
use crate::sql::queries::{change_columns, history_after, summary_columns};

/// The dialect's statements (see the crate-private `Dialect` for each one's parameters).
pub const SQL: Dialect = Dialect {
    get_users: "SELECT id, phone, display_name, bio, avatar_url, created_at, last_seen_at FROM users WHERE id = ANY($1)",
    search_users: "SELECT id, phone, display_name, bio, avatar_url, created_at, last_seen_at \
     FROM users \
     WHERE ($1::text IS NULL OR strpos(name_lower, $1) > 0 OR starts_with(phone, $1)) \
       AND ($2::uuid IS NULL OR id > $2) \
     ORDER BY id LIMIT $3",
    list_contacts: "SELECT u.id, u.phone, u.display_name, u.bio, u.avatar_url, u.created_at, \
       u.last_seen_at \
     FROM contacts c JOIN users u ON u.id = c.contact_id \
     WHERE c.owner_id = $1 ORDER BY u.display_name COLLATE \"C\", u.id",
    list_blocked: "SELECT u.id, u.phone, u.display_name, u.bio, u.avatar_url, u.created_at, \
       u.last_seen_at \
     FROM blocks b JOIN users u ON u.id = b.blocked_id \
     WHERE b.blocker_id = $1 ORDER BY u.display_name COLLATE \"C\", u.id",
    lock_conversation: "SELECT id, kind, title, avatar_url, created_by, created_at, last_seq \
     FROM conversations WHERE id = $1 FOR UPDATE",
    lock_member: "SELECT conversation_id, user_id, role, archived, delivered_seq, read_seq, joined_at, \
       joined_seq \
     FROM members WHERE conversation_id = $1 AND user_id = $2 FOR UPDATE",
    lock_message: "SELECT conversation_id, seq, id, sender_id, client_msg_id, content, reply_to_seq, \
       created_at, deleted_at, edited_at \
     FROM messages WHERE conversation_id = $1 AND seq = $2 FOR UPDATE",
    lock_member_with_last_seq: "SELECT m.conversation_id, m.user_id, m.role, m.archived, m.delivered_seq, m.read_seq, \
           m.joined_at, m.joined_seq, c.last_seq \
         FROM members m JOIN conversations c ON c.id = m.conversation_id \
         WHERE m.conversation_id = $1 AND m.user_id = $2 FOR UPDATE OF m",
    // $1 user (SQLite's single writer already serializes every write).
    lock_user: "SELECT id FROM users WHERE id = $1 FOR UPDATE",
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
  SELECT c.id AS cid, p.pinned_at, COALESCE(newest.created_at, c.created_at) AS activity
    FROM members me
    JOIN conversations c ON c.id = me.conversation_id
    LEFT JOIN messages newest ON newest.conversation_id = c.id AND newest.seq = c.last_seq
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
       (SELECT COALESCE(json_agg(json_build_object(
                 'user_id', mm.user_id, 'role', mm.role, 'display_name', u.display_name,
                 'avatar_url', u.avatar_url, 'delivered_seq', mm.delivered_seq,
                 'read_seq', mm.read_seq, 'joined_at', mm.joined_at)), '[]'::json)::text
          FROM members mm LEFT JOIN users u ON u.id = mm.user_id
         WHERE mm.conversation_id = c.id) AS members_json
  FROM page
  JOIN conversations c ON c.id = page.cid
  JOIN members me ON me.conversation_id = page.cid AND me.user_id = $1
  LEFT JOIN LATERAL (
         SELECT m2.* FROM messages m2
          WHERE m2.conversation_id = me.conversation_id AND m2.seq > me.joined_seq
            AND NOT EXISTS (SELECT 1 FROM hidden_messages h
                             WHERE h.user_id = me.user_id AND h.conversation_id = m2.conversation_id
                               AND h.seq = m2.seq)
          ORDER BY m2.seq DESC LIMIT 1) lm ON TRUE
 ORDER BY page.pinned_at IS NULL, page.pinned_at DESC, page.activity DESC, page.cid DESC"
    ),
    history_after: history_after!("GREATEST"),
    // $1 blob key, $2 user. Whether a media message referencing the key (not deleted for
    // everyone) is in one of the user's conversations above their `joined_seq`. The two
    // `content` expressions are exactly those of the partial index `messages_blob_key`
    // (migration 0002), so the lookup is an index scan, then a primary-key probe of `members`.
    blob_shared_with: "SELECT EXISTS (SELECT 1 FROM messages m \
       JOIN members mb ON mb.conversation_id = m.conversation_id AND mb.user_id = $2 \
      WHERE (m.content::json ->> 'blob_key') = $1 \
        AND substr(m.content, 1, 16) = '{\"type\":\"media\",' \
        AND m.seq > mb.joined_seq) AS shared",
    // $1 user, $2 since, $3 limit. Targeted changes, plus per conversation of the user (each
    // read from the `(conversation_id, pos)` index and cut at the limit, so a user far behind
    // costs at most limit rows per conversation), merged and cut; then resolved (messages
    // joined, so a deleted one reads as its tombstone). Every row carries the newest pos
    // overall from the same snapshot; an empty page is one row of NULLs with it.
    sync: concat!(
        "\
WITH picked AS (
    (SELECT pos FROM changes WHERE target_user = $1 AND pos > $2 ORDER BY pos LIMIT $3)
    UNION ALL
    (SELECT ch.pos FROM members mb
       CROSS JOIN LATERAL (
           SELECT c2.pos FROM changes c2
            WHERE c2.conversation_id = mb.conversation_id AND c2.target_user IS NULL
              AND c2.pos > GREATEST($2, mb.joined_pos - 1)
            ORDER BY c2.pos LIMIT $3) ch
      WHERE mb.user_id = $1)
), top AS (SELECT pos FROM picked ORDER BY pos LIMIT $3),
latest AS (SELECT COALESCE(MAX(pos), 0)::int8 AS latest FROM changes)
SELECT latest.latest, page.*
  FROM latest LEFT JOIN (
",
        change_columns!(),
        "      FROM top
      JOIN changes ch ON ch.pos = top.pos
      LEFT JOIN messages m ON m.conversation_id = ch.conversation_id AND m.seq = ch.msg_seq
  ) page ON TRUE
 ORDER BY page.pos"
    ),
    latest_pos: "SELECT COALESCE(MAX(pos), 0)::int8 AS latest FROM changes",
    // The GIN index over the generated `messages.search` (migration 0006) gives the matching
    // rows; `ts_rank` with length normalization 1 (divided by 1 + log of the length) ranks
    // them; membership by the `members` primary key, hidden messages by theirs.
    search_messages: "\
SELECT m.conversation_id, m.seq, m.id, m.sender_id, m.client_msg_id, m.content, m.reply_to_seq,
       m.created_at, m.deleted_at, m.edited_at
  FROM messages m
  JOIN members mb ON mb.conversation_id = m.conversation_id AND mb.user_id = $2
 WHERE m.search @@ plainto_tsquery('simple', $1)
   AND m.seq > mb.joined_seq
   AND ($3::uuid IS NULL OR m.conversation_id = $3)
   AND m.deleted_at IS NULL
   AND NOT EXISTS (SELECT 1 FROM hidden_messages h
                    WHERE h.user_id = $2 AND h.conversation_id = m.conversation_id AND h.seq = m.seq)
 ORDER BY ts_rank(m.search, plainto_tsquery('simple', $1), 1) DESC, m.created_at DESC, m.seq DESC,
          m.conversation_id DESC
 LIMIT $4 OFFSET $5",
    search_query: plain_terms,
};

/// Inserts members whose positions are not known yet (joined_pos is set once the sync
/// counter is taken, see `set_joined_pos`); returns the ones inserted.
pub const INSERT_MEMBERS: &str = "INSERT INTO members \
     (conversation_id, user_id, role, archived, delivered_seq, read_seq, joined_at, joined_seq, joined_pos) \
     SELECT $1, x.u, x.r, FALSE, $3, $3, $2, $3, 0 FROM UNNEST($4::uuid[], $5::text[]) WITH ORDINALITY x(u, r, o) \
     ORDER BY x.o \
     ON CONFLICT DO NOTHING RETURNING user_id";
/// Records, for the members a batch just added, the sync position they joined at.
pub const SET_JOINED_POS: &str = "UPDATE members m SET joined_pos = x.p \
     FROM UNNEST($2::uuid[], $3::int8[]) x(u, p) WHERE m.conversation_id = $1 AND m.user_id = x.u";
/// What a batch needs before writing, in one statement: it locks the batch's conversations
/// in id order (so two batches never deadlock) and returns their last_seq (rows with
/// `kind = 'c'`, id in `conversation_id`, last_seq in `seq`; $1 ids), then the stored
/// messages under the requests' idempotency keys (rows with `kind = 'm'`; $2 senders, $3
/// client ids).
pub const BATCH_READ: &str = "\
WITH locked AS (
    SELECT id, last_seq FROM conversations WHERE id = ANY($1) ORDER BY id FOR UPDATE
)
SELECT 'c'::text AS kind, id AS conversation_id, last_seq AS seq, NULL::uuid AS id, NULL::uuid AS sender_id,
       NULL::text AS client_msg_id, NULL::text AS content, NULL::int8 AS reply_to_seq, NULL::int8 AS created_at,
       NULL::int8 AS deleted_at, NULL::int8 AS edited_at
  FROM locked
UNION ALL
SELECT 'm', m.conversation_id, m.seq, m.id, m.sender_id, m.client_msg_id, m.content, m.reply_to_seq,
       m.created_at, m.deleted_at, m.edited_at
  FROM UNNEST($2::uuid[], $3::text[]) k(s, c)
  JOIN messages m ON m.sender_id = k.s AND m.client_msg_id = k.c";
/// The batch's rows in one statement: messages, conversations' last_seq, senders' watermarks.
pub const BATCH_WRITE: &str = "\
WITH ins AS (
    INSERT INTO messages (conversation_id, seq, id, sender_id, client_msg_id, content, reply_to_seq, created_at)
    SELECT * FROM UNNEST($1::uuid[], $2::int8[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::int8[],
                         $8::int8[])
    RETURNING 1
), conv AS (
    UPDATE conversations c SET last_seq = x.s
      FROM UNNEST($9::uuid[], $10::int8[]) x(id, s) WHERE c.id = x.id
    RETURNING 1
), marks AS (
    UPDATE members m SET delivered_seq = GREATEST(m.delivered_seq, x.s), read_seq = GREATEST(m.read_seq, x.s)
      FROM UNNEST($11::uuid[], $12::uuid[], $13::int8[]) x(c, u, s)
     WHERE m.conversation_id = x.c AND m.user_id = x.u
    RETURNING 1
)
SELECT (SELECT count(*) FROM ins) + (SELECT count(*) FROM conv) + (SELECT count(*) FROM marks)";
/// Takes `$1` positions from the sync counter (the row lock is held to commit: see the
/// module docs) and appends the changes with them, in array order.
pub const APPEND_CHANGES: &str = "\
WITH ctr AS (UPDATE sync_counter SET v = v + $1 WHERE id = 1 RETURNING v)
INSERT INTO changes (pos, conversation_id, target_user, msg_seq, payload)
SELECT ctr.v - $1 + x.o, x.c, x.t, x.s, x.p
  FROM ctr, UNNEST($2::uuid[], $3::uuid[], $4::int8[], $5::text[]) WITH ORDINALITY x(c, t, s, p, o)
RETURNING pos";

/// The `plainto_tsquery` text for the engine's terms: the words separated by spaces.
/// `plainto_tsquery` reads no operators at all, and ANDs the words.
pub fn plain_terms(terms: &[String]) -> String {
    terms.join(" ")
}
