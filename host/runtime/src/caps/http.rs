//! Brokered outbound HTTP.
//!
//! The guest speaks standard `wasi:http`; every request ends in
//! [`HttpBroker::send_request`], which decides before anything leaves the
//! host: the URL and method must fall under one of the instance's grants,
//! secret references must be bound to that grant, and the destination must
//! not resolve into a restricted address range. Allowed requests are sent
//! by one pooled `reqwest` client (keep-alive, timeouts, operator CA roots,
//! resolve overrides, never following redirects) and their bodies are
//! capped. Every request, allowed or denied, lands in the egress log.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use serde::Serialize;
use ward_manifest::{HttpGrant, Limits, PluginPolicy};
use wasmtime::component::Linker;
use wasmtime_wasi_http::{Error as HttpErr, RequestOptions, WasiBody, WasiHttpHooks};

use super::secrets::{self, Redactor, SecretSet};
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
    /// The response's rate-limit headers named by the manifest
    /// (lower-case name, value); empty when none was sent or declared.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rate_headers: Vec<(String, String)>,
}

/// An address range in CIDR form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `10.0.0.0/8`, `::1/128` or a bare address.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("`{text}` is not an IP address or CIDR range"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{text}` has an invalid prefix length"))?,
            None => max,
        };
        Ok(Cidr { addr, prefix })
    }

    /// Whether `ip` is inside the range (IPv4-mapped IPv6 compared as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Whether an address is one a connector must not reach by default:
/// loopback, private, link-local (cloud metadata lives there), CGNAT,
/// multicast, unspecified, documentation and reserved ranges.
pub fn is_restricted(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_unspecified()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64.0.0/10 CGNAT
                || o[0] >= 240
                || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        }
        IpAddr::V6(v6) => {
            let seg = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00 // unique local, includes fd00:ec2::254
                || (seg[0] & 0xffc0) == 0xfe80 // link-local
                || (seg[0] == 0x64 && seg[1] == 0xff9b) // NAT64 can reach anything
                || (seg[0] == 0x2001 && seg[1] == 0x0db8) // documentation
                || (seg[0] == 0x0100 && seg[1..4] == [0, 0, 0]) // discard-only
                || (seg[0] == 0x2001 && seg[1] == 0) // Teredo tunnels to arbitrary IPv4
                // IPv4-compatible (deprecated) `::a.b.c.d`: routes to IPv4 on some stacks.
                || (seg[..6] == [0, 0, 0, 0, 0, 0])
                // 6to4 embeds an IPv4 address: judge that address.
                || (seg[0] == 0x2002
                    && is_restricted(IpAddr::V4(std::net::Ipv4Addr::new(
                        (seg[1] >> 8) as u8,
                        seg[1] as u8,
                        (seg[2] >> 8) as u8,
                        seg[2] as u8,
                    ))))
        }
    }
}

struct AddressPolicy {
    overrides: BTreeMap<String, SocketAddr>,
    allowed: Vec<Cidr>,
    /// The operator's DNS servers, when configured.
    resolver:
        Option<hickory_resolver::Resolver<hickory_resolver::net::runtime::TokioRuntimeProvider>>,
}

impl std::fmt::Debug for AddressPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddressPolicy")
            .field("overrides", &self.overrides)
            .field("allowed", &self.allowed)
            .field("own_nameservers", &self.resolver.is_some())
            .finish()
    }
}

fn nameserver_resolver(
    servers: &[SocketAddr],
) -> Result<
    Option<hickory_resolver::Resolver<hickory_resolver::net::runtime::TokioRuntimeProvider>>,
    RuntimeError,
> {
    use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig};
    if servers.is_empty() {
        return Ok(None);
    }
    let mut configs = Vec::new();
    for server in servers {
        let mut ns = NameServerConfig::udp(server.ip());
        for c in &mut ns.connections {
            c.port = server.port();
        }
        configs.push(ns);
    }
    let mut builder = hickory_resolver::Resolver::builder_with_config(
        ResolverConfig::from_name_servers(configs),
        hickory_resolver::net::runtime::TokioRuntimeProvider::default(),
    );
    // The operator named the servers: answer from them only, not from the
    // machine's hosts file.
    builder.options_mut().use_hosts_file = ResolveHosts::Never;
    builder
        .build()
        .map(Some)
        .map_err(|e| RuntimeError::Config(format!("egress.nameservers: {e}")))
}

impl AddressPolicy {
    fn permits(&self, ip: IpAddr) -> bool {
        !is_restricted(ip) || self.allowed.iter().any(|c| c.contains(ip))
    }
}

