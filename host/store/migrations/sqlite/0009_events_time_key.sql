-- Events keyed by time (version 9): the exactly-once rule becomes
-- UNIQUE (instance_id, time_ms, event_id), which is also the index that
-- serves time-range queries and keyset pagination, so `events_by_time` goes.
--
-- Why: provider event ids are random (Okta's are UUIDs), so a unique index
-- on (instance_id, event_id) took every page's rows at random leaves, and a
-- page of 1,000 events rewrote hundreds of index pages into the WAL. Keyed
-- by time, a page appends near the right edge of the one index left. A
-- re-fetched page carries the same events with the same times, so it still
-- inserts nothing new; the same id twice within one page is dropped by the
-- store before the insert (see `Store::commit_audit_page`).
--
-- SQLite cannot drop a table constraint, so the table is rebuilt; `seq`
-- values are kept (sink cursors refer to them).
CREATE TABLE events_v9 (
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
    UNIQUE (instance_id, time_ms, event_id)
);
INSERT INTO events_v9 (seq, instance_id, event_id, time_ms, action, actor_id, actor_kind,
    actor_name, actor_email, targets_json, ip, user_agent, outcome, raw_json, ingested_ms)
SELECT seq, instance_id, event_id, time_ms, action, actor_id, actor_kind,
    actor_name, actor_email, targets_json, ip, user_agent, outcome, raw_json, ingested_ms
FROM events ORDER BY seq;
-- The sequence never goes back, even past rows deleted before this rebuild:
-- the new table takes over the old one's sequence value.
DELETE FROM sqlite_sequence WHERE name = 'events_v9';
INSERT INTO sqlite_sequence (name, seq) SELECT 'events_v9', seq FROM sqlite_sequence WHERE name = 'events';
DROP TABLE events;
ALTER TABLE events_v9 RENAME TO events;
