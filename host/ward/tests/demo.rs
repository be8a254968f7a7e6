//! `ward demo --once` is the README's main job: it must exit 0 and print
//! the summary line, the first time and every time after on the same data
//! directory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[test]
fn demo_once_backfills_and_prints_summary() {
    let dir = tempfile::tempdir().unwrap();
    demo_once(dir.path());
    assert!(dir.path().join("ward-demo.db").exists());
}

#[test]
fn demo_runs_again_on_the_data_directory_of_an_earlier_demo() {
    let dir = tempfile::tempdir().unwrap();
    demo_once(dir.path());
    let secrets = std::fs::read_to_string(dir.path().join("api-secrets.toml")).unwrap();
    // The second run starts from an empty store again and reuses the API
    // secrets the first one wrote (it failed with "not written" before).
    demo_once(dir.path());
    let again = std::fs::read_to_string(dir.path().join("api-secrets.toml")).unwrap();
    assert_eq!(secrets, again, "the API secrets file was rewritten");
}

/// Runs `ward demo --once` on `dir` and checks its summary lines.
fn demo_once(dir: &std::path::Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_ward"))
        .args([
            "demo",
            "--once",
            "--events",
            "3000",
            "--users",
            "40",
            "--data-dir",
        ])
        .arg(dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every bundled connector, each against its stand-in, connected through
    // the REST API (Okta by API token, Zendesk and Egnyte by OAuth).
    for key in ["okta", "zendesk", "egnyte"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("{key}: events: 3000, users: "))),
            "{stdout}"
        );
    }
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("events: 9000, users: ")),
        "{stdout}"
    );
}
