//! A replay stand-in: serves recorded provider exchanges from a folder of
//! fixture files, under the provider's real hostname, and reports what was
//! asked that no fixture answers and which fixtures were never asked for.
//!
//! A folder holds exchanges as file pairs, in name order
//! (`tests/fixtures/README.md` describes the layout):
//!
//! - `NN-name.request`: one line, `METHOD /path?query`. The method and path
//!   must match exactly; each query parameter listed must be present with
//!   that value (`*` matches any value); parameters not listed are ignored.
//! - `NN-name.response`: an HTTP/1.1 response as on the wire: status line,
//!   header lines, an empty line, then the body, served byte for byte.
//!
//! A request is answered by the first exchange, in name order, that matches
//! it and has not been served yet; when all matching ones were served, the
//! last of them is served again (a poll asking the same thing twice). A
//! request nothing matches gets 404 with a JSON body naming it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use anyhow::{Context, bail};
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;

use crate::server::{RecordedRequest, RequestLog, TlsServer};
use crate::tls::TestCa;

/// One recorded exchange.
#[derive(Debug)]
struct Exchange {
    /// File stem, e.g. `03-logs-first-page`.
    name: String,
    method: String,
    path: String,
    /// Query parameters that must be present (`*`: any value).
    query: Vec<(String, String)>,
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Vec<u8>,
}

impl Exchange {
    fn matches(&self, method: &str, path: &str, query: &[(String, String)]) -> bool {
        self.method == method
            && self.path == path
            && self.query.iter().all(|(k, v)| {
                query
                    .iter()
                    .any(|(qk, qv)| qk == k && (v == "*" || qv == v))
            })
    }
}

#[derive(Debug, Default)]
struct Progress {
    served: Vec<usize>,
    unmatched: Vec<String>,
}

#[derive(Debug)]
struct ReplayState {
    exchanges: Vec<Exchange>,
    progress: Mutex<Progress>,
}

fn lock(m: &Mutex<Progress>) -> MutexGuard<'_, Progress> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running replay stand-in.
pub struct ReplayStandIn {
    state: Arc<ReplayState>,
    requests: RequestLog,
    host: String,
    server: TlsServer,
}

impl std::fmt::Debug for ReplayStandIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayStandIn")
            .field("host", &self.host)
            .field("exchanges", &self.state.exchanges.len())
            .finish_non_exhaustive()
    }
}

impl ReplayStandIn {
    /// Loads every exchange of `dir` and serves them as `host` over TLS.
    pub async fn start(dir: &Path, host: &str, ca: &TestCa) -> anyhow::Result<ReplayStandIn> {
        ReplayStandIn::start_hosts(dir, &[host.to_owned()], ca).await
    }

    /// Loads every exchange of `dir` and serves them over TLS under every
    /// name of `hosts` (a plugin's grant hosts; the first is [`Self::host`]).
    pub async fn start_hosts(
        dir: &Path,
        hosts: &[String],
        ca: &TestCa,
    ) -> anyhow::Result<ReplayStandIn> {
        let Some(host) = hosts.first() else {
            bail!("no host name to serve {} as", dir.display());
        };
        let exchanges = load(dir)?;
        let state = Arc::new(ReplayState {
            exchanges,
            progress: Mutex::new(Progress::default()),
        });
        let requests = RequestLog::default();
        let router = requests.layer(Router::new().fallback(answer).with_state(state.clone()));
        let names: Vec<&str> = hosts.iter().map(String::as_str).collect();
        let server = TlsServer::start(router, &ca.issue(&names)?).await?;
        Ok(ReplayStandIn {
            state,
            requests,
            host: host.to_owned(),
            server,
        })
    }

