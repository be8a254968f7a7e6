//! The Zendesk connector end to end: the real component built from
//! `plugins/zendesk`, the HTTPS stand-in under `ward-demo.zendesk.com`, a
//! real SQLite file; first at runtime level (connect, ingest, error
//! mapping, cursors), then through Ward's REST API with a whole daemon.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use ward_daemon::connect::{NewConnection, connect, create};
use ward_daemon::ingest::{Ingestor, Retry};
use ward_runtime::types::{Grant, OauthCode, PluginError, TestReport};
use ward_runtime::{Bound, CallError, Plugin, Runtime, SecretSet};
use ward_standins::tls::TestCa;
use ward_standins::zendesk::{Plan, RateHeaderStyle};
use ward_standins::{ZendeskConfig, ZendeskStandIn};
use ward_store::{EventOrder, EventQuery, InstanceStatus, Store};
use ward_tests::ZENDESK_WASM;
use ward_tests::api::ApiHarness;

const REDIRECT: &str = "https://ward.example/oauth/callback";

/// Runtime, store and stand-in for one runtime-level test.
struct Zd {
    zd: ZendeskStandIn,
    ca: TestCa,
    /// Kept alive for the plugin's engine.
    _runtime: Runtime,
    store: Store,
    plugin: Arc<Plugin>,
    _dir: TempDir,
}

async fn start(cfg: ZendeskConfig) -> Zd {
    let ca = TestCa::generate().unwrap();
    let zd = ZendeskStandIn::start(cfg, &ca).await.unwrap();
    let l = ward_tests::load_against(&ca, &[(zd.host(), zd.addr())], ZENDESK_WASM).await;
    Zd {
        zd,
        ca,
        _runtime: l.runtime,
        store: l.store,
        plugin: l.plugin,
        _dir: l.dir,
    }
}

fn config(zd: &ZendeskStandIn) -> BTreeMap<String, String> {
    let (email, _) = zd.api_token();
    BTreeMap::from([
        ("subdomain".to_string(), "ward-demo".to_string()),
        ("email".to_string(), email),
    ])
}

fn token(zd: &ZendeskStandIn) -> Grant {
    Grant::ApiToken(zd.api_token().1)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn seven_days_ago() -> i64 {
    now_ms() - 7 * 86_400_000
}

fn ingestor(h: &Zd, bound: Bound, instance_id: &str) -> Ingestor {
    Ingestor {
        store: h.store.clone(),
        bound,
        instance_id: instance_id.to_string(),
        fence: None,
        retry: Retry {
            base: Duration::from_millis(50),
            ..Retry::default()
        },
    }
}

fn check<'a>(report: &'a TestReport, name: &str) -> &'a ward_runtime::types::Check {
    report
        .checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name} in {report:?}"))
}

fn names(report: &TestReport) -> Vec<&str> {
    report.checks.iter().map(|c| c.name.as_str()).collect()
}

async fn stored_ids(h: &Zd, instance: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut after = None;
    loop {
        let page = h
            .store
            .events(
                instance,
                &EventQuery {
                    limit: 1000,
                    after: after.clone(),
                    order: EventOrder::OldestFirst,
                    ..EventQuery::default()
                },
            )
            .await
            .unwrap();
        let Some(last) = page.last() else {
            return ids;
        };
        after = Some((last.time_ms, last.event_id.clone()));
        ids.extend(page.into_iter().map(|e| e.event_id));
    }
}

fn audit_requests(zd: &ZendeskStandIn) -> Vec<String> {
    zd.requests()
        .into_iter()
        .filter(|r| r.path_and_query.starts_with("/api/v2/audit_logs?"))
        .map(|r| r.path_and_query)
        .collect()
}

