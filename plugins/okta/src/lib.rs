//! Okta connector: System Log (`/api/v1/logs`) and Users (`/api/v1/users`)
//! with an SSWS API token or an OAuth 2.0 access token (authorization code
//! flow against the org authorization server, scopes `okta.logs.read
//! okta.users.read offline_access`; the host refreshes the one-hour tokens).
//!
//! The System Log is read in Okta's *polling* mode (`since`, no `until`,
//! ascending): Okta orders it by persistence time so delayed events are not
//! skipped, and always returns a `next` link, even on an empty page. That
//! link is the cursor: an empty page means "caught up", and the same link is
//! where the next poll resumes.

use serde::Deserialize;
use serde_json::value::RawValue;
use ward_sdk::auth::AuthHeader;
use ward_sdk::check::{ADMIN_ROLE, CREDENTIALS_VALID, SCOPE_PRESENT, SYSTEM_LOG_READABLE};
use ward_sdk::http::{Request, Response, with_query};
use ward_sdk::oauth::OAuthClient;
use ward_sdk::time::{format_rfc3339, now, parse_rfc3339};
use ward_sdk::{
    AuditPage, AuthKind, Check, Config, Connector, Error, Result, TestReport, Timestamp, User,
    UserPage,
};

/// Okta's maximum page size for the System Log.
const LOG_LIMIT: usize = 1000;
/// Okta's maximum page size for List Users.
const USER_LIMIT: usize = 200;
/// Roles that can read the System Log.
const LOG_READER_ROLES: &[&str] = &[
    "SUPER_ADMIN",
    "ORG_ADMIN",
    "READ_ONLY_ADMIN",
    "REPORT_ADMIN",
];

pub mod system_log;

struct Okta;

/// The org's own host: `{domain}.{base_domain}` (`base_domain` is
/// `okta.com` unless the org lives in another Okta cell family).
fn org_host(config: &Config) -> Result<String> {
    Ok(format!(
        "{}.{}",
        config.require("domain")?,
        config.get("base_domain").unwrap_or("okta.com")
    ))
}

/// The API base: on the operator's custom URL domain when one is set,
/// otherwise on the org's own host.
fn base(config: &Config) -> Result<String> {
    match config.get("custom_domain") {
        Some(custom) => Ok(format!("https://{custom}/api/v1")),
        None => Ok(format!("https://{}/api/v1", org_host(config)?)),
    }
}

/// The OAuth client: scopes (`offline_access` yields the refresh token the
/// host refreshes with) and where client ids come from.
const OAUTH: OAuthClient = OAuthClient {
    scopes: &["okta.logs.read", "okta.users.read", "offline_access"],
    missing_client_id: "OAuth needs the client ID of an Okta web app integration: set config field `client_id` (apiKey in the API) and give its client secret as apiSecret",
};

/// API tokens go as `SSWS`, OAuth access tokens as `Bearer`.
const AUTH: AuthHeader = AuthHeader::new().api_token("SSWS", "api_token");

fn oauth_mode(config: &Config) -> bool {
    config.auth_kind() == Some(AuthKind::Oauth2)
}

fn oauth_base(config: &Config) -> Result<String> {
    Ok(format!("https://{}/oauth2/v1", org_host(config)?))
}

fn get(config: &Config, url: &str) -> Result<Response> {
    let response = Request::get(url)
        .accept_json()
        .header("authorization", AUTH.value(config)?)
        .send()?;
    Ok(response)
}

/// Okta answers a Bearer token lacking a scope with 403 and
/// `WWW-Authenticate: Bearer ... error="insufficient_scope"`.
fn missing_scope(response: &Response) -> bool {
    response.status == 403
        && response
            .header("www-authenticate")
            .is_some_and(|v| v.contains("insufficient_scope"))
}

#[derive(Deserialize)]
struct OktaError {
    #[serde(rename = "errorCode", default)]
    code: String,
    #[serde(rename = "errorSummary", default)]
    summary: String,
}

/// Okta's own words for a failed call: `errorCode errorSummary`
/// ("E0000006 You do not have permission to perform the requested
/// action"), or an excerpt of a body in another shape.
fn detail(response: &Response) -> String {
    response
        .json::<OktaError>()
        .ok()
        .filter(|e| !e.code.is_empty() || !e.summary.is_empty())
        .map(|e| format!("{} {}", e.code, e.summary).trim().to_string())
        .unwrap_or_else(|| response.excerpt())
}

/// A check's view of a refused call: the status and Okta's own words.
fn refusal(response: &Response) -> String {
    format!("HTTP {}: {}", response.status, detail(response))
}

