//! What the test suite needs besides Rust, one module per tool. Each
//! module's `setup` installs its tool under `target/tools/` (once; later
//! runs reuse it) and returns the environment variables that tell the tests
//! where it is. Tests that need a tool fail, naming `cargo xtask test`,
//! when its variable is missing.
//!
//! Adding a tool (a PostgreSQL server, say): a new module with a
//! `setup(&Context) -> anyhow::Result<Vec<Export>>`, listed in [`ALL`].

use std::path::{Path, PathBuf};

pub mod chromium;
pub mod componentize_py;
pub mod python;

/// Where tools go and how they may be installed.
#[derive(Debug)]
pub struct Context {
    /// `target/tools` (under `$CARGO_TARGET_DIR` when set).
    pub dir: PathBuf,
}

impl Context {
    /// The context for a workspace whose target directory is `target`.
    pub fn new(target: &Path) -> anyhow::Result<Context> {
        let dir = target.join("tools");
        std::fs::create_dir_all(&dir)?;
        Ok(Context { dir })
    }
}

/// One environment variable handed to `cargo test`.
#[derive(Debug, Clone)]
pub struct Export {
    /// Variable name (`WARD_COMPONENTIZE_PY`).
    pub name: &'static str,
    /// Its value (a path).
    pub value: PathBuf,
}

/// A tool: its name in the log and its set-up.
pub type Setup = fn(&Context) -> anyhow::Result<Vec<Export>>;

/// Every tool the tests need, in set-up order.
pub const ALL: &[(&str, Setup)] = &[
    ("componentize-py", componentize_py::setup),
    ("chromium", chromium::setup),
];
