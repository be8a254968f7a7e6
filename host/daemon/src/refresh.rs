//! Host-side OAuth2 refresh.
//!
//! When a manifest's oauth2 auth says `refresh = true`, access tokens expire
//! and the host renews them before they do: `grant_type=refresh_token`
//! POSTed to the manifest's `token_url`, sent through the instance's own
//! broker ([`ward_runtime::Bound::host_request`]) so the request is
//! grant-checked, the client secret and refresh token are substituted by
//! reference, and the request appears in the egress log without secret
//! values. One refresh at a time per instance ([`Refresher`]): concurrent
//! callers wait and then see the fresh token instead of spending the
//! (rotating) refresh token twice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Deserialize;
use ward_manifest::{ACCESS_TOKEN, Auth, CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN};
use ward_runtime::{EgressEntry, HostRequest, Plugin, SecretSet};
use ward_store::{Credentials, Instance, Store, StoreError};

/// Refresh when the access token expires within this margin.
pub const DEFAULT_MARGIN: Duration = Duration::from_secs(300);

/// Why credentials could not be refreshed.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// The authorization server refused the refresh token or the client:
    /// only a new consent helps.
    #[error(
        "credentials rejected: reconnect instance {instance} (the {plugin} token endpoint refused the refresh: {detail})"
    )]
    Rejected {
        /// Instance id.
        instance: String,
        /// Plugin key.
        plugin: String,
        /// The provider's `error: error_description`, or the status.
        detail: String,
    },
    /// Transport failure, 5xx or 429: retry later; the current token may
    /// still work until it expires.
    #[error("refreshing credentials of instance {instance} failed: {detail}; will retry")]
    Unavailable {
        /// Instance id.
        instance: String,
        /// What failed.
        detail: String,
    },
    /// The instance's configuration no longer fits the manifest.
    #[error(transparent)]
    Config(#[from] ward_manifest::ManifestError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Serialises refreshes per instance. Share one per daemon.
#[derive(Debug)]
pub struct Refresher {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    margin: Duration,
}

impl Default for Refresher {
    fn default() -> Self {
        Refresher::new(DEFAULT_MARGIN)
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<i64>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TokenError {
    error: String,
    error_description: String,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Refresher {
    /// A refresher renewing tokens that expire within `margin`.
    pub fn new(margin: Duration) -> Refresher {
        Refresher {
            locks: Mutex::new(HashMap::new()),
            margin,
        }
    }

    fn lock_for(&self, instance: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        locks.entry(instance.to_string()).or_default().clone()
    }

    /// Forgets an instance's lock (after it is deleted).
    pub fn forget(&self, instance: &str) {
        self.locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(instance);
    }

    /// Refreshes the instance's access token if its plugin asks for host
    /// refresh and the token expires within the margin. Returns whether a
    /// refresh happened. Call it before each fetch round.
    pub async fn ensure_fresh(
        &self,
        store: &Store,
        plugin: &Arc<Plugin>,
        instance: &Instance,
    ) -> Result<bool, RefreshError> {
        self.refresh(store, plugin, instance, false).await
    }

    /// Refreshes the instance's access token whatever its stored expiry
    /// says: the provider rejected it before then (revoked early, or a sync
    /// outlived it). Returns `false` when the instance cannot be refreshed
    /// (no host refresh, no refresh token).
    pub async fn force_refresh(
        &self,
        store: &Store,
        plugin: &Arc<Plugin>,
        instance: &Instance,
    ) -> Result<bool, RefreshError> {
        self.refresh(store, plugin, instance, true).await
    }

    async fn refresh(
        &self,
        store: &Store,
        plugin: &Arc<Plugin>,
        instance: &Instance,
        force: bool,
    ) -> Result<bool, RefreshError> {
        let manifest = plugin.manifest();
        let Some(Auth::Oauth2 { refresh: true, .. }) = manifest.oauth2() else {
            return Ok(false);
        };
        let lock = self.lock_for(&instance.id);
        let _guard = lock.lock().await;
        // Read under the lock: a caller that waited sees the token the
        // previous holder just stored and does nothing.
        let Some(mut creds) = store.credentials(&instance.id).await? else {
            return Ok(false);
        };
        let due = force
            || creds
                .expires_at_ms
                .is_some_and(|at| at - now_ms() <= self.margin.as_millis() as i64);
        if !due
            || !creds.secrets.contains_key(ACCESS_TOKEN)
            || !creds.secrets.contains_key(REFRESH_TOKEN)
        {
            return Ok(false);
        }
        let config = manifest.validate_config(&instance.config)?;
        let Some(token_url) = manifest.token_url_for(&config)? else {
            return Ok(false);
        };
        let bound = plugin.bind(
            &instance.id,
            &instance.config,
            SecretSet::new(creds.secrets.clone()),
            None,
        )?;
        let mut body = form_urlencoded_pair("grant_type", "refresh_token");
        body.push_str("&refresh_token={{secret:refresh_token}}");
        if let Some(client_id) = config.get(CLIENT_ID) {
            body.push('&');
            body.push_str(&form_urlencoded_pair("client_id", client_id));
        }
        if creds.secrets.contains_key(CLIENT_SECRET) {
            body.push_str("&client_secret={{secret:client_secret}}");
        }
        if !creds.scopes.is_empty() {
            body.push('&');
            body.push_str(&form_urlencoded_pair("scope", &creds.scopes.join(" ")));
        }
        let report = bound
            .host_request(HostRequest {
                method: "POST".into(),
                url: token_url,
                headers: vec![
                    (
                        "content-type".into(),
                        "application/x-www-form-urlencoded".into(),
                    ),
                    ("accept".into(), "application/json".into()),
                ],
                body: body.into_bytes(),
            })
            .await;
        record_egress(store, instance, &report.egress).await;
        let unavailable = |detail: String| RefreshError::Unavailable {
            instance: instance.id.clone(),
            detail,
        };
        let response = report.result.map_err(unavailable)?;
        if !(200..300).contains(&response.status) {
            let err: TokenError = serde_json::from_slice(&response.body).unwrap_or_default();
            let detail = if err.error.is_empty() {
                format!("status {}", response.status)
            } else {
                format!("{}: {}", err.error, err.error_description)
            };
            return Err(match response.status {
                400 | 401 | 403 => RefreshError::Rejected {
                    instance: instance.id.clone(),
                    plugin: manifest.key.clone(),
                    detail,
                },
                _ => unavailable(format!("token endpoint answered {detail}")),
            });
        }
        // The serde message could quote the token, so it is not kept.
        let token: TokenResponse = serde_json::from_slice(&response.body).map_err(|_| {
            unavailable("token endpoint answered 200 without a valid token response".into())
        })?;
        creds
            .secrets
            .insert(ACCESS_TOKEN.to_string(), token.access_token);
        if let Some(rotated) = token.refresh_token.filter(|t| !t.is_empty()) {
            creds.secrets.insert(REFRESH_TOKEN.to_string(), rotated);
        }
        creds.expires_at_ms = token
            .expires_in
            .filter(|s| *s > 0)
            .map(|s| now_ms().saturating_add(s.saturating_mul(1000)));
        if let Some(scope) = token.scope {
            creds.scopes = scope.split_whitespace().map(str::to_string).collect();
        }
        store.put_credentials(&instance.id, &creds).await?;
        tracing::info!(instance = %instance.id, plugin = %manifest.key, "OAuth access token refreshed");
        Ok(true)
    }
}

fn form_urlencoded_pair(name: &str, value: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair(name, value)
        .finish()
}

/// The egress log is evidence, not a precondition: failing to write it is
/// logged and the refresh result stands.
async fn record_egress(store: &Store, instance: &Instance, entries: &[EgressEntry]) {
    let records =
        crate::ingest::egress_records(&instance.id, &instance.plugin_key, "oauth-refresh", entries);
    if let Err(e) = store.append_egress(&records).await {
        tracing::warn!(instance = %instance.id, error = %e, "could not record the refresh in the egress log");
    }
}

/// The credentials to store after an OAuth `exchange`: what the plugin
/// returned plus the operator's client secret, which the host keeps for
/// refresh (the plugin never sees it). Connect code calls this with the
/// `apiSecret` it bound during exchange.
pub fn merge_exchange_secrets(
    exchanged: ward_runtime::types::Credentials,
    client_secret: Option<&str>,
) -> Credentials {
    let mut secrets: std::collections::BTreeMap<String, String> = exchanged
        .secrets
        .into_iter()
        .map(|s| (s.name, s.value))
        .collect();
    if let Some(secret) = client_secret {
        secrets.insert(CLIENT_SECRET.to_string(), secret.to_string());
    }
    Credentials {
        secrets,
        expires_at_ms: exchanged.expires_at,
        scopes: exchanged.scopes,
        principal: exchanged.principal,
    }
}
