//! Page cursors: opaque to clients, `base64url(position) "." check`, where
//! the check is the first 8 bytes of the position's SHA-256 in hex. A
//! cursor this API did not return (garbage, a truncated one, one with
//! anything appended) fails the check and is refused with a 400, on every
//! paged route alike.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

const CHECK_HEX: usize = 16;

fn check(position: &str) -> String {
    let digest = Sha256::digest(position.as_bytes());
    let mut hex = hex::encode(digest);
    hex.truncate(CHECK_HEX);
    hex
}

/// The cursor for a position.
pub fn encode(position: &str) -> String {
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(position.as_bytes()),
        check(position)
    )
}

/// The cursor for a `(time, id)` position (events, egress).
pub fn encode_keyed(time_ms: i64, id: &str) -> String {
    encode(&format!("{time_ms}:{id}"))
}

fn refused() -> ApiError {
    ApiError::bad_request(
        "cursor is not one this API returned (use nextCursor exactly as given); start again \
         from the first page",
    )
}

/// The position a cursor stands for.
pub(crate) fn decode(cursor: &str) -> Result<String, ApiError> {
    let (encoded, sum) = cursor.split_once('.').ok_or_else(refused)?;
    let raw = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| refused())?;
    let position = String::from_utf8(raw).map_err(|_| refused())?;
    if sum.len() != CHECK_HEX || sum != check(&position) {
        return Err(refused());
    }
    Ok(position)
}

/// The `(time, id)` position a cursor stands for.
pub fn decode_keyed(cursor: &str) -> Result<(i64, String), ApiError> {
    let position = decode(cursor)?;
    let (t, id) = position.split_once(':').ok_or_else(refused)?;
    Ok((t.parse().map_err(|_| refused())?, id.to_owned()))
}
