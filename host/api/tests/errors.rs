//! Defects found by fuzzing the API: connections, content types, error
//! shapes, limits, cursors and tags. Every answer is checked on the wire.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Api, TOKEN};
use serde_json::{Value, json};
use ward_store::EgressRecord;

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The API's error shape: `{"error": code, "message": text}`, nothing else.
fn assert_api_error(body: &str, code: &str) {
    let v: Value = serde_json::from_str(body)
        .map_err(|e| format!("{e}: {body:?}"))
        .unwrap();
    assert_eq!(v["error"], code, "{body}");
    assert!(
        v["message"].as_str().is_some_and(|m| m.len() > 10),
        "{body}"
    );
    assert_eq!(v.as_object().unwrap().len(), 2, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_refused_before_its_body_is_read_says_connection_close() {
    let api = Api::start().await;
    // No credentials, a JSON body: 401, and the server says it closes.
    let body = "{\"name\": \"x\"}";
    let request = format!(
        "POST /instances HTTP/1.1\r\nHost: ward\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let (status, headers, text) = api.raw(request.as_bytes()).await;
    assert_eq!(status, 401, "{text}");
    assert_eq!(header(&headers, "connection"), Some("close"), "{headers:?}");
    assert_api_error(&text, "unauthorized");

    // A keep-alive client is not left with a dead connection: the same
    // pooled client goes on working.
    let url = format!("{}/instances", api.url);
    let refused = api.http.post(&url).body(body).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers()["connection"], "close");
    let (s, b) = api.admin_call("GET", "/instances", None).await;
    assert_eq!(s, 200, "{b}");

    // A body the handler read to its end keeps the connection open.
    let (s, created) = api.create_okta("ward-demo", TOKEN).await;
    assert_eq!(s, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    let patch = "{\"name\": \"renamed\"}";
    let request = format!(
        "PATCH /instances/{id} HTTP/1.1\r\nHost: ward\r\nAuthorization: {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{patch}",
        api.admin(),
        patch.len()
    );
    let (status, headers, text) = api.raw(request.as_bytes()).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(header(&headers, "connection"), None, "{headers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_with_the_content_type_the_document_names() {
    let api = Api::start().await;
    let (s, doc) = api.admin_call("GET", "/openapi.json", None).await;
    assert_eq!(s, 200);
    let documented: Vec<&String> = doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    let served = api
        .http
        .get(format!("{}/metrics", api.url))
        .header("authorization", api.admin())
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
    let content_type = served.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(documented, vec![&content_type], "{doc}");
    assert!(content_type.starts_with("application/openmetrics-text"));
    assert!(served.text().await.unwrap().ends_with("# EOF\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framework_errors_come_back_in_the_api_json_shape() {
    let api = Api::start().await;
    let auth = api.admin();

    // 413: a 10 MB body, refused from its Content-Length before it is read.
    let request = format!(
        "POST /instances HTTP/1.1\r\nHost: ward\r\nAuthorization: {auth}\r\n\
         Content-Type: application/json\r\nContent-Length: 10485760\r\n\r\n{{\"element\":"
    );
    let (status, headers, text) = api.raw(request.as_bytes()).await;
    assert_eq!(status, 413, "{text}");
    assert_api_error(&text, "payload_too_large");
    assert_eq!(header(&headers, "connection"), Some("close"));

    // 400: a path segment that is not UTF-8.
    let (status, _, text) = api
        .raw(
            format!(
                "GET /instances/%FF%FE HTTP/1.1\r\nHost: ward\r\nAuthorization: {auth}\r\n\r\n"
            )
            .as_bytes(),
        )
        .await;
    assert_eq!(status, 400, "{text}");
    assert_api_error(&text, "bad_request");

    // 405, with Allow kept.
    let (status, headers, text) = api
        .raw(format!("PUT /elements HTTP/1.1\r\nHost: ward\r\nAuthorization: {auth}\r\nContent-Length: 0\r\n\r\n").as_bytes())
        .await;
    assert_eq!(status, 405, "{text}");
    assert_api_error(&text, "method_not_allowed");
    assert!(
        header(&headers, "allow").is_some_and(|a| a.contains("GET")),
        "{headers:?}"
    );

    // 414: a 20 KiB query.
    let long = "a".repeat(20 * 1024);
    let (status, _, text) = api
        .raw(
            format!(
                "GET /instances?x={long} HTTP/1.1\r\nHost: ward\r\nAuthorization: {auth}\r\n\r\n"
            )
            .as_bytes(),
        )
        .await;
    assert_eq!(status, 414, "{text}");
    assert_api_error(&text, "uri_too_long");

    // 431: too many header fields, then one field too large.
    let many: String = (0..150).map(|i| format!("X-Fuzz-{i}: {i}\r\n")).collect();
    let (status, _, text) = api
        .raw(
            format!("GET /instances HTTP/1.1\r\nHost: ward\r\nAuthorization: {auth}\r\n{many}\r\n")
                .as_bytes(),
        )
        .await;
    assert_eq!(status, 431, "{text}");
    assert_api_error(&text, "headers_too_large");
    let big = "b".repeat(40 * 1024);
    let (status, _, text) = api
        .raw(format!("GET /instances HTTP/1.1\r\nHost: ward\r\nAuthorization: {auth}\r\nX-Big: {big}\r\n\r\n").as_bytes())
        .await;
    assert_eq!(status, 431, "{text}");
    assert_api_error(&text, "headers_too_large");

    // Unauthenticated, the same limits answer first, still as JSON.
    let (status, _, text) = api
        .raw(format!("GET /instances?x={long} HTTP/1.1\r\nHost: ward\r\n\r\n").as_bytes())
        .await;
    assert_eq!(status, 414, "{text}");
    assert_api_error(&text, "uri_too_long");
}

fn egress(id: &str, i: i64) -> EgressRecord {
    EgressRecord {
        instance_id: id.to_owned(),
        plugin_key: "okta".into(),
        call: "fetch-audit".into(),
        at_ms: 1_800_000_000_000 + i,
        method: "GET".into(),
        url: format!("https://ward-demo.okta.com/api/v1/logs?n={i}"),
        allowed: true,
        reason: None,
        grant: Some("logs".into()),
        status: Some(200),
        bytes_sent: 0,
        bytes_received: 10,
        latency_ms: 1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paged_routes_refuse_bad_cursors_and_limits_alike() {
    let api = Api::start().await;
    let (s, created) = api.create_okta("ward-demo", TOKEN).await;
    assert_eq!(s, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    // Let the worker store some events and users, then stop it.
    let store = &api.daemon.store;
    while store.event_count(&id).await.unwrap() == 0
        || store.users(&id, 1, None).await.unwrap().is_empty()
    {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (s, b) = api
        .admin_call(
            "PATCH",
            &format!("/instances/{id}"),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let records: Vec<EgressRecord> = (0..5).map(|i| egress(&id, i)).collect();
    store.append_egress(&records).await.unwrap();

    // The egress log pages by cursor, newest first, nothing repeated.
    let mut urls: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut egress_cursor = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/instances/{id}/egress?limit=2&cursor={c}"),
            None => format!("/instances/{id}/egress?limit=2"),
        };
        let (s, b) = api.admin_call("GET", &path, None).await;
        assert_eq!(s, 200, "{b}");
        for e in b["egress"].as_array().unwrap() {
            urls.push(e["url"].as_str().unwrap().to_owned());
        }
        match b["nextCursor"].as_str() {
            Some(c) => {
                egress_cursor.get_or_insert_with(|| c.to_owned());
                cursor = Some(c.to_owned());
            }
            None => break,
        }
    }
    // The five records written last are the newest (dated ahead): they
    // come first, across three pages, each once, in order; the worker's
    // own requests follow.
    let seeded: Vec<&String> = urls.iter().filter(|u| u.contains("?n=")).collect();
    let expected: Vec<String> = (0..5)
        .rev()
        .map(|i| format!("https://ward-demo.okta.com/api/v1/logs?n={i}"))
        .collect();
    assert_eq!(seeded, expected.iter().collect::<Vec<_>>(), "{urls:?}");
    assert_eq!(&urls[..5], &expected[..], "{urls:?}");
    assert!(
        urls.len() > 5,
        "the worker's requests are listed too: {urls:?}"
    );

    // Valid cursors of each route, to append junk to.
    let (_, events) = api
        .admin_call("GET", &format!("/instances/{id}/events?limit=1"), None)
        .await;
    let (_, users) = api
        .admin_call("GET", &format!("/instances/{id}/users?limit=1"), None)
        .await;
    let valid = [
        ("events", events["nextCursor"].as_str().unwrap().to_owned()),
        ("users", users["nextCursor"].as_str().unwrap().to_owned()),
        ("egress", egress_cursor.unwrap()),
    ];
    for (route, good) in &valid {
        let base = format!("/instances/{id}/{route}");
        let (s, b) = api
            .admin_call("GET", &format!("{base}?cursor={good}"), None)
            .await;
        assert_eq!(s, 200, "{route}: {b}");
        for bad in [
            "garbage".to_owned(),
            format!("{good}AAAA"),
            format!("{good}x"),
            good[..good.len() - 1].to_owned(),
        ] {
            let (s, b) = api
                .admin_call("GET", &format!("{base}?cursor={bad}"), None)
                .await;
            assert_eq!(s, 400, "{route} cursor {bad}: {b}");
            assert!(b["message"].as_str().unwrap().contains("cursor"), "{b}");
        }
        for limit in ["0", "1001"] {
            let (s, b) = api
                .admin_call("GET", &format!("{base}?limit={limit}"), None)
                .await;
            assert_eq!(s, 400, "{route} limit {limit}: {b}");
            assert!(b["message"].as_str().unwrap().contains("1 to 1000"), "{b}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_are_bounded_in_count_and_length() {
    let api = Api::start().await;
    let create = |tags: Value| {
        json!({
            "element": {"key": "okta"},
            "providerData": {"apiToken": TOKEN},
            "configuration": {"domain": "ward-demo"},
            "tags": tags,
        })
    };
    let many: Vec<String> = (0..33).map(|i| format!("t{i}")).collect();
    let (s, b) = api
        .admin_call("POST", "/instances", Some(create(json!(many))))
        .await;
    assert_eq!(s, 422, "{b}");
    assert!(b["message"].as_str().unwrap().contains("at most 32"), "{b}");
    let (s, b) = api
        .admin_call("POST", "/instances", Some(create(json!(["x".repeat(65)]))))
        .await;
    assert_eq!(s, 422, "{b}");
    assert!(b["message"].as_str().unwrap().contains("1 to 64"), "{b}");
    assert_eq!(api.daemon.store.instances().await.unwrap().len(), 0);

    // The limits themselves are accepted, on create and on PATCH.
    let most: Vec<String> = (0..32).map(|i| format!("{i:0>64}")).collect();
    let (s, b) = api
        .admin_call("POST", "/instances", Some(create(json!(most))))
        .await;
    assert_eq!(s, 201, "{b}");
    let id = b["id"].as_str().unwrap();
    let (s, b) = api
        .admin_call(
            "PATCH",
            &format!("/instances/{id}"),
            Some(json!({"tags": many})),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    let (_, b) = api
        .admin_call("GET", &format!("/instances/{id}"), None)
        .await;
    assert_eq!(b["tags"].as_array().unwrap().len(), 32);
}
