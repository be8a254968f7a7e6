//! Ward's guest SDK: everything a connector author needs, without touching
//! `wit-bindgen` or raw `wasi:http`.
//!
//! A connector is a type implementing [`Connector`], exported with
//! [`export_connector!`], plus a `ward.toml` manifest next to its
//! `Cargo.toml`. The macro embeds the manifest into the component as the
//! `ward-manifest` custom section, so the file Ward loads is self-describing.
//!
//! ```text
//! struct Acme;
//! impl ward_sdk::Connector for Acme { /* ... */ }
//! ward_sdk::export_connector!(Acme);
//! ```
//!
//! Rules of the sandbox the SDK is shaped around:
//! - Calls are stateless: every call runs in a fresh instance. Carry state in
//!   the cursor you return.
//! - Secrets are never readable. Refer to them with [`secret_ref`] in a
//!   header; Ward substitutes the value when the request matches a grant of
//!   your manifest bound to that secret.
//! - Only URLs your manifest grants are reachable; anything else fails with
//!   [`http::HttpError::Denied`].

pub mod http;
pub mod log;
pub mod oauth;
pub mod time;

use std::collections::BTreeMap;

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/v0.1",
        world: "ward:connector/plugin",
        generate_all,
        pub_export_macro: true,
        export_macro_name: "__export_wit",
        default_bindings_module: "ward_sdk::bindings",
    });
}

pub use bindings::ward::connector::types::{
    Actor, ActorKind, AuditPage, BasicCredentials, Check, Credentials, Error, Event, Grant,
    OauthCode, Outcome, RateLimit, Secret, Target, TestReport, Timestamp, User, UserPage,
};
pub use url::Url;

/// Result type of every connector function.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The validated configuration of the instance a call is made for.
///
/// Values have already been checked against the patterns in your manifest,
/// so they are safe to place in a URL host or path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    values: BTreeMap<String, String>,
}

impl Config {
    /// Builds a configuration from name/value pairs (useful in unit tests).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Config {
        Config {
            values: pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[doc(hidden)]
    pub fn from_wit(entries: Vec<bindings::ward::connector::types::ConfigEntry>) -> Config {
        Config {
            values: entries.into_iter().map(|e| (e.name, e.value)).collect(),
        }
    }

    /// The value of a field, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Which of the manifest's auth methods this instance uses, from the
    /// reserved `ward.auth` entry the host adds to every call made with
    /// stored credentials. `None` during `exchange` (no credentials yet) and
    /// `auth-url`.
    pub fn auth_kind(&self) -> Option<AuthKind> {
        match self.get(AUTH_ENTRY)? {
            "api-token" => Some(AuthKind::ApiToken),
            "oauth2" => Some(AuthKind::Oauth2),
            "basic" => Some(AuthKind::Basic),
            _ => None,
        }
    }

    /// The value of a field the manifest marks as required; an
    /// [`Error::InvalidConfig`] naming the field otherwise.
    pub fn require(&self, name: &str) -> Result<&str> {
        self.get(name).ok_or_else(|| {
            Error::invalid_config(format!("configuration field `{name}` is missing"))
        })
    }
}

/// The reserved config entry naming the instance's auth kind.
pub const AUTH_ENTRY: &str = "ward.auth";

/// How an instance authenticates (see [`Config::auth_kind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    /// An operator-entered API token.
    ApiToken,
    /// OAuth2 access token (refreshed by the host).
    Oauth2,
    /// User name and password.
    Basic,
}

impl Error {
    /// Credentials were rejected; the operator must reconnect.
    pub fn unauthorized(message: impl Into<String>) -> Error {
        Error::Unauthorized(message.into())
    }
    /// A role, plan or scope is missing.
    pub fn forbidden(message: impl Into<String>) -> Error {
        Error::Forbidden(message.into())
    }
    /// The provider throttled us; retry after `retry_after_ms`.
    pub fn rate_limited(retry_after_ms: u64, message: impl Into<String>) -> Error {
        Error::RateLimited(RateLimit {
            retry_after_ms,
            message: message.into(),
        })
    }
    /// The configuration cannot work.
    pub fn invalid_config(message: impl Into<String>) -> Error {
        Error::InvalidConfig(message.into())
    }
    /// A transient failure; Ward retries with backoff.
    pub fn unavailable(message: impl Into<String>) -> Error {
        Error::Unavailable(message.into())
    }
    /// A bug or a response the connector cannot understand.
    pub fn internal(message: impl Into<String>) -> Error {
        Error::Internal(message.into())
    }
}

impl Check {
    /// A passed check.
    pub fn pass(name: &str, message: impl Into<String>) -> Check {
        Check {
            name: name.to_string(),
            ok: true,
            message: message.into(),
        }
    }
    /// A failed check; `message` tells the operator what to do.
    pub fn fail(name: &str, message: impl Into<String>) -> Check {
        Check {
            name: name.to_string(),
            ok: false,
            message: message.into(),
        }
    }
}

