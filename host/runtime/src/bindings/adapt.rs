//! 0.1 ⇄ internal model (the 0.2 types). The one place an old contract
//! version's values are converted. Every record is destructured without
//! `..`, so a field added to either version does not compile until it is
//! handled here.

use super::v0_1::ward::connector::types as old;
use super::v0_2::exports::ward::connector::exchange as new_exchange;
use super::v0_2::ward::connector::types as new;

/// The reserved config entry 0.1 plugins read their auth kind from.
pub(crate) const AUTH_CONFIG_ENTRY: &str = "ward.auth";

/// The 0.1 configuration of a call: the fields plus, when the instance has
/// credentials, the reserved `ward.auth` entry.
pub(crate) fn config(instance: &new::Instance) -> Vec<old::ConfigEntry> {
    let new::Instance { config, auth } = instance;
    let mut out: Vec<old::ConfigEntry> = config
        .iter()
        .map(|new::ConfigEntry { name, value }| old::ConfigEntry {
            name: name.clone(),
            value: value.clone(),
        })
        .collect();
    if let Some(kind) = auth {
        out.push(old::ConfigEntry {
            name: AUTH_CONFIG_ENTRY.to_string(),
            value: auth_kind_name(*kind).to_string(),
        });
    }
    out
}

/// The manifest's name of an auth kind (`api-token`, `oauth2`, `basic`).
pub(crate) fn auth_kind_name(kind: new::AuthKind) -> &'static str {
    match kind {
        new::AuthKind::ApiToken => "api-token",
        new::AuthKind::Oauth2 => "oauth2",
        new::AuthKind::Basic => "basic",
    }
}

/// The grant as 0.1's `exchange` takes it.
pub(crate) fn grant(grant: &new_exchange::Grant) -> old::Grant {
    match grant {
        new_exchange::Grant::OauthCode(new_exchange::OauthCode {
            code,
            redirect_uri,
            code_verifier,
        }) => old::Grant::OauthCode(old::OauthCode {
            code: code.clone(),
            redirect_uri: redirect_uri.clone(),
            code_verifier: code_verifier.clone(),
        }),
        new_exchange::Grant::ApiToken(token) => old::Grant::ApiToken(token.clone()),
        new_exchange::Grant::Basic(new_exchange::BasicCredentials { username, password }) => {
            old::Grant::Basic(old::BasicCredentials {
                username: username.clone(),
                password: password.clone(),
            })
        }
    }
}

pub(crate) fn credentials(c: old::Credentials) -> new_exchange::Credentials {
    let old::Credentials {
        secrets,
        expires_at,
        scopes,
        principal,
    } = c;
    new_exchange::Credentials {
        secrets: secrets
            .into_iter()
            .map(|old::Secret { name, value }| new_exchange::Secret { name, value })
            .collect(),
        expires_at,
        scopes,
        principal,
    }
}

pub(crate) fn test_report(r: old::TestReport) -> new::TestReport {
    let old::TestReport {
        checks,
        account_name,
        principal,
    } = r;
    new::TestReport {
        checks: checks
            .into_iter()
            .map(|old::Check { name, ok, message }| new::Check { name, ok, message })
            .collect(),
        account_name,
        principal,
    }
}

fn actor_kind(k: old::ActorKind) -> new::ActorKind {
    match k {
        old::ActorKind::User => new::ActorKind::User,
        old::ActorKind::Service => new::ActorKind::Service,
        old::ActorKind::System => new::ActorKind::System,
        old::ActorKind::Unknown => new::ActorKind::Unknown,
    }
}

fn outcome(o: old::Outcome) -> new::Outcome {
    match o {
        old::Outcome::Success => new::Outcome::Success,
        old::Outcome::Failure => new::Outcome::Failure,
        old::Outcome::Unknown => new::Outcome::Unknown,
    }
}

fn event(e: old::Event) -> new::Event {
    let old::Event {
        id,
        time,
        action,
        actor:
            old::Actor {
                id: actor_id,
                kind,
                name,
                email,
            },
        targets,
        ip,
        user_agent,
        outcome: result,
        raw,
    } = e;
    new::Event {
        id,
        time,
        action,
        actor: new::Actor {
            id: actor_id,
            kind: actor_kind(kind),
            name,
            email,
        },
        targets: targets
            .into_iter()
            .map(|old::Target { id, kind, name }| new::Target { id, kind, name })
            .collect(),
        ip,
        user_agent,
        outcome: outcome(result),
        raw,
    }
}

pub(crate) fn audit_page(p: old::AuditPage) -> new::AuditPage {
    let old::AuditPage {
        events,
        cursor,
        more,
    } = p;
    new::AuditPage {
        events: events.into_iter().map(event).collect(),
        cursor,
        more,
    }
}

fn user(u: old::User) -> new::User {
    let old::User {
        id,
        email,
        login,
        name,
        status,
        is_admin,
        created,
        last_login,
        raw,
    } = u;
    new::User {
        id,
        email,
        login,
        name,
        status,
        is_admin,
        created,
        last_login,
        raw,
    }
}

pub(crate) fn user_page(p: old::UserPage) -> new::UserPage {
    let old::UserPage {
        users,
        cursor,
        more,
    } = p;
    new::UserPage {
        users: users.into_iter().map(user).collect(),
        cursor,
        more,
    }
}

pub(crate) fn error(e: old::Error) -> new::Error {
    match e {
        old::Error::Unauthorized(m) => new::Error::Unauthorized(m),
        old::Error::Forbidden(m) => new::Error::Forbidden(m),
        old::Error::RateLimited(old::RateLimit {
            retry_after_ms,
            message,
        }) => new::Error::RateLimited(new::RateLimit {
            retry_after_ms,
            message,
        }),
        old::Error::InvalidConfig(m) => new::Error::InvalidConfig(m),
        old::Error::Unavailable(m) => new::Error::Unavailable(m),
        old::Error::Internal(m) => new::Error::Internal(m),
    }
}

/// A 0.1 call's result in the internal model.
pub(crate) fn result<T, U>(
    r: Result<T, old::Error>,
    convert: impl FnOnce(T) -> U,
) -> Result<U, new::Error> {
    r.map(convert).map_err(error)
}
