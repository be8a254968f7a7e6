//! The grant decision: whether a request may leave, judged on its
//! canonical path before anything is sent. Every refusal is a typed
//! [`Refusal`] (tests and callers match on it) with a reason in words for
//! the egress log.

use std::net::IpAddr;

use serde::Serialize;
use ward_manifest::HttpGrant;

use super::log::now_ms;
use super::{EgressEntry, HttpBroker, MAX_REQUEST_HEADER_BYTES, MAX_REQUEST_HEADERS, path};
use crate::caps::secrets::{self, outgoing};

/// What stopped a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Refusal {
    /// `limits.requests_per_call` reached.
    RequestLimit,
    /// Request header count or size over the caps.
    RequestHeadersTooLarge,
    /// The URL has no host.
    NoHost,
    /// The path has no canonical form (see [`super::path`]).
    PathNotCanonical,
    /// The operator's `deny_hosts`.
    HostDeniedByPolicy,
    /// The operator's `deny_paths`.
    PathDeniedByPolicy,
    /// A `{{secret:…}}` reference in the URL.
    SecretReferenceInUrl,
    /// An IP-literal URL in a restricted range.
    RestrictedAddress,
    /// No grant covers scheme, host, port and path.
    NoGrant,
    /// A grant covers the URL but not the method.
    MethodNotAllowed,
    /// The operator's `refuse_secrets`.
    SecretRefusedByPolicy,
    /// A reference to a secret the grant is not bound to.
    SecretNotBound,
    /// A reference to a secret the instance does not have.
    SecretMissing,
    /// An unterminated reference.
    MalformedReference,
    /// A raw stored secret value going where it may not.
    RawSecretValue,
    /// A reference in a body the grant does not allow secrets in.
    SecretInBody,
    /// Request body over `limits.request_bytes`.
    RequestBodyTooLarge,
    /// Response body over `limits.response_bytes` (cut off).
    ResponseBodyTooLarge,
    /// Response header count or size over the caps (dropped).
    ResponseHeadersTooLarge,
    /// The call was stopped while the request was in flight.
    Aborted,
    /// The responses the host holds for the call would pass the plugin's
    /// memory cap (cut off).
    ResponseBufferFull,
    /// The provider's host name could not be resolved.
    DnsFailure,
    /// The TLS handshake failed (certificate not trusted, alert, protocol).
    TlsFailure,
    /// The provider refused the connection (nothing listens there).
    ConnectionRefused,
}

/// A refused request: the kind, the grant it matched (if any) and why.
#[derive(Debug)]
pub(crate) struct Denial {
    pub(crate) kind: Refusal,
    pub(crate) grant: Option<usize>,
    pub(crate) reason: String,
}

fn denial(kind: Refusal, grant: Option<usize>, reason: impl Into<String>) -> Denial {
    Denial {
        kind,
        grant,
        reason: reason.into(),
    }
}

/// An allowed request: the grant it falls under and the URI to send (with
/// the canonical path).
pub(crate) struct Allowed {
    pub(crate) grant: usize,
    pub(crate) uri: http::Uri,
}

/// Whether the operator denies `path`: the policy's prefixes, also against
/// case variants of the path.
fn policy_denies_path(policy: &ward_manifest::PluginPolicy, path: &str) -> bool {
    policy.denies_path(path) || policy.denies_path(&path.to_ascii_lowercase())
}

