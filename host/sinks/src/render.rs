//! One stored event → one JSON object, in OCSF or Ward's own shape.
//!
//! Shared by the sinks and by `GET /events/export`, so a file sink, an HTTP
//! sink and a one-off export write the same bytes for the same event.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};
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

/// Ward's own JSON for an event (a view, not the store row): nested actor,
/// targets and raw record as JSON rather than JSON-in-a-string.
fn ward_json(e: &StoredEvent) -> Value {
    let parse =
        |s: &str| serde_json::from_str::<Value>(s).unwrap_or_else(|_| Value::String(s.to_owned()));
    json!({
        "key": event_key(e),
        "instance_id": e.instance_id,
        "event_id": e.event_id,
        "time_ms": e.time_ms,
        "action": e.action,
        "actor": {
            "id": e.actor_id,
            "kind": e.actor_kind,
            "name": e.actor_name,
            "email": e.actor_email,
        },
        "targets": parse(&e.targets_json),
        "ip": e.ip,
        "user_agent": e.user_agent,
        "outcome": e.outcome,
        "raw": parse(&e.raw_json),
        "ingested_ms": e.ingested_ms,
    })
}
