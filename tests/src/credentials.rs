//! Asserting that a credential value went nowhere it must not: not into the
//! guest's output (test report, pages, logs, stdio), not in plain into the
//! SQLite files (database and write-ahead log, which hold the egress rows,
//! events, cursors and instances). Shared by the contract tests and the
//! bundled connectors' credential tests.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context, Result, ensure};
use ward_standins::tls::TestCa;
use ward_store::Store;

/// Every byte SQLite holds in `dir`: `ward.db` and its write-ahead log.
pub fn stored_bytes(dir: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for name in ["ward.db", "ward.db-wal"] {
        if let Ok(b) = std::fs::read(dir.join(name)) {
            bytes.extend(b);
        }
    }
    bytes
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Fails unless none of `values` occurs in `guest_text` (what the guest
/// produced) or in `stored` (see [`stored_bytes`]).
pub fn assert_absent(stored: &[u8], guest_text: &str, values: &[&str]) -> Result<()> {
    for v in values {
        ensure!(!v.is_empty(), "empty value to look for");
        ensure!(
            !guest_text.contains(v),
            "a credential reached the guest's output: {guest_text}"
        );
        ensure!(!contains(stored, v), "a credential was stored in plain");
    }
    Ok(())
}

/// Creates an instance row for `bound` and runs one audit sync from
/// `since` through the daemon's ingestion into `store` (events, cursor and
/// egress rows land in SQLite as in production), one attempt. Returns the
/// instance id and the sync's outcome.
pub async fn ingest_audit(
    store: &Store,
    bound: ward_runtime::Bound,
    since: i64,
) -> (
    String,
    Result<ward_daemon::ingest::SyncStats, ward_daemon::ingest::IngestError>,
) {
    let instance = store
        .create_instance(&ward_store::NewInstance {
            plugin_key: bound.plugin().manifest().key.clone(),
            plugin_version: bound.plugin().manifest().version.clone(),
            name: "ingest".into(),
            config: BTreeMap::new(),
            tags: vec![],
        })
        .await
        .expect("instance row");
    let ingestor = ward_daemon::ingest::Ingestor {
        store: store.clone(),
        bound,
        instance_id: instance.id.clone(),
        fence: None,
        // One attempt: a failure is asserted on, not retried.
        retry: ward_daemon::ingest::Retry {
            attempts: 1,
            ..Default::default()
        },
    };
    let result = ingestor.sync_audit(since, |_| {}).await;
    (instance.id, result)
}

/// What the guest returned and logged for a new connection: its test
/// report, one audit page from `since` (result, logs, stdio), then one
/// audit sync from `since` into `store`.
pub async fn guest_output(
    store: &Store,
    connected: &ward_daemon::connect::Connected,
    since: i64,
) -> Result<String> {
    let report = connected
        .report
        .as_ref()
        .map_err(|e| anyhow::anyhow!("test failed: {e}"))?;
    let mut text = format!("{report:?}");
    let page = connected.bound.fetch_audit(since, None).await;
    text.push_str(&format!("{:?} {:?} {}", page.result, page.logs, page.stdio));
    let (_, sync) = ingest_audit(store, connected.bound.clone(), since).await;
    sync.context("audit sync")?;
    Ok(text)
}

/// Follows an authorization URL at a stand-in (`host` at `addr`, trusting
/// `ca`) like the operator's browser, stopping at the redirect back, and
/// returns the callback's query parameters (`code`, `state`, or `error`).
pub async fn consent(
    ca: &TestCa,
    host: &str,
    addr: SocketAddr,
    url: &str,
) -> BTreeMap<String, String> {
    let browser = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.ca_pem().as_bytes()).expect("CA")])
        .resolve(host, addr)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("browser");
    let response = browser.get(url).send().await.expect("consent page");
    assert_eq!(response.status(), 302, "consent at {url}");
    let location = response.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    url::Url::parse(&location)
        .expect("redirect URL")
        .query_pairs()
        .into_owned()
        .collect()
}
