//! What every benchmark prints: one JSON line per figure, and the process
//! accounting (CPU time, RSS) the figures are computed from.

use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;

/// One row of the BENCHMARKS.md table.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// What is measured (`ingestion: events/s`).
    pub figure: String,
    /// Ward's value, with its unit.
    pub value: String,
    /// The baseline measured in the same run (or why there is none).
    pub baseline: String,
    /// value / baseline, oriented so that > 1 means Ward is better, or `—`.
    pub ratio: String,
    /// How the value was obtained, and anything that qualifies it.
    pub note: String,
}

impl Figure {
    /// A figure with no baseline.
    pub fn alone(figure: &str, value: String, note: impl Into<String>) -> Figure {
        Figure {
            figure: figure.to_string(),
            value,
            baseline: "—".to_string(),
            ratio: "—".to_string(),
            note: note.into(),
        }
    }

    /// Prints the figure as one JSON line on stdout (what `cargo xtask
    /// bench` collects).
    pub fn emit(&self) -> anyhow::Result<()> {
        println!("{}", serde_json::to_string(self)?);
        Ok(())
    }
}

/// `better / worse`, formatted like `3.2×`.
pub fn ratio(better_is_larger: f64, other: f64) -> String {
    if other <= 0.0 || !better_is_larger.is_finite() {
        return "—".to_string();
    }
    format!("{:.2}×", better_is_larger / other)
}

/// CPU time (user + system) a process has used so far, from
/// `/proc/<pid>/stat`; `None` is this process.
pub fn cpu_time(pid: Option<u32>) -> anyhow::Result<Duration> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // Fields after the command name (which may hold spaces) start at ") ".
    let rest = stat
        .rsplit_once(") ")
        .map(|(_, r)| r)
        .with_context(|| format!("{path}: no command field"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 here.
    let ticks = |i: usize| -> anyhow::Result<u64> {
        fields
            .get(i)
            .with_context(|| format!("{path}: field {i} missing"))?
            .parse::<u64>()
            .with_context(|| format!("{path}: field {i} is not a number"))
    };
    let total = ticks(11)? + ticks(12)?;
    Ok(Duration::from_secs_f64(
        total as f64 / clock_ticks()? as f64,
    ))
}

/// `sysconf(_SC_CLK_TCK)`, read through `getconf` (the workspace forbids
/// `unsafe`, so no libc call).
fn clock_ticks() -> anyhow::Result<u64> {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    if let Some(t) = TICKS.get() {
        return Ok(*t);
    }
    let out = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .context("running `getconf CLK_TCK`")?;
    let ticks = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse::<u64>()
        .context("`getconf CLK_TCK` printed no number")?;
    Ok(*TICKS.get_or_init(|| ticks))
}

/// Resident set size of a process in MiB (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_mib(pid: u32) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .with_context(|| format!("{path}: no VmRSS line"))?;
    Ok(kib / 1024.0)
}

/// Microseconds, for tables.
pub fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The median of some durations (sorts them).
pub fn median(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    samples
        .get(samples.len() / 2)
        .copied()
        .unwrap_or(Duration::ZERO)
}
