//! The `ward` API client commands, run as processes against a real
//! `ward serve` process over Okta stand-ins: exit statuses, flag placement,
//! advice when the secrets file is missing, empty listings, aligned columns.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use ward_standins::okta::{OktaConfig, OktaStandIn};
use ward_standins::tls::TestCa;

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

/// Starts `ward serve` on `dir` with both stand-ins reachable, and reads
/// the API's address from its start-up line.
fn serve(dir: &Path, ca: &TestCa, orgs: &[&OktaStandIn]) -> Served {
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.ca_pem()).unwrap();
    let resolve: Vec<String> = orgs
        .iter()
        .map(|o| format!("\"{}\" = \"{}\"", o.host(), o.addr()))
        .collect();
    let config = format!(
        "data_dir = \"{data}\"\n\n[api]\nlisten = \"127.0.0.1:0\"\n\n[egress]\n\
         ca_files = [\"{ca}\"]\nallow_private = [\"{ip}/32\"]\nresolve = {{ {resolve} }}\n\n\
         [scheduler]\npoll_interval_secs = 1\n",
        data = dir.display(),
        ca = ca_file.display(),
        ip = orgs[0].addr().ip(),
        resolve = resolve.join(", "),
    );
    let config_file = dir.join("ward.toml");
    std::fs::write(&config_file, config).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ward"))
        .args(["serve", "--config"])
        .arg(&config_file)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
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
    let okta = OktaStandIn::start(
        OktaConfig {
            events: 40,
            users: 3,
            ..OktaConfig::default()
        },
        &ca,
    )
    .await
    .unwrap();
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
