//! Turning an OAuth authorization code into an instance (or new
//! credentials for one), whichever callback received the code.
//!
//! Three ways in, each with its own protections (the README's "OAuth
//! paths" table says the same for operators):
//! - **Ward's callback** (`state` given, Ward's `/oauth/callback` recorded
//!   the code with it): the code must be the one the provider returned with
//!   that state, the state is single-use and expires, and the code is
//!   exchanged for the element, client, redirect URI and configuration the
//!   consent URL was issued for.
//! - **A state Ward issued whose callback went to the client's URL**: the
//!   same binding to element, client, redirect URI and configuration, single
//!   use and expiry; that the code came back with this state is for the
//!   client to check (Ward never saw the redirect).
//! - **No state** (a client that owns its callback and keeps its own state,
//!   as SAP Open Connectors clients do): the code is exchanged with the
//!   client settings of the request (`oauth.api.key`, `oauth.api.secret`,
//!   `oauth.callback.url`). The caller is the authenticated operator; the
//!   provider checks that the code, client and redirect URI belong together.
//!
//! A claimed state is consumed once the exchange succeeded or the provider
//! gave a verdict on the code (rejected code, client or scope); when the
//! exchange reached no verdict (provider unreachable, 5xx, throttled, a
//! plugin failure) the state is released, so the operator can try again with
//! the same code.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use subtle::ConstantTimeEq;
use ward_runtime::types::{Grant, OauthCode, PluginError};
use ward_runtime::{CallError, Plugin, SecretSet};
use ward_store::{Instance, OauthState, Store, StoreError};

use crate::Daemon;
use crate::connect::{self, ConnectError, Connected, NewConnection};
use crate::instances::now_ms;
use crate::registry::LoadedPlugin;

/// Where Ward's `/oauth/callback` sends the browser on, for consents a
/// front end of this daemon (the console) began and finishes behind its
/// own session: by state, with the path to continue at. In memory, as the
/// console's sessions are; an entry is taken once, or pruned when its
/// state has expired.
#[derive(Default)]
pub struct BrowserReturns {
    inner: Mutex<HashMap<String, (String, i64)>>,
}

impl std::fmt::Debug for BrowserReturns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserReturns").finish_non_exhaustive()
    }
}

impl BrowserReturns {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, (String, i64)>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The provider's redirect for `state` continues at `path` (a path on
    /// this daemon, e.g. `/console/oauth/returned`), until `expires_ms`.
    pub fn expect(&self, state: &str, path: &str, expires_ms: i64) {
        let now = now_ms();
        let mut map = self.lock();
        map.retain(|_, (_, expires)| *expires > now);
        map.insert(sha256_hex(state), (path.to_owned(), expires_ms));
    }

    /// Where the browser that came back with `state` continues, once.
    pub fn take(&self, state: &str) -> Option<String> {
        self.lock()
            .remove(&sha256_hex(state))
            .filter(|(_, expires)| *expires > now_ms())
            .map(|(path, _)| path)
    }
}

/// Where an operator starts a consent over.
pub const RESTART: &str = "start again at GET /elements/{keyOrId}/oauth/url";

/// The path of Ward's own callback route.
pub const CALLBACK_PATH: &str = "/oauth/callback";

/// The OAuth client settings a request carries (SAP Open Connectors'
/// `oauth.api.key`, `oauth.api.secret`, `oauth.callback.url`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ClientSettings {
    /// The OAuth client id.
    pub client_id: Option<String>,
    /// The OAuth client secret.
    pub client_secret: Option<String>,
    /// The redirect URI the code was issued for.
    pub callback_url: Option<String>,
}

impl std::fmt::Debug for ClientSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSettings")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[REDACTED]"),
            )
            .field("callback_url", &self.callback_url)
            .finish()
    }
}

/// An authorization code, with the state Ward issued for it if the caller
/// has one, and the client settings of the request.
#[derive(Clone)]
pub struct CodeGrant {
    /// The `code` the provider redirected with.
    pub code: String,
    /// The `state` Ward issued with the consent URL, if any.
    pub state: Option<String>,
    /// Client settings given with the request.
    pub client: ClientSettings,
}

