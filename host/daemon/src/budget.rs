//! Rate budgets shared by every call to one provider tenant.
//!
//! Providers limit requests per tenant (Zendesk: 200/min by default; Okta:
//! per endpoint and org), not per Ward instance, so two instances pointed at
//! the same tenant draw from one budget. A budget is a token bucket refilled
//! continuously at `per_minute / 60` tokens a second, holding at most a
//! minute's worth. A call takes one token before it starts and is charged
//! for the requests it actually made afterwards (the host cannot know in
//! advance how many a plugin makes), so the balance may go negative and the
//! next call waits longer. A provider's `Retry-After` blocks the whole tenant.
//!
//! A rate change (an operator's `PATCH … requestsPerMinute`) applies at
//! once: calls already waiting for a token are woken and recompute their
//! wait at the new rate.
//!
//! **Adaptive pacing.** A plugin whose manifest names the headers in which
//! the provider advertises its limit (`[rate_limit]`: Okta's
//! `X-Rate-Limit-Limit/-Remaining/-Reset`, Zendesk's `ratelimit-*`) is paced
//! from what the tenant really allows: the advertised limit less a reserve
//! for the tenant's other API clients (`reserve_percent`, 50 % for Okta),
//! spread over the window, never above the ceiling (the manifest's
//! `max_requests_per_minute`, lowered by the operator's policy, or the
//! instance's `requestsPerMinute` when the operator set one). When the
//! remaining count reaches the reserve, nobody calls the tenant until the
//! advertised reset. Responses without those headers leave the fixed
//! budget (`schedule.requests_per_minute` ∩ policy, or the operator's
//! setting) in force.
//!
//! **Shared across daemons.** On a PostgreSQL store ([`Budgets::for_store`])
//! the bucket and the tenant's block live in the database
//! (`Store::take_rate_token`): every daemon takes its tokens from the same
//! row, so two daemons working one tenant together stay within its budget,
//! and a `Retry-After` one of them receives stops the others' calls too.
//! The rate in force (fixed or advertised share) is still worked out by each
//! daemon from the same settings and headers. On SQLite (one daemon) the
//! bucket stays in memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use ward_manifest::{AdvertisedLimit, Effective, Manifest, ResetKind};
use ward_store::{Backend, RateTake, Store};

/// The rates a tenant's budget runs at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rates {
    /// Requests a minute when the provider advertises nothing.
    pub fixed: u32,
    /// Where the provider advertises its limit, and the most Ward takes.
    pub adaptive: Option<Adaptive>,
}

/// Adaptive pacing settings of one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adaptive {
    /// The manifest's `[rate_limit]`.
    pub spec: AdvertisedLimit,
    /// Never above this many requests a minute.
    pub ceiling: u32,
}

impl Rates {
    /// The rates for an instance of a plugin: the operator's
    /// `requestsPerMinute` when set (it is then also the ceiling), else the
    /// manifest's fixed budget and ceiling, each lowered by the policy.
    pub fn for_plugin(manifest: &Manifest, effective: &Effective, operator: Option<u32>) -> Rates {
        let rpm = &effective.requests_per_minute;
        let policy_cap = (rpm.effective < rpm.requested).then_some(rpm.effective);
        Rates {
            fixed: operator.unwrap_or(rpm.effective).max(1),
            adaptive: manifest.rate_limit.as_ref().map(|spec| Adaptive {
                spec: spec.clone(),
                ceiling: operator
                    .unwrap_or_else(|| {
                        policy_cap.map_or(spec.max_requests_per_minute, |c| {
                            c.min(spec.max_requests_per_minute)
                        })
                    })
                    .max(1),
            }),
        }
    }
}

/// What one response advertised, read with the manifest's header names.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Advertised {
    limit: f64,
    remaining: f64,
    reset_in: Option<Duration>,
}

impl Advertised {
    fn read(
        spec: &AdvertisedLimit,
        headers: &[(String, String)],
        now_epoch_secs: i64,
    ) -> Option<Advertised> {
        let number = |names: &[String]| {
            names.iter().find_map(|n| {
                headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(n))
                    .and_then(|(_, v)| v.trim().parse::<f64>().ok())
                    .filter(|v| v.is_finite() && *v >= 0.0)
            })
        };
        let limit = number(&spec.limit_headers).filter(|l| *l >= 1.0)?;
        let remaining = number(&spec.remaining_headers)?;
        let window = f64::from(spec.window_secs);
        let reset_in = number(&spec.reset_headers).map(|r| {
            let secs = match spec.reset {
                ResetKind::Seconds => r,
                // Epoch seconds fit f64 exactly for any date this runs on.
                ResetKind::EpochSeconds => r - now_epoch_secs as f64,
            };
            // A clock skewed or a header gone wrong must not park the
            // tenant for long: at most two windows.
            Duration::from_secs_f64(secs.clamp(0.0, 2.0 * window))
        });
        Some(Advertised {
            limit,
            remaining,
            reset_in,
        })
    }
}

