//! The daemon's configuration file (`ward serve --config ward.toml`).
//!
//! Every key has a default, so an empty file (or none) runs a daemon on the
//! embedded SQLite store under `./ward-data`. Keys are documented in the
//! README's Configuration section; keep the two in step.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use ward_manifest::{Ceilings, PluginPolicy};

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("configuration {path} is invalid: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong (toml names the key and line).
        message: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory for the SQLite database, master key, compile cache and
    /// generated API secrets.
    pub data_dir: PathBuf,
    /// REST API settings.
    pub api: ApiConfig,
    /// Store settings.
    pub store: StoreConfig,
    /// Outbound HTTP settings for every plugin.
    pub egress: EgressSettings,
    /// Plugin installation and trust.
    pub plugins: PluginsConfig,
    /// Operator policy per plugin key (`[policy.okta]`): narrows what the
    /// manifest asks, never widens (see [`PluginPolicy`]).
    pub policy: BTreeMap<String, PluginPolicy>,
    /// Scheduler settings.
    pub scheduler: SchedulerConfig,
    /// Daemon-wide ceilings on every manifest's limits and schedule
    /// (`[limits]`, keys `max_*` and `min_poll_interval_secs`).
    pub limits: Ceilings,
    /// Where stored events are delivered (`[[sinks]]`, see `ward-sinks`).
    pub sinks: Vec<ward_sinks::SinkConfig>,
    /// Dev mode: plugins load without trusted signatures. Set only by
    /// `ward serve --dev` (never from the file), and announced loudly at
    /// start-up and in `/healthz`.
    #[serde(skip)]
    pub dev: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("ward-data"),
            api: ApiConfig::default(),
            store: StoreConfig::default(),
            egress: EgressSettings::default(),
            plugins: PluginsConfig::default(),
            policy: BTreeMap::new(),
            scheduler: SchedulerConfig::default(),
            limits: Ceilings::default(),
            sinks: Vec::new(),
            dev: false,
        }
    }
}

/// `[api]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Address the API and console listen on.
    pub listen: SocketAddr,
    /// The URL operators and providers reach the daemon at; OAuth callbacks
    /// default to `<public_url>/oauth/callback`.
    pub public_url: Option<String>,
    /// SHA-256 (hex) of the `User` secret. When absent, the daemon
    /// generates both secrets on first start, writes them to
    /// `<data_dir>/api-secrets.toml` (mode 0600) and keeps only the hashes.
    pub user_secret_sha256: Option<String>,
    /// SHA-256 (hex) of the `Organization` secret.
    pub organization_secret_sha256: Option<String>,
    /// How long an OAuth `state` stays valid, in seconds.
    pub oauth_state_ttl_secs: u64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8420)),
            public_url: None,
            user_secret_sha256: None,
            organization_secret_sha256: None,
            oauth_state_ttl_secs: 600,
        }
    }
}

/// `[store]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `sqlite://path` or `postgres://…`; default `<data_dir>/ward.db`.
    pub url: Option<String>,
    /// File holding the 32-byte master key (base64); default
    /// `<data_dir>/master.key`, created on first start.
    pub key_file: Option<PathBuf>,
    /// Environment variable holding the master key instead of a file.
    pub key_env: Option<String>,
}

/// `[egress]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EgressSettings {
    /// Host name → `ip:port` overrides.
    pub resolve: BTreeMap<String, SocketAddr>,
    /// PEM files of extra CA roots.
    pub ca_files: Vec<PathBuf>,
    /// Restricted address ranges (CIDR) plugins may reach anyway.
    pub allow_private: Vec<String>,
    /// DNS servers (`ip:port`, UDP) for provider host names; empty: the
    /// system resolver.
    pub nameservers: Vec<SocketAddr>,
    /// Connect timeout in milliseconds.
    pub connect_timeout_ms: u64,
    /// Whole-request timeout in milliseconds.
    pub request_timeout_ms: u64,
}

impl Default for EgressSettings {
    fn default() -> Self {
        EgressSettings {
            resolve: BTreeMap::new(),
            ca_files: Vec::new(),
            allow_private: Vec::new(),
            nameservers: Vec::new(),
            connect_timeout_ms: 10_000,
            request_timeout_ms: 30_000,
        }
    }
}

/// `[plugins]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginsConfig {
    /// Load the connectors bundled in the binary.
    pub bundled: bool,
    /// Directories scanned for `*.wasm` plugins (with `*.wasm.minisig`).
    pub dirs: Vec<PathBuf>,
    /// Public keys (minisign format, the base64 line) whose signatures are
    /// trusted.
    pub trusted_keys: Vec<String>,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        PluginsConfig {
            bundled: true,
            dirs: Vec::new(),
            trusted_keys: Vec::new(),
        }
    }
}

/// `[scheduler]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerConfig {
    /// Plugin calls running at once across all instances.
    pub max_concurrent_calls: usize,
    /// Most of those one plugin may hold at once (0: half of
    /// `max_concurrent_calls`, at least 1), so instances of one plugin that
    /// stall cannot keep another plugin's instances from syncing.
    pub max_calls_per_plugin: usize,
    /// Attempts per page on transient errors before the instance waits
    /// for its next poll.
    pub retry_attempts: u32,
    /// First backoff delay in milliseconds (doubles, with jitter).
    pub backoff_base_ms: u64,
    /// Longest backoff delay in milliseconds.
    pub backoff_max_ms: u64,
    /// Longest provider rate-limit wait (`Retry-After`, reset headers)
    /// sat out inside one sync. A longer one (Egnyte's hourly and daily
    /// quotas) ends the sync: the tenant's budget is blocked until then and
    /// the instance resumes by itself, never halted.
    pub max_rate_wait_secs: u64,
    /// Override of every plugin's poll interval, in seconds (0: use the
    /// plugin's).
    pub poll_interval_secs: u64,
    /// Seconds between reads of each instance's user directory.
    pub users_interval_secs: u64,
    /// Seconds a shutdown waits for in-flight pages to commit.
    pub shutdown_grace_secs: u64,
    /// Seconds an instance lease lasts without a heartbeat (renewed every
    /// third of it). A daemon that dies loses its instances to the others
    /// after this long; one paused longer has its late commits refused.
    pub lease_ttl_secs: u64,
    /// Most instances this daemon works at once (leases it holds), so new
    /// instances spread across daemons.
    pub max_leases: usize,
    /// Name this daemon gives itself in leases and `GET /instances/{id}`
    /// (`worker`); a random suffix per process run is appended. Default:
    /// the host name.
    pub daemon_name: Option<String>,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            max_concurrent_calls: 16,
            max_calls_per_plugin: 0,
            retry_attempts: 8,
            backoff_base_ms: 500,
            backoff_max_ms: 60_000,
            max_rate_wait_secs: 900,
            poll_interval_secs: 0,
            users_interval_secs: 3600,
            shutdown_grace_secs: 20,
            lease_ttl_secs: 30,
            max_leases: 1000,
            daemon_name: None,
        }
    }
}

impl Config {
    /// Reads a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text).map_err(|message| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses configuration text.
    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        for (key, policy) in &config.policy {
            policy
                .validate()
                .map_err(|e| format!("[policy.{key}]: {e}"))?;
        }
        config
            .limits
            .validate()
            .map_err(|e| format!("[limits]: {e}"))?;
        ward_sinks::validate_all(&config.sinks)?;
        for key in &config.plugins.trusted_keys {
            ward_trust::parse_public(key).map_err(|e| format!("plugins.trusted_keys: {e}"))?;
        }
        Ok(config)
    }
}
