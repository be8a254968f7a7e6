//! Opaque audit stream cursors.
//!
//! Egnyte's `nextCursor` is an opaque base64-looking token
//! (`AAN_lwABAX1zZe9AAAAA...`). Ours seals (see [`crate::seal`]) the stream
//! position, type filter and end date, so a client that edits or invents
//! one gets a 400 here, as it would from Egnyte.

use crate::seal::Sealer;

const PAYLOAD_LEN: usize = 8 + 2 + 8;

/// Where a stream continues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StreamCursor {
    /// Index of the next event in the domain's log.
    pub pos: u64,
    /// Audit type filter bits.
    pub types: u16,
    /// Exclusive end date (ms) of the first request, if it had one.
    pub end: Option<i64>,
}

/// Encodes and checks cursors with a per-domain key.
#[derive(Debug, Clone)]
pub(crate) struct CursorCodec(Sealer);

impl CursorCodec {
    pub(crate) fn new(domain: &str, seed: u64) -> CursorCodec {
        CursorCodec(Sealer::new("egnyte cursor", domain, seed))
    }

    pub(crate) fn encode(&self, c: StreamCursor) -> String {
        let mut bytes = Vec::with_capacity(PAYLOAD_LEN);
        bytes.extend_from_slice(&c.pos.to_be_bytes());
        bytes.extend_from_slice(&c.types.to_be_bytes());
        bytes.extend_from_slice(&c.end.unwrap_or(i64::MIN).to_be_bytes());
        self.0.seal(bytes)
    }

    pub(crate) fn decode(&self, text: &str) -> Option<StreamCursor> {
        let payload = self.0.open(text)?;
        if payload.len() != PAYLOAD_LEN {
            return None;
        }
        let pos = u64::from_be_bytes(payload[0..8].try_into().ok()?);
        let types = u16::from_be_bytes(payload[8..10].try_into().ok()?);
        let end = i64::from_be_bytes(payload[10..18].try_into().ok()?);
        Some(StreamCursor {
            pos,
            types,
            end: (end != i64::MIN).then_some(end),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let codec = CursorCodec::new("acme", 1);
        let c = StreamCursor {
            pos: 12_345,
            types: 0b1011,
            end: Some(1_700_000_000_000),
        };
        let text = codec.encode(c);
        assert_eq!(codec.decode(&text), Some(c));
        let open = StreamCursor { end: None, ..c };
        assert_eq!(codec.decode(&codec.encode(open)), Some(open));
        let mut tampered = text.clone().into_bytes();
        tampered[2] = if tampered[2] == b'A' { b'B' } else { b'A' };
        assert_eq!(codec.decode(&String::from_utf8(tampered).unwrap()), None);
        assert_eq!(codec.decode("QmlnVGFibGVLZXk="), None);
        assert_eq!(CursorCodec::new("other", 1).decode(&text), None);
    }
}
