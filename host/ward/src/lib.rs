//! Ward's command-line front end: the `ward` binary's subcommands that are
//! more than a call into [`ward_daemon`] or [`ward_api`].
//!
//! - [`demo`]: `ward demo`, the bundled connectors against local stand-ins.
//! - [`client`]: `ward instances …` and `ward events …` over the REST API.

pub mod client;
pub mod demo;
