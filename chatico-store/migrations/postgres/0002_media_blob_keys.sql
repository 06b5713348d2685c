-- Who may read a media blob: the members of a conversation holding a media message that
-- references it (Store::blob_shared_with). A partial expression index over media messages
-- only. Its predicate compares the first 16 characters of the content JSON, which the codec
-- writes with the serde tag first (`{"type":"media",...`; `codec::tests` pins that), so
-- storing a text message costs one short comparison and adds no index entry (the JSON is
-- parsed for media messages only). A message deleted for everyone has NULL content and
-- leaves the index.
CREATE INDEX messages_blob_key ON messages (((content::json) ->> 'blob_key'))
    WHERE substr(content, 1, 16) = '{"type":"media",';
