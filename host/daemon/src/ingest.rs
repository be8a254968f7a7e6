//! Pulling pages from a plugin into the store.
//!
//! Every page's events and its new cursor are committed in one transaction
//! (`Store::commit_audit_page`), and events are unique per (instance,
//! provider event id), so a crash between any two steps loses nothing and
//! duplicates nothing: the next run resumes from the last committed cursor.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use ward_runtime::types::{
    ActorKind, AuditPage, Event, Outcome, PluginError, Target, TestReport, User,
};
use ward_runtime::{Bound, CallError, CallReport, EgressEntry};
use ward_store::{EgressRecord, Fence, NewEvent, NewUser, Store, StoreError};

use crate::budget::RateBudget;

/// Cursor stream names in the store.
pub const AUDIT: &str = "audit";
/// Cursor stream for the user listing in progress.
pub const USERS: &str = "users";

/// Why a sync stopped.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The plugin failed in a way retrying will not fix (credentials,
    /// permissions, configuration, a plugin bug, a sandbox limit).
    #[error("instance {instance}: {source}")]
    Call {
        /// Instance id.
        instance: String,
        /// What the call reported.
        #[source]
        source: CallError,
    },
    /// Transient failures went on past the retry budget.
    #[error(
        "instance {instance}: provider still failing after {attempts} attempts: {last}; Ward will try again at the next poll"
    )]
    GaveUp {
        /// Instance id.
        instance: String,
        /// Attempts made.
        attempts: u32,
        /// The last error.
        last: CallError,
    },
    /// The sync was asked to stop (shutdown, instance disabled or
    /// deleted) between two pages; everything committed so far stays.
    #[error("instance {instance}: stopped")]
    Cancelled {
        /// Instance id.
        instance: String,
    },
    /// The store failed.
    #[error("instance {instance}: store error: {source}")]
    Store {
        /// Instance id.
        instance: String,
        /// Store error.
        #[source]
        source: StoreError,
    },
    /// The task committing a page stopped before it finished (it
    /// panicked); nothing of that page is stored.
    #[error(
        "instance {instance}: the commit of a page stopped before it finished ({message}); nothing of that page is stored: it is fetched again at the next poll"
    )]
    CommitTask {
        /// Instance id.
        instance: String,
        /// Why the task stopped.
        message: String,
    },
}

impl IngestError {
    /// Whether the instance needs the operator (reconnect, fix config)
    /// rather than time.
    pub fn needs_operator(&self) -> bool {
        matches!(
            self,
            IngestError::Call {
                source: CallError::Plugin(
                    PluginError::Unauthorized(_)
                        | PluginError::Forbidden(_)
                        | PluginError::InvalidConfig(_)
                ),
                ..
            }
        )
    }
}

/// Retry policy for transient failures.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts per page before giving up.
    pub attempts: u32,
    /// First backoff delay.
    pub base: Duration,
    /// Longest backoff delay.
    pub max: Duration,
    /// Longest rate-limit wait honoured before giving up for this round.
    pub max_rate_wait: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 8,
            base: Duration::from_millis(500),
            max: Duration::from_secs(60),
            max_rate_wait: Duration::from_secs(15 * 60),
        }
    }
}

/// Totals of one sync.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// Pages committed.
    pub pages: u64,
    /// Events or users the plugin returned.
    pub seen: u64,
    /// Rows that were new.
    pub new: u64,
    /// Retries after rate limits or transient errors.
    pub retries: u64,
}

/// Progress after each committed page.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Totals so far.
    pub stats: SyncStats,
    /// Time of the newest event of the page, if any.
    pub newest_ms: Option<i64>,
}

/// The egress log rows for what one call (or host request) sent out.
pub fn egress_records(
    instance_id: &str,
    plugin: &str,
    call: &str,
    egress: &[EgressEntry],
) -> Vec<EgressRecord> {
    egress
        .iter()
        .map(|e| EgressRecord {
            instance_id: instance_id.to_owned(),
            plugin_key: plugin.to_owned(),
            call: call.to_owned(),
            at_ms: e.at_ms,
            method: e.method.clone(),
            url: e.url.clone(),
            allowed: e.allowed,
            reason: e.reason.clone(),
            grant: e.grant.clone(),
            status: e.status,
            bytes_sent: e.bytes_sent,
            bytes_received: e.bytes_received,
            latency_ms: e.latency_ms,
        })
        .collect()
}

