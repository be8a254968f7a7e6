//! Installed plugins. SKELETON: loads the bundled connectors only; the
//! security work (signatures, trust store, policy, held upgrades) replaces
//! the internals but keeps this interface.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde::Serialize;
use ward_runtime::{Plugin, Runtime, RuntimeError};

/// Where a plugin came from.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "path")]
pub enum PluginSource {
    /// Compiled into the `ward` binary.
    Bundled,
    /// A `.wasm` file in a plugin directory.
    File(String),
}

/// A plugin that is loaded and may run.
#[derive(Clone)]
pub struct LoadedPlugin {
    /// The loaded component.
    pub plugin: Arc<Plugin>,
    /// Where it came from.
    pub source: PluginSource,
    /// Signature verdict (e.g. "bundled", "signed by <key id>", "unsigned (dev mode)").
    pub signature: String,
    /// Effective permissions (manifest ∩ operator policy), as shown by
    /// `ward plugin inspect --json` and `GET /elements/{key}`.
    pub effective: serde_json::Value,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("key", &self.plugin.manifest().key)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// A plugin version that is installed but held: it asks for more than the
/// operator approved.
#[derive(Debug, Clone, Serialize)]
pub struct PendingPlugin {
    /// Plugin key.
    pub key: String,
    /// The held version.
    pub version: String,
    /// SHA-256 of the held component.
    pub digest: String,
    /// Where it came from.
    pub source: PluginSource,
    /// What it asks for beyond the approved permissions, one line each.
    pub widenings: Vec<String>,
}

/// Why the registry could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A plugin failed to load.
    #[error("loading plugin {source_name}: {error}")]
    Load {
        /// File or "bundled:<key>".
        source_name: String,
        /// What the runtime said.
        #[source]
        error: RuntimeError,
    },
}

/// The set of installed plugins.
#[derive(Debug, Default)]
pub struct Registry {
    loaded: RwLock<BTreeMap<String, LoadedPlugin>>,
    pending: RwLock<Vec<PendingPlugin>>,
}

impl Registry {
    /// Loads the bundled connectors.
    pub fn bundled(runtime: &Runtime) -> Result<Registry, RegistryError> {
        let registry = Registry::default();
        for (key, bytes) in crate::bundled::PLUGINS {
            let plugin = runtime.load(bytes).map_err(|error| RegistryError::Load {
                source_name: format!("bundled:{key}"),
                error,
            })?;
            let effective = serde_json::to_value(plugin.manifest()).unwrap_or_default();
            registry.insert(LoadedPlugin {
                plugin,
                source: PluginSource::Bundled,
                signature: "bundled".into(),
                effective,
            });
        }
        Ok(registry)
    }

    /// Adds (or replaces) a loaded plugin.
    pub fn insert(&self, loaded: LoadedPlugin) {
        if let Ok(mut map) = self.loaded.write() {
            map.insert(loaded.plugin.manifest().key.clone(), loaded);
        }
    }

    /// The loaded plugin with this key.
    pub fn get(&self, key: &str) -> Option<LoadedPlugin> {
        self.loaded.read().ok()?.get(key).cloned()
    }

    /// Every loaded plugin, by key.
    pub fn list(&self) -> Vec<LoadedPlugin> {
        self.loaded
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Plugin versions held for approval.
    pub fn pending(&self) -> Vec<PendingPlugin> {
        self.pending.read().map(|p| p.clone()).unwrap_or_default()
    }
}
