//! Creating and binding instances: `exchange` turns the operator's grant
//! into credentials, the store keeps them encrypted, `test` checks the
//! prerequisites, and [`bind`] prepares the plugin for calls.

use std::collections::BTreeMap;
use std::sync::Arc;

use ward_runtime::types::{Grant, TestReport};
use ward_runtime::{Bound, CallError, Plugin, SecretSet};
use ward_store::{Credentials, Instance, InstanceStatus, NewInstance, Store, StoreError};

/// Why an instance could not be connected or bound.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The configuration does not fit the manifest.
    #[error(transparent)]
    Config(#[from] ward_manifest::ManifestError),
    /// `exchange` or `test` failed.
    #[error("connecting {plugin}: {source}")]
    Call {
        /// Plugin key.
        plugin: String,
        /// What the plugin reported.
        #[source]
        source: CallError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The instance has no stored credentials.
    #[error("instance {0} has no stored credentials: reconnect it")]
    NoCredentials(String),
}

/// Binds a stored instance to its plugin with its decrypted secrets.
pub async fn bind(
    store: &Store,
    plugin: &Arc<Plugin>,
    instance: &Instance,
) -> Result<Bound, ConnectError> {
    let creds = store
        .credentials(&instance.id)
        .await?
        .ok_or_else(|| ConnectError::NoCredentials(instance.id.clone()))?;
    Ok(plugin.bind(
        &instance.id,
        &instance.config,
        SecretSet::new(creds.secrets),
        None,
    )?)
}

/// Creates an instance from a grant: exchange, store credentials, test.
/// The instance ends `connected` when every check passes, `error` with the
/// failed checks' messages otherwise.
pub async fn connect(
    store: &Store,
    plugin: &Arc<Plugin>,
    name: &str,
    config: BTreeMap<String, String>,
    grant: Grant,
) -> Result<(Instance, Bound, TestReport), ConnectError> {
    let key = plugin.manifest().key.clone();
    // Exchange runs before the instance exists, with no secrets bound.
    let unbound = plugin.bind("connecting", &config, SecretSet::default(), None)?;
    let creds = unbound
        .exchange(&grant)
        .await
        .result
        .map_err(|source| ConnectError::Call {
            plugin: key.clone(),
            source,
        })?;
    let instance = store
        .create_instance(&NewInstance {
            plugin_key: key.clone(),
            plugin_version: plugin.manifest().version.clone(),
            name: name.to_string(),
            config,
            tags: Vec::new(),
        })
        .await?;
    store
        .put_credentials(
            &instance.id,
            &Credentials {
                secrets: creds
                    .secrets
                    .into_iter()
                    .map(|s| (s.name, s.value))
                    .collect(),
                expires_at_ms: creds.expires_at,
                scopes: creds.scopes,
                principal: creds.principal,
            },
        )
        .await?;
    let bound = bind(store, plugin, &instance).await?;
    let report = match bound.test().await.result {
        Ok(report) => report,
        Err(source) => {
            store
                .set_status(
                    &instance.id,
                    InstanceStatus::Error,
                    Some(&source.to_string()),
                )
                .await?;
            return Err(ConnectError::Call {
                plugin: key,
                source,
            });
        }
    };
    let failed: Vec<String> = report
        .checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| format!("{}: {}", c.name, c.message))
        .collect();
    if failed.is_empty() {
        store
            .set_status(&instance.id, InstanceStatus::Connected, None)
            .await?;
    } else {
        store
            .set_status(
                &instance.id,
                InstanceStatus::Error,
                Some(&failed.join("; ")),
            )
            .await?;
    }
    let instance = store.instance(&instance.id).await?.unwrap_or(instance);
    Ok((instance, bound, report))
}
