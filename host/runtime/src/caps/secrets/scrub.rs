//! Response scrubbing: before the guest reads a response, every stored
//! secret value (any known encoding) in its header values and body is
//! replaced by the reference text `{{secret:NAME}}`. The host reads the
//! whole body (capped by `limits.response_bytes`) before the guest sees a
//! byte of it, so a value the provider split across network chunks is
//! matched whole.

use http::{HeaderMap, HeaderValue, header};

use super::Redactor;

/// Scrubs `headers` and `body` in place; returns how many values were
/// replaced. A header whose *name* carries a value is dropped (a reference
/// is not a valid header name); `content-length` follows the new body.
pub fn response(redactor: &Redactor, headers: &mut HeaderMap, body: &mut Vec<u8>) -> usize {
    let mut count = 0;
    let mut scrubbed = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers.iter() {
        if !redactor.names_in(name.as_str().as_bytes()).is_empty() {
            count += 1;
            continue;
        }
        let Some((bytes, n)) = redactor.scrubbed(value.as_bytes()) else {
            scrubbed.append(name, value.clone());
            continue;
        };
        count += n;
        if let Ok(value) = HeaderValue::from_bytes(&bytes) {
            scrubbed.append(name, value);
        }
    }
    if let Some((new_body, n)) = redactor.scrubbed(body) {
        count += n;
        *body = new_body;
        if scrubbed.contains_key(header::CONTENT_LENGTH) {
            scrubbed.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
    }
    *headers = scrubbed;
    count
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn header_values_and_body_become_references() {
        let r = Redactor::new([("api_token", "s3cr3t-value")]);
        let mut headers = HeaderMap::new();
        headers.insert("x-echo", HeaderValue::from_static("Bearer s3cr3t-value"));
        headers.insert("content-length", HeaderValue::from(20));
        let mut body = b"{\"auth\":\"s3cr3t-value\"}".to_vec();
        assert_eq!(response(&r, &mut headers, &mut body), 2);
        assert_eq!(headers["x-echo"], "Bearer {{secret:api_token}}");
        assert_eq!(body, b"{\"auth\":\"{{secret:api_token}}\"}");
        assert_eq!(headers["content-length"], body.len().to_string().as_str());
    }
}
