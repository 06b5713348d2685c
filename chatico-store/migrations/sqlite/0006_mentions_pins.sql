-- Mentions and pins (issue 19, items 3 and 4).
--
-- A text message's mentions live in its content JSON (`"mentions":[{"user_id",..}]`, after
-- the text). `message_mentions` indexes them by the mentioned user, so a conversation's
-- unread mentions are a range count; triggers keep it in step with the message in the same
-- statement: a message stored, its content rewritten (an edit) or dropped (delete for
-- everyone sets it NULL, which removes its mentions).
CREATE TABLE message_mentions (
    user_id         TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    PRIMARY KEY (user_id, conversation_id, seq)
) WITHOUT ROWID;
CREATE INDEX message_mentions_message ON message_mentions (conversation_id, seq);

-- Only a content carrying `,"mentions":[` is parsed (a quote inside the text is escaped,
-- so the text cannot produce it): a text without mentions costs one substring search.
CREATE TRIGGER messages_mentions_insert AFTER INSERT ON messages
WHEN instr(NEW.content, ',"mentions":[') > 0
BEGIN
    INSERT OR IGNORE INTO message_mentions (user_id, conversation_id, seq)
    SELECT json_extract(j.value, '$.user_id'), NEW.conversation_id, NEW.seq
      FROM json_each(NEW.content, '$.mentions') j;
END;

CREATE TRIGGER messages_mentions_update AFTER UPDATE OF content ON messages
BEGIN
    DELETE FROM message_mentions WHERE conversation_id = OLD.conversation_id AND seq = OLD.seq;
    INSERT OR IGNORE INTO message_mentions (user_id, conversation_id, seq)
    SELECT json_extract(j.value, '$.user_id'), NEW.conversation_id, NEW.seq
      FROM json_each(NEW.content, '$.mentions') j
     WHERE instr(NEW.content, ',"mentions":[') > 0;
END;

-- Pinned conversations, per user (bounded by the engine's `max_pins`).
CREATE TABLE pins (
    user_id         TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    pinned_at       INTEGER NOT NULL,
    PRIMARY KEY (user_id, conversation_id)
) WITHOUT ROWID;
