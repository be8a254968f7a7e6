//! Creating, reconnecting, testing and binding instances: the host (or,
//! for a non-standard flow, the plugin's `exchange`) turns the operator's
//! grant into credentials, the store keeps them encrypted,
//! `test` checks the prerequisites and sets the status, and [`bind`]
//! prepares the plugin for calls.

use std::collections::BTreeMap;
use std::sync::Arc;

use ward_manifest::{Auth, ExchangeBy};
use ward_runtime::types::{BasicCredentials, Grant, OauthCode, PluginError, RateLimit, TestReport};
use ward_runtime::{Bound, CallError, CallReport, ContractVersion, EgressEntry, Plugin, SecretSet};

use crate::token::{self, TokenFailure, TokenGrant};
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

/// What is needed to create an instance.
#[derive(Clone)]
pub struct NewConnection {
    /// Human-readable name.
    pub name: String,
    /// Instance configuration (validated against the manifest).
    pub config: BTreeMap<String, String>,
    /// Free-form tags.
    pub tags: Vec<String>,
    /// What `exchange` turns into credentials.
    pub grant: Grant,
    /// Secrets the host holds before `exchange` (e.g. an OAuth
    /// `client_secret`): bound for the exchange call and stored with the
    /// resulting credentials, because the host's token refresher needs them.
    pub host_secrets: BTreeMap<String, String>,
}

