//! Sending an allowed request: body cap and raw-value check, secret
//! substitution, the pooled client, response caps and scrubbing, and the
//! request's egress row (in flight until it completes).

use std::time::Instant;

use bytes::Bytes;
use http::HeaderMap;
use http_body_util::{BodyExt, Full, Limited};
use ward_manifest::{HttpGrant, Limits};
use wasmtime_wasi_http::{Error as HttpErr, RequestOptions, WasiBody};

use super::address::{LookupFailed, RestrictedAddress};
use super::buffer::ResponseBuffer;
use super::decision::{Allowed, Refusal, raw_value_denial};
use super::log::{ABORTED, now_ms};
use super::{
    EgressClient, EgressEntry, EgressLog, HttpBroker, MAX_RESPONSE_HEADER_BYTES,
    MAX_RESPONSE_HEADERS, SendResult,
};
use crate::caps::secrets::{self, Redactor, SecretSet, outgoing, scrub};

/// What a request future needs from the broker, owned.
pub(crate) struct Sender {
    client: EgressClient,
    grants: std::sync::Arc<Vec<HttpGrant>>,
    secrets: SecretSet,
    stored: Redactor,
    log_redactor: Redactor,
    scrub_responses: bool,
    limits: Limits,
    log: EgressLog,
    plugin: String,
    instance: String,
    rate_headers: std::sync::Arc<Vec<String>>,
    buffer: ResponseBuffer,
}

impl HttpBroker {
    pub(crate) fn sender(&self) -> Sender {
        Sender {
            client: self.client.clone(),
            grants: self.grants.clone(),
            secrets: self.secrets.clone(),
            stored: self.stored.clone(),
            log_redactor: self.log_redactor.clone(),
            scrub_responses: self.scrub_responses,
            limits: self.limits,
            log: self.log.clone(),
            plugin: self.plugin.clone(),
            instance: self.instance.clone(),
            rate_headers: self.rate_headers.clone(),
            buffer: self.buffer.clone(),
        }
    }
}

/// The outcome of one attempt, for its egress row.
struct Row {
    allowed: bool,
    reason: Option<String>,
    refusal: Option<Refusal>,
    status: Option<u16>,
    sent: u64,
    received: u64,
    /// The manifest's rate-limit headers of the response, when one came.
    rate_headers: Vec<(String, String)>,
}

fn refused(refusal: Refusal, reason: String) -> Row {
    Row {
        allowed: false,
        reason: Some(reason),
        refusal: Some(refusal),
        status: None,
        sent: 0,
        received: 0,
        rate_headers: Vec::new(),
    }
}

