//! One worker per instance: backfill on first connect, then poll at the
//! plugin's interval, reading users now and then; pacing every call through
//! the tenant's shared rate budget; keeping the instance's status honest.
//!
//! A worker stops for good (the instance is *halted*) only when the operator
//! must act: credentials rejected, role or plan missing, configuration
//! refused, a plugin that broke the contract or a sandbox limit. Transient
//! trouble (rate limits, 5xx, timeouts) is retried with backoff and, past
//! the retry budget, shown as an error while the worker keeps polling, so
//! the instance recovers by itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use ward_runtime::CallError;
use ward_runtime::types::PluginError;
use ward_store::{AUDIT_STREAM, Fence, InstanceStatus, Store, StoreError};

use crate::budget::{Budgets, Rates};
use crate::config::Config;
use crate::connect::{self, ConnectError};
use crate::ingest::{IngestError, Ingestor, Pace, Retry, WaitReason};
use crate::metrics::Metrics;
use crate::refresh::{RefreshError, Refresher};
use crate::registry::Registry;

const DAY_MS: i64 = 86_400_000;

/// What an instance's worker is doing.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Reading the backfill window.
    Backfill,
    /// Caught up; waiting for the next poll.
    Idle,
    /// Reading new events.
    Polling,
    /// Reading the user directory.
    Users,
    /// Waiting out a rate limit or a backoff.
    Waiting,
    /// Not running (disabled, halted, or not started).
    Stopped,
}

/// A worker's live progress, for status and lag.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerProgress {
    /// Current phase.
    pub phase: Phase,
    /// Newest event time stored (ms since epoch).
    pub newest_event_ms: Option<i64>,
    /// When the worker last read up to the provider's present.
    pub caught_up_ms: Option<i64>,
    /// When the next call is due (while idle or waiting).
    pub next_run_ms: Option<i64>,
    /// Start of the backfill window, while backfilling.
    pub backfill_since_ms: Option<i64>,
    /// Pages committed since the worker started.
    pub pages: u64,
    /// Events newly stored since the worker started.
    pub new_events: u64,
    /// Why the worker waits, while waiting.
    pub waiting_for: Option<String>,
}

impl WorkerProgress {
    fn new() -> WorkerProgress {
        WorkerProgress {
            phase: Phase::Idle,
            newest_event_ms: None,
            caught_up_ms: None,
            next_run_ms: None,
            backfill_since_ms: None,
            pages: 0,
            new_events: 0,
            waiting_for: None,
        }
    }
}

struct Inner {
    store: Store,
    registry: Arc<Registry>,
    config: Arc<Config>,
    metrics: Arc<Metrics>,
    refresher: Arc<Refresher>,
    budgets: Budgets,
    /// Instance id → (worker generation, its stop token).
    workers: Mutex<HashMap<String, (u64, CancellationToken)>>,
    generation: std::sync::atomic::AtomicU64,
    progress: Mutex<HashMap<String, WorkerProgress>>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    rounds: tokio::sync::Semaphore,
    /// Each plugin's share of `rounds`, by plugin key.
    plugin_rounds: Mutex<HashMap<String, Arc<tokio::sync::Semaphore>>>,
    /// Size of each plugin's share.
    per_plugin: usize,
    /// Instances whose last run ended in a rejected access token that was
    /// then force-refreshed: a second rejection in a row halts them.
    force_refreshed: Mutex<std::collections::HashSet<String>>,
    /// This daemon's id in the lease table (name + random per process).
    owner: String,
    /// Leases held: instance id → the fence its page commits present.
    leases: Mutex<HashMap<String, Fence>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The maps hold plain values updated in single statements.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Handle to the instance workers. Cheap to clone.
#[derive(Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("workers", &lock(&self.inner.workers).len())
            .finish()
    }
}

