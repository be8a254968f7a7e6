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

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// One tenant's budget.
#[derive(Debug)]
pub struct RateBudget {
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    per_minute: u32,
    tokens: f64,
    updated: Instant,
    blocked_until: Option<Instant>,
}

impl Bucket {
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
        let per_minute = per_minute.max(1);
        RateBudget {
            state: Mutex::new(Bucket {
                per_minute,
                tokens: f64::from(per_minute),
                updated: Instant::now(),
                blocked_until: None,
            }),
        }
    }

    fn bucket(&self) -> std::sync::MutexGuard<'_, Bucket> {
        // The bucket is a few numbers updated in one statement each: a
        // panic elsewhere cannot leave it torn.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Requests a minute.
    pub fn per_minute(&self) -> u32 {
        self.bucket().per_minute
    }

    /// Changes the rate (an operator raised or lowered it); the balance is kept.
    pub fn set_per_minute(&self, per_minute: u32) {
        let mut b = self.bucket();
        b.refill(Instant::now());
        b.per_minute = per_minute.max(1);
        b.tokens = b.tokens.min(f64::from(b.per_minute));
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
        if b.tokens >= 1.0 {
            Duration::ZERO
        } else {
            let rate = f64::from(b.per_minute) / 60.0;
            Duration::from_secs_f64((1.0 - b.tokens) / rate)
        }
    }

    /// Waits for one request's worth of budget and takes it.
    pub async fn acquire(&self) {
        loop {
            let wait = self.bucket().try_take(Instant::now());
            match wait {
                None => return,
                Some(d) => tokio::time::sleep(d).await,
            }
        }
    }

    /// Charges `extra` more requests than the one token [`acquire`] took.
    ///
    /// [`acquire`]: RateBudget::acquire
    pub fn charge(&self, extra: usize) {
        if extra > 0 {
            let mut b = self.bucket();
            b.tokens -= extra as f64;
        }
    }

    /// The provider said to wait: nobody calls this tenant before `wait` has
    /// passed.
    pub fn block_for(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut b = self.bucket();
        b.blocked_until = Some(b.blocked_until.map_or(until, |u| u.max(until)));
    }
}

/// Budgets by (plugin key, tenant).
#[derive(Debug, Default)]
pub struct Budgets {
    map: Mutex<HashMap<(String, String), Arc<RateBudget>>>,
}

impl Budgets {
    /// The budget of a tenant, created at `per_minute` on first use. When
    /// it exists, its rate is set to `per_minute` (the latest setting wins).
    pub fn get(&self, plugin: &str, tenant: &str, per_minute: u32) -> Arc<RateBudget> {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        let budget = map
            .entry((plugin.to_string(), tenant.to_string()))
            .or_insert_with(|| Arc::new(RateBudget::new(per_minute)))
            .clone();
        if budget.per_minute() != per_minute.max(1) {
            budget.set_per_minute(per_minute);
        }
        budget
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
        b.charge(60);
        let start = Instant::now();
        b.acquire().await;
        assert!(Instant::now() - start >= Duration::from_secs(1));
        let b = RateBudget::new(600);
        b.block_for(Duration::from_secs(2));
        let start = Instant::now();
        b.acquire().await;
        assert!(Instant::now() - start >= Duration::from_secs(2));
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
