//! Zendesk connector: Support audit logs (`/api/v2/audit_logs`, Enterprise
//! plans, admins only) and users (`/api/v2/users`), with an OAuth 2.0
//! access token (authorization code flow, scopes `auditlogs:read
//! users:read`) or an admin's API token (`{email}/token` Basic auth).
//!
//! - The host holds every credential: it exchanges OAuth codes at `POST
//!   /oauth/tokens` (JSON body, as the manifest declares) and composes the
//!   API token's `Basic base64("{email}/token:{token}")` itself (manifest
//!   `[[auth]] kind = "basic"`, `username = "{email}/token"`).
//! - `test` checks, in order: credentials valid, admin role, plan includes
//!   audit logs, scopes present; and reads the account's name.
//! - `fetch-audit` reads in created_at windows with cursor pages (see
//!   [`audit`]); `fetch-users` follows the users listing's cursor pages.

mod api;
mod audit;

use serde::Deserialize;
use serde_json::value::RawValue;
use ward_sdk::check::{ADMIN_ROLE, CREDENTIALS_VALID, PLAN_INCLUDES_AUDIT, SCOPE_PRESENT};
use ward_sdk::http::{Response, with_query};
use ward_sdk::time::parse_rfc3339;
use ward_sdk::{
    AuditPage, Check, Config, Connector, Error, Result, TestReport, Timestamp, User, UserPage,
};

use api::{OAUTH, body, ensure_ok, error_for, get, is_own_link, missing_scope, oauth_mode, origin};

/// Zendesk's largest cursor page for List Users.
const USERS_PAGE_SIZE: &str = "100";

struct Zendesk;

#[derive(Deserialize)]
struct MeBody {
    user: Me,
}

#[derive(Deserialize)]
struct Me {
    /// `null` for the anonymous user Zendesk answers with when no
    /// credentials were accepted.
    #[serde(default)]
    id: Option<u64>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    role: Option<String>,
}

/// What the audit log probe said about the plan and the scope.
enum AuditProbe {
    Readable,
    MissingScope,
    Refused(String),
}

fn probe_audit(config: &Config) -> Result<AuditProbe> {
    let url = with_query(
        &format!("{}/api/v2/audit_logs", origin(config)?),
        &[("page[size]", "1")],
    )?;
    let response = get(config, &url)?;
    Ok(match response.status {
        // Throttled means the endpoint exists for this account.
        200..=299 | 429 => AuditProbe::Readable,
        403 if missing_scope(&response) => AuditProbe::MissingScope,
        403 => AuditProbe::Refused(api::detail(&response)),
        _ => return Err(error_for(config, &response, "probing the audit log")),
    })
}

