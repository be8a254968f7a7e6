//! Ward's sandboxed plugin runtime.
//!
//! One [`Runtime`] owns the wasmtime `Engine` (async, pooling allocator,
//! epoch interruption), the `Linker` with Ward's capabilities
//! ([`caps::add_all`]), the shared egress client and the on-disk cache of
//! compiled components. [`Runtime::load`] turns a component file into a
//! [`Plugin`] (manifest read from its custom section, imports checked,
//! `InstancePre` ready). [`Plugin::bind`] validates an instance's
//! configuration once and returns a [`Bound`] plugin whose calls each run in
//! a fresh instance with a memory cap, a CPU budget and a wall-clock
//! timeout, and whose results are size-checked and scanned for secrets.

pub mod caps;
pub mod introspect;
mod output;
pub mod pack;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use ward_manifest::{Effective, HttpGrant, Limits, Manifest, PluginPolicy};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{
    Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, UpdateDeadline,
};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

pub use caps::http::{EgressConfig, EgressEntry, Refusal};
pub use caps::log::LogLine;
pub use caps::secrets::{Redactor, SecretSet};
pub use output::{
    MAX_CURSOR_BYTES, MAX_EVENT_FUTURE_MS, MAX_EVENT_ID_BYTES, MAX_MESSAGE_BYTES, MIN_EVENT_TIME_MS,
};

pub mod bindings;

pub use bindings::ContractVersion;

/// The contract's records, as the host sees them: the current version's
/// (0.2) types; older components' values are adapted to them
/// ([`bindings`]).
pub mod types {
    pub use crate::bindings::v0_2::exports::ward::connector::exchange::{
        BasicCredentials, Credentials, Grant, OauthCode, Secret,
    };
    /// The contract's `error` variant: a failure the plugin reports.
    pub use crate::bindings::v0_2::ward::connector::types::Error as PluginError;
    pub use crate::bindings::v0_2::ward::connector::types::{
        Actor, ActorKind, AuditPage, AuthKind, Check, ConfigEntry, Event, Outcome, RateLimit,
        Target, TestReport, Timestamp, User, UserPage,
    };
}

use bindings::v0_2::ward::connector::types::Instance as WitInstance;
use types::{AuditPage, ConfigEntry, Credentials, Grant, PluginError, TestReport, UserPage};

/// The WIT world of the current contract version (a plugin that needs no
/// raw credentials); older versions are still loaded ([`ContractVersion`]).
pub const WORLD: &str = "ward:connector/plugin@0.2.0";

/// Epoch tick length; the CPU budget is counted in ticks.
const TICK: Duration = Duration::from_millis(10);
/// Linear-memory bytes a pooled slot keeps resident between instances
/// (rewritten rather than unmapped): covers a connector's stack, data and
/// the heap of a typical call; beyond it pages go back to the kernel.
const KEEP_RESIDENT: usize = 4 << 20;
/// Table bytes a pooled slot keeps resident between instances.
const KEEP_RESIDENT_TABLES: usize = 64 << 10;

/// Why the runtime could not be set up or a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// Engine, linker or client configuration failed.
    #[error("runtime configuration error: {0}")]
    Config(String),
    /// The file is not a valid WebAssembly component.
    #[error(
        "plugin file is not a valid WebAssembly component: {0}; rebuild it with `cargo build --target wasm32-wasip2`"
    )]
    Malformed(String),
    /// The component carries no manifest section.
    #[error(
        "plugin has no `ward-manifest` custom section: embed its ward.toml with `ward plugin pack --manifest ward.toml IN.wasm -o OUT.wasm` (any language) or build it with ward_sdk::export_connector! and a ward.toml next to Cargo.toml (Rust)"
    )]
    NoManifest,
    /// The manifest is invalid.
    #[error(transparent)]
    Manifest(#[from] ward_manifest::ManifestError),
    /// The component imports something Ward does not provide.
    #[error(
        "plugin `{plugin}` imports `{interface}`, which Ward does not provide; connectors may import only wasi:http/outgoing-handler, ward:connector/log and the WASI base"
    )]
    UnsupportedImport {
        /// Plugin key.
        plugin: String,
        /// The offending import.
        interface: String,
    },
    /// The component does not fit any supported `ward:connector` world.
    #[error(
        "plugin `{plugin}` does not implement a supported ward:connector contract (0.1.0 or 0.2.0): {message}; rebuild it against wit/v0.2 (or the Ward SDK)"
    )]
    Contract {
        /// Plugin key.
        plugin: String,
        /// What wasmtime reported.
        message: String,
    },
    /// The compiled-component cache could not be used.
    #[error("compiled-plugin cache at {path}: {message}")]
    Cache {
        /// Cache path.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

/// Settings of a [`Runtime`].
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where compiled components are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Outbound HTTP settings.
    pub egress: EgressConfig,
    /// Most plugin instances alive at once (pool size).
    pub max_instances: u32,
    /// Upper bound for any plugin's memory cap, in MiB.
    pub max_memory_mib: u32,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cache_dir: None,
            egress: EgressConfig::default(),
            max_instances: 64,
            max_memory_mib: 512,
        }
    }
}

/// Store data of one call.
pub struct HostState {
    table: ResourceTable,
    wasi: WasiCtx,
    http_ctx: WasiHttpCtx,
    http: caps::http::HttpBroker,
    log: caps::log::LogSink,
    limiter: Limiter,
    cpu_ticks: u64,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            hooks: &mut self.http,
            table: &mut self.table,
            ctx: &mut self.http_ctx,
        }
    }
}

/// Marker errors raised from inside the store so the call can tell a
/// budget overrun from a plugin bug.
#[derive(Debug, thiserror::Error)]
#[error("CPU budget exhausted")]
struct CpuExceeded;

