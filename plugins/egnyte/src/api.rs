//! Talking to Egnyte: URLs, the Bearer header, and every non-2xx answer
//! (API gateway codes, scope, plan and role refusals) turned into the
//! contract's error with the operator's next step.
use super::*;

pub(crate) fn base(config: &Config) -> Result<String> {
    Ok(format!("https://{}.egnyte.com", config.require("domain")?))
}

pub(crate) fn bearer() -> String {
    format!("Bearer {}", secret_ref(oauth::ACCESS_TOKEN))
}

pub(crate) fn get(url: &str) -> Result<Response> {
    Ok(Request::get(url)
        .accept_json()
        .header("authorization", bearer())
        .send()?)
}

pub(crate) fn post_json(url: &str, body: &Value) -> Result<Response> {
    Ok(Request::post(url)
        .accept_json()
        .header("authorization", bearer())
        .json(body)?
        .send()?)
}

/// What Egnyte's API gateway (Mashery) said in `X-Mashery-Error-Code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Gateway {
    /// `ERR_403_DEVELOPER_OVER_QPS`: over the per-second limit.
    OverQps,
    /// `ERR_403_DEVELOPER_OVER_RATE`: the daily quota is used up.
    OverRate,
    /// `ERR_403_DEVELOPER_INACTIVE`: unknown token or inactive API key.
    Inactive,
    /// Any other gateway code.
    Other(String),
}

pub(crate) fn gateway(response: &Response) -> Option<Gateway> {
    let code = response.header("x-mashery-error-code")?.trim();
    Some(match code {
        "ERR_403_DEVELOPER_OVER_QPS" => Gateway::OverQps,
        "ERR_403_DEVELOPER_OVER_RATE" => Gateway::OverRate,
        "ERR_403_DEVELOPER_INACTIVE" => Gateway::Inactive,
        other => Gateway::Other(other.to_string()),
    })
}

/// The human part of an Egnyte error body, whichever of its shapes it has:
/// `{"Errors":[{"description"}]}` (users API), `{"errorMessage"}`,
/// `{"message"}`, `{"msg"}`, OAuth's `{error, error_description}`, or the
/// gateway's HTML (`<h1>Developer Over Qps</h1>`).
pub(crate) fn detail(response: &Response) -> String {
    if let Ok(v) = serde_json::from_slice::<Value>(&response.body) {
        let errors = v
            .get("Errors")
            .or_else(|| v.get("errors"))
            .and_then(Value::as_array);
        if let Some(errors) = errors {
            let parts: Vec<&str> = errors
                .iter()
                .filter_map(|e| {
                    e.get("description")
                        .or_else(|| e.get("msg"))
                        .and_then(Value::as_str)
                })
                .collect();
            if !parts.is_empty() {
                return parts.join("; ");
            }
        }
        for key in [
            "errorMessage",
            "message",
            "msg",
            "error_description",
            "error",
        ] {
            if let Some(s) = v.get(key).and_then(Value::as_str) {
                return s.to_string();
            }
        }
    }
    let text = strip_tags(&response.excerpt());
    if text.is_empty() {
        format!("status {}", response.status)
    } else {
        text
    }
}

pub(crate) fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Why Egnyte refused with a plain (non-gateway) 403. Egnyte documents the
/// 403s (role, plan) but not their bodies, so the body's wording is a hint
/// and the caller's role decides when it is silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Denial {
    /// The token lacks an OAuth scope.
    Scope,
    /// The plan does not include the feature.
    Plan,
    /// The user's role does not allow it.
    Role,
    /// The body does not say.
    Unknown,
}

pub(crate) fn denial(detail: &str) -> Denial {
    let d = detail.to_ascii_lowercase();
    if d.contains("scope") {
        Denial::Scope
    } else if [
        "plan",
        "subscription",
        "not available",
        "not enabled",
        "upgrade",
    ]
    .iter()
    .any(|w| d.contains(w))
    {
        Denial::Plan
    } else if [
        "report",
        "admin",
        "permission",
        "not allowed",
        "not authorized",
        "power user",
    ]
    .iter()
    .any(|w| d.contains(w))
    {
        Denial::Role
    } else {
        Denial::Unknown
    }
}

/// Milliseconds until 00:00 UTC, when Egnyte's daily quota resets.
pub(crate) fn until_utc_midnight_ms() -> u64 {
    let left = DAY_MS - now().rem_euclid(DAY_MS);
    u64::try_from(left).unwrap_or(60_000)
}

/// Maps a non-2xx Egnyte response to the contract's error, with the next
/// step for the operator in the message.
pub(crate) fn error_for(response: &Response, what: &str) -> Error {
    let detail = detail(response);
    if let Some(g) = gateway(response) {
        return match g {
            // Per-second throttling clears within a second or so.
            Gateway::OverQps => Error::rate_limited(
                response.retry_after_ms().unwrap_or(1000),
                format!(
                    "Egnyte's API gateway throttled {what}: over the per-second limit for this token ({detail})"
                ),
            ),
            Gateway::OverRate => Error::rate_limited(
                response
                    .retry_after_ms()
                    .unwrap_or_else(until_utc_midnight_ms),
                format!(
                    "Egnyte's daily API quota for this token is used up while {what} ({detail}); reading resumes when it resets"
                ),
            ),
            Gateway::Inactive => Error::unauthorized(format!(
                "Egnyte's API gateway rejected the request while {what} (Developer Inactive: the access token is unknown or the application's API key is inactive); check the key at developers.egnyte.com, then reconnect"
            )),
            Gateway::Other(code) => Error::forbidden(format!(
                "Egnyte's API gateway refused {what} ({code}: {detail}); check the application's API key at developers.egnyte.com, then reconnect"
            )),
        };
    }
    let forbidden = match denial(&detail) {
        Denial::Scope => format!(
            "the access token lacks a scope needed for {what} ({detail}): allow Egnyte.audit and Egnyte.user for the application's key at developers.egnyte.com, then reconnect"
        ),
        Denial::Plan => format!(
            "this Egnyte domain's plan does not include audit reporting ({detail}): ask the account owner to add it, then Test now"
        ),
        Denial::Role | Denial::Unknown => format!(
            "Egnyte refused {what} ({detail}): the user who connected must be an administrator, or a power user allowed to run reports; reconnect as such a user"
        ),
    };
    // 429 (the audit stream's 10/min, 100/hour) keeps the SDK's arm:
    // `Retry-After`, else a minute.
    Error::from_status("Egnyte", response, what, &detail)
        .on_401(format!(
            "Egnyte rejected the access token while {what} ({detail}): it was revoked, or the user who connected changed their password; reconnect through Egnyte's consent screen"
        ))
        .on_403(forbidden)
        .into()
}
