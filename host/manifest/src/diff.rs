//! Permission changes between two versions of a plugin.
//!
//! A change is a *widening* when the new version could do something the old
//! one could not: a new grant, method, secret binding, secret allowed in
//! bodies, higher limit or rate, a changed authentication block or a changed
//! pattern of a config field that URL templates are filled from (a looser
//! pattern may reach more hosts). Widenings are what hold an upgrade until
//! the operator approves it.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::{HttpGrantDecl, Manifest};

/// Which way a change moves the plugin's permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    /// Asks for more.
    Widening,
    /// Asks for less.
    Narrowing,
    /// Neither (descriptive fields).
    Neutral,
}

/// One permission change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// Which way.
    pub kind: ChangeKind,
    /// What changed: `http`, `http.methods`, `http.secrets`,
    /// `http.secrets_in_body`, `secrets`, `config.pattern`, `auth`,
    /// `limits.<name>`, `schedule.<name>`, `version`, `vendor`, `name`.
    pub subject: String,
    /// Human description, e.g. `new grant GET https://x/`.
    pub detail: String,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = match self.kind {
            ChangeKind::Widening => "+",
            ChangeKind::Narrowing => "-",
            ChangeKind::Neutral => "~",
        };
        write!(f, "{sign} {}: {}", self.subject, self.detail)
    }
}

fn change(kind: ChangeKind, subject: &str, detail: String) -> Change {
    Change {
        kind,
        subject: subject.to_string(),
        detail,
    }
}

fn set(items: &[String]) -> BTreeSet<&str> {
    items.iter().map(String::as_str).collect()
}

fn numeric(out: &mut Vec<Change>, subject: &str, old: u64, new: u64) {
    if new > old {
        out.push(change(
            ChangeKind::Widening,
            subject,
            format!("raised from {old} to {new}"),
        ));
    } else if new < old {
        out.push(change(
            ChangeKind::Narrowing,
            subject,
            format!("lowered from {old} to {new}"),
        ));
    }
}

fn grants(manifest: &Manifest) -> BTreeMap<&str, &HttpGrantDecl> {
    manifest.http.iter().map(|g| (g.url.as_str(), g)).collect()
}