fn now_ms() -> i64 {
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    i64::try_from(nanos / 1_000_000).unwrap_or(i64::MAX)
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// What a round tells the worker loop.
enum Next {
    /// Run again after this long.
    After(Duration),
    /// Stop (halted, disabled, deleted, shut down).
    Stop,
}

impl Scheduler {
    /// A scheduler with no workers yet; call [`Scheduler::resume_all`] to
    /// start the instances a previous run left running.
    pub fn new(
        store: Store,
        registry: Arc<Registry>,
        config: Arc<Config>,
        metrics: Arc<Metrics>,
        refresher: Arc<Refresher>,
    ) -> Scheduler {
        let rounds = config.scheduler.max_concurrent_calls.max(1);
        let per_plugin = plugin_share(rounds, config.scheduler.max_calls_per_plugin);
        let owner = daemon_id(config_name(&config));
        let budgets = Budgets::for_store(&store);
        Scheduler {
            inner: Arc::new(Inner {
                store,
                registry,
                config,
                metrics,
                refresher,
                budgets,
                workers: Mutex::new(HashMap::new()),
                generation: std::sync::atomic::AtomicU64::new(0),
                progress: Mutex::new(HashMap::new()),
                shutdown: CancellationToken::new(),
                tasks: TaskTracker::new(),
                rounds: tokio::sync::Semaphore::new(rounds),
                plugin_rounds: Mutex::new(HashMap::new()),
                per_plugin,
                force_refreshed: Mutex::new(std::collections::HashSet::new()),
                owner,
                leases: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// This daemon's id in leases (`worker` in instance views).
    pub fn daemon_id(&self) -> &str {
        &self.inner.owner
    }

    /// Claims the leases of instances that are neither disabled nor halted
    /// (up to `scheduler.max_leases`), starts their workers, and starts the
    /// heartbeat that renews them, claims what other daemons let lapse and
    /// stops workers whose lease was taken over.
    pub async fn resume_all(&self) -> Result<usize, ward_store::StoreError> {
        let claimed = claim_more(&self.inner).await?;
        for id in &claimed {
            self.spawn(id);
        }
        let this = self.clone();
        self.inner
            .tasks
            .spawn(async move { this.heartbeat().await });
        Ok(claimed.len())
    }

    async fn heartbeat(&self) {
        let inner = &self.inner;
        let every = lease_ttl(&inner.config) / 3;
        let mut wait = every;
        loop {
            tokio::select! {
                _ = inner.shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            let lost = match renew(inner).await {
                Ok(lost) => lost,
                Err(e) => {
                    // The fence keeps a lapsed lease from committing; keep
                    // trying until the store answers again.
                    tracing::warn!(daemon = %inner.owner, error = %e, "could not renew leases; retrying");
                    continue;
                }
            };
            for id in &lost {
                tracing::warn!(daemon = %inner.owner, instance = %id, "lease taken over by another daemon; stopping the worker here");
                self.stop(id);
            }
            let claimed = match claim_more(inner).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(daemon = %inner.owner, error = %e, "could not claim leases; retrying");
                    Vec::new()
                }
            };
            for id in &claimed {
                tracing::info!(daemon = %inner.owner, instance = %id, "lease claimed; starting the worker");
                self.spawn(id);
            }
            let held = lock(&inner.leases).len();
            inner.metrics.leases(held, claimed.len(), lost.len());
            wait = next_wake(inner, held, every).await;
        }
    }

    /// (Re)starts the worker of an instance: backfill when it has no audit
    /// cursor yet, then polling. Clears a halt (the operator acted).
    /// Returns at once.
    pub fn start(&self, instance_id: &str) {
        let inner = self.inner.clone();
        let id = instance_id.to_string();
        // Clearing the halt must land before the worker reads it, so the
        // worker's first step does it.
        self.spawn_with(
            &id,
            move |id| async move {
                // New credentials or an operator's verdict: a rejection after
                // this deserves its own refresh attempt.
                lock(&inner.force_refreshed).remove(&id);
                if let Err(e) = inner.store.set_halted(&id, false).await {
                    tracing::warn!(instance = %id, error = %e, "could not clear the halted flag");
                }
            },
            Duration::ZERO,
        );
    }

    /// Starts (or keeps) the worker a connection test calls for, and says
    /// whether one runs: a `connected` instance runs; a `connecting` one
    /// (the test was deferred by a rate limit or an unreachable provider)
    /// runs after the provider's wait and tests again before ingesting; a
    /// test without a verdict keeps a running worker; anything else runs
    /// nothing.
    pub fn start_after_test(&self, connected: &connect::Connected) -> bool {
        let id = connected.instance.id.as_str();
        match connected.instance.status {
            InstanceStatus::Connected => {
                if !self.is_running(id) {
                    self.start(id);
                }
                true
            }
            InstanceStatus::Connecting => {
                let wait = match &connected.report {
                    Err(e) => connect::deferred_wait(e),
                    Ok(_) => Duration::ZERO,
                };
                if !self.is_running(id) {
                    self.start_in(id, wait);
                }
                true
            }
            // No verdict (rate-limited, unreachable): a running worker
            // carries on.
            _ if matches!(&connected.report, Err(e) if connect::deferrable(e)) => {
                self.is_running(id)
            }
            _ => false,
        }
    }

    /// [`Scheduler::start`] whose first call waits `delay` (the provider
    /// said when to come back).
    fn start_in(&self, instance_id: &str, delay: Duration) {
        let inner = self.inner.clone();
        self.spawn_with(
            instance_id,
            move |id| async move {
                lock(&inner.force_refreshed).remove(&id);
                if let Err(e) = inner.store.set_halted(&id, false).await {
                    tracing::warn!(instance = %id, error = %e, "could not clear the halted flag");
                }
                if !delay.is_zero() {
                    update(&inner, &id, |p| {
                        p.phase = Phase::Waiting;
                        p.next_run_ms = Some(now_ms().saturating_add(ms(delay)));
                        p.waiting_for = Some("rate limit".to_string());
                    });
                }
            },
            delay,
        );
    }

    fn spawn(&self, instance_id: &str) {
        self.spawn_with(instance_id, |_| async {}, Duration::ZERO);
    }

    fn spawn_with<F, Fut>(&self, instance_id: &str, first: F, delay: Duration)
    where
        F: FnOnce(String) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        if self.inner.shutdown.is_cancelled() {
            return;
        }
        let cancel = self.inner.shutdown.child_token();
        let generation = self
            .inner
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Some((_, old)) =
            lock(&self.inner.workers).insert(instance_id.to_string(), (generation, cancel.clone()))
        {
            old.cancel();
        }
        let inner = self.inner.clone();
        let id = instance_id.to_string();
        self.inner.tasks.spawn(async move {
            // The operator started it (or a heartbeat claimed it): work it
            // only under a lease, which another daemon may hold.
            if !hold_lease(&inner, &id).await {
                let mut workers = lock(&inner.workers);
                if workers.get(&id).is_some_and(|(g, _)| *g == generation) {
                    workers.remove(&id);
                }
                return;
            }
            first(id.clone()).await;
            let waited = delay.is_zero()
                || tokio::select! {
                    _ = cancel.cancelled() => false,
                    _ = tokio::time::sleep(delay) => true,
                };
            if waited {
                run(&inner, &id, &cancel).await;
            }
            let mut workers = lock(&inner.workers);
            // A newer worker may have replaced this one meanwhile: leave it.
            if workers.get(&id).is_some_and(|(g, _)| *g == generation) {
                workers.remove(&id);
                drop(workers);
                if let Some(p) = lock(&inner.progress).get_mut(&id) {
                    p.phase = Phase::Stopped;
                    p.next_run_ms = None;
                }
            }
        });
    }

    /// Stops the worker of an instance (disable, delete). A page already
    /// fetched is committed; nothing is half-written.
    pub fn stop(&self, instance_id: &str) {
        if let Some((_, cancel)) = lock(&self.inner.workers).remove(instance_id) {
            cancel.cancel();
        }
    }

    /// Applies an instance's rate setting to the budget its sync draws from,
    /// at once (calls waiting for a token are woken): the operator's
    /// `requestsPerMinute`, or with `None` the manifest ∩ policy rate.
    pub fn apply_rate(&self, instance_id: &str, plugin_key: &str, per_minute: Option<u32>) {
        let Some(loaded) = self.inner.registry.get(plugin_key) else {
            return;
        };
        let rates = Rates::for_plugin(loaded.plugin.manifest(), &loaded.effective, per_minute);
        if self.inner.budgets.set_instance_rates(instance_id, &rates) {
            tracing::info!(instance = %instance_id, requests_per_minute = rates.fixed, "rate applied to the running sync");
        }
    }

    /// Whether a worker runs for the instance.
    pub fn is_running(&self, instance_id: &str) -> bool {
        lock(&self.inner.workers).contains_key(instance_id)
    }

    /// Live progress of an instance's worker, if one ran since start-up.
    pub fn progress(&self, instance_id: &str) -> Option<WorkerProgress> {
        lock(&self.inner.progress).get(instance_id).cloned()
    }

    /// Stops every worker, waits up to `grace` for in-flight pages to
    /// commit or roll back, then releases this daemon's leases so other
    /// daemons take its instances over at once.
    pub async fn shutdown(&self, grace: Duration) -> bool {
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        let done = tokio::time::timeout(grace, self.inner.tasks.wait())
            .await
            .is_ok();
        if done {
            match self.inner.store.release_leases(&self.inner.owner).await {
                Ok(n) => {
                    tracing::info!(daemon = %self.inner.owner, released = n, "leases released")
                }
                Err(e) => {
                    tracing::warn!(daemon = %self.inner.owner, error = %e, "could not release leases; other daemons take them over when they expire")
                }
            }
            lock(&self.inner.leases).clear();
        }
        done
    }
}

fn config_name(config: &Config) -> String {
    config
        .scheduler
        .daemon_name
        .clone()
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "ward".to_owned())
}

/// `name-xxxxxxxx`: unique per process run, so a restarted daemon never
/// mistakes its predecessor's leases for its own.
fn daemon_id(name: String) -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 4];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let suffix: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{name}-{suffix}")
}

