//! Vendor tools on component files: `ward plugin inspect` reads manifest,
//! contract version and imports without compiling (also on a component as
//! large as a Python one), and `ward plugin pack` embeds a validated
//! manifest as a component-level section the loader accepts, reproducibly
//! and without ever duplicating it.

use anyhow::{Context, ensure};
use std::collections::BTreeMap;

use ward::plugin_cli;
use ward_runtime::introspect::{ManifestSource, introspect};
use ward_runtime::pack::pack;
use ward_runtime::{Runtime, RuntimeConfig, RuntimeError};
use ward_tests::plugin_files::{pad, strip_manifest};
use ward_tests::{OKTA_WASM, ZENDESK_WASM};

fn okta_manifest() -> anyhow::Result<String> {
    Ok(String::from_utf8(ward_runtime::read_manifest_section(
        OKTA_WASM,
    )?)?)
}

/// How many component-level `ward-manifest` sections `bytes` has.
fn top_level_manifests(bytes: &[u8]) -> anyhow::Result<usize> {
    let mut count = 0;
    let mut depth = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        match payload? {
            wasmparser::Payload::Version { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth -= 1,
            wasmparser::Payload::CustomSection(r)
                if depth == 1 && r.name() == ward_manifest::SECTION =>
            {
                count += 1
            }
            _ => {}
        }
    }
    Ok(count)
}

#[test]
fn inspect_reports_contract_version_and_empty_imports_without_compiling() -> anyhow::Result<()> {
    let inspection = plugin_cli::inspect("okta.wasm", OKTA_WASM, &[], &BTreeMap::new())?;
    assert_eq!(inspection.contract_version.as_deref(), Some("0.2.0"));
    assert_eq!(inspection.key, "okta");
    // The Rust std links the environment and stdin; Ward links them empty
    // and says so.
    for prefix in ["wasi:cli/environment@", "wasi:cli/stdin@"] {
        ensure!(
            inspection
                .empty_imports
                .iter()
                .any(|i| i.starts_with(prefix)),
            "{prefix} missing from {:?}",
            inspection.empty_imports
        );
    }
    ensure!(
        inspection
            .empty_imports
            .iter()
            .all(|i| inspection.imports.contains(i))
    );
    ensure!(
        !inspection
            .empty_imports
            .iter()
            .any(|i| i.starts_with("wasi:http/"))
    );
    let json = serde_json::to_value(&inspection)?;
    assert_eq!(json["contract_version"], "0.2.0");
    assert_eq!(json["schema"], "ward.plugin.inspect/v1");
    let text = plugin_cli::render_inspection(&inspection);
    ensure!(
        text.contains("contract   ward:connector/connector@0.2.0"),
        "{text}"
    );
    ensure!(
        text.contains("(linked, but Ward provides nothing behind them)"),
        "{text}"
    );

    // A 16 MiB component (the size of a componentize-py one) parses the
    // same way: nothing is compiled, so its size only costs one read.
    let big = pad(OKTA_WASM, "padding", 16 << 20);
    let info = introspect(&big)?;
    assert_eq!(info.contract_version.as_deref(), Some("0.2.0"));
    assert_eq!(info.manifest_source, Some(ManifestSource::CoreModule));
    let inspection = plugin_cli::inspect("big.wasm", &big, &[], &BTreeMap::new())?;
    assert_eq!(inspection.size_bytes, big.len() as u64);
    assert_eq!(inspection.key, "okta");
    Ok(())
}

#[test]
fn inspect_refuses_what_the_loader_refuses_without_compiling() -> anyhow::Result<()> {
    let err = plugin_cli::inspect(
        "bare.wasm",
        &strip_manifest(OKTA_WASM),
        &[],
        &BTreeMap::new(),
    )
    .err()
    .context("a component without manifest was inspected")?;
    ensure!(
        err.to_string()
            .contains("ward plugin pack --manifest ward.toml"),
        "{err}"
    );
    let err = plugin_cli::inspect("core.wasm", b"\0asm\x01\0\0\0", &[], &BTreeMap::new())
        .err()
        .context("a core module was inspected")?;
    ensure!(err.to_string().contains("not a component"), "{err}");
    Ok(())
}

#[tokio::test]
async fn packed_component_loads_and_packing_is_reproducible() -> anyhow::Result<()> {
    let manifest = okta_manifest()?;
    let bare = strip_manifest(OKTA_WASM);
    let runtime = Runtime::new(RuntimeConfig::default())?;
    ensure!(matches!(runtime.load(&bare), Err(RuntimeError::NoManifest)));

    let packed = pack(&bare, &manifest)?;
    assert_eq!(pack(&bare, &manifest)?, packed, "same inputs, same bytes");
    let info = introspect(&packed)?;
    assert_eq!(info.manifest_source, Some(ManifestSource::Component));
    assert_eq!(info.manifest.as_deref(), Some(manifest.as_bytes()));
    assert_eq!(top_level_manifests(&packed)?, 1);
    let plugin = runtime.load(&packed)?;
    assert_eq!(plugin.manifest().key, "okta");
    assert_eq!(plugin.digest(), info.digest);

    // Re-packing replaces the section: once with the same manifest gives the
    // same bytes, once with another version gives one section holding it.
    assert_eq!(pack(&packed, &manifest)?, packed);
    let bumped = manifest.replacen("version = \"", "version = \"7", 1);
    let repacked = pack(&packed, &bumped)?;
    assert_eq!(top_level_manifests(&repacked)?, 1);
    assert_eq!(
        runtime.load(&repacked)?.manifest().version.chars().next(),
        Some('7')
    );

    // The Rust SDK's own section stays authoritative: packing the same
    // manifest onto it is fine, a different one is refused.
    let over_sdk = pack(OKTA_WASM, &manifest)?;
    assert_eq!(
        introspect(&over_sdk)?.manifest_source,
        Some(ManifestSource::Component)
    );
    let err = pack(OKTA_WASM, &bumped)
        .err()
        .context("two manifests packed")?;
    ensure!(
        err.to_string()
            .contains("two different ward-manifest sections"),
        "{err}"
    );
    Ok(())
}

#[test]
fn pack_validates_the_manifest_like_the_loader() -> anyhow::Result<()> {
    let bare = strip_manifest(ZENDESK_WASM);
    let err = pack(&bare, "key = \"x\"\n")
        .err()
        .context("incomplete manifest packed")?;
    ensure!(matches!(err, RuntimeError::Manifest(_)), "{err}");
    let with_exfil = format!(
        "{}\n[[http]]\nurl = \"https://{{host}}/\"\nmethods = [\"GET\"]\n",
        String::from_utf8(ward_runtime::read_manifest_section(ZENDESK_WASM)?)?
    );
    let err = pack(&bare, &with_exfil)
        .err()
        .context("a grant with a bare host placeholder was packed")?;
    ensure!(matches!(err, RuntimeError::Manifest(_)), "{err}");
    let err = pack(b"\0asm\x01\0\0\0", "")
        .err()
        .context("a core module was packed")?;
    ensure!(
        err.to_string().contains("not a WebAssembly component"),
        "{err}"
    );
    Ok(())
}
