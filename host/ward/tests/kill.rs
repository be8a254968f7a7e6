//! `kill -9` of a real `ward serve` process in the middle of a backfill,
//! restart, repeat: every event of the provider is stored exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashSet};
use std::process::Child;
use std::time::Duration;

use rand::Rng;
use ward_daemon::config::Config;
use ward_runtime::types::Grant;
use ward_standins::okta::{OktaConfig, OktaStandIn};
use ward_standins::tls::TestCa;
use ward_store::{MasterKey, Store};
use ward_tests::processes::{okta_serve_config, spawn_serve, stored_event_ids, wait_for_events};

/// Enough pages that the backfill outlasts all the kills.
const EVENTS: usize = 120_000;
const KILLS: usize = 20;

fn spawn(config: &std::path::Path) -> Child {
    spawn_serve(
        std::path::Path::new(env!("CARGO_BIN_EXE_ward")),
        config,
        None,
    )
    .unwrap()
}

async fn wait_until(store: &Store, id: &str, at_least: u64, limit: Duration) -> u64 {
    wait_for_events(store, id, at_least, limit).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_backfill_loses_and_duplicates_nothing() {
    let ca = TestCa::generate().unwrap();
    let okta = OktaStandIn::start(
        OktaConfig {
            events: EVENTS,
            users: 20,
            ..OktaConfig::default()
        },
        &ca,
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.ca_pem()).unwrap();
    let config_text = okta_serve_config(
        dir.path(),
        &ca_file,
        &okta,
        "[scheduler]\npoll_interval_secs = 1",
    );
    let config_file = dir.path().join("ward.toml");
    std::fs::write(&config_file, &config_text).unwrap();

    // The operator connects the instance once; the daemon process does the rest.
    let id = {
        let daemon = ward_daemon::Daemon::open(Config::parse(&config_text).unwrap())
            .await
            .unwrap();
        let plugin = daemon.registry.get("okta").unwrap().plugin;
        let (instance, _, _) = ward_daemon::connect::connect(
            &daemon.store,
            &plugin,
            "Okta",
            BTreeMap::from([("domain".to_string(), "ward-demo".to_string())]),
            Grant::ApiToken(OktaConfig::default().api_token),
        )
        .await
        .unwrap();
        daemon.shutdown().await;
        instance.id
    };

    let key = MasterKey::load_or_create(&dir.path().join("master.key")).unwrap();
    let store = Store::open_sqlite(&dir.path().join("ward.db"), key)
        .await
        .unwrap();
    let mut kills = 0;
    let mut seen = 0;
    while kills < KILLS {
        let mut child = spawn(&config_file);
        // Let at least one more page commit, then kill at a random moment.
        let n = wait_until(&store, &id, seen + 1, Duration::from_secs(60)).await;
        assert!(
            n > seen,
            "the restarted daemon made no progress from {seen}"
        );
        if n >= EVENTS as u64 {
            child.kill().unwrap();
            child.wait().unwrap();
            break;
        }
        tokio::time::sleep(Duration::from_millis(rand::thread_rng().gen_range(0..150))).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        let after = store.event_count(&id).await.unwrap();
        assert!(after >= n, "committed events vanished: {n} -> {after}");
        seen = after;
    }
    assert_eq!(
        kills, KILLS,
        "backfill finished after {kills} kills, before all {KILLS}"
    );

    let mut child = spawn(&config_file);
    let n = wait_until(&store, &id, EVENTS as u64, Duration::from_secs(300)).await;
    assert_eq!(n, EVENTS as u64);
    // One more poll round must not add anything.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    child.kill().unwrap();
    child.wait().unwrap();

    let stored = stored_event_ids(&store, &id).await.unwrap();
    let unique: HashSet<String> = stored.iter().cloned().collect();
    assert_eq!(unique.len(), stored.len(), "duplicates after {kills} kills");
    let expected: HashSet<String> = okta.event_ids().into_iter().collect();
    assert_eq!(unique, expected, "lost events after {kills} kills");
}
