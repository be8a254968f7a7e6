//! Ward's REST API over a whole daemon, driven the way an operator and
//! their browser drive it, against any set of provider stand-ins.
//!
//! The daemon is configured as an operator would configure it for a
//! provider on a private network: resolve overrides from each stand-in's
//! real hostname to its loopback address, the stand-ins' CA as an extra
//! root, and exactly those addresses allowed past the private-range rule.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use ward_console::Console;
use ward_daemon::Daemon;
use ward_daemon::config::Config;
use ward_standins::tls::TestCa;

/// A daemon, its API on loopback, and the clients that talk to both.
pub struct ApiHarness {
    /// The CA that issued the stand-ins' certificates.
    pub ca: TestCa,
    /// The daemon behind the API.
    pub daemon: Daemon,
    /// The console served beside the API (for one-time sign-in links).
    pub console: Console,
    /// Its data directory.
    pub dir: TempDir,
    /// Base URL of Ward's API, `http://127.0.0.1:<port>`.
    pub url: String,
    /// `Authorization` value with the API's User and Organization secrets.
    pub auth: String,
    /// Client for Ward's API.
    pub http: reqwest::Client,
    /// The operator's browser: trusts the stand-in CA, reaches every
    /// stand-in under its real name, shows redirects instead of following.
    pub browser: reqwest::Client,
}

impl ApiHarness {
    /// Opens a daemon on a fresh data directory and serves its API.
    /// `hosts` are (real hostname, stand-in address) pairs; `tweak` may
    /// change the configuration before the daemon opens.
    pub async fn start(
        ca: TestCa,
        hosts: Vec<(String, SocketAddr)>,
        tweak: impl FnOnce(&mut Config),
    ) -> ApiHarness {
        let dir = tempfile::tempdir().unwrap();
        let (daemon, console, url, auth, browser) = serve(&ca, dir.path(), &hosts, tweak).await;
        ApiHarness {
            ca,
            daemon,
            console,
            dir,
            url,
            auth,
            http: reqwest::Client::new(),
            browser,
        }
    }

    /// Restarts the daemon the way an operator restarts `ward serve`: a
    /// graceful shutdown, then a new daemon on the same data directory (and
    /// API secrets) that resumes every instance neither disabled nor
    /// halted. `hosts` are where provider names resolve from now on.
    /// Returns how many instances were resumed.
    pub async fn restart(
        &mut self,
        hosts: Vec<(String, SocketAddr)>,
        tweak: impl FnOnce(&mut Config),
    ) -> usize {
        self.daemon.shutdown().await;
        let (daemon, console, url, auth, browser) =
            serve(&self.ca, self.dir.path(), &hosts, tweak).await;
        let resumed = daemon.scheduler.resume_all().await.unwrap();
        self.daemon = daemon;
        self.console = console;
        self.url = url;
        self.auth = auth;
        self.browser = browser;
        resumed
    }

