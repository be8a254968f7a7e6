//! Plugin packages: signatures and the trust store, dev mode, `ward plugin
//! inspect --json` on the bundled Okta connector, and a widened upgrade that
//! `ward plugin diff` reports and the registry holds until approved.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;

use ward::plugin_cli;
use ward_daemon::config::PluginsConfig;
use ward_daemon::registry::PluginSource;
use ward_daemon::{Config, Registry};
use ward_manifest::Manifest;
use ward_runtime::{Runtime, RuntimeConfig};
use ward_store::{MasterKey, Store};
use ward_tests::plugin_files::{rewrite_manifest, sign, widened_okta, write};
use ward_tests::{HOSTILE_WASM, OKTA_WASM};
use ward_trust::SignatureStatus;

/// `ward plugin inspect bundled:okta`, and its `--json` document.
fn inspect_bundled_okta() -> (plugin_cli::Inspection, serde_json::Value) {
    let inspection = plugin_cli::inspect(
        "bundled:okta",
        ward_daemon::bundled::get("okta").unwrap(),
        &[],
        &BTreeMap::new(),
    )
    .unwrap();
    let json = serde_json::to_value(&inspection).unwrap();
    (inspection, json)
}

fn manifest(bytes: &[u8]) -> Manifest {
    Manifest::from_section(&ward_runtime::read_manifest_section(bytes).unwrap()).unwrap()
}

async fn store_in(dir: &Path) -> Store {
    Store::open_sqlite(
        &dir.join("ward.db"),
        MasterKey::load_or_create(&dir.join("master.key")).unwrap(),
    )
    .await
    .unwrap()
}

fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig::default()).unwrap()
}

#[tokio::test]
async fn only_plugins_signed_by_a_trusted_key_load_unless_dev_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let vendor = ward_trust::generate().unwrap();
    let stranger = ward_trust::generate().unwrap();

    // Signed by the trusted vendor: loads.
    let okta = write(&plugins, "okta.wasm", OKTA_WASM);
    sign(&vendor.secret_file, &okta);
    // Unsigned: refused.
    write(&plugins, "hostile.wasm", HOSTILE_WASM);
    // Signed by a key nobody trusts: refused.
    let other = write(
        &plugins,
        "other.wasm",
        &rewrite_manifest(HOSTILE_WASM, &|t| {
            t.replace("key = \"hostile\"", "key = \"other\"")
        }),
    );
    sign(&stranger.secret_file, &other);
    // Signed, then altered (one byte of the manifest): refused.
    let tampered = write(
        &plugins,
        "tampered.wasm",
        &rewrite_manifest(HOSTILE_WASM, &|t| {
            t.replace("key = \"hostile\"", "key = \"tamper\"")
        }),
    );
    sign(&vendor.secret_file, &tampered);
    let mut bytes = std::fs::read(&tampered).unwrap();
    let at = bytes
        .windows(9)
        .position(|w| w == b"Ward test")
        .expect("vendor text in the manifest");
    bytes[at] = b'w';
    std::fs::write(&tampered, &bytes).unwrap();

    let config = PluginsConfig {
        bundled: false,
        dirs: vec![plugins.clone()],
        trusted_keys: vec![vendor.public_base64.clone()],
    };
    let store = store_in(tmp.path()).await;
    let rt = runtime();
    let registry = Registry::load(&rt, &store, &config, &BTreeMap::new(), false)
        .await
        .unwrap();
    assert!(!registry.dev_mode());
    let keys: Vec<String> = registry
        .list()
        .iter()
        .map(|l| l.plugin.manifest().key.clone())
        .collect();
    assert_eq!(keys, vec!["okta".to_string()]);
    assert_eq!(
        registry.get("okta").unwrap().signature,
        SignatureStatus::Trusted {
            key_id: vendor.id.clone()
        }
    );
    let refused = registry.refused();
    let reason = |file: &str| {
        refused
            .iter()
            .find(|r| r.source == PluginSource::File(plugins.join(file).display().to_string()))
            .unwrap_or_else(|| panic!("{file} not refused: {refused:?}"))
            .reason
            .clone()
    };
    assert!(reason("hostile.wasm").contains("unsigned"));
    assert!(reason("other.wasm").contains("not in plugins.trusted_keys"));
    assert!(reason("tampered.wasm").contains("INVALID signature"));

    // The CLI's verify agrees.
    let sig = std::fs::read_to_string(plugins.join("tampered.wasm.minisig")).unwrap();
    let status = ward_trust::verify_with(&vendor.public_file, &bytes, Some(&sig)).unwrap();
    assert!(matches!(status, SignatureStatus::Invalid { .. }));

    // Dev mode loads them all and says so.
    let registry = Registry::load(&rt, &store, &config, &BTreeMap::new(), true)
        .await
        .unwrap();
    assert!(registry.dev_mode());
    assert_eq!(registry.list().len(), 4, "{:?}", registry.refused());
    assert_eq!(
        registry.get("hostile").unwrap().signature,
        SignatureStatus::Unsigned
    );
}

