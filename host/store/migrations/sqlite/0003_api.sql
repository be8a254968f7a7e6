-- Ward store schema, version 3 (SQLite): what the REST API needs.

-- Instance tokens (`Authorization: Element <token>`) are random and shown
-- once; only their SHA-256 (hex) is kept. `disabled` is the operator's
-- switch, kept apart from `status` so enabling restores a live status.
-- `requests_per_minute` overrides the plugin's rate budget (NULL: default).
ALTER TABLE instances ADD COLUMN token_sha256 TEXT;
ALTER TABLE instances ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE instances ADD COLUMN requests_per_minute BIGINT;
CREATE UNIQUE INDEX instances_by_token ON instances (token_sha256);

-- OAuth `state` values handed to the provider's consent screen. Keyed by the
-- state's SHA-256 so a database reader cannot replay a live one. Phases:
-- issued (URL handed out) -> returned (callback brought a code) -> consumed
-- (an instance was created or the user declined). The client secret is
-- sealed with the master key (associated data: "oauth-state:<hash>").
CREATE TABLE oauth_states (
    state_sha256  TEXT    NOT NULL PRIMARY KEY,
    element_key   TEXT    NOT NULL,
    config_json   TEXT    NOT NULL,
    client_id     TEXT    NOT NULL,
    secret_nonce  BLOB,
    secret_sealed BLOB,
    callback_url  TEXT    NOT NULL,
    created_ms    BIGINT  NOT NULL,
    expires_ms    BIGINT  NOT NULL,
    phase         TEXT    NOT NULL
        CHECK (phase IN ('issued', 'returned', 'consumed')),
    code_sha256   TEXT
);

CREATE INDEX oauth_states_by_expiry ON oauth_states (expires_ms);

-- SHA-256 (hex) of the API's `User` and `Organization` secrets.
CREATE TABLE api_secrets (
    name       TEXT   NOT NULL PRIMARY KEY CHECK (name IN ('user', 'organization')),
    sha256     TEXT   NOT NULL,
    created_ms BIGINT NOT NULL
);
