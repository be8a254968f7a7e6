//! An Okta org stand-in: System Log, users, roles and org endpoints served
//! over HTTPS under the org's real hostname (`{org}.okta.com`).
//!
//! Clients reach it by resolving that hostname to [`OktaStandIn::addr`]
//! (e.g. reqwest's `resolve`) and trusting the [`TestCa`] that issued its
//! certificate. Links in responses use the real hostname without a port,
//! exactly as Okta's do.
//!
//! Behaviour worth knowing when writing tests against it:
//!
//! - `GET /api/v1/logs` without `until` (and not `DESCENDING`) is a polling
//!   query: persistence order, `since` defaulting to seven days ago, and a
//!   `rel="next"` link on every page, empty ones included. With `until` (or
//!   `DESCENDING`, bounded at now) it is a bounded query in `published`
//!   order whose last page has no `next`. `after` cursors are opaque and
//!   carry the query's filter; `since` with `after` is a 400. Events older
//!   than 90 days are never returned; `since` older than 180 days is a 400
//!   `E0000053`. `filter` understands `eventType eq "..."` (joined by `or`)
//!   and rejects anything else with 400 rather than silently ignoring it.
//! - `GET /api/v1/users` pages by user id (`after=2<last id>`, as recorded
//!   from Okta), 200 per page, hiding `DEPROVISIONED` users unless `filter`
//!   or `search` is given (`status eq "..."` is evaluated).
//! - Every response carries `X-Rate-Limit-*` headers (counted per endpoint
//!   family in one-minute windows) and an `x-okta-request-id`; errors use
//!   Okta's `{errorCode, errorSummary, errorLink, errorId, errorCauses}`.
//! - Scheduled faults are served before the token is checked, in the order
//!   they were scheduled.
//! - OAuth 2.0 (see `oauth`): `/oauth2/v1/authorize` and `/oauth2/v1/token`
//!   for the client [`OktaStandIn::oauth_client`]; the API accepts the
//!   issued `Bearer` tokens with Okta's scope checks, acting as the token
//!   owner. Switches and counters are on the handle.

mod api;
mod cursor;
mod directory;
mod events;
mod oauth;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use axum::Router;

use crate::server::{Fault, FaultPlan, RateWindows, RecordedRequest, RequestLog, TlsServer};
use crate::synth::{DAY_MS, now_ms};
use crate::tls::TestCa;
use cursor::CursorCodec;
use directory::Directory;

/// The OAuth client registered at start (see [`OktaStandIn::set_oauth_client`]).
pub const DEFAULT_CLIENT_ID: &str = "0oaward-demo-client";
/// Its client secret.
pub const DEFAULT_CLIENT_SECRET: &str = "ward-demo-client-secret-7f3a9c21";

/// How the stand-in org is populated and behaves.
#[derive(Debug, Clone)]
pub struct OktaConfig {
    /// Org subdomain: `ward-demo` serves `ward-demo.okta.com`.
    pub org: String,
    /// The Okta host family the org lives under: `okta.com` (default),
    /// `oktapreview.com` for a preview org, ...
    pub base_domain: String,
    /// A custom URL domain the org also answers on (`login.acme.example`);
    /// links in responses then point there, as Okta's do for requests made
    /// on the custom domain.
    pub custom_domain: Option<String>,
    /// The only API token accepted, sent as `Authorization: SSWS <token>`.
    pub api_token: String,
    /// System Log events present at start.
    pub events: usize,
    /// Users in the directory (at least one: the token's owner).
    pub users: usize,
    /// The initial events are spread evenly over this many days before start.
    pub backfill_span_days: u32,
    /// Seed for all generated data; the same seed gives the same ids.
    pub seed: u64,
    /// Admin role of the token's owner, e.g. `SUPER_ADMIN`. `None` models a
    /// token whose owner lost its admin role: System Log and org calls then
    /// fail with 403 `E0000006`. The System Log is readable with
    /// `SUPER_ADMIN`, `ORG_ADMIN`, `READ_ONLY_ADMIN` or `REPORT_ADMIN`, the
    /// org object with the first three; other roles get 403 there too.
    pub admin_role: Option<String>,
    /// Per-minute limit advertised in the `X-Rate-Limit-*` headers. The
    /// stand-in only reports it; use [`OktaStandIn::rate_limit_next`] to
    /// produce 429s.
    pub rate_limit_per_minute: u32,
}

