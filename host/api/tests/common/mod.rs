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
        let path = written
            .generated()
            .expect("first start generates the secrets file");
        let secrets = ApiSecrets::load(path).unwrap();
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = ward_api::router(daemon.clone());
        tokio::spawn(ward_api::serve(listener, app, std::future::pending()));
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

    /// Writes `request` as is on a fresh TCP connection and reads one
    /// response: status, lower-cased headers, body. For requests an HTTP
    /// client library would refuse to send or would send differently.
    pub async fn raw(&self, request: &[u8]) -> (u16, Vec<(String, String)>, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.url.trim_start_matches("http://");
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        conn.write_all(request).await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        let (head_end, length) = loop {
            let n = conn.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed before a response head");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                break (end + 4, length);
            }
        };
        while buf.len() < head_end + length {
            let n = conn.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed inside the response body");
            buf.extend_from_slice(&chunk[..n]);
        }
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.lines();
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_owned()))
            .collect();
        let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).into_owned();
        (status, headers, body)
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
