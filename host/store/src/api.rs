//! What the REST API keeps: instance tokens, the operator's switches on an
//! instance, single-use OAuth `state` values and the API secrets' hashes.
//!
//! Nothing here stores a usable secret: tokens, states and API secrets are
//! kept as SHA-256 hex digests, and the OAuth client secret is sealed with
//! the master key like instance credentials.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Backend, InstanceStatus, Store, StoreError, col, key, now_ms, to_u64};

/// The operator's settings on an instance that are not part of
/// [`crate::Instance`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceSettings {
    /// Turned off by an operator: no worker runs.
    pub disabled: bool,
    /// Override of the plugin's requests-per-minute budget.
    pub requests_per_minute: Option<u32>,
    /// Whether an instance token has been issued.
    pub has_token: bool,
}

/// An OAuth authorization in progress, as created by
/// `GET /elements/{key}/oauth/url`.
#[derive(Clone, PartialEq, Eq)]
pub struct OauthState {
    /// SHA-256 (hex) of the `state` value.
    pub state_sha256: String,
    /// The element (plugin key) the authorization is for.
    pub element_key: String,
    /// The instance configuration the URL was built from (`client_id`
    /// included).
    pub config: BTreeMap<String, String>,
    /// The OAuth client id.
    pub client_id: String,
    /// The OAuth client secret, if one was given.
    pub client_secret: Option<String>,
    /// The redirect URI handed to the provider.
    pub callback_url: String,
    /// When the state stops being accepted.
    pub expires_ms: i64,
    /// SHA-256 (hex) of the code the callback brought, once returned.
    pub code_sha256: Option<String>,
}

impl std::fmt::Debug for OauthState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OauthState")
            .field("element_key", &self.element_key)
            .field("client_id", &self.client_id)
            .field("callback_url", &self.callback_url)
            .field("expires_ms", &self.expires_ms)
            .finish_non_exhaustive()
    }
}

/// Where an OAuth authorization stands, for the operator who started it.
#[derive(Clone, PartialEq, Eq)]
pub struct OauthOutcome {
    /// The element (plugin key) the authorization is for.
    pub element_key: String,
    /// `issued` (waiting for the provider's redirect), `returned` (Ward's
    /// callback received a code), `consumed` (used for an exchange, or the
    /// consent was declined).
    pub phase: String,
    /// Whether Ward's callback saw a code for it.
    pub code_returned: bool,
    /// Whether it has expired.
    pub expired: bool,
    /// The code, while the state is `returned` and unexpired (a claim
    /// for an exchange erases it).
    pub code: Option<String>,
}

impl std::fmt::Debug for OauthOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OauthOutcome")
            .field("element_key", &self.element_key)
            .field("phase", &self.phase)
            .field("code_returned", &self.code_returned)
            .field("expired", &self.expired)
            .finish_non_exhaustive()
    }
}

fn code_ad(state_sha256: &str) -> String {
    format!("oauth-code:{state_sha256}")
}

/// Counters the metrics endpoint reads at scrape time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Instances by status (a disabled instance counts as `disabled`).
    pub by_status: BTreeMap<&'static str, u64>,
    /// Events stored per instance id.
    pub events: BTreeMap<String, u64>,
}

fn state_ad(state_sha256: &str) -> String {
    format!("oauth-state:{state_sha256}")
}

impl Store {
    /// Stores the SHA-256 of an instance's token (replacing an older one).
    pub async fn set_instance_token(&self, id: &str, token_sha256: &str) -> Result<(), StoreError> {
        let done = dispatch!(self, p => sqlx::query("UPDATE instances SET token_sha256 = $1 WHERE id = $2")
            .bind(token_sha256)
            .bind(id)
            .execute(p).await.map(|d| d.rows_affected()))
            .map_err(StoreError::db("storing an instance token"))?;
        found(done, id)
    }

    /// The instance whose token hashes to `token_sha256`, if any.
    pub async fn instance_by_token(
        &self,
        token_sha256: &str,
    ) -> Result<Option<String>, StoreError> {
        dispatch!(self, p => {
            let row = sqlx::query("SELECT id FROM instances WHERE token_sha256 = $1")
                .bind(token_sha256)
                .fetch_optional(p)
                .await
                .map_err(StoreError::db("looking up an instance token"))?;
            row.map(|r| col(&r, "id")).transpose()
        })
    }

