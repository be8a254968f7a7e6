//! Each connector against its providers' real response shapes: the
//! recorded scenarios of `tests/fixtures/` served by the replay stand-in
//! under the provider's host name, read through connect (exchange, Test
//! now) and the ingestor, and every field Ward stores checked, down to the
//! byte-identical raw JSON. Each test also checks that the connector asked
//! for exactly the recorded exchanges: nothing unmatched, nothing unused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use serde_json::value::RawValue;
use serde_json::{Value, json};
use ward_daemon::connect::{NewConnection, connect, create};
use ward_daemon::ingest::{Ingestor, Retry};
use ward_runtime::types::{Grant, OauthCode, PluginError};
use ward_runtime::{Bound, CallError};
use ward_standins::replay::ReplayStandIn;
use ward_store::{EventOrder, EventQuery, InstanceStatus, Store, StoredEvent, StoredUser};
use ward_tests::{EGNYTE_WASM, OKTA_WASM, ZENDESK_WASM, fixtures_dir, load_replay};

/// The fields Ward maps from one provider event, as expected.
struct Row {
    time_ms: i64,
    action: &'static str,
    actor_id: Option<&'static str>,
    actor_kind: &'static str,
    actor_name: Option<&'static str>,
    actor_email: Option<&'static str>,
    targets: Value,
    ip: Option<&'static str>,
    user_agent: Option<&'static str>,
    outcome: &'static str,
}

impl Row {
    fn to_value(&self) -> Value {
        json!({
            "time_ms": self.time_ms, "action": self.action,
            "actor": [self.actor_id, Some(self.actor_kind), self.actor_name, self.actor_email],
            "targets": self.targets.clone(), "ip": self.ip, "user_agent": self.user_agent,
            "outcome": self.outcome,
        })
    }
}

/// The same fields of a stored event.
fn stored_value(e: &StoredEvent) -> Value {
    json!({
        "time_ms": e.time_ms, "action": e.action.as_str(),
        "actor": [
            e.actor_id.as_deref(), Some(e.actor_kind.as_str()),
            e.actor_name.as_deref(), e.actor_email.as_deref(),
        ],
        "targets": serde_json::from_str::<Value>(&e.targets_json).unwrap(),
        "ip": e.ip.as_deref(), "user_agent": e.user_agent.as_deref(),
        "outcome": e.outcome.as_str(),
    })
}

fn ms(rfc3339: &str) -> i64 {
    let t = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .unwrap();
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap()
}

/// The body of a recorded response, as served.
fn fixture_body(connector: &str, scenario: &str, name: &str) -> String {
    let text =
        std::fs::read_to_string(fixtures_dir(connector, scenario).join(format!("{name}.response")))
            .unwrap();
    let (_, body) = text.split_once("\n\n").unwrap();
    body.to_owned()
}

/// The raw JSON of each item of a recorded list body (`key` names the
/// array inside an object; `None` for a top-level array).
fn raw_items(body: &str, key: Option<&str>) -> Vec<String> {
    let list: Vec<Box<RawValue>> = match key {
        None => serde_json::from_str(body).unwrap(),
        Some(key) => {
            let object: BTreeMap<String, Box<RawValue>> = serde_json::from_str(body).unwrap();
            serde_json::from_str(object[key].get()).unwrap()
        }
    };
    list.iter().map(|r| r.get().to_owned()).collect()
}

async fn stored_events(store: &Store, id: &str) -> Vec<StoredEvent> {
    store
        .events(
            id,
            &EventQuery {
                limit: 1000,
                order: EventOrder::OldestFirst,
                ..EventQuery::default()
            },
        )
        .await
        .unwrap()
}

async fn stored_users(store: &Store, id: &str) -> Vec<StoredUser> {
    store.users(id, 1000, None).await.unwrap()
}

/// The fields Ward maps from a provider user.
fn user_values(users: &[StoredUser]) -> Vec<Value> {
    users
        .iter()
        .map(|u| {
            json!([
                u.user_id,
                u.email,
                u.login,
                u.name,
                u.status,
                u.is_admin,
                u.created_ms,
                u.last_login_ms
            ])
        })
        .collect()
}