impl std::fmt::Debug for NewConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewConnection")
            .field("name", &self.name)
            .field("config", &self.config)
            .field("tags", &self.tags)
            .field(
                "host_secrets",
                &self.host_secrets.keys().collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// A connected (or tested) instance.
#[derive(Debug)]
pub struct Connected {
    /// The instance as stored, status set from the test.
    pub instance: Instance,
    /// The plugin bound to the instance's secrets.
    pub bound: Bound,
    /// The test verdicts, or why `test` itself failed (the status then
    /// says what to do).
    pub report: Result<TestReport, CallError>,
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
/// failed checks' messages otherwise. Kept for the demo and older callers;
/// see [`create`].
pub async fn connect(
    store: &Store,
    plugin: &Arc<Plugin>,
    name: &str,
    config: BTreeMap<String, String>,
    grant: Grant,
) -> Result<(Instance, Bound, TestReport), ConnectError> {
    let c = create(
        store,
        plugin,
        NewConnection {
            name: name.to_string(),
            config,
            tags: Vec::new(),
            grant,
            host_secrets: BTreeMap::new(),
        },
    )
    .await?;
    let key = plugin.manifest().key.clone();
    let report = c.report.map_err(|source| ConnectError::Call {
        plugin: key,
        source,
    })?;
    Ok((c.instance, c.bound, report))
}

/// Turns the operator's grant into the credentials to store, with the
/// host's own secrets (the OAuth client secret) added. The host does it
/// (API token and basic stored as the manifest declares; OAuth code
/// exchanged at `token_url`, see [`crate::token`]) unless the plugin must:
/// a 0.1 plugin always exchanges itself, a 0.2 plugin when its manifest's
/// auth says `exchange = "plugin"`.
async fn exchange(
    store: &Store,
    plugin: &Arc<Plugin>,
    egress_id: &str,
    config: &BTreeMap<String, String>,
    grant: &Grant,
    host_secrets: &BTreeMap<String, String>,
) -> Result<(Credentials, Vec<EgressEntry>), ConnectError> {
    let key = plugin.manifest().key.clone();
    let refused = |error: PluginError| ConnectError::Call {
        plugin: key.clone(),
        source: CallError::Plugin(error),
    };
    let auth = auth_for(plugin, grant).map_err(refused)?;
    if plugin_exchanges(plugin, auth) {
        return plugin_exchange(store, plugin, egress_id, config, grant, host_secrets).await;
    }
    let mut secrets = host_secrets.clone();
    match (grant, auth) {
        (Grant::ApiToken(token), Auth::ApiToken { secret, .. }) => {
            secrets.insert(
                secret.clone(),
                non_empty_token(&key, token).map_err(refused)?,
            );
        }
        // A basic credential the host composes from the manifest's user
        // name template and the operator's token (Zendesk's
        // `{email}/token`).
        (Grant::ApiToken(token), Auth::Basic { secret, .. }) => {
            let token = non_empty_token(&key, token).map_err(refused)?;
            let username = match auth.basic_username(config) {
                Ok(Some(username)) => username,
                Ok(None) => {
                    return Err(refused(PluginError::Internal(
                        "host error: an API token reached a basic auth without a user name template"
                            .to_string(),
                    )));
                }
                Err(e) => {
                    let or_oauth = if plugin.manifest().oauth2().is_some() {
                        ", or connect with OAuth instead"
                    } else {
                        ""
                    };
                    return Err(refused(PluginError::InvalidConfig(format!(
                        "plugin `{key}`: {e}{or_oauth}"
                    ))));
                }
            };
            secrets.insert(secret.clone(), basic_value(&username, &token));
        }
        (Grant::Basic(BasicCredentials { username, password }), Auth::Basic { secret, .. }) => {
            if username.is_empty() || password.is_empty() {
                return Err(refused(PluginError::InvalidConfig(
                    "the user name or password is empty: enter both".to_string(),
                )));
            }
            secrets.insert(secret.clone(), basic_value(username, password));
        }
        (
            Grant::OauthCode(OauthCode {
                code,
                redirect_uri,
                code_verifier,
            }),
            Auth::Oauth2 {
                scopes, refresh, ..
            },
        ) => {
            let (result, egress) = token::request(
                plugin,
                egress_id,
                config,
                host_secrets,
                TokenGrant::Code {
                    code,
                    redirect_uri,
                    code_verifier: code_verifier.as_deref(),
                },
            )
            .await;
            let token = match result {
                Ok(token) => token,
                Err(failure) => {
                    // No instance will hold this attempt: log it under the id given.
                    record_egress(store, egress_id, &key, "exchange", &egress).await;
                    return Err(refused(code_refusal(&key, failure)));
                }
            };
            let expires = token.expires_in.is_some_and(|s| s > 0);
            if *refresh && expires && token.refresh_token.as_deref().is_none_or(str::is_empty) {
                // This access token expires and nothing could renew it: the
                // instance would stop when it does, so refuse it now. (A
                // long-lived token, Egnyte's `expires_in: -1`, needs none.)
                record_egress(store, egress_id, &key, "exchange", &egress).await;
                return Err(refused(PluginError::InvalidConfig(format!(
                    "plugin `{key}`: the provider's token answer has no refresh token, so the \
                     connection would stop when the access token expires: allow the Refresh \
                     Token grant for the app (Okta: the `offline_access` scope), then connect again"
                ))));
            }
            let creds = token::code_credentials(token, host_secrets, scopes);
            return Ok((creds, egress));
        }
        _ => {
            // `auth_for` picked the auth by the grant's kind.
            return Err(refused(PluginError::Internal(
                "host error: grant and auth kind differ".to_string(),
            )));
        }
    }
    Ok((
        Credentials {
            secrets,
            expires_at_ms: None,
            scopes: Vec::new(),
            principal: None,
        },
        Vec::new(),
    ))
}

/// An operator's token, trimmed, or a refusal saying it is empty.
fn non_empty_token(key: &str, token: &str) -> Result<String, PluginError> {
    let token = token.trim();
    if token.is_empty() {
        return Err(PluginError::InvalidConfig(format!(
            "the API token is empty: paste the token created in the {key} admin console"
        )));
    }
    Ok(token.to_string())
}

/// `base64(username:password)`, the value of a `Basic` header.
fn basic_value(username: &str, password: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
}

/// The manifest auth a grant is for, or a refusal naming what the plugin
/// accepts. An API token also fits a `basic` auth whose manifest composes
/// the user name (`username` template), when no `api-token` auth exists.
fn auth_for<'m>(plugin: &'m Plugin, grant: &Grant) -> Result<&'m Auth, PluginError> {
    let wanted = match grant {
        Grant::ApiToken(_) => "api-token",
        Grant::Basic(_) => "basic",
        Grant::OauthCode(_) => "oauth2",
    };
    let manifest = plugin.manifest();
    let composed_basic = |a: &&Auth| {
        matches!(grant, Grant::ApiToken(_))
            && matches!(
                a,
                Auth::Basic {
                    username: Some(_),
                    ..
                }
            )
    };
    manifest
        .auth
        .iter()
        .find(|a| a.kind() == wanted)
        .or_else(|| manifest.auth.iter().find(composed_basic))
        .ok_or_else(|| {
            let accepted: Vec<&str> = manifest.auth.iter().map(Auth::kind).collect();
            PluginError::InvalidConfig(format!(
                "plugin `{}` does not accept {wanted} credentials; connect it with one of: {}",
                manifest.key,
                accepted.join(", ")
            ))
        })
}

