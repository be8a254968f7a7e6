//! An SAP Open Connectors client, unchanged, against Ward: the Egnyte
//! instance guide's requests replayed verbatim (`subdomain`, the
//! `oauth.*` configuration keys, a callback URL the client owns, the
//! three-part `User …, Organization …, Element …` header), then the single-use
//! `state` across a failed exchange: a 502 at the token endpoint leaves it
//! usable, a rejected code uses it up.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use ward_standins::egnyte::{EgnyteConfig, EgnyteStandIn};
use ward_standins::tls::TestCa;
use ward_tests::api::{ApiHarness, query_param};

/// The client application's own OAuth callback (never Ward's).
const CLIENT_CALLBACK: &str = "https://client.example.com/oauth/cb";

struct Sap {
    h: ApiHarness,
    eg: EgnyteStandIn,
}

impl std::ops::Deref for Sap {
    type Target = ApiHarness;
    fn deref(&self) -> &ApiHarness {
        &self.h
    }
}

impl Sap {
    async fn start() -> Sap {
        let ca = TestCa::generate().unwrap();
        let eg = EgnyteStandIn::start(
            EgnyteConfig {
                domain: "acme".to_owned(),
                events: 400,
                users: 12,
                ..EgnyteConfig::default()
            },
            &ca,
        )
        .await
        .unwrap();
        let h = ApiHarness::start(ca, vec![(eg.host(), eg.addr())], |_| {}).await;
        Sap { h, eg }
    }

