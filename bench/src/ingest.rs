//! Ingestion: a release `ward serve` backfills the stand-in's System Log
//! into SQLite; the baseline is `airbyte-source-okta` reading the same
//! stand-in in the same run.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::daemon::{Daemon, Upstream, write_config};
use crate::figure::{Figure, cpu_time, micros, ratio, rss_mib};
use crate::standin::Org;

/// One reader's run over the whole System Log.
#[derive(Debug, Clone, Copy)]
struct Run {
    events: u64,
    wall: Duration,
    /// CPU time of the reader's process.
    cpu: Duration,
    /// CPU time of the stand-in (this process) meanwhile.
    standin_cpu: Duration,
}

impl Run {
    fn per_sec(&self) -> f64 {
        self.events as f64 / self.wall.as_secs_f64()
    }
    fn cpu_us_per_event(&self) -> f64 {
        micros(self.cpu) / self.events as f64
    }
}

/// Runs both readers and prints their figures.
pub async fn run(ward: &Path, python: Option<&Path>, events: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let org = Org::start(events, dir.path()).await?;
    let served = org.serve_rate;
    let ward_run = ward_backfill(ward, &org, dir.path(), events as u64).await?;
    let (daemon_rss, ward_run) = ward_run;
    let airbyte = match python {
        Some(python) => airbyte_read(python, &org, dir.path()).await,
        None => Err(anyhow::anyhow!("no Python venv given (--python)")),
    };
    let standin_note = format!(
        "stand-in alone serves {:.0} events/s to a plain Rust client ({:.1} µs CPU/event, stand-in and client together; pages of 1,000, {:.2} KB/event)",
        served.events as f64 / served.wall.as_secs_f64(),
        micros(served.cpu) / served.events as f64,
        served.bytes as f64 / served.events as f64 / 1000.0,
    );
    let ward_note = format!(
        "release `ward serve`, {} events backfilled into SQLite through the REST API (POST /instances, then requestsPerMinute raised), wall clock from POST until eventsStored = N; stand-in CPU meanwhile {:.1} µs/event; {standin_note}",
        ward_run.events,
        micros(ward_run.standin_cpu) / ward_run.events as f64
    );
    match airbyte {
        Ok(a) => {
            let note = format!(
                "baseline: airbyte-source-okta 0.3.26 (`read`, stream `logs`, its page size 200; `since` dropped from requests carrying `after`, see ingest.rs) on the same stand-in, {} records; stand-in CPU meanwhile {:.1} µs/event. ",
                a.events,
                micros(a.standin_cpu) / a.events as f64
            );
            Figure {
                figure: "ingestion: events/s (wall)".into(),
                value: format!("{:.0} events/s", ward_run.per_sec()),
                baseline: format!("{:.0} events/s", a.per_sec()),
                ratio: ratio(ward_run.per_sec(), a.per_sec()),
                note: format!("{note}{ward_note}"),
            }
            .emit()?;
            Figure {
                figure: "ingestion: reader CPU µs/event".into(),
                value: format!("{:.1} µs", ward_run.cpu_us_per_event()),
                baseline: format!("{:.1} µs", a.cpu_us_per_event()),
                ratio: ratio(a.cpu_us_per_event(), ward_run.cpu_us_per_event()),
                note: "utime+stime of the `ward serve` process (/proc/PID/stat) over the backfill, including the connection test and the users read; baseline: the Airbyte process (getrusage, self and children)".into(),
            }
            .emit()?;
        }
        Err(e) => {
            Figure {
                figure: "ingestion: events/s (wall)".into(),
                value: format!("{:.0} events/s", ward_run.per_sec()),
                baseline: format!("missing: {e:#}"),
                ratio: "—".into(),
                note: ward_note,
            }
            .emit()?;
            Figure::alone(
                "ingestion: reader CPU µs/event",
                format!("{:.1} µs", ward_run.cpu_us_per_event()),
                format!("utime+stime of `ward serve`; Airbyte baseline missing: {e:#}"),
            )
            .emit()?;
        }
    }
    Figure::alone(
        "daemon RSS after backfill (1 instance)",
        format!("{daemon_rss:.0} MiB"),
        "VmRSS of `ward serve` right after the backfill above",
    )
    .emit()?;
    Ok(())
}