impl Default for OktaConfig {
    fn default() -> Self {
        OktaConfig {
            org: "ward-demo".to_owned(),
            base_domain: "okta.com".to_owned(),
            custom_domain: None,
            api_token: "00ward-demo-ssws-token".to_owned(),
            events: 1000,
            users: 25,
            backfill_span_days: 30,
            seed: 1,
            admin_role: Some("SUPER_ADMIN".to_owned()),
            rate_limit_per_minute: 600,
        }
    }
}

/// One System Log event as stored. Persistence order is the vector order.
#[derive(Debug)]
struct StoredEvent {
    published_ms: i64,
    /// When the event became visible to polling queries. Equal to
    /// `published_ms` unless the event was appended late on purpose.
    persisted_ms: i64,
    kind: u8,
    uuid: Box<str>,
    json: OnceLock<Box<str>>,
}

/// State shared by the request handlers and the test-facing handle.
#[derive(Debug)]
struct OktaState {
    token: String,
    seed: u64,
    can_read_logs: bool,
    can_read_org: bool,
    revoked: AtomicBool,
    dir: Directory,
    /// The host links in responses point to: the custom URL domain when the
    /// org has one, else the org's host.
    link_host: String,
    events: RwLock<Vec<StoredEvent>>,
    faults: FaultPlan,
    /// Statuses the token endpoint answers with before working normally.
    token_faults: FaultPlan,
    rates: RateWindows,
    cursors: CursorCodec,
    responses: AtomicU64,
    oauth: oauth::OAuthState,
}

impl OktaState {
    fn events(&self) -> RwLockReadGuard<'_, Vec<StoredEvent>> {
        self.events.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn events_mut(&self) -> RwLockWriteGuard<'_, Vec<StoredEvent>> {
        self.events.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The event's JSON, rendered on first use and kept.
    fn event_json<'a>(&self, seq: usize, e: &'a StoredEvent) -> &'a str {
        e.json.get_or_init(|| {
            events::render(
                &self.dir,
                self.seed,
                seq as u64,
                e.published_ms,
                e.kind,
                &e.uuid,
            )
        })
    }

    fn push_events(
        log: &mut Vec<StoredEvent>,
        seed: u64,
        n: usize,
        published: impl Fn(usize) -> (i64, i64),
    ) {
        log.reserve(n);
        for i in 0..n {
            let seq = log.len() as u64;
            let (kind, uuid) = events::identity(seed, seq);
            let (published_ms, persisted_ms) = published(i);
            log.push(StoredEvent {
                published_ms,
                persisted_ms,
                kind,
                uuid: uuid.into_boxed_str(),
                json: OnceLock::new(),
            });
        }
    }

    fn append(&self, n: usize, delay_ms: i64) {
        let mut log = self.events_mut();
        // Persistence order must never go backwards, even if the wall clock does.
        let persisted = log
            .last()
            .map_or(now_ms(), |e| e.persisted_ms.max(now_ms()));
        Self::push_events(&mut log, self.seed, n, |_| {
            (persisted - delay_ms, persisted)
        });
    }
}

/// A running Okta stand-in. Dropping it stops the server; prefer
/// [`OktaStandIn::shutdown`] to let in-flight requests finish.
pub struct OktaStandIn {
    state: Arc<OktaState>,
    requests: RequestLog,
    server: TlsServer,
}

impl std::fmt::Debug for OktaStandIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OktaStandIn")
            .field("host", &self.state.dir.host)
            .field("addr", &self.server.addr())
            .finish_non_exhaustive()
    }
}

