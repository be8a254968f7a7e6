//! Ward: the daemon and CLI around the plugin runtime.
//!
//! - [`bundled`]: the connectors compiled into this binary.
//! - [`ingest`]: pulling pages from a bound plugin into the store, with
//!   exactly-once commits, rate-limit waits and transient-error backoff.
//! - [`demo`]: `ward demo`, the bundled connectors against local stand-ins.

pub mod bundled;
pub mod connect;
pub mod demo;
pub mod ingest;
