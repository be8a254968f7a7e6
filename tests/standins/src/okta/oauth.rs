//! The org authorization server (`/oauth2/v1/authorize`, `/oauth2/v1/token`)
//! and Bearer-token checks for the API.
//!
//! Modelled on Okta's org authorization server for Okta-scoped tokens with
//! a web app integration (`client_secret_post` or `client_secret_basic`):
//! codes are single-use and expire after 120 s; access tokens last one hour
//! unless a test shortens them; `offline_access` adds a refresh token, which
//! is rotated on every refresh (the old one stops working). Token errors use
//! `{error, error_description}`; API calls with a token lacking a scope get
//! 403 with `WWW-Authenticate: Bearer ... error="insufficient_scope"`.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;

use crate::authz::{Registration, back_with_code, back_with_error};
use crate::server::form_params as params;
use crate::synth::now_ms;

/// How long an authorization code stays valid.
const CODE_TTL_MS: i64 = 120_000;
/// Scopes the stand-in knows.
const KNOWN_SCOPES: &[&str] = &[
    "okta.logs.read",
    "okta.users.read",
    "okta.users.read.self",
    "okta.orgs.read",
    "okta.roles.read",
    "offline_access",
    "openid",
    "profile",
    "email",
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
    expires_ms: i64,
}

#[derive(Debug)]
struct Inner {
    reg: Registration,
    codes: HashMap<String, Code>,
    access: HashMap<String, Access>,
    refresh: HashMap<String, Vec<String>>,
}

/// The authorization server's state.
#[derive(Debug)]
pub(super) struct OAuthState {
    inner: Mutex<Inner>,
    pub(super) decline: AtomicBool,
    pub(super) access_ttl_ms: AtomicI64,
    pub(super) tokens_issued: AtomicU64,
    pub(super) refreshes: AtomicU64,
    pub(super) codes_issued: AtomicU64,
}

