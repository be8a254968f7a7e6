//! Rate pacing against Okta stand-ins that count what they receive: the
//! pace follows what each org advertises (less the reserve for the org's
//! other API clients), and an operator's `PATCH … requestsPerMinute`
//! reaches a backfill that is already running. Assertions are on request
//! counts, per stand-in window.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use ward_manifest::PluginPolicy;
use ward_standins::okta::{OktaConfig, OktaStandIn};
use ward_standins::tls::TestCa;
use ward_tests::api::ApiHarness;

/// Pages of the connector's System Log reads (not the Test now probe).
fn backfill_pages(org: &OktaStandIn) -> usize {
    org.requests()
        .iter()
        .filter(|r| {
            r.path_and_query.starts_with("/api/v1/logs?")
                && !r.path_and_query.contains("limit=1&")
                && !r.path_and_query.ends_with("limit=1")
        })
        .count()
}

/// Every System Log request, the Test now probe included.
fn log_requests(org: &OktaStandIn) -> usize {
    org.requests()
        .iter()
        .filter(|r| r.path_and_query.starts_with("/api/v1/logs"))
        .count()
}

async fn create(api: &ApiHarness, domain: &str) -> String {
    let (status, body) = api
        .create_with_token("okta", &org_token(domain), json!({"domain": domain}))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["status"]["state"], "connected", "{body}");
    body["id"].as_str().unwrap().to_owned()
}

fn org_token(domain: &str) -> String {
    format!("00{domain}-ssws-token")
}

async fn org(ca: &TestCa, domain: &str, events: usize, limit: u32) -> OktaStandIn {
    OktaStandIn::start(
        OktaConfig {
            org: domain.into(),
            api_token: org_token(domain),
            events,
            users: 3,
            rate_limit_per_minute: limit,
            ..OktaConfig::default()
        },
        ca,
    )
    .await
    .unwrap()
}

async fn wait_events(api: &ApiHarness, id: &str, n: u64, guard: Duration) {
    let deadline = Instant::now() + guard;
    loop {
        let stored = api.daemon.store.event_count(id).await.unwrap();
        if stored >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {stored} of {n} events stored"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pace_follows_what_each_org_advertises_keeping_the_reserve() {
    const EVENTS: usize = 20_000; // 20 pages of 1,000
    let ca = TestCa::generate().unwrap();
    // A small org advertises 20 System Log requests a minute (Ward may use
    // 10), a large one 1,200 (Ward may use 600, its ceiling).
    let small = org(&ca, "ward-small", EVENTS, 20).await;
    let large = org(&ca, "ward-large", EVENTS, 1200).await;
    let hosts = vec![(small.host(), small.addr()), (large.host(), large.addr())];
    let api = ApiHarness::start(ca, hosts, |_| {}).await;
    let small_id = create(&api, "ward-small").await;
    let large_id = create(&api, "ward-large").await;
    let started = Instant::now();

    // The large org's backfill completes, every page at once...
    wait_events(&api, &large_id, EVENTS as u64, Duration::from_secs(300)).await;
    assert!(
        backfill_pages(&large) >= EVENTS / 1000,
        "{}",
        backfill_pages(&large)
    );
    // ...while the small org got at most its 10 a minute (the Test now
    // probe included), per minute the stand-in counted.
    let windows = 1 + started.elapsed().as_secs() / 60;
    let small_logs = log_requests(&small);
    assert!(
        small_logs as u64 <= 10 * windows,
        "{small_logs} System Log requests to the small org in {windows} window(s)"
    );
    assert!(small_logs >= 2, "the small org's backfill started");
    assert!(
        api.daemon.store.event_count(&small_id).await.unwrap() < EVENTS as u64,
        "the small org cannot have been read at the large one's pace"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patched_rate_reaches_a_running_backfill_of_100k_events() {
    const EVENTS: usize = 100_000; // 100 pages of 1,000
    let ca = TestCa::generate().unwrap();
    let okta = org(&ca, "ward-demo", EVENTS, 600).await;
    let hosts = vec![(okta.host(), okta.addr())];
    // The operator's policy holds Okta to 2 requests a minute.
    let api = ApiHarness::start(ca, hosts, |c| {
        c.policy.insert(
            "okta".into(),
            PluginPolicy {
                requests_per_minute: Some(2),
                ..PluginPolicy::default()
            },
        );
    })
    .await;
    let id = create(&api, "ward-demo").await;

    // The backfill spends its minute's worth (2 pages), then waits.
    let deadline = Instant::now() + Duration::from_secs(120);
    while backfill_pages(&okta) < 2 {
        assert!(Instant::now() < deadline, "the backfill did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before = backfill_pages(&okta);
    assert!(before <= 3, "{before} pages at 2 a minute");

    // The operator raises it: the waiting backfill picks it up at once.
    let patched_at = Instant::now();
    let (status, body) = api
        .send(
            Method::PATCH,
            &format!("/instances/{id}"),
            Some(&json!({"requestsPerMinute": 600})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["requestsPerMinute"], 600, "{body}");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = backfill_pages(&okta) - before;
    assert!(
        after >= 3,
        "{after} pages in the 5 s after the PATCH, against at most 1 in the 5 s before"
    );

    // The rest of the 100,000 events arrive at the new pace, each once.
    wait_events(&api, &id, EVENTS as u64, Duration::from_secs(600)).await;
    let pages = backfill_pages(&okta);
    let minutes = patched_at.elapsed().as_secs_f64() / 60.0;
    let pace = (pages - before) as f64 / minutes;
    assert!(
        pace > 20.0,
        "{} pages in {minutes:.1} min after the PATCH: {pace:.0}/min, not the new pace",
        pages - before
    );
    assert_eq!(
        api.daemon.store.event_count(&id).await.unwrap(),
        EVENTS as u64
    );
    assert_eq!(api.event_ids(&id).await.len(), EVENTS);
}