#[derive(Debug, thiserror::Error)]
#[error("memory cap reached")]
struct MemoryExceeded;

struct Limiter {
    max_memory: usize,
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_memory {
            // Trapping (rather than failing the grow) stops the plugin at
            // once with a cause we can name, instead of letting its
            // allocator abort with an opaque `unreachable`.
            return Err(wasmtime::Error::new(MemoryExceeded));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

struct Inner {
    engine: Engine,
    linker: Linker<HostState>,
    egress: caps::http::EgressClient,
    cache_dir: Option<PathBuf>,
    max_memory_mib: u32,
    stop: Arc<AtomicBool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The engine, linker and shared clients. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("cache_dir", &self.inner.cache_dir)
            .finish()
    }
}

impl Runtime {
    /// Builds the engine and starts the epoch ticker.
    pub fn new(config: RuntimeConfig) -> Result<Runtime, RuntimeError> {
        let mut pool = PoolingAllocationConfig::new();
        let n = config.max_instances.max(1);
        pool.total_component_instances(n)
            .total_core_instances(n * 8)
            .total_memories(n * 2)
            .total_tables(n * 8)
            .total_stacks(n)
            .max_memories_per_component(4)
            .max_memory_size((config.max_memory_mib as usize) << 20)
            // A slot's memory is reset for its next instance by rewriting
            // the pages the last one dirtied (found with Linux's
            // PAGEMAP_SCAN where available), up to this many bytes, instead
            // of unmapping them and faulting zeroed pages back in on every
            // call; the rest is still returned to the kernel. The bound
            // caps what each warm slot keeps resident.
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT_TABLES)
            .pagemap_scan(Enabled::Auto);
        let mut wasm = wasmtime::Config::new();
        wasm.wasm_component_model(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&wasm).map_err(|e| RuntimeError::Config(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        caps::add_all(&mut linker)?;
        let egress = caps::http::EgressClient::new(&config.egress)?;
        if let Some(dir) = &config.cache_dir {
            std::fs::create_dir_all(dir).map_err(|e| RuntimeError::Cache {
                path: dir.clone(),
                message: e.to_string(),
            })?;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let ticker_engine = engine.clone();
        let ticker_stop = stop.clone();
        std::thread::Builder::new()
            .name("ward-epoch".into())
            .spawn(move || {
                while !ticker_stop.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    ticker_engine.increment_epoch();
                }
            })
            .map_err(|e| RuntimeError::Config(format!("cannot start epoch thread: {e}")))?;
        Ok(Runtime {
            inner: Arc::new(Inner {
                engine,
                linker,
                egress,
                cache_dir: config.cache_dir,
                max_memory_mib: config.max_memory_mib,
                stop,
            }),
        })
    }

    /// The engine every plugin of this runtime is compiled for and
    /// instantiated in, pooling allocator included. For tools that measure
    /// the runtime against wasmtime alone (`ward-bench calls`).
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Loads a plugin from component bytes, with no operator policy.
    pub fn load(&self, bytes: &[u8]) -> Result<Arc<Plugin>, RuntimeError> {
        self.load_with_policy(bytes, PluginPolicy::default())
    }

    /// Loads a plugin and attaches the operator's policy for it: every
    /// instance bound from the returned plugin runs with manifest ∩ policy
    /// (denied hosts and paths refused by the broker, refused secrets never
    /// substituted, limits lowered).
    pub fn load_with_policy(
        &self,
        bytes: &[u8],
        policy: PluginPolicy,
    ) -> Result<Arc<Plugin>, RuntimeError> {
        let manifest = Manifest::from_section(&read_manifest_section(bytes)?)?;
        let digest = hex::encode(Sha256::digest(bytes));
        let component = self.compile(bytes, &digest)?;
        let engine = &self.inner.engine;
        let mut imports = Vec::new();
        for (name, _) in component.component_type().imports(engine) {
            if !import_allowed(name) {
                return Err(RuntimeError::UnsupportedImport {
                    plugin: manifest.key.clone(),
                    interface: name.to_string(),
                });
            }
            imports.push(name.to_string());
        }
        let contract = |message: String| RuntimeError::Contract {
            plugin: manifest.key.clone(),
            message,
        };
        let exports: Vec<String> = component
            .component_type()
            .exports(engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(|e| contract(format!("{e:#}")))?;
        let contract = Contract::from_exports(pre, &exports).map_err(contract)?;
        let rate_headers = Arc::new(
            manifest
                .rate_limit
                .as_ref()
                .map(ward_manifest::AdvertisedLimit::header_names)
                .unwrap_or_default(),
        );
        Ok(Arc::new(Plugin {
            runtime: self.clone(),
            manifest: Arc::new(manifest),
            digest,
            imports,
            policy: Arc::new(policy),
            contract,
            rate_headers,
        }))
    }

    /// Loads a plugin file.
    pub fn load_file(&self, path: &Path) -> Result<Arc<Plugin>, RuntimeError> {
        let bytes = std::fs::read(path)
            .map_err(|e| RuntimeError::Malformed(format!("cannot read {}: {e}", path.display())))?;
        self.load(&bytes)
    }

    fn compile(&self, bytes: &[u8], digest: &str) -> Result<Component, RuntimeError> {
        let engine = &self.inner.engine;
        let Some(dir) = &self.inner.cache_dir else {
            return Component::new(engine, bytes)
                .map_err(|e| RuntimeError::Malformed(format!("{e:#}")));
        };
        use std::hash::{Hash, Hasher};
        let mut hasher = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let path = dir.join(format!("{digest}-{:016x}.cwasm", hasher.finish()));
        if path.exists() {
            match deserialize_cached(engine, &path) {
                Ok(component) => return Ok(component),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "discarding unusable compiled-plugin cache entry")
                }
            }
        }
        let component =
            Component::new(engine, bytes).map_err(|e| RuntimeError::Malformed(format!("{e:#}")))?;
        let serialized = component.serialize().map_err(|e| RuntimeError::Cache {
            path: path.clone(),
            message: format!("{e:#}"),
        })?;
        // Write-then-rename so a concurrent reader never sees half a file.
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let write = std::fs::write(&tmp, serialized).and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = write {
            tracing::warn!(path = %path.display(), error = %e, "cannot write compiled-plugin cache");
            let _ = std::fs::remove_file(&tmp);
        }
        Ok(component)
    }
}

#[allow(unsafe_code)]
fn deserialize_cached(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: the cache directory belongs to the daemon and holds only
    // files this function's caller wrote from `Component::serialize`, named
    // by the source digest and the engine's compatibility hash; wasmtime
    // additionally checks the header for engine compatibility. Anyone able
    // to write there can already replace the daemon's binary.
    unsafe { Component::deserialize_file(engine, path) }
}

/// Whether Ward provides the imported interface `name`.
pub fn import_allowed(name: &str) -> bool {
    const ALLOWED: &[&str] = &[
        "wasi:io/",
        "wasi:clocks/",
        "wasi:random/",
        "wasi:cli/",
        "wasi:filesystem/",
        "wasi:sockets/",
        "wasi:http/types@",
        "wasi:http/outgoing-handler@",
        "ward:connector/log@",
        "ward:connector/types@",
    ];
    ALLOWED.iter().any(|p| name.starts_with(p))
}

/// The component's manifest: a `ward-manifest` custom section at component
/// level (`ward plugin pack`) or inside a core module (the Rust SDK);
/// [`introspect::introspect`] decides.
pub fn read_manifest_section(bytes: &[u8]) -> Result<Vec<u8>, RuntimeError> {
    introspect::introspect(bytes)?
        .manifest
        .ok_or(RuntimeError::NoManifest)
}

/// A loaded plugin: manifest plus a ready-to-instantiate component.
pub struct Plugin {
    runtime: Runtime,
    manifest: Arc<Manifest>,
    digest: String,
    imports: Vec<String>,
    policy: Arc<PluginPolicy>,
    contract: Contract,
    /// Response headers the broker keeps: the manifest's rate-limit ones.
    rate_headers: Arc<Vec<String>>,
}

/// The component, ready to instantiate, as the contract version it
/// exports is called.
enum Contract {
    /// `ward:connector@0.1.0`: `exchange` always exported.
    V0_1(bindings::v0_1::PluginPre<HostState>),
    /// `ward:connector@0.2.0`, with or without the `exchange` interface.
    V0_2 {
        pre: wasmtime::component::InstancePre<HostState>,
        connector: ConnectorFuncs,
        exchange: Option<bindings::v0_2::exports::ward::connector::exchange::GuestIndices>,
    },
}

/// Where the 0.2 `connector` interface's functions sit in the component,
/// looked up once per plugin. A call type-checks only the function it
/// calls (the generated `GuestIndices::load` checks all four, a tenth of
/// a no-op call).
struct ConnectorFuncs {
    auth_url: wasmtime::component::ComponentExportIndex,
    test: wasmtime::component::ComponentExportIndex,
    fetch_audit: wasmtime::component::ComponentExportIndex,
    fetch_users: wasmtime::component::ComponentExportIndex,
}

impl ConnectorFuncs {
    fn new(pre: &wasmtime::component::InstancePre<HostState>) -> Result<ConnectorFuncs, String> {
        let component = pre.component();
        let interface = component
            .get_export_index(None, bindings::CONNECTOR_V0_2)
            .ok_or_else(|| format!("it does not export {}", bindings::CONNECTOR_V0_2))?;
        let func = |name: &str| {
            component
                .get_export_index(Some(&interface), name)
                .ok_or_else(|| {
                    format!(
                        "its {} interface has no `{name}` function",
                        bindings::CONNECTOR_V0_2
                    )
                })
        };
        Ok(ConnectorFuncs {
            auth_url: func("auth-url")?,
            test: func("test")?,
            fetch_audit: func("fetch-audit")?,
            fetch_users: func("fetch-users")?,
        })
    }
}

impl Contract {
    /// Picks the version by the component's `connector` export; the
    /// newest wins should a component export several.
    fn from_exports(
        pre: wasmtime::component::InstancePre<HostState>,
        exports: &[String],
    ) -> Result<Contract, String> {
        let version = exports
            .iter()
            .filter_map(|e| ContractVersion::of_connector_export(e))
            .max()
            .ok_or_else(|| {
                format!(
                    "it exports no ward:connector/connector interface (exports: {})",
                    exports.join(", ")
                )
            })?;
        match version {
            ContractVersion::V0_1 => bindings::v0_1::PluginPre::new(pre)
                .map(Contract::V0_1)
                .map_err(|e| format!("{e:#}")),
            ContractVersion::V0_2 => {
                let connector = ConnectorFuncs::new(&pre)?;
                let exchange = if exports.iter().any(|e| e == bindings::EXCHANGE_V0_2) {
                    Some(
                        bindings::v0_2::exports::ward::connector::exchange::GuestIndices::new(&pre)
                            .map_err(|e| format!("{e:#}"))?,
                    )
                } else {
                    None
                };
                Ok(Contract::V0_2 {
                    pre,
                    connector,
                    exchange,
                })
            }
        }
    }
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("key", &self.manifest.key)
            .field("version", &self.manifest.version)
            .field("digest", &self.digest)
            .field("contract_version", &self.contract_version())
            .finish()
    }
}

