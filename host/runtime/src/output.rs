//! Checks on what a plugin returns: size limits, and redaction of stored
//! secret values from every string that leaves the sandbox.

use ward_manifest::Limits;

use crate::Out;
use crate::caps::secrets::Redactor;
use crate::types::{Actor, Event, PluginError, User};

fn opt_len(s: &Option<String>) -> usize {
    s.as_ref().map_or(0, String::len)
}

fn actor_len(a: &Actor) -> usize {
    opt_len(&a.id) + opt_len(&a.name) + opt_len(&a.email)
}

fn event_len(e: &Event) -> usize {
    e.id.len()
        + e.action.len()
        + actor_len(&e.actor)
        + e.targets
            .iter()
            .map(|t| opt_len(&t.id) + opt_len(&t.kind) + opt_len(&t.name))
            .sum::<usize>()
        + opt_len(&e.ip)
        + opt_len(&e.user_agent)
        + e.raw.len()
}

fn user_len(u: &User) -> usize {
    u.id.len()
        + opt_len(&u.email)
        + opt_len(&u.login)
        + opt_len(&u.name)
        + opt_len(&u.status)
        + u.raw.len()
}

/// Enforces `page_items` and `output_bytes`.
pub(crate) fn check(out: &Out, limits: Limits) -> Result<(), String> {
    let (items, bytes) = match out {
        Out::Url(u) => (0, u.len()),
        Out::Credentials(c) => (
            c.secrets.len(),
            c.secrets.iter().map(|s| s.name.len() + s.value.len()).sum(),
        ),
        Out::Report(r) => (
            r.checks.len(),
            r.checks
                .iter()
                .map(|c| c.name.len() + c.message.len())
                .sum(),
        ),
        Out::Audit(p) => (
            p.events.len(),
            p.cursor.len() + p.events.iter().map(event_len).sum::<usize>(),
        ),
        Out::Users(p) => (
            p.users.len(),
            opt_len(&p.cursor) + p.users.iter().map(user_len).sum::<usize>(),
        ),
    };
    if items > limits.page_items as usize {
        return Err(format!(
            "{items} items in one page (limit {})",
            limits.page_items
        ));
    }
    if bytes as u64 > limits.output_bytes {
        return Err(format!(
            "{bytes} bytes in one result (limit {})",
            limits.output_bytes
        ));
    }
    Ok(())
}

fn actor(a: &mut Actor, r: &Redactor) -> usize {
    r.redact_opt(&mut a.id) + r.redact_opt(&mut a.name) + r.redact_opt(&mut a.email)
}

fn event(e: &mut Event, r: &Redactor) -> usize {
    let mut n = r.redact(&mut e.id) + r.redact(&mut e.action) + actor(&mut e.actor, r);
    for t in &mut e.targets {
        n += r.redact_opt(&mut t.id) + r.redact_opt(&mut t.kind) + r.redact_opt(&mut t.name);
    }
    n + r.redact_opt(&mut e.ip) + r.redact_opt(&mut e.user_agent) + r.redact(&mut e.raw)
}

fn user(u: &mut User, r: &Redactor) -> usize {
    r.redact(&mut u.id)
        + r.redact_opt(&mut u.email)
        + r.redact_opt(&mut u.login)
        + r.redact_opt(&mut u.name)
        + r.redact_opt(&mut u.status)
        + r.redact(&mut u.raw)
}

/// Redacts every string of a result except the credentials `exchange`
/// legitimately returns.
pub(crate) fn redact(out: &mut Out, r: &Redactor) -> usize {
    match out {
        Out::Url(u) => r.redact(u),
        Out::Credentials(c) => r.redact_opt(&mut c.principal),
        Out::Report(rep) => {
            let mut n = r.redact_opt(&mut rep.account_name) + r.redact_opt(&mut rep.principal);
            for c in &mut rep.checks {
                n += r.redact(&mut c.message);
            }
            n
        }
        Out::Audit(p) => {
            let mut n = r.redact(&mut p.cursor);
            for e in &mut p.events {
                n += event(e, r);
            }
            n
        }
        Out::Users(p) => {
            let mut n = r.redact_opt(&mut p.cursor);
            for u in &mut p.users {
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
        PluginError::RateLimited(rl) => r.redact(&mut rl.message),
    }
}
