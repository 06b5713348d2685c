-- Message search (Store::search_messages): a tsvector of each message's searchable text (a
-- text message's text, a media message's caption; none for system notices, caption-less
-- media and tombstones) as a stored generated column, so Postgres recomputes it in the
-- statement that writes a message, edits it (content) or tombstones it (deleted_at): the
-- index cannot disagree with a committed message. The 'simple' configuration (lowercase, no
-- stemming, no stop words): chat is multilingual and short, and a language's stemmer would
-- make the engine's one matching rule (every word, whole) depend on the language of the
-- deployment. ASCII punctuation is turned into spaces first, so words are the same runs of
-- letters and digits the engine splits a query into (Postgres's parser would otherwise keep
-- e-mail addresses, URLs and numbers like 3.14 as single tokens).

ALTER TABLE messages ADD COLUMN search tsvector GENERATED ALWAYS AS (
    to_tsvector('simple'::regconfig, regexp_replace(
        CASE WHEN deleted_at IS NULL THEN
            CASE (content::json) ->> 'type'
                WHEN 'text' THEN (content::json) ->> 'text'
                WHEN 'media' THEN (content::json) ->> 'caption'
            END
        END,
        '[!-/:-@[-`{-~]+', ' ', 'g'))
) STORED;

CREATE INDEX messages_search ON messages USING GIN (search);
