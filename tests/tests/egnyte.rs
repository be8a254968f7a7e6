//! The Egnyte connector at runtime level: the real component built from
//! `plugins/egnyte`, the Egnyte stand-in over HTTPS on loopback under
//! `ward-demo.egnyte.com`, a real SQLite file. OAuth consent, exchange,
//! Test now with every prerequisite, stream paging and polling, users,
//! throttling and error mapping.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tempfile::TempDir;
use ward_daemon::connect::{ConnectError, Connected, NewConnection, create, test_now};
use ward_daemon::ingest::{AUDIT, Ingestor, Retry, USERS};
use ward_daemon::refresh::Refresher;
use ward_runtime::types::{Grant, OauthCode, PluginError, TestReport};
use ward_runtime::{CallError, Plugin, Runtime};
use ward_standins::egnyte::{CallerRole, EgnyteConfig, EgnyteStandIn, UsersListStyle};
use ward_standins::tls::TestCa;
use ward_store::{EventQuery, InstanceStatus, Store};
use ward_tests::EGNYTE_WASM;

const REDIRECT: &str = "https://ward.example/oauth/callback";
const DAY_MS: i64 = 86_400_000;

struct H {
    ca: TestCa,
    eg: EgnyteStandIn,
    store: Store,
    plugin: Arc<Plugin>,
    _runtime: Runtime,
    _dir: TempDir,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

impl H {
    async fn start(cfg: EgnyteConfig) -> H {
        let ca = TestCa::generate().unwrap();
        let eg = EgnyteStandIn::start(cfg, &ca).await.unwrap();
        let l = ward_tests::load_against(&ca, &[(eg.host(), eg.addr())], EGNYTE_WASM).await;
        H {
            ca,
            eg,
            store: l.store,
            plugin: l.plugin,
            _runtime: l.runtime,
            _dir: l.dir,
        }
    }

    fn config(&self) -> BTreeMap<String, String> {
        let (client_id, _) = self.eg.oauth_client();
        BTreeMap::from([
            ("domain".to_string(), "ward-demo".to_string()),
            ("client_id".to_string(), client_id),
        ])
    }

    /// `auth-url`, then the browser at the stand-in's consent page: the
    /// query of the redirect back.
    async fn consent(&self) -> BTreeMap<String, String> {
        let unbound = self
            .plugin
            .bind(
                "connecting",
                &self.config(),
                ward_runtime::SecretSet::default(),
                None,
            )
            .unwrap();
        let url = unbound
            .auth_url(REDIRECT, "st-egnyte")
            .await
            .result
            .unwrap();
        assert!(
            url.starts_with("https://ward-demo.egnyte.com/puboauth/token?client_id="),
            "{url}"
        );
        let browser = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(self.ca.ca_pem().as_bytes()).unwrap()])
            .resolve(&self.eg.host(), self.eg.addr())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let response = browser.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 302);
        let location = response.headers()["location"].to_str().unwrap().to_string();
        assert!(location.starts_with(REDIRECT), "{location}");
        url::Url::parse(&location)
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect()
    }

    /// Consent, exchange with the client secret, store, test.
    async fn connect_with_secret(&self, secret: &str) -> Result<Connected, ConnectError> {
        let back = self.consent().await;
        assert_eq!(back["state"], "st-egnyte");
        create(
            &self.store,
            &self.plugin,
            NewConnection {
                name: "egnyte".into(),
                config: self.config(),
                tags: Vec::new(),
                grant: Grant::OauthCode(OauthCode {
                    code: back["code"].clone(),
                    redirect_uri: REDIRECT.into(),
                    code_verifier: None,
                }),
                host_secrets: BTreeMap::from([("client_secret".to_string(), secret.to_string())]),
            },
        )
        .await
    }

    async fn connect(&self) -> Connected {
        let (_, secret) = self.eg.oauth_client();
        self.connect_with_secret(&secret).await.unwrap()
    }

    fn ingestor(&self, c: &Connected) -> Ingestor {
        Ingestor {
            store: self.store.clone(),
            bound: c.bound.clone(),
            instance_id: c.instance.id.clone(),
            fence: None,
            retry: Retry {
                base: Duration::from_millis(50),
                max: Duration::from_millis(500),
                ..Retry::default()
            },
        }
    }

    async fn stored_ids(&self, id: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .store
                .events(
                    id,
                    &EventQuery {
                        limit: 1000,
                        after: after.clone(),
                        ..EventQuery::default()
                    },
                )
                .await
                .unwrap();
            if page.is_empty() {
                return out;
            }
            after = page.last().map(|e| (e.time_ms, e.event_id.clone()));
            out.extend(page.into_iter().map(|e| e.event_id));
        }
    }

    fn stream_requests(&self) -> usize {
        self.eg
            .requests()
            .iter()
            .filter(|r| r.path_and_query.starts_with("/pubapi/v2/audit/stream"))
            .count()
    }
}

