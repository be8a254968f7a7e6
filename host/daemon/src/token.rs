//! The host's OAuth2 token endpoint client: the one place that talks to a
//! manifest's `token_url`, for the authorization-code exchange at connect
//! time ([`exchange_code`]) and for refresh ([`crate::refresh`]).
//!
//! Every request goes through the instance's own broker
//! ([`ward_runtime::Bound::host_request`]): it must fall under a grant, the
//! client secret and refresh token are substituted by reference, and the
//! request lands in the egress log without secret values. The body is a
//! form or JSON (`token_body`), the client authenticates in the body or
//! with HTTP Basic (`token_auth`), as the manifest declares.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use serde::Deserialize;
use ward_manifest::{
    ACCESS_TOKEN, Auth, CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, TokenAuth, TokenBody,
};
use ward_runtime::{EgressEntry, HostRequest, Plugin, SecretSet};
use ward_store::Credentials;

/// What the host asks the token endpoint for.
pub(crate) enum TokenGrant<'a> {
    /// `grant_type=authorization_code`.
    Code {
        /// The code from the provider's redirect.
        code: &'a str,
        /// The redirect URI the code was issued for.
        redirect_uri: &'a str,
        /// PKCE verifier, if the authorization used one.
        code_verifier: Option<&'a str>,
    },
    /// `grant_type=refresh_token`, with the scopes held so far.
    Refresh {
        /// Scopes to ask for again (omitted when empty).
        scopes: &'a [String],
    },
}

/// Why the token endpoint gave no tokens.
#[derive(Debug)]
pub(crate) enum TokenFailure {
    /// The endpoint judged the grant or the client (400/401/403): only a
    /// new consent (or client) helps. `detail` is the provider's
    /// `error: error_description`, or the status.
    Rejected {
        /// The OAuth error code (`invalid_grant`…), empty if none.
        error: String,
        /// What to show.
        detail: String,
    },
    /// 429: try again after this many milliseconds (0: unknown).
    Throttled {
        /// The `Retry-After` delay.
        retry_after_ms: u64,
        /// What to show.
        detail: String,
    },
    /// No verdict: transport failure, 5xx, an unusable answer, or the
    /// manifest gives no token endpoint for this configuration.
    Unavailable(String),
}

/// The tokens of a successful answer.
#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    pub(crate) access_token: String,
    #[serde(default)]
    pub(crate) expires_in: Option<i64>,
    #[serde(default)]
    pub(crate) refresh_token: Option<String>,
    #[serde(default)]
    pub(crate) scope: Option<String>,
}

