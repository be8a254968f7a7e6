//! Must-show for sinks: a real `ward serve` process backfills 100,000 Okta
//! events into an HTTP sink (a Splunk HEC stand-in) while the test kills the
//! daemon with `kill -9` five times and takes the sink down twice (503s,
//! 429 with Retry-After, connection refused). Every event arrives at least
//! once; duplicates come only from batches sent but not acknowledged before
//! a kill.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::Child;
use std::time::Duration;

use rand::Rng;
use ward_daemon::config::Config;
use ward_runtime::types::Grant;
use ward_standins::hec::{HecFault, HecStandIn};
use ward_standins::okta::{OktaConfig, OktaStandIn};
use ward_standins::tls::TestCa;
use ward_store::{MasterKey, Store};
use ward_tests::processes::{okta_serve_config, spawn_serve};

const EVENTS: usize = 100_000;
const BATCH: usize = 2_000;
const TOKEN: &str = "hec-token-0b1d";

fn spawn(config: &std::path::Path) -> Child {
    spawn_serve(
        std::path::Path::new(env!("CARGO_BIN_EXE_ward")),
        config,
        None,
    )
    .unwrap()
}

fn kill9(child: &mut Child) {
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

/// Waits until `cond` holds, checking every 20 ms; false after `limit`.
async fn until(limit: Duration, mut cond: impl AsyncFnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if cond().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hec_sink_gets_every_event_through_kills_and_outages() {
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
    let hec = HecStandIn::start(TOKEN).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.ca_pem()).unwrap();
    let config_text = okta_serve_config(
        dir.path(),
        &ca_file,
        &okta,
        &format!(
            r#"[scheduler]
poll_interval_secs = 1

[[sinks]]
name = "splunk"
type = "http"
preset = "splunk-hec"
format = "ocsf"
url = "{hec}"
secret = "splunk-hec"
batch_size = {BATCH}
backoff_base_ms = 50
backoff_max_ms = 400
"#,
            hec = hec.url(),
        ),
    );
    let config_file = dir.path().join("ward.toml");
    std::fs::write(&config_file, &config_text).unwrap();

    // The operator connects the instance and stores the HEC token once.
    let id = {
        let daemon = ward_daemon::Daemon::open(Config::parse(&config_text).unwrap())
            .await
            .unwrap();
        daemon.sinks.set_secret("splunk-hec", TOKEN).await.unwrap();
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
    let stored = async || store.event_count(&id).await.unwrap();
    let received = || hec.keys().len();
    let limit = Duration::from_secs(60);

    // Kill 1: during normal delivery.
    let mut child = spawn(&config_file);
    assert!(
        until(limit, async || received() > 0).await,
        "nothing delivered"
    );
    tokio::time::sleep(Duration::from_millis(rand::thread_rng().gen_range(0..300))).await;
    kill9(&mut child);

    // Outage 1 (503s) and kill 2 during it: events keep accumulating.
    hec.fail_with(HecFault {
        status: 503,
        retry_after: None,
    });
    let before = (stored().await, received());
    let mut child = spawn(&config_file);
    assert!(
        until(limit, async || hec.refused() >= 3
            && stored().await > before.0)
        .await,
        "the daemon neither retried nor ingested during the 503 outage"
    );
    assert_eq!(
        received(),
        before.1,
        "a refused batch was counted as delivered"
    );
    kill9(&mut child);
    hec.heal();

    // Outage 2: the sink goes away entirely; kill 3 while it is gone.
    hec.go_away();
    let before = stored().await;
    let mut child = spawn(&config_file);
    assert!(until(limit, async || stored().await > before).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    kill9(&mut child);
    hec.come_back().await.unwrap();

    // 429 with Retry-After, then kill 4 after delivery resumes.
    hec.fail_with(HecFault {
        status: 429,
        retry_after: Some(1),
    });
    let refused = hec.refused();
    let mut child = spawn(&config_file);
    assert!(until(limit, async || hec.refused() > refused).await);
    hec.heal();
    let before = received();
    assert!(until(limit, async || received() > before).await);
    tokio::time::sleep(Duration::from_millis(rand::thread_rng().gen_range(0..300))).await;
    kill9(&mut child);

    // Kill 5 at a random moment of delivery.
    let before = received();
    let mut child = spawn(&config_file);
    assert!(until(limit, async || received() > before).await);
    tokio::time::sleep(Duration::from_millis(rand::thread_rng().gen_range(0..300))).await;
    kill9(&mut child);

    // Last run: everything drains.
    let mut child = spawn(&config_file);
    let all = until(Duration::from_secs(150), async || {
        stored().await >= EVENTS as u64 && hec.keys().iter().collect::<HashSet<_>>().len() >= EVENTS
    })
    .await;
    kill9(&mut child);
    assert!(
        all,
        "not everything arrived: stored {}, received {}",
        stored().await,
        received()
    );

    let keys = hec.keys();
    let unique: HashSet<&String> = keys.iter().collect();
    let expected: HashSet<String> = okta
        .event_ids()
        .into_iter()
        .map(|e| format!("{id}/{e}"))
        .collect();
    let got: HashSet<String> = unique.iter().map(|k| (*k).clone()).collect();
    assert_eq!(got, expected, "missing or foreign events at the sink");
    assert_eq!(store.event_count(&id).await.unwrap(), EVENTS as u64);

    // Duplicates: only batches a kill cut between the receiver's 200 and
    // the cursor's commit, so at most one batch per kill.
    let duplicates = keys.len() - unique.len();
    let mut per_key: HashMap<&String, u32> = HashMap::new();
    for k in &keys {
        *per_key.entry(k).or_default() += 1;
    }
    let max_copies = per_key.values().copied().max().unwrap_or(0);
    println!(
        "hec sink: {EVENTS} events, {} requests accepted, {} refused, {duplicates} duplicate(s) after 5 kills and 2 outages",
        hec.batches().len(),
        hec.refused()
    );
    assert!(
        duplicates <= 5 * BATCH,
        "{duplicates} duplicates: more than one unacknowledged batch per kill"
    );
    assert!(max_copies <= 6, "an event arrived {max_copies} times");
}
