//! Egnyte connector: the Audit Reporting API v2 stream
//! (`/pubapi/v2/audit/stream`) and the SCIM-style users listing
//! (`/pubapi/v2/users`), with an OAuth 2.0 token (authorization code flow at
//! `https://{domain}.egnyte.com/puboauth/token`, scopes `Egnyte.audit
//! Egnyte.user`).
//!
//! The stream is read the way Egnyte describes it: the first call carries
//! `startDate` (at most 7 days back) and the audit types, every later call
//! only the `nextCursor` of the previous answer; `moreEvents` says whether
//! to call again at once. A page with `moreEvents: false` still returns the
//! cursor, which is where the next poll resumes.
//!
//! Egnyte's stream events carry no id. Each event's id is derived from its
//! content: a SHA-256 over the event's JSON in a canonical form (keys sorted,
//! no whitespace), so the same event read twice (after a restart, or when a
//! refused cursor makes us re-read from a date) gets the same id and Ward's
//! store keeps it once. Two events identical in every field (same
//! millisecond, user, path, action, IP...) are indistinguishable to any
//! reader; within one page the second and later copies get `-2`, `-3`...
//! appended so none is lost.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use ward_sdk::http::{Request, Response, with_query};
use ward_sdk::oauth;
use ward_sdk::time::{format_rfc3339, now, parse_rfc3339};
use ward_sdk::{
    Actor, ActorKind, AuditPage, Check, Config, Connector, Credentials, Error, Event, Grant,
    Outcome, Result, Target, TestReport, Timestamp, User, UserPage, secret_ref,
};

/// Scopes Ward asks for: the audit stream and the user directory.
const SCOPES: &[&str] = &["Egnyte.audit", "Egnyte.user"];
/// Audit types requested on the first stream call: everything a security
/// team reads (the quality-docs types are product-specific and left out).
const AUDIT_TYPES: &[&str] = &[
    "FILE_AUDIT",
    "LOGIN_AUDIT",
    "PERMISSION_AUDIT",
    "USER_AUDIT",
    "GROUP_AUDIT",
    "WG_SETTINGS_AUDIT",
    "WORKFLOW_AUDIT",
];
/// Egnyte's largest users page.
const USER_PAGE: usize = 100;
const DAY_MS: i64 = 86_400_000;
/// The stream only starts within the last 7 days.
const STREAM_WINDOW_MS: i64 = 7 * DAY_MS;
/// Kept inside the window so a clock ahead of Egnyte's is not refused.
const WINDOW_MARGIN_MS: i64 = 10 * 60_000;
/// How far back "Test now" reads to see whether the audit API answers.
const PROBE_WINDOW_MS: i64 = 60_000;
/// Longest `nextCursor` we store; Egnyte's are a few dozen characters.
const MAX_CURSOR_LEN: usize = 4096;
/// Prefix of every audit cursor this connector writes.
const CURSOR_PREFIX: &str = "egnyte-v2:";
/// Prefix of users cursors.
const USERS_PREFIX: &str = "users:";

struct Egnyte;

fn base(config: &Config) -> Result<String> {
    Ok(format!("https://{}.egnyte.com", config.require("domain")?))
}

fn client_id(config: &Config) -> Result<&str> {
    config.get(oauth::CLIENT_ID).ok_or_else(|| {
        Error::invalid_config(
            "OAuth needs the API key of an application registered at developers.egnyte.com: set config field `client_id` (apiKey in the API) and give its secret as apiSecret",
        )
    })
}

fn bearer() -> String {
    format!("Bearer {}", secret_ref(oauth::ACCESS_TOKEN))
}

fn get(url: &str) -> Result<Response> {
    Ok(Request::get(url)
        .accept_json()
        .header("authorization", bearer())
        .send()?)
}

fn post_json(url: &str, body: &Value) -> Result<Response> {
    Ok(Request::post(url)
        .accept_json()
        .header("authorization", bearer())
        .json(body)?
        .send()?)
}

/// What Egnyte's API gateway (Mashery) said in `X-Mashery-Error-Code`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Gateway {
    /// `ERR_403_DEVELOPER_OVER_QPS`: over the per-second limit.
    OverQps,
    /// `ERR_403_DEVELOPER_OVER_RATE`: the daily quota is used up.
    OverRate,
    /// `ERR_403_DEVELOPER_INACTIVE`: unknown token or inactive API key.
    Inactive,
    /// Any other gateway code.
    Other(String),
}

