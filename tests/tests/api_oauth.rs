//! The whole OAuth flow through Ward's REST API, as a browser and an
//! operator drive it, against the Okta stand-in's authorization server:
//! auth URL → consent → callback with code and state → `POST /instances`
//! → test → backfill → events query. Also the declined flow, forged and
//! replayed states.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use ward_standins::okta::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, OktaConfig, OktaStandIn};
use ward_standins::tls::TestCa;
use ward_tests::api::{ApiHarness, query_param};

const EVENTS: usize = 12_000;

struct Api {
    h: ApiHarness,
    okta: OktaStandIn,
}

impl std::ops::Deref for Api {
    type Target = ApiHarness;
    fn deref(&self) -> &ApiHarness {
        &self.h
    }
}

impl Api {
    async fn start() -> Api {
        let ca = TestCa::generate().unwrap();
        let okta = OktaStandIn::start(
            OktaConfig {
                events: EVENTS,
                users: 40,
                ..OktaConfig::default()
            },
            &ca,
        )
        .await
        .unwrap();
        let h = ApiHarness::start(ca, vec![(okta.host(), okta.addr())], |_| {}).await;
        Api { h, okta }
    }

    fn callback(&self) -> String {
        self.h.callback_url()
    }

    async fn post_instance(&self, body: &Value) -> (StatusCode, Value) {
        self.h.send(Method::POST, "/instances", Some(body)).await
    }

    /// Asks Ward for the consent URL, then plays the browser: opens it at
    /// the provider and returns where the provider redirects back to.
    async fn consent(&self) -> url::Url {
        self.h
            .consent(
                "okta",
                DEFAULT_CLIENT_ID,
                DEFAULT_CLIENT_SECRET,
                &[("domain", "ward-demo")],
            )
            .await
    }
}

fn param(url: &url::Url, name: &str) -> Option<String> {
    query_param(url, name)
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
    api.wait_instance(&id, Duration::from_secs(60), |i| {
        i["status"]["eventsStored"].as_u64() >= Some(EVENTS as u64)
    })
    .await;
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
                e["eventId"]
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
    let expected: HashSet<String> = api.okta.event_ids().into_iter().collect();
    assert_eq!(unique, expected);

    // Every call went with the Bearer token the host obtained; none with SSWS.
    assert!(
        api.okta
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
    api.okta.set_oauth_decline(true);
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

/// An access token that dies before its stored expiry (a backfill outliving
/// its hour, an early revocation by the provider) is refreshed once by the
/// host and ingestion carries on: nothing lost, nothing twice, no Error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_token_rejected_mid_sync_is_refreshed_and_nothing_is_lost() {
    let api = Api::start().await;
    let (status, created) = api
        .h
        .connect_oauth(
            "okta",
            DEFAULT_CLIENT_ID,
            DEFAULT_CLIENT_SECRET,
            &[("domain", "ward-demo")],
            "Okta via OAuth",
        )
        .await;
    assert!(status.is_success(), "{status} {created}");
    let id = created["id"].as_str().unwrap().to_string();
    // Mid-backfill: the first pages are in, the token the worker holds
    // (stored expiry: an hour from now) stops working.
    api.wait_instance(&id, Duration::from_secs(30), |i| {
        i["status"]["eventsStored"].as_u64() >= Some(1_000)
    })
    .await;
    api.okta.expire_oauth_access_tokens();
    api.okta.append_events(40);
    let done = api
        .wait_instance(&id, Duration::from_secs(30), |i| {
            i["status"]["eventsStored"].as_u64() >= Some(EVENTS as u64 + 40)
        })
        .await;
    assert_eq!(done["status"]["state"], "connected", "{done}");
    assert!(api.okta.oauth_refreshes() >= 1, "the host never refreshed");
    assert!(
        api.okta
            .requests()
            .iter()
            .any(|r| r.path_and_query.starts_with("/api/v1/logs") && r.status == 401),
        "the stand-in never rejected the old token"
    );
    let ids = api.h.event_ids(&id).await;
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "an event was stored twice");
    let expected = api.okta.event_ids();
    assert_eq!(unique, expected.iter().collect::<HashSet<_>>());
}
