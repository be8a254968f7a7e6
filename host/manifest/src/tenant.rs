//! Tenant addresses as operators type them.
//!
//! A config field that names a provider tenant may declare a `tenant` table:
//! the host family its values live under (`suffix = "zendesk.com"`, or
//! `suffix_field` naming a field whose `values` list the families, as Okta's
//! cells) or nothing, for a field that holds a whole host name the operator
//! chooses (a custom URL domain). Before validation a value is normalised:
//! `acme`, `acme.zendesk.com`, `https://acme.zendesk.com/agent/` all become
//! `acme`; a value that cannot be a tenant of the provider is refused with an
//! accepted example. The provider knowledge stays in the manifest.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{ConfigField, Manifest};

/// How a config field that names (part of) a provider host is normalised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantHost {
    /// An accepted value, shown in refusals (`acme`).
    pub example: String,
    /// The one host family tenants live under (`zendesk.com`): the field
    /// holds the label before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
    /// A config field with `values` listing the host families (Okta's
    /// `okta.com`, `oktapreview.com`, ...): the field holds the label before
    /// one of them, and a full host name also sets that field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix_field: Option<String>,
    /// Advice appended to refusals (another field to use, for instance).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hint: String,
}

impl TenantHost {
    /// Whether the field holds a whole host name chosen by the operator
    /// (no provider host family).
    pub fn is_whole_host(&self) -> bool {
        self.suffix.is_none() && self.suffix_field.is_none()
    }
}

/// The pattern a field with `values` gets: exactly one of them.
pub(crate) fn values_pattern(values: &[String]) -> String {
    values
        .iter()
        .map(|v| regex::escape(v))
        .collect::<Vec<_>>()
        .join("|")
}

/// Checks every `tenant` table of a manifest; returns what is wrong.
pub(crate) fn validate(manifest: &Manifest) -> Result<(), String> {
    for field in &manifest.config {
        let Some(tenant) = &field.tenant else {
            continue;
        };
        if tenant.suffix.is_some() && tenant.suffix_field.is_some() {
            return Err(format!(
                "config field `{}`: declare `tenant.suffix` or `tenant.suffix_field`, not both",
                field.name
            ));
        }
        if let Some(suffix) = &tenant.suffix
            && !is_host_name(suffix)
        {
            return Err(format!(
                "config field `{}`: tenant.suffix {suffix:?} is not a lower-case host name",
                field.name
            ));
        }
        if let Some(name) = &tenant.suffix_field {
            let families = manifest
                .config
                .iter()
                .find(|f| &f.name == name)
                .map(|f| f.values.as_slice())
                .unwrap_or_default();
            if families.is_empty() {
                return Err(format!(
                    "config field `{}`: tenant.suffix_field `{name}` must name a config field with `values`",
                    field.name
                ));
            }
            if let Some(bad) = families.iter().find(|v| !is_host_name(v)) {
                return Err(format!(
                    "config field `{name}`: value {bad:?} is not a lower-case host name"
                ));
            }
        }
        let example = normalize_value(manifest, field, tenant, &tenant.example, None)
            .map_err(|e| format!("config field `{}`: tenant.example: {e}", field.name))?;
        let pattern = crate::anchored(&field.pattern).map_err(|e| e.to_string())?;
        if !pattern.is_match(&example.value) {
            return Err(format!(
                "config field `{}`: tenant.example {:?} does not match the field's pattern",
                field.name, tenant.example
            ));
        }
    }
    Ok(())
}

/// A normalised tenant value and, for a full host name under one of several
/// families, the family it named.
struct Normalized {
    value: String,
    family: Option<(String, String)>,
}

