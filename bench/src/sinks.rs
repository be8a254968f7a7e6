//! Events out (#13): events/s through the OCSF mapping and through an HTTP
//! sink (Splunk HEC stand-in on loopback, gzip, batches of 2,000), each as a
//! ratio to plain store reads of the same events in the same run.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use ward_sinks::{Format, ManifestLookup, SinkConfig, Sinks};
use ward_standins::hec::HecStandIn;
use ward_store::{MasterKey, NewEvent, NewInstance, SeqQuery, Store};

use crate::figure::{Figure, ratio};
use crate::runtime::{bundled, runtime};

const EVENTS: usize = 50_000;
const STEP: u32 = 2_000;
const TOKEN: &str = "bench-hec-token";

pub(crate) fn event(i: usize) -> NewEvent {
    let actions = [
        "user.session.start",
        "user.account.update_password",
        "group.user_membership.add",
        "app.oauth2.token.grant",
    ];
    NewEvent {
        event_id: format!("bench-{i:08}"),
        time_ms: 1_790_000_000_000 + i as i64 * 250,
        action: actions[i % actions.len()].to_owned(),
        actor_id: Some(format!("00u{:06}", i % 500)),
        actor_kind: "user".into(),
        actor_name: Some(format!("User {}", i % 500)),
        actor_email: Some(format!("user{}@example.test", i % 500)),
        targets_json: r#"[{"type":"AppInstance","id":"0oa9","name":"Payroll"}]"#.into(),
        ip: Some("198.51.100.7".into()),
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64)".into()),
        outcome: if i.is_multiple_of(9) {
            "failure"
        } else {
            "success"
        }
        .into(),
        raw_json: format!(
            r#"{{"uuid":"bench-{i:08}","published":"2026-09-21T10:00:00.000Z","eventType":"user.session.start","outcome":{{"result":"SUCCESS"}}}}"#
        ),
    }
}

/// Prints the sink figures.
pub async fn run() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::open_sqlite(&dir.path().join("ward.db"), MasterKey::generate()).await?;
    let instance = store
        .create_instance(&NewInstance {
            plugin_key: "okta".into(),
            plugin_version: "bench".into(),
            name: "bench".into(),
            config: BTreeMap::from([("domain".to_string(), "bench".to_string())]),
            tags: Vec::new(),
        })
        .await?;
    let events: Vec<NewEvent> = (0..EVENTS).map(event).collect();
    for (n, page) in events.chunks(1_000).enumerate() {
        store
            .commit_audit_page(&instance.id, page, &format!("c{n}"))
            .await?;
    }
    let rt = runtime(None, None)?;
    let manifest = bundled(&rt, "okta")?.manifest().clone();
    let lookup: ManifestLookup =
        Arc::new(move |key: &str| (key == "okta").then(|| manifest.clone()));

    // Plain reads and reads + OCSF mapping of the same events: one
    // unmeasured pass of each warms SQLite's page cache and the mapper,
    // then ROUNDS alternating passes each; the medians are compared (so
    // neither side pays for a cold cache).
    let sinks = Sinks::new(Vec::new(), store.clone(), lookup.clone());
    read_all(&store, None).await?;
    read_all(&store, Some(sinks.renderer())).await?;
    let mut plain = Vec::with_capacity(ROUNDS);
    let mut with_mapping = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        plain.push(read_all(&store, None).await?);
        with_mapping.push(read_all(&store, Some(sinks.renderer())).await?);
    }
    let reads = median(plain);
    let mapped = median(with_mapping);
    let per_sec = |d: Duration| EVENTS as f64 / d.as_secs_f64().max(1e-9);

    Figure {
        figure: "OCSF mapping: events/s (store read + map)".into(),
        value: format!("{:.0} events/s", per_sec(mapped)),
        baseline: format!("{:.0} events/s plain store reads", per_sec(reads)),
        ratio: ratio(per_sec(mapped), per_sec(reads)),
        note: format!("{EVENTS} synthetic Okta events in ingestion order, {STEP} per read, mapped by the bundled Okta manifest's [ocsf] rules and serialised to JSON; median of {ROUNDS} alternating passes per side after one warm-up pass each; ratio < 1 is the mapping's cost relative to reading alone"),
    }
    .emit()?;

    // Through an HTTP sink into a HEC stand-in.
    let hec = HecStandIn::start(TOKEN).await?;
    let config: SinkConfig = toml::from_str(&format!(
        "name = \"bench\"\ntype = \"http\"\npreset = \"splunk-hec\"\nurl = \"{}\"\nsecret = \"hec\"\nbatch_size = {STEP}\n",
        hec.url()
    ))?;
    let sinks = Sinks::new(vec![config], store.clone(), lookup);
    sinks.set_secret("hec", TOKEN).await?;
    let started = Instant::now();
    sinks.start()?;
    loop {
        let status = sinks.status().await?;
        let s = status.first().context("no sink status")?;
        if s.state == "dead_letter" {
            anyhow::bail!("the bench sink was refused: {:?}", s.last_error);
        }
        if s.delivered >= EVENTS as u64 {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            anyhow::bail!("the HTTP sink did not deliver {EVENTS} events within 600 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let sent = started.elapsed();
    sinks.shutdown(Duration::from_secs(5)).await;
    Figure {
        figure: "HTTP sink (Splunk HEC, OCSF): events/s".into(),
        value: format!("{:.0} events/s", per_sec(sent)),
        baseline: format!("{:.0} events/s plain store reads (median, warm)", per_sec(reads)),
        ratio: ratio(per_sec(sent), per_sec(reads)),
        note: format!("{EVENTS} events, batches of {STEP}, gzip, plain HTTP to a HEC stand-in on loopback in the same process (it decompresses and parses every envelope), cursor committed per batch; {} requests", hec.batches().len()),
    }
    .emit()?;
    Ok(())
}

/// Measured passes per side of the mapping comparison.
const ROUNDS: usize = 5;

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs.get(runs.len() / 2).copied().unwrap_or_default()
}

async fn read_all(
    store: &Store,
    mut renderer: Option<ward_sinks::Renderer>,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut q = SeqQuery {
        limit: STEP,
        ..SeqQuery::default()
    };
    let mut n = 0;
    let mut bytes = 0usize;
    loop {
        let batch = store.events_after_seq(&q).await?;
        let Some(last) = batch.last() else { break };
        q.after_seq = last.seq;
        n += batch.len();
        if let Some(r) = renderer.as_mut() {
            for e in &batch {
                bytes += serde_json::to_vec(&r.render(Format::Ocsf, &e.event).await?)?.len();
            }
        }
    }
    if n != EVENTS {
        anyhow::bail!("read {n} events, not {EVENTS}");
    }
    std::hint::black_box(bytes);
    Ok(started.elapsed())
}
