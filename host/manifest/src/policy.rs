//! Operator policy: what the operator allows a plugin, on top of what its
//! manifest asks. Effective permissions are manifest ∩ policy.
//!
//! A policy can only narrow. Values that would widen (a limit or rate above
//! the manifest's) are **ignored with a warning** rather than rejected: the
//! operator may write one policy for several plugin versions, and a newer
//! version asking for less must not make the daemon refuse to start. The
//! warning shows up in `ward plugin inspect` and the daemon's start-up log.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::risks::{Risk, risks};
use crate::{Ceilings, Limits, Manifest, Schedule, UrlTemplate};

/// `[policy.<plugin key>]` in `ward.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginPolicy {
    /// Hosts the plugin may not reach even when a grant covers them: an
    /// exact name (`api.example.com`) or `*.suffix` (any name ending in
    /// `.suffix`).
    pub deny_hosts: Vec<String>,
    /// Path prefixes the plugin may not request on any host
    /// (`/api/v1/users` also denies `/api/v1/users/…`).
    pub deny_paths: Vec<String>,
    /// Secrets the host will never substitute for this plugin.
    pub refuse_secrets: Vec<String>,
    /// Lower per-call limits (each optional).
    pub limits: LimitsPolicy,
    /// Lower shared rate budget (requests per minute per tenant).
    pub requests_per_minute: Option<u32>,
    /// The daemon's ceilings (`[limits]` in `ward.toml`), attached by the
    /// daemon when it loads the plugin; not part of `[policy.KEY]`.
    #[serde(skip)]
    pub ceilings: Ceilings,
}

/// Per-call limits an operator may lower. Unset fields keep the manifest's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsPolicy {
    /// See [`Limits::memory_mib`].
    pub memory_mib: Option<u32>,
    /// See [`Limits::cpu_ms`].
    pub cpu_ms: Option<u32>,
    /// See [`Limits::wall_ms`].
    pub wall_ms: Option<u32>,
    /// See [`Limits::requests_per_call`].
    pub requests_per_call: Option<u32>,
    /// See [`Limits::response_bytes`].
    pub response_bytes: Option<u64>,
    /// See [`Limits::request_bytes`].
    pub request_bytes: Option<u64>,
    /// See [`Limits::output_bytes`].
    pub output_bytes: Option<u64>,
    /// See [`Limits::page_items`].
    pub page_items: Option<u32>,
}

impl PluginPolicy {
    /// Whether `host` (lower case, no port) is denied.
    pub fn denies_host(&self, host: &str) -> bool {
        self.deny_hosts.iter().any(|rule| host_matches(rule, host))
    }

    /// Whether `path` falls under a denied prefix.
    pub fn denies_path(&self, path: &str) -> bool {
        self.deny_paths
            .iter()
            .any(|prefix| path_under(prefix, path))
    }

    /// Whether the secret is refused.
    pub fn refuses_secret(&self, name: &str) -> bool {
        self.refuse_secrets.iter().any(|s| s == name)
    }

    /// The manifest's limits lowered by this policy (never raised), then
    /// clamped to the daemon's ceilings.
    pub fn limits(&self, declared: Limits) -> Limits {
        let mut ignored = Vec::new();
        let lowered = effective_limits(declared, &self.limits, &mut ignored);
        self.ceilings.clamp_limits(lowered, &mut ignored)
    }

    /// The manifest's schedule within the daemon's ceilings (backfill
    /// window at most, poll interval at least).
    pub fn schedule(&self, declared: Schedule) -> Schedule {
        self.ceilings.clamp_schedule(declared, &mut Vec::new())
    }

    /// The manifest's rate budget lowered by this policy.
    pub fn requests_per_minute(&self, declared: u32) -> u32 {
        self.requests_per_minute
            .map_or(declared, |p| p.min(declared))
    }

    /// Checks the rules' shape (called when the configuration is loaded).
    pub fn validate(&self) -> Result<(), String> {
        for rule in &self.deny_hosts {
            let name = rule.strip_prefix("*.").unwrap_or(rule);
            if name.is_empty()
                || name.contains(['/', ':', '*', '@', ' '])
                || name != name.to_ascii_lowercase()
            {
                return Err(format!(
                    "deny_hosts entry {rule:?} must be a lower-case host name or `*.suffix`"
                ));
            }
        }
        for prefix in &self.deny_paths {
            if !prefix.starts_with('/') {
                return Err(format!("deny_paths entry {prefix:?} must start with `/`"));
            }
        }
        Ok(())
    }
}