fn gateway(response: &Response) -> Option<Gateway> {
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
fn detail(response: &Response) -> String {
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

fn strip_tags(html: &str) -> String {
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
enum Denial {
    /// The token lacks an OAuth scope.
    Scope,
    /// The plan does not include the feature.
    Plan,
    /// The user's role does not allow it.
    Role,
    /// The body does not say.
    Unknown,
}

fn denial(detail: &str) -> Denial {
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
fn until_utc_midnight_ms() -> u64 {
    let left = DAY_MS - now().rem_euclid(DAY_MS);
    u64::try_from(left).unwrap_or(60_000)
}

/// Maps a non-2xx Egnyte response to the contract's error, with the next
/// step for the operator in the message.
fn error_for(response: &Response, what: &str) -> Error {
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
    match response.status {
        401 => Error::unauthorized(format!(
            "Egnyte rejected the access token while {what} ({detail}): it was revoked, or the user who connected changed their password; reconnect through Egnyte's consent screen"
        )),
        403 => match denial(&detail) {
            Denial::Scope => Error::forbidden(format!(
                "the access token lacks a scope needed for {what} ({detail}): allow Egnyte.audit and Egnyte.user for the application's key at developers.egnyte.com, then reconnect"
            )),
            Denial::Plan => Error::forbidden(format!(
                "this Egnyte domain's plan does not include audit reporting ({detail}): ask the account owner to add it, then Test now"
            )),
            Denial::Role | Denial::Unknown => Error::forbidden(format!(
                "Egnyte refused {what} ({detail}): the user who connected must be an administrator, or a power user allowed to run reports; reconnect as such a user"
            )),
        },
        // 429 on the audit stream (10/min, 100/hour); 409 on the token endpoint.
        409 | 429 => Error::rate_limited(
            response.retry_after_ms().unwrap_or(60_000),
            format!("Egnyte rate limit reached while {what} ({detail})"),
        ),
        500..=599 => Error::unavailable(format!(
            "Egnyte returned {} while {what} ({detail}); will retry",
            response.status
        )),
        _ => Error::internal(format!(
            "Egnyte returned {} while {what} ({detail})",
            response.status
        )),
    }
}

/// The audit cursor Ward stores for us.
#[derive(Debug, Clone, PartialEq, Eq)]
enum StreamCursor {
    /// No Egnyte cursor yet: (re)start the stream at this time.
    From(Timestamp),
    /// Continue at Egnyte's `nextCursor`. `newest` is the newest event time
    /// seen so far: where the stream restarts if Egnyte refuses the cursor.
    Next { newest: Timestamp, cursor: String },
}

/// Printable ASCII without spaces: base64 and base64url cursors (all Egnyte
/// sends) fit, and nothing that could break a JSON body or a log line.
fn cursor_text_ok(cursor: &str) -> bool {
    !cursor.is_empty()
        && cursor.len() <= MAX_CURSOR_LEN
        && cursor.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

impl StreamCursor {
    fn encode(&self) -> String {
        match self {
            StreamCursor::From(t) => format!("{CURSOR_PREFIX}from:{t}"),
            StreamCursor::Next { newest, cursor } => {
                format!("{CURSOR_PREFIX}next:{newest}:{cursor}")
            }
        }
    }

    fn parse(text: &str) -> Result<StreamCursor> {
        let bad = |why: &str| {
            let shown: String = text.chars().take(48).collect();
            Error::internal(format!(
                "stored audit cursor {shown:?} was not written by this connector ({why}); reset the instance's audit cursor so it reads the last 7 days again"
            ))
        };
        let rest = text
            .strip_prefix(CURSOR_PREFIX)
            .ok_or_else(|| bad("unknown prefix"))?;
        if let Some(t) = rest.strip_prefix("from:") {
            return t
                .parse::<Timestamp>()
                .map(StreamCursor::From)
                .map_err(|_| bad("unreadable time"));
        }
        let next = rest
            .strip_prefix("next:")
            .ok_or_else(|| bad("unknown kind"))?;
        let (newest, cursor) = next
            .split_once(':')
            .ok_or_else(|| bad("no Egnyte cursor"))?;
        let newest = newest
            .parse::<Timestamp>()
            .map_err(|_| bad("unreadable time"))?;
        if !cursor_text_ok(cursor) {
            return Err(bad(
                "the Egnyte cursor is empty, too long or has unexpected characters",
            ));
        }
        Ok(StreamCursor::Next {
            newest,
            cursor: cursor.to_string(),
        })
    }
}

/// `startDate` as Egnyte's SDK writes it: UTC to the second.
fn start_date(ms: Timestamp) -> String {
    format_rfc3339(ms - ms.rem_euclid(1000)).replace(".000Z", "Z")
}

/// The first call of a stream: from `from`, kept inside Egnyte's 7-day window.
fn stream_from(url: &str, from: Timestamp, now: Timestamp) -> Result<(Response, Timestamp)> {
    let floor = now - STREAM_WINDOW_MS + WINDOW_MARGIN_MS;
    let start = from.max(floor).min(now);
    let body = json!({ "startDate": start_date(start), "auditType": AUDIT_TYPES });
    Ok((post_json(url, &body)?, start))
}

#[derive(Deserialize)]
struct StreamPage<'a> {
    #[serde(rename = "nextCursor", default)]
    next_cursor: Option<String>,
    #[serde(default, borrow)]
    events: Option<Vec<&'a RawValue>>,
    #[serde(rename = "moreEvents", default)]
    more_events: bool,
}

/// A stable id for an event without one: SHA-256 over its canonical JSON.
fn event_id(value: &Value) -> String {
    let mut canonical = String::new();
    write_canonical(value, &mut canonical);
    let digest = Sha256::digest(canonical.as_bytes());
    let mut id = String::with_capacity(35);
    id.push_str("eg-");
    for b in digest.iter().take(16) {
        let _ = write!(id, "{b:02x}");
    }
    id
}

/// Keys sorted at every level, no whitespace, strings and numbers as
/// serde_json writes them: the same event always gives the same text,
/// whatever key order or spacing Egnyte used.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                if let Some(v) = map.get(key) {
                    write_canonical(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// A non-empty string field; Egnyte writes `"N/A"` for an absent path.
fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "N/A")
}

/// An id that Egnyte sends as a number in one place and a string in another.
fn id_text(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A boolean Egnyte sends as `true` or as `"true"`.
fn flag(v: &Value, key: &str) -> Option<bool> {
    match v.get(key)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// Splits Egnyte's `"Jack Smith ( jsmith@company.com )"` into name and
/// e-mail; a bare e-mail or name is kept as it is.
fn split_person(text: &str) -> (Option<String>, Option<String>) {
    let text = text.trim();
    if let Some(inner) = text.strip_suffix(')')
        && let Some(open) = inner.rfind('(')
    {
        let name = inner[..open].trim();
        let email = inner[open + 1..].trim();
        if email.contains('@') {
            return (
                (!name.is_empty()).then(|| name.to_string()),
                Some(email.to_string()),
            );
        }
    }
    if text.contains('@') && !text.contains(' ') {
        return (None, Some(text.to_string()));
    }
    ((!text.is_empty()).then(|| text.to_string()), None)
}

fn path_target(path: &str, action: &str) -> Target {
    let folder = action.to_ascii_lowercase().contains("folder") || path.ends_with('/');
    Target {
        id: None,
        kind: Some(if folder { "folder" } else { "file" }.to_string()),
        name: Some(path.to_string()),
    }
}

fn person_target(text: &str, kind: &str) -> Target {
    let (name, email) = split_person(text);
    Target {
        id: email.clone(),
        kind: Some(kind.to_string()),
        name: name.or(email),
    }
}

fn map_event(value: &Value, raw: &str, id: String) -> Result<Event> {
    // Epoch milliseconds, as in Egnyte's example; a quoted number or an ISO
    // date is accepted too rather than losing the event.
    let time = match value.get("date") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .ok()
            .or_else(|| parse_rfc3339(s.trim()).ok()),
        _ => None,
    }
    .ok_or_else(|| {
        Error::internal("Egnyte audit event has no readable `date` (epoch milliseconds)")
    })?;
    let source = text(value, "auditSource").unwrap_or("UNKNOWN_AUDIT");
    let action = text(value, "action").unwrap_or("unknown");
    let family = source
        .strip_suffix("_AUDIT")
        .unwrap_or(source)
        .to_ascii_lowercase();
    // File and login events name the user (with `userId`); user, group and
    // permission events name the `actor` who changed something.
    let (who, actor_id) = match text(value, "user") {
        Some(user) => (Some(user), id_text(value, "userId")),
        None => (text(value, "actor"), id_text(value, "actorId")),
    };
    let actor = match who {
        Some(who) => {
            let (name, email) = split_person(who);
            Actor {
                id: actor_id,
                kind: ActorKind::User,
                name,
                email,
            }
        }
        None => Actor {
            id: actor_id,
            kind: ActorKind::Unknown,
            name: None,
            email: None,
        },
    };
    let mut targets = Vec::new();
    for key in ["sourcePath", "targetPath", "folder"] {
        if let Some(path) = text(value, key) {
            targets.push(path_target(path, action));
        }
    }
    if let Some(subject) = text(value, "subject") {
        targets.push(person_target(subject, "user"));
    }
    if let Some(group) = text(value, "group") {
        targets.push(Target {
            id: None,
            kind: Some("group".to_string()),
            name: Some(group.to_string()),
        });
    }
    let info =
        format!("{action} {}", text(value, "actionInfo").unwrap_or_default()).to_ascii_lowercase();
    // An audit record says the action happened, unless it says it failed.
    let outcome = if ["fail", "denied", "invalid", "blocked"]
        .iter()
        .any(|w| info.contains(w))
    {
        Outcome::Failure
    } else {
        Outcome::Success
    };
    Ok(Event {
        id,
        time,
        action: format!("{family}.{action}"),
        actor,
        targets,
        ip: text(value, "ipAddress").map(str::to_string),
        // Egnyte names the client channel ("Web UI", "Desktop App"), not a
        // user-agent string; it is the closest thing it reports.
        user_agent: text(value, "access")
            .or_else(|| text(value, "source"))
            .map(str::to_string),
        outcome,
        raw: raw.to_string(),
    })
}

fn map_events(raw: &[&RawValue]) -> Result<Vec<Event>> {
    let mut seen: HashMap<String, u32> = HashMap::new();
    raw.iter()
        .map(|r| {
            let value: Value = serde_json::from_str(r.get()).map_err(|e| {
                Error::internal(format!("Egnyte audit event is not valid JSON: {e}"))
            })?;
            let base = event_id(&value);
            let count = seen.entry(base.clone()).or_insert(0);
            *count += 1;
            let id = if *count == 1 {
                base
            } else {
                format!("{base}-{count}")
            };
            map_event(&value, r.get(), id)
        })
        .collect()
}

fn parse_users_cursor(cursor: &str) -> Result<usize> {
    cursor
        .strip_prefix(USERS_PREFIX)
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| *n >= 1)
        .ok_or_else(|| {
            let shown: String = cursor.chars().take(48).collect();
            Error::internal(format!(
                "stored users cursor {shown:?} was not written by this connector; reset the instance's users cursor to list users from the start"
            ))
        })
}

fn map_user(raw: &RawValue) -> Result<User> {
    let v: Value = serde_json::from_str(raw.get())
        .map_err(|e| Error::internal(format!("Egnyte user is not valid JSON: {e}")))?;
    let id = id_text(&v, "id").ok_or_else(|| Error::internal("Egnyte user without an `id`"))?;
    let name = v.get("name").and_then(|n| {
        text(n, "formatted").map(str::to_string).or_else(|| {
            let parts: Vec<&str> = [text(n, "givenName"), text(n, "familyName")]
                .into_iter()
                .flatten()
                .collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        })
    });
    let status = match (flag(&v, "active"), flag(&v, "locked")) {
        (_, Some(true)) => Some("locked"),
        (Some(false), _) => Some("inactive"),
        (Some(true), _) => Some("active"),
        (None, _) => None,
    };
    Ok(User {
        id,
        email: text(&v, "email").map(str::to_string),
        login: text(&v, "userName").map(str::to_string),
        name,
        status: status.map(str::to_string),
        is_admin: text(&v, "userType") == Some("admin"),
        created: None,
        last_login: None,
        raw: raw.get().to_string(),
    })
}

/// What `GET /pubapi/v1/userinfo` returns.
#[derive(Deserialize)]
struct UserInfo {
    id: Value,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
}

/// The connected user's role, from `userType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Admin,
    Power,
    Standard,
    Unknown,
}

/// What the audit probe of "Test now" found.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AuditAccess {
    Readable,
    Throttled,
    NoPlan(String),
    RoleDenied(String),
    Unknown,
}

impl Connector for Egnyte {
    fn auth_url(config: &Config, redirect_uri: &str, state: &str) -> Result<String> {
        oauth::authorize_url(
            &format!("{}/puboauth/token", base(config)?),
            client_id(config)?,
            redirect_uri,
            SCOPES,
            state,
        )
    }

    fn exchange(config: &Config, grant: Grant) -> Result<Credentials> {
        let Grant::OauthCode(code) = grant else {
            return Err(Error::invalid_config(
                "the Egnyte connector authenticates with OAuth 2.0 only: connect through GET /elements/egnyte/oauth/url with the application's API key (apiKey) and secret (apiSecret)",
            ));
        };
        let client_id = client_id(config)?;
        let response = oauth::token_request(
            &format!("{}/puboauth/token", base(config)?),
            client_id,
            &code.code,
            &code.redirect_uri,
            code.code_verifier.as_deref(),
        )
        .send()?;
        match gateway(&response) {
            Some(Gateway::Inactive) => {
                return Err(Error::invalid_config(format!(
                    "Egnyte does not accept the API key {client_id:?} (Developer Inactive): check that the key (apiKey) at developers.egnyte.com is active and issued for this domain"
                )));
            }
            Some(_) => return Err(error_for(&response, "exchanging the authorization code")),
            None => {}
        }
        if response.status == 409 {
            return Err(error_for(&response, "exchanging the authorization code"));
        }
        // Egnyte answers a bad, used or expired code with a 400 whose body
        // it does not document; only a client or scope problem is the
        // operator's configuration.
        let oauth_error = serde_json::from_slice::<Value>(&response.body)
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string));
        if response.status == 400
            && !matches!(
                oauth_error.as_deref(),
                Some("invalid_client" | "invalid_scope")
            )
        {
            return Err(Error::unauthorized(format!(
                "Egnyte refused the authorization code ({}): codes are single-use and expire after two minutes; start the connection again",
                detail(&response)
            )));
        }
        oauth::parse_token_response(&response, SCOPES)
    }

    fn test(config: &Config) -> Result<TestReport> {
        let base = base(config)?;
        let mut checks = Vec::new();

        let me = get(&format!("{base}/pubapi/v1/userinfo"))?;
        if !me.is_success() {
            return Err(error_for(&me, "reading the connected user"));
        }
        let me: UserInfo = me.json()?;
        let user_id = match &me.id {
            Value::Number(n) => n.to_string(),
            Value::String(s) if !s.is_empty() => s.clone(),
            _ => return Err(Error::internal("Egnyte userinfo has no user id")),
        };
        let full_name = [me.first_name.as_deref(), me.last_name.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        let principal = me
            .username
            .clone()
            .or_else(|| (!full_name.is_empty()).then(|| full_name.clone()));
        let who = principal.clone().unwrap_or_else(|| user_id.clone());
        checks.push(Check::pass(
            "credentials-valid",
            format!("OAuth access token accepted (acts as {who})"),
        ));

        let mut missing = Vec::new();
        let user = get(&format!("{base}/pubapi/v2/users/{user_id}"))?;
        let role = if user.is_success() {
            let v: Value = user.json()?;
            match text(&v, "userType") {
                Some("admin") => Role::Admin,
                Some("power") => Role::Power,
                Some("standard") => Role::Standard,
                _ => Role::Unknown,
            }
        } else if user.status == 404 {
            // The directory does not list the token's user (e.g. a
            // service account): the audit probe decides.
            Role::Unknown
        } else if user.status == 403 && gateway(&user).is_none() {
            match denial(&detail(&user)) {
                Denial::Scope => {
                    missing.push("Egnyte.user");
                    Role::Unknown
                }
                // Only administrators and power users may read users.
                _ => Role::Standard,
            }
        } else {
            return Err(error_for(&user, "reading the connected user's role"));
        };

        let probe = post_json(
            &format!("{base}/pubapi/v2/audit/stream"),
            &json!({
                "startDate": start_date(now() - PROBE_WINDOW_MS),
                "auditType": ["FILE_AUDIT"],
            }),
        )?;
        let audit = if probe.is_success() {
            AuditAccess::Readable
        } else if probe.status == 429 {
            // Throttled past authorization: the plan and role are fine.
            AuditAccess::Throttled
        } else if probe.status == 403 && gateway(&probe).is_none() {
            let d = detail(&probe);
            match denial(&d) {
                Denial::Scope => {
                    missing.push("Egnyte.audit");
                    AuditAccess::Unknown
                }
                Denial::Plan => AuditAccess::NoPlan(d),
                Denial::Role => AuditAccess::RoleDenied(d),
                // Administrators may always run reports: a silent 403 for
                // one is the plan.
                Denial::Unknown if role == Role::Admin => AuditAccess::NoPlan(d),
                Denial::Unknown => AuditAccess::RoleDenied(d),
            }
        } else {
            return Err(error_for(&probe, "probing the Audit Reporting API"));
        };

        let needs = "Egnyte's audit reporting needs an administrator, or a power user allowed to run reports";
        let role_check = match (role, &audit) {
            (Role::Admin, _) => Some(Check::pass(
                "admin-role",
                format!("{who} is an Egnyte administrator"),
            )),
            (Role::Power, AuditAccess::Readable | AuditAccess::Throttled) => Some(Check::pass(
                "admin-role",
                format!("{who} is a power user allowed to run reports"),
            )),
            (Role::Power, AuditAccess::RoleDenied(d)) => Some(Check::fail(
                "admin-role",
                format!(
                    "{who} is a power user without permission to run reports (Egnyte said: {d}): an Egnyte administrator must allow this power user to run reports, or reconnect as an administrator; then Test now"
                ),
            )),
            (Role::Standard, _) => Some(Check::fail(
                "admin-role",
                format!("{who} is a standard user; {needs}: reconnect as such a user"),
            )),
            (Role::Unknown, AuditAccess::Readable | AuditAccess::Throttled) => Some(Check::pass(
                "admin-role",
                format!("{who} may run reports (the Audit Reporting API answered)"),
            )),
            (Role::Unknown, AuditAccess::RoleDenied(d)) => Some(Check::fail(
                "admin-role",
                format!(
                    "Egnyte refused {who} audit reports ({d}); {needs}: reconnect as such a user"
                ),
            )),
            // The plan or a scope is missing: the role cannot be judged yet.
            _ => None,
        };
        checks.extend(role_check);
        match &audit {
            AuditAccess::Readable => checks.push(Check::pass(
                "plan-includes-audit",
                "audit reporting is available (the Audit Reporting API v2 answered)",
            )),
            AuditAccess::Throttled => checks.push(Check::pass(
                "plan-includes-audit",
                "audit reporting is available (the Audit Reporting API v2 answered; rate limited right now)",
            )),
            AuditAccess::NoPlan(d) => checks.push(Check::fail(
                "plan-includes-audit",
                format!(
                    "this Egnyte domain's plan does not include audit reporting (the Audit Reporting API answered 403: {d}): ask the account owner to add audit reporting to the plan, then Test now"
                ),
            )),
            AuditAccess::RoleDenied(_) | AuditAccess::Unknown => {}
        }
        if missing.is_empty() {
            checks.push(Check::pass(
                "scope-present",
                "token carries Egnyte.audit and Egnyte.user",
            ));
        } else {
            checks.push(Check::fail(
                "scope-present",
                format!(
                    "the token lacks {}: allow it for the application's key at developers.egnyte.com and grant it on Egnyte's consent screen, then reconnect",
                    missing.join(" and ")
                ),
            ));
        }
        Ok(TestReport {
            checks,
            account_name: config.get("domain").map(|d| format!("{d}.egnyte.com")),
            principal,
        })
    }

    fn fetch_audit(config: &Config, since: Timestamp, cursor: Option<String>) -> Result<AuditPage> {
        let now = now();
        let url = format!("{}/pubapi/v2/audit/stream", base(config)?);
        let state = match cursor {
            Some(c) => StreamCursor::parse(&c)?,
            None => StreamCursor::From(since),
        };
        let (response, floor) = match &state {
            StreamCursor::From(from) => stream_from(&url, *from, now)?,
            StreamCursor::Next { newest, cursor } => {
                let response = post_json(&url, &json!({ "nextCursor": cursor }))?;
                if response.status == 400 && gateway(&response).is_none() {
                    // Egnyte refused the cursor (expired after a long pause,
                    // or invalidated): start again from the newest event we
                    // stored. Re-read events get the same ids, so the store
                    // keeps them once.
                    ward_sdk::log::warn(&format!(
                        "Egnyte refused the stored stream cursor ({}); restarting from the newest stored event",
                        detail(&response)
                    ));
                    stream_from(&url, *newest, now)?
                } else {
                    (response, *newest)
                }
            }
        };
        if !response.is_success() {
            return Err(error_for(&response, "reading the audit stream"));
        }
        let page: StreamPage<'_> = serde_json::from_slice(&response.body).map_err(|e| {
            Error::internal(format!(
                "Egnyte's audit stream answered with an unexpected body: {e}"
            ))
        })?;
        let raw = page.events.unwrap_or_default();
        let events = map_events(&raw)?;
        let newest = events.iter().map(|e| e.time).fold(floor, Timestamp::max);
        let next = match page.next_cursor {
            Some(cursor) if cursor_text_ok(&cursor) => StreamCursor::Next { newest, cursor },
            Some(_) => {
                return Err(Error::internal(
                    "Egnyte's audit stream returned a nextCursor that is empty, over 4096 characters or not printable ASCII",
                ));
            }
            // No cursor to continue from: the next call restarts from the
            // newest event (overlap is deduplicated by id).
            None => StreamCursor::From(newest),
        };
        Ok(AuditPage {
            // An empty page with moreEvents=true would make the host spin.
            more: page.more_events && !events.is_empty(),
            events,
            cursor: next.encode(),
        })
    }

    fn fetch_users(config: &Config, cursor: Option<String>) -> Result<UserPage> {
        let start = match cursor {
            Some(c) => parse_users_cursor(&c)?,
            None => 1,
        };
        let url = with_query(
            &format!("{}/pubapi/v2/users", base(config)?),
            &[
                ("startIndex", &start.to_string()),
                ("count", &USER_PAGE.to_string()),
            ],
        )?;
        let response = get(&url)?;
        if !response.is_success() {
            return Err(error_for(&response, "listing users"));
        }
        // `resources` in Egnyte's Python and JS SDKs, `Resources` in its .NET
        // fixtures: accept any case.
        let page: HashMap<String, &RawValue> =
            serde_json::from_slice(&response.body).map_err(|e| {
                Error::internal(format!(
                    "Egnyte's users listing answered with an unexpected body: {e}"
                ))
            })?;
        let field = |name: &str| {
            page.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
        };
        let raw: Vec<&RawValue> = match field("resources") {
            Some(r) if r.get() != "null" => serde_json::from_str(r.get()).map_err(|e| {
                Error::internal(format!("Egnyte's users `resources` is not a list: {e}"))
            })?,
            _ => Vec::new(),
        };
        let total = field("totalResults").and_then(|t| {
            let v: Value = serde_json::from_str(t.get()).ok()?;
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        });
        let users = raw
            .iter()
            .map(|r| map_user(r))
            .collect::<Result<Vec<_>>>()?;
        let next = start + raw.len();
        let more = !raw.is_empty()
            && match total {
                Some(total) => (next as u64) <= total,
                None => raw.len() >= USER_PAGE,
            };
        Ok(UserPage {
            users,
            cursor: more.then(|| format!("{USERS_PREFIX}{next}")),
            more,
        })
    }
}

