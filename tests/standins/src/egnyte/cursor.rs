//! Opaque audit stream cursors.
//!
//! Egnyte's `nextCursor` is an opaque base64-looking token
//! (`AAN_lwABAX1zZe9AAAAA...`). Ours is a MAC'd base64url blob of the stream
//! position, type filter and end date, so a client that edits or invents
//! one gets a 400 here, as it would from Egnyte, instead of working against
//! the stand-in only.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

const TAG_LEN: usize = 8;
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
pub(crate) struct CursorCodec {
    key: [u8; 32],
}

impl CursorCodec {
    /// Depends only on the domain and seed, so a restarted stand-in accepts
    /// the cursors its predecessor issued.
    pub(crate) fn new(domain: &str, seed: u64) -> CursorCodec {
        let mut h = Sha256::new();
        h.update(b"ward-standin egnyte cursor\0");
        h.update(domain.as_bytes());
        h.update(seed.to_le_bytes());
        CursorCodec {
            key: h.finalize().into(),
        }
    }

    fn tag(&self, payload: &[u8]) -> [u8; TAG_LEN] {
        let mut h = Sha256::new();
        h.update(self.key);
        h.update(payload);
        let digest = h.finalize();
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&digest[..TAG_LEN]);
        tag
    }

    pub(crate) fn encode(&self, c: StreamCursor) -> String {
        let mut bytes = Vec::with_capacity(PAYLOAD_LEN + TAG_LEN);
        bytes.extend_from_slice(&c.pos.to_be_bytes());
        bytes.extend_from_slice(&c.types.to_be_bytes());
        bytes.extend_from_slice(&c.end.unwrap_or(i64::MIN).to_be_bytes());
        let tag = self.tag(&bytes);
        bytes.extend_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    pub(crate) fn decode(&self, text: &str) -> Option<StreamCursor> {
        let bytes = URL_SAFE_NO_PAD.decode(text.trim()).ok()?;
        if bytes.len() != PAYLOAD_LEN + TAG_LEN {
            return None;
        }
        let (payload, tag) = bytes.split_at(PAYLOAD_LEN);
        if self.tag(payload) != tag {
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
