// Shared by the test plugins written directly against a contract version's
// WIT (no SDK): a blocking `wasi:http` GET. Included with `include!` so it
// resolves against each crate's own generated `wasi` bindings.

/// What a GET brought back.
pub struct Got {
    /// Status code.
    pub status: u16,
    /// Response headers as `name=value` pairs, space separated.
    pub headers: String,
    /// The body, lossily decoded.
    pub body: String,
}

/// GET `https://{authority}{path}` with one `Authorization` header.
pub fn http_get(authorization: &str, authority: &str, path: &str) -> Result<Got, String> {
    use wasi::http::outgoing_handler;
    use wasi::http::types::{Fields, Method, OutgoingBody, OutgoingRequest, Scheme};
    use wasi::io::streams::StreamError;

    let fields = Fields::from_list(&[(
        "authorization".to_string(),
        authorization.as_bytes().to_vec(),
    )])
    .map_err(|e| format!("fields: {e:?}"))?;
    let request = OutgoingRequest::new(fields);
    let refused = |what: &str| format!("{what} refused");
    request.set_method(&Method::Get).map_err(|()| refused("method"))?;
    request
        .set_scheme(Some(&Scheme::Https))
        .map_err(|()| refused("scheme"))?;
    request
        .set_authority(Some(authority))
        .map_err(|()| refused("authority"))?;
    request
        .set_path_with_query(Some(path))
        .map_err(|()| refused("path"))?;
    let body = request.body().map_err(|()| refused("body"))?;
    let future = outgoing_handler::handle(request, None).map_err(|e| format!("denied: {e:?}"))?;
    OutgoingBody::finish(body, None).map_err(|e| format!("finishing the body: {e:?}"))?;
    future.subscribe().block();
    let response = match future.get() {
        Some(Ok(Ok(r))) => r,
        other => return Err(format!("failed: {other:?}")),
    };
    let status = response.status();
    let mut headers = String::new();
    for (name, value) in response.headers().entries() {
        headers.push_str(&format!(" {name}={}", String::from_utf8_lossy(&value)));
    }
    let incoming = response.consume().map_err(|()| refused("response body"))?;
    let stream = incoming.stream().map_err(|()| refused("response stream"))?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(format!("reading the body: {}", e.to_debug_string()));
            }
        }
    }
    Ok(Got {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    })
}
