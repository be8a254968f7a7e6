//! The {{name}} connector (Rust, ward-sdk).
//!
//! TODO: replace the example API (`https://{tenant}.api.example.com/v1/`)
//! with your provider's, in ward.toml's `[[http]]` grant too, and record
//! fixtures from a real tenant with `ward plugin record`.

use ward_sdk::http::{Request, Response};
use ward_sdk::{
    Actor, ActorKind, AuditPage, Check, Config, Connector, Error, Event, Outcome, Result,
    TestReport, Timestamp, User, UserPage,
};

/// The connector; stateless: everything it needs next time is in the cursor.
pub struct Impl;

fn base(config: &Config) -> Result<String> {
    Ok(format!("https://{}.api.example.com/v1", config.require("tenant")?))
}

/// GET with the token by reference: Ward stores the API token the operator
/// gives into the manifest's `api_token` secret and substitutes it for
/// granted URLs only; this code never sees it. A typed error for any
/// non-2xx status.
fn get(url: &str, what: &str) -> Result<serde_json::Value> {
    let response = Request::get(url)
        .header("authorization", format!("Bearer {}", ward_sdk::secret_ref("api_token")))
        .accept_json()
        .send()?;
    if !(200..300).contains(&response.status) {
        return Err(error_for(&response, what));
    }
    response.json()
}

/// The SDK maps 401/403/429/5xx to the contract's errors; TODO: tell the
/// operator your provider's next step in the 401 and 403 arms.
fn error_for(response: &Response, what: &str) -> Error {
    let detail = format!("the provider answered {}", response.status);
    Error::from_status("{{name}}", response, what, &detail)
        .on_401(format!("{what}: the API token was rejected; reconnect the instance with a new one"))
        .on_403(format!("{what}: the token lacks a role or scope"))
        .into()
}

fn text(value: &serde_json::Value, key: &str) -> Option<String> {
    value.get(key).and_then(|v| v.as_str()).map(str::to_string)
}

impl Connector for Impl {
    fn test(config: &Config) -> Result<TestReport> {
        let me = get(&format!("{}/me", base(config)?), "reading the token's user")?;
        // TODO: add a check per prerequisite (admin role, plan, scope).
        Ok(TestReport {
            checks: vec![Check::pass(ward_sdk::check::CREDENTIALS_VALID, "the API token is accepted")],
            account_name: text(&me, "tenant"),
            principal: text(&me, "email"),
        })
    }

    fn fetch_audit(config: &Config, since: Timestamp, cursor: Option<String>) -> Result<AuditPage> {
        // The cursor is the provider's `next` URL; the first call starts at `since`.
        let url = match cursor {
            Some(cursor) => cursor,
            None => ward_sdk::http::with_query(
                &format!("{}/audit", base(config)?),
                &[("since", &ward_sdk::time::format_rfc3339(since))],
            )?,
        };
        let body = get(&url, "reading the audit log")?;
        let mut events = Vec::new();
        for e in body.get("events").and_then(|v| v.as_array()).into_iter().flatten() {
            let actor = e.get("actor").cloned().unwrap_or_default();
            events.push(Event {
                id: text(e, "id").unwrap_or_default(),
                time: ward_sdk::time::parse_rfc3339(&text(e, "time").unwrap_or_default())?,
                action: text(e, "action").unwrap_or_default(),
                actor: Actor {
                    id: text(&actor, "id"),
                    kind: ActorKind::User,
                    name: None,
                    email: text(&actor, "email"),
                },
                targets: Vec::new(),
                ip: text(e, "ip"),
                user_agent: None,
                outcome: Outcome::Unknown,
                raw: e.to_string(),
            });
        }
        let next = text(&body, "next").unwrap_or_else(|| url.clone());
        Ok(AuditPage {
            more: !events.is_empty() && next != url,
            events,
            cursor: next,
        })
    }

    fn fetch_users(config: &Config, cursor: Option<String>) -> Result<UserPage> {
        let url = match cursor {
            Some(cursor) => cursor,
            None => format!("{}/users", base(config)?),
        };
        let body = get(&url, "listing users")?;
        let users = body
            .get("users")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
            .map(|u| User {
                id: text(u, "id").unwrap_or_default(),
                email: text(u, "email"),
                login: text(u, "email"),
                name: text(u, "name"),
                status: None,
                is_admin: u.get("admin").and_then(|v| v.as_bool()).unwrap_or(false),
                created: None,
                last_login: None,
                raw: u.to_string(),
            })
            .collect();
        let next = text(&body, "next");
        Ok(UserPage {
            more: next.is_some(),
            users,
            cursor: next,
        })
    }
}

ward_sdk::export_connector!(Impl);
