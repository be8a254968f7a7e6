//! A Zendesk Support account stand-in: audit logs, users, brands and the
//! account's OAuth server over HTTPS under `{subdomain}.zendesk.com`.
//!
//! Clients reach it by resolving that hostname to [`ZendeskStandIn::addr`]
//! and trusting the [`TestCa`] that issued its certificate. Links in
//! responses use the real hostname without a port, as Zendesk's do.
//!
//! Behaviour worth knowing when writing tests against it:
//!
//! - Credentials: `Authorization: Basic base64("{email}/token:{api_token}")`
//!   for the owner's API token, or `Bearer` with a token from
//!   `POST /oauth/tokens`. Both act as the account's first user (the
//!   owner), whose role is switchable. A bad Basic credential gets 401
//!   `{"error":"Couldn't authenticate you"}`, a bad Bearer 401
//!   `invalid_token`. `/api/v2/users/me` without credentials answers 200
//!   with the anonymous user (`id: null`), as Zendesk does; with
//!   [`ZendeskStandIn::set_anonymous_for_bad_basic`] a bad Basic
//!   credential gets that answer too.
//! - OAuth scopes: `auditlogs:read` (or `read`) for audit logs,
//!   `users:read` (or `read`) for users, `read` for brands; a missing one
//!   is 403 `{"error":"Forbidden","description":"Missing the following
//!   required scopes: ..."}`.
//! - Audit logs need an admin (the owner's role) and an Enterprise plan;
//!   otherwise 403 with Zendesk's generic "You do not have access to this
//!   page" body. Users need an admin or agent.
//! - `GET /api/v2/audit_logs`: `filter[created_at][]` twice (start, end,
//!   both inclusive at one-second resolution), `filter[source_type]`,
//!   `filter[source_id]` (with a source type), `filter[actor_id]`,
//!   `filter[ip_address]`, `filter[action]`. Cursor pagination when any
//!   `page[...]` parameter is given (`page[size]` 1..=100, `sort=created_at`
//!   or `-created_at`, the default), else offset pagination (`page`,
//!   `per_page`, `sort_order`), refused past the first 10 000 records.
//!   Cursor envelope: `meta.has_more`, `meta.after_cursor`,
//!   `meta.before_cursor`, `links.next`, `links.prev`; the cursors and links
//!   are present whenever the page has rows, so only `has_more` says
//!   whether to continue.
//! - `GET /api/v2/users`: the same two pagination styles, by id.
//! - Every API response carries `x-rate-limit`/`x-rate-limit-remaining` and
//!   either the documented `ratelimit-*` or the recorded `rate-limit*`
//!   spelling (see [`RateHeaderStyle`]). Scheduled faults are served
//!   before credentials are checked, in the order they were scheduled.

mod api;
mod cursor;
mod data;
mod oauth;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};
use std::time::Duration;

use axum::Router;

use crate::server::{Fault, FaultPlan, RateWindows, RecordedRequest, RequestLog, TlsServer};
use crate::synth::now_ms;
use crate::tls::TestCa;
use data::{Directory, StoredEvent};

/// The OAuth client registered at start (see [`ZendeskStandIn::set_oauth_client`]).
pub const DEFAULT_CLIENT_ID: &str = "ward_audit";
/// Its secret (Zendesk secrets are 64 hex characters).
pub const DEFAULT_CLIENT_SECRET: &str =
    "5f0c1b9e2d7a4c3f8e6b1a0d9c8b7a6f5e4d3c2b1a09f8e7d6c5b4a392817060";

/// Zendesk Suite plans; audit logs come with Enterprise and Enterprise Plus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Team (200 requests/min).
    Team,
    /// Growth (400/min).
    Growth,
    /// Professional (400/min).
    Professional,
    /// Enterprise (700/min), with audit logs.
    Enterprise,
    /// Enterprise Plus (2500/min with High Volume API), with audit logs.
    EnterprisePlus,
}

impl Plan {
    /// Whether the plan includes the audit log API.
    pub fn has_audit_logs(self) -> bool {
        matches!(self, Plan::Enterprise | Plan::EnterprisePlus)
    }

    /// The plan's account-wide API limit per minute.
    pub fn requests_per_minute(self) -> u32 {
        match self {
            Plan::Team => 200,
            Plan::Growth | Plan::Professional => 400,
            Plan::Enterprise => 700,
            Plan::EnterprisePlus => 2500,
        }
    }
}

/// Which spelling of the rate-limit headers responses carry (both with
/// `x-rate-limit` and `x-rate-limit-remaining`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateHeaderStyle {
    /// `ratelimit-limit`, `ratelimit-remaining`, `ratelimit-reset` (the
    /// developer docs).
    Documented,
    /// `rate-limit`, `rate-limit-remaining`, `rate-limit-reset` (a 2023
    /// recording).
    Recorded,
}

