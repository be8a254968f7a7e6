//! The in-process runtime the per-call, scrubbing and compile figures use:
//! the daemon's engine settings, the bundled connectors.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use ward_runtime::{Bound, EgressConfig, Plugin, Runtime, RuntimeConfig, SecretSet};

use crate::standin::Org;

/// A runtime with its compile cache in `dir` (`None`: no cache), reaching
/// `org` when given.
pub fn runtime(cache: Option<&Path>, org: Option<&Org>) -> anyhow::Result<Runtime> {
    let mut egress = EgressConfig::default();
    if let Some(org) = org {
        egress.resolve = BTreeMap::from([(org.host(), org.okta.addr())]);
        egress.extra_roots_pem = vec![std::fs::read_to_string(&org.ca_file)?];
        egress.allow_private = vec![format!("{}/32", org.okta.addr().ip())];
    }
    Runtime::new(RuntimeConfig {
        cache_dir: cache.map(Path::to_path_buf),
        egress,
        ..RuntimeConfig::default()
    })
    .context("building the Ward runtime")
}

/// The bundled connector `key`, loaded into `runtime`.
pub fn bundled(runtime: &Runtime, key: &str) -> anyhow::Result<Arc<Plugin>> {
    let bytes =
        ward_daemon::bundled::get(key).with_context(|| format!("no bundled connector `{key}`"))?;
    runtime
        .load(bytes)
        .with_context(|| format!("loading the bundled connector `{key}`"))
}

/// The Okta connector's configuration for the org `domain`.
pub fn okta_config(domain: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("domain".to_string(), domain.to_string()),
        ("client_id".to_string(), "0oabenchclient".to_string()),
    ])
}

/// The Okta connector bound to the org `domain` with `secrets`.
pub fn okta(
    plugin: &Arc<Plugin>,
    domain: &str,
    secrets: BTreeMap<String, String>,
) -> anyhow::Result<Bound> {
    plugin
        .bind("bench", &okta_config(domain), SecretSet::new(secrets), None)
        .context("binding the Okta connector")
}