/// `ward serve` on a fresh data directory backfills the org.
async fn ward_backfill(
    ward: &Path,
    org: &Org,
    dir: &Path,
    events: u64,
) -> anyhow::Result<(f64, Run)> {
    let data = dir.join("ward-ingest");
    std::fs::create_dir_all(&data)?;
    let host = org.host();
    let config = write_config(
        &data,
        Some(&Upstream {
            host: &host,
            addr: org.okta.addr(),
            ca_file: &org.ca_file,
        }),
    )?;
    let (daemon, _) = Daemon::start(ward, &config).await?;
    let pid = daemon.pid();
    let (cpu0, standin0, wall0) = (cpu_time(Some(pid))?, cpu_time(None)?, Instant::now());
    let domain = host.split('.').next().unwrap_or_default().to_string();
    let id = daemon.create_okta(&domain, &org.token).await?;
    // Okta's own ceiling (600/min) is the connector's politeness toward a
    // real org; the stand-in advertises far more, so the operator raises it.
    daemon.set_rate(&id, 1_000_000).await?;
    loop {
        let (stored, state) = daemon.events_stored(&id).await?;
        if stored >= events {
            break;
        }
        if state == "error" {
            anyhow::bail!("the bench instance went to error after {stored} events");
        }
        if wall0.elapsed() > Duration::from_secs(600) {
            anyhow::bail!("backfill stored {stored} of {events} events in 600 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let run = Run {
        events,
        wall: wall0.elapsed(),
        cpu: cpu_time(Some(pid))? - cpu0,
        standin_cpu: cpu_time(None)? - standin0,
    };
    Ok((rss_mib(pid)?, run))
}

/// The Python wrapper that points `airbyte-source-okta` at the stand-in:
/// the org's host name resolves to the stand-in's loopback address and
/// port (what `egress.resolve` does for Ward), the CA comes from
/// `REQUESTS_CA_BUNDLE`, and the process reports its own CPU time.
const AIRBYTE_WRAPPER: &str = r#"
import json, resource, socket, sys
host, port = sys.argv[1], int(sys.argv[2])
_getaddrinfo = socket.getaddrinfo
def getaddrinfo(h, p, *args, **kwargs):
    if h == host:
        return _getaddrinfo("127.0.0.1", port, *args, **kwargs)
    return _getaddrinfo(h, p, *args, **kwargs)
socket.getaddrinfo = getaddrinfo
# source-okta adds `since` to the requests that follow a `next` link (which
# already carries `after`); the stand-in, like Okta's validation, refuses
# both together (400 E0000001), which the connector ignores and stops. Drop
# `since` where `after` is present, so it reads the whole log.
import requests
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
_send = requests.Session.send
def send(self, request, **kwargs):
    parts = urlsplit(request.url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(k == "after" for k, _ in query):
        query = [(k, v) for k, v in query if k != "since"]
        request.url = urlunsplit(parts._replace(query=urlencode(query)))
    return _send(self, request, **kwargs)
requests.Session.send = send
sys.argv = ["source-okta", "read", "--config", sys.argv[3], "--catalog", sys.argv[4]]
def report():
    cpu = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        r = resource.getrusage(who)
        cpu += r.ru_utime + r.ru_stime
    sys.stderr.write("WARD-BENCH-CPU " + json.dumps({"cpu_s": cpu}) + "\n")
    sys.stderr.flush()
try:
    from source_okta.run import run
    run()
finally:
    report()
"#;

async fn airbyte_read(python: &Path, org: &Org, dir: &Path) -> anyhow::Result<Run> {
    let since = time::OffsetDateTime::now_utc() - time::Duration::days(31);
    let since = since
        .replace_nanosecond(0)?
        .format(&time::format_description::well_known::Rfc3339)?;
    let host = org.host();
    let domain = host.split('.').next().unwrap_or_default();
    let config = dir.join("airbyte-config.json");
    std::fs::write(
        &config,
        serde_json::to_vec(&serde_json::json!({
            "domain": domain,
            "start_date": since,
            "credentials": {"auth_type": "api_token", "api_token": org.token},
        }))?,
    )?;
    let catalog = dir.join("airbyte-catalog.json");
    std::fs::write(
        &catalog,
        serde_json::to_vec(&serde_json::json!({"streams": [{
            "stream": {
                "name": "logs",
                "json_schema": {},
                "supported_sync_modes": ["full_refresh", "incremental"],
            },
            "sync_mode": "full_refresh",
            "destination_sync_mode": "overwrite",
        }]}))?,
    )?;
    let wrapper = dir.join("airbyte_bench.py");
    std::fs::write(&wrapper, AIRBYTE_WRAPPER)?;
    let standin0 = cpu_time(None)?;
    let wall0 = Instant::now();
    let mut child = Command::new(python)
        .arg(&wrapper)
        .arg(&host)
        .arg(org.okta.addr().port().to_string())
        .arg(&config)
        .arg(&catalog)
        .env("REQUESTS_CA_BUNDLE", &org.ca_file)
        .env("SSL_CERT_FILE", &org.ca_file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", python.display()))?;
    let stdout = child.stdout.take().context("airbyte stdout")?;
    let stderr = child.stderr.take().context("airbyte stderr")?;
    // Count records while they stream (reading is cheap next to Airbyte).
    let counter = tokio::task::spawn_blocking(move || {
        let (mut records, mut last_error) = (0u64, String::new());
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("{\"type\":\"RECORD\"") {
                records += 1;
            } else if line.contains("\"level\":\"ERROR\"") || line.contains("\"failure_type\"") {
                last_error = line.chars().take(400).collect();
            }
        }
        (records, last_error)
    });
    let cpu_reader = tokio::task::spawn_blocking(move || {
        let mut cpu = None;
        let mut tail = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(json) = line.strip_prefix("WARD-BENCH-CPU ") {
                cpu = serde_json::from_str::<serde_json::Value>(json)
                    .ok()
                    .and_then(|v| v["cpu_s"].as_f64());
            } else {
                tail = line.chars().take(400).collect();
            }
        }
        (cpu, tail)
    });
    let status = tokio::task::spawn_blocking(move || child.wait()).await??;
    let wall = wall0.elapsed();
    let standin_cpu = cpu_time(None)? - standin0;
    let (records, last_error) = counter.await?;
    let (cpu, tail) = cpu_reader.await?;
    if !status.success() || records == 0 {
        anyhow::bail!(
            "airbyte-source-okta exited {status} after {records} records: {last_error} {tail}"
        );
    }
    let cpu = cpu.context("the Airbyte wrapper reported no CPU time")?;
    Ok(Run {
        events: records,
        wall,
        cpu: Duration::from_secs_f64(cpu),
        standin_cpu,
    })
}
