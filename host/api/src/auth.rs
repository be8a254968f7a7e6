//! Authentication and scoping of every request.
//!
//! - `Authorization: User <secret>, Organization <secret>`: the operator;
//!   every route. Both secrets are hashed and compared in constant time
//!   with the stored hashes.
//! - `Authorization: Element <token>`: one instance; only its read and
//!   test routes (anything else is 403). Tokens are looked up by their
//!   SHA-256, so the lookup time says nothing about the token.
//! - `Authorization: User <secret>, Organization <secret>, Element <token>`
//!   (SAP Open Connectors' instance form): all three must be right, and the
//!   caller gets the same scope as with `Element <token>` alone.
//! - `/oauth/callback` is reached by a browser that has no header: its
//!   single-use `state` is the credential and the handler checks it.
//! - `/livez` answers anyone, with nothing but `{"status": "ok"}`.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::error::ApiError;
use crate::secrets::sha256_hex;

/// OpenAPI security scheme names.
pub(crate) const SCHEME_ORGANIZATION: &str = "UserOrganization";
pub(crate) const SCHEME_ELEMENT: &str = "Element";
pub(crate) const SCHEME_STATE: &str = "OauthState";

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Principal {
    /// The operator (User + Organization secrets).
    Operator,
    /// An instance token, scoped to this instance id.
    Element(String),
}

/// Routes an `Element` token may call, all on its own instance.
const ELEMENT_ROUTES: &[(Method, &str)] = &[
    (Method::GET, "/instances/{id}"),
    (Method::POST, "/instances/{id}/test"),
    (Method::GET, "/instances/{id}/events"),
    (Method::GET, "/instances/{id}/users"),
    (Method::GET, "/instances/{id}/egress"),
];

const CALLBACK: &str = "/oauth/callback";
/// Liveness, for load balancers: unauthenticated and without details.
const LIVEZ: &str = "/livez";

const HOW: &str = "send `Authorization: User <secret>, Organization <secret>` (the secrets are in \
                   <data_dir>/api-secrets.toml), `Authorization: Element <instance token>`, or \
                   `Authorization: User <secret>, Organization <secret>, Element <instance token>`";

/// The middleware in front of every route.
pub(crate) async fn authenticate(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    if req.uri().path() == CALLBACK || req.uri().path() == LIVEZ {
        return next.run(req).await;
    }
    let headers = req.headers().clone();
    let principal = match principal(&state, &headers).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    if let Principal::Element(id) = &principal {
        let template = req
            .extensions()
            .get::<MatchedPath>()
            .map(|m| m.as_str().to_owned());
        let allowed = template.as_deref().is_some_and(|t| {
            ELEMENT_ROUTES
                .iter()
                .any(|(m, p)| m == req.method() && *p == t)
        }) && req.uri().path().split('/').nth(2) == Some(id.as_str());
        if !allowed {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "an Element token may only read and test its own instance \
                 (GET /instances/{id}, /events, /users, /egress; POST /instances/{id}/test); \
                 use the User and Organization secrets for anything else",
            )
            .into_response();
        }
    }
    req.extensions_mut().insert(principal);
    next.run(req).await
}

async fn principal(state: &AppState, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Err(ApiError::unauthorized(format!(
            "missing Authorization header; {HOW}"
        )));
    };
    let Ok(value) = value.to_str() else {
        return Err(ApiError::unauthorized(format!(
            "the Authorization header is not ASCII; {HOW}"
        )));
    };
    let mut user = None;
    let mut org = None;
    let mut element = None;
    for part in value.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("User ") {
            user = Some(v.trim());
        } else if let Some(v) = part.strip_prefix("Organization ") {
            org = Some(v.trim());
        } else if let Some(v) = part.strip_prefix("Element ") {
            element = Some(v.trim());
        }
    }
    match (user, org, element) {
        // `Element <token>` alone, or SAP Open Connectors' three-part form
        // `User <u>, Organization <o>, Element <token>`: the instance's
        // scope either way; in the three-part form the operator secrets
        // must be right too.
        (None, None, Some(token)) => element_principal(state, token).await,
        (Some(user), Some(org), Some(token)) => {
            operator(state, user, org).await?;
            element_principal(state, token).await
        }
        (Some(user), Some(org), None) => operator(state, user, org).await,
        _ => Err(ApiError::unauthorized(format!(
            "the Authorization header must carry both User and Organization secrets, an Element \
             token, or all three; {HOW}"
        ))),
    }
}

/// The instance an `Element` token belongs to.
async fn element_principal(state: &AppState, token: &str) -> Result<Principal, ApiError> {
    if token.is_empty() {
        return Err(ApiError::unauthorized(format!(
            "empty Element token; {HOW}"
        )));
    }
    match state
        .daemon
        .store
        .instance_by_token(&sha256_hex(token))
        .await?
    {
        Some(id) => Ok(Principal::Element(id)),
        None => Err(ApiError::unauthorized(
            "unknown Element token (the instance may have been deleted); use the token \
             returned by POST /instances",
        )),
    }
}

/// Checks the operator's User and Organization secrets.
async fn operator(state: &AppState, user: &str, org: &str) -> Result<Principal, ApiError> {
    let config = &state.daemon.config.api;
    let stored = state.daemon.store.api_secret_hashes().await?;
    let expected_user = config
        .user_secret_sha256
        .clone()
        .or_else(|| stored.get("user").cloned());
    let expected_org = config
        .organization_secret_sha256
        .clone()
        .or_else(|| stored.get("organization").cloned());
    let (Some(expected_user), Some(expected_org)) = (expected_user, expected_org) else {
        return Err(ApiError::unauthorized(
            "the daemon has no API secrets configured; restart `ward serve`, which generates \
             them into <data_dir>/api-secrets.toml",
        ));
    };
    let user_ok = sha256_hex(user)
        .as_bytes()
        .ct_eq(expected_user.to_ascii_lowercase().as_bytes());
    let org_ok = sha256_hex(org)
        .as_bytes()
        .ct_eq(expected_org.to_ascii_lowercase().as_bytes());
    if bool::from(user_ok & org_ok) {
        Ok(Principal::Operator)
    } else {
        Err(ApiError::unauthorized(format!(
            "wrong User or Organization secret; {HOW}"
        )))
    }
}
