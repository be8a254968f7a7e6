//! Request and response bodies (camelCase, as in SAP Open Connectors).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use ward_daemon::Daemon;
use ward_daemon::instances;
pub use ward_sinks::{ActorView, EventView, rfc3339};
use ward_store::{EgressRecord, Instance, StoredUser};

use crate::error::ApiError;

/// An installed plugin.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ElementView {
    /// Plugin key, e.g. `okta`.
    pub key: String,
    /// SHA-256 of the component (also accepted as `{keyOrId}`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Vendor.
    pub vendor: String,
    /// Where it came from.
    #[schema(value_type = Object)]
    pub source: serde_json::Value,
    /// Signature verdict.
    pub signature: String,
    /// The embedded manifest.
    #[schema(value_type = Object)]
    pub manifest: serde_json::Value,
    /// Effective permissions (manifest ∩ operator policy).
    #[schema(value_type = Object)]
    pub effective_permissions: serde_json::Value,
    /// `loaded`, or `pending-approval` for a version held because it asks
    /// for more than the operator approved (`ward plugin approve`).
    pub status: String,
    /// For a held version: what it asks for beyond the approved permissions.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub widenings: Vec<String>,
}

/// `GET /elements/{keyOrId}/oauth/url` response.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OauthUrlView {
    /// Element key.
    pub element: String,
    /// Where to send the user's browser.
    pub oauth_url: String,
}

/// `GET /oauth/callback` response when the provider returned a code.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallbackView {
    /// Element key.
    pub element: String,
    /// The authorization code (pass it to `POST /instances` as `providerData.code`).
    pub code: String,
    /// The state (pass it as `providerData.state`).
    pub state: String,
}

/// How one grant of a plugin was used.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GrantUsageView {
    /// The grant's URL template.
    pub url: String,
    /// Its path prefix.
    pub path_prefix: String,
    /// Methods the plugin may use under it.
    pub methods: Vec<String>,
    /// Methods it used.
    pub methods_used: Vec<String>,
    /// Requests it allowed in the window.
    pub requests: u64,
    /// Distinct paths requested (at most 20).
    pub paths_used: Vec<String>,
}

/// `GET /elements/{keyOrId}/usage`: declared vs used.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageView {
    /// Element key.
    pub element: String,
    /// Window in days.
    pub days: u32,
    /// Instances of the element read.
    pub instances: usize,
    /// Requests in the window.
    pub requests: u64,
    /// Requests the sandbox denied.
    pub denied: u64,
    /// Per effective grant; `requests: 0` means never used.
    pub grants: Vec<GrantUsageView>,
    /// Path prefixes of grants never used.
    pub unused_paths: Vec<String>,
    /// Secrets never sent.
    pub unused_secrets: Vec<String>,
    /// A `[policy.KEY]` for `ward.toml` narrowing the element to what it used.
    pub policy_snippet: String,
}

impl From<ward_daemon::usage::Usage> for UsageView {
    fn from(u: ward_daemon::usage::Usage) -> UsageView {
        UsageView {
            element: u.key,
            days: u.days,
            instances: u.instances,
            requests: u.requests,
            denied: u.denied,
            grants: u
                .grants
                .into_iter()
                .map(|g| GrantUsageView {
                    url: g.url,
                    path_prefix: g.path_prefix,
                    methods: g.methods,
                    methods_used: g.methods_used,
                    requests: g.requests,
                    paths_used: g.paths_used,
                })
                .collect(),
            unused_paths: u.unused_paths,
            unused_secrets: u.unused_secrets,
            policy_snippet: u.snippet,
        }
    }
}

/// `GET /oauth/states/{state}`: where a consent the operator started
/// stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct OauthStateView {
    /// Element key.
    pub element: String,
    /// `waiting` (no redirect yet), `returned` (Ward's callback received a
    /// code: `code` is set), `used` (the code was exchanged), `declined`
    /// (the consent was declined, or the state was used without Ward's
    /// callback), `expired`.
    pub status: String,
    /// The code Ward's callback received, while `status` is `returned`
    /// (pass it with the state to `POST /instances`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// The credentials (or OAuth result) an operator gives.
