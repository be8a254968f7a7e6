//! The conformance harness: [`run`] serves each scenario's recorded
//! exchanges as the plugin's grant hosts (a replay stand-in on loopback,
//! reached through the runtime's DNS overrides and trusted through a
//! run-time CA) and calls the plugin through the real broker, so grants,
//! secret substitution, response scrubbing and limits apply exactly as in
//! the daemon. Credentials are bound directly from the spec's secrets.
//!
//! Checks, each named in the report:
//! - `test-checks`: `test` returns named, unique checks, all passing;
//! - `backfill-terminates`: pages end with `more = false` within
//!   [`MAX_PAGES`] and a page asking for more moves its cursor;
//! - `backfill-respects-since`: no event before `since`;
//! - `event-ids`: ids non-empty and unique over the backfill;
//! - `raw-json`: every event's and user's `raw` is JSON;
//! - `times-sane`: event and user times within the host's bounds;
//! - `cursor-round-trip`: a call from the final cursor adds no new event;
//! - `users-listing`: user pages end, ids non-empty and unique;
//! - `recorded-exchanges`: every request has a recorded answer;
//! - `grants-only`: the broker refused no request (none outside grants);
//! - `deterministic`: a second run on the same recordings gives the same
//!   test checks, events and users (audit cursors are opaque and may carry
//!   a clock-derived restart point);
//! - `error-mapping`: a 401/403/429/5xx recording maps to
//!   unauthorized/forbidden/rate-limited/unavailable.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use ward_manifest::Manifest;
use ward_runtime::types::{AuditPage, UserPage};
use ward_runtime::{
    Bound, CallError, CallReport, EgressConfig, EgressEntry, MAX_EVENT_FUTURE_MS,
    MIN_EVENT_TIME_MS, Plugin, Runtime, RuntimeConfig, SecretSet,
};
use ward_standins::replay::ReplayStandIn;
use ward_standins::tls::TestCa;

use crate::HarnessError;
use crate::spec::{Expect, Scenario, Spec};

/// Most audit or user pages one backfill may take before the harness calls
/// it endless.
pub const MAX_PAGES: usize = 50;

/// Version of the `--json` report layout.
pub const REPORT_SCHEMA: &str = "ward.plugin.test/v1";

/// One check's verdict.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Check {
    /// The scenario it ran in.
    pub scenario: String,
    /// Check name (see the module documentation).
    pub name: String,
    /// Whether the plugin met the contract.
    pub passed: bool,
    /// On failure: what the plugin did and what the contract expects.
    pub message: String,
}

/// Everything a harness run found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Always [`REPORT_SCHEMA`].
    pub schema: &'static str,
    /// Plugin key.
    pub plugin: String,
    /// Plugin version.
    pub version: String,
    /// SHA-256 of the component.
    pub digest: String,
    /// Every check, in the order run.
    pub checks: Vec<Check>,
}

impl Report {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }

    /// The failed checks.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| !c.passed)
    }

    /// A line per check, failures with their message.
    pub fn render(&self) -> String {
        let mut out = format!("{} {} ({})\n", self.plugin, self.version, self.digest);
        for c in &self.checks {
            if c.passed {
                out.push_str(&format!("  ok    {}/{}\n", c.scenario, c.name));
            } else {
                out.push_str(&format!(
                    "  FAIL  {}/{}: {}\n",
                    c.scenario, c.name, c.message
                ));
            }
        }
        let failed = self.failures().count();
        out.push_str(&format!(
            "{} checks, {} failed\n",
            self.checks.len(),
            failed
        ));
        out
    }
}

