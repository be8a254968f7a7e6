//! OAuth2 authorization-code helpers.
//!
//! The flow as Ward runs it: the host calls `auth-url` (built with an
//! [`OAuthClient`]) and sends the operator's browser there; the provider
//! redirects back with `code` and `state` (the host checks `state`); the
//! host exchanges the code at the manifest's `token_url` and stores the
//! tokens, and refreshes them when the manifest says `refresh = true`. The
//! connector never sees a code or a token: it sends
//! `Bearer {{secret:access_token}}` (see [`crate::auth::AuthHeader`]).
//!
//! With the crate feature `exchange`, `token_request` and
//! `parse_token_response` help a connector that runs its own exchange.

use crate::http::with_query;
use crate::{Config, Error, Result};
#[cfg(feature = "exchange")]
use crate::{
    Credentials, Secret,
    http::{Request, Response},
    secret_ref,
    time::now,
};
#[cfg(feature = "exchange")]
use serde::Deserialize;

/// Name of the config field holding the OAuth client id.
pub const CLIENT_ID: &str = "client_id";
/// Secret holding the OAuth client secret.
pub const CLIENT_SECRET: &str = "client_secret";
/// Secret the access token is stored under.
pub const ACCESS_TOKEN: &str = "access_token";
/// Secret the refresh token is stored under.
pub const REFRESH_TOKEN: &str = "refresh_token";

/// A connector's OAuth client description: the scopes it asks for and what
/// to tell the operator when the instance has no client id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OAuthClient {
    /// Scopes the authorization URL asks for (as in the manifest).
    pub scopes: &'static [&'static str],
    /// What the operator must do when config field `client_id` is unset
    /// (where the provider's admin console issues client ids).
    pub missing_client_id: &'static str,
}

impl OAuthClient {
    /// The instance's OAuth client id (config field `client_id`, the API's
    /// `apiKey`), or [`Error::InvalidConfig`] with `missing_client_id`.
    pub fn client_id<'c>(&self, config: &'c Config) -> Result<&'c str> {
        config
            .get(CLIENT_ID)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| Error::invalid_config(self.missing_client_id))
    }

    /// The body of `auth-url`: `endpoint` with `client_id`,
    /// `response_type=code`, the scopes, `redirect_uri` and `state`.
    pub fn auth_url(
        &self,
        config: &Config,
        endpoint: &str,
        redirect_uri: &str,
        state: &str,
    ) -> Result<String> {
        authorize_url(
            endpoint,
            self.client_id(config)?,
            redirect_uri,
            self.scopes,
            state,
        )
    }
}

/// Builds an authorization URL (`response_type=code`) for the operator's
/// browser.
pub fn authorize_url(
    endpoint: &str,
    client_id: &str,
    redirect_uri: &str,
    scopes: &[&str],
    state: &str,
) -> Result<String> {
    if client_id.is_empty() {
        return Err(Error::invalid_config(
            "the OAuth client id is empty: set config field `client_id` (apiKey)",
        ));
    }
    with_query(
        endpoint,
        &[
            ("client_id", client_id),
            ("response_type", "code"),
            ("scope", &scopes.join(" ")),
            ("redirect_uri", redirect_uri),
            ("state", state),
        ],
    )
}

/// An `application/x-www-form-urlencoded` body in which plain fields are
/// encoded and secret fields are written as `{{secret:NAME}}` references for
/// the host to substitute.
///
/// The host substitutes the raw value, so a secret is only suitable here if
/// its value needs no form encoding; OAuth client secrets and tokens are
/// drawn from URL-safe alphabets.
#[cfg(feature = "exchange")]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form {
    body: String,
}

#[cfg(feature = "exchange")]
impl Form {
    /// An empty form.
    pub fn new() -> Form {
        Form::default()
    }

    fn separator(&mut self) {
        if !self.body.is_empty() {
            self.body.push('&');
        }
    }

    /// Adds a plain field, percent-encoded.
    pub fn field(mut self, name: &str, value: &str) -> Form {
        self.separator();
        self.body.push_str(&encode(name));
        self.body.push('=');
        self.body.push_str(&encode(value));
        self
    }

    /// Adds a field whose value is the stored secret `secret`.
    pub fn secret(mut self, name: &str, secret: &str) -> Form {
        self.separator();
        self.body.push_str(&encode(name));
        self.body.push('=');
        self.body.push_str(&secret_ref(secret));
        self
    }

    /// The encoded body.
    pub fn as_str(&self) -> &str {
        &self.body
    }
}

#[cfg(feature = "exchange")]
fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// An authorization-code token request using `client_secret_post`.
#[cfg(feature = "exchange")]
pub fn token_request(
    token_url: &str,
    client_id: &str,
    code: &str,
    redirect_uri: &str,
    code_verifier: Option<&str>,
) -> Request {
    let mut form = Form::new()
        .field("grant_type", "authorization_code")
        .field("code", code)
        .field("redirect_uri", redirect_uri)
        .field("client_id", client_id)
        .secret("client_secret", CLIENT_SECRET);
    if let Some(verifier) = code_verifier {
        form = form.field("code_verifier", verifier);
    }
    Request::post(token_url)
        .accept_json()
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.as_str().as_bytes().to_vec())
}

#[cfg(feature = "exchange")]
#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<i64>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

#[cfg(feature = "exchange")]
#[derive(Deserialize, Default)]
#[serde(default)]
struct TokenError {
    error: String,
    error_description: String,
}