impl TokenResponse {
    /// Writes the answer into stored credentials: the access token, a
    /// (rotated) refresh token, the expiry from `expires_in`, and the
    /// granted scopes when the provider names them.
    pub(crate) fn apply(self, creds: &mut Credentials) {
        let TokenResponse {
            access_token,
            expires_in,
            refresh_token,
            scope,
        } = self;
        creds.secrets.insert(ACCESS_TOKEN.to_string(), access_token);
        if let Some(refresh) = refresh_token.filter(|t| !t.is_empty()) {
            creds.secrets.insert(REFRESH_TOKEN.to_string(), refresh);
        }
        creds.expires_at_ms = expires_in
            .filter(|s| *s > 0)
            .map(|s| now_ms().saturating_add(s.saturating_mul(1000)));
        if let Some(scope) = scope {
            creds.scopes = scope.split_whitespace().map(str::to_string).collect();
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TokenError {
    error: String,
    error_description: String,
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Sends one token request for `instance_id` (an instance id, or the
/// egress id of a connection being created) and parses the answer.
/// `secrets` are the instance's secrets (at least `client_secret` when
/// the client has one; `refresh_token` for a refresh). Returns the result
/// and the egress rows to record.
pub(crate) async fn request(
    plugin: &Arc<Plugin>,
    instance_id: &str,
    config: &BTreeMap<String, String>,
    secrets: &BTreeMap<String, String>,
    grant: TokenGrant<'_>,
) -> (Result<TokenResponse, TokenFailure>, Vec<EgressEntry>) {
    let manifest = plugin.manifest();
    let Some(Auth::Oauth2 {
        token_auth,
        token_body,
        ..
    }) = manifest.oauth2()
    else {
        return (
            Err(TokenFailure::Unavailable(format!(
                "plugin `{}` declares no oauth2 auth in its manifest",
                manifest.key
            ))),
            Vec::new(),
        );
    };
    let token_url = match manifest.token_url_for(config) {
        Ok(Some(url)) => url,
        Ok(None) => {
            return (
                Err(TokenFailure::Unavailable(format!(
                    "plugin `{}` declares no `token_url` for its oauth2 auth, so the host cannot exchange the code; the plugin's vendor must add it to the manifest",
                    manifest.key
                ))),
                Vec::new(),
            );
        }
        Err(e) => return (Err(TokenFailure::Unavailable(e.to_string())), Vec::new()),
    };
    let client_id = config.get(CLIENT_ID).map(String::as_str);
    let has_secret = secrets.contains_key(CLIENT_SECRET);
    let mut request_secrets = secrets.clone();
    let mut fields: Vec<(&str, Field<'_>)> = Vec::new();
    match &grant {
        TokenGrant::Code {
            code,
            redirect_uri,
            code_verifier,
        } => {
            fields.push(("grant_type", Field::Plain("authorization_code")));
            fields.push(("code", Field::Plain(code)));
            fields.push(("redirect_uri", Field::Plain(redirect_uri)));
            if let Some(verifier) = code_verifier {
                fields.push(("code_verifier", Field::Plain(verifier)));
            }
        }
        TokenGrant::Refresh { .. } => {
            fields.push(("grant_type", Field::Plain("refresh_token")));
            fields.push(("refresh_token", Field::Secret(REFRESH_TOKEN)));
        }
    }
    let mut headers = vec![("accept".to_string(), "application/json".to_string())];
    match token_auth {
        TokenAuth::ClientSecretPost => {
            if let Some(id) = client_id {
                fields.push(("client_id", Field::Plain(id)));
            }
            if has_secret {
                fields.push(("client_secret", Field::Secret(CLIENT_SECRET)));
            }
        }
        TokenAuth::ClientSecretBasic => {
            // RFC 6749 2.3.1: both parts form-encoded, then base64. The
            // broker substitutes references verbatim, so for this request
            // the reference stands for the encoded pair; the raw secret is
            // never in the request.
            if let (Some(id), Some(secret)) = (client_id, secrets.get(CLIENT_SECRET)) {
                let pair = format!("{}:{}", form_encode(id), form_encode(secret));
                request_secrets.insert(
                    CLIENT_SECRET.to_string(),
                    base64::engine::general_purpose::STANDARD.encode(pair),
                );
                headers.push((
                    "authorization".to_string(),
                    format!(
                        "Basic {}",
                        ward_runtime::caps::secrets::reference(CLIENT_SECRET)
                    ),
                ));
            } else if let Some(id) = client_id {
                // A public client: no secret to authenticate with.
                fields.push(("client_id", Field::Plain(id)));
            }
        }
    }
    if let TokenGrant::Refresh { scopes } = &grant
        && !scopes.is_empty()
    {
        fields.push(("scope", Field::Owned(scopes.join(" "))));
    }
    // The broker substitutes references verbatim, so for this request each
    // secret in the body stands for its value encoded as the body needs
    // (form-encoded, or the inside of a JSON string): a secret holding `&`,
    // `"`, `\` or a newline stays one field and cannot add another.
    for (_, field) in &fields {
        if let Field::Secret(name) = field
            && let Some(value) = secrets.get(*name)
        {
            request_secrets.insert((*name).to_string(), encode_value(*token_body, value));
        }
    }
    let (content_type, body) = encode(*token_body, &fields);
    headers.push(("content-type".to_string(), content_type.to_string()));
    let bound = match plugin.bind(instance_id, config, SecretSet::new(request_secrets), None) {
        Ok(bound) => bound,
        Err(e) => return (Err(TokenFailure::Unavailable(e.to_string())), Vec::new()),
    };
    let report = bound
        .host_request(HostRequest {
            method: "POST".into(),
            url: token_url.clone(),
            headers,
            body: body.into_bytes(),
        })
        .await;
    let result = match report.result {
        Err(e) => Err(TokenFailure::Unavailable(format!(
            "the token endpoint {token_url} could not be reached: {e}"
        ))),
        Ok(response) => parse(&token_url, &response),
    };
    (result, report.egress)
}

fn parse(
    token_url: &str,
    response: &ward_runtime::HostResponse,
) -> Result<TokenResponse, TokenFailure> {
    if !(200..300).contains(&response.status) {
        let err: TokenError = serde_json::from_slice(&response.body).unwrap_or_default();
        let detail = if err.error.is_empty() {
            format!("status {}", response.status)
        } else {
            format!("{}: {}", err.error, err.error_description)
        };
        return Err(match response.status {
            400 | 401 | 403 => TokenFailure::Rejected {
                error: err.error,
                detail,
            },
            429 => TokenFailure::Throttled {
                retry_after_ms: response
                    .headers
                    .iter()
                    .find(|(k, _)| k == "retry-after")
                    .and_then(|(_, v)| v.trim().parse::<u64>().ok())
                    .map_or(0, |s| s.saturating_mul(1000)),
                detail,
            },
            status => TokenFailure::Unavailable(format!(
                "the token endpoint {token_url} answered {status} ({detail})"
            )),
        });
    }
    // The serde message could quote the token, so it is not kept.
    serde_json::from_slice(&response.body).map_err(|_| {
        TokenFailure::Unavailable(format!(
            "the token endpoint {token_url} answered {} without a valid token response (JSON with access_token)",
            response.status
        ))
    })
}

/// One token-request field.
enum Field<'a> {
    Plain(&'a str),
    Owned(String),
    /// A `{{secret:NAME}}` reference, substituted by the broker.
    Secret(&'a str),
}

fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// A secret value as it must appear inside a body of `format`: form-encoded,
/// or JSON-escaped (the text between the quotes of a JSON string).
fn encode_value(format: TokenBody, value: &str) -> String {
    match format {
        TokenBody::Form => form_encode(value),
        TokenBody::Json => {
            let quoted = serde_json::Value::String(value.to_string()).to_string();
            quoted
                .strip_prefix('"')
                .and_then(|q| q.strip_suffix('"'))
                .unwrap_or_default()
                .to_string()
        }
    }
}

/// The body and its content type. References are written as is (not
/// encoded), so the broker finds and substitutes them.
fn encode(format: TokenBody, fields: &[(&str, Field<'_>)]) -> (&'static str, String) {
    match format {
        TokenBody::Form => {
            let body = fields
                .iter()
                .map(|(name, value)| {
                    let value = match value {
                        Field::Plain(v) => form_encode(v),
                        Field::Owned(v) => form_encode(v),
                        Field::Secret(n) => ward_runtime::caps::secrets::reference(n),
                    };
                    format!("{}={value}", form_encode(name))
                })
                .collect::<Vec<_>>()
                .join("&");
            ("application/x-www-form-urlencoded", body)
        }
        TokenBody::Json => {
            let map: serde_json::Map<String, serde_json::Value> = fields
                .iter()
                .map(|(name, value)| {
                    let value = match value {
                        Field::Plain(v) => (*v).to_string(),
                        Field::Owned(v) => v.clone(),
                        Field::Secret(n) => ward_runtime::caps::secrets::reference(n),
                    };
                    ((*name).to_string(), serde_json::Value::String(value))
                })
                .collect();
            (
                "application/json",
                serde_json::Value::Object(map).to_string(),
            )
        }
    }
}

/// The credentials to store after a host-side code exchange: the tokens,
/// the host's own secrets (the client secret, for refresh), the expiry and
/// the granted scopes (the manifest's when the provider does not say).
pub(crate) fn code_credentials(
    token: TokenResponse,
    host_secrets: &BTreeMap<String, String>,
    requested_scopes: &[String],
) -> Credentials {
    let mut creds = Credentials {
        secrets: host_secrets.clone(),
        expires_at_ms: None,
        scopes: requested_scopes.to_vec(),
        principal: None,
    };
    token.apply(&mut creds);
    creds
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn bodies_carry_references_unencoded() {
        let fields = [
            ("grant_type", Field::Plain("authorization_code")),
            ("redirect_uri", Field::Plain("https://w/cb?a=1")),
            ("client_secret", Field::Secret(CLIENT_SECRET)),
        ];
        let (ct, form) = encode(TokenBody::Form, &fields);
        assert_eq!(ct, "application/x-www-form-urlencoded");
        assert_eq!(
            form,
            "grant_type=authorization_code&redirect_uri=https%3A%2F%2Fw%2Fcb%3Fa%3D1&client_secret={{secret:client_secret}}"
        );
        let (ct, json) = encode(TokenBody::Json, &fields);
        assert_eq!(ct, "application/json");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["client_secret"], "{{secret:client_secret}}");
        assert_eq!(v["redirect_uri"], "https://w/cb?a=1");
    }

    #[test]
    fn secrets_are_encoded_for_the_body_they_go_into() {
        let hostile = "a\"b\\c\nd&e=f";
        let json = format!(
            "{{\"client_secret\":\"{}\"}}",
            encode_value(TokenBody::Json, hostile)
        );
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["client_secret"], hostile);
        assert_eq!(v.as_object().unwrap().len(), 1);
        let form = format!("client_secret={}", encode_value(TokenBody::Form, hostile));
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(form.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(
            pairs,
            vec![("client_secret".to_string(), hostile.to_string())]
        );
    }
}
