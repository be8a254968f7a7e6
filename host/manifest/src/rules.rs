//! Rules that keep a manifest from hiding where secrets go, checked when a
//! manifest is loaded, plus the check of a filled host that every grant
//! passes before any request.
//!
//! - A config field used in a URL **host** must have a pattern whose
//!   language is a sequence of DNS label characters: every literal and
//!   every class in the pattern's syntax tree lies within `[A-Za-z0-9.-]`.
//!   This is decided on the parsed regular expression (`regex-syntax`), so
//!   `.*`, `\S+`, `[^/]+` or a class that admits `#`, `/`, `@` or `:` is
//!   refused whatever way it is written.
//! - A grant bound to a secret must use `https`; its host must be a name,
//!   not an IP literal. No host may contain a wildcard.
//! - Schedule values are bounded so that date arithmetic cannot overflow.
//!
//! [`check_host`] re-validates a filled host as a DNS name.

use regex_syntax::hir::{Class, Hir, HirKind};

use crate::{Manifest, UrlTemplate};

/// Longest backfill window a manifest may declare at all (the daemon's
/// ceiling, `limits.max_backfill_days`, is usually far lower).
pub const MAX_DECLARED_BACKFILL_DAYS: u32 = 3_650;

/// Whether `c` may appear in a host name a pattern produces.
fn host_char(c: u32) -> bool {
    char::from_u32(c).is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

/// The first character (as text) outside `[A-Za-z0-9.-]` that `hir` can
/// match, or `None` when its whole language is made of host characters.
fn foreign_char(hir: &Hir) -> Option<String> {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => None,
        HirKind::Literal(lit) => String::from_utf8_lossy(&lit.0)
            .chars()
            .find(|c| !host_char(u32::from(*c)))
            .map(|c| format!("{c:?}")),
        HirKind::Class(Class::Unicode(class)) => class
            .ranges()
            .iter()
            .find_map(|r| (u32::from(r.start())..=u32::from(r.end())).find(|c| !host_char(*c)))
            .map(describe_char),
        HirKind::Class(Class::Bytes(class)) => class
            .ranges()
            .iter()
            .find_map(|r| (u32::from(r.start())..=u32::from(r.end())).find(|c| !host_char(*c)))
            .map(describe_char),
        HirKind::Repetition(rep) => foreign_char(&rep.sub),
        HirKind::Capture(cap) => foreign_char(&cap.sub),
        HirKind::Concat(subs) | HirKind::Alternation(subs) => subs.iter().find_map(foreign_char),
    }
}

fn describe_char(c: u32) -> String {
    match char::from_u32(c) {
        Some(ch) if !ch.is_control() => format!("{ch:?}"),
        _ => format!("U+{c:04X}"),
    }
}

/// Checks that every value `pattern` accepts is made of DNS label
/// characters (letters, digits, `-`, `.`). The error says which character
/// the pattern admits.
pub fn host_pattern(pattern: &str) -> Result<(), String> {
    let hir = regex_syntax::Parser::new()
        .parse(&format!("^(?:{pattern})$"))
        .map_err(|e| format!("pattern does not parse: {e}"))?;
    match foreign_char(&hir) {
        None => Ok(()),
        Some(c) => Err(format!(
            "pattern {pattern:?} can match {c}, but a value used in a URL host may only contain letters, digits, `-` and `.`; narrow it (for example [a-z0-9][a-z0-9-]{{0,62}})"
        )),
    }
}

/// Why a filled host is not a DNS name.
pub fn check_host(host: &str) -> Result<(), String> {
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.is_empty() || name.len() > 253 {
        return Err(format!(
            "host {host:?} is not a DNS name (1 to 253 characters)"
        ));
    }
    if name.parse::<std::net::IpAddr>().is_ok() || name.starts_with('[') {
        return Err(format!(
            "host {host:?} is an IP literal; grants name hosts by DNS name"
        ));
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(format!(
                "host {host:?} has an empty or over-long (> 63) label"
            ));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return Err(format!(
                "host {host:?} has label {label:?}: only letters, digits and inner `-` are allowed"
            ));
        }
    }
    // A name whose last label is all digits reads as an IPv4 address to
    // many resolvers (`1.2.3.4`, `0x7f.1`).
    if name
        .rsplit('.')
        .next()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!(
            "host {host:?} ends in a numeric label and would be read as an IP address"
        ));
    }
    Ok(())
}

/// The host part of a URL template (`{domain}.okta.com`), without port.
pub fn template_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    if authority.starts_with('[') {
        return authority
            .find(']')
            .map_or(authority, |end| &authority[..=end]);
    }
    authority
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(authority, |(host, _)| host)
}

