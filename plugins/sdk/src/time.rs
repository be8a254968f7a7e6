//! Timestamps as the contract carries them: milliseconds since the Unix
//! epoch, UTC.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::{Error, Timestamp};

/// Parses an RFC 3339 / ISO 8601 date-time (`2024-01-02T03:04:05.678Z`).
pub fn parse_rfc3339(text: &str) -> Result<Timestamp, Error> {
    let parsed = OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|e| Error::internal(format!("provider sent an unreadable time {text:?}: {e}")))?;
    Ok((parsed.unix_timestamp_nanos() / 1_000_000) as Timestamp)
}

/// Formats as RFC 3339 with milliseconds and `Z`, the form most provider
/// APIs accept in query parameters.
pub fn format_rfc3339(ts: Timestamp) -> String {
    let secs = ts.div_euclid(1000);
    let millis = ts.rem_euclid(1000);
    match OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            millis
        ),
        // Out of range only for absurd inputs; the epoch keeps the request valid.
        Err(_) => "1970-01-01T00:00:00.000Z".to_string(),
    }
}

/// The current wall-clock time.
pub fn now() -> Timestamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as Timestamp)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trips() {
        let ts = parse_rfc3339("2024-01-02T03:04:05.678Z").unwrap();
        assert_eq!(ts, 1_704_164_645_678);
        assert_eq!(format_rfc3339(ts), "2024-01-02T03:04:05.678Z");
        assert_eq!(parse_rfc3339("2024-01-02T04:04:05.678+01:00").unwrap(), ts);
        assert!(parse_rfc3339("yesterday").is_err());
    }
}
