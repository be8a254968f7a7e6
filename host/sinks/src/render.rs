//! One stored event → one JSON object, in OCSF or Ward's own shape.
//!
//! Shared by the sinks and by `GET /events/export`, so a file sink, an HTTP
//! sink and a one-off export write the same bytes for the same event.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use ward_manifest::Manifest;
use ward_ocsf::Exporter;
use ward_store::{Store, StoredEvent};

use crate::{Format, SinkError};

/// Finds the manifest of a loaded plugin by key (the daemon passes its
/// registry's view).
pub type ManifestLookup = Arc<dyn Fn(&str) -> Option<Manifest> + Send + Sync>;

/// The per-event idempotency key: `<instance id>/<provider event id>`,
/// unique across every instance and stable across re-deliveries. In OCSF it
/// is `unmapped.ward.instance_id` + `metadata.uid`; in Ward JSON `key`.
pub fn event_key(event: &StoredEvent) -> String {
    format!("{}/{}", event.instance_id, event.event_id)
}

/// Renders events; caches each instance's OCSF exporter.
#[derive(Clone)]
pub struct Renderer {
    store: Store,
    lookup: ManifestLookup,
    exporters: HashMap<String, Arc<Exporter>>,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer").finish_non_exhaustive()
    }
}

impl Renderer {
    /// A renderer reading instances from `store` and manifests from `lookup`.
    pub fn new(store: Store, lookup: ManifestLookup) -> Renderer {
        Renderer {
            store,
            lookup,
            exporters: HashMap::new(),
        }
    }

    /// The event as one JSON object in `format`.
    pub async fn render(
        &mut self,
        format: Format,
        event: &StoredEvent,
    ) -> Result<Value, SinkError> {
        match format {
            Format::Ward => Ok(ward_json(event)),
            Format::Ocsf => Ok(self.exporter(&event.instance_id).await?.map(event)),
        }
    }

    async fn exporter(&mut self, instance_id: &str) -> Result<Arc<Exporter>, SinkError> {
        if let Some(e) = self.exporters.get(instance_id) {
            return Ok(e.clone());
        }
        let exporter = match self.store.instance(instance_id).await? {
            Some(instance) => match (self.lookup)(&instance.plugin_key) {
                Some(manifest) => Exporter::new(&manifest),
                // The plugin was removed: its events still export, as Base
                // Events, rather than wait for a plugin that may not return.
                None => Exporter::without_manifest(&instance.plugin_key, &instance.plugin_version),
            },
            // Deleted while we read: its events are gone with it.
            None => Exporter::without_manifest("unknown", "0"),
        };
        let exporter = Arc::new(exporter);
        self.exporters
            .insert(instance_id.to_owned(), exporter.clone());
        Ok(exporter)
    }
}

/// Ward's own JSON for an event: the REST API's event object (the same
/// type, so `format = "ward"` in a sink, `ward events export` and
/// `GET /instances/{id}/events` agree) plus `key`, the per-event
/// idempotency key receivers deduplicate on.
fn ward_json(e: &StoredEvent) -> Value {
    let key = event_key(e);
    let mut value = serde_json::to_value(EventView::from(e.clone())).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.insert("key".to_owned(), Value::String(key));
    }
    value
}

/// Who performed an event.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActorView {
    /// The provider's id of the actor.
    pub id: Option<String>,
    /// `user`, `service`, `system` or `unknown`.
    pub kind: String,
    /// Display name.
    pub name: Option<String>,
    /// Email address.
    pub email: Option<String>,
}

/// One normalised audit event.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventView {
    /// The instance that ingested it.
    pub instance_id: String,
    /// The provider's id for the event (unique per instance).
    pub event_id: String,
    /// When it happened (RFC 3339).
    pub time: String,
    /// When it happened, in milliseconds since the epoch.
    pub time_ms: i64,
    /// Normalised action, e.g. `user.session.start`.
    pub action: String,
    /// Who did it.
    pub actor: ActorView,
    /// What it was done to (objects with `type`, `id`, `name`).
    #[schema(value_type = Vec<Object>)]
    pub targets: serde_json::Value,
    /// Client IP address.
    pub ip: Option<String>,
    /// Client user agent.
    pub user_agent: Option<String>,
    /// `success`, `failure` or `unknown`.
    pub outcome: String,
    /// The provider's original record.
    #[schema(value_type = Object)]
    pub raw: serde_json::Value,
    /// When Ward stored it (RFC 3339).
    pub ingested: String,
}

impl From<StoredEvent> for EventView {
    fn from(e: StoredEvent) -> EventView {
        EventView {
            time: rfc3339(e.time_ms),
            ingested: rfc3339(e.ingested_ms),
            targets: json_text(&e.targets_json),
            raw: json_text(&e.raw_json),
            instance_id: e.instance_id,
            event_id: e.event_id,
            time_ms: e.time_ms,
            action: e.action,
            actor: ActorView {
                id: e.actor_id,
                kind: e.actor_kind,
                name: e.actor_name,
                email: e.actor_email,
            },
            ip: e.ip,
            user_agent: e.user_agent,
            outcome: e.outcome,
        }
    }
}

fn json_text(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// RFC 3339 for milliseconds since the epoch (empty if out of range).
pub fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