/// A test call Okta throttled or could not answer says nothing about the
/// account: the whole test is deferred (rate limit, unavailable) instead
/// of failing a check.
fn transient(config: &Config, response: &Response, what: &str) -> Result<()> {
    if response.status == 429 || response.status >= 500 {
        Err(error_for(config, response, what))
    } else {
        Ok(())
    }
}

/// Maps a non-2xx Okta response to the contract's error, with the next step
/// for the operator in the message.
fn error_for(config: &Config, response: &Response, what: &str) -> Error {
    let detail = detail(response);
    let status = Error::from_status("Okta", response, what, &detail).on_429(
        retry_after_ms(response),
        format!("Okta rate limit reached while {what} ({detail})"),
    );
    if oauth_mode(config) {
        status
            .on_401(format!(
                "Okta rejected the OAuth access token while {what} ({detail}): the grant was revoked or the refresh failed; reconnect through Okta's consent screen"
            ))
            .on_403(if missing_scope(response) {
                format!(
                    "the OAuth token lacks a scope needed for {what}: grant okta.logs.read and okta.users.read to the app integration (Okta API Scopes tab), then reconnect"
                )
            } else {
                format!(
                    "Okta refused {what} ({detail}): the user who consented needs the Read-only Administrator role or higher; reconnect as such an admin"
                )
            })
            .into()
    } else {
        status
            .on_401(format!(
                "Okta rejected the API token while {what} ({detail}): the token was revoked, expired after 30 days unused, or its admin was deactivated; create a new token in Okta Admin > Security > API > Tokens and reconnect"
            ))
            .on_403(format!(
                "Okta refused {what} ({detail}): the token's administrator needs the Read-only Administrator role or higher; assign it, or reconnect with a token created by such an admin"
            ))
            .into()
    }
}

/// Okta sends `X-Rate-Limit-Reset` as UTC epoch seconds; we turn it into a
/// delay against the response's own `Date` when present (the guest clock may
/// be skewed from Okta's), else against our clock.
fn retry_after_ms(response: &Response) -> u64 {
    if let Some(ms) = response.retry_after_ms() {
        return ms;
    }
    let reset = response
        .header("x-rate-limit-reset")
        .and_then(|v| v.trim().parse::<i64>().ok());
    match reset {
        Some(reset_secs) => {
            let reference_ms = now();
            let wait = reset_secs.saturating_mul(1000).saturating_sub(reference_ms);
            // A reset in the past still deserves a short pause.
            wait.clamp(1000, 3_600_000) as u64
        }
        None => 60_000,
    }
}

/// Cursors are Okta `next` links; refuse anything else so that a corrupted
/// or foreign cursor cannot steer requests elsewhere.
fn check_cursor(config: &Config, cursor: &str, path: &str) -> Result<()> {
    let expected = format!("{}{path}", base(config)?);
    if cursor.starts_with(&expected) {
        Ok(())
    } else {
        Err(Error::internal(format!(
            "stored cursor is not an Okta {path} link for this org; reset the instance's cursor"
        )))
    }
}

#[derive(Deserialize)]
struct Me {
    id: String,
    #[serde(default)]
    profile: Option<Profile>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Profile {
    login: Option<String>,
    email: Option<String>,
    #[serde(rename = "firstName")]
    first_name: Option<String>,
    #[serde(rename = "lastName")]
    last_name: Option<String>,
}

#[derive(Deserialize)]
struct Role {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    label: Option<String>,
}

#[derive(Deserialize)]
struct Org {
    #[serde(rename = "companyName", default)]
    company_name: Option<String>,
}

#[derive(Deserialize)]
struct OktaUser {
    id: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    created: Option<String>,
    #[serde(rename = "lastLogin", default)]
    last_login: Option<String>,
    #[serde(default)]
    profile: Option<Profile>,
}

fn optional_time(value: Option<&str>) -> Option<Timestamp> {
    value.and_then(|v| parse_rfc3339(v).ok())
}

impl Connector for Okta {
    fn auth_url(config: &Config, redirect_uri: &str, state: &str) -> Result<String> {
        OAUTH.auth_url(
            config,
            &format!("{}/authorize", oauth_base(config)?),
            redirect_uri,
            state,
        )
    }