/// Runs every scenario of the fixture folder `dir` against the component
/// `bytes`. `Err` only when the harness cannot run (unreadable fixtures, a
/// plugin that does not load or bind); contract violations are failed
/// checks in the report.
pub async fn run(bytes: &[u8], dir: &Path) -> Result<Report, HarnessError> {
    let spec = Spec::load(dir)?;
    let since = spec.since_ms().map_err(|message| HarnessError::Fixtures {
        path: dir.to_path_buf(),
        message,
    })?;
    let info = ward_runtime::introspect::introspect(bytes)
        .map_err(|e| HarnessError::Plugin(e.to_string()))?;
    let manifest = manifest_of(bytes)?;
    let hosts = grant_hosts(&manifest, &spec.config)?;
    let cache = CacheDir::new()?;
    let mut report = Report {
        schema: REPORT_SCHEMA,
        plugin: manifest.key.clone(),
        version: manifest.version.clone(),
        digest: info.digest,
        checks: Vec::new(),
    };
    for scenario in &spec.scenarios {
        let folder = dir.join(&scenario.name);
        let mut checks = Checks::new(&scenario.name);
        match scenario.expect {
            Expect::Ok => {
                let first = Replay::start(bytes, &folder, &hosts, &spec, &cache).await?;
                let output = first.ok_run(since, &mut checks).await;
                first.finish(&mut checks).await;
                let again = Replay::start(bytes, &folder, &hosts, &spec, &cache).await?;
                let repeat = again.ok_run(since, &mut Checks::new(&scenario.name)).await;
                again.replay.shutdown().await;
                checks.record("deterministic", output == repeat, || {
                    first_difference(&output, &repeat)
                });
            }
            expect => {
                let replay = Replay::start(bytes, &folder, &hosts, &spec, &cache).await?;
                replay.error_run(scenario, expect, since, &mut checks).await;
                replay.finish(&mut checks).await;
            }
        }
        report.checks.extend(checks.0);
    }
    Ok(report)
}

/// The plugin's manifest, read and validated as the loader does.
pub(crate) fn manifest_of(bytes: &[u8]) -> Result<Manifest, HarnessError> {
    let section = ward_runtime::read_manifest_section(bytes)
        .map_err(|e| HarnessError::Plugin(e.to_string()))?;
    Manifest::from_section(&section).map_err(|e| HarnessError::Plugin(e.to_string()))
}

/// Where compiled components are cached during one harness run, removed
/// afterwards.
pub(crate) struct CacheDir(pub(crate) PathBuf);

impl CacheDir {
    pub(crate) fn new() -> Result<CacheDir, HarnessError> {
        static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("ward-harness-{}-{run}", std::process::id()));
        std::fs::create_dir_all(&path)
            .map_err(|e| HarnessError::Io(format!("creating {}: {e}", path.display())))?;
        Ok(CacheDir(path))
    }
}

impl Drop for CacheDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The hosts the plugin's grants name for the spec's configuration.
pub(crate) fn grant_hosts(
    manifest: &Manifest,
    config: &BTreeMap<String, String>,
) -> Result<Vec<String>, HarnessError> {
    let bad = |e: ward_manifest::ManifestError| HarnessError::Fixtures {
        path: PathBuf::from(crate::spec::SPEC_FILE),
        message: format!("[config] does not fit the plugin's manifest: {e}"),
    };
    let config = manifest.validate_config(config).map_err(bad)?;
    let hosts: BTreeSet<String> = manifest
        .grants_for(&config)
        .map_err(bad)?
        .into_iter()
        .map(|g| g.host)
        .collect();
    Ok(hosts.into_iter().collect())
}

/// The checks of one scenario.
pub(crate) struct Checks(Vec<Check>, String);

impl Checks {
    pub(crate) fn new(scenario: &str) -> Checks {
        Checks(Vec::new(), scenario.to_string())
    }

    fn record(&mut self, name: &str, passed: bool, message: impl FnOnce() -> String) {
        self.0.push(Check {
            scenario: self.1.clone(),
            name: name.to_string(),
            passed,
            message: if passed { String::new() } else { message() },
        });
    }

    /// Records `name` as passed when `problems` is empty, else failed with
    /// them joined.
    fn all(&mut self, name: &str, problems: &[String]) {
        self.record(name, problems.is_empty(), || problems.join("; "));
    }
}

/// One plugin instance whose grant hosts resolve to a local server (a
/// replay, or the recorder's forwarding proxy) trusted through `ca`.
pub(crate) struct Session {
    bound: Bound,
    egress: std::sync::Mutex<Vec<EgressEntry>>,
    _runtime: Runtime,
    _plugin: Arc<Plugin>,
}

/// One plugin instance against one replay of a scenario.
struct Replay {
    replay: ReplayStandIn,
    session: Session,
}