    /// `GET path` with the API's credentials.
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(Method::GET, path, None).await
    }

    /// Any request with the API's credentials; the body is JSON when given.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        self.send_as(&self.auth, method, path, body).await
    }

    /// Any request with this `Authorization` value; the body is JSON when
    /// given.
    pub async fn send_as(
        &self,
        authorization: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .header("authorization", authorization);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `POST /instances` for an API-token element: its key, the token and
    /// the configuration.
    pub async fn create_with_token(
        &self,
        element: &str,
        token: &str,
        configuration: Value,
    ) -> (StatusCode, Value) {
        let body = json!({
            "element": {"key": element},
            "providerData": {"apiToken": token},
            "configuration": configuration,
        });
        self.send(Method::POST, "/instances", Some(&body)).await
    }

    /// Where providers send the browser back to.
    pub fn callback_url(&self) -> String {
        format!("{}/oauth/callback", self.url)
    }

    /// Asks Ward for the consent URL of `element`, then plays the browser:
    /// opens it at the provider and returns where the provider redirects.
    pub async fn consent(
        &self,
        element: &str,
        client_id: &str,
        client_secret: &str,
        config: &[(&str, &str)],
    ) -> url::Url {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("apiKey", client_id)
            .append_pair("apiSecret", client_secret)
            .append_pair("callbackUrl", &self.callback_url());
        for (k, v) in config {
            query.append_pair(k, v);
        }
        let (status, body) = self
            .get(&format!("/elements/{element}/oauth/url?{}", query.finish()))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["element"], element, "{body}");
        let oauth_url = body["oauthUrl"].as_str().unwrap();
        assert!(
            !oauth_url.contains(client_secret),
            "client secret in the consent URL: {oauth_url}"
        );
        let consent = self.browser.get(oauth_url).send().await.unwrap();
        assert_eq!(
            consent.status(),
            StatusCode::FOUND,
            "consent at {oauth_url}"
        );
        let location = consent.headers()["location"].to_str().unwrap();
        assert!(location.starts_with(&self.callback_url()), "{location}");
        url::Url::parse(location).unwrap()
    }

    /// The whole code flow: consent, the browser at Ward's callback, then
    /// `POST /instances` with the code and state. Returns POST's answer.
    pub async fn connect_oauth(
        &self,
        element: &str,
        client_id: &str,
        client_secret: &str,
        config: &[(&str, &str)],
        name: &str,
    ) -> (StatusCode, Value) {
        let back = self
            .consent(element, client_id, client_secret, config)
            .await;
        let code = query_param(&back, "code");
        assert!(code.is_some(), "the provider returned no code: {back}");
        let code = code.unwrap();
        let state = query_param(&back, "state").unwrap();
        let callback = self.browser.get(back.as_str()).send().await.unwrap();
        assert_eq!(callback.status(), StatusCode::OK, "callback {back}");
        self.create_instance(element, json!({"code": code, "state": state}), config, name)
            .await
    }

    /// `POST /instances` with an operator-entered API token. Returns POST's
    /// answer.
    pub async fn connect_token(
        &self,
        element: &str,
        api_token: &str,
        config: &[(&str, &str)],
        name: &str,
    ) -> (StatusCode, Value) {
        self.create_instance(element, json!({"apiToken": api_token}), config, name)
            .await
    }

    /// `POST /instances` with the given `providerData`.
    pub async fn create_instance(
        &self,
        element: &str,
        provider_data: Value,
        config: &[(&str, &str)],
        name: &str,
    ) -> (StatusCode, Value) {
        let configuration = configuration(config);
        self.send(
            Method::POST,
            "/instances",
            Some(&json!({
                "element": {"key": element},
                "providerData": provider_data,
                "configuration": configuration,
                "name": name,
            })),
        )
        .await
    }

    /// Every instance id, through `GET /instances`.
    pub async fn instance_ids(&self) -> Vec<String> {
        let (status, list) = self.get("/instances").await;
        assert_eq!(status, StatusCode::OK, "{list}");
        list.as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The hosts of every request in the instance's egress log, and whether
    /// each was allowed.
    pub async fn egress_hosts(&self, id: &str) -> Vec<(String, bool)> {
        let (status, page) = self.get(&format!("/instances/{id}/egress")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        page["egress"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let url = url::Url::parse(r["url"].as_str().unwrap()).unwrap();
                (
                    url.host_str().unwrap_or_default().to_owned(),
                    r["allowed"].as_bool().unwrap(),
                )
            })
            .collect()
    }

    /// Test now.
    pub async fn test_now(&self, id: &str) -> (StatusCode, Value) {
        self.send(Method::POST, &format!("/instances/{id}/test"), None)
            .await
    }

    /// Polls `GET /instances/{id}` until `done` holds; panics with the last
    /// answer after `limit`.
    pub async fn wait_instance(
        &self,
        id: &str,
        limit: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let (status, instance) = self.get(&format!("/instances/{id}")).await;
            assert_eq!(status, StatusCode::OK, "{instance}");
            if done(&instance) {
                return instance;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "gave up waiting after {limit:?}; instance {instance}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every stored event id, oldest first, through the paged events query.
    pub async fn event_ids(&self, id: &str) -> Vec<String> {
        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/instances/{id}/events?limit=1000&order=oldest");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let (status, page) = self.get(&path).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            let events = page["events"].as_array().unwrap();
            if events.is_empty() {
                return ids;
            }
            ids.extend(
                events
                    .iter()
                    .map(|e| e["eventId"].as_str().unwrap().to_owned()),
            );
            match page["nextCursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return ids,
            }
        }
    }

    /// Every stored user, through the paged users query.
    pub async fn users(&self, id: &str) -> Vec<Value> {
        let mut users = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/instances/{id}/users?limit=1000");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let (status, page) = self.get(&path).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            users.extend(page["users"].as_array().unwrap().iter().cloned());
            match page["nextCursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return users,
            }
        }
    }
}

/// Opens a daemon on `dir` configured as the module documentation says,
/// serves its API on an ephemeral loopback port and builds the browser.
/// Returns the daemon, the API's URL, its `Authorization` value and the
/// browser.
async fn serve(
    ca: &TestCa,
    dir: &std::path::Path,
    hosts: &[(String, SocketAddr)],
    tweak: impl FnOnce(&mut Config),
) -> (Daemon, Console, String, String, reqwest::Client) {
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.ca_pem()).unwrap();
    let mut config = Config {
        data_dir: dir.to_path_buf(),
        ..Config::default()
    };
    config.api.listen = "127.0.0.1:0".parse().unwrap();
    config.egress.resolve = hosts.iter().cloned().collect::<BTreeMap<_, _>>();
    config.egress.ca_files = vec![ca_file];
    let mut allowed: Vec<String> = hosts
        .iter()
        .map(|(_, addr)| format!("{}/32", addr.ip()))
        .collect();
    allowed.dedup();
    config.egress.allow_private = allowed;
    config.scheduler.poll_interval_secs = 1;
    config.scheduler.backoff_base_ms = 100;
    config.scheduler.backoff_max_ms = 2_000;
    tweak(&mut config);
    let daemon = Daemon::open(config).await.unwrap();

    ward_api::ensure_api_secrets(&daemon).await.unwrap();
    let auth = ward_api::ApiSecrets::load(&dir.join("api-secrets.toml"))
        .unwrap()
        .header();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (app, console) = ward::serve::app(&daemon);
    tokio::spawn(ward_api::serve(listener, app, std::future::pending()));

    let mut browser = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.ca_pem().as_bytes()).unwrap())
        .redirect(reqwest::redirect::Policy::none());
    for (host, addr) in hosts {
        browser = browser.resolve(host, *addr);
    }
    (daemon, console, url, auth, browser.build().unwrap())
}

/// A query parameter of `url`.
pub fn query_param(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// A `configuration` object from (field, value) pairs.
fn configuration(config: &[(&str, &str)]) -> serde_json::Map<String, Value> {
    config
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
        .collect()
}
