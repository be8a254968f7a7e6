//! An Egnyte domain stand-in: OAuth, userinfo, users and the Audit
//! Reporting API v2 stream over HTTPS under the domain's real hostname
//! (`{domain}.egnyte.com`).
//!
//! Clients reach it by resolving that hostname to [`EgnyteStandIn::addr`]
//! and trusting the [`TestCa`] that issued its certificate.
//!
//! Behaviour worth knowing when writing tests against it:
//!
//! - `GET /puboauth/token?client_id&redirect_uri&scope&state&response_type=code`
//!   is the consent page, answered at once with a 302 to the redirect URI
//!   (`code` and `state`, or `error=access_denied` while
//!   [`EgnyteStandIn::set_oauth_decline`] is on). `POST /puboauth/token`
//!   (form body) exchanges a code (single-use, 120 s) for a token: by
//!   default Egnyte's long-lived kind (`expires_in: -1`, no refresh token);
//!   [`EgnyteStandIn::set_token_lifetime`] switches to expiring tokens with
//!   refresh tokens. A wrong secret gets 401 `invalid_client`, an unknown
//!   key the gateway's 403 "Developer Inactive".
//! - The API (`/pubapi/...`) wants `Authorization: Bearer <token>`. No or an
//!   unknown token: 403 with `X-Mashery-Error-Code:
//!   ERR_403_DEVELOPER_INACTIVE`; a revoked one
//!   ([`EgnyteStandIn::revoke_tokens`]): 401.
//! - `POST` (JSON body) or `GET` (query) `/pubapi/v2/audit/stream`: the first
//!   request needs `startDate` within the last 7 days (400 otherwise),
//!   optionally `endDate` and `auditType`; later ones only `nextCursor`
//!   (400 when mixed or when the cursor was not issued here). Pages hold up
//!   to `page_size` events in time order; `moreEvents` is true when more
//!   match right now; `nextCursor` is always returned and resumes after
//!   the last event served, so events appended later appear on the next
//!   request. Needs scope `Egnyte.audit` (403), a plan with audit reporting
//!   (403) and an administrator or a power user allowed to run reports
//!   (403), in that order. Responses carry `x-ratelimit-*-minute/-hour`
//!   headers; 429s happen only on demand
//!   ([`EgnyteStandIn::audit_rate_limit_next`]) or with
//!   [`EgnyteConfig::enforce_audit_rate_limit`].
//! - `GET /pubapi/v2/users?startIndex&count` (1-based, count ≤ 100) and
//!   `/pubapi/v2/users/{id}` need scope `Egnyte.user` and an administrator or
//!   power user (403 `{"Errors":[...]}` otherwise). The listing's array key
//!   and value types follow [`UsersListStyle`].
//! - `GET /pubapi/v1/userinfo` returns the connected user (user 0).
//! - Throttling on demand at the gateway, before the token is checked: 403
//!   `ERR_403_DEVELOPER_OVER_QPS` / `_OVER_RATE` with an HTML body and
//!   `Retry-After` ([`EgnyteStandIn::throttle_qps_next`],
//!   [`EgnyteStandIn::throttle_over_rate_next`]), and plain statuses
//!   ([`EgnyteStandIn::fail_next`]).

mod api;
mod cursor;
mod data;
mod oauth;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock, RwLockReadGuard};
use std::time::Duration;

use axum::Router;

pub use data::UsersListStyle;

use crate::server::{RecordedRequest, RequestLog, TlsServer, lock};
use crate::synth::{DAY_MS, now_ms};
use crate::tls::TestCa;
use cursor::CursorCodec;
use data::DirUser;

/// The API key (OAuth client id) registered at start.
pub const DEFAULT_CLIENT_ID: &str = "wardegnytedemo7k2m9q4x8p";
/// Its shared secret.
pub const DEFAULT_CLIENT_SECRET: &str = "WardEgnyteDemoSecret5d1e";
/// Audit stream requests allowed per minute and per hour.
pub const AUDIT_PER_MINUTE: u32 = 10;
/// See [`AUDIT_PER_MINUTE`].
pub const AUDIT_PER_HOUR: u32 = 100;

