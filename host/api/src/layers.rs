//! The outermost layer of every request, whatever answers it (a handler,
//! an extractor's rejection, the router's 405, the auth middleware):
//!
//! - request lines and header blocks beyond the API's limits get a JSON 414
//!   or 431 (the HTTP server's own limits, set wider in [`crate::serve`],
//!   would answer with an empty body);
//! - every error response is the API's JSON shape (`{"error", "message"}`),
//!   including the framework's plain-text ones (413, 405, 400 for a path
//!   that is not UTF-8);
//! - a response sent before the request's body was read to its end carries
//!   `Connection: close`, so a keep-alive client does not reuse a
//!   connection the server is about to drop.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};

use crate::error::ApiError;

/// Longest request target (path and query) the API reads.
pub const MAX_URI_BYTES: usize = 16 * 1024;
/// Most request header fields the API reads.
pub const MAX_HEADERS: usize = 100;
/// Largest request header block (names and values) the API reads.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// Largest request body the API reads (JSON bodies are a few KiB).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// How much of a framework error's text is kept as the JSON message.
const MAX_ERROR_TEXT: usize = 4 * 1024;

/// The layer (see the module documentation).
pub(crate) async fn shape(req: Request, next: Next) -> Response {
    let has_body = !http_body::Body::is_end_stream(req.body());
    if let Some(refusal) = over_limits(&req) {
        return close_if(refusal.into_response(), has_body);
    }
    let read = Arc::new(AtomicBool::new(!has_body));
    let req = req.map(|inner| {
        Body::new(Tracked {
            inner,
            read: read.clone(),
        })
    });
    let response = json_error(next.run(req).await).await;
    close_if(response, !read.load(Ordering::Acquire))
}

fn over_limits(req: &Request) -> Option<ApiError> {
    let target = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if target > MAX_URI_BYTES {
        return Some(ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!(
                "the request path and query are {target} bytes; the API reads at most \
                 {MAX_URI_BYTES}: shorten the query (page with `cursor` instead)"
            ),
        ));
    }
    let fields = req.headers().len();
    let bytes: usize = req
        .headers()
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len())
        .sum();
    if fields > MAX_HEADERS || bytes > MAX_HEADER_BYTES {
        return Some(ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!(
                "the request has {fields} header fields ({bytes} bytes); the API reads at most \
                 {MAX_HEADERS} fields and {MAX_HEADER_BYTES} bytes: send fewer or shorter headers"
            ),
        ));
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(length) = declared.filter(|l| *l > MAX_BODY_BYTES as u64) {
        let (code, message) = framework_error(StatusCode::PAYLOAD_TOO_LARGE, "");
        return Some(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            code,
            format!("{message} (Content-Length: {length})"),
        ));
    }
    None
}

fn close_if(mut response: Response, close: bool) -> Response {
    if close {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// Rewrites a non-JSON error response into the API's shape, keeping its
/// status and headers (`Allow` on a 405).
async fn json_error(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(&response) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_ERROR_TEXT)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let (code, message) = framework_error(status, &text);
    parts.headers.remove(header::CONTENT_TYPE);
    parts.headers.remove(header::CONTENT_LENGTH);
    let json = ApiError::new(status, code, message).into_response();
    let (json_parts, json_body) = json.into_parts();
    parts.headers.extend(json_parts.headers);
    Response::from_parts(parts, json_body)
}

/// The stable code and an actionable message for the errors the HTTP
/// framework produces before any handler runs.
fn framework_error(status: StatusCode, text: &str) -> (&'static str, String) {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => (
            "payload_too_large",
            format!(
                "the request body is larger than the API reads ({MAX_BODY_BYTES} bytes); \
                 request bodies are small JSON documents"
            ),
        ),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this route does not take this method; the Allow header lists the ones it takes \
             and GET /openapi.json documents every route"
                .to_owned(),
        ),
        StatusCode::BAD_REQUEST => (
            "bad_request",
            if text.is_empty() {
                "the request is malformed".to_owned()
            } else {
                format!("{text}; path segments must be percent-encoded UTF-8")
            },
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "send the body as application/json".to_owned(),
        ),
        s if s.is_server_error() => (
            "internal",
            format!(
                "{}: {text}; the daemon's log has the details",
                s.canonical_reason().unwrap_or("server error")
            ),
        ),
        s => (
            "http_error",
            if text.is_empty() {
                s.canonical_reason().unwrap_or("request refused").to_owned()
            } else {
                text.to_owned()
            },
        ),
    }
}

/// A request body that records whether it was read to its end.
struct Tracked {
    inner: Body,
    read: Arc<AtomicBool>,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        let ended = match &polled {
            Poll::Ready(None) => true,
            Poll::Ready(Some(Ok(_))) => self.inner.is_end_stream(),
            _ => false,
        };
        if ended {
            self.read.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
