//! Ward's guest SDK: everything a connector author needs, without touching
//! `wit-bindgen` or raw `wasi:http`. It builds components of contract
//! `ward:connector@0.2.0` (`wit/v0.2`), world `plugin`.
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
//! - Credentials never enter the guest. The host stores API tokens and basic
//!   credentials and exchanges OAuth codes itself (from the manifest's
//!   `[[auth]]`); [`Config::auth_kind`] says which method an instance uses,
//!   and [`auth::AuthHeader`] writes the matching `Authorization` header with
//!   [`secret_ref`] references that Ward substitutes when the request matches
//!   a grant of your manifest bound to that secret.
//! - Only URLs your manifest grants are reachable; anything else fails with
//!   [`http::HttpError::Denied`].
//!
//! A connector whose provider needs a credential flow the host cannot run
//! from the manifest enables the crate feature `exchange`: the component is
//! then of world `plugin-with-exchange`, must also implement `Exchange`,
//! sees the raw grant, and `ward plugin inspect` flags it
//! (`raw-credentials-in-exchange`).
#![warn(missing_docs)]

pub mod auth;
pub mod check;
pub mod http;
pub mod log;
pub mod oauth;
pub mod time;

use std::collections::BTreeMap;

#[doc(hidden)]
#[cfg(not(feature = "exchange"))]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/v0.2",
        world: "ward:connector/plugin",
        generate_all,
        pub_export_macro: true,
        export_macro_name: "__export_wit",
        default_bindings_module: "ward_sdk::bindings",
    });
}

#[doc(hidden)]
#[cfg(feature = "exchange")]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/v0.2",
        world: "ward:connector/plugin-with-exchange",
        generate_all,
        pub_export_macro: true,
        export_macro_name: "__export_wit",
        default_bindings_module: "ward_sdk::bindings",
    });
}

#[cfg(feature = "exchange")]
pub use bindings::exports::ward::connector::exchange::{
    BasicCredentials, Credentials, Grant, OauthCode, Secret,
};
pub use bindings::ward::connector::types::{
    Actor, ActorKind, AuditPage, AuthKind, Check, Error, Event, Outcome, RateLimit, Target,
    TestReport, Timestamp, User, UserPage,
};
pub use url::Url;

/// Result type of every connector function.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a call knows about the instance it is made for: the validated
/// configuration and the auth method of its stored credentials.
///
/// Values have already been checked against the patterns in your manifest,
/// so they are safe to place in a URL host or path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    values: BTreeMap<String, String>,
    auth: Option<AuthKind>,
}

impl Config {
    /// Builds a configuration from name/value pairs (useful in unit tests).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Config {
        Config {
            values: pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            auth: None,
        }
    }

    /// The same configuration for an instance authenticated with `auth`
    /// (useful in unit tests).
    pub fn with_auth(mut self, auth: AuthKind) -> Config {
        self.auth = Some(auth);
        self
    }

    #[doc(hidden)]
    pub fn from_wit(instance: bindings::ward::connector::types::Instance) -> Config {
        Config {
            values: instance
                .config
                .into_iter()
                .map(|e| (e.name, e.value))
                .collect(),
            auth: instance.auth,
        }
    }

    /// The value of a field, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Which of the manifest's auth methods this instance's stored
    /// credentials belong to. `None` during `auth-url` (no credentials
    /// yet).
    pub fn auth_kind(&self) -> Option<AuthKind> {
        self.auth
    }

    /// The value of a field the manifest marks as required; an
    /// [`Error::InvalidConfig`] naming the field otherwise.
    pub fn require(&self, name: &str) -> Result<&str> {
        self.get(name).ok_or_else(|| {
            Error::invalid_config(format!("configuration field `{name}` is missing"))
        })
    }
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

/// `{{secret:NAME}}`: the placeholder Ward replaces with a stored secret.
pub fn secret_ref(name: &str) -> String {
    format!("{{{{secret:{name}}}}}")
}

/// What a connector implements. Every function runs in a fresh sandbox
/// instance; see the crate documentation for the rules.
pub trait Connector {
    /// Builds the OAuth2 authorization URL (see [`oauth::OAuthClient`]).
    /// Token-auth connectors keep the default, which reports that OAuth is
    /// not used.
    fn auth_url(config: &Config, redirect_uri: &str, state: &str) -> Result<String> {
        let _ = (config, redirect_uri, state);
        Err(Error::invalid_config(
            "this connector authenticates with a token, not OAuth: create the instance with an API token",
        ))
    }

