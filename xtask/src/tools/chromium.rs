//! Chromium and chromedriver for the console's browser tests
//! (`tests/tests/browser.rs`): the Debian packages `chromium` and
//! `chromium-driver`, installed with apt-get when missing and we run as
//! root; no tool downloads a browser of its own. Nothing is started here:
//! the test harness spawns chromedriver itself.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::bail;

use super::python::{is_root, run};
use super::{Context, Export};

const PACKAGES: [&str; 2] = ["chromium", "chromium-driver"];

fn find(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

fn browser() -> Option<PathBuf> {
    find(&["chromium", "chromium-browser"])
}

fn driver() -> Option<PathBuf> {
    find(&["chromedriver"])
}

fn works(path: &Path) -> bool {
    Command::new(path)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Exports `WARD_CHROMIUM` and `WARD_CHROMEDRIVER`, installing the Debian
/// packages first when either is missing.
pub fn setup(_ctx: &Context) -> anyhow::Result<Vec<Export>> {
    if browser().is_none() || driver().is_none() {
        if !is_root() {
            bail!(
                "Chromium and chromedriver are missing: install the Debian packages `chromium` \
                 and `chromium-driver` (`sudo apt-get install -y chromium chromium-driver`), or \
                 set WARD_CHROMIUM and WARD_CHROMEDRIVER to a matching pair, and run \
                 `cargo xtask test` again"
            );
        }
        if Command::new("apt-get").arg("--version").output().is_err() {
            bail!(
                "Chromium and chromedriver are missing and apt-get is not available: install \
                 Chromium and the chromedriver of the same version with this system's package \
                 manager and run `cargo xtask test` again"
            );
        }
        eprintln!("xtask: installing {} with apt-get", PACKAGES.join(" "));
        run(Command::new("apt-get").arg("update"), "apt-get update")?;
        run(
            Command::new("apt-get")
                .args(["install", "-y", "--no-install-recommends"])
                .args(PACKAGES),
            &format!("apt-get install -y {}", PACKAGES.join(" ")),
        )?;
    }
    let (Some(chromium), Some(chromedriver)) = (browser(), driver()) else {
        bail!("chromium or chromedriver is still missing after installing {PACKAGES:?}");
    };
    for p in [&chromium, &chromedriver] {
        if !works(p) {
            bail!("`{} --version` fails: reinstall {PACKAGES:?}", p.display());
        }
    }
    Ok(vec![
        Export {
            name: "WARD_CHROMIUM",
            value: chromium.into(),
        },
        Export {
            name: "WARD_CHROMEDRIVER",
            value: chromedriver.into(),
        },
    ])
}
