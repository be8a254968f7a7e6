//! The Okta connector end to end: real component, real HTTPS stand-in,
//! real SQLite file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};

use ward_daemon::connect::connect;
use ward_daemon::ingest::{IngestError, Ingestor, Retry};
use ward_runtime::types::{Grant, PluginError};
use ward_runtime::{Bound, CallError};
use ward_standins::okta::OktaConfig;
use ward_store::{EventQuery, Fence, Instance, InstanceStatus, StoreError};
use ward_tests::Harness;

fn config() -> BTreeMap<String, String> {
    BTreeMap::from([("domain".to_string(), "ward-demo".to_string())])
}

fn token() -> Grant {
    Grant::ApiToken(OktaConfig::default().api_token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_25k_exactly_once_then_poll() {
    let h = Harness::start(OktaConfig {
        events: 25_000,
        users: 450,
        ..OktaConfig::default()
    })
    .await;
    let plugin = h.okta_plugin();
    let (instance, bound, report) = connect(&h.store, &plugin, "okta", config(), token())
        .await
        .unwrap();
    assert!(report.checks.iter().all(|c| c.ok), "{report:?}");
    assert_eq!(instance.status, InstanceStatus::Connected);
    let ingestor = ingestor(&h, bound, &instance.id, None);
    let since = now_ms() - 60 * 86_400_000;

    let first = ingestor.sync_audit(since, |_| {}).await.unwrap();
    assert_eq!(first.new, 25_000);
    // 25 full pages, then the empty page that says "caught up".
    assert_eq!(first.pages, 26);
    let log_requests = log_pages_fetched(&h);
    assert!(log_requests >= 26);
    assert_eq!(h.store.event_count(&instance.id).await.unwrap(), 25_000);

    // Exactly the stand-in's events, each once.
    let mut stored = BTreeSet::new();
    let mut after = None;
    loop {
        let page = h
            .store
            .events(
                &instance.id,
                &EventQuery {
                    limit: 1000,
                    after: after.clone(),
                    ..EventQuery::default()
                },
            )
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|e| (e.time_ms, e.event_id.clone()));
        for e in page {
            assert!(stored.insert(e.event_id), "duplicate");
        }
    }
    let expected: BTreeSet<String> = h.okta.event_ids().into_iter().collect();
    assert_eq!(stored, expected);

    // A second run finds nothing new.
    let second = ingestor.sync_audit(since, |_| {}).await.unwrap();
    assert_eq!(second.new, 0);
    assert_eq!(h.store.event_count(&instance.id).await.unwrap(), 25_000);

    // New events at the provider arrive on the next poll.
    h.okta.append_events(321);
    let third = ingestor.sync_audit(since, |_| {}).await.unwrap();
    assert_eq!(third.new, 321);
    assert_eq!(h.store.event_count(&instance.id).await.unwrap(), 25_321);

    // Users: every non-deprovisioned user, across pages of 200.
    let users = ingestor.sync_users().await.unwrap();
    assert!(users.pages >= 2);
    assert_eq!(h.store.user_count(&instance.id).await.unwrap(), users.seen);

    // Egress log: every request recorded with status, no token value.
    let egress = h.store.egress(&instance.id, 1000).await.unwrap();
    assert!(egress.iter().all(|e| e.allowed && e.status == Some(200)));
    let token = OktaConfig::default().api_token;
    assert!(egress.iter().all(|e| !e.url.contains(&token)));
}

#[tokio::test]
async fn rate_limit_is_waited_out_without_loss() {
    let (h, instance, bound) = connected(3_000).await;
    let ingestor = ingestor(&h, bound, &instance.id, None);
    h.okta.rate_limit_next(1, 1);
    h.okta.fail_next(2, 503);
    let stats = ingestor
        .sync_audit(now_ms() - 60 * 86_400_000, |_| {})
        .await
        .unwrap();
    assert!(stats.retries >= 3, "{stats:?}");
    assert_eq!(h.store.event_count(&instance.id).await.unwrap(), 3_000);
}

#[tokio::test]
async fn revoked_token_asks_for_reconnect() {
    let h = Harness::start(OktaConfig::default()).await;
    let plugin = h.okta_plugin();
    let (instance, bound, _) = connect(&h.store, &plugin, "okta", config(), token())
        .await
        .unwrap();
    h.okta.revoke_token();
    match bound.test().await.result {
        Err(CallError::Plugin(PluginError::Unauthorized(m))) => {
            assert!(m.contains("E0000011") && m.contains("reconnect"), "{m}")
        }
        other => panic!("expected unauthorized, got {other:?}"),
    }
    let ingestor = ingestor(&h, bound, &instance.id, None);
    let err = ingestor.sync_audit(0, |_| {}).await.unwrap_err();
    assert!(err.needs_operator(), "{err}");
}

#[tokio::test]
async fn admin_without_log_role_fails_the_check_with_advice() {
    let h = Harness::start(OktaConfig {
        admin_role: None,
        ..OktaConfig::default()
    })
    .await;
    let plugin = h.okta_plugin();
    let (instance, _, report) = connect(&h.store, &plugin, "okta", config(), token())
        .await
        .unwrap();
    let role = report
        .checks
        .iter()
        .find(|c| c.name == "admin-role")
        .unwrap();
    assert!(!role.ok);
    assert!(role.message.contains("Read-only Administrator"));
    assert_eq!(instance.status, InstanceStatus::Error);
    assert!(instance.status_message.unwrap().contains("admin-role"));
}

/// Pages are pipelined (page N+1 is fetched while page N commits), yet a
/// commit refused mid-backfill stores nothing after it: the lease is taken
/// over once page 3 is in, page 4's commit is fenced, the page fetched
/// meanwhile is dropped, and the stored cursor is page 3's, so a re-run
/// stores exactly the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_commit_mid_backfill_drops_the_page_fetched_meanwhile() {
    let (h, instance, bound) = connected(6_000).await;
    let lease = h
        .store
        .claim_lease("daemon-a", &instance.id, 600_000)
        .await
        .unwrap()
        .unwrap();
    let ingestor = ingestor(&h, bound, &instance.id, Some(lease.fence()));
    let since = now_ms() - 60 * 86_400_000;
    let (store, id) = (h.store.clone(), instance.id.clone());
    let err = ingestor
        .sync_audit(since, |p| {
            if p.stats.pages == 3 {
                let taken = tokio::task::block_in_place(|| {
                    tokio::runtime::Handle::current()
                        .block_on(store.claim_lease("daemon-b", &id, 600_000))
                });
                assert!(taken.unwrap().is_some());
            }
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            IngestError::Store {
                source: StoreError::Fenced { .. },
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(h.store.event_count(&instance.id).await.unwrap(), 3_000);
    let fetched = log_pages_fetched(&h);
    assert!(
        (4..=5).contains(&fetched),
        "{fetched} pages fetched: 3 committed, the fenced one, at most one more in flight"
    );

    let rest = Ingestor {
        fence: None,
        ..ingestor
    }
    .sync_audit(since, |_| {})
    .await
    .unwrap();
    assert_eq!(rest.new, 3_000);
    assert_eq!(h.store.event_count(&instance.id).await.unwrap(), 6_000);
}

/// A stand-in holding `events` System Log events and an instance connected
/// to it with the API token.
async fn connected(events: usize) -> (Harness, Instance, Bound) {
    let h = Harness::start(OktaConfig {
        events,
        ..OktaConfig::default()
    })
    .await;
    let plugin = h.okta_plugin();
    let (instance, bound, _) = connect(&h.store, &plugin, "okta", config(), token())
        .await
        .unwrap();
    (h, instance, bound)
}

fn ingestor(h: &Harness, bound: Bound, instance_id: &str, fence: Option<Fence>) -> Ingestor {
    Ingestor {
        store: h.store.clone(),
        bound,
        instance_id: instance_id.to_string(),
        fence,
        retry: Retry::default(),
    }
}

/// System Log pages of 1,000 the stand-in served (not the connection
/// test's `limit=1` probe).
fn log_pages_fetched(h: &Harness) -> usize {
    h.okta
        .requests()
        .iter()
        .filter(|r| {
            r.path_and_query.starts_with("/api/v1/logs?") && r.path_and_query.contains("limit=1000")
        })
        .count()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