/// Why a sync is waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitReason {
    /// The provider said to slow down (`Retry-After`, reset headers).
    RateLimited,
    /// A transient failure; exponential backoff with jitter.
    Backoff,
}

/// Called when a sync starts waiting, with the reason and the delay.
pub type WaitHook = Arc<dyn Fn(WaitReason, Duration) + Send + Sync>;

/// Called after every plugin call with the call's name, its outcome
/// (`ok` or the error kind) and what it sent out.
pub type CallHook = Arc<dyn Fn(&str, &str, &[EgressEntry]) + Send + Sync>;

/// A short stable name for a call's outcome (metrics labels).
pub fn outcome_name<T>(result: &Result<T, CallError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(CallError::Plugin(e)) => match e {
            PluginError::Unauthorized(_) => "unauthorized",
            PluginError::Forbidden(_) => "forbidden",
            PluginError::RateLimited(_) => "rate-limited",
            PluginError::InvalidConfig(_) => "invalid-config",
            PluginError::Unavailable(_) => "unavailable",
            PluginError::Internal(_) => "internal",
        },
        Err(CallError::Timeout { .. }) => "timeout",
        Err(_) => "sandbox",
    }
}

/// How a sync shares its tenant's rate budget and learns that it must stop.
/// The default paces nothing and never stops (tests, one-shot tools).
#[derive(Clone, Default)]
pub struct Pace {
    /// The (provider, tenant) budget every call draws from.
    pub budget: Option<Arc<RateBudget>>,
    /// Cancelled on shutdown or when the instance is stopped: the sync ends
    /// before the next call; a page already fetched is still committed.
    pub cancel: Option<CancellationToken>,
    /// Told about every wait (for status and progress).
    pub on_wait: Option<WaitHook>,
    /// Told about every call (for metrics).
    pub on_call: Option<CallHook>,
}

impl std::fmt::Debug for Pace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pace")
            .field("budget", &self.budget)
            .field("cancellable", &self.cancel.is_some())
            .finish()
    }
}

impl Pace {
    fn cancelled(&self) -> bool {
        self.cancel.as_ref().is_some_and(|c| c.is_cancelled())
    }

    /// Sleeps `d` unless cancelled first; `false` when cancelled.
    async fn sleep(&self, d: Duration) -> bool {
        match &self.cancel {
            Some(cancel) => tokio::select! {
                _ = cancel.cancelled() => false,
                _ = tokio::time::sleep(d) => true,
            },
            None => {
                tokio::time::sleep(d).await;
                true
            }
        }
    }

    /// Waits for the budget; `false` when cancelled first.
    async fn ready(&self) -> bool {
        if self.cancelled() {
            return false;
        }
        let Some(budget) = &self.budget else {
            return true;
        };
        let hint = budget.wait_hint();
        if hint > Duration::from_millis(50)
            && let Some(hook) = &self.on_wait
        {
            hook(WaitReason::RateLimited, hint);
        }
        match &self.cancel {
            Some(cancel) => tokio::select! {
                _ = cancel.cancelled() => false,
                _ = budget.acquire() => true,
            },
            None => {
                budget.acquire().await;
                true
            }
        }
    }
}

/// One instance's plugin and store handle.
#[derive(Debug, Clone)]
pub struct Ingestor {
    /// The store.
    pub store: Store,
    /// The plugin bound to the instance.
    pub bound: Bound,
    /// The instance id.
    pub instance_id: String,
    /// The lease the scheduler holds on the instance: pages commit only
    /// while it does (`None`: unfenced, e.g. tools and tests).
    pub fence: Option<Fence>,
    /// Retry policy.
    pub retry: Retry,
}

