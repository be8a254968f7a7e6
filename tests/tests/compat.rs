//! Contract 0.1 on the 0.2 host: a connector written against the frozen
//! `wit/v0.1` with `wit-bindgen` alone (tests/plugins/compat-v01) loads,
//! connects with its own 0.1 `exchange` (the host still passes `ward.auth`)
//! and backfills from the Okta stand-in; `inspect`'s data reports the
//! version it exports and flags its raw-credential `exchange`, which a 0.2
//! component without `exchange` is not.

use std::collections::BTreeMap;

use anyhow::{Context, Result, ensure};
use ward_daemon::connect::{self, NewConnection};
use ward_manifest::RiskKind;
use ward_runtime::types::Grant;
use ward_standins::okta::OktaConfig;
use ward_store::InstanceStatus;
use ward_tests::{COMPAT_V01_WASM, Harness, PROBE_V02_WASM};

#[tokio::test]
async fn a_v01_component_loads_connects_and_backfills_on_the_v02_host() -> Result<()> {
    let h = Harness::start(OktaConfig::default()).await;
    let plugin = h.runtime.load(COMPAT_V01_WASM)?;
    ensure!(plugin.contract_version() == "0.1.0");
    ensure!(plugin.world() == "ward:connector/plugin@0.1.0");
    ensure!(plugin.exports_exchange());
    let token = OktaConfig::default().api_token;
    let connected = connect::create(
        &h.store,
        &plugin,
        NewConnection {
            name: "compat".into(),
            config: BTreeMap::from([("domain".to_string(), "ward-demo".to_string())]),
            tags: vec![],
            grant: Grant::ApiToken(token.clone()),
            host_secrets: BTreeMap::new(),
        },
    )
    .await?;
    let report = connected
        .report
        .as_ref()
        .map_err(|e| anyhow::anyhow!("test failed: {e}"))?;
    // The 0.1 plugin read its auth kind from the reserved entry.
    ensure!(
        report
            .checks
            .iter()
            .any(|c| c.name == "ward-auth-entry" && c.ok),
        "{report:?}"
    );
    ensure!(connected.instance.status == InstanceStatus::Connected);
    let id = connected.instance.id.clone();
    let creds = h.store.credentials(&id).await?.context("credentials")?;
    ensure!(creds.secrets.get("api_token") == Some(&token));
    ensure!(creds.principal.is_some(), "principal from the test report");

    // Backfill: the stand-in's events land in SQLite through ingestion.
    let (synced, sync) = h.ingest_audit(connected.bound.clone()).await;
    let stats = sync.context("backfill")?;
    let stored = h.store.event_count(&synced).await?;
    ensure!(stored > 0, "{stats:?}");
    ensure!(stored as usize <= h.okta.event_count());
    let requests = h.okta.requests();
    ensure!(
        requests
            .iter()
            .any(|r| r.path_and_query.starts_with("/api/v1/logs?since=")
                && r.auth_scheme.as_deref() == Some("SSWS")
                && r.status == 200),
        "{requests:?}"
    );

    let risks = plugin.effective().risks;
    ensure!(
        risks
            .iter()
            .any(|r| r.kind == RiskKind::RawCredentialsInExchange),
        "{risks:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_v02_component_without_exchange_is_not_flagged_for_raw_credentials() -> Result<()> {
    let h = Harness::start(OktaConfig::default()).await;
    let plugin = h.runtime.load(PROBE_V02_WASM)?;
    ensure!(plugin.contract_version() == "0.2.0");
    ensure!(plugin.world() == "ward:connector/plugin@0.2.0");
    let risks = plugin.effective().risks;
    ensure!(
        !risks
            .iter()
            .any(|r| r.kind == RiskKind::RawCredentialsInExchange),
        "{risks:?}"
    );
    // Asking a component without `exchange` to exchange is refused before
    // anything runs.
    let unbound = plugin.bind(
        "connecting",
        &BTreeMap::from([("domain".to_string(), "ward-demo".to_string())]),
        ward_runtime::SecretSet::default(),
        None,
    )?;
    let report = unbound.exchange(&Grant::ApiToken("t".into())).await;
    let err = report.result.err().context("no exchange export")?;
    ensure!(
        err.to_string().contains("does not export `exchange`"),
        "{err}"
    );
    ensure!(report.egress.is_empty());
    Ok(())
}