impl std::fmt::Debug for CodeGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeGrant")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

/// Why a code could not be turned into credentials.
#[derive(Debug, thiserror::Error)]
pub enum ConsentError {
    /// The state is unknown, expired, declined or already used.
    #[error("unknown, expired or already used OAuth state; {RESTART}")]
    UnknownState,
    /// The state was issued for Ward's callback, which has not seen a code.
    #[error(
        "no code came back through Ward's callback with this OAuth state yet: let the provider \
         redirect the browser to {callback_url} and post the code and state it shows, or {RESTART}"
    )]
    CodeNotReturned {
        /// The callback the state was issued for.
        callback_url: String,
    },
    /// Ward's callback saw another code with this state.
    #[error(
        "the code does not match the one the provider returned with this state; the state is \
         now used up; {RESTART}"
    )]
    CodeMismatch,
    /// The state belongs to another element.
    #[error("this OAuth state was issued for element {issued:?}, not {requested:?}; {RESTART}")]
    OtherElement {
        /// The element the state was issued for.
        issued: String,
        /// The element of the request.
        requested: String,
    },
    /// The request contradicts what the consent was given for.
    #[error("{what} differs from the one the OAuth URL was issued for; {RESTART} with it")]
    Mismatch {
        /// The field or setting that differs.
        what: String,
    },
    /// A code without a state needs the client settings to exchange it.
    #[error(
        "{missing} is required to exchange a code without a state (a callback the client owns): \
         give the OAuth client in `configuration` (oauth.api.key, oauth.api.secret, \
         oauth.callback.url), or post the `state` Ward issued with the code"
    )]
    MissingClient {
        /// The missing setting.
        missing: &'static str,
    },
    /// The redirect URI is not an http(s) URL.
    #[error("oauth.callback.url {0:?} is not an http(s) URL")]
    BadCallback(String),
    /// No OAuth client id was given for a consent URL.
    #[error("apiKey (or oauth.api.key: the OAuth client id) is required")]
    MissingClientId,
    /// No redirect URI was given and none can be derived.
    #[error(
        "callbackUrl (or oauth.callback.url) is required when [api] public_url is not configured"
    )]
    NoCallbackUrl,
    /// The callback carried no state.
    #[error("missing OAuth state; {RESTART}")]
    MissingState,
    /// The callback carried neither a code nor an error.
    #[error("the callback has neither `code` nor `error`; the provider's redirect is malformed")]
    MalformedCallback,
    /// The user declined at the provider: nothing was created.
    #[error(
        "the user declined access at {provider} ({error}{description}): nothing was created; \
         start again at GET /elements/{element}/oauth/url"
    )]
    Declined {
        /// The provider's display name.
        provider: String,
        /// The element key.
        element: String,
        /// The provider's `error`.
        error: String,
        /// `: ` and the provider's `error_description`, or empty.
        description: String,
    },
    /// Exchange, store or test failed.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A consent started by [`begin`].
#[derive(Debug, Clone)]
pub struct Begun {
    /// The element key.
    pub element: String,
    /// Where to send the user's browser.
    pub oauth_url: String,
    /// The single-use state (also in `oauth_url`).
    pub state: String,
}

/// A code the provider returned through Ward's callback, by [`complete`].
#[derive(Debug, Clone)]
pub struct Returned {
    /// The element key.
    pub element: String,
    /// The authorization code.
    pub code: String,
    /// The state it came back with.
    pub state: String,
}

/// What arrived at Ward's callback (the query of the provider's redirect).
#[derive(Debug, Clone, Default)]
pub struct Callback {
    /// `state`.
    pub state: Option<String>,
    /// `code`, when the user consented.
    pub code: Option<String>,
    /// `error`, when the user declined.
    pub error: Option<String>,
    /// `error_description`.
    pub error_description: Option<String>,
}

