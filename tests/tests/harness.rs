//! The conformance harness (`ward plugin test`) and the recorder (`ward
//! plugin record`) on real components: the three bundled connectors pass
//! their fixture folders, a hostile plugin fails with what it did and what
//! the contract expects, and a recording made against the Okta stand-in
//! holds no secret and replays green.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, ensure};
use ward_harness::record::{Recording, Upstream, record};
use ward_harness::{Check, Report};
use ward_standins::okta::{OktaConfig, OktaStandIn};
use ward_standins::tls::TestCa;
use ward_tests::{EGNYTE_WASM, HOSTILE_WASM, OKTA_WASM, ZENDESK_WASM, harness_fixtures};

const CONTRACT_CHECKS: &[&str] = &[
    "test-checks",
    "backfill-terminates",
    "backfill-respects-since",
    "event-ids",
    "cursor-round-trip",
    "users-listing",
    "raw-json",
    "times-sane",
    "grants-only",
    "recorded-exchanges",
    "deterministic",
];

fn failed<'a>(report: &'a Report, name: &str) -> Vec<&'a Check> {
    report.failures().filter(|c| c.name == name).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundled_connectors_pass_their_fixtures() -> anyhow::Result<()> {
    for (connector, wasm) in [
        ("okta", OKTA_WASM),
        ("zendesk", ZENDESK_WASM),
        ("egnyte", EGNYTE_WASM),
    ] {
        let report = ward_harness::run(wasm, &harness_fixtures(connector)).await?;
        ensure!(report.passed(), "{}", report.render());
        assert_eq!(report.plugin, connector);
        for name in CONTRACT_CHECKS {
            ensure!(
                report.checks.iter().any(|c| c.name == *name),
                "{connector}: check {name} never ran"
            );
        }
        let mapped: Vec<&str> = report
            .checks
            .iter()
            .filter(|c| c.name == "error-mapping")
            .map(|c| c.scenario.as_str())
            .collect();
        assert_eq!(mapped.len(), 4, "{connector}: {mapped:?}");
    }
    Ok(())
}

