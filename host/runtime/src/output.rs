//! Checks on what a plugin returns: size limits, per-field caps, plausible
//! timestamps, and redaction of stored secret values from every string that
//! leaves the sandbox.
//!
//! Every WIT record is destructured exhaustively (no `..`): a field added
//! to the contract does not compile until it is sized, capped and redacted
//! here.

use ward_manifest::Limits;

use crate::Out;
use crate::caps::secrets::Redactor;
use crate::types::{
    Actor, AuditPage, Check, Credentials, Event, PluginError, RateLimit, Secret, Target,
    TestReport, User, UserPage,
};

/// Longest error message, check name or check message, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024;
/// Longest cursor, in bytes.
pub const MAX_CURSOR_BYTES: usize = 64 * 1024;
/// Longest provider event id, in bytes.
pub const MAX_EVENT_ID_BYTES: usize = 512;
/// Earliest event time accepted: 1990-01-01T00:00:00Z, in ms.
pub const MIN_EVENT_TIME_MS: i64 = 631_152_000_000;
/// How far in the future an event time may be: one day, in ms.
pub const MAX_EVENT_FUTURE_MS: i64 = 86_400_000;

/// Why a result is refused: too large (a cap) or implausible.
#[derive(Debug)]
pub(crate) enum Refused {
    TooLarge(String),
    Invalid(String),
}

fn opt_len(s: &Option<String>) -> usize {
    s.as_ref().map_or(0, String::len)
}

/// `field` is only formatted when the cap is exceeded: per-event names
/// (`format_args!("event {i} id")`) cost nothing on the way through.
fn cap(field: impl std::fmt::Display, value: &str, max: usize) -> Result<(), Refused> {
    if value.len() > max {
        return Err(Refused::TooLarge(format!(
            "{field} is {} bytes (cap {max})",
            value.len()
        )));
    }
    Ok(())
}

fn actor_len(a: &Actor) -> usize {
    let Actor {
        id,
        kind: _,
        name,
        email,
    } = a;
    opt_len(id) + opt_len(name) + opt_len(email)
}

fn target_len(t: &Target) -> usize {
    let Target { id, kind, name } = t;
    opt_len(id) + opt_len(kind) + opt_len(name)
}

/// Size of an event, after checking its id cap and time.
fn event_len(i: usize, e: &Event, now_ms: i64) -> Result<usize, Refused> {
    let Event {
        id,
        time,
        action,
        actor,
        targets,
        ip,
        user_agent,
        outcome: _,
        raw,
    } = e;
    cap(format_args!("event {i} id"), id, MAX_EVENT_ID_BYTES)?;
    if *time < MIN_EVENT_TIME_MS || *time > now_ms.saturating_add(MAX_EVENT_FUTURE_MS) {
        return Err(Refused::Invalid(format!(
            "event {i} (id {}) has time {time} ms, outside [1990-01-01, now + 1 day]; the connector must send milliseconds since the Unix epoch",
            truncated(id)
        )));
    }
    Ok(id.len()
        + action.len()
        + actor_len(actor)
        + targets.iter().map(target_len).sum::<usize>()
        + opt_len(ip)
        + opt_len(user_agent)
        + raw.len())
}

/// A short, printable prefix of plugin text for an error message.
fn truncated(text: &str) -> String {
    text.chars()
        .take(64)
        .collect::<String>()
        .escape_debug()
        .to_string()
}

fn user_len(u: &User) -> usize {
    let User {
        id,
        email,
        login,
        name,
        status,
        is_admin: _,
        created: _,
        last_login: _,
        raw,
    } = u;
    id.len() + opt_len(email) + opt_len(login) + opt_len(name) + opt_len(status) + raw.len()
}

fn check_len(i: usize, c: &Check) -> Result<usize, Refused> {
    let Check {
        name,
        ok: _,
        message,
    } = c;
    cap(format_args!("check {i} name"), name, MAX_MESSAGE_BYTES)?;
    cap(
        format_args!("check {i} message"),
        message,
        MAX_MESSAGE_BYTES,
    )?;
    Ok(name.len() + message.len())
}

