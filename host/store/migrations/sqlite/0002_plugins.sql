-- Ward store schema, version 2: plugin approvals.
--
-- One row per approved (plugin key, component digest). `permissions_json`
-- is the approved manifest as JSON: a later version is compared with the
-- newest approval of its key, and held if it asks for more.
CREATE TABLE plugin_approvals (
    plugin_key       TEXT   NOT NULL,
    digest           TEXT   NOT NULL,
    version          TEXT   NOT NULL,
    permissions_json TEXT   NOT NULL,
    -- 'first-install' (recorded automatically) or 'operator'.
    approved_by      TEXT   NOT NULL,
    approved_ms      BIGINT NOT NULL,
    PRIMARY KEY (plugin_key, digest)
);

CREATE INDEX plugin_approvals_by_key ON plugin_approvals (plugin_key, approved_ms);
