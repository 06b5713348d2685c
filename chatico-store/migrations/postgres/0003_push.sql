-- Push notifications: one device registration per session, and per-user conversation mutes.

CREATE TABLE push_devices (
    -- A session has at most one device; the row goes with the session.
    session_id UUID PRIMARY KEY,
    user_id    UUID NOT NULL,
    platform   TEXT NOT NULL,
    token      TEXT NOT NULL,
    app_id     TEXT NOT NULL,
    locale     TEXT,
    updated_at BIGINT NOT NULL
);
CREATE INDEX push_devices_user ON push_devices (user_id);
-- A token belongs to one install: one registration at a time.
CREATE UNIQUE INDEX push_devices_token ON push_devices (platform, token);

CREATE TABLE mutes (
    conversation_id UUID NOT NULL,
    user_id         UUID NOT NULL,
    -- End of the mute (ms since the Unix epoch); NULL = until unmuted.
    muted_until     BIGINT,
    PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX mutes_user ON mutes (user_id);
