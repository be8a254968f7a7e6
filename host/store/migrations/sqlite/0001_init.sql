-- Ward store schema, version 1 (SQLite).
--
-- Kept close to portable SQL so the PostgreSQL variant differs only where it
-- must: BLOB -> BYTEA and the egress rowid key -> an identity column.
-- Every *_ms column is milliseconds since the Unix epoch (BIGINT).

CREATE TABLE instances (
    id              TEXT    NOT NULL PRIMARY KEY,
    plugin_key      TEXT    NOT NULL,
    plugin_version  TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    -- Non-secret configuration and tags, as JSON text (an object / an array).
    config_json     TEXT    NOT NULL,
    tags_json       TEXT    NOT NULL,
    status          TEXT    NOT NULL
        CHECK (status IN ('connecting', 'connected', 'error', 'disabled')),
    status_message  TEXT,
    created_ms      BIGINT  NOT NULL,
    last_success_ms BIGINT,
    -- Events stored, maintained in the same transaction as the inserts so
    -- status listings need no COUNT(*) over millions of rows.
    event_count     BIGINT  NOT NULL DEFAULT 0
);

-- One row per instance holding the whole credential set as a single
-- XChaCha20-Poly1305 ciphertext; the associated data binds it to instance_id,
-- so a row copied onto another instance fails to decrypt.
CREATE TABLE credentials (
    instance_id TEXT   NOT NULL PRIMARY KEY
        REFERENCES instances (id) ON DELETE CASCADE,
    nonce       BLOB   NOT NULL,
    ciphertext  BLOB   NOT NULL,
    updated_ms  BIGINT NOT NULL
);

CREATE TABLE cursors (
    instance_id TEXT   NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    stream      TEXT   NOT NULL,
    cursor      TEXT   NOT NULL,
    updated_ms  BIGINT NOT NULL,
    PRIMARY KEY (instance_id, stream)
);

CREATE TABLE events (
    instance_id  TEXT   NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    -- An empty provider id would collapse distinct events into one under the
    -- uniqueness rule below, so it is refused outright.
    event_id     TEXT   NOT NULL CHECK (length(event_id) > 0),
    time_ms      BIGINT NOT NULL,
    action       TEXT   NOT NULL,
    actor_id     TEXT,
    actor_kind   TEXT   NOT NULL,
    actor_name   TEXT,
    actor_email  TEXT,
    targets_json TEXT   NOT NULL,
    ip           TEXT,
    user_agent   TEXT,
    outcome      TEXT   NOT NULL,
    raw_json     TEXT   NOT NULL,
    ingested_ms  BIGINT NOT NULL,
    -- The exactly-once rule: a re-fetched page inserts nothing new.
    UNIQUE (instance_id, event_id)
);

-- Serves time-range queries and keyset pagination on (time_ms, event_id).
CREATE INDEX events_by_time ON events (instance_id, time_ms, event_id);

CREATE TABLE users (
    instance_id   TEXT    NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    user_id       TEXT    NOT NULL CHECK (length(user_id) > 0),
    email         TEXT,
    login         TEXT,
    name          TEXT,
    status        TEXT,
    is_admin      BOOLEAN NOT NULL,
    created_ms    BIGINT,
    last_login_ms BIGINT,
    raw_json      TEXT    NOT NULL,
    updated_ms    BIGINT  NOT NULL,
    PRIMARY KEY (instance_id, user_id)
);

-- No foreign key on purpose: egress is an audit trail of what plugins tried,
-- including calls made before an instance exists (connection tests) or while
-- it is being deleted; those records must not be rejected. delete_instance
-- removes an instance's egress rows explicitly.
CREATE TABLE egress (
    id             INTEGER NOT NULL PRIMARY KEY,
    instance_id    TEXT    NOT NULL,
    plugin_key     TEXT    NOT NULL,
    plugin_call    TEXT    NOT NULL,
    at_ms          BIGINT  NOT NULL,
    method         TEXT    NOT NULL,
    url            TEXT    NOT NULL,
    allowed        BOOLEAN NOT NULL,
    reason         TEXT,
    grant_name     TEXT,
    http_status    INTEGER,
    bytes_sent     BIGINT  NOT NULL,
    bytes_received BIGINT  NOT NULL,
    latency_ms     BIGINT  NOT NULL
);

CREATE INDEX egress_by_time ON egress (instance_id, at_ms);
