//! Every denial and limit of the sandbox, exercised by a hostile plugin
//! built from `tests/plugins/hostile`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use ward_manifest::PluginPolicy;
use ward_runtime::types::PluginError;
use ward_runtime::{Bound, CallError, CallReport, Plugin, Refusal, RuntimeError, SecretSet};
use ward_tests::{HOSTILE_WASM, Harness, OKTA_WASM, UNDECLARED_WASM};

const SECRET: &str = "hostile-secret-value-0123456789";

fn bind(plugin: &Arc<Plugin>, attack: &str) -> Bound {
    bind_with(plugin, attack, None)
}

/// Binds with a `payload` handed to the plugin through its configuration
/// (a side channel standing in for anything a plugin might learn).
fn bind_with(plugin: &Arc<Plugin>, attack: &str, payload: Option<&str>) -> Bound {
    let mut config = BTreeMap::from([
        ("domain".to_string(), "ward-demo".to_string()),
        ("attack".to_string(), attack.to_string()),
    ]);
    if let Some(payload) = payload {
        config.insert("payload".to_string(), payload.to_string());
    }
    let secrets = SecretSet::new(BTreeMap::from([(
        "api_token".to_string(),
        SECRET.to_string(),
    )]));
    plugin
        .bind("hostile-instance", &config, secrets, None)
        .unwrap()
}

async fn attack(h: &Harness, attack: &str) -> CallReport<ward_runtime::types::AuditPage> {
    bind(&h.hostile_plugin(), attack).fetch_audit(0, None).await
}

fn denied(report: &CallReport<ward_runtime::types::AuditPage>) -> &ward_runtime::EgressEntry {
    report
        .egress
        .iter()
        .find(|e| !e.allowed)
        .unwrap_or_else(|| panic!("no denied request in {:?}", report.egress))
}

fn assert_denied(report: &CallReport<ward_runtime::types::AuditPage>, needle: &str) {
    let reason = denied(report).reason.clone().unwrap_or_default();
    assert!(
        reason.contains(needle),
        "{reason:?} does not mention {needle:?}"
    );
}

fn plugin_error(report: &CallReport<ward_runtime::types::AuditPage>) -> String {
    match &report.result {
        Err(CallError::Plugin(e)) => format!("{e:?}"),
        other => panic!("expected a plugin error, got {other:?}"),
    }
}

