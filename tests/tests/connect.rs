//! Connecting while the provider is throttling or unreachable, through
//! Ward's REST API: a rate limit or an outage during `POST /instances`
//! never strands the new instance. It is created `connecting` with a
//! message saying the connection test runs again by itself; its worker
//! waits what the provider asked, runs the test again (paced and retried
//! like any call), then backfills: the same as a worker does mid-sync. A
//! grant the provider cannot be reached to exchange creates nothing and the
//! answer says to try again.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use ward_standins::egnyte::{EgnyteConfig, EgnyteStandIn};
use ward_standins::okta::{OktaConfig, OktaStandIn};
use ward_standins::server::RecordedRequest;
use ward_standins::tls::TestCa;
use ward_standins::{ZendeskConfig, ZendeskStandIn};
use ward_tests::api::ApiHarness;

/// `POST /instances` answered while the provider throttled its first call:
/// created, not valid, `connecting`, no checks, and a message that says the
/// test runs again by itself (not an error, nothing to do). Returns the id.
fn assert_deferred((status, created): &(StatusCode, Value), provider_words: &str) -> String {
    assert_eq!(*status, StatusCode::CREATED, "{created}");
    assert_eq!(created["valid"], false, "{created}");
    assert_eq!(created["status"]["state"], "connecting", "{created}");
    assert_eq!(created["checks"], serde_json::json!([]), "{created}");
    let message = created["status"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("runs again by itself") && message.contains("nothing to do"),
        "{created}"
    );
    let test_error = created["testError"].as_str().unwrap_or_default();
    assert!(test_error.contains(provider_words), "{created}");
    created["id"].as_str().unwrap().to_owned()
}

/// Waits until the worker has run the test again and backfilled; then the
/// stored events are exactly the stand-in's and the instance is connected
/// without a message.
async fn assert_connected_with(h: &ApiHarness, id: &str, expected: &[String]) {
    h.wait_instance(id, Duration::from_secs(60), |i| {
        i["status"]["state"] == "connected"
            && i["status"]["eventsStored"].as_u64() >= Some(expected.len() as u64)
    })
    .await;
    let stored: BTreeSet<String> = h.event_ids(id).await.into_iter().collect();
    assert_eq!(stored, expected.iter().cloned().collect::<BTreeSet<_>>());
    let (_, instance) = h.get(&format!("/instances/{id}")).await;
    assert_eq!(instance["status"]["state"], "connected", "{instance}");
    assert_eq!(instance["status"]["message"], Value::Null, "{instance}");
    assert_eq!(instance["valid"], true, "{instance}");
    let (_, report) = h.test_now(id).await;
    assert_eq!(report["ok"], true, "{report}");
}

