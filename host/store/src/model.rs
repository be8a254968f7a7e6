//! Plain data types passed in and out of the store.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::StoreError;

/// Cursor stream name for audit events.
pub const AUDIT_STREAM: &str = "audit";
/// Cursor stream name for the user directory.
pub const USERS_STREAM: &str = "users";

/// Largest page any list query returns.
pub const MAX_PAGE: u32 = 1000;
/// Page size used when a query asks for a limit of 0.
pub const DEFAULT_PAGE: u32 = 100;

pub(crate) fn page_limit(limit: u32) -> i64 {
    i64::from(if limit == 0 {
        DEFAULT_PAGE
    } else {
        limit.min(MAX_PAGE)
    })
}

/// What is needed to create an instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewInstance {
    /// The plugin's key, e.g. "okta".
    pub plugin_key: String,
    /// The plugin version the instance runs.
    pub plugin_version: String,
    /// Human-readable name.
    pub name: String,
    /// Non-secret configuration (e.g. the tenant's domain).
    pub config: BTreeMap<String, String>,
    /// Free-form tags.
    pub tags: Vec<String>,
}

/// A configured connector instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// Random 32-hex-digit id.
    pub id: String,
    /// The plugin's key, e.g. "okta".
    pub plugin_key: String,
    /// The plugin version the instance runs.
    pub plugin_version: String,
    /// Human-readable name.
    pub name: String,
    /// Non-secret configuration.
    pub config: BTreeMap<String, String>,
    /// Free-form tags.
    pub tags: Vec<String>,
    /// Current status.
    pub status: InstanceStatus,
    /// The actionable message accompanying the status, if any.
    pub status_message: Option<String>,
    /// Creation time.
    pub created_ms: i64,
    /// When a fetch last succeeded.
    pub last_success_ms: Option<i64>,
    /// When credentials were last stored; `None` if there are none.
    pub credentials_updated_ms: Option<i64>,
}

/// Lifecycle status of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstanceStatus {
    /// Created or reconnected; no successful fetch yet.
    Connecting,
    /// Fetching normally.
    Connected,
    /// Fetching failed; the status message says what to do.
    Error,
    /// Turned off by an operator.
    Disabled,
}

impl InstanceStatus {
    /// The lowercase name stored in the database and used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceStatus::Connecting => "connecting",
            InstanceStatus::Connected => "connected",
            InstanceStatus::Error => "error",
            InstanceStatus::Disabled => "disabled",
        }
    }
}

impl fmt::Display for InstanceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for InstanceStatus {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "connecting" => Ok(InstanceStatus::Connecting),
            "connected" => Ok(InstanceStatus::Connected),
            "error" => Ok(InstanceStatus::Error),
            "disabled" => Ok(InstanceStatus::Disabled),
            other => Err(StoreError::InvalidStatus {
                value: other.to_owned(),
            }),
        }
    }
}

/// An instance's secrets and their metadata; encrypted as a whole at rest.
///
/// `Debug` prints secret names only. Serializing does include the secret
/// values (the store encrypts that form), so never serialize this into a
/// response or a log.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// Secret name → value, e.g. "api_token" → "00a…".
    pub secrets: BTreeMap<String, String>,
    /// When the credentials expire, if the provider says.
    pub expires_at_ms: Option<i64>,
    /// Scopes granted, if the provider says.
    pub scopes: Vec<String>,
    /// Who the credentials act as (service account, app id…).
    pub principal: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .field("expires_at_ms", &self.expires_at_ms)
            .field("scopes", &self.scopes)
            .field("principal", &self.principal)
            .finish()
    }
}

/// An audit event as produced by a plugin, ready to store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEvent {
    /// The provider's id for the event; unique per instance, never empty.
    pub event_id: String,
    /// When the event happened.
    pub time_ms: i64,
    /// Normalised action, e.g. "user.session.start".
    pub action: String,
    /// Provider id of the actor.
    pub actor_id: Option<String>,
    /// Kind of actor, e.g. "user", "app", "system".
    pub actor_kind: String,
    /// Display name of the actor.
    pub actor_name: Option<String>,
    /// Email of the actor.
    pub actor_email: Option<String>,
    /// Targets as a JSON array.
    pub targets_json: String,
    /// Client IP address.
    pub ip: Option<String>,
    /// Client user agent.
    pub user_agent: Option<String>,
    /// Outcome, e.g. "success", "failure".
    pub outcome: String,
    /// The provider's original record, as JSON.
    pub raw_json: String,
}

