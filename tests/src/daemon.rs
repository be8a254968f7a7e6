//! A whole daemon (store, runtime, registry, scheduler) in the test
//! process, configured the way an operator would: a data directory, resolve
//! overrides to the stand-ins, their CA file, exactly their loopback address
//! allowed.

use std::collections::BTreeMap;
use std::time::Duration;

use tempfile::TempDir;
use ward_daemon::Daemon;
use ward_daemon::config::Config;
use ward_daemon::connect::connect;
use ward_daemon::scheduler::WorkerProgress;
use ward_runtime::types::Grant;
use ward_standins::okta::{OktaConfig, OktaStandIn};
use ward_standins::tls::TestCa;
use ward_store::Instance;

/// A daemon and an Okta stand-in.
pub struct DaemonHarness {
    /// Test CA.
    pub ca: TestCa,
    /// The Okta org stand-in.
    pub okta: OktaStandIn,
    /// The daemon.
    pub daemon: Daemon,
    /// Its data directory.
    pub dir: TempDir,
}

/// The configuration a test daemon runs with: polling every second and
/// short backoffs (the retry logic is the same, only faster).
pub fn test_config(
    dir: &std::path::Path,
    ca_file: std::path::PathBuf,
    okta: &OktaStandIn,
) -> Config {
    let mut config = Config {
        data_dir: dir.to_path_buf(),
        ..Config::default()
    };
    config.api.listen = "127.0.0.1:0".parse().unwrap();
    config.egress.resolve = BTreeMap::from([(okta.host(), okta.addr())]);
    config.egress.ca_files = vec![ca_file];
    config.egress.allow_private = vec![format!("{}/32", okta.addr().ip())];
    config.scheduler.poll_interval_secs = 1;
    config.scheduler.backoff_base_ms = 100;
    config.scheduler.backoff_max_ms = 2_000;
    config
}

impl DaemonHarness {
    /// Starts the stand-in and opens a daemon on a fresh data directory;
    /// `tweak` may change the configuration first.
    pub async fn start(okta: OktaConfig, tweak: impl FnOnce(&mut Config)) -> DaemonHarness {
        DaemonHarness::start_with_ca(TestCa::generate().unwrap(), okta, tweak).await
    }

    /// [`DaemonHarness::start`] with a CA the test already issued other
    /// stand-ins' certificates from (the daemon trusts it).
    pub async fn start_with_ca(
        ca: TestCa,
        okta: OktaConfig,
        tweak: impl FnOnce(&mut Config),
    ) -> DaemonHarness {
        let okta = OktaStandIn::start(okta, &ca).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.ca_pem()).unwrap();
        let mut config = test_config(dir.path(), ca_file, &okta);
        tweak(&mut config);
        let daemon = Daemon::open(config).await.unwrap();
        DaemonHarness {
            ca,
            okta,
            daemon,
            dir,
        }
    }

    /// Connects an Okta instance with the stand-in's API token (exchange,
    /// encrypted credentials, test); the worker is not started.
    pub async fn connect_okta(&self) -> Instance {
        let plugin = self.daemon.registry.get("okta").unwrap().plugin;
        let (instance, _, report) = connect(
            &self.daemon.store,
            &plugin,
            "Okta",
            BTreeMap::from([("domain".to_string(), "ward-demo".to_string())]),
            Grant::ApiToken(OktaConfig::default().api_token),
        )
        .await
        .unwrap();
        assert!(report.checks.iter().all(|c| c.ok), "{:?}", report.checks);
        instance
    }

    /// Polls the instance and its worker until `done` says so; fails after
    /// `limit` with the last state seen.
    pub async fn wait_for(
        &self,
        id: &str,
        limit: Duration,
        done: impl Fn(&Instance, Option<&WorkerProgress>) -> bool,
    ) -> Instance {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let instance = self.daemon.store.instance(id).await.unwrap().unwrap();
            let progress = self.daemon.scheduler.progress(id);
            if done(&instance, progress.as_ref()) {
                return instance;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "gave up waiting; instance {instance:?}, worker {progress:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the worker has read everything there is and the users.
    pub async fn wait_caught_up(&self, id: &str, events: u64) -> Instance {
        let store = self.daemon.store.clone();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let n = store.event_count(id).await.unwrap();
            let users = store.users_synced_ms(id).await.unwrap();
            if n >= events && users.is_some() {
                return store.instance(id).await.unwrap().unwrap();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "caught up to {n} of {events} events; worker {:?}",
                self.daemon.scheduler.progress(id)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
