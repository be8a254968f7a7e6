//! Egnyte's OAuth 2.0 endpoint: one URL, `/puboauth/token`, serves the
//! consent page (GET with `response_type=code`) and the token endpoint
//! (POST, form-urlencoded), plus Bearer checks for the API.
//!
//! Modelled on Egnyte's public-application flow: the API key is the
//! client id, the key's shared secret the client secret; codes are
//! single-use and expire after 120 s; tokens are long-lived by default
//! (`expires_in: -1`, no refresh token, as Egnyte's stored docs describe)
//! or, when a test sets a lifetime, expire and come with a refresh token
//! (the newer 30-day behaviour). The API gateway (Mashery) answers an
//! unknown key or token with 403 `X-Mashery-Error-Code:
//! ERR_403_DEVELOPER_INACTIVE`; a token that was revoked gets 401.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use axum::http::{StatusCode, header};
use axum::response::Response;

use super::api::{gateway_error, json_response};
use crate::authz::{Registration, back_with_code, back_with_error};
use crate::server::form_params as params;
use crate::synth::now_ms;

/// How long an authorization code stays valid.
const CODE_TTL_MS: i64 = 120_000;
/// Scopes Egnyte documents.
pub(crate) const KNOWN_SCOPES: &[&str] = &[
    "Egnyte.filesystem",
    "Egnyte.link",
    "Egnyte.user",
    "Egnyte.group",
    "Egnyte.permission",
    "Egnyte.audit",
    "Egnyte.bookmark",
    "Egnyte.launchwebsession",
    "Egnyte.salesforce",
];

#[derive(Debug)]
struct Code {
    redirect_uri: String,
    scopes: Vec<String>,
    issued_ms: i64,
}

#[derive(Debug)]
struct Access {
    scopes: Vec<String>,
    expires_ms: Option<i64>,
}

#[derive(Debug)]
struct Inner {
    reg: Registration,
    codes: HashMap<String, Code>,
    access: HashMap<String, Access>,
    refresh: HashMap<String, Vec<String>>,
    revoked: HashSet<String>,
    /// Lifetime of new access tokens; `None` for Egnyte's long-lived ones.
    lifetime_ms: Option<i64>,
    /// Token requests still to be throttled (409), and the Retry-After.
    throttled: Option<(usize, u64)>,
    /// Token requests still to fail at the gateway, and the status (5xx).
    failing: Option<(usize, u16)>,
}

/// The token endpoint's state.
#[derive(Debug)]
pub(crate) struct OAuthState {
    inner: Mutex<Inner>,
    pub(crate) decline: AtomicBool,
    pub(crate) tokens_issued: AtomicU64,
    pub(crate) refreshes: AtomicU64,
    pub(crate) codes_issued: AtomicU64,
    /// Clock offset for tests of code expiry (added to "now").
    pub(crate) skew_ms: AtomicI64,
}

/// The outcome of checking a Bearer token.
pub(crate) enum Bearer {
    /// Valid, with these scopes.
    Valid(Vec<String>),
    /// Issued once, now revoked or expired: 401.
    Rejected,
    /// Never issued, or no token at all: the gateway's 403.
    Unknown,
}

/// Mashery-style keys and tokens: 24 lowercase letters and digits.
fn random_key() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let bytes: [u8; 24] = rand::random();
    bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

fn token_error(status: StatusCode, error: &str, description: &str) -> Response {
    json_response(
        status,
        serde_json::json!({ "error": error, "error_description": description }).to_string(),
    )
}

/// Egnyte wants an HTTPS redirect URI; loopback HTTP is let through so a
/// Ward daemon on 127.0.0.1 can receive the callback in tests.
fn acceptable_redirect(uri: &str) -> bool {
    url::Url::parse(uri).is_ok_and(|u| {
        u.fragment().is_none()
            && match u.scheme() {
                "https" => true,
                "http" => matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]")),
                _ => false,
            }
    })
}

