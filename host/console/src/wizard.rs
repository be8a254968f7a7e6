//! Connecting and reconnecting from the console: the Connect wizard
//! (choose a provider, then an API token or **Connect with OAuth**), the
//! console's OAuth return, and Reconnect/rotate on an instance. Every step
//! calls the daemon's service layer ([`instances`], [`consent`]) exactly as
//! the REST API does.
//!
//! OAuth goes out as a real redirect to the provider's consent page with
//! Ward's own redirect URI, `<console>/oauth/callback`: the same route and
//! the same single-use state check ([`consent::complete`]) as for any API
//! client. For a consent the console began, that route sends the browser
//! on to `/console/oauth/returned` (the daemon's
//! [`ward_daemon::consent::BrowserReturns`]). The provider's redirect is
//! cross-site, so the browser does not send the `SameSite=Strict` session
//! cookie with it; that page therefore continues, same-site, to
//! `/console/connect/finish`, which runs behind the session and creates
//! (or reconnects) the instance for the session that began the consent.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;
use ward_daemon::Daemon;
use ward_daemon::consent::{self, ClientSettings, CodeGrant, sha256_hex};
use ward_daemon::instances::{self, Credentials, NewInstance, Update, now_ms};
use ward_daemon::registry::LoadedPlugin;
use ward_manifest::{Auth, Manifest};
use ward_runtime::types::Grant;

use crate::Console;
use crate::render::{self, TestOutcome};
use crate::routes::ConsoleError;
use crate::session::{self, Session};

/// Where Ward's `/oauth/callback` sends a console consent's browser on.
pub(crate) const RETURNED: &str = "/console/oauth/returned";
/// Where that page continues, behind the session.
pub(crate) const FINISH: &str = "/console/connect/finish";
/// Prefix of configuration fields in the wizard's form.
pub(crate) const CONFIG_PREFIX: &str = "config.";

/// What a consent begun in the console is for.
#[derive(Debug, Clone)]
enum Purpose {
    /// A new instance of this element with this name.
    Create { key: String, name: Option<String> },
    /// New credentials for this instance.
    Reconnect { id: String },
}

#[derive(Debug)]
struct Pending {
    purpose: Purpose,
    /// The CSRF token of the session that began it: only that session
    /// finishes it.
    session_csrf: String,
    expires_ms: i64,
}

/// Consents begun in the console, by SHA-256 of their state (in memory: a
/// restart forgets them, and the operator starts again).
#[derive(Debug, Default)]
pub struct Consents {
    inner: Mutex<HashMap<String, Pending>>,
}

impl Consents {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Pending>> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn begin(&self, state: &str, purpose: Purpose, session: &Session, ttl_ms: i64) {
        let now = now_ms();
        let mut map = self.lock();
        map.retain(|_, p| p.expires_ms > now);
        map.insert(
            sha256_hex(state),
            Pending {
                purpose,
                session_csrf: session.csrf.clone(),
                expires_ms: now.saturating_add(ttl_ms),
            },
        );
    }

    /// Forgets the consent of `state`; whether it was pending.
    fn forget(&self, state: &str) -> bool {
        self.lock().remove(&sha256_hex(state)).is_some()
    }

    /// Takes the pending consent of `state` if `session` began it.
    fn take(&self, state: &str, session: &Session) -> Option<Purpose> {
        let mut map = self.lock();
        let key = sha256_hex(state);
        let mine = map.get(&key).is_some_and(|p| {
            p.expires_ms > now_ms() && session::same(&p.session_csrf, &session.csrf)
        });
        if !mine {
            return None;
        }
        map.remove(&key).map(|p| p.purpose)
    }
}

/// How the operator hands Ward credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Method {
    /// An API token (stored by the host; for Zendesk composed with the
    /// admin's e-mail).
    Token,
    /// The OAuth code flow through the provider's consent page.
    Oauth,
}

impl Method {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Method::Token => "token",
            Method::Oauth => "oauth",
        }
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Method::Token => "API token",
            Method::Oauth => "Connect with OAuth",
        }
    }
}