/// What an ok run returned, for the determinism check.
pub(crate) type Transcript = Vec<String>;

impl Replay {
    async fn start(
        bytes: &[u8],
        folder: &Path,
        hosts: &[String],
        spec: &Spec,
        cache: &CacheDir,
    ) -> Result<Replay, HarnessError> {
        let ca = TestCa::generate().map_err(|e| HarnessError::Io(format!("{e:#}")))?;
        let replay = ReplayStandIn::start_hosts(folder, hosts, &ca)
            .await
            .map_err(|e| HarnessError::Fixtures {
                path: folder.to_path_buf(),
                message: format!("{e:#}"),
            })?;
        let session = Session::start(
            bytes,
            hosts,
            replay.addr(),
            &ca,
            &spec.config,
            &spec.secrets,
            &cache.0,
        )?;
        Ok(Replay { replay, session })
    }

    async fn ok_run(&self, since: i64, checks: &mut Checks) -> Transcript {
        self.session.ok_run(since, checks).await
    }
}

impl Session {
    /// Loads `bytes` into a runtime that sends every grant host to `addr`
    /// and trusts `ca`, and binds the configuration and secrets.
    pub(crate) fn start(
        bytes: &[u8],
        hosts: &[String],
        addr: std::net::SocketAddr,
        ca: &TestCa,
        config: &BTreeMap<String, String>,
        secrets: &BTreeMap<String, String>,
        cache: &Path,
    ) -> Result<Session, HarnessError> {
        let runtime = Runtime::new(RuntimeConfig {
            cache_dir: Some(cache.to_path_buf()),
            egress: EgressConfig {
                resolve: hosts.iter().map(|h| (h.clone(), addr)).collect(),
                extra_roots_pem: vec![ca.ca_pem().to_string()],
                ..EgressConfig::default()
            },
            ..RuntimeConfig::default()
        })
        .map_err(|e| HarnessError::Io(e.to_string()))?;
        let plugin = runtime
            .load(bytes)
            .map_err(|e| HarnessError::Plugin(e.to_string()))?;
        let bound = plugin
            .bind("harness", config, SecretSet::new(secrets.clone()), None)
            .map_err(|e| HarnessError::Plugin(e.to_string()))?;
        Ok(Session {
            bound,
            egress: std::sync::Mutex::new(Vec::new()),
            _runtime: runtime,
            _plugin: plugin,
        })
    }

