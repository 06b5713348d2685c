-- Message search (Store::search_messages). FTS5 over the searchable text of each message: a
-- text message's text, a media message's caption (system notices, caption-less media and
-- tombstones have none). `messages` is WITHOUT ROWID, so `message_search` gives each indexed
-- message the integer rowid FTS5 needs (docid) and maps it back to (conversation_id, seq).
-- The FTS table is contentless (the text stays in `messages` only) with contentless_delete,
-- so a message leaves the index by rowid. The triggers keep both tables in step with
-- `messages` in the statement that writes a message, edits it (UPDATE OF content) or
-- tombstones it (deleted_at), so the index can never disagree with a committed message.

CREATE TABLE message_search (
    docid           INTEGER PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    seq             INTEGER NOT NULL
);
CREATE UNIQUE INDEX message_search_message ON message_search (conversation_id, seq);

CREATE VIRTUAL TABLE message_fts USING fts5(
    body,
    content = '',
    contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER messages_search_insert AFTER INSERT ON messages
WHEN NEW.deleted_at IS NULL
 AND (CASE json_extract(NEW.content, '$.type')
        WHEN 'text' THEN json_extract(NEW.content, '$.text')
        WHEN 'media' THEN json_extract(NEW.content, '$.caption') END) IS NOT NULL
BEGIN
    INSERT INTO message_search (conversation_id, seq) VALUES (NEW.conversation_id, NEW.seq);
    INSERT INTO message_fts (rowid, body)
    VALUES (last_insert_rowid(),
            CASE json_extract(NEW.content, '$.type')
              WHEN 'text' THEN json_extract(NEW.content, '$.text')
              WHEN 'media' THEN json_extract(NEW.content, '$.caption') END);
END;

CREATE TRIGGER messages_search_update AFTER UPDATE OF content, deleted_at ON messages
BEGIN
    DELETE FROM message_fts WHERE rowid = (
        SELECT docid FROM message_search WHERE conversation_id = OLD.conversation_id AND seq = OLD.seq);
    DELETE FROM message_search WHERE conversation_id = OLD.conversation_id AND seq = OLD.seq;
    INSERT INTO message_search (conversation_id, seq)
    SELECT NEW.conversation_id, NEW.seq
     WHERE NEW.deleted_at IS NULL
       AND (CASE json_extract(NEW.content, '$.type')
              WHEN 'text' THEN json_extract(NEW.content, '$.text')
              WHEN 'media' THEN json_extract(NEW.content, '$.caption') END) IS NOT NULL;
    INSERT INTO message_fts (rowid, body)
    SELECT last_insert_rowid(), b FROM (
        SELECT CASE json_extract(NEW.content, '$.type')
                 WHEN 'text' THEN json_extract(NEW.content, '$.text')
                 WHEN 'media' THEN json_extract(NEW.content, '$.caption') END AS b)
     WHERE NEW.deleted_at IS NULL AND b IS NOT NULL;
END;

CREATE TRIGGER messages_search_delete AFTER DELETE ON messages
BEGIN
    DELETE FROM message_fts WHERE rowid = (
        SELECT docid FROM message_search WHERE conversation_id = OLD.conversation_id AND seq = OLD.seq);
    DELETE FROM message_search WHERE conversation_id = OLD.conversation_id AND seq = OLD.seq;
END;

-- Messages stored before this migration.
INSERT INTO message_search (conversation_id, seq)
SELECT conversation_id, seq FROM messages
 WHERE deleted_at IS NULL
   AND (CASE json_extract(content, '$.type')
          WHEN 'text' THEN json_extract(content, '$.text')
          WHEN 'media' THEN json_extract(content, '$.caption') END) IS NOT NULL;
INSERT INTO message_fts (rowid, body)
SELECT s.docid,
       CASE json_extract(m.content, '$.type')
         WHEN 'text' THEN json_extract(m.content, '$.text')
         WHEN 'media' THEN json_extract(m.content, '$.caption') END
  FROM message_search s JOIN messages m ON m.conversation_id = s.conversation_id AND m.seq = s.seq;