#[tokio::test]
async fn request_outside_grants_is_denied_and_logged() {
    let h = Harness::start(Default::default()).await;
    let report = attack(&h, "outside").await;
    let message = plugin_error(&report);
    assert!(message.contains("denied by Ward's sandbox"), "{message}");
    let entry = denied(&report);
    assert!(
        entry.url.starts_with("https://evil.example/steal"),
        "{entry:?}"
    );
    assert!(
        entry
            .reason
            .as_deref()
            .unwrap()
            .contains("no grant covers https://evil.example:443/steal")
    );

    // The egress log in the store records it too.
    let (instance, result) = h.ingest_audit(bind(&h.hostile_plugin(), "outside")).await;
    let err = result.unwrap_err();
    assert!(err.to_string().contains("denied"), "{err}");
    let log = h.store.egress(&instance, 10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert!(!log[0].allowed);
    assert_eq!(log[0].plugin_key, "hostile");
    assert!(
        log[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("no grant covers")
    );
}

#[tokio::test]
async fn granted_host_with_wrong_method_or_path_is_denied() {
    let h = Harness::start(Default::default()).await;
    let report = attack(&h, "wrong-method").await;
    plugin_error(&report);
    assert_denied(&report, "method POST is not allowed");

    let report = attack(&h, "wrong-path").await;
    plugin_error(&report);
    assert_denied(
        &report,
        "no grant covers https://ward-demo.okta.com:443/oauth2/v1/clients",
    );
    assert!(h.okta.requests().is_empty(), "nothing reached the provider");
}

#[tokio::test]
async fn secret_reference_to_unbound_host_is_refused() {
    let h = Harness::start(Default::default()).await;
    let report = attack(&h, "secret-wrong-host").await;
    plugin_error(&report);
    let reason = denied(&report).reason.clone().unwrap();
    assert!(
        reason.contains("secret `api_token`") && reason.contains("not bound"),
        "{reason}"
    );
    assert_eq!(
        h.collector_hits.load(Ordering::SeqCst),
        0,
        "the request never left"
    );

    let report = attack(&h, "secret-in-url").await;
    plugin_error(&report);
    assert_denied(&report, "never in URLs");
}

#[tokio::test]
async fn secret_echoed_into_outputs_is_redacted() {
    let h = Harness::start(Default::default()).await;
    let plugin = h.hostile_plugin();
    let report = bind_with(&plugin, "echo-secret", Some(SECRET))
        .fetch_audit(0, None)
        .await;
    let page = report.result.as_ref().unwrap();
    let everything = format!(
        "{:?} {:?} {:?} {:?}",
        page, report.logs, report.stdio, report.egress
    );
    assert!(!everything.contains(SECRET), "secret leaked: {everything}");
    assert_eq!(page.events[0].id, "ev-[REDACTED:api_token]");
    assert!(page.events[0].raw.contains("[REDACTED:api_token]"));
    assert_eq!(page.cursor, "cursor-[REDACTED:api_token]");
    assert!(report.logs[0].message.contains("[REDACTED:api_token]"));
    assert!(report.stdio.contains("[REDACTED:api_token]"));
    assert!(report.redactions >= 5, "{}", report.redactions);

    let report = bind_with(&plugin, "echo-secret-error", Some(SECRET))
        .fetch_audit(0, None)
        .await;
    let message = plugin_error(&report);
    assert!(!message.contains(SECRET));
    assert!(message.contains("[REDACTED:api_token]"));
}

#[tokio::test]
async fn infinite_loop_is_stopped_by_cpu_deadline() {
    let h = Harness::start(Default::default()).await;
    let report = attack(&h, "loop").await;
    match &report.result {
        Err(CallError::CpuExceeded { cpu_ms, .. }) => assert_eq!(*cpu_ms, 500),
        other => panic!("expected CPU deadline, got {other:?}"),
    }
    // Stopped by the CPU budget, well before the 5 s wall-clock timeout.
    assert!(report.elapsed.as_millis() < 5_000, "{:?}", report.elapsed);
}

#[tokio::test]
async fn unbounded_allocation_traps_at_memory_cap() {
    let h = Harness::start(Default::default()).await;
    let report = attack(&h, "alloc").await;
    match &report.result {
        Err(CallError::MemoryExceeded { memory_mib, .. }) => assert_eq!(*memory_mib, 32),
        other => panic!("expected memory cap, got {other:?}"),
    }
}

#[tokio::test]
async fn deep_recursion_traps_with_stack_overflow() {
    let h = Harness::start(Default::default()).await;
    let report = attack(&h, "recursion").await;
    match &report.result {
        Err(CallError::Trap { message, .. }) => assert!(
            message.contains("stack overflow") || message.contains("runaway recursion"),
            "{message}"
        ),
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_keeps_serving_while_and_after_plugins_misbehave() {
    let h = Harness::start(Default::default()).await;
    let plugin = h.hostile_plugin();
    let looping = bind(&plugin, "loop");
    let benign = bind(&plugin, "benign");
    // A benign call completes while another instance spins.
    let (spin, ok) = tokio::join!(looping.fetch_audit(0, None), async {
        let mut results = Vec::new();
        for _ in 0..5 {
            results.push(benign.fetch_audit(0, None).await.result);
        }
        results
    });
    assert!(matches!(spin.result, Err(CallError::CpuExceeded { .. })));
    assert!(ok.iter().all(|r| r.is_ok()), "{ok:?}");
    for bad in ["alloc", "recursion", "trap", "stdout-flood"] {
        let report = attack(&h, bad).await;
        assert!(report.result.is_err(), "{bad} should fail");
    }
    let after = benign.fetch_audit(0, None).await;
    assert_eq!(after.result.unwrap().events[0].id, "ok-1");
}

#[tokio::test]
async fn request_flood_is_capped_per_call() {
    let h = Harness::start(Default::default()).await;
    let report = attack(&h, "request-flood").await;
    plugin_error(&report);
    assert_eq!(report.egress.iter().filter(|e| e.allowed).count(), 5);
    assert_denied(&report, "per-call request limit of 5");
    assert_eq!(h.collector_hits.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn hostname_resolving_to_loopback_is_refused() {
    let h = Harness::start(Default::default()).await;
    let report = attack(&h, "private-dns").await;
    let message = plugin_error(&report);
    assert!(message.contains("refuses to reach"), "{message}");
    let entry = report
        .egress
        .iter()
        .find(|e| e.url.contains("localhost"))
        .unwrap();
    assert!(
        entry
            .reason
            .as_deref()
            .unwrap()
            .contains("restricted addresses"),
        "{entry:?}"
    );
}

#[tokio::test]
async fn oversized_page_and_stdout_flood_are_contained() {
    let h = Harness::start(Default::default()).await;
    let report = attack(&h, "oversized").await;
    match &report.result {
        Err(CallError::OutputTooLarge { message, .. }) => {
            assert!(message.contains("2000 items"), "{message}")
        }
        other => panic!("expected output limit, got {other:?}"),
    }
    let report = attack(&h, "stdout-flood").await;
    assert!(report.result.is_err());
    assert!(report.stdio.len() <= 2 * ward_runtime::caps::wasi::STDIO_CAPACITY);
}

#[tokio::test]
async fn malformed_and_truncated_components_are_rejected() {
    let h = Harness::start(Default::default()).await;
    match h.runtime.load(b"definitely not wasm") {
        Err(RuntimeError::Malformed(_)) => {}
        other => panic!("expected malformed, got {other:?}"),
    }
    let truncated = &OKTA_WASM[..OKTA_WASM.len() / 2];
    let err = h.runtime.load(truncated).unwrap_err();
    assert!(
        matches!(err, RuntimeError::Malformed(_) | RuntimeError::NoManifest),
        "{err}"
    );
    // The untouched files still load.
    h.runtime.load(OKTA_WASM).unwrap();
    h.runtime.load(HOSTILE_WASM).unwrap();
    let _ = PluginError::Internal(String::new());
}

#[tokio::test]
async fn redirects_are_returned_not_followed() {
    let h = Harness::start(Default::default()).await;
    let report = attack(&h, "redirect").await;
    let cursor = report.result.as_ref().unwrap().cursor.clone();
    // The plugin saw the 302 itself; its attempt to follow it to an
    // ungranted host was denied.
    assert!(cursor.starts_with("302 Err(Denied)"), "{cursor}");
    assert_eq!(report.egress.len(), 2);
    assert_eq!(report.egress[0].status, Some(302));
    assert!(report.egress[0].allowed);
    assert_denied(&report, "no grant covers https://evil.example:443/landing");
}

#[tokio::test]
async fn response_body_over_the_cap_is_cut_off() {
    let h = Harness::start(Default::default()).await;
    let report = attack(&h, "big-response").await;
    let message = plugin_error(&report);
    assert!(message.contains("HttpResponseBodySize"), "{message}");
    let entry = &report.egress[0];
    assert!(
        entry
            .reason
            .as_deref()
            .unwrap()
            .contains("larger than 1048576 bytes"),
        "{entry:?}"
    );
    assert!(entry.bytes_received <= 1_048_576);
}

#[tokio::test]
async fn compiled_components_are_cached_by_digest() {
    let h = Harness::start(Default::default()).await;
    let first = h.hostile_plugin();
    let cache = h.dir.path().join("cache");
    let entries: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        entries
            .iter()
            .any(|n| n.starts_with(first.digest()) && n.ends_with(".cwasm")),
        "{entries:?}"
    );
    // A second load (from the cache) runs the same code.
    let second = h.hostile_plugin();
    assert_eq!(second.digest(), first.digest());
    let report = bind(&second, "benign").fetch_audit(0, None).await;
    assert_eq!(report.result.unwrap().events[0].id, "ok-1");
}

#[tokio::test]
async fn ip_literal_metadata_addresses_are_refused() {
    let h = Harness::start(Default::default()).await;
    for attack_name in ["metadata-ip", "metadata-mapped"] {
        let report = attack(&h, attack_name).await;
        plugin_error(&report);
        assert_denied(&report, "is in a restricted range");
    }
}

#[tokio::test]
async fn request_and_response_header_floods_are_capped() {
    let h = Harness::start(Default::default()).await;
    let report = attack(&h, "header-flood").await;
    plugin_error(&report);
    assert_denied(&report, "request headers too large");
    assert_eq!(h.collector_hits.load(Ordering::SeqCst), 0);

    let report = attack(&h, "response-headers").await;
    let message = plugin_error(&report);
    assert!(
        message.contains("HttpResponseHeaderSectionSize"),
        "{message}"
    );
    let reason = report.egress[0].reason.clone().unwrap_or_default();
    assert!(reason.contains("response headers too large"), "{reason}");
}

#[tokio::test]
async fn oversized_page_in_bytes_is_rejected() {
    let h = Harness::start(Default::default()).await;
    let report = attack(&h, "oversized-bytes").await;
    match &report.result {
        Err(CallError::OutputTooLarge { message, .. }) => {
            assert!(message.contains("bytes"), "{message}")
        }
        other => panic!("expected output limit, got {other:?}"),
    }
}

#[tokio::test]
async fn component_importing_an_unprovided_interface_is_rejected_at_load() {
    let h = Harness::start(Default::default()).await;
    match h.runtime.load(UNDECLARED_WASM) {
        Err(RuntimeError::UnsupportedImport { plugin, interface }) => {
            assert_eq!(plugin, "undeclared");
            assert!(
                interface.starts_with("attacker:exfil/channel"),
                "{interface}"
            );
        }
        other => panic!("expected an unsupported import, got {other:?}"),
    }
    let message = h.runtime.load(UNDECLARED_WASM).unwrap_err().to_string();
    assert!(message.contains("attacker:exfil/channel"), "{message}");
    // The runtime is unaffected.
    let report = bind(&h.hostile_plugin(), "benign")
        .fetch_audit(0, None)
        .await;
    assert_eq!(report.result.unwrap().events[0].id, "ok-1");
}

#[tokio::test]
async fn operator_policy_narrows_what_the_broker_allows() {
    let h = Harness::start(Default::default()).await;
    let policy: PluginPolicy = toml_policy(
        r#"
deny_hosts = ["collector.ward.test"]
deny_paths = ["/admin"]
refuse_secrets = ["api_token"]
limits = { requests_per_call = 2, memory_mib = 4096 }
"#,
    );
    let plugin = h.runtime.load_with_policy(HOSTILE_WASM, policy).unwrap();
    // The policy cannot raise the manifest's 32 MiB memory cap.
    let bound = bind(&plugin, "benign");
    assert_eq!(bound.limits().memory_mib, 32);
    assert_eq!(bound.limits().requests_per_call, 2);
    assert!(
        plugin
            .effective()
            .warnings
            .iter()
            .any(|w| w.contains("memory_mib"))
    );

    let report = bind(&plugin, "request-flood").fetch_audit(0, None).await;
    plugin_error(&report);
    assert_denied(
        &report,
        "host collector.ward.test is denied by the operator's policy",
    );

    let report = bind(&plugin, "policy-path").fetch_audit(0, None).await;
    plugin_error(&report);
    // Host rule checked first; both name the policy.
    assert_denied(&report, "operator's policy");

    let report = bind(&plugin, "policy-secret").fetch_audit(0, None).await;
    plugin_error(&report);
    assert_denied(&report, "refused by the operator's policy");
    assert_eq!(h.collector_hits.load(Ordering::SeqCst), 0);

    // A path-only policy.
    let plugin = h
        .runtime
        .load_with_policy(HOSTILE_WASM, toml_policy(r#"deny_paths = ["/admin"]"#))
        .unwrap();
    let report = bind(&plugin, "policy-path").fetch_audit(0, None).await;
    plugin_error(&report);
    assert_denied(
        &report,
        "path /admin/users is denied by the operator's policy",
    );
}

fn toml_policy(text: &str) -> PluginPolicy {
    ward_daemon::Config::parse(&format!("[policy.hostile]\n{text}"))
        .unwrap()
        .policy
        .remove("hostile")
        .unwrap()
}

/// A runtime whose resolver asks the tests' DNS server, which maps granted
/// provider names to the metadata service and to loopback.
async fn dns_runtime(
    allow_private: Vec<String>,
) -> (ward_tests::dns::DnsStandIn, ward_runtime::Runtime) {
    use std::net::IpAddr;
    let dns = ward_tests::dns::DnsStandIn::start(BTreeMap::from([
        (
            "metadata.ward.test".to_string(),
            vec!["169.254.169.254".parse::<IpAddr>().unwrap()],
        ),
        (
            "mapped.ward.test".to_string(),
            vec!["::ffff:169.254.169.254".parse::<IpAddr>().unwrap()],
        ),
        (
            "loopback.ward.test".to_string(),
            vec!["127.0.0.1".parse::<IpAddr>().unwrap()],
        ),
    ]))
    .await
    .unwrap();
    let runtime = ward_runtime::Runtime::new(ward_runtime::RuntimeConfig {
        egress: ward_runtime::EgressConfig {
            nameservers: vec![dns.addr()],
            allow_private,
            connect_timeout: std::time::Duration::from_millis(500),
            ..ward_runtime::EgressConfig::default()
        },
        ..ward_runtime::RuntimeConfig::default()
    })
    .unwrap();
    (dns, runtime)
}

#[tokio::test]
async fn hostnames_resolving_to_metadata_or_loopback_are_refused() {
    let (_dns, runtime) = dns_runtime(Vec::new()).await;
    let plugin = runtime.load(HOSTILE_WASM).unwrap();
    for (attack, host, ip) in [
        ("metadata-dns", "metadata.ward.test", "169.254.169.254"),
        ("mapped-dns", "mapped.ward.test", "169.254.169.254"),
        ("loopback-dns", "loopback.ward.test", "127.0.0.1"),
    ] {
        let report = bind(&plugin, attack).fetch_audit(0, None).await;
        let message = plugin_error(&report);
        assert!(message.contains("refuses to reach"), "{attack}: {message}");
        let entry = report.egress.iter().find(|e| e.url.contains(host)).unwrap();
        let reason = entry.reason.as_deref().unwrap();
        assert!(
            reason.contains("restricted addresses"),
            "{attack}: {reason}"
        );
        assert!(reason.contains(ip), "{attack}: {reason}");
        assert!(
            reason.contains("egress.allow_private"),
            "{attack}: {reason}"
        );
        assert_eq!(entry.status, None, "{attack}: nothing may be sent");
    }
}

#[tokio::test]
async fn an_operator_allowed_range_lifts_only_that_refusal() {
    // The operator lists the metadata address: the range refusal goes away
    // (nothing listens there, so the connection itself then fails), while
    // loopback, not listed, stays refused.
    let (_dns, runtime) = dns_runtime(vec!["169.254.169.254/32".into()]).await;
    let plugin = runtime.load(HOSTILE_WASM).unwrap();
    let report = bind(&plugin, "metadata-dns").fetch_audit(0, None).await;
    let entry = report
        .egress
        .iter()
        .find(|e| e.url.contains("metadata.ward.test"))
        .unwrap();
    assert!(
        !entry
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("restricted addresses"),
        "{entry:?}"
    );
    let report = bind(&plugin, "loopback-dns").fetch_audit(0, None).await;
    assert!(plugin_error(&report).contains("refuses to reach"));
}

#[tokio::test]
async fn dns_tls_and_refused_connections_are_told_apart() {
    // An unknown name (the DNS stand-in answers NXDOMAIN), a server whose
    // certificate no trusted CA issued, a port nothing listens on.
    let dns = ward_tests::dns::DnsStandIn::start(BTreeMap::new())
        .await
        .unwrap();
    let trusted = ward_standins::tls::TestCa::generate().unwrap();
    let stranger = ward_standins::tls::TestCa::generate().unwrap();
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    let badcert = ward_standins::server::TlsServer::start(
        axum::Router::new().fallback(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { "ok" }
        }),
        &stranger.issue(&["badcert.ward.test"]).unwrap(),
    )
    .await
    .unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let runtime = ward_runtime::Runtime::new(ward_runtime::RuntimeConfig {
        egress: ward_runtime::EgressConfig {
            nameservers: vec![dns.addr()],
            resolve: BTreeMap::from([
                ("badcert.ward.test".to_string(), badcert.addr()),
                ("refused.ward.test".to_string(), closed),
            ]),
            extra_roots_pem: vec![trusted.ca_pem().to_string()],
            connect_timeout: std::time::Duration::from_secs(5),
            ..ward_runtime::EgressConfig::default()
        },
        ..ward_runtime::RuntimeConfig::default()
    })
    .unwrap();
    let wasm = ward_tests::plugin_files::rewrite_manifest(HOSTILE_WASM, &|text| {
        let mut text = text.to_string();
        for host in ["nxdomain", "badcert", "refused"] {
            text.push_str(&format!(
                "\n[[http]]\nurl = \"https://{host}.ward.test/\"\nmethods = [\"GET\"]\n"
            ));
        }
        text
    });
    let plugin = runtime.load(&wasm).unwrap();
    let report = bind(&plugin, "transport-errors").fetch_audit(0, None).await;
    let told = report.result.as_ref().unwrap().cursor.clone();
    let told: Vec<&str> = told.split(" | ").collect();
    let rows = &report.egress;
    assert!(
        told[0].contains("cannot resolve nxdomain.ward.test:443"),
        "{told:?}"
    );
    assert!(
        told[1].contains("TLS with badcert.ward.test:443 failed"),
        "{told:?} {rows:?}"
    );
    assert!(
        told[2].contains("connection refused by refused.ward.test:443"),
        "{told:?}"
    );
    assert_eq!(
        refusals(&report),
        vec![
            Some(Refusal::DnsFailure),
            Some(Refusal::TlsFailure),
            Some(Refusal::ConnectionRefused)
        ]
    );
    let reasons: Vec<String> = report
        .egress
        .iter()
        .map(|e| e.reason.clone().unwrap_or_default())
        .collect();
    assert!(
        reasons[0].starts_with("name lookup failed for nxdomain.ward.test:443"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].starts_with("TLS with badcert.ward.test:443 failed"),
        "{reasons:?}"
    );
    assert!(
        reasons[2].starts_with("connection refused by refused.ward.test:443"),
        "{reasons:?}"
    );
    assert!(report.egress.iter().all(|e| e.status.is_none()));
    // The untrusted server never saw a request.
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

/// The refusal kinds of a report's egress rows, in order.
fn refusals(report: &CallReport<ward_runtime::types::AuditPage>) -> Vec<Option<Refusal>> {
    report.egress.iter().map(|e| e.refusal).collect()
}

/// The ways a plugin could carry a value out: plain, reversed, base64, and
/// hex of either (both cases), upper- and lower-cased.
fn disguises(value: &str) -> Vec<String> {
    use base64::Engine as _;
    let reversed: String = value.chars().rev().collect();
    let hex = |s: &str| s.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    let mut forms = vec![
        value.to_string(),
        reversed.clone(),
        base64::engine::general_purpose::STANDARD.encode(value),
        hex(value),
        hex(&reversed),
    ];
    let upper: Vec<String> = forms.iter().map(|f| f.to_uppercase()).collect();
    forms.extend(upper);
    forms
}

fn assert_nowhere(haystack: &[u8], what: &str) {
    let text = String::from_utf8_lossy(haystack);
    for form in disguises(SECRET) {
        // A third of the hex form is what one event carries.
        let piece = &form[..form.len().min(24)];
        assert!(!text.contains(piece), "{what} holds {piece:?}");
    }
}

#[tokio::test]
async fn echoed_secret_reaches_the_plugin_only_as_its_reference() {
    let h = Harness::start(Default::default()).await;
    let (_guard, logs) = ward_tests::logs::capture();
    let report = attack(&h, "echo-launder").await;
    let page = report.result.as_ref().unwrap();
    // What the guest read, body (sent in two chunks split inside the value)
    // and header alike, is the reference, never the value.
    assert_eq!(
        page.cursor,
        "read:{{secret:api_token}}|{{secret:api_token}}"
    );
    assert_eq!(page.events.len(), 3, "laundered across three events");
    assert!(report.egress[0].allowed && report.egress[0].status == Some(200));
    let everything = format!(
        "{page:?} {:?} {:?} {:?}",
        report.logs, report.stdio, report.egress
    );
    assert_nowhere(everything.as_bytes(), "the call's outputs");

    // Through the daemon's ingestion into SQLite: events, cursor and the
    // egress table hold nothing of it either; nor does the daemon's log.
    let (instance, result) = h
        .ingest_audit(bind(&h.hostile_plugin(), "echo-launder"))
        .await;
    result.unwrap();
    assert_eq!(h.store.event_count(&instance).await.unwrap(), 3);
    assert_eq!(
        h.store.cursor(&instance, "audit").await.unwrap().as_deref(),
        Some("read:{{secret:api_token}}|{{secret:api_token}}")
    );
    assert_eq!(h.store.egress(&instance, 10).await.unwrap().len(), 1);
    assert_nowhere(&h.stored_bytes(), "the SQLite store");
    assert_nowhere(logs.text().as_bytes(), "the daemon's log");
}

#[tokio::test]
async fn echoed_reference_forwarded_to_an_unbound_host_is_refused() {
    let h = Harness::start(Default::default()).await;
    let report = attack(&h, "echo-forward").await;
    // Header, POST body and URL: each refused, by kind.
    assert_eq!(report.result.as_ref().unwrap().cursor, "false false false");
    assert_eq!(
        refusals(&report),
        vec![
            None,
            Some(Refusal::SecretNotBound),
            Some(Refusal::SecretInBody),
            Some(Refusal::SecretReferenceInUrl),
        ]
    );
    assert_eq!(h.collector_hits.load(Ordering::SeqCst), 0, "nothing left");
}

#[tokio::test]
async fn raw_secret_values_go_only_to_grants_bound_to_them() {
    let h = Harness::start(Default::default()).await;
    let bound = || bind_with(&h.hostile_plugin(), "raw-forward", Some(SECRET));
    let report = bound().fetch_audit(0, None).await;
    // Unbound host (header, base64 in a body), bound host in the URL:
    // refused; the bound host in a header: sent.
    assert_eq!(
        report.result.as_ref().unwrap().cursor,
        "false false false true"
    );
    assert_eq!(
        refusals(&report),
        vec![
            Some(Refusal::RawSecretValue),
            Some(Refusal::RawSecretValue),
            Some(Refusal::RawSecretValue),
            None,
        ]
    );
    assert_eq!(h.collector_hits.load(Ordering::SeqCst), 0);
    let rows = format!("{:?}", report.egress);
    assert_nowhere(rows.as_bytes(), "the egress rows");
    assert!(rows.contains("[REDACTED:api_token]"), "{rows}");

    let (instance, _) = h.ingest_audit(bound()).await;
    assert_eq!(h.store.egress(&instance, 10).await.unwrap().len(), 4);
    assert_nowhere(&h.stored_bytes(), "the SQLite store");
}

#[tokio::test]
async fn encoded_path_variants_cannot_dodge_deny_paths() {
    let h = Harness::start(Default::default()).await;
    let plugin = h
        .runtime
        .load_with_policy(
            HOSTILE_WASM,
            toml_policy(r#"deny_paths = ["/api/v1/logs"]"#),
        )
        .unwrap();
    let (instance, result) = h.ingest_audit(bind(&plugin, "path-variants")).await;
    result.unwrap();
    // %6cogs, %6C%6F%67%73, //logs, logs;x, LOGS: every one refused.
    assert_eq!(
        h.store.cursor(&instance, "audit").await.unwrap().as_deref(),
        Some("false false false false false")
    );
    let report = bind(&plugin, "path-variants").fetch_audit(0, None).await;
    assert_eq!(
        refusals(&report),
        vec![
            Some(Refusal::PathDeniedByPolicy),
            Some(Refusal::PathDeniedByPolicy),
            Some(Refusal::PathNotCanonical),
            // `;x` is matched without its parameter: then denied.
            Some(Refusal::PathDeniedByPolicy),
            Some(Refusal::PathDeniedByPolicy),
        ]
    );
    let stored = h.store.egress(&instance, 10).await.unwrap();
    assert_eq!(stored.len(), 5);
    assert!(stored.iter().all(|row| !row.allowed), "{stored:?}");
    assert!(h.okta.requests().is_empty(), "nothing reached the stand-in");

    // What is checked is what is sent: the canonical path.
    let report = attack(&h, "path-encoded").await;
    assert!(report.egress[0].allowed, "{:?}", report.egress);
    assert!(report.egress[0].url.ends_with("/api/v1/users?limit=1"));
    let received = h.okta.requests();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].path_and_query, "/api/v1/users?limit=1");
}

#[tokio::test]
async fn semicolon_parameters_pass_only_under_a_grant_that_allows_them() {
    let h = Harness::start(Default::default()).await;
    let policy = || toml_policy(r#"deny_paths = ["/matrix/secret"]"#);
    // As built: no grant allows parameters, every one is refused.
    let plugin = h.runtime.load_with_policy(HOSTILE_WASM, policy()).unwrap();
    let (instance, result) = h.ingest_audit(bind(&plugin, "path-params")).await;
    result.unwrap();
    assert_eq!(
        h.store.cursor(&instance, "audit").await.unwrap().as_deref(),
        Some("false false false")
    );
    let stored = h.store.egress(&instance, 10).await.unwrap();
    assert!(stored.iter().all(|row| !row.allowed), "{stored:?}");
    assert_eq!(h.collector_hits.load(Ordering::SeqCst), 0);

    // One grant opts in: parameters pass under it only, and are matched
    // without them by the operator's deny rule.
    let opted_in = ward_tests::plugin_files::rewrite_manifest(HOSTILE_WASM, &|text| {
        format!(
            "{text}\n[[http]]\nurl = \"https://collector.ward.test/matrix/\"\nmethods = [\"GET\"]\nallow_params = true\n"
        )
    });
    let plugin = h.runtime.load_with_policy(&opted_in, policy()).unwrap();
    let (instance, result) = h.ingest_audit(bind(&plugin, "path-params")).await;
    result.unwrap();
    assert_eq!(
        h.store.cursor(&instance, "audit").await.unwrap().as_deref(),
        Some("true false false")
    );
    let report = bind(&plugin, "path-params").fetch_audit(0, None).await;
    assert_eq!(
        refusals(&report),
        vec![
            None,
            Some(Refusal::PathNotCanonical),
            Some(Refusal::PathDeniedByPolicy)
        ]
    );
    assert!(
        report.egress[0].url.ends_with("/matrix/items;v=2"),
        "{:?}",
        report.egress
    );
    assert!(
        report.egress[1]
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("does not allow them (allow_params)"),
        "{:?}",
        report.egress
    );
    // One request through the ingestion, one through the report.
    assert_eq!(h.collector_hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn plugin_log_lines_cannot_forge_daemon_log_lines() {
    let h = Harness::start(Default::default()).await;
    let (guard, logs) = ward_tests::logs::capture();
    let report = attack(&h, "log-forge").await;
    drop(guard);
    report.result.unwrap();
    let message = &report.logs[0].message;
    assert!(!message.contains(['\n', '\r', '\u{1b}']), "{message:?}");
    assert!(
        message.contains("benign\\n2026-11-29T14:00:00"),
        "{message}"
    );
    let text = logs.text();
    let plugin_lines: Vec<&str> = text.lines().filter(|l| l.contains("forged")).collect();
    assert_eq!(plugin_lines.len(), 1, "{text}");
    assert!(plugin_lines[0].contains("plugin: benign"), "{text}");
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("2026-11-29T14:00:00.000000Z")),
        "{text}"
    );
    assert!(!text.contains('\u{1b}'), "{text:?}");
}

/// Runs `attack` (a call stopped with a request to `/slow` in flight)
/// through the ingestion and alone: one `aborted` egress row in the
/// report and in the store. Returns the call's result.
async fn assert_stopped_in_flight_is_aborted(
    attack_name: &str,
) -> Result<ward_runtime::types::AuditPage, CallError> {
    let h = Harness::start(Default::default()).await;
    let (instance, result) = h.ingest_audit(bind(&h.hostile_plugin(), attack_name)).await;
    assert!(result.is_err());
    let report = attack(&h, attack_name).await;
    assert_eq!(refusals(&report), vec![Some(Refusal::Aborted)]);
    assert!(report.egress[0].allowed && report.egress[0].status.is_none());
    let stored = h.store.egress(&instance, 10).await.unwrap();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert!(
        stored[0].allowed && stored[0].status.is_none(),
        "{stored:?}"
    );
    assert!(stored[0].url.ends_with("/slow"), "{stored:?}");
    assert!(
        stored[0]
            .reason
            .as_deref()
            .unwrap_or("")
            .starts_with("aborted:"),
        "{stored:?}"
    );
    report.result
}

#[tokio::test]
async fn a_request_in_flight_when_the_call_is_stopped_is_logged_aborted() {
    let result = assert_stopped_in_flight_is_aborted("slow-request").await;
    assert!(
        matches!(result, Err(CallError::Timeout { wall_ms: 5000, .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_request_in_flight_when_the_cpu_budget_stops_the_call_is_logged_aborted() {
    let result = assert_stopped_in_flight_is_aborted("spin-in-flight").await;
    assert!(
        matches!(result, Err(CallError::CpuExceeded { cpu_ms: 500, .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn request_body_over_the_cap_gets_its_egress_row() {
    let h = Harness::start(Default::default()).await;
    let (instance, result) = h
        .ingest_audit(bind(&h.hostile_plugin(), "big-request"))
        .await;
    assert!(result.is_err());
    let stored = h.store.egress(&instance, 10).await.unwrap();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert!(!stored[0].allowed);
    assert!(
        stored[0]
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("request body larger than 1048576 bytes"),
        "{stored:?}"
    );
    let report = attack(&h, "big-request").await;
    assert_eq!(refusals(&report), vec![Some(Refusal::RequestBodyTooLarge)]);
    assert_eq!(h.collector_hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn oversized_fields_and_implausible_times_are_refused_before_storage() {
    let h = Harness::start(Default::default()).await;
    for (attack_name, field) in [
        ("long-error", "error message is 5000 bytes (cap 4096)"),
        ("long-cursor", "cursor is 71680 bytes (cap 65536)"),
        ("long-event-id", "event 0 id is 600 bytes (cap 512)"),
    ] {
        match attack(&h, attack_name).await.result {
            Err(CallError::OutputTooLarge {
                message, plugin, ..
            }) => {
                assert_eq!(plugin, "hostile");
                assert!(message.contains(field), "{attack_name}: {message}");
            }
            other => panic!("{attack_name}: expected a cap, got {other:?}"),
        }
    }
    for attack_name in ["old-event", "future-event"] {
        match attack(&h, attack_name).await.result {
            Err(CallError::InvalidOutput { message, .. }) => assert!(
                message.contains("outside [1990-01-01, now + 1 day]"),
                "{attack_name}: {message}"
            ),
            other => panic!("{attack_name}: expected a bad time, got {other:?}"),
        }
        let (instance, result) = h.ingest_audit(bind(&h.hostile_plugin(), attack_name)).await;
        assert!(result.is_err());
        assert_eq!(h.store.event_count(&instance).await.unwrap(), 0);
        assert_eq!(h.store.cursor(&instance, "audit").await.unwrap(), None);
    }
    match bind(&h.hostile_plugin(), "long-check").test().await.result {
        Err(CallError::OutputTooLarge { message, .. }) => {
            assert!(message.contains("check 0 name is 5000 bytes"), "{message}")
        }
        other => panic!("expected a cap, got {other:?}"),
    }
}