/// Whether the plugin's own `exchange` turns this auth's grants into
/// credentials (and so sees the raw grant).
pub fn plugin_exchanges(plugin: &Plugin, auth: &Auth) -> bool {
    match plugin.contract() {
        // 0.1 has no host-side exchange: the contract hands every grant
        // to the plugin.
        ContractVersion::V0_1 => true,
        ContractVersion::V0_2 => auth.exchange_by() == ExchangeBy::Plugin,
    }
}

/// The contract error for a token endpoint that gave no tokens, so the
/// OAuth state is consumed on a verdict (rejected code or client) and
/// released otherwise (see [`crate::consent`]).
fn code_refusal(plugin: &str, failure: TokenFailure) -> PluginError {
    match failure {
        TokenFailure::Rejected { error, detail } if error == "invalid_scope" => {
            PluginError::Forbidden(format!(
                "the {plugin} token endpoint refused the requested scopes ({detail}): grant the scopes to the OAuth client, then {}",
                crate::consent::RESTART
            ))
        }
        TokenFailure::Rejected { error, detail } if error == "invalid_client" => {
            PluginError::InvalidConfig(format!(
                "the {plugin} token endpoint rejected the OAuth client ({detail}): check the client id (apiKey) and client secret (apiSecret) of the app integration, then {}",
                crate::consent::RESTART
            ))
        }
        TokenFailure::Rejected { detail, .. } => PluginError::Unauthorized(format!(
            "the {plugin} token endpoint rejected the authorization code or the OAuth client ({detail}): a code works once and expires within minutes, and the client id, secret and redirect URI must be the ones the consent was given for; {}",
            crate::consent::RESTART
        )),
        TokenFailure::Throttled {
            retry_after_ms,
            detail,
        } => PluginError::RateLimited(RateLimit {
            retry_after_ms,
            message: format!(
                "the {plugin} token endpoint is throttling ({detail}); post the same code again shortly"
            ),
        }),
        TokenFailure::Unavailable(detail) => PluginError::Unavailable(format!(
            "{detail}; the code was not used: post it again once the provider answers"
        )),
    }
}

/// Runs the plugin's `exchange` with only the host's own secrets bound and
/// returns the credentials to store (exchange result plus those host
/// secrets).
async fn plugin_exchange(
    store: &Store,
    plugin: &Arc<Plugin>,
    egress_id: &str,
    config: &BTreeMap<String, String>,
    grant: &Grant,
    host_secrets: &BTreeMap<String, String>,
) -> Result<(Credentials, Vec<EgressEntry>), ConnectError> {
    let key = plugin.manifest().key.clone();
    let unbound = plugin.bind(
        egress_id,
        config,
        SecretSet::new(host_secrets.clone()),
        None,
    )?;
    let report = unbound.exchange(grant).await;
    if report.result.is_err() {
        // No instance will hold this attempt: log it under the id given.
        record_egress(store, egress_id, &key, "exchange", &report.egress).await;
    }
    let creds = report.result.map_err(|source| ConnectError::Call {
        plugin: key.clone(),
        source,
    })?;
    let mut secrets: BTreeMap<String, String> = host_secrets.clone();
    secrets.extend(creds.secrets.into_iter().map(|s| (s.name, s.value)));
    Ok((
        Credentials {
            secrets,
            expires_at_ms: creds.expires_at,
            scopes: creds.scopes,
            principal: creds.principal,
        },
        report.egress,
    ))
}