    /// Every egress entry of the calls so far.
    pub(crate) fn egress(&self) -> Vec<EgressEntry> {
        self.egress
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn keep<T>(&self, report: CallReport<T>) -> Result<T, CallError> {
        self.egress
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(report.egress);
        report.result
    }

    /// Test, backfill, cursor round trip and users; returns the transcript.
    pub(crate) async fn ok_run(&self, since: i64, checks: &mut Checks) -> Transcript {
        let mut transcript = Vec::new();
        match self.keep(self.bound.test().await) {
            Ok(report) => {
                transcript.push(format!("{report:?}"));
                let mut problems = Vec::new();
                let mut names = BTreeSet::new();
                if report.checks.is_empty() {
                    problems.push("test returned no checks; the contract expects at least one named check (for example `credentials-valid`)".to_string());
                }
                for c in &report.checks {
                    let well_formed = !c.name.is_empty()
                        && c.name
                            .chars()
                            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-');
                    if !well_formed {
                        problems.push(format!(
                            "check name {:?} is not a short kebab-case name",
                            c.name
                        ));
                    }
                    if !names.insert(c.name.clone()) {
                        problems.push(format!("check `{}` is reported twice", c.name));
                    }
                    if !c.ok {
                        problems.push(format!(
                            "check `{}` failed on a recording where every prerequisite holds: {}",
                            c.name, c.message
                        ));
                    }
                }
                checks.all("test-checks", &problems);
            }
            Err(e) => checks.record("test-checks", false, || {
                format!("test failed: {e}; the contract expects a test-report with named checks")
            }),
        }

        let mut seen = BTreeSet::new();
        let mut last_cursor: Option<String> = None;
        let (mut terminated, mut ids, mut raws, mut times, mut before) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let now = now_ms();
        let mut finished = false;
        for page_no in 1..=MAX_PAGES {
            let page = match self.keep(self.bound.fetch_audit(since, last_cursor.as_deref()).await)
            {
                Ok(page) => page,
                Err(e) => {
                    terminated.push(format!("fetch-audit page {page_no} failed: {e}; the contract expects pages until `more = false`"));
                    break;
                }
            };
            transcript.push(page_line(&page));
            for e in &page.events {
                if e.id.is_empty() {
                    ids.push(format!(
                        "page {page_no} has an event with an empty id ({})",
                        e.action
                    ));
                } else if !seen.insert(e.id.clone()) {
                    ids.push(format!("event id {:?} returned twice; ids are the deduplication key and must be unique", e.id));
                }
                if let Err(err) = serde_json::from_str::<serde::de::IgnoredAny>(&e.raw) {
                    raws.push(format!("event {:?}: raw is not JSON ({err}); the contract expects the provider's original JSON", e.id));
                }
                if e.time < MIN_EVENT_TIME_MS || e.time > now + MAX_EVENT_FUTURE_MS {
                    times.push(format!(
                        "event {:?} has time {} ms, outside [1990-01-01, now + 1 day]",
                        e.id, e.time
                    ));
                }
                if e.time < since {
                    before.push(format!("event {:?} at {} ms is before since = {since} ms; a backfill starts at `since`", e.id, e.time));
                }
            }
            if page.more && last_cursor.as_deref() == Some(page.cursor.as_str()) {
                terminated.push(format!("page {page_no} asks for more with the cursor it was given ({:?}): the backfill would never end", page.cursor));
                break;
            }
            last_cursor = Some(page.cursor.clone());
            if !page.more {
                finished = true;
                break;
            }
        }
        if !finished && terminated.is_empty() {
            terminated.push(format!(
                "still `more = true` after {MAX_PAGES} pages of a finite recording"
            ));
        }
        checks.all("backfill-terminates", &terminated);
        checks.all("backfill-respects-since", &before);
        checks.all("event-ids", &ids);

        let mut round_trip = Vec::new();
        if let (true, Some(cursor)) = (finished, last_cursor.as_deref()) {
            match self.keep(self.bound.fetch_audit(since, Some(cursor)).await) {
                Ok(page) => {
                    transcript.push(page_line(&page));
                    let new: Vec<&str> = page
                        .events
                        .iter()
                        .filter(|e| !seen.contains(&e.id))
                        .map(|e| e.id.as_str())
                        .collect();
                    if !new.is_empty() {
                        round_trip.push(format!("a call from the final cursor returned new events {new:?}; the contract expects the cursor to resume after everything already returned"));
                    }
                }
                Err(e) => round_trip.push(format!("a call from the final cursor {cursor:?} failed: {e}; the host passes cursors back verbatim and expects them to resume")),
            }
        } else {
            round_trip
                .push("the backfill did not finish, so its cursor could not be resumed".into());
        }
        checks.all("cursor-round-trip", &round_trip);

        let mut users = Vec::new();
        let mut user_ids = BTreeSet::new();
        let mut cursor: Option<String> = None;
        let mut done = false;
        for page_no in 1..=MAX_PAGES {
            let page: UserPage = match self.keep(self.bound.fetch_users(cursor.as_deref()).await) {
                Ok(p) => p,
                Err(e) => {
                    users.push(format!("fetch-users page {page_no} failed: {e}"));
                    break;
                }
            };
            transcript.push(format!("{page:?}"));
            for u in &page.users {
                if u.id.is_empty() || !user_ids.insert(u.id.clone()) {
                    users.push(format!("user id {:?} is empty or repeated", u.id));
                }
                if let Err(err) = serde_json::from_str::<serde::de::IgnoredAny>(&u.raw) {
                    raws.push(format!("user {:?}: raw is not JSON ({err})", u.id));
                }
                for t in [u.created, u.last_login].into_iter().flatten() {
                    if t < MIN_EVENT_TIME_MS || t > now + MAX_EVENT_FUTURE_MS {
                        times.push(format!(
                            "user {:?} has time {t} ms, outside [1990-01-01, now + 1 day]",
                            u.id
                        ));
                    }
                }
            }
            if !page.more {
                done = true;
                break;
            }
            if page.cursor.is_none() || page.cursor == cursor {
                users.push(format!(
                    "user page {page_no} says `more` but gives no new cursor ({:?})",
                    page.cursor
                ));
                break;
            }
            cursor = page.cursor;
        }
        if !done && users.is_empty() {
            users.push(format!("still `more = true` after {MAX_PAGES} user pages"));
        }
        checks.all("users-listing", &users);
        checks.all("raw-json", &raws);
        checks.all("times-sane", &times);
        transcript
    }
}

impl Replay {
    /// One `fetch-audit` on a recorded refusal: the error case must match.
    async fn error_run(
        &self,
        scenario: &Scenario,
        expect: Expect,
        since: i64,
        checks: &mut Checks,
    ) {
        let result = self
            .session
            .keep(self.session.bound.fetch_audit(since, None).await);
        let statuses: Vec<String> = self
            .replay
            .requests()
            .iter()
            .map(|r| format!("{} {} -> {}", r.method, r.path_and_query, r.status))
            .collect();
        // The daemon's own name for a call's outcome (metrics labels).
        let case = ward_daemon::ingest::outcome_name(&result);
        let got = match &result {
            Ok(page) => format!("a page of {} events", page.events.len()),
            Err(CallError::Plugin(e)) => format!("the `{case}` error ({e:?})"),
            Err(e) => format!("no result ({e})"),
        };
        let passed = matches!(&result, Err(CallError::Plugin(_))) && case == expect.name();
        checks.record("error-mapping", passed, || {
            let asked = if statuses.is_empty() {
                "the plugin made no request".to_string()
            } else {
                statuses.join(", ")
            };
            format!(
                "fetch-audit on the recorded `{}` scenario ({asked}) returned {got}; the contract expects the `{}` error case",
                scenario.name,
                expect.name()
            )
        });
    }