/// Who connected (the user behind the token), which decides what the
/// audit and users APIs allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerRole {
    /// An Egnyte administrator: everything.
    Admin,
    /// A power user; audit reporting only with the report permission.
    PowerUser {
        /// Whether an administrator allowed this power user to run reports.
        can_run_reports: bool,
    },
    /// A standard user: neither audit reporting nor user management.
    StandardUser,
}

/// How the stand-in domain is populated and behaves.
#[derive(Debug, Clone)]
pub struct EgnyteConfig {
    /// Domain: `ward-demo` serves `ward-demo.egnyte.com`.
    pub domain: String,
    /// Audit events present at start.
    pub events: usize,
    /// Users in the domain (at least one: the connected user).
    pub users: usize,
    /// The initial events are spread evenly over this many days before
    /// start. Keep it under 7 to have all of them inside the stream's window.
    pub backfill_span_days: u32,
    /// Seed for all generated data; the same seed gives the same ids.
    pub seed: u64,
    /// Events per stream page. Egnyte documents up to 10 000 (one version
    /// of its page says 5 000).
    pub page_size: usize,
    /// Role of the connected user.
    pub caller: CallerRole,
    /// Whether the plan includes audit reporting.
    pub audit_reporting: bool,
    /// Refuse audit stream requests past 10 a minute / 100 an hour with 429
    /// and `Retry-After`, as Egnyte does. Off by default: the limits are
    /// only reported in headers, so tests are not slowed down unless they
    /// ask for it.
    pub enforce_audit_rate_limit: bool,
}

impl Default for EgnyteConfig {
    fn default() -> Self {
        EgnyteConfig {
            domain: "ward-demo".to_owned(),
            events: 1000,
            users: 25,
            backfill_span_days: 6,
            seed: 1,
            page_size: 5000,
            caller: CallerRole::Admin,
            audit_reporting: true,
            enforce_audit_rate_limit: false,
        }
    }
}

/// One audit event as stored; the log is in time order.
#[derive(Debug)]
struct StoredEvent {
    date_ms: i64,
    kind: u8,
    json: OnceLock<Box<str>>,
}

/// A failure the gateway produces instead of the normal answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GatewayFault {
    OverQps { secs: u64 },
    OverRate { secs: u64 },
    Status(u16),
}

/// Fixed one-minute and one-hour windows of the audit API.
#[derive(Debug, Default)]
struct AuditWindows {
    minute: (i64, u32),
    hour: (i64, u32),
}

/// State shared by the request handlers and the test-facing handle.
#[derive(Debug)]
struct EgnyteState {
    host: String,
    seed: u64,
    users: Vec<DirUser>,
    events: RwLock<Vec<StoredEvent>>,
    page_size: AtomicUsize,
    caller: Mutex<CallerRole>,
    audit_reporting: AtomicBool,
    list_style: Mutex<UsersListStyle>,
    enforce_audit_limit: AtomicBool,
    gateway_faults: Mutex<VecDeque<(GatewayFault, usize)>>,
    audit_faults: Mutex<VecDeque<(u64, usize)>>,
    windows: Mutex<AuditWindows>,
    quota_used: AtomicU64,
    cursors: CursorCodec,
    oauth: oauth::OAuthState,
}

fn take<T: Copy>(queue: &Mutex<VecDeque<(T, usize)>>) -> Option<T> {
    let mut q = lock(queue);
    let (item, left) = q.front_mut()?;
    let item = *item;
    *left -= 1;
    if *left == 0 {
        q.pop_front();
    }
    Some(item)
}

