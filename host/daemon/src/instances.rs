//! What an operator does to instances, whichever front end asks (the REST
//! API, the console): create, reconnect, Test now, disable/enable, update,
//! delete, and the overview of one instance's state. Each operation does
//! the whole job: the store, the worker and the instance token move
//! together, so no caller has to know the order.

use std::collections::BTreeMap;
use std::sync::Arc;

use ward_runtime::types::{Grant, PluginError};
use ward_runtime::{CallError, Plugin};
use ward_store::{Instance, InstanceSettings, InstanceStatus, StoreError};

use crate::Daemon;
use crate::connect::{self, ConnectError, Connected, NewConnection};
use crate::consent::{self, CodeGrant, ConsentError};
use crate::registry::LoadedPlugin;
use crate::scheduler::WorkerProgress;

/// Most tags an instance may carry.
pub const MAX_TAGS: usize = 32;
/// Longest tag, in characters.
pub const MAX_TAG_CHARS: usize = 64;
/// Days after which a long-lived credential should be rotated, when the
/// plugin's manifest does not say.
pub const DEFAULT_ROTATION_DAYS: u32 = 180;
const DAY_MS: i64 = 86_400_000;

/// Why an operation on an instance failed.
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    /// No instance has this id.
    #[error("no instance {0}; GET /instances lists them")]
    NotFound(String),
    /// No installed plugin has this key or digest.
    #[error("no installed element {0:?}; GET /elements lists them")]
    UnknownElement(String),
    /// The instance's plugin was uninstalled.
    #[error(
        "instance {id} runs element {key:?}, which is no longer installed; reinstall it or \
         delete the instance"
    )]
    PluginGone {
        /// Instance id.
        id: String,
        /// Plugin key.
        key: String,
    },
    /// The tags break a limit.
    #[error("{0}")]
    Tags(String),
    /// An empty display name.
    #[error("name must not be empty")]
    EmptyName,
    /// The provider refused the credentials outright; nothing was kept.
    #[error("{plugin}: {source}")]
    Rejected {
        /// Plugin key.
        plugin: String,
        /// The refusal.
        #[source]
        source: CallError,
    },
    /// The OAuth code could not be used.
    #[error(transparent)]
    Consent(#[from] ConsentError),
    /// Exchange, store or test failed.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The credentials an operator gives: an OAuth code (with or without
/// Ward's state), or a grant the host takes as it is (API token, basic).
#[derive(Debug, Clone)]
pub enum Credentials {
    /// An authorization code, see [`consent`].
    Code(CodeGrant),
    /// An API token or user name and password.
    Direct(Grant),
}

/// What a new instance is made of.
#[derive(Debug, Clone)]
pub struct NewInstance {
    /// Plugin key or component digest.
    pub element: String,
    /// Display name (default: the plugin's name).
    pub name: Option<String>,
    /// Configuration fields of the manifest (aliases accepted).
    pub config: BTreeMap<String, String>,
    /// Free-form tags.
    pub tags: Vec<String>,
    /// The credentials.
    pub credentials: Credentials,
}

/// A created instance: its test, and the instance token (shown once).
#[derive(Debug)]
pub struct Created {
    /// The instance after its first test.
    pub connected: Connected,
    /// The `Element` token of the instance; only its SHA-256 is kept.
    pub token: String,
}

/// What an update changes; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default)]
pub struct Update {
    /// New display name.
    pub name: Option<String>,
    /// New tags.
    pub tags: Option<Vec<String>>,
    /// Requests-per-minute override; `Some(0)` restores the plugin's rate.
    pub requests_per_minute: Option<u32>,
    /// Turn the instance off or back on.
    pub disabled: Option<bool>,
}

/// Everything an operator sees about one instance.
#[derive(Debug, Clone)]
pub struct Overview {
    /// The instance as stored.
    pub instance: Instance,
    /// Turned off by an operator.
    pub disabled: bool,
    /// Connected, checks passed, not disabled.
    pub valid: bool,
    /// Requests-per-minute budget in force.
    pub requests_per_minute: u32,
    /// The worker's phase (`backfill`, `idle`, `polling`, `waiting`, `stopped`).
    pub phase: String,
    /// Live progress of the worker, if one ran since start-up.
    pub progress: Option<WorkerProgress>,
    /// Seconds behind the provider.
    pub lag_secs: Option<i64>,
    /// Events stored.
    pub events_stored: u64,
    /// Days since the credentials were stored.
    pub credential_age_days: Option<i64>,
    /// Set when the credentials are older than the rotation age.
    pub credential_warning: Option<String>,
    /// Hosts the operator named that receive the instance's tokens.
    pub operator_named_hosts: Vec<String>,
    /// The daemon holding the instance's lease, while the lease is live.
    pub worker: Option<ward_store::Lease>,
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
        .unwrap_or(i64::MAX)
}

/// Lag behind the provider: time since the worker last caught up, or else
/// since the newest stored event.
pub fn lag_ms(
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

/// Tags are labels for people and dashboards: a bounded number of short,
/// non-empty strings.
pub fn check_tags(tags: &[String]) -> Result<(), InstanceError> {
    if tags.len() > MAX_TAGS {
        return Err(InstanceError::Tags(format!(
            "{} tags given; an instance carries at most {MAX_TAGS}",
            tags.len()
        )));
    }
    if let Some(t) = tags
        .iter()
        .find(|t| t.trim().is_empty() || t.chars().count() > MAX_TAG_CHARS)
    {
        let shown: String = t.chars().take(MAX_TAG_CHARS).collect();
        return Err(InstanceError::Tags(format!(
            "tag {shown:?}: each tag must be 1 to {MAX_TAG_CHARS} characters"
        )));
    }
    Ok(())
}

/// The installed plugin with this key or component digest.
pub fn element(daemon: &Daemon, key_or_id: &str) -> Result<LoadedPlugin, InstanceError> {
    if let Some(p) = daemon.registry.get(key_or_id) {
        return Ok(p);
    }
    daemon
        .registry
        .list()
        .into_iter()
        .find(|p| p.plugin.digest() == key_or_id)
        .ok_or_else(|| InstanceError::UnknownElement(key_or_id.to_owned()))
}

/// The instance with this id.
pub async fn get(daemon: &Daemon, id: &str) -> Result<Instance, InstanceError> {
    daemon
        .store
        .instance(id)
        .await?
        .ok_or_else(|| InstanceError::NotFound(id.to_owned()))
}

fn plugin_of(daemon: &Daemon, instance: &Instance) -> Result<Arc<Plugin>, InstanceError> {
    daemon
        .registry
        .get(&instance.plugin_key)
        .map(|p| p.plugin)
        .ok_or_else(|| InstanceError::PluginGone {
            id: instance.id.clone(),
            key: instance.plugin_key.clone(),
        })
}

async fn is_disabled(daemon: &Daemon, id: &str) -> Result<bool, StoreError> {
    Ok(daemon
        .store
        .instance_settings(id)
        .await?
        .is_some_and(|s| s.disabled))
}

/// Creates an instance: exchange the credentials, store them encrypted,
/// test, issue the instance token and start the worker. Credentials the
/// provider refuses outright leave nothing behind.
pub async fn create(daemon: &Daemon, new: NewInstance) -> Result<Created, InstanceError> {
    check_tags(&new.tags)?;
    let loaded = element(daemon, &new.element)?;
    let key = loaded.plugin.manifest().key.clone();
    let name = new
        .name
        .unwrap_or_else(|| loaded.plugin.manifest().name.clone());
    let store = &daemon.store;
    let connected = match new.credentials {
        Credentials::Code(code) => {
            consent::create(store, &loaded.plugin, code, name, new.config, new.tags).await?
        }
        Credentials::Direct(grant) => {
            connect::create(
                store,
                &loaded.plugin,
                NewConnection {
                    name,
                    config: new.config,
                    tags: new.tags,
                    grant,
                    host_secrets: BTreeMap::new(),
                },
            )
            .await?
        }
    };
    let id = connected.instance.id.clone();
    if let Err(source @ CallError::Plugin(PluginError::Unauthorized(_))) = &connected.report {
        // The provider refused the credentials outright: keep nothing.
        store.delete_instance(&id).await?;
        return Err(InstanceError::Rejected {
            plugin: key,
            source: source.clone(),
        });
    }
    let token = consent::random_token();
    store
        .set_instance_token(&id, &consent::sha256_hex(&token))
        .await?;
    daemon.scheduler.start_after_test(&connected);
    Ok(Created { connected, token })
}

/// Reconnect or rotate: new credentials, cursors and events kept. A
/// disabled instance stays disabled; otherwise its worker starts as the
/// test calls for.
pub async fn reconnect(
    daemon: &Daemon,
    id: &str,
    credentials: Credentials,
) -> Result<Connected, InstanceError> {
    let instance = get(daemon, id).await?;
    let plugin = plugin_of(daemon, &instance)?;
    let store = &daemon.store;
    let disabled = is_disabled(daemon, id).await?;
    daemon.scheduler.stop(id);
    let connected = match credentials {
        Credentials::Code(code) => consent::reconnect(store, &plugin, &instance, code).await?,
        Credentials::Direct(grant) => {
            connect::reconnect(store, &plugin, &instance, &grant, &BTreeMap::new()).await?
        }
    };
    if disabled {
        store.set_disabled(id, true).await?;
    } else {
        daemon.scheduler.start_after_test(&connected);
    }
    Ok(connected)
}

/// "Test now": runs the plugin's checks. Unless the instance is disabled,
/// the result is the operator's verdict: passing releases a halted
/// instance, failing halts it (no calls with credentials or a role known
/// not to work, not even after a restart).
pub async fn test_now(daemon: &Daemon, id: &str) -> Result<Connected, InstanceError> {
    let instance = get(daemon, id).await?;
    let plugin = plugin_of(daemon, &instance)?;
    let disabled = is_disabled(daemon, id).await?;
    let connected = connect::test_now(&daemon.store, &plugin, &instance, !disabled).await?;
    if !disabled && !daemon.scheduler.start_after_test(&connected) {
        daemon.scheduler.stop(id);
        daemon.store.set_halted(id, true).await?;
    }
    Ok(connected)
}

/// Turns an instance off (its worker stops) or back on (its worker starts).
pub async fn set_disabled(daemon: &Daemon, id: &str, disabled: bool) -> Result<(), InstanceError> {
    let instance = get(daemon, id).await?;
    let was = is_disabled(daemon, id).await?;
    if disabled && !was {
        daemon.scheduler.stop(id);
        daemon.store.set_disabled(id, true).await?;
    } else if !disabled && was {
        daemon.store.set_disabled(id, false).await?;
        daemon.scheduler.start(&instance.id);
    }
    Ok(())
}

/// Renames, retags, re-rates, disables or enables an instance; returns it
/// as stored afterwards.
pub async fn update(daemon: &Daemon, id: &str, update: Update) -> Result<Instance, InstanceError> {
    if let Some(tags) = &update.tags {
        check_tags(tags)?;
    }
    let instance = get(daemon, id).await?;
    if update.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        return Err(InstanceError::EmptyName);
    }
    let rate = update.requests_per_minute.map(|r| (r > 0).then_some(r));
    daemon
        .store
        .update_instance(id, update.name.as_deref(), update.tags.as_deref(), rate)
        .await?;
    if let Some(rate) = rate {
        daemon.scheduler.apply_rate(id, &instance.plugin_key, rate);
    }
    if let Some(disabled) = update.disabled {
        set_disabled(daemon, id, disabled).await?;
    }
    get(daemon, id).await
}

/// Deletes an instance with its credentials, cursors, events, users and
/// egress log; its worker stops first.
pub async fn delete(daemon: &Daemon, id: &str) -> Result<(), InstanceError> {
    get(daemon, id).await?;
    daemon.scheduler.stop(id);
    daemon.store.delete_instance(id).await?;
    Ok(())
}

/// The operator's view of one instance: settings, worker phase, lag,
/// events stored, credential age.
pub async fn overview(daemon: &Daemon, instance: Instance) -> Result<Overview, StoreError> {
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
        .unwrap_or_default();
    let progress = daemon.scheduler.progress(&instance.id);
    let now = now_ms();
    let newest = store.newest_event_ms(&instance.id).await?;
    let events_stored = store.event_count(&instance.id).await?;
    let worker = store
        .lease(&instance.id)
        .await?
        .filter(|l| l.expires_ms > now && !l.owner.is_empty());
    let credential_age_days = instance
        .credentials_updated_ms
        .map(|t| (now - t).max(0) / DAY_MS);
    let credential_warning = credential_age_days
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
        .and_then(|p| serde_json::to_value(p.phase).ok())
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "stopped".to_owned());
    Ok(Overview {
        valid: instance.status == InstanceStatus::Connected && !settings.disabled,
        disabled: settings.disabled,
        requests_per_minute: settings.requests_per_minute.unwrap_or(default_rpm),
        phase,
        lag_secs: lag_ms(progress.as_ref(), newest, now).map(|ms| ms / 1000),
        progress,
        events_stored,
        credential_age_days,
        credential_warning,
        operator_named_hosts,
        worker,
        instance,
    })
}
