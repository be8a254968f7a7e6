//! `ward plugin record`: [`record`] runs a plugin (test, backfill, cursor
//! round trip, users, exactly what the harness replays) against a real
//! endpoint and writes every exchange as a fixture scenario plus a
//! `harness.toml`, so a vendor makes fixtures from a real tenant.
//!
//! The plugin runs through the real broker (grants, secret substitution,
//! limits). Its grant hosts resolve to a local forwarding proxy with a
//! run-time certificate; the proxy sends each request on to the real host
//! and keeps the response. Before anything is written, every secret value
//! is replaced by its `{{secret:NAME}}` reference with the runtime's own
//! scrubber (`ward_runtime::caps::secrets`): in request lines, response
//! headers and bodies, in every encoding the redactor knows. The written
//! `harness.toml` binds placeholder secret values, never the real ones.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode, header};
use ward_runtime::{Redactor, SecretSet};
use ward_standins::server::TlsServer;
use ward_standins::tls::TestCa;

use crate::HarnessError;
use crate::conformance::{CacheDir, Checks, Session, grant_hosts, manifest_of};
use crate::spec::{Expect, Scenario, Spec};

/// Where the proxy sends requests: by default the real host (system DNS
/// and roots); tests point it at stand-ins.
#[derive(Debug, Clone, Default)]
pub struct Upstream {
    /// Host name → address overrides.
    pub resolve: BTreeMap<String, SocketAddr>,
    /// Extra PEM CA certificates to trust.
    pub extra_roots_pem: Vec<String>,
}

/// What to record.
#[derive(Debug, Clone)]
pub struct Recording {
    /// Instance configuration.
    pub config: BTreeMap<String, String>,
    /// Secret values (the real credentials; never written).
    pub secrets: BTreeMap<String, String>,
    /// Backfill start, RFC 3339.
    pub since: String,
    /// The fixture folder to write (`harness.toml` and `<scenario>/`).
    pub out: PathBuf,
    /// Scenario folder name.
    pub scenario: String,
}

/// What was written.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The scenario folder.
    pub folder: PathBuf,
    /// Exchanges written.
    pub exchanges: usize,
    /// Secret occurrences replaced by references.
    pub redactions: usize,
}

/// One exchange as the proxy saw it.
#[derive(Debug)]
struct Exchange {
    method: String,
    target: String,
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

struct Proxy {
    client: reqwest::Client,
    exchanges: Mutex<Vec<Exchange>>,
}

/// Runs the plugin `bytes` against `upstream` and writes the fixtures.
pub async fn record(
    bytes: &[u8],
    recording: &Recording,
    upstream: &Upstream,
) -> Result<Recorded, HarnessError> {
    let io = |e: &dyn std::fmt::Display| HarnessError::Io(e.to_string());
    let manifest = manifest_of(bytes)?;
    let hosts = grant_hosts(&manifest, &recording.config)?;
    let spec = Spec {
        since: recording.since.clone(),
        config: recording.config.clone(),
        secrets: recording
            .secrets
            .keys()
            .map(|k| (k.clone(), format!("recorded-{k}-placeholder")))
            .collect(),
        scenarios: vec![Scenario {
            name: recording.scenario.clone(),
            expect: Expect::Ok,
        }],
    };
    let since = spec.since_ms().map_err(|e| io(&e))?;

    let mut roots = Vec::new();
    for pem in &upstream.extra_roots_pem {
        roots.push(reqwest::Certificate::from_pem(pem.as_bytes()).map_err(|e| io(&e))?);
    }
    let mut client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(60))
        .tls_certs_merge(roots);
    for (host, addr) in &upstream.resolve {
        client = client.resolve(host, *addr);
    }
    let proxy = Arc::new(Proxy {
        client: client.build().map_err(|e| io(&e))?,
        exchanges: Mutex::new(Vec::new()),
    });
    let ca = TestCa::generate().map_err(|e| io(&e))?;
    let names: Vec<&str> = hosts.iter().map(String::as_str).collect();
    let router = Router::new().fallback(forward).with_state(proxy.clone());
    let server = TlsServer::start(router, &ca.issue(&names).map_err(|e| io(&e))?)
        .await
        .map_err(|e| io(&e))?;
    let cache = CacheDir::new()?;
    let session = Session::start(
        bytes,
        &hosts,
        server.addr(),
        &ca,
        &recording.config,
        &recording.secrets,
        &cache.0,
    )?;
    session
        .ok_run(since, &mut Checks::new(&recording.scenario))
        .await;
    server.shutdown().await;