impl HttpBroker {
    /// The decision; a [`Denial`] is logged by [`HttpBroker::deny`].
    pub(crate) fn authorize<B>(&mut self, request: &http::Request<B>) -> Result<Allowed, Denial> {
        self.requests += 1;
        if self.requests > self.limits.requests_per_call {
            return Err(denial(
                Refusal::RequestLimit,
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
            return Err(denial(
                Refusal::RequestHeadersTooLarge,
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
            return Err(denial(Refusal::NoHost, None, "request has no host"));
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri
            .port_u16()
            .unwrap_or(if scheme == "http" { 80 } else { 443 });
        let not_canonical = |problem: path::PathProblem| {
            denial(
                Refusal::PathNotCanonical,
                None,
                format!(
                    "path {} is refused: it contains {problem} (Ward matches and sends only canonical paths)",
                    uri.path()
                ),
            )
        };
        // `;` parameters are kept only for a grant that allows them; the
        // path is then matched (grants and deny_paths) without them.
        let (sent_path, params) = match path::canonical(uri.path(), path::Params::Refuse) {
            Ok(p) => (p, false),
            Err(path::PathProblem::Parameters) => (
                path::canonical(uri.path(), path::Params::Keep).map_err(not_canonical)?,
                true,
            ),
            Err(problem) => return Err(not_canonical(problem)),
        };
        let path = path::without_params(&sent_path);
        if self.policy.denies_host(host) {
            return Err(denial(
                Refusal::HostDeniedByPolicy,
                None,
                format!(
                    "host {host} is denied by the operator's policy for this plugin (deny_hosts)"
                ),
            ));
        }
        if policy_denies_path(&self.policy, &path) {
            return Err(denial(
                Refusal::PathDeniedByPolicy,
                None,
                format!(
                    "path {path} is denied by the operator's policy for this plugin (deny_paths)"
                ),
            ));
        }
        let pq = uri.path_and_query().map(|p| p.as_str()).unwrap_or("");
        if pq.contains(secrets::PREFIX) || pq.to_ascii_lowercase().contains("%7b%7bsecret") {
            return Err(denial(
                Refusal::SecretReferenceInUrl,
                None,
                "secret references are substituted only in headers (and bodies of token grants), never in URLs",
            ));
        }
        if let Ok(ip) = host.parse::<IpAddr>()
            && !self.client.policy.permits(ip)
        {
            return Err(denial(
                Refusal::RestrictedAddress,
                None,
                format!("address {ip} is in a restricted range"),
            ));
        }
        let mut covering: Vec<usize> = self
            .grants
            .iter()
            .enumerate()
            .filter(|(_, g)| g.covers(scheme, host, port, &path))
            .map(|(i, _)| i)
            .collect();
        if params {
            let any = covering.first().copied();
            covering.retain(|&i| self.grants[i].allow_params);
            if let (Some(first), true) = (any, covering.is_empty()) {
                return Err(denial(
                    Refusal::PathNotCanonical,
                    Some(first),
                    format!(
                        "path {} is refused: it contains `;` parameters and grant {} does not allow them (allow_params)",
                        uri.path(),
                        self.grants[first].template
                    ),
                ));
            }
        }
        if covering.is_empty() {
            return Err(denial(
                Refusal::NoGrant,
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
            return Err(denial(
                Refusal::MethodNotAllowed,
                Some(first),
                format!(
                    "method {method} is not allowed by grant {} (allows {})",
                    self.grants[first].template,
                    self.grants[first].methods.join(", ")
                ),
            ));
        };
        let grant = &self.grants[index];
        self.check_references(request, grant, index, host)?;
        if let Some(raw) = outgoing::unbound_value(
            &self.stored,
            &grant.secrets,
            &uri.to_string(),
            request.headers(),
            b"",
        ) {
            return Err(raw_value_denial(&raw, grant, index, host));
        }
        let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
        let canonical = http::Uri::builder()
            .scheme(scheme)
            .authority(uri.authority().map(|a| a.as_str()).unwrap_or(host))
            .path_and_query(format!("{sent_path}{query}"))
            .build()
            .map_err(|e| {
                denial(
                    Refusal::PathNotCanonical,
                    Some(index),
                    format!("cannot rebuild the canonical URL: {e}"),
                )
            })?;
        Ok(Allowed {
            grant: index,
            uri: canonical,
        })
    }

    /// Header references: each must be bound to the grant, not refused by
    /// the operator, and held by the instance.
    fn check_references<B>(
        &self,
        request: &http::Request<B>,
        grant: &HttpGrant,
        index: usize,
        host: &str,
    ) -> Result<(), Denial> {
        for (name, value) in request.headers() {
            let Ok(value) = value.to_str() else { continue };
            let names = secrets::references(value)
                .map_err(|e| denial(Refusal::MalformedReference, Some(index), e))?;
            for secret in names {
                if self.policy.refuses_secret(&secret) {
                    return Err(denial(
                        Refusal::SecretRefusedByPolicy,
                        Some(index),
                        format!(
                            "secret `{secret}` (header {name}) is refused by the operator's policy for this plugin (refuse_secrets)"
                        ),
                    ));
                }
                if !grant.secrets.iter().any(|s| s == &secret) {
                    return Err(denial(
                        Refusal::SecretNotBound,
                        Some(index),
                        format!(
                            "secret `{secret}` (header {name}) is not bound to grant {}: refusing to send it to {host}",
                            grant.template
                        ),
                    ));
                }
                if self.secrets.get(&secret).is_none() {
                    return Err(denial(
                        Refusal::SecretMissing,
                        Some(index),
                        format!(
                            "header {name} references secret `{secret}`, which this instance does not have"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Logs a refused request.
    pub(crate) fn deny<B>(&self, request: &http::Request<B>, denial: Denial) {
        let method = request.method().as_str();
        let url = self.log_redactor.redacted(&request.uri().to_string());
        let reason = self.log_redactor.redacted(&denial.reason);
        tracing::warn!(
            plugin = %self.plugin,
            instance = %self.instance,
            %method,
            %url,
            %reason,
            "egress denied"
        );
        self.log.push(EgressEntry {
            at_ms: now_ms(),
            method: method.to_string(),
            url,
            allowed: false,
            reason: Some(reason),
            grant: denial.grant.map(|i| self.grants[i].template.clone()),
            status: None,
            bytes_sent: 0,
            bytes_received: 0,
            latency_ms: 0,
            refusal: Some(denial.kind),
            rate_headers: Vec::new(),
        });
    }
}

/// The denial for a raw stored value going where it may not.
pub(crate) fn raw_value_denial(
    raw: &outgoing::RawValue,
    grant: &HttpGrant,
    index: usize,
    host: &str,
) -> Denial {
    denial(
        Refusal::RawSecretValue,
        Some(index),
        format!(
            "{} carries the value of secret `{}` (the plugin must send a reference, and only to a grant bound to it): refusing to send it to {host} under grant {}",
            raw.place, raw.secret, grant.template
        ),
    )
}
