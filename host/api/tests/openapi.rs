//! The OpenAPI document: it is well formed, lists exactly the router's
//! routes, and every route refuses missing and wrong credentials with 401.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use common::Api;
use serde_json::Value;

/// Every route the API serves. The router and the document are built from
/// one list in `ward_api`; this list is the test's independent record.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/elements"),
    ("get", "/elements/{keyOrId}"),
    ("get", "/elements/{keyOrId}/usage"),
    ("get", "/elements/{keyOrId}/oauth/url"),
    ("get", "/oauth/callback"),
    ("get", "/oauth/states/{state}"),
    ("get", "/instances"),
    ("post", "/instances"),
    ("get", "/instances/{id}"),
    ("patch", "/instances/{id}"),
    ("delete", "/instances/{id}"),
    ("post", "/instances/{id}/test"),
    ("put", "/instances/{id}/credentials"),
    ("get", "/instances/{id}/events"),
    ("get", "/instances/{id}/users"),
    ("get", "/instances/{id}/egress"),
    ("get", "/sinks"),
    ("post", "/sinks/{name}/resume"),
    ("put", "/sink-secrets/{name}"),
    ("get", "/events/export"),
    ("get", "/openapi.json"),
    ("get", "/metrics"),
    ("get", "/healthz"),
    ("get", "/livez"),
];

/// Routes that answer without credentials (and say nothing but that the
/// daemon is alive).
const PUBLIC: &[&str] = &["/livez"];

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    doc.pointer(pointer)
}

fn check_refs(doc: &Value, v: &Value, bad: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref")
                && resolve(doc, r).is_none()
            {
                bad.push(r.clone());
            }
            for x in map.values() {
                check_refs(doc, x, bad);
            }
        }
        Value::Array(xs) => xs.iter().for_each(|x| check_refs(doc, x, bad)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn document_is_valid_and_every_route_requires_credentials() {
    let api = Api::start().await;
    let (status, doc) = api.admin_call("GET", "/openapi.json", None).await;
    assert_eq!(status, 200);
    // Same document as the library builds.
    assert_eq!(doc, serde_json::to_value(ward_api::openapi()).unwrap());

    // Structure (OpenAPI 3.1): version, info, paths, operations with
    // responses, security naming declared schemes, resolvable $refs,
    // declared path parameters.
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(doc["info"]["title"].is_string());
    assert!(doc["info"]["version"].is_string());
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    let mut listed = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        assert!(path.starts_with('/'));
        for (method, op) in item.as_object().unwrap() {
            assert!(METHODS.contains(&method.as_str()), "{method} {path}");
            listed.insert((method.clone(), path.clone()));
            assert!(
                !op["responses"].as_object().unwrap().is_empty(),
                "{method} {path} has no responses"
            );
            if PUBLIC.contains(&path.as_str()) {
                continue;
            }
            assert!(
                op["responses"].get("401").is_some(),
                "{method} {path} does not document 401"
            );
            let security = op["security"].as_array().unwrap();
            assert!(!security.is_empty(), "{method} {path} has no security");
            for req in security {
                for name in req.as_object().unwrap().keys() {
                    assert!(schemes.contains_key(name), "unknown scheme {name}");
                }
            }
            let params: BTreeSet<String> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["in"] == "path")
                        .map(|p| p["name"].as_str().unwrap().to_string())
                        .collect()
                })
                .unwrap_or_default();
            let in_path: BTreeSet<String> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .map(str::to_string)
                .collect();
            assert_eq!(params, in_path, "{method} {path} path parameters");
        }
    }
    let mut bad = Vec::new();
    check_refs(&doc, &doc, &mut bad);
    assert!(bad.is_empty(), "unresolved $refs: {bad:?}");

    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(listed, expected, "document and route list differ");

    // Walk every route: no credentials, wrong secrets, unknown token → 401.
    let wrong_admin = "User wrong, Organization wrong";
    for (method, path) in ROUTES.iter().filter(|(_, p)| !PUBLIC.contains(p)) {
        let concrete = path
            .replace("{keyOrId}", "okta")
            .replace("{id}", "0123456789abcdef0123456789abcdef")
            .replace("{state}", "not-a-state");
        let body = matches!(*method, "post" | "put" | "patch").then(|| serde_json::json!({}));
        for auth in [
            None,
            Some(wrong_admin),
            Some("Element not-a-token"),
            Some("Bearer x"),
        ] {
            let (status, resp) = api
                .call(&method.to_uppercase(), &concrete, auth, body.clone())
                .await;
            assert_eq!(status, 401, "{method} {concrete} with {auth:?}: {resp}");
            assert_eq!(resp["error"], "unauthorized", "{method} {concrete}");
            assert!(resp["message"].as_str().unwrap().len() > 20);
        }
    }
    // Liveness answers anyone, with no details.
    let (status, b) = api.call("GET", "/livez", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(b, serde_json::json!({"status": "ok"}));

    // Unknown routes do not reveal themselves without credentials either.
    let (status, _) = api.call("GET", "/nope", None, None).await;
    assert_eq!(status, 401);
    let (status, b) = api.admin_call("GET", "/nope", None).await;
    assert_eq!(status, 404);
    assert_eq!(b["error"], "not_found");
}
