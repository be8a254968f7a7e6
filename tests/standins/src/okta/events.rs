//! Deterministic System Log events.
//!
//! Each event is a pure function of `(seed, sequence number, published time)`
//! and the org directory, so the store only keeps a few fields per event and
//! renders (then caches) the JSON the first time the event is served.
//!
//! The field order and value shapes follow the management API `ListLogs`
//! example; where it disagrees with recorded traffic (Grove's fixture, real
//! exports) the recorded shape wins: `version` is the string `"0"`,
//! `client.zone` the string `"null"`, `postalCode` a string and
//! `transaction.detail` an empty object.

use serde::Serialize;

use super::directory::{App, CITIES, Directory, User, to_json};
use crate::synth::Rng;

/// Streams for [`Rng::for_item`].
mod stream {
    pub const IDENTITY: u64 = 101;
    pub const BODY: u64 = 102;
}

#[derive(Debug, Clone, Copy)]
enum ActorKind {
    /// A signed-in end user.
    User,
    /// The token owner acting as an administrator.
    Admin,
    /// The token owner, or Okta itself (automations, imports).
    AdminOrSystem,
    /// An OAuth client acting on its own behalf.
    Client,
    /// Okta itself.
    System,
}

#[derive(Debug, Clone, Copy)]
enum Targets {
    Null,
    SignIn,
    Sso,
    Mfa,
    Policy,
    ActorUser,
    SubjectUser,
    GroupMembership,
    AppMembership,
    AuthorizeCode,
    Token,
    Factor,
}

struct Outcome {
    result: &'static str,
    reason: Option<&'static str>,
    severity: &'static str,
    /// `legacyEventType` for this outcome.
    legacy: Option<&'static str>,
    weight: u32,
}

struct Kind {
    event_type: &'static str,
    weight: u32,
    display_message: &'static str,
    actor: ActorKind,
    targets: Targets,
    request_uri: &'static str,
    outcomes: &'static [Outcome],
}

const fn ok(legacy: Option<&'static str>) -> Outcome {
    Outcome {
        result: "SUCCESS",
        reason: None,
        severity: "INFO",
        legacy,
        weight: 100,
    }
}

