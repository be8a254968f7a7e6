//! Host-side buffering is bounded by the plugin's memory cap: a hostile
//! plugin holding many large responses unread cannot make the daemon hold
//! `requests_per_call × response_bytes`. Its own test binary, so the
//! process's memory figures are this test's alone.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use anyhow::{Context, Result, bail};
use ward_runtime::{CallError, Refusal, SecretSet};
use ward_tests::plugin_files::rewrite_manifest;
use ward_tests::{HOSTILE_WASM, Harness};

const MIB: u64 = 1 << 20;

/// A field of `/proc/self/status` in bytes (`VmRSS`, `VmHWM`).
fn status_bytes(field: &str) -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .with_context(|| format!("{field} missing from /proc/self/status"))?;
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .with_context(|| format!("no value in {line:?}"))?
        .parse()?;
    Ok(kib * 1024)
}

#[tokio::test]
async fn forty_unread_16_mib_responses_stay_within_the_plugin_memory_cap() -> Result<()> {
    let h = Harness::start(Default::default()).await;
    // The hostile plugin with a 64 MiB cap, 40 requests per call and
    // responses of up to 16 MiB: 640 MiB if the host buffered them all.
    let wasm = rewrite_manifest(HOSTILE_WASM, &|text| {
        text.replace("memory_mib = 32", "memory_mib = 64")
            .replace("requests_per_call = 5", "requests_per_call = 40")
            .replace("response_bytes = 1048576", "response_bytes = 16777216")
            .replace("wall_ms = 5000", "wall_ms = 60000")
    });
    let plugin = h.runtime.load(&wasm)?;
    let bind = |attack: &str| {
        let config = BTreeMap::from([
            ("domain".to_string(), "ward-demo".to_string()),
            ("attack".to_string(), attack.to_string()),
        ]);
        let secrets = SecretSet::new(BTreeMap::from([(
            "api_token".to_string(),
            "hoard-secret".to_string(),
        )]));
        plugin.bind("hoard-instance", &config, secrets, None)
    };
    // Warm up (instance pool, TLS session, stand-in) before measuring.
    bind("benign")?.fetch_audit(0, None).await.result?;
    // Reset the peak (VmHWM) to the current RSS, then measure the call.
    std::fs::write("/proc/self/clear_refs", "5").context("resetting VmHWM")?;
    let before = status_bytes("VmRSS")?;
    let (instance, result) = h.ingest_audit(bind("hoard-responses")?).await;
    let peak = status_bytes("VmHWM")?;

    let growth = peak.saturating_sub(before);
    eprintln!(
        "VmRSS before {} MiB, VmHWM after {} MiB: growth {} MiB",
        before / MIB,
        peak / MIB,
        growth / MIB
    );
    assert!(
        growth < 2 * 64 * MIB,
        "the daemon grew by {} MiB for a 64 MiB plugin",
        growth / MIB
    );
    // The call fails with a clear error, and nothing of it is stored.
    let Err(error) = result else {
        bail!("hoarding 40 responses succeeded");
    };
    let error = format!("{error:#}");
    assert!(
        error.contains("response 4 of 40 refused") && error.contains("memory cap (64 MiB;"),
        "{error}"
    );
    let events = h.store.events(&instance, &Default::default()).await?;
    assert!(events.is_empty(), "{events:?}");
    // Four responses fitted; the fifth was cut off with its egress row;
    // nothing more was sent.
    let stored = h.store.egress(&instance, 50).await?;
    assert_eq!(stored.len(), 5, "{stored:?}");
    let cut: Vec<_> = stored
        .iter()
        .filter(|e| e.reason.as_deref().unwrap_or("").contains("memory cap"))
        .collect();
    assert_eq!(cut.len(), 1, "{stored:?}");
    assert!(cut[0].bytes_received < 16 * MIB, "{cut:?}");
    assert_eq!(h.collector_hits.load(Ordering::SeqCst), 5);

    // The same in the call's own report: the refusal is typed.
    let report = bind("hoard-responses")?.fetch_audit(0, None).await;
    assert!(
        matches!(report.result, Err(CallError::Plugin(_))),
        "{:?}",
        report.result
    );
    let refusals: Vec<_> = report.egress.iter().map(|e| e.refusal).collect();
    assert_eq!(
        refusals,
        vec![None, None, None, None, Some(Refusal::ResponseBufferFull)]
    );
    Ok(())
}