impl Plugin {
    /// The contract version the component exports: `0.1.0` or `0.2.0`.
    pub fn contract_version(&self) -> &'static str {
        self.contract().as_str()
    }

    /// The world the component implements, as `inspect` reports it
    /// (`ward:connector/plugin@0.1.0`, `…/plugin@0.2.0` or
    /// `…/plugin-with-exchange@0.2.0`).
    pub fn world(&self) -> &'static str {
        match &self.contract {
            Contract::V0_1(_) => "ward:connector/plugin@0.1.0",
            Contract::V0_2 { exchange: None, .. } => WORLD,
            Contract::V0_2 {
                exchange: Some(_), ..
            } => "ward:connector/plugin-with-exchange@0.2.0",
        }
    }

    /// The contract version the component exports, typed.
    pub fn contract(&self) -> ContractVersion {
        match self.contract {
            Contract::V0_1(_) => ContractVersion::V0_1,
            Contract::V0_2 { .. } => ContractVersion::V0_2,
        }
    }

    /// Whether the component exports `exchange` (and so can receive raw
    /// credentials when its manifest asks for it). Every 0.1 component
    /// does; a 0.2 component only in world `plugin-with-exchange`.
    pub fn exports_exchange(&self) -> bool {
        match &self.contract {
            Contract::V0_1(_) => true,
            Contract::V0_2 { exchange, .. } => exchange.is_some(),
        }
    }

    /// The embedded manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// SHA-256 of the component file, hex.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The component's imports (interface names).
    pub fn imports(&self) -> &[String] {
        &self.imports
    }

    /// The operator policy attached at load.
    pub fn policy(&self) -> &PluginPolicy {
        &self.policy
    }

    /// Requested and effective permissions (manifest ∩ policy).
    /// The risk list names raw-credential exposure only where the
    /// component's `exchange` export gets credentials.
    pub fn effective(&self) -> Effective {
        let exchange = match &self.contract {
            Contract::V0_1(_) => ward_manifest::ExchangeExport::Always,
            Contract::V0_2 {
                exchange: Some(_), ..
            } => ward_manifest::ExchangeExport::WhenAsked,
            Contract::V0_2 { exchange: None, .. } => ward_manifest::ExchangeExport::Never,
        };
        ward_manifest::effective_for(&self.manifest, &self.policy, exchange)
    }

    /// Validates an instance's configuration, fills the HTTP grants and
    /// binds the instance's secrets. `limits` narrows the manifest's limits
    /// (the operator may lower, never raise).
    pub fn bind(
        self: &Arc<Self>,
        instance_id: &str,
        config: &BTreeMap<String, String>,
        secrets: SecretSet,
        limits: Option<Limits>,
    ) -> Result<Bound, ward_manifest::ManifestError> {
        let config = self.manifest.validate_config(config)?;
        let mut grants = self.manifest.grants_for(&config)?;
        // Refused secrets are unbound from every grant, so the broker never
        // substitutes them; its policy check names the refusal.
        for grant in &mut grants {
            grant.secrets.retain(|s| !self.policy.refuses_secret(s));
        }
        let declared = self.policy.limits(self.manifest.limits);
        let mut limits = match limits {
            Some(l) => narrow(declared, l),
            None => declared,
        };
        limits.memory_mib = limits.memory_mib.min(self.runtime.inner.max_memory_mib);
        let config: Vec<ConfigEntry> = config
            .into_iter()
            .map(|(name, value)| ConfigEntry { name, value })
            .collect();
        let auth = auth_kind(&self.manifest, &secrets);
        Ok(Bound {
            plugin: self.clone(),
            instance_id: instance_id.to_string(),
            instance: bindings::v0_2::ward::connector::types::Instance { config, auth },
            grants: Arc::new(grants),
            redactor: secrets.redactor(),
            secrets,
            limits,
        })
    }
}

