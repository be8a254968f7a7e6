//! `ward:connector/log`: the guest's structured log. Lines are kept per call
//! (capped in count and length so a flooding plugin costs bounded memory),
//! redacted, and forwarded to `tracing` with plugin and instance attached.

use serde::Serialize;
use wasmtime::component::{HasData, Linker};

use crate::RuntimeError;
use crate::bindings::ward::connector::log::{Host, Level, add_to_linker as add_log};

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

impl Host for LogSink {
    fn log(&mut self, level: Level, message: String) {
        if self.lines.len() >= MAX_LINES {
            self.dropped += 1;
            return;
        }
        let mut message = message;
        if message.len() > MAX_LINE_BYTES {
            let mut cut = MAX_LINE_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        let level = match level {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        self.lines.push(LogLine { level, message });
    }
}

struct LogCap;

impl HasData for LogCap {
    type Data<'a> = &'a mut LogSink;
}

/// Adds `ward:connector/log`.
pub fn add_to_linker(linker: &mut Linker<crate::HostState>) -> Result<(), RuntimeError> {
    add_log::<crate::HostState, LogCap>(linker, |state| &mut state.log)
        .map_err(|e| RuntimeError::Config(format!("linking ward:connector/log: {e:#}")))
}