/// Whether the literal host of a template is an IP address.
pub fn is_ip_literal(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<std::net::IpAddr>().is_ok()
}

/// Config fields whose values shape the host of `url`.
pub fn host_fields(url: &str) -> Vec<String> {
    UrlTemplate {
        text: template_host(url).to_string(),
    }
    .placeholders()
}

/// Applies every rule; the error names the manifest field at fault.
pub(crate) fn check(manifest: &Manifest) -> Result<(), String> {
    let mut urls: Vec<(String, &str)> = manifest
        .http
        .iter()
        .enumerate()
        .map(|(i, g)| (format!("http[{i}].url"), g.url.as_str()))
        .collect();
    if let Some(crate::Auth::Oauth2 {
        token_url: Some(t), ..
    }) = manifest.oauth2()
    {
        urls.push(("auth.token_url".to_string(), t.as_str()));
    }
    for (field, url) in &urls {
        let host = template_host(url);
        if host.contains('*') {
            return Err(format!(
                "{field} {url}: wildcard hosts are refused; name each host (or use a `{{field}}` with a DNS-label pattern)"
            ));
        }
        for name in host_fields(url) {
            let Some(decl) = manifest.config.iter().find(|f| f.name == name) else {
                continue; // reported by the placeholder check
            };
            host_pattern(&decl.pattern).map_err(|e| {
                format!("config.{name}.pattern (used in the host of {field} {url}): {e}")
            })?;
        }
    }
    for (i, grant) in manifest.http.iter().enumerate() {
        let host = template_host(&grant.url);
        let bound = !grant.secrets.is_empty();
        if bound && grant.url.starts_with("http://") {
            return Err(format!(
                "http[{i}].url {}: a grant bound to secrets ({}) must use https; plaintext would expose them on the network",
                grant.url,
                grant.secrets.join(", ")
            ));
        }
        if bound && is_ip_literal(host) {
            return Err(format!(
                "http[{i}].url {}: a grant bound to secrets must name its host; IP-literal hosts cannot be checked against a certificate name or reviewed",
                grant.url
            ));
        }
    }
    let schedule = &manifest.schedule;
    if schedule.backfill_days > MAX_DECLARED_BACKFILL_DAYS {
        return Err(format!(
            "schedule.backfill_days = {} is above {MAX_DECLARED_BACKFILL_DAYS}",
            schedule.backfill_days
        ));
    }
    for (name, value) in [
        ("schedule.poll_interval_secs", schedule.poll_interval_secs),
        ("schedule.requests_per_minute", schedule.requests_per_minute),
        (
            "limits.requests_per_call",
            manifest.limits.requests_per_call,
        ),
        ("limits.page_items", manifest.limits.page_items),
    ] {
        if value == 0 {
            return Err(format!("{name} must be at least 1"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn host_patterns_are_decided_on_the_syntax_tree() {
        for ok in [
            "[a-z0-9][a-z0-9-]{0,62}",
            "[a-z]+(\\.[a-z]+)*",
            "acme|example",
            "(?-u:\\d)+",
        ] {
            assert!(host_pattern(ok).is_ok(), "{ok} refused");
        }
        for bad in [
            ".*",
            "[^/]+",
            "\\S+",
            "[a-z]+#?",
            "[a-z/]+",
            "[a-z]+@x",
            "[a-z]+(:[0-9]+)?",
            "\\w+",
            "[\\x00-\\x7f]+",
            "[a-z]+|.",
            "(?s).",
            // Unicode case folding admits U+212A (Kelvin sign) and U+017F.
            "(?i)[a-z]+",
            // Unicode digits are more than 0-9.
            "\\d+",
        ] {
            assert!(host_pattern(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn filled_hosts_are_dns_names() {
        check_host("acme.okta.com").unwrap();
        check_host("xn--d1acufc.example").unwrap();
        for bad in [
            "",
            "127.0.0.1",
            "[::1]",
            "a..b",
            "-a.com",
            "a_b.com",
            "evil.com#.okta.com",
            "1.2.3.4",
            "x.123",
        ] {
            assert!(check_host(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn template_hosts() {
        assert_eq!(template_host("https://{d}.okta.com/api/"), "{d}.okta.com");
        assert_eq!(template_host("https://h.example:8443/"), "h.example");
        assert_eq!(template_host("http://[::1]:80/"), "[::1]");
        assert!(is_ip_literal("[::1]"));
        assert!(is_ip_literal("10.0.0.1"));
        assert_eq!(
            host_fields("https://{d}.okta.com/{p}/"),
            vec!["d".to_string()]
        );
    }
}