fn test(config: &Config) -> Result<TestReport> {
    let oauth = oauth_mode(config);
    let mut checks = Vec::new();
    let mut missing = Vec::new();

    let me_response = get(config, &format!("{}/api/v2/users/me", origin(config)?))?;
    let me: Option<Me> = if me_response.is_success() {
        let me = body::<MeBody>(&me_response, "the current user")?.user;
        if me.id.is_none() {
            // Zendesk serves /users/me to anyone, answering "Anonymous user"
            // when it did not accept the credentials.
            return Err(Error::unauthorized(if oauth {
                "Zendesk answered as an anonymous user: the OAuth access token was not accepted; reconnect through Zendesk's consent screen".to_string()
            } else {
                format!(
                    "Zendesk answered as an anonymous user: the API token was not accepted for {}/token; check that `email` is the token owner's e-mail and that token access is enabled (Admin Center > Apps and integrations > APIs > Zendesk API), then reconnect",
                    config.get("email").unwrap_or("the configured e-mail")
                )
            }));
        }
        Some(me)
    } else if oauth && missing_scope(&me_response) {
        missing.push("users:read");
        None
    } else {
        return Err(error_for(config, &me_response, "reading the current user"));
    };
    let principal = me.as_ref().and_then(|m| m.email.clone().or(m.name.clone()));
    checks.push(Check::pass(
        CREDENTIALS_VALID,
        match &principal {
            Some(p) if oauth => format!("OAuth access token accepted (acts as {p})"),
            Some(p) => format!("API token accepted (acts as {p})"),
            None => "OAuth access token accepted".to_string(),
        },
    ));

    let admin = match &me {
        Some(me) => {
            let role = me.role.as_deref().unwrap_or("unknown");
            if role == "admin" {
                checks.push(Check::pass(ADMIN_ROLE, "Zendesk user is an admin"));
                Some(true)
            } else {
                checks.push(Check::fail(
                    ADMIN_ROLE,
                    format!(
                        "Zendesk user is not an admin (role: {role}): only admins can read audit logs; reconnect with an admin"
                    ),
                ));
                Some(false)
            }
        }
        None => {
            checks.push(Check::fail(
                ADMIN_ROLE,
                "could not read the consenting user's role: the token lacks users:read (see scope-present)",
            ));
            None
        }
    };

    match probe_audit(config)? {
        AuditProbe::Readable => checks.push(Check::pass(
            PLAN_INCLUDES_AUDIT,
            "plan includes audit logs: yes",
        )),
        AuditProbe::MissingScope => missing.insert(0, "auditlogs:read"),
        AuditProbe::Refused(detail) if admin == Some(true) => checks.push(Check::fail(
            PLAN_INCLUDES_AUDIT,
            format!(
                "plan includes audit logs: no — Enterprise or Enterprise Plus required (Zendesk said: {detail}); upgrade the plan, or connect an account on one of them"
            ),
        )),
        AuditProbe::Refused(detail) if admin == Some(false) => checks.push(Check::fail(
            PLAN_INCLUDES_AUDIT,
            format!(
                "could not check the plan: Zendesk refused the audit log to a non-admin ({detail}); reconnect with an admin to check it"
            ),
        )),
        AuditProbe::Refused(detail) => checks.push(Check::fail(
            PLAN_INCLUDES_AUDIT,
            format!(
                "could not check the plan: Zendesk refused the audit log ({detail}) and the user's role is unreadable; grant users:read and reconnect as an admin"
            ),
        )),
    }

    if !oauth {
        checks.push(Check::pass(
            SCOPE_PRESENT,
            "not applicable: an API token acts with its admin's full permissions, OAuth scopes do not apply",
        ));
    } else if missing.is_empty() {
        checks.push(Check::pass(
            SCOPE_PRESENT,
            format!("token carries {}", OAUTH.scopes.join(" and ")),
        ));
    } else {
        checks.push(Check::fail(
            SCOPE_PRESENT,
            format!(
                "the OAuth token lacks {}: reconnect and grant {} on Zendesk's consent screen",
                missing.join(" and "),
                OAUTH.scopes.join(" ")
            ),
        ));
    }

    // The name is a courtesy: a throttled or failing brands call must not
    // fail the verdicts above.
    let account_name = audit::account_name(config)
        .ok()
        .or_else(|| config.get("subdomain").map(str::to_string));
    Ok(TestReport {
        checks,
        account_name,
        principal,
    })
}

#[derive(Deserialize)]
struct UserListing {
    users: Vec<Box<RawValue>>,
    #[serde(default)]
    meta: Option<audit::Meta>,
    #[serde(default)]
    links: Option<audit::Links>,
}

#[derive(Deserialize)]
struct ZendeskUser {
    id: u64,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    active: Option<bool>,
    #[serde(default)]
    suspended: Option<bool>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    last_login_at: Option<String>,
}

fn optional_time(value: Option<&str>) -> Option<Timestamp> {
    value.and_then(|v| parse_rfc3339(v).ok())
}

fn map_user(raw: &RawValue) -> Result<User> {
    let u: ZendeskUser = serde_json::from_str(raw.get())
        .map_err(|e| Error::internal(format!("a Zendesk user has an unexpected shape: {e}")))?;
    let status = if u.suspended == Some(true) {
        "suspended"
    } else if u.active == Some(false) {
        "deleted"
    } else {
        "active"
    };
    Ok(User {
        id: u.id.to_string(),
        login: u.email.clone(),
        email: u.email,
        name: u.name,
        status: Some(match &u.role {
            Some(role) => format!("{status} ({role})"),
            None => status.to_string(),
        }),
        is_admin: u.role.as_deref() == Some("admin"),
        created: optional_time(u.created_at.as_deref()),
        last_login: optional_time(u.last_login_at.as_deref()),
        raw: raw.get().to_string(),
    })
}