/// How the stand-in account is populated and behaves.
#[derive(Debug, Clone)]
pub struct ZendeskConfig {
    /// `ward-demo` serves `ward-demo.zendesk.com`.
    pub subdomain: String,
    /// The account's (default brand's) name.
    pub account_name: String,
    /// E-mail of the owner, the first user; API tokens authenticate as
    /// `{owner_email}/token`.
    pub owner_email: String,
    /// The only API token accepted.
    pub api_token: String,
    /// Audit log records present at start.
    pub events: usize,
    /// Users (at least one: the owner).
    pub users: usize,
    /// The initial records are spread over this many days before start
    /// (the oldest a minute inside the span).
    pub backfill_span_days: u32,
    /// Seed for all generated data.
    pub seed: u64,
    /// The owner's role: `admin`, `agent` or `end-user`.
    pub owner_role: String,
    /// The account's plan.
    pub plan: Plan,
    /// Limit advertised in the rate-limit headers (`None`: the plan's).
    /// The stand-in only reports it; faults produce the 429s.
    pub rate_limit_per_minute: Option<u32>,
    /// Rate-limit header spelling.
    pub rate_headers: RateHeaderStyle,
}

impl Default for ZendeskConfig {
    fn default() -> Self {
        ZendeskConfig {
            subdomain: "ward-demo".to_owned(),
            account_name: "Ward Demo Support".to_owned(),
            owner_email: "owner@ward-demo.example".to_owned(),
            api_token: "wardDemoZendeskApiToken0123456789abcdefGH".to_owned(),
            events: 1000,
            users: 40,
            backfill_span_days: 7,
            seed: 1,
            owner_role: "admin".to_owned(),
            plan: Plan::Enterprise,
            rate_limit_per_minute: None,
            rate_headers: RateHeaderStyle::Documented,
        }
    }
}

/// Switches the handle flips while the server runs.
#[derive(Debug)]
struct Switches {
    role: String,
    plan: Plan,
}

#[derive(Debug)]
struct ZendeskState {
    owner_email: String,
    api_token: String,
    seed: u64,
    rate_headers: RateHeaderStyle,
    switches: RwLock<Switches>,
    token_revoked: AtomicBool,
    anonymous_for_bad_basic: AtomicBool,
    dir: Directory,
    /// Sorted by (created_at, id).
    events: RwLock<Vec<StoredEvent>>,
    faults: FaultPlan,
    rates: RateWindows,
    oauth: oauth::OAuthState,
}

impl ZendeskState {
    fn events(&self) -> RwLockReadGuard<'_, Vec<StoredEvent>> {
        self.events.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn switches(&self) -> RwLockReadGuard<'_, Switches> {
        self.switches.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn rendered<'a>(&self, e: &'a StoredEvent) -> &'a data::Rendered {
        e.rendered
            .get_or_init(|| data::render(&self.dir, self.seed, e.seq, e.created_s, e.id))
    }
}

/// A running Zendesk stand-in. Dropping it stops the server; prefer
/// [`ZendeskStandIn::shutdown`] to let in-flight requests finish.
pub struct ZendeskStandIn {
    state: Arc<ZendeskState>,
    requests: RequestLog,
    server: TlsServer,
}

impl std::fmt::Debug for ZendeskStandIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZendeskStandIn")
            .field("host", &self.state.dir.host)
            .field("addr", &self.server.addr())
            .finish_non_exhaustive()
    }
}

