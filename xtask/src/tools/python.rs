//! A Python 3 virtual environment with pinned packages, shared by the
//! tools that need one (componentize-py for the tests, the Airbyte baseline
//! for the benchmarks).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

/// Creates (or reuses) the venv at `dir` with `requirements` installed and
/// returns the venv directory. A marker file records what was installed, so
/// a changed pin reinstalls.
pub fn venv(dir: &Path, requirements: &[&str]) -> anyhow::Result<PathBuf> {
    let marker = dir.join(".ward-installed");
    let wanted = requirements.join("\n");
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == wanted) {
        return Ok(dir.to_path_buf());
    }
    ensure_python()?;
    run(
        Command::new("python3").args(["-m", "venv"]).arg(dir),
        &format!("python3 -m venv {}", dir.display()),
    )?;
    run(
        Command::new(dir.join("bin").join("python"))
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(requirements),
        &format!("pip install {}", requirements.join(" ")),
    )?;
    std::fs::write(&marker, wanted).with_context(|| format!("writing {}", marker.display()))?;
    Ok(dir.to_path_buf())
}

/// Makes sure `python3 -m venv` works: installs `python3` and
/// `python3-venv` with apt when they are missing and we run as root,
/// otherwise says what to install.
fn ensure_python() -> anyhow::Result<()> {
    let works = || {
        Command::new("python3")
            .args(["-c", "import venv, ensurepip"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if works() {
        return Ok(());
    }
    if !is_root() {
        bail!(
            "Python 3 with the venv module is missing: install `python3` and `python3-venv` \
             (e.g. `sudo apt-get install -y python3 python3-venv`) and run `cargo xtask test` again"
        );
    }
    eprintln!("xtask: installing python3 and python3-venv with apt-get");
    run(Command::new("apt-get").arg("update"), "apt-get update")?;
    run(
        Command::new("apt-get").args(["install", "-y", "python3", "python3-venv"]),
        "apt-get install -y python3 python3-venv",
    )?;
    if !works() {
        bail!("python3 -m venv still fails after installing python3-venv");
    }
    Ok(())
}

/// Whether we run as root (and so may install Debian packages).
pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Runs `command`, logging `what`; fails when it fails.
pub(crate) fn run(command: &mut Command, what: &str) -> anyhow::Result<()> {
    eprintln!("xtask: {what}");
    let status = command
        .status()
        .with_context(|| format!("running `{what}`"))?;
    if !status.success() {
        bail!("`{what}` failed ({status})");
    }
    Ok(())
}
