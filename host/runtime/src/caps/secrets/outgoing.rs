//! Raw-value checks on outgoing requests. A plugin writes references; a
//! request that carries a stored value itself (in any known encoding) got
//! it some other way, so it may go only where a reference to that secret
//! could: never in a URL, and in headers or the body only to a grant bound
//! to the secret.

use std::fmt;

use http::HeaderMap;

use super::Redactor;

/// Where a raw value was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// In the URL (path or query).
    Url,
    /// In the value of the named header.
    Header(String),
    /// In the request body.
    Body,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Url => f.write_str("the URL"),
            Place::Header(name) => write!(f, "header {name}"),
            Place::Body => f.write_str("the body"),
        }
    }
}

/// A stored value found where it may not go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawValue {
    /// The secret's name.
    pub secret: String,
    /// Where it was.
    pub place: Place,
}

/// The first stored value in the request that the grant (bound to
/// `bound`) may not receive. References (`{{secret:…}}`) are not values
/// and are checked by the broker's grant decision.
pub fn unbound_value(
    redactor: &Redactor,
    bound: &[String],
    url: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<RawValue> {
    if let Some(secret) = redactor.names_in(url.as_bytes()).into_iter().next() {
        return Some(RawValue {
            secret,
            place: Place::Url,
        });
    }
    let unbound = |found: std::collections::BTreeSet<String>| {
        found.into_iter().find(|name| !bound.contains(name))
    };
    for (name, value) in headers {
        if let Some(secret) = unbound(redactor.names_in(value.as_bytes())) {
            return Some(RawValue {
                secret,
                place: Place::Header(name.to_string()),
            });
        }
    }
    unbound(redactor.names_in(body)).map(|secret| RawValue {
        secret,
        place: Place::Body,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn raw_values_go_only_to_bound_grants_and_never_in_urls() {
        let r = Redactor::new([("api_token", "s3cr3t-value")]);
        let bound = vec!["api_token".to_string()];
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "SSWS s3cr3t-value".parse().unwrap());
        assert_eq!(
            unbound_value(&r, &bound, "https://a/x", &headers, b""),
            None
        );
        let found = unbound_value(&r, &[], "https://a/x", &headers, b"").unwrap();
        assert_eq!(found.place, Place::Header("authorization".into()));
        let found = unbound_value(
            &r,
            &bound,
            "https://a/x?t=s3cr3t-value",
            &HeaderMap::new(),
            b"",
        );
        assert_eq!(found.unwrap().place, Place::Url);
        let hexed = "czNjcjN0LXZhbHVl"; // base64 of the value
        let found = unbound_value(&r, &[], "https://a/x", &HeaderMap::new(), hexed.as_bytes());
        assert_eq!(found.unwrap().place, Place::Body);
    }
}
