//! Ward's web console, served by the daemon itself at `/` (pages under
//! `/console/`): server-rendered HTML over the same service layer as the
//! REST API ([`ward_daemon::instances`], [`ward_daemon::consent`]), with its
//! assets (stylesheet, a vendored htmx) embedded in the binary. No request
//! leaves for a third party.
//!
//! - [`session`]: sign-in (operator secrets or a one-time link), session
//!   cookie, CSRF token on every form, sign-out, expiry.
//! - `routes`: parse the request, call the daemon, render (`render`).
//! - `wizard`: Connect (API token or OAuth consent), the console's OAuth
//!   return, Reconnect/rotate and rate settings.

mod render;
mod routes;
pub mod session;
mod wizard;

use std::sync::Arc;

use axum::Router;
use ward_daemon::Daemon;

pub use session::Sessions;

/// The console over a running daemon. Cheap to clone.
#[derive(Clone)]
pub struct Console {
    pub(crate) daemon: Daemon,
    pub(crate) sessions: Arc<Sessions>,
    pub(crate) consents: Arc<wizard::Consents>,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console").finish_non_exhaustive()
    }
}

impl Console {
    /// The console of `daemon`. Its cookies are `Secure` when the daemon's
    /// `[api] public_url` is HTTPS (TLS ends in front of it).
    pub fn new(daemon: Daemon) -> Console {
        let secure = daemon
            .config
            .api
            .public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"));
        Console {
            daemon,
            sessions: Arc::new(Sessions::new(session::SESSION_TTL, secure)),
            consents: Arc::new(wizard::Consents::default()),
        }
    }

    /// A one-time sign-in link under `base` (e.g. `http://127.0.0.1:8420`),
    /// usable once within [`session::LINK_TTL`].
    pub fn one_time_link(&self, base: &str) -> String {
        format!(
            "{}{}?token={}",
            base.trim_end_matches('/'),
            routes::LINK,
            self.sessions.issue_link()
        )
    }

    /// The console's routes: `/` and `/console/...`. Merge them with the
    /// API's router (which has no route at either).
    pub fn router(&self) -> Router {
        routes::router(self.clone())
    }
}
