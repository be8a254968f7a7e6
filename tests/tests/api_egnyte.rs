//! The Egnyte connector end to end through Ward's REST API, as an operator
//! and their browser drive it: consent at the stand-in's
//! `/puboauth/token`, the callback, `POST /instances`, Test now, the 7-day
//! backfill, an incremental poll and the users listing; then every
//! prerequisite failure, each ending as a failed check or an Error status
//! that says what to do, with nothing stored half.
//!
//! The stand-in reports Egnyte's audit limits (10/min, 100/hour) in its
//! headers but does not enforce them here; the daemon still paces every
//! call with the connector's manifest budget of 10 requests a minute, which
//! Ward's pages of 5 000 events keep to a handful of calls.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::Value;
use ward_standins::egnyte::{CallerRole, EgnyteConfig, EgnyteStandIn};
use ward_standins::tls::TestCa;
use ward_tests::api::{ApiHarness, query_param};

const DOMAIN: &[(&str, &str)] = &[("domain", "ward-demo")];

struct Api {
    h: ApiHarness,
    eg: EgnyteStandIn,
}

impl std::ops::Deref for Api {
    type Target = ApiHarness;
    fn deref(&self) -> &ApiHarness {
        &self.h
    }
}

impl Api {
    async fn start(cfg: EgnyteConfig) -> Api {
        let ca = TestCa::generate().unwrap();
        let eg = EgnyteStandIn::start(cfg, &ca).await.unwrap();
        let h = ApiHarness::start(ca, vec![(eg.host(), eg.addr())], |_| {}).await;
        Api { h, eg }
    }

    async fn connect(&self, name: &str) -> (StatusCode, Value) {
        let (client_id, secret) = self.eg.oauth_client();
        self.h
            .connect_oauth("egnyte", &client_id, &secret, DOMAIN, name)
            .await
    }

    async fn events_stored(&self, id: &str) -> u64 {
        let (_, instance) = self.get(&format!("/instances/{id}")).await;
        instance["status"]["eventsStored"].as_u64().unwrap()
    }
}