    /// Token requests the stand-in answered, with their statuses.
    fn token_requests(&self) -> Vec<u16> {
        self.eg
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path_and_query == "/puboauth/token")
            .map(|r| r.status)
            .collect()
    }

    /// Ward's consent through its own callback: returns (code, state) after
    /// the browser has been to `/oauth/callback`.
    async fn consent_through_ward(&self) -> (String, String) {
        let (client_id, secret) = self.eg.oauth_client();
        let back = self
            .consent("egnyte", &client_id, &secret, &[("domain", "acme")])
            .await;
        let callback = self.browser.get(back.as_str()).send().await.unwrap();
        assert_eq!(callback.status(), StatusCode::OK, "callback {back}");
        (
            query_param(&back, "code").unwrap(),
            query_param(&back, "state").unwrap(),
        )
    }

    /// The guide's consent with the SAP names for every setting: the
    /// provider redirects to the client's callback; returns (code, state).
    async fn consent_to_client(&self) -> (String, String) {
        let (api_key, api_secret) = self.eg.oauth_client();
        let path = format!(
            "/elements/egnyte/oauth/url?oauth.api.key={api_key}&oauth.api.secret={api_secret}\
             &oauth.callback.url={CLIENT_CALLBACK}&subdomain=acme"
        );
        let (status, body) = self.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let consent = self
            .browser
            .get(body["oauthUrl"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(consent.status(), StatusCode::FOUND);
        let back = url::Url::parse(consent.headers()["location"].to_str().unwrap()).unwrap();
        assert!(back.as_str().starts_with(CLIENT_CALLBACK), "{back}");
        (
            query_param(&back, "code").unwrap(),
            query_param(&back, "state").unwrap(),
        )
    }

    /// `POST /instances` with a code and the state Ward issued for it.
    async fn create_with_state(
        &self,
        code: &str,
        state: &str,
        configuration: Value,
    ) -> (StatusCode, Value) {
        self.send(
            Method::POST,
            "/instances",
            Some(&json!({
                "element": {"key": "egnyte"},
                "providerData": {"code": code, "state": state},
                "configuration": configuration,
            })),
        )
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sap_guide_requests_work_verbatim_with_a_client_owned_callback() {
    let sap = Sap::start().await;
    let (api_key, api_secret) = sap.eg.oauth_client();
    // The client registered its own redirect URI with Egnyte.
    sap.eg
        .set_oauth_redirect_uris(vec![CLIENT_CALLBACK.to_owned()]);

    // 1. GET /elements/egnyte/oauth/url with the guide's parameter names.
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("apiKey", &api_key)
        .append_pair("apiSecret", &api_secret)
        .append_pair("callbackUrl", CLIENT_CALLBACK)
        .append_pair("subdomain", "acme");
    let (status, body) = sap
        .get(&format!("/elements/egnyte/oauth/url?{}", query.finish()))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["element"], "egnyte");
    let oauth_url = body["oauthUrl"].as_str().unwrap();
    assert!(oauth_url.starts_with("https://acme.egnyte.com/puboauth/token?"));
    assert!(!oauth_url.contains(&api_secret), "{oauth_url}");

    // 2. The consent redirects the browser to the client's callback.
    let consent = sap.browser.get(oauth_url).send().await.unwrap();
    assert_eq!(consent.status(), StatusCode::FOUND);
    let location = consent.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(CLIENT_CALLBACK), "{location}");
    let back = url::Url::parse(&location).unwrap();
    let code = query_param(&back, "code").unwrap();
    assert!(query_param(&back, "state").is_some(), "{location}");
    assert!(sap.token_requests().is_empty());

    // 3. POST /instances with the guide's body: the code alone, the OAuth
    // client in `configuration`, `subdomain` for Egnyte's domain.
    let (status, created) = sap
        .send(
            Method::POST,
            "/instances",
            Some(&json!({
                "element": {"key": "egnyte"},
                "providerData": {"code": code},
                "configuration": {
                    "oauth.callback.url": CLIENT_CALLBACK,
                    "oauth.api.key": api_key,
                    "oauth.api.secret": api_secret,
                    "subdomain": "acme",
                },
                "tags": ["Docs"],
                "name": "API Instance",
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["name"], "API Instance");
    assert_eq!(created["tags"], json!(["Docs"]));
    assert_eq!(created["valid"], true, "{created}");
    assert_eq!(created["configuration"]["domain"], "acme");
    assert_eq!(created["configuration"]["client_id"], api_key.as_str());
    assert!(
        !created.to_string().contains(&api_secret),
        "secret leaked: {created}"
    );
    // Egnyte accepted the code for the client's redirect URI (the stand-in
    // refuses any other): one token request, answered 200.
    assert_eq!(sap.token_requests(), vec![200]);
    let id = created["id"].as_str().unwrap().to_owned();
    let token = created["token"].as_str().unwrap();

    // 4. The instance's events with the three-part header.
    let three_part = format!("{}, Element {token}", sap.auth);
    let expected = sap.eg.event_count();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let events = loop {
        let (status, page) = sap
            .send_as(
                &three_part,
                Method::GET,
                &format!("/instances/{id}/events?limit=1000"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let events = page["events"].as_array().unwrap().clone();
        if events.len() == expected {
            break events;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {expected} events after 60 s",
            events.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let ids: std::collections::HashSet<&str> = events
        .iter()
        .map(|e| e["eventId"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), expected, "every event once");

    // Same scope as `Element <token>`: its own instance's read routes only.
    let (status, _) = sap
        .send_as(&three_part, Method::GET, &format!("/instances/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    for (method, path) in [
        (Method::GET, "/instances".to_owned()),
        (Method::DELETE, format!("/instances/{id}")),
        (Method::GET, "/elements".to_owned()),
    ] {
        let (status, body) = sap.send_as(&three_part, method, &path, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
    }
    // All three parts must be right.
    let wrong_user = format!("User nope, Organization x, Element {token}");
    let (status, _) = sap
        .send_as(&wrong_user, Method::GET, &format!("/instances/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let wrong_token = format!("{}, Element not-the-token", sap.auth);
    let (status, _) = sap
        .send_as(&wrong_token, Method::GET, &format!("/instances/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_issued_for_the_client_callback_binds_the_configuration() {
    let sap = Sap::start().await;
    sap.eg
        .set_oauth_redirect_uris(vec![CLIENT_CALLBACK.to_owned()]);
    // Another tenant than the consent was given for: refused, nothing sent.
    let (code, state) = sap.consent_to_client().await;
    let (status, body) = sap
        .create_with_state(&code, &state, json!({"subdomain": "other"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(sap.token_requests().is_empty());

    // The state and code as the client's callback received them: the code
    // is exchanged for the redirect URI and client the URL was issued for.
    let (code, state) = sap.consent_to_client().await;
    let (status, created) = sap
        .create_with_state(&code, &state, json!({"subdomain": "acme"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(sap.token_requests(), vec![200]);
    // Replayed: the state is used up.
    let (status, _) = sap.create_with_state(&code, &state, json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, list) = sap.get("/instances").await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_502_at_the_token_endpoint_keeps_the_state_and_the_retry_succeeds() {
    let sap = Sap::start().await;
    let (code, state) = sap.consent_through_ward().await;

    sap.eg.fail_token_endpoint_next(1, 502);
    let (status, body) = sap
        .create_with_state(&code, &state, json!({"domain": "acme"}))
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("try again"),
        "{body}"
    );
    let (_, list) = sap.get("/instances").await;
    assert_eq!(list, json!([]), "nothing is created by a failed exchange");
    assert_eq!(sap.token_requests(), vec![502]);

    // The same code and state again: the state was kept, the exchange runs.
    let (status, created) = sap
        .create_with_state(&code, &state, json!({"domain": "acme"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["valid"], true, "{created}");
    assert_eq!(sap.token_requests(), vec![502, 200]);

    // Now it is used up: a replay never reaches the provider.
    let (status, _) = sap
        .create_with_state(&code, &state, json!({"domain": "acme"}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(sap.token_requests(), vec![502, 200]);
    let (_, list) = sap.get("/instances").await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_the_provider_rejects_uses_the_state_up() {
    let sap = Sap::start().await;
    let (code, state) = sap.consent_through_ward().await;

    // Egnyte's codes live 120 s: this one has expired (invalid_grant).
    sap.eg.advance_oauth_clock(Duration::from_secs(300));
    let (status, body) = sap
        .create_with_state(&code, &state, json!({"domain": "acme"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("rejected the authorization code"),
        "{body}"
    );
    assert_eq!(sap.token_requests(), vec![400]);

    // The verdict is final: the state is consumed, the provider not asked again.
    let (status, body) = sap
        .create_with_state(&code, &state, json!({"domain": "acme"}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(sap.token_requests(), vec![400]);
    let (_, list) = sap.get("/instances").await;
    assert_eq!(list, json!([]));
}
