//! What every provider's authorization server keeps about its one
//! registered OAuth client: credentials, login redirect URIs, and which of
//! the asked-for scopes the consent screen grants. The provider modules keep
//! their own request parsing and error bodies, which differ per provider.

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
