//! Secrets, end to end: the one module that knows stored secret values.
//!
//! A plugin never reads a stored secret: it writes `{{secret:NAME}}` where
//! the value belongs, and the HTTP capability substitutes it
//! ([`substitute`]) only when the request matches a grant bound to `NAME`.
//! Around that:
//! - [`Redactor`] finds every stored value in each encoding Ward knows
//!   (plain, base64, base64url, percent- and JSON-encoded) with one
//!   multi-pattern automaton;
//! - [`scrub`] replaces them in every response (headers and body) with the
//!   reference text before the guest reads it, so a provider that echoes a
//!   credential hands the plugin only `{{secret:NAME}}`;
//! - [`outgoing`] refuses a request carrying a raw stored value unless the
//!   grant it goes to is bound to that secret;
//! - everything a call returns (results, errors, logs, stdout, egress rows)
//!   is passed through [`Redactor::redact`] (`[REDACTED:NAME]`).

mod matcher;
pub mod outgoing;
pub mod scrub;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

pub use matcher::Redactor;

/// How a reference starts: `{{secret:NAME}}`.
pub(crate) const PREFIX: &str = "{{secret:";
const SUFFIX: &str = "}}";

/// The reference text for `name`.
pub fn reference(name: &str) -> String {
    format!("{PREFIX}{name}{SUFFIX}")
}

/// The secrets of one instance, by name. Cloning shares the values (every
/// call's broker holds the set).
#[derive(Clone, Default)]
pub struct SecretSet {
    values: Arc<BTreeMap<String, String>>,
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
        SecretSet {
            values: Arc::new(values),
        }
    }

    /// Whether no secret is stored.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Builds the redactor for this set.
    pub fn redactor(&self) -> Redactor {
        Redactor::new(self.values.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    /// Name/value pairs, for building a redactor with extra values.
    pub(crate) fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
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
}
