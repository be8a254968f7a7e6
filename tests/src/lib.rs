//! Shared set-up for Ward's end-to-end tests: real components built from
//! `plugins/` and `tests/plugins/`, real HTTPS stand-ins on loopback under
//! real host names, a real SQLite file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod api;
pub mod browser;
pub mod console;
pub mod credentials;
pub mod daemon;
pub mod dns;
pub mod logs;
pub mod plugin_files;
pub mod processes;
pub mod python;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::{any, get};
use tempfile::TempDir;
use ward_runtime::{EgressConfig, Plugin, Runtime, RuntimeConfig};
use ward_standins::okta::{OktaConfig, OktaStandIn};
use ward_standins::server::TlsServer;
use ward_standins::tls::TestCa;
use ward_store::{MasterKey, Store};

/// The Okta connector component, built from `plugins/okta`.
pub const OKTA_WASM: &[u8] = include_bytes!(env!("WARD_TEST_PLUGIN_WARD_OKTA"));
/// The Egnyte connector component, built from `plugins/egnyte`.
pub const EGNYTE_WASM: &[u8] = include_bytes!(env!("WARD_TEST_PLUGIN_WARD_EGNYTE"));
/// The Zendesk connector component, built from `plugins/zendesk`.
pub const ZENDESK_WASM: &[u8] = include_bytes!(env!("WARD_TEST_PLUGIN_WARD_ZENDESK"));
/// The hostile test connector, built from `tests/plugins/hostile`.
pub const HOSTILE_WASM: &[u8] = include_bytes!(env!("WARD_TEST_PLUGIN_WARD_HOSTILE"));
/// A connector importing an interface Ward does not provide, built from
/// `tests/plugins/undeclared`.
pub const UNDECLARED_WASM: &[u8] = include_bytes!(env!("WARD_TEST_PLUGIN_WARD_UNDECLARED"));
/// A hostile contract-0.2 connector without `exchange` that reports
/// everything it sees, built from `tests/plugins/probe-v02`.
pub const PROBE_V02_WASM: &[u8] = include_bytes!(env!("WARD_TEST_PLUGIN_WARD_PROBE_V02"));
/// A connector written against the frozen contract 0.1 without the SDK,
/// built from `tests/plugins/compat-v01`.
pub const COMPAT_V01_WASM: &[u8] = include_bytes!(env!("WARD_TEST_PLUGIN_WARD_COMPAT_V01"));

/// 16 MiB of body streamed from one static 64 KiB block, so serving it
/// costs the test process (which also hosts the runtime) next to nothing.
fn sixteen_mib() -> axum::body::Body {
    static BLOCK: [u8; 64 * 1024] = [b'x'; 64 * 1024];
    let chunks = (0..256).map(|_| Ok::<_, std::io::Error>(&BLOCK[..]));
    axum::body::Body::from_stream(futures::stream::iter(chunks))
}

/// Stand-ins, runtime and store for one test.
pub struct Harness {
    /// Test CA.
    pub ca: TestCa,
    /// Okta org stand-in at `ward-demo.okta.com`.
    pub okta: OktaStandIn,
    /// Reflects the `authorization` header it receives (`echo.ward.test`).
    pub echo: TlsServer,
    /// Answers 200 to anything and counts requests (`collector.ward.test`).
    pub collector: TlsServer,
    /// Requests the collector received.
    pub collector_hits: Arc<AtomicUsize>,
    /// The runtime, with resolve overrides to the stand-ins.
    pub runtime: Runtime,
    /// A SQLite store in a temp dir.
    pub store: Store,
    /// Keeps the temp dir alive.
    pub dir: TempDir,
}

impl Harness {
    /// Starts everything with the given Okta configuration.
    pub async fn start(okta: OktaConfig) -> Harness {
        let ca = TestCa::generate().unwrap();
        let okta = OktaStandIn::start(okta, &ca).await.unwrap();
        let echo_router = Router::new().route(
            "/{*path}",
            get(|headers: HeaderMap| async move {
                let seen = headers
                    .get("authorization")
                    .cloned()
                    .unwrap_or(axum::http::HeaderValue::from_static(""));
                // The body comes in two chunks split inside the value, as
                // a provider streaming its answer might send it.
                let text = seen.to_str().unwrap_or("").as_bytes().to_vec();
                let (first, second) = text.split_at(text.len() / 2);
                let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                    vec![Ok(first.to_vec()), Ok(second.to_vec())];
                (
                    [("x-echo-authorization", seen)],
                    axum::body::Body::from_stream(futures::stream::iter(chunks)),
                )
            }),
        );
        let echo = TlsServer::start(echo_router, &ca.issue(&["echo.ward.test"]).unwrap())
            .await
            .unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let collector_router = Router::new()
            .route(
                "/redirect",
                get(|| async {
                    (
                        axum::http::StatusCode::FOUND,
                        [("location", "https://evil.example/landing")],
                        "",
                    )
                }),
            )
            .route("/big", get(|| async { "x".repeat(2 << 20) }))
            .route(
                "/sixteen-mib",
                get({
                    let counter = counter.clone();
                    move || {
                        counter.fetch_add(1, Ordering::SeqCst);
                        async { sixteen_mib() }
                    }
                }),
            )
            .route(
                "/slow",
                get({
                    let counter = counter.clone();
                    move || {
                        let counter = counter.clone();
                        async move {
                            counter.fetch_add(1, Ordering::SeqCst);
                            // Longer than any test plugin's wall clock.
                            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                            "late"
                        }
                    }
                }),
            )
            .route(
                "/many-headers",
                get(|| async {
                    // 90 headers of 1 KiB: past Ward's 64 KiB header cap but
                    // within what the HTTP client itself parses.
                    let mut headers = HeaderMap::new();
                    for i in 0..90 {
                        headers.insert(
                            axum::http::HeaderName::try_from(format!("x-big-{i}")).unwrap(),
                            axum::http::HeaderValue::try_from("v".repeat(1024)).unwrap(),
                        );
                    }
                    (headers, "ok")
                }),
            )
            .route(
                "/{*path}",
                any(move || {
                    let counter = counter.clone();
                    async move {
                        counter.fetch_add(1, Ordering::SeqCst);
                        "ok"
                    }
                }),
            );
        let collector = TlsServer::start(
            collector_router,
            &ca.issue(&["collector.ward.test"]).unwrap(),
        )
        .await
        .unwrap();
        let hosts = [
            (okta.host(), okta.addr()),
            ("echo.ward.test".to_string(), echo.addr()),
            ("collector.ward.test".to_string(), collector.addr()),
        ];
        let (runtime, store, dir) = runtime_against(&ca, &hosts).await;
        Harness {
            ca,
            okta,
            echo,
            collector,
            collector_hits: hits,
            runtime,
            store,
            dir,
        }
    }

