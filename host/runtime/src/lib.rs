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
mod output;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use ward_manifest::{Effective, HttpGrant, Limits, Manifest, PluginPolicy};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{
    Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, UpdateDeadline,
};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

pub use caps::http::{EgressConfig, EgressEntry, Refusal};
pub use caps::log::LogLine;
pub use caps::secrets::{Redactor, SecretSet};
pub use output::{
    MAX_CURSOR_BYTES, MAX_EVENT_FUTURE_MS, MAX_EVENT_ID_BYTES, MAX_MESSAGE_BYTES, MIN_EVENT_TIME_MS,
};

#[allow(missing_docs)]
mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "ward:connector/plugin",
        imports: { default: tracing },
        exports: { default: async },
        with: {
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        },
        require_store_data_send: true,
    });
}

/// The contract's records, as the host sees them.
pub mod types {
    /// The contract's `error` variant: a failure the plugin reports.
    pub use crate::bindings::ward::connector::types::Error as PluginError;
    pub use crate::bindings::ward::connector::types::{
        Actor, ActorKind, AuditPage, BasicCredentials, Check, ConfigEntry, Credentials, Event,
        Grant, OauthCode, Outcome, RateLimit, Secret, Target, TestReport, Timestamp, User,
        UserPage,
    };
}

use types::{AuditPage, ConfigEntry, Credentials, Grant, PluginError, TestReport, UserPage};

/// The WIT world every plugin implements.
pub const WORLD: &str = "ward:connector/plugin@0.1.0";

/// Epoch tick length; the CPU budget is counted in ticks.
const TICK: Duration = Duration::from_millis(10);

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
        "plugin has no `ward-manifest` custom section: build it with ward_sdk::export_connector! and a ward.toml next to Cargo.toml"
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
    /// The component does not fit the `ward:connector/plugin` world.
    #[error("plugin `{plugin}` does not implement the ward:connector@0.1.0 contract: {message}")]
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
            .max_memory_size((config.max_memory_mib as usize) << 20);
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
        let pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(|e| contract(format!("{e:#}")))?;
        let pre = bindings::PluginPre::new(pre).map_err(|e| contract(format!("{e:#}")))?;
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
            pre,
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

fn import_allowed(name: &str) -> bool {
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

/// Finds the `ward-manifest` custom section anywhere in the component,
/// including inside nested core modules (where the linker puts it).
pub fn read_manifest_section(bytes: &[u8]) -> Result<Vec<u8>, RuntimeError> {
    let mut found: Option<Vec<u8>> = None;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| RuntimeError::Malformed(e.to_string()))?;
        if let wasmparser::Payload::CustomSection(reader) = payload
            && reader.name() == ward_manifest::SECTION
        {
            match &found {
                None => found = Some(reader.data().to_vec()),
                Some(previous) if previous.as_slice() == reader.data() => {}
                Some(_) => {
                    return Err(RuntimeError::Malformed(
                        "component carries two different ward-manifest sections".into(),
                    ));
                }
            }
        }
    }
    found.ok_or(RuntimeError::NoManifest)
}

/// A loaded plugin: manifest plus a ready-to-instantiate component.
pub struct Plugin {
    runtime: Runtime,
    manifest: Arc<Manifest>,
    digest: String,
    imports: Vec<String>,
    policy: Arc<PluginPolicy>,
    pre: bindings::PluginPre<HostState>,
    /// Response headers the broker keeps: the manifest's rate-limit ones.
    rate_headers: Arc<Vec<String>>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("key", &self.manifest.key)
            .field("version", &self.manifest.version)
            .field("digest", &self.digest)
            .finish()
    }
}

impl Plugin {
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
    pub fn effective(&self) -> Effective {
        ward_manifest::effective(&self.manifest, &self.policy)
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
        let mut config: Vec<ConfigEntry> = config
            .into_iter()
            .map(|(name, value)| ConfigEntry { name, value })
            .collect();
        if let Some(kind) = auth_kind(&self.manifest, &secrets) {
            config.push(ConfigEntry {
                name: AUTH_CONFIG_ENTRY.to_string(),
                value: kind.to_string(),
            });
        }
        Ok(Bound {
            plugin: self.clone(),
            instance_id: instance_id.to_string(),
            config,
            grants: Arc::new(grants),
            redactor: secrets.redactor(),
            secrets,
            limits,
        })
    }
}

/// Reserved config entry telling a plugin which auth an instance uses
/// (`api-token`, `oauth2` or `basic`). Manifest field names cannot contain
/// `.`, so it never collides with a declared field.
pub const AUTH_CONFIG_ENTRY: &str = "ward.auth";

/// Which declared auth the bound secrets belong to, in manifest order: the
/// first whose marker secret (api-token/basic: its `secret`; oauth2:
/// `access_token`) is bound. `None` before credentials exist (exchange).
fn auth_kind(manifest: &Manifest, secrets: &SecretSet) -> Option<&'static str> {
    manifest
        .auth
        .iter()
        .find(|a| secrets.contains(a.marker_secret()))
        .map(|a| a.kind())
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
    config: Vec<ConfigEntry>,
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
        let config = &self.config;
        let outcome = {
            let store = &mut store;
            let run = async move {
                let instance = self.plugin.pre.instantiate_async(&mut *store).await?;
                let api = instance.ward_connector_connector();
                let out: Result<Out, PluginError> = match op {
                    Op::AuthUrl(redirect, state) => api
                        .call_auth_url(&mut *store, config, redirect, state)
                        .await?
                        .map(Out::Url),
                    Op::Exchange(grant) => api
                        .call_exchange(&mut *store, config, grant)
                        .await?
                        .map(Out::Credentials),
                    Op::Test => api.call_test(&mut *store, config).await?.map(Out::Report),
                    Op::FetchAudit(since, cursor) => api
                        .call_fetch_audit(&mut *store, config, since, cursor)
                        .await?
                        .map(Out::Audit),
                    Op::FetchUsers(cursor) => api
                        .call_fetch_users(&mut *store, config, cursor)
                        .await?
                        .map(Out::Users),
                };
                wasmtime::Result::Ok(out)
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