/// One tenant's budget.
#[derive(Debug)]
pub struct RateBudget {
    state: Mutex<Bucket>,
    /// Wakes waiting calls when the rate changes.
    changed: Notify,
    /// The database row holding the bucket when daemons share the store;
    /// `state` then only supplies the rate and this daemon's view of blocks.
    shared: Option<Shared>,
}

/// Where a shared budget lives.
#[derive(Debug)]
struct Shared {
    store: Store,
    plugin: String,
    tenant: String,
}

impl Shared {
    fn warn(&self, doing: &str, e: &ward_store::StoreError) {
        tracing::warn!(plugin = %self.plugin, tenant = %self.tenant, error = %e, "{doing} the shared rate budget failed");
    }
}

/// Wall-clock milliseconds: shared budgets compare times across daemons.
fn wall_ms() -> i64 {
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    i64::try_from(nanos / 1_000_000).unwrap_or(i64::MAX)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[derive(Debug)]
struct Bucket {
    /// The rate in force (see [`Bucket::settle`]).
    per_minute: u32,
    /// Rate without advertised limits.
    fixed: u32,
    /// Adaptive settings, when the plugin names rate-limit headers.
    adaptive: Option<Adaptive>,
    /// Ward's share of the last advertised limit, per minute.
    share: Option<u32>,
    tokens: f64,
    updated: Instant,
    blocked_until: Option<Instant>,
}

impl Bucket {
    /// Recomputes the rate in force: the advertised share capped by the
    /// ceiling, or the fixed rate when nothing was advertised.
    fn settle(&mut self) {
        self.per_minute = match (&self.adaptive, self.share) {
            (Some(a), Some(share)) => share.min(a.ceiling),
            _ => self.fixed,
        }
        .max(1);
        self.tokens = self.tokens.min(f64::from(self.per_minute));
    }

    fn refill(&mut self, now: Instant) {
        let rate = f64::from(self.per_minute) / 60.0;
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(f64::from(self.per_minute));
        self.updated = now;
    }

    /// `None`: a token was taken. `Some(d)`: try again after `d`.
    fn try_take(&mut self, now: Instant) -> Option<Duration> {
        if let Some(until) = self.blocked_until {
            if until > now {
                return Some(until - now);
            }
            self.blocked_until = None;
        }
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return None;
        }
        let rate = f64::from(self.per_minute.max(1)) / 60.0;
        Some(Duration::from_secs_f64(
            ((1.0 - self.tokens) / rate).max(0.001),
        ))
    }
}

impl RateBudget {
    /// A full budget of `per_minute` requests a minute (at least 1).
    pub fn new(per_minute: u32) -> RateBudget {
        RateBudget::with_rates(&Rates {
            fixed: per_minute,
            adaptive: None,
        })
    }

    /// A full budget at `rates.fixed` until the provider advertises more
    /// or less.
    pub fn with_rates(rates: &Rates) -> RateBudget {
        let per_minute = rates.fixed.max(1);
        RateBudget {
            state: Mutex::new(Bucket {
                per_minute,
                fixed: per_minute,
                adaptive: rates.adaptive.clone(),
                share: None,
                tokens: f64::from(per_minute),
                updated: Instant::now(),
                blocked_until: None,
            }),
            changed: Notify::new(),
            shared: None,
        }
    }

    /// [`RateBudget::with_rates`] whose bucket lives in `store`, shared by
    /// every daemon on it.
    fn shared(rates: &Rates, store: Store, plugin: &str, tenant: &str) -> RateBudget {
        RateBudget {
            shared: Some(Shared {
                store,
                plugin: plugin.to_string(),
                tenant: tenant.to_string(),
            }),
            ..RateBudget::with_rates(rates)
        }
    }

    fn bucket(&self) -> std::sync::MutexGuard<'_, Bucket> {
        // The bucket is a few numbers updated in one statement each: a
        // panic elsewhere cannot leave it torn.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Requests a minute in force now.
    pub fn per_minute(&self) -> u32 {
        self.bucket().per_minute
    }

