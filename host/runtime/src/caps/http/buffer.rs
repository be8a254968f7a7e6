//! Response bytes the host holds for one call, bounded by the plugin's
//! memory cap (`limits.memory_mib`).
//!
//! A response body is read whole before the guest sees it (it is scrubbed
//! of stored secret values first), so a plugin that starts many requests
//! and never reads their bodies would make the host hold
//! `requests_per_call × response_bytes`. Every body the host buffers is
//! counted here while it is received and for as long as the guest holds it
//! unread; a body that would take the call past its memory cap is refused.
//! A call therefore costs the daemon at most twice its cap: the guest's own
//! linear memory plus what the host holds for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The per-call account of buffered response bytes. Built with the
/// broker, one per call.
#[derive(Clone, Debug)]
pub(crate) struct ResponseBuffer {
    used: Arc<AtomicU64>,
    cap: u64,
}

impl ResponseBuffer {
    /// An account holding at most `cap` bytes at a time.
    pub(crate) fn new(cap: u64) -> ResponseBuffer {
        ResponseBuffer {
            used: Arc::new(AtomicU64::new(0)),
            cap,
        }
    }

    /// The cap in bytes.
    pub(crate) fn cap(&self) -> u64 {
        self.cap
    }

    /// A new, empty reservation; it gives its bytes back when dropped.
    pub(crate) fn hold(&self) -> Held {
        Held {
            account: self.clone(),
            bytes: 0,
        }
    }
}

/// Bytes of one response counted against the call's account.
#[derive(Debug)]
pub(crate) struct Held {
    account: ResponseBuffer,
    bytes: u64,
}

impl Held {
    /// Counts `n` more bytes, or answers how many bytes the call's
    /// responses already hold when `n` more would pass the cap.
    pub(crate) fn grow(&mut self, n: u64) -> Result<(), u64> {
        let cap = self.account.cap;
        self.account
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|total| *total <= cap)
            })
            .map(|_| self.bytes += n)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.account.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_share_one_cap_and_give_bytes_back_when_dropped() {
        let account = ResponseBuffer::new(100);
        let mut a = account.hold();
        let mut b = account.hold();
        assert_eq!(a.grow(60), Ok(()));
        assert_eq!(b.grow(50), Err(60));
        assert_eq!(b.grow(40), Ok(()));
        drop(a);
        assert_eq!(b.grow(60), Ok(()));
        assert_eq!(account.hold().grow(1), Err(100));
    }
}