fn lease_ttl(config: &Config) -> Duration {
    Duration::from_secs(config.scheduler.lease_ttl_secs.max(1))
}

fn lease_ttl_ms(config: &Config) -> i64 {
    ms(lease_ttl(config))
}

/// Makes sure this daemon holds the instance's lease, claiming it when
/// free or lapsed. `false` when another daemon works it.
async fn hold_lease(inner: &Inner, id: &str) -> bool {
    if lock(&inner.leases).contains_key(id) {
        return true;
    }
    match inner
        .store
        .claim_lease(&inner.owner, id, lease_ttl_ms(&inner.config))
        .await
    {
        Ok(Some(lease)) => {
            lock(&inner.leases).insert(id.to_owned(), lease.fence());
            true
        }
        Ok(None) => {
            tracing::info!(daemon = %inner.owner, instance = %id, "another daemon holds the instance's lease; it works the instance");
            false
        }
        Err(e) => {
            tracing::warn!(daemon = %inner.owner, instance = %id, error = %e, "could not claim the instance's lease; not starting its worker here");
            false
        }
    }
}

/// Renews this daemon's leases; returns the instances whose lease another
/// daemon took over (dropped from the held set). Leases of instances with
/// no running worker (disabled, halted, deleted) are released.
async fn renew(inner: &Inner) -> Result<Vec<String>, StoreError> {
    let renewed = inner
        .store
        .renew_leases(&inner.owner, lease_ttl_ms(&inner.config))
        .await?;
    let now: HashMap<&str, i64> = renewed
        .iter()
        .map(|l| (l.instance_id.as_str(), l.epoch))
        .collect();
    let mut lost = Vec::new();
    lock(&inner.leases).retain(|id, fence| {
        let kept = now.get(id.as_str()) == Some(&fence.epoch);
        if !kept {
            lost.push(id.clone());
        }
        kept
    });
    let idle: Vec<String> = {
        let workers = lock(&inner.workers);
        renewed
            .iter()
            .filter(|l| !workers.contains_key(&l.instance_id))
            .map(|l| l.instance_id.clone())
            .collect()
    };
    for id in idle {
        lock(&inner.leases).remove(&id);
        inner.store.release_lease(&inner.owner, &id).await?;
    }
    Ok(lost)
}