/// The two `filter[created_at][]` values of a request, in Unix seconds.
fn created_at_filter(path_and_query: &str) -> (i64, i64) {
    let url = url::Url::parse(&format!("https://x{path_and_query}")).unwrap();
    let values: Vec<i64> = url
        .query_pairs()
        .filter(|(k, _)| k == "filter[created_at][]")
        .map(|(_, v)| {
            time::OffsetDateTime::parse(&v, &time::format_description::well_known::Rfc3339)
                .unwrap()
                .unix_timestamp()
        })
        .collect();
    assert_eq!(values.len(), 2, "{path_and_query}");
    (values[0], values[1])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_token_backfill_is_exact_then_polls_pick_up_only_new_records() {
    let h = start(ZendeskConfig {
        events: 2_500,
        users: 230,
        ..ZendeskConfig::default()
    })
    .await;
    // Without the lookback, to show the newest second's id set alone (the
    // lookback is `a_record_published_late_with_a_past_created_at_…`).
    let mut no_lookback = config(&h.zd);
    no_lookback.insert("lookback_minutes".into(), "0".into());
    let (instance, bound, report) =
        connect(&h.store, &h.plugin, "zendesk", no_lookback, token(&h.zd))
            .await
            .unwrap();
    assert_eq!(
        names(&report),
        [
            "credentials-valid",
            "admin-role",
            "plan-includes-audit",
            "scope-present"
        ]
    );
    assert!(report.checks.iter().all(|c| c.ok), "{report:?}");
    assert_eq!(report.account_name.as_deref(), Some("Ward Demo Support"));
    assert_eq!(report.principal.as_deref(), Some("owner@ward-demo.example"));
    assert_eq!(instance.status, InstanceStatus::Connected);
    let creds = h.store.credentials(&instance.id).await.unwrap().unwrap();
    assert_eq!(
        creds.secrets.keys().collect::<Vec<_>>(),
        ["basic_auth"],
        "only the Basic credential is stored"
    );

    let ingest = ingestor(&h, bound, &instance.id);
    let backfill_since = seven_days_ago();
    let first = ingest.sync_audit(backfill_since, |_| {}).await.unwrap();
    assert_eq!((first.new, first.seen, first.pages), (2_500, 2_500, 25));
    let stored = stored_ids(&h, &instance.id).await;
    assert_eq!(
        stored.iter().collect::<BTreeSet<_>>(),
        h.zd.event_ids().iter().collect::<BTreeSet<_>>()
    );
    assert_eq!(stored.len(), 2_500);

    // The window: created_at given twice (the backfill start, then now),
    // ascending, 100 a page; the pages after it follow links.next; Basic
    // auth throughout.
    let requests = audit_requests(&h.zd);
    let windows: Vec<&String> = requests
        .iter()
        .filter(|r| r.contains("filter%5Bcreated_at%5D"))
        .collect();
    let first_window = windows[0];
    assert!(
        first_window.starts_with("/api/v2/audit_logs?filter%5Bcreated_at%5D%5B%5D=")
            && first_window.contains("&sort=created_at&page%5Bsize%5D=100"),
        "{first_window}"
    );
    let (start, end) = created_at_filter(first_window);
    assert!((backfill_since / 1000 - start).abs() <= 1, "{first_window}");
    assert!((now_ms() / 1000 - end).abs() <= 10, "{first_window}");
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.contains("page%5Bafter%5D="))
            .count(),
        24,
        "pages 2..25 follow the next link"
    );
    assert!(
        h.zd.requests()
            .iter()
            .all(|r| r.auth_scheme.as_deref() == Some("Basic"))
    );

    // Caught up: the next poll reopens the window at the newest second and
    // returns nothing, not even the records of that second.
    let second = ingest.sync_audit(seven_days_ago(), |_| {}).await.unwrap();
    assert_eq!((second.new, second.seen, second.pages), (0, 0, 1));
    let newest_initial = h
        .store
        .events(
            &instance.id,
            &EventQuery {
                limit: 1,
                ..EventQuery::default()
            },
        )
        .await
        .unwrap()[0]
        .time_ms
        / 1000;
    let reopened = audit_requests(&h.zd).pop().unwrap();
    assert_eq!(created_at_filter(&reopened).0, newest_initial, "{reopened}");

    // New records (all in one second) arrive once each, and the next poll
    // skips them although its window starts at their second.
    h.zd.append_events(37);
    let third = ingest.sync_audit(seven_days_ago(), |_| {}).await.unwrap();
    assert_eq!((third.new, third.seen), (37, 37));
    // Five more in that same second, however long the poll took.
    h.zd.append_events_in_last_second(5);
    let fourth = ingest.sync_audit(seven_days_ago(), |_| {}).await.unwrap();
    assert_eq!((fourth.new, fourth.seen), (5, 5));
    let fifth = ingest.sync_audit(seven_days_ago(), |_| {}).await.unwrap();
    assert_eq!((fifth.new, fifth.seen), (0, 0));
    assert_eq!(h.store.event_count(&instance.id).await.unwrap(), 2_542);
    let cursor: Value = serde_json::from_str(
        &h.store
            .cursor(&instance.id, "audit")
            .await
            .unwrap()
            .expect("audit cursor"),
    )
    .unwrap();
    assert_eq!(cursor["subdomain"], "ward-demo");
    assert_eq!(cursor["seen"].as_array().unwrap().len(), 42);
    assert_eq!(cursor["account"], "Ward Demo Support");

    // Zendesk's own changes: a system actor named after the account.
    let events = h
        .store
        .events(
            &instance.id,
            &EventQuery {
                limit: 3_000,
                ..EventQuery::default()
            },
        )
        .await
        .unwrap();
    let system: Vec<_> = events.iter().filter(|e| e.actor_kind == "system").collect();
    assert!(!system.is_empty());
    assert!(system.iter().all(|e| {
        e.actor_name.as_deref() == Some("Ward Demo Support") && e.actor_id.as_deref() == Some("-1")
    }));
    let update = events
        .iter()
        .find(|e| e.action == "user.update")
        .expect("a user update");
    assert_eq!(update.actor_kind, "user");
    assert!(update.actor_name.is_some() && update.ip.is_some());
    assert_eq!(update.outcome, "success");
    let targets: Value = serde_json::from_str(&update.targets_json).unwrap();
    assert_eq!(targets[0]["kind"], "user");
    let raw: Value = serde_json::from_str(&update.raw_json).unwrap();
    assert_eq!(raw["id"].to_string(), update.event_id);

    // Users: every one, in pages of 100.
    let users = ingest.sync_users().await.unwrap();
    assert_eq!((users.seen, users.pages), (230, 3));
    let stored_users = h.store.users(&instance.id, 1000, None).await.unwrap();
    let ids: BTreeSet<String> = stored_users.iter().map(|u| u.user_id.clone()).collect();
    assert_eq!(ids, h.zd.user_ids().into_iter().collect());
    let owner = stored_users
        .iter()
        .find(|u| u.email.as_deref() == Some("owner@ward-demo.example"))
        .unwrap();
    assert!(owner.is_admin);

    // No request carried a secret in its URL.
    let egress = h.store.egress(&instance.id, 1000).await.unwrap();
    let (_, api_token) = h.zd.api_token();
    assert!(egress.iter().all(|e| !e.url.contains(&api_token)));
    h.zd.shutdown().await;
}

