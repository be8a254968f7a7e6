//! Installed plugins: which are trusted, approved, loaded or held.
//!
//! [`Registry::load`] gathers the bundled connectors (trusted as built from
//! source into this binary) and every `*.wasm` in `plugins.dirs`, checks the
//! `FILE.minisig` next to each file against `plugins.trusted_keys` (a file
//! that is unsigned, signed by an unknown key or altered is refused unless
//! the daemon runs in dev mode), attaches the operator's policy, and decides
//! approval against the store:
//!
//! - the first version of a key ever seen is recorded as approved
//!   (`first-install`);
//! - a version whose permissions do not widen the newest approved ones is
//!   recorded as approved (`no-widening`) and loads;
//! - a version that asks for more (new host, path, method, secret, higher
//!   limit…) is **held**: listed by [`Registry::pending`], not loaded, until
//!   [`Registry::approve`] (`ward plugin approve`). The previously approved
//!   version, if still installed, keeps running.
//!
//! Among loaded candidates of one key, the highest version wins.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::Serialize;
use ward_manifest::{Ceilings, Effective, Manifest, PluginPolicy};
use ward_runtime::{Plugin, Runtime, RuntimeError};
use ward_store::{Store, StoreError};
use ward_trust::{SignatureStatus, TrustError, TrustStore};

use crate::config::PluginsConfig;

/// Where a plugin came from.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "path")]
pub enum PluginSource {
    /// Compiled into the `ward` binary.
    Bundled,
    /// A `.wasm` file in a plugin directory.
    File(String),
}

impl std::fmt::Display for PluginSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PluginSource::Bundled => f.write_str("bundled"),
            PluginSource::File(p) => f.write_str(p),
        }
    }
}

/// A plugin that is loaded and may run.
#[derive(Clone)]
pub struct LoadedPlugin {
    /// The loaded component (with the operator's policy attached).
    pub plugin: Arc<Plugin>,
    /// Where it came from.
    pub source: PluginSource,
    /// Signature verdict.
    pub signature: SignatureStatus,
    /// Effective permissions (manifest ∩ operator policy), as shown by
    /// `ward plugin inspect --json` and `GET /elements/{key}`.
    pub effective: Effective,
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
    /// Its signature verdict.
    pub signature: SignatureStatus,
    /// What it asks for beyond the approved permissions, one line each.
    pub widenings: Vec<String>,
}

/// One version of a plugin the daemon knows: running, held for approval,
/// or approved earlier (its manifest as recorded at approval).
#[derive(Debug, Clone)]
pub struct KnownVersion {
    /// SHA-256 of the component.
    pub digest: String,
    /// Its version.
    pub version: String,
    /// `running`, `held` or `approved` (recorded, not loaded now).
    pub status: &'static str,
    /// Its manifest.
    pub manifest: Manifest,
}

/// A plugin file the registry refused to load (untrusted signature,
/// malformed component, invalid manifest…). The daemon keeps running.
#[derive(Debug, Clone, Serialize)]
pub struct RefusedPlugin {
    /// The file.
    pub source: PluginSource,
    /// Why, and what to do.
    pub reason: String,
}

/// Why the registry could not be built or changed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A bundled plugin failed to load (a build problem: the binary is
    /// broken).
    #[error("loading plugin {source_name}: {error}")]
    Load {
        /// File or "bundled:<key>".
        source_name: String,
        /// What the runtime said.
        #[source]
        error: RuntimeError,
    },
    /// The trust store is misconfigured.
    #[error("plugins.trusted_keys: {0}")]
    Trust(#[from] TrustError),
    /// A plugin directory could not be read.
    #[error("cannot read plugin directory {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Reading or writing approvals failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `approve` named something that is not held.
    #[error(
        "no held version of plugin `{key}` has digest {digest}; `ward plugin inspect FILE` shows a file's digest and the API lists pending plugins"
    )]
    NotPending {
        /// Plugin key.
        key: String,
        /// Digest given.
        digest: String,
    },
}

struct Held {
    pending: PendingPlugin,
    loaded: LoadedPlugin,
}