/// A code ready for `exchange`, and the state claimed for it.
struct Resolved {
    grant: Grant,
    host_secrets: BTreeMap<String, String>,
    /// The configuration the consent was given for, when a state says so.
    bound_config: Option<BTreeMap<String, String>>,
    /// SHA-256 of the claimed state.
    claimed: Option<String>,
}

/// Whether `url` is Ward's own callback route: its path ends in
/// `/oauth/callback` (also behind a path prefix of `api.public_url`). A
/// client-owned callback therefore uses another path.
pub fn is_ward_callback(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| u.path().ends_with(CALLBACK_PATH))
}

/// Whether `url` may be a redirect URI: http or https.
pub fn check_callback_url(url: &str) -> Result<(), ConsentError> {
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "https" | "http") => Ok(()),
        _ => Err(ConsentError::BadCallback(url.to_owned())),
    }
}

/// SHA-256 of `value`, lowercase hex: how states, codes and tokens are
/// kept and compared.
pub fn sha256_hex(value: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(value.as_bytes()))
}

/// 32 random bytes, base64url without padding: states and tokens.
pub fn random_token() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn mismatch(what: impl Into<String>) -> ConsentError {
    ConsentError::Mismatch { what: what.into() }
}

/// The state's client settings must not be contradicted by the request's.
fn same_client(st: &OauthState, client: &ClientSettings) -> Result<(), ConsentError> {
    if client
        .client_id
        .as_ref()
        .is_some_and(|c| c != &st.client_id)
    {
        return Err(mismatch("oauth.api.key (the OAuth client id)"));
    }
    if client
        .callback_url
        .as_ref()
        .is_some_and(|c| c != &st.callback_url)
    {
        return Err(mismatch("oauth.callback.url"));
    }
    if let (Some(given), Some(kept)) = (&client.client_secret, &st.client_secret)
        && given != kept
    {
        return Err(mismatch("oauth.api.secret"));
    }
    Ok(())
}

/// Claims and checks the state, or takes the request's client settings.
async fn resolve(
    store: &Store,
    element_key: &str,
    code: CodeGrant,
) -> Result<Resolved, ConsentError> {
    let CodeGrant {
        code,
        state,
        client,
    } = code;
    let Some(state) = state else {
        let client_id = client.client_id.ok_or(ConsentError::MissingClient {
            missing: "oauth.api.key (the OAuth client id)",
        })?;
        let callback_url = client.callback_url.ok_or(ConsentError::MissingClient {
            missing: "oauth.callback.url (the redirect URI the code was sent to)",
        })?;
        check_callback_url(&callback_url)?;
        let mut host_secrets = BTreeMap::new();
        if let Some(secret) = client.client_secret {
            host_secrets.insert("client_secret".to_owned(), secret);
        }
        return Ok(Resolved {
            grant: Grant::OauthCode(OauthCode {
                code,
                redirect_uri: callback_url,
                code_verifier: None,
            }),
            host_secrets,
            bound_config: Some(BTreeMap::from([("client_id".to_owned(), client_id)])),
            claimed: None,
        });
    };
    let hash = sha256_hex(&state);
    let Some(st) = store.claim_oauth_state(&hash).await? else {
        return Err(ConsentError::UnknownState);
    };
    if st.element_key != element_key {
        return Err(ConsentError::OtherElement {
            issued: st.element_key,
            requested: element_key.to_owned(),
        });
    }
    match &st.code_sha256 {
        Some(seen) if !bool::from(seen.as_bytes().ct_eq(sha256_hex(&code).as_bytes())) => {
            return Err(ConsentError::CodeMismatch);
        }
        Some(_) => {}
        None if is_ward_callback(&st.callback_url) => {
            // Too early, not a verdict: the callback may still arrive.
            store.release_oauth_state(&hash).await?;
            return Err(ConsentError::CodeNotReturned {
                callback_url: st.callback_url,
            });
        }
        None => {}
    }
    same_client(&st, &client)?;
    let mut host_secrets = BTreeMap::new();
    if let Some(secret) = st.client_secret.or(client.client_secret) {
        host_secrets.insert("client_secret".to_owned(), secret);
    }
    Ok(Resolved {
        grant: Grant::OauthCode(OauthCode {
            code,
            redirect_uri: st.callback_url,
            code_verifier: None,
        }),
        host_secrets,
        bound_config: Some(st.config),
        claimed: Some(hash),
    })
}

