//! Opaque tokens a stand-in hands out and must recognise again: cursors.
//!
//! Providers tell clients never to build or parse their cursors; sealing
//! ours (payload plus a keyed SHA-256 tag, base64url) means a connector that
//! fabricates or edits one is refused here too, rather than working against
//! the stand-in and failing against the provider.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

const TAG_LEN: usize = 10;

/// Seals and opens tokens with one key.
#[derive(Debug, Clone)]
pub(crate) struct Sealer {
    key: [u8; 32],
}

impl Sealer {
    /// The key depends only on `purpose`, the tenant and the seed, so a
    /// stand-in restarted with the same configuration accepts the tokens its
    /// predecessor issued, as the provider would after a client restart.
    pub(crate) fn new(purpose: &str, tenant: &str, seed: u64) -> Sealer {
        let mut h = Sha256::new();
        h.update(b"ward-standin ");
        h.update(purpose.as_bytes());
        h.update(b"\0");
        h.update(tenant.as_bytes());
        h.update(seed.to_le_bytes());
        Sealer {
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

    /// `payload` with its tag, base64url.
    pub(crate) fn seal(&self, mut payload: Vec<u8>) -> String {
        let tag = self.tag(&payload);
        payload.extend_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(payload)
    }

    /// The payload of a token this sealer issued; `None` for anything else.
    pub(crate) fn open(&self, token: &str) -> Option<Vec<u8>> {
        let mut bytes = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
        let split = bytes.len().checked_sub(TAG_LEN)?;
        if self.tag(&bytes[..split]) != bytes[split..] {
            return None;
        }
        bytes.truncate(split);
        Some(bytes)
    }
}
