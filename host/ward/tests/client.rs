//! `ward instances …` and `ward events` against a real API server over the
//! Okta stand-in: the client reads its secrets from the environment.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use ward::client::{Client, ProviderArgs};
use ward_daemon::{Config, Daemon, Registry};
use ward_runtime::{EgressConfig, Runtime, RuntimeConfig};
use ward_standins::okta::{OktaConfig, OktaStandIn};
use ward_standins::tls::TestCa;
use ward_store::{MasterKey, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_creates_tests_lists_and_deletes() {
    let ca = TestCa::generate().unwrap();
    let okta = OktaStandIn::start(OktaConfig::default(), &ca)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(dir.path().join("cache")),
        egress: EgressConfig {
            resolve: BTreeMap::from([(okta.host(), okta.addr())]),
            extra_roots_pem: vec![ca.ca_pem().to_string()],
            ..EgressConfig::default()
        },
        ..RuntimeConfig::default()
    })
    .unwrap();
    let store = Store::open_sqlite(&dir.path().join("ward.db"), MasterKey::generate())
        .await
        .unwrap();
    let data_dir = dir.path().join("data");
    let registry = Arc::new(Registry::bundled(&runtime).unwrap());
    let daemon = Daemon::assemble(
        store,
        runtime,
        registry,
        Config {
            data_dir: data_dir.clone(),
            ..Config::default()
        },
    );
    ward_api::ensure_api_secrets(&daemon).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = ward_api::router(daemon);
    tokio::spawn(ward_api::serve(listener, app, std::future::pending()));

    // Secrets from <data_dir>/api-secrets.toml (no WARD_* variables set).
    let client = Client::new(&url, &data_dir).unwrap();
    let created = client
        .create(
            "okta",
            Some("cli"),
            BTreeMap::from([("domain".to_string(), "ward-demo".to_string())]),
            vec!["t".into()],
            &ProviderArgs {
                api_token: Some(OktaConfig::default().api_token),
                ..ProviderArgs::default()
            },
        )
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    assert!(client.test(&id).await.unwrap());
    let list = client.list().await.unwrap();
    assert_eq!(list[0]["id"], id.as_str());
    client.events(&id, 10, false).await.unwrap();
    client
        .reconnect(
            &id,
            &ProviderArgs {
                api_token: Some(OktaConfig::default().api_token),
                ..ProviderArgs::default()
            },
        )
        .await
        .unwrap();
    client.delete(&id).await.unwrap();
    assert_eq!(client.list().await.unwrap(), serde_json::json!([]));
    let err = client.test(&id).await.unwrap_err().to_string();
    assert!(err.contains("404"), "{err}");

    // Wrong secrets: a clear 401, not a crash.
    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(
        bad.join("api-secrets.toml"),
        "user = \"x\"\norganization = \"y\"\n",
    )
    .unwrap();
    let err = Client::new(&url, &bad)
        .unwrap()
        .list()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("401"), "{err}");
}