/// The event types generated, with a mix roughly like a small workforce org:
/// mostly sign-ins and SSO, a trickle of admin and security activity.
const KINDS: &[Kind] = &[
    Kind {
        event_type: "user.session.start",
        weight: 28,
        display_message: "User login to Okta",
        actor: ActorKind::User,
        targets: Targets::SignIn,
        request_uri: "/idp/idx/identify",
        outcomes: &[
            Outcome {
                weight: 85,
                ..ok(Some("core.user_auth.login_success"))
            },
            Outcome {
                result: "FAILURE",
                reason: Some("INVALID_CREDENTIALS"),
                severity: "WARN",
                legacy: Some("core.user_auth.login_failed"),
                weight: 12,
            },
            Outcome {
                result: "FAILURE",
                reason: Some("LOCKED_OUT"),
                severity: "WARN",
                legacy: Some("core.user_auth.account_locked"),
                weight: 3,
            },
        ],
    },
    Kind {
        event_type: "user.authentication.sso",
        weight: 20,
        display_message: "User single sign on to app",
        actor: ActorKind::User,
        targets: Targets::Sso,
        request_uri: "/app/{app}/{appid}/sso/saml",
        outcomes: &[
            Outcome {
                weight: 97,
                ..ok(Some("app.auth.sso"))
            },
            Outcome {
                result: "FAILURE",
                reason: Some("User not assigned to app"),
                severity: "WARN",
                legacy: Some("app.auth.sso"),
                weight: 3,
            },
        ],
    },
    Kind {
        event_type: "user.authentication.auth_via_mfa",
        weight: 14,
        display_message: "Authentication of user via MFA",
        actor: ActorKind::User,
        targets: Targets::Mfa,
        request_uri: "/idp/idx/challenge/answer",
        outcomes: &[
            Outcome {
                weight: 92,
                ..ok(Some("core.user.factor.attempt_success"))
            },
            Outcome {
                result: "FAILURE",
                reason: Some("INVALID_CREDENTIALS"),
                severity: "WARN",
                legacy: Some("core.user.factor.attempt_fail"),
                weight: 8,
            },
        ],
    },
    Kind {
        event_type: "user.session.end",
        weight: 8,
        display_message: "User logout from Okta",
        actor: ActorKind::User,
        targets: Targets::Null,
        request_uri: "/login/signout",
        outcomes: &[ok(Some("core.user_auth.logout_success"))],
    },
    Kind {
        event_type: "policy.evaluate_sign_on",
        weight: 12,
        display_message: "Evaluation of sign-on policy",
        actor: ActorKind::User,
        targets: Targets::Policy,
        request_uri: "/idp/idx/introspect",
        outcomes: &[
            Outcome {
                result: "ALLOW",
                reason: Some("Sign-on policy evaluation resulted in ALLOW"),
                severity: "INFO",
                legacy: None,
                weight: 70,
            },
            Outcome {
                result: "CHALLENGE",
                reason: Some("Sign-on policy evaluation resulted in CHALLENGE"),
                severity: "INFO",
                legacy: None,
                weight: 25,
            },
            Outcome {
                result: "DENY",
                reason: Some("Sign-on policy evaluation resulted in DENY"),
                severity: "WARN",
                legacy: None,
                weight: 5,
            },
        ],
    },
    Kind {
        event_type: "user.account.update_password",
        weight: 2,
        display_message: "User update password for Okta",
        actor: ActorKind::User,
        targets: Targets::ActorUser,
        request_uri: "/idp/idx/challenge/answer",
        outcomes: &[
            Outcome {
                weight: 90,
                ..ok(Some("core.user.config.password_update.success"))
            },
            Outcome {
                result: "FAILURE",
                reason: Some("Password requirements were not met"),
                severity: "WARN",
                legacy: Some("core.user.config.password_update.failure"),
                weight: 10,
            },
        ],
    },
    Kind {
        event_type: "user.lifecycle.create",
        weight: 2,
        display_message: "Create Okta user",
        actor: ActorKind::AdminOrSystem,
        targets: Targets::SubjectUser,
        request_uri: "/api/v1/users",
        outcomes: &[ok(Some("core.user.config.user_creation.success"))],
    },
    Kind {
        event_type: "user.lifecycle.deactivate",
        weight: 1,
        display_message: "Deactivate Okta user",
        actor: ActorKind::AdminOrSystem,
        targets: Targets::SubjectUser,
        request_uri: "/api/v1/users/{user}/lifecycle/deactivate",
        outcomes: &[ok(Some("core.user.config.user_deactivated"))],
    },
    Kind {
        event_type: "group.user_membership.add",
        weight: 3,
        display_message: "Add user to group membership",
        actor: ActorKind::AdminOrSystem,
        targets: Targets::GroupMembership,
        request_uri: "/api/v1/groups/{group}/users/{user}",
        outcomes: &[ok(Some("core.user_group_member.user_add"))],
    },
    Kind {
        event_type: "application.user_membership.add",
        weight: 3,
        display_message: "Add user to application membership",
        actor: ActorKind::AdminOrSystem,
        targets: Targets::AppMembership,
        request_uri: "/api/v1/apps/{appid}/users",
        outcomes: &[ok(Some("app.generic.provision.assign_user_to_app"))],
    },
    Kind {
        event_type: "app.oauth2.as.authorize.code",
        weight: 4,
        display_message: "OAuth2 authorization code request",
        actor: ActorKind::Client,
        targets: Targets::AuthorizeCode,
        request_uri: "/oauth2/v1/authorize",
        outcomes: &[ok(Some("app.oauth2.as.authorize.code_success"))],
    },
    Kind {
        event_type: "system.api_token.create",
        weight: 1,
        display_message: "Create API token",
        actor: ActorKind::Admin,
        targets: Targets::Token,
        request_uri: "/api/internal/tokens",
        outcomes: &[ok(Some("api.token.create"))],
    },
    Kind {
        event_type: "user.mfa.factor.activate",
        weight: 1,
        display_message: "User set up Okta Verify authenticator",
        actor: ActorKind::User,
        targets: Targets::Factor,
        request_uri: "/idp/idx/challenge/answer",
        outcomes: &[ok(Some("core.user.factor.activate"))],
    },
    Kind {
        event_type: "security.threat.detected",
        weight: 1,
        display_message: "Request from suspicious actor",
        actor: ActorKind::System,
        targets: Targets::Null,
        request_uri: "/idp/idx/identify",
        outcomes: &[Outcome {
            result: "DENY",
            reason: Some("Password Spray"),
            severity: "WARN",
            legacy: None,
            weight: 100,
        }],
    },
];