/// One configuration input of the wizard.
#[derive(Debug)]
pub(crate) struct Input {
    /// The manifest field.
    pub field: ward_manifest::ConfigField,
    /// What the input shows.
    pub value: String,
}

/// The wizard's form: for a new instance (every configuration field) or to
/// reconnect one (the configuration is fixed, only credentials change).
#[derive(Debug)]
pub(crate) struct ConnectForm {
    pub key: String,
    pub provider: String,
    pub method: Method,
    pub methods: Vec<Method>,
    /// `Some` when reconnecting: the instance's id and name.
    pub instance: Option<(String, String)>,
    pub name: String,
    pub inputs: Vec<Input>,
    /// The OAuth client id shown (never the secret, never a token).
    pub client_id: String,
}

impl ConnectForm {
    /// The form for a new instance, filled from what was posted.
    pub(crate) fn new(m: &Manifest, method: Method, posted: Option<&Fields>) -> ConnectForm {
        let posted_value = |name: &str| posted.and_then(|f| field(f, name)).map(str::to_owned);
        let inputs = m
            .config
            .iter()
            .filter(|f| f.name != "client_id")
            .map(|f| Input {
                value: posted_value(&format!("{CONFIG_PREFIX}{}", f.name))
                    .or_else(|| f.default.clone())
                    .unwrap_or_default(),
                field: f.clone(),
            })
            .collect();
        ConnectForm {
            key: m.key.clone(),
            provider: m.name.clone(),
            method,
            methods: methods(m),
            instance: None,
            name: posted_value("name").unwrap_or_default(),
            inputs,
            client_id: posted_value("client_id").unwrap_or_default(),
        }
    }

    /// The form to reconnect `instance`.
    pub(crate) fn reconnect(
        m: &Manifest,
        method: Method,
        instance: &ward_store::Instance,
        posted: Option<&Fields>,
    ) -> ConnectForm {
        let mut f = ConnectForm::new(m, method, posted);
        f.instance = Some((instance.id.clone(), instance.name.clone()));
        f.name = instance.name.clone();
        if f.client_id.is_empty() {
            f.client_id = instance
                .config
                .get("client_id")
                .cloned()
                .unwrap_or_default();
        }
        f.inputs = Vec::new();
        f
    }

    /// Where the form posts.
    pub(crate) fn action(&self) -> String {
        match &self.instance {
            Some((id, _)) => format!(
                "/console/instances/{id}/reconnect?method={}",
                self.method.as_str()
            ),
            None => format!(
                "/console/connect/{}?method={}",
                self.key,
                self.method.as_str()
            ),
        }
    }
}

/// The ways in this console offers for a plugin's manifest.
pub(crate) fn methods(m: &Manifest) -> Vec<Method> {
    let mut out = Vec::new();
    let token = m.auth.iter().any(|a| {
        matches!(a, Auth::ApiToken { .. })
            || matches!(
                a,
                Auth::Basic {
                    username: Some(_),
                    ..
                }
            )
    });
    if token {
        out.push(Method::Token);
    }
    if m.auth.iter().any(|a| matches!(a, Auth::Oauth2 { .. })) {
        out.push(Method::Oauth);
    }
    out
}

fn loaded(console: &Console, key: &str) -> Result<LoadedPlugin, ConsoleError> {
    Ok(instances::element(&console.daemon, key)?)
}

/// Where the console is reached: `[api] public_url`, else the request's
/// `Host` (the daemon serves plain HTTP; TLS in front sets `public_url`).
fn console_base(daemon: &Daemon, headers: &HeaderMap) -> Result<String, ConsoleError> {
    if let Some(u) = &daemon.config.api.public_url {
        return Ok(u.trim_end_matches('/').to_owned());
    }
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty())
        .map(|h| format!("http://{h}"))
        .ok_or_else(|| {
            ConsoleError::BadRequest(
                "the request has no Host header to build the OAuth redirect URI from: set \
                 [api] public_url in ward.toml"
                    .to_owned(),
            )
        })
}

