-- The code Ward's /oauth/callback received, sealed with the master key
-- (associated data: "oauth-code:<state hash>"), so the operator who started
-- the consent (`ward connect`) can read it back once through the
-- authenticated API while the state is `returned`.
ALTER TABLE oauth_states ADD COLUMN code_nonce BYTEA;
ALTER TABLE oauth_states ADD COLUMN code_sealed BYTEA;
