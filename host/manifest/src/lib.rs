//! The plugin manifest: what a connector declares about itself and asks the
//! host to grant. It travels inside the component as the `ward-manifest`
//! custom section (TOML text), so a security team can read it without running
//! the plugin.
//!
//! Parsing validates everything that later code relies on: config patterns
//! compile and are anchored, URL templates only reference declared config
//! fields, grant secrets are declared. [`Manifest::grants_for`] fills the
//! templates from an instance's configuration after checking each value.

pub mod ceilings;
pub mod diff;
pub mod ocsf;
pub mod policy;
pub mod risks;
pub mod rules;
pub mod tenant;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

pub use ceilings::Ceilings;
pub use diff::{Change, ChangeKind, diff, widens};
pub use ocsf::{OcsfDecl, OcsfRule};
pub use policy::{Effective, PluginPolicy, effective, effective_for};
pub use risks::{ExchangeExport, Risk, RiskKind};
pub use rules::check_host;
pub use tenant::TenantHost;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// Name of the custom section that carries the manifest in a component.
pub const SECTION: &str = "ward-manifest";

/// Why a manifest or an instance configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The TOML could not be parsed or has the wrong shape.
    #[error("plugin manifest is not valid TOML for Ward's schema: {0}")]
    Syntax(String),
    /// The manifest is well-formed but breaks a rule.
    #[error("plugin manifest `{key}` is invalid: {message}")]
    Invalid {
        /// Plugin key (or `?` when unknown).
        key: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// An instance configuration value does not match the manifest.
    #[error("configuration of plugin `{key}` rejected: {message}")]
    Config {
        /// Plugin key.
        key: String,
        /// Which field failed and why.
        message: String,
    },
}

/// How an instance authenticates to the provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Auth {
    /// OAuth2 authorization-code flow.
    Oauth2 {
        /// Scopes the connector asks for.
        #[serde(default)]
        scopes: Vec<String>,
        /// Whether access tokens expire and need the host's refresh.
        #[serde(default)]
        refresh: bool,
        /// The provider's token endpoint as a URL template (for example
        /// `https://{domain}.okta.com/oauth2/v1/token`), used by the host
        /// for the code exchange and refresh. Required when `refresh` is
        /// true; a POST grant must cover it and bind `refresh_token` and
        /// `client_secret` with `secrets_in_body`.
        #[serde(default)]
        token_url: Option<String>,
        /// How the host authenticates the OAuth client at `token_url`.
        #[serde(default, skip_serializing_if = "TokenAuth::is_default")]
        token_auth: TokenAuth,
        /// How the host encodes token-request bodies.
        #[serde(default, skip_serializing_if = "TokenBody::is_default")]
        token_body: TokenBody,
        /// Who turns the authorization code into tokens.
        #[serde(default, skip_serializing_if = "ExchangeBy::is_default")]
        exchange: ExchangeBy,
    },
    /// An API token pasted by the operator.
    ApiToken {
        /// Name of the secret the token is stored under.
        secret: String,
        /// Who turns the pasted token into stored secrets.
        #[serde(default, skip_serializing_if = "ExchangeBy::is_default")]
        exchange: ExchangeBy,
    },
    /// User name and password (or e-mail and token).
    Basic {
        /// Name of the secret the credentials are stored under: the host
        /// stores `base64(username:password)`, the value of a `Basic`
        /// `Authorization` header.
        secret: String,
        /// A user name template filled from the instance's configuration
        /// (for example Zendesk's `{email}/token`). With it, the operator
        /// gives only a token (an API token grant) and the host composes
        /// `base64(filled username:token)`; the plugin never sees either.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        username: Option<String>,
        /// Who turns the entered credentials into stored secrets.
        #[serde(default, skip_serializing_if = "ExchangeBy::is_default")]
        exchange: ExchangeBy,
    },
}

/// Who turns an operator's grant (token, password, OAuth code) into the
/// secrets Ward stores.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExchangeBy {
    /// The host: tokens are stored as entered, OAuth codes are exchanged
    /// at `token_url`. The plugin never sees a raw credential.
    #[default]
    Host,
    /// The plugin's `exchange` export (a non-standard flow; the plugin
    /// sees the raw credential and `inspect` lists that as a risk).
    /// Contract 0.1 plugins always exchange themselves.
    Plugin,
}

impl ExchangeBy {
    fn is_default(&self) -> bool {
        *self == ExchangeBy::Host
    }
}

/// How the host authenticates the OAuth client at the token endpoint
/// (RFC 6749 section 2.3.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenAuth {
    /// `client_id` and `client_secret` in the request body.
    #[default]
    ClientSecretPost,
    /// `Authorization: Basic base64(client_id:client_secret)`.
    ClientSecretBasic,
}

impl TokenAuth {
    fn is_default(&self) -> bool {
        *self == TokenAuth::ClientSecretPost
    }
}

/// How token-request bodies are encoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenBody {
    /// `application/x-www-form-urlencoded` (RFC 6749).
    #[default]
    Form,
    /// `application/json` (Zendesk and others).
    Json,
}

impl TokenBody {
    fn is_default(&self) -> bool {
        *self == TokenBody::Form
    }
}

/// One configuration field an operator fills in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigField {
    /// Field name, used as `{name}` in URL templates.
    pub name: String,
    /// Label shown in the console.
    #[serde(default)]
    pub label: String,
    /// Regular expression the whole value must match. May be omitted when
    /// `values` is given (it then is exactly one of the values).
    #[serde(default)]
    pub pattern: String,
    /// The only values accepted (for instance a provider's host families),
    /// listed so that `inspect` can show every host a grant may reach.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    /// The field names a provider tenant: values are normalised from what
    /// operators paste (host names, URLs) before validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<TenantHost>,
    /// Whether the operator must supply it.
    #[serde(default = "yes")]
    pub required: bool,
    /// Value used when the operator gives none.
    #[serde(default)]
    pub default: Option<String>,
    /// Help text.
    #[serde(default)]
    pub description: String,
    /// Other names an instance configuration may use for this field (for
    /// example the SAP Open Connectors name `subdomain` for Egnyte's
    /// `domain`); [`Manifest::validate_config`] stores the value under
    /// [`ConfigField::name`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}