#[derive(Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProviderData {
    /// OAuth authorization code, from Ward's `/oauth/callback` or the
    /// client's own callback.
    pub code: Option<String>,
    /// The OAuth state Ward issued with the consent URL (required when the
    /// code came through Ward's `/oauth/callback`; without it the code is
    /// exchanged with `oauth.api.key`, `oauth.api.secret` and
    /// `oauth.callback.url` from `configuration`).
    pub state: Option<String>,
    /// API token, for token-auth plugins.
    pub api_token: Option<String>,
    /// User name, for basic-auth plugins.
    pub username: Option<String>,
    /// Password, for basic-auth plugins.
    pub password: Option<String>,
}

impl std::fmt::Debug for ProviderData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProviderData([REDACTED])")
    }
}

/// Reference to an element.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ElementRef {
    /// Element key.
    pub key: String,
}

/// `POST /instances` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateInstance {
    /// The element to connect.
    pub element: ElementRef,
    /// Credentials or OAuth result.
    pub provider_data: ProviderData,
    /// Configuration fields declared by the element's manifest (or their
    /// aliases), plus the OAuth client settings `oauth.api.key`,
    /// `oauth.api.secret` and `oauth.callback.url`.
    #[serde(default)]
    pub configuration: BTreeMap<String, String>,
    /// Free-form tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Display name (default: the element's name).
    pub name: Option<String>,
}

/// `PUT /instances/{id}/credentials` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Reconnect {
    /// New credentials or OAuth result.
    pub provider_data: ProviderData,
    /// Only the OAuth client settings `oauth.api.key`, `oauth.api.secret`
    /// and `oauth.callback.url`, for a code without a state.
    #[serde(default)]
    pub configuration: BTreeMap<String, String>,
}

/// `PATCH /instances/{id}` body; absent fields are unchanged.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchInstance {
    /// New display name.
    pub name: Option<String>,
    /// New tags (replace the old ones).
    pub tags: Option<Vec<String>>,
    /// Turn the instance off or back on.
    pub disabled: Option<bool>,
    /// Requests-per-minute budget override; 0 restores the plugin's default.
    pub requests_per_minute: Option<u32>,
}

/// The element an instance runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstanceElement {
    /// Plugin key.
    pub key: String,
    /// Plugin version.
    pub version: String,
}

/// Status of an instance.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusView {
    /// `connecting`, `connected`, `error` or `disabled`.
    pub state: String,
    /// What to do (error), or what the instance waits for (connecting
    /// with its test deferred, connected while a quota resets).
    pub message: Option<String>,
    /// What the worker is doing (`backfill`, `idle`, `polling`, `waiting`, `stopped`).
    pub phase: String,
    /// When a fetch last succeeded (RFC 3339).
    pub last_success: Option<String>,
    /// Seconds behind the provider.
    pub lag_seconds: Option<i64>,
    /// Events stored.
    pub events_stored: u64,
    /// Days since the credentials were stored.
    pub credential_age_days: Option<i64>,
    /// Set when the credentials are older than the rotation age.
    pub credential_warning: Option<String>,
}

/// A connected instance.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceView {
    /// Instance id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The instance token, returned once by `POST /instances`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Creation time (RFC 3339).
    pub created_date: String,
    /// The element.
    pub element: InstanceElement,
    /// Tags.
    pub tags: Vec<String>,
    /// Whether the instance is connected and its checks pass.
    pub valid: bool,
    /// Turned off by an operator.
    pub disabled: bool,
    /// Requests-per-minute budget in force.
    pub requests_per_minute: u32,
    /// Status.
    pub status: StatusView,
    /// Configuration (never holds secrets), as normalised: `acme` for an
    /// Okta `domain` typed as `https://acme.okta.com/`.
    pub configuration: BTreeMap<String, String>,
    /// Hosts outside the provider's own host families that this instance's
    /// tokens are sent to because the operator named them (an Okta custom
    /// URL domain). Empty for most instances.
    pub operator_named_hosts: Vec<OperatorNamedHost>,
    /// The daemon working the instance, from its lease; `null` when no
    /// daemon holds a live lease (not started, disabled, halted, or its
    /// daemon died and the lease has not been taken over yet).
    pub worker: Option<WorkerView>,
}

