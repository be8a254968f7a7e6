//! What the test suite needs besides Rust, one module per tool. Each
//! module's `setup` installs its tool under `target/tools/` (once; later
//! runs reuse it) and returns the environment variables that tell the tests
//! where it is. Tests that need a tool fail, naming `cargo xtask test`,
//! when its variable is missing.
//!
//! Adding a tool: a new module with a
//! `setup(&Context) -> anyhow::Result<Vec<Export>>`, listed in [`ALL`].

use std::any::Any;
use std::cell::RefCell;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

pub mod chromium;
pub mod componentize_py;
pub mod postgres;
pub mod python;

/// Where tools go and how they may be installed.
#[derive(Debug)]
pub struct Context {
    /// `target/tools` (under `$CARGO_TARGET_DIR` when set).
    pub dir: PathBuf,
    /// What must live until the tests end (a running server); dropped,
    /// and so stopped, when the context is.
    running: RefCell<Vec<Box<dyn Any>>>,
}

impl Context {
    /// The context for a workspace whose target directory is `target`.
    pub fn new(target: &Path) -> anyhow::Result<Context> {
        let dir = target.join("tools");
        std::fs::create_dir_all(&dir)?;
        Ok(Context {
            dir,
            running: RefCell::new(Vec::new()),
        })
    }

    /// Keeps `thing` (a running server) alive until the context is dropped.
    pub fn keep_running(&self, thing: Box<dyn Any>) {
        self.running.borrow_mut().push(thing);
    }
}

/// One environment variable handed to `cargo test`.
#[derive(Debug, Clone)]
pub struct Export {
    /// Variable name (`WARD_COMPONENTIZE_PY`).
    pub name: &'static str,
    /// Its value (a path or a URL).
    pub value: OsString,
}

/// A tool: its name in the log and its set-up.
pub type Setup = fn(&Context) -> anyhow::Result<Vec<Export>>;

/// Every tool the tests need, in set-up order.
pub const ALL: &[(&str, Setup)] = &[
    ("componentize-py", componentize_py::setup),
    ("postgresql", postgres::setup),
    ("chromium", chromium::setup),
];