/// The parts of an event decided up front: its type (for filtering without
/// rendering) and uuid (for exactness checks).
pub(crate) fn identity(seed: u64, seq: u64) -> (u8, String) {
    let mut rng = Rng::for_item(seed, stream::IDENTITY, seq);
    let kind = rng.weighted(KINDS.iter().map(|k| k.weight));
    (kind as u8, rng.uuid_v4())
}

/// The `eventType` of a kind index returned by [`identity`].
pub(crate) fn event_type(kind: u8) -> &'static str {
    KINDS.get(usize::from(kind)).map_or("", |k| k.event_type)
}

const USER_AGENTS: &[(&str, &str, &str, &str)] = &[
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/127.0.0.0 Safari/537.36",
        "Mac OS X",
        "CHROME",
        "Computer",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0",
        "Windows 10",
        "EDGE_CHROMIUM",
        "Computer",
    ),
    (
        "Mozilla/5.0 (X11; Fedora; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        "Linux",
        "FIREFOX",
        "Computer",
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
        "Mac OS X",
        "SAFARI",
        "Computer",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        "iOS",
        "MOBILE_SAFARI",
        "Mobile",
    ),
];

/// `(asNumber, asOrg, isp, domain)`; AS numbers from the documentation range.
const NETWORKS: &[(u32, &str, &str, &str)] = &[
    (
        64496,
        "example broadband",
        "Example Broadband",
        "example.net",
    ),
    (
        64500,
        "example mobile",
        "Example Mobile",
        "mobile.example.net",
    ),
    (
        64505,
        "example cloud",
        "Example Cloud Hosting",
        "cloud.example.com",
    ),
    (64511, "example fiber", "Example Fiber", "fiber.example.org"),
];

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LogEvent<'a> {
    actor: Actor,
    client: Client<'a>,
    device: Option<()>,
    authentication_context: AuthenticationContext,
    display_message: &'a str,
    event_type: &'a str,
    outcome: OutcomeJson<'a>,
    published: String,
    security_context: SecurityContext<'a>,
    severity: &'a str,
    debug_context: DebugContext,
    legacy_event_type: Option<&'a str>,
    transaction: Transaction,
    uuid: &'a str,
    version: &'a str,
    request: RequestJson<'a>,
    target: Option<Vec<Target>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Actor {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    alternate_id: String,
    display_name: String,
    detail_entry: Option<()>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Target {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    alternate_id: Option<String>,
    display_name: Option<String>,
    detail_entry: Option<()>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Client<'a> {
    user_agent: UserAgent<'a>,
    zone: &'a str,
    device: &'a str,
    id: Option<String>,
    ip_address: &'a str,
    geographical_context: Geo<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UserAgent<'a> {
    raw_user_agent: &'a str,
    os: &'a str,
    browser: &'a str,
}

#[derive(Serialize, Clone, Copy)]
#[serde(rename_all = "camelCase")]
struct Geo<'a> {
    city: &'a str,
    state: &'a str,
    country: &'a str,
    postal_code: &'a str,
    geolocation: LatLon,
}