    /// The operator's settings on an instance; `None` if it does not exist.
    pub async fn instance_settings(
        &self,
        id: &str,
    ) -> Result<Option<InstanceSettings>, StoreError> {
        dispatch!(self, p => {
            let row = sqlx::query(
                "SELECT disabled, requests_per_minute, token_sha256 IS NOT NULL AS has_token \
                 FROM instances WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(p)
            .await
            .map_err(StoreError::db("reading an instance's settings"))?;
            let Some(row) = row else { return Ok(None) };
            let rpm: Option<i64> = col(&row, "requests_per_minute")?;
            Ok(Some(InstanceSettings {
                disabled: col(&row, "disabled")?,
                requests_per_minute: rpm.and_then(|v| u32::try_from(v).ok()),
                has_token: col(&row, "has_token")?,
            }))
        })
    }

    /// Turns an instance off (status `disabled`) or back on (status
    /// `connecting` until its worker reports).
    pub async fn set_disabled(&self, id: &str, disabled: bool) -> Result<(), StoreError> {
        let status = if disabled {
            InstanceStatus::Disabled
        } else {
            InstanceStatus::Connecting
        };
        let done = dispatch!(self, p => sqlx::query(
            "UPDATE instances SET disabled = $1, status = $2, status_message = NULL WHERE id = $3",
        )
        .bind(disabled)
        .bind(status.as_str())
        .bind(id)
        .execute(p).await.map(|d| d.rows_affected()))
        .map_err(StoreError::db("disabling or enabling an instance"))?;
        found(done, id)
    }

    /// Renames an instance and/or replaces its tags and rate override;
    /// `None` leaves a field unchanged, `Some(None)` clears the override.
    pub async fn update_instance(
        &self,
        id: &str,
        name: Option<&str>,
        tags: Option<&[String]>,
        requests_per_minute: Option<Option<u32>>,
    ) -> Result<(), StoreError> {
        let action = "updating an instance";
        let _turn = self.write_turn().await;
        dispatch!(self, p => {
            let mut tx = p.begin().await.map_err(StoreError::db(action))?;
            let done = sqlx::query("UPDATE instances SET name = COALESCE($1, name) WHERE id = $2")
                .bind(name)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db(action))?;
            found(done.rows_affected(), id)?;
            if let Some(tags) = tags {
                let tags_json = serde_json::to_string(tags).unwrap_or_else(|_| "[]".to_owned());
                sqlx::query("UPDATE instances SET tags_json = $1 WHERE id = $2")
                    .bind(tags_json)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::db(action))?;
            }
            if let Some(rpm) = requests_per_minute {
                sqlx::query("UPDATE instances SET requests_per_minute = $1 WHERE id = $2")
                    .bind(rpm.map(i64::from))
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::db(action))?;
            }
            tx.commit().await.map_err(StoreError::db(action))
        })
    }

    /// Time of the newest stored event of an instance.
    pub async fn newest_event_ms(&self, id: &str) -> Result<Option<i64>, StoreError> {
        dispatch!(self, p => sqlx::query_scalar("SELECT MAX(time_ms) FROM events WHERE instance_id = $1")
            .bind(id)
            .fetch_one(p).await)
            .map_err(StoreError::db("reading the newest event time"))
    }

    /// Instances by status and events stored per instance, for metrics.
    pub async fn stats(&self) -> Result<StoreStats, StoreError> {
        dispatch!(self, p => {
            let rows = sqlx::query("SELECT id, status, disabled, event_count FROM instances")
                .fetch_all(p)
                .await
                .map_err(StoreError::db("reading instance statistics"))?;
            let mut stats = StoreStats::default();
            for row in &rows {
                let id: String = col(row, "id")?;
                let disabled: bool = col(row, "disabled")?;
                let status = if disabled {
                    InstanceStatus::Disabled
                } else {
                    col::<String, _>(row, "status")?.parse::<InstanceStatus>()?
                };
                *stats.by_status.entry(status.as_str()).or_default() += 1;
                stats.events.insert(id, to_u64(col(row, "event_count")?));
            }
            Ok(stats)
        })
    }

    /// Records a new OAuth state in phase `issued`.
    pub async fn create_oauth_state(&self, state: &OauthState) -> Result<(), StoreError> {
        let (nonce, sealed) = match &state.client_secret {
            Some(secret) => {
                let (n, s) = key::seal(
                    &self.inner.cipher,
                    &state_ad(&state.state_sha256),
                    secret.as_bytes(),
                )?;
                (Some(n), Some(s))
            }
            None => (None, None),
        };
        let config_json = serde_json::to_string(&state.config).unwrap_or_else(|_| "{}".to_owned());
        dispatch!(self, p => sqlx::query(
            "INSERT INTO oauth_states (state_sha256, element_key, config_json, client_id, \
             secret_nonce, secret_sealed, callback_url, created_ms, expires_ms, phase, code_sha256) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'issued', NULL)",
        )
        .bind(&state.state_sha256)
        .bind(&state.element_key)
        .bind(config_json)
        .bind(&state.client_id)
        .bind(nonce)
        .bind(sealed)
        .bind(&state.callback_url)
        .bind(now_ms())
        .bind(state.expires_ms)
        .execute(p).await.map(|d| d.rows_affected()))
        .map_err(StoreError::db("storing an OAuth state"))?;
        // Expired states are useless; dropping them here keeps the table
        // small without a separate sweeper.
        dispatch!(self, p => sqlx::query("DELETE FROM oauth_states WHERE expires_ms < $1")
            .bind(now_ms() - 86_400_000)
            .execute(p).await.map(|d| d.rows_affected()))
        .map_err(StoreError::db("pruning OAuth states"))?;
        Ok(())
    }

    /// The provider redirected back with a code: `issued` → `returned`,
    /// with the code sealed for [`Store::oauth_outcome`]. Returns the
    /// element key, or `None` when the state is unknown, expired or already
    /// used.
    pub async fn oauth_state_returned(
        &self,
        state_sha256: &str,
        code_sha256: &str,
        code: &str,
    ) -> Result<Option<String>, StoreError> {
        let (nonce, sealed) =
            key::seal(&self.inner.cipher, &code_ad(state_sha256), code.as_bytes())?;
        dispatch!(self, p => {
            let row = sqlx::query(
                "UPDATE oauth_states SET phase = 'returned', code_sha256 = $1, \
                 code_nonce = $4, code_sealed = $5 \
                 WHERE state_sha256 = $2 AND phase = 'issued' AND expires_ms > $3 \
                 RETURNING element_key",
            )
            .bind(code_sha256)
            .bind(state_sha256)
            .bind(now_ms())
            .bind(nonce)
            .bind(sealed)
            .fetch_optional(p)
            .await
            .map_err(StoreError::db("recording an OAuth callback"))?;
            row.map(|r| col(&r, "element_key")).transpose()
        })
    }

    /// Where the authorization of a state stands; `None` for a state
    /// Ward never issued (or pruned a day after it expired). The code is
    /// opened only while the state is `returned` and unexpired.
    pub async fn oauth_outcome(
        &self,
        state_sha256: &str,
    ) -> Result<Option<OauthOutcome>, StoreError> {
        dispatch!(self, p => {
            let row = sqlx::query(
                "SELECT element_key, phase, expires_ms, code_sha256, code_nonce, code_sealed \
                 FROM oauth_states WHERE state_sha256 = $1",
            )
            .bind(state_sha256)
            .fetch_optional(p)
            .await
            .map_err(StoreError::db("reading an OAuth state"))?;
            let Some(row) = row else { return Ok(None) };
            let phase: String = col(&row, "phase")?;
            let expired = col::<i64, _>(&row, "expires_ms")? <= now_ms();
            let nonce: Option<Vec<u8>> = col(&row, "code_nonce")?;
            let sealed: Option<Vec<u8>> = col(&row, "code_sealed")?;
            let code = match (nonce, sealed) {
                (Some(n), Some(s)) if phase == "returned" && !expired => {
                    let ad = code_ad(state_sha256);
                    let plain = key::open(&self.inner.cipher, &ad, &n, &s)?;
                    Some(String::from_utf8(plain).map_err(|_| StoreError::Corrupt {
                        instance_id: ad,
                        what: "oauth code",
                        detail: "not UTF-8".to_owned(),
                    })?)
                }
                _ => None,
            };
            Ok(Some(OauthOutcome {
                element_key: col(&row, "element_key")?,
                phase,
                code_returned: col::<Option<String>, _>(&row, "code_sha256")?.is_some(),
                expired,
                code,
            }))
        })
    }

    /// The user declined at the provider: the state is consumed. Returns
    /// the element key, or `None` when the state is unknown, expired or
    /// already used.
    pub async fn oauth_state_declined(
        &self,
        state_sha256: &str,
    ) -> Result<Option<String>, StoreError> {
        dispatch!(self, p => {
            let row = sqlx::query(
                "UPDATE oauth_states SET phase = 'consumed' \
                 WHERE state_sha256 = $1 AND phase = 'issued' AND expires_ms > $2 \
                 RETURNING element_key",
            )
            .bind(state_sha256)
            .bind(now_ms())
            .fetch_optional(p)
            .await
            .map_err(StoreError::db("recording a declined OAuth consent"))?;
            row.map(|r| col(&r, "element_key")).transpose()
        })
    }

    /// Claims an `issued` or `returned` state for one code exchange: the
    /// state becomes `consumed` at once, so a concurrent or later claim gets
    /// `None` (as do unknown, expired and declined states), and it is
    /// returned with its client secret decrypted. `code_sha256` is set when
    /// Ward's callback saw the code (the state was `returned`). An exchange
    /// that did not reach a verdict gives the claim back with
    /// [`Store::release_oauth_state`].
    pub async fn claim_oauth_state(
        &self,
        state_sha256: &str,
    ) -> Result<Option<OauthState>, StoreError> {
        dispatch!(self, p => {
            let row = sqlx::query(
                "UPDATE oauth_states SET phase = 'consumed', code_nonce = NULL, code_sealed = NULL \
                 WHERE state_sha256 = $1 AND phase IN ('issued', 'returned') AND expires_ms > $2 \
                 RETURNING element_key, config_json, client_id, secret_nonce, secret_sealed, \
                 callback_url, expires_ms, code_sha256",
            )
            .bind(state_sha256)
            .bind(now_ms())
            .fetch_optional(p)
            .await
            .map_err(StoreError::db("consuming an OAuth state"))?;
            let Some(row) = row else { return Ok(None) };
            let ad = state_ad(state_sha256);
            let nonce: Option<Vec<u8>> = col(&row, "secret_nonce")?;
            let sealed: Option<Vec<u8>> = col(&row, "secret_sealed")?;
            let client_secret = match (nonce, sealed) {
                (Some(n), Some(s)) => {
                    let plain = key::open(&self.inner.cipher, &ad, &n, &s)?;
                    Some(String::from_utf8(plain).map_err(|_| StoreError::Corrupt {
                        instance_id: ad.clone(),
                        what: "oauth client secret",
                        detail: "not UTF-8".to_owned(),
                    })?)
                }
                _ => None,
            };
            let config = serde_json::from_str(&col::<String, _>(&row, "config_json")?).map_err(|e| {
                StoreError::Corrupt {
                    instance_id: ad.clone(),
                    what: "oauth state config",
                    detail: e.to_string(),
                }
            })?;
            Ok(Some(OauthState {
                state_sha256: state_sha256.to_owned(),
                element_key: col(&row, "element_key")?,
                config,
                client_id: col(&row, "client_id")?,
                client_secret,
                callback_url: col(&row, "callback_url")?,
                expires_ms: col(&row, "expires_ms")?,
                code_sha256: col(&row, "code_sha256")?,
            }))
        })
    }

    /// Gives back a claim taken by [`Store::claim_oauth_state`] whose code
    /// exchange reached no verdict (the provider was unreachable, answered
    /// 5xx or throttled): the state returns to the phase it was claimed in
    /// (`returned` when Ward's callback recorded a code, `issued`
    /// otherwise) and can be used again until it expires.
    pub async fn release_oauth_state(&self, state_sha256: &str) -> Result<(), StoreError> {
        dispatch!(self, p => sqlx::query(
            "UPDATE oauth_states \
             SET phase = CASE WHEN code_sha256 IS NULL THEN 'issued' ELSE 'returned' END \
             WHERE state_sha256 = $1 AND phase = 'consumed'",
        )
        .bind(state_sha256)
        .execute(p).await.map(|d| d.rows_affected()))
        .map_err(StoreError::db("releasing an OAuth state"))?;
        Ok(())
    }

    /// Stores the SHA-256 of an API secret (`user` or `organization`).
    pub async fn set_api_secret_hash(&self, name: &str, sha256: &str) -> Result<(), StoreError> {
        dispatch!(self, p => sqlx::query(
            "INSERT INTO api_secrets (name, sha256, created_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET sha256 = excluded.sha256, \
             created_ms = excluded.created_ms",
        )
        .bind(name)
        .bind(sha256)
        .bind(now_ms())
        .execute(p).await.map(|d| d.rows_affected()))
        .map_err(StoreError::db("storing an API secret hash"))?;
        Ok(())
    }

    /// Stores the hashes of a generated pair of API secrets unless the
    /// store already holds a complete pair; returns whether the store now
    /// holds exactly `user` and `organization`. Daemons sharing a store and
    /// starting at once each offer their own pair: the first one stored
    /// wins, the others get `false` and must not hand out theirs. An
    /// incomplete pair (one hash without the other) is replaced.
    pub async fn offer_api_secret_hashes(
        &self,
        user: &str,
        organization: &str,
    ) -> Result<bool, StoreError> {
        let action = "storing the API secret hashes";
        let _turn = self.write_turn().await;
        let backend = self.backend();
        let stored: BTreeMap<String, String> = dispatch!(self, p => {
            let mut tx = p.begin().await.map_err(StoreError::db(action))?;
            if backend == Backend::Postgres {
                // Offers from several daemons take turns.
                sqlx::query("LOCK TABLE api_secrets IN EXCLUSIVE MODE")
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::db(action))?;
            }
            // On SQLite this first write takes the database's write lock.
            sqlx::query(
                "DELETE FROM api_secrets WHERE name IN ('user', 'organization') \
                 AND (SELECT COUNT(*) FROM api_secrets \
                      WHERE name IN ('user', 'organization')) < 2",
            )
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(action))?;
            sqlx::query(
                "INSERT INTO api_secrets (name, sha256, created_ms) \
                 VALUES ('user', $1, $3), ('organization', $2, $3) \
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(user)
            .bind(organization)
            .bind(now_ms())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(action))?;
            let rows = sqlx::query(
                "SELECT name, sha256 FROM api_secrets WHERE name IN ('user', 'organization')",
            )
            .fetch_all(&mut *tx)
            .await
            .map_err(StoreError::db(action))?;
            tx.commit().await.map_err(StoreError::db(action))?;
            rows.iter()
                .map(|r| Ok((col(r, "name")?, col(r, "sha256")?)))
                .collect::<Result<_, StoreError>>()?
        });
        Ok(stored.get("user").map(String::as_str) == Some(user)
            && stored.get("organization").map(String::as_str) == Some(organization))
    }

    /// API secret hashes by name.
    pub async fn api_secret_hashes(&self) -> Result<BTreeMap<String, String>, StoreError> {
        dispatch!(self, p => {
            let rows = sqlx::query("SELECT name, sha256 FROM api_secrets")
                .fetch_all(p)
                .await
                .map_err(StoreError::db("reading API secret hashes"))?;
            rows.iter()
                .map(|r| Ok((col(r, "name")?, col(r, "sha256")?)))
                .collect()
        })
    }
}

fn found(rows: u64, id: &str) -> Result<(), StoreError> {
    if rows == 0 {
        Err(StoreError::InstanceNotFound { id: id.to_owned() })
    } else {
        Ok(())
    }
}