impl EgnyteState {
    fn events(&self) -> RwLockReadGuard<'_, Vec<StoredEvent>> {
        self.events.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn event_json<'a>(&self, seq: usize, e: &'a StoredEvent) -> &'a str {
        e.json.get_or_init(|| {
            data::render_event(&self.users, self.seed, seq as u64, e.date_ms, e.kind).into()
        })
    }

    fn caller(&self) -> CallerRole {
        *lock(&self.caller)
    }

    fn list_style(&self) -> UsersListStyle {
        *lock(&self.list_style)
    }

    /// `userType` of user `i`; user 0's follows the caller role.
    fn user_type(&self, i: usize) -> &'static str {
        if i == 0 {
            match self.caller() {
                CallerRole::Admin => "admin",
                CallerRole::PowerUser { .. } => "power",
                CallerRole::StandardUser => "standard",
            }
        } else {
            self.users[i].user_type
        }
    }

    fn take_gateway_fault(&self) -> Option<GatewayFault> {
        take(&self.gateway_faults)
    }

    fn take_audit_fault(&self) -> Option<u64> {
        take(&self.audit_faults)
    }

    /// Counts one audit request at `now_secs` and decides whether it is
    /// refused (a forced 429, or over a window with enforcement on).
    fn audit_window(&self, now_secs: i64, forced: Option<u64>) -> api::WindowState {
        let mut w = lock(&self.windows);
        if now_secs >= w.minute.0 + 60 {
            w.minute = (now_secs - now_secs % 60, 0);
        }
        if now_secs >= w.hour.0 + 3600 {
            w.hour = (now_secs - now_secs % 3600, 0);
        }
        let enforce = self.enforce_audit_limit.load(Ordering::SeqCst);
        let refused = if let Some(secs) = forced {
            Some(secs)
        } else if enforce && w.hour.1 >= AUDIT_PER_HOUR {
            Some(
                u64::try_from(w.hour.0 + 3600 - now_secs)
                    .unwrap_or(1)
                    .max(1),
            )
        } else if enforce && w.minute.1 >= AUDIT_PER_MINUTE {
            Some(
                u64::try_from(w.minute.0 + 60 - now_secs)
                    .unwrap_or(1)
                    .max(1),
            )
        } else {
            None
        };
        if refused.is_none() {
            w.minute.1 += 1;
            w.hour.1 += 1;
        }
        api::WindowState {
            remaining_minute: AUDIT_PER_MINUTE.saturating_sub(w.minute.1),
            remaining_hour: AUDIT_PER_HOUR.saturating_sub(w.hour.1),
            refused,
        }
    }

    fn push_events(&self, dates: impl Iterator<Item = i64>) {
        let mut log = self.events.write().unwrap_or_else(PoisonError::into_inner);
        for date_ms in dates {
            let seq = log.len() as u64;
            log.push(StoredEvent {
                date_ms,
                kind: data::event_kind(self.seed, seq),
                json: OnceLock::new(),
            });
        }
    }
}

/// A running Egnyte stand-in. Dropping it stops the server; prefer
/// [`EgnyteStandIn::shutdown`] to let in-flight requests finish.
pub struct EgnyteStandIn {
    state: Arc<EgnyteState>,
    requests: RequestLog,
    server: TlsServer,
}

impl std::fmt::Debug for EgnyteStandIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EgnyteStandIn")
            .field("host", &self.state.host)
            .field("addr", &self.server.addr())
            .finish_non_exhaustive()
    }
}

