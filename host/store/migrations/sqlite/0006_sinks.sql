-- Sinks (version 6): delivery of stored events to SIEMs and files.
--
-- Events gain an ingestion sequence `seq`: an AUTOINCREMENT key is never
-- reused, even after an instance's events are deleted, and SQLite admits one
-- writer at a time, so a committed event always carries a higher `seq` than
-- every event committed before it. A sink's cursor is the highest `seq` it
-- has delivered; existing events keep their rowid order.
CREATE TABLE events_v6 (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id  TEXT   NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
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
    UNIQUE (instance_id, event_id)
);
INSERT INTO events_v6 (seq, instance_id, event_id, time_ms, action, actor_id, actor_kind,
    actor_name, actor_email, targets_json, ip, user_agent, outcome, raw_json, ingested_ms)
SELECT rowid, instance_id, event_id, time_ms, action, actor_id, actor_kind,
    actor_name, actor_email, targets_json, ip, user_agent, outcome, raw_json, ingested_ms
FROM events ORDER BY rowid;
DROP TABLE events;
ALTER TABLE events_v6 RENAME TO events;
CREATE INDEX events_by_time ON events (instance_id, time_ms, event_id);

-- One row per configured sink, created on first start of the sink. The
-- cursor only moves after the sink acknowledged everything up to it.
CREATE TABLE sinks (
    name            TEXT    NOT NULL PRIMARY KEY,
    cursor_seq      BIGINT  NOT NULL DEFAULT 0,
    delivered       BIGINT  NOT NULL DEFAULT 0,
    -- 'active' or 'dead_letter' (the sink refused a batch permanently;
    -- delivery holds at the cursor until the operator resumes it).
    state           TEXT    NOT NULL DEFAULT 'active'
        CHECK (state IN ('active', 'dead_letter')),
    last_error      TEXT,
    last_error_ms   BIGINT,
    last_success_ms BIGINT,
    updated_ms      BIGINT  NOT NULL
);

-- A sink's secret (e.g. a Splunk HEC token), sealed with the master key
-- like instance credentials and bound to the sink's name.
CREATE TABLE sink_secrets (
    name       TEXT   NOT NULL PRIMARY KEY,
    nonce      BLOB   NOT NULL,
    ciphertext BLOB   NOT NULL,
    updated_ms BIGINT NOT NULL
);