    /// Grants and unmatched requests, then stops the replay.
    async fn finish(self, checks: &mut Checks) {
        let denied: Vec<String> = self
            .session
            .egress()
            .iter()
            .filter(|e| !e.allowed)
            .map(|e| {
                format!(
                    "the broker refused {} {} ({}); a plugin may only call URLs under its manifest's [[http]] grants",
                    e.method,
                    e.url,
                    e.reason.as_deref().unwrap_or("no reason given")
                )
            })
            .collect();
        checks.all("grants-only", &denied);
        let unmatched: Vec<String> = self
            .replay
            .unmatched()
            .into_iter()
            .map(|r| format!("the plugin asked `{r}`, which no recorded exchange answers (record the scenario again, or fix the request)"))
            .collect();
        checks.all("recorded-exchanges", &unmatched);
        self.replay.shutdown().await;
    }
}

/// An audit page for the determinism check: its events and `more`. The
/// cursor is opaque to the host and may carry a clock-derived restart point
/// (Egnyte's stream floor is "now - 7 days"); `cursor-round-trip` checks it.
fn page_line(page: &AuditPage) -> String {
    format!("{:?} more: {}", page.events, page.more)
}

fn first_difference(a: &Transcript, b: &Transcript) -> String {
    let at = a
        .iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let (x, y) = (
        a.get(at).map(String::as_str).unwrap_or("(nothing)"),
        b.get(at).map(String::as_str).unwrap_or("(nothing)"),
    );
    // Show where the two results part, with some context.
    let split = x
        .char_indices()
        .zip(y.chars())
        .find(|((_, cx), cy)| cx != cy)
        .map_or(x.len().min(y.len()), |((i, _), _)| i);
    let start = split.saturating_sub(80);
    let window = |t: &str| -> String {
        t.get(start..)
            .or_else(|| t.get(t.len().min(start)..))
            .unwrap_or("")
            .chars()
            .take(200)
            .collect()
    };
    format!(
        "two runs on the same recordings differ at result {} (…{}… versus …{}…); the contract expects the same input to give the same output (no clock, randomness or map order in results)",
        at + 1,
        window(x),
        window(y)
    )
}

fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
        .unwrap_or(i64::MAX)
}