fn host_matches(rule: &str, host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    match rule.strip_prefix("*.") {
        Some(suffix) => host.ends_with(&format!(".{suffix}")),
        None => host == rule,
    }
}

fn path_under(prefix: &str, path: &str) -> bool {
    // `/api/v1/users` denies `/api/v1/users`, `/api/v1/users/x` and
    // `/api/v1/users?q`, but not `/api/v1/usersettings`.
    if prefix.ends_with('/') {
        return path.starts_with(prefix);
    }
    path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/') || rest.starts_with('?'))
}

fn effective_limits(declared: Limits, policy: &LimitsPolicy, warnings: &mut Vec<String>) -> Limits {
    fn lower<T: Copy + Ord + std::fmt::Display>(
        name: &str,
        declared: T,
        asked: Option<T>,
        warnings: &mut Vec<String>,
    ) -> T {
        match asked {
            Some(v) if v > declared => {
                warnings.push(format!(
                    "policy limits.{name} = {v} is above the manifest's {declared}; ignored (a policy can only lower limits)"
                ));
                declared
            }
            Some(v) => v,
            None => declared,
        }
    }
    Limits {
        memory_mib: lower(
            "memory_mib",
            declared.memory_mib,
            policy.memory_mib,
            warnings,
        ),
        cpu_ms: lower("cpu_ms", declared.cpu_ms, policy.cpu_ms, warnings),
        wall_ms: lower("wall_ms", declared.wall_ms, policy.wall_ms, warnings),
        requests_per_call: lower(
            "requests_per_call",
            declared.requests_per_call,
            policy.requests_per_call,
            warnings,
        ),
        response_bytes: lower(
            "response_bytes",
            declared.response_bytes,
            policy.response_bytes,
            warnings,
        ),
        request_bytes: lower(
            "request_bytes",
            declared.request_bytes,
            policy.request_bytes,
            warnings,
        ),
        output_bytes: lower(
            "output_bytes",
            declared.output_bytes,
            policy.output_bytes,
            warnings,
        ),
        page_items: lower(
            "page_items",
            declared.page_items,
            policy.page_items,
            warnings,
        ),
    }
}

/// A requested value next to the effective one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pair<T> {
    /// What the manifest asks for.
    pub requested: T,
    /// What the plugin gets after operator policy.
    pub effective: T,
}

/// Where an HTTP grant stands after policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GrantStatus {
    /// As requested.
    Granted,
    /// Allowed, but policy removes part of it (paths, secrets, or hosts
    /// some configurations would fill in).
    Narrowed,
    /// Its host is denied outright: no request under it can be sent.
    Denied,
}

/// One HTTP grant as requested and as effective.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantView {
    /// URL template as declared.
    pub url: String,
    /// `https` or `http`.
    pub scheme: String,
    /// Host template (may contain `{field}`).
    pub host: String,
    /// Port (scheme default when not written).
    pub port: u16,
    /// Path prefix template.
    pub path_prefix: String,
    /// Config fields the URL is filled from (their patterns bound the hosts
    /// and paths reachable).
    pub config_fields: Vec<ConfigDependency>,
    /// The URL with every config field that has a `default` filled in
    /// (what an instance gets when the operator leaves it out).
    pub url_with_defaults: String,
    /// Every host the grant may be filled to, with the placeholders of
    /// fields that list `values` expanded (`{domain}.okta.com`,
    /// `{domain}.oktapreview.com`, ...).
    pub host_families: Vec<String>,
    /// Set when the host ends in a value the operator types (a custom
    /// domain): secrets bound to this grant are sent to an operator-named
    /// host.
    pub operator_named_host: bool,
    /// Methods requested and effective.
    pub methods: Pair<Vec<String>>,
    /// Secrets that may be substituted, requested and effective.
    pub secrets: Pair<Vec<String>>,
    /// Whether secrets may also go into request bodies.
    pub secrets_in_body: bool,
    /// Whether request paths may carry `;` parameters.
    pub allow_params: bool,
    /// After policy.
    pub status: GrantStatus,
    /// Denied path prefixes that fall under this grant's prefix.
    pub denied_paths: Vec<String>,
    /// Denied host rules that can match this grant's host.
    pub denied_hosts: Vec<String>,
}

