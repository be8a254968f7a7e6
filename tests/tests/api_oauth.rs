//! The whole OAuth flow through Ward's REST API, as a browser and an
//! operator drive it, against the Okta stand-in's authorization server:
//! auth URL → consent → callback with code and state → `POST /instances`
//! → test → backfill → events query. Also the declined flow, forged and
//! replayed states.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use ward_standins::okta::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, OktaConfig};
use ward_tests::daemon::DaemonHarness;

const EVENTS: usize = 12_000;

struct Api {
    h: DaemonHarness,
    url: String,
    auth: String,
    /// Ward's API (plain HTTP on loopback).
    http: reqwest::Client,
    /// The operator's browser: trusts the stand-in CA, reaches the provider
    /// under its real name, and shows redirects instead of following them.
    browser: reqwest::Client,
}

impl Api {
    async fn start() -> Api {
        let h = DaemonHarness::start(
            OktaConfig {
                events: EVENTS,
                users: 40,
                ..OktaConfig::default()
            },
            |_| {},
        )
        .await;
        let secrets_file = ward_api::ensure_api_secrets(&h.daemon)
            .await
            .unwrap()
            .unwrap();
        let auth = ward_api::ApiSecrets::load(&secrets_file).unwrap().header();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = ward_api::router(h.daemon.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let browser = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(h.ca.ca_pem().as_bytes()).unwrap())
            .resolve(&h.okta.host(), h.okta.addr())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Api {
            h,
            url,
            auth,
            http: reqwest::Client::new(),
            browser,
        }
    }

