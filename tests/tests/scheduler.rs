//! The scheduler against a real Okta stand-in: rate limits, transient
//! failures, rejected credentials, and stopping mid-backfill.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::time::Duration;

use ward_standins::okta::OktaConfig;
use ward_store::{EgressRecord, InstanceStatus};
use ward_tests::daemon::DaemonHarness;

fn okta(events: usize) -> OktaConfig {
    OktaConfig {
        events,
        users: 30,
        ..OktaConfig::default()
    }
}

/// Egress of one call kind, oldest first.
async fn egress(h: &DaemonHarness, id: &str, call: &str) -> Vec<EgressRecord> {
    let mut rows = h.daemon.store.egress(id, 1000).await.unwrap();
    rows.retain(|r| r.call == call);
    rows.reverse();
    rows
}

async fn assert_exactly_the_stand_ins_events(h: &DaemonHarness, id: &str) {
    let mut stored = Vec::new();
    let mut after = None;
    loop {
        let page = h
            .daemon
            .store
            .events(
                id,
                &ward_store::EventQuery {
                    limit: 1000,
                    after: after.clone(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = Some((last.time_ms, last.event_id.clone()));
        stored.extend(page.into_iter().map(|e| e.event_id));
    }
    let unique: HashSet<String> = stored.iter().cloned().collect();
    assert_eq!(unique.len(), stored.len(), "an event was stored twice");
    let expected: HashSet<String> = h.okta.event_ids().into_iter().collect();
    assert_eq!(unique, expected, "stored events differ from the provider's");
}

/// Two instances on one tenant draw from one budget: with the operator's
/// policy at 6 requests a minute (a full bucket holds a minute's worth),
/// two workers that each want a dozen pages make at most 6 requests between
/// them in the first seconds, not 6 each. (An upper bound: a slow machine
/// only makes fewer.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_tenant_share_its_budget() {
    let h = DaemonHarness::start(okta(10_000), |c| {
        c.policy.insert(
            "okta".to_string(),
            ward_manifest::PluginPolicy {
                requests_per_minute: Some(6),
                ..Default::default()
            },
        );
    })
    .await;
    let a = h.connect_okta().await;
    let b = h.connect_okta().await;
    h.daemon.scheduler.start(&a.id);
    h.daemon.scheduler.start(&b.id);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut made = 0;
    for id in [&a.id, &b.id] {
        made += h
            .daemon
            .store
            .egress(id, 1000)
            .await
            .unwrap()
            .iter()
            .filter(|r| r.call == "fetch-audit" || r.call == "fetch-users")
            .count();
    }
    // 6 from the full bucket, plus what 3 s refill at 0.1/s could add.
    assert!(made <= 6, "{made} requests in 3 s on a 6/min tenant budget");
    assert!(made >= 1, "the workers never started");
    let first = h.daemon.store.event_count(&a.id).await.unwrap();
    let second = h.daemon.store.event_count(&b.id).await.unwrap();
    assert!(
        first + second < 20_000,
        "both backfills finished inside a 6/min budget: {first} + {second}"
    );
    h.daemon.shutdown().await;
}

/// A quota wait longer than the scheduler sits out inside one sync (an
/// hourly or daily quota) parks the instance, connected and saying until
/// when, and it resumes by itself: never halted, nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_quota_wait_parks_the_instance_without_halting_it() {
    let h = DaemonHarness::start(okta(2_000), |c| c.scheduler.max_rate_wait_secs = 1).await;
    let instance = h.connect_okta().await;
    h.okta.retry_after_next(1, 3);
    h.daemon.scheduler.start(&instance.id);
    let parked = h
        .wait_for(&instance.id, Duration::from_secs(10), |i, _| {
            i.status_message
                .as_deref()
                .is_some_and(|m| m.contains("rate limit is used up"))
        })
        .await;
    assert_eq!(parked.status, InstanceStatus::Connected, "{parked:?}");
    let message = parked.status_message.unwrap();
    assert!(message.contains("waiting 3 s until"), "{message}");
    assert!(h.daemon.scheduler.is_running(&instance.id));

    let done = h.wait_caught_up(&instance.id, 2_000).await;
    assert_eq!(done.status, InstanceStatus::Connected);
    assert_exactly_the_stand_ins_events(&h, &instance.id).await;
    let calls = egress(&h, &instance.id, "fetch-audit").await;
    let limited = calls.iter().position(|r| r.status == Some(429)).unwrap();
    let waited = calls[limited + 1].at_ms - calls[limited].at_ms;
    assert!(
        waited >= 3_000,
        "next request {waited} ms after Retry-After: 3"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_delays_the_next_call_and_loses_nothing() {
    let h = DaemonHarness::start(okta(3_000), |_| {}).await;
    let instance = h.connect_okta().await;
    h.okta.retry_after_next(1, 2);
    h.daemon.scheduler.start(&instance.id);
    let done = h.wait_caught_up(&instance.id, 3_000).await;
    assert_eq!(done.status, InstanceStatus::Connected);
    assert_exactly_the_stand_ins_events(&h, &instance.id).await;

    let calls = egress(&h, &instance.id, "fetch-audit").await;
    let limited = calls
        .iter()
        .position(|r| r.status == Some(429))
        .expect("the 429 is in the egress log");
    let next = &calls[limited + 1];
    let waited = next.at_ms - calls[limited].at_ms;
    assert!(
        waited >= 2_000,
        "next request {waited} ms after a 429 with Retry-After: 2"
    );
    assert_eq!(next.status, Some(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_503s_back_off_then_the_instance_recovers() {
    // Three attempts per round: the first round gives up after three 503s
    // (status error, worker keeps polling), the next poll meets two more
    // and then succeeds.
    let h = DaemonHarness::start(okta(2_500), |c| c.scheduler.retry_attempts = 3).await;
    let instance = h.connect_okta().await;
    h.okta.fail_next(5, 503);
    h.daemon.scheduler.start(&instance.id);
    let errored = h
        .wait_for(&instance.id, Duration::from_secs(30), |i, _| {
            i.status == InstanceStatus::Error
        })
        .await;
    let message = errored.status_message.unwrap();
    assert!(
        message.contains("provider unavailable after 3 attempts") && message.contains("retrying"),
        "{message}"
    );
    assert!(!h.daemon.store.is_halted(&instance.id).await.unwrap());
    let done = h.wait_caught_up(&instance.id, 2_500).await;
    let done = h
        .wait_for(&done.id, Duration::from_secs(10), |i, _| {
            i.status == InstanceStatus::Connected
        })
        .await;
    assert_eq!(done.status_message, None);
    assert_exactly_the_stand_ins_events(&h, &instance.id).await;

    // Backoff grows: within a round each wait is drawn from [d/2, d] with d
    // doubling, so consecutive gaps never shrink.
    let calls = egress(&h, &instance.id, "fetch-audit").await;
    let failed: Vec<&EgressRecord> = calls.iter().filter(|r| r.status == Some(503)).collect();
    assert_eq!(failed.len(), 5);
    let first_round: Vec<i64> = failed[..3]
        .windows(2)
        .map(|w| w[1].at_ms - w[0].at_ms)
        .collect();
    assert!(first_round[1] >= first_round[0], "{first_round:?}");
    assert!(first_round[0] >= 100, "{first_round:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_credentials_halt_the_instance_until_it_is_restarted() {
    let h = DaemonHarness::start(okta(1_500), |_| {}).await;
    let instance = h.connect_okta().await;
    h.daemon.scheduler.start(&instance.id);
    h.wait_caught_up(&instance.id, 1_500).await;

    h.okta.revoke_token();
    let errored = h
        .wait_for(&instance.id, Duration::from_secs(20), |i, _| {
            i.status == InstanceStatus::Error
        })
        .await;
    let message = errored.status_message.unwrap();
    assert!(
        message.starts_with("credentials rejected: reconnect"),
        "{message}"
    );
    assert!(message.contains("E0000011"), "{message}");
    assert!(h.daemon.store.is_halted(&instance.id).await.unwrap());
    assert!(
        !h.daemon
            .store
            .resumable_instances()
            .await
            .unwrap()
            .contains(&instance.id)
    );

    // Halted means no more calls with credentials known to be bad.
    let before = h.okta.requests().len();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(
        h.okta.requests().len(),
        before,
        "a halted instance kept calling"
    );

    // The operator reconnects (here: the token works again) and restarts it.
    h.okta.restore_token();
    h.okta.append_events(17);
    h.daemon.scheduler.start(&instance.id);
    let back = h
        .wait_for(&instance.id, Duration::from_secs(20), |i, _| {
            i.status == InstanceStatus::Connected
        })
        .await;
    assert_eq!(back.status_message, None);
    h.wait_caught_up(&instance.id, 1_517).await;
    assert!(!h.daemon.store.is_halted(&instance.id).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_mid_backfill_then_resume_stores_everything_once() {
    let h = DaemonHarness::start(okta(20_000), |_| {}).await;
    let instance = h.connect_okta().await;
    h.daemon.scheduler.start(&instance.id);
    h.wait_for(&instance.id, Duration::from_secs(30), |_, p| {
        p.is_some_and(|p| p.pages >= 3)
    })
    .await;
    let config = (*h.daemon.config).clone();
    h.daemon.shutdown().await;

    // Whatever committed is consistent: a new daemon on the same data
    // resumes from the stored cursor.
    let daemon = ward_daemon::Daemon::open(config).await.unwrap();
    let partial = daemon.store.event_count(&instance.id).await.unwrap();
    assert!(partial > 0 && partial < 20_000, "{partial}");
    assert_eq!(
        daemon.store.resumable_instances().await.unwrap(),
        vec![instance.id.clone()]
    );
    daemon.scheduler.resume_all().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while daemon.store.event_count(&instance.id).await.unwrap() < 20_000 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        daemon.store.event_count(&instance.id).await.unwrap(),
        20_000
    );
    daemon.shutdown().await;
}

/// Fair scheduling: 16 instances of a plugin whose every call stalls (the
/// hostile connector's `stall` attack, under a manifest that grants the
/// stalling host and asks for the daemon's 5-minute wall-limit ceiling;
/// the provider answers only when the test says so) take at most the
/// plugin's share of the 16 scheduler slots (half). An Okta instance started after them still
/// gets a slot and completes its backfill while they are stalled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_instances_of_one_plugin_leave_slots_for_another_plugin() {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::routing::get;
    use ward_daemon::scheduler::Phase;
    use ward_runtime::types::Grant;
    use ward_standins::server::TlsServer;
    use ward_standins::tls::TestCa;
    use ward_tests::HOSTILE_WASM;
    use ward_tests::plugin_files::{rewrite_manifest, sign, write};

    let ca = TestCa::generate().unwrap();
    let (release, released) = tokio::sync::watch::channel(false);
    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    let router = axum::Router::new().route(
        "/hang/{*rest}",
        get(move || {
            let mut released = released.clone();
            counter.fetch_add(1, Ordering::SeqCst);
            async move {
                let _ = released.wait_for(|r| *r).await;
                "released"
            }
        }),
    );
    let stall = TlsServer::start(router, &ca.issue(&["stall.ward.test"]).unwrap())
        .await
        .unwrap();
    let plugins = tempfile::tempdir().unwrap();
    let vendor = ward_trust::generate().unwrap();
    let stalling = rewrite_manifest(HOSTILE_WASM, &|t| {
        t.replace("key = \"hostile\"", "key = \"stall\"")
            .replace("wall_ms = 5000", "wall_ms = 300000")
            + "\n[[http]]\nurl = \"https://stall.ward.test/hang/\"\nmethods = [\"GET\"]\n"
    });
    let file = write(plugins.path(), "stall.wasm", &stalling);
    sign(&vendor.secret_file, &file);
    let h = DaemonHarness::start_with_ca(ca, okta(300), |c| {
        c.plugins.dirs = vec![plugins.path().to_path_buf()];
        c.plugins.trusted_keys = vec![vendor.public_base64.clone()];
        c.egress
            .resolve
            .insert("stall.ward.test".to_string(), stall.addr());
        c.egress
            .allow_private
            .push(format!("{}/32", stall.addr().ip()));
        assert_eq!(c.scheduler.max_concurrent_calls, 16);
    })
    .await;
    let loaded = h.daemon.registry.get("stall").expect("stall plugin loaded");
    // The manifest asks for a 5-minute wall limit: the ceiling, shown as a risk.
    assert_eq!(loaded.effective.limits.effective.wall_ms, 300_000);
    let mut stalled = Vec::new();
    for i in 0..16 {
        let (instance, _, _) = ward_daemon::connect::connect(
            &h.daemon.store,
            &loaded.plugin,
            &format!("stall {i}"),
            BTreeMap::from([
                ("domain".to_string(), format!("tenant{i}")),
                ("attack".to_string(), "stall".to_string()),
            ]),
            Grant::ApiToken(format!("token-{i}")),
        )
        .await
        .unwrap();
        h.daemon.scheduler.start(&instance.id);
        stalled.push(instance.id);
    }
    // Wait until the stand-in holds the plugin's share of calls.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while received.load(Ordering::SeqCst) < 8 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "stalled calls never arrived"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let instance = h.connect_okta().await;
    h.daemon.scheduler.start(&instance.id);
    let done = h.wait_caught_up(&instance.id, 300).await;
    assert_eq!(done.status, InstanceStatus::Connected, "{done:?}");
    assert_exactly_the_stand_ins_events(&h, &instance.id).await;
    // Okta finished while the stalled calls were still stalled: exactly the
    // plugin's share (8 of 16 slots) ever reached the stalling provider,
    // and none of those instances stored anything.
    assert_eq!(received.load(Ordering::SeqCst), 8);
    let mut in_round = 0;
    for id in &stalled {
        assert_eq!(h.daemon.store.event_count(id).await.unwrap(), 0);
        let rows = h.daemon.store.egress(id, 10).await.unwrap();
        assert!(
            rows.iter()
                .all(|r| r.url.starts_with("https://stall.ward.test/")),
            "{rows:?}"
        );
        if h.daemon.scheduler.progress(id).map(|p| p.phase) == Some(Phase::Backfill) {
            in_round += 1;
        }
    }
    assert_eq!(in_round, 8, "only the plugin's share of instances run");

    release.send_replace(true);
    h.daemon.shutdown().await;
}
