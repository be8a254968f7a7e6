//! The account's OAuth server: `GET /oauth/authorizations/new` (the consent
//! screen, answered at once) and `POST /oauth/tokens` (JSON body).
//!
//! Modelled on the notes: codes are single-use and expire after 120 s;
//! PKCE (`code_challenge`, S256) is checked when used; tokens do not expire
//! unless the token request sets `expires_in` (300..172 800 s), in which
//! case a refresh token comes with it; an unknown scope still yields a
//! token, with which every API call is refused. Error bodies use
//! `{error, error_description}` with the wording of Doorkeeper, the OAuth
//! library whose `invalid_token` text Zendesk's 401s carry.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use url::form_urlencoded;

use crate::authz::{Registration, back_with_code, back_with_error};
use crate::synth::now_ms;

/// How long an authorization code stays valid.
pub(super) const CODE_TTL_MS: i64 = 120_000;
const REFRESH_TTL_DEFAULT_S: i64 = 2_592_000;

const INVALID_CLIENT: &str = "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method.";
const INVALID_GRANT: &str = "The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.";
const INVALID_REQUEST: &str = "The request is missing a required parameter, includes an unsupported parameter value, or is otherwise malformed.";
const ACCESS_DENIED: &str = "The resource owner or authorization server denied the request.";

#[derive(Debug)]
struct Code {
    redirect_uri: String,
    scopes: Vec<String>,
    issued_ms: i64,
    challenge: Option<String>,
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
}

/// The OAuth server's state.
#[derive(Debug)]
pub(super) struct OAuthState {
    inner: Mutex<Inner>,
    pub(super) decline: AtomicBool,
    pub(super) code_ttl_ms: AtomicI64,
    pub(super) codes_issued: AtomicU64,
    pub(super) tokens_issued: AtomicU64,
}

fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

