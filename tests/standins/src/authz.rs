//! What every provider's authorization server keeps about its one
//! registered OAuth client: credentials, login redirect URIs, and which of
//! the asked-for scopes the consent screen grants. The provider modules keep
//! their own request parsing and error bodies, which differ per provider.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

/// The registered client.
#[derive(Debug)]
pub(crate) struct Registration {
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    /// Accepted redirect URIs; empty means the provider's default rule.
    pub(crate) redirect_uris: Vec<String>,
    /// Scopes the consent grants at most (`None`: whatever is asked).
    pub(crate) granted: Option<Vec<String>>,
}

impl Registration {
    pub(crate) fn new(client_id: &str, client_secret: &str) -> Registration {
        Registration {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            redirect_uris: Vec::new(),
            granted: None,
        }
    }

    /// Replaces the client's credentials.
    pub(crate) fn set_client(&mut self, client_id: &str, client_secret: &str) {
        self.client_id = client_id.to_owned();
        self.client_secret = client_secret.to_owned();
    }

    /// (client id, client secret).
    pub(crate) fn client(&self) -> (String, String) {
        (self.client_id.clone(), self.client_secret.clone())
    }

    /// Whether `uri` may receive codes: one of the registered URIs, or with
    /// none registered, whatever the provider's `default` rule accepts.
    pub(crate) fn redirect_registered(&self, uri: &str, default: impl Fn(&str) -> bool) -> bool {
        if self.redirect_uris.is_empty() {
            default(uri)
        } else {
            self.redirect_uris.iter().any(|r| r == uri)
        }
    }

    /// The scopes the consent screen grants out of `asked`.
    pub(crate) fn consent(&self, asked: Vec<String>) -> Vec<String> {
        match &self.granted {
            Some(g) => asked.into_iter().filter(|s| g.contains(s)).collect(),
            None => asked,
        }
    }
}

/// The consent screen's answer: back to the client with the code. `state`
/// goes back exactly when the client sent one (RFC 6749 §4.1.2).
pub(crate) fn back_with_code(redirect_uri: &str, code: &str, state: &str) -> Response {
    back(redirect_uri, vec![("code", code)], state)
}

/// The consent screen's refusal (declined, bad scope...), sent back to a
/// redirect URI already known to be registered.
pub(crate) fn back_with_error(
    redirect_uri: &str,
    state: &str,
    error: &str,
    description: &str,
) -> Response {
    back(
        redirect_uri,
        vec![("error", error), ("error_description", description)],
        state,
    )
}

fn back<'a>(redirect_uri: &str, mut pairs: Vec<(&'a str, &'a str)>, state: &'a str) -> Response {
    if !state.is_empty() {
        pairs.push(("state", state));
    }
    redirect_to(&with_params(redirect_uri, &pairs))
}

/// `302 Found` to `location` (dropped if it is not a valid header value).
fn redirect_to(location: &str) -> Response {
    let mut response = Response::new(axum::body::Body::empty());
    *response.status_mut() = StatusCode::FOUND;
    if let Ok(v) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

/// `base` with `pairs` appended to its query, as an authorization server
/// builds the redirect back to the client.
fn with_params(base: &str, pairs: &[(&str, &str)]) -> String {
    let encoded: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}{encoded}")
}