/// Reserved config entry telling a 0.1 plugin which auth an instance uses
/// (`api-token`, `oauth2` or `basic`); 0.2 plugins get a typed
/// `auth-kind` instead. Manifest field names cannot contain `.`, so it
/// never collides with a declared field.
pub const AUTH_CONFIG_ENTRY: &str = bindings::adapt::AUTH_CONFIG_ENTRY;

/// Which declared auth the bound secrets belong to, in manifest order: the
/// first whose marker secret (api-token/basic: its `secret`; oauth2:
/// `access_token`) is bound. `None` before credentials exist (exchange).
fn auth_kind(manifest: &Manifest, secrets: &SecretSet) -> Option<types::AuthKind> {
    manifest
        .auth
        .iter()
        .find(|a| secrets.contains(a.marker_secret()))
        .map(|a| match a {
            ward_manifest::Auth::ApiToken { .. } => types::AuthKind::ApiToken,
            ward_manifest::Auth::Oauth2 { .. } => types::AuthKind::Oauth2,
            ward_manifest::Auth::Basic { .. } => types::AuthKind::Basic,
        })
}

fn narrow(declared: Limits, asked: Limits) -> Limits {
    Limits {
        memory_mib: declared.memory_mib.min(asked.memory_mib),
        cpu_ms: declared.cpu_ms.min(asked.cpu_ms),
        wall_ms: declared.wall_ms.min(asked.wall_ms),
        requests_per_call: declared.requests_per_call.min(asked.requests_per_call),
        response_bytes: declared.response_bytes.min(asked.response_bytes),
        request_bytes: declared.request_bytes.min(asked.request_bytes),
        output_bytes: declared.output_bytes.min(asked.output_bytes),
        page_items: declared.page_items.min(asked.page_items),
    }
}