/// Resolves once and filters: the addresses returned here are the ones
/// reqwest connects to, so a second lookup cannot swap in a private one.
struct GuardedResolver {
    policy: Arc<AddressPolicy>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_ascii_lowercase();
        let policy = self.policy.clone();
        Box::pin(async move {
            if let Some(addr) = policy.overrides.get(&host) {
                let addrs: reqwest::dns::Addrs = Box::new(std::iter::once(*addr));
                return Ok(addrs);
            }
            let found: Vec<SocketAddr> = match &policy.resolver {
                Some(resolver) => resolver
                    .lookup_ip(host.as_str())
                    .await
                    .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?
                    .iter()
                    .map(|ip| SocketAddr::new(ip, 0))
                    .collect(),
                None => tokio::net::lookup_host((host.as_str(), 0)).await?.collect(),
            };
            let (ok, refused): (Vec<_>, Vec<_>) =
                found.into_iter().partition(|a| policy.permits(a.ip()));
            if ok.is_empty() {
                return Err(Box::new(RestrictedAddress(format!(
                    "{host} resolves only to restricted addresses {:?}; refused (an operator may allow a range with egress.allow_private)",
                    refused.iter().map(|a| a.ip()).collect::<Vec<_>>()
                )))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            let addrs: reqwest::dns::Addrs = Box::new(ok.into_iter());
            Ok(addrs)
        })
    }
}

#[derive(Debug)]
struct RestrictedAddress(String);

impl std::fmt::Display for RestrictedAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RestrictedAddress {}

/// The daemon-wide HTTP client: one connection pool for every plugin.
#[derive(Clone)]
pub struct EgressClient {
    client: reqwest::Client,
    policy: Arc<AddressPolicy>,
}

impl std::fmt::Debug for EgressClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EgressClient")
            .field("policy", &self.policy)
            .finish()
    }
}

impl EgressClient {
    /// Builds the client from operator settings.
    pub fn new(config: &EgressConfig) -> Result<EgressClient, RuntimeError> {
        let allowed = config
            .allow_private
            .iter()
            .map(|c| Cidr::parse(c))
            .collect::<Result<Vec<_>, _>>()
            .map_err(RuntimeError::Config)?;
        let policy = Arc::new(AddressPolicy {
            overrides: config
                .resolve
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), *v))
                .collect(),
            allowed,
            resolver: nameserver_resolver(&config.nameservers)?,
        });
        let mut roots = Vec::new();
        for pem in &config.extra_roots_pem {
            roots.push(reqwest::Certificate::from_pem(pem.as_bytes()).map_err(|e| {
                RuntimeError::Config(format!("extra CA root is not a PEM certificate: {e}"))
            })?);
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(16)
            .tls_certs_merge(roots)
            .dns_resolver(GuardedResolver {
                policy: policy.clone(),
            })
            .build()
            .map_err(|e| RuntimeError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(EgressClient { client, policy })
    }
}

/// Per-call state of the HTTP capability.
pub(crate) struct HttpBroker {
    client: EgressClient,
    grants: Arc<Vec<HttpGrant>>,
    secrets: SecretSet,
    redactor: Redactor,
    limits: Limits,
    policy: Arc<PluginPolicy>,
    requests: u32,
    log: Arc<Mutex<Vec<EgressEntry>>>,
    plugin: String,
    instance: String,
    /// Response headers to keep (lower case): the manifest's rate-limit ones.
    rate_headers: Arc<Vec<String>>,
}