/// A browser that stops at the first redirect.
fn browser(h: &Zd) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(h.ca.ca_pem().as_bytes()).unwrap()])
        .resolve(&h.zd.host(), h.zd.addr())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn oauth_config(client_id: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("subdomain".to_string(), "ward-demo".to_string()),
        ("client_id".to_string(), client_id.to_string()),
    ])
}

/// `auth-url`, then the consent at the stand-in; the code it returns.
async fn consent(h: &Zd, client_id: &str) -> String {
    let unbound = h
        .plugin
        .bind(
            "oauth",
            &oauth_config(client_id),
            SecretSet::default(),
            None,
        )
        .unwrap();
    let url = unbound.auth_url(REDIRECT, "st-1").await.result.unwrap();
    assert!(
        url.starts_with("https://ward-demo.zendesk.com/oauth/authorizations/new?"),
        "{url}"
    );
    let response = browser(h).get(&url).send().await.unwrap();
    assert_eq!(response.status(), 302);
    let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    let q: BTreeMap<String, String> = location.query_pairs().into_owned().collect();
    assert_eq!(q["state"], "st-1");
    q["code"].clone()
}

async fn oauth_connect(h: &Zd, secret: &str) -> Result<ward_daemon::connect::Connected, String> {
    let (client_id, _) = h.zd.oauth_client();
    let code = consent(h, &client_id).await;
    create(
        &h.store,
        &h.plugin,
        NewConnection {
            name: "zendesk-oauth".into(),
            config: oauth_config(&client_id),
            tags: Vec::new(),
            grant: Grant::OauthCode(OauthCode {
                code,
                redirect_uri: REDIRECT.into(),
                code_verifier: None,
            }),
            host_secrets: BTreeMap::from([("client_secret".to_string(), secret.to_string())]),
        },
    )
    .await
    .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_code_exchange_bearer_calls_and_scope_checks() {
    let h = start(ZendeskConfig {
        events: 120,
        ..ZendeskConfig::default()
    })
    .await;
    let (_, secret) = h.zd.oauth_client();
    let c = oauth_connect(&h, &secret).await.unwrap();
    let report = c.report.unwrap();
    assert!(report.checks.iter().all(|c| c.ok), "{report:?}");
    assert!(
        check(&report, "scope-present")
            .message
            .contains("auditlogs:read")
    );
    // OAuth's least-privilege scopes do not cover brands: the subdomain
    // stands in for the account name.
    assert_eq!(report.account_name.as_deref(), Some("ward-demo"));
    let creds = h.store.credentials(&c.instance.id).await.unwrap().unwrap();
    assert_eq!(creds.scopes, ["auditlogs:read", "users:read"]);
    assert_eq!(creds.expires_at_ms, None, "Zendesk tokens do not expire");
    assert!(creds.secrets.contains_key("access_token"));
    assert!(!creds.secrets.contains_key("refresh_token"));
    // The token request carried the secret only inside its JSON body.
    let egress = h.store.egress(&c.instance.id, 100).await.unwrap();
    let token_call = egress
        .iter()
        .find(|e| e.url.ends_with("/oauth/tokens"))
        .unwrap();
    assert_eq!(token_call.method, "POST");
    assert!(egress.iter().all(|e| !e.url.contains(&secret)));

    let ingest = ingestor(&h, c.bound, &c.instance.id);
    let stats = ingest.sync_audit(seven_days_ago(), |_| {}).await.unwrap();
    assert_eq!(stats.new, 120);
    assert!(
        h.zd.requests()
            .iter()
            .filter(|r| r.path_and_query.starts_with("/api/v2/"))
            .all(|r| r.auth_scheme.as_deref() == Some("Bearer"))
    );

    // A consent that grants users:read only.
    h.zd.set_oauth_granted_scopes(Some(vec!["users:read".into()]));
    let narrow = oauth_connect(&h, &secret).await.unwrap();
    let report = narrow.report.unwrap();
    let scope = check(&report, "scope-present");
    assert!(!scope.ok);
    assert!(
        scope.message.contains("lacks auditlogs:read") && scope.message.contains("reconnect"),
        "{}",
        scope.message
    );
    assert!(check(&report, "admin-role").ok);
    assert_eq!(narrow.instance.status, InstanceStatus::Error);
    match narrow
        .bound
        .fetch_audit(seven_days_ago(), None)
        .await
        .result
    {
        Err(CallError::Plugin(PluginError::Forbidden(m))) => {
            assert!(m.contains("auditlogs:read users:read"), "{m}")
        }
        other => panic!("expected forbidden, got {other:?}"),
    }
    h.zd.set_oauth_granted_scopes(None);

    // A wrong client secret: Zendesk's invalid_client, nothing created.
    let before = h.store.instances().await.unwrap().len();
    let err = oauth_connect(&h, "not-the-secret").await.unwrap_err();
    assert!(
        err.contains("invalid_client") && err.contains("client secret"),
        "{err}"
    );
    assert_eq!(h.store.instances().await.unwrap().len(), before);

    // Revoked OAuth tokens: unauthorized, asking for a new consent.
    h.zd.revoke_oauth_tokens();
    let bound = ward_daemon::connect::bind(&h.store, &h.plugin, &c.instance)
        .await
        .unwrap();
    match bound.test().await.result {
        Err(CallError::Plugin(PluginError::Unauthorized(m))) => {
            assert!(m.contains("invalid_token") && m.contains("consent"), "{m}")
        }
        other => panic!("expected unauthorized, got {other:?}"),
    }
    h.zd.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_map_with_either_header_spelling() {
    for style in [RateHeaderStyle::Documented, RateHeaderStyle::Recorded] {
        let h = start(ZendeskConfig {
            events: 10,
            rate_headers: style,
            ..ZendeskConfig::default()
        })
        .await;
        let (_, bound, _) = connect(&h.store, &h.plugin, "zendesk", config(&h.zd), token(&h.zd))
            .await
            .unwrap();
        h.zd.rate_limit_next(1, 7);
        match bound.fetch_audit(seven_days_ago(), None).await.result {
            Err(CallError::Plugin(PluginError::RateLimited(r))) => {
                assert_eq!(r.retry_after_ms, 7_000, "{style:?}");
                assert!(r.message.contains("0 left"), "{style:?}: {}", r.message);
            }
            other => panic!("{style:?}: expected rate-limited, got {other:?}"),
        }
        // No Retry-After: the reset header of this spelling decides.
        h.zd.rate_limit_without_retry_after_next(1, 12);
        match bound.fetch_users(None).await.result {
            Err(CallError::Plugin(PluginError::RateLimited(r))) => {
                assert!(
                    (10_000..=12_000).contains(&r.retry_after_ms),
                    "{style:?}: {}",
                    r.retry_after_ms
                );
                assert!(r.message.contains("limit 700/min"), "{}", r.message);
            }
            other => panic!("{style:?}: expected rate-limited, got {other:?}"),
        }
        h.zd.fail_next(1, 503);
        match bound.fetch_audit(seven_days_ago(), None).await.result {
            Err(CallError::Plugin(PluginError::Unavailable(m))) => {
                assert!(m.contains("503") && m.contains("retry"), "{m}")
            }
            other => panic!("expected unavailable, got {other:?}"),
        }
        h.zd.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried_without_loss() {
    let h = start(ZendeskConfig {
        events: 450,
        ..ZendeskConfig::default()
    })
    .await;
    let (instance, bound, _) = connect(&h.store, &h.plugin, "zendesk", config(&h.zd), token(&h.zd))
        .await
        .unwrap();
    let ingest = ingestor(&h, bound, &instance.id);
    h.zd.rate_limit_next(1, 1);
    h.zd.fail_next(2, 503);
    let stats = ingest.sync_audit(seven_days_ago(), |_| {}).await.unwrap();
    assert!(stats.retries >= 3, "{stats:?}");
    assert_eq!((stats.new, stats.seen), (450, 450));
    assert_eq!(h.store.event_count(&instance.id).await.unwrap(), 450);
    h.zd.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prerequisite_checks_and_error_mapping() {
    let h = start(ZendeskConfig {
        events: 20,
        ..ZendeskConfig::default()
    })
    .await;
    let (instance, bound, _) = connect(&h.store, &h.plugin, "zendesk", config(&h.zd), token(&h.zd))
        .await
        .unwrap();

    // An agent: the role check fails and says what to do; the plan cannot
    // be judged by a non-admin.
    h.zd.set_owner_role("agent");
    let report = bound.test().await.result.unwrap();
    let role = check(&report, "admin-role");
    assert!(!role.ok);
    assert!(
        role.message
            .starts_with("Zendesk user is not an admin (role: agent)")
            && role.message.contains("reconnect with an admin"),
        "{}",
        role.message
    );
    let plan = check(&report, "plan-includes-audit");
    assert!(
        !plan.ok && plan.message.contains("non-admin"),
        "{}",
        plan.message
    );
    assert!(check(&report, "credentials-valid").ok);
    match bound.fetch_audit(seven_days_ago(), None).await.result {
        Err(CallError::Plugin(PluginError::Forbidden(m))) => {
            assert!(m.contains("admin") && m.contains("Enterprise"), "{m}")
        }
        other => panic!("expected forbidden, got {other:?}"),
    }

    // An admin on a plan without audit logs.
    h.zd.set_owner_role("admin");
    h.zd.set_plan(Plan::Professional);
    let report = bound.test().await.result.unwrap();
    assert!(check(&report, "admin-role").ok);
    let plan = check(&report, "plan-includes-audit");
    assert!(!plan.ok);
    assert!(
        plan.message
            .starts_with("plan includes audit logs: no — Enterprise or Enterprise Plus required"),
        "{}",
        plan.message
    );
    h.zd.set_plan(Plan::Enterprise);

    // An end-user cannot even list users.
    h.zd.set_owner_role("end-user");
    assert!(matches!(
        bound.fetch_users(None).await.result,
        Err(CallError::Plugin(PluginError::Forbidden(_)))
    ));
    h.zd.set_owner_role("admin");

    // A revoked token: unauthorized everywhere, with the way out.
    h.zd.revoke_token();
    for result in [
        bound.test().await.result.map(|_| ()),
        bound
            .fetch_audit(seven_days_ago(), None)
            .await
            .result
            .map(|_| ()),
        bound.fetch_users(None).await.result.map(|_| ()),
    ] {
        match result {
            Err(CallError::Plugin(PluginError::Unauthorized(m))) => {
                assert!(
                    m.contains("Couldn't authenticate you") && m.contains("create a token"),
                    "{m}"
                )
            }
            other => panic!("expected unauthorized, got {other:?}"),
        }
    }
    // Zendesk sometimes answers bad Basic credentials on /users/me with the
    // anonymous user and 200: still a rejection.
    h.zd.set_anonymous_for_bad_basic(true);
    match bound.test().await.result {
        Err(CallError::Plugin(PluginError::Unauthorized(m))) => {
            assert!(m.contains("anonymous") && m.contains("reconnect"), "{m}")
        }
        other => panic!("expected unauthorized, got {other:?}"),
    }
    h.zd.restore_token();
    assert!(
        bound
            .test()
            .await
            .result
            .unwrap()
            .checks
            .iter()
            .all(|c| c.ok)
    );

    // API-token auth without the e-mail: refused at connect, nothing made.
    let before = h.store.instances().await.unwrap().len();
    let err = connect(
        &h.store,
        &h.plugin,
        "zendesk",
        BTreeMap::from([("subdomain".to_string(), "ward-demo".to_string())]),
        token(&h.zd),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("`email`") && err.contains("OAuth"), "{err}");
    assert_eq!(h.store.instances().await.unwrap().len(), before);
    drop(instance);
    h.zd.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_cursors_are_validated_before_any_request() {
    let h = start(ZendeskConfig {
        events: 5,
        ..ZendeskConfig::default()
    })
    .await;
    let (_, bound, _) = connect(&h.store, &h.plugin, "zendesk", config(&h.zd), token(&h.zd))
        .await
        .unwrap();
    let served = h.zd.requests().len();
    fn internal<T: std::fmt::Debug>(result: Result<T, CallError>) -> String {
        match result {
            Err(CallError::Plugin(PluginError::Internal(m))) => m,
            other => panic!("expected internal, got {other:?}"),
        }
    }
    for garbage in [
        "not json",
        "https://ward-demo.zendesk.com/api/v2/audit_logs?page%5Bafter%5D=x",
        r#"{"v":1,"subdomain":"ward-demo","from":"2024-01-01T00:00:00Z","next":"https://evil.example/api/v2/audit_logs?x=1"}"#,
        r#"{"v":1,"subdomain":"ward-demo","from":"2024-01-01T00:00:00Z","next":"https://ward-demo.zendesk.com/api/v2/users?page%5Bsize%5D=100"}"#,
        r#"{"v":9,"subdomain":"ward-demo","from":"2024-01-01T00:00:00Z"}"#,
    ] {
        let m = internal(bound.fetch_audit(0, Some(garbage)).await.result);
        assert!(m.contains("reset the instance's audit cursor"), "{m}");
    }
    match bound
        .fetch_audit(
            0,
            Some(r#"{"v":1,"subdomain":"acme","from":"2024-01-01T00:00:00Z"}"#),
        )
        .await
        .result
    {
        Err(CallError::Plugin(PluginError::InvalidConfig(m))) => {
            assert!(m.contains("acme.zendesk.com"), "{m}")
        }
        other => panic!("expected invalid-config, got {other:?}"),
    }
    let m = internal(
        bound
            .fetch_users(Some("https://evil.example/api/v2/users?page%5Bafter%5D=x"))
            .await
            .result,
    );
    assert!(m.contains("users cursor"), "{m}");
    assert_eq!(
        h.zd.requests().len(),
        served,
        "a bad cursor reached Zendesk"
    );

    // A page link Zendesk no longer accepts: the window reopens at the
    // stored start instead of failing.
    let stale = r#"{"v":1,"subdomain":"ward-demo","from":"2020-01-01T00:00:00Z","next":"https://ward-demo.zendesk.com/api/v2/audit_logs?sort=created_at&page%5Bafter%5D=bm9wZQ%3D%3D"}"#;
    let page = bound.fetch_audit(0, Some(stale)).await.result.unwrap();
    assert_eq!(page.events.len(), 5);
    assert!(!page.more);
    h.zd.shutdown().await;
}

/// The REST API over a daemon with the Zendesk stand-in.
async fn api(cfg: ZendeskConfig) -> (ApiHarness, ZendeskStandIn) {
    let ca = TestCa::generate().unwrap();
    let zd = ZendeskStandIn::start(cfg, &ca).await.unwrap();
    let h = ApiHarness::start(ca, vec![(zd.host(), zd.addr())], |_| {}).await;
    (h, zd)
}

fn ok_checks(body: &Value) -> bool {
    body["checks"]
        .as_array()
        .is_some_and(|c| !c.is_empty() && c.iter().all(|c| c["ok"] == true))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_connect_backfill_poll_and_users_through_the_api() {
    const EVENTS: usize = 10_500;
    let (h, zd) = api(ZendeskConfig {
        events: EVENTS,
        users: 180,
        ..ZendeskConfig::default()
    })
    .await;
    let (client_id, secret) = zd.oauth_client();
    let (status, created) = h
        .connect_oauth(
            "zendesk",
            &client_id,
            &secret,
            &[("subdomain", "ward-demo")],
            "Zendesk Support",
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["valid"], true, "{created}");
    assert!(ok_checks(&created), "{created}");
    assert_eq!(created["configuration"]["subdomain"], "ward-demo");
    assert!(!created.to_string().contains(&secret));
    let id = created["id"].as_str().unwrap().to_owned();

    // Test now: every check passes.
    let (status, test) = h.test_now(&id).await;
    assert_eq!(status, StatusCode::OK);
    assert!(ok_checks(&test), "{test}");
    assert_eq!(test["checks"].as_array().unwrap().len(), 4);

    // The seven-day backfill lands exactly once.
    h.wait_instance(&id, Duration::from_secs(30), |i| {
        i["status"]["eventsStored"].as_u64() >= Some(EVENTS as u64)
    })
    .await;
    let ids = h.event_ids(&id).await;
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "an event was stored twice");
    let expected = zd.event_ids();
    assert_eq!(unique, expected.iter().collect::<BTreeSet<_>>());

    // An incremental poll picks up exactly the new records.
    zd.append_events(25);
    let instance = h
        .wait_instance(&id, Duration::from_secs(15), |i| {
            i["status"]["eventsStored"].as_u64() >= Some(EVENTS as u64 + 25)
        })
        .await;
    assert_eq!(instance["status"]["state"], "connected", "{instance}");
    let ids = h.event_ids(&id).await;
    assert_eq!(ids.len(), EVENTS + 25);
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>(),
        zd.event_ids().iter().collect::<BTreeSet<_>>()
    );

    // Users: exactly the account's.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let users = loop {
        let users = h.users(&id).await;
        if users.len() >= 180 || tokio::time::Instant::now() > deadline {
            break users;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let user_ids: BTreeSet<String> = users
        .iter()
        .map(|u| u["userId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(user_ids, zd.user_ids().into_iter().collect());

    // Every API call went with the Bearer token and was answered.
    let requests = zd.requests();
    assert!(
        requests
            .iter()
            .filter(|r| r.path_and_query.starts_with("/api/v2/"))
            .all(|r| r.auth_scheme.as_deref() == Some("Bearer") && r.status == 200)
    );
    assert!(
        requests
            .iter()
            .any(|r| r.method == "POST" && r.path_and_query == "/oauth/tokens")
    );
    zd.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_token_connect_through_the_api() {
    let (h, zd) = api(ZendeskConfig {
        events: 300,
        ..ZendeskConfig::default()
    })
    .await;
    let (email, api_token) = zd.api_token();

    // Without the admin's e-mail nothing is created and the answer says why.
    let (status, body) = h
        .send(
            Method::POST,
            "/instances",
            Some(&json!({
                "element": {"key": "zendesk"},
                "providerData": {"apiToken": api_token},
                "configuration": {"subdomain": "ward-demo"},
            })),
        )
        .await;
    assert!(status.is_client_error(), "{status} {body}");
    assert!(body.to_string().contains("`email`"), "{body}");
    assert_eq!(h.get("/instances").await.1, json!([]));

    let (status, created) = h
        .send(
            Method::POST,
            "/instances",
            Some(&json!({
                "element": {"key": "zendesk"},
                "providerData": {"apiToken": api_token},
                "configuration": {"subdomain": "ward-demo", "email": email},
                "name": "Zendesk (token)",
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["valid"], true, "{created}");
    assert_eq!(created["accountName"], "Ward Demo Support");
    assert_eq!(created["principal"], email.as_str());
    assert!(!created.to_string().contains(&api_token));
    let id = created["id"].as_str().unwrap().to_owned();
    h.wait_instance(&id, Duration::from_secs(15), |i| {
        i["status"]["eventsStored"].as_u64() >= Some(300)
    })
    .await;
    let ids = h.event_ids(&id).await;
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>(),
        zd.event_ids().iter().collect::<BTreeSet<_>>()
    );
    assert_eq!(ids.len(), 300);
    zd.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_published_late_with_a_past_created_at_is_read_by_the_lookback() {
    let (h, zd) = api(ZendeskConfig {
        events: 120,
        ..ZendeskConfig::default()
    })
    .await;
    let (email, api_token) = zd.api_token();
    let (status, created) = h
        .connect_token(
            "zendesk",
            &api_token,
            &[("subdomain", "ward-demo"), ("email", &email)],
            "Zendesk",
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let stored_all = |n: u64| move |i: &Value| i["status"]["eventsStored"].as_u64() >= Some(n);
    h.wait_instance(&id, Duration::from_secs(30), stored_all(120))
        .await;
    // A record written now moves the next window's start to now.
    zd.append_events(1);
    h.wait_instance(&id, Duration::from_secs(30), stored_all(121))
        .await;
    // Zendesk then makes visible a record created 90 s ago: a window
    // starting at the newest created_at would never see it.
    let late = zd.publish_late(90);
    h.wait_instance(&id, Duration::from_secs(30), stored_all(122))
        .await;
    let ids = h.event_ids(&id).await;
    assert!(ids.contains(&late));
    // Every record exactly once: the re-read ones were dropped as repeats.
    assert_eq!(ids.len(), 122);
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>(),
        zd.event_ids().iter().collect::<BTreeSet<_>>()
    );
    let (_, instance) = h.get(&format!("/instances/{id}")).await;
    assert_eq!(instance["status"]["state"], "connected", "{instance}");
    zd.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prerequisite_failures_through_the_api_store_nothing() {
    let (h, zd) = api(ZendeskConfig {
        events: 200,
        ..ZendeskConfig::default()
    })
    .await;
    let (email, api_token) = zd.api_token();
    let token_body = json!({
        "element": {"key": "zendesk"},
        "providerData": {"apiToken": api_token},
        "configuration": {"subdomain": "ward-demo", "email": email},
    });
    let failed = |body: &Value, name: &str| -> String {
        let c = body["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {body}"));
        assert_eq!(c["ok"], false, "{body}");
        c["message"].as_str().unwrap().to_owned()
    };

    // Each failing prerequisite: valid=false, Error status naming the check
    // and the fix, and the worker never starts.
    let mut halted = Vec::new();
    zd.set_owner_role("agent");
    let (status, agent) = h.send(Method::POST, "/instances", Some(&token_body)).await;
    assert_eq!(status, StatusCode::CREATED, "{agent}");
    assert_eq!(agent["valid"], false);
    assert!(failed(&agent, "admin-role").contains("reconnect with an admin"));
    assert_eq!(agent["status"]["state"], "error");
    let message = agent["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("admin-role: Zendesk user is not an admin"),
        "{message}"
    );
    halted.push(agent["id"].as_str().unwrap().to_owned());
    zd.set_owner_role("admin");

    zd.set_plan(Plan::Growth);
    let (_, plan) = h.send(Method::POST, "/instances", Some(&token_body)).await;
    assert_eq!(plan["valid"], false);
    assert!(
        failed(&plan, "plan-includes-audit")
            .starts_with("plan includes audit logs: no — Enterprise or Enterprise Plus required")
    );
    assert!(
        plan["status"]["message"]
            .as_str()
            .unwrap()
            .contains("plan-includes-audit"),
        "{plan}"
    );
    halted.push(plan["id"].as_str().unwrap().to_owned());
    zd.set_plan(Plan::Enterprise);

    zd.set_oauth_granted_scopes(Some(vec!["users:read".into()]));
    let (client_id, secret) = zd.oauth_client();
    let (_, scoped) = h
        .connect_oauth(
            "zendesk",
            &client_id,
            &secret,
            &[("subdomain", "ward-demo")],
            "narrow",
        )
        .await;
    assert_eq!(scoped["valid"], false, "{scoped}");
    assert!(failed(&scoped, "scope-present").contains("grant auditlogs:read users:read"));
    halted.push(scoped["id"].as_str().unwrap().to_owned());
    zd.set_oauth_granted_scopes(None);

    // A revoked token at connect time: refused outright, nothing created.
    zd.revoke_token();
    let (status, revoked) = h.send(Method::POST, "/instances", Some(&token_body)).await;
    assert!(
        status.is_client_error() || status.is_server_error(),
        "{status} {revoked}"
    );
    let text = revoked.to_string();
    assert!(
        text.contains("Couldn't authenticate you") && text.contains("reconnect"),
        "{text}"
    );
    zd.restore_token();
    let (_, list) = h.get("/instances").await;
    assert_eq!(list.as_array().unwrap().len(), 3, "{list}");

    // Revoked after connecting: the instance goes to Error with the way out.
    let (_, good) = h.send(Method::POST, "/instances", Some(&token_body)).await;
    assert_eq!(good["valid"], true, "{good}");
    let good_id = good["id"].as_str().unwrap().to_owned();
    h.wait_instance(&good_id, Duration::from_secs(15), |i| {
        i["status"]["eventsStored"].as_u64() >= Some(200)
    })
    .await;
    zd.revoke_token();
    let (status, test) = h.test_now(&good_id).await;
    assert_eq!(status, StatusCode::OK, "{test}");
    assert_eq!(test["ok"], false);
    let error = test["error"].as_str().unwrap();
    assert!(
        error.contains("create a token") && error.contains("reconnect"),
        "{error}"
    );
    let instance = h
        .wait_instance(&good_id, Duration::from_secs(5), |i| {
            i["status"]["state"] == "error"
        })
        .await;
    assert!(
        instance["status"]["message"]
            .as_str()
            .unwrap()
            .contains("reconnect"),
        "{instance}"
    );

    // Nothing was read for the instances whose checks failed.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    for id in &halted {
        let (_, i) = h.get(&format!("/instances/{id}")).await;
        assert_eq!(i["status"]["eventsStored"], 0, "{i}");
        assert_eq!(i["status"]["state"], "error", "{i}");
        assert!(h.event_ids(id).await.is_empty());
    }
    zd.shutdown().await;
}