    /// Runs the prerequisite checks with the stored credentials.
    fn test(config: &Config) -> Result<TestReport>;

    /// Fetches one page of audit events (see the WIT contract for `since`,
    /// `cursor` and `more`).
    fn fetch_audit(config: &Config, since: Timestamp, cursor: Option<String>) -> Result<AuditPage>;

    /// Fetches one page of users.
    fn fetch_users(config: &Config, cursor: Option<String>) -> Result<UserPage>;
}

/// A non-standard credential flow (crate feature `exchange`, world
/// `plugin-with-exchange`): called only for an `[[auth]]` whose manifest
/// entry says `exchange = "plugin"`. The guest sees the raw grant; prefer
/// the host's exchange whenever the manifest can describe the flow.
#[cfg(feature = "exchange")]
pub trait Exchange {
    /// Turns an OAuth code or an operator-entered credential into the
    /// secrets to store.
    fn exchange(config: &Config, grant: Grant) -> Result<Credentials>;
}

#[doc(hidden)]
pub mod __private {
    pub use crate::bindings::exports::ward::connector::connector::Guest;
    #[cfg(feature = "exchange")]
    pub use crate::bindings::exports::ward::connector::exchange::Guest as ExchangeGuest;
    pub use crate::bindings::ward::connector::types::Instance;
}

/// Implements the contract's `connector` interface for a [`Connector`] and
/// embeds the manifest; shared by both forms of [`export_connector!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __export_connector_common {
    ($connector:ty) => {
        // Public so that a native build of the crate (unit tests) treats the
        // adapter, and through it the connector, as used.
        #[doc(hidden)]
        pub struct WardGuestAdapter;

        impl $crate::__private::Guest for WardGuestAdapter {
            fn auth_url(
                instance: $crate::__private::Instance,
                redirect_uri: ::std::string::String,
                state: ::std::string::String,
            ) -> ::std::result::Result<::std::string::String, $crate::Error> {
                <$connector as $crate::Connector>::auth_url(
                    &$crate::Config::from_wit(instance),
                    &redirect_uri,
                    &state,
                )
            }
            fn test(
                instance: $crate::__private::Instance,
            ) -> ::std::result::Result<$crate::TestReport, $crate::Error> {
                <$connector as $crate::Connector>::test(&$crate::Config::from_wit(instance))
            }
            fn fetch_audit(
                instance: $crate::__private::Instance,
                since: $crate::Timestamp,
                cursor: ::std::option::Option<::std::string::String>,
            ) -> ::std::result::Result<$crate::AuditPage, $crate::Error> {
                <$connector as $crate::Connector>::fetch_audit(
                    &$crate::Config::from_wit(instance),
                    since,
                    cursor,
                )
            }
            fn fetch_users(
                instance: $crate::__private::Instance,
                cursor: ::std::option::Option<::std::string::String>,
            ) -> ::std::result::Result<$crate::UserPage, $crate::Error> {
                <$connector as $crate::Connector>::fetch_users(
                    &$crate::Config::from_wit(instance),
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

/// Exports a [`Connector`] implementation as the component's
/// `ward:connector/connector` interface (world `plugin@0.2.0`) and embeds
/// `ward.toml` (next to the crate's `Cargo.toml`) as the `ward-manifest`
/// custom section.
#[cfg(not(feature = "exchange"))]
#[macro_export]
macro_rules! export_connector {
    ($connector:ty) => {
        $crate::__export_connector_common!($connector);
    };
}

/// Exports a [`Connector`] that also implements [`Exchange`] (world
/// `plugin-with-exchange@0.2.0`) and embeds `ward.toml` as the
/// `ward-manifest` custom section.
#[cfg(feature = "exchange")]
#[macro_export]
macro_rules! export_connector {
    ($connector:ty) => {
        $crate::__export_connector_common!($connector);

        impl $crate::__private::ExchangeGuest for WardGuestAdapter {
            fn exchange(
                instance: $crate::__private::Instance,
                grant: $crate::Grant,
            ) -> ::std::result::Result<$crate::Credentials, $crate::Error> {
                <$connector as $crate::Exchange>::exchange(
                    &$crate::Config::from_wit(instance),
                    grant,
                )
            }
        }
    };
}
