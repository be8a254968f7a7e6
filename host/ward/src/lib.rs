//! Ward's command-line front end: the `ward` binary's subcommands that are
//! more than a call into [`ward_daemon`] or [`ward_api`].
//!
//! - [`serve`]: `ward serve`, the daemon with its REST API.
//! - [`demo`]: `ward demo`, the daemon with the bundled connectors against
//!   local provider stand-ins (cargo feature `standins`, on by default).
//! - [`plugin_cli`]: `ward plugin new|keygen|sign|verify|inspect|pack|test|record|diff|approve`.
//! - [`scaffold`]: the project templates of `ward plugin new`.
//! - [`client`]: `ward instances …` and `ward events …` over the REST API.
//! - [`memory`]: freed heap handed back to the kernel while the daemon runs.

pub mod client;
#[cfg(feature = "standins")]
pub mod demo;
pub mod memory;
pub mod plugin_cli;
pub mod scaffold;
pub mod serve;
