//! Talking to Zendesk: URLs, the `Authorization` header for the instance's
//! auth kind, and every non-2xx answer turned into the contract's error
//! with the operator's next step.

use serde_json::Value;
use ward_sdk::auth::AuthHeader;
use ward_sdk::http::{Request, Response};
use ward_sdk::oauth::OAuthClient;
use ward_sdk::{AuthKind, Config, Error, Result, Url};

/// OAuth: the scopes (see the manifest for why not `read`) and where the
/// client comes from.
pub(crate) const OAUTH: OAuthClient = OAuthClient {
    scopes: &["auditlogs:read", "users:read"],
    missing_client_id: "OAuth needs the unique identifier of a Zendesk OAuth client: create one in Admin Center > Apps and integrations > APIs > OAuth Clients, set config field `client_id` (apiKey in the API) to its identifier and give its secret as apiSecret",
};

/// OAuth access tokens go as `Bearer`; an admin's API token as the
/// `basic` auth the host composes from `{email}/token` and the token,
/// stored as `basic_auth`.
const AUTH: AuthHeader = AuthHeader::new().basic("basic_auth");

pub(crate) fn subdomain(config: &Config) -> Result<&str> {
    config.require("subdomain")
}

/// `https://{subdomain}.zendesk.com`.
pub(crate) fn origin(config: &Config) -> Result<String> {
    Ok(format!("https://{}.zendesk.com", subdomain(config)?))
}

pub(crate) fn oauth_mode(config: &Config) -> bool {
    config.auth_kind() == Some(AuthKind::Oauth2)
}

/// Sends a GET with the instance's credentials by reference.
pub(crate) fn get(config: &Config, url: &str) -> Result<Response> {
    Ok(Request::get(url)
        .accept_json()
        .header("authorization", AUTH.value(config)?)
        .send()?)
}

/// Whether a link Zendesk handed out (or a stored cursor) points at
/// `{origin}/api/v2/{resource}` (optionally `.json`), so a corrupted or
/// foreign cursor can never steer requests elsewhere.
pub(crate) fn is_own_link(config: &Config, link: &str, resource: &str) -> Result<bool> {
    let Ok(url) = Url::parse(link) else {
        return Ok(false);
    };
    let host = format!("{}.zendesk.com", subdomain(config)?);
    let path = format!("/api/v2/{resource}");
    Ok(url.scheme() == "https"
        && url.host_str() == Some(host.as_str())
        && url.port().is_none()
        && url.username().is_empty()
        && url.fragment().is_none()
        && (url.path() == path || url.path() == format!("{path}.json")))
}

/// Zendesk's error bodies come in several shapes:
/// `{"error":"...","description":"..."}`, OAuth's
/// `{"error":"...","error_description":"..."}`,
/// `{"error":{"title":"...","message":"..."}}`, or plain text (429s).
pub(crate) fn detail(response: &Response) -> String {
    let Ok(body) = serde_json::from_slice::<Value>(&response.body) else {
        return response.excerpt();
    };
    let text = |v: &Value| v.as_str().map(str::to_string);
    let parts: Vec<String> = match body.get("error") {
        Some(Value::Object(e)) => [e.get("title"), e.get("message")]
            .into_iter()
            .flatten()
            .filter_map(text)
            .collect(),
        Some(e) => [
            Some(e),
            body.get("description"),
            body.get("error_description"),
        ]
        .into_iter()
        .flatten()
        .filter_map(text)
        .collect(),
        None => Vec::new(),
    };
    if parts.is_empty() {
        response.excerpt()
    } else {
        parts.join(": ")
    }
}

/// A 403 caused by an OAuth token without the scope an endpoint needs
/// ("Missing the following required scopes: ..." or the older "You are
/// missing the following required scopes: ...").
pub(crate) fn missing_scope(response: &Response) -> bool {
    response.status == 403 && {
        let text = response.text().to_ascii_lowercase();
        text.contains("required scope")
    }
}