fn kind(k: ActorKind) -> &'static str {
    match k {
        ActorKind::User => "user",
        ActorKind::Service => "service",
        ActorKind::System => "system",
        ActorKind::Unknown => "unknown",
    }
}

/// One target as stored in `targets_json`.
#[derive(serde::Serialize)]
struct TargetJson<'a> {
    id: &'a Option<String>,
    kind: &'a Option<String>,
    name: &'a Option<String>,
}

/// The targets as a JSON array of `{"id","kind","name"}` objects.
fn targets_json(targets: &[Target]) -> String {
    let rows = targets.iter().map(|t| {
        let Target { id, kind, name } = t;
        TargetJson { id, kind, name }
    });
    // Serialising strings and options into a String cannot fail.
    serde_json::to_string(&rows.collect::<Vec<_>>()).unwrap_or_else(|_| "[]".to_string())
}

fn to_row(e: Event) -> NewEvent {
    NewEvent {
        event_id: e.id,
        time_ms: e.time,
        action: e.action,
        actor_id: e.actor.id,
        actor_kind: kind(e.actor.kind).to_string(),
        actor_name: e.actor.name,
        actor_email: e.actor.email,
        targets_json: targets_json(&e.targets),
        ip: e.ip,
        user_agent: e.user_agent,
        outcome: match e.outcome {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Unknown => "unknown",
        }
        .to_string(),
        raw_json: e.raw,
    }
}

fn to_user(u: User) -> NewUser {
    NewUser {
        user_id: u.id,
        email: u.email,
        login: u.login,
        name: u.name,
        status: u.status,
        is_admin: u.is_admin,
        created_ms: u.created,
        last_login_ms: u.last_login,
        raw_json: u.raw,
    }
}

impl Ingestor {
    fn store_err(&self, source: StoreError) -> IngestError {
        IngestError::Store {
            instance: self.instance_id.clone(),
            source,
        }
    }

    /// Records what the call sent out, whatever its result.
    pub async fn record_egress(
        &self,
        call: &str,
        egress: &[EgressEntry],
    ) -> Result<(), IngestError> {
        if egress.is_empty() {
            return Ok(());
        }
        let records = egress_records(
            &self.instance_id,
            &self.bound.plugin().manifest().key,
            call,
            egress,
        );
        self.store
            .append_egress(&records)
            .await
            .map_err(|e| self.store_err(e))
    }

    /// Decides what to do with a failed call: `Ok(delay)` to retry.
    fn retry_after(&self, error: &CallError, attempt: u32) -> Option<Duration> {
        match error {
            CallError::Plugin(PluginError::RateLimited(r)) => {
                let wait = Duration::from_millis(r.retry_after_ms);
                (wait <= self.retry.max_rate_wait).then_some(wait)
            }
            CallError::Plugin(PluginError::Unavailable(_)) | CallError::Timeout { .. } => {
                let exp = self
                    .retry
                    .base
                    .saturating_mul(1u32 << attempt.min(16))
                    .min(self.retry.max);
                // Full jitter: spreads retries of many instances apart.
                let jittered = rand::thread_rng().gen_range(exp / 2..=exp);
                Some(jittered)
            }
            _ => None,
        }
    }

    fn cancelled(&self) -> IngestError {
        IngestError::Cancelled {
            instance: self.instance_id.clone(),
        }
    }

