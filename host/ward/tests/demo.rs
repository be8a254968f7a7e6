//! `ward demo --once` is the README's main job: it must exit 0 and print
//! the summary line.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[test]
fn demo_once_backfills_and_prints_summary() {
    let dir = tempfile::tempdir().unwrap();
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
        .arg(dir.path())
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
    assert!(dir.path().join("ward-demo.db").exists());
}