/// Why a call produced no result.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// `exchange` was asked of a contract-0.2 component that does not
    /// export it (world `plugin`); nothing ran.
    #[error(
        "plugin `{plugin}` does not export `exchange` (ward:connector@0.2.0 world `plugin`): the host stores and exchanges its credentials; remove `exchange = \"plugin\"` from its manifest's auth, or have the vendor build it for world `plugin-with-exchange`"
    )]
    NoExchange {
        /// Plugin key.
        plugin: String,
    },
    /// The plugin reported a contract error (the host acts on its case).
    #[error("{}", describe_plugin_error(.0))]
    Plugin(PluginError),
    /// The plugin used more CPU than its budget.
    #[error(
        "plugin `{plugin}` exceeded its CPU budget of {cpu_ms} ms during {op} and was stopped; if the provider's pages are legitimately heavy, the plugin vendor must raise limits.cpu_ms"
    )]
    CpuExceeded {
        /// Plugin key.
        plugin: String,
        /// Operation.
        op: &'static str,
        /// Budget.
        cpu_ms: u32,
    },
    /// The plugin tried to grow memory past its cap.
    #[error(
        "plugin `{plugin}` tried to use more than its {memory_mib} MiB memory cap during {op} and was stopped"
    )]
    MemoryExceeded {
        /// Plugin key.
        plugin: String,
        /// Operation.
        op: &'static str,
        /// Cap.
        memory_mib: u32,
    },
    /// The call did not finish within its wall-clock timeout.
    #[error("plugin `{plugin}` did not finish {op} within {wall_ms} ms and was stopped")]
    Timeout {
        /// Plugin key.
        plugin: String,
        /// Operation.
        op: &'static str,
        /// Timeout.
        wall_ms: u32,
    },
    /// The plugin trapped (a bug: panic, stack overflow, bad memory access).
    #[error("plugin `{plugin}` crashed during {op}: {message}")]
    Trap {
        /// Plugin key.
        plugin: String,
        /// Operation.
        op: &'static str,
        /// Trap description.
        message: String,
    },
    /// The plugin's result broke an output limit or a per-field cap
    /// (error and check messages 4 KiB, cursor 64 KiB, event id 512 bytes).
    #[error(
        "plugin `{plugin}` returned too much from {op}: {message}; nothing of the result was stored (a connector bug: report it to the plugin's vendor)"
    )]
    OutputTooLarge {
        /// Plugin key.
        plugin: String,
        /// Operation.
        op: &'static str,
        /// Which limit.
        message: String,
    },
    /// The plugin's result is implausible (an event time outside
    /// [1990-01-01, now + 1 day]): a plugin error, nothing is stored.
    #[error(
        "plugin `{plugin}` returned an invalid result from {op}: {message}; nothing of the result was stored (a connector bug: report it to the plugin's vendor)"
    )]
    InvalidOutput {
        /// Plugin key.
        plugin: String,
        /// Operation.
        op: &'static str,
        /// What is wrong, naming the field.
        message: String,
    },
}

fn describe_plugin_error(e: &PluginError) -> String {
    match e {
        PluginError::Unauthorized(m) => format!("credentials rejected: {m}"),
        PluginError::Forbidden(m) => format!("permission missing: {m}"),
        PluginError::RateLimited(r) => {
            format!("rate limited for {} ms: {}", r.retry_after_ms, r.message)
        }
        PluginError::InvalidConfig(m) => format!("invalid configuration: {m}"),
        PluginError::Unavailable(m) => format!("provider unavailable: {m}"),
        PluginError::Internal(m) => format!("connector error: {m}"),
    }
}

/// What a call did, besides its result: everything the security team and
/// the operator may want to see.
#[derive(Debug, Clone)]
pub struct CallReport<T> {
    /// The result.
    pub result: Result<T, CallError>,
    /// Every outbound request, allowed or denied.
    pub egress: Vec<EgressEntry>,
    /// Log lines the plugin wrote.
    pub logs: Vec<LogLine>,
    /// Log lines dropped over the per-call cap.
    pub logs_dropped: u64,
    /// What the plugin printed to stdout and stderr (capped, redacted).
    pub stdio: String,
    /// How many secret occurrences were redacted from the plugin's output.
    pub redactions: usize,
    /// Wall-clock duration.
    pub elapsed: Duration,
}

enum Op<'a> {
    AuthUrl(&'a str, &'a str),
    Exchange(&'a Grant),
    Test,
    FetchAudit(i64, Option<&'a str>),
    FetchUsers(Option<&'a str>),
}

impl Op<'_> {
    fn name(&self) -> &'static str {
        match self {
            Op::AuthUrl(..) => "auth-url",
            Op::Exchange(..) => "exchange",
            Op::Test => "test",
            Op::FetchAudit(..) => "fetch-audit",
            Op::FetchUsers(..) => "fetch-users",
        }
    }
}

enum Out {
    Url(String),
    Credentials(Credentials),
    Report(TestReport),
    Audit(AuditPage),
    Users(UserPage),
}

/// A request the host sends on an instance's behalf ([`Bound::host_request`]).
#[derive(Debug, Clone)]
pub struct HostRequest {
    /// HTTP method, upper case.
    pub method: String,
    /// Absolute URL; must fall under one of the instance's grants.
    pub url: String,
    /// Headers; values may hold `{{secret:NAME}}` references.
    pub headers: Vec<(String, String)>,
    /// Body; may hold references when the grant has `secrets_in_body`.
    pub body: Vec<u8>,
}

/// A response to a [`HostRequest`].
#[derive(Clone)]
pub struct HostResponse {
    /// Status code.
    pub status: u16,
    /// Headers (names lower case).
    pub headers: Vec<(String, String)>,
    /// Body, capped at the instance's `limits.response_bytes`.
    pub body: Vec<u8>,
}

impl std::fmt::Debug for HostResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The body of a token response is a credential.
        f.debug_struct("HostResponse")
            .field("status", &self.status)
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