/// A secret the connector uses by reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretDecl {
    /// Secret name, referenced as `{{secret:NAME}}`.
    pub name: String,
    /// What the secret is.
    #[serde(default)]
    pub description: String,
}

/// An outbound HTTP grant as declared: a URL template plus methods and the
/// secrets that may be substituted into requests matching it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpGrantDecl {
    /// `scheme://host[:port]/path-prefix`, with `{field}` placeholders.
    pub url: String,
    /// Allowed methods (upper case).
    pub methods: Vec<String>,
    /// Secrets the host may substitute into requests matching this grant.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Whether secret references may also be substituted into the body
    /// (token endpoints only).
    #[serde(default)]
    pub secrets_in_body: bool,
    /// Whether request paths under this grant may carry `;` parameters
    /// (`/items;v=2`); refused everywhere else.
    #[serde(default)]
    pub allow_params: bool,
}

/// Resource limits applied to every call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Linear memory cap in MiB.
    pub memory_mib: u32,
    /// CPU time budget per call in milliseconds.
    pub cpu_ms: u32,
    /// Wall-clock timeout per call in milliseconds (includes HTTP waits).
    pub wall_ms: u32,
    /// Outbound requests per call.
    pub requests_per_call: u32,
    /// Largest response body the host hands to the plugin, in bytes.
    pub response_bytes: u64,
    /// Largest request body the plugin may send, in bytes.
    pub request_bytes: u64,
    /// Largest total output (events, users, cursor) of one call, in bytes.
    pub output_bytes: u64,
    /// Most events or users one page may return.
    pub page_items: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_mib: 128,
            cpu_ms: 5_000,
            wall_ms: 60_000,
            requests_per_call: 20,
            response_bytes: 16 << 20,
            request_bytes: 1 << 20,
            output_bytes: 32 << 20,
            page_items: 10_000,
        }
    }
}

/// Scheduling defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Schedule {
    /// How far back the first connection reads.
    pub backfill_days: u32,
    /// Seconds between polls once caught up.
    pub poll_interval_secs: u32,
    /// Requests per minute shared by every call to one tenant.
    pub requests_per_minute: u32,
    /// Days after which a long-lived credential should be rotated.
    pub rotation_days: u32,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            backfill_days: 7,
            poll_interval_secs: 60,
            requests_per_minute: 60,
            rotation_days: 180,
        }
    }
}

/// Where the provider advertises its rate limit on responses, so the host
/// paces from what the tenant really allows (keeping a reserve for the
/// tenant's other API clients) instead of a fixed guess. Without any of
/// these headers on a response, the fixed `schedule.requests_per_minute`
/// applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdvertisedLimit {
    /// Headers carrying the limit per window (first present wins),
    /// e.g. `x-rate-limit-limit`.
    pub limit_headers: Vec<String>,
    /// Headers carrying the requests left in the window.
    pub remaining_headers: Vec<String>,
    /// Headers carrying when the window resets.
    #[serde(default)]
    pub reset_headers: Vec<String>,
    /// How the reset header counts: `epoch-seconds` (Okta) or `seconds`
    /// from now (Zendesk).
    #[serde(default)]
    pub reset: ResetKind,
    /// Length of the window the limit counts over, in seconds.
    #[serde(default = "sixty")]
    pub window_secs: u32,
    /// Share of the limit left to the tenant's other API clients, 0–90 %.
    pub reserve_percent: u8,
    /// Never pace above this many requests a minute, whatever is
    /// advertised (an operator's policy may lower it).
    pub max_requests_per_minute: u32,
}

impl AdvertisedLimit {
    /// Every header name the host should read from responses (lower case).
    pub fn header_names(&self) -> Vec<String> {
        self.limit_headers
            .iter()
            .chain(&self.remaining_headers)
            .chain(&self.reset_headers)
            .map(|h| h.to_ascii_lowercase())
            .collect()
    }
}

/// How a rate-limit reset header counts time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResetKind {
    /// Seconds until the window resets.
    #[default]
    Seconds,
    /// The reset instant, in seconds since the Unix epoch.
    EpochSeconds,
}

fn sixty() -> u32 {
    60
}

fn yes() -> bool {
    true
}

/// Secret an OAuth2 connector stores the access token under.
pub const ACCESS_TOKEN: &str = "access_token";
/// Secret an OAuth2 connector stores the refresh token under.
pub const REFRESH_TOKEN: &str = "refresh_token";
/// Secret holding the OAuth2 client secret (the host keeps it for refresh).
pub const CLIENT_SECRET: &str = "client_secret";
/// Config field holding the OAuth2 client id.
pub const CLIENT_ID: &str = "client_id";

impl Auth {
    /// The kind as written in the manifest and passed to plugins in the
    /// reserved `ward.auth` config entry: `oauth2`, `api-token` or `basic`.
    pub fn kind(&self) -> &'static str {
        match self {
            Auth::Oauth2 { .. } => "oauth2",
            Auth::ApiToken { .. } => "api-token",
            Auth::Basic { .. } => "basic",
        }
    }

    /// The secret whose presence shows an instance uses this auth.
    pub fn marker_secret(&self) -> &str {
        match self {
            Auth::Oauth2 { .. } => ACCESS_TOKEN,
            Auth::ApiToken { secret, .. } | Auth::Basic { secret, .. } => secret,
        }
    }

    /// For a `basic` auth with a `username` template: the user name filled
    /// from a validated configuration. `Ok(None)` for every other auth; an
    /// error naming the missing field, or a filled name containing `:`
    /// (which a Basic credential cannot carry).
    pub fn basic_username(
        &self,
        config: &BTreeMap<String, String>,
    ) -> Result<Option<String>, String> {
        let Auth::Basic {
            username: Some(template),
            ..
        } = self
        else {
            return Ok(None);
        };
        let mut out = template.clone();
        for name in template_fields(template)? {
            let value = config.get(&name).ok_or_else(|| {
                format!("basic auth composes the user name {template} and needs configuration field `{name}`: set it")
            })?;
            out = out.replace(&format!("{{{name}}}"), value);
        }
        if out.contains(':') || out.trim().is_empty() {
            return Err(format!(
                "basic auth user name {out:?} (from {template}) is empty or contains `:`: fix the configuration"
            ));
        }
        Ok(Some(out))
    }

    /// Who exchanges this auth's grants (see [`ExchangeBy`]).
    pub fn exchange_by(&self) -> ExchangeBy {
        match self {
            Auth::Oauth2 { exchange, .. }
            | Auth::ApiToken { exchange, .. }
            | Auth::Basic { exchange, .. } => *exchange,
        }
    }
}

