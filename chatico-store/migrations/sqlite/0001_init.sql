-- ChatiCO schema, SQLite dialect. Ids are UUID text (lowercase, hyphenated: text order is
-- byte order), times are milliseconds since the Unix epoch.

CREATE TABLE users (
    id           TEXT PRIMARY KEY NOT NULL,
    phone        TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    -- Rust's Unicode lowercase of display_name, for case-insensitive search.
    name_lower   TEXT NOT NULL,
    bio          TEXT NOT NULL,
    avatar_url   TEXT,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER
);

CREATE TABLE sessions (
    id           TEXT PRIMARY KEY NOT NULL,
    user_id      TEXT NOT NULL,
    refresh_hash TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    device       TEXT
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE contacts (
    owner_id   TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (owner_id, contact_id)
) WITHOUT ROWID;
CREATE INDEX contacts_contact ON contacts (contact_id);

CREATE TABLE blocks (
    blocker_id TEXT NOT NULL,
    blocked_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id)
) WITHOUT ROWID;
CREATE INDEX blocks_blocked ON blocks (blocked_id);

CREATE TABLE conversations (
    id         TEXT PRIMARY KEY NOT NULL,
    kind       TEXT NOT NULL,
    title      TEXT,
    avatar_url TEXT,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_seq   INTEGER NOT NULL DEFAULT 0
);

-- At most one direct conversation per unordered pair (user_lo < user_hi).
CREATE TABLE direct_pairs (
    user_lo         TEXT NOT NULL,
    user_hi         TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    PRIMARY KEY (user_lo, user_hi)
) WITHOUT ROWID;

CREATE TABLE members (
    conversation_id TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    role            TEXT NOT NULL,
    archived        INTEGER NOT NULL DEFAULT 0,
    delivered_seq   INTEGER NOT NULL DEFAULT 0,
    read_seq        INTEGER NOT NULL DEFAULT 0,
    joined_at       INTEGER NOT NULL,
    joined_seq      INTEGER NOT NULL,
    -- The pos of this member's MemberJoined change: they see conversation changes from it on.
    joined_pos      INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
) WITHOUT ROWID;
CREATE INDEX members_user ON members (user_id, archived);

CREATE TABLE messages (
    conversation_id TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    id              TEXT NOT NULL,
    sender_id       TEXT NOT NULL,
    client_msg_id   TEXT NOT NULL,
    -- JSON of chatico_core::model::Content; NULL once deleted for everyone.
    content         TEXT,
    reply_to_seq    INTEGER,
    created_at      INTEGER NOT NULL,
    deleted_at      INTEGER,
    PRIMARY KEY (conversation_id, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX messages_idempotency ON messages (sender_id, client_msg_id);

CREATE TABLE hidden_messages (
    user_id         TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    PRIMARY KEY (user_id, conversation_id, seq)
) WITHOUT ROWID;

-- The sync log. pos is the rowid: SQLite has one writer, so rowid order is commit order.
-- A message change keeps only (conversation_id, msg_seq) and is resolved by a join, so a
-- deleted message's content is gone from every read; other changes keep their JSON payload.
CREATE TABLE changes (
    pos             INTEGER PRIMARY KEY,
    conversation_id TEXT,
    target_user     TEXT,
    msg_seq         INTEGER,
    payload         TEXT
);
CREATE INDEX changes_conversation ON changes (conversation_id, pos) WHERE target_user IS NULL;
CREATE INDEX changes_target ON changes (target_user, pos) WHERE target_user IS NOT NULL;

CREATE TABLE blobs (
    key          TEXT PRIMARY KEY NOT NULL,
    owner_id     TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         INTEGER NOT NULL,
    width        INTEGER,
    height       INTEGER,
    purpose      TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);