/// Creates an instance: exchange, store credentials, test. Exchange runs
/// before the instance exists, so a rejected grant (or a provider that
/// cannot be reached for it) creates nothing. A test the provider
/// rate-limits or cannot answer leaves the instance `connecting`, and its
/// worker runs the test again by itself (see [`deferrable`]); a test that
/// fails leaves it `error` and halted.
pub async fn create(
    store: &Store,
    plugin: &Arc<Plugin>,
    new: NewConnection,
) -> Result<Connected, ConnectError> {
    let manifest = plugin.manifest();
    let config = manifest.validate_config(&new.config)?;
    let (creds, egress) = exchange(
        store,
        plugin,
        "connecting",
        &config,
        &new.grant,
        &new.host_secrets,
    )
    .await?;
    let instance = store
        .create_instance(&NewInstance {
            plugin_key: manifest.key.clone(),
            plugin_version: manifest.version.clone(),
            name: new.name,
            config,
            tags: new.tags,
        })
        .await?;
    record_egress(store, &instance.id, &manifest.key, "exchange", &egress).await;
    store.put_credentials(&instance.id, &creds).await?;
    let connected = test_now(store, plugin, &instance, true).await?;
    if connected.instance.status == InstanceStatus::Error {
        // A definite verdict (a failed check, a refused call): no worker
        // runs, not even after a restart, until the operator acts.
        store.set_halted(&instance.id, true).await?;
    }
    Ok(connected)
}

/// Replaces an instance's credentials (reconnect, rotation) and tests them.
/// Cursors, events and users are kept, so ingestion resumes where it was.
/// New credentials the provider rejects outright are not kept: the old ones
/// and the old status are put back and the rejection is returned.
pub async fn reconnect(
    store: &Store,
    plugin: &Arc<Plugin>,
    instance: &Instance,
    grant: &Grant,
    host_secrets: &BTreeMap<String, String>,
) -> Result<Connected, ConnectError> {
    let (creds, egress) = exchange(
        store,
        plugin,
        &instance.id,
        &instance.config,
        grant,
        host_secrets,
    )
    .await?;
    let key = plugin.manifest().key.clone();
    record_egress(store, &instance.id, &key, "exchange", &egress).await;
    let previous = store.credentials(&instance.id).await.ok().flatten();
    store.put_credentials(&instance.id, &creds).await?;
    let connected = test_now(store, plugin, instance, true).await?;
    if let Err(source @ CallError::Plugin(PluginError::Unauthorized(_))) = &connected.report {
        if let Some(old) = previous {
            store.put_credentials(&instance.id, &old).await?;
        }
        store
            .set_status(
                &instance.id,
                instance.status,
                instance.status_message.as_deref(),
            )
            .await?;
        return Err(ConnectError::Call {
            plugin: key,
            source: source.clone(),
        });
    }
    Ok(connected)
}

/// The status message for an instance whose credentials were rejected.
pub fn credentials_rejected_message(instance_id: &str, detail: &str) -> String {
    format!(
        "credentials rejected: reconnect the instance with new credentials \
         (PUT /instances/{instance_id}/credentials or `ward instances reconnect {instance_id}`); \
         provider said: {detail}"
    )
}

/// Runs `test` ("Test now"). A failed `test` call is returned in
/// [`Connected::report`], not as an error. When `update_status` is set, the instance's
/// status becomes `connected` if every check passed, `error` with the
/// failed checks' messages otherwise, or `error` with the call's failure.
pub async fn test_now(
    store: &Store,
    plugin: &Arc<Plugin>,
    instance: &Instance,
    update_status: bool,
) -> Result<Connected, ConnectError> {
    let key = plugin.manifest().key.clone();
    let bound = bind(store, plugin, instance).await?;
    let report: CallReport<TestReport> = bound.test().await;
    record_egress(store, &instance.id, &key, "test", &report.egress).await;
    if update_status {
        match &report.result {
            Ok(verdicts) => {
                apply_verdict(store, &instance.id, verdicts).await?;
                keep_principal(store, &instance.id, verdicts).await?;
            }
            Err(source) if deferrable(source) => defer_test(store, instance, source).await?,
            Err(source) => {
                let message = match source {
                    CallError::Plugin(PluginError::Unauthorized(m)) => {
                        credentials_rejected_message(&instance.id, m)
                    }
                    other => other.to_string(),
                };
                store
                    .set_status(&instance.id, InstanceStatus::Error, Some(&message))
                    .await?;
            }
        }
    }
    let instance = store
        .instance(&instance.id)
        .await?
        .unwrap_or_else(|| instance.clone());
    Ok(Connected {
        instance,
        bound,
        report: report.result,
    })
}