fn failed_check<'a>(body: &'a Value, name: &str) -> &'a str {
    let check = body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {body}"));
    assert_eq!(check["ok"], false, "{body}");
    check["message"].as_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egnyte_oauth_backfill_poll_and_users_through_the_api() {
    let started = Instant::now();
    let api = Api::start(EgnyteConfig {
        events: 10_500,
        users: 150,
        page_size: 5_000,
        ..EgnyteConfig::default()
    })
    .await;
    let (client_id, secret) = api.eg.oauth_client();

    // The consent URL is Egnyte's own /puboauth/token, without the secret.
    let back = api.consent("egnyte", &client_id, &secret, DOMAIN).await;
    assert!(query_param(&back, "code").is_some(), "{back}");
    assert_eq!(api.eg.oauth_codes_issued(), 1);

    let (status, created) = api.connect("Egnyte via OAuth").await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["valid"], true, "{created}");
    assert_eq!(created["element"]["key"], "egnyte");
    assert_eq!(created["configuration"]["domain"], "ward-demo");
    assert_eq!(created["configuration"]["client_id"], client_id.as_str());
    assert_eq!(created["accountName"], "ward-demo.egnyte.com", "{created}");
    assert!(
        !created.to_string().contains(&secret),
        "secret leaked: {created}"
    );
    let id = created["id"].as_str().unwrap().to_string();

    // Test now: all four prerequisites pass.
    let (status, report) = api.test_now(&id).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["ok"], true, "{report}");
    let names: HashSet<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        HashSet::from([
            "credentials-valid",
            "admin-role",
            "plan-includes-audit",
            "scope-present"
        ])
    );

    // The 7-day backfill lands exactly once.
    api.wait_instance(&id, Duration::from_secs(90), |i| {
        i["status"]["eventsStored"] == 10_500 && i["status"]["state"] == "connected"
    })
    .await;
    let stored = api.event_ids(&id).await;
    let unique: HashSet<String> = stored.iter().cloned().collect();
    assert_eq!(unique.len(), stored.len(), "an event was stored twice");
    let expected: HashSet<String> = api.eg.event_ids().into_iter().collect();
    assert_eq!(unique, expected);

    // Users listed: every user of the domain, admins marked.
    let deadline = Instant::now() + Duration::from_secs(60);
    let users = loop {
        let users = api.users(&id).await;
        if users.len() >= 150 || Instant::now() > deadline {
            break users;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let user_ids: HashSet<String> = users
        .iter()
        .map(|u| {
            u["userId"]
                .as_str()
                .or(u["userId"].as_str())
                .or(u["id"].as_str())
                .unwrap()
                .to_string()
        })
        .collect();
    let expected_users: HashSet<String> = api.eg.user_ids().into_iter().collect();
    assert_eq!(user_ids, expected_users);

    // New events at Egnyte arrive with the next poll, exactly once.
    api.eg.append_events(250);
    api.wait_instance(&id, Duration::from_secs(60), |i| {
        i["status"]["eventsStored"] == 10_750
    })
    .await;
    let stored = api.event_ids(&id).await;
    let unique: HashSet<String> = stored.iter().cloned().collect();
    assert_eq!(unique.len(), stored.len(), "an event was stored twice");
    let expected: HashSet<String> = api.eg.event_ids().into_iter().collect();
    assert_eq!(unique, expected);

    // A handful of stream calls did it all: 5 000 events per page.
    let stream_calls = api
        .eg
        .requests()
        .iter()
        .filter(|r| r.path_and_query.starts_with("/pubapi/v2/audit/stream"))
        .count();
    assert!(stream_calls >= 4, "{stream_calls}");
    assert!(
        api.eg
            .requests()
            .iter()
            .filter(|r| r.path_and_query.starts_with("/pubapi/"))
            .all(|r| r.auth_scheme.as_deref() == Some("Bearer"))
    );
    eprintln!(
        "Egnyte end to end: 10 750 events, 150 users, {stream_calls} stream calls, {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egnyte_prerequisite_failures_through_the_api() {
    let api = Api::start(EgnyteConfig {
        events: 300,
        users: 10,
        ..EgnyteConfig::default()
    })
    .await;

    // Declined consent: nothing is created, the operator is told why.
    api.eg.set_oauth_decline(true);
    let (client_id, secret) = api.eg.oauth_client();
    let back = api.consent("egnyte", &client_id, &secret, DOMAIN).await;
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("access_denied")
    );
    let cb = api.browser.get(back.as_str()).send().await.unwrap();
    assert_eq!(cb.status(), StatusCode::BAD_REQUEST);
    let message = cb.json::<Value>().await.unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("nothing was created"), "{message}");
    api.eg.set_oauth_decline(false);

    // Each failing prerequisite: a failed check naming the fix, an Error
    // status, no worker, nothing stored.
    let mut failing = Vec::new();

    api.eg.set_caller_role(CallerRole::StandardUser);
    let (status, body) = api.connect("standard user").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let m = failed_check(&body, "admin-role");
    assert!(
        m.contains("standard user") && m.contains("reconnect"),
        "{m}"
    );
    failing.push((body, "admin-role"));

    api.eg.set_caller_role(CallerRole::PowerUser {
        can_run_reports: false,
    });
    let (_, body) = api.connect("power user without reports").await;
    let m = failed_check(&body, "admin-role");
    assert!(m.contains("allow this power user to run reports"), "{m}");
    failing.push((body, "admin-role"));

    api.eg.set_caller_role(CallerRole::Admin);
    api.eg.set_audit_reporting(false);
    let (_, body) = api.connect("plan without audit").await;
    let m = failed_check(&body, "plan-includes-audit");
    assert!(m.contains("add audit reporting to the plan"), "{m}");
    let no_plan = body["id"].as_str().unwrap().to_string();
    failing.push((body, "plan-includes-audit"));
    api.eg.set_audit_reporting(true);

    api.eg
        .set_oauth_granted_scopes(Some(vec!["Egnyte.user".to_string()]));
    let (_, body) = api.connect("missing scope").await;
    let m = failed_check(&body, "scope-present");
    assert!(m.contains("Egnyte.audit") && m.contains("reconnect"), "{m}");
    failing.push((body, "scope-present"));
    api.eg.set_oauth_granted_scopes(None);

    // Give a wrongly started worker time to show itself.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (body, check) in &failing {
        let id = body["id"].as_str().unwrap();
        assert_eq!(body["valid"], false, "{body}");
        let (_, instance) = api.get(&format!("/instances/{id}")).await;
        assert_eq!(instance["status"]["state"], "error", "{instance}");
        let message = instance["status"]["message"].as_str().unwrap();
        assert!(message.contains(check), "{message}");
        assert_eq!(instance["status"]["eventsStored"], 0, "{instance}");
        assert!(api.users(id).await.is_empty());
    }

    // The operator fixes the plan and presses Test now: it passes and the
    // instance starts reading.
    let (_, report) = api.test_now(&no_plan).await;
    assert_eq!(report["ok"], true, "{report}");
    api.wait_instance(&no_plan, Duration::from_secs(60), |i| {
        i["status"]["eventsStored"] == 300 && i["status"]["state"] == "connected"
    })
    .await;

    // Revoked token (the user changed their password): the next poll
    // fails with "reconnect"; what was stored stays, nothing half.
    api.eg.revoke_tokens();
    let instance = api
        .wait_instance(&no_plan, Duration::from_secs(30), |i| {
            i["status"]["state"] == "error"
        })
        .await;
    let message = instance["status"]["message"].as_str().unwrap();
    assert!(message.contains("reconnect"), "{message}");
    assert_eq!(api.events_stored(&no_plan).await, 300);
    let (status, report) = api.test_now(&no_plan).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["ok"], false, "{report}");
    let error = report["error"].as_str().unwrap();
    assert!(error.contains("reconnect"), "{error}");

    // The daemon is fine throughout.
    let (status, _) = api.send(Method::GET, "/healthz", None).await;
    assert_eq!(status, StatusCode::OK);
}
