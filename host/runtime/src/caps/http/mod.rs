//! Brokered outbound HTTP.
//!
//! The guest speaks standard `wasi:http`; every request ends in
//! [`HttpBroker`]'s `send_request`, split along its seams:
//! - [`address`]: restricted address ranges, the guarded resolver and the
//!   one pooled client (keep-alive, timeouts, operator CA roots, resolve
//!   overrides, never following redirects);
//! - [`decision`]: the grant decision on the canonical path (grants,
//!   operator policy, secret references and raw secret values), whose
//!   refusals are the typed [`Refusal`];
//! - [`send`]: substitution, sending, body caps and response scrubbing;
//! - [`buffer`]: the response bytes held for a call, counted against the
//!   plugin's memory cap.
//!
//! Every request, allowed, denied or stopped mid-flight, lands in the
//! egress log ([`log`]) with secret values redacted.

mod address;
mod buffer;
pub mod decision;
mod log;
pub mod path;
mod send;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use ward_manifest::{HttpGrant, Limits, PluginPolicy};
use wasmtime::component::Linker;
use wasmtime_wasi_http::{Error as HttpErr, RequestOptions, WasiBody, WasiHttpHooks};

pub use address::{Cidr, EgressClient, is_restricted};
pub(crate) use buffer::ResponseBuffer;
pub use decision::Refusal;
pub(crate) use log::{EgressLog, now_ms};

use super::secrets::{Redactor, SecretSet};
use crate::RuntimeError;

/// Most header fields a plugin may send in one request.
pub const MAX_REQUEST_HEADERS: usize = 64;
/// Largest total size (names + values) of a request's header section.
pub const MAX_REQUEST_HEADER_BYTES: usize = 16 * 1024;
/// Most header fields handed back to a plugin from one response.
pub const MAX_RESPONSE_HEADERS: usize = 128;
/// Largest total size (names + values) of a response's header section.
pub const MAX_RESPONSE_HEADER_BYTES: usize = 64 * 1024;

/// Operator settings for all outbound traffic of the daemon.
#[derive(Debug, Clone)]
pub struct EgressConfig {
    /// Host name → address overrides (how tests reach stand-ins on loopback
    /// under real provider host names). An override is an explicit operator
    /// decision, so its address is not subject to the restricted-range rule.
    pub resolve: BTreeMap<String, SocketAddr>,
    /// Extra PEM CA certificates trusted besides the system roots.
    pub extra_roots_pem: Vec<String>,
    /// Restricted ranges the operator allows anyway (CIDR or single address).
    pub allow_private: Vec<String>,
    /// DNS servers (UDP) to resolve provider host names with; empty means
    /// the system resolver. Either way every answer passes the same
    /// restricted-range check.
    pub nameservers: Vec<SocketAddr>,
    /// TCP/TLS connect timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout.
    pub request_timeout: Duration,
}

impl Default for EgressConfig {
    fn default() -> Self {
        EgressConfig {
            resolve: BTreeMap::new(),
            extra_roots_pem: Vec::new(),
            allow_private: Vec::new(),
            nameservers: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// One line of the egress log. Never contains secret values: URLs are
/// redacted and headers are not recorded, except the rate-limit headers
/// the plugin's manifest names (`[rate_limit]`), which the host paces by.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct EgressEntry {
    /// When the request was attempted (ms since epoch).
    pub at_ms: i64,
    /// HTTP method.
    pub method: String,
    /// Full URL, secret values redacted.
    pub url: String,
    /// Whether the host sent it.
    pub allowed: bool,
    /// For denials and failures: why.
    pub reason: Option<String>,
    /// The grant template that matched.
    pub grant: Option<String>,
    /// Response status.
    pub status: Option<u16>,
    /// Request body bytes.
    pub bytes_sent: u64,
    /// Response body bytes.
    pub bytes_received: u64,
    /// Time to the complete response.
    pub latency_ms: u64,
    /// What stopped the request, when something did (denials, caps, a call
    /// stopped while the request was in flight); `reason` says it in words.
    pub refusal: Option<Refusal>,
    /// The response's rate-limit headers named by the manifest
    /// (lower-case name, value); empty when none was sent or declared.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rate_headers: Vec<(String, String)>,
}

/// Per-call state of the HTTP capability. Built in one place
/// (`Bound::broker`) for plugin calls and host requests alike.
pub(crate) struct HttpBroker {
    pub(crate) client: EgressClient,
    pub(crate) grants: Arc<Vec<HttpGrant>>,
    pub(crate) secrets: SecretSet,
    /// Stored values only: response scrubbing and raw-value checks.
    pub(crate) stored: Redactor,
    /// What egress rows are redacted with (stored values, plus during
    /// `exchange` the grant the operator entered).
    pub(crate) log_redactor: Redactor,
    /// Whether responses are scrubbed before the reader sees them: yes for
    /// the guest; no for the host's own requests (an OAuth refresh must
    /// read the provider's real answer).
    pub(crate) scrub_responses: bool,
    pub(crate) limits: Limits,
    pub(crate) policy: Arc<PluginPolicy>,
    pub(crate) requests: u32,
    pub(crate) log: EgressLog,
    pub(crate) plugin: String,
    pub(crate) instance: String,
    /// Response headers to keep (lower case): the manifest's rate-limit ones.
    pub(crate) rate_headers: Arc<Vec<String>>,
    /// Response bytes the host holds for this call, bounded by the
    /// plugin's memory cap ([`buffer`]).
    pub(crate) buffer: ResponseBuffer,
}

impl HttpBroker {
    pub(crate) fn egress_log(&self) -> EgressLog {
        self.log.clone()
    }
}

type SendResult = Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), HttpErr>> + Send>,
    ),
    HttpErr,
>;

impl WasiHttpHooks for HttpBroker {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpErr>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        match self.authorize(&request) {
            Ok(allowed) => Box::new(send::send(self.sender(), allowed, request, options)),
            Err(denial) => {
                self.deny(&request, denial);
                Box::new(async { Err(HttpErr::HttpRequestDenied) })
            }
        }
    }
}

/// Adds `wasi:http/types` and `wasi:http/outgoing-handler`, both routed to
/// [`HttpBroker`].
pub fn add_to_linker(linker: &mut Linker<crate::HostState>) -> Result<(), RuntimeError> {
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)
        .map_err(|e| RuntimeError::Config(format!("linking wasi:http: {e:#}")))
}