fn json(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

fn token_error(status: StatusCode, error: &str, description: &str) -> Response {
    json(
        status,
        &serde_json::json!({ "error": error, "error_description": description }),
    )
}

/// The consent screen's own error page (client or redirect URI unknown:
/// never redirected, the target is not trusted).
fn error_page(message: &str) -> Response {
    let mut response = Response::new(Body::from(format!(
        "<!DOCTYPE html><html><head><title>Invalid authorization request</title></head><body><h1>Invalid authorization request</h1><p>{message}</p></body></html>"
    )));
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

impl OAuthState {
    pub(super) fn new(client_id: &str, client_secret: &str) -> OAuthState {
        OAuthState {
            inner: Mutex::new(Inner {
                reg: Registration::new(client_id, client_secret),
                codes: HashMap::new(),
                access: HashMap::new(),
                refresh: HashMap::new(),
            }),
            decline: AtomicBool::new(false),
            code_ttl_ms: AtomicI64::new(CODE_TTL_MS),
            codes_issued: AtomicU64::new(0),
            tokens_issued: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn client(&self) -> (String, String) {
        self.lock().reg.client()
    }

    pub(super) fn set_client(&self, id: &str, secret: &str) {
        self.lock().reg.set_client(id, secret);
    }

    pub(super) fn set_redirect_uris(&self, uris: Vec<String>) {
        self.lock().reg.redirect_uris = uris;
    }

    pub(super) fn set_granted_scopes(&self, scopes: Option<Vec<String>>) {
        self.lock().reg.granted = scopes;
    }

    pub(super) fn revoke_all(&self) {
        let mut inner = self.lock();
        inner.access.clear();
        inner.refresh.clear();
    }

    /// The scopes of a valid Bearer token.
    pub(super) fn bearer(&self, token: &str, now: i64) -> Option<Vec<String>> {
        let inner = self.lock();
        let access = inner.access.get(token)?;
        match access.expires_ms {
            Some(at) if at <= now => None,
            _ => Some(access.scopes.clone()),
        }
    }

    /// `GET /oauth/authorizations/new`.
    pub(super) fn authorize(&self, query: &str) -> Response {
        let p: HashMap<String, String> = form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
        let inner = self.lock();
        if get("client_id") != inner.reg.client_id {
            return error_page("The client identifier provided is invalid.");
        }
        let redirect_uri = get("redirect_uri");
        let allowed = inner.reg.redirect_registered(redirect_uri, |u| {
            url::Url::parse(u)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.fragment().is_none())
        });
        if !allowed {
            return error_page("The redirect URI included is not valid.");
        }
        let state = get("state");
        let fail = |error: &str, description: &str| {
            back_with_error(redirect_uri, state, error, description)
        };
        if get("response_type") != "code" {
            return fail(
                "unsupported_response_type",
                "The authorization server does not support this response type.",
            );
        }
        let challenge = match (get("code_challenge"), get("code_challenge_method")) {
            ("", _) => None,
            (c, "S256") => Some(c.to_owned()),
            _ => {
                return fail(
                    "invalid_request",
                    "Code challenge method must be S256 when a code challenge is given.",
                );
            }
        };
        if self.decline.load(Ordering::SeqCst) {
            return fail("access_denied", ACCESS_DENIED);
        }
        let requested: Vec<String> = get("scope").split_whitespace().map(str::to_owned).collect();
        let scopes = inner.reg.consent(requested);
        drop(inner);
        let code = random_hex(20);
        self.lock().codes.insert(
            code.clone(),
            Code {
                redirect_uri: redirect_uri.to_owned(),
                scopes,
                issued_ms: now_ms(),
                challenge,
            },
        );
        self.codes_issued.fetch_add(1, Ordering::SeqCst);
        back_with_code(redirect_uri, &code, state)
    }

    /// `POST /oauth/tokens` with a JSON body.
    pub(super) fn token(&self, body: &[u8]) -> Response {
        let Ok(serde_json::Value::Object(p)) = serde_json::from_slice::<serde_json::Value>(body)
        else {
            return token_error(StatusCode::BAD_REQUEST, "invalid_request", INVALID_REQUEST);
        };
        let get = |k: &str| p.get(k).and_then(|v| v.as_str()).unwrap_or("");
        let mut inner = self.lock();
        if get("client_id") != inner.reg.client_id
            || get("client_secret") != inner.reg.client_secret
        {
            return token_error(StatusCode::UNAUTHORIZED, "invalid_client", INVALID_CLIENT);
        }
        let expires_in = match p.get("expires_in") {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => match v.as_i64() {
                Some(s) if s > 300 && s < 172_800 => Some(s),
                _ => {
                    return token_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        "expires_in must be greater than 300 and less than 172800",
                    );
                }
            },
        };
        let scopes = match get("grant_type") {
            "authorization_code" => {
                // Taken out whatever happens next: a code is good once.
                let Some(code) = inner.codes.remove(get("code")) else {
                    return token_error(StatusCode::BAD_REQUEST, "invalid_grant", INVALID_GRANT);
                };
                let verifier_ok = match &code.challenge {
                    None => true,
                    Some(c) => s256(get("code_verifier")) == *c,
                };
                if now_ms() - code.issued_ms > self.code_ttl_ms.load(Ordering::SeqCst)
                    || code.redirect_uri != get("redirect_uri")
                    || !verifier_ok
                {
                    return token_error(StatusCode::BAD_REQUEST, "invalid_grant", INVALID_GRANT);
                }
                code.scopes
            }
            "refresh_token" => match inner.refresh.remove(get("refresh_token")) {
                Some(scopes) => scopes,
                None => {
                    return token_error(StatusCode::BAD_REQUEST, "invalid_grant", INVALID_GRANT);
                }
            },
            "" => return token_error(StatusCode::BAD_REQUEST, "invalid_request", INVALID_REQUEST),
            _ => {
                return token_error(
                    StatusCode::BAD_REQUEST,
                    "unsupported_grant_type",
                    "The authorization grant type is not supported by the authorization server.",
                );
            }
        };
        let access = random_hex(32);
        inner.access.insert(
            access.clone(),
            Access {
                scopes: scopes.clone(),
                expires_ms: expires_in.map(|s| now_ms() + s * 1000),
            },
        );
        let mut body = serde_json::json!({
            "access_token": access,
            "token_type": "bearer",
            "scope": scopes.join(" "),
        });
        if let Some(s) = expires_in {
            let refresh = random_hex(32);
            inner.refresh.insert(refresh.clone(), scopes);
            body["expires_in"] = s.into();
            body["refresh_token"] = refresh.into();
            body["refresh_token_expires_in"] = p
                .get("refresh_token_expires_in")
                .and_then(serde_json::Value::as_i64)
                .unwrap_or(REFRESH_TTL_DEFAULT_S)
                .into();
        }
        self.tokens_issued.fetch_add(1, Ordering::SeqCst);
        json(StatusCode::OK, &body)
    }
}

/// Whether granted scopes allow reading `resource` (`users`, `auditlogs`;
/// `None` for endpoints only the global `read` scope covers).
pub(super) fn can_read(scopes: &[String], resource: Option<&str>) -> bool {
    scopes
        .iter()
        .any(|s| s == "read" || resource.is_some_and(|r| *s == format!("{r}:read")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_rules() {
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        assert!(can_read(&s(&["read"]), Some("users")));
        assert!(can_read(&s(&["read"]), None));
        assert!(can_read(&s(&["users:read"]), Some("users")));
        assert!(!can_read(&s(&["users:read"]), Some("auditlogs")));
        assert!(!can_read(&s(&["users:read", "auditlogs:read"]), None));
        assert!(!can_read(&s(&["users:write"]), Some("users")));
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