#[tokio::test]
async fn inspect_json_on_bundled_okta_shows_exactly_its_grants() {
    let (_, json) = inspect_bundled_okta();
    let fields: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = vec![
        "schema",
        "file",
        "digest",
        "size_bytes",
        "signature",
        "key",
        "name",
        "version",
        "vendor",
        "world",
        "imports",
        "contract_version",
        "empty_imports",
        "permissions",
    ];
    expected.sort();
    let mut sorted = fields.clone();
    sorted.sort();
    assert_eq!(sorted, expected);
    assert_eq!(json["schema"], "ward.plugin.inspect/v1");
    assert_eq!(json["signature"]["status"], "bundled");
    assert_eq!(json["world"], "ward:connector/plugin@0.2.0");
    // The bundled connectors are 0.2 components without `exchange`: the
    // host holds every credential, so none is flagged as seeing one.
    for key in ["okta", "zendesk", "egnyte"] {
        let bytes = ward_daemon::bundled::get(key).unwrap();
        let inspection = plugin_cli::inspect(key, bytes, &[], &BTreeMap::new()).unwrap();
        let json = serde_json::to_value(&inspection).unwrap();
        assert_eq!(json["world"], "ward:connector/plugin@0.2.0", "{key}");
        assert!(
            !json["permissions"]["risks"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["kind"] == "raw-credentials-in-exchange"),
            "{key}: {:#?}",
            json["permissions"]["risks"]
        );
    }
    assert!(json["imports"].as_array().unwrap().iter().any(|i| {
        i.as_str()
            .unwrap()
            .starts_with("wasi:http/outgoing-handler")
    }));

    let manifest = manifest(ward_daemon::bundled::get("okta").unwrap());
    let grants = json["permissions"]["http"].as_array().unwrap();
    assert_eq!(
        grants.len(),
        manifest.http.len(),
        "exactly the manifest's grants"
    );
    for (grant, decl) in grants.iter().zip(&manifest.http) {
        assert_eq!(grant["url"], decl.url.as_str());
        assert_eq!(
            grant["methods"]["requested"],
            serde_json::json!(decl.methods)
        );
        assert_eq!(
            grant["methods"]["effective"],
            serde_json::json!(decl.methods)
        );
        assert_eq!(
            grant["secrets"]["effective"],
            serde_json::json!(decl.secrets)
        );
        assert_eq!(grant["status"], "granted");
        assert_eq!(grant["scheme"], "https");
        assert!(!grant["host_families"].as_array().unwrap().is_empty());
    }
    assert_eq!(
        json["permissions"]["limits"]["requested"],
        json["permissions"]["limits"]["effective"]
    );
    assert!(
        grants[0]["config_fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "domain")
    );
}

/// Okta's host families are explicit: each grant lists every host it may be
/// filled to, and the one grant whose host the operator types (a custom URL
/// domain) is flagged, in JSON and in the text table.
#[tokio::test]
async fn inspect_json_shows_okta_host_families_and_flags_the_custom_domain() {
    let (inspection, json) = inspect_bundled_okta();
    let grants = json["permissions"]["http"].as_array().unwrap();
    let by_url = |url: &str| {
        grants
            .iter()
            .find(|g| g["url"] == url)
            .unwrap_or_else(|| panic!("no grant {url}"))
    };
    let cells = [
        "{domain}.okta.com",
        "{domain}.okta-emea.com",
        "{domain}.oktapreview.com",
        "{domain}.okta-gov.com",
        "{domain}.okta.mil",
        "{domain}.okta-miltest.com",
        "{domain}.trex-govcloud.com",
    ];
    for url in [
        "https://{domain}.{base_domain}/api/v1/",
        "https://{domain}.{base_domain}/oauth2/v1/",
    ] {
        let grant = by_url(url);
        assert_eq!(grant["host_families"], serde_json::json!(cells), "{url}");
        assert_eq!(grant["operator_named_host"], false, "{url}");
    }
    let custom = by_url("https://{custom_domain}/api/v1/");
    assert_eq!(
        custom["host_families"],
        serde_json::json!(["{custom_domain}"])
    );
    assert_eq!(custom["operator_named_host"], true);
    assert_eq!(
        custom["secrets"]["effective"],
        serde_json::json!(["api_token", "access_token"])
    );
    // Exactly one grant reaches a host outside Okta's families.
    assert_eq!(
        grants
            .iter()
            .filter(|g| g["operator_named_host"] == true)
            .count(),
        1
    );
    // The custom-domain field is a host name, never a pattern that could
    // hold a path, port or user.
    let field = custom["config_fields"][0]["pattern"]
        .as_str()
        .unwrap()
        .trim_start_matches("^(?:")
        .trim_end_matches(")$");
    for c in [".*", "/", "@", ":", "#", "\\S", "[^"] {
        assert!(!field.contains(c), "{field}");
    }

    let text = plugin_cli::render_inspection(&inspection);
    assert!(
        text.contains("hosts: {domain}.okta.com, {domain}.okta-emea.com"),
        "{text}"
    );
    assert!(
        text.contains("OPERATOR-NAMED HOST: {custom_domain}"),
        "{text}"
    );
}

#[tokio::test]
async fn widened_upgrade_is_reported_held_and_released_by_approve() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let plugins = tmp.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::create_dir_all(&data).unwrap();
    let vendor = ward_trust::generate().unwrap();
    let widened = widened_okta();
    let upgrade = write(&plugins, "okta-9.9.9.wasm", &widened);
    sign(&vendor.secret_file, &upgrade);

    // `ward plugin diff` reports the new host first.
    let report = plugin_cli::diff(OKTA_WASM, &widened).unwrap();
    assert!(report.widens);
    assert_eq!(report.changes[0].kind, ward_manifest::ChangeKind::Widening);
    assert!(
        report
            .changes
            .iter()
            .take_while(|c| c.kind == ward_manifest::ChangeKind::Widening)
            .any(|c| c.detail.contains("https://exfil.example/")),
        "{:?}",
        report.changes
    );

    let config = Config::parse(&format!(
        "data_dir = {:?}\n[plugins]\nbundled = true\ndirs = [{:?}]\ntrusted_keys = [{:?}]\n",
        data.display().to_string(),
        plugins.display().to_string(),
        vendor.public_base64
    ))
    .unwrap();
    let rt = runtime();
    let store = store_in(&data).await;
    // First start: the bundled version is the first install (approved);
    // the widened upgrade is held, the bundled version keeps running.
    let registry = Registry::load(&rt, &store, &config.plugins, &config.policy, false)
        .await
        .unwrap();
    let running = registry.get("okta").unwrap();
    assert_eq!(running.source, PluginSource::Bundled);
    let pending = registry.pending();
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0].version, "9.9.9");
    assert!(
        pending[0]
            .widenings
            .iter()
            .any(|w| w.contains("https://exfil.example/")),
        "{:?}",
        pending[0].widenings
    );
    let digest = pending[0].digest.clone();
    // Approving something that is not held is refused.
    assert!(registry.approve(&store, "okta", "0000").await.is_err());
    store.close().await;

    // A restart still holds it: approvals are in the store.
    let store = store_in(&data).await;
    let registry = Registry::load(&rt, &store, &config.plugins, &config.policy, false)
        .await
        .unwrap();
    assert_eq!(registry.pending().len(), 1);
    assert_eq!(registry.get("okta").unwrap().source, PluginSource::Bundled);
    store.close().await;

    // `ward plugin approve okta DIGEST --config ward.toml` against the store.
    plugin_cli::approve(&config, "okta", &digest).await.unwrap();
    let store = store_in(&data).await;
    let registry = Registry::load(&rt, &store, &config.plugins, &config.policy, false)
        .await
        .unwrap();
    assert!(registry.pending().is_empty(), "{:?}", registry.pending());
    let running = registry.get("okta").unwrap();
    assert_eq!(running.plugin.manifest().version, "9.9.9");
    assert_eq!(running.plugin.digest(), digest);
    assert!(
        running
            .effective
            .http
            .iter()
            .any(|g| g.url == "https://exfil.example/")
    );
}