impl OktaStandIn {
    /// Generates the org and starts serving it on `127.0.0.1:<ephemeral>`
    /// with a certificate for `{org}.okta.com` issued by `ca`.
    pub async fn start(cfg: OktaConfig, ca: &TestCa) -> anyhow::Result<OktaStandIn> {
        anyhow::ensure!(
            !cfg.org.is_empty()
                && cfg
                    .org
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-'),
            "org must be a DNS label such as \"ward-demo\", got {:?}",
            cfg.org
        );
        anyhow::ensure!(!cfg.api_token.is_empty(), "api_token must not be empty");
        let start = now_ms();
        if let Some(custom) = &cfg.custom_domain {
            anyhow::ensure!(
                !custom.is_empty()
                    && custom
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'),
                "custom_domain must be a host name such as \"login.acme.example\", got {custom:?}"
            );
        }
        let dir = Directory::generate(
            &cfg.org,
            &cfg.base_domain,
            cfg.seed,
            cfg.users,
            cfg.admin_role.as_deref(),
            start,
        );
        let mut log = Vec::new();
        let n = cfg.events;
        // The newest backfilled event lands a second before start so that
        // events appended "now" are always strictly newer.
        let last = start - 1000;
        let first = last - i64::from(cfg.backfill_span_days) * DAY_MS;
        OktaState::push_events(&mut log, cfg.seed, n, |i| {
            let at = if n <= 1 {
                last
            } else {
                first + ((i128::from(last - first) * i as i128) / (n as i128 - 1)) as i64
            };
            (at, at)
        });
        let state = Arc::new(OktaState {
            token: cfg.api_token.clone(),
            seed: cfg.seed,
            can_read_logs: matches!(
                cfg.admin_role.as_deref(),
                Some("SUPER_ADMIN" | "ORG_ADMIN" | "READ_ONLY_ADMIN" | "REPORT_ADMIN")
            ),
            can_read_org: matches!(
                cfg.admin_role.as_deref(),
                Some("SUPER_ADMIN" | "ORG_ADMIN" | "READ_ONLY_ADMIN")
            ),
            revoked: AtomicBool::new(false),
            link_host: cfg
                .custom_domain
                .clone()
                .unwrap_or_else(|| dir.host.clone()),
            cursors: CursorCodec::new(&cfg.org, cfg.seed),
            dir,
            events: RwLock::new(log),
            faults: FaultPlan::default(),
            token_faults: FaultPlan::default(),
            rates: RateWindows::new(cfg.rate_limit_per_minute),
            responses: AtomicU64::new(0),
            oauth: oauth::OAuthState::new(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET),
        });
        let mut names = vec![state.dir.host.as_str()];
        names.extend(cfg.custom_domain.as_deref());
        let cert = ca.issue(&names)?;
        let requests = RequestLog::default();
        let router = requests.layer(
            Router::new()
                .fallback(api::dispatch)
                .with_state(state.clone()),
        );
        let server = TlsServer::start(router, &cert).await?;
        tracing::debug!(host = %state.dir.host, addr = %server.addr(), "Okta stand-in listening");
        Ok(OktaStandIn {
            state,
            requests,
            server,
        })
    }

    /// The loopback address to resolve [`OktaStandIn::host`] to.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The org's hostname, e.g. `ward-demo.okta.com`.
    pub fn host(&self) -> String {
        self.state.dir.host.clone()
    }

    /// The custom URL domain the org also answers on, if configured.
    pub fn custom_domain(&self) -> Option<String> {
        (self.state.link_host != self.state.dir.host).then(|| self.state.link_host.clone())
    }

    /// `https://{host}`, without a port, as a client would configure it.
    pub fn base_url(&self) -> String {
        format!("https://{}", self.state.dir.host)
    }

    /// Publishes `n` new events now; the next poll sees them.
    pub fn append_events(&self, n: usize) {
        self.state.append(n, 0);
    }