    /// Changes the fixed rate, keeping the adaptive settings (an operator
    /// raised or lowered it); the balance is kept, and calls waiting for a
    /// token recompute their wait at once.
    pub fn set_per_minute(&self, per_minute: u32) {
        let adaptive = self.bucket().adaptive.clone();
        self.set_rates(&Rates {
            fixed: per_minute,
            adaptive,
        });
    }

    /// Changes the fixed rate and the adaptive settings; the advertised
    /// share already learnt is kept. Waiting calls recompute their wait.
    pub fn set_rates(&self, rates: &Rates) {
        {
            let mut b = self.bucket();
            b.refill(Instant::now());
            b.fixed = rates.fixed.max(1);
            b.adaptive = rates.adaptive.clone();
            b.settle();
        }
        self.changed.notify_waiters();
    }

    /// Learns from a response's rate-limit headers (those the manifest
    /// names): the rate becomes Ward's share of the advertised limit (the
    /// limit less the reserve, over the window), capped by the ceiling; when
    /// what remains in the window is down to the reserve, the tenant is
    /// blocked until the advertised reset. Without the headers, or without
    /// adaptive settings, nothing changes.
    pub fn observe(&self, headers: &[(String, String)], now_epoch_secs: i64) {
        // What the shared bucket must be held to: (most tokens, blocked
        // for how long).
        let limit = {
            let mut b = self.bucket();
            let Some(adaptive) = b.adaptive.clone() else {
                return;
            };
            let spec = &adaptive.spec;
            let Some(seen) = Advertised::read(spec, headers, now_epoch_secs) else {
                return;
            };
            let now = Instant::now();
            b.refill(now);
            let reserve = seen.limit * f64::from(spec.reserve_percent) / 100.0;
            let per_window = seen.limit - reserve;
            let per_minute = per_window * 60.0 / f64::from(spec.window_secs);
            b.share = Some(per_minute.floor().clamp(1.0, f64::from(u32::MAX)) as u32);
            b.settle();
            // Never spend the reserve: what is left above it in this
            // window bounds the balance, and nothing left means waiting
            // for the reset.
            let left = (seen.remaining - reserve).floor();
            if left < 1.0 {
                let wait = seen
                    .reset_in
                    .unwrap_or(Duration::from_secs(u64::from(spec.window_secs)));
                let until = now + wait;
                b.blocked_until = Some(b.blocked_until.map_or(until, |u| u.max(until)));
                b.tokens = b.tokens.min(0.0);
                (0.0, wait, b.per_minute)
            } else {
                b.tokens = b.tokens.min(left);
                (left, Duration::ZERO, b.per_minute)
            }
        };
        // Only a block is written to a shared bucket (behind the call, not
        // before its page commits): capping the balance at every response
        // put one more write per call on the tenant's one row, contended by
        // every daemon, and the block alone keeps the reserve unspent.
        if let (Some(shared), (most, blocked, per_minute)) = (&self.shared, limit)
            && !blocked.is_zero()
        {
            let now = wall_ms();
            let until = now.saturating_add(millis(blocked));
            let (store, plugin, tenant) = (
                shared.store.clone(),
                shared.plugin.clone(),
                shared.tenant.clone(),
            );
            tokio::spawn(async move {
                if let Err(e) = store
                    .limit_rate_budget(&plugin, &tenant, per_minute, now, most, until)
                    .await
                {
                    tracing::warn!(%plugin, %tenant, error = %e, "limiting the shared rate budget failed");
                }
            });
        }
        self.changed.notify_waiters();
    }

    /// How long a call would wait now (0 when it could start at once).
    pub fn wait_hint(&self) -> Duration {
        let mut b = self.bucket();
        let now = Instant::now();
        if let Some(until) = b.blocked_until
            && until > now
        {
            return until - now;
        }
        b.refill(now);
        // A shared bucket's balance is in the database: the take says.
        if b.tokens >= 1.0 || self.shared.is_some() {
            Duration::ZERO
        } else {
            let rate = f64::from(b.per_minute) / 60.0;
            Duration::from_secs_f64((1.0 - b.tokens) / rate)
        }
    }