#[tokio::test]
async fn in_process_approve_loads_the_held_version() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    write(&plugins, "okta-9.9.9.wasm", &widened_okta());
    let config = PluginsConfig {
        bundled: true,
        dirs: vec![plugins],
        trusted_keys: vec![],
    };
    let store = store_in(tmp.path()).await;
    let rt = runtime();
    // Dev mode: the unsigned upgrade is trusted enough to load, but dev
    // mode never skips approval of widened permissions.
    let registry = Registry::load(&rt, &store, &config, &BTreeMap::new(), true)
        .await
        .unwrap();
    let pending = registry.pending();
    assert_eq!(pending.len(), 1);
    let loaded = registry
        .approve(&store, "okta", &pending[0].digest)
        .await
        .unwrap();
    assert_eq!(loaded.plugin.manifest().version, "9.9.9");
    assert_eq!(
        registry.get("okta").unwrap().plugin.manifest().version,
        "9.9.9"
    );
    assert!(registry.pending().is_empty());
}

/// The hostile connector with one edit to its embedded manifest, loaded the
/// way the daemon loads a file: the error text, or the loaded plugin.
fn load_edited(edit: &dyn Fn(&str) -> String) -> Result<Vec<u8>, String> {
    let bytes = rewrite_manifest(HOSTILE_WASM, edit);
    runtime()
        .load(&bytes)
        .map(|_| bytes)
        .map_err(|e| e.to_string())
}

