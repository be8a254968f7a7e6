//! Host-side OAuth2 refresh.
//!
//! When a manifest's oauth2 auth says `refresh = true`, access tokens expire
//! and the host renews them before they do: `grant_type=refresh_token`
//! POSTed to the manifest's `token_url` by [`crate::token`] (the same
//! client as the code exchange: grant-checked, secrets by reference, body
//! and client authentication as the manifest declares, logged without
//! secret values). One refresh at a time per instance ([`Refresher`]): concurrent
//! callers wait and then see the fresh token instead of spending the
//! (rotating) refresh token twice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ward_manifest::{ACCESS_TOKEN, Auth, CLIENT_SECRET, REFRESH_TOKEN};
use ward_runtime::{EgressEntry, Plugin};

use crate::token::{self, TokenFailure, TokenGrant, now_ms};
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
        let (result, egress) = token::request(
            plugin,
            &instance.id,
            &config,
            &creds.secrets,
            TokenGrant::Refresh {
                scopes: &creds.scopes,
            },
        )
        .await;
        record_egress(store, instance, &egress).await;
        let token = result.map_err(|failure| match failure {
            TokenFailure::Rejected { detail, .. } => RefreshError::Rejected {
                instance: instance.id.clone(),
                plugin: manifest.key.clone(),
                detail,
            },
            TokenFailure::Throttled { detail, .. } | TokenFailure::Unavailable(detail) => {
                RefreshError::Unavailable {
                    instance: instance.id.clone(),
                    detail,
                }
            }
        })?;
        token.apply(&mut creds);
        store.put_credentials(&instance.id, &creds).await?;
        tracing::info!(instance = %instance.id, plugin = %manifest.key, "OAuth access token refreshed");
        Ok(true)
    }
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
