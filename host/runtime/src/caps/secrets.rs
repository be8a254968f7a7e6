//! Secrets by reference.
//!
//! A plugin never reads a stored secret: it writes `{{secret:NAME}}` where
//! the value belongs, and the HTTP capability substitutes it only when the
//! request matches a grant bound to `NAME`. Everything a plugin returns is
//! passed through [`Redactor`] so that a secret the plugin got hold of
//! (from `exchange`, or echoed by a provider) cannot leave through events,
//! cursors, errors or logs.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;

const PREFIX: &str = "{{secret:";
const SUFFIX: &str = "}}";

/// The secrets of one instance, by name.
#[derive(Clone, Default)]
pub struct SecretSet {
    values: BTreeMap<String, String>,
}

impl fmt::Debug for SecretSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names only: this type ends up in logs through error contexts.
        f.debug_struct("SecretSet")
            .field("names", &self.values.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl SecretSet {
    /// Wraps name/value pairs.
    pub fn new(values: BTreeMap<String, String>) -> SecretSet {
        SecretSet { values }
    }

    /// Whether no secret is stored.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Builds the redactor for this set.
    pub fn redactor(&self) -> Redactor {
        Redactor::new(self.values.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    /// Whether a secret of that name is bound.
    pub fn contains(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }
}

/// The names referenced in `text`, in order of appearance. A reference that
/// never closes is reported as malformed so it is not sent out verbatim.
pub fn references(text: &str) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(PREFIX) {
        let after = &rest[start + PREFIX.len()..];
        let Some(end) = after.find(SUFFIX) else {
            return Err("unterminated {{secret:...}} reference".into());
        };
        names.push(after[..end].to_string());
        rest = &after[end + SUFFIX.len()..];
    }
    Ok(names)
}

/// Replaces every reference in `text` with the secret's value. The caller
/// has already checked that each referenced name is allowed.
pub fn substitute(text: &str, secrets: &SecretSet) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(PREFIX) {
        out.push_str(&rest[..start]);
        let after = &rest[start + PREFIX.len()..];
        let end = after
            .find(SUFFIX)
            .ok_or_else(|| "unterminated {{secret:...}} reference".to_string())?;
        let name = &after[..end];
        let value = secrets
            .get(name)
            .ok_or_else(|| format!("the instance has no secret named `{name}`"))?;
        out.push_str(value);
        rest = &after[end + SUFFIX.len()..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Finds stored secret values (and their common encodings) in text and
/// replaces them with `[REDACTED:NAME]`.
#[derive(Clone, Default)]
pub struct Redactor {
    // (needle, replacement), longest needles first so a secret that contains
    // another is replaced whole.
    needles: Vec<(String, String)>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redactor({} needles)", self.needles.len())
    }
}

/// Values shorter than this are not searched for: they would match
/// ordinary text everywhere and no real credential is that short.
const MIN_SECRET_LEN: usize = 6;

impl Redactor {
    /// A redactor for the given (name, value) pairs.
    pub fn new<'a>(secrets: impl IntoIterator<Item = (&'a str, &'a str)>) -> Redactor {
        let mut needles = Vec::new();
        for (name, value) in secrets {
            if value.len() < MIN_SECRET_LEN {
                continue;
            }
            let replacement = format!("[REDACTED:{name}]");
            let b64 = base64::engine::general_purpose::STANDARD;
            let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let variants = [
                value.to_string(),
                b64.encode(value),
                b64url.encode(value),
                percent_encode(value),
                // JSON-escaped form, as it appears inside a serialised string.
                serde_json::to_string(value)
                    .map(|s| s.trim_matches('"').to_string())
                    .unwrap_or_default(),
            ];
            for v in variants {
                if v.len() >= MIN_SECRET_LEN && !needles.iter().any(|(n, _)| n == &v) {
                    needles.push((v, replacement.clone()));
                }
            }
        }
        needles.sort_by_key(|n| std::cmp::Reverse(n.0.len()));
        Redactor { needles }
    }

    /// Redacts in place; returns how many occurrences were replaced.
    pub fn redact(&self, text: &mut String) -> usize {
        let mut count = 0;
        for (needle, replacement) in &self.needles {
            if text.contains(needle.as_str()) {
                count += text.matches(needle.as_str()).count();
                *text = text.replace(needle.as_str(), replacement);
            }
        }
        count
    }

    /// Redacts an optional string in place.
    pub fn redact_opt(&self, text: &mut Option<String>) -> usize {
        text.as_mut().map_or(0, |t| self.redact(t))
    }

    /// Returns a redacted copy.
    pub fn redacted(&self, text: &str) -> String {
        let mut s = text.to_string();
        self.redact(&mut s);
        s
    }
}

fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn set() -> SecretSet {
        SecretSet::new(BTreeMap::from([(
            "api_token".to_string(),
            "00abcDEF+/token".to_string(),
        )]))
    }

    #[test]
    fn finds_and_substitutes_references() {
        let s = set();
        assert_eq!(
            references("SSWS {{secret:api_token}}").unwrap(),
            vec!["api_token"]
        );
        assert_eq!(
            substitute("SSWS {{secret:api_token}}", &s).unwrap(),
            "SSWS 00abcDEF+/token"
        );
        assert!(substitute("{{secret:other}}", &s).is_err());
        assert!(references("{{secret:api_token").is_err());
    }

    #[test]
    fn redacts_plain_and_encoded_forms() {
        let r = set().redactor();
        let b64 = base64::engine::general_purpose::STANDARD.encode("00abcDEF+/token");
        let mut text = format!("a 00abcDEF+/token b {b64} c 00abcDEF%2B%2Ftoken");
        assert_eq!(r.redact(&mut text), 3);
        assert!(!text.contains("00abcDEF"));
        assert!(text.contains("[REDACTED:api_token]"));
    }
}