/// Manifests that would let a configuration value (or the vendor) hide
/// where secrets go are refused at load, naming the field and the reason.
#[tokio::test]
async fn manifests_that_could_hide_a_destination_are_refused_at_load() {
    let domain = "pattern = \"[a-z0-9-]+\"";
    for pattern in [
        ".*",
        "[^/]+",
        "\\\\S+",
        "[a-z0-9-]+#?",
        "[a-z0-9-]+(@[a-z]+)?",
        "[a-z0-9:-]+",
        "[a-z0-9/-]+",
        "\\\\w+",
    ] {
        let e = load_edited(&|t| t.replacen(domain, &format!("pattern = \"{pattern}\""), 1))
            .expect_err(pattern);
        assert!(
            e.contains("config.domain.pattern") && e.contains("https://{domain}.okta.com/api/v1/"),
            "{pattern}: {e}"
        );
        assert!(e.contains("letters, digits, `-` and `.`"), "{pattern}: {e}");
    }
    // Plaintext grant bound to a secret.
    let e = load_edited(&|t| t.replace("https://echo.ward.test/", "http://echo.ward.test/"))
        .unwrap_err();
    assert!(
        e.contains("http[1].url") && e.contains("must use https"),
        "{e}"
    );
    // IP-literal host bound to a secret; wildcard host.
    let e = load_edited(&|t| {
        format!("{t}\n[[http]]\nurl = \"https://203.0.113.7/\"\nmethods = [\"GET\"]\nsecrets = [\"api_token\"]\n")
    })
    .unwrap_err();
    assert!(e.contains("IP-literal"), "{e}");
    let e = load_edited(&|t| {
        format!("{t}\n[[http]]\nurl = \"https://*.ward.test/\"\nmethods = [\"GET\"]\n")
    })
    .unwrap_err();
    assert!(e.contains("wildcard"), "{e}");
    // A backfill window that would put `since` before 1970.
    let e = load_edited(&|t| format!("{t}\n[schedule]\nbackfill_days = 36500\n")).unwrap_err();
    assert!(e.contains("schedule.backfill_days"), "{e}");
    // The unedited hostile manifest and the bundled connectors load.
    load_edited(&|t| t.to_string()).unwrap();
    for (key, bytes) in ward_daemon::bundled::PLUGINS {
        runtime()
            .load(bytes)
            .unwrap_or_else(|e| panic!("{key}: {e}"));
    }
}