/// A stored audit event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// The instance that ingested it.
    pub instance_id: String,
    /// The provider's id for the event.
    pub event_id: String,
    /// When the event happened.
    pub time_ms: i64,
    /// Normalised action.
    pub action: String,
    /// Provider id of the actor.
    pub actor_id: Option<String>,
    /// Kind of actor.
    pub actor_kind: String,
    /// Display name of the actor.
    pub actor_name: Option<String>,
    /// Email of the actor.
    pub actor_email: Option<String>,
    /// Targets as a JSON array.
    pub targets_json: String,
    /// Client IP address.
    pub ip: Option<String>,
    /// Client user agent.
    pub user_agent: Option<String>,
    /// Outcome.
    pub outcome: String,
    /// The provider's original record, as JSON.
    pub raw_json: String,
    /// When Ward stored it.
    pub ingested_ms: i64,
}

/// A directory user as produced by a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewUser {
    /// The provider's user id; unique per instance, never empty.
    pub user_id: String,
    /// Primary email.
    pub email: Option<String>,
    /// Login name.
    pub login: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// Provider status, e.g. "ACTIVE".
    pub status: Option<String>,
    /// Whether the user holds an administrative role.
    pub is_admin: bool,
    /// When the account was created.
    pub created_ms: Option<i64>,
    /// When the user last logged in.
    pub last_login_ms: Option<i64>,
    /// The provider's original record, as JSON.
    pub raw_json: String,
}

/// A stored directory user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredUser {
    /// The instance that ingested it.
    pub instance_id: String,
    /// The provider's user id.
    pub user_id: String,
    /// Primary email.
    pub email: Option<String>,
    /// Login name.
    pub login: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// Provider status.
    pub status: Option<String>,
    /// Whether the user holds an administrative role.
    pub is_admin: bool,
    /// When the account was created.
    pub created_ms: Option<i64>,
    /// When the user last logged in.
    pub last_login_ms: Option<i64>,
    /// The provider's original record, as JSON.
    pub raw_json: String,
    /// When Ward last wrote this row.
    pub updated_ms: i64,
}

/// Order of an events query.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventOrder {
    /// Latest `time_ms` first.
    #[default]
    NewestFirst,
    /// Earliest `time_ms` first.
    OldestFirst,
}

/// Filters and page position for [`crate::Store::events`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventQuery {
    /// Only events with `time_ms >= since_ms`.
    pub since_ms: Option<i64>,
    /// Only events with `time_ms < until_ms`.
    pub until_ms: Option<i64>,
    /// Only events with exactly this action.
    pub action: Option<String>,
    /// Only events whose actor id, email or name equals this exactly.
    pub actor: Option<String>,
    /// Page size; capped at [`MAX_PAGE`], 0 means [`DEFAULT_PAGE`].
    pub limit: u32,
    /// Keyset position: only events strictly after this `(time_ms, event_id)`
    /// in the query's order. Pass the last row of the previous page.
    pub after: Option<(i64, String)>,
    /// Sort order.
    pub order: EventOrder,
}

/// One outbound request a plugin made or attempted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EgressRecord {
    /// The instance the plugin ran for.
    pub instance_id: String,
    /// The plugin's key.
    pub plugin_key: String,
    /// The export being run, e.g. "fetch-audit".
    pub call: String,
    /// When the request started.
    pub at_ms: i64,
    /// HTTP method.
    pub method: String,
    /// Full URL requested.
    pub url: String,
    /// Whether policy allowed it.
    pub allowed: bool,
    /// Why it was refused (or a note on why it was allowed).
    pub reason: Option<String>,
    /// The grant (manifest permission) that allowed it.
    pub grant: Option<String>,
    /// HTTP status, if a response arrived.
    pub status: Option<u16>,
    /// Request body bytes sent.
    pub bytes_sent: u64,
    /// Response body bytes received.
    pub bytes_received: u64,
    /// Time to complete.
    pub latency_ms: u64,
}
