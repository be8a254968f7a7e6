//! Pieces shared by every stand-in: the HTTPS listener, the request log,
//! scheduled fault injection and per-minute rate-limit bookkeeping.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use axum_server::Handle;
use axum_server::accept::NoDelayAcceptor;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use tokio::task::JoinHandle;

use crate::tls::IssuedCert;

/// Locks a mutex, carrying on with the data if another thread panicked while
/// holding it: the stand-ins' state stays consistent between statements, so
/// a poisoned lock only means a test thread died, not that data is torn.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An HTTPS server on an ephemeral loopback port.
pub struct TlsServer {
    addr: SocketAddr,
    handle: Handle<SocketAddr>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl std::fmt::Debug for TlsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl TlsServer {
    /// Binds `127.0.0.1:0` and serves `router` over TLS with `cert`.
    ///
    /// The socket is bound before this returns, so clients may connect as
    /// soon as they have [`TlsServer::addr`].
    pub async fn start(router: Router, cert: &IssuedCert) -> anyhow::Result<TlsServer> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let config = RustlsConfig::from_config(Arc::new(cert.server_config()?));
        let handle = Handle::new();
        // TCP_NODELAY, as a provider's front end sets it: without it the
        // last, partial TLS record of a response waited for the client's
        // delayed ACK, and one large page in five took 40 ms longer
        // (BENCHMARKS.md, fifth pass).
        let acceptor = RustlsAcceptor::new(config).acceptor(NoDelayAcceptor::new());
        let server = axum_server::from_tcp(listener)?
            .acceptor(acceptor)
            .handle(handle.clone());
        let task = tokio::spawn(async move { server.serve(router.into_make_service()).await });
        Ok(TlsServer {
            addr,
            handle,
            task: Some(task),
        })
    }

    /// The bound loopback address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, gives open connections a moment to finish, then
    /// closes them.
    pub async fn shutdown(mut self) {
        self.handle.graceful_shutdown(Some(Duration::from_secs(2)));
        if let Some(task) = self.task.take() {
            match tokio::time::timeout(Duration::from_secs(5), task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => tracing::warn!(error = %e, "stand-in server ended with an error"),
                Ok(Err(e)) => tracing::warn!(error = %e, "stand-in server task failed"),
                Err(_) => tracing::warn!("stand-in server did not stop in time"),
            }
        }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        // A stand-in dropped without `shutdown` (e.g. a failing test) must not
        // keep serving for the rest of the runtime's life.
        if self.task.is_some() {
            self.handle.shutdown();
        }
    }
}

/// The pairs of an `application/x-www-form-urlencoded` text (a query
/// string or a form body); a repeated key keeps its last value.
pub(crate) fn form_params(text: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(text.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// One request as the stand-in saw it, for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// HTTP method, e.g. `GET`.
    pub method: String,
    /// Path plus query string exactly as sent, e.g. `/api/v1/logs?limit=10`.
    pub path_and_query: String,
    /// The `Host` header (or HTTP/2 `:authority`), so tests can check the
    /// client used the provider's real hostname.
    pub host: Option<String>,
    /// Whether an `Authorization` header was sent at all.
    pub has_authorization: bool,
    /// The `Authorization` scheme (`SSWS`, `Bearer`, ...), never the secret.
    pub auth_scheme: Option<String>,
    /// Response status the stand-in returned.
    pub status: u16,
    /// When the request arrived (for counting requests per time window).
    pub at: std::time::Instant,
}

/// Shared, append-only list of [`RecordedRequest`]s.
#[derive(Debug, Clone, Default)]
pub struct RequestLog(Arc<Mutex<Vec<RecordedRequest>>>);

impl RequestLog {
    /// A copy of everything recorded so far, oldest first.
    pub fn snapshot(&self) -> Vec<RecordedRequest> {
        lock(&self.0).clone()
    }

    /// Number of requests recorded so far.
    pub fn len(&self) -> usize {
        lock(&self.0).len()
    }

    /// Whether nothing has been recorded yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Wraps `router` so every request it answers is recorded here.
    pub fn layer(&self, router: Router) -> Router {
        router.layer(axum::middleware::from_fn_with_state(self.clone(), record))
    }
}

async fn record(State(log): State<RequestLog>, req: Request, next: Next) -> Response {
    let at = std::time::Instant::now();
    let headers = req.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.to_string()));
    let auth = headers.get(header::AUTHORIZATION);
    let auth_scheme = auth
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_whitespace().next())
        .map(str::to_owned);
    let mut entry = RecordedRequest {
        method: req.method().to_string(),
        path_and_query: req
            .uri()
            .path_and_query()
            .map_or_else(|| req.uri().path().to_owned(), |pq| pq.to_string()),
        host,
        has_authorization: auth.is_some(),
        auth_scheme,
        status: 0,
        at,
    };
    let response = next.run(req).await;
    entry.status = response.status().as_u16();
    lock(&log.0).push(entry);
    response
}