/// A config field an HTTP grant depends on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigDependency {
    /// Field name.
    pub name: String,
    /// The (anchored) pattern every value must match.
    pub pattern: String,
    /// The value used when the operator gives none.
    pub default: Option<String>,
    /// Whether the field chooses (part of) the grant's host.
    pub shapes_host: bool,
}

/// A declared config field, as `inspect` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigView {
    /// Field name.
    pub name: String,
    /// The (anchored) pattern every value must match.
    pub pattern: String,
    /// Whether the operator must supply it.
    pub required: bool,
    /// The value used when the operator gives none.
    pub default: Option<String>,
    /// Whether some grant's host is filled from it.
    pub shapes_host: bool,
}

/// A declared secret and where it may be sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretView {
    /// Secret name.
    pub name: String,
    /// What it is.
    pub description: String,
    /// Grant URL templates it may be substituted into (requested).
    pub sent_to: Pair<Vec<String>>,
    /// Whether the operator refuses it.
    pub refused: bool,
}

/// Requested and effective permissions of one plugin: what `ward plugin
/// inspect --json` prints under `permissions` and the API shows for an
/// element. Field names are stable (documented in the README).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Effective {
    /// Plugin key.
    pub key: String,
    /// Plugin version.
    pub version: String,
    /// Vendor.
    pub vendor: String,
    /// Authentication, as declared (JSON).
    pub auth: serde_json::Value,
    /// What a reviewer reads first, most serious first.
    pub risks: Vec<Risk>,
    /// Config fields with their patterns and defaults.
    pub config: Vec<ConfigView>,
    /// HTTP grants.
    pub http: Vec<GrantView>,
    /// Secrets.
    pub secrets: Vec<SecretView>,
    /// Per-call limits: requested, and effective after policy and the
    /// daemon's ceilings.
    pub limits: Pair<Limits>,
    /// Backfill window and poll interval: requested, and effective within
    /// the daemon's ceilings.
    pub schedule: Pair<Schedule>,
    /// The daemon's ceilings applied.
    pub ceilings: Ceilings,
    /// Shared rate budget per tenant, requests per minute.
    pub requests_per_minute: Pair<u32>,
    /// The operator policy applied.
    pub policy: PluginPolicy,
    /// Policy values that were ignored because they would widen, or rules
    /// that match nothing.
    pub warnings: Vec<String>,
}

struct TemplateParts {
    scheme: String,
    host: String,
    port: u16,
    path: String,
}

fn split_template(url: &str) -> TemplateParts {
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let slash = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(slash);
    let default_port = if scheme == "http" { 80 } else { 443 };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            (h, p.parse().unwrap_or(default_port))
        }
        _ => (authority, default_port),
    };
    TemplateParts {
        scheme: scheme.to_string(),
        host: host.to_ascii_lowercase(),
        port,
        path: if path.is_empty() {
            "/".into()
        } else {
            path.into()
        },
    }
}

/// Whether a deny rule can match some filling of a host template.
fn rule_may_match(rule: &str, host_template: &str) -> bool {
    if !host_template.contains('{') {
        return host_matches(rule, host_template);
    }
    // The literal text after the last placeholder is what every filled
    // host ends with; a rule about a name ending with it may hit.
    let tail = host_template
        .rsplit_once('}')
        .map(|(_, t)| t)
        .unwrap_or(host_template);
    let name = rule.strip_prefix("*.").unwrap_or(rule);
    name.ends_with(tail) || tail.ends_with(&format!(".{name}")) || tail == format!(".{name}")
}

/// Whether a rule denies every filling of a host template.
fn rule_denies_all(rule: &str, host_template: &str) -> bool {
    if !host_template.contains('{') {
        return host_matches(rule, host_template);
    }
    let tail = host_template
        .rsplit_once('}')
        .map(|(_, t)| t)
        .unwrap_or(host_template);
    match rule.strip_prefix("*.") {
        Some(suffix) => tail == format!(".{suffix}") || tail.ends_with(&format!(".{suffix}")),
        None => false,
    }
}

/// Computes the effective permissions: manifest ∩ policy.
pub fn effective(manifest: &Manifest, policy: &PluginPolicy) -> Effective {
    effective_for(manifest, policy, crate::risks::ExchangeExport::Always)
}