    /// Loads the Okta connector.
    pub fn okta_plugin(&self) -> Arc<Plugin> {
        self.runtime.load(OKTA_WASM).unwrap()
    }

    /// Loads the hostile connector.
    pub fn hostile_plugin(&self) -> Arc<Plugin> {
        self.runtime.load(HOSTILE_WASM).unwrap()
    }

    /// Creates an instance row for `bound` and runs one audit sync through
    /// the daemon's ingestion into the store from time 0 (see
    /// [`credentials::ingest_audit`]).
    pub async fn ingest_audit(
        &self,
        bound: ward_runtime::Bound,
    ) -> (
        String,
        Result<ward_daemon::ingest::SyncStats, ward_daemon::ingest::IngestError>,
    ) {
        credentials::ingest_audit(&self.store, bound, 0).await
    }

    /// Follows an authorization URL at the Okta stand-in like the
    /// operator's browser (see [`credentials::consent`]).
    pub async fn okta_consent(&self, url: &str) -> std::collections::BTreeMap<String, String> {
        credentials::consent(&self.ca, &self.okta.host(), self.okta.addr(), url).await
    }

    /// Every byte SQLite holds for this harness (see
    /// [`credentials::stored_bytes`]).
    pub fn stored_bytes(&self) -> Vec<u8> {
        credentials::stored_bytes(self.dir.path())
    }
}

/// A runtime loaded with one connector, reaching stand-ins under their real
/// names, and a fresh SQLite store: what a connector-level test needs.
pub struct Loaded {
    /// The runtime; keep it alive as long as the plugin.
    pub runtime: Runtime,
    /// A store in `dir`.
    pub store: Store,
    /// The connector.
    pub plugin: Arc<Plugin>,
    /// Store and compile cache.
    pub dir: TempDir,
}

/// Loads `wasm` into a runtime that resolves each (hostname, address) of
/// `hosts` to its stand-in and trusts `ca`.
pub async fn load_against(
    ca: &TestCa,
    hosts: &[(String, std::net::SocketAddr)],
    wasm: &[u8],
) -> Loaded {
    let (runtime, store, dir) = runtime_against(ca, hosts).await;
    let plugin = runtime.load(wasm).unwrap();
    Loaded {
        runtime,
        store,
        plugin,
        dir,
    }
}

/// A runtime that resolves each (hostname, address) of `hosts` to its
/// stand-in and trusts `ca`, with a fresh store and compile cache in a
/// temporary directory.
pub async fn runtime_against(
    ca: &TestCa,
    hosts: &[(String, std::net::SocketAddr)],
) -> (Runtime, Store, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(dir.path().join("cache")),
        egress: EgressConfig {
            resolve: hosts.iter().cloned().collect(),
            extra_roots_pem: vec![ca.ca_pem().to_string()],
            ..EgressConfig::default()
        },
        ..RuntimeConfig::default()
    })
    .unwrap();
    let store = Store::open_sqlite(&dir.path().join("ward.db"), MasterKey::generate())
        .await
        .unwrap();
    (runtime, store, dir)
}

/// The folder of a recorded scenario, `tests/fixtures/<connector>/<scenario>`
/// (layout in `tests/fixtures/README.md`).
pub fn fixtures_dir(connector: &str, scenario: &str) -> std::path::PathBuf {
    harness_fixtures(connector).join(scenario)
}

/// A connector's conformance fixture folder, `tests/fixtures/<connector>`
/// (its `harness.toml` lists the scenarios `ward plugin test` replays).
pub fn harness_fixtures(connector: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(connector)
}

/// A connector loaded against a replay stand-in serving one recorded
/// scenario as `host`.
pub async fn load_replay(
    connector: &str,
    scenario: &str,
    host: &str,
    wasm: &[u8],
) -> (ward_standins::replay::ReplayStandIn, Loaded) {
    let ca = TestCa::generate().unwrap();
    let replay =
        ward_standins::replay::ReplayStandIn::start(&fixtures_dir(connector, scenario), host, &ca)
            .await
            .unwrap();
    let loaded = load_against(&ca, &[(replay.host(), replay.addr())], wasm).await;
    (replay, loaded)
}