impl Credentials {
    /// Credentials holding one operator-entered token under `secret_name`
    /// (the usual `exchange` of an API-token connector). An empty token is
    /// refused so the operator hears about it at connect time.
    pub fn from_token(secret_name: &str, token: &str) -> Result<Credentials> {
        let token = token.trim();
        if token.is_empty() {
            return Err(Error::invalid_config("the API token is empty"));
        }
        Ok(Credentials {
            secrets: vec![Secret {
                name: secret_name.to_string(),
                value: token.to_string(),
            }],
            expires_at: None,
            scopes: Vec::new(),
            principal: None,
        })
    }
}

/// `{{secret:NAME}}`: the placeholder Ward replaces with a stored secret.
pub fn secret_ref(name: &str) -> String {
    format!("{{{{secret:{name}}}}}")
}

/// What a connector implements. Every function runs in a fresh sandbox
/// instance; see the crate documentation for the rules.
pub trait Connector {
    /// Builds the OAuth2 authorization URL. Token-auth connectors keep the
    /// default, which reports that OAuth is not used.
    fn auth_url(config: &Config, redirect_uri: &str, state: &str) -> Result<String> {
        let _ = (config, redirect_uri, state);
        Err(Error::invalid_config(
            "this connector authenticates with a token, not OAuth: create the instance with an API token",
        ))
    }

    /// Turns an OAuth code or an operator-entered token into credentials.
    fn exchange(config: &Config, grant: Grant) -> Result<Credentials>;

    /// Runs the prerequisite checks with the stored credentials.
    fn test(config: &Config) -> Result<TestReport>;

    /// Fetches one page of audit events (see the WIT contract for `since`,
    /// `cursor` and `more`).
    fn fetch_audit(config: &Config, since: Timestamp, cursor: Option<String>) -> Result<AuditPage>;

    /// Fetches one page of users.
    fn fetch_users(config: &Config, cursor: Option<String>) -> Result<UserPage>;
}

#[doc(hidden)]
pub mod __private {
    pub use crate::bindings::exports::ward::connector::connector::Guest;
    pub use crate::bindings::ward::connector::types::ConfigEntry;
}

/// Exports a [`Connector`] implementation as the component's
/// `ward:connector/connector` interface and embeds `ward.toml` (next to the
/// crate's `Cargo.toml`) as the `ward-manifest` custom section.
#[macro_export]
macro_rules! export_connector {
    ($connector:ty) => {
        // Public so that a native build of the crate (unit tests) treats the
        // adapter, and through it the connector, as used.
        #[doc(hidden)]
        pub struct WardGuestAdapter;

        impl $crate::__private::Guest for WardGuestAdapter {
            fn auth_url(
                config: ::std::vec::Vec<$crate::__private::ConfigEntry>,
                redirect_uri: ::std::string::String,
                state: ::std::string::String,
            ) -> ::std::result::Result<::std::string::String, $crate::Error> {
                <$connector as $crate::Connector>::auth_url(
                    &$crate::Config::from_wit(config),
                    &redirect_uri,
                    &state,
                )
            }
            fn exchange(
                config: ::std::vec::Vec<$crate::__private::ConfigEntry>,
                grant: $crate::Grant,
            ) -> ::std::result::Result<$crate::Credentials, $crate::Error> {
                <$connector as $crate::Connector>::exchange(
                    &$crate::Config::from_wit(config),
                    grant,
                )
            }
            fn test(
                config: ::std::vec::Vec<$crate::__private::ConfigEntry>,
            ) -> ::std::result::Result<$crate::TestReport, $crate::Error> {
                <$connector as $crate::Connector>::test(&$crate::Config::from_wit(config))
            }
            fn fetch_audit(
                config: ::std::vec::Vec<$crate::__private::ConfigEntry>,
                since: $crate::Timestamp,
                cursor: ::std::option::Option<::std::string::String>,
            ) -> ::std::result::Result<$crate::AuditPage, $crate::Error> {
                <$connector as $crate::Connector>::fetch_audit(
                    &$crate::Config::from_wit(config),
                    since,
                    cursor,
                )
            }
            fn fetch_users(
                config: ::std::vec::Vec<$crate::__private::ConfigEntry>,
                cursor: ::std::option::Option<::std::string::String>,
            ) -> ::std::result::Result<$crate::UserPage, $crate::Error> {
                <$connector as $crate::Connector>::fetch_users(
                    &$crate::Config::from_wit(config),
                    cursor,
                )
            }
        }

        // Exports exist only in the component: a native build of the
        // crate (for its unit tests) must not carry WIT-named symbols.
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::__export_wit!(WardGuestAdapter with_types_in $crate::bindings);

        // The manifest rides in the component itself so that inspection
        // never needs a second file that could drift from the code.
        #[cfg(target_arch = "wasm32")]
        #[allow(unsafe_code)]
        #[unsafe(link_section = "ward-manifest")]
        #[used]
        static WARD_MANIFEST: [u8; include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/ward.toml"
        ))
        .len()] = *include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/ward.toml"));
    };
}
