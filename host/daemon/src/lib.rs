//! The Ward daemon's core, shared by the REST API, the CLI and the demo.
//!
//! - [`config`]: the `ward.toml` the operator writes, with defaults.
//! - [`registry`]: which plugins are installed, signed, approved and what
//!   they may do (manifest ∩ operator policy).
//! - [`connect`]: exchange → encrypted credentials → test.
//! - [`ingest`]: pulling pages from a bound plugin into the store, with
//!   exactly-once commits, rate-limit waits and transient-error backoff.
//! - [`scheduler`]: one worker per instance: backfill, then poll; shared
//!   rate budgets; status.
//! - [`bundled`]: the connectors compiled into the binary.

use std::sync::Arc;

pub mod bundled;
pub mod config;
pub mod connect;
pub mod ingest;
pub mod metrics;
pub mod registry;
pub mod scheduler;

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
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon").finish_non_exhaustive()
    }
}