    fn callback(&self) -> String {
        format!("{}/oauth/callback", self.url)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .header("authorization", &self.auth)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn post_instance(&self, body: &Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(format!("{}/instances", self.url))
            .header("authorization", &self.auth)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Asks Ward for the consent URL, then plays the browser: opens it at
    /// the provider and returns where the provider redirects back to.
    async fn consent(&self) -> url::Url {
        let (status, body) = self
            .get(&format!(
                "/elements/okta/oauth/url?apiKey={DEFAULT_CLIENT_ID}&apiSecret={DEFAULT_CLIENT_SECRET}&callbackUrl={}&domain=ward-demo",
                urlencode(&self.callback())
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["element"], "okta");
        let oauth_url = body["oauthUrl"].as_str().unwrap();
        assert!(
            oauth_url.starts_with("https://ward-demo.okta.com/oauth2/v1/authorize?"),
            "{oauth_url}"
        );
        assert!(
            !oauth_url.contains(DEFAULT_CLIENT_SECRET),
            "client secret in the consent URL"
        );
        let consent = self.browser.get(oauth_url).send().await.unwrap();
        assert_eq!(consent.status(), StatusCode::FOUND);
        let location = consent.headers()["location"].to_str().unwrap();
        assert!(location.starts_with(&self.callback()), "{location}");
        url::Url::parse(location).unwrap()
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn param(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_connect_test_backfill_and_query_through_the_api() {
    let api = Api::start().await;
    let back = api.consent().await;
    let state = param(&back, "state").unwrap();
    let code = param(&back, "code").unwrap();

    // The browser lands on Ward's callback: no API credentials, the state
    // is the credential.
    let cb = api.browser.get(back.as_str()).send().await.unwrap();
    assert_eq!(cb.status(), StatusCode::OK);
    let cb: Value = cb.json().await.unwrap();
    assert_eq!(cb["element"], "okta");
    assert_eq!(cb["code"], code.as_str());

    let body = json!({
        "element": {"key": "okta"},
        "providerData": {"code": code, "state": state},
        "configuration": {"domain": "ward-demo"},
        "tags": ["prod", "okta"],
        "name": "Okta via OAuth",
    });
    let (status, created) = api.post_instance(&body).await;
    assert!(status.is_success(), "{status} {created}");
    assert_eq!(created["valid"], true, "{created}");
    assert_eq!(created["name"], "Okta via OAuth");
    assert_eq!(created["element"]["key"], "okta");
    assert_eq!(created["tags"], json!(["prod", "okta"]));
    assert!(created["token"].as_str().is_some_and(|t| t.len() >= 32));
    assert_eq!(created["configuration"]["domain"], "ward-demo");
    let text = created.to_string();
    for secret in [DEFAULT_CLIENT_SECRET, code.as_str()] {
        assert!(!text.contains(secret), "response leaks a secret: {text}");
    }
    let id = created["id"].as_str().unwrap().to_string();

    // The same code and state a second time: refused, nothing created.
    let (status, replay) = api.post_instance(&body).await;
    assert!(
        status == StatusCode::UNAUTHORIZED || status == StatusCode::CONFLICT,
        "{status} {replay}"
    );
    let (_, list) = api.get("/instances").await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");

    // The scheduler backfills with the OAuth access token.
    api.h.wait_caught_up(&id, EVENTS as u64).await;
    let (status, instance) = api.get(&format!("/instances/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(instance["status"]["state"], "connected", "{instance}");

    // Test now, through the API.
    let r = api
        .http
        .post(format!("{}/instances/{id}/test", api.url))
        .header("authorization", &api.auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let report: Value = r.json().await.unwrap();
    let checks = report["checks"].as_array().unwrap();
    assert!(checks.iter().all(|c| c["ok"] == true), "{report}");
    assert!(
        checks.iter().any(|c| c["name"] == "scope-present"),
        "{report}"
    );

    // Every event, exactly once, through the events query.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/instances/{id}/events?limit=1000&order=oldest");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = api.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for e in page["events"].as_array().unwrap() {
            seen.push(
                e["event_id"]
                    .as_str()
                    .or(e["eventId"].as_str())
                    .unwrap()
                    .to_string(),
            );
        }
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "an event was returned twice");
    let expected: HashSet<String> = api.h.okta.event_ids().into_iter().collect();
    assert_eq!(unique, expected);

    // Every call went with the Bearer token the host obtained; none with SSWS.
    assert!(
        api.h
            .okta
            .requests()
            .iter()
            .filter(|r| r.path_and_query.starts_with("/api/v1/"))
            .all(|r| r.auth_scheme.as_deref() == Some("Bearer"))
    );
    // An Element token reads its own instance's events.
    let r = api
        .http
        .get(format!("{}/instances/{id}/events?limit=5", api.url))
        .header(
            "authorization",
            format!("Element {}", created["token"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declined_consent_creates_nothing_and_says_why() {
    let api = Api::start().await;
    api.h.okta.set_oauth_decline(true);
    let back = api.consent().await;
    assert_eq!(param(&back, "error").as_deref(), Some("access_denied"));
    assert!(param(&back, "code").is_none());
    let cb = api.browser.get(back.as_str()).send().await.unwrap();
    assert_eq!(cb.status(), StatusCode::BAD_REQUEST);
    let body: Value = cb.json().await.unwrap();
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("access_denied"), "{message}");
    assert!(message.contains("nothing was created"), "{message}");
    let (_, list) = api.get("/instances").await;
    assert_eq!(list, json!([]));

    // The declined state cannot be used afterwards either.
    let state = param(&back, "state").unwrap();
    let (status, _) = api
        .post_instance(&json!({
            "element": {"key": "okta"},
            "providerData": {"code": "anything", "state": state},
            "configuration": {"domain": "ward-demo"},
        }))
        .await;
    assert!(status == StatusCode::UNAUTHORIZED || status == StatusCode::CONFLICT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_replayed_states_are_rejected() {
    let api = Api::start().await;
    // A state Ward never issued.
    let forged = api
        .browser
        .get(format!(
            "{}?code=abc&state=forged-state-value",
            api.callback()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);

    // A real one, replayed at the callback after use.
    let back = api.consent().await;
    let first = api.browser.get(back.as_str()).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let again = api.browser.get(back.as_str()).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);

    // A real state with another code than the provider returned.
    let state = param(&back, "state").unwrap();
    let (status, body) = api
        .post_instance(&json!({
            "element": {"key": "okta"},
            "providerData": {"code": "not-the-code", "state": state},
            "configuration": {"domain": "ward-demo"},
        }))
        .await;
    assert!(
        status == StatusCode::UNAUTHORIZED || status == StatusCode::CONFLICT,
        "{status} {body}"
    );
    tokio::time::sleep(Duration::from_millis(10)).await;
    let (_, list) = api.get("/instances").await;
    assert_eq!(list, json!([]));
}