/// An expected user: id, e-mail, login, name, status, admin, created and
/// last login (RFC 3339).
#[allow(clippy::too_many_arguments)]
fn user(
    id: &str,
    email: &str,
    login: &str,
    name: &str,
    status: &str,
    admin: bool,
    created: Option<&str>,
    last_login: Option<&str>,
) -> Value {
    json!([
        id,
        email,
        login,
        name,
        status,
        admin,
        created.map(ms),
        last_login.map(ms)
    ])
}

fn assert_rows(events: &[StoredEvent], expected: &[Row]) {
    assert_eq!(events.len(), expected.len(), "{events:#?}");
    for (e, want) in events.iter().zip(expected) {
        assert_eq!(stored_value(e), want.to_value(), "event {}", e.event_id);
    }
}

/// Everything recorded was asked for, and nothing else.
fn assert_replayed_exactly(replay: &ReplayStandIn) {
    assert_eq!(replay.unmatched(), Vec::<String>::new());
    assert_eq!(replay.unserved(), Vec::<String>::new());
}

fn ingestor(store: &Store, bound: Bound, id: &str) -> Ingestor {
    Ingestor {
        store: store.clone(),
        bound,
        instance_id: id.to_owned(),
        fence: None,
        retry: Retry::default(),
    }
}

const SINCE_60_DAYS: i64 = 60 * 86_400_000;

fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okta_system_log_and_users_replayed_map_every_field() {
    let (replay, l) = load_replay("okta", "api-token", "acme.okta.com", OKTA_WASM).await;
    let (instance, bound, report) = connect(
        &l.store,
        &l.plugin,
        "Okta",
        BTreeMap::from([("domain".to_owned(), "acme".to_owned())]),
        Grant::ApiToken("00acmeSswsTokenForReplay".into()),
    )
    .await
    .unwrap();
    assert!(report.checks.iter().all(|c| c.ok), "{report:?}");
    assert_eq!(report.account_name.as_deref(), Some("Acme Outfitters"));
    assert_eq!(
        report.principal.as_deref(),
        Some("rosa.marquez@acme.example")
    );
    assert_eq!(instance.status, InstanceStatus::Connected);

    let ingest = ingestor(&l.store, bound, &instance.id);
    let stats = ingest
        .sync_audit(now_ms() - SINCE_60_DAYS, |_| {})
        .await
        .unwrap();
    assert_eq!((stats.pages, stats.new), (2, 5));
    let events = stored_events(&l.store, &instance.id).await;
    let lena_email = "lena.fischer@acme.example";
    let lena = Some(lena_email);
    assert_rows(
        &events,
        &[
            Row {
                time_ms: ms("2024-11-27T08:02:15.118Z"),
                action: "user.session.start",
                actor_id: Some("00u7kw1npeLi3Uq9d0h8"),
                actor_kind: "user",
                actor_name: Some("Lena Fischer"),
                actor_email: lena,
                targets: json!([{"id": "0oa1acmeconsole0h8", "kind": "AppInstance", "name": "Okta Admin Console"}]),
                ip: Some("198.51.100.23"),
                user_agent: Some(
                    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
                ),
                outcome: "success",
            },
            Row {
                time_ms: ms("2024-11-27T08:05:41.502Z"),
                action: "user.authentication.auth_via_mfa",
                actor_id: Some("00u9oq2mtaRk8Wb1p0h8"),
                actor_kind: "user",
                actor_name: Some("Omar Haddad"),
                actor_email: Some("omar.haddad@acme.example"),
                targets: json!([{"id": "00u9oq2mtaRk8Wb1p0h8", "kind": "User", "name": "Omar Haddad"}]),
                ip: Some("203.0.113.77"),
                user_agent: Some(
                    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15",
                ),
                outcome: "failure",
            },
            // DENY is a failure; an `alternateId` that is no address is no e-mail.
            Row {
                time_ms: ms("2024-11-27T08:07:03.009Z"),
                action: "policy.evaluate_sign_on",
                actor_id: Some("00u3zz8vnbQa4Lm7r0h8"),
                actor_kind: "user",
                actor_name: Some("Unknown"),
                actor_email: None,
                targets: json!([{"id": "rul1acmedeny0h8", "kind": "PolicyRule", "name": "Block anonymizers"}]),
                ip: Some("192.0.2.199"),
                user_agent: Some("python-requests/2.32.3"),
                outcome: "failure",
            },
            // CHALLENGE is neither: the sign-on went on to a factor.
            Row {
                time_ms: ms("2024-11-27T08:09:30.640Z"),
                action: "policy.evaluate_sign_on",
                actor_id: Some("00u7kw1npeLi3Uq9d0h8"),
                actor_kind: "user",
                actor_name: Some("Lena Fischer"),
                actor_email: lena,
                targets: json!([{"id": "rul1acmemfa00h8", "kind": "PolicyRule", "name": "Require MFA off-network"}]),
                ip: Some("198.51.100.23"),
                user_agent: Some("Okta Verify/9.27.0 (iOS 18.1)"),
                outcome: "unknown",
            },
            // An app acting (no client address, no user agent).
            Row {
                time_ms: ms("2024-11-27T08:12:00.000Z"),
                action: "user.lifecycle.deactivate",
                actor_id: Some("0oa1acmeworkflows0h8"),
                actor_kind: "service",
                actor_name: Some("Acme Provisioning"),
                actor_email: None,
                targets: json!([{"id": "00u2departed00h8", "kind": "User", "name": "Sam Departed"}]),
                ip: None,
                user_agent: None,
                outcome: "success",
            },
        ],
    );
    let raws = raw_items(
        &fixture_body("okta", "api-token", "05-logs-first-page"),
        None,
    );
    let ids: Vec<String> = (1..=5)
        .map(|i| format!("7f3c1e2a-ac9b-11ef-9d41-0b5c2a6f000{i}"))
        .collect();
    for ((e, raw), id) in events.iter().zip(&raws).zip(&ids) {
        assert_eq!(&e.event_id, id);
        assert_eq!(
            &e.raw_json, raw,
            "raw JSON of {id} differs from what Okta sent"
        );
    }
    // The polling point is the last `next` link.
    assert_eq!(
        l.store
            .cursor(&instance.id, "audit")
            .await
            .unwrap()
            .as_deref(),
        Some(
            "https://acme.okta.com/api/v1/logs?limit=1000&sortOrder=ASCENDING&after=1732700000000_1"
        )
    );

    let stats = ingest.sync_users().await.unwrap();
    assert_eq!((stats.pages, stats.new), (2, 3));
    let users = stored_users(&l.store, &instance.id).await;
    assert_eq!(
        user_values(&users),
        [
            user(
                "00u5acmeadm1nWard0h8",
                "rosa.marquez@acme.example",
                "rosa.marquez@acme.example",
                "Rosa Marquez",
                "ACTIVE",
                false,
                Some("2023-02-11T09:14:02.000Z"),
                Some("2024-11-27T07:41:19.000Z")
            ),
            user(
                "00u7kw1npeLi3Uq9d0h8",
                lena_email,
                lena_email,
                "Lena Fischer",
                "ACTIVE",
                false,
                Some("2023-08-01T10:00:00.000Z"),
                Some("2024-11-27T08:02:15.000Z")
            ),
            user(
                "00u9oq2mtaRk8Wb1p0h8",
                "omar.haddad@acme.example",
                "omar.haddad@acme.example",
                "Omar Haddad",
                "SUSPENDED",
                false,
                Some("2024-02-20T08:30:00.000Z"),
                None
            ),
        ]
    );
    let mut user_raws = raw_items(
        &fixture_body("okta", "api-token", "07-users-first-page"),
        None,
    );
    user_raws.extend(raw_items(
        &fixture_body("okta", "api-token", "08-users-last-page"),
        None,
    ));
    for (u, raw) in users.iter().zip(&user_raws) {
        assert_eq!(&u.raw_json, raw);
    }

    assert_replayed_exactly(&replay);
    let requests = replay.requests();
    assert!(
        requests
            .iter()
            .all(|r| r.auth_scheme.as_deref() == Some("SSWS")
                && r.host.as_deref() == Some("acme.okta.com"))
    );
    replay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okta_refusing_the_role_is_a_failed_check_with_oktas_own_words() {
    let (replay, l) = load_replay("okta", "role-refused", "acme.okta.com", OKTA_WASM).await;
    let (instance, _, report) = connect(
        &l.store,
        &l.plugin,
        "Okta",
        BTreeMap::from([("domain".to_owned(), "acme".to_owned())]),
        Grant::ApiToken("00acmeSswsTokenForReplay".into()),
    )
    .await
    .unwrap();
    let check = |name: &str| {
        report
            .checks
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no {name}: {report:?}"))
    };
    assert!(check("credentials-valid").ok);
    for name in ["admin-role", "system-log-readable"] {
        let c = check(name);
        assert!(!c.ok, "{c:?}");
        assert!(
            c.message.contains(
                "HTTP 403: E0000006 You do not have permission to perform the requested action"
            ),
            "{c:?}"
        );
    }
    // Stored: error with both failed checks, halted, nothing ingested.
    let stored = l.store.instance(&instance.id).await.unwrap().unwrap();
    assert_eq!(stored.status, InstanceStatus::Error);
    let message = stored.status_message.unwrap();
    assert!(
        message.contains("admin-role: ") && message.contains("E0000006"),
        "{message}"
    );
    assert!(l.store.is_halted(&instance.id).await.unwrap());
    assert_eq!(l.store.event_count(&instance.id).await.unwrap(), 0);
    assert_replayed_exactly(&replay);
    replay.shutdown().await;
}

fn zendesk_config() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("subdomain".to_owned(), "acme".to_owned()),
        ("email".to_owned(), "priya.raman@acme.example".to_owned()),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zendesk_audit_log_and_users_replayed_map_every_field() {
    let (replay, l) = load_replay("zendesk", "api-token", "acme.zendesk.com", ZENDESK_WASM).await;
    let (instance, bound, report) = connect(
        &l.store,
        &l.plugin,
        "Zendesk",
        zendesk_config(),
        Grant::ApiToken("acmeZendeskReplayToken0123456789".into()),
    )
    .await
    .unwrap();
    assert!(report.checks.iter().all(|c| c.ok), "{report:?}");
    assert_eq!(report.account_name.as_deref(), Some("Acme Help Center"));
    assert_eq!(
        report.principal.as_deref(),
        Some("priya.raman@acme.example")
    );

    let ingest = ingestor(&l.store, bound, &instance.id);
    let stats = ingest
        .sync_audit(now_ms() - 7 * 86_400_000, |_| {})
        .await
        .unwrap();
    assert_eq!((stats.pages, stats.new), (2, 4));
    let events = stored_events(&l.store, &instance.id).await;
    let priya = Some("902114563301");
    let jonas_target = json!([{"id": "902114563377", "kind": "user", "name": "Jonas Berg"}]);
    assert_rows(
        &events,
        &[
            Row {
                time_ms: ms("2024-11-26T10:15:07Z"),
                action: "user.update",
                actor_id: priya,
                actor_kind: "user",
                actor_name: Some("Priya Raman"),
                actor_email: None,
                targets: jonas_target.clone(),
                ip: Some("198.51.100.40"),
                user_agent: None,
                outcome: "success",
            },
            Row {
                time_ms: ms("2024-11-26T10:15:07Z"),
                action: "user.login",
                actor_id: Some("902114563377"),
                actor_kind: "user",
                actor_name: Some("Jonas Berg"),
                actor_email: None,
                targets: jonas_target,
                ip: Some("203.0.113.12"),
                user_agent: None,
                outcome: "success",
            },
            // Zendesk itself: actor -1, named after the account's brand.
            Row {
                time_ms: ms("2024-11-26T11:00:00Z"),
                action: "account_setting.update",
                actor_id: Some("-1"),
                actor_kind: "system",
                actor_name: Some("Acme Help Center"),
                actor_email: None,
                targets: json!([{"id": null, "kind": "account_setting", "name": "Require two-factor authentication for agents"}]),
                ip: None,
                user_agent: None,
                outcome: "success",
            },
            // An empty `ip_address` is no address.
            Row {
                time_ms: ms("2024-11-26T11:02:30Z"),
                action: "apitoken.create",
                actor_id: priya,
                actor_kind: "user",
                actor_name: Some("Priya Raman"),
                actor_email: None,
                targets: json!([{"id": "360000222", "kind": "apitoken", "name": "SIEM export token"}]),
                ip: None,
                user_agent: None,
                outcome: "success",
            },
        ],
    );
    let mut raws = raw_items(
        &fixture_body("zendesk", "api-token", "04-audit-window-first-page"),
        Some("audit_logs"),
    );
    raws.extend(raw_items(
        &fixture_body("zendesk", "api-token", "05-audit-window-last-page"),
        Some("audit_logs"),
    ));
    let ids = [
        "20481100000001",
        "20481100000002",
        "20481100000007",
        "20481100000009",
    ];
    for ((e, raw), id) in events.iter().zip(&raws).zip(ids) {
        assert_eq!(e.event_id, id);
        assert_eq!(&e.raw_json, raw);
    }

    ingest.sync_users().await.unwrap();
    let users = stored_users(&l.store, &instance.id).await;
    assert_eq!(
        user_values(&users),
        [
            user(
                "902114563301",
                "priya.raman@acme.example",
                "priya.raman@acme.example",
                "Priya Raman",
                "active (admin)",
                true,
                Some("2021-04-12T14:03:55Z"),
                Some("2024-11-27T06:55:01Z")
            ),
            user(
                "902114563377",
                "jonas.berg@acme.example",
                "jonas.berg@acme.example",
                "Jonas Berg",
                "suspended (agent)",
                false,
                Some("2022-09-01T07:30:00Z"),
                None
            ),
        ]
    );

    assert_replayed_exactly(&replay);
    assert!(
        replay
            .requests()
            .iter()
            .all(|r| r.auth_scheme.as_deref() == Some("Basic"))
    );
    replay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zendesk_anonymous_current_user_means_the_credentials_were_rejected() {
    let (replay, l) = load_replay("zendesk", "anonymous", "acme.zendesk.com", ZENDESK_WASM).await;
    let connected = create(
        &l.store,
        &l.plugin,
        NewConnection {
            name: "Zendesk".into(),
            config: zendesk_config(),
            tags: Vec::new(),
            grant: Grant::ApiToken("acmeZendeskWrongToken".into()),
            host_secrets: BTreeMap::new(),
        },
    )
    .await
    .unwrap();
    match &connected.report {
        Err(CallError::Plugin(PluginError::Unauthorized(m))) => {
            assert!(
                m.contains("anonymous user") && m.contains("priya.raman@acme.example/token"),
                "{m}"
            );
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    let stored = l
        .store
        .instance(&connected.instance.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, InstanceStatus::Error);
    assert!(
        stored
            .status_message
            .as_deref()
            .is_some_and(|m| m.starts_with("credentials rejected: reconnect")),
        "{stored:?}"
    );
    assert!(l.store.is_halted(&stored.id).await.unwrap());
    assert_eq!(l.store.event_count(&stored.id).await.unwrap(), 0);
    assert_replayed_exactly(&replay);
    replay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egnyte_stream_users_and_a_refused_cursor_replayed_map_every_field() {
    let (replay, l) = load_replay("egnyte", "oauth", "acme.egnyte.com", EGNYTE_WASM).await;
    let connected = create(
        &l.store,
        &l.plugin,
        NewConnection {
            name: "Egnyte".into(),
            config: BTreeMap::from([
                ("domain".to_owned(), "acme".to_owned()),
                ("client_id".to_owned(), "acmeEgnyteClient01".to_owned()),
            ]),
            tags: Vec::new(),
            grant: Grant::OauthCode(OauthCode {
                code: "acme-code-0001".into(),
                redirect_uri: "https://ward.example/oauth/callback".into(),
                code_verifier: None,
            }),
            host_secrets: BTreeMap::from([("client_secret".to_owned(), "acme-secret".to_owned())]),
        },
    )
    .await
    .unwrap();
    let report = connected.report.as_ref().unwrap();
    assert!(report.checks.iter().all(|c| c.ok), "{report:?}");
    assert_eq!(report.principal.as_deref(), Some("mwinter"));
    assert_eq!(report.account_name.as_deref(), Some("acme.egnyte.com"));
    let id = connected.instance.id.clone();
    assert_eq!(connected.instance.status, InstanceStatus::Connected);

    let ingest = ingestor(&l.store, connected.bound, &id);
    let since = now_ms() - 7 * 86_400_000;
    assert_eq!(ingest.sync_audit(since, |_| {}).await.unwrap().new, 3);
    // The next poll: Egnyte refuses the stored cursor; the stream restarts
    // from the newest stored event, whose repeat the store drops.
    let again = ingest.sync_audit(since, |_| {}).await.unwrap();
    assert_eq!((again.seen, again.new), (2, 1));
    let events = stored_events(&l.store, &id).await;
    let (mara_name, mara_address) = ("Mara Winter", "mara.winter@acme.example");
    let (mara, mara_email) = (Some(mara_name), Some(mara_address));
    assert_rows(
        &events,
        &[
            Row {
                time_ms: 1_732_615_201_500,
                action: "file.Download",
                actor_id: Some("40711"),
                actor_kind: "user",
                actor_name: mara,
                actor_email: mara_email,
                targets: json!([{"id": null, "kind": "file", "name": "/Shared/Finance/Q4/forecast.xlsx"}]),
                ip: Some("198.51.100.61"),
                user_agent: Some("Desktop App"),
                outcome: "success",
            },
            Row {
                time_ms: 1_732_615_388_020,
                action: "login.Login",
                actor_id: Some("40733"),
                actor_kind: "user",
                actor_name: Some("Tom Okafor"),
                actor_email: Some("tom.okafor@acme.example"),
                targets: json!([]),
                ip: Some("203.0.113.90"),
                user_agent: Some("Web UI"),
                outcome: "failure",
            },
            Row {
                time_ms: 1_732_615_502_111,
                action: "user.Disable",
                actor_id: None,
                actor_kind: "user",
                actor_name: mara,
                actor_email: mara_email,
                targets: json!([{"id": "tom.okafor@acme.example", "kind": "user", "name": "Tom Okafor"}]),
                ip: None,
                user_agent: Some("Web UI"),
                outcome: "success",
            },
            Row {
                time_ms: 1_732_616_000_000,
                action: "group.Create",
                actor_id: None,
                actor_kind: "user",
                actor_name: mara,
                actor_email: mara_email,
                targets: json!([{"id": null, "kind": "group", "name": "Finance Auditors"}]),
                ip: None,
                user_agent: Some("Web UI"),
                outcome: "success",
            },
        ],
    );
    let first = raw_items(
        &fixture_body("egnyte", "oauth", "05-stream-first-page"),
        Some("events"),
    );
    let restarted = raw_items(
        &fixture_body("egnyte", "oauth", "07-stream-restarted"),
        Some("events"),
    );
    let raws: Vec<&String> = first.iter().chain(restarted.iter().skip(1)).collect();
    for (e, raw) in events.iter().zip(raws) {
        assert_eq!(&e.raw_json, raw);
        assert!(
            e.event_id.starts_with("eg-") && e.event_id.len() == 35,
            "{}",
            e.event_id
        );
    }
    assert_eq!(
        replay.served()[4..],
        [
            "05-stream-first-page",
            "06-stream-cursor-refused",
            "07-stream-restarted"
        ]
    );

    ingest.sync_users().await.unwrap();
    let users = stored_users(&l.store, &id).await;
    assert_eq!(
        user_values(&users),
        [
            user(
                "40711",
                mara_address,
                "mwinter",
                mara_name,
                "active",
                true,
                None,
                None
            ),
            user(
                "40733",
                "tom.okafor@acme.example",
                "tokafor",
                "Tom Okafor",
                "inactive",
                false,
                None,
                None
            ),
        ]
    );
    assert_replayed_exactly(&replay);
    let api = replay.requests();
    assert!(
        api.iter()
            .filter(|r| r.path_and_query.starts_with("/pubapi/"))
            .all(|r| r.auth_scheme.as_deref() == Some("Bearer"))
    );
    replay.shutdown().await;
}