/// Rate-limit state from whichever header spelling Zendesk used:
/// `ratelimit-*` (documented on list endpoints), `rate-limit*` and
/// `x-rate-limit*` (recorded), or `zendesk-ratelimit-*` (`total=..;
/// remaining=..; resets=..`, endpoint-specific).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RateHeaders {
    /// Requests per window.
    pub limit: Option<u64>,
    /// Requests left in the window.
    pub remaining: Option<u64>,
    /// Seconds until the window resets.
    pub reset_secs: Option<u64>,
}

fn number(response: &Response, names: &[&str]) -> Option<u64> {
    names
        .iter()
        .find_map(|n| response.header(n))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(|v| v.ceil() as u64)
}

/// One `key=value` from a `zendesk-ratelimit-*` header value.
fn structured(value: &str, key: &str) -> Option<u64> {
    value.split([';', ',']).find_map(|part| {
        let (k, v) = part.split_once('=')?;
        (k.trim().eq_ignore_ascii_case(key))
            .then(|| v.trim().parse::<u64>().ok())
            .flatten()
    })
}

impl RateHeaders {
    pub(crate) fn parse(response: &Response) -> RateHeaders {
        let mut rate = RateHeaders {
            limit: number(response, &["ratelimit-limit", "rate-limit", "x-rate-limit"]),
            remaining: number(
                response,
                &[
                    "ratelimit-remaining",
                    "rate-limit-remaining",
                    "x-rate-limit-remaining",
                ],
            ),
            reset_secs: number(response, &["ratelimit-reset", "rate-limit-reset"]),
        };
        for (name, value) in &response.headers {
            if !name.to_ascii_lowercase().starts_with("zendesk-ratelimit-") {
                continue;
            }
            let remaining = structured(value, "remaining");
            // The endpoint-specific limit is the one that bit when it is
            // exhausted; otherwise keep the account-wide figures.
            if remaining == Some(0) || rate.remaining.is_none() {
                rate.limit = structured(value, "total").or(rate.limit);
                rate.remaining = remaining.or(rate.remaining);
                rate.reset_secs = structured(value, "resets").or(rate.reset_secs);
            }
        }
        rate
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(l) = self.limit {
            parts.push(format!("limit {l}/min"));
        }
        if let Some(r) = self.remaining {
            parts.push(format!("{r} left"));
        }
        if let Some(s) = self.reset_secs {
            parts.push(format!("resets in {s} s"));
        }
        parts.join(", ")
    }
}

/// How long to wait after a 429: `Retry-After` (what Zendesk sends), else
/// the reset header of either spelling, else a minute (Zendesk's window).
pub(crate) fn retry_after_ms(response: &Response) -> u64 {
    if let Some(ms) = response.retry_after_ms() {
        return ms.max(1000);
    }
    match RateHeaders::parse(response).reset_secs {
        Some(secs) => secs.clamp(1, 3600) * 1000,
        None => 60_000,
    }
}