/// Which daemon works an instance.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkerView {
    /// The daemon's id (`scheduler.daemon_name` or host name, plus a
    /// suffix per process run).
    pub daemon: String,
    /// The lease's fencing epoch: it grows with every takeover.
    pub epoch: i64,
    /// When the lease lapses unless the daemon renews it (RFC 3339).
    pub lease_expires: String,
}

/// A host the operator named, where the instance's tokens are sent.
#[derive(Debug, Serialize, ToSchema)]
pub struct OperatorNamedHost {
    /// The host name, e.g. `login.acme.com`.
    pub host: String,
    /// Always "token sent to an operator-named host".
    pub note: String,
}

/// The note on every [`OperatorNamedHost`].
pub const OPERATOR_NAMED_NOTE: &str = "token sent to an operator-named host";

/// One check of a test.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckView {
    /// Check name, e.g. `admin-role`.
    pub name: String,
    /// Whether it passed.
    pub ok: bool,
    /// What it found or what to do.
    pub message: String,
}

/// `POST /instances/{id}/test` response (also part of create/reconnect).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestView {
    /// Whether the test ran and every check passed.
    pub ok: bool,
    /// Per-check verdicts.
    pub checks: Vec<CheckView>,
    /// Why the test could not run, if it could not.
    pub error: Option<String>,
    /// Provider account name.
    pub account_name: Option<String>,
    /// Identity behind the credentials.
    pub principal: Option<String>,
    /// The instance after the test.
    pub instance: InstanceView,
}

/// `POST /instances` response: the instance itself at the top level (as
/// SAP Open Connectors returns it: `id`, `name`, `token`, `createdDate`,
/// `element`, `tags`, `valid`, `disabled`, `status`, `configuration`), plus
/// the verdicts of the connection test that ran during creation.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedView {
    /// The new instance; `token` is shown only in this response.
    #[serde(flatten)]
    pub instance: InstanceView,
    /// Per-check verdicts of the test run during creation.
    pub checks: Vec<CheckView>,
    /// Why the test could not run, if it could not.
    pub test_error: Option<String>,
    /// Provider account name.
    pub account_name: Option<String>,
    /// Identity behind the credentials.
    pub principal: Option<String>,
}

/// A page of events.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventsPage {
    /// Events.
    pub events: Vec<EventView>,
    /// Pass as `cursor` for the next page (same filters and order); absent
    /// when this page is empty. With `order=oldest` it also picks up events
    /// stored later.
    pub next_cursor: Option<String>,
}

/// A page of users.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsersPage {
    /// Users.
    pub users: Vec<UserView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Recent egress.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EgressPage {
    /// Requests, newest first.
    pub egress: Vec<EgressView>,
    /// Pass as `cursor` for older requests; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A directory user of an instance.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    /// The provider's user id (unique per instance).
    pub user_id: String,
    /// Primary email.
    pub email: Option<String>,
    /// Login name.
    pub login: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// The provider's status, e.g. `ACTIVE`.
    pub status: Option<String>,
    /// Whether the user holds an administrative role.
    pub is_admin: bool,
    /// When the account was created (RFC 3339).
    pub created: Option<String>,
    /// When the user last signed in (RFC 3339).
    pub last_login: Option<String>,
    /// The provider's original record.
    #[schema(value_type = Object)]
    pub raw: serde_json::Value,
    /// When Ward last wrote this user (RFC 3339).
    pub updated: String,
}