impl EgnyteStandIn {
    /// Generates the domain and starts serving it on `127.0.0.1:<ephemeral>`
    /// with a certificate for `{domain}.egnyte.com` issued by `ca`.
    pub async fn start(cfg: EgnyteConfig, ca: &TestCa) -> anyhow::Result<EgnyteStandIn> {
        anyhow::ensure!(
            !cfg.domain.is_empty()
                && cfg
                    .domain
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "domain must be a DNS label such as \"ward-demo\", got {:?}",
            cfg.domain
        );
        let host = format!("{}.egnyte.com", cfg.domain);
        let state = Arc::new(EgnyteState {
            users: data::generate_users(&cfg.domain, cfg.seed, cfg.users),
            host,
            seed: cfg.seed,
            events: RwLock::new(Vec::with_capacity(cfg.events)),
            page_size: AtomicUsize::new(cfg.page_size.max(1)),
            caller: Mutex::new(cfg.caller),
            audit_reporting: AtomicBool::new(cfg.audit_reporting),
            list_style: Mutex::new(UsersListStyle::Sdk),
            enforce_audit_limit: AtomicBool::new(cfg.enforce_audit_rate_limit),
            gateway_faults: Mutex::new(VecDeque::new()),
            audit_faults: Mutex::new(VecDeque::new()),
            windows: Mutex::new(AuditWindows::default()),
            quota_used: AtomicU64::new(0),
            cursors: CursorCodec::new(&cfg.domain, cfg.seed),
            oauth: oauth::OAuthState::new(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET),
        });
        // Evenly spread, strictly increasing, the newest a second before
        // start so events appended "now" are always newer.
        let n = cfg.events;
        let last = now_ms() - 1000;
        let first = last - i64::from(cfg.backfill_span_days) * DAY_MS;
        state.push_events((0..n).map(|i| {
            if n <= 1 {
                last
            } else {
                first + ((i128::from(last - first) * i as i128) / (n as i128 - 1)) as i64
            }
        }));
        let cert = ca.issue(&[&state.host])?;
        let requests = RequestLog::default();
        let router = requests.layer(
            Router::new()
                .fallback(api::dispatch)
                .with_state(state.clone()),
        );
        let server = TlsServer::start(router, &cert).await?;
        tracing::debug!(host = %state.host, addr = %server.addr(), "Egnyte stand-in listening");
        Ok(EgnyteStandIn {
            state,
            requests,
            server,
        })
    }

    /// The loopback address to resolve [`EgnyteStandIn::host`] to.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The domain's hostname, e.g. `ward-demo.egnyte.com`.
    pub fn host(&self) -> String {
        self.state.host.clone()
    }

    /// `https://{host}`, as a client would configure it.
    pub fn base_url(&self) -> String {
        format!("https://{}", self.state.host)
    }

    /// Records `n` new events now (one millisecond apart); the next stream
    /// request sees them.
    pub fn append_events(&self, n: usize) {
        let start = {
            let log = self.state.events();
            log.last()
                .map_or(now_ms(), |e| (e.date_ms + 1).max(now_ms()))
        };
        self.state.push_events((0..n).map(|i| start + i as i64));
    }

    /// Events stored.
    pub fn event_count(&self) -> usize {
        self.state.events().len()
    }

    /// The id the Ward connector derives for every event (Egnyte events
    /// carry none: SHA-256 of the canonical JSON), in time order.
    pub fn event_ids(&self) -> Vec<String> {
        let log = self.state.events();
        log.iter()
            .enumerate()
            .map(|(i, e)| data::event_id(self.state.event_json(i, e)))
            .collect()
    }

    /// Every event's JSON as served, in time order.
    pub fn event_jsons(&self) -> Vec<String> {
        let log = self.state.events();
        log.iter()
            .enumerate()
            .map(|(i, e)| self.state.event_json(i, e).to_owned())
            .collect()
    }

    /// Every user's id, in listing order; the first is the connected user.
    pub fn user_ids(&self) -> Vec<String> {
        self.state.users.iter().map(|u| u.id.to_string()).collect()
    }

    /// Changes the connected user's role.
    pub fn set_caller_role(&self, role: CallerRole) {
        *lock(&self.state.caller) = role;
    }

    /// Turns the plan's audit reporting on or off.
    pub fn set_audit_reporting(&self, on: bool) {
        self.state.audit_reporting.store(on, Ordering::SeqCst);
    }

    /// Events per stream page from now on.
    pub fn set_page_size(&self, n: usize) {
        self.state.page_size.store(n.max(1), Ordering::SeqCst);
    }

    /// Which published shape the users listing follows.
    pub fn set_users_list_style(&self, style: UsersListStyle) {
        *lock(&self.state.list_style) = style;
    }

    /// Turns enforcement of the audit API's 10/min and 100/hour on or off.
    pub fn set_enforce_audit_rate_limit(&self, on: bool) {
        self.state.enforce_audit_limit.store(on, Ordering::SeqCst);
    }

