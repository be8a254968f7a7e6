//! The Ward daemon's core, shared by the REST API, the CLI and the demo.
//!
//! - [`config`]: the `ward.toml` the operator writes, with defaults.
//! - [`registry`]: which plugins are installed, signed, approved and what
//!   they may do (manifest ∩ operator policy).
//! - [`connect`]: exchange → encrypted credentials → test.
//! - [`consent`]: OAuth codes (Ward's callback or the client's) → [`connect`],
//!   with the single-use `state` kept until the exchange reaches a verdict.
//! - [`instances`]: what an operator does to instances (create, reconnect,
//!   Test now, disable, update, delete, overview), for every front end.
//! - [`ingest`]: pulling pages from a bound plugin into the store, with
//!   exactly-once commits, rate-limit waits and transient-error backoff.
//! - [`scheduler`]: one worker per instance: backfill, then poll; shared
//!   rate budgets; status.
//! - [`refresh`]: host-side OAuth2 refresh, one at a time per instance.
//! - [`usage`]: declared vs used, from the egress log, with a narrowing
//!   `[policy.KEY]`.
//! - [`bundled`]: the connectors compiled into the binary.
//! - sinks (`ward-sinks`): delivery of stored events to SIEMs and files;
//!   built here, started by [`Daemon::start_sinks`], stopped by
//!   [`Daemon::shutdown`].

use std::sync::Arc;

pub mod budget;
pub mod bundled;
pub mod config;
pub mod connect;
pub mod consent;
pub mod ingest;
pub mod instances;
pub mod metrics;
pub mod refresh;
pub mod registry;
pub mod scheduler;
mod token;
pub mod usage;

pub use config::Config;
pub use registry::Registry;
pub use scheduler::Scheduler;

/// Everything a running daemon shares between the API, the scheduler and
/// the CLI. Cheap to clone.
#[derive(Clone)]
pub struct Daemon {
    /// The store (SQLite or PostgreSQL).
    pub store: ward_store::Store,
    /// The plugin runtime (engine, egress client).
    pub runtime: ward_runtime::Runtime,
    /// Installed plugins.
    pub registry: Arc<Registry>,
    /// Instance workers.
    pub scheduler: Scheduler,
    /// The operator's configuration.
    pub config: Arc<Config>,
    /// Prometheus metrics (counters bumped by the scheduler, gauges read at scrape).
    pub metrics: Arc<metrics::Metrics>,
    /// Event delivery (`[[sinks]]`).
    pub sinks: ward_sinks::Sinks,
    /// Consents the console began: where `/oauth/callback` sends their
    /// browser on.
    pub browser_returns: Arc<consent::BrowserReturns>,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon").finish_non_exhaustive()
    }
}

