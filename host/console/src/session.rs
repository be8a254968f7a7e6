//! Who may use the console: operator sessions behind an `HttpOnly;
//! SameSite=Strict` cookie (`Secure` when the daemon is reached over
//! HTTPS), a CSRF token on every form, one-time sign-in links, expiry.
//!
//! A session starts from the operator's API secrets (the same `User` and
//! `Organization` secrets the REST API takes) or from a one-time link the
//! daemon prints at start-up. Nothing else opens it: the `Authorization`
//! header (and so an instance's `Element` token) is never looked at.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use subtle::ConstantTimeEq;
use ward_daemon::consent::{random_token, sha256_hex};
use ward_daemon::instances::now_ms;

use crate::Console;

/// The session cookie.
pub const SESSION_COOKIE: &str = "ward_console";
/// The cookie that carries the sign-in form's CSRF token before a session exists.
pub const SIGN_IN_COOKIE: &str = "ward_sign_in";
/// The form field carrying the CSRF token.
pub const CSRF_FIELD: &str = "csrf";
/// How long a session lasts without signing in again.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
/// How long a one-time sign-in link stays usable.
pub const LINK_TTL: Duration = Duration::from_secs(15 * 60);
/// Largest form body the console reads.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// A signed-in operator's session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The token every form of this session must carry.
    pub csrf: String,
    expires_ms: i64,
}

#[derive(Default)]
struct Inner {
    /// By SHA-256 of the cookie value.
    sessions: HashMap<String, Session>,
    /// One-time links: SHA-256 of the token → expiry.
    links: HashMap<String, i64>,
}

/// The console's sessions and one-time links (in memory: a restart signs
/// everyone out).
pub struct Sessions {
    inner: Mutex<Inner>,
    ttl: Duration,
    secure: bool,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Constant-time equality of two tokens.
pub fn same(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

impl Sessions {
    /// Sessions lasting `ttl`; cookies are `Secure` when `secure`.
    pub fn new(ttl: Duration, secure: bool) -> Sessions {
        Sessions {
            inner: Mutex::new(Inner::default()),
            ttl,
            secure,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A new one-time sign-in token, usable once within [`LINK_TTL`].
    pub fn issue_link(&self) -> String {
        let token = random_token();
        let expires = now_ms().saturating_add(ms(LINK_TTL));
        self.lock().links.insert(sha256_hex(&token), expires);
        token
    }

    /// Uses up a one-time token; whether it was valid.
    pub fn redeem_link(&self, token: &str) -> bool {
        let now = now_ms();
        let mut inner = self.lock();
        inner.links.retain(|_, exp| *exp > now);
        inner.links.remove(&sha256_hex(token)).is_some()
    }

    /// Starts a session; returns the `Set-Cookie` value.
    pub fn start(&self) -> String {
        let id = random_token();
        let now = now_ms();
        let session = Session {
            csrf: random_token(),
            expires_ms: now.saturating_add(ms(self.ttl)),
        };
        let mut inner = self.lock();
        inner.sessions.retain(|_, s| s.expires_ms > now);
        inner.sessions.insert(sha256_hex(&id), session);
        self.cookie(SESSION_COOKIE, &id, self.ttl.as_secs())
    }

    /// The live session the request's cookie names, if any.
    pub fn find(&self, headers: &HeaderMap) -> Option<Session> {
        let id = cookie(headers, SESSION_COOKIE)?;
        let now = now_ms();
        let mut inner = self.lock();
        let key = sha256_hex(&id);
        match inner.sessions.get(&key) {
            Some(s) if s.expires_ms > now => Some(s.clone()),
            Some(_) => {
                inner.sessions.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Ends the request's session; returns the `Set-Cookie` value that
    /// clears the cookie.
    pub fn end(&self, headers: &HeaderMap) -> String {
        if let Some(id) = cookie(headers, SESSION_COOKIE) {
            self.lock().sessions.remove(&sha256_hex(&id));
        }
        self.cookie(SESSION_COOKIE, "", 0)
    }

    /// A `Set-Cookie` value for the console's path.
    pub fn cookie(&self, name: &str, value: &str, max_age_secs: u64) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!("{name}={value}; Path=/; Max-Age={max_age_secs}; HttpOnly; SameSite=Strict{secure}")
    }
}

/// The value of a cookie in the request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty())
}

/// The value of one field of a URL-encoded form.
pub fn form_field(body: &[u8], name: &str) -> Option<String> {
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn refused(message: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message.to_owned(),
    )
        .into_response()
}

/// Whether the form's CSRF token is the expected one.
pub fn csrf_ok(body: &[u8], expected: &str) -> bool {
    form_field(body, CSRF_FIELD).is_some_and(|given| same(&given, expected))
}

/// The middleware in front of every console page but sign-in and assets:
/// without a live session a page redirects to sign-in and anything else is
/// refused; a request that changes something must carry the session's
/// CSRF token in its form.
pub(crate) async fn require(State(console): State<Console>, req: Request, next: Next) -> Response {
    let Some(session) = console.sessions.find(req.headers()) else {
        if req.method() == Method::GET {
            return Redirect::to(crate::routes::SIGN_IN).into_response();
        }
        return refused("no console session: sign in at /console/sign-in");
    };
    let mut req = if req.method() == Method::GET || req.method() == Method::HEAD {
        req
    } else {
        let (parts, body) = req.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
            return refused("the form is too large");
        };
        if !csrf_ok(&bytes, &session.csrf) {
            return refused(
                "the form's CSRF token is missing or stale: reload the page and submit it again",
            );
        }
        Request::from_parts(parts, Body::from(bytes))
    };
    req.extensions_mut().insert(session);
    next.run(req).await
}