/// What a 429 said, in one parenthesis: the advertised rate figures, the
/// wait, Zendesk's own text; only the parts present.
fn rate_limit_detail(response: &Response, wait_ms: u64, detail: &str) -> String {
    let rate = RateHeaders::parse(response).describe();
    let wait = format!("retry after {} s", wait_ms.div_ceil(1000));
    [rate.as_str(), wait.as_str(), detail]
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Maps a non-2xx Zendesk response to the contract's error.
pub(crate) fn error_for(config: &Config, response: &Response, what: &str) -> Error {
    let detail = detail(response);
    let subdomain = config.get("subdomain").unwrap_or("?");
    match response.status {
        404 => {
            return Error::invalid_config(format!(
                "Zendesk answered 404 while {what} ({detail}): check that `{subdomain}` is the account's subdomain (the part before .zendesk.com)"
            ));
        }
        300..=399 => {
            return Error::invalid_config(format!(
                "Zendesk redirected while {what} (to {}): the account may have moved or closed; check `{subdomain}`",
                response.header("location").unwrap_or("?")
            ));
        }
        _ => {}
    }
    let wait_ms = retry_after_ms(response);
    Error::from_status("Zendesk", response, what, &detail)
        .on_401(if oauth_mode(config) {
            format!(
                "Zendesk rejected the OAuth access token while {what} ({detail}): it was revoked (Admin Center > Apps and integrations > APIs > OAuth Clients, or the admin's profile) or has expired; reconnect through Zendesk's consent screen"
            )
        } else {
            format!(
                "Zendesk rejected the API token while {what} ({detail}): the token was deleted or deactivated, token access was turned off, or `email` is not the e-mail of an admin of {subdomain}.zendesk.com; create a token in Admin Center > Apps and integrations > APIs > Zendesk API and reconnect"
            )
        })
        .on_403(if missing_scope(response) {
            format!(
                "the OAuth token lacks a scope needed for {what} ({detail}): reconnect and grant {} on Zendesk's consent screen",
                OAUTH.scopes.join(" ")
            )
        } else {
            format!(
                "Zendesk refused {what} ({detail}): audit logs need an admin on the Enterprise or Enterprise Plus plan; reconnect as an admin, or upgrade the plan"
            )
        })
        .on_429(
            wait_ms,
            format!(
                "Zendesk rate limit reached while {what} ({}); the account's limit is shared by every API client, raise this instance's requestsPerMinute only if the plan allows more",
                rate_limit_detail(response, wait_ms, &detail)
            ),
        )
        .into()
}

/// Fails with [`error_for`] unless the response is 2xx.
pub(crate) fn ensure_ok(config: &Config, response: &Response, what: &str) -> Result<()> {
    if response.is_success() {
        Ok(())
    } else {
        Err(error_for(config, response, what))
    }
}

/// Parses a 2xx body, naming the endpoint on failure.
pub(crate) fn body<T: serde::de::DeserializeOwned>(response: &Response, what: &str) -> Result<T> {
    serde_json::from_slice(&response.body).map_err(|e| {
        Error::internal(format!(
            "Zendesk answered {what} with a body this connector cannot read ({e}): {}",
            response.excerpt()
        ))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn reads_every_error_body_shape() {
        let r = response(401, &[], r#"{"error":"Couldn't authenticate you"}"#);
        assert_eq!(detail(&r), "Couldn't authenticate you");
        let r = response(
            403,
            &[],
            r#"{"error":"Forbidden","description":"Missing the following required scopes: read"}"#,
        );
        assert_eq!(
            detail(&r),
            "Forbidden: Missing the following required scopes: read"
        );
        assert!(missing_scope(&r));
        let r = response(
            403,
            &[],
            r#"{"error":{"title":"Forbidden","message":"You do not have access to this page."}}"#,
        );
        assert_eq!(
            detail(&r),
            "Forbidden: You do not have access to this page."
        );
        assert!(!missing_scope(&r));
        let r = response(429, &[], "Rate limit exceeded\n please wait");
        assert_eq!(detail(&r), "Rate limit exceeded please wait");
    }

    #[test]
    fn parses_both_rate_limit_spellings() {
        let documented = response(
            200,
            &[
                ("x-rate-limit", "700"),
                ("x-rate-limit-remaining", "699"),
                ("ratelimit-limit", "700"),
                ("ratelimit-remaining", "698"),
                ("ratelimit-reset", "37"),
            ],
            "",
        );
        assert_eq!(
            RateHeaders::parse(&documented),
            RateHeaders {
                limit: Some(700),
                remaining: Some(698),
                reset_secs: Some(37)
            }
        );
        let recorded = response(
            200,
            &[
                ("rate-limit", "700"),
                ("rate-limit-remaining", "691"),
                ("rate-limit-reset", "37"),
                ("x-rate-limit", "700"),
                ("x-rate-limit-remaining", "691"),
            ],
            "",
        );
        assert_eq!(
            RateHeaders::parse(&recorded),
            RateHeaders {
                limit: Some(700),
                remaining: Some(691),
                reset_secs: Some(37)
            }
        );
        let endpoint = response(
            429,
            &[
                ("ratelimit-remaining", "500"),
                (
                    "zendesk-ratelimit-tickets-index",
                    "total=100; remaining=0; resets=12",
                ),
            ],
            "",
        );
        assert_eq!(retry_after_ms(&endpoint), 12_000);
        assert_eq!(
            retry_after_ms(&response(429, &[("retry-after", "93")], "")),
            93_000
        );
        assert_eq!(retry_after_ms(&response(429, &[], "")), 60_000);
    }

    #[test]
    fn maps_statuses_to_contract_errors() {
        let token = Config::from_pairs([("subdomain", "acme")]).with_auth(AuthKind::Basic);
        let oauth = Config::from_pairs([("subdomain", "acme")]).with_auth(AuthKind::Oauth2);
        let unauth = response(401, &[], r#"{"error":"Couldn't authenticate you"}"#);
        assert!(
            matches!(error_for(&token, &unauth, "x"), Error::Unauthorized(m) if m.contains("create a token"))
        );
        assert!(
            matches!(error_for(&oauth, &unauth, "x"), Error::Unauthorized(m) if m.contains("consent"))
        );
        let limited = response(
            429,
            &[("retry-after", "7"), ("rate-limit-remaining", "0")],
            "slow down",
        );
        assert!(matches!(
            error_for(&token, &limited, "x"),
            Error::RateLimited(r) if r.retry_after_ms == 7000 && r.message.contains("0 left")
        ));
        assert!(matches!(
            error_for(&token, &response(503, &[], "<h1>down</h1>"), "x"),
            Error::Unavailable(_)
        ));
        assert!(matches!(
            error_for(&token, &response(404, &[], "{}"), "x"),
            Error::InvalidConfig(m) if m.contains("acme")
        ));
    }

    #[test]
    fn a_429_with_only_retry_after_reads_cleanly() {
        let token = Config::from_pairs([("subdomain", "acme")]).with_auth(AuthKind::Basic);
        let limited = response(
            429,
            &[("retry-after", "3")],
            "Rate limit for ticket updates exceeded, please wait before updating this ticket again",
        );
        let Error::RateLimited(r) = error_for(&token, &limited, "reading the current user") else {
            unreachable!("a 429 is a rate limit")
        };
        assert_eq!(r.retry_after_ms, 3000);
        assert!(
            r.message.starts_with(
                "Zendesk rate limit reached while reading the current user (retry after 3 s; Rate limit for ticket updates exceeded"
            ),
            "{}",
            r.message
        );
        assert!(!r.message.contains("(;"), "{}", r.message);
        let bare = error_for(&token, &response(429, &[("retry-after", "3")], ""), "x");
        assert!(
            matches!(&bare, Error::RateLimited(r) if r.message.contains("(retry after 3 s)")),
            "{bare:?}"
        );
    }

    #[test]
    fn own_links_only() {
        let c = Config::from_pairs([("subdomain", "acme")]);
        for ok in [
            "https://acme.zendesk.com/api/v2/audit_logs?page%5Bafter%5D=x",
            "https://acme.zendesk.com/api/v2/audit_logs.json?page[after]=x",
        ] {
            assert!(is_own_link(&c, ok, "audit_logs").unwrap(), "{ok}");
        }
        for bad in [
            "https://evil.example/api/v2/audit_logs?x",
            "http://acme.zendesk.com/api/v2/audit_logs",
            "https://acme.zendesk.com:8443/api/v2/audit_logs",
            "https://other.zendesk.com/api/v2/audit_logs",
            "https://acme.zendesk.com/api/v2/users",
            "https://acme.zendesk.com/api/v2/audit_logs/../users",
            "not a url",
        ] {
            assert!(!is_own_link(&c, bad, "audit_logs").unwrap(), "{bad}");
        }
    }
}