/// [`effective`] for a component whose `exchange` export is known (its
/// contract version and world decide whether raw credentials reach it;
/// see [`crate::risks::ExchangeExport`]).
pub fn effective_for(
    manifest: &Manifest,
    policy: &PluginPolicy,
    exchange: crate::risks::ExchangeExport,
) -> Effective {
    let mut warnings = Vec::new();
    let limits = effective_limits(manifest.limits, &policy.limits, &mut warnings);
    let limits = policy.ceilings.clamp_limits(limits, &mut warnings);
    let schedule = policy
        .ceilings
        .clamp_schedule(manifest.schedule, &mut warnings);
    let declared_rpm = manifest.schedule.requests_per_minute;
    let rpm = match policy.requests_per_minute {
        Some(v) if v > declared_rpm => {
            warnings.push(format!(
                "policy requests_per_minute = {v} is above the manifest's {declared_rpm}; ignored (a policy can only lower the rate budget)"
            ));
            declared_rpm
        }
        Some(v) => v,
        None => declared_rpm,
    };
    let declared_secrets: BTreeSet<&str> =
        manifest.secrets.iter().map(|s| s.name.as_str()).collect();
    for name in &policy.refuse_secrets {
        if !declared_secrets.contains(name.as_str()) {
            warnings.push(format!(
                "policy refuses secret `{name}`, which the plugin does not declare"
            ));
        }
    }
    let mut http = Vec::new();
    for grant in &manifest.http {
        let parts = split_template(&grant.url);
        let fields: Vec<ConfigDependency> = UrlTemplate::parse(&grant.url)
            .map(|t| t.placeholders())
            .unwrap_or_default()
            .into_iter()
            .map(|name| {
                let decl = manifest.config.iter().find(|f| f.name == name);
                ConfigDependency {
                    pattern: decl
                        .map(|f| format!("^(?:{})$", f.pattern))
                        .unwrap_or_default(),
                    default: decl.and_then(|f| f.default.clone()),
                    shapes_host: crate::rules::host_fields(&grant.url).contains(&name),
                    name,
                }
            })
            .collect();
        let url_with_defaults = fields
            .iter()
            .fold(grant.url.clone(), |url, f| match &f.default {
                Some(value) => url.replace(&format!("{{{}}}", f.name), value),
                None => url,
            });
        let host_families = manifest.host_families(&parts.host);
        let operator_named_host = manifest.is_operator_named(&parts.host);
        let denied_hosts: Vec<String> = policy
            .deny_hosts
            .iter()
            .filter(|r| host_families.iter().any(|h| rule_may_match(r, h)))
            .cloned()
            .collect();
        let host_denied = host_families
            .iter()
            .all(|h| policy.deny_hosts.iter().any(|r| rule_denies_all(r, h)));
        let denied_paths: Vec<String> = policy
            .deny_paths
            .iter()
            .filter(|p| p.starts_with(&parts.path) || path_under(p, &parts.path))
            .cloned()
            .collect();
        let all_paths_denied = policy.deny_paths.iter().any(|p| path_under(p, &parts.path));
        let effective_secrets: Vec<String> = grant
            .secrets
            .iter()
            .filter(|s| !policy.refuses_secret(s))
            .cloned()
            .collect();
        let status = if host_denied || all_paths_denied {
            GrantStatus::Denied
        } else if !denied_hosts.is_empty()
            || !denied_paths.is_empty()
            || effective_secrets.len() != grant.secrets.len()
        {
            GrantStatus::Narrowed
        } else {
            GrantStatus::Granted
        };
        let denied = status == GrantStatus::Denied;
        http.push(GrantView {
            url: grant.url.clone(),
            scheme: parts.scheme,
            host: parts.host,
            port: parts.port,
            path_prefix: parts.path,
            config_fields: fields,
            url_with_defaults,
            operator_named_host,
            host_families,
            methods: Pair {
                requested: grant.methods.clone(),
                effective: if denied {
                    Vec::new()
                } else {
                    grant.methods.clone()
                },
            },
            secrets: Pair {
                requested: grant.secrets.clone(),
                effective: if denied {
                    Vec::new()
                } else {
                    effective_secrets
                },
            },
            secrets_in_body: grant.secrets_in_body,
            allow_params: grant.allow_params,
            status,
            denied_paths,
            denied_hosts,
        });
    }
    let secrets = manifest
        .secrets
        .iter()
        .map(|s| {
            let requested: Vec<String> = manifest
                .http
                .iter()
                .filter(|g| g.secrets.contains(&s.name))
                .map(|g| g.url.clone())
                .collect();
            let effective_to: Vec<String> = http
                .iter()
                .filter(|g| g.secrets.effective.contains(&s.name))
                .map(|g| g.url.clone())
                .collect();
            SecretView {
                name: s.name.clone(),
                description: s.description.clone(),
                sent_to: Pair {
                    requested,
                    effective: effective_to,
                },
                refused: policy.refuses_secret(&s.name),
            }
        })
        .collect();
    let config = manifest
        .config
        .iter()
        .map(|f| ConfigView {
            name: f.name.clone(),
            pattern: format!("^(?:{})$", f.pattern),
            required: f.required,
            default: f.default.clone(),
            shapes_host: http
                .iter()
                .any(|g| crate::rules::host_fields(&g.url).contains(&f.name)),
        })
        .collect();
    Effective {
        key: manifest.key.clone(),
        version: manifest.version.clone(),
        vendor: manifest.vendor.clone(),
        auth: serde_json::to_value(&manifest.auth).unwrap_or(serde_json::Value::Null),
        risks: risks(
            manifest,
            &http,
            &limits,
            &schedule,
            &policy.ceilings,
            exchange,
        ),
        config,
        http,
        secrets,
        limits: Pair {
            requested: manifest.limits,
            effective: limits,
        },
        schedule: Pair {
            requested: manifest.schedule,
            effective: schedule,
        },
        ceilings: policy.ceilings,
        requests_per_minute: Pair {
            requested: declared_rpm,
            effective: rpm,
        },
        policy: policy.clone(),
        warnings,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const M: &str = r#"
key = "okta"
name = "Okta"
version = "0.1.0"
vendor = "Ward"
auth = { kind = "api-token", secret = "api_token" }

[[config]]
name = "domain"
pattern = "[a-z0-9-]+"

[[secrets]]
name = "api_token"

[[http]]
url = "https://{domain}.okta.com/api/v1/"
methods = ["GET"]
secrets = ["api_token"]

[[http]]
url = "https://static.example.com/"
methods = ["GET"]

[limits]
memory_mib = 64
"#;

    #[test]
    fn policy_only_narrows() {
        let m = Manifest::parse(M).unwrap();
        let policy: PluginPolicy = toml::from_str(
            r#"
deny_hosts = ["static.example.com"]
deny_paths = ["/api/v1/users"]
refuse_secrets = []
requests_per_minute = 1000
[limits]
memory_mib = 32
cpu_ms = 999999
"#,
        )
        .unwrap();
        policy.validate().unwrap();
        let e = effective(&m, &policy);
        assert_eq!(e.limits.effective.memory_mib, 32);
        assert_eq!(e.limits.effective.cpu_ms, m.limits.cpu_ms);
        assert_eq!(e.requests_per_minute.effective, 60);
        assert_eq!(e.warnings.len(), 2, "{:?}", e.warnings);
        assert_eq!(e.http[0].status, GrantStatus::Narrowed);
        assert_eq!(e.http[0].denied_paths, vec!["/api/v1/users".to_string()]);
        assert_eq!(e.http[1].status, GrantStatus::Denied);
        assert!(policy.denies_path("/api/v1/users/00u1"));
        assert!(!policy.denies_path("/api/v1/usersettings"));
        assert!(policy.denies_host("STATIC.example.com"));
    }

    #[test]
    fn wildcard_and_secret_refusal() {
        let m = Manifest::parse(M).unwrap();
        let policy = PluginPolicy {
            deny_hosts: vec!["*.okta.com".into()],
            refuse_secrets: vec!["api_token".into()],
            ..PluginPolicy::default()
        };
        let e = effective(&m, &policy);
        assert_eq!(e.http[0].status, GrantStatus::Denied);
        assert!(e.secrets[0].refused);
        assert!(e.secrets[0].sent_to.effective.is_empty());
        assert!(!policy.denies_host("okta.com"));
        assert!(policy.denies_host("acme.okta.com"));
        assert!(toml::from_str::<PluginPolicy>("allow_hosts = []").is_err());
        assert!(
            PluginPolicy {
                deny_hosts: vec!["https://x".into()],
                ..Default::default()
            }
            .validate()
            .is_err()
        );
    }
}
