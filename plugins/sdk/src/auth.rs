//! The `Authorization` header for the auth method an instance uses.
//!
//! The host stores every credential; the guest only names the secret it is
//! stored under, as a [`secret_ref`] the broker substitutes. One
//! [`AuthHeader`] per connector describes the header of each auth kind its
//! manifest declares:
//!
//! ```text
//! const AUTH: AuthHeader = AuthHeader::new().api_token("SSWS", "api_token");
//! Request::get(url).header("authorization", AUTH.value(config)?)
//! ```

use crate::{AuthKind, Config, Error, Result, oauth, secret_ref};

/// How each auth kind of a connector becomes an `Authorization` header
/// value: oauth2 is always `Bearer {{secret:access_token}}`; api-token and
/// basic are what the connector declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthHeader {
    api_token: Option<(&'static str, &'static str)>,
    basic: Option<&'static str>,
}

impl Default for AuthHeader {
    fn default() -> AuthHeader {
        AuthHeader::new()
    }
}

impl AuthHeader {
    /// OAuth2 only (`Bearer` with the host-held access token).
    pub const fn new() -> AuthHeader {
        AuthHeader {
            api_token: None,
            basic: None,
        }
    }

    /// API tokens are sent as `{scheme} {{secret:SECRET}}` (`SSWS`,
    /// `Bearer`, `Token`...), `secret` being the manifest auth's `secret`.
    pub const fn api_token(self, scheme: &'static str, secret: &'static str) -> AuthHeader {
        AuthHeader {
            api_token: Some((scheme, secret)),
            ..self
        }
    }

    /// Basic credentials are sent as `Basic {{secret:SECRET}}`: the host
    /// stores `base64(username:password)` under the manifest auth's
    /// `secret`.
    pub const fn basic(self, secret: &'static str) -> AuthHeader {
        AuthHeader {
            basic: Some(secret),
            ..self
        }
    }

    /// The header value for the instance's auth kind; an
    /// [`Error::InvalidConfig`] when the instance uses a kind this
    /// connector does not declare, or has no credentials yet.
    pub fn value(&self, config: &Config) -> Result<String> {
        let kind = config.auth_kind();
        let declared = match kind {
            Some(AuthKind::Oauth2) => Some(("Bearer", oauth::ACCESS_TOKEN)),
            Some(AuthKind::ApiToken) => self.api_token,
            Some(AuthKind::Basic) => self.basic.map(|secret| ("Basic", secret)),
            None => None,
        };
        match declared {
            Some((scheme, secret)) => Ok(format!("{scheme} {}", secret_ref(secret))),
            None => Err(Error::invalid_config(format!(
                "this connector has no credentials for auth kind {kind:?}: reconnect the instance with one of the auth methods its manifest declares"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn one_header_per_kind() {
        const AUTH: AuthHeader = AuthHeader::new()
            .api_token("SSWS", "api_token")
            .basic("basic_auth");
        let at = |k| AUTH.value(&Config::default().with_auth(k)).unwrap();
        assert_eq!(at(AuthKind::Oauth2), "Bearer {{secret:access_token}}");
        assert_eq!(at(AuthKind::ApiToken), "SSWS {{secret:api_token}}");
        assert_eq!(at(AuthKind::Basic), "Basic {{secret:basic_auth}}");
        assert!(AUTH.value(&Config::default()).is_err());
        let bearer_only = AuthHeader::new();
        assert!(
            bearer_only
                .value(&Config::default().with_auth(AuthKind::ApiToken))
                .is_err()
        );
    }
}