fn fetch_users(config: &Config, cursor: Option<String>) -> Result<UserPage> {
    let url = match cursor {
        Some(link) => {
            if !is_own_link(config, &link, "users")? {
                return Err(Error::internal(
                    "the stored users cursor is not a link to this account's users listing; reset the instance's users cursor",
                ));
            }
            link
        }
        None => with_query(
            &format!("{}/api/v2/users", origin(config)?),
            &[("page[size]", USERS_PAGE_SIZE)],
        )?,
    };
    let response: Response = get(config, &url)?;
    ensure_ok(config, &response, "listing users")?;
    let listing: UserListing = body(&response, "the users listing")?;
    let users = listing
        .users
        .iter()
        .map(|r| map_user(r))
        .collect::<Result<Vec<_>>>()?;
    let meta = listing.meta.unwrap_or_default();
    let next = if meta.has_more {
        Some(audit::next_link(
            config,
            &url,
            &meta,
            listing.links.as_ref(),
            "users",
        )?)
    } else {
        None
    };
    Ok(UserPage {
        more: next.is_some(),
        cursor: next,
        users,
    })
}

impl Connector for Zendesk {
    fn auth_url(config: &Config, redirect_uri: &str, state: &str) -> Result<String> {
        OAUTH.auth_url(
            config,
            &format!("{}/oauth/authorizations/new", origin(config)?),
            redirect_uri,
            state,
        )
    }

    fn test(config: &Config) -> Result<TestReport> {
        test(config)
    }

    fn fetch_audit(config: &Config, since: Timestamp, cursor: Option<String>) -> Result<AuditPage> {
        audit::fetch(config, since, cursor)
    }

    fn fetch_users(config: &Config, cursor: Option<String>) -> Result<UserPage> {
        fetch_users(config, cursor)
    }
}

ward_sdk::export_connector!(Zendesk);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn auth_url_needs_a_client_and_asks_least_privilege() {
        let config = Config::from_pairs([("subdomain", "acme")]);
        let e = Zendesk::auth_url(&config, "https://ward.local/cb", "s").unwrap_err();
        assert!(matches!(&e, Error::InvalidConfig(m) if m.contains("client_id")));
        let config = Config::from_pairs([("subdomain", "acme"), ("client_id", "ward_audit")]);
        let url = Zendesk::auth_url(&config, "https://ward.local/cb", "st").unwrap();
        assert!(
            url.starts_with("https://acme.zendesk.com/oauth/authorizations/new?client_id=ward_audit&response_type=code&"),
            "{url}"
        );
        assert!(url.contains("scope=auditlogs%3Aread+users%3Aread"), "{url}");
        assert!(url.contains("state=st"));
    }

    #[test]
    fn maps_the_recorded_user() {
        // Trimmed from a recorded List Users response (go-zendesk fixture).
        let raw: Box<RawValue> = serde_json::from_str(
            r#"{"id":369537351454,"url":"https://example.zendesk.com/api/v2/users/369537351454.json","name":"nukosuke","email":"nukosuke@lavabit.com","created_at":"2018-11-23T16:05:12Z","updated_at":"2018-11-30T19:12:34Z","role":"admin","active":true,"last_login_at":"2018-11-30T19:12:34Z","suspended":false}"#,
        )
        .unwrap();
        let u = map_user(&raw).unwrap();
        assert_eq!(u.id, "369537351454");
        assert!(u.is_admin);
        assert_eq!(u.status.as_deref(), Some("active (admin)"));
        assert_eq!(u.email.as_deref(), Some("nukosuke@lavabit.com"));
        assert_eq!(u.created, Some(1_542_989_112_000));
        assert!(u.last_login.is_some());
    }
}
