//! Python connectors for tests: built from source with the componentize-py
//! that `cargo xtask test` installs (`WARD_COMPONENTIZE_PY`), against
//! `wit/v0.2` (world `plugin`) with `sdk/python` on the path.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// The environment variable `cargo xtask test` sets to componentize-py's path.
pub const COMPONENTIZE_PY_ENV: &str = "WARD_COMPONENTIZE_PY";

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// componentize-py's path; an error naming `cargo xtask test` when the
/// suite was started without it (never a silent skip).
pub fn componentize_py() -> anyhow::Result<PathBuf> {
    match std::env::var_os(COMPONENTIZE_PY_ENV) {
        Some(path) if !path.is_empty() => Ok(PathBuf::from(path)),
        _ => bail!(
            "{COMPONENTIZE_PY_ENV} is not set: this test builds a Python connector with \
             componentize-py; run the suite with `cargo xtask test` (it installs the pinned \
             componentize-py under target/tools/ and sets the variable)"
        ),
    }
}

/// Builds the Python app module `app` found in `app_dir` into a component
/// (not packed: it has no manifest yet) and returns its bytes. The sources
/// are copied into a fresh folder under `work` first, so the build never
/// writes `__pycache__` into the repository and always starts from the
/// same state.
pub fn build(app_dir: &Path, app: &str, work: &Path) -> anyhow::Result<Vec<u8>> {
    let root = repo_root();
    let src = work.join("src");
    copy_python(app_dir, &src.join("app"))?;
    copy_python(&root.join("sdk/python"), &src.join("sdk"))?;
    componentize(
        &src,
        &root.join("wit/v0.2"),
        app,
        &["app", "sdk"],
        &work.join(format!("{app}.wasm")),
    )
}

/// Runs componentize-py in `dir` for the app module `app` against the
/// contract folder `wit` (world `plugin`), with `paths` (relative to `dir`)
/// on the Python path; returns the component's bytes (written to `out`).
pub fn componentize(
    dir: &Path,
    wit: &Path,
    app: &str,
    paths: &[&str],
    out: &Path,
) -> anyhow::Result<Vec<u8>> {
    let componentize_py = componentize_py()?;
    let mut command = Command::new(&componentize_py);
    command
        .current_dir(dir)
        .arg("-d")
        .arg(wit)
        .args(["-w", "plugin", "componentize", app]);
    for path in paths {
        command.args(["-p", path]);
    }
    let output = command
        .arg("-o")
        .arg(out)
        .env_remove("VIRTUAL_ENV")
        .output()
        .with_context(|| format!("running {}", componentize_py.display()))?;
    if !output.status.success() {
        bail!(
            "componentize-py failed to build {} in {} ({}): {}{}",
            app,
            dir.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    std::fs::read(out).with_context(|| format!("reading {}", out.display()))
}

/// Copies the `*.py` files of `from` (recursively) to `to`.
fn copy_python(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() {
            if name != "__pycache__" && name != "fixtures" {
                copy_python(&path, &to.join(&name))?;
            }
        } else if path.extension().is_some_and(|e| e == "py") {
            std::fs::copy(&path, to.join(&name))?;
        }
    }
    Ok(())
}