/// The throttled answer the stand-in gave, then that the test ran again and
/// passed before any audit call.
fn assert_throttled_once_then_retested(requests: &[RecordedRequest], status: u16, test_path: &str) {
    let api: Vec<&RecordedRequest> = requests
        .iter()
        .filter(|r| !r.path_and_query.contains("oauth") && !r.path_and_query.contains("puboauth"))
        .collect();
    assert_eq!(api[0].status, status, "{:?}", api[0]);
    assert!(api[0].path_and_query.starts_with(test_path), "{:?}", api[0]);
    assert_eq!(api.iter().filter(|r| r.status == status).count(), 1);
    assert!(api[1].path_and_query.starts_with(test_path), "{:?}", api[1]);
    assert_eq!(api[1].status, 200, "{:?}", api[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okta_rate_limit_during_connect_is_waited_out_and_the_backfill_starts() {
    let ca = TestCa::generate().unwrap();
    let okta = OktaStandIn::start(
        OktaConfig {
            events: 300,
            ..OktaConfig::default()
        },
        &ca,
    )
    .await
    .unwrap();
    let h = ApiHarness::start(ca, vec![(okta.host(), okta.addr())], |_| {}).await;
    // 429 E0000047 with X-Rate-Limit-Reset 3 s ahead, on the first call only.
    okta.rate_limit_next(1, 3);
    let created = h
        .connect_token(
            "okta",
            &OktaConfig::default().api_token,
            &[("domain", "ward-demo")],
            "Okta",
        )
        .await;
    let id = assert_deferred(&created, "E0000047");
    assert!(h.daemon.scheduler.is_running(&id));

    assert_connected_with(&h, &id, &okta.event_ids()).await;
    assert_throttled_once_then_retested(&okta.requests(), 429, "/api/v1/users/me");
    okta.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zendesk_rate_limit_during_connect_is_waited_out_and_the_backfill_starts() {
    let ca = TestCa::generate().unwrap();
    let zd = ZendeskStandIn::start(
        ZendeskConfig {
            events: 300,
            ..ZendeskConfig::default()
        },
        &ca,
    )
    .await
    .unwrap();
    let h = ApiHarness::start(ca, vec![(zd.host(), zd.addr())], |_| {}).await;
    // 429 with only `Retry-After: 3`, on the first call only.
    zd.rate_limit_next(1, 3);
    let (email, token) = zd.api_token();
    let created = h
        .connect_token(
            "zendesk",
            &token,
            &[("subdomain", "ward-demo"), ("email", &email)],
            "Zendesk",
        )
        .await;
    let id = assert_deferred(
        &created,
        "Zendesk rate limit reached while reading the current user (",
    );
    let test_error = created.1["testError"].as_str().unwrap();
    assert!(
        test_error.contains("retry after 3 s") && !test_error.contains("(;"),
        "{test_error}"
    );

    assert_connected_with(&h, &id, &zd.event_ids()).await;
    assert_throttled_once_then_retested(&zd.requests(), 429, "/api/v2/users/me");
    zd.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egnyte_over_qps_during_connect_is_waited_out_and_the_backfill_starts() {
    let ca = TestCa::generate().unwrap();
    let eg = EgnyteStandIn::start(
        EgnyteConfig {
            events: 300,
            ..EgnyteConfig::default()
        },
        &ca,
    )
    .await
    .unwrap();
    let h = ApiHarness::start(ca, vec![(eg.host(), eg.addr())], |_| {}).await;
    // 403 ERR_403_DEVELOPER_OVER_QPS with `Retry-After: 2` on the first API
    // call (the token exchange is not throttled).
    eg.throttle_qps_next(1, 2);
    let (client_id, secret) = eg.oauth_client();
    let created = h
        .connect_oauth(
            "egnyte",
            &client_id,
            &secret,
            &[("domain", "ward-demo")],
            "Egnyte",
        )
        .await;
    let id = assert_deferred(&created, "over the per-second limit");

    assert_connected_with(&h, &id, &eg.event_ids()).await;
    assert_throttled_once_then_retested(&eg.requests(), 403, "/pubapi/v1/userinfo");
    eg.shutdown().await;
}

/// A loopback address nothing listens on: connections are refused.
fn unreachable_addr() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_created_while_the_provider_is_unreachable_retries_by_itself_and_after_a_restart()
 {
    let ca = TestCa::generate().unwrap();
    let okta = OktaStandIn::start(
        OktaConfig {
            events: 200,
            ..OktaConfig::default()
        },
        &ca,
    )
    .await
    .unwrap();
    let mut h = ApiHarness::start(ca, vec![(okta.host(), unreachable_addr())], |_| {}).await;
    let (status, created) = h
        .connect_token(
            "okta",
            &OktaConfig::default().api_token,
            &[("domain", "ward-demo")],
            "Okta",
        )
        .await;
    // Kept, connecting, saying it retries by itself; never error/halted.
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["valid"], false, "{created}");
    assert_eq!(created["status"]["state"], "connecting", "{created}");
    let message = created["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("provider unavailable while testing the connection")
            && message.contains("runs again by itself"),
        "{created}"
    );
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(h.daemon.scheduler.is_running(&id));
    assert!(!h.daemon.store.is_halted(&id).await.unwrap());

    // The worker keeps testing (its retries are in the egress log, refused
    // at connect) and stays connecting with nothing stored.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, egress) = h.get(&format!("/instances/{id}/egress?limit=1000")).await;
        let tests = egress["egress"]
            .as_array()
            .map_or(0, |a| a.iter().filter(|e| e["call"] == "test").count());
        if tests >= 3 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{egress}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, instance) = h.get(&format!("/instances/{id}")).await;
    assert_eq!(instance["status"]["state"], "connecting", "{instance}");
    assert_eq!(instance["status"]["eventsStored"], 0, "{instance}");
    assert!(okta.requests().is_empty());

    // The operator restarts the daemon once the network path is back: the
    // instance is resumed, tests again, connects and backfills.
    let resumed = h.restart(vec![(okta.host(), okta.addr())], |_| {}).await;
    assert_eq!(resumed, 1);
    assert_connected_with(&h, &id, &okta.event_ids()).await;
    okta.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oauth_exchange_with_an_unreachable_provider_creates_nothing_and_says_try_again() {
    let ca = TestCa::generate().unwrap();
    let eg = EgnyteStandIn::start(EgnyteConfig::default(), &ca)
        .await
        .unwrap();
    let h = ApiHarness::start(ca, vec![(eg.host(), unreachable_addr())], |_| {}).await;
    // The browser reaches Egnyte (consent); Ward cannot (exchange).
    let browser_ok = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(h.ca.ca_pem().as_bytes()).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .resolve(&eg.host(), eg.addr())
        .build()
        .unwrap();
    let (client_id, secret) = eg.oauth_client();
    let h = ApiHarness {
        browser: browser_ok,
        ..h
    };
    let (status, body) = h
        .connect_oauth(
            "egnyte",
            &client_id,
            &secret,
            &[("domain", "ward-demo")],
            "Egnyte",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(body.to_string().contains("try again"), "{body}");
    assert_eq!(h.get("/instances").await.1, serde_json::json!([]));
    assert_eq!(eg.oauth_tokens_issued(), 0);
    eg.shutdown().await;
}
