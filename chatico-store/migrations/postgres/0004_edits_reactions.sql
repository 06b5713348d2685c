-- Edits and reactions. An edit rewrites messages.content in place and sets edited_at.
ALTER TABLE messages ADD COLUMN edited_at BIGINT;

-- One row per (message, user, emoji). The primary key's prefix (conversation_id, seq) serves
-- both the per-message reads and the distinct-emoji bound.
CREATE TABLE reactions (
    conversation_id UUID NOT NULL,
    seq             BIGINT NOT NULL,
    user_id         UUID NOT NULL,
    emoji           TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, seq, user_id, emoji)
);