ward_sdk::export_connector!(Egnyte);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    // Event shapes from Egnyte's Audit Reporting API v2 example.
    const FILE_EVENT: &str = r#"{"date":1638936585716,"sourcePath":"/Shared/Departments/Marketing/Branding/Logo.jpg","targetPath":"N/A","user":"Jack Smith ( jsmith@company.com )","userId":"101","action":"Preview","access":"Web UI","ipAddress":"173.226.89.189","actionInfo":"","auditSource":"FILE_AUDIT"}"#;
    const USER_EVENT: &str = r#"{"date":1638940605824,"actor":"Jennifer Watkins ( jwatkins@company.com )","subject":"Paul Chen ( pchen@company.com )","action":"Disable","actionInfo":"","source":"Web UI","auditSource":"USER_AUDIT"}"#;
    const GROUP_EVENT: &str = r#"{"date":1638942414189,"actor":"Jennifer Watkins ( jwatkins@company.com )","group":"Engineering","action":"Create","actionInfo":"","source":"Web UI","auditSource":"GROUP_AUDIT"}"#;

    fn raw(s: &str) -> Box<RawValue> {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn maps_file_user_and_group_events() {
        let r = [raw(FILE_EVENT), raw(USER_EVENT), raw(GROUP_EVENT)];
        let refs: Vec<&RawValue> = r.iter().map(|b| b.as_ref()).collect();
        let events = map_events(&refs).unwrap();
        let file = &events[0];
        assert_eq!(file.time, 1_638_936_585_716);
        assert_eq!(file.action, "file.Preview");
        assert_eq!(file.actor.id.as_deref(), Some("101"));
        assert_eq!(file.actor.name.as_deref(), Some("Jack Smith"));
        assert_eq!(file.actor.email.as_deref(), Some("jsmith@company.com"));
        assert_eq!(file.targets.len(), 1, "N/A target path is no target");
        assert_eq!(file.targets[0].kind.as_deref(), Some("file"));
        assert_eq!(file.ip.as_deref(), Some("173.226.89.189"));
        assert_eq!(file.user_agent.as_deref(), Some("Web UI"));
        assert!(matches!(file.outcome, Outcome::Success));
        assert_eq!(file.raw, FILE_EVENT);
        let user = &events[1];
        assert_eq!(user.action, "user.Disable");
        assert_eq!(user.actor.email.as_deref(), Some("jwatkins@company.com"));
        assert_eq!(user.targets[0].kind.as_deref(), Some("user"));
        assert_eq!(user.targets[0].id.as_deref(), Some("pchen@company.com"));
        assert_eq!(events[2].targets[0].name.as_deref(), Some("Engineering"));
        assert!(
            events
                .iter()
                .all(|e| e.id.starts_with("eg-") && e.id.len() == 35)
        );
    }

    #[test]
    fn ids_ignore_key_order_and_spacing_but_not_content() {
        let a: Value =
            serde_json::from_str(r#"{"date":1,"action":"Upload","user":"A ( a@x.com )"}"#).unwrap();
        let b: Value =
            serde_json::from_str(r#"{ "user": "A ( a@x.com )", "action": "Upload", "date": 1 }"#)
                .unwrap();
        let c: Value =
            serde_json::from_str(r#"{"date":2,"action":"Upload","user":"A ( a@x.com )"}"#).unwrap();
        assert_eq!(event_id(&a), event_id(&b));
        assert_ne!(event_id(&a), event_id(&c));
        // Identical copies within a page stay distinct.
        let r = [raw(FILE_EVENT), raw(FILE_EVENT)];
        let refs: Vec<&RawValue> = r.iter().map(|b| b.as_ref()).collect();
        let events = map_events(&refs).unwrap();
        assert_eq!(events[1].id, format!("{}-2", events[0].id));
    }

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        for c in [
            StreamCursor::From(1_700_000_000_000),
            StreamCursor::Next {
                newest: 5,
                cursor: "AAN_lwABAX1zZe9AAAAAAAAAAAAAAAAAAAAAAA".into(),
            },
            StreamCursor::Next {
                newest: 5,
                cursor: "QmlnVGFibGVLZXk=".into(),
            },
        ] {
            assert_eq!(StreamCursor::parse(&c.encode()).unwrap(), c);
        }
        for bad in [
            "",
            "https://evil.example/",
            "egnyte-v2:from:yesterday",
            "egnyte-v2:next:12",
            "egnyte-v2:next:12:",
            "egnyte-v2:next:x:abc",
            "egnyte-v2:next:1:has space",
            "egnyte-v2:other:1",
        ] {
            let e = StreamCursor::parse(bad).unwrap_err();
            assert!(
                matches!(&e, Error::Internal(m) if m.contains("reset")),
                "{bad}: {e:?}"
            );
        }
        assert_eq!(parse_users_cursor("users:101").unwrap(), 101);
        assert!(parse_users_cursor("users:0").is_err());
        assert!(parse_users_cursor("101").is_err());
    }

    #[test]
    fn dates_in_any_reasonable_form() {
        for date in [
            "1638936585716",
            "\"1638936585716\"",
            "\"2021-12-08T04:09:45.716Z\"",
        ] {
            let v: Value =
                serde_json::from_str(&format!(r#"{{"date":{date},"action":"Login"}}"#)).unwrap();
            assert_eq!(
                map_event(&v, "{}", "x".into()).unwrap().time,
                1_638_936_585_716
            );
        }
        let v: Value = serde_json::from_str(r#"{"date":"yesterday"}"#).unwrap();
        assert!(matches!(
            map_event(&v, "{}", "x".into()),
            Err(Error::Internal(_))
        ));
    }

    #[test]
    fn people_and_flags() {
        assert_eq!(
            split_person("Jack Smith ( jsmith@company.com )"),
            (Some("Jack Smith".into()), Some("jsmith@company.com".into()))
        );
        assert_eq!(split_person("a@b.com"), (None, Some("a@b.com".into())));
        assert_eq!(
            split_person("Engineering"),
            (Some("Engineering".into()), None)
        );
        let v: Value = serde_json::from_str(r#"{"a":"true","b":false,"c":"x"}"#).unwrap();
        assert_eq!(flag(&v, "a"), Some(true));
        assert_eq!(flag(&v, "b"), Some(false));
        assert_eq!(flag(&v, "c"), None);
    }

    #[test]
    fn users_from_either_fixture_shape() {
        // Numbers and booleans (single-user example) or strings (list example).
        let one = raw(
            r#"{"id":12824215693,"userName":"mik","email":"mik@egnyte.com","name":{"formatted":"Michael Caine","familyName":"Caine","givenName":"Michael"},"active":true,"locked":false,"userType":"power"}"#,
        );
        let u = map_user(&one).unwrap();
        assert_eq!(u.id, "12824215693");
        assert_eq!(u.name.as_deref(), Some("Michael Caine"));
        assert_eq!(u.status.as_deref(), Some("active"));
        assert!(!u.is_admin);
        let two = raw(
            r#"{"id":"12345678","userName":"jmiller","email":"john.miller@example.com","name":{"familyName":"Miller","givenName":"John"},"active":"true","locked":"false","userType":"admin"}"#,
        );
        let u = map_user(&two).unwrap();
        assert_eq!(u.id, "12345678");
        assert_eq!(u.name.as_deref(), Some("John Miller"));
        assert_eq!(u.login.as_deref(), Some("jmiller"));
        assert!(u.is_admin);
    }

    #[test]
    fn errors_are_classified() {
        let resp = |status: u16, headers: Vec<(&str, &str)>, body: &str| Response {
            status,
            headers: headers
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        };
        let qps = resp(
            403,
            vec![("x-mashery-error-code", "ERR_403_DEVELOPER_OVER_QPS")],
            "<h1>Developer Over Qps</h1>",
        );
        match error_for(&qps, "x") {
            Error::RateLimited(r) => {
                assert_eq!(r.retry_after_ms, 1000);
                assert!(r.message.contains("Developer Over Qps"), "{}", r.message);
            }
            e => panic!("{e:?}"),
        }
        let rate = resp(
            403,
            vec![
                ("x-mashery-error-code", "ERR_403_DEVELOPER_OVER_RATE"),
                ("retry-after", "20"),
            ],
            "<h1>Developer Over Rate</h1>",
        );
        assert!(
            matches!(error_for(&rate, "x"), Error::RateLimited(r) if r.retry_after_ms == 20_000)
        );
        let audit = resp(
            429,
            vec![("retry-after", "7")],
            "<h1>Developer Over AuditV2 Rate Limit</h1>",
        );
        assert!(
            matches!(error_for(&audit, "x"), Error::RateLimited(r) if r.retry_after_ms == 7_000)
        );
        let inactive = resp(
            403,
            vec![("x-mashery-error-code", "ERR_403_DEVELOPER_INACTIVE")],
            "<h1>Developer Inactive</h1>",
        );
        assert!(matches!(error_for(&inactive, "x"), Error::Unauthorized(_)));
        let plan = resp(
            403,
            vec![],
            r#"{"errorMessage":"Audit Reporting is not available for your plan"}"#,
        );
        assert!(matches!(error_for(&plan, "x"), Error::Forbidden(m) if m.contains("plan")));
        let users = resp(
            404,
            vec![],
            r#"{"Errors":[{"description":"User 12345678 not found.","code":"404"}]}"#,
        );
        assert!(
            matches!(error_for(&users, "x"), Error::Internal(m) if m.contains("User 12345678 not found."))
        );
        assert!(
            matches!(error_for(&resp(401, vec![], ""), "x"), Error::Unauthorized(m) if m.contains("reconnect"))
        );
        assert!(matches!(
            error_for(&resp(502, vec![], "bad gateway"), "x"),
            Error::Unavailable(_)
        ));
    }

    #[test]
    fn auth_url_and_start_date() {
        let config = Config::from_pairs([("domain", "acme"), ("client_id", "k3y")]);
        let url = Egnyte::auth_url(&config, "https://ward.local/cb", "s").unwrap();
        assert!(url.starts_with("https://acme.egnyte.com/puboauth/token?client_id=k3y&"));
        assert!(url.contains("response_type=code"));
        assert!(url.contains("scope=Egnyte.audit+Egnyte.user"));
        assert_eq!(start_date(1_638_936_585_716), "2021-12-08T04:09:45Z");
    }
}
