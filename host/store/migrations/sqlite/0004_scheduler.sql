-- Scheduler bookkeeping (version 4).
--
-- `halted`: the instance's worker stopped because only the operator can fix
-- what went wrong (credentials rejected, role or plan missing, plugin bug).
-- A restarted daemon must not resume such an instance (that would call the
-- provider with credentials already known to be bad); reconnecting,
-- re-enabling or testing it successfully clears the flag.
ALTER TABLE instances ADD COLUMN halted BOOLEAN NOT NULL DEFAULT FALSE;

-- When the user directory was last read to the end.
ALTER TABLE instances ADD COLUMN users_synced_ms BIGINT;
