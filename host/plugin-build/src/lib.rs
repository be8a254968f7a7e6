//! Builds connector crates of this workspace for `wasm32-wasip2` from a
//! build script, so that a plain `cargo run` or `cargo test` produces real
//! components from source with no separate step.
//!
//! The nested cargo uses its own target directory (`target/plugins`) so it
//! never contends with the outer build's lock, and a clean environment so
//! flags meant for the host build (`RUSTFLAGS`, clippy's wrapper) do not
//! leak into the wasm build.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The target every connector is built for.
pub const TARGET: &str = "wasm32-wasip2";
/// The cargo profile used for connectors (see the workspace Cargo.toml).
pub const PROFILE: &str = "plugin";

/// Builds `packages` and tells cargo about each component with a
/// `cargo:rustc-env=<ENV_PREFIX><NAME>=<path>` line (NAME is the package
/// name upper-cased with `-` as `_`). Call from `build.rs`.
pub fn build(workspace_root: &Path, packages: &[&str], env_prefix: &str) -> Result<(), String> {
    for dir in ["wit", "plugins", "tests/plugins", "Cargo.lock"] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace_root.join(dir).display()
        );
    }
    ensure_target()?;
    let target_dir = workspace_root.join("target").join("plugins");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root)
        .arg("build")
        .arg("--target")
        .arg(TARGET)
        .arg("--profile")
        .arg(PROFILE)
        .arg("--target-dir")
        .arg(&target_dir);
    for p in packages {
        cmd.arg("-p").arg(p);
    }
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_MANIFEST_DIR",
        "CARGO_PKG_NAME",
        "RUSTC",
        "RUSTDOC",
    ] {
        cmd.env_remove(var);
    }
    // Cargo reads build-script stdout as directives; keep the nested
    // build's chatter on stderr.
    cmd.stdout(Stdio::inherit_stderr_compat());
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run cargo to build the plugins: {e}"))?;
    if !status.success() {
        return Err(format!(
            "building plugins {packages:?} for {TARGET} failed ({status}); run `cargo build --target {TARGET} --profile {PROFILE} -p <plugin>` to see why"
        ));
    }
    for p in packages {
        let path = component_path(&target_dir, p);
        if !path.exists() {
            return Err(format!(
                "plugin {p} built but {} is missing",
                path.display()
            ));
        }
        let name = p.to_ascii_uppercase().replace('-', "_");
        println!("cargo:rustc-env={env_prefix}{name}={}", path.display());
    }
    Ok(())
}

/// Where cargo puts a cdylib component for `package`.
pub fn component_path(target_dir: &Path, package: &str) -> PathBuf {
    target_dir
        .join(TARGET)
        .join(PROFILE)
        .join(format!("{}.wasm", package.replace('-', "_")))
}

/// Installs the wasm target through rustup when the toolchain lacks it, so
/// a fresh machine needs nothing but rustup and cargo.
fn ensure_target() -> Result<(), String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| format!("cannot run {rustc}: {e}"))?;
    let sysroot = String::from_utf8_lossy(&sysroot.stdout).trim().to_string();
    let lib = Path::new(&sysroot).join("lib/rustlib").join(TARGET);
    if lib.exists() {
        return Ok(());
    }
    let mut cmd = Command::new("rustup");
    cmd.args(["target", "add", TARGET]);
    if let Ok(toolchain) = std::env::var("RUSTUP_TOOLCHAIN") {
        cmd.args(["--toolchain", &toolchain]);
    }
    cmd.stdout(Stdio::inherit_stderr_compat());
    let status = cmd
        .status()
        .map_err(|e| format!("the {TARGET} target is missing and rustup could not be run: {e}; run `rustup target add {TARGET}`"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "the {TARGET} target is missing and `rustup target add {TARGET}` failed"
        ))
    }
}

trait InheritStderr {
    fn inherit_stderr_compat() -> Stdio;
}

impl InheritStderr for Stdio {
    fn inherit_stderr_compat() -> Stdio {
        use std::os::fd::AsFd;
        match std::io::stderr().as_fd().try_clone_to_owned() {
            Ok(fd) => Stdio::from(fd),
            Err(_) => Stdio::null(),
        }
    }
}
