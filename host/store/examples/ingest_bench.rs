//! Measures `commit_audit_page` throughput into a file database.
//!
//! `cargo run --release -p ward-store --example ingest_bench [events] [page]`

use std::time::Instant;

use ward_store::{MasterKey, NewEvent, NewInstance, Store, StoreError};

/// Roughly the size of a real Okta System Log event.
fn raw_json(i: usize, time_ms: i64) -> String {
    format!(
        r#"{{"uuid":"ev-{i}","published":{time_ms},"eventType":"user.session.start","version":"0","severity":"INFO","legacyEventType":"core.user_auth.login_success","displayMessage":"User login to Okta","actor":{{"id":"00u{a}","type":"User","alternateId":"user{a}@example.com","displayName":"User {a}","detailEntry":null}},"client":{{"userAgent":{{"rawUserAgent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36","os":"Mac OS X","browser":"CHROME"}},"zone":"null","device":"Computer","id":null,"ipAddress":"198.51.100.{b}","geographicalContext":{{"city":"Paris","state":"Ile-de-France","country":"France","postalCode":"75001","geolocation":{{"lat":48.86,"lon":2.34}}}}}},"outcome":{{"result":"SUCCESS","reason":null}},"transaction":{{"type":"WEB","id":"Zx{i}","detail":{{}}}},"debugContext":{{"debugData":{{"requestId":"Zx{i}","requestUri":"/api/v1/authn","threatSuspected":"false","url":"/api/v1/authn?"}}}},"authenticationContext":{{"authenticationStep":0,"externalSessionId":"102abc{i}"}},"securityContext":{{"asNumber":12345,"asOrg":"example","isp":"example isp","domain":"example.net","isProxy":false}},"target":[]}}"#,
        a = i % 500,
        b = i % 250,
    )
}

fn page(start: usize, n: usize) -> Vec<NewEvent> {
    (start..start + n)
        .map(|i| {
            let time_ms = 1_700_000_000_000 + i as i64;
            NewEvent {
                event_id: format!("ev-{i}"),
                time_ms,
                action: "user.session.start".into(),
                actor_id: Some(format!("00u{}", i % 500)),
                actor_kind: "user".into(),
                actor_name: Some(format!("User {}", i % 500)),
                actor_email: Some(format!("user{}@example.com", i % 500)),
                targets_json: "[]".into(),
                ip: Some(format!("198.51.100.{}", i % 250)),
                user_agent: Some("Mozilla/5.0 (Macintosh) Chrome/120.0.0.0".into()),
                outcome: "success".into(),
                raw_json: raw_json(i, time_ms),
            }
        })
        .collect()
}

#[tokio::main]
async fn main() -> Result<(), StoreError> {
    let mut args = std::env::args().skip(1);
    let total: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let page_size: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000);

    let dir = std::env::temp_dir().join(format!("ward-store-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| StoreError::KeyFile {
        path: dir.clone(),
        reason: e.to_string(),
    })?;
    let store = Store::open_sqlite(&dir.join("bench.db"), MasterKey::generate()).await?;
    let inst = store
        .create_instance(&NewInstance {
            plugin_key: "okta".into(),
            plugin_version: "0.0.0".into(),
            name: "bench".into(),
            config: Default::default(),
            tags: vec![],
        })
        .await?;

    // Build pages up front so only the store is timed.
    let pages: Vec<Vec<NewEvent>> = (0..total.div_ceil(page_size))
        .map(|p| page(p * page_size, page_size.min(total - p * page_size)))
        .collect();

    let start = Instant::now();
    let mut inserted = 0;
    for (p, evs) in pages.iter().enumerate() {
        inserted += store
            .commit_audit_page(&inst.id, evs, &format!("c{p}"))
            .await?;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "inserted {inserted} events in {secs:.3}s: {:.0} events/s (pages of {page_size})",
        inserted as f64 / secs
    );

    let start = Instant::now();
    let again = store.commit_audit_page(&inst.id, &pages[0], "c0").await?;
    println!(
        "re-commit of one page: {again} new in {:.1} ms",
        start.elapsed().as_secs_f64() * 1e3
    );

    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
