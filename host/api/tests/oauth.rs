//! The OAuth `state` machinery: forged, replayed, expired and declined
//! states are refused, and nothing is created without a valid one.
//!
//! States are issued through the store (the bundled Okta connector
//! authenticates with an API token, so its `auth-url` refuses to build a
//! URL); everything after issuance goes through the API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use common::Api;
use serde_json::json;
use ward_api::sha256_hex;
use ward_store::OauthState;

async fn issue(api: &Api, state: &str, expires_in_ms: i64) {
    let now = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    api.daemon
        .store
        .create_oauth_state(&OauthState {
            state_sha256: sha256_hex(state),
            element_key: "okta".into(),
            config: BTreeMap::from([("domain".to_string(), "ward-demo".to_string())]),
            client_id: "client-1".into(),
            client_secret: Some("s3cret-client-secret".into()),
            callback_url: "https://ward.example/oauth/callback".into(),
            expires_ms: now + expires_in_ms,
            code_sha256: None,
        })
        .await
        .unwrap();
}

async fn create_with(api: &Api, code: &str, state: &str) -> (u16, serde_json::Value) {
    api.admin_call(
        "POST",
        "/instances",
        Some(json!({
            "element": {"key": "okta"},
            "providerData": {"code": code, "state": state},
            "name": "via oauth",
        })),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_states_are_single_use_and_unforgeable() {
    let api = Api::start().await;

    // Okta offers OAuth: the URL carries the client id and the state, never
    // the client secret.
    let (s, b) = api
        .admin_call(
            "GET",
            "/elements/okta/oauth/url?apiKey=client-1&apiSecret=shh-secret&callbackUrl=https://ward.example/cb&domain=ward-demo",
            None,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let url = b["oauthUrl"].as_str().unwrap();
    assert!(
        url.contains("client_id=client-1") && url.contains("state="),
        "{url}"
    );
    assert!(!url.contains("shh-secret"), "{url}");
    let (s, b) = api
        .admin_call("GET", "/elements/okta/oauth/url?domain=ward-demo", None)
        .await;
    assert_eq!(s, 400, "{b}");
    let (s, _) = api
        .admin_call(
            "GET",
            "/elements/okta/oauth/url?apiKey=c&callbackUrl=https://x/cb&domain=NOT_VALID!",
            None,
        )
        .await;
    assert_eq!(s, 422);

    // Missing or forged state: 401, pointing back at the start.
    let (s, b) = api
        .call("GET", "/oauth/callback?code=abc", None, None)
        .await;
    assert_eq!(s, 401, "{b}");
    assert!(b["message"].as_str().unwrap().contains("oauth/url"));
    let (s, _) = api
        .call("GET", "/oauth/callback?code=abc&state=forged", None, None)
        .await;
    assert_eq!(s, 401);
    let (s, _) = create_with(&api, "abc", "forged").await;
    assert_eq!(s, 401);

    // A valid state: the callback returns the code once; a replay is 401.
    issue(&api, "state-a", 600_000).await;
    let (s, b) = api
        .call(
            "GET",
            "/oauth/callback?code=code-a&state=state-a",
            None,
            None,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b,
        json!({"element": "okta", "code": "code-a", "state": "state-a"})
    );
    let (s, _) = api
        .call(
            "GET",
            "/oauth/callback?code=code-a&state=state-a",
            None,
            None,
        )
        .await;
    assert_eq!(s, 401, "replayed callback");
    // The wrong code with the right state burns the state.
    let (s, b) = create_with(&api, "other-code", "state-a").await;
    assert_eq!(s, 401, "{b}");
    let (s, _) = create_with(&api, "code-a", "state-a").await;
    assert_eq!(s, 401, "a state is used once, even after a failed attempt");

    // The right code: the state is consumed and the exchange runs (the
    // token-only Okta connector refuses an OAuth code: 422). A replay is 401.
    issue(&api, "state-b", 600_000).await;
    let (s, _) = api
        .call(
            "GET",
            "/oauth/callback?code=code-b&state=state-b",
            None,
            None,
        )
        .await;
    assert_eq!(s, 200);
    let (s, b) = create_with(&api, "code-b", "state-b").await;
    assert_eq!(s, 422, "{b}");
    assert!(!b.to_string().contains("s3cret-client-secret"));
    let (s, _) = create_with(&api, "code-b", "state-b").await;
    assert_eq!(s, 401, "replayed state");

    // A state for a code that never came back through the callback cannot
    // be used directly.
    issue(&api, "state-c", 600_000).await;
    let (s, _) = create_with(&api, "code-c", "state-c").await;
    assert_eq!(s, 401);

    // Expired.
    issue(&api, "state-d", -1000).await;
    let (s, _) = api
        .call(
            "GET",
            "/oauth/callback?code=code-d&state=state-d",
            None,
            None,
        )
        .await;
    assert_eq!(s, 401, "expired state");

    // Declined: a clear 400, the state consumed, nothing created.
    issue(&api, "state-e", 600_000).await;
    let (s, b) = api
        .call(
            "GET",
            "/oauth/callback?error=access_denied&error_description=The+user+said+no&state=state-e",
            None,
            None,
        )
        .await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(b["error"], "access_denied");
    let msg = b["message"].as_str().unwrap();
    assert!(msg.contains("declined access at Okta"), "{msg}");
    assert!(msg.contains("access_denied: The user said no"), "{msg}");
    assert!(msg.contains("nothing was created"), "{msg}");
    let (s, _) = api
        .call("GET", "/oauth/callback?code=late&state=state-e", None, None)
        .await;
    assert_eq!(s, 401);

    // A state issued for another element is refused for this one.
    issue(&api, "state-f", 600_000).await;
    let (s, _) = api
        .call(
            "GET",
            "/oauth/callback?code=code-f&state=state-f",
            None,
            None,
        )
        .await;
    assert_eq!(s, 200);
    let (s, b) = api
        .admin_call(
            "POST",
            "/instances",
            Some(json!({
                "element": {"key": "okta"},
                "providerData": {"code": "code-f", "state": "state-f"},
                "configuration": {"domain": "another-org"},
            })),
        )
        .await;
    assert_eq!(s, 409, "{b}");

    let (_, list) = api.admin_call("GET", "/instances", None).await;
    assert_eq!(list, json!([]), "no OAuth attempt created an instance");
}

/// `GET /oauth/states/{state}`: what `ward connect` polls. Operator only;
/// the code shows only between Ward's callback and its exchange.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_outcome_is_readable_by_the_operator_only() {
    let api = Api::start().await;
    issue(&api, "state-w", 600_000).await;
    let (s, b) = api.admin_call("GET", "/oauth/states/state-w", None).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b, json!({"element": "okta", "status": "waiting"}));
    let (s, b) = api.call("GET", "/oauth/states/state-w", None, None).await;
    assert_eq!(s, 401, "{b}");

    let (s, _) = api
        .call(
            "GET",
            "/oauth/callback?code=code-w&state=state-w",
            None,
            None,
        )
        .await;
    assert_eq!(s, 200);
    let (s, b) = api.admin_call("GET", "/oauth/states/state-w", None).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b,
        json!({"element": "okta", "status": "returned", "code": "code-w"})
    );
    // The exchange claims it (the token-only Okta connector then refuses
    // the code): used, and the code is no longer shown.
    let (s, _) = create_with(&api, "code-w", "state-w").await;
    assert_eq!(s, 422);
    let (_, b) = api.admin_call("GET", "/oauth/states/state-w", None).await;
    assert_eq!(b, json!({"element": "okta", "status": "used"}));

    issue(&api, "state-d", 600_000).await;
    api.call(
        "GET",
        "/oauth/callback?error=access_denied&state=state-d",
        None,
        None,
    )
    .await;
    let (_, b) = api.admin_call("GET", "/oauth/states/state-d", None).await;
    assert_eq!(b["status"], "declined", "{b}");
    issue(&api, "state-x", -1_000).await;
    let (_, b) = api.admin_call("GET", "/oauth/states/state-x", None).await;
    assert_eq!(b["status"], "expired", "{b}");
    let (s, b) = api.admin_call("GET", "/oauth/states/never", None).await;
    assert_eq!(s, 404, "{b}");
}