pub(crate) async fn send(
    s: Sender,
    allowed: Allowed,
    request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> SendResult {
    let grant = s.grants[allowed.grant].clone();
    let method = request.method().as_str().to_string();
    let url = s.log_redactor.redacted(&allowed.uri.to_string());
    let started = Instant::now();
    let entry = |row: Row| EgressEntry {
        at_ms: now_ms(),
        method: method.clone(),
        url: url.clone(),
        allowed: row.allowed,
        reason: row.reason.map(|r| s.log_redactor.redacted(&r)),
        grant: Some(grant.template.clone()),
        status: row.status,
        bytes_sent: row.sent,
        bytes_received: row.received,
        latency_ms: started.elapsed().as_millis() as u64,
        refusal: row.refusal,
        rate_headers: row.rate_headers,
    };
    // Until it completes, the request's row says it was aborted: a call
    // stopped mid-request still leaves its trace.
    let id = s.log.start(entry(Row {
        allowed: true,
        reason: Some(ABORTED.to_string()),
        refusal: Some(Refusal::Aborted),
        status: None,
        sent: 0,
        received: 0,
        rate_headers: Vec::new(),
    }));
    let record = |row: Row| {
        if !row.allowed {
            tracing::warn!(plugin = %s.plugin, instance = %s.instance, %method, %url, reason = ?row.reason, "egress refused");
        }
        s.log.finish(id, entry(row));
    };

    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, s.limits.request_bytes as usize)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            record(refused(
                Refusal::RequestBodyTooLarge,
                format!("request body larger than {} bytes", s.limits.request_bytes),
            ));
            return Err(HttpErr::HttpRequestBodySize(Some(s.limits.request_bytes)));
        }
    };
    let host = allowed.uri.host().unwrap_or_default();
    // `host:port`, as transport errors name the destination.
    let target = format!(
        "{host}:{}",
        allowed
            .uri
            .port_u16()
            .unwrap_or(match allowed.uri.scheme_str() {
                Some("http") => 80,
                _ => 443,
            })
    );
    if let Some(raw) =
        outgoing::unbound_value(&s.stored, &grant.secrets, "", &HeaderMap::new(), &body)
    {
        let d = raw_value_denial(&raw, &grant, allowed.grant, host);
        record(refused(d.kind, d.reason));
        return Err(HttpErr::HttpRequestDenied);
    }
    let body = match substitute_body(&body, &grant, &s.secrets) {
        Ok(b) => b,
        Err((refusal, reason)) => {
            record(refused(refusal, reason));
            return Err(HttpErr::HttpRequestDenied);
        }
    };
    let sent = body.len() as u64;

    let mut builder = s
        .client
        .client
        .request(parts.method.clone(), allowed.uri.to_string());
    for (name, value) in &parts.headers {
        if name == http::header::HOST || name == http::header::CONTENT_LENGTH {
            continue;
        }
        match value.to_str() {
            Ok(v) if v.contains(secrets::PREFIX) => match secrets::substitute(v, &s.secrets) {
                Ok(v) => builder = builder.header(name, v),
                Err(e) => {
                    record(refused(Refusal::SecretMissing, e));
                    return Err(HttpErr::HttpRequestDenied);
                }
            },
            _ => builder = builder.header(name, value),
        }
    }
    if let Some(timeout) = options.and_then(|o| o.first_byte_timeout) {
        builder = builder.timeout(timeout);
    }
    let row = |reason: Option<String>, refusal, status: Option<u16>, received| Row {
        allowed: true,
        reason,
        refusal,
        status,
        sent,
        received,
        rate_headers: Vec::new(),
    };
    let response = match builder.body(body).send().await {
        Ok(r) => r,
        Err(e) => {
            let (code, reason, refusal) = classify(&e, &target);
            record(row(Some(reason), refusal, None, 0));
            return Err(code);
        }
    };
    let status = response.status();
    let mut headers = response.headers().clone();
    let header_bytes: usize = headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len())
        .sum();
    if headers.len() > MAX_RESPONSE_HEADERS || header_bytes > MAX_RESPONSE_HEADER_BYTES {
        record(row(
            Some(format!(
                "response headers too large: {} fields, {header_bytes} bytes (caps: {MAX_RESPONSE_HEADERS} fields, {MAX_RESPONSE_HEADER_BYTES} bytes); dropped",
                headers.len()
            )),
            Some(Refusal::ResponseHeadersTooLarge),
            Some(status.as_u16()),
            0,
        ));
        return Err(HttpErr::HttpResponseHeaderSectionSize(Some(
            header_bytes.min(u32::MAX as usize) as u32,
        )));
    }
    let mut received: Vec<u8> = Vec::new();
    let mut held = s.buffer.hold();
    let mut response = response;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if let Err(in_use) = held.grow(chunk.len() as u64) {
                    let cap_mib = s.buffer.cap() >> 20;
                    let reason = format!(
                        "responses held for this call would pass the plugin's memory cap ({cap_mib} MiB; {in_use} bytes already held, most of them unread by the plugin): cut off; read or drop each response before sending the next request"
                    );
                    record(row(
                        Some(reason.clone()),
                        Some(Refusal::ResponseBufferFull),
                        Some(status.as_u16()),
                        received.len() as u64,
                    ));
                    return Err(HttpErr::InternalError(Some(reason)));
                }
                if received.len() as u64 + chunk.len() as u64 > s.limits.response_bytes {
                    record(row(
                        Some(format!(
                            "response body larger than {} bytes: cut off",
                            s.limits.response_bytes
                        )),
                        Some(Refusal::ResponseBodyTooLarge),
                        Some(status.as_u16()),
                        received.len() as u64,
                    ));
                    return Err(HttpErr::HttpResponseBodySize(Some(s.limits.response_bytes)));
                }
                received.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => {
                let (code, reason, refusal) = classify(&e, &target);
                record(row(
                    Some(reason),
                    refusal,
                    Some(status.as_u16()),
                    received.len() as u64,
                ));
                return Err(code);
            }
        }
    }
    let received_bytes = received.len() as u64;
    let rate_headers: Vec<(String, String)> = s
        .rate_headers
        .iter()
        .filter_map(|name| {
            let value = headers.get(name.as_str())?.to_str().ok()?;
            Some((name.clone(), value.chars().take(64).collect()))
        })
        .collect();
    if s.scrub_responses {
        let scrubbed = scrub::response(&s.stored, &mut headers, &mut received);
        if scrubbed > 0 {
            tracing::warn!(plugin = %s.plugin, instance = %s.instance, %method, %url, scrubbed, "response carried stored secret values; replaced by references before the plugin read it");
        }
    }
    record(Row {
        rate_headers,
        ..row(None, None, Some(status.as_u16()), received_bytes)
    });
    let mut out = http::Response::builder().status(status);
    for (name, value) in &headers {
        if name == http::header::TRANSFER_ENCODING || name == http::header::CONNECTION {
            continue;
        }
        out = out.header(name, value);
    }
    // The reservation lives as long as the body the guest holds.
    let body: WasiBody = Full::new(Bytes::from(received))
        .map_frame(move |frame| {
            let _counted = &held;
            frame
        })
        .map_err(|never| match never {})
        .boxed_unsync();
    let response = out
        .body(body)
        .map_err(|e| HttpErr::InternalError(Some(e.to_string())))?;
    let io: Box<dyn Future<Output = Result<(), HttpErr>> + Send> = Box::new(async { Ok(()) });
    Ok((response, io))
}

