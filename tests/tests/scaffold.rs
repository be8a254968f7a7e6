//! `ward plugin new`: the generated Rust and Python projects build as
//! generated (Rust for wasm32-wasip2 into `target/scaffold`, Python with
//! componentize-py), are packed with their manifest, signed, verified, and
//! pass the conformance harness on the fixtures they ship.
//!
//! The Python half needs componentize-py: run with `cargo xtask test`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail, ensure};
use ward::scaffold::{Lang, NewProject, default_rust_sdk, generate};
use ward_tests::python;
use ward_trust::{SignatureStatus, TrustStore};

fn new_project(parent: &Path, name: &str, lang: Lang) -> anyhow::Result<PathBuf> {
    let dir = parent.join(name);
    let files = generate(&NewProject {
        name: name.into(),
        lang,
        dir: dir.clone(),
        rust_sdk: default_rust_sdk(),
    })?;
    for expected in ["ward.toml", "README.md", "fixtures/harness.toml"] {
        ensure!(
            files.contains(&dir.join(expected)),
            "{expected} not generated"
        );
    }
    Ok(dir)
}

/// Packs `bare` with the project's manifest, signs it with a new vendor
/// key, checks the signature the way the daemon does, and runs the
/// harness on the project's fixtures.
async fn pack_sign_test(dir: &Path, bare: &[u8], key: &str) -> anyhow::Result<()> {
    let manifest = std::fs::read_to_string(dir.join("ward.toml"))?;
    let packed = ward_runtime::pack::pack(bare, &manifest)?;
    let vendor = ward_trust::generate()?;
    let signature = ward_trust::sign(&vendor.secret_file, &packed, &format!("{key}.wasm"))?;
    let status = TrustStore::new(std::slice::from_ref(&vendor.public_base64))?
        .verify(&packed, Some(&signature));
    ensure!(
        matches!(status, SignatureStatus::Trusted { .. }),
        "{status}"
    );
    let report = ward_harness::run(&packed, &dir.join("fixtures")).await?;
    ensure!(report.passed(), "{}", report.render());
    assert_eq!(report.plugin, key);
    ensure!(
        report
            .checks
            .iter()
            .any(|c| c.name == "error-mapping" && c.scenario == "audit-unauthorized"),
        "{}",
        report.render()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_rust_project_builds_and_passes_the_harness() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = new_project(tmp.path(), "acme", Lang::Rust)?;
    // One target folder for every run (dependencies build once).
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| python::repo_root().join("target"))
        .join("scaffold");
    let output = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(&dir)
        .args(["build", "--target", "wasm32-wasip2", "--release"])
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .context("running cargo build for the generated project")?;
    if !output.status.success() {
        bail!(
            "the generated Rust project does not build: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let wasm = std::fs::read(target.join("wasm32-wasip2/release/acme.wasm"))?;
    pack_sign_test(&dir, &wasm, "acme").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_python_project_builds_and_passes_the_harness() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = new_project(tmp.path(), "acme-py", Lang::Python)?;
    let bare = python::componentize(
        &dir,
        &dir.join("wit"),
        "app",
        &["."],
        &tmp.path().join("acme-py.wasm"),
    )?;
    pack_sign_test(&dir, &bare, "acme-py").await
}

#[test]
fn new_refuses_bad_names_and_existing_folders() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let project = |name: &str| NewProject {
        name: name.into(),
        lang: Lang::Rust,
        dir: tmp.path().join(name),
        rust_sdk: default_rust_sdk(),
    };
    for bad in ["Acme", "acme corp", "9acme", "../acme", ""] {
        let err = generate(&project(bad))
            .err()
            .with_context(|| format!("{bad:?} accepted"))?;
        ensure!(err.to_string().contains("not a valid key"), "{err}");
    }
    generate(&project("acme"))?;
    let err = generate(&project("acme"))
        .err()
        .context("an existing folder was overwritten")?;
    ensure!(err.to_string().contains("already exists"), "{err}");
    Ok(())
}