    /// The next `n` API requests get the gateway's 403
    /// `ERR_403_DEVELOPER_OVER_QPS` with `Retry-After: secs`.
    pub fn throttle_qps_next(&self, n: usize, secs: u64) {
        self.push_gateway(GatewayFault::OverQps { secs }, n);
    }

    /// The next `n` API requests get the gateway's 403
    /// `ERR_403_DEVELOPER_OVER_RATE` (daily quota) with `Retry-After: secs`.
    pub fn throttle_over_rate_next(&self, n: usize, secs: u64) {
        self.push_gateway(GatewayFault::OverRate { secs }, n);
    }

    /// The next `n` API requests get `status` (meant for 5xx). Gateway
    /// faults apply in the order they were scheduled, before the token is
    /// checked.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.push_gateway(GatewayFault::Status(status), n);
    }

    fn push_gateway(&self, fault: GatewayFault, n: usize) {
        if n > 0 {
            lock(&self.state.gateway_faults).push_back((fault, n));
        }
    }

    /// The next `n` audit stream requests that pass authorization get 429
    /// with `Retry-After: secs` and the audit rate-limit headers.
    pub fn audit_rate_limit_next(&self, n: usize, secs: u64) {
        if n > 0 {
            lock(&self.state.audit_faults).push_back((secs, n));
        }
    }

    /// Cancels all scheduled faults.
    pub fn clear_faults(&self) {
        lock(&self.state.gateway_faults).clear();
        lock(&self.state.audit_faults).clear();
    }

    /// Revokes every token issued so far (the user changed their password
    /// or revoked the app): they get 401 from now on.
    pub fn revoke_tokens(&self) {
        self.state.oauth.revoke_all();
    }

    /// The registered application: (API key, shared secret).
    pub fn oauth_client(&self) -> (String, String) {
        self.state.oauth.client()
    }

    /// Registers another application in place of the current one.
    pub fn set_oauth_client(&self, client_id: &str, client_secret: &str) {
        self.state.oauth.set_client(client_id, client_secret);
    }

    /// Redirect URIs the consent page accepts. Empty (the default) accepts
    /// any HTTPS URI, and HTTP on loopback.
    pub fn set_oauth_redirect_uris(&self, uris: Vec<String>) {
        self.state.oauth.set_redirect_uris(uris);
    }

    /// While set, the user declines the consent screen.
    pub fn set_oauth_decline(&self, decline: bool) {
        self.state.oauth.decline.store(decline, Ordering::SeqCst);
    }

    /// Limits the scopes a consent grants (`None`: everything asked for),
    /// as when the application's key lacks a scope.
    pub fn set_oauth_granted_scopes(&self, scopes: Option<Vec<String>>) {
        self.state.oauth.set_granted_scopes(scopes);
    }

    /// `None` (default): long-lived tokens, `expires_in: -1`, no refresh
    /// token. `Some(d)`: tokens expire after `d` and come with a refresh
    /// token.
    pub fn set_token_lifetime(&self, lifetime: Option<Duration>) {
        let ms = lifetime.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2));
        self.state.oauth.set_lifetime_ms(ms);
    }

    /// Moves the token endpoint's clock (code expiry) by `offset`.
    pub fn advance_oauth_clock(&self, offset: Duration) {
        let ms = i64::try_from(offset.as_millis()).unwrap_or(i64::MAX / 2);
        self.state.oauth.skew_ms.fetch_add(ms, Ordering::SeqCst);
    }

    /// The next `n` token requests get 409 with `Retry-After: secs`.
    pub fn throttle_token_endpoint_next(&self, n: usize, secs: u64) {
        self.state.oauth.throttle(n, secs);
    }

    /// The next `n` token requests fail with `status` (a 5xx from the
    /// gateway) before the code is looked at, so the code stays good.
    pub fn fail_token_endpoint_next(&self, n: usize, status: u16) {
        self.state.oauth.fail(n, status);
    }

    /// Authorization codes issued by the consent page.
    pub fn oauth_codes_issued(&self) -> u64 {
        self.state.oauth.codes_issued.load(Ordering::SeqCst)
    }

    /// Access tokens issued (codes and refreshes).
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
