//! A real daemon for API tests: SQLite in a temp dir, the runtime with the
//! bundled Okta connector, Okta stand-ins over HTTPS on loopback, and the
//! router served on 127.0.0.1:0.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tempfile::TempDir;
use ward_api::ApiSecrets;
use ward_daemon::{Config, Daemon, Registry};
use ward_runtime::{EgressConfig, Runtime, RuntimeConfig};
use ward_standins::okta::{OktaConfig, OktaStandIn};
use ward_standins::tls::TestCa;
use ward_store::{MasterKey, Store};

pub const TOKEN: &str = "00ward-demo-ssws-token";
pub const NOADMIN_TOKEN: &str = "00ward-noadmin-ssws-token";

pub struct Api {
    pub url: String,
    pub daemon: Daemon,
    pub secrets: ApiSecrets,
    pub okta: OktaStandIn,
    pub noadmin: OktaStandIn,
    pub http: reqwest::Client,
    pub dir: TempDir,
    _ca: TestCa,
}

impl Api {
    pub async fn start() -> Api {
        let ca = TestCa::generate().unwrap();
        let okta = OktaStandIn::start(
            OktaConfig {
                events: 50,
                users: 5,
                ..OktaConfig::default()
            },
            &ca,
        )
        .await
        .unwrap();
        let noadmin = OktaStandIn::start(
            OktaConfig {
                org: "ward-noadmin".into(),
                api_token: NOADMIN_TOKEN.into(),
                events: 10,
                users: 3,
                admin_role: None,
                ..OktaConfig::default()
            },
            &ca,
        )
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let runtime = Runtime::new(RuntimeConfig {
            cache_dir: Some(dir.path().join("cache")),
            egress: EgressConfig {
                resolve: BTreeMap::from([
                    (okta.host(), okta.addr()),
                    (noadmin.host(), noadmin.addr()),
                ]),
                extra_roots_pem: vec![ca.ca_pem().to_string()],
                ..EgressConfig::default()
            },
            ..RuntimeConfig::default()
        })
        .unwrap();
        let store = Store::open_sqlite(&dir.path().join("ward.db"), MasterKey::generate())
            .await
            .unwrap();
        let registry = Registry::bundled(&runtime).unwrap();
        let config = Config {
            data_dir: dir.path().join("data"),
            ..Config::default()
        };
        let daemon = Daemon::assemble(store, runtime, Arc::new(registry), config);
        let written = ward_api::ensure_api_secrets(&daemon).await.unwrap();
        let path = written.expect("first start generates the secrets file");
        let secrets = ApiSecrets::load(&path).unwrap();
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = ward_api::router(daemon.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Api {
            url,
            daemon,
            secrets,
            okta,
            noadmin,
            http: reqwest::Client::new(),
            dir,
            _ca: ca,
        }
    }

    pub fn admin(&self) -> String {
        self.secrets.header()
    }

    /// Sends a request with an optional Authorization header and JSON body;
    /// returns the status and the parsed JSON body (Null when empty).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(method, format!("{}{}", self.url, path));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let json = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
        };
        (status, json)
    }

    pub async fn admin_call(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let auth = self.admin();
        self.call(method, path, Some(&auth), body).await
    }

    pub async fn create_okta(&self, domain: &str, token: &str) -> (u16, serde_json::Value) {
        self.admin_call(
            "POST",
            "/instances",
            Some(serde_json::json!({
                "element": {"key": "okta"},
                "providerData": {"apiToken": token},
                "configuration": {"domain": domain},
                "tags": ["prod", "idp"],
                "name": format!("Okta {domain}"),
            })),
        )
        .await
    }
}