/// Records who authorised the connection from the test report when the
/// credentials do not say (the host stored them: no plugin `exchange`
/// reported a principal).
async fn keep_principal(
    store: &Store,
    instance_id: &str,
    report: &TestReport,
) -> Result<(), StoreError> {
    let Some(principal) = &report.principal else {
        return Ok(());
    };
    if let Some(mut creds) = store.credentials(instance_id).await?
        && creds.principal.is_none()
    {
        creds.principal = Some(principal.clone());
        store.put_credentials(instance_id, &creds).await?;
    }
    Ok(())
}

/// Sets the status a test's verdicts call for: `connected` when every
/// check passed, `error` with the failed checks' messages otherwise.
/// Returns the failed checks' messages (empty when connected).
pub async fn apply_verdict(
    store: &Store,
    instance_id: &str,
    report: &TestReport,
) -> Result<Option<String>, StoreError> {
    let failed: Vec<String> = report
        .checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| format!("{}: {}", c.name, c.message))
        .collect();
    if failed.is_empty() {
        store
            .set_status(instance_id, InstanceStatus::Connected, None)
            .await?;
        Ok(None)
    } else {
        let message = failed.join("; ");
        store
            .set_status(instance_id, InstanceStatus::Error, Some(&message))
            .await?;
        Ok(Some(message))
    }
}

/// Whether a failed `test` call says nothing about the instance, only
/// about the moment: the provider rate-limited it or could not be reached.
/// Such a test is deferred, never turned into an error.
pub fn deferrable(error: &CallError) -> bool {
    matches!(
        error,
        CallError::Plugin(PluginError::RateLimited(_) | PluginError::Unavailable(_))
            | CallError::Timeout { .. }
    )
}

/// How long the provider asked to wait before the deferred test runs
/// again (zero when it gave no time: the worker's backoff applies).
pub fn deferred_wait(error: &CallError) -> std::time::Duration {
    match error {
        CallError::Plugin(PluginError::RateLimited(r)) => {
            std::time::Duration::from_millis(r.retry_after_ms)
        }
        _ => std::time::Duration::ZERO,
    }
}

/// The status message of an instance whose connection test is deferred.
pub fn deferred_test_message(plugin: &str, error: &CallError, retry_at: Option<&str>) -> String {
    let when = retry_at.map_or_else(|| "shortly".to_string(), |t| format!("at {t}"));
    match error {
        CallError::Plugin(PluginError::RateLimited(_)) => format!(
            "{plugin}: the provider's rate limit is used up; waiting, the connection test runs again by itself {when} and ingestion starts when it passes (nothing to do)"
        ),
        other => format!(
            "{plugin}: provider unavailable while testing the connection ({other}); the test runs again by itself {when} and ingestion starts when it passes; if this persists, check the instance's configuration and the network path to the provider"
        ),
    }
}

/// A test that could not run for now (see [`deferrable`]): an instance
/// that has not passed a test yet stays `connecting` with a message saying
/// it retries by itself; any other instance keeps its status (a rate limit
/// is not an error).
async fn defer_test(
    store: &Store,
    instance: &Instance,
    error: &CallError,
) -> Result<(), StoreError> {
    let current = store.instance(&instance.id).await?;
    if current.is_some_and(|i| i.status == InstanceStatus::Connecting) {
        let until = match deferred_wait(error) {
            d if d.is_zero() => None,
            d => Some(crate::scheduler::rfc3339_in(d)),
        };
        let message = deferred_test_message(&instance.plugin_key, error, until.as_deref());
        store
            .set_status(&instance.id, InstanceStatus::Connecting, Some(&message))
            .await?;
    }
    Ok(())
}

/// Appends a call's egress to the log. A failure to log is reported but
/// does not fail the connection: the request already happened.
async fn record_egress(
    store: &Store,
    instance_id: &str,
    plugin: &str,
    call: &str,
    egress: &[EgressEntry],
) {
    let records = crate::ingest::egress_records(instance_id, plugin, call, egress);
    if let Err(e) = store.append_egress(&records).await {
        tracing::warn!(instance = instance_id, plugin, call, error = %e, "could not record egress");
    }
}
