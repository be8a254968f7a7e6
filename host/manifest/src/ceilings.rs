//! Daemon-wide ceilings on what any manifest may ask (`[limits]` in
//! `ward.toml`, keys `max_*` and `min_poll_interval_secs`). A manifest value
//! past a ceiling is clamped to it, and `inspect` shows the clamped value
//! as effective with a warning.

use serde::{Deserialize, Serialize};

use crate::{Limits, Schedule};

/// `[limits]` in the daemon configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ceilings {
    /// Highest `limits.memory_mib`.
    pub max_memory_mib: u32,
    /// Highest `limits.cpu_ms`.
    pub max_cpu_ms: u32,
    /// Highest `limits.wall_ms`.
    pub max_wall_ms: u32,
    /// Highest `limits.requests_per_call`.
    pub max_requests_per_call: u32,
    /// Highest `limits.response_bytes`.
    pub max_response_bytes: u64,
    /// Highest `limits.request_bytes`.
    pub max_request_bytes: u64,
    /// Highest `limits.output_bytes`.
    pub max_output_bytes: u64,
    /// Highest `limits.page_items`.
    pub max_page_items: u32,
    /// Longest `schedule.backfill_days`.
    pub max_backfill_days: u32,
    /// Shortest `schedule.poll_interval_secs`.
    pub min_poll_interval_secs: u32,
}

impl Default for Ceilings {
    fn default() -> Self {
        Ceilings {
            max_memory_mib: 512,
            max_cpu_ms: 60_000,
            max_wall_ms: 300_000,
            max_requests_per_call: 64,
            max_response_bytes: 64 << 20,
            max_request_bytes: 16 << 20,
            max_output_bytes: 128 << 20,
            max_page_items: 10_000,
            max_backfill_days: 366,
            min_poll_interval_secs: 10,
        }
    }
}

/// Every bounded value: its name in the manifest and its key under
/// `[limits]`.
const BOUNDED: [(&str, &str); 10] = [
    ("limits.memory_mib", "max_memory_mib"),
    ("limits.cpu_ms", "max_cpu_ms"),
    ("limits.wall_ms", "max_wall_ms"),
    ("limits.requests_per_call", "max_requests_per_call"),
    ("limits.response_bytes", "max_response_bytes"),
    ("limits.request_bytes", "max_request_bytes"),
    ("limits.output_bytes", "max_output_bytes"),
    ("limits.page_items", "max_page_items"),
    ("schedule.backfill_days", "max_backfill_days"),
    ("schedule.poll_interval_secs", "min_poll_interval_secs"),
];

fn clamp<T: Copy + Ord + std::fmt::Display>(
    name: &str,
    ceiling: &str,
    value: T,
    max: T,
    out: &mut Vec<String>,
) -> T {
    if value > max {
        out.push(format!(
            "{name} = {value} is above the daemon ceiling limits.{ceiling} = {max}; {max} applies"
        ));
        max
    } else {
        value
    }
}

impl Ceilings {
    /// Checks the ceilings themselves (each at least 1).
    pub fn validate(&self) -> Result<(), String> {
        match BOUNDED
            .iter()
            .zip(self.values())
            .find(|(_, ceiling)| *ceiling == 0)
        {
            Some(((_, key), _)) => Err(format!("limits.{key} must be at least 1")),
            None => Ok(()),
        }
    }

    /// The ceilings in [`BOUNDED`] order.
    fn values(&self) -> [u64; 10] {
        [
            u64::from(self.max_memory_mib),
            u64::from(self.max_cpu_ms),
            u64::from(self.max_wall_ms),
            u64::from(self.max_requests_per_call),
            self.max_response_bytes,
            self.max_request_bytes,
            self.max_output_bytes,
            u64::from(self.max_page_items),
            u64::from(self.max_backfill_days),
            u64::from(self.min_poll_interval_secs),
        ]
    }

    /// `limits` with every value at most its ceiling; one warning per
    /// clamped value.
    pub fn clamp_limits(&self, l: Limits, warnings: &mut Vec<String>) -> Limits {
        let w = warnings;
        Limits {
            memory_mib: clamp(
                "limits.memory_mib",
                "max_memory_mib",
                l.memory_mib,
                self.max_memory_mib,
                w,
            ),
            cpu_ms: clamp("limits.cpu_ms", "max_cpu_ms", l.cpu_ms, self.max_cpu_ms, w),
            wall_ms: clamp(
                "limits.wall_ms",
                "max_wall_ms",
                l.wall_ms,
                self.max_wall_ms,
                w,
            ),
            requests_per_call: clamp(
                "limits.requests_per_call",
                "max_requests_per_call",
                l.requests_per_call,
                self.max_requests_per_call,
                w,
            ),
            response_bytes: clamp(
                "limits.response_bytes",
                "max_response_bytes",
                l.response_bytes,
                self.max_response_bytes,
                w,
            ),
            request_bytes: clamp(
                "limits.request_bytes",
                "max_request_bytes",
                l.request_bytes,
                self.max_request_bytes,
                w,
            ),
            output_bytes: clamp(
                "limits.output_bytes",
                "max_output_bytes",
                l.output_bytes,
                self.max_output_bytes,
                w,
            ),
            page_items: clamp(
                "limits.page_items",
                "max_page_items",
                l.page_items,
                self.max_page_items,
                w,
            ),
        }
    }

    /// `schedule` with the backfill window at most its ceiling and the poll
    /// interval at least its floor.
    pub fn clamp_schedule(&self, s: Schedule, warnings: &mut Vec<String>) -> Schedule {
        let poll = if s.poll_interval_secs < self.min_poll_interval_secs {
            warnings.push(format!(
                "schedule.poll_interval_secs = {} is below the daemon floor limits.min_poll_interval_secs = {}; {} applies",
                s.poll_interval_secs, self.min_poll_interval_secs, self.min_poll_interval_secs
            ));
            self.min_poll_interval_secs
        } else {
            s.poll_interval_secs
        };
        Schedule {
            backfill_days: clamp(
                "schedule.backfill_days",
                "max_backfill_days",
                s.backfill_days,
                self.max_backfill_days,
                warnings,
            ),
            poll_interval_secs: poll,
            ..s
        }
    }

    /// Names of the effective values that sit exactly at their ceiling.
    pub fn reached(&self, l: &Limits, s: &Schedule) -> Vec<String> {
        let values = [
            u64::from(l.memory_mib),
            u64::from(l.cpu_ms),
            u64::from(l.wall_ms),
            u64::from(l.requests_per_call),
            l.response_bytes,
            l.request_bytes,
            l.output_bytes,
            u64::from(l.page_items),
            u64::from(s.backfill_days),
            u64::from(s.poll_interval_secs),
        ];
        BOUNDED
            .iter()
            .zip(values)
            .zip(self.values())
            .filter(|((_, value), ceiling)| value == ceiling)
            .map(|(((name, _), value), _)| format!("{name} = {value}"))
            .collect()
    }
}