fn state_ttl_ms(daemon: &Daemon) -> i64 {
    i64::try_from(daemon.config.api.oauth_state_ttl_secs)
        .unwrap_or(i64::MAX / 2_000)
        .saturating_mul(1000)
}

/// The wizard's first step: every installed provider and its ways in.
pub(crate) async fn choose(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
) -> Response {
    let list = console.daemon.registry.list();
    render::choose_provider(&session, &list).into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct MethodQuery {
    #[serde(default)]
    method: Option<Method>,
}

fn chosen(m: &Manifest, q: Option<Method>) -> Result<Method, ConsoleError> {
    let offered = methods(m);
    match (q, offered.as_slice()) {
        (Some(method), _) if offered.contains(&method) => Ok(method),
        (None, [only]) => Ok(*only),
        _ => Err(ConsoleError::BadRequest(format!(
            "choose how to connect {}: {}",
            m.name,
            offered
                .iter()
                .map(|o| o.label())
                .collect::<Vec<_>>()
                .join(" or ")
        ))),
    }
}

/// The wizard's form for one provider and way in.
pub(crate) async fn form(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
    Path(key): Path<String>,
    Query(q): Query<MethodQuery>,
) -> Result<Response, ConsoleError> {
    let p = loaded(&console, &key)?;
    let m = p.plugin.manifest();
    let method = chosen(m, q.method)?;
    let f = ConnectForm::new(m, method, None);
    Ok(render::connect(&session, &f, None).into_response())
}

/// The fields the wizard posts, in order (configuration fields carry
/// [`CONFIG_PREFIX`]).
type Fields = Vec<(String, String)>;

fn field<'a>(fields: &'a Fields, name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

fn config_of(fields: &Fields) -> BTreeMap<String, String> {
    fields
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(CONFIG_PREFIX)?, v.trim())))
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn required<'a>(fields: &'a Fields, name: &str, what: &str) -> Result<&'a str, String> {
    field(fields, name).ok_or_else(|| format!("{what} is required"))
}

/// A new instance: its checks and its `Element` token.
async fn created_page(
    daemon: &Daemon,
    session: &Session,
    created: instances::Created,
) -> Result<Response, ConsoleError> {
    let report = TestOutcome::of(&created.connected);
    let o = instances::overview(daemon, created.connected.instance).await?;
    Ok(render::connected(session, &o, &report, &created.token).into_response())
}

/// A reconnected instance with its checks.
async fn reconnected_page(
    daemon: &Daemon,
    session: &Session,
    connected: ward_daemon::connect::Connected,
) -> Result<Response, ConsoleError> {
    let report = TestOutcome::of(&connected);
    let o = instances::overview(daemon, connected.instance).await?;
    let notice = "New credentials stored; cursors and events kept.";
    Ok(render::instance(session, &o, Some(&report), Some(notice)).into_response())
}

/// Begins an OAuth consent for `purpose` (the client from the form, the
/// console's callback) and sends the browser to the provider; the refusal
/// to show in the form otherwise.
async fn begin_consent(
    console: &Console,
    session: &Session,
    headers: &HeaderMap,
    fields: &Fields,
    plugin: &LoadedPlugin,
    config: &BTreeMap<String, String>,
    purpose: Purpose,
) -> Result<Response, String> {
    let daemon = &console.daemon;
    let client = oauth_client(fields, daemon, headers)?;
    let begun = consent::begin(daemon, plugin, config, client)
        .await
        .map_err(|e| e.to_string())?;
    let ttl_ms = state_ttl_ms(daemon);
    console
        .consents
        .begin(&begun.state, purpose, session, ttl_ms);
    daemon
        .browser_returns
        .expect(&begun.state, RETURNED, now_ms().saturating_add(ttl_ms));
    Ok(Redirect::to(&begun.oauth_url).into_response())
}