    fn test(config: &Config) -> Result<TestReport> {
        if oauth_mode(config) {
            return test_oauth(config);
        }
        let base = base(config)?;
        let mut checks = Vec::new();

        let me = get(config, &format!("{base}/users/me"))?;
        if me.status == 401 {
            return Err(error_for(config, &me, "reading the token's user"));
        }
        if !me.is_success() {
            return Err(error_for(config, &me, "reading the token's user"));
        }
        let me: Me = me.json()?;
        let profile = me.profile.unwrap_or_default();
        let principal = profile.login.or(profile.email);
        checks.push(Check::pass(
            CREDENTIALS_VALID,
            format!(
                "API token accepted (acts as {})",
                principal.as_deref().unwrap_or(&me.id)
            ),
        ));

        let roles = get(config, &format!("{base}/users/{}/roles", me.id))?;
        transient(config, &roles, "reading the token's admin roles")?;
        if roles.is_success() {
            let roles: Vec<Role> = roles.json()?;
            match roles
                .iter()
                .find(|r| LOG_READER_ROLES.contains(&r.kind.as_str()))
            {
                Some(role) => checks.push(Check::pass(
                    ADMIN_ROLE,
                    format!(
                        "token's admin holds {}",
                        role.label.as_deref().unwrap_or(&role.kind)
                    ),
                )),
                None => checks.push(Check::fail(
                    ADMIN_ROLE,
                    "the token's user holds no administrator role that can read the System Log: assign Read-only Administrator (or higher) in Okta, or reconnect with a token created by such an admin",
                )),
            }
        } else {
            checks.push(Check::fail(
                ADMIN_ROLE,
                format!(
                    "could not read the token's admin roles ({}): reconnect with a token created by a Read-only Administrator or higher",
                    refusal(&roles)
                ),
            ));
        }

        let logs = get(
            config,
            &with_query(&format!("{base}/logs"), &[("limit", "1")])?,
        )?;
        transient(config, &logs, "reading the System Log")?;
        if logs.is_success() {
            checks.push(Check::pass(SYSTEM_LOG_READABLE, "System Log is readable"));
        } else {
            checks.push(Check::fail(
                SYSTEM_LOG_READABLE,
                format!(
                    "System Log is not readable with this token ({}): the token's admin needs Read-only Administrator or higher",
                    refusal(&logs)
                ),
            ));
        }

        let org = get(config, &format!("{base}/org"))?;
        let account_name = if org.is_success() {
            org.json::<Org>().ok().and_then(|o| o.company_name)
        } else {
            None
        };
        Ok(TestReport {
            checks,
            account_name: account_name.or_else(|| config.get("domain").map(str::to_string)),
            principal,
        })
    }

    fn fetch_audit(config: &Config, since: Timestamp, cursor: Option<String>) -> Result<AuditPage> {
        let url = match cursor {
            Some(cursor) => {
                check_cursor(config, &cursor, "/logs")?;
                cursor
            }
            None => with_query(
                &format!("{}/logs", base(config)?),
                &[
                    ("since", &format_rfc3339(since)),
                    ("limit", &LOG_LIMIT.to_string()),
                    ("sortOrder", "ASCENDING"),
                ],
            )?,
        };
        let response = get(config, &url)?;
        if !response.is_success() {
            return Err(error_for(config, &response, "reading the System Log"));
        }
        let events = system_log::page(&response.body)?;
        // Polling mode always has a next link; without one (bounded queries,
        // proxies that drop headers) we stay where we are rather than lose
        // our place.
        let next = response.link("next").unwrap_or_else(|| url.clone());
        Ok(AuditPage {
            more: !events.is_empty() && next != url,
            events,
            cursor: next,
        })
    }

