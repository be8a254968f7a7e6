//! The risk list a reviewer reads first in `ward plugin inspect`: where
//! secrets go, plaintext schemes, raw credentials during connect, hosts a
//! config value shapes, broad path prefixes, secrets in bodies, limits at
//! the daemon's ceiling. Ordered by kind, most serious first.

use serde::Serialize;

use crate::policy::GrantView;
use crate::{Auth, Ceilings, Limits, Manifest, Schedule, rules};

/// What kind of exposure a risk is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RiskKind {
    /// A grant uses `http://` (only unbound grants may; still readable on
    /// the network).
    PlaintextScheme,
    /// A grant names an IP address (unbound only; no certificate name).
    IpLiteralHost,
    /// Secrets are substituted into requests to this host.
    SecretsSentToHost,
    /// The plugin's `exchange` export receives raw credentials.
    RawCredentialsInExchange,
    /// A config value chooses (part of) the host.
    ConfigShapesHost,
    /// Secrets may be substituted into request bodies.
    SecretsInBody,
    /// A grant covers a whole host (`/`).
    BroadPathPrefix,
    /// A grant lets request paths carry `;` parameters (`allow_params`),
    /// which some servers read as path or matrix parameters.
    AllowParams,
    /// An effective limit sits at the daemon's ceiling.
    LimitAtCeiling,
}

/// One entry of the risk list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Risk {
    /// Kind (stable, kebab-case).
    pub kind: RiskKind,
    /// What it is about: a grant URL, a config field, a limit.
    pub subject: String,
    /// One sentence for the reviewer.
    pub detail: String,
}

/// Whether (and when) a component exports the contract's `exchange`:
/// what decides if raw credentials reach it during connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExchangeExport {
    /// Contract 0.1 (every component exports `exchange` and the host hands
    /// it every grant), or a component not inspected: assume the worst.
    #[default]
    Always,
    /// Contract 0.2, world `plugin-with-exchange`: used for the auth
    /// methods whose manifest entry says `exchange = "plugin"`.
    WhenAsked,
    /// Contract 0.2, world `plugin`: the host stores and exchanges every
    /// credential; none reaches the guest.
    Never,
}

/// Whether the credentials of `auth` pass through the plugin's `exchange`
/// export during connect.
fn exchange_sees_credentials(auth: &Auth, export: ExchangeExport) -> bool {
    match export {
        ExchangeExport::Always => true,
        ExchangeExport::WhenAsked => auth.exchange_by() == crate::ExchangeBy::Plugin,
        ExchangeExport::Never => false,
    }
}

/// Builds the risk list from the manifest and its effective grants, limits
/// and schedule.
pub fn risks(
    manifest: &Manifest,
    http: &[GrantView],
    limits: &Limits,
    schedule: &Schedule,
    ceilings: &Ceilings,
    exchange: ExchangeExport,
) -> Vec<Risk> {
    let mut out = Vec::new();
    let mut push = |kind, subject: &str, detail: String| {
        out.push(Risk {
            kind,
            subject: subject.to_string(),
            detail,
        })
    };
    for g in http {
        if g.scheme == "http" {
            push(
                RiskKind::PlaintextScheme,
                &g.url,
                "plaintext http: requests and responses can be read and altered on the network (no secret is bound to it)".into(),
            );
        }
        if rules::is_ip_literal(&g.host) {
            push(
                RiskKind::IpLiteralHost,
                &g.url,
                format!(
                    "the grant names the address {} instead of a host name",
                    g.host
                ),
            );
        }
        if !g.secrets.effective.is_empty() {
            push(
                RiskKind::SecretsSentToHost,
                &g.url,
                format!(
                    "secrets {} are sent to {}://{}:{}{}",
                    g.secrets.effective.join(", "),
                    g.scheme,
                    g.host,
                    g.port,
                    g.path_prefix
                ),
            );
        }
        for field in rules::host_fields(&g.url) {
            let pattern = g
                .config_fields
                .iter()
                .find(|f| f.name == field)
                .map(|f| f.pattern.as_str())
                .unwrap_or_default();
            push(
                RiskKind::ConfigShapesHost,
                &g.url,
                format!(
                    "config field `{field}` chooses the host (values must match {pattern}); whoever sets the configuration decides where {} go",
                    if g.secrets.effective.is_empty() {
                        "the requests".to_string()
                    } else {
                        format!("the secrets {}", g.secrets.effective.join(", "))
                    }
                ),
            );
        }
        if g.secrets_in_body && !g.secrets.effective.is_empty() {
            push(
                RiskKind::SecretsInBody,
                &g.url,
                format!(
                    "secrets {} may be substituted into request bodies",
                    g.secrets.effective.join(", ")
                ),
            );
        }
        if g.path_prefix == "/" {
            push(
                RiskKind::BroadPathPrefix,
                &g.url,
                format!("every path on {} is granted", g.host),
            );
        }
        if g.allow_params {
            push(
                RiskKind::AllowParams,
                &g.url,
                format!(
                    "paths under {}://{}{} may carry `;` parameters (allow_params), which the server may read differently from Ward's canonical path",
                    g.scheme, g.host, g.path_prefix
                ),
            );
        }
    }
    for auth in manifest
        .auth
        .iter()
        .filter(|a| exchange_sees_credentials(a, exchange))
    {
        push(
            RiskKind::RawCredentialsInExchange,
            &format!("auth {}", auth.kind()),
            format!(
                "this plugin sees raw credentials during connect: its exchange export receives the {} credentials",
                auth.kind()
            ),
        );
    }
    for name in ceilings.reached(limits, schedule) {
        push(
            RiskKind::LimitAtCeiling,
            &name,
            format!("{name} is at the daemon's ceiling (limits.max_* in ward.toml)"),
        );
    }
    out.sort_by_key(|r| r.kind);
    out
}
