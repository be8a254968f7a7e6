//! The per-call egress log. A request the host starts sending is recorded
//! as in flight; when the call ends (normally, or stopped by its wall clock
//! or CPU budget) [`EgressLog::close`] turns whatever is still in flight
//! into an `aborted` row, so no request that left the host goes unlogged.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use super::{EgressEntry, Refusal};

/// Shared between the broker and the request futures it hands out.
#[derive(Clone, Default)]
pub(crate) struct EgressLog {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    entries: Vec<EgressEntry>,
    in_flight: BTreeMap<u64, (EgressEntry, Instant)>,
    next: u64,
    closed: bool,
}

/// The row of a request stopped with its call.
pub(crate) const ABORTED: &str = "aborted: the call was stopped (wall-clock timeout or CPU budget) while this request was in flight; the provider may have received it";

impl EgressLog {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means another thread panicked mid-push; the
        // entries already there are still worth keeping.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a finished (or refused) request. After [`EgressLog::close`]
    /// the call's log is already handed over and the row is dropped.
    pub(crate) fn push(&self, entry: EgressEntry) {
        let mut state = self.lock();
        if !state.closed {
            state.entries.push(entry);
        }
    }

    /// Marks a request as in flight; `provisional` is its row should the
    /// call stop before [`EgressLog::finish`].
    pub(crate) fn start(&self, provisional: EgressEntry) -> u64 {
        let mut state = self.lock();
        let id = state.next;
        state.next += 1;
        state.in_flight.insert(id, (provisional, Instant::now()));
        id
    }

    /// Replaces the in-flight row of `id` with its final row. Nothing is
    /// recorded if the call already closed the log (the row says aborted).
    pub(crate) fn finish(&self, id: u64, entry: EgressEntry) {
        let mut state = self.lock();
        if state.in_flight.remove(&id).is_some() && !state.closed {
            state.entries.push(entry);
        }
    }

    /// Ends the call's log: requests still in flight become `aborted` rows.
    /// Returns every row, in order of completion.
    pub(crate) fn close(&self) -> Vec<EgressEntry> {
        let mut state = self.lock();
        state.closed = true;
        let in_flight = std::mem::take(&mut state.in_flight);
        for (_, (mut entry, started)) in in_flight {
            entry.reason = Some(ABORTED.to_string());
            entry.refusal = Some(Refusal::Aborted);
            entry.latency_ms = started.elapsed().as_millis() as u64;
            state.entries.push(entry);
        }
        std::mem::take(&mut state.entries)
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