/// Substitutes body references, allowed only for grants with
/// `secrets_in_body` and bound to every referenced secret.
fn substitute_body(
    body: &Bytes,
    grant: &HttpGrant,
    secrets: &SecretSet,
) -> Result<Bytes, (Refusal, String)> {
    let Ok(text) = std::str::from_utf8(body) else {
        return Ok(body.clone());
    };
    if !text.contains(secrets::PREFIX) {
        return Ok(body.clone());
    }
    let names = secrets::references(text).map_err(|e| (Refusal::MalformedReference, e))?;
    let unbound = names.iter().find(|n| !grant.secrets.contains(n));
    if !grant.secrets_in_body || unbound.is_some() {
        return Err((
            Refusal::SecretInBody,
            format!(
                "body references secret {:?} but grant {} does not allow secrets in bodies for it",
                unbound.or(names.first()),
                grant.template
            ),
        ));
    }
    secrets::substitute(text, secrets)
        .map(Bytes::from)
        .map_err(|e| (Refusal::SecretMissing, e))
}

/// The WASI error code, the reason in words (naming the host and the
/// cause: name lookup, TLS, refused connection, timeout) and the kind, from
/// the typed errors in the failure's source chain.
fn classify(e: &reqwest::Error, host: &str) -> (HttpErr, String, Option<Refusal>) {
    let mut message = e.to_string();
    let mut cause: Option<(HttpErr, Refusal, String)> = None;
    let mut source = std::error::Error::source(e);
    while let Some(src) = source {
        message.push_str(": ");
        message.push_str(&src.to_string());
        cause = cause.or_else(|| cause_of(src, host));
        source = src.source();
    }
    match cause {
        Some((code, refusal, words)) => (code, format!("{words} ({message})"), Some(refusal)),
        None if e.is_timeout() => (
            HttpErr::ConnectionTimeout,
            format!("{host} did not answer in time ({message})"),
            None,
        ),
        None if e.is_connect() => (
            HttpErr::ConnectionRefused,
            format!("could not connect to {host} ({message})"),
            Some(Refusal::ConnectionRefused),
        ),
        None => (HttpErr::InternalError(Some(message.clone())), message, None),
    }
}

/// What one error of the chain says about the cause, when it is one the
/// guest and the operator should see as such.
fn cause_of(
    src: &(dyn std::error::Error + 'static),
    host: &str,
) -> Option<(HttpErr, Refusal, String)> {
    if src.downcast_ref::<RestrictedAddress>().is_some() {
        return Some((
            HttpErr::DestinationIpProhibited,
            Refusal::RestrictedAddress,
            format!("{host} resolves to a restricted address"),
        ));
    }
    if src.downcast_ref::<LookupFailed>().is_some() {
        return Some((
            HttpErr::DnsError {
                rcode: None,
                info_code: None,
            },
            Refusal::DnsFailure,
            format!("name lookup failed for {host}"),
        ));
    }
    if let Some(tls) = rustls_error(src) {
        let code = match tls {
            rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
                HttpErr::TlsCertificateError
            }
            rustls::Error::AlertReceived(_) => HttpErr::TlsAlertReceived {
                alert_id: None,
                alert_message: Some(tls.to_string()),
            },
            _ => HttpErr::TlsProtocolError,
        };
        return Some((
            code,
            Refusal::TlsFailure,
            format!("TLS with {host} failed: {tls}"),
        ));
    }
    let io = src.downcast_ref::<std::io::Error>()?;
    (io.kind() == std::io::ErrorKind::ConnectionRefused).then(|| {
        (
            HttpErr::ConnectionRefused,
            Refusal::ConnectionRefused,
            format!("connection refused by {host}"),
        )
    })
}

/// The rustls error behind `e`: rustls errors reach the chain inside one
/// or more `io::Error`s, whose `source` skips the error they wrap.
fn rustls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = e.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    let inner = e.downcast_ref::<std::io::Error>()?.get_ref()?;
    rustls_error(inner)
}
