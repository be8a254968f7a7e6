//! `cargo xtask test [ARGS…]`: the one command that runs the whole test
//! suite. It sets up every tool of [`crate::tools::ALL`] (each timed in the
//! log), then runs `cargo test --workspace ARGS…` with the tools' variables
//! exported.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, bail};

use crate::tools;

/// Sets up the tools, then runs the workspace's tests.
pub fn run(root: &Path, args: Vec<String>) -> anyhow::Result<()> {
    let ctx = tools::Context::new(&crate::target_dir(root))?;
    let mut exports = Vec::new();
    for (name, setup) in tools::ALL {
        let started = Instant::now();
        let found = setup(&ctx).with_context(|| format!("setting up {name} for the tests"))?;
        for e in &found {
            eprintln!("xtask: {}={}", e.name, e.value.to_string_lossy());
        }
        eprintln!(
            "xtask: {name} ready in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        exports.extend(found);
    }
    let mut command = Command::new("cargo");
    command
        .args(["test", "--workspace"])
        .args(&args)
        .current_dir(root);
    for e in &exports {
        command.env(e.name, &e.value);
    }
    eprintln!("xtask: cargo test --workspace {}", args.join(" "));
    let status = command.status().context("running cargo test")?;
    if !status.success() {
        bail!(
            "`cargo test --workspace {}` failed ({status})",
            args.join(" ")
        );
    }
    Ok(())
}