    /// Waits for one request's worth of budget and takes it. A rate change
    /// while waiting ends the wait early and the wait is recomputed.
    pub async fn acquire(&self) {
        loop {
            // Registered before looking at the bucket, so a change between
            // the look and the sleep is not missed.
            let changed = self.changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            let wait = match &self.shared {
                None => self.bucket().try_take(Instant::now()),
                Some(shared) => self.take_shared(shared).await,
            };
            match wait {
                None => return,
                Some(d) => {
                    tokio::select! {
                        () = tokio::time::sleep(d) => {}
                        () = changed => {}
                    }
                }
            }
        }
    }

    /// [`Bucket::try_take`] on the database's bucket. A block this daemon
    /// already knows of needs no round trip; a database error waits a
    /// second and tries again (no call goes out without a token).
    async fn take_shared(&self, shared: &Shared) -> Option<Duration> {
        let (blocked, per_minute) = {
            let b = self.bucket();
            (b.blocked_until, b.per_minute)
        };
        let now = Instant::now();
        if let Some(until) = blocked
            && until > now
        {
            return Some(until - now);
        }
        match shared
            .store
            .take_rate_token(&shared.plugin, &shared.tenant, per_minute, wall_ms())
            .await
        {
            Ok(RateTake::Taken) => None,
            Ok(RateTake::Wait(d)) => Some(d.max(Duration::from_millis(1))),
            Err(e) => {
                shared.warn("taking a token from", &e);
                Some(Duration::from_secs(1))
            }
        }
    }

    /// Charges `extra` more requests than the one token [`acquire`] took.
    ///
    /// [`acquire`]: RateBudget::acquire
    pub async fn charge(&self, extra: usize) {
        if extra == 0 {
            return;
        }
        self.bucket().tokens -= extra as f64;
        if let Some(shared) = &self.shared
            && let Err(e) = shared
                .store
                .charge_rate_budget(&shared.plugin, &shared.tenant, extra as f64)
                .await
        {
            shared.warn("charging", &e);
        }
    }

    /// The provider said to wait: nobody calls this tenant before `wait` has
    /// passed (on a shared store: no daemon).
    pub async fn block_for(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let per_minute = {
            let mut b = self.bucket();
            b.blocked_until = Some(b.blocked_until.map_or(until, |u| u.max(until)));
            b.per_minute
        };
        if let Some(shared) = &self.shared {
            let now = wall_ms();
            if let Err(e) = shared
                .store
                .limit_rate_budget(
                    &shared.plugin,
                    &shared.tenant,
                    per_minute,
                    now,
                    f64::from(per_minute),
                    now.saturating_add(millis(wait)),
                )
                .await
            {
                shared.warn("blocking", &e);
            }
        }
    }
}

/// Budgets by (plugin key, tenant), and which one each instance draws from.
/// The default keeps them in memory (one daemon).
#[derive(Debug, Default)]
pub struct Budgets {
    map: Mutex<HashMap<(String, String), Arc<RateBudget>>>,
    by_instance: Mutex<HashMap<String, Arc<RateBudget>>>,
    /// Where the buckets live when several daemons share the store.
    shared: Option<Store>,
}

impl Budgets {
    /// The budgets of a daemon on `store`: in the database on PostgreSQL
    /// (shared with the other daemons there), in memory on SQLite.
    pub fn for_store(store: &Store) -> Budgets {
        Budgets {
            shared: (store.backend() == Backend::Postgres).then(|| store.clone()),
            ..Budgets::default()
        }
    }

    /// The budget of a tenant, created at `per_minute` on first use. When
    /// it exists, its rate is set to `per_minute` (the latest setting wins).
    pub fn get(&self, plugin: &str, tenant: &str, per_minute: u32) -> Arc<RateBudget> {
        self.with_rates(
            plugin,
            tenant,
            &Rates {
                fixed: per_minute,
                adaptive: None,
            },
        )
    }

    /// [`Budgets::get`] with adaptive settings.
    pub fn with_rates(&self, plugin: &str, tenant: &str, rates: &Rates) -> Arc<RateBudget> {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        let budget = map
            .entry((plugin.to_string(), tenant.to_string()))
            .or_insert_with(|| {
                Arc::new(match &self.shared {
                    Some(store) => RateBudget::shared(rates, store.clone(), plugin, tenant),
                    None => RateBudget::with_rates(rates),
                })
            })
            .clone();
        let current = {
            let b = budget.bucket();
            (b.fixed, b.adaptive.clone())
        };
        if current != (rates.fixed.max(1), rates.adaptive.clone()) {
            budget.set_rates(rates);
        }
        budget
    }

