//! Tools for connector vendors, run by `ward plugin test` and `ward plugin
//! record`:
//!
//! - [`conformance::run`]: serves the recorded exchanges of a fixture
//!   folder through the real broker (the plugin's grants, secrets and
//!   limits, as in production) and checks the connector contract.
//! - [`junit::write`]: the harness report as JUnit XML, for CI.
//! - [`record::record`]: runs a plugin against a real endpoint and writes
//!   what it exchanged as fixtures, secret values replaced by references.
//!
//! A fixture folder holds a `harness.toml` ([`spec::Spec`]: configuration,
//! secrets and the scenarios with what each must produce) and one folder
//! of recorded exchanges per scenario, in the replay format of
//! `tests/fixtures/README.md`.

pub mod conformance;
pub mod junit;
pub mod record;

pub mod spec;

pub use conformance::{Check, Report, run};
pub use spec::{Expect, Scenario, Spec};

/// Why the harness or the recorder could not run (a plugin that runs and
/// breaks the contract is a failed [`Check`], not an error).
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The fixture folder or its `harness.toml` is unusable.
    #[error("fixtures {path}: {message}")]
    Fixtures {
        /// The file or folder.
        path: std::path::PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// The plugin did not load or bind.
    #[error("plugin: {0}")]
    Plugin(String),
    /// A stand-in, the runtime or a file write failed.
    #[error("{0}")]
    Io(String),
}