impl HttpBroker {
    // Crate-private, called from one place (`Bound::call`) with the
    // per-instance state it already holds; a builder would add nothing.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        client: EgressClient,
        grants: Arc<Vec<HttpGrant>>,
        secrets: SecretSet,
        redactor: Redactor,
        limits: Limits,
        policy: Arc<PluginPolicy>,
        plugin: &str,
        instance: &str,
        rate_headers: Arc<Vec<String>>,
    ) -> HttpBroker {
        HttpBroker {
            rate_headers,
            client,
            grants,
            redactor,
            secrets,
            limits,
            policy,
            requests: 0,
            log: Arc::new(Mutex::new(Vec::new())),
            plugin: plugin.to_string(),
            instance: instance.to_string(),
        }
    }

    pub(crate) fn egress_log(&self) -> Arc<Mutex<Vec<EgressEntry>>> {
        self.log.clone()
    }

    fn deny(&self, method: &str, url: &str, grant: Option<&HttpGrant>, reason: String) {
        tracing::warn!(
            plugin = %self.plugin,
            instance = %self.instance,
            %method,
            url = %self.redactor.redacted(url),
            %reason,
            "egress denied"
        );
        push(
            &self.log,
            EgressEntry {
                at_ms: now_ms(),
                method: method.to_string(),
                url: self.redactor.redacted(url),
                allowed: false,
                reason: Some(self.redactor.redacted(&reason)),
                grant: grant.map(|g| g.template.clone()),
                status: None,
                bytes_sent: 0,
                bytes_received: 0,
                latency_ms: 0,
                rate_headers: Vec::new(),
            },
        );
    }

    /// The policy decision; `Err` carries the reason for the log.
    fn authorize<B>(
        &mut self,
        request: &http::Request<B>,
    ) -> Result<usize, (Option<usize>, String)> {
        self.requests += 1;
        if self.requests > self.limits.requests_per_call {
            return Err((
                None,
                format!(
                    "per-call request limit of {} reached",
                    self.limits.requests_per_call
                ),
            ));
        }
        let header_bytes: usize = request
            .headers()
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len())
            .sum();
        if request.headers().len() > MAX_REQUEST_HEADERS || header_bytes > MAX_REQUEST_HEADER_BYTES
        {
            return Err((
                None,
                format!(
                    "request headers too large: {} fields, {header_bytes} bytes (caps: {MAX_REQUEST_HEADERS} fields, {MAX_REQUEST_HEADER_BYTES} bytes)",
                    request.headers().len()
                ),
            ));
        }
        let uri = request.uri();
        let scheme = uri.scheme_str().unwrap_or("");
        let Some(host) = uri.host() else {
            return Err((None, "request has no host".into()));
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri
            .port_u16()
            .unwrap_or(if scheme == "http" { 80 } else { 443 });
        let path = uri.path();
        let lowered = path.to_ascii_lowercase();
        if path.split('/').any(|seg| seg == ".." || seg == ".")
            || lowered.contains("%2e")
            || lowered.contains("%2f")
            || lowered.contains("%5c")
            || path.contains('\\')
        {
            return Err((
                None,
                format!("path {path} is not normalised (dot segments or encoded separators)"),
            ));
        }
        if self.policy.denies_host(host) {
            return Err((
                None,
                format!(
                    "host {host} is denied by the operator's policy for this plugin (deny_hosts)"
                ),
            ));
        }
        if self.policy.denies_path(path) {
            return Err((
                None,
                format!(
                    "path {path} is denied by the operator's policy for this plugin (deny_paths)"
                ),
            ));
        }
        let pq = uri.path_and_query().map(|p| p.as_str()).unwrap_or("");
        if pq.contains("{{secret:") || pq.to_ascii_lowercase().contains("%7b%7bsecret") {
            return Err((
                None,
                "secret references are substituted only in headers (and bodies of token grants), never in URLs".into(),
            ));
        }
        if let Ok(ip) = host.parse::<IpAddr>()
            && !self.client.policy.permits(ip)
        {
            return Err((None, format!("address {ip} is in a restricted range")));
        }
        let covering: Vec<usize> = self
            .grants
            .iter()
            .enumerate()
            .filter(|(_, g)| g.covers(scheme, host, port, path))
            .map(|(i, _)| i)
            .collect();
        if covering.is_empty() {
            return Err((
                None,
                format!(
                    "no grant covers {scheme}://{host}:{port}{path}; the plugin's grants are: {}",
                    self.grants
                        .iter()
                        .map(|g| g.to_string())
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            ));
        }
        let method = request.method().as_str();
        let Some(&index) = covering
            .iter()
            .find(|&&i| self.grants[i].allows_method(method))
        else {
            let first = covering[0];
            return Err((
                Some(first),
                format!(
                    "method {method} is not allowed by grant {} (allows {})",
                    self.grants[first].template,
                    self.grants[first].methods.join(", ")
                ),
            ));
        };
        let grant = &self.grants[index];
        for (name, value) in request.headers() {
            let Ok(value) = value.to_str() else { continue };
            let names = secrets::references(value).map_err(|e| (Some(index), e))?;
            for secret in names {
                if self.policy.refuses_secret(&secret) {
                    return Err((
                        Some(index),
                        format!(
                            "secret `{secret}` (header {name}) is refused by the operator's policy for this plugin (refuse_secrets)"
                        ),
                    ));
                }
                if !grant.secrets.iter().any(|s| s == &secret) {
                    return Err((
                        Some(index),
                        format!(
                            "secret `{secret}` (header {name}) is not bound to grant {}: refusing to send it to {host}",
                            grant.template
                        ),
                    ));
                }
                if self.secrets.get(&secret).is_none() {
                    return Err((
                        Some(index),
                        format!(
                            "header {name} references secret `{secret}`, which this instance does not have"
                        ),
                    ));
                }
            }
        }
        Ok(index)
    }
}