/// Why a daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The data directory could not be created.
    #[error("cannot create the data directory {path}: {source}; check the `data_dir` setting")]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A setting cannot work.
    #[error("configuration: {0}")]
    Config(String),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] ward_store::StoreError),
    /// The runtime could not be set up.
    #[error(transparent)]
    Runtime(#[from] ward_runtime::RuntimeError),
    /// The plugins could not be loaded.
    #[error(transparent)]
    Registry(#[from] registry::RegistryError),
}

/// Opens the store the configuration names (`store.url`, default
/// `<data_dir>/ward.db`) under its master key (`store.key_env`,
/// `store.key_file`, default `<data_dir>/master.key`, created on first
/// start), creating the data directory. The one place the daemon and the
/// CLI's offline commands open a store.
pub async fn open_store(config: &Config) -> Result<ward_store::Store, DaemonError> {
    let data_dir = &config.data_dir;
    std::fs::create_dir_all(data_dir).map_err(|source| DaemonError::DataDir {
        path: data_dir.clone(),
        source,
    })?;
    let key = match &config.store.key_env {
        Some(var) => ward_store::MasterKey::from_env(var)?,
        None => ward_store::MasterKey::load_or_create(
            &config
                .store
                .key_file
                .clone()
                .unwrap_or_else(|| data_dir.join("master.key")),
        )?,
    };
    Ok(match config.store.url.as_deref() {
        None => ward_store::Store::open_sqlite(&data_dir.join("ward.db"), key).await?,
        // `sqlite://PATH` or `postgres://…`; anything else is refused with
        // the forms that work.
        Some(url) => ward_store::Store::open(url, key).await?,
    })
}

impl Daemon {
    /// Opens the store, sets up the runtime and loads the plugins the
    /// configuration names. Workers are not started: call
    /// `daemon.scheduler.resume_all()` when the daemon should begin work.
    pub async fn open(config: Config) -> Result<Daemon, DaemonError> {
        let store = open_store(&config).await?;
        let runtime = ward_runtime::Runtime::new(runtime_config(&config)?)?;
        let registry = Arc::new(
            Registry::load_with_ceilings(
                &runtime,
                &store,
                &config.plugins,
                &config.policy,
                config.limits,
                config.dev,
            )
            .await?,
        );
        Ok(Daemon::assemble(store, runtime, registry, config))
    }

    /// Puts a daemon together from parts already opened (tests that set up
    /// the store or registry themselves); workers are not started.
    pub fn assemble(
        store: ward_store::Store,
        runtime: ward_runtime::Runtime,
        registry: Arc<Registry>,
        config: Config,
    ) -> Daemon {
        let config = Arc::new(config);
        let metrics = Arc::new(metrics::Metrics::new());
        // Five minutes ahead: longer than any page takes, shorter than any
        // provider's token lifetime.
        let refresher = Arc::new(refresh::Refresher::new(std::time::Duration::from_secs(300)));
        let scheduler = Scheduler::new(
            store.clone(),
            registry.clone(),
            config.clone(),
            metrics.clone(),
            refresher,
        );
        let lookup_registry = registry.clone();
        let lookup: ward_sinks::ManifestLookup = Arc::new(move |key: &str| {
            lookup_registry
                .get(key)
                .map(|p| p.plugin.manifest().clone())
        });
        let sinks = ward_sinks::Sinks::new(config.sinks.clone(), store.clone(), lookup);
        metrics.register_with(|r| sinks.metrics().register(r));
        Daemon {
            store,
            runtime,
            registry,
            scheduler,
            config,
            metrics,
            sinks,
            browser_returns: Arc::default(),
        }
    }

    /// Starts delivering to the configured sinks; returns how many.
    pub fn start_sinks(&self) -> Result<usize, DaemonError> {
        self.sinks
            .start()
            .map_err(|e| DaemonError::Config(e.to_string()))
    }

    /// Stops every worker (in-flight pages commit or roll back) and closes
    /// the store.
    pub async fn shutdown(&self) {
        let grace = std::time::Duration::from_secs(self.config.scheduler.shutdown_grace_secs);
        self.sinks.shutdown(grace).await;
        if !self.scheduler.shutdown(grace).await {
            tracing::warn!(
                "some workers did not stop within {}s; their uncommitted pages roll back",
                grace.as_secs()
            );
        }
        self.store.close().await;
    }
}

/// The runtime settings a configuration asks for.
pub fn runtime_config(config: &Config) -> Result<ward_runtime::RuntimeConfig, DaemonError> {
    let mut roots = Vec::new();
    for file in &config.egress.ca_files {
        roots.push(std::fs::read_to_string(file).map_err(|e| {
            DaemonError::Config(format!(
                "egress.ca_files: cannot read {}: {e}",
                file.display()
            ))
        })?);
    }
    Ok(ward_runtime::RuntimeConfig {
        cache_dir: Some(config.data_dir.join("cache")),
        egress: ward_runtime::EgressConfig {
            resolve: config.egress.resolve.clone(),
            extra_roots_pem: roots,
            allow_private: config.egress.allow_private.clone(),
            nameservers: config.egress.nameservers.clone(),
            connect_timeout: std::time::Duration::from_millis(config.egress.connect_timeout_ms),
            request_timeout: std::time::Duration::from_millis(config.egress.request_timeout_ms),
        },
        max_memory_mib: config.limits.max_memory_mib,
        ..ward_runtime::RuntimeConfig::default()
    })
}
