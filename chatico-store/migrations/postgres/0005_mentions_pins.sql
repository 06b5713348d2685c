-- Mentions and pins (issue 19, items 3 and 4).
--
-- A text message's mentions live in its content JSON (`"mentions":[{"user_id",..}]`, after
-- the text). `message_mentions` indexes them by the mentioned user, so a conversation's
-- unread mentions are a range count; triggers keep it in step with the message in the same
-- transaction: a message stored, its content rewritten (an edit) or dropped (delete for
-- everyone sets it NULL, which removes its mentions).
CREATE TABLE message_mentions (
    user_id         UUID NOT NULL,
    conversation_id UUID NOT NULL,
    seq             BIGINT NOT NULL,
    PRIMARY KEY (user_id, conversation_id, seq)
);
CREATE INDEX message_mentions_message ON message_mentions (conversation_id, seq);

CREATE FUNCTION message_mentions_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        DELETE FROM message_mentions WHERE conversation_id = OLD.conversation_id AND seq = OLD.seq;
    END IF;
    IF NEW.content IS NOT NULL AND strpos(NEW.content, ',"mentions":[') > 0 THEN
        INSERT INTO message_mentions (user_id, conversation_id, seq)
        SELECT DISTINCT (e ->> 'user_id')::uuid, NEW.conversation_id, NEW.seq
          FROM json_array_elements(NEW.content::json -> 'mentions') e
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;

-- Only a content carrying `,"mentions":[` is parsed (a quote inside the text is escaped,
-- so the text cannot produce it): a text without mentions costs one substring search.
CREATE TRIGGER messages_mentions_insert AFTER INSERT ON messages
    FOR EACH ROW WHEN (strpos(NEW.content, ',"mentions":[') > 0)
    EXECUTE FUNCTION message_mentions_sync();
CREATE TRIGGER messages_mentions_update AFTER UPDATE OF content ON messages
    FOR EACH ROW EXECUTE FUNCTION message_mentions_sync();

-- Pinned conversations, per user (bounded by the engine's `max_pins`).
CREATE TABLE pins (
    user_id         UUID NOT NULL,
    conversation_id UUID NOT NULL,
    pinned_at       BIGINT NOT NULL,
    PRIMARY KEY (user_id, conversation_id)
);