fn report(c: &Connected) -> &TestReport {
    c.report.as_ref().unwrap()
}

fn check<'a>(r: &'a TestReport, name: &str) -> Option<&'a ward_runtime::types::Check> {
    r.checks.iter().find(|c| c.name == name)
}

fn seven_days_ago() -> i64 {
    now_ms() - 7 * DAY_MS
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_pages_exactly_then_polls_from_the_cursor() {
    let h = H::start(EgnyteConfig {
        events: 12_000,
        page_size: 5_000,
        ..EgnyteConfig::default()
    })
    .await;
    let c = h.connect().await;
    let r = report(&c);
    assert!(r.checks.iter().all(|c| c.ok), "{r:?}");
    assert_eq!(r.checks.len(), 4, "{r:?}");
    assert_eq!(r.account_name.as_deref(), Some("ward-demo.egnyte.com"));
    assert_eq!(c.instance.status, InstanceStatus::Connected);
    let probes = h.stream_requests();

    let ingestor = h.ingestor(&c);
    let first = ingestor.sync_audit(seven_days_ago(), |_| {}).await.unwrap();
    // 5 000 + 5 000 + 2 000 (moreEvents false): three calls for 12 000.
    assert_eq!((first.pages, first.new, first.seen), (3, 12_000, 12_000));
    assert_eq!(h.stream_requests() - probes, 3);
    let stored = h.stored_ids(&c.instance.id).await;
    let unique: BTreeSet<String> = stored.iter().cloned().collect();
    assert_eq!(unique.len(), stored.len(), "an event was stored twice");
    let expected: BTreeSet<String> = h.eg.event_ids().into_iter().collect();
    assert_eq!(unique, expected);
    let cursor = h
        .store
        .cursor(&c.instance.id, AUDIT)
        .await
        .unwrap()
        .unwrap();
    assert!(cursor.starts_with("egnyte-v2:next:"), "{cursor}");

    // Caught up: one call, nothing new, the cursor still there to poll from.
    let second = ingestor.sync_audit(seven_days_ago(), |_| {}).await.unwrap();
    assert_eq!((second.pages, second.new), (1, 0));

    h.eg.append_events(321);
    let third = ingestor.sync_audit(seven_days_ago(), |_| {}).await.unwrap();
    assert_eq!((third.pages, third.new), (1, 321));
    assert_eq!(h.store.event_count(&c.instance.id).await.unwrap(), 12_321);
    let expected: BTreeSet<String> = h.eg.event_ids().into_iter().collect();
    let stored: BTreeSet<String> = h.stored_ids(&c.instance.id).await.into_iter().collect();
    assert_eq!(stored, expected);

    // Every API call went with the Bearer token; the egress log has no secret.
    assert!(
        h.eg.requests()
            .iter()
            .filter(|r| r.path_and_query.starts_with("/pubapi/"))
            .all(|r| r.auth_scheme.as_deref() == Some("Bearer"))
    );
    let (_, secret) = h.eg.oauth_client();
    let egress = h.store.egress(&c.instance.id, 1000).await.unwrap();
    assert!(egress.iter().all(|e| !e.url.contains(&secret)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_map_egnyte_fields() {
    let h = H::start(EgnyteConfig {
        events: 400,
        ..EgnyteConfig::default()
    })
    .await;
    let c = h.connect().await;
    h.ingestor(&c)
        .sync_audit(seven_days_ago(), |_| {})
        .await
        .unwrap();
    let events = h
        .store
        .events(
            &c.instance.id,
            &EventQuery {
                limit: 1000,
                ..EventQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(events.len(), 400);
    let actions: BTreeSet<&str> = events
        .iter()
        .map(|e| e.action.split('.').next().unwrap())
        .collect();
    assert_eq!(
        actions,
        BTreeSet::from(["file", "group", "login", "user"]),
        "every generated audit source arrives"
    );
    let file = events
        .iter()
        .find(|e| e.action == "file.Upload")
        .expect("an upload");
    assert!(
        file.actor_email
            .as_deref()
            .unwrap()
            .ends_with(".example.com")
    );
    assert!(file.actor_id.is_some());
    assert!(file.ip.is_some());
    assert!(
        file.targets_json.contains("\"file\""),
        "{}",
        file.targets_json
    );
    let raw: serde_json::Value = serde_json::from_str(&file.raw_json).unwrap();
    assert_eq!(raw["auditSource"], "FILE_AUDIT");
    assert_eq!(raw["date"].as_i64(), Some(file.time_ms));
    let failed = events.iter().find(|e| e.action == "login.Failed Login");
    if let Some(failed) = failed {
        assert_eq!(failed.outcome, "failure");
    }
    let group = events
        .iter()
        .find(|e| e.action.starts_with("group."))
        .unwrap();
    assert!(
        group.targets_json.contains("\"group\""),
        "{}",
        group.targets_json
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_page_with_either_case_of_resources() {
    let h = H::start(EgnyteConfig {
        events: 10,
        users: 230,
        ..EgnyteConfig::default()
    })
    .await;
    let c = h.connect().await;
    let ingestor = h.ingestor(&c);
    let first = ingestor.sync_users().await.unwrap();
    assert_eq!((first.pages, first.seen), (3, 230));
    let listed: Vec<String> =
        h.eg.requests()
            .iter()
            .filter_map(|r| r.path_and_query.strip_prefix("/pubapi/v2/users?"))
            .map(str::to_string)
            .collect();
    assert_eq!(
        listed,
        vec![
            "startIndex=1&count=100",
            "startIndex=101&count=100",
            "startIndex=201&count=100"
        ]
    );
    assert_eq!(h.store.user_count(&c.instance.id).await.unwrap(), 230);
    let users = h.store.users(&c.instance.id, 1000, None).await.unwrap();
    let ids: BTreeSet<String> = users.iter().map(|u| u.user_id.clone()).collect();
    let expected: BTreeSet<String> = h.eg.user_ids().into_iter().collect();
    assert_eq!(ids, expected);
    assert!(users.iter().any(|u| u.is_admin));
    assert!(
        users
            .iter()
            .all(|u| u.email.is_some() && u.status.is_some())
    );

    // The .NET fixture's shape: `Resources`, string ids and "true".
    h.eg.set_users_list_style(UsersListStyle::DotNetFixture);
    let second = ingestor.sync_users().await.unwrap();
    assert_eq!((second.pages, second.seen), (3, 230));
    // Same ids whichever shape: the same 230 users, none added.
    assert_eq!(h.store.user_count(&c.instance.id).await.unwrap(), 230);
    assert!(
        h.store
            .cursor(&c.instance.id, USERS)
            .await
            .unwrap()
            .is_none()
    );
}

fn rate_limited(result: Result<impl std::fmt::Debug, CallError>) -> (u64, String) {
    match result {
        Err(CallError::Plugin(PluginError::RateLimited(r))) => (r.retry_after_ms, r.message),
        other => panic!("expected rate-limited, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_throttling_forms_become_rate_limited() {
    let h = H::start(EgnyteConfig {
        events: 3_000,
        page_size: 1_000,
        ..EgnyteConfig::default()
    })
    .await;
    let c = h.connect().await;
    let since = seven_days_ago();

    h.eg.throttle_qps_next(1, 1);
    let (ms, m) = rate_limited(c.bound.fetch_audit(since, None).await.result);
    assert_eq!(ms, 1_000);
    assert!(m.contains("per-second"), "{m}");

    h.eg.throttle_over_rate_next(1, 7_200);
    let (ms, m) = rate_limited(c.bound.fetch_users(None).await.result);
    assert_eq!(ms, 7_200_000);
    assert!(m.contains("daily"), "{m}");

    h.eg.audit_rate_limit_next(1, 20);
    let (ms, _) = rate_limited(c.bound.fetch_audit(since, None).await.result);
    assert_eq!(ms, 20_000);

    h.eg.fail_next(1, 503);
    match c.bound.fetch_audit(since, None).await.result {
        Err(CallError::Plugin(PluginError::Unavailable(m))) => assert!(m.contains("503"), "{m}"),
        other => panic!("expected unavailable, got {other:?}"),
    }

    // Through the ingestor: waited out, nothing lost, nothing twice.
    h.eg.throttle_qps_next(1, 1);
    h.eg.audit_rate_limit_next(1, 1);
    h.eg.fail_next(1, 502);
    let stats = h.ingestor(&c).sync_audit(since, |_| {}).await.unwrap();
    assert!(stats.retries >= 3, "{stats:?}");
    assert_eq!(stats.new, 3_000);
    assert_eq!(h.store.event_count(&c.instance.id).await.unwrap(), 3_000);

    // Egnyte's real limit, enforced: 10 a minute. Test now and the sync
    // above spent part of it; the connector reports the 429's Retry-After.
    h.eg.set_enforce_audit_rate_limit(true);
    let mut limited = None;
    for _ in 0..25 {
        match c.bound.fetch_audit(since, None).await.result {
            Ok(_) => continue,
            other => {
                limited = Some(rate_limited(other));
                break;
            }
        }
    }
    let (ms, m) = limited.expect("10/min never enforced");
    assert!((1_000..=60_000).contains(&ms), "{ms}");
    assert!(m.contains("AuditV2"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_and_refused_cursors() {
    let h = H::start(EgnyteConfig {
        events: 500,
        ..EgnyteConfig::default()
    })
    .await;
    let c = h.connect().await;
    let since = seven_days_ago();
    for bad in [
        "not-a-cursor",
        "egnyte-v2:next:abc:AAAA",
        "egnyte-v2:next:1:",
        "egnyte-v2:from:",
        "https://evil.example/steal",
    ] {
        match c.bound.fetch_audit(since, Some(bad)).await.result {
            Err(CallError::Plugin(PluginError::Internal(m))) => {
                assert!(m.contains("reset the instance's audit cursor"), "{m}")
            }
            other => panic!("{bad}: expected a clear error, got {other:?}"),
        }
    }
    match c.bound.fetch_users(Some("users:zero")).await.result {
        Err(CallError::Plugin(PluginError::Internal(m))) => {
            assert!(m.contains("users cursor"), "{m}")
        }
        other => panic!("expected a clear error, got {other:?}"),
    }

    // A well-formed cursor Egnyte refuses (400): the stream restarts from
    // the newest event stored, and the overlap has the same ids.
    let all = h.eg.event_ids();
    let jsons = h.eg.event_jsons();
    let mid: serde_json::Value = serde_json::from_str(&jsons[250]).unwrap();
    let mid_ms = mid["date"].as_i64().unwrap();
    let refused = format!("egnyte-v2:next:{mid_ms}:QmlnVGFibGVLZXk=");
    let page = c
        .bound
        .fetch_audit(since, Some(&refused))
        .await
        .result
        .unwrap();
    let ids: Vec<String> = page.events.iter().map(|e| e.id.clone()).collect();
    // From the second of event 250 on (startDate has second precision).
    assert!(ids.len() >= 250 && ids.len() <= 251, "{}", ids.len());
    assert_eq!(ids.last(), all.last());
    assert!(all.ends_with(&ids));
    assert!(
        page.cursor.starts_with("egnyte-v2:next:"),
        "{}",
        page.cursor
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prerequisite_failures_are_named_with_the_fix() {
    let h = H::start(EgnyteConfig {
        events: 20,
        ..EgnyteConfig::default()
    })
    .await;
    let c = h.connect().await;
    assert!(report(&c).checks.iter().all(|c| c.ok));
    let retest = || async {
        test_now(&h.store, &h.plugin, &c.instance, true)
            .await
            .unwrap()
    };

    // A standard user: not an admin, cannot run reports.
    h.eg.set_caller_role(CallerRole::StandardUser);
    let t = retest().await;
    let role = check(report(&t), "admin-role").unwrap();
    assert!(!role.ok);
    assert!(role.message.contains("standard user"), "{}", role.message);
    assert!(role.message.contains("administrator"), "{}", role.message);
    assert_eq!(t.instance.status, InstanceStatus::Error);
    assert!(t.instance.status_message.unwrap().contains("admin-role"));

    // A power user without the report permission.
    h.eg.set_caller_role(CallerRole::PowerUser {
        can_run_reports: false,
    });
    let t = retest().await;
    let role = check(report(&t), "admin-role").unwrap();
    assert!(!role.ok);
    assert!(role.message.contains("power user"), "{}", role.message);
    assert!(role.message.contains("run reports"), "{}", role.message);

    // A power user allowed to run reports passes.
    h.eg.set_caller_role(CallerRole::PowerUser {
        can_run_reports: true,
    });
    let t = retest().await;
    assert!(report(&t).checks.iter().all(|c| c.ok), "{:?}", report(&t));
    assert_eq!(t.instance.status, InstanceStatus::Connected);

    // An admin on a plan without audit reporting.
    h.eg.set_caller_role(CallerRole::Admin);
    h.eg.set_audit_reporting(false);
    let t = retest().await;
    let plan = check(report(&t), "plan-includes-audit").unwrap();
    assert!(!plan.ok);
    assert!(
        plan.message
            .contains("plan does not include audit reporting"),
        "{}",
        plan.message
    );
    assert!(check(report(&t), "admin-role").unwrap().ok);
    // The stream itself says the same, as forbidden (the host halts).
    match c.bound.fetch_audit(seven_days_ago(), None).await.result {
        Err(CallError::Plugin(PluginError::Forbidden(m))) => assert!(m.contains("plan"), "{m}"),
        other => panic!("expected forbidden, got {other:?}"),
    }
    // A power user on that plan: the plan is named, not the role.
    h.eg.set_caller_role(CallerRole::PowerUser {
        can_run_reports: true,
    });
    let t = retest().await;
    assert!(!check(report(&t), "plan-includes-audit").unwrap().ok);
    h.eg.set_audit_reporting(true);
    h.eg.set_caller_role(CallerRole::Admin);

    // Revoked token: unauthorized, "reconnect" in the status.
    h.eg.revoke_tokens();
    let t = retest().await;
    match &t.report {
        Err(CallError::Plugin(PluginError::Unauthorized(m))) => {
            assert!(m.contains("reconnect"), "{m}")
        }
        other => panic!("expected unauthorized, got {other:?}"),
    }
    assert_eq!(t.instance.status, InstanceStatus::Error);
    assert!(t.instance.status_message.unwrap().contains("reconnect"));
    let err = h
        .ingestor(&c)
        .sync_audit(seven_days_ago(), |_| {})
        .await
        .unwrap_err();
    assert!(err.needs_operator(), "{err}");
    assert_eq!(h.store.event_count(&c.instance.id).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_scopes_are_named() {
    let h = H::start(EgnyteConfig {
        events: 20,
        ..EgnyteConfig::default()
    })
    .await;
    h.eg.set_oauth_granted_scopes(Some(vec!["Egnyte.user".to_string()]));
    let c = h.connect().await;
    let r = report(&c);
    let scope = check(r, "scope-present").unwrap();
    assert!(!scope.ok);
    assert!(scope.message.contains("Egnyte.audit"), "{}", scope.message);
    assert!(!scope.message.contains("Egnyte.user"), "{}", scope.message);
    assert_eq!(c.instance.status, InstanceStatus::Error);

    h.eg.set_oauth_granted_scopes(Some(vec!["Egnyte.audit".to_string()]));
    let c = h.connect().await;
    let scope = check(report(&c), "scope-present").unwrap();
    assert!(!scope.ok);
    assert!(scope.message.contains("Egnyte.user"), "{}", scope.message);
    // The audit API answered, so plan and role still pass.
    assert!(check(report(&c), "plan-includes-audit").unwrap().ok);
    assert!(check(report(&c), "admin-role").unwrap().ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_errors_create_nothing() {
    let h = H::start(EgnyteConfig {
        events: 5,
        ..EgnyteConfig::default()
    })
    .await;
    match h.connect_with_secret("wrong-secret").await {
        Err(ConnectError::Call {
            source: CallError::Plugin(PluginError::InvalidConfig(m)),
            ..
        }) => assert!(m.contains("client secret"), "{m}"),
        other => panic!("expected invalid-config, got {other:?}"),
    }
    // The code is spent: a second exchange of it is refused as such.
    let back = h.consent().await;
    let (_, secret) = h.eg.oauth_client();
    let config = h.config();
    let grant = |code: &str| NewConnection {
        name: "egnyte".into(),
        config: config.clone(),
        tags: Vec::new(),
        grant: Grant::OauthCode(OauthCode {
            code: code.to_string(),
            redirect_uri: REDIRECT.into(),
            code_verifier: None,
        }),
        host_secrets: BTreeMap::from([("client_secret".to_string(), secret.clone())]),
    };
    create(&h.store, &h.plugin, grant(&back["code"]))
        .await
        .unwrap();
    match create(&h.store, &h.plugin, grant(&back["code"])).await {
        Err(ConnectError::Call {
            source: CallError::Plugin(PluginError::Unauthorized(m)),
            ..
        }) => assert!(m.contains("a code works once"), "{m}"),
        other => panic!("expected unauthorized, got {other:?}"),
    }
    // An API key Egnyte does not know: its gateway's 403 is a verdict on
    // the client, reported by the host's exchange.
    let back = h.consent().await;
    h.eg.set_oauth_client("someotherkey", &secret);
    match create(&h.store, &h.plugin, grant(&back["code"])).await {
        Err(ConnectError::Call {
            source: CallError::Plugin(PluginError::Unauthorized(m)),
            ..
        }) => assert!(m.contains("403") && m.contains("client id"), "{m}"),
        other => panic!("expected unauthorized, got {other:?}"),
    }
    // Only the one good connection exists.
    assert_eq!(h.store.instances().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiring_tokens_are_refreshed_by_the_host() {
    let h = H::start(EgnyteConfig {
        events: 50,
        ..EgnyteConfig::default()
    })
    .await;
    // Newer Egnyte behaviour: expiring tokens with a refresh token.
    h.eg.set_token_lifetime(Some(Duration::from_secs(600)));
    let c = h.connect().await;
    let creds = h.store.credentials(&c.instance.id).await.unwrap().unwrap();
    assert!(creds.expires_at_ms.is_some());
    assert!(creds.secrets.contains_key("refresh_token"));
    // Due within the margin: the host refreshes at the token endpoint.
    let refresher = Refresher::new(Duration::from_secs(3600));
    assert!(
        refresher
            .ensure_fresh(&h.store, &h.plugin, &c.instance)
            .await
            .unwrap()
    );
    assert_eq!(h.eg.oauth_refreshes(), 1);
    let bound = ward_daemon::connect::bind(&h.store, &h.plugin, &c.instance)
        .await
        .unwrap();
    let page = bound
        .fetch_audit(seven_days_ago(), None)
        .await
        .result
        .unwrap();
    assert_eq!(page.events.len(), 50);

    // Egnyte's long-lived tokens (`expires_in: -1`) are never refreshed.
    h.eg.set_token_lifetime(None);
    let c = h.connect().await;
    let creds = h.store.credentials(&c.instance.id).await.unwrap().unwrap();
    assert!(creds.expires_at_ms.is_none());
    assert!(
        !refresher
            .ensure_fresh(&h.store, &h.plugin, &c.instance)
            .await
            .unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_page_of_ten_thousand_events_fits_the_sandbox_limits() {
    let h = H::start(EgnyteConfig {
        events: 10_000,
        page_size: 10_000,
        ..EgnyteConfig::default()
    })
    .await;
    let c = h.connect().await;
    let page = c
        .bound
        .fetch_audit(seven_days_ago(), None)
        .await
        .result
        .unwrap();
    // Egnyte's documented maximum page, in one call.
    assert_eq!(page.events.len(), 10_000);
    assert!(!page.more);
}
