//! Ward's command-line front end: the `ward` binary's subcommands that are
//! more than a call into [`ward_daemon`] or [`ward_api`].
//!
//! - [`demo`]: `ward demo`, the bundled connectors against local stand-ins.
//! - [`plugin_cli`]: `ward plugin keygen|sign|verify|inspect|diff|approve`.

pub mod demo;
pub mod plugin_cli;
