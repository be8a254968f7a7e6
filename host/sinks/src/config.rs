//! `[[sinks]]` in `ward.toml`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where a sink delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkKind {
    /// NDJSON files with rotation; closed files are gzipped.
    File,
    /// Batched, gzipped HTTP POSTs (Splunk HEC or a webhook).
    Http,
}

/// How each event is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// OCSF 1.3.0 (see `ward-ocsf`).
    #[default]
    Ocsf,
    /// Ward's own event JSON.
    Ward,
}

/// The receiver's protocol for an `http` sink.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// Splunk HTTP Event Collector: `POST <url>/services/collector/event`,
    /// `Authorization: Splunk <token>`, one HEC envelope per event.
    SplunkHec,
    /// Any endpoint taking NDJSON: `POST <url>`, `Authorization: Bearer
    /// <token>` when a secret is set.
    #[default]
    Webhook,
}

/// Which events a sink receives. Empty lists mean all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SinkFilter {
    /// Instance ids.
    pub instances: Vec<String>,
    /// Actions; `*` matches any run of characters (`user.session.*`).
    pub actions: Vec<String>,
}

/// One `[[sinks]]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// Unique name (letters, digits, `-`, `_`): the key of its delivery
    /// cursor, so renaming a sink delivers everything again.
    pub name: String,
    /// `file` or `http`.
    #[serde(rename = "type")]
    pub kind: SinkKind,
    /// `ocsf` (default) or `ward`.
    #[serde(default)]
    pub format: Format,
    /// Which events.
    #[serde(default)]
    pub filter: SinkFilter,
    /// Events read from the store per batch (one POST, one file append).
    #[serde(default = "defaults::batch_size")]
    pub batch_size: u32,
    /// `file`: the directory the NDJSON files are written to.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// `file`: rotate once the current file reaches this many bytes.
    #[serde(default = "defaults::rotate_bytes")]
    pub rotate_bytes: u64,
    /// `file`: rotate once the current file is this many seconds old.
    #[serde(default = "defaults::rotate_secs")]
    pub rotate_secs: u64,
    /// `http`: the endpoint (Splunk HEC: the collector's base URL).
    #[serde(default)]
    pub url: Option<String>,
    /// `http`: `splunk-hec` or `webhook` (default).
    #[serde(default)]
    pub preset: Preset,
    /// `http`: name of the sink secret (HEC token, bearer token), set with
    /// `ward sinks secret NAME`; never the secret itself.
    #[serde(default)]
    pub secret: Option<String>,
    /// `http` + `splunk-hec`: the HEC `sourcetype` (default `ocsf` or `ward`).
    #[serde(default)]
    pub sourcetype: Option<String>,
    /// `http` + `splunk-hec`: the HEC `index` (default: the token's).
    #[serde(default)]
    pub index: Option<String>,
    /// `http`: PEM file of an extra CA root for the receiver's certificate.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// `http`: whole-request timeout in seconds.
    #[serde(default = "defaults::timeout_secs")]
    pub timeout_secs: u64,
    /// `http`: first retry delay in milliseconds (doubles, with jitter).
    #[serde(default = "defaults::backoff_base_ms")]
    pub backoff_base_ms: u64,
    /// `http`: longest retry delay in milliseconds (`Retry-After` may ask
    /// for longer, up to an hour).
    #[serde(default = "defaults::backoff_max_ms")]
    pub backoff_max_ms: u64,
}

mod defaults {
    pub(super) fn batch_size() -> u32 {
        500
    }
    pub(super) fn rotate_bytes() -> u64 {
        64 * 1024 * 1024
    }
    pub(super) fn rotate_secs() -> u64 {
        3600
    }
    pub(super) fn timeout_secs() -> u64 {
        30
    }
    pub(super) fn backoff_base_ms() -> u64 {
        500
    }
    pub(super) fn backoff_max_ms() -> u64 {
        60_000
    }
}

/// Largest `batch_size`.
pub const MAX_BATCH: u32 = 10_000;

impl SinkConfig {
    /// Checks one sink's settings; the message names the sink and the key.
    pub fn validate(&self) -> Result<(), String> {
        let name = &self.name;
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "sink name {name:?}: use letters, digits, `-` and `_` only"
            ));
        }
        let bad = |msg: String| Err(format!("[[sinks]] {name}: {msg}"));
        if !(1..=MAX_BATCH).contains(&self.batch_size) {
            return bad(format!("batch_size must be 1 to {MAX_BATCH}"));
        }
        let file_keys = self.path.is_some();
        let http_keys = self.url.is_some()
            || self.secret.is_some()
            || self.sourcetype.is_some()
            || self.index.is_some()
            || self.ca_file.is_some();
        match self.kind {
            SinkKind::File => {
                if http_keys {
                    return bad(
                        "url, secret, sourcetype, index and ca_file apply to type = \"http\" only"
                            .into(),
                    );
                }
                if self.path.is_none() {
                    return bad("type = \"file\" needs path = \"DIRECTORY\"".into());
                }
                if self.rotate_bytes < 4096 {
                    return bad("rotate_bytes must be at least 4096".into());
                }
                if self.rotate_secs == 0 {
                    return bad("rotate_secs must be at least 1".into());
                }
            }
            SinkKind::Http => {
                if file_keys {
                    return bad("path applies to type = \"file\" only".into());
                }
                let Some(url) = &self.url else {
                    return bad("type = \"http\" needs url = \"https://…\"".into());
                };
                let parsed = url::Url::parse(url)
                    .map_err(|e| format!("[[sinks]] {name}: url {url:?}: {e}"))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return bad(format!("url {url:?} must be http:// or https://"));
                }
                if !parsed.username().is_empty() || parsed.password().is_some() {
                    return bad("url must not carry credentials: put the token in a sink secret (`secret = \"NAME\"`)".into());
                }
                if self.preset == Preset::SplunkHec && self.secret.is_none() {
                    return bad("preset = \"splunk-hec\" needs secret = \"NAME\" (the HEC token, set with `ward sinks secret NAME`)".into());
                }
                if let Some(secret) = &self.secret
                    && (secret.is_empty() || secret.chars().any(|c| c.is_control()))
                {
                    return bad("secret must name a sink secret".into());
                }
                if self.timeout_secs == 0
                    || self.backoff_base_ms == 0
                    || self.backoff_max_ms < self.backoff_base_ms
                {
                    return bad("timeout_secs and backoff_base_ms must be positive, backoff_max_ms at least backoff_base_ms".into());
                }
            }
        }
        Ok(())
    }

    /// Where the sink delivers, for status: the URL or the directory.
    pub fn target(&self) -> String {
        match self.kind {
            SinkKind::File => self
                .path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            SinkKind::Http => self.url.clone().unwrap_or_default(),
        }
    }
}

/// Checks every sink and that names are unique.
pub fn validate_all(sinks: &[SinkConfig]) -> Result<(), String> {
    let mut seen = std::collections::BTreeSet::new();
    for sink in sinks {
        sink.validate()?;
        if !seen.insert(sink.name.as_str()) {
            return Err(format!("[[sinks]] name {:?} is used twice", sink.name));
        }
    }
    Ok(())
}