    let exchanges = std::mem::take(
        &mut *proxy
            .exchanges
            .lock()
            .unwrap_or_else(PoisonError::into_inner),
    );
    let redactor = SecretSet::new(recording.secrets.clone()).redactor();
    let folder = recording.out.join(&recording.scenario);
    std::fs::create_dir_all(&folder)
        .map_err(|e| HarnessError::Io(format!("creating {}: {e}", folder.display())))?;
    let count = exchanges.len();
    let mut redactions = 0;
    for (i, exchange) in exchanges.into_iter().enumerate() {
        redactions += write_exchange(&folder, i + 1, exchange, &redactor)?;
    }
    spec.save(&recording.out)?;
    Ok(Recorded {
        folder,
        exchanges: count,
        redactions,
    })
}

/// Sends one request on to its real host and keeps the exchange.
async fn forward(State(proxy): State<Arc<Proxy>>, req: Request) -> Response {
    let method = req.method().clone();
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .unwrap_or_default();
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let mut headers = req.headers().clone();
    headers.remove(header::HOST);
    let body = match axum::body::to_bytes(req.into_body(), usize::MAX).await {
        Ok(b) => b,
        Err(e) => return failure(format!("reading the plugin's request: {e}")),
    };
    let sent = proxy
        .client
        .request(method.clone(), format!("https://{host}{target}"))
        .headers(headers)
        .body(body)
        .send()
        .await;
    let upstream = match sent {
        Ok(r) => r,
        Err(e) => return failure(format!("forwarding to {host}: {e}")),
    };
    let status = upstream.status();
    let mut headers = upstream.headers().clone();
    let body = match upstream.bytes().await {
        Ok(b) => b.to_vec(),
        Err(e) => return failure(format!("reading {host}'s response: {e}")),
    };
    for hop in [
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
        header::CONNECTION,
        header::CONTENT_ENCODING,
    ] {
        headers.remove(hop);
    }
    proxy
        .exchanges
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Exchange {
            method: method.to_string(),
            target,
            status,
            headers: headers.clone(),
            body: body.clone(),
        });
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

fn failure(message: String) -> Response {
    let mut response = Response::new(Body::from(message));
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response
}

/// Writes `NN-<slug>.request` / `.response`; returns the redactions made.
fn write_exchange(
    folder: &Path,
    n: usize,
    mut exchange: Exchange,
    redactor: &Redactor,
) -> Result<usize, HarnessError> {
    let (target, mut redactions) = redactor.scrub(exchange.target.as_bytes());
    let target = String::from_utf8_lossy(&target).into_owned();
    redactions += ward_runtime::caps::secrets::scrub::response(
        redactor,
        &mut exchange.headers,
        &mut exchange.body,
    );
    let stem = format!("{n:02}-{}", slug(&exchange.method, &target));
    let mut head = format!(
        "HTTP/1.1 {} {}\n",
        exchange.status.as_u16(),
        exchange.status.canonical_reason().unwrap_or("")
    );
    for (name, value) in &exchange.headers {
        head.push_str(&format!(
            "{name}: {}\n",
            String::from_utf8_lossy(value.as_bytes())
        ));
    }
    head.push('\n');
    let mut response = head.into_bytes();
    response.extend_from_slice(&exchange.body);
    let write = |ext: &str, bytes: &[u8]| {
        let path = folder.join(format!("{stem}.{ext}"));
        std::fs::write(&path, bytes)
            .map_err(|e| HarnessError::Io(format!("writing {}: {e}", path.display())))
    };
    write(
        "request",
        format!("{} {target}\n", exchange.method).as_bytes(),
    )?;
    write("response", &response)?;
    Ok(redactions)
}

/// `get-api-v1-logs` from `GET /api/v1/logs?…`.
fn slug(method: &str, target: &str) -> String {
    let path = target.split('?').next().unwrap_or("");
    let mut out = method.to_ascii_lowercase();
    for part in path.split('/').filter(|p| !p.is_empty()).take(4) {
        out.push('-');
        out.extend(
            part.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        '-'
                    }
                })
                .take(24),
        );
    }
    out
}
