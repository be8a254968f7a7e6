//! One worker per instance. SKELETON: the interface the API codes against.

use serde::Serialize;

/// What an instance's worker is doing.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Reading the backfill window.
    Backfill,
    /// Caught up; waiting for the next poll.
    Idle,
    /// Reading new events.
    Polling,
    /// Waiting out a rate limit or a backoff.
    Waiting,
    /// Not running (disabled, error, or not started).
    Stopped,
}

/// A worker's live progress, for status and lag.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerProgress {
    /// Current phase.
    pub phase: Phase,
    /// Newest event time seen (ms since epoch).
    pub newest_event_ms: Option<i64>,
    /// When the worker last finished reading to the provider's present.
    pub caught_up_ms: Option<i64>,
    /// When the next call is due.
    pub next_run_ms: Option<i64>,
    /// Pages committed since the worker started.
    pub pages: u64,
    /// Events newly stored since the worker started.
    pub new_events: u64,
}

/// Handle to the instance workers. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Scheduler {}

impl Scheduler {
    /// (Re)starts the worker of an instance: backfill when it has no audit
    /// cursor yet, then polling. Returns at once.
    pub fn start(&self, instance_id: &str) {
        let _ = instance_id;
    }

    /// Stops the worker of an instance (disable, delete, credentials
    /// rejected). An in-flight page finishes or rolls back.
    pub fn stop(&self, instance_id: &str) {
        let _ = instance_id;
    }

    /// Live progress of an instance's worker, if one runs.
    pub fn progress(&self, instance_id: &str) -> Option<WorkerProgress> {
        let _ = instance_id;
        None
    }
}
