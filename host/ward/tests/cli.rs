//! The `ward` API client commands, run as processes against a real
//! `ward serve` process over Okta and Zendesk stand-ins: exit statuses,
//! flag placement, advice when the secrets file is missing, empty listings,
//! aligned columns, `ward connect` (OAuth consent and API token),
//! `ward elements`, completions and the daemon's log formats.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use ward_standins::okta::{OktaConfig, OktaStandIn};
use ward_standins::tls::TestCa;
use ward_standins::zendesk::{ZendeskConfig, ZendeskStandIn};

const NOADMIN_TOKEN: &str = "00ward-noadmin-ssws-token";

/// A `ward serve` process; killed when dropped.
struct Served {
    child: Child,
    url: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `ward serve` on `dir` with the Okta orgs reachable, and reads
/// the API's address from its start-up line.
fn serve(dir: &Path, ca: &TestCa, orgs: &[&OktaStandIn]) -> Served {
    let hosts: Vec<(String, SocketAddr)> = orgs.iter().map(|o| (o.host(), o.addr())).collect();
    serve_with(dir, ca, &hosts, &[], &[])
}

/// Starts `ward serve` on `dir` reaching `hosts` (stand-ins on loopback),
/// with extra arguments and environment; its log (stderr) goes to
/// `<dir>/serve.log`.
fn serve_with(
    dir: &Path,
    ca: &TestCa,
    hosts: &[(String, SocketAddr)],
    args: &[&str],
    env: &[(&str, &str)],
) -> Served {
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.ca_pem()).unwrap();
    let resolve: Vec<String> = hosts
        .iter()
        .map(|(host, addr)| format!("\"{host}\" = \"{addr}\""))
        .collect();
    let config = format!(
        "data_dir = \"{data}\"\n\n[api]\nlisten = \"127.0.0.1:0\"\n\n[egress]\n\
         ca_files = [\"{ca}\"]\nallow_private = [\"{ip}/32\"]\nresolve = {{ {resolve} }}\n\n\
         [scheduler]\npoll_interval_secs = 1\n",
        data = dir.display(),
        ca = ca_file.display(),
        ip = hosts[0].1.ip(),
        resolve = resolve.join(", "),
    );
    let config_file = dir.join("ward.toml");
    std::fs::write(&config_file, config).unwrap();
    let log = std::fs::File::create(dir.join("serve.log")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ward"))
        .args(["serve", "--config"])
        .arg(&config_file)
        .args(args)
        .env_remove("WARD_LOG")
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("ward serve exited before serving")
            .unwrap();
        if let Some(rest) = line.split("serving ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    // Keep draining stdout so the daemon never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Served { child, url }
}

/// `ward instances create` of an Okta instance through the daemon at `url`.
fn create_okta(domain: &str, token: &str, url: &str, data: &str) -> Output {
    let config = format!("domain={domain}");
    ward(&[
        "instances",
        "create",
        "--element",
        "okta",
        "--config",
        &config,
        "--api-token",
        token,
        "--url",
        url,
        "--data-dir",
        data,
    ])
}

/// Runs `ward ARGS` with no WARD_* variables from the environment.
fn ward(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ward"))
        .args(args)
        .env_remove("WARD_URL")
        .env_remove("WARD_USER_SECRET")
        .env_remove("WARD_ORG_SECRET")
        .env_remove("WARD_DATA_DIR")
        .env_remove("WARD_API_TOKEN")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_client_commands_behave_for_operators() {
    let ca = TestCa::generate().unwrap();
    let okta = okta_org(&ca, 40, 3).await;
    let noadmin = OktaStandIn::start(
        OktaConfig {
            org: "ward-noadmin".into(),
            api_token: NOADMIN_TOKEN.into(),
            events: 5,
            users: 2,
            admin_role: None,
            ..OktaConfig::default()
        },
        &ca,
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let served = serve(dir.path(), &ca, &[&okta, &noadmin]);
    let data = dir.path().to_str().unwrap();
    let url = served.url.as_str();

    // Global flags after the subcommand; an empty list says so.
    let o = ward(&["instances", "list", "--url", url, "--data-dir", data]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("no instances"),
        "{}",
        text(&o)
    );
    // And before it, as before.
    let o = ward(&["instances", "--url", url, "--data-dir", data, "list"]);
    assert!(o.status.success(), "{}", text(&o));

    // A missing secrets file: advice naming --data-dir and the variables,
    // not "fix its permissions".
    let elsewhere = dir.path().join("not-the-data-dir");
    let o = ward(&[
        "instances",
        "list",
        "--url",
        url,
        "--data-dir",
        elsewhere.to_str().unwrap(),
    ]);
    assert!(!o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--data-dir"), "{}", text(&o));
    assert!(err.contains("WARD_USER_SECRET"), "{}", text(&o));
    assert!(err.contains("does not exist"), "{}", text(&o));
    assert!(!err.contains("permissions"), "{}", text(&o));

    // An instance that ends in error (the token's owner is no admin):
    // create exits 1, like test does for the same state.
    let o = create_okta("ward-noadmin", NOADMIN_TOKEN, url, data);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("[FAIL]"),
        "{}",
        text(&o)
    );
    let failed_id = String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned();
    let o = ward(&[
        "instances",
        "test",
        &failed_id,
        "--url",
        url,
        "--data-dir",
        data,
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));

    // A working one exits 0.
    let o = create_okta("ward-demo", &OktaConfig::default().api_token, url, data);
    assert!(o.status.success(), "{}", text(&o));
    let id = String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned();

    // The failed instance has no events: said so.
    let o = ward(&[
        "events",
        "--instance",
        &failed_id,
        "--url",
        url,
        "--data-dir",
        data,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("no events"),
        "{}",
        text(&o)
    );

    // The working one's events, once backfilled, in aligned columns: every
    // column starts at the same character on every line.
    let lines = loop {
        let o = ward(&[
            "events",
            "--instance",
            &id,
            "--url",
            url,
            "--data-dir",
            data,
        ]);
        assert!(o.status.success(), "{}", text(&o));
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        let lines: Vec<String> = out.lines().map(str::to_owned).collect();
        if lines.len() > 40 {
            break lines;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert!(lines[0].starts_with("TIME"), "{lines:#?}");
    let starts = |line: &str| -> Vec<usize> {
        let chars: Vec<char> = line.chars().collect();
        (1..chars.len())
            .filter(|&i| chars[i] != ' ' && chars[i - 1] == ' ' && i >= 2 && chars[i - 2] == ' ')
            .take(3)
            .collect()
    };
    let header = starts(&lines[0]);
    assert_eq!(header.len(), 3, "{lines:#?}");
    for line in &lines[1..] {
        assert_eq!(
            starts(line),
            header,
            "misaligned: {line:?} under {:?}",
            lines[0]
        );
    }
}

/// The `ward-demo` Okta org with `events` and `users`.
async fn okta_org(ca: &TestCa, events: usize, users: usize) -> OktaStandIn {
    OktaStandIn::start(
        OktaConfig {
            events,
            users,
            ..OktaConfig::default()
        },
        ca,
    )
    .await
    .unwrap()
}

/// Starts `ward connect zendesk` with OAuth against the daemon at `url`
/// and reads its output up to the consent URL. Returns the process, the
/// rest of its output, what it printed so far and the consent URL. The
/// caller waits for the process.
#[allow(clippy::zombie_processes)]
fn start_connect(
    url: &str,
    data: &str,
    client: &(String, String),
) -> (
    Child,
    std::io::Lines<BufReader<std::process::ChildStdout>>,
    Vec<String>,
    String,
) {
    let callback = format!("{url}/oauth/callback");
    let mut connect = Command::new(env!("CARGO_BIN_EXE_ward"))
        .args(["connect", "zendesk", "--config", "subdomain=ward-demo"])
        .args(["--api-key", &client.0, "--api-secret", &client.1])
        .args([
            "--callback-url",
            &callback,
            "--url",
            url,
            "--data-dir",
            data,
        ])
        .env_remove("WARD_API_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(connect.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    loop {
        let line = lines
            .next()
            .expect("ward connect ended before printing a consent URL")
            .unwrap();
        printed.push(line.clone());
        if let Some(u) = line.trim().strip_prefix("https://") {
            let consent = format!("https://{u}");
            return (connect, lines, printed, consent);
        }
    }
}

/// A browser for the consent pages: trusts the test CA, reaches the
/// stand-ins under their real names, and does not follow redirects (the
/// test follows them itself, to Ward's callback).
fn browser(ca: &TestCa, hosts: &[(String, SocketAddr)]) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.ca_pem().as_bytes()).unwrap())
        .redirect(reqwest::redirect::Policy::none());
    for (host, addr) in hosts {
        builder = builder.resolve(host, *addr);
    }
    builder.build().unwrap()
}

/// `ward connect` with OAuth waits for Ward's callback and creates the
/// instance; with an API token it creates it directly. Both print the Test
/// now checks and exit 0 only when every check passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_runs_the_oauth_consent_and_the_token_path_end_to_end() {
    let ca = TestCa::generate().unwrap();
    let okta = okta_org(&ca, 5, 2).await;
    let zendesk = ZendeskStandIn::start(
        ZendeskConfig {
            events: 5,
            users: 2,
            ..ZendeskConfig::default()
        },
        &ca,
    )
    .await
    .unwrap();
    let hosts = vec![(okta.host(), okta.addr()), (zendesk.host(), zendesk.addr())];
    let dir = tempfile::tempdir().unwrap();
    let served = serve_with(dir.path(), &ca, &hosts, &[], &[]);
    let data = dir.path().to_str().unwrap();
    let url = served.url.as_str();
    let callback = format!("{url}/oauth/callback");
    let client = zendesk.oauth_client();

    // OAuth: `ward connect` prints the consent URL and waits.
    let (mut connect, lines, mut printed, consent) = start_connect(url, data, &client);
    // The operator's browser: consent at the provider, then the redirect
    // to Ward's callback.
    let browser = browser(&ca, &hosts);
    let at_provider = browser.get(&consent).send().await.unwrap();
    assert_eq!(at_provider.status(), 302, "consent at {consent}");
    let back = at_provider.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(back.starts_with(&callback), "{back}");
    let at_ward = browser.get(&back).send().await.unwrap();
    assert_eq!(at_ward.status(), 200, "callback {back}");
    let rest = tokio::task::spawn_blocking(move || {
        let rest: Vec<String> = lines.map_while(Result::ok).collect();
        (connect.wait().unwrap(), rest)
    });
    let (status, rest) = tokio::time::timeout(std::time::Duration::from_secs(120), rest)
        .await
        .expect("ward connect did not finish after the callback")
        .unwrap();
    printed.extend(rest);
    let out = printed.join("\n");
    assert!(status.success(), "{status:?}\n{out}");
    assert!(out.contains("Waiting for the provider"), "{out}");
    assert!(out.contains("[ok] credentials-valid"), "{out}");
    assert!(!out.contains("[FAIL]"), "{out}");
    assert!(out.contains("instance token"), "{out}");

    // API token: created at once.
    let o = ward(&[
        "connect",
        "okta",
        "--config",
        "domain=ward-demo",
        "--api-token",
        &OktaConfig::default().api_token,
        "--url",
        url,
        "--data-dir",
        data,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("[ok] credentials-valid"),
        "{}",
        text(&o)
    );

    // Both instances exist, and the state cannot be used again.
    let o = ward(&["instances", "list", "--url", url, "--data-dir", data]);
    let listed = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        listed.contains("zendesk") && listed.contains("okta"),
        "{}",
        text(&o)
    );
    let replay = browser.get(&back).send().await.unwrap();
    assert_eq!(replay.status(), 401);

    // A consent the user declines: `ward connect` says so and exits 1.
    zendesk.set_oauth_decline(true);
    // Its stdout stays open (`_lines`) until it exits.
    let (connect, _lines, _, consent) = start_connect(url, data, &client);
    let at_provider = browser.get(&consent).send().await.unwrap();
    let back = at_provider.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(back.contains("error=access_denied"), "{back}");
    assert_eq!(browser.get(&back).send().await.unwrap().status(), 400);
    let output = tokio::task::spawn_blocking(move || connect.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("declined"),
        "{}",
        text(&output)
    );
}

/// `ward elements list|show` and `ward completions` for each shell.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elements_and_completions_print_what_operators_need() {
    let ca = TestCa::generate().unwrap();
    let okta = okta_org(&ca, 5, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let served = serve(dir.path(), &ca, &[&okta]);
    let data = dir.path().to_str().unwrap();
    let url = served.url.as_str();

    let o = ward(&["elements", "list", "--url", url, "--data-dir", data]);
    assert!(o.status.success(), "{}", text(&o));
    let listed = String::from_utf8_lossy(&o.stdout).into_owned();
    for key in ["okta", "zendesk", "egnyte"] {
        assert!(listed.contains(key), "{}", text(&o));
    }
    let o = ward(&["elements", "show", "okta", "--url", url, "--data-dir", data]);
    assert!(o.status.success(), "{}", text(&o));
    // A summary (auth kinds, config fields), then the whole JSON.
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(out.starts_with("okta "), "{}", text(&o));
    assert!(out.contains("  config domain"), "{}", text(&o));
    let json_at = out
        .find("\n{")
        .unwrap_or_else(|| panic!("no JSON: {}", text(&o)));
    let shown: serde_json::Value = serde_json::from_str(&out[json_at..])
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&o)));
    assert_eq!(shown["key"], "okta", "{shown}");
    let o = ward(&["elements", "show", "nope", "--url", url, "--data-dir", data]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("404"),
        "{}",
        text(&o)
    );