/// What a [`Bound::host_request`] did.
#[derive(Debug, Clone)]
pub struct HostReport {
    /// The response, or why there is none (denied by policy, transport).
    pub result: Result<HostResponse, String>,
    /// The egress log entries of the request.
    pub egress: Vec<EgressEntry>,
}

/// A plugin bound to one instance's configuration and secrets.
#[derive(Clone)]
pub struct Bound {
    plugin: Arc<Plugin>,
    instance_id: String,
    /// The configuration and auth kind every call receives.
    instance: bindings::v0_2::ward::connector::types::Instance,
    grants: Arc<Vec<HttpGrant>>,
    secrets: SecretSet,
    redactor: Redactor,
    limits: Limits,
}

impl std::fmt::Debug for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bound")
            .field("plugin", &self.plugin.manifest.key)
            .field("instance", &self.instance_id)
            .field("secrets", &self.secrets)
            .finish()
    }
}

macro_rules! typed_call {
    ($self:ident, $op:expr, $variant:ident) => {{
        let op = $op;
        let name = op.name();
        let report = $self.call(op).await;
        let plugin = $self.plugin.manifest.key.clone();
        CallReport {
            result: report.result.and_then(|out| match out {
                Out::$variant(v) => Ok(v),
                // `call` picks the variant from the op; a mismatch is a host
                // bug, reported rather than trusted.
                _ => Err(CallError::Trap {
                    plugin,
                    op: name,
                    message: "host error: result does not match the call".into(),
                }),
            }),
            egress: report.egress,
            logs: report.logs,
            logs_dropped: report.logs_dropped,
            stdio: report.stdio,
            redactions: report.redactions,
            elapsed: report.elapsed,
        }
    }};
}