/// The `{field}` placeholders of a `username` template, or why it is not
/// one (unbalanced braces, an empty name).
fn template_fields(template: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find(['{', '}']) {
        if rest[start..].starts_with('}') {
            return Err(format!(
                "user name template {template} has unbalanced braces"
            ));
        }
        let after = &rest[start + 1..];
        let end = after
            .find(['{', '}'])
            .filter(|i| after[*i..].starts_with('}'))
            .ok_or_else(|| format!("user name template {template} has unbalanced braces"))?;
        let name = &after[..end];
        if name.is_empty() {
            return Err(format!("user name template {template} has an empty `{{}}`"));
        }
        fields.push(name.to_string());
        rest = &after[end + 1..];
    }
    Ok(fields)
}

/// Accepts `auth = { kind = ... }` (every manifest written before several
/// auth kinds existed) as well as `[[auth]]` tables.
fn one_or_many<'de, D>(deserializer: D) -> Result<Vec<Auth>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct Visitor;
    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = Vec<Auth>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an auth table `{ kind = ... }` or a list of them (`[[auth]]`)")
        }

        fn visit_map<A>(self, map: A) -> Result<Vec<Auth>, A::Error>
        where
            A: serde::de::MapAccess<'de>,
        {
            Auth::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(|a| vec![a])
        }

        fn visit_seq<A>(self, seq: A) -> Result<Vec<Auth>, A::Error>
        where
            A: serde::de::SeqAccess<'de>,
        {
            Vec::<Auth>::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
        }
    }
    deserializer.deserialize_any(Visitor)
}

/// A parsed, validated manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Stable identifier (`okta`), the element key in the API.
    pub key: String,
    /// Display name.
    pub name: String,
    /// Semantic version of the plugin.
    pub version: String,
    /// Who wrote it.
    pub vendor: String,
    /// One-line description.
    #[serde(default)]
    pub description: String,
    /// How it authenticates: one or more ways, at most one per kind. In
    /// TOML either `auth = { kind = ... }` or several `[[auth]]` tables.
    #[serde(deserialize_with = "one_or_many")]
    pub auth: Vec<Auth>,
    /// Configuration fields.
    #[serde(default)]
    pub config: Vec<ConfigField>,
    /// Secrets used by reference.
    #[serde(default)]
    pub secrets: Vec<SecretDecl>,
    /// Outbound HTTP grants.
    #[serde(default)]
    pub http: Vec<HttpGrantDecl>,
    /// Per-call limits.
    #[serde(default)]
    pub limits: Limits,
    /// Scheduling defaults.
    #[serde(default)]
    pub schedule: Schedule,
    /// Where responses advertise the provider's rate limit (adaptive
    /// pacing); absent: the fixed budget only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<AdvertisedLimit>,
    /// How the connector's actions map to OCSF classes on export
    /// (`[ocsf]`, see [`ocsf`]); absent: every event exports as the
    /// host's fallback class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ocsf: Option<OcsfDecl>,
}

