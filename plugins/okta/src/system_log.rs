//! System Log pages: the JSON array Okta returns from `/api/v1/logs`,
//! mapped to Ward events. Public (not part of the component's contract) so
//! the benchmark suite runs the very same code natively and in wasm.

use serde::Deserialize;
use serde_json::value::RawValue;
use ward_sdk::time::parse_rfc3339;
use ward_sdk::{Actor, ActorKind, Error, Event, Outcome, Result, Target};

/// Parses one System Log page (a JSON array of events) into events, each
/// keeping its original JSON as `raw`.
pub fn page(body: &[u8]) -> Result<Vec<Event>> {
    let raw: Vec<&RawValue> = serde_json::from_slice(body).map_err(|e| {
        Error::internal(format!(
            "Okta System Log page is not a JSON array of events: {e}"
        ))
    })?;
    raw.into_iter().map(map_event).collect()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LogActor {
    id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(rename = "alternateId")]
    alternate_id: Option<String>,
    #[serde(rename = "displayName")]
    display_name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct UserAgent {
    #[serde(rename = "rawUserAgent")]
    raw: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Client {
    #[serde(rename = "userAgent")]
    user_agent: Option<UserAgent>,
    #[serde(rename = "ipAddress")]
    ip_address: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LogOutcome {
    result: Option<String>,
}

#[derive(Deserialize)]
struct LogEvent {
    uuid: String,
    published: String,
    #[serde(rename = "eventType")]
    event_type: String,
    #[serde(default)]
    actor: Option<LogActor>,
    #[serde(default)]
    client: Option<Client>,
    #[serde(default)]
    outcome: Option<LogOutcome>,
    #[serde(default)]
    target: Option<Vec<LogActor>>,
}

fn actor_kind(kind: Option<&str>) -> ActorKind {
    match kind {
        Some("User") => ActorKind::User,
        Some("SystemPrincipal") => ActorKind::System,
        Some("PublicClientApp" | "AppInstance" | "Client" | "Application") => ActorKind::Service,
        _ => ActorKind::Unknown,
    }
}

fn email_like(value: Option<&String>) -> Option<String> {
    value.filter(|v| v.contains('@')).cloned()
}

fn map_event(raw: &RawValue) -> Result<Event> {
    let e: LogEvent = serde_json::from_str(raw.get()).map_err(|err| {
        Error::internal(format!(
            "Okta System Log event has an unexpected shape: {err}"
        ))
    })?;
    let actor = e.actor.unwrap_or_default();
    let client = e.client.unwrap_or_default();
    let outcome = match e.outcome.and_then(|o| o.result).as_deref() {
        Some("SUCCESS" | "ALLOW") => Outcome::Success,
        Some("FAILURE" | "DENY" | "REJECTED") => Outcome::Failure,
        _ => Outcome::Unknown,
    };
    Ok(Event {
        time: parse_rfc3339(&e.published)?,
        action: e.event_type,
        actor: Actor {
            kind: actor_kind(actor.kind.as_deref()),
            email: email_like(actor.alternate_id.as_ref()),
            id: actor.id,
            name: actor.display_name,
        },
        targets: e
            .target
            .unwrap_or_default()
            .into_iter()
            .map(|t| Target {
                id: t.id,
                kind: t.kind,
                name: t.display_name.or(t.alternate_id),
            })
            .collect(),
        ip: client.ip_address,
        user_agent: client.user_agent.and_then(|u| u.raw),
        outcome,
        raw: raw.get().to_string(),
        id: e.uuid,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // Shape taken from Okta's published System Log example.
    const EVENT: &str = r#"{"actor":{"id":"00uttidj01jqL21aM1d6","type":"User","alternateId":"john.doe@example.com","displayName":"John Doe","detailEntry":null},"client":{"userAgent":{"rawUserAgent":"Mozilla/5.0","os":"Mac OS X","browser":"CHROME"},"zone":null,"device":"Computer","id":null,"ipAddress":"10.0.0.1","geographicalContext":null},"authenticationContext":{},"displayMessage":"User login to Okta","eventType":"user.session.start","outcome":{"result":"SUCCESS","reason":null},"published":"2024-08-13T15:58:20.353Z","securityContext":{},"severity":"INFO","debugContext":{"debugData":{}},"legacyEventType":"core.user_auth.login_success","transaction":{"type":"WEB","id":"ZHdM-1","detail":{}},"uuid":"dc9fd3c0-598c-11ef-8478-2b7584bf8d5a","version":"0","request":{"ipChain":[]},"target":[{"id":"0oa1","type":"AppInstance","alternateId":"Okta Admin Console","displayName":"Okta Admin Console","detailEntry":null}]}"#;

    #[test]
    fn maps_a_system_log_event() {
        let raw: Box<RawValue> = serde_json::from_str(EVENT).unwrap();
        let e = map_event(&raw).unwrap();
        assert_eq!(e.id, "dc9fd3c0-598c-11ef-8478-2b7584bf8d5a");
        assert_eq!(e.action, "user.session.start");
        assert_eq!(e.actor.email.as_deref(), Some("john.doe@example.com"));
        assert!(matches!(e.actor.kind, ActorKind::User));
        assert!(matches!(e.outcome, Outcome::Success));
        assert_eq!(e.ip.as_deref(), Some("10.0.0.1"));
        assert_eq!(e.targets[0].name.as_deref(), Some("Okta Admin Console"));
        assert_eq!(e.raw, EVENT);
    }

    #[test]
    fn parses_a_page_and_refuses_what_is_not_one() {
        let events = page(format!("[{EVENT},{EVENT}]").as_bytes()).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].raw, EVENT);
        assert!(page(b"[]").unwrap().is_empty());
        assert!(page(b"{\"errorCode\":\"E0000011\"}").is_err());
    }
}
