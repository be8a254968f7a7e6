-- Events keyed by time (version 9): the exactly-once rule becomes
-- UNIQUE (instance_id, time_ms, event_id), which is also the index that
-- serves time-range queries and keyset pagination, so `events_by_time` goes.
-- Provider event ids are random, so a unique index on (instance_id,
-- event_id) took every page's rows at random leaves; keyed by time, a page
-- appends near the right edge of the one index left. A re-fetched page
-- carries the same events with the same times, so it still inserts nothing
-- new; the same id twice within one page is dropped by the store before the
-- insert. Rows unique by (instance_id, event_id) are unique by this key too.
ALTER TABLE events ADD CONSTRAINT events_instance_time_event_key UNIQUE (instance_id, time_ms, event_id);
ALTER TABLE events DROP CONSTRAINT events_instance_id_event_id_key;
DROP INDEX events_by_time;
