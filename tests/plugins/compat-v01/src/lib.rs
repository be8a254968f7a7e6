//! A contract-0.1 connector without the SDK: `wit-bindgen` against
//! `wit/v0.1`, api-token `exchange`, `test` and one `fetch-audit` page
//! against Okta's System Log.

wit_bindgen::generate!({
    path: "../../../wit/v0.1",
    world: "ward:connector/plugin",
    generate_all,
});

use exports::ward::connector::connector::Guest;
use ward::connector::types::{
    Actor, ActorKind, AuditPage, Check, ConfigEntry, Credentials, Error, Event, Grant, Outcome,
    Secret, TestReport, UserPage,
};

include!("../../common/http_get.rs");

/// The connector (public so a native build counts it as used).
pub struct Compat;

const AUTH: &str = "SSWS {{secret:api_token}}";

fn value<'a>(config: &'a [ConfigEntry], name: &str) -> Option<&'a str> {
    config
        .iter()
        .find(|e| e.name == name)
        .map(|e| e.value.as_str())
}

fn org(config: &[ConfigEntry]) -> Result<String, Error> {
    value(config, "domain")
        .map(|d| format!("{d}.okta.com"))
        .ok_or_else(|| Error::InvalidConfig("configuration field `domain` is missing".into()))
}

fn ms(text: &str) -> Option<i64> {
    let t =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

fn iso(ms: i64) -> Result<String, Error> {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .ok_or_else(|| Error::Internal(format!("{ms} is not a time")))
}

fn status_error(status: u16, what: &str) -> Error {
    match status {
        401 => Error::Unauthorized(format!("{what}: the API token was rejected; reconnect")),
        403 => Error::Forbidden(format!("{what}: the token lacks a read-only admin role")),
        _ => Error::Unavailable(format!("{what}: Okta answered {status}")),
    }
}

fn text(v: &serde_json::Value, path: &[&str]) -> Option<String> {
    let mut v = v;
    for key in path {
        v = v.get(key)?;
    }
    v.as_str().map(str::to_string)
}

fn event(e: &serde_json::Value) -> Option<Event> {
    Some(Event {
        id: text(e, &["uuid"])?,
        time: ms(&text(e, &["published"])?)?,
        action: text(e, &["eventType"]).unwrap_or_default(),
        actor: Actor {
            id: text(e, &["actor", "id"]),
            kind: ActorKind::User,
            name: text(e, &["actor", "displayName"]),
            email: text(e, &["actor", "alternateId"]),
        },
        targets: Vec::new(),
        ip: text(e, &["client", "ipAddress"]),
        user_agent: text(e, &["client", "userAgent", "rawUserAgent"]),
        outcome: match text(e, &["outcome", "result"]).as_deref() {
            Some("SUCCESS") => Outcome::Success,
            Some("FAILURE") => Outcome::Failure,
            _ => Outcome::Unknown,
        },
        raw: e.to_string(),
    })
}

impl Guest for Compat {
    fn auth_url(
        _config: Vec<ConfigEntry>,
        _redirect: String,
        _state: String,
    ) -> Result<String, Error> {
        Err(Error::InvalidConfig(
            "this connector takes an API token".into(),
        ))
    }

    fn exchange(_config: Vec<ConfigEntry>, grant: Grant) -> Result<Credentials, Error> {
        match grant {
            Grant::ApiToken(token) if !token.trim().is_empty() => Ok(Credentials {
                secrets: vec![Secret {
                    name: "api_token".into(),
                    value: token.trim().to_string(),
                }],
                expires_at: None,
                scopes: Vec::new(),
                principal: None,
            }),
            _ => Err(Error::InvalidConfig(
                "paste a non-empty Okta API token".into(),
            )),
        }
    }

    fn test(config: Vec<ConfigEntry>) -> Result<TestReport, Error> {
        let me = http_get(AUTH, &org(&config)?, "/api/v1/users/me").map_err(Error::Unavailable)?;
        if me.status != 200 {
            return Err(status_error(me.status, "reading the token's user"));
        }
        let me: serde_json::Value = serde_json::from_str(&me.body)
            .map_err(|e| Error::Internal(format!("users/me: {e}")))?;
        let auth = value(&config, "ward.auth").unwrap_or("none").to_string();
        Ok(TestReport {
            checks: vec![
                Check {
                    name: "credentials-valid".into(),
                    ok: true,
                    message: "API token accepted".into(),
                },
                Check {
                    name: "ward-auth-entry".into(),
                    ok: auth == "api-token",
                    message: format!("ward.auth is {auth}"),
                },
            ],
            account_name: None,
            principal: text(&me, &["profile", "login"]),
        })
    }

    fn fetch_audit(
        config: Vec<ConfigEntry>,
        since: i64,
        cursor: Option<String>,
    ) -> Result<AuditPage, Error> {
        // The System Log keeps 90 days; older `since` values are refused.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let from = match cursor {
            Some(c) if !c.is_empty() => c,
            _ => iso(since.max(now - 89 * 86_400_000))?,
        };
        let got = http_get(
            AUTH,
            &org(&config)?,
            &format!("/api/v1/logs?since={from}&limit=1000"),
        )
        .map_err(Error::Unavailable)?;
        if got.status != 200 {
            return Err(status_error(got.status, "reading the System Log"));
        }
        let list: Vec<serde_json::Value> = serde_json::from_str(&got.body)
            .map_err(|e| Error::Internal(format!("System Log page: {e}")))?;
        let events: Vec<Event> = list.iter().filter_map(event).collect();
        let last = list.last().and_then(|e| text(e, &["published"]));
        Ok(AuditPage {
            events,
            cursor: last.unwrap_or(from),
            more: false,
        })
    }

    fn fetch_users(_config: Vec<ConfigEntry>, _cursor: Option<String>) -> Result<UserPage, Error> {
        Ok(UserPage {
            users: Vec::new(),
            cursor: None,
            more: false,
        })
    }
}

/// The component's exports; the generated glue is `unsafe` by nature.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod exported {
    use super::Compat;
    crate::export!(Compat with_types_in crate);
}

// The manifest rides in the component, as the SDK's macro does it.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
#[unsafe(link_section = "ward-manifest")]
#[used]
static WARD_MANIFEST: [u8; include_bytes!("../ward.toml").len()] = *include_bytes!("../ward.toml");
