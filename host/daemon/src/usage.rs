//! Declared vs used: which of a plugin's effective grants, methods and
//! secrets its instances actually used, read from the egress log, and the
//! `[policy.KEY]` that would narrow the plugin to what it uses.

use std::collections::{BTreeMap, BTreeSet};

use crate::Daemon;
use crate::instances::{self, InstanceError, now_ms};

/// Most egress records read per instance (the newest ones).
pub const MAX_RECORDS_PER_INSTANCE: u32 = ward_store::MAX_PAGE;
const DAY_MS: i64 = 86_400_000;

/// How one grant was used.
#[derive(Debug, Clone)]
pub struct GrantUsage {
    /// The grant's URL template, as declared.
    pub url: String,
    /// Its path prefix template.
    pub path_prefix: String,
    /// Methods the plugin may use under it.
    pub methods: Vec<String>,
    /// Methods it used.
    pub methods_used: Vec<String>,
    /// Requests it allowed in the window.
    pub requests: u64,
    /// Distinct paths requested (at most 20 shown).
    pub paths_used: Vec<String>,
}

/// A plugin's declared permissions against its use.
#[derive(Debug, Clone)]
pub struct Usage {
    /// Plugin key.
    pub key: String,
    /// Window, in days.
    pub days: u32,
    /// Instances of the plugin read.
    pub instances: usize,
    /// Requests in the window, allowed and denied.
    pub requests: u64,
    /// Requests the sandbox denied in the window.
    pub denied: u64,
    /// Per effective grant.
    pub grants: Vec<GrantUsage>,
    /// Secrets never sent (none of their grants was used).
    pub unused_secrets: Vec<String>,
    /// Path prefixes of unused grants that no used request falls under.
    pub unused_paths: Vec<String>,
    /// The `[policy.KEY]` narrowing the plugin to what it used.
    pub snippet: String,
}

fn quoted(values: &[String]) -> String {
    let items: Vec<String> = values
        .iter()
        .map(|v| serde_json::Value::String(v.clone()).to_string())
        .collect();
    format!("[{}]", items.join(", "))
}

/// Declared vs used for the plugin `key_or_id` over the last `days` days
/// (the newest [`MAX_RECORDS_PER_INSTANCE`] requests of each instance).
pub async fn usage(daemon: &Daemon, key_or_id: &str, days: u32) -> Result<Usage, InstanceError> {
    let loaded = instances::element(daemon, key_or_id)?;
    let key = loaded.plugin.manifest().key.clone();
    let since = now_ms().saturating_sub(i64::from(days).saturating_mul(DAY_MS));
    let mut used: BTreeMap<String, (BTreeSet<String>, u64, BTreeSet<String>)> = BTreeMap::new();
    let (mut requests, mut denied, mut count) = (0u64, 0u64, 0usize);
    for i in daemon.store.instances().await? {
        if i.plugin_key != key {
            continue;
        }
        count += 1;
        for r in daemon.store.egress(&i.id, MAX_RECORDS_PER_INSTANCE).await? {
            if r.at_ms < since {
                continue;
            }
            requests += 1;
            if !r.allowed {
                denied += 1;
                continue;
            }
            let Some(grant) = r.grant else { continue };
            let entry = used.entry(grant).or_default();
            entry.0.insert(r.method);
            entry.1 += 1;
            if let Ok(u) = url::Url::parse(&r.url) {
                entry.2.insert(u.path().to_owned());
            }
        }
    }
    let every_path: BTreeSet<&String> = used.values().flat_map(|u| u.2.iter()).collect();
    let mut grants = Vec::new();
    let mut unused_paths = Vec::new();
    for g in &loaded.effective.http {
        let (methods_used, n, paths) = used.get(&g.url).cloned().unwrap_or_default();
        if n == 0
            && !g.path_prefix.contains('{')
            && g.path_prefix != "/"
            && !every_path.iter().any(|p| p.starts_with(&g.path_prefix))
        {
            unused_paths.push(g.path_prefix.clone());
        }
        grants.push(GrantUsage {
            url: g.url.clone(),
            path_prefix: g.path_prefix.clone(),
            methods: g.methods.effective.clone(),
            methods_used: methods_used.into_iter().collect(),
            requests: n,
            paths_used: paths.into_iter().take(20).collect(),
        });
    }
    let unused_secrets: Vec<String> = loaded
        .effective
        .secrets
        .iter()
        .filter(|s| !s.refused)
        .filter(|s| !s.sent_to.effective.is_empty())
        .filter(|s| s.sent_to.effective.iter().all(|g| !used.contains_key(g)))
        .map(|s| s.name.clone())
        .collect();
    unused_paths.sort();
    unused_paths.dedup();
    let mut deny_paths = loaded.effective.policy.deny_paths.clone();
    deny_paths.extend(unused_paths.iter().cloned());
    let mut refuse = loaded.effective.policy.refuse_secrets.clone();
    refuse.extend(unused_secrets.iter().cloned());
    let snippet = format!(
        "# What {key} used in the last {days} days ({requests} requests by {count} instance(s))\n\
         [policy.{key}]\n\
         deny_paths = {}\n\
         refuse_secrets = {}\n",
        quoted(&deny_paths),
        quoted(&refuse),
    );
    Ok(Usage {
        key,
        days,
        instances: count,
        requests,
        denied,
        grants,
        unused_secrets,
        unused_paths,
        snippet,
    })
}
