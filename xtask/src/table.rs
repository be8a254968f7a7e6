//! The BENCHMARKS.md table: machine, date, one row per figure, the notes.

use std::path::Path;

use anyhow::Context as _;

use crate::Figure;

const BEGIN: &str = "<!-- bench:begin (written by `cargo xtask bench --write`) -->";
const END: &str = "<!-- bench:end -->";

/// Where and when the figures were measured.
pub struct Machine {
    cores: usize,
    cpu: String,
    date: String,
    commit: String,
    load_before: String,
    load_after: String,
}

impl Machine {
    /// This machine, now.
    pub fn here(load_before: String, load_after: String) -> anyhow::Result<Machine> {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|c| {
                c.lines()
                    .find_map(|l| l.strip_prefix("model name"))
                    .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
            })
            .unwrap_or_else(|| "unknown CPU".into());
        let date = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .context("formatting the date")?;
        let commit = std::process::Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        Ok(Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu,
            date,
            commit,
            load_before,
            load_after,
        })
    }
}

/// The markdown block (between the markers).
pub fn render(machine: &Machine, figures: &[Figure]) -> String {
    let cell = |s: &str| s.replace('|', "\\|");
    let mut out = format!(
        "{BEGIN}\n\nMeasured {} at commit `{}` on {} cores (`nproc`), {}; load average (1/5/15 min, `uptime`) {} before, {} after.\n\n| Figure | Value | Baseline (same run) | Ratio | Command |\n|---|---|---|---|---|\n",
        machine.date,
        machine.commit,
        machine.cores,
        machine.cpu,
        machine.load_before,
        machine.load_after
    );
    for f in figures {
        out.push_str(&format!(
            "| {} | {} | {} | {} | `{}` |\n",
            cell(&f.figure),
            cell(&f.value),
            cell(&f.baseline),
            cell(&f.ratio),
            f.command
        ));
    }
    out.push_str("\nNotes:\n\n");
    for f in figures {
        out.push_str(&format!("- **{}**: {}\n", f.figure, f.note));
    }
    out.push('\n');
    out.push_str(END);
    out
}

/// Replaces the block between the markers in `path` (appends it when the
/// file has none).
pub fn replace_in(path: &Path, block: &str) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let new = match (text.find(BEGIN), text.find(END)) {
        (Some(b), Some(e)) if b < e => {
            format!("{}{block}{}", &text[..b], &text[e + END.len()..])
        }
        _ => format!("{text}\n{block}\n"),
    };
    std::fs::write(path, new).with_context(|| format!("writing {}", path.display()))
}