    /// Appends `n` events that become visible now but carry a `published`
    /// time `delay` in the past, as Okta's delayed ingestion does. Polling
    /// queries (persistence order) still return them; a client that pages
    /// with `since=<last published>` misses them, as it would against Okta.
    pub fn append_delayed_events(&self, n: usize, delay: Duration) {
        let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2);
        self.state.append(n, delay_ms);
    }

    /// Total events stored, including any older than the 90-day retention.
    pub fn event_count(&self) -> usize {
        self.state.events().len()
    }

    /// Every event's `uuid`, in persistence order.
    pub fn event_ids(&self) -> Vec<String> {
        self.state
            .events()
            .iter()
            .map(|e| e.uuid.to_string())
            .collect()
    }

    /// Every user's id (including deprovisioned ones), in generation order;
    /// the first is the token's owner.
    pub fn user_ids(&self) -> Vec<String> {
        self.state.dir.users.iter().map(|u| u.id.clone()).collect()
    }

    /// The next `n` requests get 429 `E0000047`, advertising a reset
    /// `reset_in_secs` after each request.
    pub fn rate_limit_next(&self, n: usize, reset_in_secs: u64) {
        self.state
            .faults
            .push(Fault::RateLimited { reset_in_secs }, n);
    }

    /// The next `n` requests get 429 `E0000047` with `Retry-After: secs`.
    pub fn retry_after_next(&self, n: usize, secs: u64) {
        self.state.faults.push(Fault::RetryAfter { secs }, n);
    }

    /// The next `n` requests get `status` (meant for 5xx) with an Okta error
    /// body (`E0000009`, as Okta sends for internal errors and timeouts).
    /// Faults scheduled by this and [`OktaStandIn::rate_limit_next`] apply in
    /// the order they were scheduled, before authentication is checked.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.state.faults.push(Fault::Status(status), n);
    }

    /// The next `n` requests to the token endpoint get `status` (meant
    /// for 5xx) with Okta's `server_error` body; the code is not used.
    pub fn fail_token_next(&self, n: usize, status: u16) {
        self.state.token_faults.push(Fault::Status(status), n);
    }

    /// Cancels all scheduled faults.
    pub fn clear_faults(&self) {
        self.state.faults.clear();
    }

    /// From now on the API token is rejected with 401 `E0000011`.
    pub fn revoke_token(&self) {
        self.state.revoked.store(true, Ordering::SeqCst);
    }

    /// Accepts the API token again after [`OktaStandIn::revoke_token`].
    pub fn restore_token(&self) {
        self.state.revoked.store(false, Ordering::SeqCst);
    }

    /// The registered OAuth client: (client id, client secret).
    pub fn oauth_client(&self) -> (String, String) {
        self.state.oauth.client()
    }

    /// Registers another OAuth client in place of the current one.
    pub fn set_oauth_client(&self, client_id: &str, client_secret: &str) {
        self.state.oauth.set_client(client_id, client_secret);
    }

    /// Login redirect URIs the authorize endpoint accepts. Empty (the
    /// default) accepts any absolute http(s) URI.
    pub fn set_oauth_redirect_uris(&self, uris: Vec<String>) {
        self.state.oauth.set_redirect_uris(uris);
    }

    /// While set, the consent screen is declined: the authorize endpoint
    /// redirects with `error=access_denied`.
    pub fn set_oauth_decline(&self, decline: bool) {
        self.state.oauth.decline.store(decline, Ordering::SeqCst);
    }

    /// Lifetime of access tokens issued from now on (Okta: one hour).
    pub fn set_access_token_lifetime(&self, lifetime: Duration) {
        let ms = i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX / 2);
        self.state.oauth.access_ttl_ms.store(ms, Ordering::SeqCst);
    }

    /// Limits the scopes the consent grants to these (`None`: everything
    /// asked for), as when the app integration lacks a granted scope.
    pub fn set_oauth_granted_scopes(&self, scopes: Option<Vec<String>>) {
        self.state.oauth.set_granted_scopes(scopes);
    }

    /// Revokes every access and refresh token issued so far.
    pub fn revoke_oauth_tokens(&self) {
        self.state.oauth.revoke_all();
    }

    /// Ends the life of every access token issued so far, as if their hour
    /// ran out early (the stored expiry a client holds is now wrong);
    /// refresh tokens keep working.
    pub fn expire_oauth_access_tokens(&self) {
        self.state.oauth.expire_access();
    }

    /// Authorization codes issued by the authorize endpoint.
    pub fn oauth_codes_issued(&self) -> u64 {
        self.state.oauth.codes_issued.load(Ordering::SeqCst)
    }

    /// Access tokens issued by the token endpoint (codes and refreshes).
    pub fn oauth_tokens_issued(&self) -> u64 {
        self.state.oauth.tokens_issued.load(Ordering::SeqCst)
    }

    /// Successful refresh-token grants.
    pub fn oauth_refreshes(&self) -> u64 {
        self.state.oauth.refreshes.load(Ordering::SeqCst)
    }

    /// Every request served so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.snapshot()
    }

    /// Stops the server, letting in-flight requests finish.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}