    async fn with_retries<T, F, Fut>(
        &self,
        call: &str,
        pace: &Pace,
        stats: &mut SyncStats,
        mut f: F,
    ) -> Result<T, IngestError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = CallReport<T>>,
    {
        let mut attempt = 0;
        loop {
            if !pace.ready().await {
                return Err(self.cancelled());
            }
            let report = f().await;
            if let Some(budget) = &pace.budget {
                budget.charge(report.egress.len().saturating_sub(1)).await;
                // The newest response that advertised the provider's limit.
                if let Some(e) = report
                    .egress
                    .iter()
                    .rev()
                    .find(|e| !e.rate_headers.is_empty())
                {
                    budget.observe(&e.rate_headers, e.at_ms.div_euclid(1000));
                }
            }
            if let Some(hook) = &pace.on_call {
                hook(call, outcome_name(&report.result), &report.egress);
            }
            self.record_egress(call, &report.egress).await?;
            match report.result {
                Ok(v) => return Ok(v),
                Err(error) => {
                    attempt += 1;
                    match self.retry_after(&error, attempt) {
                        Some(delay) if attempt < self.retry.attempts => {
                            tracing::info!(instance = %self.instance_id, %error, delay_ms = delay.as_millis() as u64, "retrying");
                            stats.retries += 1;
                            let reason = if matches!(
                                error,
                                CallError::Plugin(PluginError::RateLimited(_))
                            ) {
                                WaitReason::RateLimited
                            } else {
                                WaitReason::Backoff
                            };
                            if let Some(hook) = &pace.on_wait {
                                hook(reason, delay);
                            }
                            match (&pace.budget, reason) {
                                // The whole tenant waits, not just this instance.
                                (Some(budget), WaitReason::RateLimited) => {
                                    budget.block_for(delay).await
                                }
                                _ => {
                                    if !pace.sleep(delay).await {
                                        return Err(self.cancelled());
                                    }
                                }
                            }
                        }
                        Some(_) => {
                            return Err(IngestError::GaveUp {
                                instance: self.instance_id.clone(),
                                attempts: attempt,
                                last: error,
                            });
                        }
                        None => {
                            return Err(IngestError::Call {
                                instance: self.instance_id.clone(),
                                source: error,
                            });
                        }
                    }
                }
            }
        }
    }

    /// Reads audit pages until the plugin says it is caught up.
    /// `since_ms` bounds the first read of an instance (the backfill
    /// window); later reads continue from the stored cursor.
    pub async fn sync_audit(
        &self,
        since_ms: i64,
        progress: impl FnMut(Progress),
    ) -> Result<SyncStats, IngestError> {
        self.sync_audit_with(since_ms, &Pace::default(), progress)
            .await
    }

    /// [`Ingestor::sync_audit`] drawing on a rate budget and stoppable
    /// between pages.
    ///
    /// Pages are pipelined: while page N commits, page N+1 is fetched with
    /// the cursor page N returned (what the store holds once N has
    /// committed). Page N+1 is committed only after page N was; if N's
    /// commit fails, N+1 is dropped unstored and the error returned, so
    /// the stored cursor still only ever follows its events.
    pub async fn sync_audit_with(
        &self,
        since_ms: i64,
        pace: &Pace,
        mut progress: impl FnMut(Progress),
    ) -> Result<SyncStats, IngestError> {
        let mut stats = SyncStats::default();
        let cursor = self
            .store
            .cursor(&self.instance_id, AUDIT)
            .await
            .map_err(|e| self.store_err(e))?;
        let mut page = self
            .fetch_audit_page(since_ms, cursor, pace, &mut stats)
            .await?;
        loop {
            let newest_ms = page.events.iter().map(|e| e.time).max();
            let more = page.more;
            stats.seen += page.events.len() as u64;
            // The commit runs on a task of its own: joined with the next
            // fetch in this task, it would advance only when the guest
            // yields, and the two would share one thread.
            let commit = self.spawn_commit(page.events, page.cursor.clone());
            let mut fetch_stats = SyncStats::default();
            let next = if more {
                // A failed commit stops the fetch at its next wait: a call
                // in flight still finishes and has its egress recorded.
                let stop = pace
                    .cancel
                    .as_ref()
                    .map_or_else(CancellationToken::new, CancellationToken::child_token);
                let fetch_pace = Pace {
                    cancel: Some(stop.clone()),
                    ..pace.clone()
                };
                let next_cursor = Some(page.cursor);
                let fetch =
                    self.fetch_audit_page(since_ms, next_cursor, &fetch_pace, &mut fetch_stats);
                let commit = async {
                    let committed = self.join_commit(commit).await;
                    if committed.is_err() {
                        stop.cancel();
                    }
                    committed
                };
                let (committed, next) = tokio::join!(commit, fetch);
                stats.new += committed?;
                Some(next)
            } else {
                stats.new += self.join_commit(commit).await?;
                None
            };
            stats.pages += 1;
            progress(Progress { stats, newest_ms });
            stats.retries += fetch_stats.retries;
            match next {
                Some(next) => page = next?,
                None => break,
            }
        }
        Ok(stats)
    }