/// A fixture folder for the hostile plugin: `attack` chooses what it does;
/// one recorded audit page and one recorded 401.
fn hostile_fixtures(dir: &Path, attack: &str) -> anyhow::Result<()> {
    std::fs::write(
        dir.join("harness.toml"),
        format!(
            "since = \"2025-01-01T00:00:00Z\"\n[config]\ndomain = \"acme\"\nattack = \"{attack}\"\n\
             [secrets]\napi_token = \"00acmeHostileToken\"\n\
             [[scenario]]\nname = \"page\"\nexpect = \"ok\"\n\
             [[scenario]]\nname = \"refused\"\nexpect = \"unauthorized\"\n"
        ),
    )?;
    for (scenario, status, body) in [
        ("page", "200 OK", "[]"),
        (
            "refused",
            "401 Unauthorized",
            "{\"errorCode\":\"E0000011\"}",
        ),
    ] {
        let folder = dir.join(scenario);
        std::fs::create_dir_all(&folder)?;
        std::fs::write(folder.join("01-logs.request"), "GET /api/v1/logs\n")?;
        std::fs::write(
            folder.join("01-logs.response"),
            format!("HTTP/1.1 {status}\ncontent-type: application/json\n\n{body}"),
        )?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_plugin_fails_with_what_it_did_and_what_the_contract_expects() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    hostile_fixtures(dir.path(), "outside")?;
    let report = ward_harness::run(HOSTILE_WASM, dir.path()).await?;
    ensure!(!report.passed());

    let test = failed(&report, "test-checks");
    ensure!(
        test.iter().any(|c| c.scenario == "page"
            && c.message.contains("test returned no checks")
            && c.message.contains("expects at least one named check")),
        "{test:?}"
    );
    // The broker refused the request outside the grants; the harness says
    // which one and why, and the backfill is reported as not finishing.
    let grants = failed(&report, "grants-only");
    ensure!(
        grants.iter().any(|c| c
            .message
            .contains("the broker refused GET https://evil.example/steal")
            && c.message
                .contains("only call URLs under its manifest's [[http]] grants")),
        "{grants:?}"
    );
    let backfill = failed(&report, "backfill-terminates");
    ensure!(
        backfill
            .iter()
            .any(|c| c.message.contains("fetch-audit page 1 failed")),
        "{backfill:?}"
    );
    // A 401 recording must map to `unauthorized`; this plugin reports the
    // broker's refusal instead.
    let mapping = failed(&report, "error-mapping");
    ensure!(
        mapping.iter().any(|c| c.scenario == "refused"
            && c.message
                .contains("the contract expects the `unauthorized` error case")),
        "{mapping:?}"
    );

    // JUnit: one testcase per check, the failures carried.
    let xml = ward_harness::junit::write(&report);
    let failures = report.failures().count();
    ensure!(xml.contains(&format!("failures=\"{failures}\"")), "{xml}");
    ensure!(
        xml.contains("<testcase classname=\"page\" name=\"grants-only\">"),
        "{xml}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn benign_page_on_a_refusal_is_a_mapping_failure() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    hostile_fixtures(dir.path(), "benign")?;
    let report = ward_harness::run(HOSTILE_WASM, dir.path()).await?;
    let mapping = failed(&report, "error-mapping");
    ensure!(
        mapping
            .iter()
            .any(|c| c.message.contains("returned a page of 1 events")
                && c.message.contains("(the plugin made no request)")),
        "{}",
        report.render()
    );
    // Its backfill itself is fine: one page, unique ids, JSON raw, resumable.
    for name in [
        "backfill-terminates",
        "event-ids",
        "raw-json",
        "cursor-round-trip",
        "grants-only",
    ] {
        ensure!(
            failed(&report, name).is_empty(),
            "{name}: {}",
            report.render()
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_against_the_okta_stand_in_has_no_secret_and_replays_green() -> anyhow::Result<()>
{
    let ca = TestCa::generate()?;
    let token = "00acmeRecordedSswsToken-9f3k";
    let okta = OktaStandIn::start(
        OktaConfig {
            org: "acme".into(),
            api_token: token.into(),
            events: 30,
            users: 5,
            backfill_span_days: 3,
            ..OktaConfig::default()
        },
        &ca,
    )
    .await?;
    let out = tempfile::tempdir()?;
    let since = (time::OffsetDateTime::now_utc() - time::Duration::days(7))
        .format(&time::format_description::well_known::Rfc3339)?;
    let recorded = record(
        OKTA_WASM,
        &Recording {
            config: BTreeMap::from([("domain".into(), "acme".into())]),
            secrets: BTreeMap::from([("api_token".into(), token.into())]),
            since,
            out: out.path().to_path_buf(),
            scenario: "recorded".into(),
        },
        &Upstream {
            resolve: BTreeMap::from([(okta.host(), okta.addr())]),
            extra_roots_pem: vec![ca.ca_pem().to_string()],
        },
    )
    .await?;
    // What the stand-in received came through the broker, token substituted.
    let seen = okta.requests();
    ensure!(seen.len() >= 4, "{seen:?}");
    ensure!(
        seen.iter()
            .all(|r| r.auth_scheme.as_deref() == Some("SSWS")),
        "{seen:?}"
    );
    assert_eq!(recorded.exchanges, seen.len());

    // No file holds the token; harness.toml binds a placeholder.
    for entry in walk(out.path())? {
        let text = String::from_utf8_lossy(&std::fs::read(&entry)?).into_owned();
        ensure!(!text.contains(token), "{} holds the token", entry.display());
    }
    let spec = std::fs::read_to_string(out.path().join("harness.toml"))?;
    ensure!(
        spec.contains("api_token = \"recorded-api_token-placeholder\""),
        "{spec}"
    );

    okta.shutdown().await;
    let report = ward_harness::run(OKTA_WASM, out.path()).await?;
    ensure!(report.passed(), "{}", report.render());
    Ok(())
}

fn walk(dir: &Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| dir.display().to_string())? {
        let path = entry?.path();
        if path.is_dir() {
            files.extend(walk(&path)?);
        } else {
            files.push(path);
        }
    }
    Ok(files)
}
