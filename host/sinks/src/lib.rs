//! Delivery of Ward's stored events to SIEMs and files: the `[[sinks]]` of
//! `ward.toml`.
//!
//! [`Sinks`] is the one entry point: the daemon builds it from the
//! configuration, [`Sinks::start`]s it with the daemon and
//! [`Sinks::shutdown`]s it with the daemon. Each sink runs one task that
//! reads events in the store's ingestion order after its cursor, renders
//! them (OCSF 1.3.0 or Ward JSON, [`render`]), delivers one batch (a `file`
//! append, an `http` POST) and moves its cursor only after the sink
//! acknowledged the batch.
//!
//! Guarantee: **at least once**. Nothing is lost across restarts, crashes
//! and outages (events stay in the store and drain when the sink returns);
//! a batch sent but not acknowledged before a crash is sent again, so
//! receivers deduplicate by the per-event key ([`render::event_key`]:
//! OCSF `unmapped.ward.instance_id` + `metadata.uid`, Ward JSON `key`).

mod config;
mod deliver;
mod file;
mod http;
mod metrics;
pub mod render;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use ward_store::Store;

pub use config::{Format, MAX_BATCH, Preset, SinkConfig, SinkFilter, SinkKind, validate_all};
pub use metrics::SinkMetrics;
pub use render::{ActorView, EventView, ManifestLookup, Renderer, rfc3339};

/// Why a sink operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// A sink's settings cannot work.
    #[error("sink `{sink}`: {message}; fix its [[sinks]] table in ward.toml and restart")]
    Config {
        /// The sink.
        sink: String,
        /// What is wrong.
        message: String,
    },
    /// No sink has this name.
    #[error("no sink named `{0}`; GET /sinks lists the configured sinks")]
    NotFound(String),
    /// No configured sink names this secret.
    #[error(
        "no sink uses a secret named `{0}`; name it with `secret = \"{0}\"` in a [[sinks]] table first"
    )]
    UnknownSecret(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] ward_store::StoreError),
}

/// A sink's state, as `GET /sinks` and `ward sinks list` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkStatus {
    /// Name.
    pub name: String,
    /// `file` or `http`.
    pub kind: SinkKind,
    /// `ocsf` or `ward`.
    pub format: Format,
    /// The URL or directory.
    pub target: String,
    /// `active`, `retrying` (the last attempt failed and is being retried)
    /// or `dead_letter` (refused permanently; held until resumed).
    pub state: &'static str,
    /// Highest ingestion sequence acknowledged.
    pub cursor_seq: i64,
    /// Events acknowledged in total.
    pub delivered: u64,
    /// Events stored and not yet acknowledged (instance filter applied;
    /// the action filter is applied as they are read).
    pub lag_events: u64,
    /// Age of the oldest of them, in seconds (0 when caught up).
    pub lag_seconds: i64,
    /// The last error, cleared by the next acknowledged batch.
    pub last_error: Option<String>,
    /// When it happened (ms).
    pub last_error_ms: Option<i64>,
    /// When the sink last acknowledged a batch (ms).
    pub last_success_ms: Option<i64>,
}

/// Every configured sink: the daemon's handle on delivery. Cheap to clone.
#[derive(Clone)]
pub struct Sinks {
    inner: Arc<Inner>,
}

struct Inner {
    configs: Vec<SinkConfig>,
    store: Store,
    lookup: ManifestLookup,
    metrics: SinkMetrics,
    token: CancellationToken,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Sinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sinks")
            .field("sinks", &self.inner.configs.len())
            .finish_non_exhaustive()
    }
}

