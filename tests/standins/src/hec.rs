//! A Splunk HTTP Event Collector stand-in: the receiving end of an HTTP
//! sink, plain HTTP on loopback.
//!
//! `POST /services/collector/event` with `Authorization: Splunk <token>` and
//! a gzipped body of HEC envelopes (one JSON object per line). It records
//! every accepted event's `fields.ward_key` (duplicates included) and each
//! batch's `Idempotency-Key`. On demand it answers 500/503/429 (with
//! `Retry-After`) without recording anything, or goes away entirely (the
//! port refuses connections) and comes back on the same port.

use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;

use anyhow::Context as _;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tokio::task::JoinHandle;

use crate::server::lock;

/// What the stand-in answers instead of accepting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HecFault {
    /// The status, e.g. 503.
    pub status: u16,
    /// `Retry-After` seconds, if any.
    pub retry_after: Option<u64>,
}

#[derive(Debug, Default)]
struct HecState {
    token: String,
    /// One lock for the fault switch and what it decides, so a request
    /// either lands before [`HecStandIn::fail_with`] returns or is refused:
    /// a request still being parsed when the fault is set cannot be
    /// recorded after the test has taken its "before" count.
    log: Mutex<HecLog>,
}

#[derive(Debug, Default)]
struct HecLog {
    fault: Option<HecFault>,
    keys: Vec<String>,
    batches: Vec<String>,
    refused: u64,
}

/// The running stand-in.
#[derive(Debug)]
pub struct HecStandIn {
    addr: SocketAddr,
    state: Arc<HecState>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl HecStandIn {
    /// Starts on an ephemeral loopback port, accepting `token`.
    pub async fn start(token: &str) -> anyhow::Result<HecStandIn> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding 127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let hec = HecStandIn {
            addr,
            state: Arc::new(HecState {
                token: token.to_owned(),
                ..HecState::default()
            }),
            task: Mutex::new(None),
        };
        hec.serve(listener);
        Ok(hec)
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let router = Router::new()
            .route("/services/collector/event", post(collect))
            .with_state(self.state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        *lock(&self.task) = Some(task);
    }

    /// The collector's base URL (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every accepted event's key, in arrival order, duplicates included.
    pub fn keys(&self) -> Vec<String> {
        lock(&self.state.log).keys.clone()
    }

    /// Every accepted batch's `Idempotency-Key`.
    pub fn batches(&self) -> Vec<String> {
        lock(&self.state.log).batches.clone()
    }

    /// Requests answered with a fault.
    pub fn refused(&self) -> u64 {
        lock(&self.state.log).refused
    }

    /// Answers every authorised, well-formed request with `fault`
    /// (recording nothing) until [`HecStandIn::heal`]; a request already
    /// being parsed is refused too unless it was recorded first.
    pub fn fail_with(&self, fault: HecFault) {
        lock(&self.state.log).fault = Some(fault);
    }

    /// Accepts again.
    pub fn heal(&self) {
        lock(&self.state.log).fault = None;
    }

    /// Stops listening: connections are refused until [`HecStandIn::come_back`].
    pub fn go_away(&self) {
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn come_back(&self) -> anyhow::Result<()> {
        // The aborted server may take a moment to release the port.
        let mut tries = 0;
        let listener = loop {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if tries < 100 => {
                    tries += 1;
                    tracing::debug!(error = %e, "port still held; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Err(e) => return Err(e).context("rebinding the HEC stand-in's port"),
            }
        };
        self.serve(listener);
        Ok(())
    }
}

fn hec_error(status: StatusCode, code: u32, text: &str) -> Response {
    (
        status,
        axum::Json(serde_json::json!({"text": text, "code": code})),
    )
        .into_response()
}

async fn collect(State(state): State<Arc<HecState>>, headers: HeaderMap, body: Bytes) -> Response {
    let expected = format!("Splunk {}", state.token);
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return hec_error(StatusCode::FORBIDDEN, 4, "Invalid token");
    }
    let text = if headers
        .get("content-encoding")
        .is_some_and(|v| v.as_bytes() == b"gzip")
    {
        let mut s = String::new();
        if flate2::read::GzDecoder::new(&body[..])
            .read_to_string(&mut s)
            .is_err()
        {
            return hec_error(StatusCode::BAD_REQUEST, 6, "Invalid data format");
        }
        s
    } else {
        String::from_utf8_lossy(&body).into_owned()
    };
    let mut keys = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(envelope) = serde_json::from_str::<serde_json::Value>(line) else {
            return hec_error(StatusCode::BAD_REQUEST, 6, "Invalid data format");
        };
        if !envelope["event"].is_object() {
            return hec_error(StatusCode::BAD_REQUEST, 12, "Event field is required");
        }
        let Some(key) = envelope["fields"]["ward_key"].as_str() else {
            return hec_error(StatusCode::BAD_REQUEST, 6, "Invalid data format");
        };
        keys.push(key.to_owned());
    }
    // The fault is decided at the moment of recording, under the same lock.
    let mut log = lock(&state.log);
    if let Some(fault) = log.fault {
        log.refused += 1;
        drop(log);
        let status = StatusCode::from_u16(fault.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        let mut response = hec_error(status, 9, "Server is busy");
        if let Some(secs) = fault.retry_after
            && let Ok(v) = secs.to_string().parse()
        {
            response.headers_mut().insert("retry-after", v);
        }
        return response;
    }
    log.keys.extend(keys);
    if let Some(batch) = headers.get("idempotency-key").and_then(|v| v.to_str().ok()) {
        log.batches.push(batch.to_owned());
    }
    drop(log);
    hec_error(StatusCode::OK, 0, "Success")
}