impl OAuthState {
    pub(crate) fn new(client_id: &str, client_secret: &str) -> OAuthState {
        OAuthState {
            inner: Mutex::new(Inner {
                reg: Registration::new(client_id, client_secret),
                codes: HashMap::new(),
                access: HashMap::new(),
                refresh: HashMap::new(),
                revoked: HashSet::new(),
                lifetime_ms: None,
                throttled: None,
                failing: None,
            }),
            decline: AtomicBool::new(false),
            tokens_issued: AtomicU64::new(0),
            refreshes: AtomicU64::new(0),
            codes_issued: AtomicU64::new(0),
            skew_ms: AtomicI64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now(&self) -> i64 {
        now_ms() + self.skew_ms.load(Ordering::SeqCst)
    }

    pub(crate) fn set_client(&self, id: &str, secret: &str) {
        self.lock().reg.set_client(id, secret);
    }

    pub(crate) fn client(&self) -> (String, String) {
        self.lock().reg.client()
    }

    pub(crate) fn set_redirect_uris(&self, uris: Vec<String>) {
        self.lock().reg.redirect_uris = uris;
    }

    pub(crate) fn set_granted_scopes(&self, scopes: Option<Vec<String>>) {
        self.lock().reg.granted = scopes;
    }

    pub(crate) fn set_lifetime_ms(&self, ms: Option<i64>) {
        self.lock().lifetime_ms = ms;
    }

    pub(crate) fn throttle(&self, n: usize, secs: u64) {
        self.lock().throttled = (n > 0).then_some((n, secs));
    }

    pub(crate) fn fail(&self, n: usize, status: u16) {
        self.lock().failing = (n > 0).then_some((n, status));
    }

    pub(crate) fn revoke_all(&self) {
        let mut inner = self.lock();
        let tokens: Vec<String> = inner.access.drain().map(|(t, _)| t).collect();
        inner.revoked.extend(tokens);
        inner.refresh.clear();
    }

    /// Checks an `Authorization: Bearer` token.
    pub(crate) fn bearer(&self, token: &str) -> Bearer {
        let now = self.now();
        let inner = self.lock();
        match inner.access.get(token) {
            Some(a) if a.expires_ms.is_none_or(|e| e > now) => Bearer::Valid(a.scopes.clone()),
            Some(_) => Bearer::Rejected,
            None if inner.revoked.contains(token) => Bearer::Rejected,
            None => Bearer::Unknown,
        }
    }

    /// `GET /puboauth/token?...`: the consent page, answered at once.
    pub(crate) fn authorize(&self, query: &str) -> Response {
        let p = params(query);
        let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
        let inner = self.lock();
        // Problems with the key or redirect URI are shown to the user, never
        // redirected: the redirect target is not trusted yet.
        if get("client_id") != inner.reg.client_id {
            return gateway_error("ERR_403_DEVELOPER_INACTIVE", "Developer Inactive", None);
        }
        let redirect_uri = get("redirect_uri");
        let registered = inner
            .reg
            .redirect_registered(redirect_uri, acceptable_redirect);
        if !registered {
            return token_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "redirect_uri must be an HTTPS URL registered for this API key",
            );
        }
        let state = get("state");
        let fail = |error: &str, description: &str| {
            back_with_error(redirect_uri, state, error, description)
        };
        if get("response_type") != "code" {
            return fail(
                "unsupported_response_type",
                "only response_type=code is enabled for this key",
            );
        }
        let scopes: Vec<String> = get("scope").split_whitespace().map(str::to_owned).collect();
        if let Some(bad) = scopes.iter().find(|s| !KNOWN_SCOPES.contains(&s.as_str())) {
            return fail("invalid_scope", &format!("unknown scope {bad}"));
        }
        if self.decline.load(Ordering::SeqCst) {
            return fail(
                "access_denied",
                "The user denied access to the application.",
            );
        }
        let granted: Vec<String> = inner.reg.consent(scopes);
        drop(inner);
        let code = random_key();
        let issued_ms = self.now();
        self.lock().codes.insert(
            code.clone(),
            Code {
                redirect_uri: redirect_uri.to_owned(),
                scopes: granted,
                issued_ms,
            },
        );
        self.codes_issued.fetch_add(1, Ordering::SeqCst);
        back_with_code(redirect_uri, &code, state)
    }

    /// `POST /puboauth/token`, form-urlencoded.
    pub(crate) fn token(&self, body: &[u8]) -> Response {
        let p = params(&String::from_utf8_lossy(body));
        let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
        let now = self.now();
        let mut inner = self.lock();
        if let Some((left, status)) = inner.failing {
            // The gateway fails before the code is looked at: it stays good.
            inner.failing = (left > 1).then_some((left - 1, status));
            return json_response(
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
                serde_json::json!({ "errorMessage": "Bad Gateway" }).to_string(),
            );
        }
        if let Some((left, secs)) = inner.throttled {
            inner.throttled = (left > 1).then_some((left - 1, secs));
            let mut r = json_response(
                StatusCode::CONFLICT,
                serde_json::json!({ "errorMessage": "Too many token requests" }).to_string(),
            );
            r.headers_mut().insert(header::RETRY_AFTER, secs.into());
            return r;
        }
        if get("client_id") != inner.reg.client_id {
            return gateway_error("ERR_403_DEVELOPER_INACTIVE", "Developer Inactive", None);
        }
        if get("client_secret") != inner.reg.client_secret {
            return token_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Client authentication failed",
            );
        }
        let scopes = match get("grant_type") {
            "authorization_code" => {
                // Taken out whatever happens next: a code is good once.
                let Some(code) = inner.codes.remove(get("code")) else {
                    return token_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "The authorization code is invalid or has already been used",
                    );
                };
                if now - code.issued_ms > CODE_TTL_MS {
                    return token_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "The authorization code has expired",
                    );
                }
                if code.redirect_uri != get("redirect_uri") {
                    return token_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "redirect_uri does not match the authorization request",
                    );
                }
                code.scopes
            }
            "refresh_token" => {
                let Some(scopes) = inner.refresh.get(get("refresh_token")).cloned() else {
                    return token_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "The refresh token is invalid",
                    );
                };
                self.refreshes.fetch_add(1, Ordering::SeqCst);
                scopes
            }
            "" => {
                return token_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "grant_type is required",
                );
            }
            other => {
                return token_error(
                    StatusCode::BAD_REQUEST,
                    "unsupported_grant_type",
                    &format!("grant_type {other} is not enabled for this key"),
                );
            }
        };
        let access = random_key();
        let lifetime = inner.lifetime_ms;
        inner.access.insert(
            access.clone(),
            Access {
                scopes: scopes.clone(),
                expires_ms: lifetime.map(|l| now + l),
            },
        );
        let body = match lifetime {
            None => serde_json::json!({
                "access_token": access,
                "token_type": "bearer",
                "expires_in": -1,
            }),
            Some(l) => {
                // Refreshing keeps the refresh token; a code grant mints one.
                let refresh = match get("grant_type") {
                    "refresh_token" => get("refresh_token").to_owned(),
                    _ => {
                        let r = random_key();
                        inner.refresh.insert(r.clone(), scopes);
                        r
                    }
                };
                serde_json::json!({
                    "access_token": access,
                    "token_type": "bearer",
                    "expires_in": l / 1000,
                    "refresh_token": refresh,
                })
            }
        };
        self.tokens_issued.fetch_add(1, Ordering::SeqCst);
        json_response(StatusCode::OK, body.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_rules() {
        assert!(acceptable_redirect("https://ward.example/cb"));
        assert!(acceptable_redirect("http://127.0.0.1:8420/oauth/callback"));
        assert!(!acceptable_redirect("http://ward.example/cb"));
        assert!(!acceptable_redirect("https://ward.example/cb#frag"));
        assert_eq!(random_key().len(), 24);
    }
}
