//! `ward:connector/log`: the guest's structured log. Lines are kept per call
//! (capped in count and length so a flooding plugin costs bounded memory),
//! escaped (a plugin line can never start a new daemon log line or drive
//! the operator's terminal), redacted, and forwarded to `tracing` with
//! plugin and instance attached.

use serde::Serialize;
use wasmtime::component::{HasData, Linker};

use crate::RuntimeError;
use crate::bindings::v0_1::ward::connector::log as log_v0_1;
use crate::bindings::v0_2::ward::connector::log as log_v0_2;

/// Most lines kept per call; later lines are counted, not stored.
pub const MAX_LINES: usize = 1_000;
/// Longest line kept, in bytes; longer lines are truncated.
pub const MAX_LINE_BYTES: usize = 4_096;

/// One log line written by a plugin.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LogLine {
    /// `trace` … `error`.
    pub level: &'static str,
    /// The message, truncated and redacted.
    pub message: String,
}

/// Per-call log state.
#[derive(Debug, Default)]
pub struct LogSink {
    pub(crate) lines: Vec<LogLine>,
    pub(crate) dropped: u64,
}

impl log_v0_2::Host for LogSink {
    fn log(&mut self, level: log_v0_2::Level, message: String) {
        use log_v0_2::Level;
        let level = match level {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        self.push(level, &message);
    }
}

impl log_v0_1::Host for LogSink {
    fn log(&mut self, level: log_v0_1::Level, message: String) {
        use log_v0_1::Level as Old;
        use log_v0_2::Level as New;
        // The 0.1 interface is the same; its values go through 0.2's.
        let level = match level {
            Old::Trace => New::Trace,
            Old::Debug => New::Debug,
            Old::Info => New::Info,
            Old::Warn => New::Warn,
            Old::Error => New::Error,
        };
        log_v0_2::Host::log(self, level, message);
    }
}

impl LogSink {
    fn push(&mut self, level: &'static str, message: &str) {
        if self.lines.len() >= MAX_LINES {
            self.dropped += 1;
            return;
        }
        let mut message = escape(message);
        if message.len() > MAX_LINE_BYTES {
            let mut cut = MAX_LINE_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        self.lines.push(LogLine { level, message });
    }
}

/// `\n`, `\r`, `\t` as their escapes; every other control character
/// (ESC of ANSI sequences, C1 controls, DEL) and the Unicode line and
/// paragraph separators as `\u{..}`. Everything else is kept.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                out.push_str(&format!("\\u{{{:x}}}", u32::from(c)))
            }
            c => out.push(c),
        }
    }
    out
}

struct LogCap;

impl HasData for LogCap {
    type Data<'a> = &'a mut LogSink;
}

/// Adds `ward:connector/log` of every supported contract version.
pub fn add_to_linker(linker: &mut Linker<crate::HostState>) -> Result<(), RuntimeError> {
    log_v0_1::add_to_linker::<crate::HostState, LogCap>(linker, |state| &mut state.log)
        .map_err(|e| RuntimeError::Config(format!("linking ward:connector/log@0.1.0: {e:#}")))?;
    log_v0_2::add_to_linker::<crate::HostState, LogCap>(linker, |state| &mut state.log)
        .map_err(|e| RuntimeError::Config(format!("linking ward:connector/log@0.2.0: {e:#}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_cannot_forge_lines_or_drive_terminals() {
        assert_eq!(
            escape("ok\n2026-01-01 INFO forged\r\u{1b}[31mred\u{85}\u{2028}"),
            "ok\\n2026-01-01 INFO forged\\r\\u{1b}[31mred\\u{85}\\u{2028}"
        );
        assert_eq!(escape("plain text: é"), "plain text: é");
    }
}