/// The outcome of checking a Bearer token.
pub(super) enum Bearer {
    /// Valid, with these scopes.
    Valid(Vec<String>),
    /// Unknown, expired or revoked.
    Invalid(&'static str),
}

fn random_token(prefix: &str) -> String {
    let bytes: [u8; 24] = rand::random();
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

fn json(status: StatusCode, body: serde_json::Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// A token endpoint failing on its side (`status`, meant for 5xx).
pub(super) fn server_error(status: u16) -> Response {
    token_error(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        "server_error",
        "The authorization server encountered an unexpected condition.",
    )
}

fn token_error(status: StatusCode, error: &str, description: &str) -> Response {
    json(
        status,
        serde_json::json!({ "error": error, "error_description": description }),
    )
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
            access_ttl_ms: AtomicI64::new(3_600_000),
            tokens_issued: AtomicU64::new(0),
            refreshes: AtomicU64::new(0),
            codes_issued: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn set_client(&self, id: &str, secret: &str) {
        self.lock().reg.set_client(id, secret);
    }

    pub(super) fn client(&self) -> (String, String) {
        self.lock().reg.client()
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

    /// Ends every access token's life now; refresh tokens stay valid.
    pub(super) fn expire_access(&self) {
        for a in self.lock().access.values_mut() {
            a.expires_ms = 0;
        }
    }

    /// Checks an `Authorization: Bearer` token.
    pub(super) fn bearer(&self, token: &str, now: i64) -> Bearer {
        match self.lock().access.get(token) {
            Some(a) if a.expires_ms > now => Bearer::Valid(a.scopes.clone()),
            Some(_) => Bearer::Invalid("The token has expired."),
            None => Bearer::Invalid("The access token is invalid."),
        }
    }

    /// `GET /oauth2/v1/authorize`: the consent screen, answered at once.
    pub(super) fn authorize(&self, query: &str) -> Response {
        let p = params(query);
        let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
        let inner = self.lock();
        // Errors about the client or redirect URI are shown to the user,
        // never redirected: the redirect target is not trusted yet.
        if get("client_id") != inner.reg.client_id {
            return token_error(
                StatusCode::BAD_REQUEST,
                "invalid_client",
                "Invalid value for the `client_id` parameter",
            );
        }
        let redirect_uri = get("redirect_uri");
        let registered = inner.reg.redirect_registered(redirect_uri, |u| {
            url::Url::parse(u)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.fragment().is_none())
        });
        if !registered {
            return token_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "The 'redirect_uri' parameter must be a Login redirect URI in the client app settings",
            );
        }
        let state = get("state");
        let fail = |error: &str, description: &str| {
            back_with_error(redirect_uri, state, error, description)
        };
        if get("response_type") != "code" {
            return fail(
                "unsupported_response_type",
                "The response type is not supported by the authorization server. Configured response types: [code].",
            );
        }
        let scopes: Vec<String> = get("scope").split_whitespace().map(str::to_owned).collect();
        if scopes.is_empty() {
            return fail(
                "invalid_scope",
                "The authorization request must include scopes.",
            );
        }
        if let Some(bad) = scopes.iter().find(|s| !KNOWN_SCOPES.contains(&s.as_str())) {
            return fail(
                "invalid_scope",
                &format!(
                    "One or more scopes are not configured for the authorization server resource. ({bad})"
                ),
            );
        }
        if self.decline.load(Ordering::SeqCst) {
            return fail("access_denied", "User denied access to the application.");
        }
        let granted: Vec<String> = inner.reg.consent(scopes);
        drop(inner);
        let code = random_token("");
        self.lock().codes.insert(
            code.clone(),
            Code {
                redirect_uri: redirect_uri.to_owned(),
                scopes: granted,
                issued_ms: now_ms(),
            },
        );
        self.codes_issued.fetch_add(1, Ordering::SeqCst);
        back_with_code(redirect_uri, &code, state)
    }

    /// `POST /oauth2/v1/token`.
    pub(super) fn token(&self, headers: &HeaderMap, body: &[u8]) -> Response {
        let p = params(&String::from_utf8_lossy(body));
        let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
        let basic = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|b| {
                base64::engine::general_purpose::STANDARD
                    .decode(b.trim())
                    .ok()
            })
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.split_once(':').map(|(a, b)| (a.to_owned(), b.to_owned())));
        let (id, secret) = match basic {
            Some(pair) => pair,
            None => (get("client_id").to_owned(), get("client_secret").to_owned()),
        };
        let mut inner = self.lock();
        if id.is_empty() && secret.is_empty() {
            return token_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "No client credentials found.",
            );
        }
        if id != inner.reg.client_id {
            return token_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Invalid value for the `client_id` parameter",
            );
        }
        if secret != inner.reg.client_secret {
            return token_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "The client secret supplied for a confidential client is invalid.",
            );
        }
        let scopes = match get("grant_type") {
            "authorization_code" => {
                // Taken out whatever happens next: a code is good once.
                let Some(code) = inner.codes.remove(get("code")) else {
                    return token_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "The authorization code is invalid or has expired.",
                    );
                };
                if now_ms() - code.issued_ms > CODE_TTL_MS {
                    return token_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "The authorization code is invalid or has expired.",
                    );
                }
                if code.redirect_uri != get("redirect_uri") {
                    return token_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "The 'redirect_uri' does not match the redirection URI used in the authorization request.",
                    );
                }
                code.scopes
            }
            "refresh_token" => {
                let Some(scopes) = inner.refresh.remove(get("refresh_token")) else {
                    return token_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "The refresh token is invalid or expired.",
                    );
                };
                self.refreshes.fetch_add(1, Ordering::SeqCst);
                scopes
            }
            "" => {
                return token_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "The token request must specify a 'grant_type'.",
                );
            }
            _ => {
                return token_error(
                    StatusCode::BAD_REQUEST,
                    "unsupported_grant_type",
                    "The grant type in the request isn't supported.",
                );
            }
        };
        let ttl = self.access_ttl_ms.load(Ordering::SeqCst);
        let access = random_token("eyJ.");
        inner.access.insert(
            access.clone(),
            Access {
                scopes: scopes.clone(),
                expires_ms: now_ms() + ttl,
            },
        );
        let mut body = serde_json::json!({
            "token_type": "Bearer",
            "expires_in": ttl / 1000,
            "access_token": access,
            "scope": scopes.join(" "),
        });
        if scopes.iter().any(|s| s == "offline_access") {
            let refresh = random_token("");
            inner.refresh.insert(refresh.clone(), scopes);
            body["refresh_token"] = serde_json::Value::String(refresh);
        }
        self.tokens_issued.fetch_add(1, Ordering::SeqCst);
        json(StatusCode::OK, body)
    }
}

/// The scope an API path needs with a Bearer token.
pub(super) fn required_scope(path: &str) -> Option<&'static str> {
    let rest = path.strip_prefix("/api/v1/")?;
    if rest.starts_with("logs") {
        Some("okta.logs.read")
    } else if rest.starts_with("users") && rest.ends_with("/roles") {
        Some("okta.roles.read")
    } else if rest.starts_with("users") {
        Some("okta.users.read")
    } else if rest.starts_with("org") {
        Some("okta.orgs.read")
    } else {
        None
    }
}

/// Whether granted scopes satisfy a requirement (`users/me` also accepts
/// the `.self` variant, as Okta does).
pub(super) fn has_scope(scopes: &[String], needed: &str, path: &str) -> bool {
    let set: BTreeSet<&str> = scopes.iter().map(String::as_str).collect();
    set.contains(needed) || (path == "/api/v1/users/me" && set.contains("okta.users.read.self"))
}

/// The `WWW-Authenticate` value Okta sends with Bearer failures.
pub(super) fn challenge(host: &str, error: &str, description: &str, scope: Option<&str>) -> String {
    let scope = scope
        .map(|s| format!(", scope=\"{s}\""))
        .unwrap_or_default();
    format!(
        "Bearer authorization_uri=\"https://{host}/oauth2/v1/authorize\", realm=\"https://{host}\"{scope}, error=\"{error}\", error_description=\"{description}\""
    )
}