/// `inspect` lists risks first (JSON and text): secrets per host, the
/// plaintext grant, raw credentials in exchange, config fields that shape a
/// host, `/` prefixes, secrets in bodies, limits at the ceiling; shows
/// config defaults filled into the grant, and limits clamped to the
/// daemon's ceilings as effective, with a warning.
#[tokio::test]
async fn inspect_lists_risks_defaults_and_clamped_limits() {
    let bytes = load_edited(&|t| {
        let t = t.replacen(
            "pattern = \"[a-z0-9-]+\"",
            "pattern = \"[a-z0-9-]+\"\ndefault = \"acme\"",
            1,
        );
        let t = t.replace(
            "https://collector.ward.test/",
            "http://collector.ward.test/",
        );
        let t = t.replace("wall_ms = 5000", "wall_ms = 900000");
        let t = t.replace(
            "url = \"https://echo.ward.test/\"\nmethods = [\"GET\"]\n",
            "url = \"https://echo.ward.test/\"\nmethods = [\"GET\"]\nallow_params = true\n",
        );
        format!("{t}\n[schedule]\nbackfill_days = 1000\npoll_interval_secs = 1\n")
    })
    .unwrap();
    let inspection = plugin_cli::inspect("hostile.wasm", &bytes, &[], &BTreeMap::new()).unwrap();
    let json = serde_json::to_value(&inspection).unwrap();
    let p = &json["permissions"];
    let risks = p["risks"].as_array().unwrap();
    let has = |kind: &str, subject: &str| {
        risks
            .iter()
            .any(|r| r["kind"] == kind && r["subject"].as_str().unwrap().contains(subject))
    };
    assert_eq!(risks[0]["kind"], "plaintext-scheme", "{risks:#?}");
    assert!(has("plaintext-scheme", "http://collector.ward.test/"));
    assert!(has("secrets-sent-to-host", "https://echo.ward.test/"));
    // A 0.2 component of world `plugin`: the host stores the token.
    assert!(!has("raw-credentials-in-exchange", ""));
    assert!(has("allow-params", "https://echo.ward.test/"));
    assert!(has(
        "config-shapes-host",
        "https://{domain}.okta.com/api/v1/"
    ));
    assert!(has("broad-path-prefix", "https://localhost/"));
    assert!(has("limit-at-ceiling", "limits.wall_ms = 300000"));
    assert!(has("limit-at-ceiling", "schedule.backfill_days = 366"));
    assert!(!has("secrets-in-body", ""));
    // Defaults: shown per field and filled into the displayed grant.
    let domain = p["config"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "domain")
        .unwrap();
    assert_eq!(domain["default"], "acme");
    assert_eq!(domain["shapes_host"], true);
    assert_eq!(
        p["http"][0]["url_with_defaults"],
        "https://acme.okta.com/api/v1/"
    );
    assert_eq!(p["http"][0]["config_fields"][0]["default"], "acme");
    // Ceilings: requested as declared, effective clamped, with warnings.
    assert_eq!(p["limits"]["requested"]["wall_ms"], 900_000);
    assert_eq!(p["limits"]["effective"]["wall_ms"], 300_000);
    assert_eq!(p["schedule"]["requested"]["backfill_days"], 1000);
    assert_eq!(p["schedule"]["effective"]["backfill_days"], 366);
    assert_eq!(p["schedule"]["effective"]["poll_interval_secs"], 10);
    assert_eq!(p["ceilings"]["max_wall_ms"], 300_000);
    let warnings: Vec<&str> = p["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("limits.wall_ms = 900000")
                && w.contains("limits.max_wall_ms = 300000")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("schedule.backfill_days = 1000"))
    );
    // The limits the runtime applies are the clamped ones.
    let plugin = runtime().load(&bytes).unwrap();
    assert_eq!(
        plugin.policy().limits(plugin.manifest().limits).wall_ms,
        300_000
    );

    // Text: risks (and warnings) come before everything else.
    let text = plugin_cli::render_inspection(&inspection);
    let risks_at = text.find("Risks (read these first):").unwrap();
    assert!(risks_at < text.find("HTTP grants").unwrap(), "{text}");
    assert!(risks_at < text.find("sha256").unwrap(), "{text}");
    assert!(
        text.contains("[plaintext-scheme] http://collector.ward.test/"),
        "{text}"
    );
    assert!(
        text.contains("with defaults: https://acme.okta.com/api/v1/"),
        "{text}"
    );
    assert!(text.contains("default \"acme\""), "{text}");
    assert!(
        text.contains("wall_ms            900000 -> 300000"),
        "{text}"
    );

    // The daemon's own ceilings (`[limits]` in ward.toml) apply instead.
    let config = Config::parse("[limits]\nmax_wall_ms = 2000\nmax_backfill_days = 30\n").unwrap();
    let strict =
        plugin_cli::inspect_with("hostile.wasm", &bytes, &[], &BTreeMap::new(), config.limits)
            .unwrap();
    assert_eq!(strict.permissions.limits.effective.wall_ms, 2000);
    assert_eq!(strict.permissions.schedule.effective.backfill_days, 30);
    assert!(Config::parse("[limits]\nmax_wall_ms = 0\n").is_err());
}