/// Turns a token endpoint's response into [`Credentials`] (`access_token`,
/// `refresh_token` if any, expiry, granted scopes), or into the contract
/// error the host acts on: a rejected client is `invalid-config` (fix the
/// client id or secret), a rejected code `unauthorized` (start the
/// connection again), 429 `rate-limited`, 5xx `unavailable`.
#[cfg(feature = "exchange")]
pub fn parse_token_response(response: &Response, requested: &[&str]) -> Result<Credentials> {
    if !response.is_success() {
        let err: TokenError = serde_json::from_slice(&response.body).unwrap_or_default();
        let detail = if err.error.is_empty() {
            response.excerpt()
        } else {
            format!("{}: {}", err.error, err.error_description)
        };
        return Err(match (response.status, err.error.as_str()) {
            (_, "invalid_client") | (401, _) => Error::invalid_config(format!(
                "the token endpoint rejected the OAuth client ({detail}): check the client id (apiKey) and client secret (apiSecret) of the app integration"
            )),
            (_, "invalid_grant") => Error::unauthorized(format!(
                "the authorization code was refused ({detail}): codes are single-use and expire quickly; start the connection again"
            )),
            (_, "invalid_scope") => Error::forbidden(format!(
                "the requested scopes were refused ({detail}): grant {} to the app integration, then reconnect",
                requested.join(", ")
            )),
            (429, _) => Error::rate_limited(
                response.retry_after_ms().unwrap_or(60_000),
                format!("token endpoint rate limit ({detail})"),
            ),
            (500..=599, _) => Error::unavailable(format!(
                "token endpoint returned {} ({detail}); will retry",
                response.status
            )),
            _ => Error::internal(format!(
                "token endpoint returned {} ({detail})",
                response.status
            )),
        });
    }
    let token: TokenResponse = response.json()?;
    if let Some(kind) = &token.token_type
        && !kind.eq_ignore_ascii_case("bearer")
    {
        return Err(Error::internal(format!(
            "token endpoint issued a `{kind}` token; only Bearer tokens are supported"
        )));
    }
    if token.access_token.is_empty() {
        return Err(Error::internal(
            "token endpoint returned an empty access token",
        ));
    }
    let mut secrets = vec![Secret {
        name: ACCESS_TOKEN.to_string(),
        value: token.access_token,
    }];
    if let Some(refresh) = token.refresh_token.filter(|t| !t.is_empty()) {
        secrets.push(Secret {
            name: REFRESH_TOKEN.to_string(),
            value: refresh,
        });
    }
    // RFC 6749 §5.1: an absent scope means the requested ones were granted.
    let scopes = match token.scope {
        Some(scope) => scope.split_whitespace().map(str::to_string).collect(),
        None => requested.iter().map(|s| s.to_string()).collect(),
    };
    Ok(Credentials {
        secrets,
        expires_at: token
            .expires_in
            .filter(|s| *s > 0)
            .map(|s| now().saturating_add(s.saturating_mul(1000))),
        scopes,
        principal: None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[cfg(feature = "exchange")]
    fn response(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[cfg(feature = "exchange")]
    #[test]
    fn form_encodes_fields_not_secret_references() {
        let form = Form::new()
            .field("redirect_uri", "https://ward.local/cb?x=1&y")
            .secret("client_secret", "client_secret");
        assert_eq!(
            form.as_str(),
            "redirect_uri=https%3A%2F%2Fward.local%2Fcb%3Fx%3D1%26y&client_secret={{secret:client_secret}}"
        );
    }

    #[test]
    fn authorize_url_carries_every_parameter() {
        let url = authorize_url(
            "https://acme.okta.com/oauth2/v1/authorize",
            "0oa1",
            "https://ward.local/cb",
            &["okta.logs.read", "offline_access"],
            "st&ate",
        )
        .unwrap();
        let parsed = url::Url::parse(&url).unwrap();
        let q: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
        assert!(q.contains(&("scope".into(), "okta.logs.read offline_access".into())));
        assert!(q.contains(&("state".into(), "st&ate".into())));
        assert!(q.contains(&("response_type".into(), "code".into())));
        assert!(authorize_url("https://a/", "", "https://b", &[], "s").is_err());
    }

    #[cfg(feature = "exchange")]
    #[test]
    fn token_response_to_credentials() {
        let ok = response(
            200,
            r#"{"token_type":"Bearer","expires_in":3600,"access_token":"at-123456","scope":"okta.logs.read offline_access","refresh_token":"rt-654321"}"#,
        );
        let c = parse_token_response(&ok, &["okta.logs.read"]).unwrap();
        assert_eq!(c.secrets.len(), 2);
        assert_eq!(c.secrets[1].name, "refresh_token");
        assert_eq!(c.scopes, vec!["okta.logs.read", "offline_access"]);
        assert!(c.expires_at.unwrap() > now());

        let bad_client = response(
            401,
            r#"{"error":"invalid_client","error_description":"Invalid value for the `client_id` parameter"}"#,
        );
        assert!(matches!(
            parse_token_response(&bad_client, &[]),
            Err(Error::InvalidConfig(_))
        ));
        let bad_code = response(400, r#"{"error":"invalid_grant","error_description":"x"}"#);
        assert!(matches!(
            parse_token_response(&bad_code, &[]),
            Err(Error::Unauthorized(_))
        ));
        assert!(matches!(
            parse_token_response(&response(503, "down"), &[]),
            Err(Error::Unavailable(_))
        ));
    }
}