impl ZendeskStandIn {
    /// Generates the account and serves it on `127.0.0.1:<ephemeral>` with a
    /// certificate for `{subdomain}.zendesk.com` issued by `ca`.
    pub async fn start(cfg: ZendeskConfig, ca: &TestCa) -> anyhow::Result<ZendeskStandIn> {
        anyhow::ensure!(
            !cfg.subdomain.is_empty()
                && cfg
                    .subdomain
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "subdomain must be a DNS label such as \"ward-demo\", got {:?}",
            cfg.subdomain
        );
        anyhow::ensure!(!cfg.api_token.is_empty(), "api_token must not be empty");
        anyhow::ensure!(
            matches!(cfg.owner_role.as_str(), "admin" | "agent" | "end-user"),
            "owner_role must be admin, agent or end-user, got {:?}",
            cfg.owner_role
        );
        let start = now_ms();
        let dir = Directory::generate(
            &cfg.subdomain,
            &cfg.account_name,
            &cfg.owner_email,
            cfg.seed,
            cfg.users,
            start,
        );
        // The newest initial record lands a second before start, so records
        // appended "now" are always newer; the oldest a minute inside the
        // span, so a backfill of that many days begun soon after sees all.
        let last = start / 1000 - 1;
        let first = (start / 1000 - i64::from(cfg.backfill_span_days) * 86_400 + 60).min(last);
        let n = cfg.events;
        let mut events: Vec<StoredEvent> = Vec::with_capacity(n);
        for i in 0..n {
            let even = if n <= 1 {
                last
            } else {
                first + ((i128::from(last - first) * i as i128) / (n as i128 - 1)) as i64
            };
            let created_s = match events.last() {
                Some(prev) if data::ties_previous(cfg.seed, i as u64) => prev.created_s,
                Some(prev) => even.max(prev.created_s),
                None => even,
            };
            events.push(StoredEvent {
                created_s,
                id: data::event_id(cfg.seed, i as u64),
                seq: i as u64,
                rendered: std::sync::OnceLock::new(),
            });
        }
        let state = Arc::new(ZendeskState {
            owner_email: cfg.owner_email.clone(),
            api_token: cfg.api_token.clone(),
            seed: cfg.seed,
            rate_headers: cfg.rate_headers,
            switches: RwLock::new(Switches {
                role: cfg.owner_role.clone(),
                plan: cfg.plan,
            }),
            token_revoked: AtomicBool::new(false),
            anonymous_for_bad_basic: AtomicBool::new(false),
            dir,
            events: RwLock::new(events),
            faults: FaultPlan::default(),
            rates: RateWindows::new(
                cfg.rate_limit_per_minute
                    .unwrap_or(cfg.plan.requests_per_minute()),
            ),
            oauth: oauth::OAuthState::new(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET),
        });
        let cert = ca.issue(&[&state.dir.host])?;
        let requests = RequestLog::default();
        let router = requests.layer(
            Router::new()
                .fallback(api::dispatch)
                .with_state(state.clone()),
        );
        let server = TlsServer::start(router, &cert).await?;
        tracing::debug!(host = %state.dir.host, addr = %server.addr(), "Zendesk stand-in listening");
        Ok(ZendeskStandIn {
            state,
            requests,
            server,
        })
    }

    /// The loopback address to resolve [`ZendeskStandIn::host`] to.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The account's hostname, e.g. `ward-demo.zendesk.com`.
    pub fn host(&self) -> String {
        self.state.dir.host.clone()
    }

    /// `https://{host}`, as a client would configure it.
    pub fn base_url(&self) -> String {
        format!("https://{}", self.state.dir.host)
    }

    /// The account's display name (its default brand's name).
    pub fn account_name(&self) -> String {
        self.state.dir.account_name.clone()
    }

    /// The API token's owner e-mail and the token.
    pub fn api_token(&self) -> (String, String) {
        (self.state.owner_email.clone(), self.state.api_token.clone())
    }

    /// Writes `n` audit log records now (all in the current second, as a
    /// bulk change would); the next read whose window includes now sees
    /// them.
    pub fn append_events(&self, n: usize) {
        self.append(n, |last_s| {
            last_s.map_or(now_ms() / 1000, |s| s.max(now_ms() / 1000))
        });
    }

    /// Appends `n` events in the second of the newest one (the clock's
    /// second if there is none): a burst that a poll splits, whatever the
    /// wall clock did meanwhile.
    pub fn append_events_in_last_second(&self, n: usize) {
        self.append(n, |last_s| last_s.unwrap_or(now_ms() / 1000));
    }

    /// Appends `n` events created in the second `second` picks from the
    /// newest event's.
    fn append(&self, n: usize, second: impl FnOnce(Option<i64>) -> i64) {
        let mut log = self
            .state
            .events
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        // Never go back in time, even if the wall clock does.
        let created_s = second(log.last().map(|e| e.created_s));
        log.reserve(n);
        for _ in 0..n {
            let seq = log.len() as u64;
            log.push(StoredEvent {
                created_s,
                id: data::event_id(self.state.seed, seq),
                seq,
                rendered: std::sync::OnceLock::new(),
            });
        }
    }

    /// Publishes one record *late*: written now, but with a `created_at`
    /// `age_secs` in the past, as Zendesk does for records that become
    /// visible after later ones (the audit log has no persistence order).
    /// A window that already read past that second does not see it again.
    /// Returns its id.
    pub fn publish_late(&self, age_secs: i64) -> String {
        let mut log = self
            .state
            .events
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let seq = log.len() as u64;
        let created_s = now_ms() / 1000 - age_secs;
        let id = data::event_id(self.state.seed, seq);
        // Ids grow with the sequence number, so the new one sorts last
        // within its second: the (created_at, id) order stays intact.
        let at = log.partition_point(|e| e.created_s <= created_s);
        log.insert(
            at,
            StoredEvent {
                created_s,
                id,
                seq,
                rendered: std::sync::OnceLock::new(),
            },
        );
        id.to_string()
    }

