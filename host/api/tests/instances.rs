//! Instances over the API against the Okta stand-in: create with an API
//! token, token scoping, list/get/patch/delete, Test now, reconnect, events,
//! users, egress, metrics.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Api, NOADMIN_TOKEN, TOKEN};
use serde_json::json;
use ward_store::{AUDIT_STREAM, NewEvent, NewUser};

fn event(i: i64, action: &str, actor: &str) -> NewEvent {
    NewEvent {
        event_id: format!("ev-{i:03}"),
        time_ms: 1_700_000_000_000 + i * 1000,
        action: action.into(),
        actor_id: Some(format!("id-{actor}")),
        actor_kind: "user".into(),
        actor_name: Some(actor.into()),
        actor_email: Some(format!("{actor}@example.com")),
        targets_json: "[]".into(),
        ip: None,
        user_agent: None,
        outcome: "success".into(),
        raw_json: "{}".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_lifecycle() {
    let api = Api::start().await;

    // Create with an API token: 201 with every field.
    let (status, body) = api.create_okta("ward-demo", TOKEN).await;
    assert_eq!(status, 201, "{body}");
    let inst = &body;
    let id = inst["id"].as_str().unwrap().to_string();
    let token = inst["token"].as_str().unwrap().to_string();
    assert!(token.len() >= 40);
    assert_eq!(inst["name"], "Okta ward-demo");
    assert!(inst["createdDate"].as_str().unwrap().contains('T'));
    assert_eq!(inst["element"]["key"], "okta");
    assert_eq!(inst["tags"], json!(["prod", "idp"]));
    assert_eq!(inst["valid"], true);
    assert_eq!(inst["disabled"], false);
    assert_eq!(inst["status"]["state"], "connected", "{body}");
    assert_eq!(
        inst["configuration"],
        json!({"domain": "ward-demo", "base_domain": "okta.com"})
    );
    assert_eq!(inst["status"]["credentialAgeDays"], 0);
    assert!(inst["status"]["credentialWarning"].is_null());
    assert!(body["testError"].is_null());
    assert!(
        body["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["ok"] == true)
    );
    assert!(!body["checks"].as_array().unwrap().is_empty());
    assert!(!body.to_string().contains(TOKEN), "the API token leaked");

    // A second instance, on an org whose token owner is not an admin: the
    // instance exists but is in error with the failed check.
    let (status, body2) = api.create_okta("ward-noadmin", NOADMIN_TOKEN).await;
    assert_eq!(status, 201, "{body2}");
    let other = body2["id"].as_str().unwrap().to_string();
    assert_eq!(body2["valid"], false);
    assert_eq!(body2["status"]["state"], "error");
    assert!(
        body2["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["ok"] == false)
    );
    assert!(body2["status"]["message"].as_str().is_some());

    // A token the provider rejects creates nothing.
    let (status, body3) = api.create_okta("ward-demo", "00wrong-token").await;
    assert_eq!(status, 422, "{body3}");
    assert!(
        body3["message"]
            .as_str()
            .unwrap()
            .contains("credentials rejected")
    );
    let (_, list) = api.admin_call("GET", "/instances", None).await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|i| i.get("token").is_none())
    );

    // The Element token works for its own instance only.
    let element = format!("Element {token}");
    let own = format!("/instances/{id}");
    let (s, b) = api.call("GET", &own, Some(&element), None).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["id"], id.as_str());
    for path in ["events", "users", "egress"] {
        let (s, _) = api
            .call("GET", &format!("{own}/{path}"), Some(&element), None)
            .await;
        assert_eq!(s, 200, "{path}");
    }
    let (s, _) = api
        .call("GET", &format!("/instances/{other}"), Some(&element), None)
        .await;
    assert_eq!(s, 403);
    let (s, _) = api.call("GET", "/instances", Some(&element), None).await;
    assert_eq!(s, 403);
    let (s, _) = api.call("DELETE", &own, Some(&element), None).await;
    assert_eq!(s, 403);
    let (s, _) = api
        .call("PATCH", &own, Some(&element), Some(json!({"name": "x"})))
        .await;
    assert_eq!(s, 403);
    let (s, _) = api.call("GET", "/elements", Some(&element), None).await;
    assert_eq!(s, 403);

    // Patch: rename, retag, disable, enable.
    let (s, b) = api
        .admin_call(
            "PATCH",
            &own,
            Some(json!({"name": "Okta prod", "tags": ["a"], "requestsPerMinute": 10})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["name"], "Okta prod");
    assert_eq!(b["tags"], json!(["a"]));
    assert_eq!(b["requestsPerMinute"], 10);
    let (_, b) = api
        .admin_call("PATCH", &own, Some(json!({"disabled": true})))
        .await;
    assert_eq!(b["disabled"], true);
    assert_eq!(b["valid"], false);
    assert_eq!(b["status"]["state"], "disabled");
    let (_, b) = api
        .admin_call("PATCH", &own, Some(json!({"disabled": false})))
        .await;
    assert_eq!(b["disabled"], false);
    assert_eq!(b["status"]["state"], "connecting");
    let (s, b) = api
        .admin_call("PATCH", &own, Some(json!({"bogus": 1})))
        .await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(b["error"], "bad_request");

    // Test now: per-check verdicts, status back to connected.
    let (s, b) = api
        .call("POST", &format!("{own}/test"), Some(&element), None)
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["ok"], true);
    assert!(
        b["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["ok"] == true)
    );
    assert_eq!(b["instance"]["status"]["state"], "connected");

    // Events: stored through the store's ingest path, read through the API.
    // They go to an instance made directly in the store: the API starts a
    // worker for instances it creates, which would add the stand-in's
    // events to the synthetic ones under test.
    let store = &api.daemon.store;
    let syn = store
        .create_instance(&ward_store::NewInstance {
            plugin_key: "okta".into(),
            plugin_version: "0.1.0".into(),
            name: "synthetic".into(),
            config: std::collections::BTreeMap::from([("domain".into(), "ward-demo".into())]),
            tags: vec![],
        })
        .await
        .unwrap();
    let syn_token = "synthetic-element-token-0123456789abcdef";
    store
        .set_instance_token(&syn.id, &ward_api::sha256_hex(syn_token))
        .await
        .unwrap();
    let syn_element = format!("Element {syn_token}");
    let data = format!("/instances/{}", syn.id);
    let mut events = Vec::new();
    for i in 0..30 {
        let (action, actor) = if i % 3 == 0 {
            ("user.session.start", "alice")
        } else {
            ("user.account.update_profile", "bob")
        };
        events.push(event(i, action, actor));
    }
    store
        .commit_audit_page(&syn.id, &events, "cursor-after-30")
        .await
        .unwrap();
    let (_, b) = api
        .admin_call(
            "GET",
            &format!("{data}/events?action=user.session.start"),
            None,
        )
        .await;
    assert_eq!(b["events"].as_array().unwrap().len(), 10);
    let (_, b) = api
        .admin_call(
            "GET",
            &format!("{data}/events?actor=alice@example.com"),
            None,
        )
        .await;
    assert_eq!(b["events"].as_array().unwrap().len(), 10);
    let (_, b) = api
        .admin_call("GET", &format!("{data}/events?actor=bob"), None)
        .await;
    assert_eq!(b["events"].as_array().unwrap().len(), 20);
    let from = 1_700_000_000_000i64 + 10_000;
    let to = "2023-11-14T22:13:40Z"; // 1_700_000_020_000
    let (s, b) = api
        .admin_call("GET", &format!("{data}/events?from={from}&to={to}"), None)
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["events"].as_array().unwrap().len(), 10);
    // Pagination, newest first, 7 per page: 30 events, no repeats.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("{data}/events?limit=7&cursor={c}"),
            None => format!("{data}/events?limit=7"),
        };
        let (s, b) = api.call("GET", &q, Some(&syn_element), None).await;
        assert_eq!(s, 200, "{b}");
        for e in b["events"].as_array().unwrap() {
            seen.push(e["eventId"].as_str().unwrap().to_string());
        }
        match b["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 30);
    assert_eq!(seen[0], "ev-029");
    assert_eq!(seen[29], "ev-000");
    let (s, b) = api
        .admin_call("GET", &format!("{data}/events?cursor=!!"), None)
        .await;
    assert_eq!(s, 400, "{b}");
    let (s, _) = api
        .admin_call("GET", &format!("{data}/events?from=yesterday"), None)
        .await;
    assert_eq!(s, 400);

    // Users.
    let users: Vec<NewUser> = (0..3)
        .map(|i| NewUser {
            user_id: format!("u{i}"),
            email: Some(format!("u{i}@example.com")),
            login: None,
            name: None,
            status: Some("ACTIVE".into()),
            is_admin: i == 0,
            created_ms: None,
            last_login_ms: None,
            raw_json: "{}".into(),
        })
        .collect();
    store
        .commit_users_page(&syn.id, &users, None)
        .await
        .unwrap();
    let (_, b) = api
        .admin_call("GET", &format!("{data}/users?limit=2"), None)
        .await;
    assert_eq!(b["users"].as_array().unwrap().len(), 2);
    let c = b["nextCursor"].as_str().unwrap().to_string();
    let (_, b) = api
        .admin_call("GET", &format!("{data}/users?limit=2&cursor={c}"), None)
        .await;
    assert_eq!(b["users"].as_array().unwrap().len(), 1);

    // Egress: the exchange/test calls to the stand-in, all allowed.
    let (_, b) = api.admin_call("GET", &format!("{own}/egress"), None).await;
    let egress = b["egress"].as_array().unwrap();
    assert!(!egress.is_empty());
    assert!(egress.iter().all(|e| {
        e["allowed"] == true
            && e["url"]
                .as_str()
                .unwrap()
                .starts_with("https://ward-demo.okta.com/")
    }));
    assert!(!b.to_string().contains(TOKEN));

    // A revoked token: Test now puts the instance in error, asking to reconnect.
    api.okta.revoke_token();
    let (s, b) = api.admin_call("POST", &format!("{own}/test"), None).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["ok"], false);
    assert_eq!(b["instance"]["status"]["state"], "error");
    let msg = b["instance"]["status"]["message"].as_str().unwrap();
    assert!(msg.starts_with("credentials rejected: reconnect"), "{msg}");
    // Halted: a restarted daemon would not resume it.
    assert!(store.is_halted(&id).await.unwrap());
    assert!(!store.resumable_instances().await.unwrap().contains(&id));
    api.okta.restore_token();

    // Reconnect: new credentials, cursor and events kept, token still valid.
    let cursor_before = store.cursor(&id, AUDIT_STREAM).await.unwrap();
    let stored_before = store.event_count(&id).await.unwrap();
    let (s, b) = api
        .admin_call(
            "PUT",
            &format!("{own}/credentials"),
            Some(json!({"providerData": {"apiToken": TOKEN}})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["instance"]["status"]["state"], "connected");
    assert_eq!(
        store.cursor(&id, AUDIT_STREAM).await.unwrap().as_deref(),
        cursor_before.as_deref()
    );
    // Reconnecting released the halt and restarted the worker.
    assert!(!store.is_halted(&id).await.unwrap());
    assert!(api.daemon.scheduler.is_running(&id));
    assert!(cursor_before.is_some());
    assert_eq!(b["instance"]["status"]["eventsStored"], stored_before);
    let (s, _) = api.call("GET", &own, Some(&element), None).await;
    assert_eq!(s, 200);
    let (s, b) = api
        .admin_call(
            "PUT",
            &format!("{own}/credentials"),
            Some(json!({"providerData": {"apiToken": "00bad"}})),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    // A rejected reconnect keeps the working credentials.
    let (_, b) = api.admin_call("POST", &format!("{own}/test"), None).await;
    assert_eq!(b["ok"], true, "{b}");
    assert_eq!(b["instance"]["status"]["state"], "connected");

    // Metrics and health.
    let (s, b) = api.admin_call("GET", "/metrics", None).await;
    assert_eq!(s, 200);
    let text = b.as_str().unwrap();
    assert!(
        text.contains("ward_instances{status=\"connected\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("ward_instances{status=\"error\"} 1"),
        "{text}"
    );
    assert!(text.contains(&format!("ward_events_stored{{instance=\"{}\"}} 30", syn.id)));
    let (s, b) = api.admin_call("GET", "/healthz", None).await;
    assert_eq!(s, 200);
    assert_eq!(b["status"], "ok");

    // Elements.
    let (_, b) = api.admin_call("GET", "/elements", None).await;
    let okta = b
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["key"] == "okta")
        .unwrap();
    let digest = okta["id"].as_str().unwrap().to_string();
    let (s, b) = api
        .admin_call("GET", &format!("/elements/{digest}"), None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(b["key"], "okta");
    let (s, _) = api.admin_call("GET", "/elements/nope", None).await;
    assert_eq!(s, 404);

    // Delete: gone, and its token with it.
    let (s, _) = api.admin_call("DELETE", &own, None).await;
    assert_eq!(s, 204);
    let (s, _) = api.admin_call("GET", &own, None).await;
    assert_eq!(s, 404);
    let (s, _) = api.call("GET", &own, Some(&element), None).await;
    assert_eq!(s, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_file_is_private_and_hashes_only_are_stored() {
    let api = Api::start().await;
    let path = api.daemon.config.data_dir.join("api-secrets.toml");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let hashes = api.daemon.store.api_secret_hashes().await.unwrap();
    assert_eq!(hashes["user"], ward_api::sha256_hex(&api.secrets.user));
    assert_ne!(hashes["user"], api.secrets.user);
    // A second start keeps the same secrets.
    assert_eq!(
        ward_api::ensure_api_secrets(&api.daemon).await.unwrap(),
        ward_api::SecretsSetup::Stored
    );
    let (s, _) = api.admin_call("GET", "/healthz", None).await;
    assert_eq!(s, 200);
    // Only one secret right is not enough.
    let half = format!("User {}, Organization wrong", api.secrets.user);
    let (s, b) = api.call("GET", "/healthz", Some(&half), None).await;
    assert_eq!(s, 401);
    assert_eq!(b["error"], "unauthorized");
}