    /// One `fetch-audit` call from `cursor`, paced and retried.
    async fn fetch_audit_page(
        &self,
        since_ms: i64,
        cursor: Option<String>,
        pace: &Pace,
        stats: &mut SyncStats,
    ) -> Result<AuditPage, IngestError> {
        self.with_retries("fetch-audit", pace, stats, || {
            self.bound.fetch_audit(since_ms, cursor.as_deref())
        })
        .await
    }

    /// Commits one page's events with the cursor that follows them, on a
    /// task of its own, fenced when this ingestor works under a lease.
    /// Dropping the handle (the sync was cancelled) aborts the task and
    /// rolls the page back.
    fn spawn_commit(
        &self,
        events: Vec<Event>,
        cursor: String,
    ) -> AbortOnDropHandle<Result<u64, StoreError>> {
        let store = self.store.clone();
        let fence = self.fence.clone();
        let instance_id = self.instance_id.clone();
        AbortOnDropHandle::new(tokio::spawn(async move {
            let rows: Vec<NewEvent> = events.into_iter().map(to_row).collect();
            match &fence {
                Some(fence) => {
                    store
                        .commit_audit_page_fenced(fence, &instance_id, rows, &cursor)
                        .await
                }
                None => store.commit_audit_page(&instance_id, rows, &cursor).await,
            }
        }))
    }

    /// Waits for a commit started by [`Ingestor::spawn_commit`].
    async fn join_commit(
        &self,
        commit: AbortOnDropHandle<Result<u64, StoreError>>,
    ) -> Result<u64, IngestError> {
        match commit.await {
            Ok(committed) => committed.map_err(|e| self.store_err(e)),
            Err(e) => Err(IngestError::CommitTask {
                instance: self.instance_id.clone(),
                message: e.to_string(),
            }),
        }
    }

    /// Runs the connection test ("Test now") paced and retried like a
    /// page: rate limits within `max_rate_wait` are sat out, transient
    /// failures backed off.
    pub async fn test_with(&self, pace: &Pace) -> Result<TestReport, IngestError> {
        let mut stats = SyncStats::default();
        self.with_retries("test", pace, &mut stats, || self.bound.test())
            .await
    }

    /// Reads the whole user listing, committing page by page; an
    /// interrupted listing resumes from its stored cursor.
    pub async fn sync_users(&self) -> Result<SyncStats, IngestError> {
        self.sync_users_with(&Pace::default()).await
    }

    /// [`Ingestor::sync_users`] drawing on a rate budget and stoppable
    /// between pages.
    pub async fn sync_users_with(&self, pace: &Pace) -> Result<SyncStats, IngestError> {
        let mut stats = SyncStats::default();
        loop {
            let cursor = self
                .store
                .cursor(&self.instance_id, USERS)
                .await
                .map_err(|e| self.store_err(e))?;
            let page = self
                .with_retries("fetch-users", pace, &mut stats, || {
                    self.bound.fetch_users(cursor.as_deref())
                })
                .await?;
            stats.seen += page.users.len() as u64;
            let rows: Vec<NewUser> = page.users.into_iter().map(to_user).collect();
            let next = if page.more {
                page.cursor.as_deref()
            } else {
                None
            };
            let committed = match &self.fence {
                Some(fence) => {
                    self.store
                        .commit_users_page_fenced(fence, &self.instance_id, &rows, next)
                        .await
                }
                None => {
                    self.store
                        .commit_users_page(&self.instance_id, &rows, next)
                        .await
                }
            };
            stats.new += committed.map_err(|e| self.store_err(e))?;
            stats.pages += 1;
            if next.is_none() {
                break;
            }
        }
        Ok(stats)
    }
}