#[derive(Serialize, Clone, Copy)]
struct LatLon {
    lat: f64,
    lon: f64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AuthenticationContext {
    authentication_provider: Option<&'static str>,
    credential_provider: Option<&'static str>,
    credential_type: Option<&'static str>,
    issuer: Option<()>,
    interface: Option<()>,
    authentication_step: u32,
    root_session_id: String,
    external_session_id: String,
}

#[derive(Serialize)]
struct OutcomeJson<'a> {
    result: &'a str,
    reason: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SecurityContext<'a> {
    as_number: u32,
    as_org: &'a str,
    isp: &'a str,
    domain: &'a str,
    is_proxy: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DebugContext {
    debug_data: DebugData,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DebugData {
    request_id: String,
    request_uri: String,
    url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    threat_suspected: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    behaviors: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    redirect_uri: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    granted_scopes: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    requested_scopes: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    grant_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorization_server: Option<&'static str>,
}

#[derive(Serialize)]
struct Transaction {
    #[serde(rename = "type")]
    kind: &'static str,
    id: String,
    detail: Empty,
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RequestJson<'a> {
    ip_chain: [IpChainEntry<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IpChainEntry<'a> {
    ip: &'a str,
    geographical_context: Geo<'a>,
    version: &'a str,
    source: Option<()>,
}

fn user_actor(u: &User) -> Actor {
    Actor {
        id: u.id.clone(),
        kind: "User",
        alternate_id: u.login.clone(),
        display_name: u.display_name(),
        detail_entry: None,
    }
}

fn user_target(u: &User) -> Target {
    Target {
        id: u.id.clone(),
        kind: "User",
        alternate_id: Some(u.login.clone()),
        display_name: Some(u.display_name()),
        detail_entry: None,
    }
}

fn app_target(a: &App) -> Target {
    Target {
        id: a.id.clone(),
        kind: "AppInstance",
        alternate_id: Some(a.label.to_owned()),
        display_name: Some(a.label.to_owned()),
        detail_entry: None,
    }
}

fn simple_target(id: String, kind: &'static str, alt: &str, display: &str) -> Target {
    Target {
        id,
        kind,
        alternate_id: Some(alt.to_owned()),
        display_name: Some(display.to_owned()),
        detail_entry: None,
    }
}

fn okta_id(rng: &mut Rng, prefix: &str) -> String {
    format!("{prefix}{}", rng.base62(17))
}

/// Renders one event as compact JSON.
pub(crate) fn render(
    dir: &Directory,
    seed: u64,
    seq: u64,
    published_ms: i64,
    kind: u8,
    uuid: &str,
) -> Box<str> {
    let Some(spec) = KINDS.get(usize::from(kind)) else {
        return "{}".into();
    };
    let mut rng = Rng::for_item(seed, stream::BODY, seq);
    let outcome = &spec.outcomes[rng.weighted(spec.outcomes.iter().map(|o| o.weight))];

    let pick_user = |rng: &mut Rng| -> Option<&User> {
        if dir.active.is_empty() {
            dir.users.first()
        } else {
            dir.users.get(dir.active[rng.index(dir.active.len())])
        }
    };
    let subject = pick_user(&mut rng);
    let owner = dir.owner();
    let system = Actor {
        id: dir.system_principal_id.clone(),
        kind: "SystemPrincipal",
        alternate_id: "system@okta.com".to_owned(),
        display_name: "Okta System".to_owned(),
        detail_entry: None,
    };
    let client_app = rng.pick(&dir.oauth_clients);
    let (actor_user, actor) = match spec.actor {
        ActorKind::User => (subject, subject.map_or(system, user_actor)),
        ActorKind::Admin => (owner, owner.map_or(system, user_actor)),
        ActorKind::AdminOrSystem if rng.chance(75) => (owner, owner.map_or(system, user_actor)),
        ActorKind::AdminOrSystem | ActorKind::System => (None, system),
        ActorKind::Client => (
            None,
            Actor {
                id: client_app.id.clone(),
                kind: "PublicClientApp",
                alternate_id: client_app.id.clone(),
                display_name: client_app.label.to_owned(),
                detail_entry: None,
            },
        ),
    };

    // Users mostly sign in from their usual place; the rest is travel, VPNs
    // and attackers.
    let (city, ip) = match actor_user {
        Some(u) if rng.chance(85) => (u.city, u.ip.clone()),
        _ => {
            let block = if rng.chance(50) {
                "198.51.100"
            } else {
                "203.0.113"
            };
            (
                rng.index(CITIES.len()),
                format!("{block}.{}", 1 + rng.below(254)),
            )
        }
    };
    let (city_name, state, country, postal, lat, lon) = CITIES[city];
    let geo = Geo {
        city: city_name,
        state,
        country,
        postal_code: postal,
        geolocation: LatLon { lat, lon },
    };
    let ua = rng.pick(USER_AGENTS);
    let net = rng.pick(NETWORKS);
    let app = rng.pick(&dir.apps);
    let group = rng.pick(&dir.groups);
    let other = pick_user(&mut rng);
    let tx_id = rng.base64url(27);
    let session = format!("102{}", rng.base62(22));

    let targets = match spec.targets {
        Targets::Null => None,
        Targets::SignIn => Some(vec![
            simple_target(
                okta_id(&mut rng, "lae"),
                "AuthenticatorEnrollment",
                "unknown",
                "Password",
            ),
            dir.apps.get(1).map_or_else(|| app_target(app), app_target),
        ]),
        Targets::Sso => {
            let mut t = vec![app_target(app)];
            if let Some(u) = actor_user {
                t.push(simple_target(
                    okta_id(&mut rng, "0ua"),
                    "AppUser",
                    &u.login,
                    &u.display_name(),
                ));
            }
            Some(t)
        }
        Targets::Mfa | Targets::Factor => Some(vec![simple_target(
            okta_id(&mut rng, "pfd"),
            "AuthenticatorEnrollment",
            "unknown",
            "Okta Verify",
        )]),
        Targets::Policy => Some(vec![
            simple_target(
                dir.policy.id.clone(),
                "PolicyEntity",
                "unknown",
                dir.policy.name,
            ),
            dir.rules.get(rng.index(dir.rules.len())).map_or_else(
                || simple_target(okta_id(&mut rng, "0pr"), "PolicyRule", "unknown", "Rule"),
                |r| simple_target(r.id.clone(), "PolicyRule", "unknown", r.name),
            ),
        ]),
        Targets::ActorUser => actor_user.map(|u| vec![user_target(u)]),
        Targets::SubjectUser => other.map(|u| vec![user_target(u)]),
        Targets::GroupMembership => Some(
            other
                .map(user_target)
                .into_iter()
                .chain([simple_target(
                    group.id.clone(),
                    "UserGroup",
                    "unknown",
                    group.name,
                )])
                .collect(),
        ),
        Targets::AppMembership => Some(
            other
                .map(|u| {
                    simple_target(
                        okta_id(&mut rng, "0ua"),
                        "AppUser",
                        &u.login,
                        &u.display_name(),
                    )
                })
                .into_iter()
                .chain([app_target(app)])
                .chain(other.map(user_target))
                .collect(),
        ),
        Targets::AuthorizeCode => Some(
            other
                .map(user_target)
                .into_iter()
                .chain([Target {
                    id: okta_id(&mut rng, "oar"),
                    kind: "code",
                    alternate_id: None,
                    display_name: Some("Authorization Code".to_owned()),
                    detail_entry: None,
                }])
                .collect(),
        ),
        Targets::Token => Some(vec![simple_target(
            okta_id(&mut rng, "00T"),
            "Token",
            "unknown",
            "Ward connector",
        )]),
    };

    let request_uri = spec
        .request_uri
        .replace("{app}", app.name)
        .replace("{appid}", &app.id)
        .replace("{group}", &group.id)
        .replace("{user}", other.map_or("", |u| u.id.as_str()));
    let oauth = matches!(spec.targets, Targets::AuthorizeCode);
    let url = if oauth {
        format!(
            "{request_uri}?client_id={}&response_type=code&scope=openid+profile+email&state={}",
            client_app.id,
            rng.base62(12)
        )
    } else {
        request_uri.clone()
    };
    let sign_in = matches!(spec.targets, Targets::SignIn | Targets::Mfa | Targets::Null);
    let (provider, cred_provider, cred_type) = match spec.targets {
        Targets::SignIn => (Some("OKTA_AUTHENTICATION_PROVIDER"), None, Some("PASSWORD")),
        Targets::Mfa => (
            Some("FACTOR_PROVIDER"),
            Some("OKTA_CREDENTIAL_PROVIDER"),
            Some("OTP"),
        ),
        _ => (None, None, None),
    };

    let event = LogEvent {
        actor,
        client: Client {
            user_agent: UserAgent {
                raw_user_agent: ua.0,
                os: ua.1,
                browser: ua.2,
            },
            zone: "null",
            device: ua.3,
            id: oauth.then(|| client_app.id.clone()),
            ip_address: &ip,
            geographical_context: geo,
        },
        device: None,
        authentication_context: AuthenticationContext {
            authentication_provider: provider,
            credential_provider: cred_provider,
            credential_type: cred_type,
            issuer: None,
            interface: None,
            authentication_step: 0,
            root_session_id: session.clone(),
            external_session_id: session,
        },
        display_message: spec.display_message,
        event_type: spec.event_type,
        outcome: OutcomeJson {
            result: outcome.result,
            reason: outcome.reason,
        },
        published: crate::synth::iso_millis(published_ms),
        security_context: SecurityContext {
            as_number: net.0,
            as_org: net.1,
            isp: net.2,
            domain: net.3,
            is_proxy: rng.chance(2),
        },
        severity: outcome.severity,
        debug_context: DebugContext {
            debug_data: DebugData {
                request_id: tx_id.clone(),
                request_uri,
                url,
                threat_suspected: sign_in.then_some(if spec.event_type == "security.threat.detected" {
                    "true"
                } else {
                    "false"
                }),
                behaviors: matches!(spec.targets, Targets::SignIn).then_some(
                    "{New Geo-Location=NEGATIVE, New Device=NEGATIVE, New IP=NEGATIVE, New State=NEGATIVE, New Country=NEGATIVE, Velocity=NEGATIVE, New City=NEGATIVE}",
                ),
                redirect_uri: oauth.then_some("https://portal.example.com/callback"),
                granted_scopes: oauth.then_some("openid, profile, email"),
                requested_scopes: oauth.then_some("openid, profile, email"),
                response_type: oauth.then_some("code"),
                grant_type: oauth.then_some("authorization_code"),
                authorization_server: oauth.then_some("org"),
            },
        },
        legacy_event_type: outcome.legacy,
        transaction: Transaction {
            kind: "WEB",
            id: tx_id,
            detail: Empty {},
        },
        uuid,
        version: "0",
        request: RequestJson {
            ip_chain: [IpChainEntry {
                ip: &ip,
                geographical_context: geo,
                version: "V4",
                source: None,
            }],
        },
        target: targets,
    };
    to_json(&event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_renders_valid_json() {
        let dir = Directory::generate(
            "ward-demo",
            "okta.com",
            3,
            20,
            Some("SUPER_ADMIN"),
            1_750_000_000_000,
        );
        let mut seen = std::collections::HashSet::new();
        for seq in 0..3000 {
            let (kind, uuid) = identity(3, seq);
            seen.insert(kind);
            let json = render(&dir, 3, seq, 1_749_000_000_000 + seq as i64, kind, &uuid);
            let v: serde_json::Value = serde_json::from_str(&json).unwrap();
            assert_eq!(v["uuid"], uuid.as_str());
            assert_eq!(v["eventType"], event_type(kind));
            assert_eq!(v["version"], "0");
            assert!(v["published"].as_str().unwrap().ends_with('Z'));
            assert!(v["client"]["geographicalContext"]["postalCode"].is_string());
            assert!(v["target"].is_null() || v["target"].is_array());
        }
        assert_eq!(seen.len(), KINDS.len());
    }
}