impl Bound {
    /// The plugin.
    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.plugin
    }

    /// The HTTP grants filled for this instance.
    pub fn grants(&self) -> &[HttpGrant] {
        &self.grants
    }

    /// The effective limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Calls `auth-url`.
    pub async fn auth_url(&self, redirect_uri: &str, state: &str) -> CallReport<String> {
        typed_call!(self, Op::AuthUrl(redirect_uri, state), Url)
    }

    /// Calls `exchange`. The returned credentials are the only secret values
    /// that ever come out of a plugin; they are not redacted.
    pub async fn exchange(&self, grant: &Grant) -> CallReport<Credentials> {
        typed_call!(self, Op::Exchange(grant), Credentials)
    }

    /// Calls `test`.
    pub async fn test(&self) -> CallReport<TestReport> {
        typed_call!(self, Op::Test, Report)
    }

    /// Calls `fetch-audit`.
    pub async fn fetch_audit(&self, since_ms: i64, cursor: Option<&str>) -> CallReport<AuditPage> {
        typed_call!(self, Op::FetchAudit(since_ms, cursor), Audit)
    }

    /// Calls `fetch-users`.
    pub async fn fetch_users(&self, cursor: Option<&str>) -> CallReport<UserPage> {
        typed_call!(self, Op::FetchUsers(cursor), Users)
    }

    /// Sends a request the host itself originates for this instance (for
    /// example an OAuth2 refresh) through the same broker as plugin
    /// requests: it must fall under one of the instance's grants, secret
    /// references in headers or body are substituted only as that grant
    /// allows, the address rules apply, and it lands in the egress log
    /// (returned here, like a call's) without secret values.
    pub async fn host_request(&self, request: HostRequest) -> HostReport {
        use http_body_util::BodyExt as _;
        use wasmtime_wasi_http::WasiHttpHooks as _;
        // The host reads the provider's real answer (a refresh must store
        // the new tokens), so its responses are not scrubbed.
        let mut broker = self.broker(self.redactor.clone(), false);
        let log = broker.egress_log();
        let result = async {
            let mut builder = http::Request::builder()
                .method(request.method.as_str())
                .uri(request.url.as_str());
            for (name, value) in &request.headers {
                builder = builder.header(name.as_str(), value.as_str());
            }
            let body: wasmtime_wasi_http::WasiBody =
                http_body_util::Full::new(bytes::Bytes::from(request.body))
                    .map_err(|never| match never {})
                    .boxed_unsync();
            let built = builder
                .body(body)
                .map_err(|e| format!("cannot build host request: {e}"))?;
            let io: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send> =
                Box::new(async { Ok(()) });
            let sent = Box::into_pin(broker.send_request(built, None, io)).await;
            let (response, _io) = sent.map_err(|e| format!("{e:?}"))?;
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
                .collect();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("reading the response: {e:?}"))?
                .to_bytes()
                .to_vec();
            Ok(HostResponse {
                status,
                headers,
                body,
            })
        }
        .await;
        let egress = log.close();
        HostReport { result, egress }
    }

    /// The HTTP broker of one call or host request: the only place it is
    /// built. `log_redactor` redacts its egress rows; `scrub_responses`
    /// replaces stored values in responses by their references (for the
    /// guest; not for the host's own requests).
    fn broker(&self, log_redactor: Redactor, scrub_responses: bool) -> caps::http::HttpBroker {
        caps::http::HttpBroker {
            client: self.plugin.runtime.inner.egress.clone(),
            grants: self.grants.clone(),
            secrets: self.secrets.clone(),
            // Built once at bind time: the automaton over every encoding is
            // not free and is the same for every call of the instance.
            stored: self.redactor.clone(),
            log_redactor,
            scrub_responses,
            limits: self.limits,
            policy: self.plugin.policy.clone(),
            requests: 0,
            log: caps::http::EgressLog::default(),
            plugin: self.plugin.manifest.key.clone(),
            instance: self.instance_id.clone(),
            rate_headers: self.plugin.rate_headers.clone(),
            buffer: caps::http::ResponseBuffer::new(u64::from(self.limits.memory_mib) << 20),
        }
    }

    /// The stored values plus what the operator entered for `exchange`.
    fn redactor_with(&self, grant: &Grant) -> Redactor {
        let entered: Vec<&str> = match grant {
            Grant::ApiToken(token) => vec![token.as_str()],
            Grant::Basic(b) => vec![b.password.as_str()],
            Grant::OauthCode(c) => std::iter::once(c.code.as_str())
                .chain(c.code_verifier.as_deref())
                .collect(),
        };
        Redactor::new(
            self.secrets
                .pairs()
                .chain(entered.into_iter().map(|v| ("exchange-grant", v))),
        )
    }

    async fn call(&self, op: Op<'_>) -> CallReport<Out> {
        let started = Instant::now();
        let op_name = op.name();
        let plugin_key = self.plugin.manifest.key.clone();
        let inner = &self.plugin.runtime.inner;
        let sandbox = caps::wasi::sandbox();
        // During `exchange` the grant the operator entered (API token,
        // password, OAuth code) is redacted from the egress log too.
        let redactor = match &op {
            Op::Exchange(grant) => self.redactor_with(grant),
            _ => self.redactor.clone(),
        };
        let http = self.broker(redactor.clone(), true);
        let egress_log = http.egress_log();
        let state = HostState {
            table: ResourceTable::new(),
            wasi: sandbox.ctx,
            http_ctx: WasiHttpCtx::new(),
            http,
            log: caps::log::LogSink::default(),
            limiter: Limiter {
                max_memory: (self.limits.memory_mib as usize) << 20,
            },
            cpu_ticks: 0,
        };
        let mut store = Store::new(&inner.engine, state);
        store.limiter(|s| &mut s.limiter);
        let budget = u64::from(self.limits.cpu_ms)
            .div_ceil(TICK.as_millis() as u64)
            .max(1);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |mut ctx| {
            let state = ctx.data_mut();
            state.cpu_ticks += 1;
            if state.cpu_ticks > budget {
                return Err(wasmtime::Error::new(CpuExceeded));
            }
            // Yield each tick so a busy plugin cannot starve other tasks on
            // this executor thread.
            Ok(UpdateDeadline::Yield(1))
        });

        let wall = Duration::from_millis(u64::from(self.limits.wall_ms));
        let outcome = {
            let store = &mut store;
            let run = async move {
                match &self.plugin.contract {
                    Contract::V0_1(pre) => run_v0_1(pre, store, &self.instance, op).await,
                    Contract::V0_2 {
                        pre,
                        connector,
                        exchange,
                    } => {
                        run_v0_2(
                            pre,
                            connector,
                            exchange.as_ref(),
                            store,
                            &self.instance,
                            op,
                            &self.plugin.manifest.key,
                        )
                        .await
                    }
                }
            };
            tokio::time::timeout(wall, run).await
        };

        let mut redactions = 0;
        let result = match outcome {
            Err(_) => Err(CallError::Timeout {
                plugin: plugin_key.clone(),
                op: op_name,
                wall_ms: self.limits.wall_ms,
            }),
            Ok(Err(trap)) => Err(classify_trap(&trap, &plugin_key, op_name, self.limits)),
            Ok(Ok(Err(mut plugin_error))) => match output::check_error(&plugin_error) {
                Err(refused) => Err(refused_output(refused, &plugin_key, op_name, &redactor)),
                Ok(()) => {
                    redactions += output::redact_error(&mut plugin_error, &redactor);
                    Err(CallError::Plugin(plugin_error))
                }
            },
            Ok(Ok(Ok(mut out))) => match output::check(&out, self.limits, caps::http::now_ms()) {
                Err(refused) => Err(refused_output(refused, &plugin_key, op_name, &redactor)),
                Ok(()) => {
                    redactions += output::redact(&mut out, &redactor);
                    Ok(out)
                }
            },
        };

        let state = store.into_data();
        // Requests still in flight when the call stopped become `aborted`
        // rows; the guest's pending futures are dropped with the state.
        let egress = egress_log.close();
        let mut logs = state.log.lines;
        for line in &mut logs {
            redactions += redactor.redact(&mut line.message);
        }
        let mut stdio = String::from_utf8_lossy(&sandbox.stdout.contents()).into_owned();
        stdio.push_str(&String::from_utf8_lossy(&sandbox.stderr.contents()));
        redactions += redactor.redact(&mut stdio);
        if redactions > 0 {
            tracing::warn!(plugin = %plugin_key, instance = %self.instance_id, op = op_name, redactions, "plugin output contained secret values; redacted");
        }
        for line in &logs {
            tracing::info!(plugin = %plugin_key, instance = %self.instance_id, level = line.level, "plugin: {}", line.message);
        }
        CallReport {
            result,
            egress,
            logs,
            logs_dropped: state.log.dropped,
            stdio,
            redactions,
            elapsed: started.elapsed(),
        }
    }
}