    /// [`Budgets::with_rates`] for an instance's sync, remembering the
    /// budget so that [`Budgets::set_instance_rates`] reaches it while the
    /// sync runs.
    pub fn for_instance(
        &self,
        instance: &str,
        plugin: &str,
        tenant: &str,
        rates: &Rates,
    ) -> Arc<RateBudget> {
        let budget = self.with_rates(plugin, tenant, rates);
        self.by_instance
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(instance.to_string(), budget.clone());
        budget
    }

    /// Applies new rates to the budget the instance draws from, at once
    /// (waiting calls are woken). `false` when the instance has not synced
    /// since start-up: its next sync picks the rates up from the store.
    pub fn set_instance_rates(&self, instance: &str, rates: &Rates) -> bool {
        let budget = self
            .by_instance
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(instance)
            .cloned();
        match budget {
            Some(b) => {
                b.set_rates(rates);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn spends_a_minute_of_burst_then_paces() {
        let b = RateBudget::new(60);
        let start = Instant::now();
        for _ in 0..60 {
            b.acquire().await;
        }
        assert_eq!(Instant::now(), start, "the first minute's worth is a burst");
        b.acquire().await;
        let waited = Instant::now() - start;
        assert!(waited >= Duration::from_millis(990), "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn charges_extra_requests_and_blocks_on_retry_after() {
        let b = RateBudget::new(60);
        b.charge(60).await;
        let start = Instant::now();
        b.acquire().await;
        assert!(Instant::now() - start >= Duration::from_secs(1));
        let b = RateBudget::new(600);
        b.block_for(Duration::from_secs(2)).await;
        let start = Instant::now();
        b.acquire().await;
        assert!(Instant::now() - start >= Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_raised_rate_wakes_a_waiting_call() {
        let b = Arc::new(RateBudget::new(1));
        b.acquire().await;
        // The next token is a minute away at 1/min.
        let waiter = tokio::spawn({
            let b = b.clone();
            async move { b.acquire().await }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!waiter.is_finished());
        let start = Instant::now();
        b.set_per_minute(600);
        waiter.await.unwrap_or_default();
        // At 600/min a token takes 0.1 s, not the 59 s left at 1/min.
        assert!(Instant::now() - start <= Duration::from_millis(100));
    }

    fn fixed(per_minute: u32) -> Rates {
        Rates {
            fixed: per_minute,
            adaptive: None,
        }
    }

    #[test]
    fn an_instance_rate_reaches_its_tenant_budget() {
        let all = Budgets::default();
        assert!(!all.set_instance_rates("i1", &fixed(50)));
        let a = all.for_instance("i1", "okta", "acme.okta.com", &fixed(25));
        assert!(all.set_instance_rates("i1", &fixed(50)));
        assert_eq!(a.per_minute(), 50);
    }

    fn okta_like(ceiling: u32) -> Rates {
        Rates {
            fixed: 25,
            adaptive: Some(Adaptive {
                spec: AdvertisedLimit {
                    limit_headers: vec!["x-rate-limit-limit".into()],
                    remaining_headers: vec!["x-rate-limit-remaining".into()],
                    reset_headers: vec!["x-rate-limit-reset".into()],
                    reset: ResetKind::EpochSeconds,
                    window_secs: 60,
                    reserve_percent: 50,
                    max_requests_per_minute: 600,
                },
                ceiling,
            }),
        }
    }

    fn advertised(limit: u32, remaining: u32, reset_epoch: i64) -> Vec<(String, String)> {
        vec![
            ("x-rate-limit-limit".into(), limit.to_string()),
            ("x-rate-limit-remaining".into(), remaining.to_string()),
            ("x-rate-limit-reset".into(), reset_epoch.to_string()),
        ]
    }

    /// A provider counting requests in one-minute windows and advertising
    /// `limit` a minute (`used_before` already spent in the first window by
    /// the tenant's other clients), driven at full speed for `secs` of
    /// virtual time. Returns the requests sent in each window.
    async fn drive(b: &RateBudget, limit: u32, used_before: u32, secs: u64) -> Vec<u32> {
        const EPOCH: i64 = 1_000_000_020; // a window boundary
        let start = Instant::now();
        let end = start + Duration::from_secs(secs);
        let mut windows = vec![0u32];
        let mut used = used_before;
        loop {
            tokio::select! {
                () = b.acquire() => {}
                () = tokio::time::sleep_until(end) => return windows,
            }
            let t = (Instant::now() - start).as_secs();
            let window = usize::try_from(t / 60).unwrap_or(usize::MAX);
            if window >= windows.len() {
                windows.resize(window + 1, 0);
                used = 0;
            }
            used += 1;
            windows[window] += 1;
            let reset = EPOCH + ((t / 60 + 1) * 60) as i64;
            b.observe(
                &advertised(limit, limit.saturating_sub(used), reset),
                EPOCH + t as i64,
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn paces_at_the_advertised_share_less_the_reserve() {
        // A small org: 20 a minute advertised, half kept for others.
        let b = RateBudget::with_rates(&okta_like(600));
        let windows = drive(&b, 20, 0, 600).await;
        assert_eq!(b.per_minute(), 10);
        assert!(windows.iter().all(|n| *n <= 10), "{windows:?}");
        assert!(windows.iter().take(9).all(|n| *n >= 9), "{windows:?}");
        // A large one: 1,200 a minute advertised, 600 for Ward.
        let b = RateBudget::with_rates(&okta_like(600));
        let windows = drive(&b, 1200, 0, 180).await;
        assert_eq!(b.per_minute(), 600);
        assert!(windows.iter().all(|n| *n <= 600), "{windows:?}");
        assert!(windows.iter().take(2).all(|n| *n >= 590), "{windows:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn never_above_the_ceiling_and_falls_back_without_headers() {
        let b = RateBudget::with_rates(&okta_like(100));
        let windows = drive(&b, 6000, 0, 180).await;
        assert_eq!(b.per_minute(), 100, "capped at the ceiling");
        // The first window also spends the initial balance (25, the fixed
        // budget's minute); after it, the ceiling's 100 a minute.
        assert!(windows[0] <= 125 && windows[1] <= 101, "{windows:?}");
        let b = RateBudget::with_rates(&okta_like(100));
        b.observe(&[("content-type".into(), "application/json".into())], 0);
        assert_eq!(b.per_minute(), 25, "no headers: the fixed budget");
        let b = RateBudget::new(25);
        b.observe(&advertised(6000, 6000, 0), 0);
        assert_eq!(b.per_minute(), 25, "no [rate_limit] in the manifest: fixed");
    }

    #[tokio::test(start_paused = true)]
    async fn the_reserve_is_never_spent() {
        // 100 a minute, 50 kept; the tenant's other clients already spent
        // 48: two requests, then nothing until the window resets.
        let b = RateBudget::with_rates(&okta_like(600));
        let windows = drive(&b, 100, 48, 120).await;
        assert_eq!(windows[0], 2, "{windows:?}");
        assert!((45..=50).contains(&windows[1]), "{windows:?}");
    }

    #[test]
    fn the_operator_setting_is_fixed_rate_and_ceiling() {
        let manifest = ward_manifest::Manifest::parse(
            r#"
key = "p"
name = "P"
version = "1.0.0"
vendor = "V"
auth = { kind = "api-token", secret = "t" }
[[secrets]]
name = "t"
[schedule]
requests_per_minute = 25
[rate_limit]
limit_headers = ["x-rate-limit-limit"]
remaining_headers = ["x-rate-limit-remaining"]
reserve_percent = 50
max_requests_per_minute = 600
"#,
        )
        .unwrap_or_else(|e| unreachable!("{e}"));
        let open = ward_manifest::effective(&manifest, &ward_manifest::PluginPolicy::default());
        let r = Rates::for_plugin(&manifest, &open, None);
        assert_eq!((r.fixed, r.adaptive.map(|a| a.ceiling)), (25, Some(600)));
        let r = Rates::for_plugin(&manifest, &open, Some(300));
        assert_eq!((r.fixed, r.adaptive.map(|a| a.ceiling)), (300, Some(300)));
        let narrowed = ward_manifest::effective(
            &manifest,
            &ward_manifest::PluginPolicy {
                requests_per_minute: Some(10),
                ..Default::default()
            },
        );
        let r = Rates::for_plugin(&manifest, &narrowed, None);
        assert_eq!((r.fixed, r.adaptive.map(|a| a.ceiling)), (10, Some(10)));
    }

    #[test]
    fn one_budget_per_tenant() {
        let all = Budgets::default();
        let a = all.get("zendesk", "acme.zendesk.com", 200);
        let b = all.get("zendesk", "acme.zendesk.com", 200);
        let c = all.get("zendesk", "other.zendesk.com", 200);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        all.get("zendesk", "acme.zendesk.com", 400);
        assert_eq!(a.per_minute(), 400);
    }
}
