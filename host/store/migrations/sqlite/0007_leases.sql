-- Leases (version 7; 6 is left to the sink cursors of another branch).
--
-- One row per instance a daemon has ever claimed. `owner` is the daemon's
-- id for this process run, `epoch` the fencing token: every claim by a new
-- owner (or after expiry) increments it, and a page commits only if the
-- committing daemon still holds the epoch it claimed. `expires_ms` is
-- pushed forward by the owner's heartbeat.
CREATE TABLE leases (
    instance_id TEXT   NOT NULL PRIMARY KEY REFERENCES instances (id) ON DELETE CASCADE,
    owner       TEXT   NOT NULL,
    epoch       BIGINT NOT NULL,
    expires_ms  BIGINT NOT NULL
);

CREATE INDEX leases_by_owner ON leases (owner);