    fn fetch_users(config: &Config, cursor: Option<String>) -> Result<UserPage> {
        let url = match cursor {
            Some(cursor) => {
                check_cursor(config, &cursor, "/users")?;
                cursor
            }
            None => with_query(
                &format!("{}/users", base(config)?),
                &[("limit", &USER_LIMIT.to_string())],
            )?,
        };
        let response = get(config, &url)?;
        if !response.is_success() {
            return Err(error_for(config, &response, "listing users"));
        }
        let raw: Vec<Box<RawValue>> = response.json()?;
        let mut users = Vec::with_capacity(raw.len());
        for r in &raw {
            let u: OktaUser = serde_json::from_str(r.get())
                .map_err(|e| Error::internal(format!("Okta user has an unexpected shape: {e}")))?;
            let profile = u.profile.unwrap_or_default();
            let name = match (&profile.first_name, &profile.last_name) {
                (Some(f), Some(l)) => Some(format!("{f} {l}")),
                (Some(f), None) => Some(f.clone()),
                (None, Some(l)) => Some(l.clone()),
                (None, None) => None,
            };
            users.push(User {
                id: u.id,
                email: profile.email,
                login: profile.login,
                name,
                status: u.status,
                // Admin roles need one request per user; the listing does not say.
                is_admin: false,
                created: optional_time(u.created.as_deref()),
                last_login: optional_time(u.last_login.as_deref()),
                raw: r.get().to_string(),
            });
        }
        let next = response.link("next");
        Ok(UserPage {
            more: next.is_some(),
            cursor: next,
            users,
        })
    }
}

/// "Test now" for an OAuth instance: the token works, every scope is
/// present, and the consenting user may read the System Log. Okta-scoped
/// tokens act with that user's admin permissions, so a 403 that is not a
/// missing scope means the role is missing.
fn test_oauth(config: &Config) -> Result<TestReport> {
    let base = base(config)?;
    let mut checks = Vec::new();
    let me = get(config, &format!("{base}/users/me"))?;
    let mut principal = None;
    if me.status == 401 {
        return Err(error_for(config, &me, "reading the consenting user"));
    }
    if me.is_success() {
        let me: Me = me.json()?;
        let profile = me.profile.unwrap_or_default();
        principal = profile.login.or(profile.email);
        checks.push(Check::pass(
            CREDENTIALS_VALID,
            format!(
                "OAuth access token accepted (acts as {})",
                principal.as_deref().unwrap_or(&me.id)
            ),
        ));
    } else if missing_scope(&me) {
        checks.push(Check::pass(
            CREDENTIALS_VALID,
            "OAuth access token accepted",
        ));
    } else {
        return Err(error_for(config, &me, "reading the consenting user"));
    }

    let logs = get(
        config,
        &with_query(&format!("{base}/logs"), &[("limit", "1")])?,
    )?;
    let users = get(
        config,
        &with_query(&format!("{base}/users"), &[("limit", "1")])?,
    )?;
    transient(config, &logs, "reading the System Log")?;
    transient(config, &users, "reading the user directory")?;
    let mut missing = Vec::new();
    if missing_scope(&logs) {
        missing.push("okta.logs.read");
    }
    if missing_scope(&users) {
        missing.push("okta.users.read");
    }
    if missing.is_empty() {
        checks.push(Check::pass(
            SCOPE_PRESENT,
            "token carries okta.logs.read and okta.users.read",
        ));
    } else {
        checks.push(Check::fail(
            SCOPE_PRESENT,
            format!(
                "token lacks {}: grant it on the app integration's Okta API Scopes tab, then reconnect",
                missing.join(" and ")
            ),
        ));
    }
    match logs.status {
        200..=299 => checks.push(Check::pass(SYSTEM_LOG_READABLE, "System Log is readable")),
        _ if missing_scope(&logs) => {}
        _ => checks.push(Check::fail(
            SYSTEM_LOG_READABLE,
            format!(
                "System Log is not readable ({}): the user who consented needs Read-only Administrator or higher; reconnect as such an admin",
                refusal(&logs)
            ),
        )),
    }
    Ok(TestReport {
        checks,
        account_name: config.get("domain").map(str::to_string),
        principal,
    })
}

ward_sdk::export_connector!(Okta);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn oauth_needs_client_id() {
        let config = Config::from_pairs([("domain", "acme")]);
        let e = Okta::auth_url(&config, "https://ward.local/cb", "s").unwrap_err();
        assert!(matches!(&e, Error::InvalidConfig(m) if m.contains("client_id")));
        let config = Config::from_pairs([("domain", "acme"), ("client_id", "0oa1")]);
        let url = Okta::auth_url(&config, "https://ward.local/cb", "s").unwrap();
        assert!(url.starts_with("https://acme.okta.com/oauth2/v1/authorize?client_id=0oa1&"));
        assert!(url.contains("scope=okta.logs.read+okta.users.read+offline_access"));
    }

    #[test]
    fn picks_auth_mode_from_the_instance() {
        let config = Config::from_pairs([("domain", "a")]);
        assert!(!oauth_mode(&config));
        assert!(oauth_mode(&config.clone().with_auth(AuthKind::Oauth2)));
        assert!(!oauth_mode(&config.with_auth(AuthKind::ApiToken)));
    }

    #[test]
    fn calls_go_to_the_org_cell_or_the_custom_domain() {
        let preview = Config::from_pairs([("domain", "acme"), ("base_domain", "oktapreview.com")]);
        assert_eq!(
            base(&preview).unwrap(),
            "https://acme.oktapreview.com/api/v1"
        );
        let custom = Config::from_pairs([
            ("domain", "acme"),
            ("base_domain", "okta.com"),
            ("custom_domain", "login.acme.example"),
        ]);
        assert_eq!(base(&custom).unwrap(), "https://login.acme.example/api/v1");
        assert_eq!(
            oauth_base(&custom).unwrap(),
            "https://acme.okta.com/oauth2/v1"
        );
    }

    #[test]
    fn refuses_foreign_cursor() {
        let config = Config::from_pairs([("domain", "acme")]);
        assert!(
            check_cursor(
                &config,
                "https://acme.okta.com/api/v1/logs?after=1",
                "/logs"
            )
            .is_ok()
        );
        assert!(check_cursor(&config, "https://evil.example/api/v1/logs", "/logs").is_err());
    }
}