    /// The bound loopback address.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.addr()
    }

    /// The provider hostname it answers as.
    pub fn host(&self) -> String {
        self.host.clone()
    }

    /// Every request received, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.snapshot()
    }

    /// Fixtures never served, by name.
    pub fn unserved(&self) -> Vec<String> {
        let progress = lock(&self.state.progress);
        self.state
            .exchanges
            .iter()
            .enumerate()
            .filter(|(i, _)| !progress.served.contains(i))
            .map(|(_, e)| e.name.clone())
            .collect()
    }

    /// Requests no fixture matched (`METHOD /path?query`).
    pub fn unmatched(&self) -> Vec<String> {
        lock(&self.state.progress).unmatched.clone()
    }

    /// Names of the fixtures served, in the order they were served.
    pub fn served(&self) -> Vec<String> {
        lock(&self.state.progress)
            .served
            .iter()
            .map(|i| self.state.exchanges[*i].name.clone())
            .collect()
    }

    /// Stops the server.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

async fn answer(State(state): State<Arc<ReplayState>>, req: Request) -> Response {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let raw_query = req.uri().query().unwrap_or("").to_owned();
    let query: Vec<(String, String)> = url::form_urlencoded::parse(raw_query.as_bytes())
        .into_owned()
        .collect();
    let mut progress = lock(&state.progress);
    let matching: Vec<usize> = state
        .exchanges
        .iter()
        .enumerate()
        .filter(|(_, e)| e.matches(&method, &path, &query))
        .map(|(i, _)| i)
        .collect();
    let chosen = matching
        .iter()
        .copied()
        .find(|i| !progress.served.contains(i))
        .or_else(|| matching.last().copied());
    let Some(i) = chosen else {
        let line = if raw_query.is_empty() {
            format!("{method} {path}")
        } else {
            format!("{method} {path}?{raw_query}")
        };
        progress.unmatched.push(line.clone());
        let body = serde_json::json!({ "replay": format!("no fixture answers {line}") });
        let mut response = Response::new(Body::from(body.to_string()));
        *response.status_mut() = StatusCode::NOT_FOUND;
        return response;
    };
    progress.served.push(i);
    drop(progress);
    let exchange = &state.exchanges[i];
    let mut response = Response::new(Body::from(exchange.body.clone()));
    *response.status_mut() = exchange.status;
    for (name, value) in &exchange.headers {
        response.headers_mut().append(name.clone(), value.clone());
    }
    response
}

/// Reads the exchanges of `dir`, in name order.
fn load(dir: &Path) -> anyhow::Result<Vec<Exchange>> {
    let mut requests: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading the fixture folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "request"))
        .collect();
    requests.sort();
    if requests.is_empty() {
        bail!("no *.request fixtures in {}", dir.display());
    }
    requests
        .iter()
        .map(|request| {
            let response = request.with_extension("response");
            let name = request
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            parse_exchange(name, request, &response)
        })
        .collect()
}

fn parse_exchange(name: String, request: &Path, response: &Path) -> anyhow::Result<Exchange> {
    let line = std::fs::read_to_string(request)
        .with_context(|| format!("reading {}", request.display()))?;
    let line = line.lines().next().unwrap_or("").trim();
    let Some((method, target)) = line.split_once(' ') else {
        bail!(
            "{}: expected `METHOD /path?query`, got {line:?}",
            request.display()
        );
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();

    let bytes =
        std::fs::read(response).with_context(|| format!("reading {}", response.display()))?;
    let split = bytes
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|at| (at, 2))
        .into_iter()
        .chain(
            bytes
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|at| (at, 4)),
        )
        .min_by_key(|(at, _)| *at);
    let (head, body) = match split {
        Some((at, len)) => (&bytes[..at], bytes[at + len..].to_vec()),
        None => (&bytes[..], Vec::new()),
    };
    let head = std::str::from_utf8(head)
        .with_context(|| format!("{}: the head is not UTF-8", response.display()))?;
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or("");
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| {
            format!(
                "{}: expected a status line `HTTP/1.1 200 OK`, got {status_line:?}",
                response.display()
            )
        })?;
    let mut headers = Vec::new();
    for header in lines {
        let Some((k, v)) = header.split_once(':') else {
            bail!("{}: bad header line {header:?}", response.display());
        };
        headers.push((
            HeaderName::try_from(k.trim())?,
            HeaderValue::try_from(v.trim())?,
        ));
    }
    Ok(Exchange {
        name,
        method: method.to_owned(),
        path: path.to_owned(),
        query,
        status: StatusCode::from_u16(status)?,
        headers,
        body,
    })
}