/// How long the heartbeat sleeps: `every`, or less when this daemon has
/// room and another daemon's lease lapses sooner (a dead daemon's
/// instances are then claimed right after their lease lapses, not up to
/// a heartbeat later).
async fn next_wake(inner: &Inner, held: usize, every: Duration) -> Duration {
    if held >= inner.config.scheduler.max_leases {
        return every;
    }
    match inner.store.next_foreign_lapse_ms(&inner.owner).await {
        Ok(Some(lapse)) => {
            // Just past the lapse: a claim compares with `<`.
            let until = lapse
                .saturating_sub(now_ms())
                .saturating_add(LAPSE_MARGIN_MS);
            every.min(Duration::from_millis(u64::try_from(until).unwrap_or(0)))
        }
        Ok(None) => every,
        Err(e) => {
            tracing::warn!(daemon = %inner.owner, error = %e, "could not read when the next lease lapses; claiming at the next heartbeat");
            every
        }
    }
}

/// How long after another daemon's lease lapses this one claims it.
const LAPSE_MARGIN_MS: i64 = 20;

/// Claims free or lapsed leases up to `scheduler.max_leases` held.
async fn claim_more(inner: &Inner) -> Result<Vec<String>, StoreError> {
    let held = lock(&inner.leases).len();
    let room = inner.config.scheduler.max_leases.saturating_sub(held);
    if room == 0 {
        return Ok(Vec::new());
    }
    let claimed = inner
        .store
        .claim_leases(&inner.owner, lease_ttl_ms(&inner.config), room)
        .await?;
    let mut leases = lock(&inner.leases);
    Ok(claimed
        .into_iter()
        .map(|l| {
            leases.insert(l.instance_id.clone(), l.fence());
            l.instance_id
        })
        .collect())
}

fn update(inner: &Inner, id: &str, f: impl FnOnce(&mut WorkerProgress)) {
    let mut map = lock(&inner.progress);
    f(map
        .entry(id.to_string())
        .or_insert_with(WorkerProgress::new));
}