/// The form again, with what to fix (status 422).
fn refused_form(session: &Session, f: &ConnectForm, problem: &str) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        render::connect(session, f, Some(problem)),
    )
        .into_response()
}

/// Creates the instance with an API token, or begins the OAuth consent.
/// A refusal re-renders the form with what to fix (nothing is created).
pub(crate) async fn submit(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
    Path(key): Path<String>,
    Query(q): Query<MethodQuery>,
    Form(fields): Form<Fields>,
) -> Result<Response, ConsoleError> {
    let p = loaded(&console, &key)?;
    let m = p.plugin.manifest();
    let method = chosen(m, q.method)?;
    let daemon = &console.daemon;
    let name = field(&fields, "name").map(str::to_owned);
    let config = config_of(&fields);
    let outcome = match method {
        Method::Token => match required(&fields, "api_token", "the API token") {
            Ok(token) => {
                let new = NewInstance {
                    element: key.clone(),
                    name,
                    config,
                    tags: Vec::new(),
                    credentials: Credentials::Direct(Grant::ApiToken(token.to_owned())),
                };
                match instances::create(daemon, new).await {
                    Ok(created) => return created_page(daemon, &session, created).await,
                    Err(e) => Err(e.to_string()),
                }
            }
            Err(e) => Err(e),
        },
        Method::Oauth => {
            let purpose = Purpose::Create { key, name };
            begin_consent(&console, &session, &headers, &fields, &p, &config, purpose).await
        }
    };
    Ok(outcome.unwrap_or_else(|problem| {
        refused_form(
            &session,
            &ConnectForm::new(m, method, Some(&fields)),
            &problem,
        )
    }))
}

fn oauth_client(
    fields: &Fields,
    daemon: &Daemon,
    headers: &HeaderMap,
) -> Result<ClientSettings, String> {
    let client_id = required(fields, "client_id", "the OAuth client id")?;
    let client_secret = required(fields, "client_secret", "the OAuth client secret")?;
    let base = console_base(daemon, headers).map_err(|e| e.to_string())?;
    Ok(ClientSettings {
        client_id: Some(client_id.to_owned()),
        client_secret: Some(client_secret.to_owned()),
        callback_url: Some(format!("{base}{}", consent::CALLBACK_PATH)),
    })
}

#[derive(Debug, Deserialize)]
pub(crate) struct ReturnedQuery {
    #[serde(default)]
    state: Option<String>,
    /// Why Ward's callback refused the redirect (declined, unknown state…).
    #[serde(default)]
    error: Option<String>,
}