/// Every permission change from `old` to `new`, widenings first.
pub fn diff(old: &Manifest, new: &Manifest) -> Vec<Change> {
    use ChangeKind::{Narrowing, Neutral, Widening};
    let mut out = Vec::new();
    for (subject, a, b) in [
        ("key", &old.key, &new.key),
        ("name", &old.name, &new.name),
        ("version", &old.version, &new.version),
        ("vendor", &old.vendor, &new.vendor),
    ] {
        if a != b {
            // A different vendor is descriptive here; trust is decided by the
            // signature, not by this field.
            out.push(change(Neutral, subject, format!("{a:?} -> {b:?}")));
        }
    }
    // Auth is compared as JSON so this code does not depend on its shape.
    let old_auth = serde_json::to_value(&old.auth).unwrap_or_default();
    let new_auth = serde_json::to_value(&new.auth).unwrap_or_default();
    if old_auth != new_auth {
        out.push(change(
            Widening,
            "auth",
            format!("authentication changed from {old_auth} to {new_auth}"),
        ));
    }

    let (old_grants, new_grants) = (grants(old), grants(new));
    for (url, g) in &new_grants {
        match old_grants.get(url) {
            None => out.push(change(
                Widening,
                "http",
                format!(
                    "new grant {} {url}{}",
                    g.methods.join(","),
                    if g.secrets.is_empty() {
                        String::new()
                    } else {
                        format!(" with secrets {}", g.secrets.join(","))
                    }
                ),
            )),
            Some(o) => {
                let (om, nm) = (set(&o.methods), set(&g.methods));
                for m in nm.difference(&om) {
                    out.push(change(
                        Widening,
                        "http.methods",
                        format!("{url} now allows {m}"),
                    ));
                }
                for m in om.difference(&nm) {
                    out.push(change(
                        Narrowing,
                        "http.methods",
                        format!("{url} no longer allows {m}"),
                    ));
                }
                let (os, ns) = (set(&o.secrets), set(&g.secrets));
                for s in ns.difference(&os) {
                    out.push(change(
                        Widening,
                        "http.secrets",
                        format!("secret `{s}` may now be sent to {url}"),
                    ));
                }
                for s in os.difference(&ns) {
                    out.push(change(
                        Narrowing,
                        "http.secrets",
                        format!("secret `{s}` no longer sent to {url}"),
                    ));
                }
                if o.secrets_in_body != g.secrets_in_body {
                    out.push(change(
                        if g.secrets_in_body {
                            Widening
                        } else {
                            Narrowing
                        },
                        "http.secrets_in_body",
                        format!(
                            "{url}: secrets in request bodies {}",
                            if g.secrets_in_body {
                                "now allowed"
                            } else {
                                "no longer allowed"
                            }
                        ),
                    ));
                }
                if o.allow_params != g.allow_params {
                    out.push(change(
                        if g.allow_params { Widening } else { Narrowing },
                        "http.allow_params",
                        format!(
                            "{url}: `;` path parameters {}",
                            if g.allow_params {
                                "now allowed"
                            } else {
                                "no longer allowed"
                            }
                        ),
                    ));
                }
            }
        }
    }
    for (url, g) in &old_grants {
        if !new_grants.contains_key(url) {
            out.push(change(
                Narrowing,
                "http",
                format!("grant {} {url} removed", g.methods.join(",")),
            ));
        }
    }

    let old_secrets: BTreeSet<&str> = old.secrets.iter().map(|s| s.name.as_str()).collect();
    let new_secrets: BTreeSet<&str> = new.secrets.iter().map(|s| s.name.as_str()).collect();
    for s in new_secrets.difference(&old_secrets) {
        out.push(change(Widening, "secrets", format!("new secret `{s}`")));
    }
    for s in old_secrets.difference(&new_secrets) {
        out.push(change(
            Narrowing,
            "secrets",
            format!("secret `{s}` removed"),
        ));
    }

    let used_in_urls: BTreeSet<String> = new
        .http
        .iter()
        .filter_map(|g| crate::UrlTemplate::parse(&g.url).ok())
        .flat_map(|t| t.placeholders())
        .collect();
    for field in &new.config {
        if let Some(o) = old.config.iter().find(|f| f.name == field.name)
            && o.pattern != field.pattern
        {
            let kind = if used_in_urls.contains(&field.name) {
                Widening
            } else {
                Neutral
            };
            out.push(change(
                kind,
                "config.pattern",
                format!(
                    "field `{}` pattern {:?} -> {:?}{}",
                    field.name,
                    o.pattern,
                    field.pattern,
                    if kind == Widening {
                        " (it fills URL templates, so it may reach other hosts or paths)"
                    } else {
                        ""
                    }
                ),
            ));
        }
    }

    let (a, b) = (old.limits, new.limits);
    numeric(
        &mut out,
        "limits.memory_mib",
        a.memory_mib.into(),
        b.memory_mib.into(),
    );
    numeric(&mut out, "limits.cpu_ms", a.cpu_ms.into(), b.cpu_ms.into());
    numeric(
        &mut out,
        "limits.wall_ms",
        a.wall_ms.into(),
        b.wall_ms.into(),
    );
    numeric(
        &mut out,
        "limits.requests_per_call",
        a.requests_per_call.into(),
        b.requests_per_call.into(),
    );
    numeric(
        &mut out,
        "limits.response_bytes",
        a.response_bytes,
        b.response_bytes,
    );
    numeric(
        &mut out,
        "limits.request_bytes",
        a.request_bytes,
        b.request_bytes,
    );
    numeric(
        &mut out,
        "limits.output_bytes",
        a.output_bytes,
        b.output_bytes,
    );
    numeric(
        &mut out,
        "limits.page_items",
        a.page_items.into(),
        b.page_items.into(),
    );
    numeric(
        &mut out,
        "schedule.requests_per_minute",
        old.schedule.requests_per_minute.into(),
        new.schedule.requests_per_minute.into(),
    );
    let ceiling = |m: &Manifest| {
        m.rate_limit
            .as_ref()
            .map_or(0, |r| r.max_requests_per_minute)
    };
    numeric(
        &mut out,
        "rate_limit.max_requests_per_minute",
        ceiling(old).into(),
        ceiling(new).into(),
    );
    // Stable: widenings, then narrowings, then neutral; order of discovery
    // within a kind.
    out.sort_by_key(|c| c.kind);
    out
}

/// What `new` asks for beyond `approved`, one line each (empty: no
/// widening, the upgrade may load without approval).
pub fn widens(approved: &Manifest, new: &Manifest) -> Vec<String> {
    diff(approved, new)
        .into_iter()
        .filter(|c| c.kind == ChangeKind::Widening)
        .map(|c| format!("{}: {}", c.subject, c.detail))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const OLD: &str = r#"
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
methods = ["GET", "POST"]
secrets = ["api_token"]
"#;

    #[test]
    fn widenings_come_first() {
        let old = Manifest::parse(OLD).unwrap();
        let new_text = OLD
            .replace("0.1.0", "0.2.0")
            .replace("[\"GET\", \"POST\"]", "[\"GET\"]")
            + "\n[[http]]\nurl = \"https://exfil.example/\"\nmethods = [\"POST\"]\nsecrets = [\"api_token\"]\n[limits]\ncpu_ms = 10000\n";
        let new = Manifest::parse(&new_text).unwrap();
        let changes = diff(&old, &new);
        let kinds: Vec<ChangeKind> = changes.iter().map(|c| c.kind).collect();
        let mut sorted = kinds.clone();
        sorted.sort();
        assert_eq!(kinds, sorted);
        let w = widens(&old, &new);
        assert!(
            w.iter().any(|l| l.contains("https://exfil.example/")),
            "{w:?}"
        );
        assert!(w.iter().any(|l| l.contains("limits.cpu_ms")), "{w:?}");
        assert!(
            changes
                .iter()
                .any(|c| c.kind == ChangeKind::Narrowing
                    && c.detail.contains("no longer allows POST"))
        );
        assert!(widens(&old, &old).is_empty());
        assert!(widens(&new, &old).iter().all(|l| !l.contains("exfil")));
    }
}