/// Normalises every tenant field present in `given`; other entries are kept
/// as they are. Errors are the message for the operator.
pub(crate) fn normalize(
    manifest: &Manifest,
    given: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, String> {
    let mut out = given.clone();
    for field in &manifest.config {
        let (Some(tenant), Some(raw)) = (&field.tenant, given.get(&field.name)) else {
            continue;
        };
        let chosen = tenant
            .suffix_field
            .as_ref()
            .and_then(|f| given.get(f))
            .map(|v| v.trim().to_ascii_lowercase());
        let normalized = normalize_value(manifest, field, tenant, raw, chosen.as_deref())?;
        out.insert(field.name.clone(), normalized.value);
        if let Some((name, family)) = normalized.family {
            out.insert(name, family);
        }
    }
    Ok(out)
}

fn normalize_value(
    manifest: &Manifest,
    field: &ConfigField,
    tenant: &TenantHost,
    raw: &str,
    chosen_family: Option<&str>,
) -> Result<Normalized, String> {
    let families: Vec<&str> = match (&tenant.suffix, &tenant.suffix_field) {
        (Some(s), _) => vec![s.as_str()],
        (None, Some(name)) => manifest
            .config
            .iter()
            .find(|f| &f.name == name)
            .map(|f| f.values.iter().map(String::as_str).collect())
            .unwrap_or_default(),
        (None, None) => Vec::new(),
    };
    let refuse = || refusal(manifest, field, tenant, &families, raw);
    let host = host_of(raw).ok_or_else(refuse)?;
    if tenant.is_whole_host() {
        return Ok(Normalized {
            value: host,
            family: None,
        });
    }
    if !host.contains('.') {
        return Ok(Normalized {
            value: host,
            family: None,
        });
    }
    let (label, family) = families
        .iter()
        .find_map(|family| {
            host.strip_suffix(family)
                .and_then(|rest| rest.strip_suffix('.'))
                .filter(|label| !label.is_empty() && !label.contains('.'))
                .map(|label| (label.to_owned(), *family))
        })
        .ok_or_else(refuse)?;
    let family = match &tenant.suffix_field {
        Some(name) => {
            if let Some(chosen) = chosen_family.filter(|c| *c != family) {
                return Err(format!(
                    "field `{}` names a tenant under {family} ({raw:?}) but field `{name}` says {chosen:?}: give one of them",
                    field.name
                ));
            }
            Some((name.clone(), family.to_owned()))
        }
        None => None,
    };
    Ok(Normalized {
        value: label,
        family,
    })
}

/// The host name in what an operator pasted: a bare name or an http(s) URL
/// (path, query and trailing slash dropped). `None` for anything else: other
/// schemes, a user or password, a port, an IP address, an empty host.
fn host_of(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    let url = if raw.contains("://") {
        url::Url::parse(raw).ok()?
    } else {
        url::Url::parse(&format!("https://{raw}")).ok()?
    };
    if !matches!(url.scheme(), "https" | "http")
        || !url.username().is_empty()
        || url.password().is_some()
        || url.port().is_some()
    {
        return None;
    }
    match url.host()? {
        url::Host::Domain(d) => {
            let host = d.trim_end_matches('.').to_ascii_lowercase();
            is_host_name(&host).then_some(host)
        }
        url::Host::Ipv4(_) | url::Host::Ipv6(_) => None,
    }
}

/// Lower-case letters, digits, `-` and `.`, labels of 1 to 63 characters
/// neither starting nor ending with `-`.
fn is_host_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

fn refusal(
    manifest: &Manifest,
    field: &ConfigField,
    tenant: &TenantHost,
    families: &[&str],
    raw: &str,
) -> String {
    let hint = if tenant.hint.is_empty() {
        String::new()
    } else {
        format!("; {}", tenant.hint)
    };
    match families.first() {
        None => format!(
            "field `{}`: {raw:?} is not a host name: enter a host name such as `{}` (no port, user or IP address){hint}",
            field.name, tenant.example
        ),
        Some(first) => {
            let under = if families.len() > 1 {
                format!(
                    " ({} tenants live under {})",
                    manifest.name,
                    families.join(", ")
                )
            } else {
                String::new()
            };
            format!(
                "field `{}`: {raw:?} cannot be a {} tenant: enter `{}` or `{}.{first}`{under}{hint}",
                field.name, manifest.name, tenant.example, tenant.example
            )
        }
    }
}

/// The host families of a grant's host template: every placeholder whose
/// field lists `values` expanded (`{domain}.{base_domain}` gives
/// `{domain}.okta.com`, `{domain}.oktapreview.com`, ...).
pub(crate) fn host_families(manifest: &Manifest, host: &str) -> Vec<String> {
    let mut out = vec![host.to_owned()];
    for field in manifest.config.iter().filter(|f| !f.values.is_empty()) {
        let placeholder = format!("{{{}}}", field.name);
        if !host.contains(&placeholder) {
            continue;
        }
        out = out
            .iter()
            .flat_map(|h| field.values.iter().map(|v| h.replace(&placeholder, v)))
            .collect();
    }
    out
}

/// Whether a host template ends in a value the operator types rather than
/// in a provider's host family: a token sent there goes to an operator-named
/// host.
pub(crate) fn operator_named(manifest: &Manifest, host: &str) -> bool {
    host_families(manifest, host)
        .iter()
        .any(|h| h.ends_with('}'))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn host_of_accepts_names_and_urls_only() {
        for (raw, want) in [
            ("acme", Some("acme")),
            (" ACME.Okta.com. ", Some("acme.okta.com")),
            ("https://acme.okta.com/", Some("acme.okta.com")),
            (
                "http://acme.okta.com/admin/dashboard?x=1#y",
                Some("acme.okta.com"),
            ),
            ("acme.okta.com/app/UserHome", Some("acme.okta.com")),
            ("https://acme.okta.com:443/", Some("acme.okta.com")),
            ("https://acme.okta.com:8443/", None),
            ("https://user@acme.okta.com/", None),
            ("ftp://acme.okta.com/", None),
            ("127.0.0.1", None),
            ("[::1]", None),
            ("0x7f.1", None),
            ("", None),
            ("acme_corp", None),
        ] {
            assert_eq!(host_of(raw).as_deref(), want, "{raw}");
        }
    }

    const CELLS: &str = r#"
key = "okta"
name = "Okta"
version = "0.2.0"
vendor = "Ward"
auth = { kind = "api-token", secret = "api_token" }

[[config]]
name = "domain"
pattern = "[a-z0-9][a-z0-9-]{0,62}"
tenant = { example = "acme", suffix_field = "base_domain" }

[[config]]
name = "base_domain"
values = ["okta.com", "oktapreview.com"]
default = "okta.com"

[[config]]
name = "custom_domain"
pattern = "[a-z0-9.-]{1,253}"
required = false
tenant = { example = "login.acme.com" }

[[secrets]]
name = "api_token"

[[http]]
url = "https://{domain}.{base_domain}/api/v1/"
methods = ["GET"]
secrets = ["api_token"]

[[http]]
url = "https://{custom_domain}/api/v1/"
methods = ["GET"]
secrets = ["api_token"]
"#;

    fn given(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_full_host_sets_the_family_and_grants_follow() {
        let m = Manifest::parse(CELLS).unwrap();
        let config = m
            .validate_config(&given(&[("domain", "https://acme.oktapreview.com/")]))
            .unwrap();
        assert_eq!(config["domain"], "acme");
        assert_eq!(config["base_domain"], "oktapreview.com");
        let grants = m.grants_for(&config).unwrap();
        assert_eq!(grants.len(), 1, "the custom-domain grant needs the field");
        assert_eq!(grants[0].host, "acme.oktapreview.com");
        assert!(m.operator_named_hosts(&config).unwrap().is_empty());

        let bare = m.validate_config(&given(&[("domain", "acme")])).unwrap();
        assert_eq!(bare["base_domain"], "okta.com");
    }

    #[test]
    fn refusals_carry_an_example_and_values_are_enforced() {
        let m = Manifest::parse(CELLS).unwrap();
        for bad in ["acme.evil.com", "a.b.okta.com", "acme.okta.com:1", "x@acme"] {
            let e = m
                .validate_config(&given(&[("domain", bad)]))
                .unwrap_err()
                .to_string();
            assert!(e.contains("enter `acme` or `acme.okta.com`"), "{e}");
            assert!(e.contains("okta.com, oktapreview.com"), "{e}");
        }
        let e = m
            .validate_config(&given(&[("domain", "acme"), ("base_domain", "evil.com")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not one of: okta.com, oktapreview.com"), "{e}");
        let e = m
            .validate_config(&given(&[
                ("domain", "acme.oktapreview.com"),
                ("base_domain", "okta.com"),
            ]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("give one of them"), "{e}");
    }

    #[test]
    fn custom_domain_is_an_operator_named_host() {
        let m = Manifest::parse(CELLS).unwrap();
        let config = m
            .validate_config(&given(&[
                ("domain", "acme"),
                ("custom_domain", "HTTPS://Login.Acme.com/app"),
            ]))
            .unwrap();
        assert_eq!(config["custom_domain"], "login.acme.com");
        assert_eq!(m.grants_for(&config).unwrap().len(), 2);
        assert_eq!(
            m.operator_named_hosts(&config).unwrap(),
            vec!["login.acme.com".to_string()]
        );
        assert_eq!(
            m.host_families("{domain}.{base_domain}"),
            vec!["{domain}.okta.com", "{domain}.oktapreview.com"]
        );
        assert!(m.is_operator_named("{custom_domain}"));
        assert!(!m.is_operator_named("{domain}.{base_domain}"));
        for bad in ["10.0.0.1", "login.acme.com:444", "[::1]"] {
            let e = m
                .validate_config(&given(&[("domain", "acme"), ("custom_domain", bad)]))
                .unwrap_err()
                .to_string();
            assert!(e.contains("such as `login.acme.com`"), "{e}");
        }
    }

    #[test]
    fn manifest_rules_for_tenant_tables() {
        let both = CELLS.replace(
            "suffix_field = \"base_domain\" }",
            "suffix_field = \"base_domain\", suffix = \"okta.com\" }",
        );
        assert!(Manifest::parse(&both).is_err());
        let no_values = CELLS.replace(
            "suffix_field = \"base_domain\"",
            "suffix_field = \"custom_domain\"",
        );
        assert!(Manifest::parse(&no_values).is_err());
        let bad_example = CELLS.replace("example = \"acme\"", "example = \"acme.evil.com\"");
        assert!(Manifest::parse(&bad_example).is_err());
        let both_pattern = CELLS.replace(
            "values = [\"okta.com\", \"oktapreview.com\"]",
            "values = [\"okta.com\", \"oktapreview.com\"]\npattern = \".*\"",
        );
        assert!(Manifest::parse(&both_pattern).is_err());
        // Round trip through TOML keeps values and tenant tables.
        let m = Manifest::parse(CELLS).unwrap();
        assert_eq!(Manifest::parse(&toml::to_string(&m).unwrap()).unwrap(), m);
    }
}