fn push(log: &Arc<Mutex<Vec<EgressEntry>>>, entry: EgressEntry) {
    // A poisoned lock only means another thread panicked mid-push; the
    // entries already there are still worth keeping.
    let mut guard = log.lock().unwrap_or_else(|p| p.into_inner());
    guard.push(entry);
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
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
        let method = request.method().as_str().to_string();
        let url = request.uri().to_string();
        let index = match self.authorize(&request) {
            Ok(index) => index,
            Err((grant, reason)) => {
                let grant = grant.map(|i| self.grants[i].clone());
                self.deny(&method, &url, grant.as_ref(), reason);
                return Box::new(async { Err(HttpErr::HttpRequestDenied) });
            }
        };
        let grant = self.grants[index].clone();
        let client = self.client.client.clone();
        let secrets = self.secrets.clone();
        let redactor = self.redactor.clone();
        let limits = self.limits;
        let log = self.log.clone();
        let plugin = self.plugin.clone();
        let instance = self.instance.clone();
        let rate_names = self.rate_headers.clone();
        Box::new(async move {
            let started = Instant::now();
            let logged_url = redactor.redacted(&url);
            let rate_headers = std::sync::Mutex::new(Vec::new());
            let record = |allowed: bool,
                          reason: Option<String>,
                          status: Option<u16>,
                          sent: u64,
                          received: u64| {
                if !allowed {
                    tracing::warn!(%plugin, %instance, %method, url = %logged_url, reason = ?reason, "egress refused");
                }
                push(
                    &log,
                    EgressEntry {
                        at_ms: now_ms(),
                        method: method.clone(),
                        url: logged_url.clone(),
                        allowed,
                        reason: reason.map(|r| redactor.redacted(&r)),
                        grant: Some(grant.template.clone()),
                        status,
                        bytes_sent: sent,
                        bytes_received: received,
                        latency_ms: started.elapsed().as_millis() as u64,
                        rate_headers: std::mem::take(
                            &mut *rate_headers.lock().unwrap_or_else(|p| p.into_inner()),
                        ),
                    },
                );
            };

            let (parts, body) = request.into_parts();
            let body = match Limited::new(body, limits.request_bytes as usize)
                .collect()
                .await
            {
                Ok(collected) => collected.to_bytes(),
                Err(_) => {
                    record(
                        false,
                        Some(format!(
                            "request body larger than {} bytes",
                            limits.request_bytes
                        )),
                        None,
                        0,
                        0,
                    );
                    return Err(HttpErr::HttpRequestBodySize(Some(limits.request_bytes)));
                }
            };
            let body = match std::str::from_utf8(&body) {
                Ok(text) if text.contains("{{secret:") => {
                    let names = match secrets::references(text) {
                        Ok(n) => n,
                        Err(e) => {
                            record(false, Some(e), None, 0, 0);
                            return Err(HttpErr::HttpRequestDenied);
                        }
                    };
                    let unbound = names.iter().find(|n| !grant.secrets.contains(n));
                    if !grant.secrets_in_body || unbound.is_some() {
                        record(
                            false,
                            Some(format!(
                                "body references secret {:?} but grant {} does not allow secrets in bodies for it",
                                unbound.or(names.first()),
                                grant.template
                            )),
                            None,
                            0,
                            0,
                        );
                        return Err(HttpErr::HttpRequestDenied);
                    }
                    match secrets::substitute(text, &secrets) {
                        Ok(s) => Bytes::from(s),
                        Err(e) => {
                            record(false, Some(e), None, 0, 0);
                            return Err(HttpErr::HttpRequestDenied);
                        }
                    }
                }
                _ => body,
            };
            let sent = body.len() as u64;

            let mut builder = client.request(parts.method.clone(), parts.uri.to_string());
            for (name, value) in &parts.headers {
                if name == http::header::HOST || name == http::header::CONTENT_LENGTH {
                    continue;
                }
                let value = match value.to_str() {
                    Ok(v) if v.contains("{{secret:") => match secrets::substitute(v, &secrets) {
                        Ok(s) => s,
                        Err(e) => {
                            record(false, Some(e), None, 0, 0);
                            return Err(HttpErr::HttpRequestDenied);
                        }
                    },
                    _ => {
                        builder = builder.header(name, value);
                        continue;
                    }
                };
                builder = builder.header(name, value);
            }
            if let Some(timeout) = options.and_then(|o| o.first_byte_timeout) {
                builder = builder.timeout(timeout);
            }
            let response = match builder.body(body).send().await {
                Ok(r) => r,
                Err(e) => {
                    let (code, reason) = classify(&e);
                    record(true, Some(reason), None, sent, 0);
                    return Err(code);
                }
            };
            let status = response.status();
            let headers = response.headers().clone();
            let header_bytes: usize = headers
                .iter()
                .map(|(n, v)| n.as_str().len() + v.len())
                .sum();
            if headers.len() > MAX_RESPONSE_HEADERS || header_bytes > MAX_RESPONSE_HEADER_BYTES {
                record(
                    true,
                    Some(format!(
                        "response headers too large: {} fields, {header_bytes} bytes (caps: {MAX_RESPONSE_HEADERS} fields, {MAX_RESPONSE_HEADER_BYTES} bytes); dropped",
                        headers.len()
                    )),
                    Some(status.as_u16()),
                    sent,
                    0,
                );
                return Err(HttpErr::HttpResponseHeaderSectionSize(Some(
                    header_bytes.min(u32::MAX as usize) as u32,
                )));
            }
            *rate_headers.lock().unwrap_or_else(|p| p.into_inner()) = rate_names
                .iter()
                .filter_map(|name| {
                    let value = headers.get(name.as_str())?.to_str().ok()?;
                    Some((name.clone(), value.chars().take(64).collect()))
                })
                .collect();
            let mut received: Vec<u8> = Vec::new();
            let mut response = response;
            loop {
                match response.chunk().await {
                    Ok(Some(chunk)) => {
                        if received.len() as u64 + chunk.len() as u64 > limits.response_bytes {
                            record(
                                true,
                                Some(format!(
                                    "response body larger than {} bytes: cut off",
                                    limits.response_bytes
                                )),
                                Some(status.as_u16()),
                                sent,
                                received.len() as u64,
                            );
                            return Err(HttpErr::HttpResponseBodySize(Some(limits.response_bytes)));
                        }
                        received.extend_from_slice(&chunk);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        let (code, reason) = classify(&e);
                        record(
                            true,
                            Some(reason),
                            Some(status.as_u16()),
                            sent,
                            received.len() as u64,
                        );
                        return Err(code);
                    }
                }
            }
            record(
                true,
                None,
                Some(status.as_u16()),
                sent,
                received.len() as u64,
            );
            let mut out = http::Response::builder().status(status);
            for (name, value) in &headers {
                if name == http::header::TRANSFER_ENCODING || name == http::header::CONNECTION {
                    continue;
                }
                out = out.header(name, value);
            }
            let body: WasiBody = Full::new(Bytes::from(received))
                .map_err(|never| match never {})
                .boxed_unsync();
            let response = out
                .body(body)
                .map_err(|e| HttpErr::InternalError(Some(e.to_string())))?;
            let io: Box<dyn Future<Output = Result<(), HttpErr>> + Send> =
                Box::new(async { Ok(()) });
            Ok((response, io))
        })
    }
}