/// Where Ward's `/oauth/callback` sends a console consent's browser (no
/// session cookie comes with the provider's redirect): the page continues
/// same-site to [`FINISH`]. A refused consent says why, for a consent
/// this console is waiting for only (the text came through a URL), and
/// that nothing was created.
pub(crate) async fn returned(
    State(console): State<Console>,
    Query(q): Query<ReturnedQuery>,
) -> Response {
    let state = q.state.unwrap_or_default();
    let Some(error) = q.error else {
        let next = format!(
            "{FINISH}?{}",
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("state", &state)
                .finish()
        );
        return render::consent_returned(&next).into_response();
    };
    let message = if console.consents.forget(&state) {
        error
    } else {
        "This consent is not one this console is waiting for (already finished, expired, or the \
         daemon restarted)."
            .to_owned()
    };
    (StatusCode::BAD_REQUEST, render::consent_failed(&message)).into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct FinishQuery {
    state: String,
}

/// Exchanges the code the callback recorded and creates (or reconnects)
/// the instance; shows the Test now checks.
pub(crate) async fn finish(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
    Query(q): Query<FinishQuery>,
) -> Result<Response, ConsoleError> {
    let Some(purpose) = console.consents.take(&q.state, &session) else {
        return Err(ConsoleError::BadRequest(
            "this consent is not one this console session is waiting for (already finished, \
             begun in another session, expired, or the daemon restarted): start again from \
             Connect"
                .to_owned(),
        ));
    };
    let daemon = &console.daemon;
    // The code Ward's `/oauth/callback` recorded with the state.
    let code = daemon
        .store
        .oauth_outcome(&sha256_hex(&q.state))
        .await?
        .and_then(|o| o.code)
        .ok_or_else(|| {
            ConsoleError::BadRequest(
                "the provider's code for this consent has not reached Ward's /oauth/callback \
                 (or has expired): start again from Connect"
                    .to_owned(),
            )
        })?;
    let grant = Credentials::Code(CodeGrant {
        code,
        state: Some(q.state),
        client: ClientSettings::default(),
    });
    match purpose {
        Purpose::Create { key, name } => {
            let new = NewInstance {
                element: key,
                name,
                config: BTreeMap::new(),
                tags: Vec::new(),
                credentials: grant,
            };
            let created = instances::create(daemon, new).await?;
            created_page(daemon, &session, created).await
        }
        Purpose::Reconnect { id } => {
            let connected = instances::reconnect(daemon, &id, grant).await?;
            reconnected_page(daemon, &session, connected).await
        }
    }
}

/// Reconnect/rotate: the form for new credentials.
pub(crate) async fn reconnect_form(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    Query(q): Query<MethodQuery>,
) -> Result<Response, ConsoleError> {
    let instance = instances::get(&console.daemon, &id).await?;
    let p = loaded(&console, &instance.plugin_key)?;
    let m = p.plugin.manifest();
    let method = chosen(m, q.method)?;
    let f = ConnectForm::reconnect(m, method, &instance, None);
    Ok(render::connect(&session, &f, None).into_response())
}

/// Reconnect/rotate with a new API token (cursors and events kept), or a
/// new OAuth consent for the instance's configuration.
pub(crate) async fn reconnect(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<MethodQuery>,
    Form(fields): Form<Fields>,
) -> Result<Response, ConsoleError> {
    let daemon = &console.daemon;
    let instance = instances::get(daemon, &id).await?;
    let p = loaded(&console, &instance.plugin_key)?;
    let m = p.plugin.manifest();
    let method = chosen(m, q.method)?;
    let outcome = match method {
        Method::Token => match required(&fields, "api_token", "the new API token") {
            Ok(token) => {
                let grant = Credentials::Direct(Grant::ApiToken(token.to_owned()));
                match instances::reconnect(daemon, &id, grant).await {
                    Ok(c) => return reconnected_page(daemon, &session, c).await,
                    Err(e) => Err(e.to_string()),
                }
            }
            Err(e) => Err(e),
        },
        Method::Oauth => {
            let mut config = instance.config.clone();
            config.remove("client_id");
            let purpose = Purpose::Reconnect { id: id.clone() };
            begin_consent(&console, &session, &headers, &fields, &p, &config, purpose).await
        }
    };
    Ok(outcome.unwrap_or_else(|problem| {
        let f = ConnectForm::reconnect(m, method, &instance, Some(&fields));
        refused_form(&session, &f, &problem)
    }))
}

#[derive(Debug, Deserialize)]
pub(crate) struct RateForm {
    requests_per_minute: String,
}

/// Rate settings: the same daemon call as `PATCH /instances/{id}
/// {requestsPerMinute}` (0 restores the plugin's rate).
pub(crate) async fn rate(
    State(console): State<Console>,
    Path(id): Path<String>,
    Form(form): Form<RateForm>,
) -> Result<Redirect, ConsoleError> {
    let rpm: u32 = form.requests_per_minute.trim().parse().map_err(|_| {
        ConsoleError::BadRequest(format!(
            "requests per minute {:?} is not a whole number from 0 (the plugin's default) \
             up: go back and enter one",
            form.requests_per_minute
        ))
    })?;
    instances::update(
        &console.daemon,
        &id,
        Update {
            requests_per_minute: Some(rpm),
            ..Update::default()
        },
    )
    .await?;
    Ok(Redirect::to(&format!("/console/instances/{id}")))
}