/// Enforces `page_items`, `output_bytes`, the per-field caps and the event
/// time window. `now_ms` is the host's clock.
pub(crate) fn check(out: &Out, limits: Limits, now_ms: i64) -> Result<(), Refused> {
    let (items, bytes) = match out {
        Out::Url(u) => (0, u.len()),
        Out::Credentials(Credentials {
            secrets,
            expires_at: _,
            scopes,
            principal,
        }) => (
            secrets.len(),
            secrets
                .iter()
                .map(|Secret { name, value }| name.len() + value.len())
                .sum::<usize>()
                + scopes.iter().map(String::len).sum::<usize>()
                + opt_len(principal),
        ),
        Out::Report(TestReport {
            checks,
            account_name,
            principal,
        }) => {
            let mut bytes = opt_len(account_name) + opt_len(principal);
            for (i, c) in checks.iter().enumerate() {
                bytes += check_len(i, c)?;
            }
            (checks.len(), bytes)
        }
        Out::Audit(AuditPage {
            events,
            cursor,
            more: _,
        }) => {
            cap("cursor", cursor, MAX_CURSOR_BYTES)?;
            let mut bytes = cursor.len();
            for (i, e) in events.iter().enumerate() {
                bytes += event_len(i, e, now_ms)?;
            }
            (events.len(), bytes)
        }
        Out::Users(UserPage {
            users,
            cursor,
            more: _,
        }) => {
            if let Some(cursor) = cursor {
                cap("cursor", cursor, MAX_CURSOR_BYTES)?;
            }
            (
                users.len(),
                opt_len(cursor) + users.iter().map(user_len).sum::<usize>(),
            )
        }
    };
    if items > limits.page_items as usize {
        return Err(Refused::TooLarge(format!(
            "{items} items in one page (limit {})",
            limits.page_items
        )));
    }
    if bytes as u64 > limits.output_bytes {
        return Err(Refused::TooLarge(format!(
            "{bytes} bytes in one result (limit {})",
            limits.output_bytes
        )));
    }
    Ok(())
}

/// Enforces the message cap on a contract error.
pub(crate) fn check_error(e: &PluginError) -> Result<(), Refused> {
    cap("error message", error_message(e), MAX_MESSAGE_BYTES)
}

fn error_message(e: &PluginError) -> &str {
    match e {
        PluginError::Unauthorized(m)
        | PluginError::Forbidden(m)
        | PluginError::InvalidConfig(m)
        | PluginError::Unavailable(m)
        | PluginError::Internal(m) => m,
        PluginError::RateLimited(RateLimit {
            retry_after_ms: _,
            message,
        }) => message,
    }
}

fn actor(a: &mut Actor, r: &Redactor) -> usize {
    let Actor {
        id,
        kind: _,
        name,
        email,
    } = a;
    r.redact_opt(id) + r.redact_opt(name) + r.redact_opt(email)
}

fn event(e: &mut Event, r: &Redactor) -> usize {
    let Event {
        id,
        time: _,
        action,
        actor: who,
        targets,
        ip,
        user_agent,
        outcome: _,
        raw,
    } = e;
    let mut n = r.redact(id) + r.redact(action) + actor(who, r);
    for Target { id, kind, name } in targets {
        n += r.redact_opt(id) + r.redact_opt(kind) + r.redact_opt(name);
    }
    n + r.redact_opt(ip) + r.redact_opt(user_agent) + r.redact(raw)
}

fn user(u: &mut User, r: &Redactor) -> usize {
    let User {
        id,
        email,
        login,
        name,
        status,
        is_admin: _,
        created: _,
        last_login: _,
        raw,
    } = u;
    r.redact(id)
        + r.redact_opt(email)
        + r.redact_opt(login)
        + r.redact_opt(name)
        + r.redact_opt(status)
        + r.redact(raw)
}

/// Redacts every string of a result except the secret values `exchange`
/// legitimately returns.
pub(crate) fn redact(out: &mut Out, r: &Redactor) -> usize {
    match out {
        Out::Url(u) => r.redact(u),
        Out::Credentials(Credentials {
            secrets,
            expires_at: _,
            scopes,
            principal,
        }) => {
            let mut n = r.redact_opt(principal);
            for scope in scopes {
                n += r.redact(scope);
            }
            // The values are the credentials being stored; their names are
            // plugin text like any other.
            for Secret { name, value: _ } in secrets {
                n += r.redact(name);
            }
            n
        }
        Out::Report(TestReport {
            checks,
            account_name,
            principal,
        }) => {
            let mut n = r.redact_opt(account_name) + r.redact_opt(principal);
            for Check {
                name,
                ok: _,
                message,
            } in checks
            {
                n += r.redact(name) + r.redact(message);
            }
            n
        }
        Out::Audit(AuditPage {
            events,
            cursor,
            more: _,
        }) => {
            let mut n = r.redact(cursor);
            for e in events {
                n += event(e, r);
            }
            n
        }
        Out::Users(UserPage {
            users,
            cursor,
            more: _,
        }) => {
            let mut n = r.redact_opt(cursor);
            for u in users {
                n += user(u, r);
            }
            n
        }
    }
}

/// Redacts the message of a contract error.
pub(crate) fn redact_error(e: &mut PluginError, r: &Redactor) -> usize {
    match e {
        PluginError::Unauthorized(m)
        | PluginError::Forbidden(m)
        | PluginError::InvalidConfig(m)
        | PluginError::Unavailable(m)
        | PluginError::Internal(m) => r.redact(m),
        PluginError::RateLimited(RateLimit {
            retry_after_ms: _,
            message,
        }) => r.redact(message),
    }
}