/// How many of `total` slots one plugin may hold: `asked` when set (never
/// more than `total`), else half, at least one.
fn plugin_share(total: usize, asked: usize) -> usize {
    if asked > 0 {
        asked.min(total)
    } else {
        (total / 2).max(1)
    }
}

/// The share of the scheduler's slots of the plugin an instance runs.
async fn plugin_slots(inner: &Inner, id: &str) -> Option<Arc<tokio::sync::Semaphore>> {
    let key = inner.store.instance(id).await.ok().flatten()?.plugin_key;
    Some(
        lock(&inner.plugin_rounds)
            .entry(key)
            .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(inner.per_plugin)))
            .clone(),
    )
}

async fn run(inner: &Arc<Inner>, id: &str, cancel: &CancellationToken) {
    let newest = inner.store.newest_event_ms(id).await.ok().flatten();
    // Fairness: a round first takes one of its plugin's slots, then one of
    // the daemon's, so instances of one plugin that stall (up to their wall
    // limit, round after round) hold at most the plugin's share and the
    // other plugins' instances still get the rest.
    let share = plugin_slots(inner, id).await;
    update(inner, id, |p| {
        *p = WorkerProgress::new();
        p.newest_event_ms = newest;
    });
    loop {
        if cancel.is_cancelled() {
            return;
        }
        let next = {
            let plugin_permit = match &share {
                Some(share) => tokio::select! {
                    _ = cancel.cancelled() => return,
                    p = share.acquire() => Some(p),
                },
                None => None,
            };
            let permit = tokio::select! {
                _ = cancel.cancelled() => return,
                p = inner.rounds.acquire() => p,
            };
            let next = round(inner, id, cancel).await;
            drop(permit);
            drop(plugin_permit);
            next
        };
        match next {
            Next::Stop => return,
            Next::After(wait) => {
                update(inner, id, |p| {
                    if p.phase != Phase::Waiting {
                        p.phase = Phase::Idle;
                    }
                    p.next_run_ms = Some(now_ms().saturating_add(ms(wait)));
                });
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}

/// Sets the status, logging (not failing) when the store refuses.
async fn set_status(inner: &Inner, id: &str, status: InstanceStatus, message: Option<&str>) {
    if let Err(e) = inner.store.set_status(id, status, message).await {
        tracing::warn!(instance = %id, error = %e, "could not update the instance status");
    }
}

/// Puts the instance in Error with `message` and stops it until the
/// operator acts.
async fn halt(inner: &Inner, id: &str, message: &str) -> Next {
    tracing::warn!(instance = %id, %message, "instance stopped: operator action needed");
    set_status(inner, id, InstanceStatus::Error, Some(message)).await;
    if let Err(e) = inner.store.set_halted(id, true).await {
        tracing::warn!(instance = %id, error = %e, "could not record the halt");
    }
    Next::Stop
}

/// The operator-facing message for a sync that failed.
pub fn describe(error: &IngestError, plugin: &str) -> String {
    match error {
        IngestError::Call {
            source: CallError::Plugin(PluginError::Unauthorized(m)),
            ..
        } => format!("credentials rejected: reconnect ({plugin}: {m})"),
        IngestError::Call {
            source: CallError::Plugin(PluginError::Forbidden(m)),
            ..
        } => format!("permission missing at the provider ({plugin}: {m})"),
        IngestError::Call {
            source: CallError::Plugin(PluginError::InvalidConfig(m)),
            ..
        } => format!("configuration rejected: fix it with PATCH /instances/{{id}} ({plugin}: {m})"),
        IngestError::Call { source, .. } => format!(
            "plugin {plugin} failed: {source}; the instance is stopped until the plugin is fixed or upgraded, then re-enable it"
        ),
        IngestError::GaveUp { attempts, last, .. } => format!(
            "provider unavailable after {attempts} attempts ({last}); retrying at the next poll"
        ),
        IngestError::Cancelled { .. } => "stopped".to_string(),
        IngestError::Store { source, .. } => format!("store error: {source}; retrying"),
        IngestError::CommitTask { message, .. } => {
            format!("a page's commit stopped before it finished ({message}); retrying")
        }
    }
}

async fn round(inner: &Arc<Inner>, id: &str, cancel: &CancellationToken) -> Next {
    let store = &inner.store;
    let retry_later = Duration::from_secs(30);
    let instance = match store.instance(id).await {
        Ok(Some(i)) => i,
        Ok(None) => return Next::Stop,
        Err(e) => {
            tracing::warn!(instance = %id, error = %e, "cannot read the instance; retrying");
            return Next::After(retry_later);
        }
    };
    if instance.status == InstanceStatus::Disabled {
        return Next::Stop;
    }
    let key = instance.plugin_key.clone();
    let Some(loaded) = inner.registry.get(&key) else {
        return halt(
            inner,
            id,
            &format!(
                "plugin `{key}` is not loaded (not installed, unsigned, or an upgrade is held for approval: see GET /elements); install or approve it, then re-enable the instance"
            ),
        )
        .await;
    };
    match inner
        .refresher
        .ensure_fresh(store, &loaded.plugin, &instance)
        .await
    {
        Ok(_) => {}
        Err(e @ RefreshError::Rejected { .. }) => return halt(inner, id, &e.to_string()).await,
        Err(e @ RefreshError::Config(_)) => return halt(inner, id, &e.to_string()).await,
        Err(e) => {
            tracing::warn!(instance = %id, error = %e, "token refresh failed; retrying");
            set_status(inner, id, InstanceStatus::Error, Some(&e.to_string())).await;
            return Next::After(retry_later);
        }
    }
    // Re-read: a refresh replaced the stored credentials.
    let bound = match connect::bind(store, &loaded.plugin, &instance).await {
        Ok(b) => b,
        Err(ConnectError::NoCredentials(_)) => {
            return halt(
                inner,
                id,
                "no stored credentials: reconnect with PUT /instances/{id}/credentials",
            )
            .await;
        }
        Err(e) => return halt(inner, id, &e.to_string()).await,
    };
    let tenant = bound
        .grants()
        .first()
        .map(|g| g.host.clone())
        .unwrap_or_else(|| id.to_string());
    // The operator's per-instance setting wins (a tenant whose plan allows
    // more, e.g. Zendesk's raised limits); otherwise manifest ∩ policy.
    let operator = match store.instance_settings(id).await {
        Ok(Some(settings)) if settings.disabled => return Next::Stop,
        Ok(Some(settings)) => settings.requests_per_minute,
        _ => None,
    };
    let rates = Rates::for_plugin(loaded.plugin.manifest(), &loaded.effective, operator);
    let budget = inner.budgets.for_instance(id, &key, &tenant, &rates);
    let tenant_budget = budget.clone();
    let hook_inner = inner.clone();
    let hook_id = id.to_string();
    let metrics = inner.metrics.clone();
    let metrics_key = key.clone();
    let pace = Pace {
        on_call: Some(Arc::new(move |call, outcome, egress| {
            metrics.call_finished(&metrics_key, call, outcome);
            for e in egress {
                metrics.egress(&metrics_key, e.allowed);
            }
        })),
        budget: Some(budget),
        cancel: Some(cancel.clone()),
        on_wait: Some(Arc::new(move |reason, delay| {
            update(&hook_inner, &hook_id, |p| {
                p.phase = Phase::Waiting;
                p.next_run_ms = Some(now_ms().saturating_add(ms(delay)));
                p.waiting_for = Some(match reason {
                    WaitReason::RateLimited => "rate limit".to_string(),
                    WaitReason::Backoff => "backoff after a transient error".to_string(),
                });
            });
        })),
    };
    let sched = &inner.config.scheduler;
    let ingestor = Ingestor {
        store: store.clone(),
        bound,
        fence: lock(&inner.leases).get(id).cloned(),
        instance_id: id.to_string(),
        retry: Retry {
            attempts: sched.retry_attempts.max(1),
            base: Duration::from_millis(sched.backoff_base_ms.max(1)),
            max: Duration::from_millis(sched.backoff_max_ms.max(sched.backoff_base_ms)),
            max_rate_wait: Duration::from_secs(sched.max_rate_wait_secs),
        },
    };
    // The manifest's schedule within the daemon's ceilings; the operator's
    // `scheduler.poll_interval_secs` overrides the interval.
    let schedule = loaded.effective.schedule.effective;
    let poll = if sched.poll_interval_secs > 0 {
        Duration::from_secs(sched.poll_interval_secs)
    } else {
        Duration::from_secs(u64::from(schedule.poll_interval_secs.max(1)))
    };

    if instance.status == InstanceStatus::Connecting
        && let Some(next) =
            connection_test(inner, id, &key, &ingestor, &pace, &tenant_budget, poll).await
    {
        return next;
    }

    let backfilling = matches!(store.cursor(id, AUDIT_STREAM).await, Ok(None));
    let since = now_ms().saturating_sub(i64::from(schedule.backfill_days).saturating_mul(DAY_MS));
    update(inner, id, |p| {
        p.phase = if backfilling {
            Phase::Backfill
        } else {
            Phase::Polling
        };
        p.backfill_since_ms = backfilling.then_some(since);
        p.next_run_ms = None;
        p.waiting_for = None;
    });
    let progress_inner = inner.clone();
    let mut counted = 0;
    let mut run_pages = 0u64;
    let result = ingestor
        .sync_audit_with(since, &pace, |prog| {
            update(&progress_inner, id, |p| {
                if p.phase == Phase::Waiting {
                    p.phase = if backfilling {
                        Phase::Backfill
                    } else {
                        Phase::Polling
                    };
                    p.waiting_for = None;
                }
                p.pages += 1;
                run_pages += 1;
                let new = prog.stats.new.saturating_sub(counted);
                progress_inner.metrics.page_committed(id, &key, new);
                p.new_events += new;
                counted = prog.stats.new;
                if let Some(n) = prog.newest_ms {
                    p.newest_event_ms = Some(p.newest_event_ms.map_or(n, |o| o.max(n)));
                }
            });
        })
        .await;
    let result = match result {
        Ok(_) => {
            if counted > 0 || backfilling {
                tracing::info!(instance = %id, plugin = %key, pages = run_pages, new_events = counted, backfill = backfilling, "audit sync finished");
            } else {
                tracing::debug!(instance = %id, plugin = %key, pages = run_pages, "audit sync finished: nothing new");
            }
            update(inner, id, |p| {
                p.caught_up_ms = Some(now_ms());
                p.backfill_since_ms = None;
            });
            sync_users_if_due(inner, id, &ingestor, &pace).await
        }
        Err(e) => Err(e),
    };
    if result.is_ok() {
        lock(&inner.force_refreshed).remove(id);
    }
    match result {
        Ok(()) => {
            let now = now_ms();
            if let Err(e) = store.record_success(id, now).await {
                tracing::warn!(instance = %id, error = %e, "could not record success");
            }
            // Re-read: the operator may have disabled it meanwhile.
            if let Ok(Some(current)) = store.instance(id).await
                && current.status != InstanceStatus::Disabled
                && (current.status != InstanceStatus::Connected || current.status_message.is_some())
            {
                set_status(inner, id, InstanceStatus::Connected, None).await;
            }
            Next::After(poll)
        }
        Err(IngestError::Cancelled { .. }) => Next::Stop,
        Err(
            e @ IngestError::Call {
                source: CallError::Plugin(PluginError::Unauthorized(_)),
                ..
            },
        ) if lock(&inner.force_refreshed).insert(id.to_string()) => {
            // An OAuth access token can die before its stored expiry (a
            // backfill that outlives its hour, an early revocation): one
            // forced refresh and a new run, before calling it an operator's
            // problem. Pages already committed stay; the run resumes from
            // the cursor.
            match inner
                .refresher
                .force_refresh(store, &loaded.plugin, &instance)
                .await
            {
                Ok(true) => {
                    tracing::info!(instance = %id, "access token rejected before its expiry; refreshed it");
                    Next::After(Duration::ZERO)
                }
                Ok(false) => halt(inner, id, &describe(&e, &key)).await,
                Err(r) => halt(inner, id, &format!("{}; {r}", describe(&e, &key))).await,
            }
        }
        Err(e) if e.needs_operator() => halt(inner, id, &describe(&e, &key)).await,
        Err(e @ IngestError::GaveUp { .. }) => {
            let message = describe(&e, &key);
            tracing::warn!(instance = %id, %message, "transient failures past the retry budget");
            set_status(inner, id, InstanceStatus::Error, Some(&message)).await;
            Next::After(poll)
        }
        Err(
            e @ IngestError::Store {
                source: StoreError::Fenced { .. },
                ..
            },
        ) => {
            // Another daemon claimed the instance while this one stalled:
            // nothing was stored; the new holder carries on.
            tracing::warn!(daemon = %inner.owner, instance = %id, error = %e, "page refused by fencing; stopping the worker here");
            inner.metrics.fenced_commit();
            lock(&inner.leases).remove(id);
            Next::Stop
        }
        Err(e @ (IngestError::Store { .. } | IngestError::CommitTask { .. })) => {
            tracing::error!(instance = %id, error = %e, "store error during sync");
            Next::After(retry_later)
        }
        Err(IngestError::Call {
            source: CallError::Plugin(PluginError::RateLimited(r)),
            ..
        }) => {
            // A quota that resets in an hour or at midnight is not a fault:
            // the whole tenant sits it out and the instance carries on then.
            let wait = Duration::from_millis(r.retry_after_ms).max(Duration::from_secs(1));
            tenant_budget.block_for(wait).await;
            let until = now_ms().saturating_add(ms(wait));
            let message = format!(
                "{key}: the provider's rate limit is used up{}; waiting {} until {} before the next call (nothing is lost)",
                if r.message.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", r.message)
                },
                human_duration(wait),
                rfc3339(until)
            );
            tracing::info!(instance = %id, %message, "long provider rate-limit wait");
            set_status(inner, id, InstanceStatus::Connected, Some(&message)).await;
            update(inner, id, |p| {
                p.phase = Phase::Waiting;
                p.next_run_ms = Some(until);
                p.waiting_for = Some("rate limit".to_string());
            });
            Next::After(wait)
        }
        Err(e @ IngestError::Call { .. }) => halt(inner, id, &describe(&e, &key)).await,
    }
}

/// Runs the connection test of an instance that has not passed one yet
/// (its test at creation was deferred by a rate limit or an unreachable
/// provider), paced and retried like any call. `None` when it passed and
/// ingestion may start; otherwise what the worker does next: wait and test
/// again (rate limit, provider still unreachable: the instance stays
/// `connecting`), or stop (a check failed or the call was refused: halted
/// with the verdict, as Test now does).
async fn connection_test(
    inner: &Inner,
    id: &str,
    key: &str,
    ingestor: &Ingestor,
    pace: &Pace,
    tenant_budget: &crate::budget::RateBudget,
    poll: Duration,
) -> Option<Next> {
    let deferred = |error: &CallError, wait: Duration| {
        connect::deferred_test_message(key, error, Some(rfc3339_in(wait).as_str()))
    };
    match ingestor.test_with(pace).await {
        Ok(report) => match connect::apply_verdict(&inner.store, id, &report).await {
            Ok(None) => {
                tracing::info!(instance = %id, "connection test passed; ingestion starts");
                None
            }
            Ok(Some(failed)) => Some(halt(inner, id, &failed).await),
            Err(e) => {
                tracing::warn!(instance = %id, error = %e, "could not record the test verdict; retrying");
                Some(Next::After(Duration::from_secs(30)))
            }
        },
        Err(IngestError::Cancelled { .. }) => Some(Next::Stop),
        Err(IngestError::GaveUp { last, .. }) => {
            let message = deferred(&last, poll);
            tracing::warn!(instance = %id, %message, "connection test deferred");
            set_status(inner, id, InstanceStatus::Connecting, Some(&message)).await;
            Some(Next::After(poll))
        }
        Err(IngestError::Call {
            source: source @ CallError::Plugin(PluginError::RateLimited(_)),
            ..
        }) => {
            let wait = connect::deferred_wait(&source).max(Duration::from_secs(1));
            tenant_budget.block_for(wait).await;
            let message = deferred(&source, wait);
            tracing::info!(instance = %id, %message, "connection test deferred");
            set_status(inner, id, InstanceStatus::Connecting, Some(&message)).await;
            update(inner, id, |p| {
                p.phase = Phase::Waiting;
                p.next_run_ms = Some(now_ms().saturating_add(ms(wait)));
                p.waiting_for = Some("rate limit".to_string());
            });
            Some(Next::After(wait))
        }
        Err(IngestError::Call {
            source: CallError::Plugin(PluginError::Unauthorized(m)),
            ..
        }) => Some(halt(inner, id, &connect::credentials_rejected_message(id, &m)).await),
        Err(e @ IngestError::Store { .. }) => {
            tracing::error!(instance = %id, error = %e, "store error during the connection test");
            Some(Next::After(Duration::from_secs(30)))
        }
        Err(e) => Some(halt(inner, id, &describe(&e, key)).await),
    }
}

/// `1 h 5 min`, `12 min`, `40 s`.
fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    match (secs / 3600, (secs % 3600) / 60) {
        (0, 0) => format!("{secs} s"),
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}

/// RFC 3339 time `d` from now.
pub(crate) fn rfc3339_in(d: Duration) -> String {
    rfc3339(now_ms().saturating_add(ms(d)))
}

fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

async fn sync_users_if_due(
    inner: &Inner,
    id: &str,
    ingestor: &Ingestor,
    pace: &Pace,
) -> Result<(), IngestError> {
    let every = i64::try_from(inner.config.scheduler.users_interval_secs)
        .unwrap_or(i64::MAX / 1000)
        .saturating_mul(1000);
    let last = inner.store.users_synced_ms(id).await.ok().flatten();
    if last.is_some_and(|t| now_ms().saturating_sub(t) < every) {
        return Ok(());
    }
    update(inner, id, |p| p.phase = Phase::Users);
    ingestor.sync_users_with(pace).await?;
    if let Err(e) = inner.store.set_users_synced(id, now_ms()).await {
        tracing::warn!(instance = %id, error = %e, "could not record the user sync");
    }
    Ok(())
}
