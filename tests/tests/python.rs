//! A connector written in Python with `sdk/python` (ward_sdk), from source
//! to a signed plugin in a non-dev daemon: `examples/python-okta-lite` is
//! built with componentize-py, packed with its `ward.toml`, signed, loaded
//! from a plugin directory with only the vendor's key trusted, connected to
//! the Okta stand-in, backfilled, and passes the conformance harness on its
//! fixtures folder.
//!
//! Needs componentize-py: run with `cargo xtask test` (the tests fail,
//! saying so, when `WARD_COMPONENTIZE_PY` is not set).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use anyhow::{Context, ensure};
use ward::plugin_cli;
use ward_daemon::connect::connect;
use ward_runtime::types::Grant;
use ward_standins::okta::OktaConfig;
use ward_tests::daemon::DaemonHarness;
use ward_tests::{plugin_files, python};
use ward_trust::SignatureStatus;

fn example() -> PathBuf {
    python::repo_root().join("examples/python-okta-lite")
}

/// `examples/python-okta-lite` built once per test binary and packed with
/// its manifest (the tests share it; a build takes tens of seconds).
fn packed() -> anyhow::Result<&'static [u8]> {
    static BUILT: OnceLock<Result<Vec<u8>, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let build = || -> anyhow::Result<Vec<u8>> {
            let work = tempfile::tempdir()?;
            let bare = python::build(&example(), "app", work.path())?;
            let manifest = std::fs::read_to_string(example().join("ward.toml"))?;
            Ok(ward_runtime::pack::pack(&bare, &manifest)?)
        };
        build().map_err(|e| format!("{e:#}"))
    });
    match built {
        Ok(bytes) => Ok(bytes),
        Err(e) => anyhow::bail!("{e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_connector_passes_the_conformance_harness() -> anyhow::Result<()> {
    let packed = packed()?;
    let report = ward_harness::run(packed, &example().join("fixtures")).await?;
    ensure!(report.passed(), "{}", report.render());
    assert_eq!(report.plugin, "okta-lite");
    let mapped = report
        .checks
        .iter()
        .filter(|c| c.name == "error-mapping")
        .count();
    assert_eq!(mapped, 4, "{}", report.render());

    // Inspect reads it without compiling: contract 0.2.0, world `plugin`
    // (no exchange), the interpreter's WASI imports listed as empty.
    let inspection = plugin_cli::inspect("okta-lite.wasm", packed, &[], &BTreeMap::new())?;
    assert_eq!(inspection.contract_version.as_deref(), Some("0.2.0"));
    assert_eq!(inspection.key, "okta-lite");
    ensure!(
        inspection
            .empty_imports
            .iter()
            .any(|i| i.starts_with("wasi:filesystem/")),
        "{:?}",
        inspection.empty_imports
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_python_connector_backfills_in_a_non_dev_daemon() -> anyhow::Result<()> {
    let packed = packed()?;
    let plugins = tempfile::tempdir()?;
    let vendor = ward_trust::generate()?;
    let file = plugin_files::write(plugins.path(), "okta-lite.wasm", packed);
    plugin_files::sign(&vendor.secret_file, &file);
    let okta = OktaConfig {
        events: 45,
        users: 4,
        backfill_span_days: 3,
        ..OktaConfig::default()
    };
    let token = okta.api_token.clone();
    let dirs = vec![plugins.path().to_path_buf()];
    let trusted = vec![vendor.public_base64.clone()];
    let h = DaemonHarness::start(okta, |c| {
        c.plugins.dirs = dirs;
        c.plugins.trusted_keys = trusted;
    })
    .await;
    ensure!(!h.daemon.registry.dev_mode());
    let loaded = h
        .daemon
        .registry
        .get("okta-lite")
        .context("the signed Python plugin was not loaded")?;
    assert_eq!(
        loaded.signature,
        SignatureStatus::Trusted {
            key_id: vendor.id.clone()
        }
    );
    assert_eq!(loaded.plugin.contract_version(), "0.2.0");

    let (instance, _, report) = connect(
        &h.daemon.store,
        &loaded.plugin,
        "Okta (Python)",
        BTreeMap::from([("domain".to_string(), "ward-demo".to_string())]),
        Grant::ApiToken(token),
    )
    .await?;
    ensure!(report.checks.iter().all(|c| c.ok), "{:?}", report.checks);
    assert_eq!(report.checks.len(), 2);
    h.daemon.scheduler.start(&instance.id);
    h.wait_caught_up(&instance.id, 45).await;

    // Every event of the stand-in, once; every user.
    let stored = h.daemon.store.event_count(&instance.id).await?;
    assert_eq!(stored, h.okta.event_count() as u64);
    let users = h.daemon.store.users(&instance.id, 0, None).await?;
    assert_eq!(users.len(), h.okta.user_ids().len());
    // What the stand-in received: the real host name and the substituted
    // token (it answers 401 to anything else), nothing without it.
    let seen = h.okta.requests();
    ensure!(!seen.is_empty());
    for r in &seen {
        assert_eq!(r.auth_scheme.as_deref(), Some("SSWS"), "{r:?}");
        assert_eq!(r.status, 200, "{r:?}");
    }
    // And the egress log: every request allowed under the manifest's grant.
    let egress = h.daemon.store.egress(&instance.id, 0).await?;
    ensure!(!egress.is_empty());
    for e in &egress {
        ensure!(e.allowed, "{e:?}");
        ensure!(
            e.url.starts_with("https://ward-demo.okta.com/api/v1/"),
            "{e:?}"
        );
    }
    Ok(())
}
