//! Request and response bodies (camelCase, as in SAP Open Connectors).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use ward_daemon::Daemon;
use ward_daemon::scheduler::WorkerProgress;
use ward_store::{EgressRecord, Instance, InstanceSettings, StoredEvent, StoredUser};

use crate::error::ApiError;

/// Days after which a long-lived credential should be rotated, when the
/// plugin's manifest does not say.
const DEFAULT_ROTATION_DAYS: u32 = 180;
const DAY_MS: i64 = 86_400_000;

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
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<StoredEvent>,
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
    #[schema(value_type = Vec<Object>)]
    pub users: Vec<StoredUser>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Recent egress.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EgressPage {
    /// Requests, newest first.
    #[schema(value_type = Vec<Object>)]
    pub egress: Vec<EgressRecord>,
    /// Pass as `cursor` for older requests; absent on the last page.
    pub next_cursor: Option<String>,
}

pub(crate) fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

pub(crate) fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
        .unwrap_or(i64::MAX)
}

/// Lag behind the provider: time since the worker last caught up, or else
/// since the newest stored event.
pub(crate) fn lag_ms(
    progress: Option<&WorkerProgress>,
    newest_stored: Option<i64>,
    now: i64,
) -> Option<i64> {
    if let Some(caught_up) = progress.and_then(|p| p.caught_up_ms) {
        return Some((now - caught_up).max(0));
    }
    progress
        .and_then(|p| p.newest_event_ms)
        .or(newest_stored)
        .map(|t| (now - t).max(0))
}

/// Builds the API view of an instance.
pub(crate) async fn instance_view(
    daemon: &Daemon,
    instance: Instance,
    token: Option<String>,
) -> Result<InstanceView, ApiError> {
    let store = &daemon.store;
    let settings: InstanceSettings = store
        .instance_settings(&instance.id)
        .await?
        .unwrap_or_default();
    let plugin = daemon.registry.get(&instance.plugin_key);
    let schedule = plugin.as_ref().map(|p| p.plugin.manifest().schedule);
    let rotation_days = schedule
        .map(|s| s.rotation_days)
        .filter(|d| *d > 0)
        .unwrap_or(DEFAULT_ROTATION_DAYS);
    let default_rpm = schedule.map(|s| s.requests_per_minute).unwrap_or(0);
    let operator_named_hosts = plugin
        .as_ref()
        .and_then(|p| {
            p.plugin
                .manifest()
                .operator_named_hosts(&instance.config)
                .ok()
        })
        .unwrap_or_default()
        .into_iter()
        .map(|host| OperatorNamedHost {
            host,
            note: OPERATOR_NAMED_NOTE.to_owned(),
        })
        .collect();
    let progress = daemon.scheduler.progress(&instance.id);
    let now = now_ms();
    let newest = store.newest_event_ms(&instance.id).await?;
    let events_stored = store.event_count(&instance.id).await?;
    let worker = store
        .lease(&instance.id)
        .await?
        .filter(|l| l.expires_ms > now && !l.owner.is_empty())
        .map(|l| WorkerView {
            daemon: l.owner,
            epoch: l.epoch,
            lease_expires: rfc3339(l.expires_ms),
        });
    let age_days = instance
        .credentials_updated_ms
        .map(|t| (now - t).max(0) / DAY_MS);
    let credential_warning = age_days
        .filter(|d| *d >= i64::from(rotation_days))
        .map(|d| {
            format!(
                "credentials are {d} days old (rotation age {rotation_days} days): create new \
                 credentials at the provider, reconnect (PUT /instances/{}/credentials), then \
                 revoke the old ones",
                instance.id
            )
        });
    let phase = progress
        .as_ref()
        .map(|p| serde_json::to_value(p.phase).ok())
        .and_then(|v| v.and_then(|v| v.as_str().map(str::to_owned)))
        .unwrap_or_else(|| "stopped".to_owned());
    let status = StatusView {
        state: instance.status.as_str().to_owned(),
        message: instance.status_message.clone(),
        phase,
        last_success: instance.last_success_ms.map(rfc3339),
        lag_seconds: lag_ms(progress.as_ref(), newest, now).map(|ms| ms / 1000),
        events_stored,
        credential_age_days: age_days,
        credential_warning,
    };
    Ok(InstanceView {
        valid: instance.status == ward_store::InstanceStatus::Connected && !settings.disabled,
        disabled: settings.disabled,
        requests_per_minute: settings.requests_per_minute.unwrap_or(default_rpm),
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
        operator_named_hosts,
        worker,
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