/// The set of installed plugins.
#[derive(Default)]
pub struct Registry {
    loaded: RwLock<BTreeMap<String, LoadedPlugin>>,
    pending: RwLock<Vec<PendingPlugin>>,
    held: RwLock<Vec<Held>>,
    refused: RwLock<Vec<RefusedPlugin>>,
    dev: bool,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("loaded", &self.list().len())
            .field("pending", &self.pending().len())
            .field("dev", &self.dev)
            .finish()
    }
}

struct Candidate {
    source: PluginSource,
    bytes: Vec<u8>,
    signature: SignatureStatus,
}

/// Orders versions numerically by dot-separated parts (`0.10.0` > `0.9.1`);
/// non-numeric parts compare as text.
fn version_key(version: &str) -> Vec<(u64, String)> {
    version
        .split(['.', '-', '+'])
        .map(|p| match p.parse::<u64>() {
            Ok(n) => (n, String::new()),
            Err(_) => (u64::MAX, p.to_string()),
        })
        .collect()
}

fn read_signature(path: &Path) -> Option<String> {
    let mut sig = path.as_os_str().to_owned();
    sig.push(".minisig");
    std::fs::read_to_string(PathBuf::from(sig)).ok()
}

fn candidates(
    config: &PluginsConfig,
    trust: &TrustStore,
) -> Result<(Vec<Candidate>, Vec<RefusedPlugin>), RegistryError> {
    let mut out = Vec::new();
    let refused = Vec::new();
    if config.bundled {
        for (_, bytes) in crate::bundled::PLUGINS {
            out.push(Candidate {
                source: PluginSource::Bundled,
                bytes: bytes.to_vec(),
                signature: SignatureStatus::Bundled,
            });
        }
    }
    for dir in &config.dirs {
        let entries = std::fs::read_dir(dir).map_err(|source| RegistryError::Dir {
            path: dir.clone(),
            source,
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
            .collect();
        files.sort();
        for path in files {
            let bytes = std::fs::read(&path).map_err(|source| RegistryError::Dir {
                path: path.clone(),
                source,
            })?;
            let signature = trust.verify(&bytes, read_signature(&path).as_deref());
            out.push(Candidate {
                source: PluginSource::File(path.display().to_string()),
                bytes,
                signature,
            });
        }
    }
    Ok((out, refused))
}

impl Registry {
    /// Loads the bundled connectors only, with no policy and no approvals
    /// (tests and the demo).
    pub fn bundled(runtime: &Runtime) -> Result<Registry, RegistryError> {
        let registry = Registry::default();
        for (key, bytes) in crate::bundled::PLUGINS {
            let plugin = runtime.load(bytes).map_err(|error| RegistryError::Load {
                source_name: format!("bundled:{key}"),
                error,
            })?;
            registry.insert(LoadedPlugin {
                effective: plugin.effective(),
                plugin,
                source: PluginSource::Bundled,
                signature: SignatureStatus::Bundled,
            });
        }
        Ok(registry)
    }

    /// Loads every installed plugin: bundled ones (if `plugins.bundled`) and
    /// `*.wasm` files in `plugins.dirs`, verified against
    /// `plugins.trusted_keys` (refused unless `dev`), with the operator's
    /// policy attached, approvals recorded in and checked against `store`.
    /// A refused file does not stop the daemon: it is logged and listed by
    /// [`Registry::refused`].
    pub async fn load(
        runtime: &Runtime,
        store: &Store,
        config: &PluginsConfig,
        policies: &BTreeMap<String, PluginPolicy>,
        dev: bool,
    ) -> Result<Registry, RegistryError> {
        Registry::load_with_ceilings(runtime, store, config, policies, Ceilings::default(), dev)
            .await
    }

    /// [`Registry::load`] under the daemon's ceilings (`[limits]` of
    /// `ward.toml`): every plugin's limits and schedule are clamped to them.
    pub async fn load_with_ceilings(
        runtime: &Runtime,
        store: &Store,
        config: &PluginsConfig,
        policies: &BTreeMap<String, PluginPolicy>,
        ceilings: Ceilings,
        dev: bool,
    ) -> Result<Registry, RegistryError> {
        let trust = TrustStore::new(&config.trusted_keys)?;
        if dev {
            tracing::warn!(
                "DEV MODE: plugins are loaded without signature checks; never run a production daemon with --dev"
            );
        }
        let registry = Registry {
            dev,
            ..Registry::default()
        };
        let (candidates, mut refused) = candidates(config, &trust)?;
        let mut ready: Vec<(Arc<Plugin>, Candidate)> = Vec::new();
        for candidate in candidates {
            if !candidate.signature.is_trusted() {
                if dev {
                    tracing::warn!(source = %candidate.source, signature = %candidate.signature, "loading an untrusted plugin because of dev mode");
                } else {
                    let reason = format!(
                        "refused: {}; sign it with `ward plugin sign --key vendor.key FILE` and add the vendor's public key to plugins.trusted_keys",
                        candidate.signature
                    );
                    tracing::error!(source = %candidate.source, %reason, "plugin not loaded");
                    refused.push(RefusedPlugin {
                        source: candidate.source,
                        reason,
                    });
                    continue;
                }
            }
            let policy = match ward_runtime::read_manifest_section(&candidate.bytes)
                .ok()
                .and_then(|s| Manifest::from_section(&s).ok())
            {
                Some(m) => policies.get(&m.key).cloned().unwrap_or_default(),
                None => PluginPolicy::default(),
            };
            let policy = PluginPolicy { ceilings, ..policy };
            match runtime.load_with_policy(&candidate.bytes, policy) {
                Ok(plugin) => ready.push((plugin, candidate)),
                Err(error) if candidate.source == PluginSource::Bundled => {
                    return Err(RegistryError::Load {
                        source_name: "bundled".into(),
                        error,
                    });
                }
                Err(error) => {
                    let reason = format!("refused: {error}");
                    tracing::error!(source = %candidate.source, %reason, "plugin not loaded");
                    refused.push(RefusedPlugin {
                        source: candidate.source,
                        reason,
                    });
                }
            }
        }
        // Oldest first, so a first install records the oldest version as
        // the baseline and newer ones are compared with it.
        ready.sort_by(|(a, _), (b, _)| {
            (&a.manifest().key, version_key(&a.manifest().version))
                .cmp(&(&b.manifest().key, version_key(&b.manifest().version)))
        });
        for (plugin, candidate) in ready {
            let manifest = plugin.manifest();
            let loaded = LoadedPlugin {
                effective: plugin.effective(),
                plugin: plugin.clone(),
                source: candidate.source.clone(),
                signature: candidate.signature.clone(),
            };
            match approval(store, manifest, plugin.digest()).await? {
                Verdict::Approved => registry.offer(loaded),
                Verdict::Held(widenings) => {
                    tracing::warn!(
                        plugin = %manifest.key,
                        version = %manifest.version,
                        digest = %plugin.digest(),
                        source = %candidate.source,
                        widenings = ?widenings,
                        "plugin upgrade asks for more permissions; held until `ward plugin approve {} {}`",
                        manifest.key,
                        plugin.digest()
                    );
                    registry.hold(loaded, widenings);
                }
            }
        }
        for warning in registry
            .list()
            .iter()
            .flat_map(|l| l.effective.warnings.iter().map(move |w| (l, w)))
        {
            tracing::warn!(plugin = %warning.0.plugin.manifest().key, "policy: {}", warning.1);
        }
        if let Ok(mut r) = registry.refused.write() {
            *r = refused;
        }
        Ok(registry)
    }

    fn offer(&self, loaded: LoadedPlugin) {
        let key = loaded.plugin.manifest().key.clone();
        if let Ok(mut map) = self.loaded.write() {
            let newer = map.get(&key).is_none_or(|current| {
                version_key(&loaded.plugin.manifest().version)
                    >= version_key(&current.plugin.manifest().version)
            });
            if newer {
                map.insert(key, loaded);
            }
        }
    }

    fn hold(&self, loaded: LoadedPlugin, widenings: Vec<String>) {
        let manifest = loaded.plugin.manifest();
        let pending = PendingPlugin {
            key: manifest.key.clone(),
            version: manifest.version.clone(),
            digest: loaded.plugin.digest().to_string(),
            source: loaded.source.clone(),
            signature: loaded.signature.clone(),
            widenings,
        };
        if let Ok(mut p) = self.pending.write() {
            p.push(pending.clone());
        }
        if let Ok(mut h) = self.held.write() {
            h.push(Held { pending, loaded });
        }
    }

    /// Approves a held version: records the approval in the store and loads
    /// it (replacing the running version of that key if it is newer).
    pub async fn approve(
        &self,
        store: &Store,
        key: &str,
        digest: &str,
    ) -> Result<LoadedPlugin, RegistryError> {
        let found = self.held.read().ok().and_then(|h| {
            h.iter()
                .find(|h| h.pending.key == key && h.pending.digest == digest)
                .map(|h| h.loaded.clone())
        });
        let Some(loaded) = found else {
            return Err(RegistryError::NotPending {
                key: key.into(),
                digest: digest.into(),
            });
        };
        record(store, loaded.plugin.manifest(), digest, "operator").await?;
        if let Ok(mut h) = self.held.write() {
            h.retain(|h| !(h.pending.key == key && h.pending.digest == digest));
        }
        if let Ok(mut p) = self.pending.write() {
            p.retain(|p| !(p.key == key && p.digest == digest));
        }
        tracing::info!(plugin = %key, %digest, "plugin version approved by the operator");
        self.offer(loaded.clone());
        Ok(loaded)
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

    /// Every version of `key` the daemon knows, newest approval first:
    /// the running one, those held for approval, and those approved earlier
    /// (from the store's approval records). A recorded manifest that cannot
    /// be read is left out.
    pub async fn versions(
        &self,
        store: &Store,
        key: &str,
    ) -> Result<Vec<KnownVersion>, StoreError> {
        let mut out: Vec<KnownVersion> = Vec::new();
        let known = |p: &LoadedPlugin, status| KnownVersion {
            digest: p.plugin.digest().to_string(),
            version: p.plugin.manifest().version.clone(),
            status,
            manifest: p.plugin.manifest().clone(),
        };
        if let Some(p) = self.get(key) {
            out.push(known(&p, "running"));
        }
        if let Ok(held) = self.held.read() {
            out.extend(
                held.iter()
                    .filter(|h| h.pending.key == key)
                    .map(|h| known(&h.loaded, "held")),
            );
        }
        for a in store.plugin_approvals(key).await? {
            if out.iter().any(|v| v.digest == a.digest) {
                continue;
            }
            if let Ok(manifest) = serde_json::from_str::<Manifest>(&a.permissions_json) {
                out.push(KnownVersion {
                    digest: a.digest,
                    version: a.version,
                    status: "approved",
                    manifest,
                });
            }
        }
        Ok(out)
    }

    /// Plugin files that were not loaded, with the reason.
    pub fn refused(&self) -> Vec<RefusedPlugin> {
        self.refused.read().map(|r| r.clone()).unwrap_or_default()
    }

    /// Whether signature checks are off (`ward serve --dev`); `/healthz`
    /// and the start-up banner must say so.
    pub fn dev_mode(&self) -> bool {
        self.dev
    }
}

enum Verdict {
    Approved,
    Held(Vec<String>),
}

async fn record(
    store: &Store,
    manifest: &Manifest,
    digest: &str,
    by: &str,
) -> Result<(), StoreError> {
    let json = serde_json::to_string(manifest).unwrap_or_default();
    store
        .approve_plugin(&manifest.key, digest, &manifest.version, &json, by)
        .await
        .map(|_| ())
}

async fn approval(store: &Store, manifest: &Manifest, digest: &str) -> Result<Verdict, StoreError> {
    if store
        .plugin_approval(&manifest.key, digest)
        .await?
        .is_some()
    {
        return Ok(Verdict::Approved);
    }
    let approvals = store.plugin_approvals(&manifest.key).await?;
    let Some(latest) = approvals.first() else {
        record(store, manifest, digest, "first-install").await?;
        return Ok(Verdict::Approved);
    };
    let widenings = match serde_json::from_str::<Manifest>(&latest.permissions_json) {
        Ok(approved) => ward_manifest::widens(&approved, manifest),
        Err(e) => vec![format!(
            "the approved permissions of version {} cannot be read ({e}); approve this version explicitly",
            latest.version
        )],
    };
    if widenings.is_empty() {
        record(store, manifest, digest, "no-widening").await?;
        Ok(Verdict::Approved)
    } else {
        Ok(Verdict::Held(widenings))
    }
}