/// Whether a failed connection reached a verdict on the code: the
/// exchange succeeded (and something later failed), or the provider
/// rejected the code, the client or the scopes. Anything else (provider
/// unreachable, 5xx, throttling, a plugin failure, a configuration refused
/// before the exchange) leaves the code unjudged.
fn reached_verdict(e: &ConnectError) -> bool {
    match e {
        ConnectError::Config(_) => false,
        ConnectError::Call { source, .. } => matches!(
            source,
            CallError::Plugin(
                PluginError::Unauthorized(_)
                    | PluginError::Forbidden(_)
                    | PluginError::InvalidConfig(_)
            )
        ),
        ConnectError::Store(_) | ConnectError::NoCredentials(_) => true,
    }
}

/// Consumes the claimed state on success or a verdict, releases it otherwise.
async fn settle<T>(
    store: &Store,
    claimed: Option<&str>,
    result: Result<T, ConnectError>,
) -> Result<T, ConsentError> {
    if let (Some(hash), Err(e)) = (claimed, &result)
        && !reached_verdict(e)
    {
        store.release_oauth_state(hash).await?;
        tracing::info!(error = %e, "OAuth exchange reached no verdict; the state stays usable");
    }
    Ok(result?)
}

/// The request's configuration must not contradict the one the consent
/// was given for; the bound values win.
fn merge_config(
    bound: BTreeMap<String, String>,
    given: BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, ConsentError> {
    for (k, v) in &given {
        if bound.get(k).is_some_and(|b| b != v) {
            return Err(mismatch(format!("configuration field {k:?}")));
        }
    }
    let mut config = given;
    config.extend(bound);
    Ok(config)
}

/// Creates an instance from an authorization code: checks or claims the
/// state, exchanges the code, stores the credentials, tests. `config` may
/// use the manifest's aliases.
pub async fn create(
    store: &Store,
    plugin: &Arc<Plugin>,
    code: CodeGrant,
    name: String,
    config: BTreeMap<String, String>,
    tags: Vec<String>,
) -> Result<Connected, ConsentError> {
    let manifest = plugin.manifest();
    let given = manifest
        .normalize_config(&config)
        .map_err(ConnectError::from)?;
    let resolved = resolve(store, &manifest.key, code).await?;
    let mut bound = resolved.bound_config.unwrap_or_default();
    if !manifest.config.iter().any(|f| f.name == "client_id") {
        bound.remove("client_id");
    }
    let config = merge_config(bound, given)?;
    let result = connect::create(
        store,
        plugin,
        NewConnection {
            name,
            config,
            tags,
            grant: resolved.grant,
            host_secrets: resolved.host_secrets,
        },
    )
    .await;
    settle(store, resolved.claimed.as_deref(), result).await
}

/// Replaces an instance's credentials from an authorization code (cursors
/// kept). The consent must have been given for the instance's
/// configuration and OAuth client.
pub async fn reconnect(
    store: &Store,
    plugin: &Arc<Plugin>,
    instance: &Instance,
    code: CodeGrant,
) -> Result<Connected, ConsentError> {
    let key = plugin.manifest().key.clone();
    let resolved = resolve(store, &key, code).await?;
    let bound = resolved.bound_config.clone().unwrap_or_default();
    let differs = if resolved.claimed.is_some() {
        // A state carries the whole configuration: it must be the instance's.
        bound != instance.config
    } else {
        bound
            .iter()
            .any(|(k, v)| instance.config.get(k).is_some_and(|c| c != v))
    };
    if differs {
        return Err(mismatch(format!(
            "the configuration or OAuth client of instance {}",
            instance.id
        )));
    }
    let result = connect::reconnect(
        store,
        plugin,
        instance,
        &resolved.grant,
        &resolved.host_secrets,
    )
    .await;
    settle(store, resolved.claimed.as_deref(), result).await
}

/// Starts a consent: validates the configuration (manifest names or
/// aliases) for the OAuth client, asks the plugin for the provider's
/// consent URL and keeps a single-use `state` bound to the element, client,
/// redirect URI and configuration. Without a `callback_url` the consent
/// returns to Ward's callback under `[api] public_url`.
pub async fn begin(
    daemon: &Daemon,
    loaded: &LoadedPlugin,
    params: &BTreeMap<String, String>,
    client: ClientSettings,
) -> Result<Begun, ConsentError> {
    let manifest = loaded.plugin.manifest();
    let client_id = client.client_id.ok_or(ConsentError::MissingClientId)?;
    let client_secret = client.client_secret;
    let callback_url = match client.callback_url {
        Some(u) => u,
        None => match &daemon.config.api.public_url {
            Some(base) => format!("{}{CALLBACK_PATH}", base.trim_end_matches('/')),
            None => return Err(ConsentError::NoCallbackUrl),
        },
    };
    check_callback_url(&callback_url)?;
    let mut config = manifest
        .resolve_aliases(params)
        .map_err(ConnectError::from)?;
    if manifest.config.iter().any(|f| f.name == "client_id") {
        config.insert("client_id".to_owned(), client_id.clone());
    }
    let config = manifest
        .validate_config(&config)
        .map_err(ConnectError::from)?;
    let mut host = BTreeMap::new();
    if let Some(s) = &client_secret {
        host.insert("client_secret".to_owned(), s.clone());
    }
    let bound = loaded
        .plugin
        .bind("oauth", &config, SecretSet::new(host), None)
        .map_err(ConnectError::from)?;
    let state = random_token();
    let report = bound.auth_url(&callback_url, &state).await;
    let oauth_url = report.result.map_err(|source| ConnectError::Call {
        plugin: manifest.key.clone(),
        source,
    })?;
    let ttl_ms = i64::try_from(daemon.config.api.oauth_state_ttl_secs)
        .unwrap_or(i64::MAX / 2_000)
        .saturating_mul(1000);
    daemon
        .store
        .create_oauth_state(&OauthState {
            state_sha256: sha256_hex(&state),
            element_key: manifest.key.clone(),
            config,
            client_id,
            client_secret,
            callback_url,
            expires_ms: crate::instances::now_ms().saturating_add(ttl_ms),
            code_sha256: None,
        })
        .await?;
    Ok(Begun {
        element: manifest.key.clone(),
        oauth_url,
        state,
    })
}

/// Ward's callback: the `state` is the credential (missing, unknown,
/// expired or used: refused). A declined consent uses the state up and
/// says that nothing was created; a code is kept with its state until the
/// operator exchanges it ([`create`], [`reconnect`]).
pub async fn complete(daemon: &Daemon, callback: Callback) -> Result<Returned, ConsentError> {
    let Some(state) = callback.state.filter(|s| !s.is_empty()) else {
        return Err(ConsentError::MissingState);
    };
    let hash = sha256_hex(&state);
    let store = &daemon.store;
    if let Some(error) = callback.error {
        let Some(element) = store.oauth_state_declined(&hash).await? else {
            return Err(ConsentError::UnknownState);
        };
        let provider = daemon
            .registry
            .get(&element)
            .map(|p| p.plugin.manifest().name.clone())
            .unwrap_or_else(|| element.clone());
        return Err(ConsentError::Declined {
            provider,
            element,
            error,
            description: callback
                .error_description
                .map(|d| format!(": {d}"))
                .unwrap_or_default(),
        });
    }
    let Some(code) = callback.code.filter(|c| !c.is_empty()) else {
        return Err(ConsentError::MalformedCallback);
    };
    let Some(element) = store
        .oauth_state_returned(&hash, &sha256_hex(&code), &code)
        .await?
    else {
        return Err(ConsentError::UnknownState);
    };
    Ok(Returned {
        element,
        code,
        state,
    })
}