/// A failure a stand-in should produce instead of its normal answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 429 with the provider's rate-limit body; the limit resets this
    /// many seconds after the request.
    RateLimited {
        /// Seconds until the advertised reset.
        reset_in_secs: u64,
    },
    /// HTTP 429 as [`Fault::RateLimited`], also carrying
    /// `Retry-After: <secs>` (what a proxy or gateway in front of the
    /// provider sends; Zendesk sends it itself).
    RetryAfter {
        /// The `Retry-After` value in seconds; the reset header agrees.
        secs: u64,
    },
    /// The given HTTP status with the provider's server-error body.
    Status(u16),
}

/// Faults scheduled for the next requests, consumed first-in first-out.
#[derive(Debug, Default)]
pub struct FaultPlan(Mutex<VecDeque<(Fault, usize)>>);

impl FaultPlan {
    /// Makes the `n` requests after those already scheduled fail with `fault`.
    pub fn push(&self, fault: Fault, n: usize) {
        if n > 0 {
            lock(&self.0).push_back((fault, n));
        }
    }

    /// Takes the fault for the current request, if one is scheduled.
    pub fn take(&self) -> Option<Fault> {
        let mut queue = lock(&self.0);
        let (fault, left) = queue.front_mut()?;
        let fault = *fault;
        *left -= 1;
        if *left == 0 {
            queue.pop_front();
        }
        Some(fault)
    }

    /// Drops every scheduled fault.
    pub fn clear(&self) {
        lock(&self.0).clear();
    }

    /// Number of requests that will still fail.
    pub fn pending(&self) -> usize {
        lock(&self.0).iter().map(|(_, n)| n).sum()
    }
}

/// Values for a provider's rate-limit response headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateStatus {
    /// Requests allowed per window.
    pub limit: u32,
    /// Requests left in the current window.
    pub remaining: u32,
    /// When the window resets, Unix epoch seconds.
    pub reset_epoch_secs: i64,
}

/// Fixed one-minute windows per bucket (providers count each endpoint family
/// separately). Only reports; it never rejects a request by itself.
#[derive(Debug)]
pub struct RateWindows {
    limit: u32,
    buckets: Mutex<HashMap<&'static str, (i64, u32)>>,
}

impl RateWindows {
    /// Windows allowing `limit` requests per minute.
    pub fn new(limit: u32) -> RateWindows {
        RateWindows {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request against `bucket` at `now_secs` and reports the
    /// state after it.
    pub fn hit(&self, bucket: &'static str, now_secs: i64) -> RateStatus {
        let mut buckets = lock(&self.buckets);
        let (reset, used) = buckets.entry(bucket).or_insert((now_secs + 60, 0));
        if now_secs >= *reset {
            *reset = now_secs + 60;
            *used = 0;
        }
        *used = used.saturating_add(1);
        RateStatus {
            limit: self.limit,
            remaining: self.limit.saturating_sub(*used),
            reset_epoch_secs: *reset,
        }
    }

    /// Marks `bucket` as exhausted until `reset_epoch_secs`, as after a 429.
    pub fn exhaust(&self, bucket: &'static str, reset_epoch_secs: i64) -> RateStatus {
        lock(&self.buckets).insert(bucket, (reset_epoch_secs, self.limit));
        RateStatus {
            limit: self.limit,
            remaining: 0,
            reset_epoch_secs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_fifo_and_counted() {
        let plan = FaultPlan::default();
        plan.push(Fault::Status(503), 2);
        plan.push(Fault::RateLimited { reset_in_secs: 5 }, 1);
        plan.push(Fault::Status(500), 0);
        assert_eq!(plan.pending(), 3);
        assert_eq!(plan.take(), Some(Fault::Status(503)));
        assert_eq!(plan.take(), Some(Fault::Status(503)));
        assert_eq!(plan.take(), Some(Fault::RateLimited { reset_in_secs: 5 }));
        assert_eq!(plan.take(), None);
    }

    #[test]
    fn rate_windows_count_down_and_reset() {
        let w = RateWindows::new(2);
        assert_eq!(w.hit("a", 100).remaining, 1);
        assert_eq!(w.hit("a", 101).remaining, 0);
        assert_eq!(w.hit("a", 102).remaining, 0);
        assert_eq!(w.hit("b", 102).remaining, 1);
        let after = w.hit("a", 160);
        assert_eq!((after.remaining, after.reset_epoch_secs), (1, 220));
        assert_eq!(w.exhaust("a", 300).remaining, 0);
        assert_eq!(w.hit("a", 200).remaining, 0);
    }
}