impl Manifest {
    /// Parses and validates manifest TOML.
    pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
        let mut manifest: Manifest =
            toml::from_str(text).map_err(|e| ManifestError::Syntax(e.to_string()))?;
        for field in &mut manifest.config {
            if field.pattern.is_empty() && !field.values.is_empty() {
                field.pattern = tenant::values_pattern(&field.values);
            }
        }
        manifest.validate()?;
        Ok(manifest)
    }

    /// Parses the bytes of a `ward-manifest` custom section.
    pub fn from_section(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| ManifestError::Syntax("manifest section is not UTF-8".into()))?;
        Manifest::parse(text)
    }

    fn invalid(&self, message: impl Into<String>) -> ManifestError {
        ManifestError::Invalid {
            key: self.key.clone(),
            message: message.into(),
        }
    }

    fn validate(&self) -> Result<(), ManifestError> {
        let ident = Regex::new("^[a-z][a-z0-9_-]{0,63}$")
            .map_err(|e| self.invalid(format!("internal pattern: {e}")))?;
        if !ident.is_match(&self.key) {
            return Err(self.invalid("key must match ^[a-z][a-z0-9_-]{0,63}$"));
        }
        let alias_name = Regex::new("^[A-Za-z][A-Za-z0-9._-]{0,63}$")
            .map_err(|e| self.invalid(format!("internal pattern: {e}")))?;
        let mut fields = BTreeSet::new();
        let mut aliases = BTreeSet::new();
        for field in &self.config {
            if !ident.is_match(&field.name) {
                return Err(self.invalid(format!(
                    "config field `{}` must match ^[a-z][a-z0-9_-]*$",
                    field.name
                )));
            }
            if !fields.insert(field.name.as_str()) {
                return Err(self.invalid(format!("config field `{}` declared twice", field.name)));
            }
            if field.pattern.is_empty() {
                return Err(self.invalid(format!(
                    "config field `{}` needs a `pattern` or `values`",
                    field.name
                )));
            }
            if !field.values.is_empty() && field.pattern != tenant::values_pattern(&field.values) {
                return Err(self.invalid(format!(
                    "config field `{}` declares `values`; leave out its `pattern`",
                    field.name
                )));
            }
            for alias in &field.aliases {
                if !alias_name.is_match(alias) {
                    return Err(self.invalid(format!(
                        "alias `{alias}` of config field `{}` must match ^[A-Za-z][A-Za-z0-9._-]{{0,63}}$",
                        field.name
                    )));
                }
                if !aliases.insert(alias.as_str()) {
                    return Err(self.invalid(format!("config alias `{alias}` declared twice")));
                }
            }
            let re = anchored(&field.pattern)
                .map_err(|e| self.invalid(format!("config field `{}` pattern: {e}", field.name)))?;
            if let Some(default) = &field.default
                && !re.is_match(default)
            {
                return Err(self.invalid(format!(
                    "default of config field `{}` does not match its own pattern",
                    field.name
                )));
            }
        }
        tenant::validate(self).map_err(|e| self.invalid(e))?;
        if let Some(clash) = aliases.intersection(&fields).next() {
            return Err(self.invalid(format!(
                "`{clash}` is both a config field and another field's alias"
            )));
        }
        let secrets: BTreeSet<&str> = self.secrets.iter().map(|s| s.name.as_str()).collect();
        self.validate_auth(&secrets, &fields)?;
        if let Some(r) = &self.rate_limit {
            if r.limit_headers.is_empty() || r.remaining_headers.is_empty() {
                return Err(self.invalid(
                    "rate_limit needs limit_headers and remaining_headers (header names)",
                ));
            }
            if r.reserve_percent > 90 || r.window_secs == 0 || r.max_requests_per_minute == 0 {
                return Err(self.invalid(
                    "rate_limit: reserve_percent must be 0-90, window_secs and \
                     max_requests_per_minute above 0",
                ));
            }
        }
        for grant in &self.http {
            let template = UrlTemplate::parse(&grant.url).map_err(|e| self.invalid(e))?;
            for placeholder in template.placeholders() {
                if !fields.contains(placeholder.as_str()) {
                    return Err(self.invalid(format!(
                        "grant {} uses {{{placeholder}}} but no config field of that name is declared",
                        grant.url
                    )));
                }
            }
            if grant.methods.is_empty() {
                return Err(self.invalid(format!("grant {} lists no methods", grant.url)));
            }
            for method in &grant.methods {
                if !matches!(
                    method.as_str(),
                    "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS"
                ) {
                    return Err(self.invalid(format!(
                        "grant {} has unknown method `{method}` (use upper case)",
                        grant.url
                    )));
                }
            }
            for secret in &grant.secrets {
                if !secrets.contains(secret.as_str()) {
                    return Err(self.invalid(format!(
                        "grant {} binds secret `{secret}`, which is not declared under [[secrets]]",
                        grant.url
                    )));
                }
            }
        }
        if self.limits.memory_mib == 0 || self.limits.cpu_ms == 0 || self.limits.wall_ms == 0 {
            return Err(self.invalid("limits must be positive"));
        }
        self.validate_token_url()?;
        if let Some(ocsf) = &self.ocsf {
            ocsf.validate().map_err(|e| self.invalid(e))?;
        }
        rules::check(self).map_err(|e| self.invalid(e))?;
        Ok(())
    }

    fn validate_auth(
        &self,
        secrets: &BTreeSet<&str>,
        fields: &BTreeSet<&str>,
    ) -> Result<(), ManifestError> {
        if self.auth.is_empty() {
            return Err(self.invalid("declare at least one `auth` method"));
        }
        let mut kinds = BTreeSet::new();
        for auth in &self.auth {
            // The runtime tells a plugin which auth an instance uses from the
            // bound secrets, so two entries of one kind would be ambiguous.
            if !kinds.insert(auth.kind()) {
                return Err(self.invalid(format!(
                    "auth kind `{}` is declared twice; declare each kind once",
                    auth.kind()
                )));
            }
            let needs_secret = |name: &str, why: &str| {
                if secrets.contains(name) {
                    Ok(())
                } else {
                    Err(self.invalid(format!("{why}: declare secret `{name}` under [[secrets]]")))
                }
            };
            match auth {
                Auth::ApiToken { secret, .. } => {
                    needs_secret(secret, &format!("{} auth stores `{secret}`", auth.kind()))?;
                }
                Auth::Basic {
                    secret, username, ..
                } => {
                    needs_secret(secret, &format!("{} auth stores `{secret}`", auth.kind()))?;
                    if let Some(template) = username {
                        let used = template_fields(template)
                            .map_err(|e| self.invalid(format!("auth.username: {e}")))?;
                        if let Some(unknown) = used.iter().find(|f| !fields.contains(f.as_str())) {
                            return Err(self.invalid(format!(
                                "auth.username {template} uses {{{unknown}}} but no config field of that name is declared"
                            )));
                        }
                        let literal = used
                            .iter()
                            .fold(template.clone(), |t, f| t.replace(&format!("{{{f}}}"), ""));
                        if literal.contains(':') {
                            return Err(self.invalid(format!(
                                "auth.username {template} contains `:`, which ends the user name of a Basic credential"
                            )));
                        }
                    }
                }
                Auth::Oauth2 {
                    refresh, token_url, ..
                } => {
                    needs_secret(ACCESS_TOKEN, "oauth2 auth stores the access token")?;
                    needs_secret(
                        CLIENT_SECRET,
                        "oauth2 auth sends the client secret by reference",
                    )?;
                    if !fields.contains(CLIENT_ID) {
                        return Err(self.invalid(
                            "oauth2 auth needs a config field `client_id` (the OAuth client id)",
                        ));
                    }
                    if *refresh {
                        needs_secret(REFRESH_TOKEN, "oauth2 auth with refresh = true")?;
                        if token_url.is_none() {
                            return Err(self.invalid(
                                "oauth2 auth with refresh = true needs `token_url` (the provider's token endpoint) so the host can refresh",
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The oauth2 auth entry, if the plugin offers OAuth2.
    pub fn oauth2(&self) -> Option<&Auth> {
        self.auth.iter().find(|a| matches!(a, Auth::Oauth2 { .. }))
    }

    fn validate_token_url(&self) -> Result<(), ManifestError> {
        let Some(Auth::Oauth2 {
            token_url: Some(token_url),
            refresh,
            ..
        }) = self.oauth2()
        else {
            return Ok(());
        };
        let template = token_template(token_url).map_err(|e| self.invalid(e))?;
        let fields: BTreeSet<&str> = self.config.iter().map(|f| f.name.as_str()).collect();
        for placeholder in template.placeholders() {
            if !fields.contains(placeholder.as_str()) {
                return Err(self.invalid(format!(
                    "token_url {token_url} uses {{{placeholder}}} but no config field of that name is declared"
                )));
            }
        }
        // Both are templates filled from the same validated config, so a
        // textual prefix match here is a prefix match after filling.
        let covering = self
            .http
            .iter()
            .find(|g| token_url.starts_with(&g.url) && g.methods.iter().any(|m| m == "POST"));
        let Some(grant) = covering else {
            return Err(self.invalid(format!(
                "token_url {token_url} is not covered by any [[http]] grant allowing POST; add one"
            )));
        };
        if *refresh {
            for name in [REFRESH_TOKEN, CLIENT_SECRET] {
                if !grant.secrets.iter().any(|s| s == name) || !grant.secrets_in_body {
                    return Err(self.invalid(format!(
                        "grant {} covers token_url but does not bind `{name}` with secrets_in_body = true, so the host could not refresh",
                        grant.url
                    )));
                }
            }
        }
        Ok(())
    }

    /// The token endpoint filled from a configuration that has passed
    /// [`Manifest::validate_config`]; `None` when the plugin declares none.
    pub fn token_url_for(
        &self,
        config: &BTreeMap<String, String>,
    ) -> Result<Option<String>, ManifestError> {
        let Some(Auth::Oauth2 {
            token_url: Some(token_url),
            ..
        }) = self.oauth2()
        else {
            return Ok(None);
        };
        let template = token_template(token_url).map_err(|e| self.invalid(e))?;
        let config_err = |message: String| ManifestError::Config {
            key: self.key.clone(),
            message,
        };
        let filled = template.fill(config).map_err(config_err)?;
        if !rules::host_fields(token_url).is_empty() {
            rules::check_host(rules::template_host(&filled))
                .map_err(|e| config_err(format!("token_url filled as {filled}: {e}")))?;
        }
        Ok(Some(filled))
    }

    /// Checks an instance configuration against the declared fields and
    /// returns the complete configuration (defaults filled in). Unknown
    /// fields are refused so that typos do not silently do nothing.
    pub fn validate_config(
        &self,
        given: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, ManifestError> {
        let config_err = |message: String| self.config_error(message);
        let given = self.resolve_aliases(given)?;
        let given = tenant::normalize(self, &given).map_err(config_err)?;
        let mut out = BTreeMap::new();
        for field in &self.config {
            let value = match given.get(&field.name).or(field.default.as_ref()) {
                Some(v) => v.clone(),
                None if field.required => {
                    return Err(config_err(format!(
                        "field `{}` is required ({})",
                        field.name, field.description
                    )));
                }
                None => continue,
            };
            let re = anchored(&field.pattern).map_err(|e| config_err(e.to_string()))?;
            if !field.values.is_empty() && !field.values.contains(&value) {
                return Err(config_err(format!(
                    "field `{}` value {:?} is not one of: {}",
                    field.name,
                    value,
                    field.values.join(", ")
                )));
            }
            if !re.is_match(&value) {
                return Err(config_err(format!(
                    "field `{}` value {:?} does not match {}",
                    field.name, value, field.pattern
                )));
            }
            out.insert(field.name.clone(), value);
        }
        Ok(out)
    }

    /// Normalises the tenant fields present in `given` (see [`tenant`])
    /// without checking the rest: what [`Manifest::validate_config`] does
    /// first, for callers comparing configurations.
    pub fn normalize_config(
        &self,
        given: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, ManifestError> {
        let given = self.resolve_aliases(given)?;
        tenant::normalize(self, &given).map_err(|message| self.config_error(message))
    }

    /// Every host a grant's host template may be filled to, with the
    /// placeholders of fields that list `values` expanded.
    pub fn host_families(&self, host_template: &str) -> Vec<String> {
        tenant::host_families(self, host_template)
    }

    /// Whether a grant's host template ends in a value the operator types
    /// (a custom domain) instead of a provider host family.
    pub fn is_operator_named(&self, host_template: &str) -> bool {
        tenant::operator_named(self, host_template)
    }

    /// The hosts of a validated configuration's grants that the operator
    /// named (see [`Manifest::is_operator_named`]): where the plugin may send
    /// its tokens outside the provider's own host families.
    pub fn operator_named_hosts(
        &self,
        config: &BTreeMap<String, String>,
    ) -> Result<Vec<String>, ManifestError> {
        let mut hosts: Vec<String> = self
            .grants_for(config)?
            .into_iter()
            .filter(|g| {
                let template = g.template.split_once("://").map_or("", |(_, r)| r);
                let host = template.split('/').next().unwrap_or_default();
                self.is_operator_named(host)
            })
            .map(|g| g.host)
            .collect();
        hosts.dedup();
        Ok(hosts)
    }

    /// Renames every field given under one of its declared
    /// [`ConfigField::aliases`] to the field's name. Unknown names are
    /// refused with the list of names this plugin takes; a field given under
    /// two names with different values is refused too.
    pub fn resolve_aliases(
        &self,
        given: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, ManifestError> {
        let config_err = |message: String| self.config_error(message);
        let mut out: BTreeMap<String, String> = BTreeMap::new();
        let mut named_as: BTreeMap<&str, &str> = BTreeMap::new();
        for (name, value) in given {
            let Some(field) = self
                .config
                .iter()
                .find(|f| &f.name == name || f.aliases.iter().any(|a| a == name))
            else {
                return Err(config_err(format!(
                    "unknown field `{name}`; this plugin takes: {}",
                    self.config_names().join(", ")
                )));
            };
            if let Some(previous) = out.get(&field.name)
                && previous != value
            {
                let other = named_as.get(field.name.as_str()).copied().unwrap_or("");
                return Err(config_err(format!(
                    "`{other}` and `{name}` both name field `{}` with different values; give it once",
                    field.name
                )));
            }
            named_as.insert(&field.name, name);
            out.insert(field.name.clone(), value.clone());
        }
        Ok(out)
    }

    fn config_error(&self, message: String) -> ManifestError {
        ManifestError::Config {
            key: self.key.clone(),
            message,
        }
    }

    /// Every configuration name this plugin accepts: each field, followed
    /// by its aliases in parentheses.
    fn config_names(&self) -> Vec<String> {
        self.config
            .iter()
            .map(|f| {
                if f.aliases.is_empty() {
                    f.name.clone()
                } else {
                    format!("{} (or {})", f.name, f.aliases.join(", "))
                }
            })
            .collect()
    }

    /// Fills every HTTP grant template from a configuration that has passed
    /// [`Manifest::validate_config`]. A grant using an optional field the
    /// configuration leaves unset is not granted to that instance.
    pub fn grants_for(
        &self,
        config: &BTreeMap<String, String>,
    ) -> Result<Vec<HttpGrant>, ManifestError> {
        let mut grants = Vec::new();
        for decl in &self.http {
            let template = UrlTemplate::parse(&decl.url).map_err(|e| self.invalid(e))?;
            let unset_optional = template.placeholders().iter().any(|p| {
                !config.contains_key(p) && self.config.iter().any(|f| &f.name == p && !f.required)
            });
            if unset_optional {
                continue;
            }
            let config_err = |message| ManifestError::Config {
                key: self.key.clone(),
                message,
            };
            let url = template.fill(config).map_err(config_err)?;
            grants.push(HttpGrant::new(decl, &url).map_err(config_err)?);
        }
        Ok(grants)
    }
}

/// A token URL is an endpoint, not a prefix: it is checked as a grant
/// template would be, except that it must not end with `/`.
fn token_template(url: &str) -> Result<UrlTemplate, String> {
    if url.ends_with('/') {
        return Err(format!(
            "token_url {url} must name the endpoint itself, not end with `/`"
        ));
    }
    UrlTemplate::parse(&format!("{url}/")).map(|_| UrlTemplate { text: url.into() })
}

fn anchored(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?:{pattern})$"))
}

/// A URL template such as `https://{subdomain}.zendesk.com/api/v2/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlTemplate {
    text: String,
}

impl UrlTemplate {
    /// Checks the template's shape: scheme http(s), a host, a path prefix
    /// that starts and ends with `/`, placeholders only in host and path.
    pub fn parse(text: &str) -> Result<UrlTemplate, String> {
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| format!("grant url {text} has no scheme"))?;
        if scheme != "https" && scheme != "http" {
            return Err(format!("grant url {text}: scheme must be https or http"));
        }
        let slash = rest
            .find('/')
            .ok_or_else(|| format!("grant url {text} needs a path prefix ending in /"))?;
        if !text.ends_with('/') {
            return Err(format!(
                "grant url {text} must end with `/` so that the prefix ends on a path segment"
            ));
        }
        let authority = &rest[..slash];
        if authority.is_empty() || authority.contains('@') {
            return Err(format!("grant url {text} has no usable host"));
        }
        if text.contains('?') || text.contains('#') {
            return Err(format!(
                "grant url {text} must not contain a query or fragment"
            ));
        }
        let template = UrlTemplate { text: text.into() };
        // Placeholders must be well-formed: every `{` closes before the next `{`.
        let mut depth = 0;
        for c in text.chars() {
            match c {
                '{' if depth == 0 => depth = 1,
                '}' if depth == 1 => depth = 0,
                '{' | '}' => return Err(format!("grant url {text} has unbalanced braces")),
                _ => {}
            }
        }
        if depth != 0 {
            return Err(format!("grant url {text} has unbalanced braces"));
        }
        Ok(template)
    }

    /// The config field names the template depends on.
    pub fn placeholders(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = self.text.as_str();
        while let Some(start) = rest.find('{') {
            let Some(len) = rest[start..].find('}') else {
                break;
            };
            out.push(rest[start + 1..start + len].to_string());
            rest = &rest[start + len + 1..];
        }
        out
    }

    /// Substitutes validated configuration values.
    pub fn fill(&self, config: &BTreeMap<String, String>) -> Result<String, String> {
        let mut out = self.text.clone();
        for name in self.placeholders() {
            let value = config
                .get(&name)
                .ok_or_else(|| format!("grant {} needs config field `{name}`", self.text))?;
            out = out.replace(&format!("{{{name}}}"), value);
        }
        Ok(out)
    }

    /// The template text.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// A concrete grant for one instance: template filled, ready to match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpGrant {
    /// The template it came from (for logs and inspection).
    pub template: String,
    /// `https` or `http`.
    pub scheme: String,
    /// Lower-case host name.
    pub host: String,
    /// Port (default for the scheme when not written).
    pub port: u16,
    /// Path prefix, starting and ending with `/`.
    pub path_prefix: String,
    /// Allowed methods.
    pub methods: Vec<String>,
    /// Secrets that may be substituted into matching requests.
    pub secrets: Vec<String>,
    /// Whether substitution into the body is allowed.
    pub secrets_in_body: bool,
    /// Whether request paths may carry `;` parameters.
    pub allow_params: bool,
}

impl HttpGrant {
    fn new(decl: &HttpGrantDecl, filled: &str) -> Result<HttpGrant, String> {
        let url = url::Url::parse(filled)
            .map_err(|e| format!("grant {} filled as {filled} is not a URL: {e}", decl.url))?;
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_ascii_lowercase(),
            Some(other) => other.to_string(),
            None => return Err(format!("grant {} filled as {filled} has no host", decl.url)),
        };
        // A host shaped by config is re-checked once filled: whatever the
        // patterns allowed, the result must be a DNS name.
        if !rules::host_fields(&decl.url).is_empty() {
            rules::check_host(&host)
                .map_err(|e| format!("grant {} filled as {filled}: {e}", decl.url))?;
        }
        let port = url
            .port_or_known_default()
            .ok_or_else(|| format!("grant {filled} has no port"))?;
        let path_prefix = url.path().to_string();
        if path_prefix != filled_path(filled) {
            // url normalised something (`..`, percent-encoding): a config
            // value must not be able to move the prefix.
            return Err(format!(
                "grant {} filled as {filled} normalises to a different path",
                decl.url
            ));
        }
        Ok(HttpGrant {
            template: decl.url.clone(),
            scheme: url.scheme().to_string(),
            host,
            port,
            path_prefix,
            methods: decl.methods.clone(),
            secrets: decl.secrets.clone(),
            secrets_in_body: decl.secrets_in_body,
            allow_params: decl.allow_params,
        })
    }

    /// Whether a request target (already split and normalised by the
    /// caller) falls under this grant, ignoring the method.
    pub fn covers(&self, scheme: &str, host: &str, port: u16, path: &str) -> bool {
        self.scheme == scheme
            && self.host.eq_ignore_ascii_case(host)
            && self.port == port
            && path.starts_with(&self.path_prefix)
    }

    /// Whether the method is allowed.
    pub fn allows_method(&self, method: &str) -> bool {
        self.methods.iter().any(|m| m == method)
    }
}

fn filled_path(filled: &str) -> &str {
    let after_scheme = filled.split_once("://").map(|(_, r)| r).unwrap_or(filled);
    after_scheme
        .find('/')
        .map(|i| &after_scheme[i..])
        .unwrap_or("/")
}

impl fmt::Display for HttpGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}://{}:{}{}",
            self.methods.join(","),
            self.scheme,
            self.host,
            self.port,
            self.path_prefix
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const OKTA: &str = r#"
key = "okta"
name = "Okta"
version = "0.1.0"
vendor = "Ward"
auth = { kind = "api-token", secret = "api_token" }

[[config]]
name = "domain"
pattern = "[a-z0-9][a-z0-9-]{0,62}"

[[secrets]]
name = "api_token"

[[http]]
url = "https://{domain}.okta.com/api/v1/"
methods = ["GET"]
secrets = ["api_token"]
"#;

    fn cfg(domain: &str) -> BTreeMap<String, String> {
        BTreeMap::from([("domain".to_string(), domain.to_string())])
    }

    #[test]
    fn fills_grants_from_validated_config() {
        let m = Manifest::parse(OKTA).unwrap();
        let config = m.validate_config(&cfg("acme")).unwrap();
        let grants = m.grants_for(&config).unwrap();
        assert_eq!(grants[0].host, "acme.okta.com");
        assert_eq!(grants[0].port, 443);
        assert_eq!(grants[0].path_prefix, "/api/v1/");
        assert!(grants[0].covers("https", "ACME.okta.com", 443, "/api/v1/logs"));
        assert!(!grants[0].covers("https", "acme.okta.com", 443, "/api/v2/logs"));
        assert!(!grants[0].covers("http", "acme.okta.com", 443, "/api/v1/logs"));
    }

    #[test]
    fn rejects_hostile_config_values() {
        let m = Manifest::parse(OKTA).unwrap();
        for bad in [
            "evil.com/",
            "a.evil.com#",
            "x@evil",
            "../",
            "",
            "ACME",
            "acme.okta.com.evil",
        ] {
            assert!(m.validate_config(&cfg(bad)).is_err(), "{bad} accepted");
        }
        let mut extra = cfg("acme");
        extra.insert("oops".into(), "1".into());
        assert!(m.validate_config(&extra).is_err());
    }

    #[test]
    fn aliases_name_the_same_field_and_are_checked_like_it() {
        let m = Manifest::parse(&OKTA.replace(
            "name = \"domain\"\n",
            "name = \"domain\"\naliases = [\"subdomain\", \"okta.subdomain\"]\n",
        ))
        .unwrap();
        for alias in ["subdomain", "okta.subdomain"] {
            let given = BTreeMap::from([(alias.to_string(), "acme".to_string())]);
            assert_eq!(m.validate_config(&given).unwrap(), cfg("acme"), "{alias}");
            // The value passes the field's own pattern, whatever it is called.
            let bad = BTreeMap::from([(alias.to_string(), "evil.com/".to_string())]);
            assert!(m.validate_config(&bad).is_err(), "{alias}");
        }
        let mut same = cfg("acme");
        same.insert("subdomain".into(), "acme".into());
        assert_eq!(m.validate_config(&same).unwrap(), cfg("acme"));
        let mut differ = cfg("acme");
        differ.insert("subdomain".into(), "other".into());
        let err = m.validate_config(&differ).unwrap_err().to_string();
        assert!(err.contains("both name field `domain`"), "{err}");
        let unknown = BTreeMap::from([("site".to_string(), "acme".to_string())]);
        let err = m.validate_config(&unknown).unwrap_err().to_string();
        assert!(
            err.contains("domain (or subdomain, okta.subdomain)"),
            "{err}"
        );
        // An alias may not shadow a field, nor be declared twice.
        let clash = OKTA.replace(
            "name = \"domain\"\n",
            "name = \"domain\"\naliases = [\"domain\"]\n",
        );
        assert!(Manifest::parse(&clash).is_err());
        let twice = OKTA.replace(
            "name = \"domain\"\n",
            "name = \"domain\"\naliases = [\"sub\", \"sub\"]\n",
        );
        assert!(Manifest::parse(&twice).is_err());
    }

    #[test]
    fn rejects_undeclared_placeholder_and_secret() {
        let bad = OKTA.replace("{domain}.okta.com", "{tenant}.okta.com");
        assert!(Manifest::parse(&bad).is_err());
        let bad = OKTA.replace("secrets = [\"api_token\"]", "secrets = [\"other\"]");
        assert!(Manifest::parse(&bad).is_err());
        let bad = OKTA.replace("/api/v1/\"", "/api/v1\"");
        assert!(Manifest::parse(&bad).is_err());
    }

    const OKTA_OAUTH: &str = r#"
key = "okta"
name = "Okta"
version = "0.2.0"
vendor = "Ward"

[[auth]]
kind = "api-token"
secret = "api_token"

[[auth]]
kind = "oauth2"
scopes = ["okta.logs.read", "okta.users.read", "offline_access"]
refresh = true
token_url = "https://{domain}.okta.com/oauth2/v1/token"

[[config]]
name = "domain"
pattern = "[a-z0-9][a-z0-9-]{0,62}"

[[config]]
name = "client_id"
pattern = "[A-Za-z0-9_-]{1,64}"
required = false

[[secrets]]
name = "api_token"
[[secrets]]
name = "access_token"
[[secrets]]
name = "refresh_token"
[[secrets]]
name = "client_secret"

[[http]]
url = "https://{domain}.okta.com/api/v1/"
methods = ["GET"]
secrets = ["api_token", "access_token"]

[[http]]
url = "https://{domain}.okta.com/oauth2/v1/"
methods = ["POST"]
secrets = ["client_secret", "refresh_token"]
secrets_in_body = true
"#;

    #[test]
    fn single_auth_table_still_parses() {
        let m = Manifest::parse(OKTA).unwrap();
        assert_eq!(
            m.auth,
            vec![Auth::ApiToken {
                secret: "api_token".into(),
                exchange: ExchangeBy::Host,
            }]
        );
        assert_eq!(m.token_url_for(&cfg("acme")).unwrap(), None);
    }

    #[test]
    fn auth_list_with_oauth2_and_token_url() {
        let m = Manifest::parse(OKTA_OAUTH).unwrap();
        assert_eq!(m.auth.len(), 2);
        assert_eq!(m.auth[1].kind(), "oauth2");
        assert_eq!(m.auth[1].marker_secret(), "access_token");
        let config = m.validate_config(&cfg("acme")).unwrap();
        assert_eq!(
            m.token_url_for(&config).unwrap().as_deref(),
            Some("https://acme.okta.com/oauth2/v1/token")
        );
        // Round trip through TOML keeps the list form.
        let text = toml::to_string(&m).unwrap();
        assert_eq!(Manifest::parse(&text).unwrap(), m);
    }

    #[test]
    #[allow(clippy::panic)]
    fn token_endpoint_options_and_exchange_owner() {
        let m = Manifest::parse(OKTA_OAUTH).unwrap();
        let Some(Auth::Oauth2 {
            token_auth,
            token_body,
            exchange,
            ..
        }) = m.oauth2()
        else {
            panic!("oauth2 auth");
        };
        assert_eq!(*token_auth, TokenAuth::ClientSecretPost);
        assert_eq!(*token_body, TokenBody::Form);
        assert_eq!(*exchange, ExchangeBy::Host);
        let custom = OKTA_OAUTH.replace(
            "refresh = true\n",
            "refresh = true\ntoken_auth = \"client_secret_basic\"\ntoken_body = \"json\"\nexchange = \"plugin\"\n",
        );
        let m = Manifest::parse(&custom).unwrap();
        let Some(
            auth @ Auth::Oauth2 {
                token_auth,
                token_body,
                ..
            },
        ) = m.oauth2()
        else {
            panic!("oauth2 auth");
        };
        assert_eq!(*token_auth, TokenAuth::ClientSecretBasic);
        assert_eq!(*token_body, TokenBody::Json);
        assert_eq!(auth.exchange_by(), ExchangeBy::Plugin);
        let typo = OKTA_OAUTH.replace(
            "refresh = true\n",
            "refresh = true\ntoken_auth = \"basic\"\n",
        );
        assert!(Manifest::parse(&typo).is_err());
    }

    #[test]
    fn basic_username_template_is_checked_at_load_and_filled_from_config() {
        let basic = |username: &str| {
            OKTA.replace(
                "auth = { kind = \"api-token\", secret = \"api_token\" }",
                &format!(
                    "auth = {{ kind = \"basic\", secret = \"api_token\", username = {username:?} }}"
                ),
            )
        };
        let m = Manifest::parse(&basic("{domain}/token")).unwrap();
        assert_eq!(
            m.auth[0].basic_username(&cfg("acme")).unwrap().as_deref(),
            Some("acme/token")
        );
        let e = m.auth[0].basic_username(&BTreeMap::new()).unwrap_err();
        assert!(e.contains("`domain`"), "{e}");
        for (bad, why) in [
            ("{email}/token", "no config field"),
            ("{domain}:x", "contains `:`"),
            ("{domain/token", "unbalanced"),
            ("{}/token", "empty"),
        ] {
            let e = Manifest::parse(&basic(bad)).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn oauth2_rules() {
        let uncovered = OKTA_OAUTH.replace("/oauth2/v1/\"", "/oauth2/v2/\"");
        let e = Manifest::parse(&uncovered).unwrap_err().to_string();
        assert!(e.contains("not covered"), "{e}");
        let no_body = OKTA_OAUTH.replace("secrets_in_body = true", "");
        let e = Manifest::parse(&no_body).unwrap_err().to_string();
        assert!(e.contains("secrets_in_body"), "{e}");
        let no_url = OKTA_OAUTH.replace(
            "token_url = \"https://{domain}.okta.com/oauth2/v1/token\"",
            "",
        );
        let e = Manifest::parse(&no_url).unwrap_err().to_string();
        assert!(e.contains("token_url"), "{e}");
        let bad_placeholder = OKTA_OAUTH.replace(
            "{domain}.okta.com/oauth2/v1/token",
            "{org}.okta.com/oauth2/v1/token",
        );
        assert!(Manifest::parse(&bad_placeholder).is_err());
        let trailing = OKTA_OAUTH.replace("/oauth2/v1/token", "/oauth2/v1/token/");
        assert!(Manifest::parse(&trailing).is_err());
        let no_client_id = OKTA_OAUTH.replace("name = \"client_id\"", "name = \"app_id\"");
        let e = Manifest::parse(&no_client_id).unwrap_err().to_string();
        assert!(e.contains("client_id"), "{e}");
        let no_secret = OKTA_OAUTH.replace("[[secrets]]\nname = \"client_secret\"", "");
        let no_secret = no_secret.replace("\"client_secret\", ", "");
        let e = Manifest::parse(&no_secret).unwrap_err().to_string();
        assert!(e.contains("client_secret"), "{e}");
        let twice = format!(
            "{}\n[[auth]]\nkind = \"api-token\"\nsecret = \"api_token\"\n",
            OKTA_OAUTH.split("[[config]]").next().unwrap()
        ) + &OKTA_OAUTH[OKTA_OAUTH.find("[[config]]").unwrap()..];
        let e = Manifest::parse(&twice).unwrap_err().to_string();
        assert!(e.contains("twice"), "{e}");
    }

    #[test]
    fn reserved_config_name_is_refused() {
        let m = Manifest::parse(OKTA).unwrap();
        let mut given = cfg("acme");
        given.insert("ward.auth".into(), "oauth2".into());
        assert!(m.validate_config(&given).is_err());
    }
}
