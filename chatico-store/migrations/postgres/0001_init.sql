-- ChatiCO schema, Postgres dialect. Times are milliseconds since the Unix epoch.

CREATE TABLE users (
    id           UUID PRIMARY KEY,
    phone        TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    -- Rust's Unicode lowercase of display_name, for case-insensitive search.
    name_lower   TEXT NOT NULL,
    bio          TEXT NOT NULL,
    avatar_url   TEXT,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT
);

CREATE TABLE sessions (
    id           UUID PRIMARY KEY,
    user_id      UUID NOT NULL,
    refresh_hash TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    device       TEXT
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE contacts (
    owner_id   UUID NOT NULL,
    contact_id UUID NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (owner_id, contact_id)
);
CREATE INDEX contacts_contact ON contacts (contact_id);

CREATE TABLE blocks (
    blocker_id UUID NOT NULL,
    blocked_id UUID NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id)
);
CREATE INDEX blocks_blocked ON blocks (blocked_id);

CREATE TABLE conversations (
    id         UUID PRIMARY KEY,
    kind       TEXT NOT NULL,
    title      TEXT,
    avatar_url TEXT,
    created_by UUID NOT NULL,
    created_at BIGINT NOT NULL,
    last_seq   BIGINT NOT NULL DEFAULT 0
);

-- At most one direct conversation per unordered pair (user_lo < user_hi).
CREATE TABLE direct_pairs (
    user_lo         UUID NOT NULL,
    user_hi         UUID NOT NULL,
    conversation_id UUID NOT NULL,
    PRIMARY KEY (user_lo, user_hi)
);

CREATE TABLE members (
    conversation_id UUID NOT NULL,
    user_id         UUID NOT NULL,
    role            TEXT NOT NULL,
    archived        BOOLEAN NOT NULL DEFAULT FALSE,
    delivered_seq   BIGINT NOT NULL DEFAULT 0,
    read_seq        BIGINT NOT NULL DEFAULT 0,
    joined_at       BIGINT NOT NULL,
    joined_seq      BIGINT NOT NULL,
    -- The pos of this member's MemberJoined change: they see conversation changes from it on.
    joined_pos      BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX members_user ON members (user_id, archived);

CREATE TABLE messages (
    conversation_id UUID NOT NULL,
    seq             BIGINT NOT NULL,
    id              UUID NOT NULL,
    sender_id       UUID NOT NULL,
    client_msg_id   TEXT NOT NULL,
    -- JSON of chatico_core::model::Content; NULL once deleted for everyone.
    content         TEXT,
    reply_to_seq    BIGINT,
    created_at      BIGINT NOT NULL,
    deleted_at      BIGINT,
    PRIMARY KEY (conversation_id, seq)
);
CREATE UNIQUE INDEX messages_idempotency ON messages (sender_id, client_msg_id);

CREATE TABLE hidden_messages (
    user_id         UUID NOT NULL,
    conversation_id UUID NOT NULL,
    seq             BIGINT NOT NULL,
    PRIMARY KEY (user_id, conversation_id, seq)
);

-- The sync log. pos comes from the single row of sync_counter, updated as the last lock a
-- writing transaction takes: the row lock is held until commit, so positions are handed out
-- in commit order (see chatico-store/src/postgres/mod.rs).
CREATE TABLE sync_counter (
    id INT PRIMARY KEY CHECK (id = 1),
    v  BIGINT NOT NULL
);
INSERT INTO sync_counter (id, v) VALUES (1, 0);

-- A message change keeps only (conversation_id, msg_seq) and is resolved by a join, so a
-- deleted message's content is gone from every read; other changes keep their JSON payload.
CREATE TABLE changes (
    pos             BIGINT PRIMARY KEY,
    conversation_id UUID,
    target_user     UUID,
    msg_seq         BIGINT,
    payload         TEXT
);
CREATE INDEX changes_conversation ON changes (conversation_id, pos) WHERE target_user IS NULL;
CREATE INDEX changes_target ON changes (target_user, pos) WHERE target_user IS NOT NULL;

CREATE TABLE blobs (
    key          TEXT PRIMARY KEY,
    owner_id     UUID NOT NULL,
    content_type TEXT NOT NULL,
    size         BIGINT NOT NULL,
    width        BIGINT,
    height       BIGINT,
    purpose      TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);