/// One request a plugin made (or tried to make).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EgressView {
    /// The plugin's key.
    pub plugin: String,
    /// The export being run, e.g. `fetch-audit`, `test`.
    pub call: String,
    /// When the request started (RFC 3339).
    pub at: String,
    /// HTTP method.
    pub method: String,
    /// The full URL.
    pub url: String,
    /// Whether the sandbox let it through.
    pub allowed: bool,
    /// Why it was refused (or a note on why it was allowed).
    pub reason: Option<String>,
    /// The manifest grant that allowed it.
    pub grant: Option<String>,
    /// HTTP status, if a response arrived.
    pub status: Option<u16>,
    /// Request body bytes sent.
    pub bytes_sent: u64,
    /// Response body bytes received.
    pub bytes_received: u64,
    /// Time to complete, in milliseconds.
    pub latency_ms: u64,
}

/// Parses JSON kept as text; text that is not JSON is returned as a string.
fn json_text(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.to_owned()))
}

impl From<StoredUser> for UserView {
    fn from(u: StoredUser) -> UserView {
        UserView {
            created: u.created_ms.map(rfc3339),
            last_login: u.last_login_ms.map(rfc3339),
            updated: rfc3339(u.updated_ms),
            raw: json_text(&u.raw_json),
            user_id: u.user_id,
            email: u.email,
            login: u.login,
            name: u.name,
            status: u.status,
            is_admin: u.is_admin,
        }
    }
}

impl From<EgressRecord> for EgressView {
    fn from(r: EgressRecord) -> EgressView {
        EgressView {
            at: rfc3339(r.at_ms),
            plugin: r.plugin_key,
            call: r.call,
            method: r.method,
            url: r.url,
            allowed: r.allowed,
            reason: r.reason,
            grant: r.grant,
            status: r.status,
            bytes_sent: r.bytes_sent,
            bytes_received: r.bytes_received,
            latency_ms: r.latency_ms,
        }
    }
}

/// Builds the API view of an instance.
pub(crate) async fn instance_view(
    daemon: &Daemon,
    instance: Instance,
    token: Option<String>,
) -> Result<InstanceView, ApiError> {
    let o = instances::overview(daemon, instance).await?;
    let status = StatusView {
        state: o.instance.status.as_str().to_owned(),
        message: o.instance.status_message.clone(),
        phase: o.phase,
        last_success: o.instance.last_success_ms.map(rfc3339),
        lag_seconds: o.lag_secs,
        events_stored: o.events_stored,
        credential_age_days: o.credential_age_days,
        credential_warning: o.credential_warning,
    };
    let instance = o.instance;
    Ok(InstanceView {
        valid: o.valid,
        disabled: o.disabled,
        requests_per_minute: o.requests_per_minute,
        id: instance.id,
        name: instance.name,
        token,
        created_date: rfc3339(instance.created_ms),
        element: InstanceElement {
            key: instance.plugin_key,
            version: instance.plugin_version,
        },
        tags: instance.tags,
        status,
        configuration: instance.config,
        operator_named_hosts: o
            .operator_named_hosts
            .into_iter()
            .map(|host| OperatorNamedHost {
                host,
                note: OPERATOR_NAMED_NOTE.to_owned(),
            })
            .collect(),
        worker: o.worker.map(|l| WorkerView {
            daemon: l.owner,
            epoch: l.epoch,
            lease_expires: rfc3339(l.expires_ms),
        }),
    })
}

/// Renders a stored OAuth state's outcome for the operator.
pub(crate) fn oauth_state_view(outcome: ward_store::OauthOutcome) -> OauthStateView {
    let status = match (outcome.phase.as_str(), outcome.code_returned) {
        ("returned", _) if !outcome.expired => "returned",
        ("consumed", true) => "used",
        ("consumed", false) => "declined",
        _ if outcome.expired => "expired",
        _ => "waiting",
    };
    OauthStateView {
        element: outcome.element_key,
        status: status.to_string(),
        code: outcome.code.filter(|_| status == "returned"),
    }
}