impl Sinks {
    /// Sinks for `configs` (validated by the caller with [`validate_all`]);
    /// nothing runs until [`Sinks::start`].
    pub fn new(configs: Vec<SinkConfig>, store: Store, lookup: ManifestLookup) -> Sinks {
        Sinks {
            inner: Arc::new(Inner {
                configs,
                store,
                lookup,
                metrics: SinkMetrics::default(),
                token: CancellationToken::new(),
                tasks: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The metrics to register into the daemon's registry.
    pub fn metrics(&self) -> &SinkMetrics {
        &self.inner.metrics
    }

    /// A renderer for one-off exports (same output as the sinks).
    pub fn renderer(&self) -> Renderer {
        Renderer::new(self.inner.store.clone(), self.inner.lookup.clone())
    }

    /// Starts one delivery task per sink. Fails (starting none) if a sink
    /// cannot be set up, e.g. an unreadable `ca_file`.
    pub fn start(&self) -> Result<usize, SinkError> {
        let mut tasks = Vec::new();
        for config in &self.inner.configs {
            tasks.push(deliver::Task::new(
                config.clone(),
                self.inner.store.clone(),
                self.renderer(),
                self.inner.metrics.clone(),
                self.inner.token.child_token(),
            )?);
        }
        let n = tasks.len();
        let handles: Vec<JoinHandle<()>> =
            tasks.into_iter().map(|t| tokio::spawn(t.run())).collect();
        if let Ok(mut slot) = self.inner.tasks.lock() {
            slot.extend(handles);
        }
        Ok(n)
    }

    /// Stops every delivery task. A batch in flight is abandoned
    /// unacknowledged (sent again after the restart).
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.token.cancel();
        let handles: Vec<JoinHandle<()>> = match self.inner.tasks.lock() {
            Ok(mut slot) => slot.drain(..).collect(),
            Err(_) => Vec::new(),
        };
        let _ = tokio::time::timeout(grace, futures_join(handles)).await;
    }

    fn config(&self, name: &str) -> Result<&SinkConfig, SinkError> {
        self.inner
            .configs
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| SinkError::NotFound(name.to_owned()))
    }

    /// Every sink's state, read fresh from the store.
    pub async fn status(&self) -> Result<Vec<SinkStatus>, SinkError> {
        let mut out = Vec::with_capacity(self.inner.configs.len());
        for config in &self.inner.configs {
            out.push(self.one_status(config).await?);
        }
        Ok(out)
    }

    /// One sink's state.
    pub async fn sink_status(&self, name: &str) -> Result<SinkStatus, SinkError> {
        let config = self.config(name)?;
        self.one_status(config).await
    }

    async fn one_status(&self, config: &SinkConfig) -> Result<SinkStatus, SinkError> {
        let store = &self.inner.store;
        let state = store.sink_state(&config.name).await?;
        let lag = store
            .sink_lag(state.cursor_seq, &config.filter.instances)
            .await?;
        Ok(SinkStatus {
            name: config.name.clone(),
            kind: config.kind,
            format: config.format,
            target: config.target(),
            state: if state.dead_letter {
                "dead_letter"
            } else if state.last_error.is_some() {
                "retrying"
            } else {
                "active"
            },
            cursor_seq: state.cursor_seq,
            delivered: state.delivered,
            lag_events: lag.events,
            lag_seconds: lag
                .oldest_ingested_ms
                .map_or(0, |t| (now_ms() - t).max(0) / 1000),
            last_error: state.last_error,
            last_error_ms: state.last_error_ms,
            last_success_ms: state.last_success_ms,
        })
    }

    /// Takes a sink out of dead-letter: its task retries the held batch.
    /// Returns whether it was held.
    pub async fn resume(&self, name: &str) -> Result<bool, SinkError> {
        self.config(name)?;
        Ok(self.inner.store.resume_sink(name).await?)
    }

    /// Stores a sink secret (sealed with the master key). Only a name some
    /// sink refers to (`secret = "NAME"`) is accepted.
    pub async fn set_secret(&self, secret: &str, value: &str) -> Result<(), SinkError> {
        if !self
            .inner
            .configs
            .iter()
            .any(|c| c.secret.as_deref() == Some(secret))
        {
            return Err(SinkError::UnknownSecret(secret.to_owned()));
        }
        Ok(self.inner.store.put_sink_secret(secret, value).await?)
    }
}

async fn futures_join(handles: Vec<JoinHandle<()>>) {
    for h in handles {
        let _ = h.await;
    }
}

pub(crate) fn now_ms() -> i64 {
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    i64::try_from(nanos / 1_000_000).unwrap_or(i64::MAX)
}
