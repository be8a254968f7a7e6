-- Shared rate budgets (version 8; PostgreSQL).
--
-- One token bucket per (plugin, provider tenant), shared by every daemon on
-- this database so that several daemons together stay within the tenant's
-- budget. `tokens` is the balance as of `refilled_ms` (it refills at the
-- caller's requests-per-minute and may go negative when calls made more
-- requests than they took); nobody calls the tenant before
-- `blocked_until_ms` (a provider's Retry-After or quota reset). Not copied
-- by `ward store migrate`: the buckets refill within a minute anyway.
CREATE TABLE rate_budgets (
    plugin_key       TEXT             NOT NULL,
    tenant           TEXT             NOT NULL,
    tokens           DOUBLE PRECISION NOT NULL,
    refilled_ms      BIGINT           NOT NULL,
    blocked_until_ms BIGINT           NOT NULL DEFAULT 0,
    PRIMARY KEY (plugin_key, tenant)
);
