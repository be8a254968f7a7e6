//! Logging into the host's structured log. Lines are tagged with the plugin
//! and instance by the host, capped, and scanned for secret values.

use crate::bindings::ward::connector::log::{Level, log};

/// Logs at debug level.
pub fn debug(message: &str) {
    log(Level::Debug, message);
}

/// Logs at info level.
pub fn info(message: &str) {
    log(Level::Info, message);
}

/// Logs at warn level.
pub fn warn(message: &str) {
    log(Level::Warn, message);
}

/// Logs at error level.
pub fn error(message: &str) {
    log(Level::Error, message);
}