    for shell in ["bash", "zsh", "fish"] {
        let o = ward(&["completions", shell]);
        assert!(o.status.success(), "{}", text(&o));
        let script = String::from_utf8_lossy(&o.stdout);
        for word in ["connect", "instances", "elements", "serve"] {
            assert!(script.contains(word), "{shell} script lacks {word}");
        }
    }
}

/// The daemon's log: human text without ANSI escapes when stderr is not a
/// terminal, one JSON object a line with `--log-format json`, and
/// `WARD_LOG=debug` raising the level.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_format_switches_do_what_they_say() {
    let ca = TestCa::generate().unwrap();
    let okta = okta_org(&ca, 5, 2).await;
    let hosts = vec![(okta.host(), okta.addr())];

    let text_dir = tempfile::tempdir().unwrap();
    let served = serve_with(text_dir.path(), &ca, &hosts, &[], &[]);
    drop(served);
    let log = std::fs::read_to_string(text_dir.path().join("serve.log")).unwrap();
    assert!(log.contains(" INFO "), "{log}");
    assert!(!log.contains('\u{1b}'), "ANSI escapes in a pipe: {log:?}");
    assert!(!log.contains(" DEBUG "), "{log}");

    let json_dir = tempfile::tempdir().unwrap();
    let served = serve_with(
        json_dir.path(),
        &ca,
        &hosts,
        &["--log-format", "json"],
        &[("WARD_LOG", "debug")],
    );
    drop(served);
    let log = std::fs::read_to_string(json_dir.path().join("serve.log")).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
        .collect();
    assert!(!lines.is_empty(), "no log lines");
    assert!(
        lines.iter().any(|l| l["level"] == "DEBUG"),
        "WARD_LOG=debug logged no debug line: {log}"
    );
    assert!(!log.contains('\u{1b}'), "{log:?}");
}
