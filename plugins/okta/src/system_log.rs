//! System Log pages: the JSON array Okta returns from `/api/v1/logs`,
//! mapped to Ward events. Public (not part of the component's contract) so
//! the benchmark suite runs the very same code natively and in wasm.

use serde::Deserialize;
use ward_sdk::time::parse_rfc3339;
use ward_sdk::{Actor, ActorKind, Error, Event, Outcome, Result, Target};

/// Parses one System Log page (a JSON array of events) into events, each
/// keeping its original JSON as `raw`.
///
/// One pass: each event is parsed straight from the page, and its raw text
/// is the span the parser consumed, so the page is read once rather than
/// once to split it and again per event. The page's UTF-8 is checked once,
/// up front: the parser then reads strings without checking them again,
/// and each event's raw text is a slice of the page.
pub fn page(body: &[u8]) -> Result<Vec<Event>> {
    let not_array = |detail: &str| {
        Error::internal(format!(
            "Okta System Log page is not a JSON array of events: {detail}"
        ))
    };
    let body = std::str::from_utf8(body)
        .map_err(|e| Error::internal(format!("Okta System Log page is not UTF-8: {e}")))?;
    let mut rest = skip_ws(body)
        .strip_prefix('[')
        .ok_or_else(|| not_array("it does not start with `[`"))?;
    let mut events = Vec::new();
    rest = skip_ws(rest);
    if let Some(after) = rest.strip_prefix(']') {
        return match skip_ws(after) {
            "" => Ok(events),
            _ => Err(not_array("text follows the array")),
        };
    }
    loop {
        let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<LogEvent>();
        let event = match stream.next() {
            Some(Ok(event)) => event,
            Some(Err(e)) => {
                return Err(Error::internal(format!(
                    "Okta System Log event {} has an unexpected shape: {e}",
                    events.len()
                )));
            }
            None => return Err(not_array("it ends inside the array")),
        };
        // A JSON value ends on an ASCII byte, so this split is on a
        // character boundary; checked all the same.
        let (raw, after) = rest
            .split_at_checked(stream.byte_offset())
            .ok_or_else(|| not_array("an event ends inside a character"))?;
        events.push(map_event(event, raw)?);
        let after = skip_ws(after);
        if let Some(next) = after.strip_prefix(',') {
            rest = skip_ws(next);
        } else if let Some(end) = after.strip_prefix(']') {
            return match skip_ws(end) {
                "" => Ok(events),
                _ => Err(not_array("text follows the array")),
            };
        } else {
            return Err(not_array("an event is not followed by `,` or `]`"));
        }
    }
}

/// `text` without leading JSON whitespace.
fn skip_ws(text: &str) -> &str {
    text.trim_start_matches([' ', '\n', '\r', '\t'])
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

fn map_event(e: LogEvent, raw: &str) -> Result<Event> {
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
        raw: raw.to_string(),
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
        let e = page(format!("[{EVENT}]").as_bytes()).unwrap().remove(0);
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
        let spaced = page(format!(" [ {EVENT} ,\n{EVENT}\t] ").as_bytes()).unwrap();
        assert_eq!(spaced.len(), 2);
        assert_eq!(
            spaced[1].raw, EVENT,
            "raw is the event's own text, no whitespace"
        );
        for bad in [
            format!("[{EVENT}"),
            format!("[{EVENT},]"),
            format!("[{EVENT}]x"),
            format!("[{EVENT} {EVENT}]"),
            "[1]".to_string(),
            "[".to_string(),
        ] {
            assert!(page(bad.as_bytes()).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn refuses_a_page_that_is_not_utf8_and_keeps_non_ascii_text() {
        let mut bytes = format!("[{EVENT}]").into_bytes();
        let at = bytes.len() - 10;
        bytes[at] = 0xff;
        let Err(Error::Internal(refused)) = page(&bytes) else {
            unreachable!("a page that is not UTF-8 was not refused as internal");
        };
        assert!(refused.contains("not UTF-8"), "{refused}");
        let accented = EVENT.replace("John Doe", "Jöhn Dœ ✓");
        let events = page(format!("[{accented}]").as_bytes()).unwrap();
        assert_eq!(events[0].raw, accented);
        assert_eq!(events[0].actor.name.as_deref(), Some("Jöhn Dœ ✓"));
    }
}