    /// Records stored.
    pub fn event_count(&self) -> usize {
        self.state.events().len()
    }

    /// Every record's id (as the connector reports it), oldest first.
    pub fn event_ids(&self) -> Vec<String> {
        self.state
            .events()
            .iter()
            .map(|e| e.id.to_string())
            .collect()
    }

    /// Every user's id, in id order; the first is the owner.
    pub fn user_ids(&self) -> Vec<String> {
        self.state
            .dir
            .users
            .iter()
            .map(|u| u.id.to_string())
            .collect()
    }

    /// Changes the owner's role (`admin`, `agent`, `end-user`).
    pub fn set_owner_role(&self, role: &str) {
        self.state
            .switches
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .role = role.to_owned();
    }

    /// Changes the account's plan.
    pub fn set_plan(&self, plan: Plan) {
        self.state
            .switches
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .plan = plan;
    }

    /// The next `n` API requests get 429 with `Retry-After: secs` (and the
    /// rate-limit headers saying 0 left, resetting in `secs`).
    pub fn rate_limit_next(&self, n: usize, secs: u64) {
        self.state.faults.push(Fault::RetryAfter { secs }, n);
    }

    /// The next `n` API requests get 429 without `Retry-After`: only the
    /// rate-limit headers say when the window resets.
    pub fn rate_limit_without_retry_after_next(&self, n: usize, reset_in_secs: u64) {
        self.state
            .faults
            .push(Fault::RateLimited { reset_in_secs }, n);
    }

    /// The next `n` API requests get `status` (meant for 5xx).
    pub fn fail_next(&self, n: usize, status: u16) {
        self.state.faults.push(Fault::Status(status), n);
    }

    /// Cancels all scheduled faults.
    pub fn clear_faults(&self) {
        self.state.faults.clear();
    }

    /// From now on the API token is rejected (401).
    pub fn revoke_token(&self) {
        self.state.token_revoked.store(true, Ordering::SeqCst);
    }

    /// Accepts the API token again.
    pub fn restore_token(&self) {
        self.state.token_revoked.store(false, Ordering::SeqCst);
    }

    /// While set, a bad Basic credential on `/api/v2/users/me` gets 200
    /// with the anonymous user instead of 401.
    pub fn set_anonymous_for_bad_basic(&self, on: bool) {
        self.state
            .anonymous_for_bad_basic
            .store(on, Ordering::SeqCst);
    }

    /// The registered OAuth client: (unique identifier, secret).
    pub fn oauth_client(&self) -> (String, String) {
        self.state.oauth.client()
    }

    /// Registers another OAuth client in place of the current one.
    pub fn set_oauth_client(&self, client_id: &str, client_secret: &str) {
        self.state.oauth.set_client(client_id, client_secret);
    }

    /// Redirect URLs the client accepts. Empty (the default) accepts any
    /// absolute http(s) URL.
    pub fn set_oauth_redirect_uris(&self, uris: Vec<String>) {
        self.state.oauth.set_redirect_uris(uris);
    }

    /// While set, the consent screen is declined (`error=access_denied`).
    pub fn set_oauth_decline(&self, decline: bool) {
        self.state.oauth.decline.store(decline, Ordering::SeqCst);
    }

    /// How long authorization codes issued from now on stay valid
    /// (Zendesk: 120 s).
    pub fn set_oauth_code_lifetime(&self, lifetime: Duration) {
        let ms = i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX / 2);
        self.state.oauth.code_ttl_ms.store(ms, Ordering::SeqCst);
    }

    /// Restricts what a consent grants to these scopes (`None`: whatever is
    /// asked for).
    pub fn set_oauth_granted_scopes(&self, scopes: Option<Vec<String>>) {
        self.state.oauth.set_granted_scopes(scopes);
    }

    /// Revokes every OAuth token issued so far.
    pub fn revoke_oauth_tokens(&self) {
        self.state.oauth.revoke_all();
    }

    /// Authorization codes issued.
    pub fn oauth_codes_issued(&self) -> u64 {
        self.state.oauth.codes_issued.load(Ordering::SeqCst)
    }

    /// Access tokens issued.
    pub fn oauth_tokens_issued(&self) -> u64 {
        self.state.oauth.tokens_issued.load(Ordering::SeqCst)
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
