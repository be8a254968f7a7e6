//! File sink and export, end to end: real Okta backfill, real store, the
//! sink's task writing real files; `GET /events/export` through the API.

use std::collections::HashSet;
use std::io::Read;
use std::time::Duration;

use anyhow::Context;
use ward_daemon::config::Config;
use ward_sinks::{Format, SinkConfig, SinkFilter, SinkKind};
use ward_standins::okta::{OktaConfig, OktaStandIn};
use ward_standins::tls::TestCa;
use ward_tests::api::ApiHarness;
use ward_tests::console::ConsoleTab;
use ward_tests::daemon::DaemonHarness;

const EVENTS: usize = 3_000;

/// A `[[sinks]]` table as an operator writes it: Ward JSON, rotation
/// every 256 KiB.
fn file_sink(dir: &std::path::Path) -> anyhow::Result<SinkConfig> {
    let config: SinkConfig = toml::from_str(&format!(
        "name = \"archive\"\ntype = \"file\"\nformat = \"ward\"\npath = \"{}\"\nbatch_size = 400\nrotate_bytes = 262144\n",
        dir.display()
    ))?;
    config.validate().map_err(anyhow::Error::msg)?;
    assert_eq!(config.filter, SinkFilter::default());
    Ok(config)
}

/// Every `key` in the sink's files: closed ones gzipped, the current one plain.
fn keys_in(dir: &std::path::Path) -> anyhow::Result<(Vec<String>, usize)> {
    let mut keys = Vec::new();
    let mut gzipped = 0;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_owned();
        let text = if name.ends_with(".ndjson.gz") {
            gzipped += 1;
            let mut s = String::new();
            flate2::read::GzDecoder::new(std::fs::File::open(&path)?).read_to_string(&mut s)?;
            s
        } else if name == "archive.ndjson" {
            std::fs::read_to_string(&path)?
        } else {
            anyhow::bail!("unexpected file {name} in the sink's directory");
        };
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).context("a line is not JSON")?;
            keys.push(v["key"].as_str().context("no key")?.to_owned());
        }
    }
    Ok((keys, gzipped))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_sink_rotates_gzips_and_holds_every_event() -> anyhow::Result<()> {
    let out = tempfile::tempdir()?;
    let sink_dir = out.path().join("archive");
    let sink = file_sink(&sink_dir)?;
    assert_eq!((sink.kind, sink.format), (SinkKind::File, Format::Ward));
    let h = DaemonHarness::start(
        OktaConfig {
            events: EVENTS,
            users: 5,
            ..OktaConfig::default()
        },
        |c: &mut Config| c.sinks = vec![sink],
    )
    .await;
    let instance = h.connect_okta().await;
    h.daemon.scheduler.resume_all().await?;
    assert_eq!(h.daemon.start_sinks()?, 1);
    h.wait_caught_up(&instance.id, EVENTS as u64).await;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let status = h.daemon.sinks.status().await?;
        if status[0].lag_events == 0 {
            assert_eq!(status[0].state, "active");
            assert!(status[0].delivered >= EVENTS as u64);
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "sink still behind: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    h.daemon.shutdown().await;

    let (keys, gzipped) = keys_in(&sink_dir)?;
    let unique: HashSet<&String> = keys.iter().collect();
    assert_eq!(unique.len(), keys.len(), "a clean run writes no duplicates");
    let expected: HashSet<String> = h
        .okta
        .event_ids()
        .into_iter()
        .map(|e| format!("{}/{e}", instance.id))
        .collect();
    let got: HashSet<String> = keys.into_iter().collect();
    assert_eq!(got, expected);
    assert!(
        gzipped >= 2,
        "expected rotated, gzipped files; found {gzipped}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_streams_every_event_through_the_api() -> anyhow::Result<()> {
    let ca = TestCa::generate()?;
    let okta = OktaStandIn::start(
        OktaConfig {
            events: 1_500,
            users: 5,
            ..OktaConfig::default()
        },
        &ca,
    )
    .await?;
    let out = tempfile::tempdir()?;
    let sink = file_sink(&out.path().join("archive"))?;
    let api = ApiHarness::start(ca, vec![(okta.host(), okta.addr())], |c: &mut Config| {
        c.sinks = vec![sink]
    })
    .await;
    let (status, created) = api
        .connect_token(
            "okta",
            &OktaConfig::default().api_token,
            &[("domain", "ward-demo")],
            "Okta",
        )
        .await;
    anyhow::ensure!(status.is_success(), "{created}");
    let id = created["id"].as_str().context("no id")?.to_owned();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while api.daemon.store.event_count(&id).await? < 1_500 {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "backfill did not finish"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let export = async |query: &str| -> anyhow::Result<(u16, String)> {
        let r = api
            .http
            .get(format!("{}/events/export{query}", api.url))
            .header("authorization", &api.auth)
            .send()
            .await?;
        Ok((r.status().as_u16(), r.text().await?))
    };
    let (status, body) = export("").await?;
    assert_eq!(status, 200);
    let uids: HashSet<String> = body
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l)?;
            assert_eq!(v["metadata"]["version"], "1.3.0");
            Ok(v["metadata"]["uid"].as_str().unwrap_or("").to_owned())
        })
        .collect::<anyhow::Result<_>>()?;
    let expected: HashSet<String> = okta.event_ids().into_iter().collect();
    assert_eq!(uids, expected);
    assert_eq!(body.lines().count(), 1_500);

    let (status, body) = export(&format!("?format=ward&instance={id}&since=0")).await?;
    assert_eq!(status, 200);
    let first: serde_json::Value = serde_json::from_str(body.lines().next().unwrap_or(""))?;
    assert!(
        first["key"]
            .as_str()
            .unwrap_or("")
            .starts_with(&format!("{id}/"))
    );
    assert_eq!(export("?instance=nope").await?.0, 404);
    assert_eq!(export("?format=csv").await?.0, 400);

    // Sinks: listed with their lag; secrets only for names a sink uses.
    let (status, sinks) = api.get("/sinks").await;
    assert_eq!(status, 200);
    assert_eq!(sinks["sinks"][0]["name"], "archive");
    assert_eq!(sinks["sinks"][0]["type"], "file");
    let (status, _) = api
        .send(
            reqwest::Method::PUT,
            "/sink-secrets/unused",
            Some(&serde_json::json!({"value": "x"})),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = api
        .send(reqwest::Method::POST, "/sinks/nope/resume", None)
        .await;
    assert_eq!(status, 404);

    // The console shows the same status, to a signed-in operator only.
    let mut tab = ConsoleTab::open(&api);
    let refused = tab.get("/console/sinks").await;
    assert_eq!(refused.status, 303, "{refused:?}");
    tab.get(&api.console.one_time_link(&api.url)).await;
    let page = tab.get("/console/sinks").await;
    assert_eq!(page.status, 200, "{page:?}");
    let delivered = format!("<td>{}</td>", sinks["sinks"][0]["delivered"]);
    assert!(
        page.body.contains("<td>archive</td>") && page.body.contains(&delivered),
        "{}",
        page.body
    );
    let resume = tab.post("/console/sinks/nope/resume", &[]).await;
    assert_eq!(
        resume.status, 403,
        "a form without the CSRF token: {resume:?}"
    );
    Ok(())
}