fn classify(e: &reqwest::Error) -> (HttpErr, String) {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    let mut restricted = false;
    while let Some(s) = source {
        if s.downcast_ref::<RestrictedAddress>().is_some() {
            restricted = true;
        }
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    let code = if restricted {
        HttpErr::DestinationIpProhibited
    } else if e.is_timeout() {
        HttpErr::ConnectionTimeout
    } else if e.is_connect() {
        HttpErr::ConnectionRefused
    } else {
        HttpErr::InternalError(Some(message.clone()))
    };
    (code, message)
}

/// Adds `wasi:http/types` and `wasi:http/outgoing-handler`, both routed to
/// [`HttpBroker`].
pub fn add_to_linker(linker: &mut Linker<crate::HostState>) -> Result<(), RuntimeError> {
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)
        .map_err(|e| RuntimeError::Config(format!("linking wasi:http: {e:#}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn restricted_ranges() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "::1",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "ff02::1",
            "239.255.255.250",
            "100.127.255.254",
        ] {
            assert!(is_restricted(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "2606:2800:220:1::1",
            "8.8.8.8",
            "2002:5db8:d822::1",
            "100.128.0.1",
        ] {
            assert!(!is_restricted(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn cidr_matching() {
        let c = Cidr::parse("127.0.0.0/8").unwrap();
        assert!(c.contains("127.9.9.9".parse().unwrap()));
        assert!(c.contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!c.contains("128.0.0.1".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("nope").is_err());
    }
}