/// Runs one call on a 0.1 component: the instance's configuration gets the
/// reserved `ward.auth` entry, results are adapted to the internal model.
async fn run_v0_1(
    pre: &bindings::v0_1::PluginPre<HostState>,
    store: &mut Store<HostState>,
    instance: &bindings::v0_2::ward::connector::types::Instance,
    op: Op<'_>,
) -> wasmtime::Result<Result<Out, PluginError>> {
    use bindings::adapt;
    let plugin = pre.instantiate_async(&mut *store).await?;
    let api = plugin.ward_connector_connector();
    let config = adapt::config(instance);
    Ok(match op {
        Op::AuthUrl(redirect, state) => adapt::result(
            api.call_auth_url(&mut *store, &config, redirect, state)
                .await?,
            Out::Url,
        ),
        Op::Exchange(grant) => {
            // `exchange` runs before credentials exist: no `ward.auth`.
            let config = adapt::config(&bindings::v0_2::ward::connector::types::Instance {
                config: instance.config.clone(),
                auth: None,
            });
            adapt::result(
                api.call_exchange(&mut *store, &config, &adapt::grant(grant))
                    .await?,
                |c| Out::Credentials(adapt::credentials(c)),
            )
        }
        Op::Test => adapt::result(api.call_test(&mut *store, &config).await?, |r| {
            Out::Report(adapt::test_report(r))
        }),
        Op::FetchAudit(since, cursor) => adapt::result(
            api.call_fetch_audit(&mut *store, &config, since, cursor)
                .await?,
            |p| Out::Audit(adapt::audit_page(p)),
        ),
        Op::FetchUsers(cursor) => adapt::result(
            api.call_fetch_users(&mut *store, &config, cursor).await?,
            |p| Out::Users(adapt::user_page(p)),
        ),
    })
}

/// Runs one call on a 0.2 component. `exchange` on a component that does
/// not export it is refused before anything runs.
async fn run_v0_2(
    pre: &wasmtime::component::InstancePre<HostState>,
    connector: &ConnectorFuncs,
    exchange: Option<&bindings::v0_2::exports::ward::connector::exchange::GuestIndices>,
    store: &mut Store<HostState>,
    instance: &WitInstance,
    op: Op<'_>,
    plugin_key: &str,
) -> wasmtime::Result<Result<Out, PluginError>> {
    if let Op::Exchange(grant) = op {
        let Some(exchange) = exchange else {
            return Err(wasmtime::Error::new(NoExchange(plugin_key.to_string())));
        };
        let component = pre.instantiate_async(&mut *store).await?;
        let api = exchange.load(&mut *store, &component)?;
        let instance = bindings::v0_2::ward::connector::types::Instance {
            config: instance.config.clone(),
            auth: None,
        };
        return Ok(api
            .call_exchange(&mut *store, &instance, grant)
            .await?
            .map(Out::Credentials));
    }
    let component = pre.instantiate_async(&mut *store).await?;
    Ok(match op {
        Op::AuthUrl(redirect, state) => {
            let f = component
                .get_typed_func::<(&WitInstance, &str, &str), (Result<String, PluginError>,)>(
                    &mut *store,
                    &connector.auth_url,
                )?;
            let (out,) = f
                .call_async(&mut *store, (instance, redirect, state))
                .await?;
            out.map(Out::Url)
        }
        Op::Test => {
            let f = component
                .get_typed_func::<(&WitInstance,), (Result<TestReport, PluginError>,)>(
                    &mut *store,
                    &connector.test,
                )?;
            let (out,) = f.call_async(&mut *store, (instance,)).await?;
            out.map(Out::Report)
        }
        Op::FetchAudit(since, cursor) => {
            let f = component.get_typed_func::<
                (&WitInstance, types::Timestamp, Option<&str>),
                (Result<AuditPage, PluginError>,),
            >(&mut *store, &connector.fetch_audit)?;
            let (out,) = f.call_async(&mut *store, (instance, since, cursor)).await?;
            out.map(Out::Audit)
        }
        Op::FetchUsers(cursor) => {
            let f = component
                .get_typed_func::<(&WitInstance, Option<&str>), (Result<UserPage, PluginError>,)>(
                    &mut *store,
                    &connector.fetch_users,
                )?;
            let (out,) = f.call_async(&mut *store, (instance, cursor)).await?;
            out.map(Out::Users)
        }
        Op::Exchange(_) => return Err(wasmtime::Error::new(NoExchange(plugin_key.to_string()))),
    })
}

/// Marker: `exchange` asked of a 0.2 component that does not export it.
#[derive(Debug, thiserror::Error)]
#[error("plugin `{0}` does not export `exchange`")]
struct NoExchange(String);

/// The call error for a result [`output::check`] refused; the message names
/// the field and is redacted like any plugin text.
fn refused_output(
    refused: output::Refused,
    plugin: &str,
    op: &'static str,
    redactor: &Redactor,
) -> CallError {
    match refused {
        output::Refused::TooLarge(message) => CallError::OutputTooLarge {
            plugin: plugin.to_string(),
            op,
            message: redactor.redacted(&message),
        },
        output::Refused::Invalid(message) => CallError::InvalidOutput {
            plugin: plugin.to_string(),
            op,
            message: redactor.redacted(&message),
        },
    }
}

fn classify_trap(
    error: &wasmtime::Error,
    plugin: &str,
    op: &'static str,
    limits: Limits,
) -> CallError {
    if error.downcast_ref::<CpuExceeded>().is_some() {
        return CallError::CpuExceeded {
            plugin: plugin.to_string(),
            op,
            cpu_ms: limits.cpu_ms,
        };
    }
    if error.downcast_ref::<NoExchange>().is_some() {
        return CallError::NoExchange {
            plugin: plugin.to_string(),
        };
    }
    if error.downcast_ref::<MemoryExceeded>().is_some() {
        return CallError::MemoryExceeded {
            plugin: plugin.to_string(),
            op,
            memory_mib: limits.memory_mib,
        };
    }
    let message = match error.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::StackOverflow) => "stack overflow (unbounded recursion)".to_string(),
        // Rust keeps its stack in linear memory: runaway recursion ends
        // here rather than in a wasm stack overflow.
        Some(wasmtime::Trap::MemoryOutOfBounds) => {
            "out of bounds memory access (a plugin bug; runaway recursion overflowing the in-memory stack ends this way)".to_string()
        }
        Some(trap) => format!("{trap}"),
        None => format!("{error:#}"),
    };
    CallError::Trap {
        plugin: plugin.to_string(),
        op,
        message,
    }
}
